package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/visage-idp/visage/store"
)

const userColumns = `id, username, display_name, email, email_verified, admin, created_at, updated_at`

func scanUser(r row) (store.User, error) {
	var u store.User
	err := r.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Email, &u.EmailVerified, &u.Admin,
		timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt})
	return u, err
}

func insertUser(ctx context.Context, q execer, u store.User) error {
	_, err := q.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.DisplayName, u.Email, u.EmailVerified, u.Admin, micros(u.CreatedAt), micros(u.UpdatedAt))
	return classify(err)
}

// CreateUser implements store.Storage.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := insertUser(ctx, s.db, u); err != nil {
		return fmt.Errorf("sqlite: create user %q: %w", u.ID, err)
	}
	return nil
}

// GetUser implements store.Storage.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: get user %q: %w", id, noRows(err))
	}
	return u, nil
}

// GetUserByUsername implements store.Storage.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (store.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: get user by username %q: %w", username, noRows(err))
	}
	return u, nil
}

// ListUsers implements store.Storage; users come ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	defer rows.Close()
	var users []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	return users, nil
}

// UpdateUser implements store.Storage: every field but the ID is replaced.
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	err := affected(s.db.ExecContext(ctx, `UPDATE users SET username = ?, display_name = ?, email = ?,
		email_verified = ?, admin = ?, created_at = ?, updated_at = ? WHERE id = ?`,
		u.Username, u.DisplayName, u.Email, u.EmailVerified, u.Admin, micros(u.CreatedAt), micros(u.UpdatedAt), u.ID))
	if err != nil {
		return fmt.Errorf("sqlite: update user %q: %w", u.ID, err)
	}
	return nil
}

// DeleteUser implements store.Storage. In one transaction it removes the user, its template,
// sessions, grants, every access and refresh token of the user or of those grants, consents,
// attempts, and the authorization requests the user signed in to with their codes.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := affected(tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM templates WHERE user_id = ?`, // also ON DELETE CASCADE
			`DELETE FROM sessions WHERE user_id = ?`,
			`DELETE FROM access_tokens WHERE user_id = ?1 OR grant_id IN (SELECT id FROM grants WHERE user_id = ?1)`,
			`DELETE FROM refresh_tokens WHERE user_id = ?1 OR grant_id IN (SELECT id FROM grants WHERE user_id = ?1)`,
			`DELETE FROM grants WHERE user_id = ?`,
			`DELETE FROM consents WHERE user_id = ?`,
			`DELETE FROM attempts WHERE user_id = ?`,
			`DELETE FROM auth_codes WHERE auth_request_id IN (SELECT id FROM auth_requests WHERE user_id = ?)`,
			`DELETE FROM auth_requests WHERE user_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete user %q: %w", id, err)
	}
	return nil
}

// CreateUserWithTemplate implements store.Storage: both rows are written in one transaction.
func (s *Store) CreateUserWithTemplate(ctx context.Context, u store.User, t store.Template) error {
	if t.UserID != u.ID {
		return fmt.Errorf("sqlite: create user %q with template: the template is for user %q", u.ID, t.UserID)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := insertUser(ctx, tx, u); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO templates (user_id, key_id, model_version, sealed, created_at)
			VALUES (?, ?, ?, ?, ?)`, t.UserID, t.KeyID, t.ModelVersion, t.Sealed, micros(t.CreatedAt))
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create user %q with template: %w", u.ID, err)
	}
	return nil
}

// PutTemplate implements store.Storage; the user must exist.
func (s *Store) PutTemplate(ctx context.Context, t store.Template) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO templates (user_id, key_id, model_version, sealed, created_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET key_id = excluded.key_id, model_version = excluded.model_version,
			sealed = excluded.sealed, created_at = excluded.created_at`,
		t.UserID, t.KeyID, t.ModelVersion, t.Sealed, micros(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: put template of user %q: %w", t.UserID, classify(err))
	}
	return nil
}

// GetTemplate implements store.Storage.
func (s *Store) GetTemplate(ctx context.Context, userID string) (store.Template, error) {
	var t store.Template
	err := s.db.QueryRowContext(ctx, `SELECT user_id, key_id, model_version, sealed, created_at
		FROM templates WHERE user_id = ?`, userID).
		Scan(&t.UserID, &t.KeyID, &t.ModelVersion, &t.Sealed, timeCol{&t.CreatedAt})
	if err != nil {
		return store.Template{}, fmt.Errorf("sqlite: get template of user %q: %w", userID, noRows(err))
	}
	return t, nil
}

// DeleteTemplate implements store.Storage.
func (s *Store) DeleteTemplate(ctx context.Context, userID string) error {
	if err := affected(s.db.ExecContext(ctx, `DELETE FROM templates WHERE user_id = ?`, userID)); err != nil {
		return fmt.Errorf("sqlite: delete template of user %q: %w", userID, err)
	}
	return nil
}

const clientColumns = `id, secret_hash, name, redirect_uris, post_logout_redirect_uris, public, auth_method, jwks,
	first_party, id_token_signing_alg, claims_in_id_token, access_token_ttl, refresh_token_ttl, created_at,
	web_origins, jwks_uri, resource_server_for, backchannel_logout_uri`

func scanClient(r row) (store.Client, error) {
	var c store.Client
	err := r.Scan(&c.ID, &c.SecretHash, &c.Name, listCol{&c.RedirectURIs}, listCol{&c.PostLogoutRedirectURIs},
		&c.Public, &c.AuthMethod, &c.JWKS, &c.FirstParty, &c.IDTokenSigningAlg, &c.ClaimsInIDToken,
		durationCol{&c.AccessTokenTTL}, durationCol{&c.RefreshTokenTTL}, timeCol{&c.CreatedAt},
		listCol{&c.WebOrigins}, &c.JWKSURI, listCol{&c.ResourceServerFor}, &c.BackchannelLogoutURI)
	return c, err
}

// CreateClient implements store.Storage.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO clients (`+clientColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.SecretHash, c.Name, list(c.RedirectURIs), list(c.PostLogoutRedirectURIs), c.Public, c.AuthMethod,
		c.JWKS, c.FirstParty, c.IDTokenSigningAlg, c.ClaimsInIDToken, int64(c.AccessTokenTTL), int64(c.RefreshTokenTTL),
		micros(c.CreatedAt), list(c.WebOrigins), c.JWKSURI, list(c.ResourceServerFor), c.BackchannelLogoutURI)
	if err != nil {
		return fmt.Errorf("sqlite: create client %q: %w", c.ID, classify(err))
	}
	return nil
}

// GetClient implements store.Storage.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	c, err := scanClient(s.db.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if err != nil {
		return store.Client{}, fmt.Errorf("sqlite: get client %q: %w", id, noRows(err))
	}
	return c, nil
}

// ListClients implements store.Storage; clients come ordered by ID.
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list clients: %w", err)
	}
	defer rows.Close()
	var clients []store.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list clients: %w", err)
		}
		clients = append(clients, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list clients: %w", err)
	}
	return clients, nil
}

// UpdateClient implements store.Storage: every field but the ID is replaced.
func (s *Store) UpdateClient(ctx context.Context, c store.Client) error {
	err := affected(s.db.ExecContext(ctx, `UPDATE clients SET secret_hash = ?, name = ?, redirect_uris = ?,
		post_logout_redirect_uris = ?, public = ?, auth_method = ?, jwks = ?, first_party = ?,
		id_token_signing_alg = ?, claims_in_id_token = ?, access_token_ttl = ?, refresh_token_ttl = ?, created_at = ?,
		web_origins = ?, jwks_uri = ?, resource_server_for = ?, backchannel_logout_uri = ?
		WHERE id = ?`,
		c.SecretHash, c.Name, list(c.RedirectURIs), list(c.PostLogoutRedirectURIs), c.Public, c.AuthMethod, c.JWKS,
		c.FirstParty, c.IDTokenSigningAlg, c.ClaimsInIDToken, int64(c.AccessTokenTTL), int64(c.RefreshTokenTTL),
		micros(c.CreatedAt), list(c.WebOrigins), c.JWKSURI, list(c.ResourceServerFor), c.BackchannelLogoutURI, c.ID))
	if err != nil {
		return fmt.Errorf("sqlite: update client %q: %w", c.ID, err)
	}
	return nil
}

// DeleteClient implements store.Storage. Grants, tokens and consents of the client stay until
// they expire or are revoked; callers revoke them first if they must.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if err := affected(s.db.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, id)); err != nil {
		return fmt.Errorf("sqlite: delete client %q: %w", id, err)
	}
	return nil
}
