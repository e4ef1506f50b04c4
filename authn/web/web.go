// Package web serves Visage's browser pages: the username and selfie steps of the login, face
// enrolment, consent and the logged-out page. Handlers are thin: parse, call the Verifier or the
// OIDC provider, render a templ page or answer JSON to the capture script. Browser state lives
// in a gorilla/sessions cookie (HttpOnly, SameSite=Lax, Secure under https) that carries the
// CSRF token, the pending login and the id of the server-side SSO session.
package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/gorilla/sessions"

	"github.com/visage-idp/visage/authn"
	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/risk"
	"github.com/visage-idp/visage/authn/words"
	"github.com/visage-idp/visage/oidc"
	"github.com/visage-idp/visage/static"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/templates"
)

// Config holds the page-level settings.
type Config struct {
	// CookieKeys are the gorilla/securecookie hash (64 bytes) and block (32 bytes) keys.
	CookieHashKey, CookieBlockKey []byte
	// DeviceHashKey and DeviceBlockKey protect the device cookie (keys of its own).
	DeviceHashKey, DeviceBlockKey []byte
	DeviceTTL                     time.Duration // device cookie lifetime
	Secure                        bool          // Secure cookies (the issuer is https)
	SessionTTL                    time.Duration // SSO session lifetime
	MaxFailures                   int           // failed selfies per account before lockout
	MaxIPFailures                 int           // failed selfies per client address before lockout
	FailureWindow                 time.Duration // sliding window for both
	MaxUploadBytes                int64         // whole request body limit for selfie posts
	KeepEnrolmentImage            bool          // keep the enrolment photo (sealed) in the template
	ReenrolWindow                 time.Duration // re-enrolment is allowed this long after a selfie sign-in

	Policy         risk.Policy
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For is believed
	KnownIPWindow  time.Duration  // an address is known if the user signed in from it this recently
	IPv4Bits       int            // ... or from the same /IPv4Bits network
	IPv6Bits       int            // ... or the same /IPv6Bits network
}

// DefaultConfig returns the documented defaults (keys must still be set).
func DefaultConfig() Config {
	return Config{SessionTTL: 12 * time.Hour, MaxFailures: 5, MaxIPFailures: 20, FailureWindow: 15 * time.Minute, MaxUploadBytes: 3 << 20,
		DeviceTTL: 400 * 24 * time.Hour, ReenrolWindow: 5 * time.Minute, Policy: risk.DefaultPolicy(), KnownIPWindow: 90 * 24 * time.Hour, IPv4Bits: 24, IPv6Bits: 64}
}

// Store is what the pages need from the storage backend.
type Store interface {
	store.Storage
	store.RiskStorage
}

// Deps are the services the pages call.
type Deps struct {
	Provider *oidc.Provider
	Store    Store
	Engine   *face.Engine
	Keys     *face.KeyRing
	Tor, VPN *risk.List // address lists; nil means empty
	// Passive runs PASSIVE liveness on every selfie; Challenger issues and verifies the
	// ACTIVE_3D and FLASHING challenges. Without them the pages match faces only and refuse
	// sign-ins that need an active challenge.
	Passive    *liveness.Passive
	Challenger *liveness.Challenger
	Log        *slog.Logger
	// Now is the clock of lockout windows, audit times and re-enrolment windows; nil means
	// time.Now. Tests set it to move time without sleeping.
	Now func() time.Time
}

// Server holds the dependencies of the pages.
type Server struct {
	cfg      Config
	provider *oidc.Provider
	store    Store
	engine   *face.Engine
	keys     *face.KeyRing
	verifier *authn.Verifier
	passive  *liveness.Passive
	chall    *liveness.Challenger
	cookies  *sessions.CookieStore
	devices  *risk.DeviceCookies
	tor, vpn *risk.List
	metrics  *Metrics
	log      *slog.Logger
	now      func() time.Time
}

// New returns the page server.
func New(cfg Config, d Deps) *Server {
	cs := sessions.NewCookieStore(cfg.CookieHashKey, cfg.CookieBlockKey)
	cs.Options = &sessions.Options{Path: "/", MaxAge: int((30 * 24 * time.Hour).Seconds()), HttpOnly: true, Secure: cfg.Secure, SameSite: http.SameSiteLaxMode}
	if d.Tor == nil {
		d.Tor, _ = risk.OpenList("", d.Log)
	}
	if d.VPN == nil {
		d.VPN, _ = risk.OpenList("", d.Log)
	}
	now := func() time.Time { return time.Now().UTC() }
	if d.Now != nil {
		now = func() time.Time { return d.Now().UTC() }
	}
	return &Server{cfg: cfg, provider: d.Provider, store: d.Store, engine: d.Engine, keys: d.Keys,
		verifier: &authn.Verifier{Engine: d.Engine, Passive: d.Passive}, passive: d.Passive, chall: d.Challenger, cookies: cs, devices: risk.NewDeviceCookies(cfg.DeviceHashKey, cfg.DeviceBlockKey, cfg.DeviceTTL, cfg.Secure),
		tor: d.Tor, vpn: d.VPN, metrics: NewMetrics(), log: d.Log, now: now}
}

// Metrics returns the step-up counters (served at /metrics).
func (s *Server) Metrics() *Metrics { return s.metrics }

const cookieName = "visage"

// Routes registers the pages on mux.
func (s *Server) Routes(mux *http.ServeMux) {
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static.Files)))
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.loginSubmit)
	mux.HandleFunc("GET /login/selfie", s.selfiePage)
	mux.HandleFunc("POST /login/selfie", s.selfieSubmit)
	mux.HandleFunc("POST /login/challenge", s.challengeIssue)
	mux.HandleFunc("POST /login/liveness", s.challengeSubmit)
	mux.HandleFunc("GET /register", s.registerPage)
	mux.HandleFunc("POST /register", s.registerSubmit)
	mux.HandleFunc("GET /consent", s.consentPage)
	mux.HandleFunc("POST /consent", s.consentSubmit)
	mux.HandleFunc("GET /logged-out", s.loggedOut)
	mux.HandleFunc("/end_session", s.endSession)
	mux.HandleFunc("POST /end_session/confirm", s.confirmEndSession)
	mux.HandleFunc("GET /account/devices", s.devicesPage)
	mux.HandleFunc("POST /account/devices/forget", s.forgetDevice)
	mux.HandleFunc("GET /account/reenrol", s.reenrolPage)
	mux.HandleFunc("POST /account/reenrol/challenge", s.reenrolChallenge)
	mux.HandleFunc("POST /account/reenrol", s.reenrolSubmit)
	mux.Handle("GET /metrics", s.metrics)
}

// --- browser session and CSRF ---

func (s *Server) session(r *http.Request) *sessions.Session {
	sess, err := s.cookies.Get(r, cookieName)
	if err != nil { // forged or stale cookie: start afresh
		sess, _ = s.cookies.New(r, cookieName)
	}
	return sess
}

func str(sess *sessions.Session, key string) string {
	v, _ := sess.Values[key].(string)
	return v
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// csrfToken returns the session's CSRF token, creating it (the caller saves the session).
func csrfToken(sess *sessions.Session) string {
	t := str(sess, "csrf")
	if t == "" {
		t = randomToken()
		sess.Values["csrf"] = t
	}
	return t
}

// checkCSRF compares the form field or X-CSRF-Token header with the session's token.
func checkCSRF(r *http.Request, sess *sessions.Session) bool {
	want := str(sess, "csrf")
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.FormValue("csrf_token")
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// refuseCSRF answers a request whose CSRF token is missing or wrong, as JSON for the capture
// scripts or as a page for forms.
func (s *Server) refuseCSRF(w http.ResponseWriter, r *http.Request, asJSON bool) {
	if asJSON {
		writeJSON(w, http.StatusForbidden, verdict{Status: "error", Code: "CSRF", Message: "The page's security token is missing or wrong. Reload the page."})
		return
	}
	s.errorPage(w, r, http.StatusForbidden, "Form expired", "The form's security token is missing or wrong. Go back and try again.")
}

func (s *Server) save(w http.ResponseWriter, r *http.Request, sess *sessions.Session) {
	if err := sess.Save(r, w); err != nil {
		s.log.ErrorContext(r.Context(), "save browser session", "err", err)
	}
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil {
		s.log.ErrorContext(r.Context(), "render", "err", err)
	}
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	s.render(w, r, status, templates.ErrorPage(title, msg))
}

// verdict is the JSON the capture script receives.
type verdict struct {
	Status   string   `json:"status"`
	Message  string   `json:"message,omitempty"`
	Code     string   `json:"code,omitempty"`
	Field    string   `json:"field,omitempty"` // the form field a field error is about
	Warnings []string `json:"warnings,omitempty"`
	Redirect string   `json:"redirect,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// --- pages ---

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, templates.MessagePage("Visage", "An OpenID Provider whose password is your face.", "Try the demo app", "/demo"))
}

func (s *Server) loggedOut(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, templates.MessagePage("Signed out", "You are signed out of Visage.", "Home", "/"))
}

// liveSession returns the server-side SSO session named by the cookie, if it is still valid.
func (s *Server) liveSession(ctx context.Context, sess *sessions.Session) (store.Session, bool) {
	sid := str(sess, "sid")
	if sid == "" {
		return store.Session{}, false
	}
	ss, err := s.store.GetSession(ctx, sid)
	if err != nil || ss.RevokedAt != nil || s.now().After(ss.ExpiresAt) {
		return store.Session{}, false
	}
	if _, err := s.store.GetUser(ctx, ss.UserID); err != nil {
		return store.Session{}, false
	}
	return ss, true
}

// loginRequest loads the auth request named in the query or form, or renders an error page.
func (s *Server) loginRequest(w http.ResponseWriter, r *http.Request) (oidc.LoginRequest, bool) {
	id := r.FormValue("authRequestID")
	if id == "" {
		s.errorPage(w, r, http.StatusBadRequest, "Missing request", "This page needs an authorization request. Start from the application you want to sign in to.")
		return oidc.LoginRequest{}, false
	}
	lr, err := s.provider.LoginRequest(r.Context(), id)
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Sign-in expired", "This sign-in request is unknown or has expired. Go back to the application and start again.")
		return oidc.LoginRequest{}, false
	}
	if !s.provider.Bound(r, id) {
		s.refuseUnbound(w, r, false)
		return oidc.LoginRequest{}, false
	}
	return lr, true
}

// refuseUnbound answers a request for an auth request that this browser did not start (it does
// not hold the request's binding cookie): nothing is done for it, and the user is told why.
func (s *Server) refuseUnbound(w http.ResponseWriter, r *http.Request, asJSON bool) {
	s.log.WarnContext(r.Context(), "sign-in page for a request this browser did not start", "path", r.URL.Path)
	if asJSON {
		writeJSON(w, http.StatusForbidden, verdict{Status: "error", Code: "REQUEST_NOT_BOUND", Message: oidc.UnboundMessage})
		return
	}
	s.errorPage(w, r, http.StatusForbidden, oidc.UnboundTitle, oidc.UnboundMessage)
}

// reusable reports whether an existing SSO session satisfies the request without a new selfie.
func (s *Server) reusable(lr oidc.LoginRequest, ss store.Session) bool {
	if lr.HasPrompt("login") {
		return false
	}
	if lr.MaxAge != nil && s.now().Sub(ss.AuthTime) > *lr.MaxAge {
		return false
	}
	return oidc.ACRLevel(ss.ACR) >= oidc.ACRLevel(lr.RequiredACR())
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	lr, ok := s.loginRequest(w, r)
	if !ok {
		return
	}
	sess := s.session(r)
	if ss, ok := s.liveSession(r.Context(), sess); ok && s.reusable(lr, ss) {
		s.finish(w, r, sess, lr, oidc.Authentication{UserID: ss.UserID, SessionID: ss.ID, AuthTime: ss.AuthTime, AMR: ss.AMR, ACR: ss.ACR})
		return
	}
	if lr.HasPrompt("none") {
		s.provider.RedirectError(w, r, lr.ID, oidc.ErrLoginRequired())
		return
	}
	username := lr.LoginHint
	if username == "" {
		username = str(sess, "username")
	}
	d := templates.LoginData{AuthRequestID: lr.ID, ClientName: lr.ClientName, Username: username, CSRF: csrfToken(sess),
		RegisterURL: "/register?authRequestID=" + url.QueryEscape(lr.ID)}
	s.save(w, r, sess)
	s.render(w, r, http.StatusOK, templates.LoginPage(d))
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess := s.session(r)
	if !checkCSRF(r, sess) {
		s.refuseCSRF(w, r, false)
		return
	}
	lr, ok := s.loginRequest(w, r)
	if !ok {
		return
	}
	loginPage := func(status int, msg string) {
		s.save(w, r, sess)
		s.render(w, r, status, templates.LoginPage(templates.LoginData{AuthRequestID: lr.ID, ClientName: lr.ClientName,
			CSRF: csrfToken(sess), Error: msg, RegisterURL: "/register?authRequestID=" + url.QueryEscape(lr.ID)}))
	}
	username := normaliseUsername(r.FormValue("username"))
	if username == "" {
		loginPage(http.StatusBadRequest, "Enter your username.")
		return
	}
	// An unknown username goes through the same steps as a known one, under a stand-in id: the
	// same risk assessment, lockout, selfie pipeline (against a decoy template) and answers.
	// Nothing tells a stranger which usernames exist.
	userID := unknownUserID(username)
	if u, err := s.store.GetUserByUsername(ctx, username); err == nil {
		userID = u.ID
	} else if !errors.Is(err, store.ErrNotFound) {
		s.log.ErrorContext(ctx, "look up user", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	}
	sess.Values["login_req"] = lr.ID
	sess.Values["login_user"] = userID
	sess.Values["username"] = username
	a, err := s.assess(r, lr, userID)
	if err != nil {
		s.log.ErrorContext(ctx, "assess sign-in", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	}
	if msg, locked, err := s.locked(ctx, userID, a); err != nil {
		s.log.ErrorContext(ctx, "lockout", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	} else if locked {
		s.audit(ctx, a, lr, userID, "locked")
		loginPage(http.StatusTooManyRequests, msg)
		return
	}
	if a.decision.Method == risk.MethodNone {
		s.trustedSignIn(w, r, sess, lr, userID, a)
		return
	}
	s.save(w, r, sess)
	http.Redirect(w, r, "/login/selfie?authRequestID="+url.QueryEscape(lr.ID), http.StatusSeeOther)
}

// trustedSignIn completes a sign-in without a selfie: known device on a known network.
func (s *Server) trustedSignIn(w http.ResponseWriter, r *http.Request, sess *sessions.Session, lr oidc.LoginRequest, userID string, a assessment) {
	ctx := r.Context()
	now := s.now()
	ss := store.Session{ID: randomToken(), UserID: userID, AuthTime: now, AMR: []string{AMRDevice}, ACR: oidc.ACRDevice, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	err := s.store.CreateSession(ctx, ss)
	if err == nil {
		err = s.store.RecordAttempt(ctx, store.Attempt{UserID: userID, IP: a.signals.IP.String(), DeviceID: a.deviceID, Success: true, At: now})
	}
	if err == nil {
		err = s.store.TouchDevice(ctx, store.Device{ID: a.deviceID, UserID: userID, UserAgent: userAgent(r), LastSeen: now})
	}
	if err != nil {
		s.log.ErrorContext(ctx, "trusted sign-in", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	}
	s.audit(ctx, a, lr, userID, "approved")
	s.log.InfoContext(ctx, "sign-in on a known device", "user", userID)
	sess.Values["sid"] = ss.ID
	delete(sess.Values, "login_req")
	delete(sess.Values, "login_user")
	s.finish(w, r, sess, lr, oidc.Authentication{UserID: userID, SessionID: ss.ID, AuthTime: now, AMR: ss.AMR, ACR: ss.ACR})
}

func (s *Server) selfiePage(w http.ResponseWriter, r *http.Request) {
	lr, ok := s.loginRequest(w, r)
	if !ok {
		return
	}
	sess := s.session(r)
	if str(sess, "login_req") != lr.ID {
		http.Redirect(w, r, "/login?authRequestID="+url.QueryEscape(lr.ID), http.StatusSeeOther)
		return
	}
	method := risk.MethodPassive
	if userID := str(sess, "login_user"); userID != "" {
		a, err := s.assess(r, lr, userID)
		if err != nil {
			s.log.ErrorContext(r.Context(), "assess sign-in", "err", err)
			s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
			return
		}
		method = a.decision.Method
	}
	csrf := csrfToken(sess)
	s.save(w, r, sess)
	if method == risk.MethodActive || method == risk.MethodFlashing {
		s.render(w, r, http.StatusOK, templates.LivenessPage(templates.LivenessData{Title: "Prove you are there",
			Intro: "This sign-in needs a short live check: follow the instructions on screen.", Method: method,
			ChallengeURL: "/login/challenge", PostURL: "/login/liveness", AuthRequestID: lr.ID, CSRF: csrf, Username: str(sess, "username")}))
		return
	}
	d := templates.SelfieData{Title: "Take a selfie", Intro: "Look at the camera. Your face is your password.",
		PostURL: "/login/selfie", AuthRequestID: lr.ID, CSRF: csrf, Username: str(sess, "username"), Method: method}
	s.render(w, r, http.StatusOK, templates.SelfiePage(d))
}

// imagePost reads the selfie upload of a capture script and checks its CSRF token; it answers
// the error itself and returns ok=false.
func (s *Server) imagePost(w http.ResponseWriter, r *http.Request) (*sessions.Session, []byte, bool) {
	sess := s.session(r)
	img, bad, status := s.readImage(w, r)
	if !checkCSRF(r, sess) {
		s.refuseCSRF(w, r, true)
		return sess, nil, false
	}
	if bad != nil {
		writeJSON(w, status, bad)
		return sess, nil, false
	}
	return sess, img, true
}

// readImage parses the multipart upload and returns its "image" part, bounded in size.
func (s *Server) readImage(w http.ResponseWriter, r *http.Request) ([]byte, *verdict, int) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)
	if err := r.ParseMultipartForm(s.cfg.MaxUploadBytes); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &verdict{Status: "error", Code: "IMAGE_TOO_LARGE", Message: words.For("IMAGE_TOO_LARGE")}, http.StatusRequestEntityTooLarge
		}
		return nil, &verdict{Status: "error", Code: "BAD_REQUEST", Message: "Send the selfie as multipart/form-data with an image field."}, http.StatusBadRequest
	}
	f, _, err := r.FormFile("image")
	if err != nil {
		return nil, &verdict{Status: "error", Code: "NO_IMAGE", Message: "The image field is missing."}, http.StatusBadRequest
	}
	defer f.Close()
	img, err := io.ReadAll(f)
	if err != nil {
		return nil, &verdict{Status: "error", Code: "BAD_REQUEST", Message: "The image could not be read."}, http.StatusBadRequest
	}
	return img, nil, 0
}

func (s *Server) selfieSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess, img, ok := s.imagePost(w, r)
	if !ok {
		return
	}
	lr, userID, a, ok := s.pendingLogin(w, r, sess)
	if !ok {
		return
	}
	tmpl, err := s.template(ctx, userID)
	if err != nil {
		s.internalJSON(w, r, "load template", err)
		return
	}
	d, err := s.verify(ctx, a.decision.Method, [][]byte{img}, tmpl)
	if err != nil {
		s.internalJSON(w, r, "verify", err)
		return
	}
	s.conclude(w, r, sess, lr, userID, a, d, false)
}

// unknownPrefix starts the stand-in id of a username that has no account; real ids are
// base64url and never contain '~'.
const unknownPrefix = "~unknown:"

// unknownUserID is the stand-in id of a username without an account: stable, so that lockout
// counts its failures as it would a real account's.
func unknownUserID(username string) string {
	sum := sha256.Sum256([]byte("visage unknown user\x00" + username))
	return unknownPrefix + base64.RawURLEncoding.EncodeToString(sum[:16])
}

// isUnknownUser reports whether userID stands in for a username without an account.
func isUnknownUser(userID string) bool { return strings.HasPrefix(userID, unknownPrefix) }

// template loads and opens the user's template; nil if the user has none, the engine's decoy
// for a username without an account. A template that does not decrypt is a server fault, never
// a silent mismatch.
func (s *Server) template(ctx context.Context, userID string) (*face.Template, error) {
	if isUnknownUser(userID) {
		return s.engine.Decoy(), nil
	}
	t, err := s.store.GetTemplate(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return s.keys.Open(t.Sealed)
}

// upgradeTemplate replaces the user's template by t (made by the configured matcher from an
// approved selfie) and audits the change.
func (s *Server) upgradeTemplate(ctx context.Context, userID string, t *face.Template, now time.Time) error {
	t.CreatedAt = now
	sealed, err := s.keys.Seal(t)
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	if err := s.store.PutTemplate(ctx, store.Template{UserID: userID, KeyID: s.keys.PrimaryID(), ModelVersion: t.ModelVersion, Sealed: sealed, CreatedAt: now}); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	s.log.InfoContext(ctx, "template upgraded", "user", userID, "model", t.ModelVersion)
	return nil
}

// conclude records a verification's outcome (attempt, audit) and, when approved, binds the
// device, opens the SSO session and sends the browser on.
func (s *Server) conclude(w http.ResponseWriter, r *http.Request, sess *sessions.Session, lr oidc.LoginRequest, userID string, a assessment, d authn.Decision, badRequest bool) {
	ctx := r.Context()
	now := s.now()
	if isUnknownUser(userID) && d.Status != authn.Declined {
		// Nothing signs in to an account that does not exist, whatever the decoy matched.
		d.Status, d.Code, d.Reason = authn.Declined, "FACE_MATCH_DECLINED", "the face does not match the enrolled face"
	}
	if err := s.store.RecordAttempt(ctx, store.Attempt{UserID: userID, IP: a.signals.IP.String(), DeviceID: a.deviceID, Success: d.Status == authn.Approved, At: now}); err != nil {
		s.internalJSON(w, r, "record attempt", err)
		return
	}
	outcome := "declined"
	if d.Status == authn.Approved {
		outcome = "approved"
	}
	if ev := evidence(d); ev != "" {
		// The scores go to the audit log (read by administrators), never to the browser.
		a.decision.Reason += "; " + ev
	}
	s.audit(ctx, a, lr, userID, outcome)
	s.log.InfoContext(ctx, "selfie sign-in", "user", userID, "method", a.decision.Method, "status", d.Status, "code", d.Code, "elapsed_ms", d.Elapsed.Milliseconds())
	if d.Status != authn.Approved {
		status := http.StatusOK
		if badRequest {
			status = http.StatusBadRequest
		}
		writeJSON(w, status, declined(d))
		return
	}
	if d.Upgrade != nil {
		// An approved selfie against a template of the previous matcher seals its successor.
		if err := s.upgradeTemplate(ctx, userID, d.Upgrade, now); err != nil {
			s.internalJSON(w, r, "upgrade template", err)
			return
		}
	}
	deviceID := a.deviceID
	if deviceID == "" {
		var err error
		if deviceID, err = s.devices.Issue(w, ""); err != nil {
			s.internalJSON(w, r, "device cookie", err)
			return
		}
	}
	if err := s.store.TouchDevice(ctx, store.Device{ID: deviceID, UserID: userID, UserAgent: userAgent(r), LastSeen: now}); err != nil {
		s.internalJSON(w, r, "bind device", err)
		return
	}
	auth, err := s.newSession(ctx, userID, d, acrFor(a.decision.Method))
	if err != nil {
		s.internalJSON(w, r, "create session", err)
		return
	}
	sess.Values["sid"] = auth.SessionID
	delete(sess.Values, "login_req")
	delete(sess.Values, "login_user")
	delete(sess.Values, "challenge")
	next, err := s.complete(ctx, lr, auth)
	if err != nil {
		s.internalJSON(w, r, "complete login", err)
		return
	}
	s.save(w, r, sess)
	writeJSON(w, http.StatusOK, verdict{Status: string(d.Status), Message: "Welcome back.", Redirect: next})
}

// evidence summarises a decision's signals for the audit log: code, match and liveness scores.
func evidence(d authn.Decision) string {
	var parts []string
	if d.Code != "" {
		parts = append(parts, "code "+d.Code)
	}
	if m := d.FaceMatch; m != nil {
		parts = append(parts, fmt.Sprintf("face match %s score %d (%s, distance %.3f)", m.Matcher, m.Score, m.Band, m.Distance))
	}
	if l := d.Liveness; l != nil {
		parts = append(parts, fmt.Sprintf("liveness %s score %d", l.Method, l.Score))
	}
	return strings.Join(parts, ", ")
}

// declined is what the browser learns of a refused selfie: the outcome, a code and a reason in
// plain words. Scores and distances never leave the server (they would let an attacker tune a
// look-alike or a spoof against the thresholds); they are in the audit log and the console.
func declined(d authn.Decision) verdict {
	v := verdict{Status: string(d.Status), Code: d.Code}
	if d.Status == authn.Review {
		v.Status = string(authn.Declined)
	}
	// The person reads a sentence with the next step; the code stays in its own field and the
	// reason in the logs and the audit.
	code := d.Code
	if code == "" {
		code = "FACE_MATCH_DECLINED"
	}
	v.Message = words.For(code)
	for _, w := range d.Warnings {
		v.Warnings = append(v.Warnings, w.Code)
	}
	return v
}

func (s *Server) internalJSON(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.ErrorContext(r.Context(), what, "err", err)
	if errors.Is(err, face.ErrQueueFull) || errors.Is(err, context.DeadlineExceeded) {
		// Admission control: answer at once and say when to come back, rather than queue.
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusServiceUnavailable, verdict{Status: "error", Code: "BUSY", Message: words.For("BUSY")})
		return
	}
	writeJSON(w, http.StatusInternalServerError, verdict{Status: "error", Code: "INTERNAL", Message: words.For("INTERNAL")})
}

// newSession records a server-side SSO session for a selfie that was approved.
func (s *Server) newSession(ctx context.Context, userID string, d authn.Decision, acr string) (oidc.Authentication, error) {
	now := s.now()
	ss := store.Session{ID: randomToken(), UserID: userID, AuthTime: now, AMR: d.AMR, ACR: acr, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	if err := s.store.CreateSession(ctx, ss); err != nil {
		return oidc.Authentication{}, err
	}
	return oidc.Authentication{UserID: userID, SessionID: ss.ID, AuthTime: now, AMR: ss.AMR, ACR: ss.ACR}, nil
}

// complete records who signed in for the auth request and returns where the browser goes next:
// consent if needed (the request stays incomplete until the user allows it), else the
// provider's callback that issues the code.
func (s *Server) complete(ctx context.Context, lr oidc.LoginRequest, a oidc.Authentication) (string, error) {
	if err := s.provider.Authenticate(ctx, lr.ID, a); err != nil {
		return "", err
	}
	need, err := s.needsConsent(ctx, lr, a.UserID)
	if err != nil {
		return "", err
	}
	if need {
		return "/consent?authRequestID=" + url.QueryEscape(lr.ID), nil
	}
	return s.provider.Approve(ctx, lr.ID)
}

// finish completes a request on an existing session and redirects.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, sess *sessions.Session, lr oidc.LoginRequest, a oidc.Authentication) {
	need, err := s.needsConsent(r.Context(), lr, a.UserID)
	if err != nil {
		s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	}
	if need && lr.HasPrompt("none") {
		s.provider.RedirectError(w, r, lr.ID, oidc.ErrConsentRequired())
		return
	}
	next, err := s.complete(r.Context(), lr, a)
	if err != nil {
		s.log.ErrorContext(r.Context(), "complete login", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	}
	s.save(w, r, sess)
	http.Redirect(w, r, next, http.StatusFound)
}

func (s *Server) needsConsent(ctx context.Context, lr oidc.LoginRequest, userID string) (bool, error) {
	if lr.HasPrompt("consent") {
		return true, nil
	}
	if lr.FirstParty {
		return false, nil
	}
	c, err := s.store.GetConsent(ctx, userID, lr.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	for _, sc := range lr.Scopes {
		if !slices.Contains(c.Scopes, sc) {
			return true, nil
		}
	}
	return false, nil
}

func (s *Server) consentPage(w http.ResponseWriter, r *http.Request) {
	lr, ok := s.loginRequest(w, r)
	if !ok {
		return
	}
	sess := s.session(r)
	if !s.signedInFor(r.Context(), sess, lr) {
		http.Redirect(w, r, "/login?authRequestID="+url.QueryEscape(lr.ID), http.StatusSeeOther)
		return
	}
	d := templates.ConsentData{AuthRequestID: lr.ID, ClientName: lr.ClientName, Scopes: lr.Scopes, CSRF: csrfToken(sess)}
	s.save(w, r, sess)
	s.render(w, r, http.StatusOK, templates.ConsentPage(d))
}

func (s *Server) consentSubmit(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if !checkCSRF(r, sess) {
		s.refuseCSRF(w, r, false)
		return
	}
	lr, ok := s.loginRequest(w, r)
	if !ok {
		return
	}
	if !s.signedInFor(r.Context(), sess, lr) {
		s.errorPage(w, r, http.StatusForbidden, "Not signed in", "Sign in before answering this request.")
		return
	}
	if r.FormValue("decision") != "allow" {
		// Deny ends the request for good: it is deleted, so its callback can never issue a code.
		s.provider.RedirectError(w, r, lr.ID, oidc.ErrAccessDenied().WithDescription("the user denied the request"))
		return
	}
	if err := s.store.PutConsent(r.Context(), store.Consent{UserID: lr.UserID, ClientID: lr.ClientID, Scopes: lr.Scopes, GrantedAt: s.now()}); err != nil {
		s.log.ErrorContext(r.Context(), "store consent", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	}
	cb, err := s.provider.Approve(r.Context(), lr.ID)
	if err != nil {
		s.log.ErrorContext(r.Context(), "approve auth request", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	}
	http.Redirect(w, r, cb, http.StatusFound)
}

// signedInFor reports whether the browser's live SSO session is the one that authenticated lr.
func (s *Server) signedInFor(ctx context.Context, sess *sessions.Session, lr oidc.LoginRequest) bool {
	ss, ok := s.liveSession(ctx, sess)
	return ok && lr.Authenticated && ss.UserID == lr.UserID && ss.ID == lr.SessionID
}

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$`)

func normaliseUsername(u string) string { return strings.ToLower(strings.TrimSpace(u)) }

// ValidUsername reports whether u (normalised) is an acceptable username.
func ValidUsername(u string) bool { return usernameRE.MatchString(u) }
