package face

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/visage-idp/visage/internal/testenv"
)

// The engine is expensive (about 0.4 s and 36 MB per recognizer), so the tests of this package
// share one, made on first use and closed by TestMain.
var (
	sharedOnce   sync.Once
	sharedEngine *Engine
	sharedErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedEngine != nil {
		sharedEngine.Close()
	}
	os.Exit(code)
}

func testEngine(t testing.TB) *Engine {
	t.Helper()
	models := testenv.ModelsDir(t)
	sharedOnce.Do(func() {
		sharedEngine, sharedErr = NewEngine(Config{ModelsDir: models, Workers: 2})
	})
	if sharedErr != nil {
		t.Fatalf("NewEngine: %v", sharedErr)
	}
	return sharedEngine
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lfw(t testing.TB, name string, n int) string {
	t.Helper()
	return testenv.Path(t, "lfw-view1", "images", name, name+"_"+pad4(n)+".jpg")
}

func pad4(n int) string {
	s := []byte("0000")
	for i := 3; i >= 0 && n > 0; i-- {
		s[i] = byte('0' + n%10)
		n /= 10
	}
	return string(s)
}

func decodeFile(t testing.TB, path string) *image.RGBA {
	t.Helper()
	img, err := Decode(readFile(t, path), Limits{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

func encJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encPNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// paste draws src into dst with its top-left corner at p.
func paste(dst *image.RGBA, src *image.RGBA, p image.Point) {
	for y := 0; y < src.Rect.Dy(); y++ {
		copy(dst.Pix[dst.PixOffset(p.X, p.Y+y):dst.PixOffset(p.X+src.Rect.Dx(), p.Y+y)], src.Pix[y*src.Stride:y*src.Stride+4*src.Rect.Dx()])
	}
}

// landscape makes a 640x480 picture with no face: a sky gradient, a sun, and textured hills.
func landscape(seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 7))
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := 0; y < 480; y++ {
		hill := 300 + 40*math.Sin(float64(y)/50)
		for x := 0; x < 640; x++ {
			ground := 300 + 50*math.Sin(float64(x)/90) + 20*math.Sin(float64(x)/23)
			var c color.RGBA
			switch {
			case float64(y) > ground:
				n := uint8(rng.IntN(40))
				c = color.RGBA{R: 40 + n, G: 110 + n + uint8(y/12), B: 30 + n/2, A: 255}
			case math.Hypot(float64(x-500), float64(y-90)) < 40:
				c = color.RGBA{R: 255, G: 230, B: 120, A: 255}
			default:
				c = color.RGBA{R: uint8(90 + y/5), G: uint8(150 + y/6), B: 235, A: 255}
			}
			_ = hill
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// nuaaBonafide returns n 640x480 live webcam selfies from NUAA (every other subject folder).
func nuaaBonafide(t testing.TB, n int) []string {
	t.Helper()
	files, err := filepath.Glob(testenv.Path(t, "nuaa-train", "bonafide", "*", "*.jpg"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no NUAA bonafide images: %v", err)
	}
	step := max(1, len(files)/n)
	var out []string
	for i := 0; i < len(files) && len(out) < n; i += step {
		out = append(out, files[i])
	}
	return out
}

// lfwPair is one line of an LFW pairs file (faceeval has the full reader; it imports this
// package, so the tests here read the format themselves).
type lfwPair struct {
	A, B    string
	Genuine bool
}

func readLFWPairs(t testing.TB, file string) []lfwPair {
	t.Helper()
	data := readFile(t, testenv.Path(t, "lfw-view1", file))
	var out []lfwPair
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		num := func(s string) int {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("%s:%d: %v", file, i+1, err)
			}
			return n
		}
		switch {
		case i == 0 || len(f) == 0:
		case len(f) == 3:
			out = append(out, lfwPair{lfw(t, f[0], num(f[1])), lfw(t, f[0], num(f[2])), true})
		case len(f) == 4:
			out = append(out, lfwPair{lfw(t, f[0], num(f[1])), lfw(t, f[2], num(f[3])), false})
		default:
			t.Fatalf("%s:%d: %d fields", file, i+1, len(f))
		}
	}
	return out
}

// mjpegFrames splits a Motion-JPEG stream (concatenated JPEGs) into its frames.
func mjpegFrames(data []byte) [][]byte {
	var frames [][]byte
	soi := []byte{0xFF, 0xD8, 0xFF}
	for {
		i := bytes.Index(data, soi)
		if i < 0 {
			return frames
		}
		j := bytes.Index(data[i+3:], soi)
		if j < 0 {
			return append(frames, data[i:])
		}
		frames = append(frames, data[i:i+3+j])
		data = data[i+3+j:]
	}
}
