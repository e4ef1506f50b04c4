package sessions

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/visage-idp/visage/authn"
	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/risk"
	"github.com/visage-idp/visage/authn/sessions/webhook"
	"github.com/visage-idp/visage/store"
)

// Store is what the Sessions API needs from the storage backend: its own records, and the users
// and templates of the IdP for sessions whose reference face is the one enrolled for the
// vendor_data.
type Store interface {
	store.SessionsStorage
	GetUserByUsername(ctx context.Context, username string) (store.User, error)
	GetTemplate(ctx context.Context, userID string) (store.Template, error)
}

// Config holds the API's settings. Zero fields take DefaultConfig's values, except TokenKey,
// which must be set.
type Config struct {
	// BaseURL is the public URL of the server (the issuer), for session urls.
	BaseURL string
	// SessionTTL is how long a session can be completed (default 30 minutes). An unfinished
	// session then becomes Expired (never opened) or Abandoned (opened).
	SessionTTL time.Duration
	// MaxPortraitBytes bounds the decoded portrait_image (default 2 MB).
	MaxPortraitBytes int
	// MaxBodyBytes bounds a create request's body (default DefaultMaxBody).
	MaxBodyBytes int64
	// MaxUploadBytes bounds the hosted page's selfie post (default 3 MB).
	MaxUploadBytes int64
	// TokenKey derives the hosted pages' session tokens and CSRF tokens (at least 32 bytes).
	TokenKey []byte
	// TrustedProxies are the peers whose X-Forwarded-For is believed for IP analysis.
	TrustedProxies []netip.Prefix
	// AnonymousMethod is the step-up policy's method for a new device from a Tor exit or a
	// VPN/hosting range (risk.Policy.NewDeviceAnonymous; default ACTIVE_3D). A hosted page is
	// always a new device: a session whose liveness method is weaker is escalated to it when
	// its page, challenge or capture comes from such an address.
	AnonymousMethod string
	// Webhooks.
	WebhookTimeout time.Duration // per attempt (default 10 s)
	WebhookHorizon time.Duration // retries stop this long after the event (default 24 h)
	RetryMin       time.Duration // first retry delay (default 2 s), doubling with jitter
	RetryMax       time.Duration // longest retry delay (default 10 min)
	PollInterval   time.Duration // how often the dispatcher looks for due deliveries (default 1 s)
	ExpireInterval time.Duration // how often open sessions are checked for expiry (default 15 s)
	PurgeInterval  time.Duration // how often results past their retention are purged (default 1 h)
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{SessionTTL: 30 * time.Minute, MaxPortraitBytes: 2 << 20, MaxBodyBytes: DefaultMaxBody, MaxUploadBytes: 3 << 20,
		WebhookTimeout: 10 * time.Second, WebhookHorizon: 24 * time.Hour, RetryMin: 2 * time.Second, RetryMax: 10 * time.Minute,
		PollInterval: time.Second, ExpireInterval: 15 * time.Second, PurgeInterval: time.Hour}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.SessionTTL, d.SessionTTL)
	set(&c.WebhookTimeout, d.WebhookTimeout)
	set(&c.WebhookHorizon, d.WebhookHorizon)
	set(&c.RetryMin, d.RetryMin)
	set(&c.RetryMax, d.RetryMax)
	set(&c.PollInterval, d.PollInterval)
	set(&c.ExpireInterval, d.ExpireInterval)
	set(&c.PurgeInterval, d.PurgeInterval)
	if c.MaxPortraitBytes <= 0 {
		c.MaxPortraitBytes = d.MaxPortraitBytes
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.MaxUploadBytes <= 0 {
		c.MaxUploadBytes = d.MaxUploadBytes
	}
	if c.AnonymousMethod == "" {
		c.AnonymousMethod = risk.DefaultPolicy().NewDeviceAnonymous
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	return c
}

// Deps are the services the API calls.
type Deps struct {
	Store  Store
	Engine *face.Engine
	Keys   *face.KeyRing
	// Passive runs PASSIVE liveness; nil makes workflows with LIVENESS fail their captures.
	Passive *liveness.Passive
	// Challenger runs ACTIVE_3D and FLASHING; nil makes workflows with those methods fail.
	Challenger *liveness.Challenger
	Tor, VPN   *risk.List // address lists for IP analysis; nil means empty
	Log        *slog.Logger
	// Client sends webhooks; nil means a client with Config.WebhookTimeout that follows no
	// redirects.
	Client *http.Client
}

// Service implements the Sessions API.
type Service struct {
	cfg        Config
	st         Store
	engine     *face.Engine
	keys       *face.KeyRing
	passive    *liveness.Passive
	challenger *liveness.Challenger
	tor        *risk.List
	vpn        *risk.List
	log        *slog.Logger
	client     *http.Client
	now        func() time.Time
	wake       chan struct{}
}

// New returns the service.
func New(cfg Config, d Deps) (*Service, error) {
	cfg = cfg.withDefaults()
	if len(cfg.TokenKey) < 32 {
		return nil, errors.New("sessions: the token key must have at least 32 bytes")
	}
	switch liveness.Method(cfg.AnonymousMethod) {
	case liveness.MethodPassive, liveness.MethodFlashing, liveness.MethodActive3D:
	default:
		return nil, fmt.Errorf("sessions: the Tor/VPN method %q is not PASSIVE, FLASHING or ACTIVE_3D", cfg.AnonymousMethod)
	}
	if d.Store == nil || d.Engine == nil || d.Keys == nil || d.Log == nil {
		return nil, errors.New("sessions: store, engine, key ring and logger are required")
	}
	var err error
	if d.Tor == nil {
		if d.Tor, err = risk.OpenList("", d.Log); err != nil {
			return nil, fmt.Errorf("sessions: %w", err)
		}
	}
	if d.VPN == nil {
		if d.VPN, err = risk.OpenList("", d.Log); err != nil {
			return nil, fmt.Errorf("sessions: %w", err)
		}
	}
	if d.Client == nil {
		d.Client = &http.Client{Timeout: cfg.WebhookTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Service{cfg: cfg, st: d.Store, engine: d.Engine, keys: d.Keys, passive: d.Passive, challenger: d.Challenger, tor: d.Tor, vpn: d.VPN,
		log: d.Log, client: d.Client, now: func() time.Time { return time.Now().UTC() }, wake: make(chan struct{}, 1)}, nil
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Errors of the service, beyond *RequestError.
var (
	// ErrUnauthorized: the API key is missing, unknown or revoked.
	ErrUnauthorized = errors.New("sessions: invalid API key")
	// ErrNotFound: no such session for this application.
	ErrNotFound = errors.New("sessions: session not found")
	// ErrBusy: the face engine's queue is full; try again.
	ErrBusy = errors.New("sessions: face engine busy")
	// ErrFinished: the session can no longer be completed.
	ErrFinished = errors.New("sessions: session finished")
	// ErrNotResubmittable: the session is not Declined, or its time (and its reference face)
	// ran out.
	ErrNotResubmittable = errors.New("sessions: session cannot be resubmitted")
)

// --- API keys ---

// KeyPrefix starts every API key.
const KeyPrefix = "vsk_"

// NewAPIKey returns a fresh random API key and the record to store for it (only its hash).
func NewAPIKey(appID, name string, now time.Time) (raw string, k store.APIKey) {
	raw = KeyPrefix + randomText(32)
	return raw, store.APIKey{ID: "key_" + randomText(9), AppID: appID, Name: name, Hash: HashKey(raw), Hint: raw[:len(KeyPrefix)+6], CreatedAt: now}
}

// NewAppID returns a random application id.
func NewAppID() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return "app_" + hex.EncodeToString(b)
}

// NewWebhookSecret returns a random webhook secret.
func NewWebhookSecret() string { return "whsec_" + randomText(32) }

// HashKey is how API keys are stored: hex SHA-256.
func HashKey(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:])
}

func randomText(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Authenticate returns the application of a valid, unrevoked key.
func (s *Service) Authenticate(ctx context.Context, raw string) (store.APIKey, store.Application, error) {
	if raw == "" {
		return store.APIKey{}, store.Application{}, fmt.Errorf("%w: no key", ErrUnauthorized)
	}
	k, err := s.st.GetAPIKeyByHash(ctx, HashKey(raw))
	if errors.Is(err, store.ErrNotFound) {
		return k, store.Application{}, fmt.Errorf("%w: unknown key", ErrUnauthorized)
	} else if err != nil {
		return k, store.Application{}, fmt.Errorf("authenticate: %w", err)
	}
	if k.RevokedAt != nil {
		return k, store.Application{}, fmt.Errorf("%w: key %s was revoked", ErrUnauthorized, k.ID)
	}
	app, err := s.st.GetApplication(ctx, k.AppID)
	if err != nil {
		return k, app, fmt.Errorf("authenticate: application of key %s: %w", k.ID, err)
	}
	return k, app, nil
}

// --- tokens ---

func (s *Service) mac(purpose, id string) string {
	m := hmac.New(sha256.New, s.cfg.TokenKey)
	m.Write([]byte(purpose + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Token returns the hosted page token of a session: derived from its id, so it need not be
// stored (only its hash is) and creating the session again returns the same url.
func (s *Service) Token(sessionID string) string { return s.mac("session-token", sessionID) }

// URL returns the hosted page's address.
func (s *Service) URL(sessionID string) string {
	return s.cfg.BaseURL + "/session/" + s.Token(sessionID)
}

func (s *Service) csrf(sessionID string) string { return s.mac("csrf", sessionID) }

// --- workflows ---

// WorkflowOptions describe a workflow to create.
type WorkflowOptions struct {
	ID, Name       string
	Features       []string
	LivenessMethod string
	// Thresholds; negative means the default (DefaultWorkflowThresholds).
	FaceMatchApprove, FaceMatchDecline int
	LivenessApprove, LivenessDecline   int
	MaxAttempts                        int
}

// DefaultWorkflowThresholds returns the default score thresholds: face match bands derived
// from the face engine's calibrated policy (distance 0.5 approves, 0.6 declines), and liveness
// bands around the passive model's threshold.
func DefaultWorkflowThresholds() (fmApprove, fmDecline, lvApprove, lvDecline int) {
	// Both matchers score their approve threshold 76 and their decline threshold 50, so dlib's
	// curve gives the same numbers as the ONNX matcher's.
	p := face.DlibPolicy()
	return int(100 * face.Similarity(p.ApproveBelow)), int(math.Round(100 * face.Similarity(p.DeclineAbove))),
		int(math.Round(100 * liveness.DefaultThreshold)), 30
}

// NewWorkflow checks the options and returns the workflow to store.
func NewWorkflow(o WorkflowOptions, now time.Time) (store.Workflow, error) {
	fa, fd, la, ld := DefaultWorkflowThresholds()
	w := store.Workflow{ID: strings.TrimSpace(o.ID), Name: o.Name, Type: WorkflowType, LivenessMethod: strings.ToUpper(o.LivenessMethod),
		FaceMatchApprove: pick(o.FaceMatchApprove, fa), FaceMatchDecline: pick(o.FaceMatchDecline, fd),
		LivenessApprove: pick(o.LivenessApprove, la), LivenessDecline: pick(o.LivenessDecline, ld), MaxAttempts: o.MaxAttempts, CreatedAt: now}
	var errs []string
	if w.ID == "" || len(w.ID) > MaxWorkflowID || strings.ContainsAny(w.ID, "/?#% ") {
		errs = append(errs, fmt.Sprintf("id %q: want 1-%d characters without spaces, '/', '?', '#' or '%%'", o.ID, MaxWorkflowID))
	}
	seen := map[string]bool{}
	for _, f := range o.Features {
		f = strings.ToUpper(strings.TrimSpace(f))
		switch f {
		case FeatureLiveness, FeatureFaceMatch, FeatureIPAnalysis:
			if !seen[f] {
				w.Features = append(w.Features, f)
			}
			seen[f] = true
		default:
			errs = append(errs, fmt.Sprintf("feature %q: want LIVENESS, FACE_MATCH or IP_ANALYSIS", f))
		}
	}
	if !seen[FeatureLiveness] {
		errs = append(errs, "features: a "+WorkflowType+" workflow must contain LIVENESS")
	}
	if seen[FeatureLiveness] {
		if w.LivenessMethod == "" {
			w.LivenessMethod = string(liveness.MethodPassive)
		}
		switch liveness.Method(w.LivenessMethod) {
		case liveness.MethodPassive, liveness.MethodActive3D, liveness.MethodFlashing:
		default:
			errs = append(errs, fmt.Sprintf("liveness method %q: want PASSIVE, FLASHING or ACTIVE_3D", o.LivenessMethod))
		}
	} else {
		w.LivenessMethod = ""
	}
	for _, th := range []struct {
		name             string
		approve, decline int
	}{{"face match", w.FaceMatchApprove, w.FaceMatchDecline}, {"liveness", w.LivenessApprove, w.LivenessDecline}} {
		if th.approve < 0 || th.approve > 100 || th.decline < 0 || th.decline > 100 || th.decline > th.approve {
			errs = append(errs, fmt.Sprintf("%s thresholds approve %d, decline %d: want 0 <= decline <= approve <= 100", th.name, th.approve, th.decline))
		}
	}
	if w.MaxAttempts <= 0 {
		w.MaxAttempts = 3
	}
	if w.MaxAttempts > 10 {
		errs = append(errs, "max attempts: at most 10")
	}
	if len(errs) > 0 {
		return store.Workflow{}, fmt.Errorf("workflow: %s", strings.Join(errs, "; "))
	}
	return w, nil
}

func pick(v, def int) int {
	if v < 0 {
		return def
	}
	return v
}

// --- sessions ---

// Create creates a session for an application, or returns the open one of the same workflow
// and vendor_data (created is then false). Invalid requests fail with a *RequestError; nothing
// is stored unless the whole request is valid.
func (s *Service) Create(ctx context.Context, app store.Application, req CreateRequest) (v store.Verification, created bool, err error) {
	wf, err := s.st.GetWorkflow(ctx, req.WorkflowID)
	if errors.Is(err, store.ErrNotFound) {
		return v, false, fieldError("workflow_id", fmt.Sprintf("Workflow %q does not exist.", req.WorkflowID))
	} else if err != nil {
		return v, false, fmt.Errorf("create session: %w", err)
	}
	if req.WorkflowType != "" && wf.Type != "" && req.WorkflowType != wf.Type {
		return v, false, fieldError("workflow_type", fmt.Sprintf("Workflow %q is of type %q, not %q.", wf.ID, wf.Type, req.WorkflowType))
	}
	method := ""
	if req.LivenessMethod != "" && req.LivenessMethod != wf.LivenessMethod {
		if !hasFeature(wf, FeatureLiveness) {
			return v, false, fieldError("liveness_method", fmt.Sprintf("Workflow %q has no LIVENESS step.", wf.ID))
		}
		if risk.Strength(req.LivenessMethod) < risk.Strength(wf.LivenessMethod) {
			return v, false, fieldError("liveness_method", fmt.Sprintf("%s is weaker than the workflow's %s; a session may only ask for as much or more.",
				req.LivenessMethod, wf.LivenessMethod))
		}
		method = req.LivenessMethod
	}
	if req.VendorData != "" {
		if open, ok, err := s.openSession(ctx, app.ID, wf.ID, req.VendorData); err != nil {
			return v, false, err
		} else if ok {
			if err := conflicts(open, req); err != nil {
				return v, false, err
			}
			return s.raiseMethod(ctx, open, wf, method)
		}
	}
	now := s.now()
	v = store.Verification{ID: uuid.NewString(), AppID: app.ID, WorkflowID: wf.ID, VendorData: req.VendorData, Callback: req.Callback,
		Metadata: req.Metadata, Status: store.StatusNotStarted, LivenessMethod: method, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL),
		PortraitHash: req.portraitHash()}
	v.TokenHash = HashKey(s.Token(v.ID))
	if hasFeature(wf, FeatureFaceMatch) {
		if v.Reference, v.ReferenceSource, err = s.reference(ctx, app, req); err != nil {
			return store.Verification{}, false, err
		}
	}
	out, err := s.st.CreateVerification(ctx, v)
	if errors.Is(err, store.ErrAlreadyExists) && req.VendorData != "" {
		// Another request created the open session first: answer with that one.
		if open, ok, err := s.openSession(ctx, app.ID, wf.ID, req.VendorData); err != nil {
			return v, false, err
		} else if ok {
			if err := conflicts(open, req); err != nil {
				return v, false, err
			}
			return s.raiseMethod(ctx, open, wf, method)
		}
	}
	if err != nil {
		return store.Verification{}, false, fmt.Errorf("create session: %w", err)
	}
	s.log.InfoContext(ctx, "session created", "session", out.ID, "app", app.ID, "workflow", wf.ID, "reference", out.ReferenceSource)
	return out, true, nil
}

// ErrConflict: a create request asks for another portrait, callback or metadata than the open
// session of its workflow and vendor_data holds.
var ErrConflict = errors.New("sessions: the open session of this workflow and vendor_data was created with another portrait_image, callback or metadata")

// conflicts refuses a repeated create request that brings another portrait, callback or
// metadata than the open session holds: answering with the old session would silently drop
// them. What the request leaves out is no conflict (it asks for the session as it is). A
// session made before portraits were hashed is compared on callback and metadata only.
func conflicts(open store.Verification, req CreateRequest) error {
	switch {
	case req.Portrait != nil && (open.PortraitHash != "" || open.ReferenceSource != "portrait_image") && req.portraitHash() != open.PortraitHash,
		req.Callback != "" && req.Callback != open.Callback,
		req.Metadata != nil && !bytes.Equal(req.Metadata, open.Metadata):
		return ErrConflict
	}
	return nil
}

// raiseMethod answers a create request with the open session it found, after raising that
// session's liveness method to the one the request asks for, if stronger: a second request
// never gets a weaker check than it asked for.
func (s *Service) raiseMethod(ctx context.Context, open store.Verification, wf store.Workflow, method string) (store.Verification, bool, error) {
	if method == "" || risk.Strength(method) <= risk.Strength(LivenessMethod(open, wf)) {
		return open, false, nil
	}
	out, err := s.transition(ctx, open, store.VerificationUpdate{LivenessMethod: method}, nil, nil)
	if err != nil {
		return open, false, fmt.Errorf("create session: %w", err)
	}
	return out, false, nil
}

// openSession returns the open session of the application, workflow and vendor data, if
// there is one that has not expired; an expired one is expired on the way.
func (s *Service) openSession(ctx context.Context, appID, workflowID, vendorData string) (store.Verification, bool, error) {
	open, err := s.st.FindOpenVerification(ctx, appID, workflowID, vendorData)
	if errors.Is(err, store.ErrNotFound) {
		return open, false, nil
	} else if err != nil {
		return open, false, fmt.Errorf("create session: %w", err)
	}
	if s.now().Before(open.ExpiresAt) {
		return open, true, nil
	}
	if _, err := s.Expire(ctx, open); err != nil && !errors.Is(err, store.ErrStatusChanged) {
		return open, false, fmt.Errorf("create session: expire %s: %w", open.ID, err)
	}
	return open, false, nil
}

// noStoredFace is the field error when there is no reference face.
const noStoredFace = "No stored face was found for this vendor_data. Send a portrait_image, or enrol the user first."

// reference builds the sealed reference template of a new session: from the portrait, else
// a copy of the template enrolled for the vendor_data, if that user is linked to the
// application (an unknown and an unlinked vendor_data get the same answer).
func (s *Service) reference(ctx context.Context, app store.Application, req CreateRequest) ([]byte, string, error) {
	if req.Portrait != nil {
		t, _, err := s.engine.Enroll(ctx, [][]byte{req.Portrait}, face.EnrollOptions{})
		if err != nil {
			if systemFailure(ctx, err) {
				return nil, "", fmt.Errorf("create session: enrol portrait: %w", err)
			}
			return nil, "", fieldError("portrait_image", "The portrait_image cannot be used: "+authn.ReasonFor(err)+" ("+face.Code(err)+").")
		}
		sealed, err := s.keys.Seal(t)
		if err != nil {
			return nil, "", fmt.Errorf("create session: seal reference: %w", err)
		}
		return sealed, "portrait_image", nil
	}
	if req.VendorData == "" {
		return nil, "", fieldError("portrait_image", noStoredFace)
	}
	u, err := s.userFor(ctx, req.VendorData)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", fieldError("portrait_image", noStoredFace)
	} else if err != nil {
		return nil, "", fmt.Errorf("create session: user: %w", err)
	}
	if ok, err := s.st.UserLinked(ctx, app.ID, u.ID); err != nil {
		return nil, "", fmt.Errorf("create session: link: %w", err)
	} else if !ok {
		return nil, "", fieldError("portrait_image", noStoredFace)
	}
	tp, err := s.st.GetTemplate(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", fieldError("portrait_image", noStoredFace)
	} else if err != nil {
		return nil, "", fmt.Errorf("create session: template: %w", err)
	}
	t, err := s.keys.Open(tp.Sealed)
	if err != nil {
		return nil, "", fmt.Errorf("create session: open template of user %s: %w", u.ID, err)
	}
	// The copy keeps the descriptors only, never the enrolment photo.
	sealed, err := s.keys.Seal(&face.Template{ModelVersion: t.ModelVersion, Descriptors: t.Descriptors, Embeddings: t.Embeddings, CreatedAt: t.CreatedAt})
	if err != nil {
		return nil, "", fmt.Errorf("create session: seal reference: %w", err)
	}
	return sealed, "enrolled", nil
}

// userFor finds the user enrolled under a vendor_data (as given, else in lower case).
func (s *Service) userFor(ctx context.Context, vendorData string) (store.User, error) {
	u, err := s.st.GetUserByUsername(ctx, vendorData)
	if errors.Is(err, store.ErrNotFound) {
		if lower := strings.ToLower(strings.TrimSpace(vendorData)); lower != vendorData {
			u, err = s.st.GetUserByUsername(ctx, lower)
		}
	}
	return u, err
}

// systemFailure separates failures of the service from failures of an image.
func systemFailure(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, face.ErrQueueFull) || errors.Is(err, face.ErrClosed) || errors.Is(err, face.ErrInternal) ||
		errors.Is(err, liveness.ErrModel) || errors.Is(err, liveness.ErrClosed)
}

// Get returns a session of the application.
func (s *Service) Get(ctx context.Context, appID, id string) (store.Verification, error) {
	v, err := s.st.GetVerification(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && v.AppID != appID) {
		return store.Verification{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	} else if err != nil {
		return v, fmt.Errorf("get session: %w", err)
	}
	return v, nil
}

// Decision returns the decision document of a session.
func (s *Service) Decision(ctx context.Context, v store.Verification) (Decision, error) {
	wf, err := s.st.GetWorkflow(ctx, v.WorkflowID)
	if err != nil {
		return Decision{}, fmt.Errorf("decision: %w", err)
	}
	reviews, err := s.st.ListReviews(ctx, v.ID)
	if err != nil {
		return Decision{}, fmt.Errorf("decision: %w", err)
	}
	var res Results
	if v.Results != nil {
		if err := json.Unmarshal(v.Results, &res); err != nil {
			return Decision{}, fmt.Errorf("decision: results of %s: %w", v.ID, err)
		}
	}
	return s.decision(v, wf, res, reviews), nil
}

func (s *Service) decision(v store.Verification, wf store.Workflow, res Results, reviews []store.Review) Decision {
	d := Decision{SessionID: v.ID, SessionNumber: v.Number, SessionURL: s.URL(v.ID), Status: v.Status, WorkflowID: v.WorkflowID,
		Features: wf.Features, VendorData: v.VendorData, Metadata: v.Metadata, Callback: v.Callback,
		CreatedAt: timeText(v.CreatedAt), ExpiresAt: timeText(v.ExpiresAt), Reviews: []ReviewEntry{}}
	if d.Features == nil {
		d.Features = []string{}
	}
	if hasFeature(wf, FeatureLiveness) {
		d.LivenessChecks = nonNil(res.LivenessChecks)
	}
	if hasFeature(wf, FeatureFaceMatch) {
		d.FaceMatches = nonNil(res.FaceMatches)
	}
	if hasFeature(wf, FeatureIPAnalysis) {
		d.IPAnalyses = nonNil(res.IPAnalyses)
	}
	d.Liveness, d.Face = summaries(d.LivenessChecks, d.FaceMatches)
	for _, r := range reviews {
		d.Reviews = append(d.Reviews, ReviewEntry{User: r.Author, NewStatus: r.NewStatus, Comment: r.Comment, CreatedAt: timeText(r.CreatedAt)})
	}
	return d
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

// List returns a page of the application's sessions and the total count.
func (s *Service) List(ctx context.Context, f store.VerificationFilter) ([]store.Verification, int, error) {
	vs, n, err := s.st.ListVerifications(ctx, f)
	if err != nil {
		return nil, 0, fmt.Errorf("list sessions: %w", err)
	}
	return vs, n, nil
}

// Delete deletes a session and everything kept of it.
func (s *Service) Delete(ctx context.Context, appID, id string) error {
	if _, err := s.Get(ctx, appID, id); err != nil {
		return err
	}
	if err := s.st.DeleteVerification(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return fmt.Errorf("delete session: %w", err)
	}
	s.log.InfoContext(ctx, "session deleted", "session", id, "app", appID)
	return nil
}

// transition applies a status change with its webhook event (when the status changes and the
// application has a webhook URL) in one transaction. res, when not nil, replaces the results;
// review, when not nil, is recorded.
func (s *Service) transition(ctx context.Context, v store.Verification, u store.VerificationUpdate, res *Results, review *store.Review) (store.Verification, error) {
	u.ID = v.ID
	if u.At.IsZero() {
		u.At = s.now()
	}
	if u.From == nil {
		u.From = []string{v.Status}
	}
	results := Results{}
	if res != nil {
		b, err := json.Marshal(res)
		if err != nil {
			return v, fmt.Errorf("transition: %w", err)
		}
		u.Results, results = b, *res
	} else if v.Results != nil {
		if err := json.Unmarshal(v.Results, &results); err != nil {
			return v, fmt.Errorf("transition: results of %s: %w", v.ID, err)
		}
	}
	u.Review = review
	if u.Status != "" && u.Status != v.Status {
		ev, err := s.event(ctx, v, u, results, review)
		if err != nil {
			return v, err
		}
		u.Event = ev
	}
	out, err := s.st.UpdateVerification(ctx, u)
	if err != nil {
		return v, fmt.Errorf("transition %s to %q: %w", v.ID, u.Status, err)
	}
	if u.Event != nil {
		s.Wake()
	}
	if out.Status != v.Status {
		s.log.InfoContext(ctx, "session status", "session", v.ID, "from", v.Status, "to", out.Status)
	}
	return out, nil
}

// envelope is the webhook body Visage sends, but for the timestamp added at each attempt.
type envelope struct {
	EventID         string          `json:"event_id"`
	WebhookType     string          `json:"webhook_type"`
	CreatedAt       int64           `json:"created_at"`
	SessionID       string          `json:"session_id"`
	Status          string          `json:"status"`
	WorkflowID      string          `json:"workflow_id"`
	WorkflowVersion int             `json:"workflow_version"`
	VendorData      string          `json:"vendor_data"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	ApplicationID   string          `json:"application_id"`
	Environment     string          `json:"environment"`
	// Liveness and Face are the guide's top-level blocks, beside the decision (with the
	// decision, once the checks ran).
	Liveness *LivenessSummary `json:"liveness,omitempty"`
	Face     *FaceSummary     `json:"face,omitempty"`
	Decision *Decision        `json:"decision,omitempty"`
}

// event builds the outbox row for the change u of v.
func (s *Service) event(ctx context.Context, v store.Verification, u store.VerificationUpdate, res Results, review *store.Review) (*store.WebhookDelivery, error) {
	app, err := s.st.GetApplication(ctx, v.AppID)
	if err != nil {
		return nil, fmt.Errorf("webhook event: %w", err)
	}
	if app.WebhookURL == "" {
		return nil, nil
	}
	after := v
	after.Status, after.UpdatedAt = u.Status, u.At
	env := envelope{EventID: uuid.NewString(), WebhookType: webhook.TypeStatusUpdated, CreatedAt: u.At.Unix(), SessionID: v.ID,
		Status: u.Status, WorkflowID: v.WorkflowID, WorkflowVersion: 1, VendorData: v.VendorData, Metadata: v.Metadata,
		ApplicationID: v.AppID, Environment: "live"}
	switch u.Status {
	case store.StatusApproved, store.StatusDeclined, store.StatusInReview, store.StatusAbandoned, store.StatusNotFinished,
		store.StatusKycExpired, store.StatusResubmitted, store.StatusExpired:
		wf, err := s.st.GetWorkflow(ctx, v.WorkflowID)
		if err != nil {
			return nil, fmt.Errorf("webhook event: %w", err)
		}
		reviews, err := s.st.ListReviews(ctx, v.ID)
		if err != nil {
			return nil, fmt.Errorf("webhook event: %w", err)
		}
		if review != nil {
			reviews = append(reviews, *review)
		}
		d := s.decision(after, wf, res, reviews)
		env.Decision, env.Liveness, env.Face = &d, d.Liveness, d.Face
	}
	payload, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("webhook event: %w", err)
	}
	return &store.WebhookDelivery{ID: env.EventID, AppID: v.AppID, SessionID: v.ID, Status: u.Status, Payload: payload,
		State: store.DeliveryPending, NextAttemptAt: u.At, GiveUpAt: u.At.Add(s.cfg.WebhookHorizon), CreatedAt: u.At}, nil
}

// Start marks a session In Progress when its hosted page is opened: a new session, or a
// Resubmitted one.
func (s *Service) Start(ctx context.Context, v store.Verification) (store.Verification, error) {
	if v.Status != store.StatusNotStarted && v.Status != store.StatusResubmitted {
		return v, nil
	}
	return s.transition(ctx, v, store.VerificationUpdate{From: []string{v.Status}, Status: store.StatusInProgress}, nil, nil)
}

// Expire ends a session whose time is up: Expired if it was never opened (or, Resubmitted, never
// opened again), Abandoned if it was opened. A Declined session that kept its reference face
// for a resubmission loses it, and keeps its status.
func (s *Service) Expire(ctx context.Context, v store.Verification) (store.Verification, error) {
	to := store.StatusExpired
	switch v.Status {
	case store.StatusNotStarted, store.StatusResubmitted:
	case store.StatusInProgress:
		to = store.StatusAbandoned
	case store.StatusDeclined:
		if v.Reference == nil {
			return v, nil
		}
		return s.transition(ctx, v, store.VerificationUpdate{DropReference: true}, nil, nil)
	default:
		return v, fmt.Errorf("expire %s: %w: it is %s", v.ID, store.ErrStatusChanged, v.Status)
	}
	return s.transition(ctx, v, store.VerificationUpdate{Status: to, Finished: true, DropReference: true}, nil, nil)
}

// Leave ends an In Progress session whose user left the capture on the hosted page ("Not
// now"): Not Finished, which the guide tells the application to answer with a new prompt or a
// backup factor.
func (s *Service) Leave(ctx context.Context, v store.Verification) (store.Verification, error) {
	if v.Status != store.StatusInProgress {
		return v, fmt.Errorf("%w: it is %s", ErrFinished, v.Status)
	}
	out, err := s.transition(ctx, v, store.VerificationUpdate{From: []string{store.StatusInProgress}, Status: store.StatusNotFinished,
		Finished: true, DropReference: true}, nil, nil)
	if err != nil {
		return v, err
	}
	s.log.InfoContext(ctx, "session left", "session", v.ID)
	return out, nil
}

// KycExpire ends an open session whose reference enrolment was deleted or replaced: Kyc Expired.
func (s *Service) KycExpire(ctx context.Context, v store.Verification) (store.Verification, error) {
	return s.transition(ctx, v, store.VerificationUpdate{From: store.OpenStatuses, Status: store.StatusKycExpired, Finished: true, DropReference: true}, nil, nil)
}

// enrolmentGone reports whether the enrolment a session's reference was copied from (reference
// source "enrolled") has been deleted or replaced by a re-enrolment since the session was
// created. A portrait_image reference never expires this way.
func (s *Service) enrolmentGone(ctx context.Context, v store.Verification) (bool, error) {
	if v.ReferenceSource != "enrolled" || v.Reference == nil {
		return false, nil
	}
	u, err := s.userFor(ctx, v.VendorData)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("enrolment of %s: %w", v.ID, err)
	}
	tp, err := s.st.GetTemplate(ctx, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("enrolment of %s: %w", v.ID, err)
	}
	cur, err := s.keys.Open(tp.Sealed)
	if err != nil {
		return false, fmt.Errorf("enrolment of %s: open the template of user %s: %w", v.ID, u.ID, err)
	}
	ref, err := s.keys.Open(v.Reference)
	if err != nil {
		return false, fmt.Errorf("enrolment of %s: open the reference: %w", v.ID, err)
	}
	if cur.ModelVersion != ref.ModelVersion || len(cur.Descriptors) != len(ref.Descriptors) {
		return true, nil
	}
	for i := range cur.Descriptors {
		if cur.Descriptors[i] != ref.Descriptors[i] {
			return true, nil
		}
	}
	return false, nil
}

// LivenessMethod is the liveness method a session's capture must pass: the session's own (asked
// for at creation, or escalated), else its workflow's; "" without LIVENESS.
func LivenessMethod(v store.Verification, wf store.Workflow) string {
	if !hasFeature(wf, FeatureLiveness) {
		return ""
	}
	if v.LivenessMethod != "" && risk.Strength(v.LivenessMethod) >= risk.Strength(wf.LivenessMethod) {
		return v.LivenessMethod
	}
	return wf.LivenessMethod
}

// escalate applies the step-up policy's Tor/VPN rule to a hosted session: a request from a Tor
// exit or a VPN/hosting range raises the session's liveness method to Config.AnonymousMethod
// when it is weaker, and the session keeps it (it never drops back, whatever address comes
// next).
func (s *Service) escalate(ctx context.Context, v store.Verification, wf store.Workflow, ip netip.Addr) (store.Verification, error) {
	if !hasFeature(wf, FeatureLiveness) || !ip.IsValid() || !(s.tor.Contains(ip) || s.vpn.Contains(ip)) {
		return v, nil
	}
	cur := LivenessMethod(v, wf)
	if risk.Strength(s.cfg.AnonymousMethod) <= risk.Strength(cur) {
		return v, nil
	}
	out, err := s.transition(ctx, v, store.VerificationUpdate{LivenessMethod: s.cfg.AnonymousMethod}, nil, nil)
	if err != nil {
		return v, err
	}
	s.log.InfoContext(ctx, "session liveness escalated", "session", v.ID, "from", cur, "to", s.cfg.AnonymousMethod, "reason", "Tor exit or VPN/hosting address")
	return out, nil
}

// ExpireDue expires the open sessions whose time is up and returns how many.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	n := 0
	for {
		due, err := s.st.ListDueVerifications(ctx, s.now(), 100)
		if err != nil {
			return n, fmt.Errorf("expire sessions: %w", err)
		}
		if len(due) == 0 {
			return n, nil
		}
		progress := false
		for _, v := range due {
			if _, err := s.Expire(ctx, v); err != nil {
				if errors.Is(err, store.ErrStatusChanged) {
					continue
				}
				return n, err
			}
			n++
			progress = true
		}
		if !progress {
			return n, nil
		}
	}
}

// PurgeResults deletes the sessions whose application's retention has passed since they
// finished, and returns how many.
func (s *Service) PurgeResults(ctx context.Context) (int64, error) {
	apps, err := s.st.ListApplications(ctx)
	if err != nil {
		return 0, fmt.Errorf("purge results: %w", err)
	}
	var total int64
	for _, a := range apps {
		if a.ResultRetention <= 0 {
			continue
		}
		n, err := s.st.PurgeVerifications(ctx, a.ID, s.now().Add(-a.ResultRetention))
		if err != nil {
			return total, fmt.Errorf("purge results of %s: %w", a.ID, err)
		}
		total += n
	}
	return total, nil
}

// SetStatus decides a session by hand (PATCH update-status, or the console), recorded as a
// review by author with the comment: Approved or Declined; or Resubmitted, which lets the user
// of a Declined session take the capture again (the hosted page opens again, with its attempts
// reset, for another SessionTTL) while the session's time and reference face last. It fires the
// webhook when the status changes.
func (s *Service) SetStatus(ctx context.Context, v store.Verification, newStatus, comment, author string) (store.Verification, error) {
	now := s.now()
	u := store.VerificationUpdate{Status: newStatus, At: now}
	switch newStatus {
	case store.StatusApproved, store.StatusDeclined:
		if v.FinishedAt == nil {
			u.Finished = true
		}
		// A Declined session keeps its reference until it expires, for a resubmission.
		u.DropReference = newStatus == store.StatusApproved
	case store.StatusResubmitted:
		if v.Status != store.StatusDeclined {
			return v, fmt.Errorf("%w: it is %s, only a Declined session can be", ErrNotResubmittable, v.Status)
		}
		wf, err := s.st.GetWorkflow(ctx, v.WorkflowID)
		if err != nil {
			return v, fmt.Errorf("set status: %w", err)
		}
		if !now.Before(v.ExpiresAt) || (hasFeature(wf, FeatureFaceMatch) && v.Reference == nil) {
			return v, fmt.Errorf("%w: its time ran out and its reference face was deleted; create a new session", ErrNotResubmittable)
		}
		exp := now.Add(s.cfg.SessionTTL)
		u.From, u.ResetAttempts, u.ExpiresAt = []string{store.StatusDeclined}, true, &exp
	default:
		return v, fieldError("new_status", `Must be "Approved", "Declined" or "Resubmitted".`)
	}
	review := &store.Review{SessionID: v.ID, Author: author, NewStatus: newStatus, Comment: comment, CreatedAt: now}
	out, err := s.transition(ctx, v, u, nil, review)
	if err != nil {
		return v, err
	}
	s.log.InfoContext(ctx, "session decided by hand", "session", v.ID, "status", newStatus, "author", author)
	return out, nil
}

// Wake tells the dispatcher that a delivery is due now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
