package webhook

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Errors of Verify; test with errors.Is.
var (
	// ErrSignature: no signature header, or none that matches.
	ErrSignature = errors.New("webhook: bad signature")
	// ErrStale: the signed timestamp is outside the freshness window.
	ErrStale = errors.New("webhook: timestamp outside the freshness window")
	// ErrDuplicate: an event with this event_id was accepted before.
	ErrDuplicate = errors.New("webhook: event already received")
	// ErrMalformed: the body is not a webhook envelope.
	ErrMalformed = errors.New("webhook: malformed body")
)

// DefaultMaxAge is the freshness window on the signed timestamp.
const DefaultMaxAge = 5 * time.Minute

// Event is a verified webhook.
type Event struct {
	EventID     string          `json:"event_id"`
	WebhookType string          `json:"webhook_type"`
	SessionID   string          `json:"session_id"`
	Status      string          `json:"status"`
	WorkflowID  string          `json:"workflow_id"`
	VendorData  string          `json:"vendor_data"`
	Timestamp   int64           `json:"timestamp"`
	CreatedAt   int64           `json:"created_at"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	Decision    json.RawMessage `json:"decision,omitempty"`
}

// Deduper remembers event ids.
type Deduper interface {
	// Add records id until the given time and reports whether it was new; now is the
	// verifier's clock, for forgetting ids whose time has passed.
	Add(id string, until, now time.Time) bool
	// Remove forgets id (the event could not be processed and should be accepted again).
	Remove(id string)
}

// MemoryDeduper is a Deduper in memory, for one process. It is safe for concurrent use.
type MemoryDeduper struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// NewMemoryDeduper returns an empty MemoryDeduper.
func NewMemoryDeduper() *MemoryDeduper {
	return &MemoryDeduper{seen: map[string]time.Time{}}
}

// Add implements Deduper; it also forgets ids whose time has passed.
func (d *MemoryDeduper) Add(id string, until, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, u := range d.seen {
		if now.After(u) {
			delete(d.seen, k)
		}
	}
	if _, ok := d.seen[id]; ok {
		return false
	}
	d.seen[id] = until
	return true
}

// Remove implements Deduper.
func (d *MemoryDeduper) Remove(id string) {
	d.mu.Lock()
	delete(d.seen, id)
	d.mu.Unlock()
}

// Verifier checks webhooks: a signature (X-Signature-V2, else X-Signature), the freshness of
// the signed timestamp, and that the event_id was not seen before.
type Verifier struct {
	Secret string
	// MaxAge bounds |now - timestamp|; 0 means DefaultMaxAge.
	MaxAge time.Duration
	// Seen de-duplicates event ids; nil disables de-duplication.
	Seen Deduper
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// NewVerifier returns a Verifier with the default window and an in-memory de-duplicator.
func NewVerifier(secret string) *Verifier {
	return &Verifier{Secret: secret, Seen: NewMemoryDeduper()}
}

// Verify checks a webhook request's headers and body and returns its event. The signature is
// checked first, so forged requests never reach the de-duplicator. An event that passes is
// recorded as seen: call Forget if it could not be processed.
func (v *Verifier) Verify(h http.Header, body []byte) (Event, error) {
	var ev Event
	if err := v.checkSignature(h, body); err != nil {
		return ev, err
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return ev, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if ev.EventID == "" || ev.Timestamp == 0 {
		return ev, fmt.Errorf("%w: event_id and timestamp are required", ErrMalformed)
	}
	if ts := h.Get(HeaderTimestamp); ts != "" && ts != strconv.FormatInt(ev.Timestamp, 10) {
		return ev, fmt.Errorf("%w: %s %q differs from the signed timestamp %d", ErrSignature, HeaderTimestamp, ts, ev.Timestamp)
	}
	clock := time.Now
	if v.Now != nil {
		clock = v.Now
	}
	now := clock()
	maxAge := v.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	t := time.Unix(ev.Timestamp, 0)
	if d := now.Sub(t); d > maxAge || d < -maxAge {
		return ev, fmt.Errorf("%w: timestamp %d is %s from now (window %s)", ErrStale, ev.Timestamp, d.Round(time.Second), maxAge)
	}
	if v.Seen != nil && !v.Seen.Add(ev.EventID, t.Add(2*maxAge), now) {
		return ev, fmt.Errorf("%w: %s", ErrDuplicate, ev.EventID)
	}
	return ev, nil
}

// Forget removes an event from the de-duplicator, so that its redelivery is accepted.
func (v *Verifier) Forget(eventID string) {
	if v.Seen != nil {
		v.Seen.Remove(eventID)
	}
}

func (v *Verifier) checkSignature(h http.Header, body []byte) error {
	if sig := h.Get(HeaderSignatureV2); sig != "" {
		if equalHex(sig, Mac(v.Secret, body)) {
			return nil // the body as Visage sends it: the signed bytes themselves
		}
		canon, err := Canonical(body, false)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if !equalHex(sig, Mac(v.Secret, canon)) {
			return fmt.Errorf("%w: %s does not match", ErrSignature, HeaderSignatureV2)
		}
		return nil
	}
	if sig := h.Get(HeaderSignature); sig != "" {
		if !equalHex(sig, Mac(v.Secret, body)) {
			return fmt.Errorf("%w: %s does not match", ErrSignature, HeaderSignature)
		}
		return nil
	}
	return fmt.Errorf("%w: no %s or %s header", ErrSignature, HeaderSignatureV2, HeaderSignature)
}

func equalHex(got, want string) bool {
	return hmac.Equal([]byte(got), []byte(want))
}

// MaxBody is the largest webhook body Handler reads.
const MaxBody = 1 << 20

// Handler verifies each request and calls fn with the event. It answers 401 to a bad
// signature or a stale timestamp, 400 to a malformed body, 200 without calling fn to a
// duplicate, 500 when fn fails (the event is forgotten, so Visage's retry is accepted), and
// 200 when fn succeeds.
func (v *Verifier) Handler(fn func(ctx context.Context, ev Event) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			http.Error(w, "body too large or unreadable", http.StatusBadRequest)
			return
		}
		ev, err := v.Verify(r.Header, body)
		switch {
		case errors.Is(err, ErrDuplicate):
			w.WriteHeader(http.StatusOK)
			return
		case errors.Is(err, ErrSignature), errors.Is(err, ErrStale):
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := fn(r.Context(), ev); err != nil {
			v.Forget(ev.EventID)
			http.Error(w, "processing failed", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}
