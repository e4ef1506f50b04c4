package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/sessions"
	"github.com/visage-idp/visage/internal/testenv"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/sqlite"
)

// fixture is a console over a real SQLite store and sessions service, with one administrator,
// one ordinary user and sessions in several statuses. The OIDC sign-in itself runs in the
// end-to-end test (e2e/sessions_test.go); here a signed-in administrator is a console cookie.
type fixture struct {
	t      *testing.T
	c      *Console
	st     *sqlite.Store
	keys   *face.KeyRing
	srv    *httptest.Server
	review string // id of the session In Review
	done   string // id of an Approved session
	frame  []byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "visage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := face.LoadOrCreateKeyRing(filepath.Join(dir, "biometric-keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	engine, err := face.NewEngine(face.Config{ModelsDir: testenv.ModelsDir(t), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := sessions.New(sessions.Config{BaseURL: "http://idp.example", TokenKey: bytes.Repeat([]byte{1}, 32)},
		sessions.Deps{Store: st, Engine: engine, Keys: keys, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Issuer: "http://idp.example", HashKey: bytes.Repeat([]byte{2}, 64), BlockKey: bytes.Repeat([]byte{3}, 32)},
		Deps{Sessions: svc, Store: st, Keys: keys, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, c: c, st: st, keys: keys}
	mux := http.NewServeMux()
	c.Routes(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)

	now := time.Now().UTC()
	for _, u := range []store.User{{ID: "u-admin", Username: "ada", Admin: true}, {ID: "u-user", Username: "bob"}} {
		u.CreatedAt, u.UpdatedAt = now, now
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateApplication(ctx, store.Application{ID: "app", Name: "Shop", WebhookURL: "https://shop.example/hook", WebhookSecret: "s",
		KeepImages: true, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	w, err := sessions.NewWorkflow(sessions.WorkflowOptions{ID: "wf", Features: []string{"LIVENESS", "FACE_MATCH", "IP_ANALYSIS"},
		FaceMatchApprove: -1, FaceMatchDecline: -1, LivenessApprove: -1, LivenessDecline: -1}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateWorkflow(ctx, w); err != nil {
		t.Fatal(err)
	}
	res, _ := json.Marshal(sessions.Results{
		LivenessChecks: []sessions.LivenessCheck{{NodeID: "liveness_1", Status: "Approved", Method: "PASSIVE", Score: 97, Warnings: []sessions.Warning{}}},
		FaceMatches: []sessions.FaceMatch{{NodeID: "face_match_1", Status: "In Review", Score: 71.2, ReferenceSource: "portrait_image",
			Warnings: []sessions.Warning{{Risk: sessions.CodeLowFaceMatch, LogType: "warning", ShortDescription: "below the approval threshold"}}}},
		IPAnalyses: []sessions.IPAnalysis{{NodeID: "ip_analysis_1", Status: "Approved", IPAddress: "203.0.113.9", Warnings: []sessions.Warning{}}},
	})
	f.frame, err = os.ReadFile(testenv.Path(t, "lfw-view1", "images", "Aaron_Sorkin", "Aaron_Sorkin_0002.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := keys.Seal(&face.Template{ModelVersion: "frame", Image: f.frame, CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	for i, st0 := range []string{store.StatusInReview, store.StatusApproved} {
		v, err := st.CreateVerification(ctx, store.Verification{ID: []string{"s-review", "s-done"}[i], AppID: "app", WorkflowID: "wf",
			VendorData: "user-42", Status: store.StatusInProgress, TokenHash: []string{"t1", "t2"}[i], Metadata: []byte(`{"k":"v"}`),
			CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		u := store.VerificationUpdate{ID: v.ID, Status: st0, Results: res, Finished: true, At: now,
			Images: []store.VerificationImage{{Kind: "selfie", Sealed: sealed, CreatedAt: now}},
			Event: &store.WebhookDelivery{ID: "ev-" + v.ID, AppID: "app", Status: st0, Payload: []byte(`{}`), State: store.DeliveryPending,
				NextAttemptAt: now, GiveUpAt: now.Add(time.Hour), CreatedAt: now}}
		if _, err := st.UpdateVerification(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	f.review, f.done = "s-review", "s-done"
	// One failed attempt at the review's webhook, for the attempts column.
	claimed, err := st.ClaimDeliveries(ctx, now, now.Add(time.Minute), 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	for _, d := range claimed {
		if err := st.FinishDeliveryAttempt(ctx, d.LeaseToken, store.DeliveryAttempt{DeliveryID: d.ID, At: now, StatusCode: 503, Error: "HTTP 503", Duration: 12 * time.Millisecond},
			store.DeliveryOutcome{State: store.DeliveryPending, NextAttemptAt: now.Add(time.Minute), LastError: "HTTP 503"}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// cookie returns a console sign-in cookie for the user.
func (f *fixture) cookie(userID, username string, expires time.Time) *http.Cookie {
	f.t.Helper()
	rec := httptest.NewRecorder()
	sid := "sso-" + userID
	if _, err := f.st.GetSession(context.Background(), sid); errors.Is(err, store.ErrNotFound) {
		now := time.Now().UTC()
		if err := f.st.CreateSession(context.Background(), store.Session{ID: sid, UserID: userID, AuthTime: now, ACR: "urn:visage:acr:selfie",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := f.c.setCookie(rec, sessionCookie, signIn{UserID: userID, Username: username, SID: sid, CSRF: "csrf-" + userID, Expires: expires}, time.Hour); err != nil {
		f.t.Fatal(err)
	}
	return rec.Result().Cookies()[0]
}

func (f *fixture) do(method, path string, ck *http.Cookie, form url.Values) (*http.Response, string) {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if ck != nil {
		req.AddCookie(ck)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestConsoleAccess(t *testing.T) {
	f := newFixture(t)
	admin := f.cookie("u-admin", "ada", time.Now().Add(time.Hour))
	for _, tc := range []struct {
		name     string
		method   string
		path     string
		cookie   *http.Cookie
		code     int
		location string // expected Location prefix
		contains string
	}{
		{"signed out: list", "GET", "/console", nil, 302, "/console/login?next=%2Fconsole", ""},
		{"signed out: session", "GET", "/console/sessions/s-review", nil, 302, "/console/login?next=%2Fconsole%2Fsessions%2Fs-review", ""},
		{"signed out: decide", "POST", "/console/sessions/s-review/decide", nil, 401, "", "expired"},
		{"expired sign-in", "GET", "/console", f.cookie("u-admin", "ada", time.Now().Add(-time.Second)), 302, "/console/login", ""},
		{"forged cookie", "GET", "/console", &http.Cookie{Name: sessionCookie, Value: "forged"}, 302, "/console/login", ""},
		{"not an administrator", "GET", "/console", f.cookie("u-user", "bob", time.Now().Add(time.Hour)), 403, "", "no admin role"},
		{"deleted account", "GET", "/console", f.cookie("u-gone", "gone", time.Now().Add(time.Hour)), 302, "/console/login", ""},
		{"list, In Review by default", "GET", "/console", admin, 200, "", `data-session-id="s-review"`},
		{"session page", "GET", "/console/sessions/s-review", admin, 200, "", `id="decide"`},
		{"unknown session", "GET", "/console/sessions/nope", admin, 404, "", "No such session"},
		{"frame", "GET", "/console/sessions/s-review/images/1", admin, 200, "", ""},
		{"unknown frame", "GET", "/console/sessions/s-review/images/9", admin, 404, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(tc.method, tc.path, tc.cookie, url.Values{})
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d\n%.500s", resp.StatusCode, tc.code, body)
			}
			if tc.location != "" && !strings.HasPrefix(resp.Header.Get("Location"), tc.location) {
				t.Errorf("Location %q, want %q…", resp.Header.Get("Location"), tc.location)
			}
			if !strings.Contains(body, tc.contains) {
				t.Errorf("body lacks %q:\n%.1500s", tc.contains, body)
			}
			if resp.Header.Get("Cache-Control") != "no-store" && tc.code != 404 {
				t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
	// The list shows the signals; "all" shows every status.
	_, body := f.do("GET", "/console", admin, nil)
	for _, want := range []string{"PASSIVE 97 Approved", "71.2 In Review", "LOW_FACE_MATCH_SIMILARITY", "203.0.113.9", "Shop (app)"} {
		if !strings.Contains(body, want) {
			t.Errorf("list lacks %q", want)
		}
	}
	if strings.Contains(body, `data-session-id="s-done"`) {
		t.Error("the In Review list shows an Approved session")
	}
	if _, body := f.do("GET", "/console?status=all", admin, nil); !strings.Contains(body, `data-session-id="s-done"`) {
		t.Error("the full list lacks the Approved session")
	}
	// The session page shows the webhook with its attempt, and the kept frame.
	_, body = f.do("GET", "/console/sessions/s-review", admin, nil)
	for _, want := range []string{`data-event-id="ev-s-review"`, `data-code="503"`, "/console/sessions/s-review/images/1", `data-status="In Review"`} {
		if !strings.Contains(body, want) {
			t.Errorf("session page lacks %q", want)
		}
	}
	resp, img := f.do("GET", "/console/sessions/s-review/images/1", admin, nil)
	if resp.Header.Get("Content-Type") != "image/jpeg" || img != string(f.frame) {
		t.Errorf("frame: %s, %d bytes", resp.Header.Get("Content-Type"), len(img))
	}
	if _, body := f.do("GET", "/console/sessions/s-done", admin, nil); strings.Contains(body, `id="decide"`) {
		t.Error("an Approved session offers the decision form")
	}
}

func TestConsoleDecide(t *testing.T) {
	f := newFixture(t)
	admin := f.cookie("u-admin", "ada", time.Now().Add(time.Hour))
	form := func(csrf, status, comment string) url.Values {
		return url.Values{"csrf_token": {csrf}, "new_status": {status}, "comment": {comment}}
	}
	for _, tc := range []struct {
		name string
		path string
		form url.Values
		code int
	}{
		{"forged CSRF token", "/console/sessions/s-review/decide", form("forged", "Approved", "ok"), 403},
		{"no comment", "/console/sessions/s-review/decide", form("csrf-u-admin", "Approved", "  "), 400},
		{"bad status", "/console/sessions/s-review/decide", form("csrf-u-admin", "In Review", "ok"), 400},
		{"not in review", "/console/sessions/s-done/decide", form("csrf-u-admin", "Declined", "changed my mind"), 409},
		{"unknown session", "/console/sessions/nope/decide", form("csrf-u-admin", "Approved", "ok"), 404},
		{"approve", "/console/sessions/s-review/decide", form("csrf-u-admin", "Approved", "Same person, older photo"), 303},
		{"again", "/console/sessions/s-review/decide", form("csrf-u-admin", "Declined", "too late"), 409},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp, body := f.do("POST", tc.path, admin, tc.form); resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d\n%.800s", resp.StatusCode, tc.code, body)
			}
		})
	}
	ctx := context.Background()
	v, err := f.st.GetVerification(ctx, f.review)
	if err != nil || v.Status != store.StatusApproved {
		t.Fatalf("after the decision: %+v, %v", v.Status, err)
	}
	rs, _ := f.st.ListReviews(ctx, f.review)
	if len(rs) != 1 || rs[0].Author != "ada" || rs[0].Comment != "Same person, older photo" || rs[0].NewStatus != store.StatusApproved {
		t.Errorf("reviews %+v", rs)
	}
	// The decision fired the webhook: an Approved event in the outbox, whose decision carries
	// the review.
	ds, _ := f.st.ListDeliveries(ctx, store.DeliveryFilter{SessionID: f.review})
	if len(ds) != 2 || ds[0].Status != store.StatusApproved || ds[0].State != store.DeliveryPending {
		t.Fatalf("deliveries %+v", ds)
	}
	var env struct {
		Decision sessions.Decision `json:"decision"`
	}
	if err := json.Unmarshal(ds[0].Payload, &env); err != nil || len(env.Decision.Reviews) != 1 || env.Decision.Reviews[0].User != "ada" {
		t.Errorf("webhook payload %s, %v", ds[0].Payload, err)
	}
	// A demoted administrator loses the console at once, cookie or not.
	u, _ := f.st.GetUser(ctx, "u-admin")
	u.Admin = false
	if err := f.st.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.do("GET", "/console", admin, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("demoted administrator: %d", resp.StatusCode)
	}
}

// TestConsoleDelete: an administrator deletes a session for real; a forged form, an unticked
// box or a signed-out browser deletes nothing.
func TestConsoleDelete(t *testing.T) {
	f := newFixture(t)
	admin := f.cookie("u-admin", "ada", time.Now().Add(time.Hour))
	ctx := context.Background()
	if _, body := f.do("GET", "/console/sessions/s-review", admin, nil); !strings.Contains(body, `id="delete-session"`) {
		t.Fatal("session page without the delete form")
	}
	form := func(csrf, confirm string) url.Values { return url.Values{"csrf_token": {csrf}, "confirm": {confirm}} }
	for _, tc := range []struct {
		name   string
		cookie *http.Cookie
		form   url.Values
		code   int
	}{
		{"signed out", nil, form("csrf-u-admin", "yes"), 401},
		{"not an administrator", f.cookie("u-user", "bob", time.Now().Add(time.Hour)), form("csrf-u-user", "yes"), 403},
		{"forged CSRF token", admin, form("forged", "yes"), 403},
		{"not confirmed", admin, form("csrf-u-admin", ""), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp, body := f.do("POST", "/console/sessions/s-review/delete", tc.cookie, tc.form); resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d\n%.500s", resp.StatusCode, tc.code, body)
			}
			if _, err := f.st.GetVerification(ctx, f.review); err != nil {
				t.Fatalf("the session is gone after a refused delete: %v", err)
			}
		})
	}
	resp, _ := f.do("POST", "/console/sessions/s-review/delete", admin, form("csrf-u-admin", "yes"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console?status=all" {
		t.Fatalf("delete: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := f.st.GetVerification(ctx, f.review); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after the delete: %v, want ErrNotFound", err)
	}
	if imgs, _ := f.st.ListVerificationImages(ctx, f.review); len(imgs) != 0 {
		t.Errorf("%d frames left", len(imgs))
	}
	if ds, _ := f.st.ListDeliveries(ctx, store.DeliveryFilter{SessionID: f.review}); len(ds) != 0 {
		t.Errorf("%d webhooks left", len(ds))
	}
	if resp, _ := f.do("POST", "/console/sessions/s-review/delete", admin, form("csrf-u-admin", "yes")); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", resp.StatusCode)
	}
}

func TestSafeNext(t *testing.T) {
	for next, want := range map[string]bool{
		"/console": true, "/console/sessions/x": true, "/console?status=all": true,
		"": false, "/": false, "/consolex": false, "//evil.example/console": false, "https://evil.example/console": false, "/login": false,
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %v, want %v", next, got, want)
		}
	}
}

// TestConsoleSignOutIsServerSide: after sign-out a copy of the console cookie opens nothing,
// because the SSO session it rests on is ended; and ending that session elsewhere (a Visage
// logout) ends the console sign-in too.
func TestConsoleSignOutIsServerSide(t *testing.T) {
	f := newFixture(t)
	ck := f.cookie("u-admin", "ada", time.Now().Add(time.Hour))
	if resp, _ := f.do(http.MethodGet, "/console", ck, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("signed-in console: %d", resp.StatusCode)
	}
	if resp, _ := f.do(http.MethodPost, "/console/logout", ck, url.Values{"csrf_token": {"csrf-u-admin"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if resp, _ := f.do(http.MethodGet, "/console", ck, nil); resp.StatusCode == http.StatusOK {
		t.Fatal("a copy of the console cookie still opens the console after sign-out")
	}
	ss, err := f.st.GetSession(context.Background(), "sso-u-admin")
	if err != nil || ss.RevokedAt == nil {
		t.Fatalf("the SSO session was not ended: %+v %v", ss, err)
	}

	// A Visage logout elsewhere (the session revoked) ends a console sign-in as well.
	ck2 := f.cookie("u-user", "bob", time.Now().Add(time.Hour))
	u, _ := f.st.GetUser(context.Background(), "u-user")
	u.Admin = true
	if err := f.st.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.do(http.MethodGet, "/console", ck2, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("second admin: %d", resp.StatusCode)
	}
	if err := f.st.RevokeSession(context.Background(), "sso-u-user", time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.do(http.MethodGet, "/console", ck2, nil); resp.StatusCode == http.StatusOK {
		t.Fatal("the console outlives the SSO session it rests on")
	}
}
