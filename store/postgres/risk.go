package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/visage-idp/visage/store"
)

var _ store.RiskStorage = (*Store)(nil)

// TouchDevice implements store.RiskStorage.
func (s *Store) TouchDevice(ctx context.Context, d store.Device) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO devices (id, user_id, user_agent, first_seen, last_seen, revoked_at)
			VALUES ($1, $2, $3, $4, $4, NULL)
			ON CONFLICT (id, user_id) DO UPDATE SET last_seen = excluded.last_seen, user_agent = excluded.user_agent, revoked_at = NULL`,
			d.ID, d.UserID, d.UserAgent, d.LastSeen)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: touch device of user %q: %w", d.UserID, err)
	}
	return nil
}

const deviceColumns = `id, user_id, user_agent, first_seen, last_seen, revoked_at`

func scanDevice(r row) (store.Device, error) {
	var d store.Device
	err := r.Scan(&d.ID, &d.UserID, &d.UserAgent, &d.FirstSeen, &d.LastSeen, &d.RevokedAt)
	return d, err
}

// GetDevice implements store.RiskStorage.
func (s *Store) GetDevice(ctx context.Context, id, userID string) (store.Device, error) {
	var d store.Device
	err := s.do(ctx, func(q querier) (err error) {
		d, err = scanDevice(q.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = $1 AND user_id = $2`, id, userID))
		return noRows(err)
	})
	if err != nil {
		return store.Device{}, fmt.Errorf("postgres: get device of user %q: %w", userID, err)
	}
	return d, nil
}

// ListDevices implements store.RiskStorage, most recently seen first.
func (s *Store) ListDevices(ctx context.Context, userID string) ([]store.Device, error) {
	var devices []store.Device
	err := s.do(ctx, func(q querier) (err error) {
		rows, err := q.Query(ctx, `SELECT `+deviceColumns+` FROM devices WHERE user_id = $1 ORDER BY last_seen DESC, id`, userID)
		devices, err = collect(rows, err, scanDevice)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list devices of user %q: %w", userID, err)
	}
	return devices, nil
}

// RevokeDevice implements store.RiskStorage.
func (s *Store) RevokeDevice(ctx context.Context, id, userID string, at time.Time) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `UPDATE devices SET revoked_at = $3 WHERE id = $1 AND user_id = $2`, id, userID, at))
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke device of user %q: %w", userID, err)
	}
	return nil
}

// SuccessfulIPs implements store.RiskStorage; addresses come sorted (bytewise).
func (s *Store) SuccessfulIPs(ctx context.Context, userID string, since time.Time) ([]string, error) {
	var ips []string
	err := s.do(ctx, func(q querier) (err error) {
		rows, err := q.Query(ctx, `SELECT DISTINCT ip COLLATE "C" AS ip FROM attempts
			WHERE user_id = $1 AND success AND at >= $2 ORDER BY ip`, userID, since)
		ips, err = collect(rows, err, func(r row) (ip string, err error) {
			err = r.Scan(&ip)
			return ip, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: successful addresses of user %q: %w", userID, err)
	}
	return ips, nil
}

// CountIPFailures implements store.RiskStorage.
func (s *Store) CountIPFailures(ctx context.Context, ip string, since time.Time) (int, error) {
	n, _, err := s.Failures(ctx, store.FailureQuery{IP: ip, Since: since})
	return n, err
}

// Failures implements store.RiskStorage.
func (s *Store) Failures(ctx context.Context, fq store.FailureQuery) (int, time.Time, error) {
	if fq.UserID == "" && fq.IP == "" {
		return 0, time.Time{}, errors.New("postgres: failures: want a user or an address")
	}
	where := []string{"NOT f.success", "f.at >= $1"}
	reset := []string{"s.success", "s.at >= f.at"}
	args := []any{fq.Since}
	for _, c := range []struct{ col, v string }{{"user_id", fq.UserID}, {"device_id", fq.DeviceID}, {"ip", fq.IP}} {
		if c.v != "" {
			args = append(args, c.v)
			where = append(where, fmt.Sprintf("f.%s = $%d", c.col, len(args)))
			reset = append(reset, "s."+c.col+" = f."+c.col)
		}
	}
	if fq.ResetOnSuccess {
		where = append(where, "NOT EXISTS (SELECT 1 FROM attempts AS s WHERE "+strings.Join(reset, " AND ")+")")
	}
	var n int
	var last *time.Time
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, "SELECT COUNT(*), MAX(f.at) FROM attempts AS f WHERE "+strings.Join(where, " AND "), args...).Scan(&n, &last)
	})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("postgres: count failures (user %q, address %q): %w", fq.UserID, fq.IP, err)
	}
	if last == nil {
		return n, time.Time{}, nil
	}
	return n, last.UTC(), nil
}

// ClearFailures implements store.RiskStorage.
func (s *Store) ClearFailures(ctx context.Context, userID string) (int64, error) {
	var n int64
	err := s.do(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, "DELETE FROM attempts WHERE user_id = $1 AND NOT success", userID)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: clear failures of user %q: %w", userID, err)
	}
	return n, nil
}

// AppendAudit implements store.RiskStorage; the store assigns the ID.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO audit_events (at, user_id, client_id, ip, device_id, device_known, ip_known,
			tor, vpn, method, outcome, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			e.At, e.UserID, e.ClientID, e.IP, e.DeviceID, e.DeviceKnown, e.IPKnown, e.Tor, e.VPN, e.Method, e.Outcome, e.Reason)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: append audit event: %w", err)
	}
	return nil
}

// ListAudit implements store.RiskStorage, newest first; a limit of 0 or less means 100.
func (s *Store) ListAudit(ctx context.Context, userID string, limit int) ([]store.AuditEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	var events []store.AuditEvent
	err := s.do(ctx, func(q querier) (err error) {
		rows, err := q.Query(ctx, `SELECT id, at, user_id, client_id, ip, device_id, device_known, ip_known, tor, vpn,
			method, outcome, reason FROM audit_events WHERE ($1 = '' OR user_id = $1) ORDER BY id DESC LIMIT $2`, userID, limit)
		events, err = collect(rows, err, func(r row) (e store.AuditEvent, err error) {
			err = r.Scan(&e.ID, &e.At, &e.UserID, &e.ClientID, &e.IP, &e.DeviceID, &e.DeviceKnown, &e.IPKnown, &e.Tor,
				&e.VPN, &e.Method, &e.Outcome, &e.Reason)
			return e, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	return events, nil
}
