package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/visage-idp/visage/store"
)

// The tests in this file are attacks, written from the attacker's side: a plain HTTP client
// with no cookie, holding only what a stranger can get (a client id, a redirect URI of his own,
// an Origin header, a token he captured, his own client registration).

// noRedirect is the attacker's HTTP client: it shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}

func pkcePair() (verifier, challenge string) {
	verifier = randomID(32)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func (o *testOP) authorize(t *testing.T, q url.Values) *http.Response {
	t.Helper()
	resp, err := noRedirect.Get(o.url + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestAttackLoopbackRedirect: a public client registered with fixed loopback redirect URIs.
// The attacker asks for the same path on another port of localhost, over https, on another
// loopback address, or on another host name for the loopback interface; only RFC 8252 section
// 7.3 (any port on a registered http://127.0.0.1 or http://[::1] URI) may vary.
func TestAttackLoopbackRedirect(t *testing.T) {
	o := newTestOP(t)
	ctx := context.Background()
	if err := o.st.CreateClient(ctx, store.Client{ID: "cli", Public: true, AuthMethod: "none", CreatedAt: time.Now(),
		RedirectURIs: []string{"http://localhost:9999/cb", "http://localhost:9999/native", "http://127.0.0.1/cb", "http://[::1]/cb", "https://app.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	secret := "secret-0123456789abcdef"
	if err := o.st.CreateClient(ctx, store.Client{ID: "web", SecretHash: HashSecret(secret), AuthMethod: "client_secret_basic", CreatedAt: time.Now(),
		RedirectURIs: []string{"http://127.0.0.1/cb"}}); err != nil {
		t.Fatal(err)
	}
	_, challenge := pkcePair()
	for _, tc := range []struct {
		client, uri string
		ok          bool
	}{
		{"cli", "http://localhost:9999/cb", true},
		{"cli", "https://app.example/cb", true},
		{"cli", "http://127.0.0.1/cb", true},
		{"cli", "http://127.0.0.1:51234/cb", true},
		{"cli", "http://[::1]:51234/cb", true},
		{"cli", "http://localhost:1234/cb", false},
		{"cli", "https://localhost:9999/cb", false},
		{"cli", "https://localhost/cb", false},
		{"cli", "http://127.0.0.1:9999/native", false},
		{"cli", "http://[::1]:9999/native", false},
		{"cli", "http://localhost:9998/native", false},
		{"cli", "http://[::1]:9999/cb", true},
		{"cli", "https://127.0.0.1:51234/cb", false},
		{"cli", "http://127.0.0.2:51234/cb", false},
		{"cli", "http://127.0.0.1:51234/cb/../evil", false},
		{"cli", "http://127.0.0.1:51234/other", false},
		{"cli", "http://127.0.0.1:51234/cb?x=1", false},
		{"cli", "http://user@127.0.0.1:51234/cb", false},
		{"cli", "http://localhost:51234/cb", false},
		{"cli", "https://app.example:8443/cb", false},
		{"web", "http://127.0.0.1/cb", true},
		{"web", "http://127.0.0.1:51234/cb", false}, // confidential: exact only
	} {
		resp := o.authorize(t, url.Values{"client_id": {tc.client}, "redirect_uri": {tc.uri}, "response_type": {"code"}, "scope": {"openid"},
			"state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}})
		loc := resp.Header.Get("Location")
		accepted := resp.StatusCode == http.StatusFound && strings.HasPrefix(loc, "/login?")
		if accepted != tc.ok {
			t.Errorf("%s %s: status %d Location %q; accepted=%v, want %v", tc.client, tc.uri, resp.StatusCode, loc, accepted, tc.ok)
		}
		if !tc.ok && loc != "" {
			t.Errorf("%s %s: refused but redirected to %q", tc.client, tc.uri, loc)
		}
	}
}

// TestAttackCORS: a page on any origin reads the token endpoint's answers with the user's
// credentials today. Only the origins a client registered get CORS, only on the endpoints
// browser apps call, and never with credentials.
func TestAttackCORS(t *testing.T) {
	o := newTestOP(t)
	ctx := context.Background()
	if err := o.st.CreateClient(ctx, store.Client{ID: "spa", Public: true, AuthMethod: "none", CreatedAt: time.Now(),
		RedirectURIs: []string{"https://spa.example/cb"}, WebOrigins: []string{"https://spa.example"}}); err != nil {
		t.Fatal(err)
	}
	if err := o.st.CreateClient(ctx, store.Client{ID: "other", Public: true, AuthMethod: "none", CreatedAt: time.Now(),
		RedirectURIs: []string{"https://other.example/cb"}, WebOrigins: []string{"https://other.example"}}); err != nil {
		t.Fatal(err)
	}
	do := func(method, path, origin string, form url.Values, preflight bool) http.Header {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, o.url+path, body)
		req.Header.Set("Origin", origin)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if preflight {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header
	}
	tokenForm := func(client string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {client}}
	}
	for _, tc := range []struct {
		name, method, path, origin string
		form                       url.Values
		preflight                  bool
		allow                      bool
	}{
		{"evil origin, token", http.MethodPost, "/oauth/token", "https://evil.example", tokenForm("spa"), false, false},
		{"evil origin, token preflight", http.MethodOptions, "/oauth/token", "https://evil.example", nil, true, false},
		{"evil origin, discovery", http.MethodGet, "/.well-known/openid-configuration", "https://evil.example", nil, false, false},
		{"evil origin, userinfo", http.MethodGet, "/userinfo", "https://evil.example", nil, false, false},
		{"evil origin, authorize", http.MethodGet, "/authorize", "https://evil.example", nil, false, false},
		{"registered origin, token", http.MethodPost, "/oauth/token", "https://spa.example", tokenForm("spa"), false, true},
		{"another client's origin, token", http.MethodPost, "/oauth/token", "https://other.example", tokenForm("spa"), false, false},
		{"registered origin, token preflight", http.MethodOptions, "/oauth/token", "https://spa.example", nil, true, true},
		{"registered origin, discovery", http.MethodGet, "/.well-known/openid-configuration", "https://spa.example", nil, false, true},
		{"registered origin, keys", http.MethodGet, "/keys", "https://spa.example", nil, false, true},
		{"registered origin, userinfo", http.MethodGet, "/userinfo", "https://spa.example", nil, false, true},
		{"registered origin, revoke", http.MethodPost, "/revoke", "https://spa.example", url.Values{"token": {"x"}, "client_id": {"spa"}}, false, true},
		{"registered origin, introspect", http.MethodPost, "/oauth/introspect", "https://spa.example", url.Values{"token": {"x"}}, false, false},
		{"registered origin, authorize", http.MethodGet, "/authorize", "https://spa.example", nil, false, false},
		{"registered origin, end_session", http.MethodGet, "/end_session", "https://spa.example", nil, false, false},
	} {
		h := do(tc.method, tc.path, tc.origin, tc.form, tc.preflight)
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: Access-Control-Allow-Credentials: %q", tc.name, h.Get("Access-Control-Allow-Credentials"))
		}
		got := h.Get("Access-Control-Allow-Origin")
		if tc.allow && got != tc.origin {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", tc.name, got, tc.origin)
		}
		if !tc.allow && got != "" {
			t.Errorf("%s: Access-Control-Allow-Origin %q, want none", tc.name, got)
		}
	}
}

// rawToken posts a token request and returns the status, the headers and the JSON error.
func (o *testOP) rawToken(t *testing.T, path string, form url.Values, user, pass string) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, o.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header, body
}

// TestAttackClientAuthentication: the registered method is the only one accepted, and every
// failure is 401 invalid_client.
func TestAttackClientAuthentication(t *testing.T) {
	o := newTestOP(t)
	ctx := context.Background()
	secret := "secret-0123456789abcdef"
	for id, method := range map[string]string{"basic": "client_secret_basic", "post": "client_secret_post"} {
		if err := o.st.CreateClient(ctx, store.Client{ID: id, SecretHash: HashSecret(secret), AuthMethod: method,
			RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	codeForm := func(client string, extra url.Values) url.Values {
		v := url.Values{"grant_type": {"authorization_code"}, "code": {o.code(t, client, "u-"+client)}, "redirect_uri": {"http://127.0.0.1/cb"}}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}
	for _, tc := range []struct {
		name       string
		form       url.Values
		user, pass string
		basicChal  bool
	}{
		{"basic client posts its secret in the body", codeForm("basic", url.Values{"client_id": {"basic"}, "client_secret": {secret}}), "", "", true},
		{"post client sends its secret as Basic", codeForm("post", nil), "post", secret, true},
		{"basic client, wrong secret", codeForm("basic", nil), "basic", "wrong-secret-0123456789", true},
		{"post client, wrong secret", codeForm("post", url.Values{"client_id": {"post"}, "client_secret": {"wrong-secret-0123456789"}}), "", "", false},
		{"basic client, no secret at all", codeForm("basic", url.Values{"client_id": {"basic"}}), "", "", true},
		{"unknown client", codeForm("basic", url.Values{"client_id": {"nobody"}, "client_secret": {secret}}), "", "", false},
		{"no client at all", codeForm("basic", nil), "", "", false},
	} {
		status, h, body := o.rawToken(t, "/oauth/token", tc.form, tc.user, tc.pass)
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("%s: %d %v, want 401 invalid_client", tc.name, status, body)
		}
		if tc.basicChal && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s: WWW-Authenticate %q, want Basic", tc.name, h.Get("WWW-Authenticate"))
		}
	}
	// The registered methods still work.
	if status, _, body := o.rawToken(t, "/oauth/token", codeForm("basic", nil), "basic", secret); status != http.StatusOK {
		t.Fatalf("basic client with Basic: %d %v", status, body)
	}
	if status, _, body := o.rawToken(t, "/oauth/token", codeForm("post", url.Values{"client_id": {"post"}, "client_secret": {secret}}), "", ""); status != http.StatusOK {
		t.Fatalf("post client with its secret in the body: %d %v", status, body)
	}
}

// jwtClient is a private_key_jwt client's signing side.
type jwtClient struct {
	id  string
	key *ecdsa.PrivateKey
	kid string
}

func newJWTClient(t *testing.T, id, kid string) *jwtClient {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtClient{id: id, key: k, kid: kid}
}

func (c *jwtClient) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &c.key.PublicKey, KeyID: c.kid, Algorithm: "ES256", Use: "sig"}
}

func (c *jwtClient) assertion(t *testing.T, aud, jti string, exp time.Duration) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: c.key, KeyID: c.kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: c.id, Subject: c.id, Audience: jwt.Audience{aud}, ID: jti,
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(exp))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func assertionForm(o *testOP, t *testing.T, client, assertion string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {o.code(t, client, "u-"+client)}, "redirect_uri": {"http://127.0.0.1/cb"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
}

// TestAttackPrivateKeyJWT: the token endpoint URL is a valid audience (OIDC Core section 9,
// Keycloak's default); a captured assertion cannot be replayed, and a long-lived one is refused.
func TestAttackPrivateKeyJWT(t *testing.T) {
	o := newTestOP(t)
	ctx := context.Background()
	c := newJWTClient(t, "kc", "k1")
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{c.public()}})
	if err := o.st.CreateClient(ctx, store.Client{ID: "kc", AuthMethod: "private_key_jwt", JWKS: set,
		RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tokenURL := o.url + "/oauth/token"
	if status, _, body := o.rawToken(t, "/oauth/token", assertionForm(o, t, "kc", c.assertion(t, tokenURL, randomID(8), time.Minute)), "", ""); status != http.StatusOK {
		t.Fatalf("aud = token endpoint: %d %v", status, body)
	}
	if status, _, body := o.rawToken(t, "/oauth/token", assertionForm(o, t, "kc", c.assertion(t, o.url, randomID(8), time.Minute)), "", ""); status != http.StatusOK {
		t.Fatalf("aud = issuer: %d %v", status, body)
	}
	captured := c.assertion(t, tokenURL, randomID(8), time.Minute)
	if status, _, body := o.rawToken(t, "/oauth/token", assertionForm(o, t, "kc", captured), "", ""); status != http.StatusOK {
		t.Fatalf("first use: %d %v", status, body)
	}
	for name, a := range map[string]string{
		"replayed assertion (same jti)": captured,
		"assertion valid for a day":     c.assertion(t, tokenURL, randomID(8), 24*time.Hour),
		"assertion without jti":         c.assertion(t, tokenURL, "", time.Minute),
		"expired assertion":             c.assertion(t, tokenURL, randomID(8), -time.Minute),
		"assertion for another server":  c.assertion(t, "https://elsewhere.example/token", randomID(8), time.Minute),
		"assertion by another key":      newJWTClient(t, "kc", "k1").assertion(t, tokenURL, randomID(8), time.Minute),
	} {
		status, _, body := o.rawToken(t, "/oauth/token", assertionForm(o, t, "kc", a), "", "")
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("%s: %d %v, want 401 invalid_client", name, status, body)
		}
	}
}

// TestJWKSURIRotation: a client's keys come from its jwks_uri (as Keycloak publishes them); a
// rotation there is followed, a key removed there stops working, and an unknown kid does not
// make the provider hammer the client's server.
func TestJWKSURIRotation(t *testing.T) {
	var (
		mu      sync.Mutex
		current []jose.JSONWebKey
		fetches atomic.Int32
	)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: current})
	}))
	t.Cleanup(jwks.Close)
	o := newTestOP(t)
	clock := time.Now()
	var clockMu sync.Mutex
	o.p.jwks.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	advance := func(d time.Duration) { clockMu.Lock(); clock = clock.Add(d); clockMu.Unlock() }
	ctx := context.Background()
	if err := o.st.CreateClient(ctx, store.Client{ID: "kc", AuthMethod: "private_key_jwt", JWKSURI: jwks.URL,
		RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	k1, k2, k3 := newJWTClient(t, "kc", "k1"), newJWTClient(t, "kc", "k2"), newJWTClient(t, "kc", "k3")
	mu.Lock()
	current = []jose.JSONWebKey{k1.public()}
	mu.Unlock()
	exchange := func(c *jwtClient) int {
		status, _, _ := o.rawToken(t, "/oauth/token", assertionForm(o, t, "kc", c.assertion(t, o.url+"/oauth/token", randomID(8), time.Minute)), "", "")
		return status
	}
	if s := exchange(k1); s != http.StatusOK {
		t.Fatalf("k1 from jwks_uri: %d", s)
	}
	if s := exchange(k1); s != http.StatusOK || fetches.Load() != 1 {
		t.Fatalf("k1 again: %d after %d fetches, want 200 from the cache (1 fetch)", s, fetches.Load())
	}
	// The client rotates: k2 replaces k1.
	mu.Lock()
	current = []jose.JSONWebKey{k2.public()}
	mu.Unlock()
	advance(time.Minute)
	if s := exchange(k2); s != http.StatusOK {
		t.Fatalf("k2 after rotation: %d", s)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the rotation, want 2", n)
	}
	// An unknown kid right after a fetch is refused without another fetch.
	if s := exchange(k3); s != http.StatusUnauthorized {
		t.Fatalf("unknown kid k3: %d", s)
	}
	if s := exchange(k3); s != http.StatusUnauthorized || fetches.Load() != 2 {
		t.Fatalf("unknown kid again: %d after %d fetches, want 401 and no new fetch", s, fetches.Load())
	}
	// Once the cache is past its lifetime, the removed k1 is gone.
	advance(time.Hour)
	if s := exchange(k1); s != http.StatusUnauthorized {
		t.Fatalf("k1 after the client removed it: %d", s)
	}
	if s := exchange(k2); s != http.StatusOK {
		t.Fatalf("k2 still current: %d", s)
	}
}

// TestDiscoveryListsOnlyWhatWorks: the provider advertises only what it accepts.
func TestDiscoveryListsOnlyWhatWorks(t *testing.T) {
	o := newTestOP(t)
	resp, err := http.Get(o.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	list := func(k string) []string {
		var out []string
		v, _ := d[k].([]any)
		for _, x := range v {
			out = append(out, x.(string))
		}
		return out
	}
	eq := func(k string, want ...string) {
		got := list(k)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	eq("response_types_supported", "code")
	eq("response_modes_supported", "query")
	eq("grant_types_supported", "authorization_code", "refresh_token")
	eq("acr_values_supported", ACRDevice, ACRSelfie, ACRActive)
	eq("code_challenge_methods_supported", "S256")
	eq("token_endpoint_auth_methods_supported", "client_secret_basic", "client_secret_post", "private_key_jwt", "none")
	for _, k := range []string{"device_authorization_endpoint", "check_session_iframe"} {
		if _, ok := d[k]; ok {
			t.Errorf("discovery advertises %s", k)
		}
	}
	if d["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("authorization_response_iss_parameter_supported = %v", d["authorization_response_iss_parameter_supported"])
	}
	claims := strings.Join(list("claims_supported"), " ")
	for _, c := range []string{"sub", "acr", "amr", "auth_time", "email", "email_verified", "preferred_username", "sid"} {
		if !strings.Contains(" "+claims+" ", " "+c+" ") {
			t.Errorf("claims_supported lacks %s: %s", c, claims)
		}
	}
	// What discovery no longer lists is refused.
	if err := o.st.CreateClient(context.Background(), store.Client{ID: "cli", Public: true, AuthMethod: "none", CreatedAt: time.Now(),
		RedirectURIs: []string{"http://127.0.0.1/cb"}}); err != nil {
		t.Fatal(err)
	}
	_, challenge := pkcePair()
	for _, q := range []url.Values{
		{"response_type": {"id_token"}, "nonce": {"n"}},
		{"response_type": {"id_token token"}, "nonce": {"n"}},
		{"response_type": {"code"}, "response_mode": {"form_post"}},
		{"response_type": {"code"}, "response_mode": {"fragment"}},
	} {
		q.Set("client_id", "cli")
		q.Set("redirect_uri", "http://127.0.0.1/cb")
		q.Set("scope", "openid")
		q.Set("code_challenge", challenge)
		q.Set("code_challenge_method", "S256")
		resp := o.authorize(t, q)
		if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "/login") || resp.StatusCode == http.StatusOK {
			t.Errorf("%v accepted: %d %s", q, resp.StatusCode, loc)
		}
	}
	if status, _, _ := o.rawToken(t, "/device_authorization", url.Values{"client_id": {"cli"}, "scope": {"openid"}}, "", ""); status != http.StatusNotFound {
		t.Errorf("device authorization endpoint answers %d, want 404", status)
	}
	for _, grant := range []string{"urn:ietf:params:oauth:grant-type:jwt-bearer", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"} {
		if status, _, _ := o.rawToken(t, "/oauth/token", url.Values{"grant_type": {grant}, "client_id": {"cli"}}, "", ""); status == http.StatusOK {
			t.Errorf("grant %s accepted", grant)
		}
	}
}

// TestAuthorizationResponseIss: RFC 9207, every authorization response names the issuer, so a
// client talking to several providers cannot be tricked into sending one's code to another.
func TestAuthorizationResponseIss(t *testing.T) {
	o := newTestOP(t)
	ctx := context.Background()
	if err := o.st.CreateClient(ctx, store.Client{ID: "cli", Public: true, AuthMethod: "none", CreatedAt: time.Now(),
		RedirectURIs: []string{"http://127.0.0.1/cb"}}); err != nil {
		t.Fatal(err)
	}
	check := func(name string, resp *http.Response, param string) {
		t.Helper()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusFound || loc.Query().Get(param) == "" {
			t.Fatalf("%s: %d %q, want a redirect with %s", name, resp.StatusCode, resp.Header.Get("Location"), param)
		}
		if got := loc.Query().Get("iss"); got != o.url {
			t.Errorf("%s: iss = %q, want %q (%s)", name, got, o.url, loc)
		}
		if loc.Query().Get("state") != "st" {
			t.Errorf("%s: state lost: %s", name, loc)
		}
	}
	// Error response from /authorize (no PKCE for a public client).
	check("error", o.authorize(t, url.Values{"client_id": {"cli"}, "redirect_uri": {"http://127.0.0.1/cb"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st"}}), "error")
	// Error response the login pages send (access denied).
	_, challenge := pkcePair()
	resp := o.authorize(t, url.Values{"client_id": {"cli"}, "redirect_uri": {"http://127.0.0.1/cb"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}})
	id := strings.TrimPrefix(resp.Header.Get("Location"), "/login?authRequestID=")
	rec := httptest.NewRecorder()
	o.p.RedirectError(rec, httptest.NewRequest(http.MethodGet, o.url+"/consent", nil), id, ErrAccessDenied())
	check("access_denied", rec.Result(), "error")
	// Success: the request completed by the login pages turns into a code.
	resp = o.authorize(t, url.Values{"client_id": {"cli"}, "redirect_uri": {"http://127.0.0.1/cb"}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}})
	id = strings.TrimPrefix(resp.Header.Get("Location"), "/login?authRequestID=")
	if err := o.p.Authenticate(ctx, id, Authentication{UserID: "u1", SessionID: "s1", AuthTime: time.Now(), AMR: []string{"face"}, ACR: ACRSelfie}); err != nil {
		t.Fatal(err)
	}
	callback, err := o.p.Approve(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	cbReq := httptest.NewRequest(http.MethodGet, callback, nil)
	for _, c := range resp.Cookies() { // the browser that started the request holds its binding cookie
		cbReq.AddCookie(c)
	}
	o.p.Handler().ServeHTTP(rec, cbReq)
	check("code", rec.Result(), "code")
}

// TestAttackIntrospection: a confidential client that captured another client's access token
// learns nothing from introspection; the token's own client and a resource server registered
// for that client do.
func TestAttackIntrospection(t *testing.T) {
	o := newTestOP(t)
	ctx := context.Background()
	secret := "secret-0123456789abcdef"
	for _, c := range []store.Client{
		{ID: "app", SecretHash: HashSecret(secret), AuthMethod: "client_secret_basic"},
		{ID: "stranger", SecretHash: HashSecret(secret), AuthMethod: "client_secret_basic"},
		{ID: "api", SecretHash: HashSecret(secret), AuthMethod: "client_secret_basic", ResourceServerFor: []string{"app"}},
		{ID: "api-post", SecretHash: HashSecret(secret), AuthMethod: "client_secret_post", ResourceServerFor: []string{"app"}},
	} {
		c.RedirectURIs, c.CreatedAt = []string{"http://127.0.0.1/cb"}, time.Now()
		if err := o.st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	tr := o.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {o.code(t, "app", "victim")}, "redirect_uri": {"http://127.0.0.1/cb"}}, "app", secret)
	if tr.Status != http.StatusOK {
		t.Fatalf("exchange: %+v", tr)
	}
	introspect := func(client string) map[string]any {
		status, h, body := o.rawToken(t, "/oauth/introspect", url.Values{"token": {tr.AccessToken}}, client, secret)
		if status != http.StatusOK {
			t.Fatalf("%s: introspection %d %v", client, status, body)
		}
		if !strings.Contains(h.Get("Cache-Control"), "no-store") {
			t.Errorf("%s: introspection Cache-Control %q", client, h.Get("Cache-Control"))
		}
		return body
	}
	if got := introspect("stranger"); got["active"] != false || got["email"] != nil || got["sub"] != nil {
		t.Errorf("a stranger client introspected the token: %v", got)
	}
	if got := introspect("app"); got["active"] != true || got["sub"] != "victim" {
		t.Errorf("the token's own client: %v", got)
	}
	if got := introspect("api"); got["active"] != true || got["sub"] != "victim" {
		t.Errorf("the registered resource server: %v", got)
	}
	// A resource server that authenticates with client_secret_post (zitadel alone takes only
	// Basic or a JWT at introspection).
	status, _, got := o.rawToken(t, "/oauth/introspect", url.Values{"token": {tr.AccessToken}, "client_id": {"api-post"}, "client_secret": {secret}}, "", "")
	if status != http.StatusOK || got["active"] != true || got["sub"] != "victim" {
		t.Errorf("resource server with client_secret_post: %d %v", status, got)
	}
	// A public client cannot introspect at all.
	if status, _, got := o.rawToken(t, "/oauth/introspect", url.Values{"token": {tr.AccessToken}, "client_id": {"app"}}, "", ""); status != http.StatusUnauthorized {
		t.Errorf("introspection without client authentication: %d %v", status, got)
	}
}

// TestNoStore: token and userinfo answers carry Cache-Control: no-store.
func TestNoStore(t *testing.T) {
	o := newTestOP(t)
	ctx := context.Background()
	secret := "secret-0123456789abcdef"
	if err := o.st.CreateClient(ctx, store.Client{ID: "app", SecretHash: HashSecret(secret), AuthMethod: "client_secret_basic",
		RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	status, h, body := o.rawToken(t, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {o.code(t, "app", "u1")}, "redirect_uri": {"http://127.0.0.1/cb"}}, "app", secret)
	if status != http.StatusOK || !strings.Contains(h.Get("Cache-Control"), "no-store") {
		t.Fatalf("token: %d Cache-Control %q", status, h.Get("Cache-Control"))
	}
	req, _ := http.NewRequest(http.MethodGet, o.url+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+body["access_token"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Cache-Control"), "no-store") {
		t.Fatalf("userinfo: %d Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
}
