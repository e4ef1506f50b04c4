package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/visage-idp/visage/authn/sessions/webhook"
)

// sessionsEnv makes retries and polling quick enough for a test.
var sessionsEnv = []string{
	"VISAGE_SESSIONS_RETRY_MIN=200ms", "VISAGE_SESSIONS_RETRY_MAX=1s", "VISAGE_SESSIONS_POLL=200ms",
	"VISAGE_SESSIONS_WEBHOOK_TIMEOUT=2s", "VISAGE_SESSIONS_EXPIRE_EVERY=1s",
}

// requireSessionsAPI fails unless the binary serves the Sessions API.
func requireSessionsAPI(t *testing.T, s *server) {
	t.Helper()
	resp, err := http.Get(s.url + "/v3/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v3/openapi.json: %d: this idp binary does not mount the Sessions API (mountSessions in serve.go)", resp.StatusCode)
	}
}

// hook is an integrating application's webhook endpoint and callback page: it verifies every
// webhook with the webhook package (X-Signature-V2, 5-minute window, event_id de-duplication)
// and counts every arrival of every event id, duplicates included.
type hook struct {
	t        *testing.T
	url      string
	ver      *webhook.Verifier
	mu       sync.Mutex
	events   []webhook.Event
	arrivals map[string]int
	srv      *http.Server
}

// listenHook serves the endpoint on addr ("127.0.0.1:0" for any port).
func listenHook(t *testing.T, addr, secret string) *hook {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &hook{t: t, url: "http://" + ln.Addr().String(), ver: webhook.NewVerifier(secret), arrivals: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var id struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(body, &id)
		h.mu.Lock()
		defer h.mu.Unlock()
		h.arrivals[id.EventID]++
		ev, err := h.ver.Verify(r.Header, body)
		switch {
		case errors.Is(err, webhook.ErrDuplicate):
		case err != nil:
			t.Errorf("webhook rejected: %v", err)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		default:
			h.events = append(h.events, ev)
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /done", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "back in the application") })
	h.srv = &http.Server{Handler: mux}
	go h.srv.Serve(ln)
	t.Cleanup(func() { h.srv.Close() })
	return h
}

// wait returns the event of the session with that status, waiting for it to arrive.
func (h *hook) wait(sessionID, status string, timeout time.Duration) webhook.Event {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for _, ev := range h.events {
			if ev.SessionID == sessionID && ev.Status == status {
				h.mu.Unlock()
				return ev
			}
		}
		h.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
	h.t.Fatalf("no %q webhook for session %s within %s", status, sessionID, timeout)
	return webhook.Event{}
}

var (
	apiKeyRE = regexp.MustCompile(`(?m)^api key: (\S+)$`)
	secretRE = regexp.MustCompile(`(?m)^webhook secret: (\S+)$`)
	keyIDRE  = regexp.MustCompile(`(?m)^key id: (\S+)$`)
	appIDRE  = regexp.MustCompile(`(?m)^application: (\S+)$`)
)

func match(t testing.TB, re *regexp.Regexp, out string) string {
	t.Helper()
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s not in output:\n%s", re, out)
	}
	return m[1]
}

// apiCall calls the Sessions API and decodes the JSON answer into out (if not nil).
func apiCall(t *testing.T, s *server, key, method, path string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-api-key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

type created struct {
	SessionID     string `json:"session_id"`
	SessionNumber int64  `json:"session_number"`
	URL           string `json:"url"`
	SessionURL    string `json:"session_url"`
	Status        string `json:"status"`
}

// livenessBlock and faceBlock are the top-level blocks of Didit's re-authentication guide.
type livenessBlock struct {
	Status string  `json:"status"`
	Method string  `json:"method"`
	Score  float64 `json:"score"`
}

type faceBlock struct {
	Status          string  `json:"status"`
	SimilarityScore float64 `json:"similarity_score"`
}

type warning struct {
	Risk string `json:"risk"`
}

type decision struct {
	SessionID      string `json:"session_id"`
	Status         string `json:"status"`
	VendorData     string `json:"vendor_data"`
	LivenessChecks []struct {
		Status   string    `json:"status"`
		Method   string    `json:"method"`
		Score    float64   `json:"score"`
		Warnings []warning `json:"warnings"`
	} `json:"liveness_checks"`
	FaceMatches []struct {
		Status   string    `json:"status"`
		Score    float64   `json:"score"`
		Warnings []warning `json:"warnings"`
	} `json:"face_matches"`
	IPAnalyses []struct {
		IPAddress     string `json:"ip_address"`
		IsVPNOrTor    bool   `json:"is_vpn_or_tor"`
		BrowserFamily string `json:"browser_family"`
	} `json:"ip_analyses"`
	Liveness *livenessBlock `json:"liveness"`
	Face     *faceBlock     `json:"face"`
	Reviews  []struct {
		User      string `json:"user"`
		NewStatus string `json:"new_status"`
		Comment   string `json:"comment"`
	} `json:"reviews"`
}

func risks(ws []warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Risk)
	}
	return out
}

type hostedResult struct {
	FinalURL string `json:"final_url"`
	Outcome  string `json:"outcome"`
	Message  string `json:"message"`
	Status   string `json:"status"`
	Captures int    `json:"captures"`
}

// TestSessionsAPIEndToEnd behaves like an application integrating the Sessions API: it creates
// its key and workflow with the CLI, creates sessions with a portrait from one LFW photo,
// completes the hosted page in Chromium whose camera shows another photo, receives and verifies
// the webhook, and reads the same verdict from the decision endpoint. A borderline match lands
// in review and is decided in the console by an administrator who signs in with a selfie.
func TestSessionsAPIEndToEnd(t *testing.T) {
	s := startServer(t, sessionsEnv...)
	requireSessionsAPI(t, s)
	// The application's endpoint must exist before its key, which names it.
	h := listenHook(t, "127.0.0.1:0", "")
	out := s.cli(t, "apikeys", "create", "--name", "e2e-app", "--webhook-url", h.url+"/hook")
	key, secret := match(t, apiKeyRE, out), match(t, secretRE, out)
	h.mu.Lock()
	h.ver.Secret = secret
	h.mu.Unlock()
	s.cli(t, "workflows", "create", "--id", "wf_reauth", "--features", "LIVENESS,FACE_MATCH,IP_ANALYSIS", "--liveness-method", "PASSIVE")
	callback := h.url + "/done"

	var reviewID string
	for _, tc := range []struct {
		name, vendor      string
		portrait, selfie  string // LFW photos
		want              string
		faceMatchWarnings []string
	}{
		{"same person", "user-sorkin", lfw(t, "Aaron_Sorkin", 1), lfw(t, "Aaron_Sorkin", 2), "Approved", nil},
		{"different person", "user-sorkin-2", lfw(t, "Aaron_Sorkin", 1), lfw(t, "Ana_Guevara", 6), "Declined", []string{"LOW_FACE_MATCH_SIMILARITY"}},
		// The same person at ONNX distance 0.558, mid-way in the review band (0.52-0.60).
		{"borderline", "user-robredo", lfw(t, "Tommy_Robredo", 1), lfw(t, "Tommy_Robredo", 2), "In Review", []string{"LOW_FACE_MATCH_SIMILARITY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			portrait, err := os.ReadFile(tc.portrait)
			if err != nil {
				t.Fatal(err)
			}
			var cr created
			code := apiCall(t, s, key, http.MethodPost, "/v3/session/", map[string]any{"workflow_id": "wf_reauth", "vendor_data": tc.vendor,
				"callback": callback, "metadata": map[string]string{"purpose": "returning_user_signin"}, "portrait_image": base64.StdEncoding.EncodeToString(portrait)}, &cr)
			if code != http.StatusCreated || cr.Status != "Not Started" || !strings.HasPrefix(cr.URL, s.url+"/session/") || cr.SessionURL != cr.URL {
				t.Fatalf("create: %d %+v", code, cr)
			}
			var res hostedResult
			node(t, &res, "sessions.mjs", "hosted", "--url", cr.URL, "--video", y4m(t, tc.selfie), "--until", callback)
			if res.Outcome != "redirected" || res.Status != tc.want || !strings.Contains(res.FinalURL, "verificationSessionId="+cr.SessionID) {
				t.Fatalf("hosted page: %+v, want a redirect to the callback with status %s", res, tc.want)
			}
			ev := h.wait(cr.SessionID, tc.want, 60*time.Second)
			var wd decision
			if err := json.Unmarshal(ev.Decision, &wd); err != nil {
				t.Fatalf("webhook decision: %v", err)
			}
			var d decision
			if code := apiCall(t, s, key, http.MethodGet, "/v3/session/"+cr.SessionID+"/decision/", nil, &d); code != 200 {
				t.Fatalf("decision: %d", code)
			}
			t.Logf("%s: status %s, liveness %s %.0f, face match %.2f %v", tc.name, d.Status, d.LivenessChecks[0].Method, d.LivenessChecks[0].Score,
				d.FaceMatches[0].Score, risks(d.FaceMatches[0].Warnings))
			if d.Status != tc.want || wd.Status != tc.want || d.VendorData != tc.vendor {
				t.Errorf("decision %s, webhook %s, want %s", d.Status, wd.Status, tc.want)
			}
			if len(d.FaceMatches) != 1 || len(wd.FaceMatches) != 1 || d.FaceMatches[0].Score != wd.FaceMatches[0].Score ||
				!slices.Equal(risks(d.FaceMatches[0].Warnings), tc.faceMatchWarnings) || !slices.Equal(risks(wd.FaceMatches[0].Warnings), tc.faceMatchWarnings) {
				t.Errorf("face matches: decision %+v, webhook %+v, want warnings %v", d.FaceMatches, wd.FaceMatches, tc.faceMatchWarnings)
			}
			if len(d.LivenessChecks) != 1 || d.LivenessChecks[0].Method != "PASSIVE" || d.LivenessChecks[0].Status != "Approved" {
				t.Errorf("liveness %+v", d.LivenessChecks)
			}
			// The guide's top-level blocks, in the decision and in the webhook's decision.
			for _, x := range []decision{d, wd} {
				if x.Liveness == nil || x.Face == nil || x.Liveness.Method != "PASSIVE" || x.Face.Status != x.FaceMatches[0].Status ||
					math.Abs(x.Face.SimilarityScore-x.FaceMatches[0].Score/100) > 1e-9 {
					t.Errorf("liveness %+v, face %+v beside %+v", x.Liveness, x.Face, x.FaceMatches)
				}
			}
			if len(d.IPAnalyses) != 1 || d.IPAnalyses[0].IPAddress != "127.0.0.1" || d.IPAnalyses[0].IsVPNOrTor || d.IPAnalyses[0].BrowserFamily != "HeadlessChrome" {
				t.Errorf("IP analysis %+v", d.IPAnalyses)
			}
			h.wait(cr.SessionID, "In Progress", 60*time.Second)
			if tc.want == "In Review" {
				reviewID = cr.SessionID
			}
		})
	}
	if reviewID == "" {
		t.Fatal("no session in review to decide")
	}

	t.Run("a held-up photo fails the head-turn challenge", func(t *testing.T) {
		s.cli(t, "workflows", "create", "--id", "wf_active", "--features", "LIVENESS,FACE_MATCH", "--liveness-method", "ACTIVE_3D")
		portrait, err := os.ReadFile(lfw(t, "Aaron_Sorkin", 1))
		if err != nil {
			t.Fatal(err)
		}
		var cr created
		if code := apiCall(t, s, key, http.MethodPost, "/v3/session/", map[string]any{"workflow_id": "wf_active", "vendor_data": "user-sorkin",
			"callback": callback, "portrait_image": base64.StdEncoding.EncodeToString(portrait)}, &cr); code != http.StatusCreated {
			t.Fatalf("create: %d", code)
		}
		var res hostedResult
		node(t, &res, "sessions.mjs", "hosted", "--url", cr.URL, "--video", y4m(t, lfw(t, "Aaron_Sorkin", 2)), "--until", callback)
		if res.Outcome != "redirected" || res.Status != "Declined" {
			t.Fatalf("hosted page: %+v, want a redirect with status Declined", res)
		}
		var d decision
		apiCall(t, s, key, http.MethodGet, "/v3/session/"+cr.SessionID+"/decision/", nil, &d)
		if len(d.LivenessChecks) != 1 || d.LivenessChecks[0].Method != "ACTIVE_3D" || d.LivenessChecks[0].Status != "Declined" || len(d.LivenessChecks[0].Warnings) == 0 {
			t.Errorf("liveness %+v", d.LivenessChecks)
		}
		if len(d.FaceMatches) != 1 || d.FaceMatches[0].Status != "Approved" {
			t.Errorf("face match %+v: the face is the right one, only the liveness fails", d.FaceMatches)
		}
		t.Logf("ACTIVE_3D on a held-up photo: liveness %v, face match %.2f", risks(d.LivenessChecks[0].Warnings), d.FaceMatches[0].Score)
		h.wait(cr.SessionID, "Declined", 60*time.Second)
	})

	t.Run("decided in the console", func(t *testing.T) {
		s.cli(t, "users", "add", "--username", "reviewer", "--portrait", lfw(t, "Aaron_Sorkin", 1))
		s.cli(t, "users", "promote", "--username", "reviewer")
		var res struct {
			Outcome, Status, Message, FinalURL string
			Steps                              []string
		}
		node(t, &res, "sessions.mjs", "console", "--start", s.url+"/console/sessions/"+reviewID, "--video", y4m(t, lfw(t, "Aaron_Sorkin", 2)),
			"--username", "reviewer", "--decision", "Approved", "--comment", "Same man, photo from another year")
		if res.Outcome != "decided" || res.Status != "Approved" || !slices.Contains(res.Steps, "selfie") {
			t.Fatalf("console: %+v", res)
		}
		ev := h.wait(reviewID, "Approved", 60*time.Second)
		var wd, d decision
		if err := json.Unmarshal(ev.Decision, &wd); err != nil {
			t.Fatal(err)
		}
		apiCall(t, s, key, http.MethodGet, "/v3/session/"+reviewID+"/decision/", nil, &d)
		for _, x := range []decision{wd, d} {
			if x.Status != "Approved" || len(x.Reviews) != 1 || x.Reviews[0].User != "reviewer" || x.Reviews[0].Comment != "Same man, photo from another year" {
				t.Errorf("after the review: %+v", x)
			}
		}
	})

	t.Run("a user without the admin role stays out", func(t *testing.T) {
		s.cli(t, "users", "demote", "--username", "reviewer")
		var res struct{ Outcome, Message string }
		node(t, &res, "sessions.mjs", "console", "--start", s.url+"/console", "--video", y4m(t, lfw(t, "Aaron_Sorkin", 2)),
			"--username", "reviewer", "--decision", "Approved", "--comment", "x")
		if res.Outcome != "error_page" || !strings.Contains(res.Message, "no admin role") {
			t.Errorf("console for a demoted user: %+v", res)
		}
	})

	t.Run("revoked key", func(t *testing.T) {
		out := s.cli(t, "apikeys", "create", "--name", "second", "--app", match(t, appIDRE, s.cli(t, "apikeys", "create", "--name", "third")))
		k2, id2 := match(t, apiKeyRE, out), match(t, keyIDRE, out)
		if code := apiCall(t, s, k2, http.MethodGet, "/v3/sessions/", nil, nil); code != 200 {
			t.Fatalf("fresh key: %d", code)
		}
		s.cli(t, "apikeys", "revoke", "--id", id2)
		if code := apiCall(t, s, k2, http.MethodGet, "/v3/sessions/", nil, nil); code != 401 {
			t.Errorf("revoked key: %d, want 401", code)
		}
	})

	h.mu.Lock()
	defer h.mu.Unlock()
	for id, n := range h.arrivals {
		if n != 1 {
			t.Errorf("event %s arrived %d times", id, n)
		}
	}
}

// restart starts the same binary again on the same data directory and address.
func restart(t *testing.T, s *server) {
	t.Helper()
	s.stderr = &bytes.Buffer{}
	s.cmd = exec.Command(s.bin, "serve")
	s.cmd.Env = s.env
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("restart idp: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.url + "/.well-known/openid-configuration"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("idp did not come back; stderr:\n%s", s.stderr.String())
}

// selfie opens a hosted page and posts one photo the way the capture script does.
func selfie(t *testing.T, pageURL, photo string) string {
	t.Helper()
	resp, err := http.Get(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(html)
	if m == nil {
		t.Fatalf("hosted page without a form: %d", resp.StatusCode)
	}
	img, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("image", "selfie.jpg")
	fw.Write(img)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, pageURL+"/capture", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-CSRF-Token", string(m[1]))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Status string }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r.Status
}

// TestWebhooksSurviveKill: status changes happen while the application's endpoint is down;
// the server is killed with SIGKILL with the webhooks pending; the endpoint comes up, the
// server restarts, and every webhook arrives exactly once.
func TestWebhooksSurviveKill(t *testing.T) {
	s := startServer(t, sessionsEnv...)
	requireSessionsAPI(t, s)
	hookAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // nothing listens there yet
	out := s.cli(t, "apikeys", "create", "--name", "kill-test", "--webhook-url", "http://"+hookAddr+"/hook")
	key, secret := match(t, apiKeyRE, out), match(t, secretRE, out)
	s.cli(t, "workflows", "create", "--id", "wf", "--features", "LIVENESS,FACE_MATCH")
	portrait, err := os.ReadFile(lfw(t, "Aaron_Sorkin", 1))
	if err != nil {
		t.Fatal(err)
	}
	type change struct{ session, status string }
	var want []change
	for i, sel := range []struct {
		photo, status string
	}{
		{lfw(t, "Aaron_Sorkin", 2), "Approved"}, {lfw(t, "Ana_Guevara", 6), "Declined"}, {lfw(t, "Aaron_Sorkin", 2), "Approved"},
		{lfw(t, "Ana_Guevara", 6), "Declined"},
	} {
		var cr created
		if code := apiCall(t, s, key, http.MethodPost, "/v3/session/", map[string]any{"workflow_id": "wf", "vendor_data": fmt.Sprintf("user-%d", i),
			"portrait_image": base64.StdEncoding.EncodeToString(portrait)}, &cr); code != http.StatusCreated {
			t.Fatalf("create: %d", code)
		}
		if got := selfie(t, cr.URL, sel.photo); got != sel.status {
			t.Fatalf("session %d: %s, want %s", i, got, sel.status)
		}
		want = append(want, change{cr.SessionID, "In Progress"}, change{cr.SessionID, sel.status})
		if sel.status == "Declined" { // and an operator overrides it by API
			if code := apiCall(t, s, key, http.MethodPatch, "/v3/session/"+cr.SessionID+"/update-status/",
				map[string]string{"new_status": "Approved", "comment": "checked by phone"}, nil); code != 200 {
				t.Fatalf("update-status: %d", code)
			}
			want = append(want, change{cr.SessionID, "Approved"})
		}
	}
	// Let the dispatcher fail against the closed port, then kill it mid-retry.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && strings.Count(s.stderr.String(), `msg="webhook attempt"`) < len(want) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := strings.Count(s.stderr.String(), `msg="webhook attempt"`); n == 0 {
		t.Fatalf("no webhook attempt logged before the kill; stderr:\n%s", s.stderr.String())
	}
	if strings.Contains(s.stderr.String(), "state=delivered") {
		t.Fatal("a webhook was delivered while the endpoint was down")
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Wait()
	t.Logf("killed with %d webhook attempts made, %d events pending", strings.Count(s.stderr.String(), `msg="webhook attempt"`), len(want))

	h := listenHook(t, hookAddr, secret)
	restart(t, s)
	// Every session's last status arrives. An earlier event that failed while a later one was
	// waiting is superseded (never sent after it): a receiver that was down gets each session's
	// outcome, not a backlog that could arrive out of order.
	wantBy := map[string][]string{}
	for _, c := range want {
		wantBy[c.session] = append(wantBy[c.session], c.status)
	}
	for id, st := range wantBy {
		h.wait(id, st[len(st)-1], 60*time.Second)
	}
	time.Sleep(2 * time.Second) // anything sent twice, or stale, would arrive by now
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) != len(h.arrivals) || len(h.events) > len(want) {
		t.Errorf("%d events accepted, %d distinct event ids; want at most %d, each once", len(h.events), len(h.arrivals), len(want))
	}
	for id, n := range h.arrivals {
		if n != 1 {
			t.Errorf("event %s arrived %d times", id, n)
		}
	}
	// Per session, what arrives is in the order it happened and ends with the outcome.
	bySession := map[string][]string{}
	for _, ev := range h.events {
		bySession[ev.SessionID] = append(bySession[ev.SessionID], ev.Status)
	}
	for id, st := range wantBy {
		got := bySession[id]
		if len(got) == 0 || got[len(got)-1] != st[len(st)-1] || !inOrder(got, st) {
			t.Errorf("session %s: webhooks %v, want an in-order part of %v ending with %s", id, got, st, st[len(st)-1])
		}
	}
}

// inOrder reports whether got is a subsequence of want.
func inOrder(got, want []string) bool {
	i := 0
	for _, w := range want {
		if i < len(got) && got[i] == w {
			i++
		}
	}
	return i == len(got)
}
