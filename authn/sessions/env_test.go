package sessions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/sessions/webhook"
	"github.com/visage-idp/visage/internal/apidoc"
	"github.com/visage-idp/visage/internal/testenv"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/sqlite"
)

// The face engine and the passive liveness models are loaded once for all tests.
var (
	modelsOnce    sync.Once
	sharedEngine  *face.Engine
	sharedPassive *liveness.Passive
	modelsErr     error
)

func models(t *testing.T) (*face.Engine, *liveness.Passive) {
	t.Helper()
	dir := testenv.ModelsDir(t)
	modelsOnce.Do(func() {
		sharedEngine, modelsErr = face.NewEngine(face.Config{ModelsDir: dir, Workers: 1})
		if modelsErr == nil {
			sharedPassive, modelsErr = liveness.NewPassive(liveness.PassiveConfig{ModelsDir: dir})
		}
	})
	if modelsErr != nil {
		t.Fatalf("models: %v", modelsErr)
	}
	return sharedEngine, sharedPassive
}

// receiver is an application's webhook endpoint: it verifies each request with the webhook
// package's Verifier and records what it accepted. fail decides the status code of the n-th
// request (1-based); 0 accepts.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	ver  *webhook.Verifier
	mu   sync.Mutex
	hits int
	fail func(n int) int
	// refuse answers 500 to every event of this status (a receiver bug on one event kind).
	refuse string
	got    []webhook.Event
	dups   int
}

func newReceiver(t *testing.T, secret string, now func() time.Time) *receiver {
	rc := &receiver{t: t, ver: &webhook.Verifier{Secret: secret, Seen: webhook.NewMemoryDeduper(), Now: now}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.hits++
		n, fail := rc.hits, rc.fail
		rc.mu.Unlock()
		if fail != nil {
			if code := fail(n); code != 0 {
				w.WriteHeader(code)
				return
			}
		}
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		var peek struct{ Status string }
		if rc.refuse != "" && json.Unmarshal(body, &peek) == nil && peek.Status == rc.refuse {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		ev, err := rc.ver.Verify(r.Header, body)
		switch {
		case errors.Is(err, webhook.ErrDuplicate):
			rc.dups++
		case err != nil:
			t.Errorf("webhook does not verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		default:
			rc.got = append(rc.got, ev)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) events() []webhook.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhook.Event(nil), rc.got...)
}

// env is a Service over a fresh SQLite store, served by an httptest server, with one
// application (key and webhook receiver) and the OpenAPI checker.
type env struct {
	t   *testing.T
	svc *Service
	st  *sqlite.Store
	srv *httptest.Server
	doc *apidoc.Doc
	app store.Application
	key string
	rc  *receiver
	ctx context.Context
}

func newEnv(t *testing.T, tweak func(*Config)) *env {
	t.Helper()
	engine, passive := models(t)
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "visage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := face.LoadOrCreateKeyRing(filepath.Join(dir, "biometric-keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, ctx: ctx}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	cfg := DefaultConfig()
	cfg.BaseURL, cfg.TokenKey, cfg.RetryMin, cfg.RetryMax = e.srv.URL, bytes.Repeat([]byte{7}, 32), time.Millisecond, 5*time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("VISAGE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	challenger, err := liveness.NewChallenger(liveness.ChallengerConfig{Engine: engine, Passive: passive, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.svc, err = New(cfg, Deps{Store: st, Engine: engine, Keys: keys, Passive: passive, Challenger: challenger, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Routes(mux)
	if e.doc, err = apidoc.Parse(OpenAPI); err != nil {
		t.Fatal(err)
	}
	e.app, e.key, e.rc = e.newApp("app-1", false)
	return e
}

// newApp creates an application with a key and a webhook receiver.
func (e *env) newApp(id string, keepImages bool) (store.Application, string, *receiver) {
	e.t.Helper()
	secret := NewWebhookSecret()
	rc := newReceiver(e.t, secret, e.svc.now)
	app := store.Application{ID: id, Name: id, WebhookURL: rc.srv.URL + "/hook", WebhookSecret: secret, KeepImages: keepImages, CreatedAt: e.svc.now()}
	if err := e.st.CreateApplication(e.ctx, app); err != nil {
		e.t.Fatal(err)
	}
	raw, k := NewAPIKey(id, "test", e.svc.now())
	if err := e.st.CreateAPIKey(e.ctx, k); err != nil {
		e.t.Fatal(err)
	}
	return app, raw, rc
}

func (e *env) workflow(id string, features ...string) store.Workflow {
	e.t.Helper()
	w, err := NewWorkflow(WorkflowOptions{ID: id, Features: features, FaceMatchApprove: -1, FaceMatchDecline: -1, LivenessApprove: -1, LivenessDecline: -1}, e.svc.now())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.CreateWorkflow(e.ctx, w); err != nil {
		e.t.Fatal(err)
	}
	return w
}

// api calls the API with a key and checks the response against the OpenAPI document.
func (e *env) api(method, path, key string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	p := req.URL.Path
	if err := e.doc.CheckResponse(method, p, resp.StatusCode, resp.Header.Get("Content-Type"), out); err != nil {
		e.t.Errorf("OpenAPI conformance: %v\nbody: %.500s", err, out)
	}
	return resp.StatusCode, out
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, b)
	}
	return v
}

func lfwPhoto(t *testing.T, person string, n int) []byte {
	t.Helper()
	b, err := os.ReadFile(testenv.Path(t, "lfw-view1", "images", person, fmt.Sprintf("%s_%04d.jpg", person, n)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// page opens the hosted page like a browser and returns its status, HTML and CSRF token.
func (e *env) page(url string) (int, string, string) {
	e.t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	csrf := ""
	if m := csrfRE.FindStringSubmatch(string(b)); m != nil {
		csrf = m[1]
	}
	return resp.StatusCode, string(b), csrf
}

// capture posts a selfie to the hosted page as the capture script does.
func (e *env) capture(url, csrf string, img []byte) (int, captureReply) {
	e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf_token", csrf)
	fw, _ := mw.CreateFormFile("image", "selfie.jpg")
	fw.Write(img)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, url+"/capture", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-CSRF-Token", csrf)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/140.0 Safari/537.36")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r captureReply
	if err := json.Unmarshal(b, &r); err != nil {
		e.t.Fatalf("capture reply %q: %v", b, err)
	}
	return resp.StatusCode, r
}

// deliverAll runs the dispatcher until nothing is due (retries included) or the timeout.
func (e *env) deliverAll(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, err := e.svc.DeliverDue(e.ctx)
		if err != nil {
			e.t.Fatalf("DeliverDue: %v", err)
		}
		if n == 0 {
			pending, err := e.st.ListDeliveries(e.ctx, store.DeliveryFilter{State: store.DeliveryPending})
			if err != nil {
				e.t.Fatal(err)
			}
			if len(pending) == 0 {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	e.t.Fatalf("webhooks still pending after %s", timeout)
}

// createSession creates a session through the API and returns its response.
func (e *env) createSession(body map[string]any) CreateResponse {
	e.t.Helper()
	code, b := e.api(http.MethodPost, "/v3/session/", e.key, body)
	if code != http.StatusCreated {
		e.t.Fatalf("create session: %d %s", code, b)
	}
	return decode[CreateResponse](e.t, b)
}

func (e *env) wf(id string) store.Workflow {
	e.t.Helper()
	w, err := e.st.GetWorkflow(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

// enrol enrols a user of the IdP (username, one photo), as `idp users add` does.
// enrol enrols a user and links it to the test application (as `idp apikeys link` does).
func (e *env) enrol(username string, photo []byte) store.User {
	e.t.Helper()
	u := e.enrolUnlinked(username, photo)
	if err := e.st.LinkUser(e.ctx, e.app.ID, u.ID, "operator", time.Now()); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// enrolUnlinked enrols a user that no application may reach.
func (e *env) enrolUnlinked(username string, photo []byte) store.User {
	e.t.Helper()
	tmpl, _, err := e.svc.engine.Enroll(e.ctx, [][]byte{photo}, face.EnrollOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	sealed, err := e.svc.keys.Seal(tmpl)
	if err != nil {
		e.t.Fatal(err)
	}
	u := store.User{ID: "u-" + username, Username: username, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := e.st.CreateUserWithTemplate(e.ctx, u, store.Template{UserID: u.ID, KeyID: e.svc.keys.PrimaryID(), ModelVersion: tmpl.ModelVersion,
		Sealed: sealed, CreatedAt: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
	return u
}
