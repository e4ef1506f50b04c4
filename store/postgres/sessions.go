package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/visage-idp/visage/store"
)

var _ store.SessionsStorage = (*Store)(nil)

// --- applications and keys ---

const applicationColumns = `id, name, webhook_url, webhook_secret, keep_images, result_retention, created_at`

func scanApplication(r row) (store.Application, error) {
	var a store.Application
	var retention int64
	err := r.Scan(&a.ID, &a.Name, &a.WebhookURL, &a.WebhookSecret, &a.KeepImages, &retention, &a.CreatedAt)
	a.ResultRetention = time.Duration(retention)
	return a, err
}

// CreateApplication implements store.SessionsStorage.
func (s *Store) CreateApplication(ctx context.Context, a store.Application) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO api_applications (`+applicationColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			a.ID, a.Name, a.WebhookURL, a.WebhookSecret, a.KeepImages, int64(a.ResultRetention), a.CreatedAt)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create application %q: %w", a.ID, err)
	}
	return nil
}

// GetApplication implements store.SessionsStorage.
func (s *Store) GetApplication(ctx context.Context, id string) (store.Application, error) {
	var a store.Application
	err := s.do(ctx, func(q querier) (err error) {
		a, err = scanApplication(q.QueryRow(ctx, `SELECT `+applicationColumns+` FROM api_applications WHERE id = $1`, id))
		return noRows(err)
	})
	if err != nil {
		return store.Application{}, fmt.Errorf("postgres: get application %q: %w", id, err)
	}
	return a, nil
}

// ListApplications implements store.SessionsStorage.
func (s *Store) ListApplications(ctx context.Context) ([]store.Application, error) {
	var out []store.Application
	err := s.do(ctx, func(q querier) (err error) {
		rows, err := q.Query(ctx, `SELECT `+applicationColumns+` FROM api_applications ORDER BY name COLLATE "C", id`)
		out, err = collect(rows, err, scanApplication)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list applications: %w", err)
	}
	return out, nil
}

// UpdateApplication implements store.SessionsStorage.
func (s *Store) UpdateApplication(ctx context.Context, a store.Application) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `UPDATE api_applications SET name = $2, webhook_url = $3, webhook_secret = $4, keep_images = $5, result_retention = $6 WHERE id = $1`,
			a.ID, a.Name, a.WebhookURL, a.WebhookSecret, a.KeepImages, int64(a.ResultRetention)))
	})
	if err != nil {
		return fmt.Errorf("postgres: update application %q: %w", a.ID, err)
	}
	return nil
}

const apiKeyColumns = `id, app_id, name, hash, hint, created_at, revoked_at`

func scanAPIKey(r row) (store.APIKey, error) {
	var k store.APIKey
	err := r.Scan(&k.ID, &k.AppID, &k.Name, &k.Hash, &k.Hint, &k.CreatedAt, &k.RevokedAt)
	return k, err
}

// CreateAPIKey implements store.SessionsStorage.
func (s *Store) CreateAPIKey(ctx context.Context, k store.APIKey) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			k.ID, k.AppID, k.Name, k.Hash, k.Hint, k.CreatedAt, k.RevokedAt)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create API key %q: %w", k.ID, err)
	}
	return nil
}

// GetAPIKeyByHash implements store.SessionsStorage.
func (s *Store) GetAPIKeyByHash(ctx context.Context, hash string) (store.APIKey, error) {
	var k store.APIKey
	err := s.do(ctx, func(q querier) (err error) {
		k, err = scanAPIKey(q.QueryRow(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = $1`, hash))
		return noRows(err)
	})
	if err != nil {
		return store.APIKey{}, fmt.Errorf("postgres: get API key by hash: %w", err)
	}
	return k, nil
}

// ListAPIKeys implements store.SessionsStorage.
func (s *Store) ListAPIKeys(ctx context.Context) ([]store.APIKey, error) {
	var out []store.APIKey
	err := s.do(ctx, func(q querier) (err error) {
		rows, err := q.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`)
		out, err = collect(rows, err, scanAPIKey)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list API keys: %w", err)
	}
	return out, nil
}

// RevokeAPIKey implements store.SessionsStorage.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`, id, at))
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke API key %q: %w", id, err)
	}
	return nil
}

// --- workflows ---

const workflowColumns = `id, name, type, features, liveness_method, face_match_approve, face_match_decline, liveness_approve, liveness_decline, max_attempts, created_at`

func scanWorkflow(r row) (store.Workflow, error) {
	var w store.Workflow
	err := r.Scan(&w.ID, &w.Name, &w.Type, &w.Features, &w.LivenessMethod, &w.FaceMatchApprove, &w.FaceMatchDecline,
		&w.LivenessApprove, &w.LivenessDecline, &w.MaxAttempts, &w.CreatedAt)
	unlist(&w.Features)
	return w, err
}

// CreateWorkflow implements store.SessionsStorage.
func (s *Store) CreateWorkflow(ctx context.Context, w store.Workflow) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO workflows (`+workflowColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			w.ID, w.Name, w.Type, list(w.Features), w.LivenessMethod, w.FaceMatchApprove, w.FaceMatchDecline,
			w.LivenessApprove, w.LivenessDecline, w.MaxAttempts, w.CreatedAt)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: create workflow %q: %w", w.ID, err)
	}
	return nil
}

// GetWorkflow implements store.SessionsStorage.
func (s *Store) GetWorkflow(ctx context.Context, id string) (store.Workflow, error) {
	var w store.Workflow
	err := s.do(ctx, func(q querier) (err error) {
		w, err = scanWorkflow(q.QueryRow(ctx, `SELECT `+workflowColumns+` FROM workflows WHERE id = $1`, id))
		return noRows(err)
	})
	if err != nil {
		return store.Workflow{}, fmt.Errorf("postgres: get workflow %q: %w", id, err)
	}
	return w, nil
}

// ListWorkflows implements store.SessionsStorage.
func (s *Store) ListWorkflows(ctx context.Context) ([]store.Workflow, error) {
	var out []store.Workflow
	err := s.do(ctx, func(q querier) (err error) {
		rows, err := q.Query(ctx, `SELECT `+workflowColumns+` FROM workflows ORDER BY id`)
		out, err = collect(rows, err, scanWorkflow)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list workflows: %w", err)
	}
	return out, nil
}

// --- verification sessions ---

const verificationColumns = `number, id, app_id, workflow_id, vendor_data, callback, metadata, status, token_hash, reference,
	reference_source, attempts, ip_address, results, created_at, updated_at, expires_at, finished_at, liveness_method, portrait_sha256`

func scanVerification(r row) (store.Verification, error) {
	var v store.Verification
	err := r.Scan(&v.Number, &v.ID, &v.AppID, &v.WorkflowID, &v.VendorData, &v.Callback, &v.Metadata, &v.Status, &v.TokenHash,
		&v.Reference, &v.ReferenceSource, &v.Attempts, &v.IPAddress, &v.Results, &v.CreatedAt, &v.UpdatedAt, &v.ExpiresAt, &v.FinishedAt, &v.LivenessMethod, &v.PortraitHash)
	v.Metadata, v.Reference, v.Results = nilIfEmpty(v.Metadata), nilIfEmpty(v.Reference), nilIfEmpty(v.Results)
	return v, err
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// CreateVerification implements store.SessionsStorage.
func (s *Store) CreateVerification(ctx context.Context, v store.Verification) (store.Verification, error) {
	var out store.Verification
	err := s.do(ctx, func(q querier) (err error) {
		out, err = scanVerification(q.QueryRow(ctx, `INSERT INTO verification_sessions (id, app_id, workflow_id, vendor_data, callback,
			metadata, status, token_hash, reference, reference_source, attempts, ip_address, results, created_at, updated_at, expires_at, finished_at, liveness_method,
			portrait_sha256)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING `+verificationColumns,
			v.ID, v.AppID, v.WorkflowID, v.VendorData, v.Callback, nilIfEmpty(v.Metadata), v.Status, v.TokenHash, nilIfEmpty(v.Reference),
			v.ReferenceSource, v.Attempts, v.IPAddress, nilIfEmpty(v.Results), v.CreatedAt, v.UpdatedAt, v.ExpiresAt, v.FinishedAt, v.LivenessMethod, v.PortraitHash))
		return classify(err)
	})
	if err != nil {
		return store.Verification{}, fmt.Errorf("postgres: create verification session %q: %w", v.ID, err)
	}
	return out, nil
}

func (s *Store) getVerification(ctx context.Context, what, where string, args ...any) (store.Verification, error) {
	var v store.Verification
	err := s.do(ctx, func(q querier) (err error) {
		v, err = scanVerification(q.QueryRow(ctx, `SELECT `+verificationColumns+` FROM verification_sessions WHERE `+where, args...))
		return noRows(err)
	})
	if err != nil {
		return store.Verification{}, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return v, nil
}

// GetVerification implements store.SessionsStorage.
func (s *Store) GetVerification(ctx context.Context, id string) (store.Verification, error) {
	return s.getVerification(ctx, fmt.Sprintf("get verification session %q", id), `id = $1`, id)
}

// GetVerificationByToken implements store.SessionsStorage.
func (s *Store) GetVerificationByToken(ctx context.Context, tokenHash string) (store.Verification, error) {
	return s.getVerification(ctx, "get verification session by token", `token_hash = $1`, tokenHash)
}

// FindOpenVerification implements store.SessionsStorage.
func (s *Store) FindOpenVerification(ctx context.Context, appID, workflowID, vendorData string) (store.Verification, error) {
	return s.getVerification(ctx, "find open verification session",
		`app_id = $1 AND workflow_id = $2 AND vendor_data = $3 AND status = ANY($4) ORDER BY number DESC LIMIT 1`,
		appID, workflowID, vendorData, store.OpenStatuses)
}

// ListVerifications implements store.SessionsStorage.
func (s *Store) ListVerifications(ctx context.Context, f store.VerificationFilter) ([]store.Verification, int, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	where := `($1 = '' OR app_id = $1) AND ($2 = '' OR vendor_data = $2) AND ($3 = '' OR status = $3)`
	var out []store.Verification
	var total int
	err := s.do(ctx, func(q querier) error {
		if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM verification_sessions WHERE `+where, f.AppID, f.VendorData, f.Status).Scan(&total); err != nil {
			return err
		}
		rows, err := q.Query(ctx, `SELECT `+verificationColumns+` FROM verification_sessions WHERE `+where+` ORDER BY number DESC LIMIT $4 OFFSET $5`,
			f.AppID, f.VendorData, f.Status, f.Limit, max(f.Offset, 0))
		out, err = collect(rows, err, scanVerification)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: list verification sessions: %w", err)
	}
	return out, total, nil
}

// ListDueVerifications implements store.SessionsStorage.
func (s *Store) ListDueVerifications(ctx context.Context, now time.Time, limit int) ([]store.Verification, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []store.Verification
	err := s.do(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT `+verificationColumns+` FROM verification_sessions
			WHERE (status = ANY($1) OR (status = $4 AND reference IS NOT NULL)) AND expires_at <= $2 ORDER BY expires_at, number LIMIT $3`,
			store.OpenStatuses, now, limit, store.StatusDeclined)
		out, err = collect(rows, err, scanVerification)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list due verification sessions: %w", err)
	}
	return out, nil
}

// UpdateVerification implements store.SessionsStorage. The session's row lock serialises
// concurrent updates of one session.
func (s *Store) UpdateVerification(ctx context.Context, u store.VerificationUpdate) (store.Verification, error) {
	var out store.Verification
	err := s.inTx(ctx, func(q querier) error {
		var status string
		if err := q.QueryRow(ctx, `SELECT status FROM verification_sessions WHERE id = $1 FOR UPDATE`, u.ID).Scan(&status); err != nil {
			return noRows(err)
		}
		if len(u.From) > 0 && !slices.Contains(u.From, status) {
			return fmt.Errorf("%w: it is %q, the update wants one of %q", store.ErrStatusChanged, status, u.From)
		}
		args := []any{u.ID, u.At}
		set := []string{"updated_at = $2"}
		add := func(expr string, v any) {
			args = append(args, v)
			set = append(set, expr+" = $"+strconv.Itoa(len(args)))
		}
		if u.Status != "" {
			add("status", u.Status)
		}
		if u.Results != nil {
			add("results", nilIfEmpty(u.Results))
		}
		if u.IPAddress != "" {
			add("ip_address", u.IPAddress)
		}
		if u.ResetAttempts {
			set = append(set, "attempts = 0")
		}
		if u.AddAttempt {
			set = append(set, "attempts = attempts + 1")
		}
		if u.LivenessMethod != "" {
			add("liveness_method", u.LivenessMethod)
		}
		if u.ExpiresAt != nil {
			add("expires_at", *u.ExpiresAt)
		}
		if u.DropReference {
			set = append(set, "reference = NULL")
		}
		if u.Finished {
			set = append(set, "finished_at = $2")
		}
		if _, err := q.Exec(ctx, `UPDATE verification_sessions SET `+strings.Join(set, ", ")+` WHERE id = $1`, args...); err != nil {
			return classify(err)
		}
		if r := u.Review; r != nil {
			if _, err := q.Exec(ctx, `INSERT INTO verification_reviews (session_id, author, new_status, comment, created_at) VALUES ($1, $2, $3, $4, $5)`,
				u.ID, r.Author, r.NewStatus, r.Comment, r.CreatedAt); err != nil {
				return fmt.Errorf("review: %w", classify(err))
			}
		}
		for _, img := range u.Images {
			if _, err := q.Exec(ctx, `INSERT INTO verification_images (session_id, n, kind, sealed, created_at)
				VALUES ($1, (SELECT COALESCE(MAX(n), 0) + 1 FROM verification_images WHERE session_id = $1), $2, $3, $4)`,
				u.ID, img.Kind, img.Sealed, img.CreatedAt); err != nil {
				return fmt.Errorf("image: %w", classify(err))
			}
		}
		if e := u.Event; e != nil {
			if e.SessionID != "" && e.SessionID != u.ID {
				return fmt.Errorf("webhook event %q names session %q, not %q", e.ID, e.SessionID, u.ID)
			}
			if _, err := q.Exec(ctx, `INSERT INTO webhook_deliveries (id, app_id, session_id, status, payload, state, attempts,
				next_attempt_at, give_up_at, lease_until, lease_token, last_error, created_at, delivered_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, '', $10, $11, $12)`,
				e.ID, e.AppID, u.ID, e.Status, e.Payload, e.State, e.Attempts, e.NextAttemptAt, e.GiveUpAt, e.LastError, e.CreatedAt, e.DeliveredAt); err != nil {
				return fmt.Errorf("webhook event %q: %w", e.ID, classify(err))
			}
		}
		var err error
		out, err = scanVerification(q.QueryRow(ctx, `SELECT `+verificationColumns+` FROM verification_sessions WHERE id = $1`, u.ID))
		return err
	})
	if err != nil {
		return store.Verification{}, fmt.Errorf("postgres: update verification session %q: %w", u.ID, err)
	}
	return out, nil
}

// DeleteVerification implements store.SessionsStorage; the foreign keys cascade to reviews,
// images, deliveries and attempts.
func (s *Store) DeleteVerification(ctx context.Context, id string) error {
	err := s.do(ctx, func(q querier) error {
		return affected(q.Exec(ctx, `DELETE FROM verification_sessions WHERE id = $1`, id))
	})
	if err != nil {
		return fmt.Errorf("postgres: delete verification session %q: %w", id, err)
	}
	return nil
}

// PurgeVerifications implements store.SessionsStorage.
func (s *Store) PurgeVerifications(ctx context.Context, appID string, finishedBefore time.Time) (int64, error) {
	var n int64
	err := s.do(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `DELETE FROM verification_sessions AS v
			WHERE v.app_id = $1 AND v.finished_at IS NOT NULL AND v.finished_at < $2
			AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS d WHERE d.session_id = v.id AND d.state = $3)`,
			appID, finishedBefore, store.DeliveryPending)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: purge verification sessions of %q: %w", appID, err)
	}
	return n, nil
}

// ListReviews implements store.SessionsStorage.
func (s *Store) ListReviews(ctx context.Context, sessionID string) ([]store.Review, error) {
	var out []store.Review
	err := s.do(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT id, session_id, author, new_status, comment, created_at FROM verification_reviews
			WHERE session_id = $1 ORDER BY id`, sessionID)
		out, err = collect(rows, err, func(r row) (store.Review, error) {
			var v store.Review
			err := r.Scan(&v.ID, &v.SessionID, &v.Author, &v.NewStatus, &v.Comment, &v.CreatedAt)
			return v, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list reviews of %q: %w", sessionID, err)
	}
	return out, nil
}

// ListVerificationImages implements store.SessionsStorage.
func (s *Store) ListVerificationImages(ctx context.Context, sessionID string) ([]store.VerificationImage, error) {
	var out []store.VerificationImage
	err := s.do(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT session_id, n, kind, sealed, created_at FROM verification_images WHERE session_id = $1 ORDER BY n`, sessionID)
		out, err = collect(rows, err, func(r row) (store.VerificationImage, error) {
			var v store.VerificationImage
			err := r.Scan(&v.SessionID, &v.N, &v.Kind, &v.Sealed, &v.CreatedAt)
			return v, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list images of %q: %w", sessionID, err)
	}
	return out, nil
}

// --- webhook outbox ---

const deliveryColumns = `seq, id, app_id, session_id, status, payload, state, attempts, next_attempt_at, give_up_at, lease_until,
	lease_token, last_error, created_at, delivered_at`

func scanDelivery(r row) (store.WebhookDelivery, error) {
	var d store.WebhookDelivery
	err := r.Scan(&d.Seq, &d.ID, &d.AppID, &d.SessionID, &d.Status, &d.Payload, &d.State, &d.Attempts, &d.NextAttemptAt,
		&d.GiveUpAt, &d.LeaseUntil, &d.LeaseToken, &d.LastError, &d.CreatedAt, &d.DeliveredAt)
	return d, err
}

func newLeaseToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// ClaimDeliveries implements store.SessionsStorage. FOR UPDATE SKIP LOCKED lets concurrent
// dispatchers (on any node) lease disjoint deliveries.
func (s *Store) ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int) ([]store.WebhookDelivery, error) {
	if limit <= 0 {
		limit = 10
	}
	token := newLeaseToken()
	var out []store.WebhookDelivery
	err := s.inTx(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, `UPDATE webhook_deliveries AS d SET state = $3
			WHERE d.state = $1 AND d.attempts > 0 AND (d.lease_until IS NULL OR d.lease_until <= $2)
			AND EXISTS (SELECT 1 FROM webhook_deliveries AS e WHERE e.session_id = d.session_id AND e.state = $1 AND e.seq > d.seq)`,
			store.DeliveryPending, now, store.DeliverySuperseded); err != nil {
			return err
		}
		rows, err := q.Query(ctx, `UPDATE webhook_deliveries SET lease_until = $3, lease_token = $4
			WHERE id IN (SELECT d.id FROM webhook_deliveries AS d
				WHERE d.state = $1 AND d.next_attempt_at <= $2 AND (d.lease_until IS NULL OR d.lease_until <= $2)
				AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS e WHERE e.session_id = d.session_id AND e.state = $1 AND e.seq < d.seq)
				ORDER BY d.seq LIMIT $5 FOR UPDATE SKIP LOCKED)
			AND state = $1 AND (lease_until IS NULL OR lease_until <= $2)
			RETURNING `+deliveryColumns, store.DeliveryPending, now, leaseUntil, token, limit)
		out, err = collect(rows, err, scanDelivery)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim webhook deliveries: %w", err)
	}
	slices.SortFunc(out, func(a, b store.WebhookDelivery) int { return int(a.Seq - b.Seq) })
	return out, nil
}

// FinishDeliveryAttempt implements store.SessionsStorage.
func (s *Store) FinishDeliveryAttempt(ctx context.Context, leaseToken string, a store.DeliveryAttempt, o store.DeliveryOutcome) error {
	err := s.inTx(ctx, func(q querier) error {
		var token string
		var attempts int
		if err := q.QueryRow(ctx, `SELECT lease_token, attempts FROM webhook_deliveries WHERE id = $1 FOR UPDATE`, a.DeliveryID).Scan(&token, &attempts); err != nil {
			return noRows(err)
		}
		if token == "" || token != leaseToken {
			return fmt.Errorf("%w: the delivery's lease was taken over", store.ErrStatusChanged)
		}
		n := attempts + 1
		if _, err := q.Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, n, at, status_code, error, duration) VALUES ($1, $2, $3, $4, $5, $6)`,
			a.DeliveryID, n, a.At, a.StatusCode, a.Error, int64(a.Duration)); err != nil {
			return classify(err)
		}
		var delivered *time.Time
		if o.State == store.DeliveryDelivered {
			delivered = &a.At
		}
		_, err := q.Exec(ctx, `UPDATE webhook_deliveries SET attempts = $2, state = $3, next_attempt_at = $4, last_error = $5,
			delivered_at = $6, lease_until = NULL, lease_token = '' WHERE id = $1`,
			a.DeliveryID, n, o.State, o.NextAttemptAt, o.LastError, delivered)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: finish webhook attempt of %q: %w", a.DeliveryID, err)
	}
	return nil
}

// GetDelivery implements store.SessionsStorage.
func (s *Store) GetDelivery(ctx context.Context, id string) (store.WebhookDelivery, error) {
	var d store.WebhookDelivery
	err := s.do(ctx, func(q querier) (err error) {
		d, err = scanDelivery(q.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = $1`, id))
		return noRows(err)
	})
	if err != nil {
		return store.WebhookDelivery{}, fmt.Errorf("postgres: get webhook delivery %q: %w", id, err)
	}
	return d, nil
}

// ListDeliveries implements store.SessionsStorage.
func (s *Store) ListDeliveries(ctx context.Context, f store.DeliveryFilter) ([]store.WebhookDelivery, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var out []store.WebhookDelivery
	err := s.do(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
			WHERE ($1 = '' OR session_id = $1) AND ($2 = '' OR state = $2) ORDER BY seq DESC LIMIT $3`, f.SessionID, f.State, f.Limit)
		out, err = collect(rows, err, scanDelivery)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list webhook deliveries: %w", err)
	}
	return out, nil
}

// ListDeliveryAttempts implements store.SessionsStorage.
func (s *Store) ListDeliveryAttempts(ctx context.Context, deliveryID string) ([]store.DeliveryAttempt, error) {
	var out []store.DeliveryAttempt
	err := s.do(ctx, func(q querier) error {
		rows, err := q.Query(ctx, `SELECT delivery_id, n, at, status_code, error, duration FROM webhook_attempts WHERE delivery_id = $1 ORDER BY n`, deliveryID)
		out, err = collect(rows, err, func(r row) (store.DeliveryAttempt, error) {
			var a store.DeliveryAttempt
			var d int64
			err := r.Scan(&a.DeliveryID, &a.N, &a.At, &a.StatusCode, &a.Error, &d)
			a.Duration = time.Duration(d)
			return a, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list attempts of %q: %w", deliveryID, err)
	}
	return out, nil
}

// LinkUser implements store.SessionsStorage.
func (s *Store) LinkUser(ctx context.Context, appID, userID, via string, at time.Time) error {
	err := s.do(ctx, func(q querier) error {
		_, err := q.Exec(ctx, `INSERT INTO application_users (app_id, user_id, via, linked_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (app_id, user_id) DO NOTHING`, appID, userID, via, at)
		return classify(err)
	})
	if err != nil {
		return fmt.Errorf("postgres: link user %q to application %q: %w", userID, appID, err)
	}
	return nil
}

// UnlinkUser implements store.SessionsStorage.
func (s *Store) UnlinkUser(ctx context.Context, appID, userID string) error {
	var n int64
	err := s.do(ctx, func(q querier) error {
		tag, err := q.Exec(ctx, `DELETE FROM application_users WHERE app_id = $1 AND user_id = $2`, appID, userID)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: unlink user %q from application %q: %w", userID, appID, err)
	}
	if n == 0 {
		return fmt.Errorf("postgres: unlink user %q from application %q: %w", userID, appID, store.ErrNotFound)
	}
	return nil
}

// UserLinked implements store.SessionsStorage.
func (s *Store) UserLinked(ctx context.Context, appID, userID string) (bool, error) {
	var n int
	err := s.do(ctx, func(q querier) error {
		return q.QueryRow(ctx, `SELECT COUNT(*) FROM application_users WHERE app_id = $1 AND user_id = $2`, appID, userID).Scan(&n)
	})
	if err != nil {
		return false, fmt.Errorf("postgres: is user %q linked to application %q: %w", userID, appID, err)
	}
	return n > 0, nil
}
