package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// oauth2ProxyBinary returns OAUTH2_PROXY_BIN, else bin/oauth2-proxy (built by `make test` with
// `go install github.com/oauth2-proxy/oauth2-proxy/v7`).
func oauth2ProxyBinary(t *testing.T) string {
	t.Helper()
	return binary(t, "OAUTH2_PROXY_BIN", "oauth2-proxy")
}

// lockedBuffer collects a process's output for polling while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// register enrols an account through the /register page the way capture.js posts it, from a
// fresh cookie jar, and returns the HTTP status and the JSON answer.
func register(t *testing.T, s *server, username, email, photo string) (int, map[string]any) {
	t.Helper()
	c := stranger()
	img, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{"csrf_token": csrf(t, c, s.url+"/register"), "username": username, "email": email}
	resp, body, err := postImage(c, s.url+"/register", fields, img)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	_ = json.Unmarshal(body, &v)
	return resp.StatusCode, v
}

// TestOAuth2Proxy puts oauth2-proxy (provider oidc, default email checks) in front of a small
// upstream: a selfie sign-in of an account whose email the operator verified reaches the
// upstream as that user; a second account cannot claim the same email at registration, and an
// account with an unverified email does not get through (oauth2-proxy reads email_verified,
// which Visage now always sends).
func TestOAuth2Proxy(t *testing.T) {
	bin := oauth2ProxyBinary(t)
	s := startServer(t)

	type seen struct{ user, email string }
	hits := make(chan seen, 8)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hello" { // Chromium's own requests (favicon) are not sign-ins
			http.NotFound(w, r)
			return
		}
		hits <- seen{r.Header.Get("X-Forwarded-User"), r.Header.Get("X-Forwarded-Email")}
		fmt.Fprintf(w, "hello %s", r.Header.Get("X-Forwarded-Email"))
	}))
	t.Cleanup(upstream.Close)

	port := freePort(t)
	proxy := fmt.Sprintf("http://127.0.0.1:%d", port)
	s.cli(t, "clients", "add", "--id", "oauth2-proxy", "--secret", rpSecret, "--redirect-uri", proxy+"/oauth2/callback",
		"--first-party", "--name", "oauth2-proxy")
	s.cli(t, "users", "add", "--username", "alice", "--portrait", lfw(t, "Aaron_Peirsol", 1), "--email", "alice@corp.example", "--email-verified")

	logs := &lockedBuffer{}
	cmd := exec.Command(bin, "--provider=oidc", "--oidc-issuer-url="+s.url, "--client-id=oauth2-proxy", "--client-secret="+rpSecret,
		"--redirect-url="+proxy+"/oauth2/callback", "--upstream="+upstream.URL+"/", fmt.Sprintf("--http-address=127.0.0.1:%d", port),
		"--cookie-secret=0123456789abcdef0123456789abcdef", "--cookie-secure=false", "--email-domain=*",
		"--skip-provider-button=true", "--code-challenge-method=S256", "--scope=openid email profile")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start oauth2-proxy: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("oauth2-proxy output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(proxy + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("oauth2-proxy did not come up:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// 1. Alice signs in with a selfie and reaches the upstream as herself.
	res := signIn(t, proxy+"/hello", y4m(t, lfw(t, "Aaron_Peirsol", 2)), proxy+"/hello", "alice", "")
	if res.Outcome != "redirected" {
		t.Fatalf("alice through oauth2-proxy: %+v", res)
	}
	select {
	case h := <-hits:
		if h.email != "alice@corp.example" || h.user == "" {
			t.Fatalf("upstream saw %+v, want alice@corp.example", h)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the upstream was never reached")
	}

	// 2. A stranger cannot register alice's address, in any letter case, nor learn whose it is.
	status, v := register(t, s, "mallory", "ALICE@corp.example", lfw(t, "Colin_Powell", 38))
	if status != http.StatusConflict || v["code"] != "EMAIL_TAKEN" || strings.Contains(fmt.Sprint(v["message"]), "alice") {
		t.Fatalf("registering alice's email: %d %v", status, v)
	}

	// 3. With an address of her own (unverified), the stranger's selfie sign-in is refused by
	// oauth2-proxy: nothing reaches the upstream.
	if status, v := register(t, s, "mallory", "mallory@corp.example", lfw(t, "Colin_Powell", 38)); status != http.StatusOK {
		t.Fatalf("registering mallory: %d %v", status, v)
	}
	res = signIn(t, proxy+"/hello", y4m(t, lfw(t, "Colin_Powell", 74)), proxy+"/oauth2/callback", "mallory", "")
	if res.Outcome != "redirected" {
		t.Fatalf("mallory's sign-in did not come back to oauth2-proxy: %+v", res)
	}
	deadline = time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "isn't verified") {
		if time.Now().After(deadline) {
			t.Fatalf("oauth2-proxy did not refuse the unverified email:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case h := <-hits:
		t.Fatalf("the upstream was reached by %+v", h)
	default:
	}
}
