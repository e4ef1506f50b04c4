package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/visage-idp/visage/store"
)

const sessionColumns = `id, user_id, auth_time, amr, acr, created_at, expires_at, revoked_at`

// CreateSession implements store.Storage.
func (s *Store) CreateSession(ctx context.Context, x store.Session) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			x.ID, x.UserID, x.AuthTime, list(x.AMR), x.ACR, x.CreatedAt, x.ExpiresAt, x.RevokedAt)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create session %q: %w", x.ID, err)
	}
	return nil
}

// GetSession implements store.Storage.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	var x store.Session
	err := s.do(ctx, func(q querier) error {
		return noRows(q.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id).
			Scan(&x.ID, &x.UserID, &x.AuthTime, &x.AMR, &x.ACR, &x.CreatedAt, &x.ExpiresAt, &x.RevokedAt))
	})
	if err != nil {
		return store.Session{}, fmt.Errorf("postgres: get session %q: %w", id, err)
	}
	unlist(&x.AMR)
	return x, nil
}

// RevokeSession implements store.Storage. An already revoked session keeps its time.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `UPDATE sessions SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1`, id, at))
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke session %q: %w", id, err)
	}
	return nil
}

// RevokeUserSessions implements store.Storage; it counts the sessions it newly revoked.
func (s *Store) RevokeUserSessions(ctx context.Context, userID string, at time.Time) (int, error) {
	var n int64
	err := s.do(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, userID, at)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: revoke sessions of user %q: %w", userID, err)
	}
	return int(n), nil
}

// PutConsent implements store.Storage; it replaces the user's consent for the client.
func (s *Store) PutConsent(ctx context.Context, c store.Consent) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
			c.UserID, c.ClientID, list(c.Scopes), c.GrantedAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: put consent of user %q for client %q: %w", c.UserID, c.ClientID, err)
	}
	return nil
}

// GetConsent implements store.Storage.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (store.Consent, error) {
	var c store.Consent
	err := s.do(ctx, func(q querier) error {
		return noRows(q.QueryRow(ctx, `SELECT user_id, client_id, scopes, granted_at FROM consents
			WHERE user_id = $1 AND client_id = $2`, userID, clientID).Scan(&c.UserID, &c.ClientID, &c.Scopes, &c.GrantedAt))
	})
	if err != nil {
		return store.Consent{}, fmt.Errorf("postgres: get consent of user %q for client %q: %w", userID, clientID, err)
	}
	unlist(&c.Scopes)
	return c, nil
}

// CreateSigningKey implements store.Storage.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO signing_keys (id, algorithm, private, created_at, retired_at, publish_until)
			VALUES ($1, $2, $3, $4, $5, $6)`, k.ID, k.Algorithm, k.Private, k.CreatedAt, k.RetiredAt, k.PublishUntil)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create signing key %q: %w", k.ID, err)
	}
	return nil
}

// ListSigningKeys implements store.Storage; keys come ordered by creation time, then ID.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	var keys []store.SigningKey
	err := s.do(ctx, func(q querier) (err error) {
		rows, err := q.Query(ctx, `SELECT id, algorithm, private, created_at, retired_at, publish_until
			FROM signing_keys ORDER BY created_at, id`)
		keys, err = collect(rows, err, func(r row) (k store.SigningKey, err error) {
			err = r.Scan(&k.ID, &k.Algorithm, &k.Private, &k.CreatedAt, &k.RetiredAt, &k.PublishUntil)
			return k, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list signing keys: %w", err)
	}
	return keys, nil
}

// RetireSigningKey implements store.Storage.
func (s *Store) RetireSigningKey(ctx context.Context, id string, retiredAt, publishUntil time.Time) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `UPDATE signing_keys SET retired_at = $2, publish_until = $3 WHERE id = $1`, id, retiredAt, publishUntil))
	})
	if err != nil {
		return fmt.Errorf("postgres: retire signing key %q: %w", id, err)
	}
	return nil
}

// DeleteSigningKey implements store.Storage.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `DELETE FROM signing_keys WHERE id = $1`, id))
	})
	if err != nil {
		return fmt.Errorf("postgres: delete signing key %q: %w", id, err)
	}
	return nil
}

// RecordAttempt implements store.Storage.
func (s *Store) RecordAttempt(ctx context.Context, a store.Attempt) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO attempts (user_id, ip, device_id, success, at) VALUES ($1, $2, $3, $4, $5)`, a.UserID, a.IP, a.DeviceID, a.Success, a.At)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: record attempt of user %q: %w", a.UserID, err)
	}
	return nil
}

// CountFailures implements store.Storage: failures at or after since with no success of the
// user at or after them.
func (s *Store) CountFailures(ctx context.Context, userID string, since time.Time) (int, error) {
	var n int
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, `SELECT COUNT(*) FROM attempts AS f
			WHERE f.user_id = $1 AND NOT f.success AND f.at >= $2
			AND NOT EXISTS (SELECT 1 FROM attempts AS s WHERE s.user_id = $1 AND s.success AND s.at >= f.at)`,
			userID, since).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: count failures of user %q: %w", userID, err)
	}
	return n, nil
}

// GarbageCollect implements store.Storage, in one transaction: what expired before now, and
// what is older than its retention (a zero retention keeps it).
func (s *Store) GarbageCollect(ctx context.Context, now time.Time, keep store.Retention) (int64, error) {
	type sweep struct {
		query  string
		before time.Time
		skip   bool
	}
	var sweeps []sweep
	for _, q := range []string{
		`DELETE FROM auth_requests WHERE expires_at < $1`,
		`DELETE FROM auth_codes WHERE expires_at < $1`,
		`DELETE FROM access_tokens WHERE expires_at < $1`,
		`DELETE FROM refresh_tokens WHERE expires_at < $1`,
		`DELETE FROM sessions WHERE expires_at < $1`,
		`DELETE FROM signing_keys WHERE publish_until < $1`,
		`DELETE FROM client_assertions WHERE expires_at < $1`,
	} {
		sweeps = append(sweeps, sweep{query: q, before: now})
	}
	for _, r := range []struct {
		query string
		keep  time.Duration
	}{
		{`DELETE FROM attempts WHERE at < $1`, keep.Attempts},
		{`DELETE FROM audit_events WHERE at < $1`, keep.Audit},
		{`DELETE FROM grants WHERE created_at < $1
			AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = grants.id)
			AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id)
			AND NOT EXISTS (SELECT 1 FROM auth_codes c WHERE c.grant_id = grants.id)`, keep.Grants},
	} {
		sweeps = append(sweeps, sweep{query: r.query, before: now.Add(-r.keep), skip: r.keep <= 0})
	}
	var total int64
	err := s.inTx(ctx, func(q querier) error {
		total = 0
		for _, sw := range sweeps {
			if sw.skip {
				continue
			}
			tag, err := q.Exec(ctx, sw.query, sw.before)
			if err != nil {
				return err
			}
			total += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: garbage collect: %w", err)
	}
	return total, nil
}

// UseClientAssertion implements store.Storage.
func (s *Store) UseClientAssertion(ctx context.Context, clientID, jti string, expiresAt time.Time) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)`,
			clientID, jti, expiresAt)
		return classify(err)
	})
	if errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("postgres: client assertion of %q: %w", clientID, store.ErrAlreadyUsed)
	} else if err != nil {
		return fmt.Errorf("postgres: client assertion of %q: %w", clientID, err)
	}
	return nil
}
