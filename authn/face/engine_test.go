package face

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/visage-idp/visage/internal/testenv"
)

func analyze(t *testing.T, e *Engine, data []byte) *Analysis {
	t.Helper()
	a, err := e.Analyze(context.Background(), data)
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	return a
}

func blocking(a *Analysis) []string {
	var codes []string
	for _, w := range a.Warnings {
		if w.Blocking {
			codes = append(codes, w.Code)
		}
	}
	return codes
}

func hasWarning(a *Analysis, code string) (Warning, bool) {
	for _, w := range a.Warnings {
		if w.Code == code {
			return w, true
		}
	}
	return Warning{}, false
}

func TestAnalyzeRealPhotos(t *testing.T) {
	e := testEngine(t)
	video := mjpegFrames(readFile(t, testenv.Path(t, "video", "selfie_apfol_640x480_15fps.mjpeg")))
	if len(video) < 100 {
		t.Fatalf("split the MJPEG into %d frames, want > 100", len(video))
	}
	nuaa := nuaaBonafide(t, 1)[0]
	for _, tc := range []struct {
		name string
		data []byte
		size image.Point
	}{
		{"LFW 250x250", readFile(t, lfw(t, "Aaron_Peirsol", 1)), image.Pt(250, 250)},
		{"NUAA webcam 640x480", readFile(t, nuaa), image.Pt(640, 480)},
		{"selfie video frame 640x480", video[0], image.Pt(640, 480)},
		{"LFW as PNG", encPNG(t, decodeFile(t, lfw(t, "Aaron_Peirsol", 1))), image.Pt(250, 250)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := analyze(t, e, tc.data)
			if got := a.Image.Bounds().Size(); got != tc.size {
				t.Errorf("image size %v, want %v", got, tc.size)
			}
			if !a.Face.Box.In(a.Image.Bounds().Inset(-a.Face.Box.Dx() / 4)) {
				t.Errorf("face box %v outside the image %v", a.Face.Box, a.Image.Bounds())
			}
			for i, p := range a.Face.Landmarks {
				if !p.In(a.Face.Box.Inset(-a.Face.Box.Dx() / 4)) {
					t.Errorf("landmark %d %v far outside the face box %v", i, p, a.Face.Box)
				}
			}
			if a.Measures.InterOcular < 20 {
				t.Errorf("inter-ocular distance %.1f px, implausible for this photo", a.Measures.InterOcular)
			}
			var norm float64
			for _, v := range a.Face.Descriptor {
				norm += float64(v) * float64(v)
			}
			if norm < 0.1 {
				t.Errorf("descriptor norm^2 %.3f: empty descriptor", norm)
			}
		})
	}
	// The same photo as JPEG and as PNG must give nearly the same descriptor.
	j := analyze(t, e, readFile(t, lfw(t, "Aaron_Peirsol", 1)))
	p := analyze(t, e, encPNG(t, decodeFile(t, lfw(t, "Aaron_Peirsol", 1))))
	if d := Distance(j.Face.Descriptor, p.Face.Descriptor); d > 0.08 {
		t.Errorf("JPEG vs PNG of the same photo: distance %.3f, want < 0.08", d)
	}
}

func TestRotatedEXIFSelfie(t *testing.T) {
	e := testEngine(t)
	data := readFile(t, testenv.Path(t, "samples", "image_T1.jpg"))
	a := analyze(t, e, data)
	if got := a.Image.Bounds().Size(); got != image.Pt(480, 640) {
		t.Fatalf("oriented size %v, want 480x640 (EXIF orientation 6 on a 640x480 JPEG)", got)
	}
	if math.Abs(a.Face.Roll) > 30 {
		t.Errorf("roll %.0f degrees after orientation, want an upright face", a.Face.Roll)
	}
	// The same pixels without the EXIF tag: the face lies on its side, and whatever dlib makes
	// of it does not match the upright face.
	raw, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	sideways, err := e.Analyze(context.Background(), encJPEG(t, raw))
	switch {
	case errors.Is(err, ErrNoFace):
	case err != nil:
		t.Fatalf("Analyze without EXIF: %v", err)
	default:
		if d := Distance(a.Face.Descriptor, sideways.Face.Descriptor); d <= e.Config().Policy.DeclineAbove {
			t.Errorf("sideways photo matches the upright one (distance %.3f): is the sample really stored sideways?", d)
		}
	}
	// Re-adding the tag to the bare JPEG gives the upright face back.
	again := analyze(t, e, withJPEGExif(encJPEG(t, raw), 6, false))
	if d := Distance(a.Face.Descriptor, again.Face.Descriptor); d > 0.1 {
		t.Errorf("re-tagged JPEG: distance %.3f to the original, want < 0.1", d)
	}
}

func TestMultipleFaces(t *testing.T) {
	e := testEngine(t)
	left := decodeFile(t, lfw(t, "Aaron_Peirsol", 1))
	right := decodeFile(t, lfw(t, "Bill_Gates", 3))
	two := image.NewRGBA(image.Rect(0, 0, 500, 250))
	paste(two, left, image.Pt(0, 0))
	paste(two, right, image.Pt(250, 0))
	data := encJPEG(t, two)

	a, err := e.Analyze(context.Background(), data)
	if !errors.Is(err, ErrMultipleFaces) || Code(err) != CodeMultipleFaces || a != nil {
		t.Fatalf("two people side by side: (%v, %v), want ErrMultipleFaces with code %s", a, err, CodeMultipleFaces)
	}
	a, err = e.AnalyzeWith(context.Background(), data, AnalyzeOptions{AllowMultipleFaces: true})
	if err != nil {
		t.Fatalf("AllowMultipleFaces: %v", err)
	}
	w, ok := hasWarning(a, CodeMultipleFaces)
	if !ok || !w.Blocking || a.Usable() || !errors.Is(a.Err(), ErrMultipleFaces) {
		t.Errorf("AllowMultipleFaces: warnings %+v usable %v, want a blocking MULTIPLE_FACES", a.Warnings, a.Usable())
	}
	if w.Value < 0.7 || len(a.Others) != 1 {
		t.Errorf("size ratio %.2f, %d other faces; want about 1 and 1", w.Value, len(a.Others))
	}
}

func TestBackgroundFaceIgnored(t *testing.T) {
	e := testEngine(t)
	main := decodeFile(t, lfw(t, "Aaron_Peirsol", 1))
	bg := decodeFile(t, lfw(t, "Bill_Gates", 3))
	small := resize(bg, bg.Rect, 125, 125)
	canvas := image.NewRGBA(image.Rect(0, 0, 390, 300))
	for i := range canvas.Pix {
		canvas.Pix[i] = 128
	}
	paste(canvas, main, image.Pt(0, 25))
	paste(canvas, small, image.Pt(260, 10))
	a := analyze(t, e, encJPEG(t, canvas))
	if a.Face.Box.Max.X > 250 {
		t.Errorf("dominant face %v is not the large one on the left", a.Face.Box)
	}
	w, ok := hasWarning(a, CodeBackgroundFacesIgnored)
	if !ok || w.Blocking || !a.Usable() {
		t.Errorf("warnings %+v, want a non-blocking BACKGROUND_FACES_IGNORED and a usable analysis", a.Warnings)
	}
	alone := analyze(t, e, readFile(t, lfw(t, "Aaron_Peirsol", 1)))
	if d := Distance(a.Face.Descriptor, alone.Face.Descriptor); d > 0.15 {
		t.Errorf("descriptor of the main face moved by %.3f with a face in the background", d)
	}
}

func TestNoFace(t *testing.T) {
	e := testEngine(t)
	// The no-face path (HOG at 480 px, HOG at full size, CNN at 320 px) is the costliest. Its
	// time is not asserted (a busy machine would fail such a test): Config.AnalyzeTimeout bounds it.
	for seed := uint64(1); seed <= 2; seed++ {
		a, err := e.Analyze(context.Background(), encJPEG(t, landscape(seed)))
		if !errors.Is(err, ErrNoFace) || Code(err) != CodeNoFaceDetected || a != nil {
			t.Fatalf("landscape %d: (%v, %v), want ErrNoFace / %s", seed, a, err, CodeNoFaceDetected)
		}
	}
}

// degrade helpers for the quality table.
func mapPix(src *image.RGBA, f func(uint8) uint8) *image.RGBA {
	dst := image.NewRGBA(src.Rect)
	for i, v := range src.Pix {
		if i%4 == 3 {
			dst.Pix[i] = 255
		} else {
			dst.Pix[i] = f(v)
		}
	}
	return dst
}

func boxBlur(src *image.RGBA, passes int) *image.RGBA {
	// Each pass is a 5x5 box: three passes approximate a Gaussian of sigma ~2.4 px.
	out := src
	for p := 0; p < passes; p++ {
		w, h := out.Rect.Dx(), out.Rect.Dy()
		dst := image.NewRGBA(out.Rect)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				for c := 0; c < 3; c++ {
					s, n := 0, 0
					for dy := -2; dy <= 2; dy++ {
						for dx := -2; dx <= 2; dx++ {
							xx, yy := min(max(x+dx, 0), w-1), min(max(y+dy, 0), h-1)
							s += int(out.Pix[yy*out.Stride+4*xx+c])
							n++
						}
					}
					dst.Pix[y*dst.Stride+4*x+c] = uint8(s / n)
				}
				dst.Pix[y*dst.Stride+4*x+3] = 255
			}
		}
		out = dst
	}
	return out
}

func rotate(src *image.RGBA, deg float64) *image.RGBA {
	th := deg * math.Pi / 180
	c, s := math.Cos(th), math.Sin(th)
	w, h := src.Rect.Dx(), src.Rect.Dy()
	cx, cy := float64(w)/2, float64(h)/2
	dst := image.NewRGBA(src.Rect)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			sx := c*(float64(x)-cx) + s*(float64(y)-cy) + cx
			sy := -s*(float64(x)-cx) + c*(float64(y)-cy) + cy
			xi, yi := int(sx), int(sy)
			if xi < 0 || yi < 0 || xi >= w || yi >= h {
				dst.SetRGBA(x, y, color.RGBA{128, 128, 128, 255})
				continue
			}
			copy(dst.Pix[y*dst.Stride+4*x:y*dst.Stride+4*x+4], src.Pix[yi*src.Stride+4*xi:yi*src.Stride+4*xi+4])
		}
	}
	return dst
}

func TestQualityWarnings(t *testing.T) {
	e := testEngine(t)
	clean := decodeFile(t, lfw(t, "Aaron_Peirsol", 1))
	if a := analyze(t, e, encJPEG(t, clean)); !a.Usable() {
		t.Fatalf("clean photo not usable: %+v", a.Warnings)
	}
	smallCanvas := image.NewRGBA(image.Rect(0, 0, 250, 250))
	for i := range smallCanvas.Pix {
		smallCanvas.Pix[i] = 128
	}
	paste(smallCanvas, resize(clean, clean.Rect, 85, 85), image.Pt(82, 82))
	for _, tc := range []struct {
		name string
		img  *image.RGBA
		code string
	}{
		{"dark (x0.15)", mapPix(clean, func(v uint8) uint8 { return uint8(float64(v) * 0.15) }), CodeFaceTooDark},
		{"bright (x0.15 towards white)", mapPix(clean, func(v uint8) uint8 { return 255 - uint8(float64(255-v)*0.15) }), CodeFaceTooBright},
		{"blurred (3 passes of a 5x5 box)", boxBlur(clean, 3), CodeFaceBlurred},
		{"small (face scaled to 34%)", smallCanvas, CodeFaceTooSmall},
		{"rolled 50 degrees", rotate(clean, 50), CodeFaceNotFrontal},
		{"cut off (bottom 36% of the frame missing)", clean.SubImage(image.Rect(0, 0, 250, 160)).(*image.RGBA), CodeFaceCutOff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := analyze(t, e, encJPEG(t, tc.img))
			w, ok := hasWarning(a, tc.code)
			if !ok || !w.Blocking || a.Usable() {
				t.Fatalf("warnings %+v (measures %+v), want blocking %s", a.Warnings, a.Measures, tc.code)
			}
			if !errors.Is(a.Err(), ErrQuality) || !slices.Contains(blocking(a), Code(a.Err())) {
				t.Errorf("Err() = %v, want ErrQuality with the code of a blocking warning", a.Err())
			}
			if w.Message == "" || w.Threshold == 0 {
				t.Errorf("warning without message or threshold: %+v", w)
			}
		})
	}
}

// TestYawOnPointing04 checks the yaw estimate against Pointing'04's labelled pans (tilt 0):
// the mean estimate per pan is within 10 degrees of the label up to 30 degrees, increases
// with the pan, and heads turned 60 degrees are mostly FACE_NOT_FRONTAL while frontal ones
// never are.
func TestYawOnPointing04(t *testing.T) {
	e := testEngine(t)
	f, err := os.Open(testenv.Path(t, "pointing04", "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	sum, n := map[int]float64{}, map[int]int{}
	notFrontal := map[int]int{}
	frontal := map[string]Descriptor{}
	desc := map[int]map[string]Descriptor{}
	for _, row := range rows[1:] {
		pan, _ := strconv.Atoi(row[5])
		if row[4] != "0" || row[2] != "1" || (pan%30 != 0 && pan != 15 && pan != -15) || pan < -60 || pan > 60 {
			continue
		}
		a, err := e.Analyze(context.Background(), readFile(t, testenv.Path(t, "pointing04", row[0])))
		if err != nil {
			continue
		}
		sum[pan] += a.Face.Yaw
		n[pan]++
		if _, ok := hasWarning(a, CodeFaceNotFrontal); ok {
			notFrontal[pan]++
		}
		if pan == 0 {
			frontal[row[1]] = a.Face.Descriptor
		}
		if desc[pan] == nil {
			desc[pan] = map[string]Descriptor{}
		}
		desc[pan][row[1]] = a.Face.Descriptor
	}
	// Median distance to the same person's frontal photo, for the record (README.md).
	medianToFrontal := func(pan int) float64 {
		var ds []float64
		for person, d := range desc[pan] {
			if f, ok := frontal[person]; ok {
				ds = append(ds, Distance(f, d))
			}
		}
		if len(ds) == 0 {
			return math.NaN()
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	pans := []int{-60, -30, -15, 0, 15, 30, 60}
	prev := math.Inf(-1)
	for _, p := range pans {
		if n[p] < 7 {
			t.Fatalf("pan %d: only %d of 10 faces found", p, n[p])
		}
		mean := sum[p] / float64(n[p])
		t.Logf("pan %3d: mean yaw %6.1f over %d faces, %d FACE_NOT_FRONTAL, median distance to frontal %.3f", p, mean, n[p], notFrontal[p], medianToFrontal(p))
		if mean <= prev {
			t.Errorf("pan %d: mean yaw %.1f not above the previous pan's %.1f", p, mean, prev)
		}
		prev = mean
		if p >= -30 && p <= 30 && math.Abs(mean-float64(p)) > 10 {
			t.Errorf("pan %d: mean yaw %.1f, more than 10 degrees off", p, mean)
		}
	}
	if notFrontal[0] != 0 {
		t.Errorf("%d frontal faces flagged FACE_NOT_FRONTAL", notFrontal[0])
	}
	if notFrontal[-60]+notFrontal[60] < (n[-60]+n[60])/2 {
		t.Errorf("only %d of %d heads turned 60 degrees flagged FACE_NOT_FRONTAL", notFrontal[-60]+notFrontal[60], n[-60]+n[60])
	}
}

// TestMatchLFWDevTest enrols the first photo of held-out LFW pairs and matches the second. It
// asserts rates over many pairs, not single cases: a pair near a threshold may fall on either
// side when a model or a default changes, and no test may hang on one such pair. The limits have
// a wide margin over what this engine measures on these pairs (see the log lines and
// authn/face/README.md); an engine that matched at random, or approved everybody, fails them.
func TestMatchLFWDevTest(t *testing.T) {
	e := testEngine(t)
	pairs := readLFWPairs(t, "pairsDevTest.txt")
	const each = 30
	var genuine, impostor []lfwPair
	for _, p := range pairs {
		if p.Genuine && len(genuine) < each {
			genuine = append(genuine, p)
		} else if !p.Genuine && len(impostor) < each {
			impostor = append(impostor, p)
		}
	}
	type outcome struct {
		res MatchResult
		p   lfwPair
	}
	results := make([]outcome, 0, 2*each)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, e.Config().Workers)
	refused := 0
	for _, p := range append(genuine, impostor...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			tmpl, _, err := e.Enroll(context.Background(), [][]byte{readFile(t, p.A)}, EnrollOptions{})
			if errors.Is(err, ErrMultipleFaces) || errors.Is(err, ErrQuality) {
				t.Logf("enrolment refused, as it should be: %v", err)
				mu.Lock()
				refused++
				mu.Unlock()
				return
			}
			if err != nil {
				t.Errorf("enrol %s: %v", p.A, err)
				return
			}
			a, err := e.AnalyzeWith(context.Background(), readFile(t, p.B), AnalyzeOptions{AllowMultipleFaces: true})
			if err != nil {
				t.Errorf("analyze %s: %v", p.B, err)
				return
			}
			mu.Lock()
			results = append(results, outcome{e.Match(tmpl, a.Face), p})
			mu.Unlock()
		}()
	}
	wg.Wait()
	var genApproved, genDeclined, genN, impApproved, impNotDeclined, impN int
	for _, o := range results {
		r := o.res
		if r.Score != int(math.Round(100*r.Similarity)) || r.Similarity < 0 || r.Similarity > 1 {
			t.Errorf("inconsistent result %+v", r)
		}
		if o.p.Genuine {
			genN++
			switch r.Band {
			case BandApprove:
				genApproved++
			case BandDecline:
				genDeclined++
				t.Logf("same person declined: %s / %s distance %.3f", o.p.A, o.p.B, r.Distance)
			}
			continue
		}
		impN++
		if r.Band == BandApprove {
			impApproved++
			t.Logf("different people approved: %s / %s distance %.3f", o.p.A, o.p.B, r.Distance)
		}
		if r.Band != BandDecline {
			impNotDeclined++
		}
	}
	t.Logf("genuine: %d approved, %d declined of %d; impostor: %d approved, %d not declined of %d; %d refused",
		genApproved, genDeclined, genN, impApproved, impNotDeclined, impN, refused)
	if refused > 2*each/8 {
		t.Errorf("%d of %d LFW photos refused at enrolment", refused, 2*each)
	}
	// Measured here (first 40 of each): 33 of 36 approved, none declined; no impostor approved or
	// in review; 6 of 80 photos refused (five with two faces of comparable size, one blurred).
	if genApproved < genN*3/4 {
		t.Errorf("only %d of %d same-person pairs approved (want at least 75%%)", genApproved, genN)
	}
	if genDeclined > genN/10 {
		t.Errorf("%d of %d same-person pairs declined (want at most 10%%)", genDeclined, genN)
	}
	if impApproved > 0 {
		t.Errorf("%d of %d different-person pairs approved (want none)", impApproved, impN)
	}
	if impNotDeclined > impN/10 {
		t.Errorf("%d of %d different-person pairs not declined (want at most 10%%)", impNotDeclined, impN)
	}
}

// TestEnrolDeterministic: the jittered enrolment of one photo gives the same template every
// time, whatever ran before it on which thread (dlib's jitter generator is thread-local).
func TestEnrolDeterministic(t *testing.T) {
	// The ONNX matcher does not jitter; dlib's enrolment does.
	e, err := NewEngine(Config{ModelsDir: testenv.ModelsDir(t), Workers: 2, Matcher: MatcherDlib})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	photo := readFile(t, lfw(t, "Bill_Gates", 3))
	other := readFile(t, lfw(t, "Aaron_Peirsol", 1))
	first, _, err := e.Enroll(ctx, [][]byte{photo}, EnrollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		// Other jittered work in between, on whichever threads it lands.
		if _, _, err := e.Enroll(ctx, [][]byte{other}, EnrollOptions{}); err != nil {
			t.Fatal(err)
		}
		again, _, err := e.Enroll(ctx, [][]byte{photo}, EnrollOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if again.Descriptors[0] != first.Descriptors[0] {
			t.Fatalf("enrolment %d of the same photo gave another descriptor", i+2)
		}
	}
}

func TestEnroll(t *testing.T) {
	e := testEngine(t)
	ctx := context.Background()
	photos := [][]byte{readFile(t, lfw(t, "Bill_Gates", 3)), readFile(t, lfw(t, "Bill_Gates", 4))}
	tmpl, _, err := e.Enroll(ctx, photos, EnrollOptions{})
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if tmpl.ModelVersion != e.ModelVersion() || len(tmpl.Descriptors)+len(tmpl.Embeddings) != 2 || tmpl.Image != nil || tmpl.CreatedAt.IsZero() {
		t.Errorf("template: version %q, %d descriptors, %d embeddings, %d image bytes, created %v", tmpl.ModelVersion, len(tmpl.Descriptors), len(tmpl.Embeddings), len(tmpl.Image), tmpl.CreatedAt)
	}
	probe := analyze(t, e, readFile(t, lfw(t, "Bill_Gates", 11)))
	if r := e.Match(tmpl, probe.Face); r.Band == BandDecline {
		t.Errorf("third photo of the same person: %+v", r)
	}
	other := analyze(t, e, readFile(t, lfw(t, "Aaron_Peirsol", 1)))
	if r := e.Match(tmpl, other.Face); r.Band != BandDecline {
		t.Errorf("another person: %+v, want decline", r)
	}

	kept, _, err := e.Enroll(ctx, photos[:1], EnrollOptions{KeepImage: true})
	if err != nil {
		t.Fatal(err)
	}
	if img, err := jpeg.Decode(bytes.NewReader(kept.Image)); err != nil || img.Bounds().Dx() != 250 {
		t.Errorf("kept image: %v", err)
	}

	_, _, err = e.Enroll(ctx, [][]byte{photos[0], readFile(t, lfw(t, "Aaron_Peirsol", 1))}, EnrollOptions{})
	if !errors.Is(err, ErrEnrolmentMismatch) || Code(err) != CodeEnrolmentMismatch {
		t.Errorf("two people enrolled as one: %v", err)
	}
	_, _, err = e.Enroll(ctx, [][]byte{photos[0], encJPEG(t, landscape(3))}, EnrollOptions{})
	if !errors.Is(err, ErrNoFace) || Code(err) != CodeNoFaceDetected {
		t.Errorf("landscape enrolled: %v", err)
	}
	blurred := encJPEG(t, boxBlur(decodeFile(t, lfw(t, "Bill_Gates", 3)), 3))
	if _, _, err = e.Enroll(ctx, [][]byte{blurred}, EnrollOptions{}); !errors.Is(err, ErrQuality) || Code(err) != CodeFaceBlurred {
		t.Errorf("blurred photo enrolled: %v", err)
	}
	if _, _, err = e.Enroll(ctx, nil, EnrollOptions{}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("no photo: %v", err)
	}

	// A template from another model version is never silently compared.
	foreign := *tmpl
	foreign.ModelVersion = "other-model"
	if r := e.Match(&foreign, probe.Face); r.Band != BandDecline || r.Code != CodeModelMismatch || !math.IsInf(r.Distance, 1) {
		t.Errorf("foreign template: %+v", r)
	}
	if _, err := e.Verify(&foreign, probe.Face); !errors.Is(err, ErrModelMismatch) {
		t.Errorf("Verify foreign template: %v", err)
	}
}

func TestEngineQueueCancelClose(t *testing.T) {
	e, err := NewEngine(Config{ModelsDir: testenv.ModelsDir(t), Workers: 1, QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	slow := encJPEG(t, landscape(4)) // no face: HOG, HOG, CNN
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.Analyze(context.Background(), slow)
			mu.Lock()
			codes[Code(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[CodeBusy] == 0 || codes[CodeNoFaceDetected] == 0 || codes[CodeBusy]+codes[CodeNoFaceDetected] != 6 {
		t.Errorf("6 concurrent calls on 1 worker + 1 queue slot: %v, want some ENGINE_BUSY and some NO_FACE_DETECTED", codes)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Analyze(ctx, slow); !errors.Is(err, context.Canceled) || Code(err) != CodeCanceled {
		t.Errorf("cancelled context: %v", err)
	}
	// A request waiting for the only recognizer gives up at its deadline.
	done := make(chan struct{})
	go func() { e.Analyze(context.Background(), slow); close(done) }()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err = e.Analyze(ctx, slow)
	cancel()
	<-done
	if !errors.Is(err, context.DeadlineExceeded) || Code(err) != CodeTimeout {
		t.Errorf("deadline while queued: %v", err)
	}

	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Analyze(context.Background(), slow); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNewEngineMissingModels(t *testing.T) {
	_, err := NewEngine(Config{ModelsDir: t.TempDir()})
	if err == nil {
		t.Fatal("NewEngine on an empty folder succeeded")
	}
}

// TestLargeFrames puts an LFW face, enlarged, on big grey canvases: the first HOG pass runs on
// a 480 px copy, so a small face needs the second pass at up to 1024 px, and a face under 100 px
// in the pass that found it is described again on a full-resolution crop.
func TestLargeFrames(t *testing.T) {
	// Frames up to 3 MP: above the default selfie limit (MaxPixels), as an operator may allow.
	e, err := NewEngine(Config{ModelsDir: testenv.ModelsDir(t), Workers: 1, MaxPixels: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	src := decodeFile(t, lfw(t, "Aaron_Peirsol", 1))
	ref := analyze(t, e, encJPEG(t, src))
	for _, tc := range []struct {
		name          string
		canvas, scale int // canvas width (4:3), face photo size
		detector      string
		refined       bool
	}{
		{"face found in the 480 px pass, refined", 1600, 700, "hog", true},
		{"face found in the second pass, refined", 2000, 425, "hog-full", true},
		{"face large enough, not refined", 1280, 900, "hog", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			canvas := image.NewRGBA(image.Rect(0, 0, tc.canvas, tc.canvas*3/4))
			for i := range canvas.Pix {
				canvas.Pix[i] = 120
			}
			paste(canvas, resize(src, src.Rect, tc.scale, tc.scale), image.Pt((tc.canvas-tc.scale)/2, (canvas.Rect.Dy()-tc.scale)/2))
			a := analyze(t, e, encJPEG(t, canvas))
			if a.Detector != tc.detector || a.Refined != tc.refined {
				t.Errorf("detector %q refined %v, want %q %v (face box %v)", a.Detector, a.Refined, tc.detector, tc.refined, a.Face.Box)
			}
			if d := Distance(ref.Face.Descriptor, a.Face.Descriptor); d > 0.2 {
				t.Errorf("descriptor %.3f away from the original photo's", d)
			}
			k := float64(tc.scale) / 250
			at := image.Pt((tc.canvas-tc.scale)/2, (canvas.Rect.Dy()-tc.scale)/2)
			wantW := float64(ref.Face.Box.Dx()) * k
			if got := float64(a.Face.Box.Dx()); got < 0.8*wantW || got > 1.25*wantW {
				t.Errorf("face box width %.0f, want about %.0f", got, wantW)
			}
			for i, p := range a.Face.Landmarks {
				want := image.Pt(at.X+int(float64(ref.Face.Landmarks[i].X)*k), at.Y+int(float64(ref.Face.Landmarks[i].Y)*k))
				if math.Hypot(float64(p.X-want.X), float64(p.Y-want.Y)) > 0.05*wantW {
					t.Errorf("landmark %d at %v, want near %v", i, p, want)
				}
			}
		})
	}
}
