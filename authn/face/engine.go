package face

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	goface "github.com/Kagami/go-face"
)

// Descriptor is dlib's 128-dimensional face descriptor.
type Descriptor [128]float32

// Face is one detected face, in the coordinates of the decoded, EXIF-oriented image.
type Face struct {
	Box        image.Rectangle
	Landmarks  [5]image.Point // dlib 5-point model: 0-1 corners of the eye on the image's right, 2-3 of the eye on the image's left, 4 base of the nose
	Descriptor Descriptor
	// Yaw and Roll in degrees, estimated from the 5 landmarks. Yaw > 0: the face is turned
	// towards the image's left (the sign of Pointing'04's pan); Roll > 0: the eye line goes down
	// towards the image's right (clockwise tilt as seen in the image).
	Yaw, Roll float64
	// Embedding is the ONNX matcher's L2-normalised 512-d embedding; nil when the engine runs
	// dlib only (Config.Matcher "dlib").
	Embedding []float32

	lm [5][2]float64 // the landmarks unrounded
}

// Measures are the quality values measured on the dominant face; each warning repeats its own.
type Measures struct {
	InterOcular float64 // px between the eye centres in the decoded image
	Brightness  float64 // mean luma 0-255 of the face box
	Sharpness   float64 // variance of the Laplacian of the face box resampled to 128x128 grey
	Yaw, Roll   float64 // degrees
	CutOff      float64 // fraction of the estimated face region outside the frame
}

// Warning is one quality or detection note with the value that caused it.
type Warning struct {
	Code      string  `json:"code"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Blocking  bool    `json:"blocking"`
	Message   string  `json:"message"`
}

// Analysis is the result of analysing one image.
type Analysis struct {
	Image    image.Image // decoded, EXIF-oriented full image (*image.RGBA)
	Face     Face        // the dominant face
	Warnings []Warning   // quality and background-face notes, each with its measured value
	Measures Measures
	Others   []image.Rectangle // the other faces detected, largest first
	Detector string            // which pass found the face: "hog", "hog-full", "cnn"
	Refined  bool              // the descriptor was computed on a full-resolution crop
}

// Usable reports whether the analysis allows matching: no blocking warning.
func (a *Analysis) Usable() bool {
	return a != nil && a.Err() == nil
}

// Err returns nil if the analysis is usable, else an *Error whose Code is the first blocking
// warning's code and which wraps ErrMultipleFaces or ErrQuality.
func (a *Analysis) Err() error {
	if a == nil {
		return newError(CodeNoFaceDetected, ErrNoFace, nil)
	}
	for _, w := range a.Warnings {
		if !w.Blocking {
			continue
		}
		sentinel := ErrQuality
		if w.Code == CodeMultipleFaces {
			sentinel = ErrMultipleFaces
		}
		return newError(w.Code, sentinel, fmt.Errorf("%s", w.Message))
	}
	return nil
}

// AnalyzeOptions changes what Analyze treats as an error.
type AnalyzeOptions struct {
	// AllowMultipleFaces returns the analysis of the dominant face with a blocking
	// MULTIPLE_FACES warning instead of failing with ErrMultipleFaces (for evaluation on
	// photographs that are not selfies).
	AllowMultipleFaces bool
	// Jitter describes the face as enrolment does under the dlib matcher: the mean descriptor
	// of Config.EnrolJitter jittered copies of the face chip (about EnrolJitter times slower).
	// The ONNX matcher ignores it.
	Jitter bool
	// SkipEmbedding leaves Face.Embedding nil (frames that are only checked, never matched).
	SkipEmbedding bool
}

// Engine analyses, describes and matches faces with a pool of dlib recognizers. It is safe for
// concurrent use; it holds no global state.
type Engine struct {
	cfg          Config
	modelVersion string    // dlib's descriptor space
	onnx         *embedder // nil under MatcherDlib
	pool         chan *goface.Recognizer
	recs         []*goface.Recognizer
	slots        chan struct{} // Workers + QueueSize admission tokens
	modelDir     string

	jitterPool chan *goface.Recognizer // created on demand, at most Workers
	jitterMu   sync.Mutex
	jitterRecs []*goface.Recognizer

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

// Model files under Config.ModelsDir.
const (
	modelSubdir       = "dlib"
	fileShape5        = "shape_predictor_5_face_landmarks.dat"
	fileResNet        = "dlib_face_recognition_resnet_model_v1.dat"
	fileMMOD          = "mmod_human_face_detector.dat"
	modelVersionLabel = "dlib-resnet-v1"
)

// NewEngine loads cfg.Workers recognizers (each loads the three dlib models, ~0.4 s and ~36 MB).
func NewEngine(cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if cfg.Matcher != MatcherONNX && cfg.Matcher != MatcherDlib {
		return nil, newError(CodeInvalidArgument, ErrInvalidArgument, fmt.Errorf("matcher %q: want %q or %q", cfg.Matcher, MatcherONNX, MatcherDlib))
	}
	dir := filepath.Join(cfg.ModelsDir, modelSubdir)
	version, err := modelVersion(dir)
	if err != nil {
		return nil, err
	}
	var onnx *embedder
	if cfg.Matcher == MatcherONNX {
		if onnx, err = newEmbedder(cfg.ModelsDir); err != nil {
			return nil, err
		}
	}
	e := &Engine{
		cfg:          cfg,
		modelVersion: version,
		pool:         make(chan *goface.Recognizer, cfg.Workers),
		jitterPool:   make(chan *goface.Recognizer, cfg.Workers),
		modelDir:     dir,
		onnx:         onnx,
		slots:        make(chan struct{}, cfg.Workers+cfg.QueueSize),
	}
	for i := 0; i < cfg.Workers; i++ {
		rec, err := goface.NewRecognizer(dir)
		if err != nil {
			for _, r := range e.recs {
				r.Close()
			}
			_ = onnx.close()
			return nil, fmt.Errorf("face: loading dlib models from %s: %w", dir, err)
		}
		e.recs = append(e.recs, rec)
		e.pool <- rec
	}
	return e, nil
}

// modelVersion names the descriptor space: the ResNet and the landmark model both shape it.
func modelVersion(dir string) (string, error) {
	h := sha256.New()
	for _, name := range []string{fileResNet, fileShape5, fileMMOD} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("face: model file: %w (run `make models`)", err)
		}
		if name != fileMMOD {
			_, err = io.Copy(h, f)
		}
		f.Close()
		if err != nil {
			return "", fmt.Errorf("face: reading model %s: %w", name, err)
		}
	}
	return modelVersionLabel + "+sp5:" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Config returns the engine's effective configuration (defaults filled in).
func (e *Engine) Config() Config { return e.cfg }

// ModelVersion identifies the configured matcher's descriptor space, which new templates
// carry: dlib ResNet v1 and 5-point landmarks by the SHA-256 of their weights, or the ONNX
// model by the SHA-256 of its file. Templates of another version cannot be matched, except
// dlib templates under the ONNX matcher (see CanMatch).
func (e *Engine) ModelVersion() string {
	if e.onnx != nil {
		return e.onnx.version
	}
	return e.modelVersion
}

// DlibVersion identifies dlib's descriptor space (Face.Descriptor), which every analysis
// computes whatever the matcher.
func (e *Engine) DlibVersion() string { return e.modelVersion }

// Matcher returns the configured matcher, MatcherONNX or MatcherDlib.
func (e *Engine) Matcher() string { return e.cfg.Matcher }

// Close waits for the requests in flight, then frees the recognizers. Later calls fail with
// ErrClosed. Close is idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.inflight.Wait()
	for _, r := range e.recs {
		r.Close()
	}
	e.recs = nil
	if err := e.onnx.close(); err != nil {
		return fmt.Errorf("face: closing the onnx matcher: %w", err)
	}
	e.jitterMu.Lock()
	for _, r := range e.jitterRecs {
		r.Close()
	}
	e.jitterRecs = nil
	e.jitterMu.Unlock()
	return nil
}

// enter admits a request or fails at once with ErrQueueFull or ErrClosed.
// Closed reports whether Close was called (the models are unloaded).
func (e *Engine) Closed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

func (e *Engine) enter() (func(), error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, newError(CodeEngineClosed, ErrClosed, nil)
	}
	e.inflight.Add(1)
	e.mu.Unlock()
	select {
	case e.slots <- struct{}{}:
		return func() { <-e.slots; e.inflight.Done() }, nil
	default:
		e.inflight.Done()
		return nil, newError(CodeBusy, ErrQueueFull, fmt.Errorf("%d requests in progress or waiting", cap(e.slots)))
	}
}

// acquire waits for a free recognizer or for ctx.
func (e *Engine) acquire(ctx context.Context) (*goface.Recognizer, error) {
	select {
	case r := <-e.pool:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("face: waiting for a recognizer: %w", ctx.Err())
	}
}

// Analyze decodes one JPEG or PNG image, finds its dominant face, checks its quality and
// computes its descriptor. Errors wrap ErrTooLarge, ErrCorrupt, ErrUnsupportedFormat, ErrNoFace,
// ErrMultipleFaces, ErrQueueFull, ErrClosed or the context's error. A returned Analysis may still
// be unusable for matching: check Usable.
func (e *Engine) Analyze(ctx context.Context, img []byte) (*Analysis, error) {
	return e.AnalyzeWith(ctx, img, AnalyzeOptions{})
}

// AnalyzeWith is Analyze with options.
func (e *Engine) AnalyzeWith(ctx context.Context, data []byte, opts AnalyzeOptions) (*Analysis, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("face: analyze: %w", err)
	}
	// Reject oversized or malformed input from its header before queueing.
	p, err := probe(data, e.cfg.limits())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.AnalyzeTimeout)
	defer cancel()
	leave, err := e.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	a, img, err := e.analyzePooled(ctx, data, p, opts)
	if err != nil || !opts.Jitter || e.cfg.EnrolJitter <= 0 || e.onnx != nil {
		return a, err
	}
	if err := e.jitter(ctx, img, a); err != nil {
		return nil, err
	}
	return a, nil
}

// analyzePooled decodes and analyses on a recognizer from the pool.
func (e *Engine) analyzePooled(ctx context.Context, data []byte, p probed, opts AnalyzeOptions) (*Analysis, *image.RGBA, error) {
	rec, err := e.acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer func() { e.pool <- rec }()
	img, err := decodeProbed(data, p)
	if err != nil {
		return nil, nil, err
	}
	a, err := e.analyzeImage(ctx, rec, img, opts)
	return a, img, err
}

// acquireJitter returns a jittering recognizer, creating one if fewer than Workers exist.
func (e *Engine) acquireJitter(ctx context.Context) (*goface.Recognizer, error) {
	select {
	case r := <-e.jitterPool:
		return r, nil
	default:
	}
	e.jitterMu.Lock()
	if len(e.jitterRecs) < e.cfg.Workers {
		r, err := goface.NewRecognizerWithConfig(e.modelDir, 150, 0.25, e.cfg.EnrolJitter)
		if err != nil {
			e.jitterMu.Unlock()
			return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("loading the jittering recognizer: %w", err))
		}
		e.jitterRecs = append(e.jitterRecs, r)
		e.jitterMu.Unlock()
		return r, nil
	}
	e.jitterMu.Unlock()
	select {
	case r := <-e.jitterPool:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("face: waiting for a jittering recognizer: %w", ctx.Err())
	}
}

// jitter replaces the analysis's descriptor by the jittered one, computed on a crop around the
// face (so that it is the same face) at the resolution it was detected at.
func (e *Engine) jitter(ctx context.Context, img *image.RGBA, a *Analysis) error {
	r, err := e.acquireJitter(ctx)
	if err != nil {
		return err
	}
	defer func() { e.jitterPool <- r }()
	b := a.Face.Box
	crop := image.Rect(b.Min.X-b.Dx(), b.Min.Y-b.Dy(), b.Max.X+b.Dx(), b.Max.Y+b.Dy()).Intersect(img.Rect)
	// Same scale rule as the first pass: faces narrower than ~100 px are enlarged (as small
	// images are), wide ones reduced to ~150 px.
	s := 150 / float64(max(1, b.Dx()))
	if s > 1 {
		s = math.Min(s, e.cfg.Detect.UpsampleFactor)
	}
	sub := resize(img, crop, max(1, int(math.Round(float64(crop.Dx())*s))), max(1, int(math.Round(float64(crop.Dy())*s))))
	dets, err := onFreshThread(func() ([]detection, error) {
		dets, err := e.recognize(r, sub, 1, false, "hog")
		if err == nil && len(dets) == 0 {
			dets, err = e.recognize(r, sub, 1, true, "cnn")
		}
		return dets, err
	})
	if err != nil {
		return err
	}
	local := image.Rect(int(float64(b.Min.X-crop.Min.X)*s), int(float64(b.Min.Y-crop.Min.Y)*s), int(float64(b.Max.X-crop.Min.X)*s), int(float64(b.Max.Y-crop.Min.Y)*s))
	best, bestIoU := -1, 0.3
	for i, d := range dets {
		if v := iou(d.box, local); v > bestIoU {
			best, bestIoU = i, v
		}
	}
	if best < 0 {
		return nil // keep the plain descriptor
	}
	a.Face.Descriptor = dets[best].desc
	return nil
}

// detection is one face found by dlib, mapped back to the full image.
type detection struct {
	box      image.Rectangle
	lm       [5][2]float64
	desc     Descriptor
	workW    int // width of the box in the working copy
	scale    float64
	detector string
}

func (d detection) width() int { return d.box.Dx() }

// recognize runs dlib on img scaled by s (HOG, or the CNN detector if cnn) and maps the faces
// back to img's coordinates.
func (e *Engine) recognize(rec *goface.Recognizer, img *image.RGBA, s float64, cnn bool, label string) ([]detection, error) {
	work := img
	if math.Abs(s-1) > 1e-3 {
		work = scaleRGBA(img, s)
	}
	sx := float64(work.Rect.Dx()) / float64(img.Rect.Dx())
	sy := float64(work.Rect.Dy()) / float64(img.Rect.Dy())
	jpg, err := encodeJPEG(work, e.cfg.Detect.JPEGQuality)
	if err != nil {
		return nil, err
	}
	var faces []goface.Face
	if cnn {
		faces, err = rec.RecognizeCNN(jpg)
	} else {
		faces, err = rec.Recognize(jpg)
	}
	if err != nil {
		return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("dlib on %dx%d working copy: %w", work.Rect.Dx(), work.Rect.Dy(), err))
	}
	out := make([]detection, 0, len(faces))
	for _, f := range faces {
		if len(f.Shapes) != 5 {
			return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("dlib returned %d landmarks, want 5", len(f.Shapes)))
		}
		d := detection{
			desc:     Descriptor(f.Descriptor),
			workW:    f.Rectangle.Dx(),
			scale:    sx,
			detector: label,
			box: image.Rect(
				int(math.Round(float64(f.Rectangle.Min.X)/sx)), int(math.Round(float64(f.Rectangle.Min.Y)/sy)),
				int(math.Round(float64(f.Rectangle.Max.X)/sx)), int(math.Round(float64(f.Rectangle.Max.Y)/sy))),
		}
		for i, p := range f.Shapes {
			// dlib's pixel centres: x_full = (x_work + 0.5)/s - 0.5
			d.lm[i] = [2]float64{(float64(p.X)+0.5)/sx - 0.5, (float64(p.Y)+0.5)/sy - 0.5}
		}
		out = append(out, d)
	}
	return out, nil
}

// detectAll runs the cascade: HOG on the working copy; HOG on a larger copy if the working copy
// was scaled down; the CNN detector on a small copy; it stops at the first pass that finds a face.
func (e *Engine) detectAll(ctx context.Context, rec *goface.Recognizer, img *image.RGBA) ([]detection, error) {
	dc := e.cfg.Detect
	long := max(img.Rect.Dx(), img.Rect.Dy())
	s1 := 1.0
	switch {
	case long > dc.WorkingMaxSide:
		s1 = float64(dc.WorkingMaxSide) / float64(long)
	case long < dc.UpsampleBelow:
		s1 = dc.UpsampleFactor
	}
	dets, err := e.recognize(rec, img, s1, false, "hog")
	if err != nil {
		return nil, err
	}
	if len(dets) > 0 {
		return e.lookForLargerFace(ctx, rec, img, dets)
	}
	if s1 < 1 {
		if s2 := math.Min(1, float64(dc.SecondPassMaxSide)/float64(long)); s2 > s1*1.2 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("face: analyze: %w", err)
			}
			dets, err = e.recognize(rec, img, s2, false, "hog-full")
			if err != nil {
				return nil, err
			}
			if len(dets) > 0 {
				return e.lookForLargerFace(ctx, rec, img, dets)
			}
		}
	}
	if dc.DisableCNN {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("face: analyze: %w", err)
	}
	return e.recognizeCNN(rec, img)
}

// recognizeCNN runs the CNN detector on a copy whose longer side is at most CNNMaxSide.
func (e *Engine) recognizeCNN(rec *goface.Recognizer, img *image.RGBA) ([]detection, error) {
	long := max(img.Rect.Dx(), img.Rect.Dy())
	s := math.Min(1, float64(e.cfg.Detect.CNNMaxSide)/float64(long))
	return e.recognize(rec, img, s, true, "cnn")
}

// lookForLargerFace handles HOG finding only faces too small to use (inter-ocular distance
// below the FACE_TOO_SMALL threshold): the subject may be a face HOG missed (turned, occluded),
// so the CNN detector looks too and its faces that HOG did not find are added.
func (e *Engine) lookForLargerFace(ctx context.Context, rec *goface.Recognizer, img *image.RGBA, dets []detection) ([]detection, error) {
	minIOD := e.cfg.Quality.MinInterOcular
	if e.cfg.Detect.DisableCNN || minIOD <= 0 {
		return dets, nil
	}
	for _, d := range dets {
		if _, _, iod := pose(d.lm); iod >= minIOD {
			return dets, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("face: analyze: %w", err)
	}
	more, err := e.recognizeCNN(rec, img)
	if err != nil {
		return nil, err
	}
	for _, m := range more {
		dup := false
		for _, d := range dets {
			dup = dup || iou(m.box, d.box) > 0.3
		}
		if !dup {
			dets = append(dets, m)
		}
	}
	return dets, nil
}

// chooseDominant returns the index of the selfie's subject: the largest face, or, among the
// faces at least ratio times its width ("comparable"), the one closest to the image centre.
func chooseDominant(dets []detection, bounds image.Rectangle, ratio float64) int {
	largest := 0
	for i, d := range dets {
		if d.width() > dets[largest].width() {
			largest = i
		}
	}
	best, bestOff := largest, math.Inf(1)
	for i, d := range dets {
		if float64(d.width()) < ratio*float64(dets[largest].width()) {
			continue
		}
		c := d.box.Min.Add(d.box.Max)
		off := math.Hypot(float64(c.X)/2-float64(bounds.Min.X+bounds.Max.X)/2, float64(c.Y)/2-float64(bounds.Min.Y+bounds.Max.Y)/2)
		if off < bestOff {
			best, bestOff = i, off
		}
	}
	return best
}

func (e *Engine) analyzeImage(ctx context.Context, rec *goface.Recognizer, img *image.RGBA, opts AnalyzeOptions) (*Analysis, error) {
	dets, err := e.detectAll(ctx, rec, img)
	if err != nil {
		return nil, err
	}
	if len(dets) == 0 {
		return nil, newError(CodeNoFaceDetected, ErrNoFace, fmt.Errorf("no face in %dx%d image", img.Rect.Dx(), img.Rect.Dy()))
	}
	mr := e.cfg.Detect.MultipleFaceRatio
	di := chooseDominant(dets, img.Rect, mr)
	dom := dets[di]
	a := &Analysis{Image: img, Detector: dom.detector}

	// Other faces: comparable ones make the image ambiguous, small ones are background.
	var ratio float64
	others := append(append([]detection{}, dets[:di]...), dets[di+1:]...)
	sort.SliceStable(others, func(i, j int) bool { return others[i].width() > others[j].width() })
	for _, o := range others {
		a.Others = append(a.Others, o.box)
		ratio = math.Max(ratio, float64(o.width())/float64(dom.width()))
	}
	if len(others) > 0 {
		if ratio >= mr {
			w := Warning{Code: CodeMultipleFaces, Value: ratio, Threshold: mr, Blocking: true,
				Message: fmt.Sprintf("%d faces; the second largest is %.0f%% of the main face's width (limit %.0f%%)", len(dets), 100*ratio, 100*mr)}
			if !opts.AllowMultipleFaces {
				return nil, newError(CodeMultipleFaces, ErrMultipleFaces, fmt.Errorf("%s", w.Message))
			}
			a.Warnings = append(a.Warnings, w)
		} else {
			a.Warnings = append(a.Warnings, Warning{Code: CodeBackgroundFacesIgnored, Value: float64(len(others)), Threshold: mr,
				Message: fmt.Sprintf("%d smaller face(s) in the background ignored (largest %.0f%% of the main face's width)", len(others), 100*ratio)})
		}
	}

	// Describe a small face again on a full-resolution crop.
	if rb := e.cfg.Detect.RefineBelow; rb > 0 && dom.scale < 0.99 && dom.workW < rb {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("face: analyze: %w", err)
		}
		if r, ok, err := e.refine(rec, img, dom); err != nil {
			return nil, err
		} else if ok {
			dom, a.Refined = r, true
		}
	}

	f := Face{Box: dom.box, Descriptor: dom.desc, lm: dom.lm}
	for i, p := range dom.lm {
		f.Landmarks[i] = image.Pt(int(math.Round(p[0])), int(math.Round(p[1])))
	}
	if e.onnx != nil && !opts.SkipEmbedding {
		emb, err := e.onnx.embed(img, dom.lm)
		if err != nil {
			return nil, err
		}
		f.Embedding = emb
	}
	m := measure(img, dom.box, dom.lm)
	f.Yaw, f.Roll = m.Yaw, m.Roll
	a.Face, a.Measures = f, m
	a.Warnings = append(a.Warnings, e.cfg.Quality.check(m)...)
	return a, nil
}

// refine re-detects and describes the face on a crop of the full-resolution image, sized so that
// the face is about 150 px wide (never enlarged), and keeps the detection that overlaps most.
func (e *Engine) refine(rec *goface.Recognizer, img *image.RGBA, dom detection) (detection, bool, error) {
	b := dom.box
	crop := image.Rect(b.Min.X-b.Dx(), b.Min.Y-b.Dy(), b.Max.X+b.Dx(), b.Max.Y+b.Dy()).Intersect(img.Rect)
	if crop.Empty() {
		return dom, false, nil
	}
	s := math.Min(1, 150/float64(max(1, b.Dx())))
	sub := toRGBA(img.SubImage(crop)) // recognize scales it by s and maps the faces back
	dets, err := e.recognize(rec, sub, s, false, dom.detector)
	if err != nil {
		return dom, false, err
	}
	best, bestIoU := -1, 0.3
	local := b.Sub(crop.Min)
	for i, d := range dets {
		if v := iou(d.box, local); v > bestIoU {
			best, bestIoU = i, v
		}
	}
	if best < 0 {
		return dom, false, nil
	}
	r := dets[best]
	r.box = r.box.Add(crop.Min)
	for i := range r.lm {
		r.lm[i][0] += float64(crop.Min.X)
		r.lm[i][1] += float64(crop.Min.Y)
	}
	return r, true, nil
}

func iou(a, b image.Rectangle) float64 {
	in := a.Intersect(b)
	if in.Empty() {
		return 0
	}
	ia := float64(in.Dx() * in.Dy())
	return ia / (float64(a.Dx()*a.Dy()+b.Dx()*b.Dy()) - ia)
}

// scaleRGBA resamples img by factor s (area averaging when shrinking, bilinear when enlarging).
func scaleRGBA(img *image.RGBA, s float64) *image.RGBA {
	w := max(1, int(math.Round(float64(img.Rect.Dx())*s)))
	h := max(1, int(math.Round(float64(img.Rect.Dy())*s)))
	return resize(img, img.Rect, w, h)
}

// encodeJPEG encodes the working copy for dlib, which only reads JPEG. Only JPEGs made here reach
// the C decoder, never the caller's bytes.
func encodeJPEG(img *image.RGBA, quality int) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(img.Rect.Dx() * img.Rect.Dy() / 4)
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, newError(CodeInternal, ErrInternal, fmt.Errorf("encoding working copy: %w", err))
	}
	return buf.Bytes(), nil
}

// onFreshThread runs f on an OS thread that no jittering call has used before, and ends that
// thread afterwards. dlib draws its jitter transforms from a thread_local random generator with
// a fixed default seed, so a fresh thread makes the jittered enrolment descriptor a function of
// the image alone: the same photo always gives the same template, whatever ran before it or on
// which thread the Go scheduler put the cgo call. The goroutine locks its thread and exits
// without unlocking it, which makes the runtime terminate the thread (runtime.LockOSThread);
// a thread costs tens of microseconds against the ~100 ms of a jittered description.
func onFreshThread[T any](f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with this goroutine, and its generator with it.
		v, err := f()
		done <- result{v, err}
	}()
	r := <-done
	return r.v, r.err
}
