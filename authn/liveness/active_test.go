package liveness

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/visage-idp/visage/internal/testenv"
)

// photoAttack imitates a person turning a printed frontal photo in front of the camera, phase by
// phase like p04Burst: the photo rotated about a vertical axis by the turn's angle (perspective
// from 2 image widths away), sheared in proportion (shear at 45 degrees) to push the nose sideways
// as a real head turn would, so that the landmark yaw follows the challenge.
func photoAttack(t *testing.T, person string, steps []string, shear float64) [][][]byte {
	t.Helper()
	eng, _ := models(t)
	photo := readFile(t, "pointing04", pointing04(t, person)[p04key{1, 0, 0}])
	a, err := eng.Analyze(t.Context(), photo)
	if err != nil {
		t.Fatal(err)
	}
	img := decode(t, photo)
	c := a.Face.Box.Min.Add(a.Face.Box.Max).Div(2)
	eyeY := float64(a.Face.Landmarks[0].Y+a.Face.Landmarks[2].Y) / 2
	z := 2 * float64(img.Rect.Dx())
	shot := func(deg float64) []byte {
		// The user's left turns the face towards the image's right: rotate the photo's right
		// edge away from the camera and shear the nose towards the image's right.
		return encodeJPEG(t, warp(img, photoTurn(float64(c.X), float64(c.Y), eyeY, z, -deg, -shear*deg/45)), 90)
	}
	phases := [][][]byte{{shot(0.5), shot(-0.5)}}
	for _, s := range steps {
		sign := map[string]float64{StepLeft: -1, StepRight: 1, StepCenter: 0}[s]
		if sign == 0 {
			phases = append(phases, [][]byte{shot(1), shot(-1)})
			continue
		}
		var ph [][]byte
		for _, d := range []float64{15, 30, 45, 31, 16} {
			ph = append(ph, shot(sign*d))
		}
		phases = append(phases, ph)
	}
	return phases
}

// videoFrames returns every other frame of a replay/frames video sequence (2 fps, so 1 s apart).
func videoFrames(t *testing.T, pattern string, n int) [][]byte {
	var out [][]byte
	for i := 1; i <= n; i += 2 {
		out = append(out, readFile(t, "replay", "frames", fmt.Sprintf(pattern, i)))
	}
	return out
}

func TestActive3D(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the face engine on about 150 frames")
	}
	// The cases' frames are read inside subtests with this t: check the sets here, where a
	// missing one can skip the test.
	testenv.Path(t, "pointing04", "labels.csv")
	testenv.Path(t, "replay", "frames")
	c := newChallenger(t, nil)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	leftRight := []string{StepLeft, StepRight, StepCenter}
	rightLeftRight := []string{StepRight, StepLeft, StepRight, StepCenter}
	secondOf := func(data [][]byte) []Frame { return burst(data, t0, time.Second) }
	pace := func(ph [][][]byte) []Frame { return timed(ph, t0, c.cfg.Active.StepMS) }
	swapTurn := func(ph [][][]byte, other [][][]byte, i int) [][][]byte {
		out := append([][][]byte(nil), ph...)
		out[i] = other[i]
		return out
	}
	cases := []struct {
		name   string
		steps  []string       // the challenge
		frames func() []Frame // the answer
		live   bool
		codes  []string // warnings that must be present
	}{
		{"pointing04 person 01 left right", leftRight, func() []Frame { return pace(p04Burst(t, "01", leftRight)) }, true, nil},
		{"pointing04 person 07 right left right", rightLeftRight, func() []Frame { return pace(p04Burst(t, "07", rightLeftRight)) }, true, nil},
		{"tranvanluyt live video left right", leftRight, func() []Frame {
			return secondOf(videoFrames(t, "bonafide/tranvanluyt/bonafide_real_headturn_%03d.jpg", 41))
		}, true, nil},
		{"wrong order", []string{StepRight, StepLeft, StepCenter}, func() []Frame { return pace(p04Burst(t, "01", leftRight)) }, false, []string{CodeWrongMovementOrder}},
		{"turn missing", rightLeftRight, func() []Frame { return pace(p04Burst(t, "07", []string{StepRight, StepLeft, StepCenter})) }, false, []string{CodeMovementIncomplete}},
		{"no turn at all", leftRight, func() []Frame { return pace(p04Burst(t, "01", []string{StepCenter, StepCenter})) }, false, []string{CodeMovementIncomplete}},
		{"different face in one turn", leftRight, func() []Frame {
			return pace(swapTurn(p04Burst(t, "01", leftRight), p04Burst(t, "02", leftRight), 2))
		}, false, []string{CodeFaceChanged}},
		{"printed photo rotated", leftRight, func() []Frame { return pace(photoAttack(t, "01", leftRight, 0)) }, false, []string{CodeMovementIncomplete}},
		{"printed photo rotated and sheared", leftRight, func() []Frame { return pace(photoAttack(t, "01", leftRight, 0.6)) }, false, []string{CodeFlatMotion}},
		{"screen replay of the live video", leftRight, func() []Frame {
			return secondOf(videoFrames(t, "attack_replay/tranvanluyt/replay_fake_headturn_%03d.jpg", 41))
		}, false, []string{CodeFaceAttack}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := c.issueWith(MethodActive3D, tc.steps, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Verify(t.Context(), ch.ID, tc.frames(), nil)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			t.Logf("live=%v score=%d warnings=%v", res.Live, res.Score, res.Warnings)
			if res.Live != tc.live {
				t.Errorf("Live = %v, want %v (warnings %v)", res.Live, tc.live, res.Warnings)
			}
			if tc.live && (res.Score < 50 || res.Probe == nil) {
				t.Errorf("live result with score %d and probe %v", res.Score, res.Probe != nil)
			}
			if !tc.live && res.Score >= 50 {
				t.Errorf("failed result with score %d >= 50", res.Score)
			}
			for _, code := range tc.codes {
				if !res.HasWarning(code) {
					t.Errorf("missing warning %s in %v", code, res.Warnings)
				}
			}
		})
	}
}

// TestPlanarity: the dense homography alignment separates a real head turn (Pointing'04, the
// same person at 0 and +-30/45 degrees) from the frontal photo warped to imitate it (rotation
// and shear), with the FlatCorrelation limit between them.
func TestPlanarity(t *testing.T) {
	eng, _ := models(t)
	limit := newChallenger(t, nil).cfg.Active.FlatCorrelation
	for _, person := range []string{"02", "03", "05"} {
		idx := pointing04(t, person)
		photo := readFile(t, "pointing04", idx[p04key{1, 0, 0}])
		ref, err := eng.Analyze(t.Context(), photo)
		if err != nil {
			t.Fatal(err)
		}
		rv := newView(rgbaOf(ref.Image), ref.Face.Box, ref.Face.Landmarks)
		img := decode(t, photo)
		c := ref.Face.Box.Min.Add(ref.Face.Box.Max).Div(2)
		eyeY := float64(ref.Face.Landmarks[0].Y+ref.Face.Landmarks[2].Y) / 2
		for _, pan := range []int{-45, -30, 30, 45} {
			live, err := eng.Analyze(t.Context(), readFile(t, "pointing04", idx[p04key{1, 0, pan}]))
			if err != nil {
				t.Fatal(err)
			}
			corr, _ := planarity(rv, newView(rgbaOf(live.Image), live.Face.Box, live.Face.Landmarks))
			fake, err := eng.Analyze(t.Context(), encodeJPEG(t, warp(img, photoTurn(float64(c.X), float64(c.Y), eyeY, 2*float64(img.Rect.Dx()), -float64(pan), -0.5*float64(pan)/45)), 90))
			if err != nil {
				t.Fatal(err)
			}
			fcorr, _ := planarity(rv, newView(rgbaOf(fake.Image), fake.Face.Box, fake.Face.Landmarks))
			t.Logf("person %s pan %+d: head yaw %+.0f corr %.3f | warped photo yaw %+.0f corr %.3f", person, pan,
				landmarkYaw(live.Face.Landmarks)-landmarkYaw(ref.Face.Landmarks), corr, landmarkYaw(fake.Face.Landmarks)-landmarkYaw(ref.Face.Landmarks), fcorr)
			if corr >= limit || fcorr < limit {
				t.Errorf("person %s pan %+d: real head %.3f, warped photo %.3f; the limit %.2f must lie between", person, pan, corr, fcorr, limit)
			}
		}
	}
}

// TestActive3DPointing04Sweep answers both challenge shapes with every Pointing'04 person's real
// head turns (20 bursts, about 30 s on 2 cores): all must pass. Run with VISAGE_LONG_TESTS=1.
func TestActive3DPointing04Sweep(t *testing.T) {
	if os.Getenv("VISAGE_LONG_TESTS") == "" {
		t.Skip("set VISAGE_LONG_TESTS=1 to run the 20 Pointing'04 bursts")
	}
	c := newChallenger(t, nil)
	for p := 1; p <= 10; p++ {
		person := fmt.Sprintf("%02d", p)
		for _, steps := range [][]string{{StepLeft, StepRight, StepCenter}, {StepRight, StepLeft, StepRight, StepCenter}} {
			ch, err := c.issueWith(MethodActive3D, steps, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Verify(t.Context(), ch.ID, timed(p04Burst(t, person, steps), time.Now(), ch.StepMS), nil)
			if err != nil || !res.Live {
				t.Errorf("person %s, steps %v: live=%v score=%d warnings=%v err=%v", person, steps, res.Live, res.Score, res.Warnings, err)
			}
		}
	}
}
