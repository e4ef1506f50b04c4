package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/visage-idp/visage/authn/console"
	"github.com/visage-idp/visage/authn/sessions"
	"github.com/visage-idp/visage/oidc"
	"github.com/visage-idp/visage/store"
)

// These tests play the attacker against the real provider and pages: the attacker holds only
// what a stranger can get (his own browser, his own PKCE pair, request ids he started himself
// and links he can send), never the victim's cookies.

// pkce is a code verifier and its S256 challenge.
type pkce struct{ verifier, challenge string }

func newPKCE(seed string) pkce {
	v := "verifier-" + seed + "-0123456789-0123456789-0123456789"
	sum := sha256.Sum256([]byte(v))
	return pkce{verifier: v, challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// startAuthorize sends b to /authorize for client with p and returns the auth request id that
// the login page redirect names.
func (e *stepEnv) startAuthorize(t *testing.T, b *browser, clientID, redirect string, p pkce, extra url.Values) string {
	t.Helper()
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid profile"},
		"state": {"st"}, "code_challenge": {p.challenge}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/authorize?"+q.Encode(), nil)
	resp := e.do(t, b, req)
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	id := ""
	if loc != nil {
		id = loc.Query().Get("authRequestID")
	}
	if resp.StatusCode != http.StatusFound || id == "" {
		t.Fatalf("/authorize: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return id
}

// bareGet GETs u with no cookies at all (a cookie-less attacker's client), without following
// redirects.
func (e *stepEnv) bareGet(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(e.srv.URL + u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// codeIn returns the code parameter of a redirect, if any.
func codeIn(resp *http.Response) string {
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return ""
	}
	return loc.Query().Get("code")
}

// tokens is a token endpoint answer with the ID token's claims decoded.
type tokens struct {
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	claims       map[string]any
}

// redeem redeems a code at the token endpoint as a public client; ok is false when the
// exchange fails.
func (e *stepEnv) redeem(t *testing.T, clientID, redirect, code string, p pkce) (tokens, bool) {
	t.Helper()
	resp, err := http.PostForm(e.srv.URL+"/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "client_id": {clientID}, "code_verifier": {p.verifier}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok tokens
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.IDToken == "" {
		return tokens{}, false
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.IDToken, ".")[1])
	_ = json.Unmarshal(payload, &tok.claims)
	return tok, true
}

// exchange redeems a code and returns the ID token's claims (nil when the exchange fails).
func (e *stepEnv) exchange(t *testing.T, clientID, redirect, code string, p pkce) map[string]any {
	t.Helper()
	tok, _ := e.redeem(t, clientID, redirect, code, p)
	return tok.claims
}

// TestAttackStolenRequestID: the attacker starts /authorize for a public client with his own
// PKCE and sends the victim the login link; the victim's live SSO session must not complete
// it, and the callback must not hand the attacker a code, with or without his own cookies.
func TestAttackStolenRequestID(t *testing.T) {
	e := newStepEnv(t, nil)
	victim := newBrowser("198.51.100.10")
	if o := e.signIn(t, victim, lfwPhoto(t, "Aaron_Peirsol", 2), nil); o.code == "" {
		t.Fatalf("victim's own sign-in: %+v", o)
	}
	attacker := newBrowser("192.0.2.66")
	p := newPKCE("attacker")
	id := e.startAuthorize(t, attacker, "rp", testRedirect, p, nil)

	// The victim opens the link: refused with a page that says why, no redirect to the RP.
	resp, body, cb := e.follow(t, victim, "/login?authRequestID="+url.QueryEscape(id))
	if cb != "" || resp.StatusCode != http.StatusForbidden || !strings.Contains(body, oidc.UnboundTitle) {
		t.Fatalf("victim's browser completed the attacker's request: status %d, redirect %q, body %.200s", resp.StatusCode, cb, body)
	}
	// Neither the cookie-less client nor the attacker's own browser gets a code.
	cbURL := "/authorize/callback?id=" + url.QueryEscape(id)
	r1, b1 := e.bareGet(t, cbURL)
	if code := codeIn(r1); code != "" {
		claims := e.exchange(t, "rp", testRedirect, code, p)
		t.Fatalf("cookie-less callback issued a code (token claims %v)", claims)
	}
	if r1.StatusCode != http.StatusForbidden || !strings.Contains(b1, oidc.UnboundTitle) {
		t.Fatalf("cookie-less callback: %d %.200s", r1.StatusCode, b1)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+cbURL, nil)
	r2 := e.do(t, attacker, req)
	r2.Body.Close()
	if code := codeIn(r2); code != "" {
		t.Fatalf("the attacker's browser got a code for a request nobody signed in to (claims %v)", e.exchange(t, "rp", testRedirect, code, p))
	}
}

// TestAttackConsoleTakeover: the attacker starts the review console's sign-in, sends the
// administrator the login link and collects the code: with prompt=login, one genuine selfie of
// the victim on the genuine page used to be enough to open the console as the admin.
func TestAttackConsoleTakeover(t *testing.T) {
	e := newStepEnv(t, nil)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := sessions.New(sessions.Config{BaseURL: e.srv.URL, TokenKey: bytes.Repeat([]byte{5}, 32)}, sessions.Deps{Store: e.store, Engine: testEngine(t), Keys: e.keys, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	con, err := console.New(console.Config{Issuer: e.srv.URL, HashKey: bytes.Repeat([]byte{6}, 64), BlockKey: bytes.Repeat([]byte{7}, 32)},
		console.Deps{Sessions: svc, Store: e.store, Keys: e.keys, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	con.Routes(e.mux)
	if err := e.store.CreateClient(ctx, console.Client(e.srv.URL, time.Now().UTC())); err != nil {
		t.Fatal(err)
	}
	u, err := e.store.GetUserByUsername(ctx, "aaron")
	if err != nil {
		t.Fatal(err)
	}
	u.Admin = true
	if err := e.store.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}

	// The attacker starts the console sign-in in his own browser.
	attacker := newBrowser("192.0.2.66")
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/console/login", nil)
	r0 := e.do(t, attacker, req)
	r0.Body.Close()
	authz, err := url.Parse(r0.Header.Get("Location"))
	if err != nil || !strings.HasSuffix(authz.Path, "/authorize") {
		t.Fatalf("console login: %d %q", r0.StatusCode, r0.Header.Get("Location"))
	}
	req, _ = http.NewRequest(http.MethodGet, authz.String(), nil)
	r1 := e.do(t, attacker, req)
	r1.Body.Close()
	loc, _ := url.Parse(r1.Header.Get("Location"))
	id := loc.Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("/authorize: %d %q", r1.StatusCode, r1.Header.Get("Location"))
	}

	// The administrator opens the link and, asked for a selfie, takes a genuine one.
	victim := newBrowser("198.51.100.10")
	resp, body, _ := e.follow(t, victim, "/login?authRequestID="+url.QueryEscape(id))
	switch {
	case resp.StatusCode == http.StatusOK: // (what happened before the fix)
		var out outcome
		e.loginAt(t, victim, resp, body, id, "aaron", lfwPhoto(t, "Aaron_Peirsol", 2), &out)
	case resp.StatusCode == http.StatusForbidden && strings.Contains(body, oidc.UnboundTitle):
		// Refused. Even a selfie posted straight at the request from the victim's browser is.
		_, pageBody, _ := e.follow(t, victim, "/register")
		m := csrfRE.FindStringSubmatch(pageBody)
		if m == nil {
			t.Fatal("no CSRF token on /register")
		}
		r := e.postSelfie(t, victim, id, m[1], lfwPhoto(t, "Aaron_Peirsol", 2))
		var v verdict
		_ = json.NewDecoder(r.Body).Decode(&v)
		r.Body.Close()
		if v.Redirect != "" || v.Code != "REQUEST_NOT_BOUND" {
			t.Fatalf("selfie post for a request this browser did not start: %d %+v", r.StatusCode, v)
		}
	default:
		t.Fatalf("login link in the victim's browser: %d %.200s", resp.StatusCode, body)
	}

	// The attacker collects the code with a cookie-less client and finishes the console's flow
	// in his own browser.
	r2, _ := e.bareGet(t, "/authorize/callback?id="+url.QueryEscape(id))
	if codeIn(r2) != "" {
		req, _ = http.NewRequest(http.MethodGet, r2.Header.Get("Location"), nil)
		r3 := e.do(t, attacker, req)
		r3.Body.Close()
	}
	req, _ = http.NewRequest(http.MethodGet, e.srv.URL+"/console", nil)
	r4 := e.do(t, attacker, req)
	page, _ := io.ReadAll(r4.Body)
	r4.Body.Close()
	if r4.StatusCode == http.StatusOK {
		t.Fatalf("the attacker opened the console as the administrator: %.200s", page)
	}
	if codeIn(r2) != "" {
		t.Fatalf("the callback issued a code to a cookie-less client")
	}
}

// TestAttackConsentBypass: a request is complete only after consent. While the victim sits on
// the consent page, and after she presses Deny, the callback (even from her own browser, which
// holds the request) issues no code; Deny sends access_denied to the relying party.
func TestAttackConsentBypass(t *testing.T) {
	e := newStepEnv(t, nil)
	ctx := context.Background()
	const tpRedirect = "http://127.0.0.1:2/cb"
	if err := e.store.CreateClient(ctx, store.Client{ID: "tp", Name: "Third party", Public: true, AuthMethod: "none",
		RedirectURIs: []string{tpRedirect}, CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	victim := newBrowser("198.51.100.10")
	if o := e.signIn(t, victim, lfwPhoto(t, "Aaron_Peirsol", 2), nil); o.code == "" {
		t.Fatalf("victim's own sign-in: %+v", o)
	}

	for _, tc := range []struct {
		name     string
		decision string
	}{{"pending consent, then deny", "deny"}, {"pending consent, then allow", "allow"}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPKCE("tp-" + tc.decision)
			id := e.startAuthorize(t, victim, "tp", tpRedirect, p, url.Values{"prompt": {"consent"}})
			resp, body, _ := e.follow(t, victim, "/login?authRequestID="+url.QueryEscape(id))
			m := csrfRE.FindStringSubmatch(body)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/consent") || m == nil {
				t.Fatalf("consent page: %d %s %.200s", resp.StatusCode, resp.Request.URL, body)
			}
			callback := func(who string) {
				t.Helper()
				r1, _ := e.bareGet(t, "/authorize/callback?id="+url.QueryEscape(id))
				req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/authorize/callback?id="+url.QueryEscape(id), nil)
				r2 := e.do(t, victim, req)
				r2.Body.Close()
				for _, r := range []*http.Response{r1, r2} {
					if code := codeIn(r); code != "" {
						t.Fatalf("%s: the callback issued a code (token claims %v)", who, e.exchange(t, "tp", tpRedirect, code, p))
					}
				}
			}
			callback("while the victim sits on /consent")
			// The victim's browser was sent to the callback above (and told interaction_required);
			// start over for the answer.
			id = e.startAuthorize(t, victim, "tp", tpRedirect, p, url.Values{"prompt": {"consent"}})
			_, body, _ = e.follow(t, victim, "/login?authRequestID="+url.QueryEscape(id))
			m = csrfRE.FindStringSubmatch(body)
			form := url.Values{"csrf_token": {m[1]}, "authRequestID": {id}, "decision": {tc.decision}}
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/consent", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r := e.do(t, victim, req)
			r.Body.Close()
			loc, _ := url.Parse(r.Header.Get("Location"))
			if tc.decision == "deny" {
				if loc == nil || !strings.HasPrefix(loc.String(), tpRedirect) || loc.Query().Get("error") != "access_denied" {
					t.Fatalf("deny: %d %q, want access_denied at the RP", r.StatusCode, r.Header.Get("Location"))
				}
				callback("after Deny")
				return
			}
			// Allow: the callback issues a code that the token endpoint accepts.
			_, _, cb := e.follow(t, victim, loc.String())
			cu, _ := url.Parse(cb)
			if cb == "" || e.exchange(t, "tp", tpRedirect, cu.Query().Get("code"), p) == nil {
				t.Fatalf("allow: no usable code (%q)", cb)
			}
		})
	}
}
