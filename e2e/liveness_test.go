package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/words"
	"github.com/visage-idp/visage/internal/testenv"
)

// livenessServer starts bin/idp with a relying party and one user enrolled from enrolPhoto.
func livenessServer(t *testing.T, enrolPhoto string, env ...string) (*server, *rp) {
	t.Helper()
	s := startServer(t, env...)
	r := newRP(t, s, "e2e-app", "--first-party")
	s.cli(t, "users", "add", "--username", "subject", "--portrait", enrolPhoto)
	return s, r
}

// TestPassiveLivenessPage: a live webcam frame passes; a printed photo of the same person held
// to the camera (NUAA) is refused by the passive models.
func TestPassiveLivenessPage(t *testing.T) {
	nuaa := func(set, name string) string { return testenv.Path(t, "nuaa-train", set, "0001", name) }
	_, r := livenessServer(t, nuaa("bonafide", "0001_00_00_01_0.jpg"))
	a := r.authorize()
	res := signIn(t, a.url, y4m(t, nuaa("bonafide", "0001_00_00_01_116.jpg")), r.srv.URL+"/callback", "subject", "")
	codeFrom(t, res, a)

	a = r.authorize()
	res = signIn(t, a.url, y4m(t, nuaa("attack_print", "0001_00_00_01_0.jpg")), r.srv.URL+"/callback", "subject", "")
	if res.Outcome != "refused" || !livenessRefusal(res.Message) {
		t.Fatalf("printed photo: %+v, want a liveness refusal", res)
	}
}

// livenessRefusal reports whether msg, as the page shows it, is the catalogue's plain sentence
// for a failed liveness check (the code itself is never shown).
func livenessRefusal(msg string) bool {
	for _, c := range []string{liveness.CodeFaceAttack, liveness.CodeMovementIncomplete, liveness.CodeWrongMovementOrder, liveness.CodeFlatMotion,
		liveness.CodeFaceChanged, liveness.CodeFaceMismatch, liveness.CodeColorSequence, liveness.CodeNoColorReflection,
		liveness.CodeInsufficientFrames, liveness.CodeDuplicateFrames, "LOW_LIVENESS_SCORE"} {
		if msg == words.For(c) {
			return true
		}
	}
	return false
}

// torList writes a Tor exit list naming the loopback address the browser comes from.
func torList(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "tor.txt")
	if err := os.WriteFile(p, []byte("127.0.0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestActiveChallengePage: from a Tor exit a new device gets the head-turn challenge page; a
// pre-recorded head-turn video cannot follow a random challenge and is refused after the burst.
func TestActiveChallengePage(t *testing.T) {
	frame := testenv.Path(t, "replay", "frames", "bonafide", "tranvanluyt", "bonafide_real_headturn_001.jpg")
	s, r := livenessServer(t, frame, "VISAGE_TOR_LIST="+torList(t))
	a := r.authorize()
	video := testenv.Path(t, "video", "headturn_tranvanluyt_368x656_15fps.mjpeg")
	res := signIn(t, a.url, video, r.srv.URL+"/callback", "subject", "")
	t.Logf("refusal: %s", res.Message)
	if res.Outcome != "refused" || !slices.Contains(res.Steps, "selfie") || !livenessRefusal(res.Message) || strings.Contains(res.FinalURL, "code=") {
		t.Fatalf("recorded video against a live challenge: %+v", res)
	}
	body := get(t, s.url+"/metrics")
	if !strings.Contains(body, `visage_stepup_decisions_total{method="ACTIVE_3D",outcome="declined"} 1`) {
		t.Fatalf("metrics: %s", body)
	}
}

// TestFlashingChallengePage: with FLASHING configured for Tor, a still picture (no reflection of
// the issued colours) is refused.
func TestFlashingChallengePage(t *testing.T) {
	frame := testenv.Path(t, "replay", "frames", "bonafide", "tranvanluyt", "bonafide_real_headturn_001.jpg")
	s, r := livenessServer(t, frame, "VISAGE_TOR_LIST="+torList(t), "VISAGE_STEP_UP_NEW_DEVICE_TOR_OR_VPN=FLASHING")
	a := r.authorize()
	res := signIn(t, a.url, y4m(t, frame), r.srv.URL+"/callback", "subject", "")
	t.Logf("refusal: %s", res.Message)
	if res.Outcome != "refused" || !livenessRefusal(res.Message) || strings.Contains(res.FinalURL, "code=") {
		t.Fatalf("still picture against the colour challenge: %+v", res)
	}
	body := get(t, s.url+"/metrics")
	if !strings.Contains(body, `visage_stepup_decisions_total{method="FLASHING",outcome="declined"} 1`) {
		t.Fatalf("metrics: %s", body)
	}
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
