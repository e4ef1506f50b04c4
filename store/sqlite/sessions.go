package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/visage-idp/visage/store"
)

var _ store.SessionsStorage = (*Store)(nil)

// --- applications and keys ---

const applicationColumns = `id, name, webhook_url, webhook_secret, keep_images, result_retention, created_at`

func scanApplication(r row) (store.Application, error) {
	var a store.Application
	err := r.Scan(&a.ID, &a.Name, &a.WebhookURL, &a.WebhookSecret, &a.KeepImages, durationCol{&a.ResultRetention}, timeCol{&a.CreatedAt})
	return a, err
}

// CreateApplication implements store.SessionsStorage.
func (s *Store) CreateApplication(ctx context.Context, a store.Application) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO api_applications (`+applicationColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Name, a.WebhookURL, a.WebhookSecret, a.KeepImages, int64(a.ResultRetention), micros(a.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create application %q: %w", a.ID, classify(err))
	}
	return nil
}

// GetApplication implements store.SessionsStorage.
func (s *Store) GetApplication(ctx context.Context, id string) (store.Application, error) {
	a, err := scanApplication(s.db.QueryRowContext(ctx, `SELECT `+applicationColumns+` FROM api_applications WHERE id = ?`, id))
	if err != nil {
		return a, fmt.Errorf("sqlite: get application %q: %w", id, noRows(err))
	}
	return a, nil
}

// ListApplications implements store.SessionsStorage.
func (s *Store) ListApplications(ctx context.Context) ([]store.Application, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+applicationColumns+` FROM api_applications ORDER BY name, id`)
	out, err := collectRows(rows, err, scanApplication)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list applications: %w", err)
	}
	return out, nil
}

// UpdateApplication implements store.SessionsStorage.
func (s *Store) UpdateApplication(ctx context.Context, a store.Application) error {
	err := affected(s.db.ExecContext(ctx, `UPDATE api_applications SET name = ?, webhook_url = ?, webhook_secret = ?, keep_images = ?, result_retention = ? WHERE id = ?`,
		a.Name, a.WebhookURL, a.WebhookSecret, a.KeepImages, int64(a.ResultRetention), a.ID))
	if err != nil {
		return fmt.Errorf("sqlite: update application %q: %w", a.ID, err)
	}
	return nil
}

const apiKeyColumns = `id, app_id, name, hash, hint, created_at, revoked_at`

func scanAPIKey(r row) (store.APIKey, error) {
	var k store.APIKey
	err := r.Scan(&k.ID, &k.AppID, &k.Name, &k.Hash, &k.Hint, timeCol{&k.CreatedAt}, nullTimeCol{&k.RevokedAt})
	return k, err
}

// CreateAPIKey implements store.SessionsStorage.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.AppID, k.Name, k.Hash, k.Hint, micros(k.CreatedAt), nullMicros(k.RevokedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create API key %q: %w", k.ID, classify(err))
	}
	return nil
}

// GetAPIKeyByHash implements store.SessionsStorage.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash string) (store.APIKey, error) {
	k, err := scanAPIKey(s.db.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = ?`, hash))
	if err != nil {
		return k, fmt.Errorf("sqlite: get API key by hash: %w", noRows(err))
	}
	return k, nil
}

// ListAPIKeys implements store.SessionsStorage.
func (s *Store) ListAPIKeys(ctx context.Context) ([]store.APIKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`)
	out, err := collectRows(rows, err, scanAPIKey)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list API keys: %w", err)
	}
	return out, nil
}

// RevokeAPIKey implements store.SessionsStorage.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	err := affected(s.db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, micros(at), id))
	if err != nil {
		return fmt.Errorf("sqlite: revoke API key %q: %w", id, err)
	}
	return nil
}

// --- workflows ---

const workflowColumns = `id, name, type, features, liveness_method, face_match_approve, face_match_decline, liveness_approve, liveness_decline, max_attempts, created_at`

func scanWorkflow(r row) (store.Workflow, error) {
	var w store.Workflow
	err := r.Scan(&w.ID, &w.Name, &w.Type, listCol{&w.Features}, &w.LivenessMethod, &w.FaceMatchApprove, &w.FaceMatchDecline,
		&w.LivenessApprove, &w.LivenessDecline, &w.MaxAttempts, timeCol{&w.CreatedAt})
	return w, err
}

// CreateWorkflow implements store.SessionsStorage.
func (s *Store) CreateWorkflow(ctx context.Context, w store.Workflow) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO workflows (`+workflowColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.Name, w.Type, list(w.Features), w.LivenessMethod, w.FaceMatchApprove, w.FaceMatchDecline,
		w.LivenessApprove, w.LivenessDecline, w.MaxAttempts, micros(w.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create workflow %q: %w", w.ID, classify(err))
	}
	return nil
}

// GetWorkflow implements store.SessionsStorage.
func (s *Store) GetWorkflow(ctx context.Context, id string) (store.Workflow, error) {
	w, err := scanWorkflow(s.db.QueryRowContext(ctx, `SELECT `+workflowColumns+` FROM workflows WHERE id = ?`, id))
	if err != nil {
		return w, fmt.Errorf("sqlite: get workflow %q: %w", id, noRows(err))
	}
	return w, nil
}

// ListWorkflows implements store.SessionsStorage.
func (s *Store) ListWorkflows(ctx context.Context) ([]store.Workflow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+workflowColumns+` FROM workflows ORDER BY id`)
	out, err := collectRows(rows, err, scanWorkflow)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list workflows: %w", err)
	}
	return out, nil
}

// --- verification sessions ---

const verificationColumns = `number, id, app_id, workflow_id, vendor_data, callback, metadata, status, token_hash, reference,
	reference_source, attempts, ip_address, results, created_at, updated_at, expires_at, finished_at, liveness_method, portrait_sha256`

func scanVerification(r row) (store.Verification, error) {
	var v store.Verification
	err := r.Scan(&v.Number, &v.ID, &v.AppID, &v.WorkflowID, &v.VendorData, &v.Callback, &v.Metadata, &v.Status, &v.TokenHash,
		&v.Reference, &v.ReferenceSource, &v.Attempts, &v.IPAddress, &v.Results, timeCol{&v.CreatedAt}, timeCol{&v.UpdatedAt},
		timeCol{&v.ExpiresAt}, nullTimeCol{&v.FinishedAt}, &v.LivenessMethod, &v.PortraitHash)
	v.Metadata, v.Reference, v.Results = nilIfEmpty(v.Metadata), nilIfEmpty(v.Reference), nilIfEmpty(v.Results)
	return v, err
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// blob stores nil and empty byte slices as NULL.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// CreateVerification implements store.SessionsStorage.
func (s *Store) CreateVerification(ctx context.Context, v store.Verification) (store.Verification, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO verification_sessions (id, app_id, workflow_id, vendor_data, callback, metadata, status,
		token_hash, reference, reference_source, attempts, ip_address, results, created_at, updated_at, expires_at, finished_at, liveness_method,
		portrait_sha256)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.AppID, v.WorkflowID, v.VendorData, v.Callback, blob(v.Metadata), v.Status, v.TokenHash, blob(v.Reference),
		v.ReferenceSource, v.Attempts, v.IPAddress, blob(v.Results), micros(v.CreatedAt), micros(v.UpdatedAt), micros(v.ExpiresAt),
		nullMicros(v.FinishedAt), v.LivenessMethod, v.PortraitHash)
	if err != nil {
		return store.Verification{}, fmt.Errorf("sqlite: create verification session %q: %w", v.ID, classify(err))
	}
	n, err := res.LastInsertId()
	if err != nil {
		return store.Verification{}, fmt.Errorf("sqlite: create verification session %q: %w", v.ID, err)
	}
	v.Number = n
	return s.GetVerification(ctx, v.ID)
}

// GetVerification implements store.SessionsStorage.
func (s *Store) GetVerification(ctx context.Context, id string) (store.Verification, error) {
	v, err := scanVerification(s.db.QueryRowContext(ctx, `SELECT `+verificationColumns+` FROM verification_sessions WHERE id = ?`, id))
	if err != nil {
		return v, fmt.Errorf("sqlite: get verification session %q: %w", id, noRows(err))
	}
	return v, nil
}

// GetVerificationByToken implements store.SessionsStorage.
func (s *Store) GetVerificationByToken(ctx context.Context, tokenHash string) (store.Verification, error) {
	v, err := scanVerification(s.db.QueryRowContext(ctx, `SELECT `+verificationColumns+` FROM verification_sessions WHERE token_hash = ?`, tokenHash))
	if err != nil {
		return v, fmt.Errorf("sqlite: get verification session by token: %w", noRows(err))
	}
	return v, nil
}

// FindOpenVerification implements store.SessionsStorage.
func (s *Store) FindOpenVerification(ctx context.Context, appID, workflowID, vendorData string) (store.Verification, error) {
	v, err := scanVerification(s.db.QueryRowContext(ctx, `SELECT `+verificationColumns+` FROM verification_sessions
		WHERE app_id = ? AND workflow_id = ? AND vendor_data = ? AND status IN (?, ?, ?) ORDER BY number DESC LIMIT 1`,
		appID, workflowID, vendorData, store.StatusNotStarted, store.StatusInProgress, store.StatusResubmitted))
	if err != nil {
		return v, fmt.Errorf("sqlite: find open verification session: %w", noRows(err))
	}
	return v, nil
}

// ListVerifications implements store.SessionsStorage.
func (s *Store) ListVerifications(ctx context.Context, f store.VerificationFilter) ([]store.Verification, int, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	where := `WHERE (?1 = '' OR app_id = ?1) AND (?2 = '' OR vendor_data = ?2) AND (?3 = '' OR status = ?3)`
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM verification_sessions `+where, f.AppID, f.VendorData, f.Status).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("sqlite: list verification sessions: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+verificationColumns+` FROM verification_sessions `+where+` ORDER BY number DESC LIMIT ?4 OFFSET ?5`,
		f.AppID, f.VendorData, f.Status, f.Limit, max(f.Offset, 0))
	out, err := collectRows(rows, err, scanVerification)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: list verification sessions: %w", err)
	}
	return out, total, nil
}

// ListDueVerifications implements store.SessionsStorage.
func (s *Store) ListDueVerifications(ctx context.Context, now time.Time, limit int) ([]store.Verification, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+verificationColumns+` FROM verification_sessions
		WHERE (status IN (?, ?, ?) OR (status = ? AND reference IS NOT NULL)) AND expires_at <= ? ORDER BY expires_at, number LIMIT ?`,
		store.StatusNotStarted, store.StatusInProgress, store.StatusResubmitted, store.StatusDeclined, micros(now), limit)
	out, err := collectRows(rows, err, scanVerification)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list due verification sessions: %w", err)
	}
	return out, nil
}

// UpdateVerification implements store.SessionsStorage.
func (s *Store) UpdateVerification(ctx context.Context, u store.VerificationUpdate) (store.Verification, error) {
	var out store.Verification
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var status string
		if err := tx.QueryRowContext(ctx, `SELECT status FROM verification_sessions WHERE id = ?`, u.ID).Scan(&status); err != nil {
			return noRows(err)
		}
		if len(u.From) > 0 && !contains(u.From, status) {
			return fmt.Errorf("%w: it is %q, the update wants one of %q", store.ErrStatusChanged, status, u.From)
		}
		set := []string{"updated_at = ?"}
		args := []any{micros(u.At)}
		if u.Status != "" {
			set, args = append(set, "status = ?"), append(args, u.Status)
		}
		if u.Results != nil {
			set, args = append(set, "results = ?"), append(args, blob(u.Results))
		}
		if u.IPAddress != "" {
			set, args = append(set, "ip_address = ?"), append(args, u.IPAddress)
		}
		if u.ResetAttempts {
			set = append(set, "attempts = 0")
		}
		if u.AddAttempt {
			set = append(set, "attempts = attempts + 1")
		}
		if u.LivenessMethod != "" {
			set, args = append(set, "liveness_method = ?"), append(args, u.LivenessMethod)
		}
		if u.ExpiresAt != nil {
			set, args = append(set, "expires_at = ?"), append(args, micros(*u.ExpiresAt))
		}
		if u.DropReference {
			set = append(set, "reference = NULL")
		}
		if u.Finished {
			set, args = append(set, "finished_at = ?"), append(args, micros(u.At))
		}
		args = append(args, u.ID)
		if _, err := tx.ExecContext(ctx, `UPDATE verification_sessions SET `+strings.Join(set, ", ")+` WHERE id = ?`, args...); err != nil {
			return classify(err)
		}
		if r := u.Review; r != nil {
			if _, err := tx.ExecContext(ctx, `INSERT INTO verification_reviews (session_id, author, new_status, comment, created_at) VALUES (?, ?, ?, ?, ?)`,
				u.ID, r.Author, r.NewStatus, r.Comment, micros(r.CreatedAt)); err != nil {
				return fmt.Errorf("review: %w", classify(err))
			}
		}
		for _, img := range u.Images {
			if _, err := tx.ExecContext(ctx, `INSERT INTO verification_images (session_id, n, kind, sealed, created_at)
				VALUES (?, (SELECT COALESCE(MAX(n), 0) + 1 FROM verification_images WHERE session_id = ?), ?, ?, ?)`,
				u.ID, u.ID, img.Kind, img.Sealed, micros(img.CreatedAt)); err != nil {
				return fmt.Errorf("image: %w", classify(err))
			}
		}
		if e := u.Event; e != nil {
			if err := insertDelivery(ctx, tx, *e, u.ID); err != nil {
				return err
			}
		}
		var err error
		out, err = scanVerification(tx.QueryRowContext(ctx, `SELECT `+verificationColumns+` FROM verification_sessions WHERE id = ?`, u.ID))
		return err
	})
	if err != nil {
		return store.Verification{}, fmt.Errorf("sqlite: update verification session %q: %w", u.ID, err)
	}
	return out, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// DeleteVerification implements store.SessionsStorage; the foreign keys cascade to reviews,
// images, deliveries and attempts.
func (s *Store) DeleteVerification(ctx context.Context, id string) error {
	if err := affected(s.db.ExecContext(ctx, `DELETE FROM verification_sessions WHERE id = ?`, id)); err != nil {
		return fmt.Errorf("sqlite: delete verification session %q: %w", id, err)
	}
	return nil
}

// PurgeVerifications implements store.SessionsStorage.
func (s *Store) PurgeVerifications(ctx context.Context, appID string, finishedBefore time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM verification_sessions AS v
		WHERE v.app_id = ? AND v.finished_at IS NOT NULL AND v.finished_at < ?
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS d WHERE d.session_id = v.id AND d.state = ?)`,
		appID, micros(finishedBefore), store.DeliveryPending)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge verification sessions of %q: %w", appID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge verification sessions of %q: %w", appID, err)
	}
	return n, nil
}

// ListReviews implements store.SessionsStorage.
func (s *Store) ListReviews(ctx context.Context, sessionID string) ([]store.Review, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, session_id, author, new_status, comment, created_at FROM verification_reviews
		WHERE session_id = ? ORDER BY id`, sessionID)
	out, err := collectRows(rows, err, func(r row) (store.Review, error) {
		var v store.Review
		err := r.Scan(&v.ID, &v.SessionID, &v.Author, &v.NewStatus, &v.Comment, timeCol{&v.CreatedAt})
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: list reviews of %q: %w", sessionID, err)
	}
	return out, nil
}

// ListVerificationImages implements store.SessionsStorage.
func (s *Store) ListVerificationImages(ctx context.Context, sessionID string) ([]store.VerificationImage, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT session_id, n, kind, sealed, created_at FROM verification_images WHERE session_id = ? ORDER BY n`, sessionID)
	out, err := collectRows(rows, err, func(r row) (store.VerificationImage, error) {
		var v store.VerificationImage
		err := r.Scan(&v.SessionID, &v.N, &v.Kind, &v.Sealed, timeCol{&v.CreatedAt})
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: list images of %q: %w", sessionID, err)
	}
	return out, nil
}

// --- webhook outbox ---

const deliveryColumns = `seq, id, app_id, session_id, status, payload, state, attempts, next_attempt_at, give_up_at, lease_until,
	lease_token, last_error, created_at, delivered_at`

func scanDelivery(r row) (store.WebhookDelivery, error) {
	var d store.WebhookDelivery
	err := r.Scan(&d.Seq, &d.ID, &d.AppID, &d.SessionID, &d.Status, &d.Payload, &d.State, &d.Attempts, timeCol{&d.NextAttemptAt},
		timeCol{&d.GiveUpAt}, nullTimeCol{&d.LeaseUntil}, &d.LeaseToken, &d.LastError, timeCol{&d.CreatedAt}, nullTimeCol{&d.DeliveredAt})
	return d, err
}

func insertDelivery(ctx context.Context, tx *sql.Tx, d store.WebhookDelivery, sessionID string) error {
	if d.SessionID != "" && d.SessionID != sessionID {
		return fmt.Errorf("webhook event %q names session %q, not %q", d.ID, d.SessionID, sessionID)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (id, app_id, session_id, status, payload, state, attempts,
		next_attempt_at, give_up_at, lease_until, lease_token, last_error, created_at, delivered_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '', ?, ?, ?)`,
		d.ID, d.AppID, sessionID, d.Status, d.Payload, d.State, d.Attempts, micros(d.NextAttemptAt), micros(d.GiveUpAt),
		d.LastError, micros(d.CreatedAt), nullMicros(d.DeliveredAt))
	if err != nil {
		return fmt.Errorf("webhook event %q: %w", d.ID, classify(err))
	}
	return nil
}

func newLeaseToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// ClaimDeliveries implements store.SessionsStorage. The IMMEDIATE transaction holds the write
// lock, so two processes never lease the same delivery.
func (s *Store) ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int) ([]store.WebhookDelivery, error) {
	if limit <= 0 {
		limit = 10
	}
	token := newLeaseToken()
	var out []store.WebhookDelivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = ?3
			WHERE state = ?1 AND attempts > 0 AND (lease_until IS NULL OR lease_until <= ?2)
			AND EXISTS (SELECT 1 FROM webhook_deliveries AS e WHERE e.session_id = webhook_deliveries.session_id AND e.state = ?1 AND e.seq > webhook_deliveries.seq)`,
			store.DeliveryPending, micros(now), store.DeliverySuperseded); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT d.id FROM webhook_deliveries AS d
			WHERE d.state = ?1 AND d.next_attempt_at <= ?2 AND (d.lease_until IS NULL OR d.lease_until <= ?2)
			AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS e WHERE e.session_id = d.session_id AND e.state = ?1 AND e.seq < d.seq)
			ORDER BY d.seq LIMIT ?3`, store.DeliveryPending, micros(now), limit)
		ids, err := collectRows(rows, err, func(r row) (string, error) {
			var id string
			return id, r.Scan(&id)
		})
		if err != nil {
			return err
		}
		out = out[:0]
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET lease_until = ?, lease_token = ? WHERE id = ?`, micros(leaseUntil), token, id); err != nil {
				return err
			}
			d, err := scanDelivery(tx.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = ?`, id))
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim webhook deliveries: %w", err)
	}
	return out, nil
}

// FinishDeliveryAttempt implements store.SessionsStorage.
func (s *Store) FinishDeliveryAttempt(ctx context.Context, leaseToken string, a store.DeliveryAttempt, o store.DeliveryOutcome) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var token string
		var attempts int
		if err := tx.QueryRowContext(ctx, `SELECT lease_token, attempts FROM webhook_deliveries WHERE id = ?`, a.DeliveryID).Scan(&token, &attempts); err != nil {
			return noRows(err)
		}
		if token == "" || token != leaseToken {
			return fmt.Errorf("%w: the delivery's lease was taken over", store.ErrStatusChanged)
		}
		n := attempts + 1
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, n, at, status_code, error, duration) VALUES (?, ?, ?, ?, ?, ?)`,
			a.DeliveryID, n, micros(a.At), a.StatusCode, a.Error, int64(a.Duration)); err != nil {
			return classify(err)
		}
		var delivered sql.NullInt64
		if o.State == store.DeliveryDelivered {
			delivered = sql.NullInt64{Int64: micros(a.At), Valid: true}
		}
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET attempts = ?, state = ?, next_attempt_at = ?, last_error = ?,
			delivered_at = ?, lease_until = NULL, lease_token = '' WHERE id = ?`,
			n, o.State, micros(o.NextAttemptAt), o.LastError, delivered, a.DeliveryID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: finish webhook attempt of %q: %w", a.DeliveryID, err)
	}
	return nil
}

// GetDelivery implements store.SessionsStorage.
func (s *Store) GetDelivery(ctx context.Context, id string) (store.WebhookDelivery, error) {
	d, err := scanDelivery(s.db.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = ?`, id))
	if err != nil {
		return d, fmt.Errorf("sqlite: get webhook delivery %q: %w", id, noRows(err))
	}
	return d, nil
}

// ListDeliveries implements store.SessionsStorage.
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.WebhookDelivery, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE (?1 = '' OR session_id = ?1) AND (?2 = '' OR state = ?2) ORDER BY seq DESC LIMIT ?3`, f.SessionID, f.State, f.Limit)
	out, err := collectRows(rows, err, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list webhook deliveries: %w", err)
	}
	return out, nil
}

// ListDeliveryAttempts implements store.SessionsStorage.
func (s *Store) ListDeliveryAttempts(ctx context.Context, deliveryID string) ([]store.DeliveryAttempt, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT delivery_id, n, at, status_code, error, duration FROM webhook_attempts WHERE delivery_id = ? ORDER BY n`, deliveryID)
	out, err := collectRows(rows, err, func(r row) (store.DeliveryAttempt, error) {
		var a store.DeliveryAttempt
		err := r.Scan(&a.DeliveryID, &a.N, timeCol{&a.At}, &a.StatusCode, &a.Error, durationCol{&a.Duration})
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: list attempts of %q: %w", deliveryID, err)
	}
	return out, nil
}

// collectRows scans every row with scan and closes rows.
func collectRows[T any](rows *sql.Rows, err error, scan func(row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// LinkUser implements store.SessionsStorage.
func (s *Store) LinkUser(ctx context.Context, appID, userID, via string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO application_users (app_id, user_id, via, linked_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (app_id, user_id) DO NOTHING`, appID, userID, via, micros(at))
	if err != nil {
		return fmt.Errorf("sqlite: link user %q to application %q: %w", userID, appID, classify(err))
	}
	return nil
}

// UnlinkUser implements store.SessionsStorage.
func (s *Store) UnlinkUser(ctx context.Context, appID, userID string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM application_users WHERE app_id = ? AND user_id = ?`, appID, userID)
	if err != nil {
		return fmt.Errorf("sqlite: unlink user %q from application %q: %w", userID, appID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: unlink user %q from application %q: %w", userID, appID, store.ErrNotFound)
	}
	return nil
}

// UserLinked implements store.SessionsStorage.
func (s *Store) UserLinked(ctx context.Context, appID, userID string) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM application_users WHERE app_id = ? AND user_id = ?`, appID, userID).Scan(&n); err != nil {
		return false, fmt.Errorf("sqlite: is user %q linked to application %q: %w", userID, appID, err)
	}
	return n > 0, nil
}
