package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/visage-idp/visage/internal/apidoc"
)

// guideResult is what e2e/guide-client.mjs prints.
type guideResult struct {
	Outcome         string   `json:"outcome"`
	Message         string   `json:"message"`
	Status          string   `json:"status"`
	SessionID       string   `json:"session_id"`
	SimilarityScore *float64 `json:"similarity_score"`
	CallbackStatus  string   `json:"callback_status"`
	Webhook         *struct {
		Status     string         `json:"status"`
		VendorData string         `json:"vendor_data"`
		Liveness   *livenessBlock `json:"liveness"`
		Face       *faceBlock     `json:"face"`
	} `json:"webhook"`
	Decision *struct {
		Status     string     `json:"status"`
		VendorData string     `json:"vendor_data"`
		Face       *faceBlock `json:"face"`
	} `json:"decision"`
	Signatures struct {
		Checked int `json:"checked"`
		Failed  int `json:"failed"`
	} `json:"signatures"`
	Responses []struct {
		Method      string `json:"method"`
		Path        string `json:"path"`
		Status      int    `json:"status"`
		ContentType string `json:"content_type"`
		Body        string `json:"body"`
	} `json:"responses"`
	WebhookBodies []string `json:"webhook_bodies"`
}

// TestGuideClient runs an application written from the examples of Didit's biometric
// re-authentication guide alone (e2e/guide-client.mjs: its field names, its status branches,
// its HMAC of the raw webhook body) against the real bin/idp, with a non-ASCII vendor_data:
// the same person signs in, another person is blocked, and a user who leaves the capture is
// re-prompted. Every API response and webhook body it received must conform to the served
// /v3/openapi.json.
func TestGuideClient(t *testing.T) {
	s := startServer(t, sessionsEnv...)
	requireSessionsAPI(t, s)
	port := freePort(t)
	out := s.cli(t, "apikeys", "create", "--name", "guide-app", "--webhook-url", fmt.Sprintf("http://127.0.0.1:%d/webhooks/didit", port))
	key, secret := match(t, apiKeyRE, out), match(t, secretRE, out)
	s.cli(t, "workflows", "create", "--id", "wf_reauth", "--workflow-type", "biometric_authentication", "--features", "LIVENESS,FACE_MATCH", "--liveness-method", "PASSIVE")

	resp, err := http.Get(s.url + "/v3/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	doc, err := apidoc.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}

	const vendor = "José Müller 北京"
	for _, tc := range []struct {
		name, portrait, selfie, user string
		wantStatus, wantOutcome      string
	}{
		{"same person signs in", lfw(t, "Aaron_Sorkin", 1), lfw(t, "Aaron_Sorkin", 2), "selfie", "Approved", "signed_in"},
		{"another person is blocked", lfw(t, "Aaron_Sorkin", 1), lfw(t, "Ana_Guevara", 6), "selfie", "Declined", "blocked"},
		{"a user who leaves is re-prompted", lfw(t, "Aaron_Sorkin", 1), lfw(t, "Aaron_Sorkin", 2), "leave", "Not Finished", "re_prompt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r guideResult
			node(t, &r, "guide-client.mjs", "--base", s.url, "--api-key", key, "--webhook-secret", secret, "--listen", fmt.Sprint(port),
				"--workflow-id", "wf_reauth", "--vendor-data", vendor, "--portrait", tc.portrait, "--video", y4m(t, tc.selfie), "--user", tc.user)
			if r.Outcome != tc.wantOutcome || r.Status != tc.wantStatus || r.CallbackStatus != tc.wantStatus {
				t.Fatalf("guide client: outcome %q (%s), status %q, callback status %q; want %s / %s", r.Outcome, r.Message, r.Status, r.CallbackStatus, tc.wantOutcome, tc.wantStatus)
			}
			if r.Signatures.Failed != 0 || r.Signatures.Checked < 2 {
				t.Errorf("signatures: %d checked, %d failed (X-Signature-V2 must be the HMAC of the raw body)", r.Signatures.Checked, r.Signatures.Failed)
			}
			if r.Webhook.VendorData != vendor || r.Decision.VendorData != vendor || r.Decision.Status != tc.wantStatus {
				t.Errorf("webhook %+v, decision %+v", r.Webhook, r.Decision)
			}
			if tc.user == "selfie" {
				w := r.Webhook
				if w.Liveness == nil || w.Liveness.Method != "PASSIVE" || w.Liveness.Score <= 0 || w.Face == nil || r.SimilarityScore == nil ||
					*r.SimilarityScore <= 0 || *r.SimilarityScore > 1 || r.Decision.Face == nil || r.Decision.Face.SimilarityScore != *r.SimilarityScore {
					t.Errorf("the guide's blocks: webhook liveness %+v face %+v, decision face %+v", w.Liveness, w.Face, r.Decision.Face)
				} else {
					t.Logf("%s: liveness %s %s %.0f, face %s similarity %.4f", tc.name, w.Liveness.Status, w.Liveness.Method, w.Liveness.Score, w.Face.Status, *r.SimilarityScore)
				}
			}
			for _, x := range r.Responses {
				u, err := url.Parse(x.Path)
				if err != nil {
					t.Fatal(err)
				}
				if err := doc.CheckResponse(x.Method, u.Path, x.Status, x.ContentType, []byte(x.Body)); err != nil {
					t.Errorf("OpenAPI: %v\n%.300s", err, x.Body)
				}
			}
			if len(r.Responses) != 2 {
				t.Errorf("%d API responses recorded, want 2", len(r.Responses))
			}
			for _, b := range r.WebhookBodies {
				v, err := decodeNumbers(b)
				if err != nil {
					t.Fatal(err)
				}
				if err := doc.ValidateComponent("WebhookEvent", v); err != nil {
					t.Errorf("webhook body: %v\n%.300s", err, b)
				}
				if !strings.Contains(b, `"vendor_data":"`+vendor+`"`) {
					t.Errorf("webhook body does not carry the vendor data as UTF-8: %.300s", b)
				}
			}
		})
	}
}

func decodeNumbers(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}
