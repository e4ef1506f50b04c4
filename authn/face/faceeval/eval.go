// Package faceeval measures the face engine: verification accuracy on image pairs (the LFW pair
// format, or a one-folder-per-person directory), ROC/DET plots, and a latency benchmark. It is
// the library behind `idp eval faces` and `idp bench faces`; it reads images from disk and never
// writes face data anywhere but the plot the caller asks for.
package faceeval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"

	goface "github.com/Kagami/go-face"

	"github.com/visage-idp/visage/authn/face"
)

// DescribeFunc turns one encoded image into a described face (dlib descriptor and, under the
// ONNX matcher, embedding), or fails (failure to acquire).
type DescribeFunc func(ctx context.Context, img []byte) (face.Face, error)

// DistanceFunc compares two described faces (smaller is more alike).
type DistanceFunc func(a, b face.Face) float64

// DlibDistance is dlib's Euclidean descriptor distance.
func DlibDistance(a, b face.Face) float64 { return face.Distance(a.Descriptor, b.Descriptor) }

// EngineDescriber describes with the engine's dominant face. With gate set, an image whose
// analysis is not Usable (a blocking quality or MULTIPLE_FACES warning) is a failure to acquire,
// as in production; without it the dominant face is used regardless (photos that are not
// selfies, such as LFW's, often have other people in them).
//
// With jitter set it describes as enrolment does (face.AnalyzeOptions.Jitter).
func EngineDescriber(e *face.Engine, gate, jitter bool) DescribeFunc {
	return func(ctx context.Context, img []byte) (face.Face, error) {
		a, err := e.AnalyzeWith(ctx, img, face.AnalyzeOptions{AllowMultipleFaces: true, Jitter: jitter})
		if err != nil {
			return face.Face{}, err
		}
		if gate {
			if err := a.Err(); err != nil {
				return face.Face{}, err
			}
		}
		return a.Face, nil
	}
}

// Baseline is plain go-face, the anchor the engine is compared with: Recognize (HOG, no
// upsampling) on the file's bytes as they are, and the first face it returns (go-face sorts
// faces left to right).
type Baseline struct {
	pool chan *goface.Recognizer
	all  []*goface.Recognizer
}

// NewBaseline loads workers go-face recognizers from modelsDir/dlib.
func NewBaseline(modelsDir string, workers int) (*Baseline, error) {
	b := &Baseline{pool: make(chan *goface.Recognizer, max(1, workers))}
	for i := 0; i < max(1, workers); i++ {
		r, err := goface.NewRecognizer(modelsDir + "/dlib")
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("faceeval: baseline: %w", err)
		}
		b.all = append(b.all, r)
		b.pool <- r
	}
	return b, nil
}

// Describe implements DescribeFunc.
func (b *Baseline) Describe(ctx context.Context, img []byte) (face.Face, error) {
	var r *goface.Recognizer
	select {
	case r = <-b.pool:
	case <-ctx.Done():
		return face.Face{}, ctx.Err()
	}
	defer func() { b.pool <- r }()
	faces, err := r.Recognize(img)
	if err != nil {
		return face.Face{}, fmt.Errorf("go-face: %w", err)
	}
	if len(faces) == 0 {
		return face.Face{}, face.ErrNoFace
	}
	return face.Face{Descriptor: face.Descriptor(faces[0].Descriptor)}, nil
}

// Close frees the recognizers.
func (b *Baseline) Close() {
	for _, r := range b.all {
		r.Close()
	}
	b.all = nil
}

// Options configures Evaluate.
type Options struct {
	Workers int              // images described in parallel (default 1)
	Policy  face.MatchPolicy // the bands whose operating points are reported (default face.DefaultPolicy())
	// Distance compares two faces (default DlibDistance; Engine.Distance for the engine's matcher).
	Distance DistanceFunc
	// Pairs, for EvaluateAllPairs: also score these pairs (their images must be among the
	// evaluated ones), into Result.PairsFile.
	Pairs []Pair
	// EnrolDescribe, if set, describes the first image of every pair (the enrolment side, as
	// Engine.Enroll would); the second is described by the DescribeFunc (the login side).
	EnrolDescribe DescribeFunc
	Progress      func(done, total int)
}

// Failure is an image that failed to acquire.
type Failure struct {
	Path string
	Code string
}

// Result is the outcome of an evaluation. Its JSON form has exactly the keys images, fta,
// genuine, impostor, eer, accuracy, far_at_approve, frr_at_approve, tar_at_far and thresholds.
type Result struct {
	Images       int                `json:"images"`
	FTA          int                `json:"fta"`
	Genuine      int                `json:"genuine"`
	Impostor     int                `json:"impostor"`
	EER          float64            `json:"eer"`
	Accuracy     float64            `json:"accuracy"`       // at the approve threshold
	FARAtApprove float64            `json:"far_at_approve"` // impostor pairs approved (6 decimals)
	FRRAtApprove float64            `json:"frr_at_approve"` // genuine pairs not approved
	TARAtFAR     map[string]float64 `json:"tar_at_far"`     // "1e-2", "1e-3", "1e-4"
	Thresholds   map[string]float64 `json:"thresholds"`     // "1e-2", "1e-3", "1e-4", "eer", "approve", "decline"

	// PairsFile, from EvaluateAllPairs given Options.Pairs, is the evaluation of those pairs
	// with the same descriptions.
	PairsFile *Result `json:"pairs_file,omitempty"`

	Metrics   Metrics   `json:"-"`
	Failures  []Failure `json:"-"`
	GenuineD  []float64 `json:"-"` // distances, +Inf when an image failed
	ImpostorD []float64 `json:"-"`
}

// Evaluate describes every distinct image of pairs once (Workers at a time), then scores the
// pairs.
func Evaluate(ctx context.Context, pairs []Pair, describe DescribeFunc, opts Options) (*Result, error) {
	if len(pairs) == 0 {
		return nil, errors.New("faceeval: no pairs")
	}
	if opts.Policy == (face.MatchPolicy{}) {
		opts.Policy = face.DefaultPolicy()
	}
	// Jobs: each distinct (image, side) to describe.
	type job struct {
		path  string
		enrol bool
	}
	var jobs []job
	index := map[job]int{}
	distinct := map[string]bool{}
	add := func(j job) {
		distinct[j.path] = true
		if _, ok := index[j]; !ok {
			index[j] = len(jobs)
			jobs = append(jobs, j)
		}
	}
	for _, p := range pairs {
		add(job{p.A, opts.EnrolDescribe != nil})
		add(job{p.B, false})
	}
	if opts.Distance == nil {
		opts.Distance = DlibDistance
	}
	descs := make([]face.Face, len(jobs))
	errs := make([]error, len(jobs))
	if err := describeAll(ctx, len(jobs), opts.Workers, opts.Progress, func(i int) error {
		data, err := os.ReadFile(jobs[i].path)
		if err != nil {
			return err
		}
		if jobs[i].enrol {
			descs[i], errs[i] = opts.EnrolDescribe(ctx, data)
		} else {
			descs[i], errs[i] = describe(ctx, data)
		}
		return nil
	}); err != nil {
		return nil, err
	}

	r := &Result{Images: len(distinct)}
	failed := map[string]string{}
	for i, err := range errs {
		if err == nil {
			continue
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, face.ErrQueueFull) {
			return nil, fmt.Errorf("faceeval: %s: %w", jobs[i].path, err)
		}
		if _, dup := failed[jobs[i].path]; !dup {
			failed[jobs[i].path] = face.Code(err)
		}
	}
	for path, code := range failed {
		r.Failures = append(r.Failures, Failure{Path: path, Code: code})
	}
	r.FTA = len(r.Failures)
	sort.Slice(r.Failures, func(i, j int) bool { return r.Failures[i].Path < r.Failures[j].Path })
	for _, p := range pairs {
		a, b := index[job{p.A, opts.EnrolDescribe != nil}], index[job{p.B, false}]
		d := math.Inf(1)
		if errs[a] == nil && errs[b] == nil {
			d = opts.Distance(descs[a], descs[b])
		}
		if p.Genuine {
			r.GenuineD = append(r.GenuineD, d)
		} else {
			r.ImpostorD = append(r.ImpostorD, d)
		}
	}
	r.finish(opts.Policy)
	return r, nil
}

// finish computes the metrics of the distances under the policy.
func (r *Result) finish(p face.MatchPolicy) {
	m := Compute(r.GenuineD, r.ImpostorD, p.ApproveBelow, p.DeclineAbove)
	r.Metrics = m
	r.Genuine, r.Impostor = m.Genuine, m.Impostor
	r.EER, r.Accuracy = round(m.EER), round(m.Accuracy)
	r.FARAtApprove, r.FRRAtApprove = math.Round(m.ApproveFAR*1e6)/1e6, round(m.ApproveFRR)
	r.TARAtFAR = map[string]float64{"1e-2": round(m.TAR1e2), "1e-3": round(m.TAR1e3), "1e-4": round(m.TAR1e4)}
	r.Thresholds = map[string]float64{
		"1e-2": round(m.Threshold1e2), "1e-3": round(m.Threshold1e3), "1e-4": round(m.Threshold1e4), "eer": round(m.EERThreshold),
		"approve": m.Approve, "decline": m.Decline,
	}
}

// Image is one labelled image of an all-pairs evaluation.
type Image struct {
	Path, Person string
}

// FolderImages lists the images of a one-folder-per-person directory (the LFW images folder is
// one), labelled by their folder.
func FolderImages(dir string) ([]Image, error) {
	people, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("faceeval: %w", err)
	}
	var out []Image
	for _, p := range people {
		files, err := os.ReadDir(filepath.Join(dir, p.Name()))
		if err != nil {
			continue // not a folder
		}
		for _, f := range files {
			if !f.IsDir() && IsImage(f.Name()) {
				out = append(out, Image{Path: filepath.Join(dir, p.Name(), f.Name()), Person: p.Name()})
			}
		}
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("faceeval: %s: fewer than two images in person folders", dir)
	}
	return out, nil
}

// EvaluateAllPairs describes every image once and compares every pair of them: same folder
// genuine, different folders impostor (n images give n(n-1)/2 pairs; LFW View 1's 4,992 give
// about 12.4 million). Images that fail to acquire make their pairs +Inf, as in Evaluate.
// EnrolDescribe is not used: both sides are described alike.
func EvaluateAllPairs(ctx context.Context, images []Image, describe DescribeFunc, opts Options) (*Result, error) {
	if len(images) < 2 {
		return nil, errors.New("faceeval: fewer than two images")
	}
	if opts.Policy == (face.MatchPolicy{}) {
		opts.Policy = face.DefaultPolicy()
	}
	if opts.Distance == nil {
		opts.Distance = DlibDistance
	}
	faces := make([]face.Face, len(images))
	errs := make([]error, len(images))
	if err := describeAll(ctx, len(images), opts.Workers, opts.Progress, func(i int) error {
		data, err := os.ReadFile(images[i].Path)
		if err != nil {
			return err
		}
		faces[i], errs[i] = describe(ctx, data)
		return nil
	}); err != nil {
		return nil, err
	}
	r := &Result{Images: len(images)}
	for i, err := range errs {
		if err == nil {
			continue
		}
		if errors.Is(err, face.ErrQueueFull) {
			return nil, fmt.Errorf("faceeval: %s: %w", images[i].Path, err)
		}
		r.Failures = append(r.Failures, Failure{Path: images[i].Path, Code: face.Code(err)})
	}
	r.FTA = len(r.Failures)
	n := len(images)
	r.ImpostorD = make([]float64, 0, n*(n-1)/2)
	for i := 0; i < n; i++ {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("faceeval: %w", err)
			}
		}
		for j := i + 1; j < n; j++ {
			d := math.Inf(1)
			if errs[i] == nil && errs[j] == nil {
				d = opts.Distance(faces[i], faces[j])
			}
			if images[i].Person == images[j].Person {
				r.GenuineD = append(r.GenuineD, d)
			} else {
				r.ImpostorD = append(r.ImpostorD, d)
			}
		}
	}
	r.finish(opts.Policy)
	if len(opts.Pairs) > 0 {
		index := make(map[string]int, n)
		for i, im := range images {
			index[im.Path] = i
		}
		pr := &Result{}
		seen := map[int]bool{}
		for _, p := range opts.Pairs {
			a, oka := index[p.A]
			b, okb := index[p.B]
			if !oka || !okb {
				return nil, fmt.Errorf("faceeval: pair %s / %s: image not under the evaluated folder", p.A, p.B)
			}
			seen[a], seen[b] = true, true
			d := math.Inf(1)
			if errs[a] == nil && errs[b] == nil {
				d = opts.Distance(faces[a], faces[b])
			}
			if p.Genuine {
				pr.GenuineD = append(pr.GenuineD, d)
			} else {
				pr.ImpostorD = append(pr.ImpostorD, d)
			}
		}
		pr.Images = len(seen)
		for i := range seen {
			if errs[i] != nil {
				pr.Failures = append(pr.Failures, Failure{Path: images[i].Path, Code: face.Code(errs[i])})
			}
		}
		pr.FTA = len(pr.Failures)
		pr.finish(opts.Policy)
		r.PairsFile = pr
	}
	return r, nil
}

func round(v float64) float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return -1
	}
	return math.Round(v*1e4) / 1e4
}

// describeAll runs work(0..n-1) on workers goroutines, reporting progress after each. work
// stores its own per-image results; an error it returns (an unreadable file) fails the whole
// evaluation, as does the end of ctx.
func describeAll(ctx context.Context, n, workers int, progress func(done, total int), work func(i int) error) error {
	queue := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	var fatal error
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range queue {
				err := work(i)
				mu.Lock()
				if err != nil {
					fatal = fmt.Errorf("faceeval: %w", err)
				} else {
					done++
					if progress != nil {
						progress(done, n)
					}
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range n {
		select {
		case queue <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("faceeval: %w", err)
	}
	return fatal
}
