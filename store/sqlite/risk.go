package sqlite

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
	_, err := s.db.ExecContext(ctx, `INSERT INTO devices (id, user_id, user_agent, first_seen, last_seen, revoked_at)
		VALUES (?, ?, ?, ?, ?, NULL)
		ON CONFLICT (id, user_id) DO UPDATE SET last_seen = excluded.last_seen, user_agent = excluded.user_agent, revoked_at = NULL`,
		d.ID, d.UserID, d.UserAgent, micros(d.LastSeen), micros(d.LastSeen))
	if err != nil {
		return fmt.Errorf("sqlite: touch device of user %q: %w", d.UserID, classify(err))
	}
	return nil
}

const deviceColumns = `id, user_id, user_agent, first_seen, last_seen, revoked_at`

func scanDevice(r row) (store.Device, error) {
	var d store.Device
	err := r.Scan(&d.ID, &d.UserID, &d.UserAgent, timeCol{&d.FirstSeen}, timeCol{&d.LastSeen}, nullTimeCol{&d.RevokedAt})
	return d, err
}

// GetDevice implements store.RiskStorage.
func (s *Store) GetDevice(ctx context.Context, id, userID string) (store.Device, error) {
	d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = ? AND user_id = ?`, id, userID))
	if err != nil {
		return d, fmt.Errorf("sqlite: get device of user %q: %w", userID, noRows(err))
	}
	return d, nil
}

// ListDevices implements store.RiskStorage, most recently seen first.
func (s *Store) ListDevices(ctx context.Context, userID string) ([]store.Device, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE user_id = ? ORDER BY last_seen DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list devices of user %q: %w", userID, err)
	}
	defer rows.Close()
	var out []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list devices: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// RevokeDevice implements store.RiskStorage.
func (s *Store) RevokeDevice(ctx context.Context, id, userID string, at time.Time) error {
	if err := affected(s.db.ExecContext(ctx, `UPDATE devices SET revoked_at = ? WHERE id = ? AND user_id = ?`, micros(at), id, userID)); err != nil {
		return fmt.Errorf("sqlite: revoke device of user %q: %w", userID, err)
	}
	return nil
}

// SuccessfulIPs implements store.RiskStorage.
func (s *Store) SuccessfulIPs(ctx context.Context, userID string, since time.Time) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT ip FROM attempts WHERE user_id = ? AND success = 1 AND at >= ? ORDER BY ip`, userID, micros(since))
	if err != nil {
		return nil, fmt.Errorf("sqlite: successful addresses of user %q: %w", userID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ip string
		if err := rows.Scan(&ip); err != nil {
			return nil, err
		}
		out = append(out, ip)
	}
	return out, rows.Err()
}

// CountIPFailures implements store.RiskStorage.
func (s *Store) CountIPFailures(ctx context.Context, ip string, since time.Time) (int, error) {
	n, _, err := s.Failures(ctx, store.FailureQuery{IP: ip, Since: since})
	return n, err
}

// Failures implements store.RiskStorage.
func (s *Store) Failures(ctx context.Context, q store.FailureQuery) (int, time.Time, error) {
	if q.UserID == "" && q.IP == "" {
		return 0, time.Time{}, errors.New("sqlite: failures: want a user or an address")
	}
	where := []string{"f.success = 0", "f.at >= ?"}
	reset := []string{"s.success = 1", "s.at >= f.at"}
	args := []any{micros(q.Since)}
	for _, c := range []struct{ col, v string }{{"user_id", q.UserID}, {"device_id", q.DeviceID}, {"ip", q.IP}} {
		if c.v != "" {
			where = append(where, "f."+c.col+" = ?")
			reset = append(reset, "s."+c.col+" = f."+c.col)
			args = append(args, c.v)
		}
	}
	if q.ResetOnSuccess {
		where = append(where, "NOT EXISTS (SELECT 1 FROM attempts AS s WHERE "+strings.Join(reset, " AND ")+")")
	}
	var n int
	var last int64
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(MAX(f.at), 0) FROM attempts AS f WHERE "+strings.Join(where, " AND "), args...).Scan(&n, &last)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("sqlite: count failures (user %q, address %q): %w", q.UserID, q.IP, err)
	}
	if n == 0 {
		return 0, time.Time{}, nil
	}
	return n, fromMicros(last), nil
}

// ClearFailures implements store.RiskStorage.
func (s *Store) ClearFailures(ctx context.Context, userID string) (int64, error) {
	res, err := s.db.ExecContext(ctx, "DELETE FROM attempts WHERE user_id = ? AND success = 0", userID)
	if err != nil {
		return 0, fmt.Errorf("sqlite: clear failures of user %q: %w", userID, err)
	}
	return res.RowsAffected()
}

// AppendAudit implements store.RiskStorage.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_events (at, user_id, client_id, ip, device_id, device_known, ip_known, tor, vpn, method, outcome, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		micros(e.At), e.UserID, e.ClientID, e.IP, e.DeviceID, e.DeviceKnown, e.IPKnown, e.Tor, e.VPN, e.Method, e.Outcome, e.Reason)
	if err != nil {
		return fmt.Errorf("sqlite: append audit event: %w", err)
	}
	return nil
}

// ListAudit implements store.RiskStorage.
func (s *Store) ListAudit(ctx context.Context, userID string, limit int) ([]store.AuditEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, user_id, client_id, ip, device_id, device_known, ip_known, tor, vpn, method, outcome, reason
		FROM audit_events WHERE (?1 = '' OR user_id = ?1) ORDER BY id DESC LIMIT ?2`, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit: %w", err)
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		var e store.AuditEvent
		if err := rows.Scan(&e.ID, timeCol{&e.At}, &e.UserID, &e.ClientID, &e.IP, &e.DeviceID, &e.DeviceKnown, &e.IPKnown, &e.Tor, &e.VPN, &e.Method, &e.Outcome, &e.Reason); err != nil {
			return nil, fmt.Errorf("sqlite: list audit: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
