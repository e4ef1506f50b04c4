package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"
)

// pgSchema creates a fresh PostgreSQL schema for one test, dropped at its end, and returns a
// DSN that selects it. PostgreSQL runs on CI machines (.ci/run starts it).
func pgSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("VISAGE_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("this test needs PostgreSQL (VISAGE_TEST_POSTGRES_DSN): %v", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "visage_e2e_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE")
		admin.Close(context.Background())
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// roundRobin is a reverse proxy that sends each request to the next node in turn and records
// which node served which path.
type roundRobin struct {
	nodes  []*httputil.ReverseProxy
	next   atomic.Uint64
	mu     sync.Mutex
	served map[string][]int // path -> node indexes, in order
}

func newRoundRobin(t *testing.T, urls ...string) *roundRobin {
	rr := &roundRobin{served: map[string][]int{}}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		rr.nodes = append(rr.nodes, httputil.NewSingleHostReverseProxy(u))
	}
	return rr
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i := int(rr.next.Add(1)-1) % len(rr.nodes)
	rr.mu.Lock()
	rr.served[r.URL.Path] = append(rr.served[r.URL.Path], i)
	rr.mu.Unlock()
	rr.nodes[i].ServeHTTP(w, r)
}

func (rr *roundRobin) nodesFor(path string) map[int]bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	out := map[int]bool{}
	for _, i := range rr.served[path] {
		out[i] = true
	}
	return out
}

// TestTwoNodesOnPostgres: two `idp serve` processes on one PostgreSQL schema behind a
// round-robin proxy, the issuer being the proxy. A browser sign-in whose requests alternate
// between the nodes (the login page on one, the selfie on the other, the callback wherever it
// lands) gets its code; the code is exchanged, and the refresh token is rotated on both nodes in
// turn, every ID token verifying against the keys either node serves.
func TestTwoNodesOnPostgres(t *testing.T) {
	dsn := pgSchema(t)
	data := t.TempDir() // secrets.json and the biometric key ring: shared by the nodes
	var rr *roundRobin
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rr.ServeHTTP(w, r) }))
	t.Cleanup(proxy.Close)
	env := []string{"VISAGE_STORE_DRIVER=postgres", "VISAGE_STORE_DSN=" + dsn, "VISAGE_DATA_DIR=" + data, "VISAGE_ISSUER=" + proxy.URL, "VISAGE_DEMO=false"}
	a := startServer(t, env...)
	b := startServer(t, env...) // after a: the first start creates the shared secrets
	rr = newRoundRobin(t, a.url, b.url)

	a.cli(t, "users", "add", "--username", "aaron", "--portrait", lfw(t, "Aaron_Peirsol", 1))
	callback := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "relying party callback") }))
	t.Cleanup(callback.Close)
	b.cli(t, "clients", "add", "--id", "nodes-app", "--secret", rpSecret, "--redirect-uri", callback.URL+"/callback", "--first-party")

	ctx := context.Background()
	p, err := gooidc.NewProvider(ctx, proxy.URL)
	if err != nil {
		t.Fatalf("discovery through the proxy: %v", err)
	}
	cfg := &oauth2.Config{ClientID: "nodes-app", ClientSecret: rpSecret, Endpoint: p.Endpoint(), RedirectURL: callback.URL + "/callback",
		Scopes: []string{gooidc.ScopeOpenID, gooidc.ScopeOfflineAccess}}
	verifier := p.Verifier(&gooidc.Config{ClientID: "nodes-app"})
	r := &rp{srv: callback, provider: p, oauth: cfg, verifier: verifier}
	az := r.authorize()
	res := signIn(t, az.url, y4m(t, lfw(t, "Aaron_Peirsol", 2)), callback.URL+"/callback", "aaron", "")
	code := codeFrom(t, res, az)
	for _, path := range []string{"/login", "/login/selfie"} {
		t.Logf("%s served by nodes %v", path, rr.nodesFor(path))
	}
	if served := rr.nodesFor("/login"); len(rr.nodesFor("/login/selfie")) == 0 || len(served) == 0 {
		t.Fatalf("the sign-in did not go through the proxy: %v", rr.served)
	}
	all := map[int]bool{}
	for _, path := range []string{"/authorize", "/login", "/login/selfie", "/authorize/callback"} {
		for i := range rr.nodesFor(path) {
			all[i] = true
		}
	}
	if len(all) != 2 {
		t.Fatalf("one node served the whole sign-in: %v", rr.served)
	}
	tok, claims := r.exchange(t, code, az)
	if claims.Sub == "" {
		t.Fatalf("ID token without a subject: %+v", claims)
	}
	rt := tok.RefreshToken
	for i := range 4 { // alternating nodes: minted on one, rotated on the other
		nt, err := r.refresh(rt)
		if err != nil {
			t.Fatalf("refresh %d: %v", i+1, err)
		}
		raw, _ := nt.Extra("id_token").(string)
		if _, err := verifier.Verify(ctx, raw); err != nil {
			t.Fatalf("refresh %d: ID token: %v", i+1, err)
		}
		if nt.RefreshToken == "" || nt.RefreshToken == rt {
			t.Fatalf("refresh %d: the token was not rotated", i+1)
		}
		rt = nt.RefreshToken
	}
	if len(rr.nodesFor("/oauth/token")) != 2 {
		t.Fatalf("the token endpoint was not served by both nodes: %v", rr.served["/oauth/token"])
	}
	// A key rotated through one node's data is served by both at once (the keys live in the
	// database), and a token signed after the rotation verifies against either node's JWKS.
	out := a.cli(t, "keys", "rotate")
	m := regexp.MustCompile(`new signing keys ([^;\s]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keys rotate: %q", out)
	}
	newKey := strings.Split(m[1], ",")[0]
	for _, n := range []*server{a, b} {
		resp, err := http.Get(n.url + "/keys")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"kid":"`+newKey+`"`) {
			t.Errorf("%s/keys does not serve the rotated key %s", n.url, newKey)
		}
	}
	nt, err := r.refresh(rt)
	if err != nil {
		t.Fatalf("refresh after the rotation: %v", err)
	}
	if raw, _ := nt.Extra("id_token").(string); raw == "" {
		t.Fatal("no ID token after the rotation")
	} else if _, err := verifier.Verify(ctx, raw); err != nil {
		t.Fatalf("ID token after the rotation: %v", err)
	}
	// Each node says it is ready (store reachable, models loaded).
	for _, n := range []*server{a, b} {
		resp, err := http.Get(n.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || body["status"] != "ready" {
			t.Errorf("%s/readyz: %d %v", n.url, resp.StatusCode, body)
		}
	}
}
