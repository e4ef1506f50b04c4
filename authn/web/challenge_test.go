package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/risk"
)

// TestLoginChallengeBadInput: the sign-in's challenge endpoints refuse malformed answers with a
// clear error and grant nothing.
func TestLoginChallengeBadInput(t *testing.T) {
	e := newStepEnvWith(t, nil, true)
	b := newBrowser("203.0.113.9") // a Tor exit: the policy asks for ACTIVE_3D
	q := url.Values{"client_id": {"rp"}, "redirect_uri": {testRedirect}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	resp, body, _ := e.follow(t, b, "/authorize?"+q.Encode())
	id := resp.Request.URL.Query().Get("authRequestID")
	form := url.Values{"csrf_token": {csrfRE.FindStringSubmatch(body)[1]}, "authRequestID": {id}, "username": {"aaron"}}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	e.do(t, b, req).Body.Close()
	_, page, _ := e.follow(t, b, "/login/selfie?authRequestID="+url.QueryEscape(id))
	if m := methodRE.FindStringSubmatch(page); m == nil || m[1] != risk.MethodActive {
		t.Fatalf("selfie page method: %v", m)
	}
	csrf := csrfRE.FindStringSubmatch(page)[1]
	post := func(path string, fields url.Values, frames [][]byte) (int, map[string]any) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("csrf_token", csrf)
		_ = mw.WriteField("authRequestID", id)
		for k, vs := range fields {
			for _, v := range vs {
				_ = mw.WriteField(k, v)
			}
		}
		for i, f := range frames {
			fw, _ := mw.CreateFormFile("frames", fmt.Sprintf("f%d.jpg", i))
			_, _ = fw.Write(f)
		}
		mw.Close()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		r := e.do(t, b, req)
		defer r.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(r.Body).Decode(&out)
		return r.StatusCode, out
	}
	issue := func() liveness.Challenge {
		status, out := post("/login/challenge", nil, nil)
		if status != http.StatusOK || out["method"] != string(liveness.MethodActive3D) {
			t.Fatalf("challenge: %d %v", status, out)
		}
		return liveness.Challenge{ID: out["id"].(string)}
	}
	img, err := os.ReadFile(lfwPhoto(t, "Aaron_Peirsol", 2))
	if err != nil {
		t.Fatal(err)
	}
	frames := func(n int) ([][]byte, []string) {
		var f [][]byte
		var ts []string
		for i := 0; i < n; i++ {
			f = append(f, img)
			ts = append(ts, fmt.Sprint(time.Now().Add(time.Duration(i)*400*time.Millisecond).UnixMilli()))
		}
		return f, ts
	}
	ch := issue()
	f, ts := frames(6)
	if status, out := post("/login/liveness", url.Values{"frame_times": ts}, f); status != http.StatusBadRequest || out["code"] != liveness.CodeChallengeMissing {
		t.Fatalf("missing challenge id: %d %v", status, out)
	}
	ch = issue()
	f, ts = frames(6)
	rev := append([]string(nil), ts...)
	rev[0], rev[5] = rev[5], rev[0]
	if status, out := post("/login/liveness", url.Values{"challenge_id": {ch.ID}, "frame_times": rev}, f); status != http.StatusBadRequest || out["code"] != liveness.CodeFramesOutOfOrder {
		t.Fatalf("frames out of time order: %d %v", status, out)
	}
	// The challenge was used up by that answer: answering it again is refused.
	if status, out := post("/login/liveness", url.Values{"challenge_id": {ch.ID}, "frame_times": ts}, f); status != http.StatusBadRequest {
		t.Fatalf("reused challenge: %d %v", status, out)
	}
	ch = issue()
	f, ts = frames(40)
	if status, out := post("/login/liveness", url.Values{"challenge_id": {ch.ID}, "frame_times": ts}, f); status != http.StatusBadRequest || out["code"] != liveness.CodeTooManyFrames {
		t.Fatalf("too many frames: %d %v", status, out)
	}
	ch = issue()
	big := bytes.Repeat([]byte{0xff}, 9<<20)
	if status, _ := post("/login/liveness", url.Values{"challenge_id": {ch.ID}, "frame_times": {"1"}}, [][]byte{big}); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized burst: %d", status)
	}
	evs, _ := e.store.ListAudit(t.Context(), "", 20)
	for _, ev := range evs {
		if ev.Outcome == "approved" {
			t.Fatalf("a malformed answer was approved: %+v", ev)
		}
	}
}
