package web

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)

// ssoCode runs /authorize for client rp in b, which holds an SSO session, and returns the tokens.
func (e *stepEnv) ssoCode(t *testing.T, b *browser, scope string) tokens {
	t.Helper()
	p := newPKCE("sso-" + scope)
	id := e.startAuthorize(t, b, "rp", testRedirect, p, url.Values{"scope": {scope}})
	_, body, cb := e.follow(t, b, "/login?authRequestID="+url.QueryEscape(id))
	cu, _ := url.Parse(cb)
	if cb == "" || cu.Query().Get("code") == "" {
		t.Fatalf("SSO sign-in gave no code: %.200s", body)
	}
	tok, ok := e.redeem(t, "rp", testRedirect, cu.Query().Get("code"), p)
	if !ok {
		t.Fatal("code exchange failed")
	}
	return tok
}

// silent runs prompt=none for b and reports whether it got a code.
func (e *stepEnv) silent(t *testing.T, b *browser) bool {
	t.Helper()
	q := url.Values{"client_id": {"rp"}, "redirect_uri": {testRedirect}, "response_type": {"code"}, "scope": {"openid"},
		"prompt": {"none"}, "code_challenge": {newPKCE("silent").challenge}, "code_challenge_method": {"S256"}}
	_, _, cb := e.follow(t, b, "/authorize?"+q.Encode())
	cu, _ := url.Parse(cb)
	return cu != nil && cu.Query().Get("code") != ""
}

// copyJar returns a browser holding a copy of b's cookies (a stolen cookie).
func (e *stepEnv) copyJar(b *browser) *browser {
	u, _ := url.Parse(e.srv.URL)
	jar, _ := cookiejar.New(nil)
	jar.SetCookies(u, b.jar.Cookies(u))
	return &browser{jar: jar, ip: b.ip}
}

func (e *stepEnv) userinfoOK(t *testing.T, accessToken string) bool {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (e *stepEnv) refreshOK(t *testing.T, rt string) bool {
	t.Helper()
	resp, err := http.PostForm(e.srv.URL+"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"rp"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestLogoutBareLinkLogsNobodyOut: a bare /end_session link (any site can put one in an image
// tag or a top-level link) shows a confirmation page and signs nobody out; so does a request
// with the attacker's own id_token_hint. Only the confirmation POST with the page's CSRF token
// ends the session, server-side: a copy of the cookie taken before gets no code afterwards.
func TestLogoutBareLinkLogsNobodyOut(t *testing.T) {
	e := newStepEnv(t, nil)
	victim := newBrowser("198.51.100.10")
	if o := e.signIn(t, victim, lfwPhoto(t, "Aaron_Peirsol", 2), nil); o.code == "" {
		t.Fatalf("sign-in: %+v", o)
	}
	stolen := e.copyJar(victim)

	for _, link := range []string{"/end_session", "/end_session?client_id=rp", "/end_session?id_token_hint=not-a-token"} {
		resp, body, _ := e.follow(t, victim, link)
		if !e.silent(t, victim) {
			t.Fatalf("%s signed the victim out (status %d, %.200s)", link, resp.StatusCode, body)
		}
	}
	// The relying party's own sign-out link without a hint: confirmed by the user, it returns to
	// the registered post-logout URI with the state.
	c, err := e.store.GetClient(context.Background(), "rp")
	if err != nil {
		t.Fatal(err)
	}
	c.PostLogoutRedirectURIs = []string{"http://127.0.0.1:1/bye"}
	if err := e.store.UpdateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	q := url.Values{"client_id": {"rp"}, "post_logout_redirect_uri": {"http://127.0.0.1:1/bye"}, "state": {"st-42"}}
	resp, body, _ := e.follow(t, victim, "/end_session?"+q.Encode())
	m := csrfRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Sign out of Visage?") || m == nil {
		t.Fatalf("bare /end_session: %d %.300s, want the confirmation page", resp.StatusCode, body)
	}
	if !e.silent(t, victim) {
		t.Fatal("the confirmation page signed the victim out")
	}
	fields := url.Values{}
	for _, f := range hiddenRE.FindAllStringSubmatch(body, -1) {
		fields.Set(f[1], html.UnescapeString(f[2]))
	}

	// A cross-site form cannot confirm: without the page's CSRF token nothing happens.
	post := func(form url.Values) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/end_session/confirm", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r := e.do(t, victim, req)
		r.Body.Close()
		return r
	}
	with := func(decision string) url.Values {
		f := url.Values{"decision": {decision}}
		for k, v := range fields {
			f[k] = v
		}
		return f
	}
	noCSRF := with("logout")
	noCSRF.Del("csrf_token")
	if r := post(noCSRF); r.StatusCode != http.StatusForbidden || !e.silent(t, victim) {
		t.Fatalf("confirmation without CSRF: %d", r.StatusCode)
	}
	if r := post(with("stay")); r.StatusCode != http.StatusOK || !e.silent(t, victim) {
		t.Fatalf("stay signed in: %d", r.StatusCode)
	}
	r := post(with("logout"))
	if r.StatusCode != http.StatusFound || r.Header.Get("Location") != "http://127.0.0.1:1/bye?state=st-42" {
		t.Fatalf("confirmed logout: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	if e.silent(t, victim) {
		t.Fatal("still signed in after the confirmed logout")
	}
	if e.silent(t, stolen) {
		t.Fatal("a copy of the cookie taken before the logout still gets a code")
	}
}

// TestLogoutRevokesAndNotifies: an RP-initiated logout with a valid id_token_hint for the
// browser's session needs no confirmation; it revokes the session's tokens (except the
// offline_access grant's) and posts a Back-Channel Logout token that verifies.
func TestLogoutRevokesAndNotifies(t *testing.T) {
	e := newStepEnv(t, nil)
	ctx := context.Background()
	received := make(chan string, 4)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "want a form POST", http.StatusBadRequest)
			return
		}
		received <- r.PostFormValue("logout_token")
	}))
	t.Cleanup(rcv.Close)
	c, err := e.store.GetClient(ctx, "rp")
	if err != nil {
		t.Fatal(err)
	}
	c.BackchannelLogoutURI = rcv.URL + "/backchannel"
	if err := e.store.UpdateClient(ctx, c); err != nil {
		t.Fatal(err)
	}

	victim := newBrowser("198.51.100.10")
	if o := e.signIn(t, victim, lfwPhoto(t, "Aaron_Peirsol", 2), nil); o.code == "" {
		t.Fatalf("sign-in: %+v", o)
	}
	online := e.ssoCode(t, victim, "openid profile")
	offline := e.ssoCode(t, victim, "openid offline_access")
	if !e.userinfoOK(t, online.AccessToken) || offline.RefreshToken == "" {
		t.Fatal("tokens do not work before the logout")
	}
	sid, _ := online.claims["sid"].(string)
	stolen := e.copyJar(victim)

	q := url.Values{"id_token_hint": {online.IDToken}}
	resp, body, _ := e.follow(t, victim, "/end_session?"+q.Encode())
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/logged-out" {
		t.Fatalf("RP-initiated logout with a valid hint: %d at %s %.200s", resp.StatusCode, resp.Request.URL, body)
	}
	if e.silent(t, victim) || e.silent(t, stolen) {
		t.Fatal("the session still gives codes after logout")
	}
	if e.userinfoOK(t, online.AccessToken) {
		t.Fatal("the session's access token still works after logout")
	}
	if !e.refreshOK(t, offline.RefreshToken) {
		t.Fatal("the offline_access refresh token died with the session")
	}

	// The back-channel logout token.
	var raw string
	select {
	case raw = <-received:
	case <-time.After(30 * time.Second):
		t.Fatal("no back-channel logout token")
	}
	tok, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	if typ, _ := tok.Signatures[0].Header.ExtraHeaders["typ"].(string); typ != "logout+jwt" {
		t.Fatalf("logout token typ %q", typ)
	}
	kr, err := http.Get(e.srv.URL + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	_ = json.NewDecoder(kr.Body).Decode(&set)
	kr.Body.Close()
	keys := set.Key(tok.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("logout token kid %q not in the JWKS", tok.Signatures[0].Header.KeyID)
	}
	payload, err := tok.Verify(keys[0])
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	events, _ := claims["events"].(map[string]any)
	_, hasEvent := events["http://schemas.openid.net/event/backchannel-logout"]
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	switch {
	case claims["iss"] != e.srv.URL, claims["aud"] != "rp", !hasEvent, claims["sid"] != sid, sid == "",
		claims["sub"] != online.claims["sub"], claims["jti"] == nil || claims["jti"] == "",
		time.Since(time.Unix(int64(iat), 0)) > time.Minute, exp <= iat:
		t.Fatalf("logout token claims: %v (want sid %q)", claims, sid)
	}
	if _, ok := claims["nonce"]; ok {
		t.Fatal("logout token carries a nonce")
	}
	select {
	case extra := <-received:
		t.Fatalf("a second logout token for one client: %.40s", extra)
	default:
	}
}
