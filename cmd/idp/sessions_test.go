package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/visage-idp/visage/authn/sessions"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/sqlite"
)

func TestLoadSessionsSettings(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, s sessionsSettings)
	}{
		{name: "defaults", check: func(t *testing.T, s sessionsSettings) {
			if s.TTL != 30*time.Minute || s.WebhookHorizon != 24*time.Hour || !s.Console || s.RetryMin != 2*time.Second {
				t.Errorf("%+v", s)
			}
		}},
		{name: "overrides", env: map[string]string{"VISAGE_SESSIONS_TTL": "5m", "VISAGE_SESSIONS_WEBHOOK_HORIZON": "72h", "VISAGE_SESSIONS_CONSOLE": "false"},
			check: func(t *testing.T, s sessionsSettings) {
				if s.TTL != 5*time.Minute || s.WebhookHorizon != 72*time.Hour || s.Console {
					t.Errorf("%+v", s)
				}
			}},
		{name: "bad duration", env: map[string]string{"VISAGE_SESSIONS_TTL": "soon"}, wantErr: "VISAGE_SESSIONS_TTL"},
		{name: "negative duration", env: map[string]string{"VISAGE_SESSIONS_POLL": "-1s"}, wantErr: "VISAGE_SESSIONS_POLL"},
		{name: "bad bool", env: map[string]string{"VISAGE_SESSIONS_CONSOLE": "maybe"}, wantErr: "VISAGE_SESSIONS_CONSOLE"},
		{name: "retry bounds", env: map[string]string{"VISAGE_SESSIONS_RETRY_MIN": "1h", "VISAGE_SESSIONS_RETRY_MAX": "1m"}, wantErr: "RETRY_MIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := loadSessionsSettings(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func testApp(t *testing.T) *app {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "visage.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &app{store: st}
}

func TestAPIKeysCommand(t *testing.T) {
	a := testApp(t)
	ctx := context.Background()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runAPIKeys(ctx, a, args, &out)
		return out.String(), err
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no subcommand", nil, "missing subcommand"},
		{"unknown subcommand", []string{"rotate"}, "unknown subcommand"},
		{"no name", []string{"create"}, "--name"},
		{"bad webhook URL", []string{"create", "--name", "x", "--webhook-url", "ftp://x"}, "--webhook-url"},
		{"new-application flags with --app", []string{"create", "--name", "x", "--app", "app_1", "--keep-images"}, "new application"},
		{"unknown application", []string{"create", "--name", "x", "--app", "nope"}, "not found"},
		{"revoke without id", []string{"revoke"}, "--id"},
		{"update without app", []string{"update"}, "--app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := run(tc.args...); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
	out, err := run("create", "--name", "shop", "--webhook-url", "https://shop.example/hook", "--keep-images", "--retention", "720h")
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`api key: (vsk_\S+)`).FindStringSubmatch(out)
	appID := regexp.MustCompile(`application: (\S+)`).FindStringSubmatch(out)
	keyID := regexp.MustCompile(`key id: (\S+)`).FindStringSubmatch(out)
	if key == nil || appID == nil || keyID == nil || !strings.Contains(out, "webhook secret: whsec_") {
		t.Fatalf("create output:\n%s", out)
	}
	ap, err := a.store.GetApplication(ctx, appID[1])
	if err != nil || ap.WebhookURL != "https://shop.example/hook" || !ap.KeepImages || ap.ResultRetention != 720*time.Hour || ap.Name != "shop" {
		t.Errorf("application %+v, %v", ap, err)
	}
	if ks, _ := a.store.ListAPIKeys(ctx); len(ks) != 1 || strings.Contains(ks[0].Hash, key[1]) || ks[0].Hint != key[1][:10] {
		t.Errorf("stored key %+v: only the hash and a hint may be stored", ks)
	}
	if _, err := run("create", "--name", "second", "--app", appID[1]); err != nil {
		t.Fatal(err)
	}
	out, err = run("update", "--app", appID[1], "--webhook-url", "-", "--rotate-secret")
	if err != nil || !strings.Contains(out, "webhook secret: whsec_") {
		t.Fatalf("update: %v\n%s", err, out)
	}
	if ap2, _ := a.store.GetApplication(ctx, appID[1]); ap2.WebhookURL != "" || ap2.WebhookSecret == ap.WebhookSecret || !ap2.KeepImages {
		t.Errorf("after update %+v", ap2)
	}
	if _, err := run("revoke", "--id", keyID[1]); err != nil {
		t.Fatal(err)
	}
	out, err = run("list")
	if err != nil || strings.Count(out, appID[1]) != 2 || !strings.Contains(out, "shop") {
		t.Errorf("list: %v\n%s", err, out)
	}
	if ks, _ := a.store.ListAPIKeys(ctx); ks[0].RevokedAt == nil || ks[1].RevokedAt != nil {
		t.Errorf("revocation %+v", ks)
	}
}

func TestWorkflowsCommand(t *testing.T) {
	a := testApp(t)
	ctx := context.Background()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := runWorkflows(ctx, a, args, &out)
		return out.String(), err
	}
	file := func(body string) string {
		p := filepath.Join(t.TempDir(), "workflows.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no id", []string{"create"}, "id"},
		{"unknown feature", []string{"create", "--id", "w", "--features", "LIVENESS,DOCUMENT"}, "DOCUMENT"},
		{"no liveness", []string{"create", "--id", "w", "--features", "FACE_MATCH,IP_ANALYSIS"}, "must contain LIVENESS"},
		{"unknown method", []string{"create", "--id", "w", "--liveness-method", "BLINK"}, "BLINK"},
		{"thresholds crossed", []string{"create", "--id", "w", "--face-match-approve", "40", "--face-match-decline", "60"}, "thresholds"},
		{"threshold above 100", []string{"create", "--id", "w", "--liveness-approve", "101"}, "thresholds"},
		{"bad type", []string{"create", "--id", "w", "--workflow-type", "kyc"}, "workflow_type"},
		{"file with an unknown key", []string{"create", "--file", file("workflows:\n  - id: a\n    colour: red\n")}, "colour"},
		{"file with one bad workflow", []string{"create", "--file", file("workflows:\n  - id: good\n    features: [LIVENESS, FACE_MATCH]\n  - id: bad\n    features: [NOPE]\n")}, "NOPE"},
		{"empty file", []string{"create", "--file", file("workflows: []\n")}, "no workflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := run(tc.args...); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
	if ws, _ := a.store.ListWorkflows(ctx); len(ws) != 0 {
		t.Fatalf("refused commands stored %d workflows", len(ws))
	}
	if _, err := run("create", "--id", "wf_reauth", "--features", "liveness,face_match,ip_analysis", "--liveness-method", "active_3d"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("create", "--file", file("workflows:\n  - id: wf_match\n    workflow_type: biometric_authentication\n    features: [LIVENESS, FACE_MATCH]\n    face_match_approve: 90\n    face_match_decline: 70\n")); err != nil {
		t.Fatal(err)
	}
	fa, fd, la, ld := sessions.DefaultWorkflowThresholds()
	w, err := a.store.GetWorkflow(ctx, "wf_reauth")
	if err != nil || w.LivenessMethod != "ACTIVE_3D" || len(w.Features) != 3 || w.FaceMatchApprove != fa || w.FaceMatchDecline != fd ||
		w.LivenessApprove != la || w.LivenessDecline != ld || w.MaxAttempts != 3 {
		t.Errorf("wf_reauth %+v, %v", w, err)
	}
	if w, _ := a.store.GetWorkflow(ctx, "wf_match"); w.FaceMatchApprove != 90 || w.FaceMatchDecline != 70 || w.LivenessMethod != "PASSIVE" {
		t.Errorf("wf_match %+v", w)
	}
	out, err := run("list")
	if err != nil || !strings.Contains(out, "LIVENESS(ACTIVE_3D),FACE_MATCH,IP_ANALYSIS") || !strings.Contains(out, "90/70") {
		t.Errorf("list: %v\n%s", err, out)
	}
	if _, err := run("create", "--id", "wf_match", "--features", "LIVENESS,FACE_MATCH"); err == nil {
		t.Error("a second workflow with the same id")
	}
}

func TestUserRoleCommand(t *testing.T) {
	a := testApp(t)
	ctx := context.Background()
	now := time.Now()
	if err := a.store.CreateUser(ctx, store.User{ID: "u1", Username: "ada", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := runUserRole(ctx, a, []string{"--username", "Ada"}, &out, true); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.store.GetUser(ctx, "u1"); !u.Admin {
		t.Error("not promoted")
	}
	if err := runUserRole(ctx, a, []string{"--username", "ada"}, &out, false); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.store.GetUser(ctx, "u1"); u.Admin {
		t.Error("not demoted")
	}
	if err := runUserRole(ctx, a, []string{"--username", "nobody"}, &out, true); err == nil {
		t.Error("promoted an unknown user")
	}
	if err := runUserRole(ctx, a, nil, &out, true); err == nil || !strings.Contains(err.Error(), "--username") {
		t.Errorf("no username: %v", err)
	}
}
