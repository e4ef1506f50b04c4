package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const rpSecret = "e2e-secret-0123456789abcdef"

// rp is a relying party written the way client apps write one: go-oidc + x/oauth2.
type rp struct {
	srv      *httptest.Server
	provider *gooidc.Provider
	oauth    *oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

func newRP(t *testing.T, s *server, clientID string, extra ...string) *rp {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "relying party callback") }))
	t.Cleanup(srv.Close)
	args := append([]string{"clients", "add", "--id", clientID, "--secret", rpSecret, "--redirect-uri", srv.URL + "/callback",
		"--post-logout-redirect-uri", srv.URL + "/bye", "--name", "E2E app"}, extra...)
	s.cli(t, args...)
	p, err := gooidc.NewProvider(context.Background(), s.url)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	// The client is registered with client_secret_basic (the default), and the provider accepts
	// only the registered method. x/oauth2's default AuthStyleAutoDetect retries a failed Basic
	// request with the secret in the body, and reports that second answer (invalid_client), not
	// the first one; an RP states its method, as here.
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader
	cfg := &oauth2.Config{ClientID: clientID, ClientSecret: rpSecret, Endpoint: ep, RedirectURL: srv.URL + "/callback",
		Scopes: []string{gooidc.ScopeOpenID, "profile", "email", gooidc.ScopeOfflineAccess}}
	return &rp{srv: srv, provider: p, oauth: cfg, verifier: p.Verifier(&gooidc.Config{ClientID: clientID, SupportedSigningAlgs: []string{"RS256", "ES256"}})}
}

type authz struct {
	state, nonce, verifier string
	url                    string
}

func (r *rp) authorize(opts ...oauth2.AuthCodeOption) authz {
	a := authz{state: oauth2.GenerateVerifier()[:20], nonce: oauth2.GenerateVerifier()[:20], verifier: oauth2.GenerateVerifier()}
	opts = append(opts, gooidc.Nonce(a.nonce), oauth2.S256ChallengeOption(a.verifier))
	a.url = r.oauth.AuthCodeURL(a.state, opts...)
	return a
}

// codeFrom checks the callback URL's state and returns its code.
func codeFrom(t *testing.T, res browserResult, a authz) string {
	t.Helper()
	if res.Outcome != "redirected" {
		t.Fatalf("sign-in did not reach the relying party: %+v", res)
	}
	u, err := url.Parse(res.FinalURL)
	if err != nil {
		t.Fatal(err)
	}
	if e := u.Query().Get("error"); e != "" {
		t.Fatalf("authorization error %s: %s", e, u.Query().Get("error_description"))
	}
	if got := u.Query().Get("state"); got != a.state {
		t.Fatalf("state = %q, want %q", got, a.state)
	}
	code := u.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", res.FinalURL)
	}
	return code
}

type idClaims struct {
	Sub               string   `json:"sub"`
	Nonce             string   `json:"nonce"`
	AuthTime          int64    `json:"auth_time"`
	SID               string   `json:"sid"`
	ACR               string   `json:"acr"`
	AMR               []string `json:"amr"`
	PreferredUsername string   `json:"preferred_username"`
	Email             string   `json:"email"`
}

func (r *rp) exchange(t *testing.T, code string, a authz) (*oauth2.Token, idClaims) {
	t.Helper()
	tok, err := r.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok, r.verifyID(t, tok, a.nonce)
}

func (r *rp) verifyID(t *testing.T, tok *oauth2.Token, nonce string) idClaims {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if nonce != "" && c.Nonce != nonce {
		t.Fatalf("nonce = %q, want %q", c.Nonce, nonce)
	}
	return c
}

func (r *rp) refresh(refreshToken string) (*oauth2.Token, error) {
	return r.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
}

// introspect asks the provider whether an access token is active.
func (r *rp) introspect(t *testing.T, s *server, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/oauth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(r.oauth.ClientID, rpSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("introspect: %v", err)
	}
	return out
}

func (r *rp) revoke(t *testing.T, s *server, token, hint string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/revoke", strings.NewReader(url.Values{"token": {token}, "token_type_hint": {hint}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(r.oauth.ClientID, rpSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: status %d", resp.StatusCode)
	}
}

func isInvalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
}

// TestSelfieCodeFlow is the whole product in one test: enrol from one LFW photo, sign in with
// another photo of the same person through Chromium's camera, and use every endpoint.
func TestSelfieCodeFlow(t *testing.T) {
	s := startServer(t)
	r := newRP(t, s, "e2e-app")
	s.cli(t, "users", "add", "--username", "aaron", "--portrait", lfw(t, "Aaron_Peirsol", 1), "--email", "aaron@example.com", "--display-name", "Aaron P")
	video := y4m(t, lfw(t, "Aaron_Peirsol", 2))
	profile := t.TempDir()

	// 1. First sign-in: username, selfie, consent.
	a := r.authorize()
	res := signIn(t, a.url, video, r.srv.URL+"/callback", "aaron", profile)
	if !slices.Contains(res.Steps, "selfie") || !slices.Contains(res.Steps, "consent") {
		t.Fatalf("first sign-in steps = %v, want a selfie and consent", res.Steps)
	}
	tok, claims := r.exchange(t, codeFrom(t, res, a), a)
	if claims.Sub == "" || claims.SID == "" || claims.AuthTime == 0 {
		t.Fatalf("ID token misses sub/sid/auth_time: %+v", claims)
	}
	if time.Since(time.Unix(claims.AuthTime, 0)) > 5*time.Minute {
		t.Fatalf("auth_time %d is not recent", claims.AuthTime)
	}
	if claims.ACR != "urn:visage:acr:selfie" || !slices.Contains(claims.AMR, "face") {
		t.Fatalf("acr/amr = %q/%v, want urn:visage:acr:selfie and face", claims.ACR, claims.AMR)
	}
	info, err := r.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var ui idClaims
	_ = info.Claims(&ui)
	if info.Subject != claims.Sub || ui.PreferredUsername != "aaron" || info.Email != "aaron@example.com" {
		t.Fatalf("userinfo = %+v / %+v", info, ui)
	}

	// 2. Refresh rotates; the old refresh token presented again revokes the whole grant.
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token for offline_access")
	}
	tok2, err := r.refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh token not rotated")
	}
	if c := r.verifyID(t, tok2, ""); c.Sub != claims.Sub || c.SID != claims.SID {
		t.Fatalf("refreshed ID token sub/sid = %s/%s", c.Sub, c.SID)
	}
	if _, err := r.refresh(tok.RefreshToken); !isInvalidGrant(err) {
		t.Fatalf("reused refresh token: err = %v, want invalid_grant", err)
	}
	if _, err := r.refresh(tok2.RefreshToken); !isInvalidGrant(err) {
		t.Fatalf("after reuse, the rotated refresh token still works: err = %v", err)
	}
	if act := r.introspect(t, s, tok2.AccessToken)["active"]; act != false {
		t.Fatalf("after reuse, the access token is still active: %v", act)
	}

	// 3. Same browser again: the SSO session answers without a selfie.
	b := r.authorize()
	res = signIn(t, b.url, video, r.srv.URL+"/callback", "aaron", profile)
	if slices.Contains(res.Steps, "selfie") || slices.Contains(res.Steps, "consent") {
		t.Fatalf("SSO sign-in steps = %v, want none (session and consent remembered)", res.Steps)
	}
	code := codeFrom(t, res, b)
	tok3, c3 := r.exchange(t, code, b)
	if c3.SID != claims.SID || c3.AuthTime != claims.AuthTime {
		t.Fatalf("SSO ID token sid/auth_time = %s/%d, want %s/%d", c3.SID, c3.AuthTime, claims.SID, claims.AuthTime)
	}
	in := r.introspect(t, s, tok3.AccessToken)
	if in["active"] != true || in["sub"] != claims.Sub || in["client_id"] != "e2e-app" {
		t.Fatalf("introspection = %v", in)
	}

	// 4. A replayed code fails and revokes what the first exchange issued.
	if _, err := r.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(b.verifier)); !isInvalidGrant(err) {
		t.Fatalf("replayed code: err = %v, want invalid_grant", err)
	}
	if act := r.introspect(t, s, tok3.AccessToken)["active"]; act != false {
		t.Fatalf("tokens of a replayed code still active: %v", act)
	}

	// 5. Revocation of an access token and of a refresh token.
	c := r.authorize()
	res = signIn(t, c.url, video, r.srv.URL+"/callback", "aaron", profile)
	tok4, c4 := r.exchange(t, codeFrom(t, res, c), c)
	r.revoke(t, s, tok4.AccessToken, "access_token")
	if act := r.introspect(t, s, tok4.AccessToken)["active"]; act != false {
		t.Fatalf("revoked access token is active")
	}
	r.revoke(t, s, tok4.RefreshToken, "refresh_token")
	if _, err := r.refresh(tok4.RefreshToken); !isInvalidGrant(err) {
		t.Fatalf("revoked refresh token: err = %v", err)
	}

	// 5b. A bare /end_session link (any site can send the browser there) signs nobody out: it
	// shows a confirmation page, and a silent sign-in afterwards still gets a code.
	res = signIn(t, s.url+"/end_session", video, s.url+"/end_session", "aaron", profile)
	if res.Outcome != "redirected" {
		t.Fatalf("bare end_session: %+v", res)
	}
	bare := r.authorize(oauth2.SetAuthURLParam("prompt", "none"))
	res = signIn(t, bare.url, video, r.srv.URL+"/callback", "aaron", profile)
	if u, _ := url.Parse(res.FinalURL); u.Query().Get("code") == "" {
		t.Fatalf("a bare end_session link signed the user out: prompt=none gave %s", res.FinalURL)
	}

	// 6. end_session, then prompt=none must answer login_required.
	raw, _ := tok4.Extra("id_token").(string)
	endURL := s.url + "/end_session?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {r.srv.URL + "/bye"}, "client_id": {"e2e-app"}}.Encode()
	res = signIn(t, endURL, video, r.srv.URL+"/bye", "aaron", profile)
	if res.Outcome != "redirected" {
		t.Fatalf("end_session did not redirect to the post-logout URI: %+v", res)
	}
	d := r.authorize(oauth2.SetAuthURLParam("prompt", "none"))
	res = signIn(t, d.url, video, r.srv.URL+"/callback", "aaron", profile)
	u, _ := url.Parse(res.FinalURL)
	if u.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none after logout: %s, want error=login_required", res.FinalURL)
	}
	_ = c4

	// 7. Signed out, but the same browser (device cookie) on the same network: the username is
	// enough, the camera is not opened, and the ID token says why.
	e := r.authorize()
	res = signIn(t, e.url, video, r.srv.URL+"/callback", "aaron", profile)
	if !slices.Equal(res.Steps, []string{"username"}) {
		t.Fatalf("known device sign-in steps = %v, want only the username", res.Steps)
	}
	if _, c := r.exchange(t, codeFrom(t, res, e), e); c.ACR != "urn:visage:acr:device" || !slices.Equal(c.AMR, []string{"device"}) {
		t.Fatalf("known device ID token acr/amr = %s/%v", c.ACR, c.AMR)
	}
}

// TestImpostorGetsNoCode: a photo of a different person must not yield a code.
func TestImpostorGetsNoCode(t *testing.T) {
	s := startServer(t)
	r := newRP(t, s, "e2e-app")
	s.cli(t, "users", "add", "--username", "aaron", "--portrait", lfw(t, "Aaron_Peirsol", 1))
	a := r.authorize()
	res := signIn(t, a.url, y4m(t, lfw(t, "Colin_Powell", 38)), r.srv.URL+"/callback", "aaron", "")
	if res.Outcome != "refused" || strings.Contains(res.FinalURL, "code=") {
		t.Fatalf("impostor sign-in: %+v, want refused without a code", res)
	}
	if !strings.Contains(res.Message, "does not match") {
		t.Fatalf("refusal message %q does not say why", res.Message)
	}
}

// TestOpenIDClient runs panva's openid-client against the same server.
func TestOpenIDClient(t *testing.T) {
	s := startServer(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	s.cli(t, "clients", "add", "--id", "node-app", "--secret", rpSecret, "--redirect-uri", srv.URL+"/cb", "--first-party", "--auth-method", "client_secret_post", "--signing-alg", "ES256")
	s.cli(t, "users", "add", "--username", "aaron", "--portrait", lfw(t, "Aaron_Peirsol", 1), "--email", "aaron@example.com")
	var out oidcClientResult
	node(t, &out, "openid-client.mjs", "--issuer", s.url, "--client-id", "node-app", "--client-secret", rpSecret,
		"--redirect", srv.URL+"/cb", "--video", y4m(t, lfw(t, "Aaron_Peirsol", 2)), "--username", "aaron", "--alg", "ES256")
	if !out.OK {
		t.Fatalf("openid-client: %s", out.Error)
	}
	sub, _ := out.Claims["sub"].(string)
	if sub == "" || out.UserInfo["preferred_username"] != "aaron" || !out.HasRefreshToken || !out.Refreshed.Rotated || out.Refreshed.Sub != sub {
		t.Fatalf("openid-client saw %+v", out)
	}
	// RFC 9207: the authorization response names the issuer, and openid-client checks it.
	t.Logf("openid-client on a forged iss: %s", out.ForgedISSError)
	if !out.ISSSupported || out.ResponseISS != s.url || !out.ForgedISSRefused || !strings.Contains(out.ForgedISSError, `"iss"`) {
		t.Fatalf("iss in the authorization response: supported=%v iss=%q forged refused=%v (%s)", out.ISSSupported, out.ResponseISS, out.ForgedISSRefused, out.ForgedISSError)
	}
}

// oidcClientResult is what e2e/openid-client.mjs prints.
type oidcClientResult struct {
	OK               bool           `json:"ok"`
	Error            string         `json:"error"`
	Claims           map[string]any `json:"claims"`
	UserInfo         map[string]any `json:"userinfo"`
	HasRefreshToken  bool           `json:"has_refresh_token"`
	ISSSupported     bool           `json:"iss_supported"`
	ResponseISS      string         `json:"response_iss"`
	ForgedISSRefused bool           `json:"forged_iss_refused"`
	ForgedISSError   string         `json:"forged_iss_error"`
	AssertionAud     string         `json:"assertion_aud"`
	Refreshed        struct {
		Rotated bool   `json:"rotated"`
		Sub     string `json:"sub"`
	} `json:"refreshed"`
}

// TestBadRequestsNeverRedirect covers the refusals that must not send the browser anywhere,
// and the other negative paths.
func TestBadRequests(t *testing.T) {
	s := startServer(t, "VISAGE_CODE_TTL=2s")
	r := newRP(t, s, "e2e-app")
	s.cli(t, "clients", "add", "--id", "spa", "--public", "--redirect-uri", r.srv.URL+"/spa")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u string) *http.Response {
		t.Helper()
		resp, err := noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	base := url.Values{"response_type": {"code"}, "scope": {"openid"}, "state": {"s1"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	with := func(kv ...string) string {
		v := url.Values{}
		for k, vs := range base {
			v[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return s.url + "/authorize?" + v.Encode()
	}
	getBody := func(u string) (*http.Response, string) {
		t.Helper()
		resp, err := noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	t.Run("wrong redirect_uri shows an error page", func(t *testing.T) {
		resp, body := getBody(with("client_id", "e2e-app", "redirect_uri", "https://evil.example/cb?<script>x</script>"))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("status %d, location %q, type %q", resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Content-Type"))
		}
		// It names the client and the rejected URI (escaped), and how to register it.
		for _, want := range []string{`id="error-message"`, "e2e-app", "https://evil.example/cb?&lt;script&gt;x&lt;/script&gt;", "idp clients add --redirect-uri"} {
			if !strings.Contains(body, want) {
				t.Errorf("the page does not say %q:\n%s", want, body)
			}
		}
		if strings.Contains(body, "<script>x") {
			t.Error("the redirect_uri is not escaped")
		}
	})
	t.Run("unknown client shows an error page", func(t *testing.T) {
		resp, body := getBody(with("client_id", "nobody", "redirect_uri", r.srv.URL+"/callback"))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("status %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if !strings.Contains(body, `"nobody"`) && !strings.Contains(body, "&#34;nobody&#34;") || !strings.Contains(body, "idp clients add") || strings.Contains(body, "unable to retrieve client") {
			t.Errorf("the page does not name the client or how to register it:\n%s", body)
		}
	})
	t.Run("an unknown path gets the styled 404 page", func(t *testing.T) {
		for _, p := range []string{"/no-such-page", "/static/no-such-file.css", "/account/nothing"} {
			resp, body := getBody(s.url + p)
			if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				strings.Contains(body, "404 page not found") || !strings.Contains(body, "Page not found") || !strings.Contains(body, "/static/style.css") {
				t.Errorf("%s: %d %q\n%s", p, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if resp.Header.Get("Content-Security-Policy") == "" {
				t.Errorf("%s: the 404 page has no CSP", p)
			}
		}
		if resp, body := getBody(s.url + "/v3/no-such-thing"); strings.Contains(body, "<html") {
			t.Errorf("/v3 answered HTML: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("the favicon is served and linked", func(t *testing.T) {
		resp, body := getBody(s.url + "/static/favicon.svg")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/svg+xml") || !strings.Contains(body, "<svg") {
			t.Fatalf("favicon: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if _, page := getBody(s.url + "/"); !strings.Contains(page, `<link rel="icon" href="/static/favicon.svg"`) {
			t.Fatalf("the layout does not link the favicon:\n%s", page)
		}
	})
	t.Run("clients add refuses a redirect URI that is not a URL", func(t *testing.T) {
		out, err := s.cliErr("clients", "add", "--id", "broken", "--redirect-uri", "not a url")
		if err == nil || !strings.Contains(out, "absolute http(s) URL") {
			t.Fatalf("accepted: %v\n%s", err, out)
		}
	})
	t.Run("public client without PKCE is refused", func(t *testing.T) {
		resp := get(with("client_id", "spa", "redirect_uri", r.srv.URL+"/spa", "code_challenge", "", "code_challenge_method", ""))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), r.srv.URL+"/spa") || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("status %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("plain PKCE is refused", func(t *testing.T) {
		resp := get(with("client_id", "spa", "redirect_uri", r.srv.URL+"/spa", "code_challenge_method", "plain"))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc == nil || loc.Query().Get("error") != "invalid_request" {
			t.Fatalf("status %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("missing CSRF token", func(t *testing.T) {
		resp, err := noRedirect.PostForm(s.url+"/login", url.Values{"username": {"aaron"}, "authRequestID": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("tampered state is refused by the demo client", func(t *testing.T) {
		resp := get(s.url + "/demo/login")
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc == nil || loc.Query().Get("state") == "" {
			t.Fatalf("demo login did not redirect to /authorize: %v", resp.Header)
		}
		req, _ := http.NewRequest(http.MethodGet, s.url+"/demo/callback?code=x&state=tampered", nil)
		for _, c := range resp.Cookies() {
			req.AddCookie(c)
		}
		resp2, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp2.Body)
		resp2.Body.Close()
		if resp2.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "state mismatch") {
			t.Fatalf("status %d body %.200s", resp2.StatusCode, body)
		}
	})
	t.Run("wrong client secret, then expired code", func(t *testing.T) {
		s.cli(t, "users", "add", "--username", "aaron", "--portrait", lfw(t, "Aaron_Peirsol", 1))
		a := r.authorize()
		res := signIn(t, a.url, y4m(t, lfw(t, "Aaron_Peirsol", 2)), r.srv.URL+"/callback", "aaron", "")
		code := codeFrom(t, res, a)
		bad := *r.oauth
		bad.ClientSecret = "wrong-secret-0123456789"
		var re *oauth2.RetrieveError
		if _, err := bad.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier)); !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
			t.Fatalf("wrong secret with a valid code: err = %v, want invalid_client", err)
		}
		time.Sleep(3 * time.Second)
		if _, err := r.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier)); !isInvalidGrant(err) {
			t.Fatalf("expired code: err = %v, want invalid_grant", err)
		}
	})
}
