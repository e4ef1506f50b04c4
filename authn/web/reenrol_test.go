package web

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/internal/testenv"
)

var (
	livenessOnce sync.Once
	passive      *liveness.Passive
	livenessErr  error
)

// testLiveness loads the passive models once and gives each environment its own challenger.
func testLiveness(t *testing.T) (*liveness.Passive, *liveness.Challenger) {
	t.Helper()
	livenessOnce.Do(func() {
		passive, livenessErr = liveness.NewPassive(liveness.PassiveConfig{ModelsDir: testenv.ModelsDir(t)})
	})
	if livenessErr != nil {
		t.Fatalf("passive liveness: %v", livenessErr)
	}
	ch, err := liveness.NewChallenger(liveness.ChallengerConfig{Engine: testEngine(t), Passive: passive})
	if err != nil {
		t.Fatal(err)
	}
	return passive, ch
}

// pointing04Frames answers a head-turn challenge with real photos of one Pointing'04 person at
// known yaws, laid out in time as the page captures them: a look at the camera, then each step
// (15, 30, 45, 30, 15 degrees for a turn; frontal for centre), frames spread evenly over each
// step_ms, no image used twice.
func pointing04Frames(t *testing.T, person string, ch liveness.Challenge, t0 time.Time) ([][]byte, []time.Time) {
	t.Helper()
	f, err := os.Open(testenv.Path(t, "pointing04", "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	byPan := map[int][]string{} // tilt 0 first, then +-15
	for _, tilt := range []string{"0", "-15", "15"} {
		for _, r := range rows[1:] {
			if r[1] == person && r[4] == tilt {
				pan, _ := strconv.Atoi(r[5])
				byPan[pan] = append(byPan[pan], r[0])
			}
		}
	}
	take := func(pan int) []byte {
		list := byPan[pan]
		if len(list) == 0 {
			t.Fatalf("pointing04 person %s: no image left at pan %d", person, pan)
		}
		byPan[pan] = list[1:]
		b, err := os.ReadFile(testenv.Path(t, "pointing04", list[0]))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	phases := [][][]byte{{take(0), take(0)}}
	for _, step := range ch.Steps {
		switch step {
		case "left", "right":
			sign := -1 // the user's left is a negative pan in Pointing'04
			if step == "right" {
				sign = 1
			}
			var ph [][]byte
			for _, a := range []int{15, 30, 45, 30, 15} {
				ph = append(ph, take(sign*a))
			}
			phases = append(phases, ph)
		default:
			phases = append(phases, [][]byte{take(0), take(0)})
		}
	}
	var frames [][]byte
	var times []time.Time
	for i, ph := range phases {
		for j, d := range ph {
			ms := i*ch.StepMS + (j+1)*ch.StepMS/(len(ph)+1)
			frames = append(frames, d)
			times = append(times, t0.Add(time.Duration(ms)*time.Millisecond))
		}
	}
	return frames, times
}

var challengeURLRE = regexp.MustCompile(`data-challenge="([^"]+)"`)

// reenrol runs the re-enrolment page with the given burst builder and returns the answer.
func (e *stepEnv) reenrol(t *testing.T, b *browser, build func(ch liveness.Challenge) ([][]byte, []time.Time)) (int, verdict) {
	t.Helper()
	resp, body, _ := e.follow(t, b, "/account/reenrol")
	if resp.StatusCode != http.StatusOK {
		var v verdict
		v.Code = strconv.Itoa(resp.StatusCode)
		return resp.StatusCode, v
	}
	m := csrfRE.FindStringSubmatch(body)
	if m == nil || challengeURLRE.FindStringSubmatch(body) == nil {
		t.Fatalf("re-enrolment page: %.300s", body)
	}
	csrf := m[1]
	post := func(path string, fill func(mw *multipart.Writer)) *http.Response {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("csrf_token", csrf)
		if fill != nil {
			fill(mw)
		}
		mw.Close()
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		return e.do(t, b, req)
	}
	r := post("/account/reenrol/challenge", nil)
	var ch liveness.Challenge
	if err := json.NewDecoder(r.Body).Decode(&ch); err != nil || r.StatusCode != http.StatusOK || ch.Method != liveness.MethodActive3D {
		t.Fatalf("challenge: %d %+v %v", r.StatusCode, ch, err)
	}
	r.Body.Close()
	frames, times := build(ch)
	r = post("/account/reenrol", func(mw *multipart.Writer) {
		_ = mw.WriteField("challenge_id", ch.ID)
		for i, f := range frames {
			fw, _ := mw.CreateFormFile("frames", fmt.Sprintf("f%02d.jpg", i))
			_, _ = fw.Write(f)
			_ = mw.WriteField("frame_times", strconv.FormatInt(times[i].UnixMilli(), 10))
		}
	})
	defer r.Body.Close()
	var v verdict
	b2, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b2, &v)
	return r.StatusCode, v
}

// TestReenrolment: only shortly after a selfie sign-in, only through a live head turn; the new
// face then signs in and the old one no longer does.
func TestReenrolment(t *testing.T) {
	e := newStepEnvWith(t, nil, true)
	old := lfwPhoto(t, "Aaron_Peirsol", 2)
	b := newBrowser("198.51.100.10")

	// Not signed in: refused.
	if status, _ := e.reenrol(t, b, nil); status != http.StatusUnauthorized {
		t.Fatalf("without a session: %d", status)
	}
	if o := e.signIn(t, b, old, nil); o.code == "" {
		t.Fatalf("selfie sign-in: %+v", o)
	}
	// A burst of one still photo is not a live head turn.
	status, v := e.reenrol(t, b, func(ch liveness.Challenge) ([][]byte, []time.Time) {
		img, _ := os.ReadFile(old)
		var frames [][]byte
		var times []time.Time
		for i := 0; i < 14; i++ {
			frames = append(frames, img)
			times = append(times, time.Now().Add(time.Duration(i*400)*time.Millisecond))
		}
		return frames, times
	})
	if v.Status == "Approved" {
		t.Fatalf("a still photo re-enrolled a face: %d %+v", status, v)
	}
	// A stolen session: a real head turn of somebody else (Pointing'04 person 01) is a live
	// face, but not the account's: refused, audited, and both faces stay where they were.
	status, v = e.reenrol(t, b, func(ch liveness.Challenge) ([][]byte, []time.Time) {
		return pointing04Frames(t, "01", ch, time.Now())
	})
	if status != http.StatusOK || v.Status != "Declined" || v.Code != CodeReenrolMismatch {
		t.Fatalf("another person's head turn: %d %+v", status, v)
	}
	if o := e.signIn(t, newBrowser("198.51.100.10"), old, nil); o.code == "" {
		t.Fatalf("the owner no longer signs in after a refused re-enrolment: %+v", o)
	}
	newFace := testenv.Path(t, "pointing04", "Person01", "person01272+30+0.jpg") // not among the burst frames
	if o := e.signIn(t, newBrowser("198.51.100.10"), newFace, nil); o.code != "" {
		t.Fatalf("the other face signs in after a refused re-enrolment: %+v", o)
	}

	// The owner's own head turn re-enrols: person 01 enrolled from a frontal photo, signed in
	// with another, re-enrols through the head turn and then signs in from a third pose.
	p01, err := os.ReadFile(testenv.Path(t, "pointing04", "Person01", "person01146+0+0.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Enrol(t.Context(), e.store, testEngine(t), e.keys, Account{Username: "p01"}, [][]byte{p01}, false, time.Now); err != nil {
		t.Fatal(err)
	}
	ob := newBrowser("198.51.100.11")
	if o := e.signInAs(t, ob, "p01", testenv.Path(t, "pointing04", "Person01", "person01246+0+0.jpg"), nil); o.code == "" {
		t.Fatalf("person 01 selfie sign-in: %+v", o)
	}
	status, v = e.reenrol(t, ob, func(ch liveness.Challenge) ([][]byte, []time.Time) {
		return pointing04Frames(t, "01", ch, time.Now())
	})
	if status != http.StatusOK || v.Status != "Approved" {
		t.Fatalf("the owner's live head turn: %d %+v", status, v)
	}
	if o := e.signInAs(t, newBrowser("198.51.100.11"), "p01", newFace, nil); o.code == "" {
		t.Fatalf("the re-enrolled face does not sign in: %+v", o)
	}
	evs, _ := e.store.ListAudit(t.Context(), "", 50)
	var outcomes []string
	for _, ev := range evs {
		outcomes = append(outcomes, ev.Outcome)
	}
	if !slices.Contains(outcomes, "reenrolled") || !slices.Contains(outcomes, "reenrol_refused") {
		t.Fatalf("re-enrolments not audited: %v", outcomes)
	}
}

// TestReenrolmentGates: a known-device sign-in (no selfie) and a sign-in older than the window
// do not allow re-enrolment.
func TestReenrolmentGates(t *testing.T) {
	e := newStepEnvWith(t, func(c *Config) { c.ReenrolWindow = 2 * time.Second }, true)
	same := lfwPhoto(t, "Aaron_Peirsol", 2)
	b := newBrowser("198.51.100.10")
	if o := e.signIn(t, b, same, nil); o.code == "" {
		t.Fatalf("selfie sign-in: %+v", o)
	}
	time.Sleep(2500 * time.Millisecond)
	if status, _ := e.reenrol(t, b, nil); status != http.StatusForbidden {
		t.Fatalf("sign-in older than the window: %d", status)
	}
	b.dropSession(e.srv.URL)
	if o := e.signIn(t, b, same, nil); o.selfieAsked || o.code == "" {
		t.Fatalf("known-device sign-in: %+v", o)
	}
	if status, _ := e.reenrol(t, b, nil); status != http.StatusForbidden {
		t.Fatalf("after a sign-in without a selfie: %d", status)
	}
}
