package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/sqlite"
)

type testOP struct {
	url string
	p   *Provider
	st  store.Storage
}

func newTestOP(t *testing.T) *testOP {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "op.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := EnsureKeys(ctx, st, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	srv := newLoopback(t)
	p, err := NewProvider(Config{Issuer: srv.url, LoginPath: "/login", LoggedOutPath: "/"}, st)
	if err != nil {
		t.Fatal(err)
	}
	srv.start(p.Handler())
	return &testOP{url: srv.url, p: p, st: st}
}

// code creates a completed authorization request for a new user and returns a code for it.
func (o *testOP) code(t *testing.T, clientID, user string) string {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	if _, err := o.st.GetUser(ctx, user); err != nil {
		if err := o.st.CreateUser(ctx, store.User{ID: user, Username: user, Email: user + "@example.com", DisplayName: "User " + user, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	ar := store.AuthRequest{ID: randomID(8), ClientID: clientID, RedirectURI: "http://127.0.0.1/cb", Scopes: []string{"openid", "profile", "email", "offline_access"},
		ResponseType: "code", CreatedAt: now, ExpiresAt: now.Add(time.Hour), UserID: user, SessionID: "sid-1", AuthTime: now, AMR: []string{"face"}, ACR: ACRSelfie, Done: true}
	if err := o.st.CreateAuthRequest(ctx, ar); err != nil {
		t.Fatal(err)
	}
	code := randomID(16)
	if err := o.p.storage.SaveAuthCode(ctx, ar.ID, code); err != nil {
		t.Fatal(err)
	}
	return code
}

type tokenResponse struct {
	Status       int
	Error        string `json:"error"`
	IDToken      string `json:"id_token"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func (o *testOP) token(t *testing.T, form url.Values, user, pass string) tokenResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, o.url+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &tr)
	tr.Status = resp.StatusCode
	return tr
}

func (o *testOP) jwks(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(o.url + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	return set
}

// verifyIDToken checks the signature against the published JWKS and returns kid, alg and claims.
func (o *testOP) verifyIDToken(t *testing.T, raw string) (string, string, map[string]any) {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := tok.Headers[0]
	set := o.jwks(t)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %s not published", h.KeyID)
	}
	var claims map[string]any
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("signature: %v", err)
	}
	return h.KeyID, h.Algorithm, claims
}

func TestSigningAlgorithmPerClientAndRotation(t *testing.T) {
	o := newTestOP(t)
	ctx := context.Background()
	secret := "secret-0123456789abcdef"
	for id, alg := range map[string]string{"rs": AlgRS256, "es": AlgES256} {
		if err := o.st.CreateClient(ctx, store.Client{ID: id, SecretHash: HashSecret(secret), AuthMethod: "client_secret_basic",
			RedirectURIs: []string{"http://127.0.0.1/cb"}, IDTokenSigningAlg: alg, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	exchange := func(client string) tokenResponse {
		tr := o.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {o.code(t, client, "u-"+client)}, "redirect_uri": {"http://127.0.0.1/cb"}}, client, secret)
		if tr.Status != http.StatusOK || tr.IDToken == "" {
			t.Fatalf("%s exchange: %+v", client, tr)
		}
		return tr
	}
	rs := exchange("rs")
	oldKid, alg, claims := o.verifyIDToken(t, rs.IDToken)
	if alg != "RS256" || claims["acr"] != ACRSelfie || claims["sid"] != "sid-1" {
		t.Fatalf("RS256 client: alg %s claims %v", alg, claims)
	}
	if _, alg, _ := o.verifyIDToken(t, exchange("es").IDToken); alg != "ES256" {
		t.Fatalf("ES256 client got %s", alg)
	}
	// Rotation: new keys sign, the old public keys stay published until their tokens expire.
	if _, err := RotateKeys(ctx, o.st, time.Now().UTC(), time.Hour); err != nil {
		t.Fatal(err)
	}
	newKid, _, _ := o.verifyIDToken(t, exchange("rs").IDToken)
	if newKid == oldKid {
		t.Fatal("rotation did not change the signing key")
	}
	if _, _, c := o.verifyIDToken(t, rs.IDToken); c["sub"] != "u-rs" {
		t.Fatal("a token signed before the rotation no longer verifies")
	}
	if n := len(o.jwks(t).Keys); n != 4 {
		t.Fatalf("JWKS has %d keys, want 4 (2 active, 2 retired)", n)
	}
	// Past the publication window the retired keys go.
	if _, err := o.st.GarbageCollect(ctx, time.Now().Add(2*time.Hour), store.Retention{}); err != nil {
		t.Fatal(err)
	}
	if n := len(o.jwks(t).Keys); n != 2 {
		t.Fatalf("after expiry JWKS has %d keys, want 2", n)
	}
}

func TestPrivateKeyJWT(t *testing.T) {
	o := newTestOP(t)
	ctx := context.Background()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err := o.st.CreateClient(ctx, store.Client{ID: "kc", AuthMethod: "private_key_jwt", JWKS: set,
		RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	assertion := func(key *ecdsa.PrivateKey, aud string) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		raw, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: "kc", Subject: "kc", Audience: jwt.Audience{aud}, ID: randomID(8),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {o.code(t, "kc", "u1")}, "redirect_uri": {"http://127.0.0.1/cb"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	}
	if tr := o.token(t, form(assertion(priv, o.url)), "", ""); tr.Status != http.StatusOK || tr.IDToken == "" {
		t.Fatalf("private_key_jwt: %+v", tr)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if tr := o.token(t, form(assertion(other, o.url)), "", ""); tr.Status == http.StatusOK {
		t.Fatalf("an assertion signed by another key was accepted: %+v", tr)
	}
	if tr := o.token(t, form(assertion(priv, "https://elsewhere.example")), "", ""); tr.Status == http.StatusOK {
		t.Fatalf("an assertion for another audience was accepted: %+v", tr)
	}
	// A private_key_jwt client cannot fall back to a secret.
	if tr := o.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {o.code(t, "kc", "u1")}, "redirect_uri": {"http://127.0.0.1/cb"}}, "kc", "whatever-secret-123"); tr.Status == http.StatusOK {
		t.Fatalf("secret accepted for a private_key_jwt client: %+v", tr)
	}
}

func TestRefreshReuseRevokesGrant(t *testing.T) {
	o := newTestOP(t)
	ctx := context.Background()
	secret := "secret-0123456789abcdef"
	if err := o.st.CreateClient(ctx, store.Client{ID: "c", SecretHash: HashSecret(secret), AuthMethod: "client_secret_post",
		RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	post := func(v url.Values) tokenResponse {
		v.Set("client_id", "c")
		v.Set("client_secret", secret)
		return o.token(t, v, "", "")
	}
	first := post(url.Values{"grant_type": {"authorization_code"}, "code": {o.code(t, "c", "u1")}, "redirect_uri": {"http://127.0.0.1/cb"}})
	if first.RefreshToken == "" {
		t.Fatalf("no refresh token: %+v", first)
	}
	second := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}})
	if second.Status != http.StatusOK || second.RefreshToken == first.RefreshToken {
		t.Fatalf("rotation: %+v", second)
	}
	if _, _, c := o.verifyIDToken(t, second.IDToken); c["acr"] != ACRSelfie || c["sid"] != "sid-1" {
		t.Fatalf("refreshed ID token lost acr/sid: %v", c)
	}
	if r := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}); r.Error != "invalid_grant" {
		t.Fatalf("reuse: %+v", r)
	}
	if r := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second.RefreshToken}}); r.Error != "invalid_grant" {
		t.Fatalf("the grant survived the reuse: %+v", r)
	}
	// Wrong secret.
	v := url.Values{"grant_type": {"authorization_code"}, "code": {o.code(t, "c", "u1")}, "redirect_uri": {"http://127.0.0.1/cb"}, "client_id": {"c"}, "client_secret": {"wrong-secret-0123456"}}
	if r := o.token(t, v, "", ""); r.Error != "invalid_client" {
		t.Fatalf("wrong secret: %+v", r)
	}
}

// TestClaimsInIDToken: profile and email claims go into the ID token only for clients that ask
// (Auth0's classic OIDC connection reads only the ID token); userinfo always has them.
func TestClaimsInIDToken(t *testing.T) {
	o := newTestOP(t)
	ctx := context.Background()
	secret := "secret-0123456789abcdef"
	for id, in := range map[string]bool{"auth0": true, "plain": false} {
		if err := o.st.CreateClient(ctx, store.Client{ID: id, SecretHash: HashSecret(secret), AuthMethod: "client_secret_post",
			RedirectURIs: []string{"http://127.0.0.1/cb"}, ClaimsInIDToken: in, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		tr := o.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {o.code(t, id, "u-"+id)}, "redirect_uri": {"http://127.0.0.1/cb"},
			"client_id": {id}, "client_secret": {secret}}, "", "")
		if tr.Status != http.StatusOK {
			t.Fatalf("%s: %+v", id, tr)
		}
		_, _, c := o.verifyIDToken(t, tr.IDToken)
		if got := c["email"] == "u-"+id+"@example.com" && c["preferred_username"] == "u-"+id; got != in {
			t.Fatalf("%s: claims in ID token = %v, want %v (%v)", id, got, in, c)
		}
		req, _ := http.NewRequest(http.MethodGet, o.url+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var info map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if info["email"] != "u-"+id+"@example.com" || info["name"] != "User u-"+id {
			t.Fatalf("%s: userinfo %v", id, info)
		}
	}
}

// TestEmailVerifiedAlwaysPresent: with the email scope, email_verified is in userinfo and (for
// clients that want claims there) the ID token, false unless an operator verified the address.
// A missing email_verified is read as true by oauth2-proxy, so it must never be missing.
func TestEmailVerifiedAlwaysPresent(t *testing.T) {
	o := newTestOP(t)
	ctx := context.Background()
	secret := "secret-0123456789abcdef"
	if err := o.st.CreateClient(ctx, store.Client{ID: "auth0", SecretHash: HashSecret(secret), AuthMethod: "client_secret_post",
		RedirectURIs: []string{"http://127.0.0.1/cb"}, ClaimsInIDToken: true, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, verified := range []bool{false, true} {
		user := fmt.Sprintf("u-verified-%v", verified)
		code := o.code(t, "auth0", user)
		u, err := o.st.GetUser(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		u.EmailVerified = verified
		if err := o.st.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		tr := o.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://127.0.0.1/cb"},
			"client_id": {"auth0"}, "client_secret": {secret}}, "", "")
		if tr.Status != http.StatusOK {
			t.Fatalf("token: %+v", tr)
		}
		_, _, c := o.verifyIDToken(t, tr.IDToken)
		if v, ok := c["email_verified"]; !ok || v != verified {
			t.Fatalf("ID token email_verified = %v (present %v), want %v", v, ok, verified)
		}
		req, _ := http.NewRequest(http.MethodGet, o.url+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var info map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if v, ok := info["email_verified"]; !ok || v != verified {
			t.Fatalf("userinfo email_verified = %v (present %v), want %v: %v", v, ok, verified, info)
		}
	}
}
