package store

import (
	"context"
	"errors"
	"time"
)

// This file holds the records of the Didit-compatible Sessions API (authn/sessions): the
// applications that call it with API keys, the workflows they run, the verification sessions,
// their reviews and kept images, and the webhook outbox. SessionsStorage is an interface of its
// own beside Storage; backends implement both.

// Verification session statuses, spelled exactly as Didit's API spells them.
const (
	StatusNotStarted = "Not Started"
	StatusInProgress = "In Progress"
	StatusInReview   = "In Review"
	StatusApproved   = "Approved"
	StatusDeclined   = "Declined"
	StatusExpired    = "Expired"
	StatusAbandoned  = "Abandoned"
	// StatusNotFinished: the user opened the hosted page and left the capture (said "not now").
	StatusNotFinished = "Not Finished"
	// StatusResubmitted: a Declined session the application (or a reviewer) let the user take
	// again; the hosted page opens again until the session's new expiry.
	StatusResubmitted = "Resubmitted"
	// StatusKycExpired: the enrolment the session compares against was deleted or replaced
	// before the user finished; the application must enrol the user again.
	StatusKycExpired = "Kyc Expired"
)

// OpenStatuses are the statuses of a session the user can still complete.
var OpenStatuses = []string{StatusNotStarted, StatusInProgress, StatusResubmitted}

// AllStatuses are every session status, in Didit's spelling.
var AllStatuses = []string{StatusNotStarted, StatusInProgress, StatusInReview, StatusApproved, StatusDeclined, StatusExpired,
	StatusAbandoned, StatusNotFinished, StatusResubmitted, StatusKycExpired}

// ErrStatusChanged is returned (wrapped) by UpdateVerification when the session's status is not
// one of the statuses the update requires: somebody else changed it first.
var ErrStatusChanged = errors.New("store: status changed meanwhile")

// Application is a client of the Sessions API: it owns API keys, receives webhooks at
// WebhookURL signed with WebhookSecret, and sets how long its results and images are kept.
type Application struct {
	ID            string
	Name          string
	WebhookURL    string // "" sends no webhooks
	WebhookSecret string // HMAC key of the webhook signatures; the server signs with it, so it is stored as is
	// KeepImages keeps the captured frames (sealed by the biometric key ring) for the console.
	KeepImages bool
	// ResultRetention is how long a finished session's results are kept; 0 keeps them until
	// deleted through the API.
	ResultRetention time.Duration
	CreatedAt       time.Time
}

// APIKey authenticates an application. Only the SHA-256 of the key is stored.
type APIKey struct {
	ID        string
	AppID     string
	Name      string
	Hash      string // hex SHA-256 of the key; unique
	Hint      string // the key's first characters, to recognise it in a list
	CreatedAt time.Time
	RevokedAt *time.Time
}

// Workflow is a verification recipe: which features run and the score thresholds of each
// verdict. Scores are 0-100; a score at or above Approve approves, below Decline declines, and
// anything between goes to review.
type Workflow struct {
	ID               string
	Name             string
	Type             string   // biometric_authentication
	Features         []string // LIVENESS, FACE_MATCH, IP_ANALYSIS
	LivenessMethod   string   // PASSIVE, FLASHING, ACTIVE_3D (when LIVENESS is a feature)
	FaceMatchApprove int
	FaceMatchDecline int
	LivenessApprove  int
	LivenessDecline  int
	MaxAttempts      int // captures the hosted page accepts when an image is unusable
	CreatedAt        time.Time
}

// Verification is one verification session.
type Verification struct {
	ID         string // UUID
	Number     int64  // assigned by the store on creation, increasing
	AppID      string
	WorkflowID string
	VendorData string
	Callback   string
	Metadata   []byte // a JSON object as the application sent it, or nil
	Status     string
	TokenHash  string // hex SHA-256 of the hosted page's session token; unique
	// LivenessMethod is the session's own liveness method when it asked for (or was escalated
	// to) a stronger one than its workflow's; "" means the workflow's.
	LivenessMethod string
	// Reference is the sealed face template of the reference face (a copy made for this
	// session); nil when the workflow has no face match, and dropped once the session is done
	// (a Declined session keeps it until ExpiresAt, while it can still be resubmitted).
	Reference       []byte
	ReferenceSource string // portrait_image | enrolled | ""
	// PortraitHash is the hex SHA-256 of the portrait_image the session was created with (""
	// without one): a second create for the open session may not bring another portrait.
	PortraitHash string
	Attempts     int    // captures made on the hosted page
	IPAddress    string // of the browser that completed the hosted page
	// Results is the JSON of the feature results (liveness checks, face matches, IP
	// analyses); opaque to the store.
	Results    []byte
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ExpiresAt  time.Time
	FinishedAt *time.Time // when the capture concluded or the session expired
}

// VerificationFilter selects sessions for ListVerifications. Empty fields match everything.
type VerificationFilter struct {
	AppID      string
	VendorData string
	Status     string
	Limit      int // default 50
	Offset     int
}

// Review is a decision or note taken on a session by a person or an API call.
type Review struct {
	ID        int64 // assigned by the store
	SessionID string
	Author    string // who decided: an admin username, or "api:<key id>"
	NewStatus string
	Comment   string
	CreatedAt time.Time
}

// VerificationImage is a captured frame kept (sealed) because the application keeps images.
type VerificationImage struct {
	SessionID string
	N         int    // 1, 2, ... in capture order; assigned by the store
	Kind      string // selfie
	Sealed    []byte
	CreatedAt time.Time
}

// VerificationUpdate changes a session atomically, together with the review, images and
// outbox event that go with the change.
type VerificationUpdate struct {
	ID string
	// From lists the statuses the session must have for the update to apply; empty means any.
	From []string
	// Status is the new status; "" keeps it.
	Status string
	// Results replaces the results when not nil.
	Results []byte
	// IPAddress replaces the address when not "".
	IPAddress string
	// AddAttempt counts one more capture.
	AddAttempt bool
	// ResetAttempts sets the capture count back to 0 (a resubmission).
	ResetAttempts bool
	// DropReference deletes the sealed reference template.
	DropReference bool
	// LivenessMethod replaces the session's liveness method when not "".
	LivenessMethod string
	// ExpiresAt replaces the expiry when not nil.
	ExpiresAt *time.Time
	// Finished sets FinishedAt to At.
	Finished bool
	At       time.Time // the new UpdatedAt
	Review   *Review
	Images   []VerificationImage
	// Event is written to the webhook outbox in the same transaction.
	Event *WebhookDelivery
}

// Webhook delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed" // the retry horizon passed, or the application has no webhook URL
	// DeliverySuperseded: a later event of the same session was ready while this one waited
	// for a retry after failing; the later one goes out instead of waiting behind it.
	DeliverySuperseded = "superseded"
)

// WebhookDelivery is one webhook event in the outbox.
type WebhookDelivery struct {
	ID        string // the event_id
	Seq       int64  // assigned by the store: deliveries of a session go out in Seq order
	AppID     string
	SessionID string
	Status    string // the session status the event reports
	// Payload is the event's JSON without its timestamp, which is set at each attempt so that a
	// late retry still passes the receiver's freshness check.
	Payload       []byte
	State         string
	Attempts      int
	NextAttemptAt time.Time
	GiveUpAt      time.Time // no attempt starts after it
	LeaseUntil    *time.Time
	LeaseToken    string
	LastError     string
	CreatedAt     time.Time
	DeliveredAt   *time.Time
}

// DeliveryAttempt is one try at sending a webhook.
type DeliveryAttempt struct {
	DeliveryID string
	N          int // 1, 2, ...
	At         time.Time
	StatusCode int // 0 when no response came
	Error      string
	Duration   time.Duration
}

// DeliveryOutcome is what an attempt concluded: the next state, and when to retry if pending.
type DeliveryOutcome struct {
	State         string
	NextAttemptAt time.Time
	LastError     string
}

// DeliveryFilter selects deliveries for ListDeliveries. Empty fields match everything.
type DeliveryFilter struct {
	SessionID string
	State     string
	Limit     int // default 100
}

// SessionsStorage is what the Sessions API needs. Methods take a context and return errors
// wrapping ErrNotFound, ErrAlreadyExists or ErrStatusChanged where those apply.
type SessionsStorage interface {
	// Applications and their API keys.
	CreateApplication(ctx context.Context, a Application) error
	// LinkUser lets the application reach the user's enrolled face (idempotent: a second link
	// keeps the first one's time and way); UnlinkUser takes it back; UserLinked says whether it
	// may.
	LinkUser(ctx context.Context, appID, userID, via string, at time.Time) error
	UnlinkUser(ctx context.Context, appID, userID string) error
	UserLinked(ctx context.Context, appID, userID string) (bool, error)
	GetApplication(ctx context.Context, id string) (Application, error)
	ListApplications(ctx context.Context) ([]Application, error) // by name, then ID
	UpdateApplication(ctx context.Context, a Application) error
	// CreateAPIKey wraps ErrNotFound when the application does not exist.
	CreateAPIKey(ctx context.Context, k APIKey) error
	GetAPIKeyByHash(ctx context.Context, hash string) (APIKey, error)
	ListAPIKeys(ctx context.Context) ([]APIKey, error) // by creation time, then ID
	// RevokeAPIKey keeps the first revocation time when called again.
	RevokeAPIKey(ctx context.Context, id string, at time.Time) error

	// Workflows.
	CreateWorkflow(ctx context.Context, w Workflow) error
	GetWorkflow(ctx context.Context, id string) (Workflow, error)
	ListWorkflows(ctx context.Context) ([]Workflow, error) // by ID

	// CreateVerification stores a new session and returns it with its Number. A session of the
	// same application, workflow and non-empty vendor data that is still open (OpenStatuses)
	// makes it fail with ErrAlreadyExists: FindOpenVerification returns that one.
	CreateVerification(ctx context.Context, v Verification) (Verification, error)
	GetVerification(ctx context.Context, id string) (Verification, error)
	GetVerificationByToken(ctx context.Context, tokenHash string) (Verification, error)
	FindOpenVerification(ctx context.Context, appID, workflowID, vendorData string) (Verification, error)
	// ListVerifications returns one page, newest first, and how many sessions match in all.
	ListVerifications(ctx context.Context, f VerificationFilter) ([]Verification, int, error)
	// ListDueVerifications lists the sessions whose ExpiresAt is at or before now, oldest first,
	// that are open (OpenStatuses) or Declined and still hold a reference.
	ListDueVerifications(ctx context.Context, now time.Time, limit int) ([]Verification, error)
	// UpdateVerification applies u in one transaction (see VerificationUpdate) and returns the
	// session as stored after it.
	UpdateVerification(ctx context.Context, u VerificationUpdate) (Verification, error)
	// DeleteVerification deletes the session and everything of it: reference template,
	// results, images, reviews, webhook deliveries and their attempts.
	DeleteVerification(ctx context.Context, id string) error
	// PurgeVerifications deletes, like DeleteVerification, the application's sessions that
	// finished before the time and have no webhook delivery pending, and returns how many.
	PurgeVerifications(ctx context.Context, appID string, finishedBefore time.Time) (int64, error)
	ListReviews(ctx context.Context, sessionID string) ([]Review, error)                       // oldest first
	ListVerificationImages(ctx context.Context, sessionID string) ([]VerificationImage, error) // by N

	// Webhook outbox. ClaimDeliveries first marks superseded every pending delivery that has
	// failed at least once, is not leased, and has a later pending event of the same session
	// (so a receiver failing an early event never holds back the verdict); then it leases up to
	// limit pending deliveries due at now (and
	// not leased, or whose lease ran out) until leaseUntil, under a new LeaseToken, skipping
	// any that has a pending delivery of the same session with a smaller Seq. It returns them
	// in Seq order.
	ClaimDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int) ([]WebhookDelivery, error)
	// FinishDeliveryAttempt records the attempt and applies the outcome, and releases the
	// lease, provided the delivery is still leased under leaseToken; otherwise it wraps
	// ErrStatusChanged and changes nothing.
	FinishDeliveryAttempt(ctx context.Context, leaseToken string, a DeliveryAttempt, o DeliveryOutcome) error
	GetDelivery(ctx context.Context, id string) (WebhookDelivery, error)
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]WebhookDelivery, error)        // newest first
	ListDeliveryAttempts(ctx context.Context, deliveryID string) ([]DeliveryAttempt, error) // by N
}
