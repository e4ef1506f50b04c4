package liveness

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"math"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/visage-idp/visage/authn/face"
)

// DefaultThreshold is the fused probability of a real face at or above which PASSIVE passes.
// It was chosen from `idp eval liveness` on NUAA (print attacks) and the replay frames (screen
// attacks); README.md in this folder has the runs and the figures.
const DefaultThreshold = 0.5

// The two MiniFASNet models (Silent-Face-Anti-Spoofing, Apache-2.0) and the crop scale each was
// trained with. Both always run; their softmax outputs are averaged.
var passiveModels = [...]struct {
	file  string
	scale float64
}{
	{"antispoof/2.7_80x80_MiniFASNetV2.onnx", 2.7},
	{"antispoof/4_0_0_80x80_MiniFASNetV1SE.onnx", 4.0},
}

const (
	inputSide  = 80
	inputName  = "input"
	outputName = "output"
	realClass  = 1
)

// PassiveConfig configures a Passive checker.
type PassiveConfig struct {
	// ModelsDir is the folder `make models` fills (antispoof/*.onnx and
	// onnxruntime/libonnxruntime.so.1). Default $VISAGE_MODELS_DIR, else models/weights.
	ModelsDir string
	// Threshold is the fused real-face probability at or above which a frame is live. Default
	// DefaultThreshold.
	Threshold float64
	// Threads is the number of intra-op threads of each ONNX session. Default 1: the models are
	// tiny (about 3 ms a run) and requests run in parallel instead.
	Threads int
}

func (c PassiveConfig) withDefaults() PassiveConfig {
	if c.ModelsDir == "" {
		c.ModelsDir = os.Getenv("VISAGE_MODELS_DIR")
		if c.ModelsDir == "" {
			c.ModelsDir = filepath.Join("models", "weights")
		}
	}
	if c.Threshold <= 0 || c.Threshold >= 1 {
		c.Threshold = DefaultThreshold
	}
	if c.Threads <= 0 {
		c.Threads = 1
	}
	return c
}

// Passive runs the two MiniFASNet models on a face. It is safe for concurrent use: ONNX Runtime
// sessions allow concurrent Run calls, and every call has its own tensors.
type Passive struct {
	cfg      PassiveConfig
	sessions [len(passiveModels)]*ort.DynamicAdvancedSession

	mu       sync.RWMutex
	closed   bool
	inflight sync.WaitGroup
}

// NewPassive loads both models. The first call in a process initialises ONNX Runtime (see the
// package documentation).
func NewPassive(cfg PassiveConfig) (*Passive, error) {
	cfg = cfg.withDefaults()
	if err := initORT(cfg.ModelsDir); err != nil {
		return nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, newError(CodeModelUnavailable, ErrModel, fmt.Errorf("session options: %w", err))
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(cfg.Threads); err != nil {
		return nil, newError(CodeModelUnavailable, ErrModel, fmt.Errorf("session options: %w", err))
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, newError(CodeModelUnavailable, ErrModel, fmt.Errorf("session options: %w", err))
	}
	p := &Passive{cfg: cfg}
	for i, m := range passiveModels {
		path := filepath.Join(cfg.ModelsDir, m.file)
		s, err := ort.NewDynamicAdvancedSession(path, []string{inputName}, []string{outputName}, opts)
		if err != nil {
			p.destroy()
			return nil, newError(CodeModelUnavailable, ErrModel, fmt.Errorf("loading %s: %w (run `make models`)", path, err))
		}
		p.sessions[i] = s
	}
	return p, nil
}

// Threshold returns the effective threshold.
func (p *Passive) Threshold() float64 { return p.cfg.Threshold }

// Close waits for the checks in flight and frees the sessions. It is idempotent.
func (p *Passive) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.inflight.Wait()
	return p.destroy()
}

func (p *Passive) destroy() error {
	var errs []error
	for i, s := range p.sessions {
		if s != nil {
			if err := s.Destroy(); err != nil {
				errs = append(errs, fmt.Errorf("liveness: destroying session %d: %w", i, err))
			}
			p.sessions[i] = nil
		}
	}
	return errors.Join(errs...)
}

func (p *Passive) enter() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return newError("CLOSED", ErrClosed, nil)
	}
	p.inflight.Add(1)
	return nil
}

// Score returns the fused probability (0..1) that the face in box is a real face: both models'
// softmax probability of class 1 (real), averaged. img must be upright (EXIF applied, as
// face.Analysis.Image is) and box is the face box in img's coordinates (face.Face.Box).
func (p *Passive) Score(ctx context.Context, img image.Image, box image.Rectangle) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("liveness: passive: %w", err)
	}
	if err := p.enter(); err != nil {
		return 0, err
	}
	defer p.inflight.Done()
	// The two models run at the same time (each session single-threaded): on an idle machine
	// that halves the latency; under load it costs nothing more.
	var (
		real [len(passiveModels)]float64
		errs [len(passiveModels)]error
		wg   sync.WaitGroup
	)
	for i, m := range passiveModels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, err := Preprocess(img, box, m.scale)
			if err != nil {
				errs[i] = err
				return
			}
			probs, err := p.run(p.sessions[i], in)
			if err != nil {
				errs[i] = newError(CodeModelUnavailable, ErrModel, fmt.Errorf("%s: %w", filepath.Base(m.file), err))
				return
			}
			real[i] = probs[realClass]
		}()
	}
	wg.Wait()
	var sum float64
	for i := range passiveModels {
		if errs[i] != nil {
			return 0, errs[i]
		}
		sum += real[i]
	}
	return sum / float64(len(passiveModels)), nil
}

// Check runs Score and applies the threshold.
func (p *Passive) Check(ctx context.Context, img image.Image, box image.Rectangle) (Result, error) {
	s, err := p.Score(ctx, img, box)
	if err != nil {
		return Result{Method: MethodPassive}, err
	}
	return p.result(s), nil
}

func (p *Passive) result(s float64) Result {
	r := Result{Method: MethodPassive, Score: scoreOf(s), Live: s >= p.cfg.Threshold, Frames: 1}
	if !r.Live {
		r.warn(CodeFaceAttack, s, "the face looks like a photo, a screen or a mask (passive score %.2f, threshold %.2f)", s, p.cfg.Threshold)
	}
	return r
}

// CheckFrame analyses one JPEG or PNG with the face engine and checks its face. Bad images
// (no face, several faces, corrupt) give a Result with Live false and the face engine's
// warning code, not an error; the error is for failures of the system (models, context, a full
// engine queue). The analysis is returned in Result.Probe for the caller's face match.
func (p *Passive) CheckFrame(ctx context.Context, eng *face.Engine, data []byte) (Result, error) {
	a, err := eng.Analyze(ctx, data)
	if err != nil {
		if systemError(ctx, err) {
			return Result{Method: MethodPassive}, fmt.Errorf("liveness: passive: %w", err)
		}
		r := Result{Method: MethodPassive, Frames: 1}
		r.warn(face.Code(err), 0, "%s", faceMessage(err))
		return r, nil
	}
	r, err := p.Check(ctx, a.Image, a.Face.Box)
	if err != nil {
		return r, err
	}
	r.Probe = a
	return r, nil
}

// systemError separates failures of the service from failures of the image.
func systemError(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, face.ErrQueueFull) || errors.Is(err, face.ErrClosed) || errors.Is(err, face.ErrInternal) ||
		errors.Is(err, ErrModel) || errors.Is(err, ErrClosed)
}

func faceMessage(err error) string {
	switch {
	case errors.Is(err, face.ErrNoFace):
		return "no face was found in the frame"
	case errors.Is(err, face.ErrMultipleFaces):
		return "more than one face is in the frame"
	case errors.Is(err, face.ErrTooLarge):
		return "the frame is too large"
	case errors.Is(err, face.ErrUnsupportedFormat):
		return "the frame must be a JPEG or PNG"
	case errors.Is(err, face.ErrCorrupt):
		return "the frame could not be decoded"
	}
	return "the frame could not be analysed"
}

// scoreOf maps a probability to 0-100.
func scoreOf(p float64) int {
	if math.IsNaN(p) {
		return 0
	}
	return int(math.Round(100 * math.Max(0, math.Min(1, p))))
}

func (p *Passive) run(s *ort.DynamicAdvancedSession, in []float32) ([3]float64, error) {
	var out [3]float64
	x, err := ort.NewTensor(ort.NewShape(1, 3, inputSide, inputSide), in)
	if err != nil {
		return out, fmt.Errorf("input tensor: %w", err)
	}
	defer x.Destroy()
	y, err := ort.NewEmptyTensor[float32](ort.NewShape(1, 3))
	if err != nil {
		return out, fmt.Errorf("output tensor: %w", err)
	}
	defer y.Destroy()
	if err := s.Run([]ort.Value{x}, []ort.Value{y}); err != nil {
		return out, fmt.Errorf("run: %w", err)
	}
	return softmax3(y.GetData()), nil
}

func softmax3(z []float32) [3]float64 {
	var out [3]float64
	m := math.Inf(-1)
	for _, v := range z[:3] {
		m = math.Max(m, float64(v))
	}
	var sum float64
	for i, v := range z[:3] {
		out[i] = math.Exp(float64(v) - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// CropBox returns the region MiniFASNet sees for a face box at a scale, exactly as the upstream
// CropImage._get_new_box computes it: the box scaled about its centre (the scale reduced so that
// the region fits in the image), shifted back inside the image, truncated to integers. The
// returned rectangle includes its Max row and column's predecessor as upstream slices
// [left:right+1], i.e. it is image.Rect(left, top, right+1, bottom+1).
func CropBox(bounds, box image.Rectangle, scale float64) image.Rectangle {
	srcW, srcH := float64(bounds.Dx()), float64(bounds.Dy())
	x, y := float64(box.Min.X-bounds.Min.X), float64(box.Min.Y-bounds.Min.Y)
	bw, bh := float64(box.Dx()), float64(box.Dy())
	scale = math.Min((srcH-1)/bh, math.Min((srcW-1)/bw, scale))
	nw, nh := bw*scale, bh*scale
	cx, cy := bw/2+x, bh/2+y
	l, t, r, b := cx-nw/2, cy-nh/2, cx+nw/2, cy+nh/2
	if l < 0 {
		r -= l
		l = 0
	}
	if t < 0 {
		b -= t
		t = 0
	}
	if r > srcW-1 {
		l -= r - srcW + 1
		r = srcW - 1
	}
	if b > srcH-1 {
		t -= b - srcH + 1
		b = srcH - 1
	}
	// Python's int() truncates towards zero.
	li, ti, ri, bi := int(l), int(t), int(r), int(b)
	return image.Rect(li, ti, ri+1, bi+1).Add(bounds.Min).Intersect(bounds)
}

// Preprocess builds one model input: the CropBox region resized to 80x80 as OpenCV's
// INTER_LINEAR does (half-pixel centres, results rounded to 8 bits), as float32 BGR 0..255 in
// channel-first order ([3][80][80]), without normalisation.
func Preprocess(img image.Image, box image.Rectangle, scale float64) ([]float32, error) {
	b := img.Bounds()
	if box.Dx() < 2 || box.Dy() < 2 || !box.Overlaps(b) {
		return nil, newError(face.CodeInvalidArgument, ErrInvalidInput, fmt.Errorf("face box %v not inside image %v", box, b))
	}
	crop := CropBox(b, box, scale)
	src := asRGBA(img, crop)
	sw, sh := crop.Dx(), crop.Dy()
	out := make([]float32, 3*inputSide*inputSide)
	xs := linearTaps(sw, inputSide)
	ys := linearTaps(sh, inputSide)
	plane := inputSide * inputSide
	for dy, ty := range ys {
		r0 := src.Pix[src.PixOffset(crop.Min.X, crop.Min.Y+ty.i0):]
		r1 := src.Pix[src.PixOffset(crop.Min.X, crop.Min.Y+ty.i1):]
		for dx, tx := range xs {
			o0, o1 := 4*tx.i0, 4*tx.i1
			for c := 0; c < 3; c++ {
				top := float64(r0[o0+c])*(1-tx.f) + float64(r0[o1+c])*tx.f
				bot := float64(r1[o0+c])*(1-tx.f) + float64(r1[o1+c])*tx.f
				v := math.Floor(top*(1-ty.f) + bot*ty.f + 0.5)
				// RGBA channel c goes to BGR plane 2-c.
				out[(2-c)*plane+dy*inputSide+dx] = float32(v)
			}
		}
	}
	return out, nil
}

type tap struct {
	i0, i1 int
	f      float64
}

// linearTaps computes OpenCV's INTER_LINEAR source positions for resizing n samples to m.
func linearTaps(n, m int) []tap {
	scale := float64(n) / float64(m)
	taps := make([]tap, m)
	for d := range taps {
		f := (float64(d)+0.5)*scale - 0.5
		s := int(math.Floor(f))
		f -= float64(s)
		if s < 0 {
			s, f = 0, 0
		}
		if s >= n-1 {
			s, f = n-1, 0
		}
		i1 := s + 1
		if i1 > n-1 {
			i1 = n - 1
		}
		taps[d] = tap{i0: s, i1: i1, f: f}
	}
	return taps
}

// asRGBA returns img itself if it is an *image.RGBA, else a copy of region r as one (with the
// same coordinates).
func asRGBA(img image.Image, r image.Rectangle) *image.RGBA {
	if m, ok := img.(*image.RGBA); ok {
		return m
	}
	m := image.NewRGBA(r)
	draw.Draw(m, r, img, r.Min, draw.Src)
	return m
}
