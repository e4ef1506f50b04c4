package liveness

import (
	"bytes"
	"encoding/csv"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/internal/testenv"
)

// The models are loaded once for the whole test binary.
var fixture struct {
	once    sync.Once
	engine  *face.Engine
	passive *Passive
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.engine != nil {
		fixture.engine.Close()
	}
	if fixture.passive != nil {
		fixture.passive.Close()
	}
	os.Exit(code)
}

func models(t testing.TB) (*face.Engine, *Passive) {
	t.Helper()
	dir := testenv.ModelsDir(t)
	fixture.once.Do(func() {
		fixture.engine, fixture.err = face.NewEngine(face.Config{ModelsDir: dir})
		if fixture.err != nil {
			return
		}
		fixture.passive, fixture.err = NewPassive(PassiveConfig{ModelsDir: dir})
	})
	if fixture.err != nil {
		t.Fatalf("loading models: %v", fixture.err)
	}
	return fixture.engine, fixture.passive
}

// fakeClock is a settable clock for challenge deadlines.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newChallenger(t testing.TB, clock *fakeClock) *Challenger {
	t.Helper()
	eng, p := models(t)
	cfg := ChallengerConfig{Engine: eng, Passive: p, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if clock != nil {
		cfg.Now = clock.Now
	}
	c, err := NewChallenger(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readFile(t testing.TB, elems ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(testenv.Path(t, elems...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode(t testing.TB, data []byte) *image.RGBA {
	t.Helper()
	img, err := face.Decode(data, face.Limits{MaxBytes: 8 << 20, MaxWidth: 4096, MaxHeight: 4096})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func encodeJPEG(t testing.TB, img image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// burst gives frames capture times every step from t0.
func burst(data [][]byte, t0 time.Time, step time.Duration) []Frame {
	out := make([]Frame, len(data))
	for i, d := range data {
		out[i] = Frame{Data: d, At: t0.Add(time.Duration(i) * step)}
	}
	return out
}

// pointing04 indexes the Pointing'04 images of one person by series, tilt and pan.
type p04key struct{ series, tilt, pan int }

func pointing04(t testing.TB, person string) map[p04key]string {
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
	out := map[p04key]string{}
	for _, r := range rows[1:] {
		if r[1] != person {
			continue
		}
		s, _ := strconv.Atoi(r[2])
		tl, _ := strconv.Atoi(r[4])
		pn, _ := strconv.Atoi(r[5])
		out[p04key{s, tl, pn}] = r[0]
	}
	if len(out) == 0 {
		t.Fatalf("pointing04: no images of person %s", person)
	}
	return out
}

// p04Burst builds a head-turn answer from real photos of a person at known yaws, phase by phase
// as the page captures it: looking at the camera (two frontal frames), then for each turn the
// head at 15, 30, 45, 30 and 15 degrees, the final centre step two frontal frames. Each image is
// used once (series 1 and 2, then the 15-degree tilts), so that no two frames are identical.
func p04Burst(t testing.TB, person string, steps []string) [][][]byte {
	t.Helper()
	idx := pointing04(t, person)
	used := map[string]bool{}
	take := func(pan int) []byte {
		for _, k := range []p04key{{1, 0, pan}, {2, 0, pan}, {1, -15, pan}, {2, -15, pan}, {1, 15, pan}, {2, 15, pan}} {
			if p, ok := idx[k]; ok && !used[p] {
				used[p] = true
				return readFile(t, "pointing04", p)
			}
		}
		t.Fatalf("pointing04 person %s: no unused image at pan %d", person, pan)
		return nil
	}
	// Frontal frames: tilt 0 of series 1 to start; the end takes the others.
	phases := [][][]byte{{take(0), take(0)}}
	for _, s := range steps {
		switch s {
		case StepLeft, StepRight:
			sign := -1 // the user's left is a negative pan in Pointing'04
			if s == StepRight {
				sign = 1
			}
			var ph [][]byte
			for _, a := range []int{15, 30, 45, 30, 15} {
				ph = append(ph, take(sign*a))
			}
			phases = append(phases, ph)
		case StepCenter:
			phases = append(phases, [][]byte{take(0), take(0)})
		}
	}
	return phases
}

// timed lays phases out as the page does: phase i runs from i*stepMS, its frames evenly spread.
func timed(phases [][][]byte, t0 time.Time, stepMS int) []Frame {
	var out []Frame
	for i, ph := range phases {
		for j, d := range ph {
			ms := i*stepMS + (j+1)*stepMS/(len(ph)+1)
			out = append(out, Frame{Data: d, At: t0.Add(time.Duration(ms) * time.Millisecond)})
		}
	}
	return out
}

// warp renders dst(x) = src(inv(x)) with bilinear sampling, mid-grey outside src.
func warp(src *image.RGBA, inv func(x, y float64) (float64, float64)) *image.RGBA {
	dst := image.NewRGBA(src.Rect)
	w, h := src.Rect.Dx(), src.Rect.Dy()
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			sx, sy := inv(float64(x), float64(y))
			o := dst.PixOffset(x, y)
			if sx < 0 || sy < 0 || sx > float64(w-1) || sy > float64(h-1) {
				copy(dst.Pix[o:o+4], []uint8{128, 128, 128, 255})
				continue
			}
			x0, y0 := int(sx), int(sy)
			x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
			fx, fy := sx-float64(x0), sy-float64(y0)
			for c := 0; c < 4; c++ {
				a := float64(src.Pix[src.PixOffset(x0, y0)+c])*(1-fx) + float64(src.Pix[src.PixOffset(x1, y0)+c])*fx
				b := float64(src.Pix[src.PixOffset(x0, y1)+c])*(1-fx) + float64(src.Pix[src.PixOffset(x1, y1)+c])*fx
				dst.Pix[o+c] = uint8(math.Round(a*(1-fy) + b*fy))
			}
		}
	}
	return dst
}

// photoTurn is the homography a printed photo undergoes when it is rotated by deg about a
// vertical axis through (cx, cy), seen by a camera at distance z (pixels), optionally sheared
// (x += shear*(y-eyeY)) first to push the nose sideways as a real turn would. It returns the
// inverse map for warp.
func photoTurn(cx, cy, eyeY, z, deg, shear float64) func(x, y float64) (float64, float64) {
	sn, cs := math.Sin(deg*math.Pi/180), math.Cos(deg*math.Pi/180)
	return func(x, y float64) (float64, float64) {
		u, v := x-cx, y-cy
		X := u / (cs - u*sn/z)
		Y := v * (1 + X*sn/z)
		return X - shear*(Y-(eyeY-cy)) + cx, Y + cy
	}
}

// tint lights the face region of img with a screen colour: each channel of the skin gains
// alpha*colour of itself (light reflected in proportion to the albedo), fading out over an
// ellipse around the face box, and the whole frame's brightness is scaled by gain (the camera's
// exposure).
func tint(img *image.RGBA, box image.Rectangle, col [3]float64, alpha, gain float64) *image.RGBA {
	out := image.NewRGBA(img.Rect)
	cx, cy := float64(box.Min.X+box.Max.X)/2, float64(box.Min.Y+box.Max.Y)/2
	rx, ry := 0.8*float64(box.Dx()), 0.95*float64(box.Dy())
	for y := img.Rect.Min.Y; y < img.Rect.Max.Y; y++ {
		for x := img.Rect.Min.X; x < img.Rect.Max.X; x++ {
			dx, dy := (float64(x)-cx)/rx, (float64(y)-cy)/ry
			w := math.Max(0, math.Min(1, 1.5*(1-math.Sqrt(dx*dx+dy*dy))))
			o := img.PixOffset(x, y)
			for c := 0; c < 3; c++ {
				v := float64(img.Pix[o+c]) * gain * (1 + alpha*w*col[c])
				out.Pix[o+c] = uint8(math.Min(255, math.Round(v)))
			}
			out.Pix[o+3] = 255
		}
	}
	return out
}

// flashBurst builds the frames of a FLASHING answer from one real photo: frame 0 untouched at
// t0, then FramesPerColor frames in the second half of each colour, the face lit by lit[k]
// (nil: not lit at all).
func flashBurst(t testing.TB, eng *face.Engine, photo []byte, ch Challenge, lit []string, t0 time.Time) []Frame {
	t.Helper()
	img := decode(t, photo)
	a, err := eng.Analyze(t.Context(), photo)
	if err != nil {
		t.Fatal(err)
	}
	frames := []Frame{{Data: encodeJPEG(t, img, 92), At: t0}}
	for k, s := range ch.Colors {
		for j := 0; j < ch.FramesPerColor; j++ {
			at := s.StartMS + s.DurationMS*(50+35*j)/100
			gain := 1 + 0.02*float64((k+j)%3-1) + 0.003*float64(len(frames)) // exposure wobble and drift
			var col [3]float64
			alpha := 0.0
			if lit != nil {
				col, err = parseColor(lit[k])
				if err != nil {
					t.Fatal(err)
				}
				alpha = 0.06 // 6 % more of the screen's colour on the skin
			}
			frames = append(frames, Frame{Data: encodeJPEG(t, tint(img, a.Face.Box, col, alpha, gain), 90-j), At: t0.Add(time.Duration(at) * time.Millisecond)})
		}
	}
	return frames
}

func colorNames(cs []ColorStep) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Color
	}
	return out
}

func globFiles(t testing.TB, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(testenv.Path(t, pattern))
	if err != nil || len(m) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	return m
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
