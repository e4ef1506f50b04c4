package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/visage-idp/visage/store"
)

const sessionColumns = `id, user_id, auth_time, amr, acr, created_at, expires_at, revoked_at`

// CreateSession implements store.Storage.
func (s *Store) CreateSession(ctx context.Context, x store.Session) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		x.ID, x.UserID, micros(x.AuthTime), list(x.AMR), x.ACR, micros(x.CreatedAt), micros(x.ExpiresAt), nullMicros(x.RevokedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create session %q: %w", x.ID, classify(err))
	}
	return nil
}

// GetSession implements store.Storage.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	var x store.Session
	err := s.db.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id).
		Scan(&x.ID, &x.UserID, timeCol{&x.AuthTime}, listCol{&x.AMR}, &x.ACR, timeCol{&x.CreatedAt},
			timeCol{&x.ExpiresAt}, nullTimeCol{&x.RevokedAt})
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: get session %q: %w", id, noRows(err))
	}
	return x, nil
}

// RevokeSession implements store.Storage. An already revoked session keeps its time.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time) error {
	err := affected(s.db.ExecContext(ctx, `UPDATE sessions SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?`, micros(at), id))
	if err != nil {
		return fmt.Errorf("sqlite: revoke session %q: %w", id, err)
	}
	return nil
}

// RevokeUserSessions implements store.Storage; it counts the sessions it newly revoked.
func (s *Store) RevokeUserSessions(ctx context.Context, userID string, at time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, micros(at), userID)
	if err != nil {
		return 0, fmt.Errorf("sqlite: revoke sessions of user %q: %w", userID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: revoke sessions of user %q: %w", userID, err)
	}
	return int(n), nil
}

// PutConsent implements store.Storage; it replaces the user's consent for the client.
func (s *Store) PutConsent(ctx context.Context, c store.Consent) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
		c.UserID, c.ClientID, list(c.Scopes), micros(c.GrantedAt))
	if err != nil {
		return fmt.Errorf("sqlite: put consent of user %q for client %q: %w", c.UserID, c.ClientID, err)
	}
	return nil
}

// GetConsent implements store.Storage.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (store.Consent, error) {
	var c store.Consent
	err := s.db.QueryRowContext(ctx, `SELECT user_id, client_id, scopes, granted_at FROM consents
		WHERE user_id = ? AND client_id = ?`, userID, clientID).
		Scan(&c.UserID, &c.ClientID, listCol{&c.Scopes}, timeCol{&c.GrantedAt})
	if err != nil {
		return store.Consent{}, fmt.Errorf("sqlite: get consent of user %q for client %q: %w", userID, clientID, noRows(err))
	}
	return c, nil
}

// CreateSigningKey implements store.Storage.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO signing_keys (id, algorithm, private, created_at, retired_at, publish_until)
		VALUES (?, ?, ?, ?, ?, ?)`,
		k.ID, k.Algorithm, k.Private, micros(k.CreatedAt), nullMicros(k.RetiredAt), nullMicros(k.PublishUntil))
	if err != nil {
		return fmt.Errorf("sqlite: create signing key %q: %w", k.ID, classify(err))
	}
	return nil
}

// ListSigningKeys implements store.Storage; keys come ordered by creation time, then ID.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, algorithm, private, created_at, retired_at, publish_until
		FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list signing keys: %w", err)
	}
	defer rows.Close()
	var keys []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.Private, timeCol{&k.CreatedAt}, nullTimeCol{&k.RetiredAt}, nullTimeCol{&k.PublishUntil}); err != nil {
			return nil, fmt.Errorf("sqlite: list signing keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list signing keys: %w", err)
	}
	return keys, nil
}

// RetireSigningKey implements store.Storage.
func (s *Store) RetireSigningKey(ctx context.Context, id string, retiredAt, publishUntil time.Time) error {
	err := affected(s.db.ExecContext(ctx, `UPDATE signing_keys SET retired_at = ?, publish_until = ? WHERE id = ?`,
		micros(retiredAt), micros(publishUntil), id))
	if err != nil {
		return fmt.Errorf("sqlite: retire signing key %q: %w", id, err)
	}
	return nil
}

// DeleteSigningKey implements store.Storage.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	if err := affected(s.db.ExecContext(ctx, `DELETE FROM signing_keys WHERE id = ?`, id)); err != nil {
		return fmt.Errorf("sqlite: delete signing key %q: %w", id, err)
	}
	return nil
}

// RecordAttempt implements store.Storage.
func (s *Store) RecordAttempt(ctx context.Context, a store.Attempt) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO attempts (user_id, ip, device_id, success, at) VALUES (?, ?, ?, ?, ?)`,
		a.UserID, a.IP, a.DeviceID, a.Success, micros(a.At))
	if err != nil {
		return fmt.Errorf("sqlite: record attempt of user %q: %w", a.UserID, err)
	}
	return nil
}

// CountFailures implements store.Storage: failures at or after since with no success of the
// user at or after them.
func (s *Store) CountFailures(ctx context.Context, userID string, since time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM attempts AS f
		WHERE f.user_id = ?1 AND f.success = 0 AND f.at >= ?2
		AND NOT EXISTS (SELECT 1 FROM attempts AS s WHERE s.user_id = ?1 AND s.success = 1 AND s.at >= f.at)`,
		userID, micros(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count failures of user %q: %w", userID, err)
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
		`DELETE FROM auth_requests WHERE expires_at < ?`,
		`DELETE FROM auth_codes WHERE expires_at < ?`,
		`DELETE FROM access_tokens WHERE expires_at < ?`,
		`DELETE FROM refresh_tokens WHERE expires_at < ?`,
		`DELETE FROM sessions WHERE expires_at < ?`,
		`DELETE FROM signing_keys WHERE publish_until < ?`,
		`DELETE FROM client_assertions WHERE expires_at < ?`,
	} {
		sweeps = append(sweeps, sweep{query: q, before: now})
	}
	for _, r := range []struct {
		query string
		keep  time.Duration
	}{
		{`DELETE FROM attempts WHERE at < ?`, keep.Attempts},
		{`DELETE FROM audit_events WHERE at < ?`, keep.Audit},
		{`DELETE FROM grants WHERE created_at < ?
			AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = grants.id)
			AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id)
			AND NOT EXISTS (SELECT 1 FROM auth_codes c WHERE c.grant_id = grants.id)`, keep.Grants},
	} {
		sweeps = append(sweeps, sweep{query: r.query, before: now.Add(-r.keep), skip: r.keep <= 0})
	}
	var total int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, sw := range sweeps {
			if sw.skip {
				continue
			}
			res, err := tx.ExecContext(ctx, sw.query, micros(sw.before))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: garbage collect: %w", err)
	}
	return total, nil
}

// UseClientAssertion implements store.Storage.
func (s *Store) UseClientAssertion(ctx context.Context, clientID, jti string, expiresAt time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO client_assertions (client_id, jti, expires_at) VALUES (?, ?, ?)`,
		clientID, jti, micros(expiresAt))
	if err = classify(err); errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("sqlite: client assertion of %q: %w", clientID, store.ErrAlreadyUsed)
	} else if err != nil {
		return fmt.Errorf("sqlite: client assertion of %q: %w", clientID, err)
	}
	return nil
}
