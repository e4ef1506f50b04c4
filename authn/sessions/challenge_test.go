package sessions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/words"
	"github.com/visage-idp/visage/store"
)

// postForm posts multipart fields (and frames) to a hosted page URL with its CSRF token.
func (e *env) postForm(url, csrf string, fields map[string][]string, frames [][]byte) (int, []byte) {
	e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf_token", csrf)
	for k, vs := range fields {
		for _, v := range vs {
			_ = mw.WriteField(k, v)
		}
	}
	for i, f := range frames {
		fw, _ := mw.CreateFormFile("frames", fmt.Sprintf("frame-%03d.jpg", i))
		fw.Write(f)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, url, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-CSRF-Token", csrf)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// stillBurst is a held-up photo: the same picture re-encoded at different qualities (so no two
// frames are byte-identical), with capture times every 400 ms.
func stillBurst(t *testing.T, photo []byte, n int) ([][]byte, []string) {
	img, err := jpeg.Decode(bytes.NewReader(photo))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var frames [][]byte
	var times []string
	for i := range n {
		var b bytes.Buffer
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80 + i}); err != nil {
			t.Fatal(err)
		}
		frames = append(frames, b.Bytes())
		times = append(times, fmt.Sprintf("%d.000", start.Add(time.Duration(i)*400*time.Millisecond).UnixMilli()))
	}
	return frames, times
}

// TestChallengeMethods: a workflow with ACTIVE_3D or FLASHING liveness gets the guided capture
// page; the challenge is issued for the session and a held-up photo fails it.
func TestChallengeMethods(t *testing.T) {
	e := newEnv(t, nil)
	for _, m := range []string{"ACTIVE_3D", "FLASHING"} {
		t.Run(m, func(t *testing.T) {
			w, err := NewWorkflow(WorkflowOptions{ID: "wf_" + m, Features: []string{FeatureLiveness, FeatureFaceMatch}, LivenessMethod: m,
				FaceMatchApprove: -1, FaceMatchDecline: -1, LivenessApprove: -1, LivenessDecline: -1}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := e.st.CreateWorkflow(e.ctx, w); err != nil {
				t.Fatal(err)
			}
			cr := e.createSession(map[string]any{"workflow_id": w.ID, "vendor_data": "u-" + m, "portrait_image": b64(lfwPhoto(t, "Aaron_Sorkin", 1))})
			code, html, csrf := e.page(cr.URL)
			if code != 200 || !strings.Contains(html, `id="liveness-form"`) || !strings.Contains(html, `data-challenge="/session/`) ||
				!strings.Contains(html, "/static/liveness.js") || !strings.Contains(html, `data-method="`+m+`"`) {
				t.Fatalf("hosted page %d:\n%.2000s", code, html)
			}
			// A single selfie does not answer a challenge workflow.
			if code, r := e.capture(cr.URL, csrf, lfwPhoto(t, "Aaron_Sorkin", 2)); code != http.StatusBadRequest || r.Status != "error" {
				t.Errorf("single selfie: %d %+v", code, r)
			}
			// An unknown challenge is an unusable capture: the page may try again.
			frames, times := stillBurst(t, lfwPhoto(t, "Aaron_Sorkin", 2), 6)
			code, b := e.postForm(cr.URL+"/capture", csrf, map[string][]string{"challenge_id": {"nope"}, "frame_times": times}, frames)
			if r := decode[captureReply](t, b); code != 200 || r.Status != "retry" || !slices.Contains(r.Codes, liveness.CodeChallengeUnknown) || r.Message != words.For(liveness.CodeChallengeUnknown) {
				t.Errorf("unknown challenge: %d %+v", code, r)
			}
			code, _ = e.postForm(cr.URL+"/challenge", "forged", nil, nil)
			if code != http.StatusForbidden {
				t.Errorf("challenge with a forged CSRF token: %d", code)
			}
			code, b = e.postForm(cr.URL+"/challenge", csrf, nil, nil)
			var ch liveness.Challenge
			if err := json.Unmarshal(b, &ch); code != 200 || err != nil || ch.ID == "" || string(ch.Method) != m {
				t.Fatalf("challenge: %d %s", code, b)
			}
			n := 6
			if m == "FLASHING" {
				n = len(ch.Colors)*ch.FramesPerColor + 1
			}
			frames, times = stillBurst(t, lfwPhoto(t, "Aaron_Sorkin", 2), n)
			code, b = e.postForm(cr.URL+"/capture", csrf, map[string][]string{"challenge_id": {ch.ID}, "frame_times": times}, frames)
			r := decode[captureReply](t, b)
			if code != 200 || r.Status != store.StatusDeclined {
				t.Fatalf("held-up photo: %d %+v", code, r)
			}
			_, body := e.api(http.MethodGet, "/v3/session/"+cr.SessionID+"/decision/", e.key, nil)
			d := decode[Decision](t, body)
			if len(d.LivenessChecks) != 1 || d.LivenessChecks[0].Method != m || d.LivenessChecks[0].Status != store.StatusDeclined || len(d.LivenessChecks[0].Warnings) == 0 {
				t.Errorf("liveness %+v", d.LivenessChecks)
			}
			t.Logf("%s on a held-up photo: %v", m, warningCodes(d))
			v, _ := e.st.GetVerification(e.ctx, cr.SessionID)
			if v.Attempts != 2 {
				t.Errorf("attempts %d, want 2", v.Attempts)
			}
		})
	}
}
