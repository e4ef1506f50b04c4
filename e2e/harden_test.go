package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestFramingRefused: clickjacking from the attacker's side. The victim is signed in and sits
// on the consent page of a client; the attacker's page (another origin on the same site, so
// the victim's SameSite=Lax cookies go along) frames /login and /consent for that request.
// Chromium must render neither; the attacker's own frame next to them shows that a rendering
// frame is seen.
func TestFramingRefused(t *testing.T) {
	s := startServer(t)
	r := newRP(t, s, "third-party") // not --first-party: consent is asked
	s.cli(t, "users", "add", "--username", "aaron", "--portrait", lfw(t, "Aaron_Peirsol", 1))
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if req.URL.Path == "/own" {
			io.WriteString(w, `<!doctype html><form><button value="allow">Win a prize</button></form>`)
			return
		}
		q := req.URL.Query()
		fmt.Fprintf(w, `<!doctype html><title>Win a prize</title>
<iframe name="login" src="%s" onload="this.dataset.loaded='1'"></iframe>
<iframe name="consent" src="%s" onload="this.dataset.loaded='1'"></iframe>
<iframe name="control" src="/own" onload="this.dataset.loaded='1'"></iframe>`, html.EscapeString(q.Get("login")), html.EscapeString(q.Get("consent")))
	}))
	defer attacker.Close()
	a := r.authorize()
	type frame struct {
		URL          string `json:"url"`
		Rendered     bool   `json:"rendered"`
		VisageMarkup bool   `json:"visage_markup"`
	}
	var out struct {
		ConsentURL string           `json:"consent_url"`
		Frames     map[string]frame `json:"frames"`
		Console    []string         `json:"console"`
		Browser    browserResult    `json:"browser"`
	}
	node(t, &out, "frame.mjs", "--start", a.url, "--issuer", s.url, "--attacker", attacker.URL+"/prize",
		"--video", y4m(t, lfw(t, "Aaron_Peirsol", 2)), "--username", "aaron")
	if !strings.HasPrefix(out.ConsentURL, s.url+"/consent") {
		t.Fatalf("the victim did not reach the consent page: %+v", out)
	}
	if c := out.Frames["control"]; !c.Rendered || !c.VisageMarkup {
		t.Fatalf("the control frame did not render, so this check sees nothing: %+v", out)
	}
	for _, name := range []string{"login", "consent"} {
		f := out.Frames[name]
		if f.VisageMarkup || f.Rendered {
			t.Errorf("Chromium rendered %s in the attacker's frame: %+v", name, f)
		}
	}
	t.Logf("frames: %+v; console: %q", out.Frames, out.Console)
}

// TestOpenIDClientPrivateKeyJWT: openid-client authenticates with private_key_jwt, the
// assertion's aud set to the token endpoint URL (what OIDC Core section 9 names and Keycloak
// sends), its key published at a jwks_uri the provider fetches.
func TestOpenIDClientPrivateKeyJWT(t *testing.T) {
	s := startServer(t)
	rpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer rpSrv.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "node-k1", Algorithm: "ES256", Use: "sig"}}})
	var fetched atomic.Int32
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetched.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(pub)
	}))
	defer jwks.Close()
	priv, _ := json.Marshal(jose.JSONWebKey{Key: key, KeyID: "node-k1", Algorithm: "ES256", Use: "sig"})
	privFile := filepath.Join(t.TempDir(), "key.jwk")
	if err := os.WriteFile(privFile, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	s.cli(t, "clients", "add", "--id", "kc-broker", "--redirect-uri", rpSrv.URL+"/cb", "--first-party", "--auth-method", "private_key_jwt",
		"--jwks-uri", jwks.URL)
	s.cli(t, "users", "add", "--username", "aaron", "--portrait", lfw(t, "Aaron_Peirsol", 1), "--email", "aaron@example.com")
	var out oidcClientResult
	node(t, &out, "openid-client.mjs", "--issuer", s.url, "--client-id", "kc-broker", "--private-key", privFile, "--aud", "token_endpoint",
		"--redirect", rpSrv.URL+"/cb", "--video", y4m(t, lfw(t, "Aaron_Peirsol", 2)), "--username", "aaron")
	if !out.OK {
		t.Fatalf("openid-client with private_key_jwt: %s", out.Error)
	}
	if out.AssertionAud != s.url+"/oauth/token" {
		t.Fatalf("the assertion's aud was %q, want the token endpoint", out.AssertionAud)
	}
	sub, _ := out.Claims["sub"].(string)
	if sub == "" || !out.Refreshed.Rotated || out.Refreshed.Sub != sub || fetched.Load() == 0 {
		t.Fatalf("openid-client saw %+v (jwks_uri fetched %d times)", out, fetched.Load())
	}
}

var (
	inlineScript  = regexp.MustCompile(`(?i)<script(\s[^>]*)?>`)
	eventHandler  = regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`)
	inlineStyle   = regexp.MustCompile(`(?i)<style[\s>]|<[^>]+\sstyle\s*=`)
	javascriptURL = regexp.MustCompile(`(?i)(href|src|action)\s*=\s*["']?\s*javascript:`)
)

// TestSecurityHeaders: every page a browser reaches (anonymous, through the demo and the
// console sign-ins, the login page of a live request) carries the security headers, and none
// has inline script or style that the Content-Security-Policy would have to allow.
func TestSecurityHeaders(t *testing.T) {
	s := startServer(t)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 60 * time.Second}
	pages := []string{"/", "/register", "/logged-out", "/demo", "/demo/login", "/console", "/authorize?client_id=nobody&redirect_uri=x",
		"/.well-known/openid-configuration"}
	for _, p := range pages {
		resp, err := browser.Get(s.url + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		final := resp.Request.URL.String()
		h := resp.Header
		for k, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
			if got := h.Get(k); got != want {
				t.Errorf("%s (%s): %s = %q, want %q", p, final, k, got, want)
			}
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s (%s): Content-Security-Policy %q", p, final, csp)
		}
		if h.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS under an http issuer", p)
		}
		if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			continue
		}
		for _, m := range inlineScript.FindAllString(string(body), -1) {
			if !strings.Contains(strings.ToLower(m), " src=") {
				t.Errorf("%s (%s): inline script %q", p, final, m)
			}
		}
		for name, re := range map[string]*regexp.Regexp{"event handler": eventHandler, "inline style": inlineStyle, "javascript: URL": javascriptURL} {
			if m := re.FindString(string(body)); m != "" {
				t.Errorf("%s (%s): %s %q", p, final, name, m)
			}
		}
		t.Logf("%s -> %s %d", p, final, resp.StatusCode)
	}
}
