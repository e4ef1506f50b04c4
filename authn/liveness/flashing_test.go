package liveness

import (
	"testing"
	"time"
)

func TestFlashing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the face engine on about 90 frames")
	}
	eng, _ := models(t)
	c := newChallenger(t, nil)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	live := readFile(t, "nuaa-train", "bonafide", "0001", "0001_00_00_01_116.jpg")
	other := readFile(t, "replay", "frames", "bonafide", "apfol", "bonafide_real2_010.jpg") // another person, 640x480 too (dlib distance 0.81)
	print := readFile(t, "nuaa-train", "attack_print", "0001", "0001_00_00_01_120.jpg")
	rotate := func(s []string, k int) []string { return append(append([]string(nil), s[k:]...), s[:k]...) }
	cases := []struct {
		name   string
		frames func(ch Challenge) []Frame
		live   bool
		codes  []string
	}{
		{"live face lit by the issued colours", func(ch Challenge) []Frame {
			return flashBurst(t, eng, live, ch, colorNames(ch.Colors), t0)
		}, true, nil},
		{"lit by another sequence", func(ch Challenge) []Frame {
			return flashBurst(t, eng, live, ch, []string{"#00ffff", "#ff00ff", "#ffff00", "#0000ff", "#00ff00", "#ff0000"}, t0)
		}, false, []string{CodeColorSequence}},
		{"the issued colours one step late", func(ch Challenge) []Frame {
			return flashBurst(t, eng, live, ch, rotate(colorNames(ch.Colors), len(ch.Colors)-1), t0)
		}, false, []string{CodeColorSequence}},
		{"constant video", func(ch Challenge) []Frame { return flashBurst(t, eng, live, ch, nil, t0) }, false, []string{CodeNoColorReflection}},
		{"printed photo lit by the issued colours", func(ch Challenge) []Frame {
			return flashBurst(t, eng, print, ch, colorNames(ch.Colors), t0)
		}, false, []string{CodeFaceAttack}},
		{"another face during two colours", func(ch Challenge) []Frame {
			f := flashBurst(t, eng, live, ch, colorNames(ch.Colors), t0)
			g := flashBurst(t, eng, other, ch, colorNames(ch.Colors), t0)
			copy(f[5:9], g[5:9])
			return f
		}, false, []string{CodeFaceChanged}},
		{"frames outside the issued timing", func(ch Challenge) []Frame {
			f := flashBurst(t, eng, live, ch, colorNames(ch.Colors), t0)
			for i := 1; i < len(f); i++ { // every frame in the settling time of a colour
				f[i].At = t0.Add(time.Duration(ch.Colors[(i-1)/2].StartMS+10+20*((i-1)%2)) * time.Millisecond)
			}
			return f
		}, false, []string{CodeFrameTiming}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := c.issueWith(MethodFlashing, nil, []string{"#ff0000", "#00ff00", "#0000ff", "#ffff00", "#ff00ff", "#00ffff"})
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Verify(t.Context(), ch.ID, tc.frames(ch), nil)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			t.Logf("live=%v score=%d warnings=%v", res.Live, res.Score, res.Warnings)
			if res.Live != tc.live {
				t.Errorf("Live = %v, want %v (warnings %v)", res.Live, tc.live, res.Warnings)
			}
			if tc.live != (res.Score >= 50) {
				t.Errorf("score %d disagrees with Live %v", res.Score, tc.live)
			}
			for _, code := range tc.codes {
				if !res.HasWarning(code) {
					t.Errorf("missing warning %s in %v", code, res.Warnings)
				}
			}
		})
	}
}

// TestFlashingRandomSequences answers issued (random) challenges with a live face lit by their
// colours, and each with the colours of another issued challenge.
func TestFlashingRandomSequences(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the face engine on about 50 frames")
	}
	eng, _ := models(t)
	c := newChallenger(t, nil)
	live := readFile(t, "nuaa-train", "bonafide", "0003", "0003_01_00_01_0.jpg")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := must[Challenge](t)(c.Issue(MethodFlashing))
	b := must[Challenge](t)(c.Issue(MethodFlashing))
	res := must[Result](t)(c.Verify(t.Context(), a.ID, flashBurst(t, eng, live, a, colorNames(a.Colors), t0), nil))
	if !res.Live {
		t.Errorf("issued sequence %v answered correctly: not live: %v", colorNames(a.Colors), res.Warnings)
	}
	res = must[Result](t)(c.Verify(t.Context(), b.ID, flashBurst(t, eng, live, b, colorNames(a.Colors), t0), nil))
	if res.Live && !equalStrings(colorNames(a.Colors), colorNames(b.Colors)) {
		t.Errorf("sequence %v answered with the colours of %v: live", colorNames(b.Colors), colorNames(a.Colors))
	}
}
