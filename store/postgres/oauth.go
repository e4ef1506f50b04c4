package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/visage-idp/visage/store"
)

const authRequestColumns = `id, client_id, redirect_uri, state, nonce, scopes, response_type, response_mode,
	code_challenge, code_challenge_method, prompt, max_age, login_hint, acr_values, ui_locales, created_at,
	expires_at, user_id, session_id, auth_time, amr, acr, done`

func scanAuthRequest(r row) (store.AuthRequest, error) {
	var a store.AuthRequest
	var maxAge *int64
	err := r.Scan(&a.ID, &a.ClientID, &a.RedirectURI, &a.State, &a.Nonce, &a.Scopes, &a.ResponseType,
		&a.ResponseMode, &a.CodeChallenge, &a.CodeChallengeMethod, &a.Prompt, &maxAge, &a.LoginHint,
		&a.ACRValues, &a.UILocales, &a.CreatedAt, &a.ExpiresAt, &a.UserID, &a.SessionID, &a.AuthTime, &a.AMR,
		&a.ACR, &a.Done)
	if maxAge != nil {
		d := time.Duration(*maxAge)
		a.MaxAge = &d
	}
	unlist(&a.Scopes, &a.Prompt, &a.ACRValues, &a.UILocales, &a.AMR)
	return a, err
}

func authRequestArgs(a store.AuthRequest) []any {
	return []any{a.ID, a.ClientID, a.RedirectURI, a.State, a.Nonce, list(a.Scopes), a.ResponseType, a.ResponseMode,
		a.CodeChallenge, a.CodeChallengeMethod, list(a.Prompt), nullDuration(a.MaxAge), a.LoginHint,
		list(a.ACRValues), list(a.UILocales), a.CreatedAt, a.ExpiresAt, a.UserID, a.SessionID, a.AuthTime,
		list(a.AMR), a.ACR, a.Done}
}

// CreateAuthRequest implements store.Storage.
func (s *Store) CreateAuthRequest(ctx context.Context, a store.AuthRequest) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO auth_requests (`+authRequestColumns+`) VALUES ($1, $2, $3, $4, $5, $6,
			$7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`, authRequestArgs(a)...)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create auth request %q: %w", a.ID, err)
	}
	return nil
}

// GetAuthRequest implements store.Storage.
func (s *Store) GetAuthRequest(ctx context.Context, id string) (store.AuthRequest, error) {
	var a store.AuthRequest
	err := s.do(ctx, func(q querier) (err error) {
		a, err = scanAuthRequest(q.QueryRow(ctx, `SELECT `+authRequestColumns+` FROM auth_requests WHERE id = $1`, id))
		return noRows(err)
	})
	if err != nil {
		return store.AuthRequest{}, fmt.Errorf("postgres: get auth request %q: %w", id, err)
	}
	return a, nil
}

// UpdateAuthRequest implements store.Storage: every field but the ID is replaced.
func (s *Store) UpdateAuthRequest(ctx context.Context, a store.AuthRequest) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `UPDATE auth_requests SET client_id = $2, redirect_uri = $3, state = $4,
			nonce = $5, scopes = $6, response_type = $7, response_mode = $8, code_challenge = $9,
			code_challenge_method = $10, prompt = $11, max_age = $12, login_hint = $13, acr_values = $14,
			ui_locales = $15, created_at = $16, expires_at = $17, user_id = $18, session_id = $19, auth_time = $20,
			amr = $21, acr = $22, done = $23 WHERE id = $1`, authRequestArgs(a)...))
	})
	if err != nil {
		return fmt.Errorf("postgres: update auth request %q: %w", a.ID, err)
	}
	return nil
}

// DeleteAuthRequest implements store.Storage. Its codes stay: a replayed code must still be
// recognised.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `DELETE FROM auth_requests WHERE id = $1`, id))
	})
	if err != nil {
		return fmt.Errorf("postgres: delete auth request %q: %w", id, err)
	}
	return nil
}

const authCodeColumns = `code_hash, auth_request_id, grant_id, expires_at, used_at`

func scanAuthCode(r row) (store.AuthCode, error) {
	var c store.AuthCode
	err := r.Scan(&c.CodeHash, &c.AuthRequestID, &c.GrantID, &c.ExpiresAt, &c.UsedAt)
	return c, err
}

// CreateAuthCode implements store.Storage.
func (s *Store) CreateAuthCode(ctx context.Context, c store.AuthCode) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO auth_codes (`+authCodeColumns+`) VALUES ($1, $2, $3, $4, $5)`,
			c.CodeHash, c.AuthRequestID, c.GrantID, c.ExpiresAt, c.UsedAt)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create auth code: %w", err)
	}
	return nil
}

// GetAuthCode implements store.Storage.
func (s *Store) GetAuthCode(ctx context.Context, codeHash string) (store.AuthCode, error) {
	var c store.AuthCode
	err := s.do(ctx, func(q querier) (err error) {
		c, err = scanAuthCode(q.QueryRow(ctx, `SELECT `+authCodeColumns+` FROM auth_codes WHERE code_hash = $1`, codeHash))
		return noRows(err)
	})
	if err != nil {
		return store.AuthCode{}, fmt.Errorf("postgres: get auth code: %w", err)
	}
	return c, nil
}

// errUsed aborts a transaction that found its single-use row used.
var errUsed = errors.New("used")

// UseAuthCode implements store.Storage. The conditional UPDATE (used_at IS NULL) decides who
// wins: a concurrent use waits for the winner's row lock, then finds used_at set.
func (s *Store) UseAuthCode(ctx context.Context, codeHash, grantID string, at time.Time) (store.AuthCode, error) {
	var c store.AuthCode
	err := s.inTx(ctx, func(q querier) (err error) {
		c, err = scanAuthCode(q.QueryRow(ctx, `UPDATE auth_codes SET used_at = $2, grant_id = $3
			WHERE code_hash = $1 AND used_at IS NULL RETURNING `+authCodeColumns, codeHash, at, grantID))
		if err == nil || !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		c, err = scanAuthCode(q.QueryRow(ctx, `SELECT `+authCodeColumns+` FROM auth_codes WHERE code_hash = $1`, codeHash))
		if err != nil {
			return noRows(err)
		}
		return errUsed
	})
	switch {
	case errors.Is(err, errUsed):
		return c, fmt.Errorf("postgres: use auth code: %w", store.ErrAlreadyUsed)
	case err != nil:
		return store.AuthCode{}, fmt.Errorf("postgres: use auth code: %w", err)
	}
	return c, nil
}

const grantColumns = `id, client_id, user_id, session_id, scopes, audience, auth_time, amr, acr, created_at, revoked_at`

// CreateGrant implements store.Storage.
func (s *Store) CreateGrant(ctx context.Context, g store.Grant) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO grants (`+grantColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			g.ID, g.ClientID, g.UserID, g.SessionID, list(g.Scopes), list(g.Audience), g.AuthTime, list(g.AMR), g.ACR,
			g.CreatedAt, g.RevokedAt)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create grant %q: %w", g.ID, err)
	}
	return nil
}

// GetGrant implements store.Storage.
func (s *Store) GetGrant(ctx context.Context, id string) (store.Grant, error) {
	var g store.Grant
	err := s.do(ctx, func(q querier) error {
		return noRows(q.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = $1`, id).
			Scan(&g.ID, &g.ClientID, &g.UserID, &g.SessionID, &g.Scopes, &g.Audience, &g.AuthTime, &g.AMR, &g.ACR,
				&g.CreatedAt, &g.RevokedAt))
	})
	if err != nil {
		return store.Grant{}, fmt.Errorf("postgres: get grant %q: %w", id, err)
	}
	unlist(&g.Scopes, &g.Audience, &g.AMR)
	return g, nil
}

// ListSessionGrants implements store.Storage.
func (s *Store) ListSessionGrants(ctx context.Context, sessionID string) ([]store.Grant, error) {
	var out []store.Grant
	err := s.do(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT `+grantColumns+` FROM grants WHERE session_id = $1 ORDER BY created_at, id`, sessionID)
		out, err = collect(rows, err, func(r row) (store.Grant, error) {
			var g store.Grant
			err := r.Scan(&g.ID, &g.ClientID, &g.UserID, &g.SessionID, &g.Scopes, &g.Audience, &g.AuthTime, &g.AMR, &g.ACR,
				&g.CreatedAt, &g.RevokedAt)
			unlist(&g.Scopes, &g.Audience, &g.AMR)
			return g, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list session grants: %w", err)
	}
	return out, nil
}

// RevokeGrant implements store.Storage. The grant's row is updated (and so locked) first:
// token inserts that lock it FOR SHARE either finish before, and are revoked below, or wait and
// then see the revocation. Already revoked records keep their revocation time.
func (s *Store) RevokeGrant(ctx context.Context, id string, at time.Time) error {
	err := s.inTx(ctx, func(q querier) error {
		if err := affected(q.Exec(ctx, `UPDATE grants SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1`, id, at)); err != nil {
			return err
		}
		for _, stmt := range []string{
			`UPDATE access_tokens SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL`,
			`UPDATE refresh_tokens SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL`,
		} {
			if _, err := q.Exec(ctx, stmt, id, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke grant %q: %w", id, err)
	}
	return nil
}

// grantRevokedAt is the expression a new token's revoked_at takes, given the placeholders of
// its own revoked_at and its grant ID: its own if set, else its grant's, read under a share
// lock on the grant's row (see RevokeGrant).
func grantRevokedAt(own, grant string) string {
	return `coalesce(` + own + `, (SELECT revoked_at FROM grants WHERE id = ` + grant + ` FOR SHARE))`
}

const accessTokenColumns = `id, grant_id, client_id, user_id, scopes, audience, created_at, expires_at, revoked_at`

// CreateAccessToken implements store.Storage. In a revoked grant the token is stored revoked.
func (s *Store) CreateAccessToken(ctx context.Context, t store.AccessToken) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO access_tokens (`+accessTokenColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, `+grantRevokedAt("$9::timestamptz", "$2")+`)`,
			t.ID, t.GrantID, t.ClientID, t.UserID, list(t.Scopes), list(t.Audience), t.CreatedAt, t.ExpiresAt, t.RevokedAt)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create access token %q: %w", t.ID, err)
	}
	return nil
}

// GetAccessToken implements store.Storage.
func (s *Store) GetAccessToken(ctx context.Context, id string) (store.AccessToken, error) {
	var t store.AccessToken
	err := s.do(ctx, func(q querier) error {
		return noRows(q.QueryRow(ctx, `SELECT `+accessTokenColumns+` FROM access_tokens WHERE id = $1`, id).
			Scan(&t.ID, &t.GrantID, &t.ClientID, &t.UserID, &t.Scopes, &t.Audience, &t.CreatedAt, &t.ExpiresAt, &t.RevokedAt))
	})
	if err != nil {
		return store.AccessToken{}, fmt.Errorf("postgres: get access token %q: %w", id, err)
	}
	unlist(&t.Scopes, &t.Audience)
	return t, nil
}

// RevokeAccessToken implements store.Storage. An already revoked token keeps its time.
func (s *Store) RevokeAccessToken(ctx context.Context, id string, at time.Time) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `UPDATE access_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1`, id, at))
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke access token %q: %w", id, err)
	}
	return nil
}

const refreshTokenColumns = `token_hash, grant_id, client_id, user_id, scopes, audience, auth_time, amr, acr,
	created_at, expires_at, used_at, revoked_at`

func scanRefreshToken(r row) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := r.Scan(&t.TokenHash, &t.GrantID, &t.ClientID, &t.UserID, &t.Scopes, &t.Audience, &t.AuthTime, &t.AMR,
		&t.ACR, &t.CreatedAt, &t.ExpiresAt, &t.UsedAt, &t.RevokedAt)
	unlist(&t.Scopes, &t.Audience, &t.AMR)
	return t, err
}

func insertRefreshToken(ctx context.Context, q querier, t store.RefreshToken) error {
	_, err := q.Exec(ctx, `INSERT INTO refresh_tokens (`+refreshTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, `+grantRevokedAt("$13::timestamptz", "$2")+`)`,
		t.TokenHash, t.GrantID, t.ClientID, t.UserID, list(t.Scopes), list(t.Audience), t.AuthTime, list(t.AMR),
		t.ACR, t.CreatedAt, t.ExpiresAt, t.UsedAt, t.RevokedAt)
	return classify(err)
}

// CreateRefreshToken implements store.Storage. In a revoked grant the token is stored revoked.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	if err := s.do(ctx, func(q querier) error { return insertRefreshToken(ctx, q, t) }); err != nil {
		return fmt.Errorf("postgres: create refresh token: %w", err)
	}
	return nil
}

// GetRefreshToken implements store.Storage.
func (s *Store) GetRefreshToken(ctx context.Context, tokenHash string) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := s.do(ctx, func(q querier) (err error) {
		t, err = scanRefreshToken(q.QueryRow(ctx, `SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE token_hash = $1`, tokenHash))
		return noRows(err)
	})
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("postgres: get refresh token: %w", err)
	}
	return t, nil
}

// RotateRefreshToken implements store.Storage. In one transaction the conditional UPDATE
// (used_at IS NULL) marks the old token used, then next, which must be in the same grant, is
// inserted; if either step fails the transaction rolls back. It returns the old token as
// stored afterwards.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next store.RefreshToken, at time.Time) (store.RefreshToken, error) {
	var old store.RefreshToken
	err := s.inTx(ctx, func(q querier) (err error) {
		// Lock the grant first, as RevokeGrant does, so the two cannot deadlock; the insert
		// below then reads its revocation state under this lock.
		if _, err := q.Exec(ctx, `SELECT 1 FROM grants WHERE id = $1 FOR SHARE`, next.GrantID); err != nil {
			return err
		}
		old, err = scanRefreshToken(q.QueryRow(ctx, `UPDATE refresh_tokens SET used_at = $2
			WHERE token_hash = $1 AND used_at IS NULL RETURNING `+refreshTokenColumns, oldHash, at))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			old, err = scanRefreshToken(q.QueryRow(ctx, `SELECT `+refreshTokenColumns+` FROM refresh_tokens WHERE token_hash = $1`, oldHash))
			if err != nil {
				return noRows(err)
			}
			return errUsed
		case err != nil:
			return err
		}
		if next.GrantID != old.GrantID {
			return fmt.Errorf("the new token is in grant %q, the old one in %q", next.GrantID, old.GrantID)
		}
		return insertRefreshToken(ctx, q, next)
	})
	switch {
	case errors.Is(err, errUsed):
		return old, fmt.Errorf("postgres: rotate refresh token: %w", store.ErrAlreadyUsed)
	case err != nil:
		return store.RefreshToken{}, fmt.Errorf("postgres: rotate refresh token: %w", err)
	}
	return old, nil
}

// RevokeRefreshToken implements store.Storage. An already revoked token keeps its time.
func (s *Store) RevokeRefreshToken(ctx context.Context, tokenHash string, at time.Time) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE token_hash = $1`, tokenHash, at))
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke refresh token: %w", err)
	}
	return nil
}
