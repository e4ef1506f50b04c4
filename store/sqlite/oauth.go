package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/visage-idp/visage/store"
)

const authRequestColumns = `id, client_id, redirect_uri, state, nonce, scopes, response_type, response_mode,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, acr_values, ui_locales, created_at,
	expires_at, user_id, session_id, auth_time, amr, acr, done`

func scanAuthRequest(r row) (store.AuthRequest, error) {
	var a store.AuthRequest
	err := r.Scan(&a.ID, &a.ClientID, &a.RedirectURI, &a.State, &a.Nonce, listCol{&a.Scopes}, &a.ResponseType,
		&a.ResponseMode, &a.CodeChallenge, &a.CodeChallengeMethod, listCol{&a.Prompt}, nullDurationCol{&a.MaxAge},
		&a.LoginHint, listCol{&a.ACRValues}, listCol{&a.UILocales}, timeCol{&a.CreatedAt}, timeCol{&a.ExpiresAt},
		&a.UserID, &a.SessionID, timeCol{&a.AuthTime}, listCol{&a.AMR}, &a.ACR, &a.Done)
	return a, err
}

// CreateAuthRequest implements store.Storage.
func (s *Store) CreateAuthRequest(ctx context.Context, a store.AuthRequest) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO auth_requests (`+authRequestColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.ClientID, a.RedirectURI, a.State, a.Nonce, list(a.Scopes), a.ResponseType, a.ResponseMode,
		a.CodeChallenge, a.CodeChallengeMethod, list(a.Prompt), nullDuration(a.MaxAge), a.LoginHint,
		list(a.ACRValues), list(a.UILocales), micros(a.CreatedAt), micros(a.ExpiresAt), a.UserID, a.SessionID,
		micros(a.AuthTime), list(a.AMR), a.ACR, a.Done)
	if err != nil {
		return fmt.Errorf("sqlite: create auth request %q: %w", a.ID, classify(err))
	}
	return nil
}

// GetAuthRequest implements store.Storage.
func (s *Store) GetAuthRequest(ctx context.Context, id string) (store.AuthRequest, error) {
	a, err := scanAuthRequest(s.db.QueryRowContext(ctx, `SELECT `+authRequestColumns+` FROM auth_requests WHERE id = ?`, id))
	if err != nil {
		return store.AuthRequest{}, fmt.Errorf("sqlite: get auth request %q: %w", id, noRows(err))
	}
	return a, nil
}

// UpdateAuthRequest implements store.Storage: every field but the ID is replaced.
func (s *Store) UpdateAuthRequest(ctx context.Context, a store.AuthRequest) error {
	err := affected(s.db.ExecContext(ctx, `UPDATE auth_requests SET client_id = ?, redirect_uri = ?, state = ?,
		nonce = ?, scopes = ?, response_type = ?, response_mode = ?, code_challenge = ?, code_challenge_method = ?,
		prompt = ?, max_age = ?, login_hint = ?, acr_values = ?, ui_locales = ?, created_at = ?, expires_at = ?,
		user_id = ?, session_id = ?, auth_time = ?, amr = ?, acr = ?, done = ? WHERE id = ?`,
		a.ClientID, a.RedirectURI, a.State, a.Nonce, list(a.Scopes), a.ResponseType, a.ResponseMode,
		a.CodeChallenge, a.CodeChallengeMethod, list(a.Prompt), nullDuration(a.MaxAge), a.LoginHint,
		list(a.ACRValues), list(a.UILocales), micros(a.CreatedAt), micros(a.ExpiresAt), a.UserID, a.SessionID,
		micros(a.AuthTime), list(a.AMR), a.ACR, a.Done, a.ID))
	if err != nil {
		return fmt.Errorf("sqlite: update auth request %q: %w", a.ID, err)
	}
	return nil
}

// DeleteAuthRequest implements store.Storage. Its codes stay: a replayed code must still be
// recognised.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	if err := affected(s.db.ExecContext(ctx, `DELETE FROM auth_requests WHERE id = ?`, id)); err != nil {
		return fmt.Errorf("sqlite: delete auth request %q: %w", id, err)
	}
	return nil
}

const authCodeColumns = `code_hash, auth_request_id, grant_id, expires_at, used_at`

func scanAuthCode(r row) (store.AuthCode, error) {
	var c store.AuthCode
	err := r.Scan(&c.CodeHash, &c.AuthRequestID, &c.GrantID, timeCol{&c.ExpiresAt}, nullTimeCol{&c.UsedAt})
	return c, err
}

// CreateAuthCode implements store.Storage.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO auth_codes (`+authCodeColumns+`) VALUES (?, ?, ?, ?, ?)`,
		c.CodeHash, c.AuthRequestID, c.GrantID, micros(c.ExpiresAt), nullMicros(c.UsedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create auth code: %w", classify(err))
	}
	return nil
}

// GetAuthCode implements store.Storage.
func (s *Store) GetAuthCode(ctx context.Context, codeHash string) (store.AuthCode, error) {
	c, err := scanAuthCode(s.db.QueryRowContext(ctx, `SELECT `+authCodeColumns+` FROM auth_codes WHERE code_hash = ?`, codeHash))
	if err != nil {
		return store.AuthCode{}, fmt.Errorf("sqlite: get auth code: %w", noRows(err))
	}
	return c, nil
}

// UseAuthCode implements store.Storage. The conditional UPDATE (used_at IS NULL) decides who
// wins; the transaction holds the write lock, so the read-back sees the winner's values.
func (s *Store) UseAuthCode(ctx context.Context, codeHash, grantID string, at time.Time) (store.AuthCode, error) {
	var c store.AuthCode
	var used bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE auth_codes SET used_at = ?, grant_id = ?
			WHERE code_hash = ? AND used_at IS NULL`, micros(at), grantID, codeHash)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		used = n == 0
		c, err = scanAuthCode(tx.QueryRowContext(ctx, `SELECT `+authCodeColumns+` FROM auth_codes WHERE code_hash = ?`, codeHash))
		return noRows(err)
	})
	switch {
	case err != nil:
		return store.AuthCode{}, fmt.Errorf("sqlite: use auth code: %w", err)
	case used:
		return c, fmt.Errorf("sqlite: use auth code: %w", store.ErrAlreadyUsed)
	}
	return c, nil
}

const grantColumns = `id, client_id, user_id, session_id, scopes, audience, auth_time, amr, acr, created_at, revoked_at`

// CreateGrant implements store.Storage.
func (s *Store) CreateGrant(ctx context.Context, g store.Grant) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO grants (`+grantColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.ClientID, g.UserID, g.SessionID, list(g.Scopes), list(g.Audience), micros(g.AuthTime), list(g.AMR),
		g.ACR, micros(g.CreatedAt), nullMicros(g.RevokedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create grant %q: %w", g.ID, classify(err))
	}
	return nil
}

// GetGrant implements store.Storage.
func (s *Store) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	var g store.Grant
	err := s.db.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = ?`, id).
		Scan(&g.ID, &g.ClientID, &g.UserID, &g.SessionID, listCol{&g.Scopes}, listCol{&g.Audience},
			timeCol{&g.AuthTime}, listCol{&g.AMR}, &g.ACR, timeCol{&g.CreatedAt}, nullTimeCol{&g.RevokedAt})
	if err != nil {
		return store.Grant{}, fmt.Errorf("sqlite: get grant %q: %w", id, noRows(err))
	}
	return g, nil
}

// ListSessionGrants implements store.Storage.
func (s *Store) ListSessionGrants(ctx context.Context, sessionID string) ([]store.Grant, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+grantColumns+` FROM grants WHERE session_id = ? ORDER BY created_at, id`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list session grants: %w", err)
	}
	defer rows.Close()
	var out []store.Grant
	for rows.Next() {
		var g store.Grant
		if err := rows.Scan(&g.ID, &g.ClientID, &g.UserID, &g.SessionID, listCol{&g.Scopes}, listCol{&g.Audience},
			timeCol{&g.AuthTime}, listCol{&g.AMR}, &g.ACR, timeCol{&g.CreatedAt}, nullTimeCol{&g.RevokedAt}); err != nil {
			return nil, fmt.Errorf("sqlite: list session grants: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list session grants: %w", err)
	}
	return out, nil
}

// RevokeGrant implements store.Storage. Already revoked records keep their revocation time.
func (s *Store) RevokeGrant(ctx context.Context, id string, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := affected(tx.ExecContext(ctx, `UPDATE grants SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, micros(at), id)); err != nil {
			return err
		}
		for _, q := range []string{
			`UPDATE access_tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL`,
			`UPDATE refresh_tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL`,
		} {
			if _, err := tx.ExecContext(ctx, q, micros(at), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: revoke grant %q: %w", id, err)
	}
	return nil
}

// grantRevokedAt is the expression a new token's revoked_at takes: its own if set, else its
// grant's. The INSERT and RevokeGrant both hold the write lock, so neither misses the other.
const grantRevokedAt = `coalesce(?, (SELECT revoked_at FROM grants WHERE id = ?))`

const accessTokenColumns = `id, grant_id, client_id, user_id, scopes, audience, created_at, expires_at, revoked_at`

// CreateAccessToken implements store.Storage. In a revoked grant the token is stored revoked.
func (s *Store) CreateAccessToken(ctx context.Context, t store.AccessToken) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO access_tokens (`+accessTokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, `+grantRevokedAt+`)`,
		t.ID, t.GrantID, t.ClientID, t.UserID, list(t.Scopes), list(t.Audience), micros(t.CreatedAt),
		micros(t.ExpiresAt), nullMicros(t.RevokedAt), t.GrantID)
	if err != nil {
		return fmt.Errorf("sqlite: create access token %q: %w", t.ID, classify(err))
	}
	return nil
}

// GetAccessToken implements store.Storage.
func (s *Store) GetAccessToken(ctx context.Context, id string) (store.AccessToken, error) {
	var t store.AccessToken
	err := s.db.QueryRowContext(ctx, `SELECT `+accessTokenColumns+` FROM access_tokens WHERE id = ?`, id).
		Scan(&t.ID, &t.GrantID, &t.ClientID, &t.UserID, listCol{&t.Scopes}, listCol{&t.Audience},
			timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt}, nullTimeCol{&t.RevokedAt})
	if err != nil {
		return store.AccessToken{}, fmt.Errorf("sqlite: get access token %q: %w", id, noRows(err))
	}
	return t, nil
}

// RevokeAccessToken implements store.Storage. An already revoked token keeps its time.
func (s *Store) RevokeAccessToken(ctx context.Context, id string, at time.Time) error {
	err := affected(s.db.ExecContext(ctx, `UPDATE access_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, micros(at), id))
	if err != nil {
		return fmt.Errorf("sqlite: revoke access token %q: %w", id, err)
	}
	return nil
}

const refreshTokenColumns = `token_hash, grant_id, client_id, user_id, scopes, audience, auth_time, amr, acr,
	created_at, expires_at, used_at, revoked_at`

func scanRefreshToken(r row) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := r.Scan(&t.TokenHash, &t.GrantID, &t.ClientID, &t.UserID, listCol{&t.Scopes}, listCol{&t.Audience},
		timeCol{&t.AuthTime}, listCol{&t.AMR}, &t.ACR, timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt},
		nullTimeCol{&t.UsedAt}, nullTimeCol{&t.RevokedAt})
	return t, err
}

func insertRefreshToken(ctx context.Context, q execer, t store.RefreshToken) error {
	_, err := q.ExecContext(ctx, `INSERT INTO refresh_tokens (`+refreshTokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, `+grantRevokedAt+`)`,
		t.TokenHash, t.GrantID, t.ClientID, t.UserID, list(t.Scopes), list(t.Audience), micros(t.AuthTime),
		list(t.AMR), t.ACR, micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.UsedAt),
		nullMicros(t.RevokedAt), t.GrantID)
	return classify(err)
}

// CreateRefreshToken implements store.Storage. In a revoked grant the token is stored revoked.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if err := insertRefreshToken(ctx, s.db, t); err != nil {
		return fmt.Errorf("sqlite: create refresh token: %w", err)
	}
	return nil
}

// GetRefreshToken implements store.Storage.
func (s *Store) GetRefreshToken(ctx context.Context, tokenHash string) (store.RefreshToken, error) {
	t, err := scanRefreshToken(s.db.QueryRowContext(ctx, `SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE token_hash = ?`, tokenHash))
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("sqlite: get refresh token: %w", noRows(err))
	}
	return t, nil
}

// RotateRefreshToken implements store.Storage. In one transaction the conditional UPDATE
// (used_at IS NULL) marks the old token used, then next, which must be in the same grant, is
// inserted; if either step fails nothing is written. It returns the old token as stored
// afterwards.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next store.RefreshToken, at time.Time) (store.RefreshToken, error) {
	var old store.RefreshToken
	errUsed := errors.New("used")
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`, micros(at), oldHash)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		old, err = scanRefreshToken(tx.QueryRowContext(ctx, `SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE token_hash = ?`, oldHash))
		if err != nil {
			return noRows(err)
		}
		if n == 0 {
			return errUsed // roll back: nothing to undo, but nothing to commit either
		}
		if next.GrantID != old.GrantID {
			return fmt.Errorf("the new token is in grant %q, the old one in %q", next.GrantID, old.GrantID)
		}
		return insertRefreshToken(ctx, tx, next)
	})
	switch {
	case errors.Is(err, errUsed):
		return old, fmt.Errorf("sqlite: rotate refresh token: %w", store.ErrAlreadyUsed)
	case err != nil:
		return store.RefreshToken{}, fmt.Errorf("sqlite: rotate refresh token: %w", err)
	}
	return old, nil
}

// RevokeRefreshToken implements store.Storage. An already revoked token keeps its time.
func (s *Store) RevokeRefreshToken(ctx context.Context, tokenHash string, at time.Time) error {
	err := affected(s.db.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE token_hash = ?`, micros(at), tokenHash))
	if err != nil {
		return fmt.Errorf("sqlite: revoke refresh token: %w", err)
	}
	return nil
}
