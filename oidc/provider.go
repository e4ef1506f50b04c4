package oidc

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/visage-idp/visage/store"
)

// Authentication context classes Visage emits and accepts in acr_values, weakest first.
const (
	// ACRDevice: signed in on existing trust (known device and IP), no selfie this time.
	ACRDevice = "urn:visage:acr:device"
	// ACRSelfie: a selfie was matched against the enrolled face in this sign-in.
	ACRSelfie = "urn:visage:acr:selfie"
	// ACRActive: a selfie with an active liveness challenge in this sign-in.
	ACRActive = "urn:visage:acr:active"
)

// ACRLevel orders the acr values; unknown values rank 0.
func ACRLevel(acr string) int {
	switch acr {
	case ACRDevice:
		return 1
	case ACRSelfie:
		return 2
	case ACRActive:
		return 3
	}
	return 0
}

// Config configures the provider.
type Config struct {
	Issuer    string
	CryptoKey [32]byte // encrypts opaque access tokens and codes; from the data directory
	Lifetimes Lifetimes
	// LoginPath is the path of the login page; the auth request id is appended as
	// ?authRequestID=.
	LoginPath string
	// LoggedOutPath is where end_session lands without a post_logout_redirect_uri.
	LoggedOutPath string
	// BindingKey keys the MAC in the cookie that binds each authorization request to the browser
	// that started it (at least 32 bytes; random per process when empty, which is enough for one
	// node whose sign-ins may be lost on restart).
	BindingKey []byte
	// ErrorPage renders an HTML error page (the refusal of an unbound callback); plain text when nil.
	ErrorPage func(w http.ResponseWriter, r *http.Request, status int, title, msg string)
	// BackchannelClient posts Back-Channel Logout tokens (nil: a client with a 5 s timeout).
	BackchannelClient *http.Client
	Logger            *slog.Logger
	Now               func() time.Time
}

// Provider is the OpenID Provider with the hooks the login pages need.
type Provider struct {
	op      *op.Provider
	storage *Storage
	store   store.Storage
	issuer  string
	handler http.Handler
	// basePath is the issuer's path ("" for an issuer at the root).
	basePath string
	jwks     *jwksCache
	now      func() time.Time
	log      *slog.Logger

	binder    binder // browser binding of auth requests (binding.go)
	host      string // the issuer's host:port
	loginPath string // basePath + Config.LoginPath
	errorPage func(w http.ResponseWriter, r *http.Request, status int, title, msg string)

	httpClient         *http.Client  // back-channel logout
	backchannelTimeout time.Duration // per logout token
}

// NewProvider builds the provider over st.
func NewProvider(cfg Config, st store.Storage) (*Provider, error) {
	if cfg.Lifetimes == (Lifetimes{}) {
		cfg.Lifetimes = DefaultLifetimes()
	}
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("oidc: issuer %q must be an absolute http(s) URL", cfg.Issuer)
	}
	insecure := u.Scheme == "http"
	base := strings.TrimSuffix(u.Path, "/")
	loginURL := func(id string) string { return base + cfg.LoginPath + "?authRequestID=" + url.QueryEscape(id) }
	storage := NewStorage(st, cfg.Lifetimes, loginURL, insecure, cfg.Now, cfg.Logger)
	opCfg := &op.Config{
		CryptoKey:                cfg.CryptoKey,
		CryptoKeyId:              fmt.Sprintf("%x", sha256.Sum256(cfg.CryptoKey[:]))[:8],
		DefaultLogoutRedirectURI: base + cfg.LoggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		AuthMethodPrivateKeyJWT:  true,
		GrantTypeRefreshToken:    true,
		// Back-Channel Logout 1.0, with sid in the logout token (see logout.go).
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
		SupportedClaims:                   supportedClaims,
		SupportedScopes:                   []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess},
	}
	// No CORS from zitadel (it reflects any Origin with credentials on every path): harden
	// answers CORS itself.
	opts := []op.Option{op.WithLogger(cfg.Logger), op.WithCORSOptions(nil)}
	if insecure {
		opts = append(opts, op.WithAllowInsecure())
	}
	p, err := op.NewProvider(opCfg, storage, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidc: provider: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	key := cfg.BindingKey
	if len(key) == 0 {
		key = []byte(randomID(32))
	} else if len(key) < 32 {
		return nil, errors.New("oidc: the binding key must be at least 32 bytes")
	}
	if cfg.ErrorPage == nil {
		cfg.ErrorPage = func(w http.ResponseWriter, _ *http.Request, status int, title, msg string) {
			http.Error(w, title+": "+msg, status)
		}
	}
	if cfg.BackchannelClient == nil {
		cfg.BackchannelClient = &http.Client{Timeout: 5 * time.Second}
	}
	prov := &Provider{op: p, storage: storage, store: st, issuer: cfg.Issuer, basePath: base, now: now, log: logger,
		jwks: newJWKSCache(now), host: u.Host, loginPath: base + cfg.LoginPath,
		binder: binder{key: key, secure: !insecure, ttl: cfg.Lifetimes.AuthRequest}, errorPage: cfg.ErrorPage,
		httpClient: cfg.BackchannelClient, backchannelTimeout: 5 * time.Second}
	prov.handler = prov.harden(prov.bindBrowser(withTokenClient(p)))
	return prov, nil
}

// Handler serves the provider's endpoints (discovery, /authorize, /oauth/token, /keys, ...).
func (p *Provider) Handler() http.Handler { return p.handler }

// Storage returns the op.Storage adapter.
func (p *Provider) Storage() *Storage { return p.storage }

// withTokenClient puts the requesting client's id in the context of token requests, so the ID
// token is signed with that client's algorithm.
func withTokenClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth/token") {
			id, _, ok := r.BasicAuth()
			if ok {
				id, _ = url.QueryUnescape(id)
			} else if err := r.ParseForm(); err == nil {
				id = r.PostForm.Get("client_id")
			}
			if id != "" {
				r = r.WithContext(withClientID(r.Context(), id))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// LoginRequest is what the login pages need to know about an authorization request.
type LoginRequest struct {
	ID         string
	ClientID   string
	ClientName string
	FirstParty bool
	Scopes     []string
	Prompt     []string
	MaxAge     *time.Duration
	LoginHint  string
	ACRValues  []string
	CreatedAt  time.Time
	// Authenticated: somebody signed in for it (UserID, SessionID); Done: it may issue a code.
	Authenticated bool
	Done          bool
	UserID        string
	SessionID     string
}

// HasPrompt reports whether the request carries prompt=p.
func (l LoginRequest) HasPrompt(p string) bool { return slices.Contains(l.Prompt, p) }

// RequiredACR is the strongest acr the relying party asked for in acr_values (empty if none
// known), so the login never grants less than asked.
func (l LoginRequest) RequiredACR() string {
	best := ""
	for _, v := range l.ACRValues {
		if ACRLevel(v) > ACRLevel(best) {
			best = v
		}
	}
	return best
}

// LoginRequest loads a live authorization request for the login pages.
func (p *Provider) LoginRequest(ctx context.Context, id string) (LoginRequest, error) {
	req, err := p.storage.AuthRequestByID(ctx, id)
	if err != nil {
		return LoginRequest{}, err
	}
	ar := req.(*authRequest)
	c, err := p.store.GetClient(ctx, ar.ClientID)
	if err != nil {
		return LoginRequest{}, fmt.Errorf("login request client: %w", err)
	}
	name := c.Name
	if name == "" {
		name = c.ID
	}
	return LoginRequest{
		ID: ar.ID, ClientID: ar.ClientID, ClientName: name, FirstParty: c.FirstParty, Scopes: ar.Scopes,
		Prompt: ar.Prompt, MaxAge: ar.MaxAge, LoginHint: ar.LoginHint, ACRValues: ar.ACRValues,
		CreatedAt: ar.CreatedAt, Authenticated: ar.UserID != "", Done: ar.AuthRequest.Done, UserID: ar.UserID, SessionID: ar.SessionID,
	}, nil
}

// Authentication is the outcome of a successful login.
type Authentication struct {
	UserID    string
	SessionID string
	AuthTime  time.Time
	AMR       []string
	ACR       string
}

// Authenticate records who signed in for the request. The request is not complete yet: the
// callback issues no code until Approve (after consent, or when none is needed).
func (p *Provider) Authenticate(ctx context.Context, id string, a Authentication) error {
	ar, err := p.store.GetAuthRequest(ctx, id)
	if err != nil {
		return fmt.Errorf("authenticate auth request: %w", err)
	}
	ar.UserID, ar.SessionID, ar.AuthTime, ar.AMR, ar.ACR, ar.Done = a.UserID, a.SessionID, a.AuthTime.UTC(), a.AMR, a.ACR, false
	if err := p.store.UpdateAuthRequest(ctx, ar); err != nil {
		return fmt.Errorf("authenticate auth request: %w", err)
	}
	return nil
}

// Approve completes an authenticated request (consent given or not needed) and returns the URL
// that issues the code.
func (p *Provider) Approve(ctx context.Context, id string) (string, error) {
	ar, err := p.store.GetAuthRequest(ctx, id)
	if err != nil {
		return "", fmt.Errorf("approve auth request: %w", err)
	}
	if ar.UserID == "" {
		return "", errors.New("approve auth request: nobody has signed in for it")
	}
	ar.Done = true
	if err := p.store.UpdateAuthRequest(ctx, ar); err != nil {
		return "", fmt.Errorf("approve auth request: %w", err)
	}
	return p.CallbackURL(ctx, id), nil
}

// CallbackURL is the provider URL that turns a completed request into a code redirect.
func (p *Provider) CallbackURL(ctx context.Context, id string) string {
	return op.AuthCallbackURL(p.op)(op.ContextWithIssuer(ctx, p.issuer), id)
}

// RedirectError ends the request for good (it is deleted, so its callback never issues a code)
// and sends the OAuth error (login_required, access_denied, ...) to the relying party's
// registered redirect URI.
func (p *Provider) RedirectError(w http.ResponseWriter, r *http.Request, id string, e *oidc.Error) {
	req, err := p.storage.AuthRequestByID(r.Context(), id)
	if err != nil {
		p.errorPage(w, r, http.StatusBadRequest, "Sign-in expired", "This sign-in request is unknown or has expired. Go back to the application and start again.")
		return
	}
	if err := p.storage.DeleteAuthRequest(r.Context(), id); err != nil {
		p.log.ErrorContext(r.Context(), "end auth request", "err", err)
		p.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	}
	p.binder.clear(w, id)
	op.AuthRequestError(&issWriter{ResponseWriter: w, iss: p.issuer}, r.WithContext(op.ContextWithIssuer(r.Context(), p.issuer)), req, e, p.op)
}

// ErrLoginRequired and ErrAccessDenied are the OAuth errors the login pages
// return to relying parties.
func ErrLoginRequired() *oidc.Error { return oidc.ErrLoginRequired() }
func ErrAccessDenied() *oidc.Error  { return oidc.ErrAccessDenied() }

// ErrConsentRequired answers prompt=none when the user has not yet consented (zitadel/oidc has
// no consent_required constructor, so it is interaction_required with a description).
func ErrConsentRequired() *oidc.Error {
	return oidc.ErrInteractionRequired().WithDescription("consent_required: the user has not consented to this client")
}
