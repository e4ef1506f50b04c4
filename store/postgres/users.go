package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/visage-idp/visage/store"
)

const userColumns = `id, username, display_name, email, email_verified, admin, created_at, updated_at`

func scanUser(r row) (store.User, error) {
	var u store.User
	err := r.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Email, &u.EmailVerified, &u.Admin, &u.CreatedAt, &u.UpdatedAt)
	return u, err
}

func insertUser(ctx context.Context, q querier, u store.User) error {
	_, err := q.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.ID, u.Username, u.DisplayName, u.Email, u.EmailVerified, u.Admin, u.CreatedAt, u.UpdatedAt)
	return classify(err)
}

// CreateUser implements store.Storage.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	err := s.do(ctx, func(q querier) error { return insertUser(ctx, q, u) })
	if err != nil {
		return fmt.Errorf("postgres: create user %q: %w", u.ID, err)
	}
	return nil
}

// GetUser implements store.Storage.
func (s *Store) GetUser(ctx context.Context, id string) (store.User, error) {
	var u store.User
	err := s.do(ctx, func(q querier) (err error) {
		u, err = scanUser(q.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
		return noRows(err)
	})
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: get user %q: %w", id, err)
	}
	return u, nil
}

// GetUserByUsername implements store.Storage.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (store.User, error) {
	var u store.User
	err := s.do(ctx, func(q querier) (err error) {
		u, err = scanUser(q.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1`, username))
		return noRows(err)
	})
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: get user by username %q: %w", username, err)
	}
	return u, nil
}

// ListUsers implements store.Storage; users come ordered by username (bytewise).
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	var users []store.User
	err := s.do(ctx, func(q querier) (err error) {
		rows, err := q.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
		users, err = collect(rows, err, scanUser)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	return users, nil
}

// UpdateUser implements store.Storage: every field but the ID is replaced.
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `UPDATE users SET username = $2, display_name = $3, email = $4,
			email_verified = $5, admin = $6, created_at = $7, updated_at = $8 WHERE id = $1`,
			u.ID, u.Username, u.DisplayName, u.Email, u.EmailVerified, u.Admin, u.CreatedAt, u.UpdatedAt))
	})
	if err != nil {
		return fmt.Errorf("postgres: update user %q: %w", u.ID, err)
	}
	return nil
}

// DeleteUser implements store.Storage. In one transaction it removes the user, its template,
// sessions, grants, every access and refresh token of the user or of those grants, consents,
// attempts, devices, and the authorization requests the user signed in to with their codes.
// The audit log stays.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(q querier) error {
		if err := affected(q.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)); err != nil {
			return err
		}
		for _, stmt := range []string{
			// Grants before their tokens, the lock order of RevokeGrant and RotateRefreshToken.
			`SELECT id FROM grants WHERE user_id = $1 FOR UPDATE`,
			`DELETE FROM templates WHERE user_id = $1`, // also ON DELETE CASCADE
			`DELETE FROM sessions WHERE user_id = $1`,
			`DELETE FROM access_tokens WHERE user_id = $1 OR grant_id IN (SELECT id FROM grants WHERE user_id = $1)`,
			`DELETE FROM refresh_tokens WHERE user_id = $1 OR grant_id IN (SELECT id FROM grants WHERE user_id = $1)`,
			`DELETE FROM grants WHERE user_id = $1`,
			`DELETE FROM consents WHERE user_id = $1`,
			`DELETE FROM attempts WHERE user_id = $1`,
			`DELETE FROM devices WHERE user_id = $1`,
			`DELETE FROM auth_codes WHERE auth_request_id IN (SELECT id FROM auth_requests WHERE user_id = $1)`,
			`DELETE FROM auth_requests WHERE user_id = $1`,
		} {
			if _, err := q.Exec(ctx, stmt, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: delete user %q: %w", id, err)
	}
	return nil
}

const insertTemplate = `INSERT INTO templates (user_id, key_id, model_version, sealed, created_at) VALUES ($1, $2, $3, $4, $5)`

// CreateUserWithTemplate implements store.Storage: both rows are written in one transaction.
func (s *Store) CreateUserWithTemplate(ctx context.Context, u store.User, t store.Template) error {
	if t.UserID != u.ID {
		return fmt.Errorf("postgres: create user %q with template: the template is for user %q", u.ID, t.UserID)
	}
	err := s.inTx(ctx, func(q querier) error {
		if err := insertUser(ctx, q, u); err != nil {
			return err
		}
		_, err := q.Exec(ctx, insertTemplate, t.UserID, t.KeyID, t.ModelVersion, t.Sealed, t.CreatedAt)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create user %q with template: %w", u.ID, err)
	}
	return nil
}

// PutTemplate implements store.Storage; the user must exist.
func (s *Store) PutTemplate(ctx context.Context, t store.Template) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, insertTemplate+` ON CONFLICT (user_id) DO UPDATE SET key_id = excluded.key_id,
			model_version = excluded.model_version, sealed = excluded.sealed, created_at = excluded.created_at`,
			t.UserID, t.KeyID, t.ModelVersion, t.Sealed, t.CreatedAt)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: put template of user %q: %w", t.UserID, err)
	}
	return nil
}

// GetTemplate implements store.Storage.
func (s *Store) GetTemplate(ctx context.Context, userID string) (store.Template, error) {
	var t store.Template
	err := s.do(ctx, func(q querier) error {
		return noRows(q.QueryRow(ctx, `SELECT user_id, key_id, model_version, sealed, created_at FROM templates
			WHERE user_id = $1`, userID).Scan(&t.UserID, &t.KeyID, &t.ModelVersion, &t.Sealed, &t.CreatedAt))
	})
	if err != nil {
		return store.Template{}, fmt.Errorf("postgres: get template of user %q: %w", userID, err)
	}
	return t, nil
}

// DeleteTemplate implements store.Storage.
func (s *Store) DeleteTemplate(ctx context.Context, userID string) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `DELETE FROM templates WHERE user_id = $1`, userID))
	})
	if err != nil {
		return fmt.Errorf("postgres: delete template of user %q: %w", userID, err)
	}
	return nil
}

const clientColumns = `id, secret_hash, name, redirect_uris, post_logout_redirect_uris, public, auth_method, jwks,
	first_party, id_token_signing_alg, claims_in_id_token, access_token_ttl, refresh_token_ttl, created_at,
	web_origins, jwks_uri, resource_server_for, backchannel_logout_uri`

func scanClient(r row) (store.Client, error) {
	var c store.Client
	var accessTTL, refreshTTL int64
	err := r.Scan(&c.ID, &c.SecretHash, &c.Name, &c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.Public,
		&c.AuthMethod, &c.JWKS, &c.FirstParty, &c.IDTokenSigningAlg, &c.ClaimsInIDToken, &accessTTL, &refreshTTL,
		&c.CreatedAt, &c.WebOrigins, &c.JWKSURI, &c.ResourceServerFor, &c.BackchannelLogoutURI)
	c.AccessTokenTTL, c.RefreshTokenTTL = time.Duration(accessTTL), time.Duration(refreshTTL)
	unlist(&c.RedirectURIs, &c.PostLogoutRedirectURIs, &c.WebOrigins, &c.ResourceServerFor)
	return c, err
}

// CreateClient implements store.Storage.
func (s *Store) CreateClient(ctx context.Context, c store.Client) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO clients (`+clientColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
			c.ID, c.SecretHash, c.Name, list(c.RedirectURIs), list(c.PostLogoutRedirectURIs), c.Public, c.AuthMethod,
			c.JWKS, c.FirstParty, c.IDTokenSigningAlg, c.ClaimsInIDToken, int64(c.AccessTokenTTL),
			int64(c.RefreshTokenTTL), c.CreatedAt, list(c.WebOrigins), c.JWKSURI, list(c.ResourceServerFor), c.BackchannelLogoutURI)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create client %q: %w", c.ID, err)
	}
	return nil
}

// GetClient implements store.Storage.
func (s *Store) GetClient(ctx context.Context, id string) (store.Client, error) {
	var c store.Client
	err := s.do(ctx, func(q querier) (err error) {
		c, err = scanClient(q.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
		return noRows(err)
	})
	if err != nil {
		return store.Client{}, fmt.Errorf("postgres: get client %q: %w", id, err)
	}
	return c, nil
}

// ListClients implements store.Storage; clients come ordered by ID (bytewise).
func (s *Store) ListClients(ctx context.Context) ([]store.Client, error) {
	var clients []store.Client
	err := s.do(ctx, func(q querier) (err error) {
		rows, err := q.Query(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY id`)
		clients, err = collect(rows, err, scanClient)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list clients: %w", err)
	}
	return clients, nil
}

// UpdateClient implements store.Storage: every field but the ID is replaced.
func (s *Store) UpdateClient(ctx context.Context, c store.Client) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `UPDATE clients SET secret_hash = $2, name = $3, redirect_uris = $4,
			post_logout_redirect_uris = $5, public = $6, auth_method = $7, jwks = $8, first_party = $9,
			id_token_signing_alg = $10, claims_in_id_token = $11, access_token_ttl = $12, refresh_token_ttl = $13,
			created_at = $14, web_origins = $15, jwks_uri = $16, resource_server_for = $17, backchannel_logout_uri = $18 WHERE id = $1`,
			c.ID, c.SecretHash, c.Name, list(c.RedirectURIs), list(c.PostLogoutRedirectURIs), c.Public, c.AuthMethod,
			c.JWKS, c.FirstParty, c.IDTokenSigningAlg, c.ClaimsInIDToken, int64(c.AccessTokenTTL),
			int64(c.RefreshTokenTTL), c.CreatedAt, list(c.WebOrigins), c.JWKSURI, list(c.ResourceServerFor), c.BackchannelLogoutURI))
	})
	if err != nil {
		return fmt.Errorf("postgres: update client %q: %w", c.ID, err)
	}
	return nil
}

// DeleteClient implements store.Storage. Grants, tokens and consents of the client stay until
// they expire or are revoked; callers revoke them first if they must.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id))
	})
	if err != nil {
		return fmt.Errorf("postgres: delete client %q: %w", id, err)
	}
	return nil
}
