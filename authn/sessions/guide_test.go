package sessions

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/visage-idp/visage/authn/risk"
	"github.com/visage-idp/visage/store"
)

// The tests in this file follow Didit's biometric re-authentication guide: its field names
// (session_url, liveness, face.similarity_score), its statuses (Not Finished, Resubmitted, Kyc
// Expired), its workflow rules (workflow_type, LIVENESS required, per-session liveness method,
// Tor/VPN escalation) and JSON errors everywhere under /v3.

// TestGuideShapes: the create answer carries session_url beside url; the decision and the
// webhook carry the guide's top-level liveness and face blocks beside the arrays, with the
// similarity from 0 to 1.
func TestGuideShapes(t *testing.T) {
	e := newEnv(t, nil)
	e.workflow("wf_reauth", FeatureLiveness, FeatureFaceMatch)
	cr := e.createSession(map[string]any{"workflow_id": "wf_reauth", "workflow_type": WorkflowType, "vendor_data": "José Müller 北京",
		"callback": "https://app.example/reauth/callback", "metadata": map[string]any{"purpose": "returning_user_signin"},
		"portrait_image": b64(lfwPhoto(t, "Aaron_Sorkin", 1))})
	if cr.SessionURL == "" || cr.SessionURL != cr.URL {
		t.Fatalf("session_url %q, url %q: want the same hosted page", cr.SessionURL, cr.URL)
	}
	// Before the capture the blocks are null.
	_, b := e.api(http.MethodGet, "/v3/session/"+cr.SessionID+"/decision/", e.key, nil)
	if d := decode[Decision](t, b); d.Liveness != nil || d.Face != nil || !strings.Contains(string(b), `"liveness":null`) {
		t.Errorf("blocks before the capture: %s", b)
	}
	_, _, csrf := e.page(cr.SessionURL)
	if _, r := e.capture(cr.SessionURL, csrf, lfwPhoto(t, "Aaron_Sorkin", 2)); r.Status != store.StatusApproved {
		t.Fatalf("capture: %+v", r)
	}
	_, b = e.api(http.MethodGet, "/v3/session/"+cr.SessionID+"/decision/", e.key, nil)
	d := decode[Decision](t, b)
	if d.Liveness == nil || d.Face == nil {
		t.Fatalf("decision without the guide's blocks: %s", b)
	}
	if *d.Liveness != (LivenessSummary{Status: d.LivenessChecks[0].Status, Method: "PASSIVE", Score: d.LivenessChecks[0].Score}) {
		t.Errorf("liveness %+v, checks %+v", *d.Liveness, d.LivenessChecks)
	}
	if d.Face.Status != store.StatusApproved || d.Face.SimilarityScore <= 0 || d.Face.SimilarityScore > 1 ||
		math.Abs(d.Face.SimilarityScore-d.FaceMatches[0].Score/100) > 1e-9 {
		t.Errorf("face %+v, matches %+v", *d.Face, d.FaceMatches)
	}
	e.deliverAll(10 * time.Second)
	evs := e.rc.events()
	if len(evs) != 2 || evs[1].Status != store.StatusApproved || evs[1].VendorData != "José Müller 北京" {
		t.Fatalf("webhooks %+v", evs)
	}
}

// TestGuideWebhookBodyIsSigned: the webhook as it arrives, read by the guide's receiver: the
// HMAC-SHA256 of the raw bytes is X-Signature-V2, with non-ASCII vendor data, and the body has
// the top-level liveness and face blocks.
func TestGuideWebhookBodyIsSigned(t *testing.T) {
	e := newEnv(t, nil)
	e.workflow("wf_reauth", FeatureLiveness, FeatureFaceMatch)
	type arrival struct {
		body []byte
		v2   string
	}
	got := make(chan arrival, 8)
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- arrival{body, r.Header.Get("X-Signature-V2")}
	})}
	e.rc.srv.Config.Handler = srv.Handler
	cr := e.createSession(map[string]any{"workflow_id": "wf_reauth", "vendor_data": "José Müller 北京",
		"metadata": map[string]any{"note": "Zoë ✓"}, "portrait_image": b64(lfwPhoto(t, "Aaron_Sorkin", 1))})
	_, _, csrf := e.page(cr.SessionURL)
	e.capture(cr.SessionURL, csrf, lfwPhoto(t, "Aaron_Sorkin", 2))
	e.deliverAll(10 * time.Second)
	close(got)
	n := 0
	for a := range got {
		n++
		if want := hmacHex(e.app.WebhookSecret, a.body); a.v2 != want {
			t.Errorf("X-Signature-V2 %s is not the HMAC of the raw body (%s): %s", a.v2, want, a.body)
		}
		if !strings.Contains(string(a.body), `"vendor_data":"José Müller 北京"`) {
			t.Errorf("body does not carry the vendor data as UTF-8: %s", a.body)
		}
		if strings.Contains(string(a.body), `"status":"Approved","timestamp"`) &&
			(!strings.Contains(string(a.body), `"face":{"similarity_score":`) || !strings.Contains(string(a.body), `"liveness":{"method":"PASSIVE"`)) {
			t.Errorf("approved webhook without the guide's blocks: %s", a.body)
		}
	}
	if n != 2 {
		t.Errorf("%d webhooks, want 2", n)
	}
}

// TestWorkflowRules: workflow_type is checked, LIVENESS is required, and a session's
// liveness_method is never weaker than its workflow's.
func TestWorkflowRules(t *testing.T) {
	if _, err := NewWorkflow(WorkflowOptions{ID: "w", Features: []string{FeatureFaceMatch, FeatureIPAnalysis}}, time.Now()); err == nil ||
		!strings.Contains(err.Error(), "must contain LIVENESS") {
		t.Errorf("workflow without LIVENESS: %v", err)
	}
	e := newEnv(t, nil)
	e.workflow("wf_passive", FeatureLiveness, FeatureFaceMatch)
	wa, err := NewWorkflow(WorkflowOptions{ID: "wf_active", Features: []string{FeatureLiveness, FeatureFaceMatch}, LivenessMethod: "ACTIVE_3D",
		FaceMatchApprove: -1, FaceMatchDecline: -1, LivenessApprove: -1, LivenessDecline: -1}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateWorkflow(e.ctx, wa); err != nil {
		t.Fatal(err)
	}
	portrait := b64(lfwPhoto(t, "Aaron_Sorkin", 1))
	for _, tc := range []struct {
		name      string
		body      map[string]any
		wantField string
	}{
		{"kyc type", map[string]any{"workflow_id": "wf_passive", "workflow_type": "kyc"}, "workflow_type"},
		{"type not a string", map[string]any{"workflow_id": "wf_passive", "workflow_type": 7}, "workflow_type"},
		{"unknown method", map[string]any{"workflow_id": "wf_passive", "liveness_method": "BLINK"}, "liveness_method"},
		{"weaker method", map[string]any{"workflow_id": "wf_active", "liveness_method": "PASSIVE"}, "liveness_method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.body["vendor_data"], tc.body["portrait_image"] = "u-"+tc.name, portrait
			code, b := e.api(http.MethodPost, "/v3/session/", e.key, tc.body)
			if code != http.StatusBadRequest || !strings.Contains(string(b), `"`+tc.wantField+`"`) {
				t.Errorf("%d %s, want 400 on %s", code, b, tc.wantField)
			}
		})
	}
	if vs, n, _ := e.st.ListVerifications(e.ctx, store.VerificationFilter{}); n != 0 {
		t.Fatalf("refused requests stored %d sessions: %+v", n, vs)
	}
	// A stronger method than the workflow's: the hosted page runs it.
	cr := e.createSession(map[string]any{"workflow_id": "wf_passive", "workflow_type": WorkflowType, "vendor_data": "u-strong",
		"liveness_method": "FLASHING", "portrait_image": portrait})
	if code, html, _ := e.page(cr.SessionURL); code != 200 || !strings.Contains(html, `data-method="FLASHING"`) || !strings.Contains(html, `id="liveness-form"`) {
		t.Errorf("hosted page of a FLASHING session: %d", code)
	}
	// Asking again for the same vendor data returns the open session, raised if asked for more.
	cr = e.createSession(map[string]any{"workflow_id": "wf_passive", "vendor_data": "u-raised", "portrait_image": portrait})
	code, b := e.api(http.MethodPost, "/v3/session/", e.key, map[string]any{"workflow_id": "wf_passive", "vendor_data": "u-raised", "liveness_method": "ACTIVE_3D"})
	if again := decode[CreateResponse](t, b); code != http.StatusOK || again.SessionID != cr.SessionID {
		t.Fatalf("second create: %d %s", code, b)
	}
	if v, _ := e.st.GetVerification(e.ctx, cr.SessionID); v.LivenessMethod != "ACTIVE_3D" {
		t.Errorf("open session's method %q after a request for ACTIVE_3D", v.LivenessMethod)
	}
	// A single selfie does not satisfy it (the attacker posts what a PASSIVE page would).
	_, _, csrf := e.page(cr.SessionURL)
	if code, r := e.capture(cr.SessionURL, csrf, lfwPhoto(t, "Aaron_Sorkin", 2)); code != http.StatusBadRequest {
		t.Errorf("single selfie for an ACTIVE_3D session: %d %+v", code, r)
	}
}

// TestTorVPNEscalation: the step-up policy's Tor/VPN rule on hosted sessions. A PASSIVE session
// opened from a Tor exit is escalated to ACTIVE_3D, stays so from a clean address, and a
// single selfie posted from the Tor exit to a page loaded elsewhere is refused.
func TestTorVPNEscalation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
	list := filepath.Join(t.TempDir(), "tor.txt")
	if err := os.WriteFile(list, []byte("# test exits\n198.51.100.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tor, err := risk.OpenList(list, e.svc.log)
	if err != nil {
		t.Fatal(err)
	}
	e.svc.tor = tor
	e.workflow("wf", FeatureLiveness, FeatureFaceMatch, FeatureIPAnalysis)
	portrait := b64(lfwPhoto(t, "Aaron_Sorkin", 1))
	get := func(u, from string) string {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	// Page from the Tor exit: the head-turn challenge, recorded on the session.
	cr := e.createSession(map[string]any{"workflow_id": "wf", "vendor_data": "tor-user", "portrait_image": portrait})
	if html := get(cr.SessionURL, "198.51.100.7"); !strings.Contains(html, `data-method="ACTIVE_3D"`) {
		t.Fatalf("page from a Tor exit is not the ACTIVE_3D challenge")
	}
	if v, _ := e.st.GetVerification(e.ctx, cr.SessionID); v.LivenessMethod != "ACTIVE_3D" {
		t.Errorf("session method %q, want ACTIVE_3D", v.LivenessMethod)
	}
	if html := get(cr.SessionURL, "203.0.113.9"); !strings.Contains(html, `data-method="ACTIVE_3D"`) {
		t.Errorf("the escalation dropped back for a clean address")
	}

	// Page from a clean address (PASSIVE), selfie posted from the Tor exit: refused, escalated.
	cr2 := e.createSession(map[string]any{"workflow_id": "wf", "vendor_data": "switcher", "portrait_image": portrait})
	html := get(cr2.SessionURL, "203.0.113.9")
	m := csrfRE.FindStringSubmatch(html)
	if m == nil || !strings.Contains(html, `id="selfie-form"`) {
		t.Fatal("page from a clean address is not the PASSIVE capture")
	}
	body, ct := selfieForm(t, m[1], lfwPhoto(t, "Aaron_Sorkin", 2))
	req, _ := http.NewRequest(http.MethodPost, cr2.SessionURL+"/capture", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("X-CSRF-Token", m[1])
	req.Header.Set("X-Forwarded-For", "198.51.100.50")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("single selfie from a Tor exit: %d, want 400 (reload: a challenge is needed)", resp.StatusCode)
	}
	if v, _ := e.st.GetVerification(e.ctx, cr2.SessionID); v.LivenessMethod != "ACTIVE_3D" || v.Status != store.StatusInProgress {
		t.Errorf("after the refused selfie: method %q, status %s", v.LivenessMethod, v.Status)
	}
}

// TestNotFinished: "Not now" on the hosted page ends the session Not Finished, fires the
// webhook and sends the browser to the callback; without the page's CSRF token nothing happens.
func TestNotFinished(t *testing.T) {
	e := newEnv(t, nil)
	e.workflow("wf", FeatureLiveness, FeatureFaceMatch)
	cr := e.createSession(map[string]any{"workflow_id": "wf", "vendor_data": "leaver", "callback": "https://app.example/cb",
		"portrait_image": b64(lfwPhoto(t, "Aaron_Sorkin", 1))})
	_, html, csrf := e.page(cr.SessionURL)
	if !strings.Contains(html, `id="not-now"`) {
		t.Fatal("no Not now button")
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	leave := func(token string) *http.Response {
		resp, err := noRedirect.PostForm(cr.SessionURL+"/leave", url.Values{"csrf_token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := leave(""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("leave without the token: %d, want 403", resp.StatusCode)
	}
	if v, _ := e.st.GetVerification(e.ctx, cr.SessionID); v.Status != store.StatusInProgress {
		t.Fatalf("a forged leave changed the session: %s", v.Status)
	}
	resp := leave(csrf)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Host != "app.example" || loc.Query().Get("status") != store.StatusNotFinished {
		t.Fatalf("leave: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	v, _ := e.st.GetVerification(e.ctx, cr.SessionID)
	if v.Status != store.StatusNotFinished || v.Reference != nil {
		t.Errorf("after leaving: %s, reference kept %v", v.Status, v.Reference != nil)
	}
	if code, r := e.capture(cr.SessionURL, csrf, lfwPhoto(t, "Aaron_Sorkin", 2)); code != http.StatusConflict || r.Status != store.StatusNotFinished {
		t.Errorf("capture after leaving: %d %+v", code, r)
	}
	code, b := e.api(http.MethodGet, "/v3/sessions/?status="+url.QueryEscape(store.StatusNotFinished), e.key, nil)
	if l := decode[ListResponse](t, b); code != 200 || l.Count != 1 {
		t.Errorf("list by Not Finished: %d %s", code, b)
	}
	e.deliverAll(10 * time.Second)
	if evs := e.rc.events(); len(evs) != 2 || evs[1].Status != store.StatusNotFinished {
		t.Errorf("webhooks %+v", evs)
	}
}

// TestResubmission: a Declined session is resubmitted by the application; the same session_url
// opens again and the new selfie decides it. It cannot be resubmitted when not Declined, nor
// after its time ran out (its reference face is then deleted).
func TestResubmission(t *testing.T) {
	e := newEnv(t, nil)
	e.workflow("wf", FeatureLiveness, FeatureFaceMatch)
	portrait := b64(lfwPhoto(t, "Aaron_Sorkin", 1))
	cr := e.createSession(map[string]any{"workflow_id": "wf", "vendor_data": "sorkin", "callback": "https://app.example/cb", "portrait_image": portrait})
	resubmit := func(id string) (int, []byte) {
		return e.api(http.MethodPatch, "/v3/session/"+id+"/update-status/", e.key, map[string]string{"new_status": "Resubmitted", "comment": "retake"})
	}
	if code, b := resubmit(cr.SessionID); code != http.StatusConflict {
		t.Errorf("resubmit a Not Started session: %d %s", code, b)
	}
	_, _, csrf := e.page(cr.SessionURL)
	if _, r := e.capture(cr.SessionURL, csrf, lfwPhoto(t, "Ana_Guevara", 6)); r.Status != store.StatusDeclined {
		t.Fatalf("wrong face: %+v", r)
	}
	code, b := resubmit(cr.SessionID)
	if d := decode[Decision](t, b); code != 200 || d.Status != store.StatusResubmitted {
		t.Fatalf("resubmit: %d %s", code, b)
	}
	// A create for the same vendor data returns the resubmitted session.
	code, b = e.api(http.MethodPost, "/v3/session/", e.key, map[string]any{"workflow_id": "wf", "vendor_data": "sorkin", "portrait_image": portrait})
	if again := decode[CreateResponse](t, b); code != 200 || again.SessionID != cr.SessionID || again.Status != store.StatusResubmitted {
		t.Errorf("create beside a resubmitted session: %d %s", code, b)
	}
	code, html, csrf := e.page(cr.SessionURL)
	if code != 200 || !strings.Contains(html, `id="selfie-form"`) {
		t.Fatalf("resubmitted page: %d", code)
	}
	if _, r := e.capture(cr.SessionURL, csrf, lfwPhoto(t, "Aaron_Sorkin", 2)); r.Status != store.StatusApproved {
		t.Fatalf("the right face after the resubmission: %+v", r)
	}
	if v, _ := e.st.GetVerification(e.ctx, cr.SessionID); v.Reference != nil || v.Attempts != 1 {
		t.Errorf("after approval: reference kept %v, attempts %d", v.Reference != nil, v.Attempts)
	}
	e.deliverAll(10 * time.Second)
	var statuses []string
	for _, ev := range e.rc.events() {
		statuses = append(statuses, ev.Status)
	}
	if want := "In Progress,Declined,Resubmitted,In Progress,Approved"; strings.Join(statuses, ",") != want {
		t.Errorf("webhooks %v, want %s", statuses, want)
	}

	// Declined, then the session's time runs out: the sweep deletes the reference; no resubmission.
	cr2 := e.createSession(map[string]any{"workflow_id": "wf", "vendor_data": "late", "portrait_image": portrait})
	_, _, csrf = e.page(cr2.SessionURL)
	if _, r := e.capture(cr2.SessionURL, csrf, lfwPhoto(t, "Ana_Guevara", 6)); r.Status != store.StatusDeclined {
		t.Fatalf("wrong face: %+v", r)
	}
	real := e.svc.now
	e.svc.now = func() time.Time { return real().Add(31 * time.Minute) }
	if _, err := e.svc.ExpireDue(e.ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.st.GetVerification(e.ctx, cr2.SessionID); v.Reference != nil || v.Status != store.StatusDeclined {
		t.Errorf("after expiry: %s, reference kept %v", v.Status, v.Reference != nil)
	}
	if code, b := resubmit(cr2.SessionID); code != http.StatusConflict {
		t.Errorf("resubmit after expiry: %d %s", code, b)
	}
}

// TestKycExpired: a session against the face enrolled for its vendor data ends Kyc Expired
// when that enrolment is deleted (or replaced) before the user opens the page.
func TestKycExpired(t *testing.T) {
	e := newEnv(t, nil)
	e.workflow("wf", FeatureLiveness, FeatureFaceMatch)
	u := e.enrol("aaron", lfwPhoto(t, "Aaron_Sorkin", 1))
	cr := e.createSession(map[string]any{"workflow_id": "wf", "vendor_data": "aaron", "callback": "https://app.example/cb"})
	if err := e.st.DeleteUser(e.ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	code, html, _ := e.page(cr.SessionURL)
	if code != 200 || !strings.Contains(html, `data-status="Kyc Expired"`) {
		t.Fatalf("page after the enrolment was deleted: %d", code)
	}
	v, _ := e.st.GetVerification(e.ctx, cr.SessionID)
	if v.Status != store.StatusKycExpired || v.Reference != nil {
		t.Errorf("session %s, reference kept %v", v.Status, v.Reference != nil)
	}
	code, b := e.api(http.MethodGet, "/v3/sessions/?status="+url.QueryEscape(store.StatusKycExpired), e.key, nil)
	if l := decode[ListResponse](t, b); code != 200 || l.Count != 1 {
		t.Errorf("?status=Kyc Expired: %d %s", code, b)
	}
	// An enrolment that is still the one copied: the page opens normally.
	e.enrol("ana", lfwPhoto(t, "Ana_Guevara", 6))
	cr2 := e.createSession(map[string]any{"workflow_id": "wf", "vendor_data": "ana"})
	if code, html, _ := e.page(cr2.SessionURL); code != 200 || !strings.Contains(html, `id="selfie-form"`) {
		t.Errorf("page of a current enrolment: %d", code)
	}
	e.deliverAll(10 * time.Second)
	found := false
	for _, ev := range e.rc.events() {
		found = found || (ev.SessionID == cr.SessionID && ev.Status == store.StatusKycExpired)
	}
	if !found {
		t.Error("no Kyc Expired webhook")
	}
}

// TestJSONErrorsEverywhere: every answer under /v3 is JSON, unknown paths and wrong methods
// included, and no error names a Go type.
func TestJSONErrorsEverywhere(t *testing.T) {
	e := newEnv(t, nil)
	e.workflow("wf", FeatureLiveness)
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodGet, "/v3/nope", "", http.StatusNotFound},
		{http.MethodGet, "/v3/session/x/y/z/", "", http.StatusNotFound},
		{http.MethodGet, "/v3/", "", http.StatusNotFound},
		{http.MethodGet, "/v3/session/", "", http.StatusMethodNotAllowed},
		{http.MethodPut, "/v3/sessions/", "", http.StatusMethodNotAllowed},
		{http.MethodPost, "/v3/session/", `[1,2]`, http.StatusBadRequest},
		{http.MethodPost, "/v3/session/", `"text"`, http.StatusBadRequest},
		{http.MethodPost, "/v3/session/", `{"workflow_id": `, http.StatusBadRequest},
		{http.MethodPost, "/v3/session/", `{"workflow_id": "wf"} x`, http.StatusBadRequest},
		{http.MethodPost, "/v3/session/", ``, http.StatusBadRequest},
		{http.MethodPatch, "/v3/session/00000000-0000-0000-0000-000000000000/update-status/", `{"new_status": 5}`, http.StatusBadRequest},
		{http.MethodPatch, "/v3/session/00000000-0000-0000-0000-000000000000/update-status/", `[]`, http.StatusBadRequest},
		{http.MethodPatch, "/v3/session/00000000-0000-0000-0000-000000000000/update-status/", `{`, http.StatusBadRequest},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("x-api-key", e.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%d %s %q, want %d JSON", resp.StatusCode, resp.Header.Get("Content-Type"), b, tc.want)
			}
			var detail map[string]string
			if err := decodeErr(b, &detail); err != nil || len(detail) == 0 {
				t.Errorf("body %q is not a JSON error: %v", b, err)
			}
			for _, leak := range []string{"map[", "json.", "Go value", "Go struct", "RawMessage", "UpdateStatusRequest"} {
				if strings.Contains(string(b), leak) {
					t.Errorf("error %s shows %q", b, leak)
				}
			}
			if tc.want == http.StatusMethodNotAllowed && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			// Documented paths also validate against the document.
			if tc.want != http.StatusNotFound && tc.want != http.StatusMethodNotAllowed {
				if err := e.doc.CheckResponse(tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), b); err != nil {
					t.Errorf("OpenAPI: %v", err)
				}
			}
		})
	}
}

// hmacHex is the guide's signature check: lowercase hex HMAC-SHA256 of the raw bytes.
func hmacHex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// selfieForm is the multipart body the capture script posts.
func selfieForm(t *testing.T, csrf string, img []byte) (io.Reader, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf_token", csrf)
	fw, err := mw.CreateFormFile("image", "selfie.jpg")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(img)
	mw.Close()
	return &body, mw.FormDataContentType()
}

func decodeErr(b []byte, v any) error { return json.Unmarshal(b, v) }
