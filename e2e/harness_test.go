// Package e2e runs the real bin/idp as a process and signs in through headless Chromium whose
// fake camera shows real test photos, with real relying parties: github.com/coreos/go-oidc with
// golang.org/x/oauth2 in Go, and openid-client from npm. Nothing is mocked.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/visage-idp/visage/internal/testenv"
)

// idpBinary returns the binary under test: VISAGE_IDP_BIN, else bin/idp built by `make test`.
func idpBinary(t testing.TB) string {
	t.Helper()
	return binary(t, "VISAGE_IDP_BIN", "idp")
}

// binary returns the program named by the variable env, else bin/name (which `make test`
// builds); it fails the test when there is none.
func binary(t testing.TB, env, name string) string {
	t.Helper()
	bin := os.Getenv(env)
	if bin == "" {
		bin = filepath.Join(testenv.RepoRoot(t), "bin", name)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s not found at %s: run `make test` (it builds bin/%s) or set %s", name, bin, name, env)
	}
	return bin
}

// server is one running bin/idp with its own data directory.
type server struct {
	bin    string
	url    string
	env    []string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServer starts bin/idp serve on a free loopback port with a fresh data directory.
func startServer(t testing.TB, extraEnv ...string) *server {
	t.Helper()
	port := freePort(t)
	s := &server{bin: idpBinary(t), url: fmt.Sprintf("http://127.0.0.1:%d", port), stderr: &bytes.Buffer{}}
	s.env = append(os.Environ(),
		"VISAGE_ISSUER="+s.url,
		fmt.Sprintf("VISAGE_LISTEN=127.0.0.1:%d", port),
		"VISAGE_DATA_DIR="+t.TempDir(),
		"VISAGE_MODELS_DIR="+testenv.ModelsDir(t),
		"VISAGE_FACE_WORKERS=1",
		// Every browser in these tests comes from 127.0.0.1: the rate limits are tested on
		// their own (abuse_test.go) and lifted here, where one address plays many users.
		"VISAGE_RATE_LIMIT_BURST=100000", "VISAGE_RATE_LIMIT_NETWORK_BURST=100000",
	)
	s.env = append(s.env, extraEnv...)
	s.cmd = exec.Command(s.bin, "serve")
	s.cmd.Env = s.env
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start idp: %v", err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("idp stderr:\n%s", s.stderr.String())
		}
	})
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if s.cmd.ProcessState != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("idp did not come up at %s; stderr:\n%s", s.url, s.stderr.String())
	return nil
}

// cli runs an admin command of the same binary on the same data directory.
func (s *server) cli(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("idp %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// cliErr runs an idp command that may fail, and returns its output and error.
func (s *server) cliErr(args ...string) (string, error) {
	cmd := exec.Command(s.bin, args...)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lfw returns the path of an LFW View 1 photo.
func lfw(t testing.TB, person string, n int) string {
	return testenv.Path(t, "lfw-view1", "images", person, fmt.Sprintf("%s_%04d.jpg", person, n))
}

// y4m turns a photo into a 3-second 640x480 y4m clip for Chromium's fake camera.
func y4m(t *testing.T, photo string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(photo), filepath.Ext(photo))+".y4m")
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", photo, "-t", "2", "-r", "10",
		"-vf", "scale=-2:480,pad=640:480:(ow-iw)/2:(oh-ih)/2,format=yuv420p", "-f", "yuv4mpegpipe", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// browserResult is what e2e/browser.mjs prints.
type browserResult struct {
	FinalURL string   `json:"final_url"`
	Outcome  string   `json:"outcome"`
	Message  string   `json:"message"`
	Steps    []string `json:"steps"`
}

// node runs a script of this folder and decodes the JSON it prints.
func node(t *testing.T, v any, script string, args ...string) {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "e2e")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		t.Fatalf("e2e/node_modules missing: run `make test` (it runs npm ci in e2e/)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\nstdout: %s\nstderr: %s", script, err, out, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("node %s: bad output %q: %v", script, out, err)
	}
}

// signIn drives one sign-in in Chromium. profile (optional) keeps cookies between runs.
func signIn(t *testing.T, start, video, until, username, profile string) browserResult {
	t.Helper()
	args := []string{"--start", start, "--video", video, "--until", until, "--username", username}
	if profile != "" {
		args = append(args, "--profile", profile)
	}
	var r browserResult
	node(t, &r, "browser.mjs", args...)
	return r
}
