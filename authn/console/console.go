// Package console is the review console of the Sessions API: an admin web UI under /console
// that lists verification sessions by status with their signals (scores, liveness method,
// warnings, IP analysis, the kept frames when the application keeps images), shows each
// webhook with every delivery attempt, and lets an operator approve or decline the sessions in
// review with a comment (which fires the webhook). It is protected by the IdP itself: the
// console is a relying party of Visage's own OpenID provider (authorization code flow with
// PKCE, ID token verified with go-oidc, acr of at least a selfie, a fresh sign-in), and only
// users with the admin role get in; the role is checked again on every request.
package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/a-h/templ"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/sessions"
	"github.com/visage-idp/visage/oidc"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/templates"
)

// ClientID is the console's OIDC client, registered at start-up.
const ClientID = "visage-console"

// CallbackPath is the console's redirect URI path.
const CallbackPath = "/console/callback"

// Cookie names (both Path=/console).
const (
	sessionCookie = "visage_console"
	flowCookie    = "visage_console_flow"
)

// Store is what the console reads.
type Store interface {
	store.SessionsStorage
	GetUser(ctx context.Context, id string) (store.User, error)
	GetSession(ctx context.Context, id string) (store.Session, error)
	RevokeSession(ctx context.Context, id string, at time.Time) error
}

// Config holds the console's settings.
type Config struct {
	Issuer string
	// HashKey (64 bytes) and BlockKey (32 bytes) protect the console's cookies.
	HashKey, BlockKey []byte
	Secure            bool          // Secure cookies (https issuer)
	SessionTTL        time.Duration // how long a console sign-in lasts (default 8 h)
	// HTTPClient talks to the provider (discovery, token endpoint); nil means a client with a
	// 10 s timeout.
	HTTPClient *http.Client
}

// Deps are the services the console calls.
type Deps struct {
	Sessions *sessions.Service
	Store    Store
	Keys     *face.KeyRing
	Log      *slog.Logger
	// EndSession ends the Visage SSO session a console sign-in rests on (revocation, grants,
	// back-channel logout); nil revokes the session record only.
	EndSession func(ctx context.Context, sid string) error
}

// Console serves the review console.
type Console struct {
	cfg    Config
	svc    *sessions.Service
	st     Store
	keys   *face.KeyRing
	log    *slog.Logger
	end    func(ctx context.Context, sid string) error
	cookie *securecookie.SecureCookie
	now    func() time.Time

	mu       sync.Mutex
	provider *gooidc.Provider // discovered on first use: the server may still be starting
}

// New returns the console.
func New(cfg Config, d Deps) (*Console, error) {
	if len(cfg.HashKey) < 32 || len(cfg.BlockKey) != 32 {
		return nil, errors.New("console: cookie keys: want a hash key of at least 32 bytes and a 32-byte block key")
	}
	if d.Sessions == nil || d.Store == nil || d.Keys == nil || d.Log == nil {
		return nil, errors.New("console: sessions service, store, key ring and logger are required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	c := securecookie.New(cfg.HashKey, cfg.BlockKey)
	c.MaxAge(int(cfg.SessionTTL.Seconds()))
	con := &Console{cfg: cfg, svc: d.Sessions, st: d.Store, keys: d.Keys, log: d.Log, cookie: c, end: d.EndSession, now: func() time.Time { return time.Now().UTC() }}
	if con.end == nil {
		con.end = func(ctx context.Context, sid string) error { return d.Store.RevokeSession(ctx, sid, con.now()) }
	}
	return con, nil
}

// Client returns the OIDC client record the console needs (public, PKCE, first party).
func Client(issuer string, now time.Time) store.Client {
	return store.Client{ID: ClientID, Name: "Visage console", Public: true, AuthMethod: "none", FirstParty: true,
		RedirectURIs: []string{issuer + CallbackPath}, IDTokenSigningAlg: oidc.AlgRS256, CreatedAt: now}
}

// Routes registers the console on mux.
func (c *Console) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /console", c.admin(c.list))
	mux.HandleFunc("GET /console/sessions/{id}", c.admin(c.session))
	mux.HandleFunc("GET /console/sessions/{id}/images/{n}", c.admin(c.image))
	mux.HandleFunc("POST /console/sessions/{id}/decide", c.admin(c.decide))
	mux.HandleFunc("POST /console/sessions/{id}/delete", c.admin(c.remove))
	mux.HandleFunc("POST /console/logout", c.admin(c.logout))
	mux.HandleFunc("GET /console/login", c.login)
	mux.HandleFunc("GET "+CallbackPath, c.callback)
}

// signIn is the console's sign-in, in its cookie. It rests on the Visage SSO session SID (the
// ID token's sid): when that session ends (sign-out here, logout anywhere, revocation) the
// console sign-in ends with it, whatever the cookie says.
type signIn struct {
	UserID   string
	Username string
	SID      string
	CSRF     string
	Expires  time.Time
}

type flowState struct {
	State, Nonce, Verifier, Next string
}

func random() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (c *Console) setCookie(w http.ResponseWriter, name string, v any, maxAge time.Duration) error {
	enc, err := c.cookie.Encode(name, v)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: enc, Path: "/console", HttpOnly: true, Secure: c.cfg.Secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(maxAge.Seconds())})
	return nil
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/console", HttpOnly: true, MaxAge: -1})
}

// handler is a handler for a signed-in administrator.
type handler func(w http.ResponseWriter, r *http.Request, who signIn)

// admin lets the request through if its cookie names a user who is still an administrator;
// otherwise a GET goes to the sign-in and anything else is refused.
func (c *Console) admin(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Frame-Options", "DENY")
		var who signIn
		ck, err := r.Cookie(sessionCookie)
		ok := err == nil && c.cookie.Decode(sessionCookie, ck.Value, &who) == nil && c.now().Before(who.Expires)
		if ok {
			u, live, err := c.current(r.Context(), who)
			switch {
			case err != nil:
				c.fail(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side.", err)
				return
			case !live:
				ok = false
			case !u.Admin:
				clearCookie(w, sessionCookie)
				c.render(w, r, http.StatusForbidden, templates.ConsoleDeniedPage(u.Username))
				return
			}
		}
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login?next="+urlEscape(r.URL.RequestURI()), http.StatusFound)
				return
			}
			c.render(w, r, http.StatusUnauthorized, templates.ErrorPage("Signed out", "Your console sign-in has expired. Sign in again."))
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf_token")), []byte(who.CSRF)) != 1 {
				c.render(w, r, http.StatusForbidden, templates.ErrorPage("Form expired", "The form's security token is missing or wrong. Go back and reload."))
				return
			}
		}
		h(w, r, who)
	}
}

// current loads the user a console sign-in names; live is false when the user is gone or the
// SSO session the sign-in rests on has ended.
func (c *Console) current(ctx context.Context, who signIn) (u store.User, live bool, err error) {
	ss, err := c.st.GetSession(ctx, who.SID)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, nil
	} else if err != nil {
		return store.User{}, false, err
	}
	if ss.RevokedAt != nil || !c.now().Before(ss.ExpiresAt) || ss.UserID != who.UserID {
		return store.User{}, false, nil
	}
	u, err = c.st.GetUser(ctx, who.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false, nil
	}
	return u, err == nil, err
}

func (c *Console) discover(ctx context.Context) (*gooidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	p, err := gooidc.NewProvider(gooidc.ClientContext(ctx, c.cfg.HTTPClient), c.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("console: discovery: %w", err)
	}
	c.provider = p
	return p, nil
}

func (c *Console) oauth(p *gooidc.Provider) *oauth2.Config {
	// A public client: client_id in the body, no Basic header (the provider accepts only the
	// registered method, and x/oauth2 would otherwise try Basic first).
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{ClientID: ClientID, Endpoint: ep, RedirectURL: c.cfg.Issuer + CallbackPath,
		Scopes: []string{gooidc.ScopeOpenID, "profile"}}
}

// login starts the code flow: a fresh selfie (prompt=login) at the selfie level at least.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	p, err := c.discover(r.Context())
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "Console unavailable", "The identity provider could not be reached.", err)
		return
	}
	next := r.URL.Query().Get("next")
	if !safeNext(next) {
		next = "/console"
	}
	st := flowState{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Next: next}
	if err := c.setCookie(w, flowCookie, st, 10*time.Minute); err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side.", err)
		return
	}
	u := c.oauth(p).AuthCodeURL(st.State, gooidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier),
		oauth2.SetAuthURLParam("acr_values", oidc.ACRSelfie), oauth2.SetAuthURLParam("prompt", "login"))
	http.Redirect(w, r, u, http.StatusFound)
}

// safeNext accepts only console paths as the place to return to.
func safeNext(next string) bool {
	return len(next) > len("/console") && next[:len("/console")] == "/console" && (next[len("/console")] == '/' || next[len("/console")] == '?') ||
		next == "/console"
}

// callback finishes the code flow, verifies the ID token and opens a console session for an
// administrator.
func (c *Console) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var st flowState
	ck, err := r.Cookie(flowCookie)
	if err != nil || c.cookie.Decode(flowCookie, ck.Value, &st) != nil {
		c.fail(w, r, http.StatusBadRequest, "Sign-in failed", "No console sign-in is in progress. Start again from /console.", fmt.Errorf("flow cookie missing or invalid"))
		return
	}
	clearCookie(w, flowCookie)
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1 {
		c.fail(w, r, http.StatusBadRequest, "Sign-in failed", "The answer does not belong to this sign-in.", fmt.Errorf("state mismatch"))
		return
	}
	if e := q.Get("error"); e != "" {
		c.fail(w, r, http.StatusForbidden, "Sign-in failed", "The identity provider refused the sign-in: "+e, fmt.Errorf("%s: %s", e, q.Get("error_description")))
		return
	}
	p, err := c.discover(ctx)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "Console unavailable", "The identity provider could not be reached.", err)
		return
	}
	tok, err := c.oauth(p).Exchange(gooidc.ClientContext(ctx, c.cfg.HTTPClient), q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "Sign-in failed", "The code could not be exchanged.", fmt.Errorf("code exchange: %w", err))
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&gooidc.Config{ClientID: ClientID}).Verify(ctx, raw)
	if err != nil {
		c.fail(w, r, http.StatusForbidden, "Sign-in failed", "The ID token did not verify.", fmt.Errorf("ID token: %w", err))
		return
	}
	var claims struct {
		ACR string `json:"acr"`
		SID string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil {
		c.fail(w, r, http.StatusForbidden, "Sign-in failed", "The ID token is malformed.", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		c.fail(w, r, http.StatusForbidden, "Sign-in failed", "The ID token is not for this sign-in.", fmt.Errorf("nonce mismatch"))
		return
	}
	if oidc.ACRLevel(claims.ACR) < oidc.ACRLevel(oidc.ACRSelfie) {
		c.fail(w, r, http.StatusForbidden, "Sign-in failed", "The console needs a selfie sign-in.", fmt.Errorf("acr %q below %s", claims.ACR, oidc.ACRSelfie))
		return
	}
	u, err := c.st.GetUser(ctx, idt.Subject)
	if err != nil {
		c.fail(w, r, http.StatusForbidden, "Sign-in failed", "Unknown account.", fmt.Errorf("user %s: %w", idt.Subject, err))
		return
	}
	if !u.Admin {
		c.log.WarnContext(ctx, "console sign-in refused: not an administrator", "user", u.ID)
		c.render(w, r, http.StatusForbidden, templates.ConsoleDeniedPage(u.Username))
		return
	}
	if claims.SID == "" {
		c.fail(w, r, http.StatusForbidden, "Sign-in failed", "The ID token names no session.", errors.New("ID token without sid"))
		return
	}
	who := signIn{UserID: u.ID, Username: u.Username, SID: claims.SID, CSRF: random(), Expires: c.now().Add(c.cfg.SessionTTL)}
	if err := c.setCookie(w, sessionCookie, who, c.cfg.SessionTTL); err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side.", err)
		return
	}
	c.log.InfoContext(ctx, "console sign-in", "user", u.ID, "acr", claims.ACR)
	http.Redirect(w, r, st.Next, http.StatusFound)
}

// logout ends the SSO session the console sign-in rests on, server-side, then the cookie.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, who signIn) {
	if err := c.end(r.Context(), who.SID); err != nil {
		c.fail(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side; you are still signed in.", err)
		return
	}
	clearCookie(w, sessionCookie)
	c.log.InfoContext(r.Context(), "console sign-out", "user", who.UserID)
	http.Redirect(w, r, "/logged-out", http.StatusSeeOther)
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, comp templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := comp.Render(r.Context(), w); err != nil {
		c.log.ErrorContext(r.Context(), "console render", "err", err)
	}
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, title, msg string, err error) {
	if status >= 500 {
		c.log.ErrorContext(r.Context(), "console", "err", err)
	} else {
		c.log.WarnContext(r.Context(), "console", "err", err)
	}
	c.render(w, r, status, templates.ErrorPage(title, msg))
}
