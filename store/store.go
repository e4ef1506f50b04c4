// Package store defines Visage's persistence: one Storage interface over users, sealed face
// templates, OAuth clients, authorization requests and codes, tokens and their grants, browser
// sessions, consents, signing keys and sign-in attempts. Backends live in sub-packages
// (store/sqlite, and store/postgres for more than one node) and must all pass the conformance
// suite in store/storetest. The package knows nothing of OIDC or faces: templates are opaque
// sealed blobs and keys are opaque encoded bytes.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every backend returns (wrapped with context), so callers can test with errors.Is.
var (
	// ErrNotFound: no record with that key.
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists: a record with that key (or unique field) exists.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrAlreadyUsed: a single-use record (authorization code, refresh token) was used before.
	ErrAlreadyUsed = errors.New("store: already used")
	// ErrEmailTaken: another user has this email address (compared case-insensitively). Errors
	// wrapping it wrap ErrAlreadyExists too.
	ErrEmailTaken = errors.New("store: email address taken")
)

// User is an account. The username is unique and case-sensitive as stored (callers normalise).
// A non-empty Email is unique case-insensitively; EmailVerified is set only by an operator.
type User struct {
	ID            string
	Username      string
	DisplayName   string
	Email         string
	EmailVerified bool
	Admin         bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Template is a user's face template, sealed by the biometric key ring: the store never sees
// descriptors in the clear. A user has at most one template; PutTemplate replaces it.
type Template struct {
	UserID       string
	KeyID        string // id of the biometric key that sealed Sealed (also inside the blob)
	ModelVersion string
	Sealed       []byte
	CreatedAt    time.Time
}

// Client is a registered OAuth 2.0 / OIDC relying party.
type Client struct {
	ID                     string
	SecretHash             string // bcrypt/argon-style hash produced by the caller; empty for public clients
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	Public                 bool   // no secret; PKCE required
	AuthMethod             string // client_secret_basic | client_secret_post | private_key_jwt | none
	JWKS                   []byte // public keys for private_key_jwt (JSON Web Key Set), if any
	FirstParty             bool   // consent is skipped
	IDTokenSigningAlg      string // RS256 (default) or ES256
	ClaimsInIDToken        bool   // put profile/email claims in the ID token as well as userinfo
	BackchannelLogoutURI   string // OIDC Back-Channel Logout 1.0: where logout tokens are posted; empty for none
	AccessTokenTTL         time.Duration
	RefreshTokenTTL        time.Duration
	CreatedAt              time.Time
	// WebOrigins are the browser origins (scheme://host[:port]) allowed to call the token,
	// userinfo, keys, discovery and revocation endpoints cross-origin (CORS).
	WebOrigins []string
	// JWKSURI is where the client publishes its private_key_jwt keys, fetched and cached by
	// the provider; an alternative to a static JWKS.
	JWKSURI string
	// ResourceServerFor lists the clients whose access tokens this client may introspect.
	ResourceServerFor []string
}

// AuthRequest is an authorization request in flight, from /authorize until the code is issued.
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	State               string
	Nonce               string
	Scopes              []string
	ResponseType        string
	ResponseMode        string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              []string
	MaxAge              *time.Duration
	LoginHint           string
	ACRValues           []string
	UILocales           []string
	CreatedAt           time.Time
	ExpiresAt           time.Time

	// Set when the user has authenticated.
	UserID    string
	SessionID string
	AuthTime  time.Time
	AMR       []string
	ACR       string
	Done      bool
}

// AuthCode binds an issued authorization code (stored as a hash) to its request. Codes are
// single-use: UseAuthCode marks it used and a second use returns ErrAlreadyUsed along with the
// code record, whose GrantID then lets the caller revoke what the first exchange issued.
type AuthCode struct {
	CodeHash      string
	AuthRequestID string
	GrantID       string // set when the code is exchanged; tokens from the exchange carry it
	ExpiresAt     time.Time
	UsedAt        *time.Time
}

// Grant groups every token issued from one authorization (one code exchange and all the
// refreshes that follow). Revoking a grant revokes all its access and refresh tokens.
type Grant struct {
	ID        string
	ClientID  string
	UserID    string
	SessionID string
	Scopes    []string
	Audience  []string
	AuthTime  time.Time
	AMR       []string
	ACR       string
	CreatedAt time.Time
	RevokedAt *time.Time
}

// AccessToken is an opaque access token (stored by ID; the bearer value carries the ID).
type AccessToken struct {
	ID        string
	GrantID   string
	ClientID  string
	UserID    string
	Scopes    []string
	Audience  []string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// RefreshToken is a single-use refresh token, stored by the hash of its value. Rotation marks the
// old one used (UsedAt) and issues a new one in the same grant; presenting a used one is reuse.
type RefreshToken struct {
	TokenHash string
	GrantID   string
	ClientID  string
	UserID    string
	Scopes    []string
	Audience  []string
	AuthTime  time.Time
	AMR       []string
	ACR       string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
	RevokedAt *time.Time
}

// Session is a browser single-sign-on session (the OIDC `sid`).
type Session struct {
	ID        string
	UserID    string
	AuthTime  time.Time
	AMR       []string
	ACR       string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt *time.Time
}

// Consent records the scopes a user granted a client.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
}

// SigningKey is a token-signing key. Private is the encoded private key (a JWK, opaque here).
// The active key for an algorithm is the newest with RetiredAt unset; retired keys stay published
// until PublishUntil, then may be deleted.
type SigningKey struct {
	ID           string
	Algorithm    string // RS256, ES256
	Private      []byte
	CreatedAt    time.Time
	RetiredAt    *time.Time
	PublishUntil *time.Time
}

// Attempt is one selfie sign-in attempt, for lockout accounting.
type Attempt struct {
	UserID   string
	IP       string
	DeviceID string // the device cookie's id, "" without one
	Success  bool
	At       time.Time
}

// Storage is what every backend implements. Methods take a context and return errors wrapping
// ErrNotFound, ErrAlreadyExists or ErrAlreadyUsed where those apply.
type Storage interface {
	// Users.
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByUsername(ctx context.Context, username string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	UpdateUser(ctx context.Context, u User) error
	// DeleteUser removes the user and everything bound to it: template, sessions, grants and
	// their tokens, consents, attempts.
	DeleteUser(ctx context.Context, id string) error
	// CreateUserWithTemplate creates the user and its template atomically: the account exists
	// only if enrolment succeeded.
	CreateUserWithTemplate(ctx context.Context, u User, t Template) error

	// Face templates (sealed).
	PutTemplate(ctx context.Context, t Template) error
	GetTemplate(ctx context.Context, userID string) (Template, error)
	DeleteTemplate(ctx context.Context, userID string) error

	// Clients.
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	UpdateClient(ctx context.Context, c Client) error
	DeleteClient(ctx context.Context, id string) error

	// Authorization requests and codes.
	CreateAuthRequest(ctx context.Context, r AuthRequest) error
	GetAuthRequest(ctx context.Context, id string) (AuthRequest, error)
	UpdateAuthRequest(ctx context.Context, r AuthRequest) error
	DeleteAuthRequest(ctx context.Context, id string) error
	CreateAuthCode(ctx context.Context, c AuthCode) error
	GetAuthCode(ctx context.Context, codeHash string) (AuthCode, error)
	// UseAuthCode marks the code used and records grantID. If it was used already it returns
	// the stored code and an error wrapping ErrAlreadyUsed.
	UseAuthCode(ctx context.Context, codeHash, grantID string, at time.Time) (AuthCode, error)

	// Grants and tokens.
	CreateGrant(ctx context.Context, g Grant) error
	GetGrant(ctx context.Context, id string) (Grant, error)
	// ListSessionGrants returns the grants issued in a browser session (revoked ones included),
	// oldest first.
	ListSessionGrants(ctx context.Context, sessionID string) ([]Grant, error)
	// RevokeGrant revokes the grant and every access and refresh token in it.
	RevokeGrant(ctx context.Context, id string, at time.Time) error
	CreateAccessToken(ctx context.Context, t AccessToken) error
	GetAccessToken(ctx context.Context, id string) (AccessToken, error)
	RevokeAccessToken(ctx context.Context, id string, at time.Time) error
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	GetRefreshToken(ctx context.Context, tokenHash string) (RefreshToken, error)
	// RotateRefreshToken marks oldHash used and stores next, atomically. If oldHash was used
	// already it stores nothing and returns the old token and an error wrapping ErrAlreadyUsed.
	RotateRefreshToken(ctx context.Context, oldHash string, next RefreshToken, at time.Time) (RefreshToken, error)
	RevokeRefreshToken(ctx context.Context, tokenHash string, at time.Time) error

	// Browser sessions.
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// RevokeUserSessions revokes every session of the user and returns how many.
	RevokeUserSessions(ctx context.Context, userID string, at time.Time) (int, error)

	// Consents.
	PutConsent(ctx context.Context, c Consent) error
	GetConsent(ctx context.Context, userID, clientID string) (Consent, error)

	// Signing keys.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// RetireSigningKey sets RetiredAt and PublishUntil on the key.
	RetireSigningKey(ctx context.Context, id string, retiredAt, publishUntil time.Time) error
	DeleteSigningKey(ctx context.Context, id string) error

	// Sign-in attempts, for lockout.
	RecordAttempt(ctx context.Context, a Attempt) error
	// CountFailures counts failed attempts for the user since the time, stopping at the most
	// recent success (a success resets the count).
	CountFailures(ctx context.Context, userID string, since time.Time) (int, error)

	// UseClientAssertion records the jti of a client's private_key_jwt assertion until
	// expiresAt. A jti the client used before (and not yet collected) returns an error
	// wrapping ErrAlreadyUsed.
	UseClientAssertion(ctx context.Context, clientID, jti string, expiresAt time.Time) error

	// GarbageCollect deletes expired auth requests, codes, tokens and sessions, and keys whose
	// PublishUntil has passed, and client assertion ids past their expiry, as of now; and the
	// attempts, audit events and token-less grants older than keep says. It returns how many
	// records it removed.
	GarbageCollect(ctx context.Context, now time.Time, keep Retention) (int64, error)

	Close() error
}

// Retention says how long GarbageCollect keeps the records that do not expire by themselves; a
// zero duration keeps them for ever.
type Retention struct {
	// Attempts: sign-in attempts. Lockout windows and known networks are read from them, so
	// keep them at least as long as the longer of the two.
	Attempts time.Duration
	// Audit: audit events.
	Audit time.Duration
	// Grants: a grant with no code, access token or refresh token left, from its creation.
	Grants time.Duration
}
