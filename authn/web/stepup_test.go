package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/risk"
	"github.com/visage-idp/visage/internal/testenv"
	"github.com/visage-idp/visage/oidc"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/sqlite"
)

// The face engine loads dlib's models once for the whole package's tests.
var (
	engineOnce sync.Once
	engine     *face.Engine
	engineErr  error
)

func testEngine(t *testing.T) *face.Engine {
	t.Helper()
	engineOnce.Do(func() {
		cfg := face.DefaultConfig()
		cfg.ModelsDir = testenv.ModelsDir(t)
		cfg.Workers = 1
		engine, engineErr = face.NewEngine(cfg)
	})
	if engineErr != nil {
		t.Fatalf("face engine: %v", engineErr)
	}
	return engine
}

// stepEnv is a real provider and login pages over a real SQLite store and the real face engine,
// served on loopback, with a proxy at 127.0.0.1 trusted so that tests choose the client address
// with X-Forwarded-For.
type stepEnv struct {
	srv     *httptest.Server
	mux     *http.ServeMux
	web     *Server
	keys    *face.KeyRing
	store   *sqlite.Store
	torPath string
	tor     *risk.List
}

const (
	testRedirect = "http://127.0.0.1:1/cb"
	torNet       = "203.0.113.0/24"
)

func newStepEnv(t *testing.T, tweak func(*Config)) *stepEnv {
	return newStepEnvWith(t, tweak, false)
}

// newStepEnvWith optionally loads the liveness models (PASSIVE on every selfie, and the
// ACTIVE_3D/FLASHING challenger).
func newStepEnvWith(t *testing.T, tweak func(*Config), withLiveness bool) *stepEnv {
	t.Helper()
	return newStepEnvClock(t, tweak, withLiveness, nil)
}

// testClock is a clock that tests move forward.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newStepEnvClock is newStepEnvWith with the pages' clock (nil: time.Now).
func newStepEnvClock(t *testing.T, tweak func(*Config), withLiveness bool, now func() time.Time) *stepEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "visage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := oidc.EnsureKeys(ctx, st, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	keys, err := face.LoadOrCreateKeyRing(filepath.Join(dir, "biometric-keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	torPath := filepath.Join(dir, "tor.txt")
	if err := os.WriteFile(torPath, []byte("# test list\n"+torNet+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tor, err := risk.OpenList(torPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	p, err := oidc.NewProvider(oidc.Config{Issuer: issuer, LoginPath: "/login", LoggedOutPath: "/logged-out"}, st)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.CookieHashKey, cfg.CookieBlockKey = bytes.Repeat([]byte{1}, 64), bytes.Repeat([]byte{2}, 32)
	cfg.DeviceHashKey, cfg.DeviceBlockKey = bytes.Repeat([]byte{3}, 64), bytes.Repeat([]byte{4}, 32)
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	if tweak != nil {
		tweak(&cfg)
	}
	deps := Deps{Provider: p, Store: st, Engine: testEngine(t), Keys: keys, Tor: tor, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: now}
	if withLiveness {
		deps.Passive, deps.Challenger = testLiveness(t)
	}
	w := New(cfg, deps)
	mux := http.NewServeMux()
	w.Routes(mux)
	mux.Handle("/", p.Handler())
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	created := time.Now().UTC()
	if err := st.CreateClient(ctx, store.Client{ID: "rp", Public: true, AuthMethod: "none", FirstParty: true, RedirectURIs: []string{testRedirect}, CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(lfwPhoto(t, "Aaron_Peirsol", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Enrol(ctx, st, testEngine(t), keys, Account{Username: "aaron"}, [][]byte{img}, false, time.Now); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	return &stepEnv{srv: srv, mux: mux, web: w, keys: keys, store: st, torPath: torPath, tor: tor}
}

func lfwPhoto(t *testing.T, person string, n int) string {
	return testenv.Path(t, "lfw-view1", "images", person, fmt.Sprintf("%s_%04d.jpg", person, n))
}

// browser is a cookie jar plus the client address it appears from.
type browser struct {
	jar *cookiejar.Jar
	ip  string
}

func newBrowser(ip string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{jar: jar, ip: ip}
}

// dropSession forgets the SSO session cookie but keeps the device cookie.
func (b *browser) dropSession(base string) {
	u, _ := url.Parse(base)
	b.jar.SetCookies(u, []*http.Cookie{{Name: cookieName, Value: "", Path: "/", MaxAge: -1}})
}

// outcome is what one sign-in attempt showed.
type outcome struct {
	selfieAsked bool
	method      string
	verdict     verdict
	raw         string // the selfie answer's body as the browser received it
	status      int
	code        string
	claims      map[string]any
}

var (
	csrfRE   = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	methodRE = regexp.MustCompile(`data-method="([^"]*)"`)
)

func (e *stepEnv) do(t *testing.T, b *browser, req *http.Request) *http.Response {
	t.Helper()
	req.Header.Set("X-Forwarded-For", b.ip)
	client := &http.Client{Jar: b.jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// follow GETs u and its same-server redirects, returning the last response and its body; it
// stops at a redirect to the relying party.
func (e *stepEnv) follow(t *testing.T, b *browser, u string) (*http.Response, string, string) {
	t.Helper()
	for i := 0; i < 10; i++ {
		if !strings.HasPrefix(u, "http") {
			u = e.srv.URL + u
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		resp := e.do(t, b, req)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 {
			return resp, string(body), ""
		}
		if strings.HasPrefix(loc, testRedirect) || (strings.HasPrefix(loc, "http") && !strings.HasPrefix(loc, e.srv.URL)) {
			return resp, "", loc
		}
		u = loc
	}
	t.Fatal("too many redirects")
	return nil, "", ""
}

// signIn runs the whole login with params added to the authorization request; photo is the
// selfie to send if one is asked for.
func (e *stepEnv) signIn(t *testing.T, b *browser, photo string, params url.Values) outcome {
	t.Helper()
	return e.signInAs(t, b, "aaron", photo, params)
}

// signInAs is signIn for another username.
func (e *stepEnv) signInAs(t *testing.T, b *browser, username, photo string, params url.Values) outcome {
	t.Helper()
	verifier := "verifier-0123456789-0123456789-0123456789-0123"
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {"rp"}, "redirect_uri": {testRedirect}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"st"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	for k, v := range params {
		q[k] = v
	}
	var out outcome
	resp, body, cb := e.follow(t, b, "/authorize?"+q.Encode())
	if cb == "" {
		// The username page.
		id := resp.Request.URL.Query().Get("authRequestID")
		if cb = e.loginAt(t, b, resp, body, id, username, photo, &out); cb == "" {
			return out
		}
	}
	if cb == "" {
		t.Fatalf("no redirect to the relying party")
	}
	cu, _ := url.Parse(cb)
	out.code = cu.Query().Get("code")
	tokResp, err := http.PostForm(e.srv.URL+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {out.code},
		"redirect_uri": {testRedirect}, "client_id": {"rp"}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	defer tokResp.Body.Close()
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(tokResp.Body).Decode(&tok); err != nil || tok.IDToken == "" {
		t.Fatalf("token response: %d %v", tokResp.StatusCode, err)
	}
	parts := strings.Split(tok.IDToken, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(payload, &out.claims)
	return out
}

// loginAt answers the username page (resp, body) of auth request id and, if asked, the selfie
// step; it returns the redirect to the relying party, or "" with out telling why there is none.
func (e *stepEnv) loginAt(t *testing.T, b *browser, resp *http.Response, body, id, username, photo string, out *outcome) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("login page: status %d, body %.300s", resp.StatusCode, body)
	}
	form := url.Values{"csrf_token": {m[1]}, "authRequestID": {id}, "username": {username}}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r2 := e.do(t, b, req)
	r2.Body.Close()
	out.status = r2.StatusCode
	loc := r2.Header.Get("Location")
	if r2.StatusCode == http.StatusTooManyRequests {
		return ""
	}
	if strings.HasPrefix(loc, "/login/selfie") {
		out.selfieAsked = true
		sp, sbody, _ := e.follow(t, b, loc)
		mm := methodRE.FindStringSubmatch(sbody)
		cm := csrfRE.FindStringSubmatch(sbody)
		if sp.StatusCode != http.StatusOK || mm == nil || cm == nil {
			t.Fatalf("selfie page: %d %.300s", sp.StatusCode, sbody)
		}
		out.method = mm[1]
		r3 := e.postSelfie(t, b, id, cm[1], photo)
		out.status = r3.StatusCode
		raw, _ := io.ReadAll(r3.Body)
		r3.Body.Close()
		out.raw = string(raw)
		_ = json.Unmarshal(raw, &out.verdict)
		if out.verdict.Redirect == "" {
			return ""
		}
		loc = out.verdict.Redirect
	}
	_, _, cb := e.follow(t, b, loc)
	return cb
}

// postSelfie posts photo to /login/selfie for auth request id the way capture.js does.
func (e *stepEnv) postSelfie(t *testing.T, b *browser, id, csrf, photo string) *http.Response {
	t.Helper()
	img, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("csrf_token", csrf)
	_ = mw.WriteField("authRequestID", id)
	fw, _ := mw.CreateFormFile("image", "selfie.jpg")
	_, _ = fw.Write(img)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login/selfie", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return e.do(t, b, req)
}

func amr(c map[string]any) []string {
	var out []string
	if v, ok := c["amr"].([]any); ok {
		for _, x := range v {
			out = append(out, x.(string))
		}
	}
	return out
}

// TestStepUpTable walks the policy table through the real HTTP flow.
func TestStepUpTable(t *testing.T) {
	e := newStepEnv(t, nil)
	same := lfwPhoto(t, "Aaron_Peirsol", 2)
	const home = "198.51.100.10"

	// No cookie, new address: a passive selfie; approval binds the device.
	b := newBrowser(home)
	o := e.signIn(t, b, same, nil)
	if !o.selfieAsked || o.method != risk.MethodPassive || o.claims["acr"] != oidc.ACRSelfie || !slices.Contains(amr(o.claims), "face") {
		t.Fatalf("first sign-in: %+v", o)
	}

	// Same device cookie, same address, no SSO session: no selfie, and the ID token says so.
	b.dropSession(e.srv.URL)
	o = e.signIn(t, b, same, nil)
	if o.selfieAsked || o.claims["acr"] != oidc.ACRDevice || !slices.Equal(amr(o.claims), []string{AMRDevice}) {
		t.Fatalf("known device, known address: %+v", o)
	}

	// The same /24 is a known network too.
	b.dropSession(e.srv.URL)
	b.ip = "198.51.100.77"
	if o = e.signIn(t, b, same, nil); o.selfieAsked {
		t.Fatalf("same /24: %+v", o)
	}

	// acr_values asking for a selfie forces one even on a known device and network.
	b.dropSession(e.srv.URL)
	o = e.signIn(t, b, same, url.Values{"acr_values": {oidc.ACRSelfie}})
	if !o.selfieAsked || o.method != risk.MethodPassive || o.claims["acr"] != oidc.ACRSelfie {
		t.Fatalf("acr_values selfie: %+v", o)
	}

	// prompt=login forces one too (also over the SSO session this left), and so does max_age.
	o = e.signIn(t, b, same, url.Values{"prompt": {"login"}})
	if !o.selfieAsked {
		t.Fatalf("prompt=login: %+v", o)
	}
	if o = e.signIn(t, b, same, url.Values{"max_age": {"0"}}); !o.selfieAsked {
		t.Fatalf("max_age=0: %+v", o)
	}
	// Without them the SSO session answers (no username page, no selfie).
	if o = e.signIn(t, b, same, nil); o.selfieAsked || o.code == "" {
		t.Fatalf("SSO session: %+v", o)
	}

	// Same device cookie from a new address: passive.
	b.dropSession(e.srv.URL)
	b.ip = "192.0.2.50"
	if o = e.signIn(t, b, same, nil); !o.selfieAsked || o.method != risk.MethodPassive {
		t.Fatalf("known device, new address: %+v", o)
	}

	// No cookie from a known address: passive.
	if o = e.signIn(t, newBrowser(home), same, nil); !o.selfieAsked || o.method != risk.MethodPassive {
		t.Fatalf("new device, known address: %+v", o)
	}

	// No cookie from a Tor exit: the active challenge, and a single frame cannot pass it.
	o = e.signIn(t, newBrowser("203.0.113.9"), same, nil)
	if !o.selfieAsked || o.method != risk.MethodActive || o.code != "" || o.verdict.Status == "Approved" {
		t.Fatalf("new device from Tor: %+v", o)
	}

	// A forged device cookie counts as no cookie.
	forged := newBrowser(home)
	u, _ := url.Parse(e.srv.URL)
	forged.jar.SetCookies(u, []*http.Cookie{{Name: risk.DeviceCookieName, Value: "forged-value", Path: "/"}})
	if o = e.signIn(t, forged, same, nil); !o.selfieAsked {
		t.Fatalf("forged device cookie: %+v", o)
	}

	// Every decision is in the audit log with its inputs, and counted.
	evs, err := e.store.ListAudit(context.Background(), "", 50)
	if err != nil || len(evs) < 8 {
		t.Fatalf("audit: %d events, %v", len(evs), err)
	}
	var sawTor, sawTrusted bool
	for _, ev := range evs {
		sawTor = sawTor || (ev.Tor && ev.Method == risk.MethodActive && ev.Outcome == "declined")
		sawTrusted = sawTrusted || (ev.DeviceKnown && ev.IPKnown && ev.Method == risk.MethodNone && ev.Outcome == "approved")
	}
	if !sawTor || !sawTrusted {
		t.Fatalf("audit misses decisions: %+v", evs)
	}
	if e.web.Metrics().Get(risk.MethodNone, "approved") < 2 || e.web.Metrics().Get(risk.MethodActive, "declined") != 1 {
		t.Fatal("metrics do not count the decisions")
	}
}

// TestExpiredDeviceCookie: a device cookie past its lifetime counts as no cookie.
func TestExpiredDeviceCookie(t *testing.T) {
	e := newStepEnv(t, func(c *Config) { c.DeviceTTL = 2 * time.Second })
	b := newBrowser("198.51.100.10")
	same := lfwPhoto(t, "Aaron_Peirsol", 2)
	if o := e.signIn(t, b, same, nil); !o.selfieAsked || o.code == "" {
		t.Fatalf("first sign-in: %+v", o)
	}
	b.dropSession(e.srv.URL)
	time.Sleep(2500 * time.Millisecond)
	if o := e.signIn(t, b, same, nil); !o.selfieAsked {
		t.Fatalf("expired device cookie skipped the selfie: %+v", o)
	}
}

// TestForwardedForSpoofing: X-Forwarded-For from a peer that is not a trusted proxy is ignored,
// both ways.
func TestForwardedForSpoofing(t *testing.T) {
	e := newStepEnv(t, func(c *Config) { c.TrustedProxies = nil }) // the test client (127.0.0.1) is now untrusted
	same := lfwPhoto(t, "Aaron_Peirsol", 2)
	// Claiming a Tor address does not change the address used (127.0.0.1): passive, not active.
	if o := e.signIn(t, newBrowser("203.0.113.9"), same, nil); o.method != risk.MethodPassive {
		t.Fatalf("spoofed header was believed: %+v", o)
	}
	evs, _ := e.store.ListAudit(context.Background(), "", 10)
	if len(evs) == 0 || evs[0].IP != "127.0.0.1" {
		t.Fatalf("audited address: %+v", evs)
	}
}

// TestLockout: failures lock the account until the window slides past them. The window is
// moved by a test clock, so a slow machine cannot let failures slide out of it mid-test.
func TestLockout(t *testing.T) {
	clock := &testClock{t: time.Now()}
	e := newStepEnvClock(t, func(c *Config) { c.MaxFailures = 3; c.FailureWindow = 15 * time.Minute }, false, clock.Now)
	other := lfwPhoto(t, "Colin_Powell", 38)
	b := newBrowser("198.51.100.10")
	for i := 0; i < 3; i++ {
		o := e.signIn(t, b, other, nil)
		if o.code != "" || o.verdict.Status != "Declined" || o.verdict.Code == "ACCOUNT_LOCKED" {
			t.Fatalf("impostor attempt %d: %+v", i, o)
		}
	}
	o := e.signIn(t, b, lfwPhoto(t, "Aaron_Peirsol", 2), nil)
	if o.status != http.StatusTooManyRequests {
		t.Fatalf("after 3 failures the account is not locked: %+v", o)
	}
	clock.Add(15*time.Minute + time.Second)
	if o := e.signIn(t, b, lfwPhoto(t, "Aaron_Peirsol", 2), nil); o.code == "" {
		t.Fatalf("the lock did not expire: %+v", o)
	}
}

// TestTorListReload: an address added to the list file escalates after the reload.
func TestTorListReload(t *testing.T) {
	e := newStepEnv(t, nil)
	same := lfwPhoto(t, "Aaron_Peirsol", 2)
	if o := e.signIn(t, newBrowser("192.0.2.200"), same, nil); o.method != risk.MethodPassive {
		t.Fatalf("before reload: %+v", o)
	}
	if err := os.WriteFile(e.torPath, []byte(torNet+"\n192.0.2.200\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(5 * time.Second)
	_ = os.Chtimes(e.torPath, future, future)
	if changed, err := e.tor.Reload(); err != nil || !changed {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if o := e.signIn(t, newBrowser("192.0.2.200"), same, nil); o.method != risk.MethodActive {
		t.Fatalf("after reload: %+v", o)
	}
}

// TestLoginHint: login_hint pre-fills the username.
func TestLoginHint(t *testing.T) {
	e := newStepEnv(t, nil)
	q := url.Values{"client_id": {"rp"}, "redirect_uri": {testRedirect}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}, "login_hint": {"aaron.p"}}
	_, body, _ := e.follow(t, newBrowser("198.51.100.10"), "/authorize?"+q.Encode())
	if !strings.Contains(body, `name="username" value="aaron.p"`) {
		t.Fatalf("login page does not pre-fill the hint: %.400s", body)
	}
}

// TestNoScoreInBrowserAnswers: the browser learns the outcome and a reason in words, never a
// match or liveness score, a distance or a similarity (an oracle for tuning a look-alike or a
// spoof); the scores are in the audit log.
func TestNoScoreInBrowserAnswers(t *testing.T) {
	e := newStepEnv(t, nil)
	number := regexp.MustCompile(`\d+\.\d+|\b\d{1,3}\b`)
	check := func(name string, o outcome) {
		t.Helper()
		var fields map[string]any
		if err := json.Unmarshal([]byte(o.raw), &fields); err != nil {
			t.Fatalf("%s: answer %q: %v", name, o.raw, err)
		}
		for k := range fields {
			if !slices.Contains([]string{"status", "message", "code", "warnings", "redirect"}, k) {
				t.Errorf("%s: the browser got %q: %s", name, k, o.raw)
			}
		}
		if msg, _ := fields["message"].(string); number.MatchString(msg) {
			t.Errorf("%s: the message carries a number: %q", name, msg)
		}
	}
	approved := e.signIn(t, newBrowser("198.51.100.20"), lfwPhoto(t, "Aaron_Peirsol", 2), nil)
	if approved.verdict.Status != "Approved" {
		t.Fatalf("owner: %+v", approved)
	}
	check("approved", approved)
	declined := e.signIn(t, newBrowser("198.51.100.21"), lfwPhoto(t, "Colin_Powell", 38), nil)
	if declined.verdict.Status != "Declined" || declined.code != "" {
		t.Fatalf("impostor: %+v", declined)
	}
	check("declined", declined)
	events, err := e.store.ListAudit(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	scored := 0
	for _, ev := range events {
		if strings.Contains(ev.Reason, "face match "+face.MatcherONNX+" score ") {
			scored++
		}
	}
	if scored < 2 {
		t.Errorf("%d audit events carry the match score, want both sign-ins", scored)
	}
}

// TestDlibTemplateUpgradedBySelfie: an account enrolled under the dlib matcher signs in under
// the ONNX matcher, and that approved selfie replaces its template by an ONNX one, which the
// next sign-in uses.
func TestDlibTemplateUpgradedBySelfie(t *testing.T) {
	e := newStepEnv(t, nil)
	ctx := context.Background()
	dcfg := face.DefaultConfig()
	dcfg.ModelsDir, dcfg.Workers, dcfg.Matcher, dcfg.Policy, dcfg.EnrolJitter = testenv.ModelsDir(t), 1, face.MatcherDlib, face.MatchPolicy{}, -1
	dlib, err := face.NewEngine(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dlib.Close()
	img, err := os.ReadFile(lfwPhoto(t, "Bill_Gates", 3))
	if err != nil {
		t.Fatal(err)
	}
	u, err := Enrol(ctx, e.store, dlib, e.keys, Account{Username: "bill"}, [][]byte{img}, false, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	version := func() string {
		tm, err := e.store.GetTemplate(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return tm.ModelVersion
	}
	if v := version(); v != testEngine(t).DlibVersion() {
		t.Fatalf("enrolled template %q, want dlib's", v)
	}
	// Distances measured on these photos: dlib 0.39 from photo 3 to 15 (approve < 0.53); ONNX
	// 0.32 from 15 to 11 (approve < 0.52), 1.03 from Bill Gates 15 to Colin Powell 38.
	if o := e.signInAs(t, newBrowser("198.51.100.30"), "bill", lfwPhoto(t, "Bill_Gates", 15), nil); o.code == "" {
		t.Fatalf("dlib template, first sign-in: %+v", o)
	}
	if v := version(); v != testEngine(t).ModelVersion() {
		t.Fatalf("after an approved selfie the template is %q, want the ONNX matcher's %q", v, testEngine(t).ModelVersion())
	}
	if o := e.signInAs(t, newBrowser("198.51.100.31"), "bill", lfwPhoto(t, "Bill_Gates", 11), nil); o.code == "" {
		t.Fatalf("ONNX template, next sign-in: %+v", o)
	}
	if o := e.signInAs(t, newBrowser("198.51.100.32"), "bill", lfwPhoto(t, "Colin_Powell", 38), nil); o.code != "" {
		t.Fatalf("another person signs in on the upgraded template: %+v", o)
	}
}
