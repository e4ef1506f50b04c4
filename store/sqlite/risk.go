package sqlite

import (
	"context"
	"fmt"
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
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM attempts AS f
		WHERE f.ip = ?1 AND f.success = 0 AND f.at >= ?2
		AND NOT EXISTS (SELECT 1 FROM attempts AS s WHERE s.ip = ?1 AND s.success = 1 AND s.at >= f.at)`,
		ip, micros(since)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlite: count failures from %q: %w", ip, err)
	}
	return n, nil
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
