package face

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/visage-idp/visage/internal/ortenv"
)

// The ONNX matcher: an ArcFace-class recognizer (MobileFaceNet, 512-d) run through ONNX Runtime
// on a 112x112 chip aligned from dlib's five landmarks. Measurements behind every constant here
// are in README.md ("The ONNX matcher").
const (
	fileArcFace      = "arcface/fr_feature.onnx"
	arcfaceSide      = 112
	arcfaceDim       = 512
	arcfaceLabel     = "arcface-mbf-512"
	arcfaceInputName = "input"
)

// alignTemplate is where dlib's five landmarks (in dlib's order: the outer and inner corner of
// the eye on the image's right, the outer and inner corner of the eye on the image's left, the
// base of the nose) go in the 112x112 chip. It was fitted, not copied: ArcFace's reference
// points are eye centres, nose tip and mouth corners, which dlib does not give. Each face of LFW
// View 1's 4,992 images was mapped by the similarity that puts its eye centres (the mean of each
// eye's two corners) on ArcFace's (38.29, 51.70) and (73.53, 51.50); every point of the template
// is the median of where that face's landmark landed (means differ by < 0.05 px). The fit is
// TestCalibrateONNX (VISAGE_CALIBRATE=1); the measurements are in README.md.
var alignTemplate = [5][2]float64{
	{80.45, 51.29}, {66.61, 51.71}, {31.35, 51.55}, {45.24, 51.84}, {56.05, 78.54},
}

// embedder runs the recognizer. ONNX Runtime sessions allow concurrent Run calls; every call
// has its own tensors.
type embedder struct {
	sess    *ort.DynamicAdvancedSession
	out     string
	version string
}

// newEmbedder loads the model from modelsDir with one intra-op thread (requests run in
// parallel instead).
func newEmbedder(modelsDir string) (*embedder, error) {
	if err := ortenv.Init(modelsDir); err != nil {
		return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("onnx matcher: %w", err))
	}
	path := filepath.Join(modelsDir, fileArcFace)
	sum, err := fileSum(path)
	if err != nil {
		return nil, err
	}
	_, outs, err := ort.GetInputOutputInfo(path)
	if err != nil || len(outs) != 1 {
		return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("onnx matcher: reading %s: %v (run `make models`)", path, err))
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("onnx matcher: session options: %w", err))
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("onnx matcher: session options: %w", err))
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("onnx matcher: session options: %w", err))
	}
	s, err := ort.NewDynamicAdvancedSession(path, []string{arcfaceInputName}, []string{outs[0].Name}, opts)
	if err != nil {
		return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("onnx matcher: loading %s: %w", path, err))
	}
	return &embedder{sess: s, out: outs[0].Name, version: arcfaceLabel + ":" + sum[:16]}, nil
}

func (m *embedder) close() error {
	if m == nil || m.sess == nil {
		return nil
	}
	err := m.sess.Destroy()
	m.sess = nil
	return err
}

// embed aligns the face with landmarks lm (full-image coordinates) and returns its
// L2-normalised embedding.
func (m *embedder) embed(img *image.RGBA, lm [5][2]float64) ([]float32, error) {
	return m.run(alignChip(img, lm[:], alignTemplate[:]))
}

// normalise returns a unit-length copy of v (v itself is left alone).
func normalise(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if s == 0 {
		return out
	}
	n := 1 / math.Sqrt(s)
	for i, x := range v {
		out[i] = float32(float64(x) * n)
	}
	return out
}

// similarity2D is x' = a*x - b*y + tx, y' = b*x + a*y + ty.
type similarity2D struct{ a, b, tx, ty float64 }

// fitSimilarity returns the least-squares similarity transform taking src to dst (Umeyama's
// closed form for 2-D).
func fitSimilarity(src, dst [][2]float64) similarity2D {
	n := float64(len(src))
	var sx, sy, dx, dy float64
	for i := range src {
		sx += src[i][0]
		sy += src[i][1]
		dx += dst[i][0]
		dy += dst[i][1]
	}
	sx, sy, dx, dy = sx/n, sy/n, dx/n, dy/n
	var num1, num2, den float64
	for i := range src {
		px, py := src[i][0]-sx, src[i][1]-sy
		qx, qy := dst[i][0]-dx, dst[i][1]-dy
		num1 += px*qx + py*qy
		num2 += px*qy - py*qx
		den += px*px + py*py
	}
	if den == 0 {
		return similarity2D{a: 1, tx: dx - sx, ty: dy - sy}
	}
	a, b := num1/den, num2/den
	return similarity2D{a: a, b: b, tx: dx - (a*sx - b*sy), ty: dy - (b*sx + a*sy)}
}

func (t similarity2D) apply(x, y float64) (float64, float64) {
	return t.a*x - t.b*y + t.tx, t.b*x + t.a*y + t.ty
}

func (t similarity2D) inverse() similarity2D {
	d := t.a*t.a + t.b*t.b
	if d == 0 {
		return similarity2D{a: 1}
	}
	ia, ib := t.a/d, -t.b/d
	return similarity2D{a: ia, b: ib, tx: -(ia*t.tx - ib*t.ty), ty: -(ib*t.tx + ia*t.ty)}
}

// alignChip warps img so that lm lands on tmpl in a 112x112 chip (bilinear; outside the image
// is black) and returns it as the model's input: [3][112][112] BGR, (p-127.5)/128.
func alignChip(img *image.RGBA, lm, tmpl [][2]float64) []float32 {
	inv := fitSimilarity(lm, tmpl).inverse()
	const plane = arcfaceSide * arcfaceSide
	out := make([]float32, 3*plane)
	b := img.Rect
	for v := 0; v < arcfaceSide; v++ {
		for u := 0; u < arcfaceSide; u++ {
			x, y := inv.apply(float64(u), float64(v))
			var px [3]float64
			x0, y0 := int(math.Floor(x)), int(math.Floor(y))
			fx, fy := x-float64(x0), y-float64(y0)
			for k := 0; k < 4; k++ {
				xx, yy := x0+k%2, y0+k/2
				if xx < b.Min.X || yy < b.Min.Y || xx >= b.Max.X || yy >= b.Max.Y {
					continue
				}
				w := (1 - fx) * (1 - fy)
				switch k {
				case 1:
					w = fx * (1 - fy)
				case 2:
					w = (1 - fx) * fy
				case 3:
					w = fx * fy
				}
				p := img.Pix[img.PixOffset(xx, yy):]
				px[0] += w * float64(p[0])
				px[1] += w * float64(p[1])
				px[2] += w * float64(p[2])
			}
			o := v*arcfaceSide + u
			for c := 0; c < 3; c++ {
				// RGBA channel c goes to BGR plane 2-c.
				out[(2-c)*plane+o] = float32((px[c] - 127.5) / 128)
			}
		}
	}
	return out
}

// CosineDistance is 1 - cos(a, b) for two unit vectors (0 same direction, 2 opposite); +Inf if
// the lengths differ or either is empty.
func CosineDistance(a, b []float32) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return math.Inf(1)
	}
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return 1 - s
}

// fileSum is the hex SHA-256 of a model file.
func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", newError(CodeInternal, ErrInternal, fmt.Errorf("model file: %w (run `make models`)", err))
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", newError(CodeInternal, ErrInternal, fmt.Errorf("reading model %s: %w", path, err))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// run embeds a prepared chip.
func (m *embedder) run(in []float32) ([]float32, error) {
	x, err := ort.NewTensor(ort.NewShape(1, 3, arcfaceSide, arcfaceSide), in)
	if err != nil {
		return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("onnx matcher: input tensor: %w", err))
	}
	defer x.Destroy()
	y, err := ort.NewEmptyTensor[float32](ort.NewShape(1, arcfaceDim))
	if err != nil {
		return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("onnx matcher: output tensor: %w", err))
	}
	defer y.Destroy()
	if err := m.sess.Run([]ort.Value{x}, []ort.Value{y}); err != nil {
		return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("onnx matcher: run: %w", err))
	}
	return normalise(y.GetData()), nil
}
