package face

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Band is the decision a match policy gives a distance.
type Band string

// The three bands.
const (
	BandApprove Band = "approve"
	BandReview  Band = "review"
	BandDecline Band = "decline"
)

// Distance is the Euclidean distance between two descriptors (dlib's metric; same person
// typically < 0.5, different people typically > 0.6).
func Distance(a, b Descriptor) float64 {
	var s float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

// Similarity maps a distance to [0,1], strictly decreasing: a logistic curve centred on dlib's
// customary threshold 0.6 with scale 0.06, Similarity(d) = 1 / (1 + exp((d-0.6)/0.06)). So
// d=0.40 gives 0.97, 0.50 gives 0.84, 0.55 gives 0.70, 0.60 gives 0.50, 0.70 gives 0.16. It
// does not depend on the policy, so scores stay comparable when thresholds change; the Band,
// not the score, is the decision.
func Similarity(d float64) float64 {
	if math.IsNaN(d) || math.IsInf(d, 1) {
		return 0
	}
	return 1 / (1 + math.Exp((d-0.6)/0.06))
}

// Band returns the band of distance d under the policy: approve if d < ApproveBelow, decline if
// d > DeclineAbove, review otherwise.
func (p MatchPolicy) Band(d float64) Band {
	switch {
	case d < p.ApproveBelow:
		return BandApprove
	case d > p.DeclineAbove || math.IsNaN(d):
		return BandDecline
	}
	return BandReview
}

// The ONNX matcher's default bands in cosine distance (1 - cos). Approve: below the thresholds
// of FAR 1e-4 over every impostor pair of LFW View 1's images (0.589) and of FAR 1e-3 over
// NUAA's live webcam photos (0.531; 0.537 with the build before), with a margin: NUAA's is the
// binding one. Decline: above 0.60, where about 2.5% of LFW's genuine pairs and 1% of NUAA's
// impostor pairs are not declined. README.md has the runs.
const (
	onnxApprove = 0.52
	onnxDecline = 0.60
)

// SimilarityONNX maps a cosine distance to [0,1], strictly decreasing, as Similarity does for
// dlib's distance: a logistic centred on the decline threshold, scaled so that the approve
// threshold scores as dlib's does (76): 1 / (1 + exp((d-D)/s)), s = (D-A)*0.06/0.07.
func SimilarityONNX(d float64) float64 {
	if math.IsNaN(d) || math.IsInf(d, 1) {
		return 0
	}
	s := (onnxDecline - onnxApprove) * 0.06 / 0.07
	return 1 / (1 + math.Exp((d-onnxDecline)/s))
}

// MatchResult is the outcome of matching a probe against a template.
type MatchResult struct {
	Matcher    string  // MatcherONNX or MatcherDlib: whose distance this is
	Distance   float64 // distance to the closest template entry (Euclidean for dlib, 1-cos for ONNX); +Inf if not comparable
	Similarity float64 // the matcher's similarity of Distance, in [0,1]
	Score      int     // round(100 * Similarity), 0-100
	Band       Band
	Code       string // empty, or why the template could not be compared (e.g. MODEL_VERSION_MISMATCH)
}

// MarshalJSON writes an infinite distance as null.
func (m MatchResult) MarshalJSON() ([]byte, error) {
	type out struct {
		Matcher    string   `json:"matcher,omitempty"`
		Distance   *float64 `json:"distance"`
		Similarity float64  `json:"similarity"`
		Score      int      `json:"score"`
		Band       Band     `json:"band"`
		Code       string   `json:"code,omitempty"`
	}
	o := out{Matcher: m.Matcher, Similarity: m.Similarity, Score: m.Score, Band: m.Band, Code: m.Code}
	if !math.IsInf(m.Distance, 0) && !math.IsNaN(m.Distance) {
		o.Distance = &m.Distance
	}
	return json.Marshal(o)
}

// Result scores a dlib distance under the policy.
func (p MatchPolicy) Result(d float64) MatchResult {
	s := Similarity(d)
	return MatchResult{Matcher: MatcherDlib, Distance: d, Similarity: s, Score: int(math.Round(100 * s)), Band: p.Band(d)}
}

// resultONNX scores a cosine distance under the policy.
func (p MatchPolicy) resultONNX(d float64) MatchResult {
	s := SimilarityONNX(d)
	return MatchResult{Matcher: MatcherONNX, Distance: d, Similarity: s, Score: int(math.Round(100 * s)), Band: p.Band(d)}
}

// Match compares a probe face with a template: the smallest distance over the template's
// entries, scored with the policy of the template's matcher. A nil or empty template, or one
// made by a model version the engine cannot compare, gives Band decline with Distance +Inf and
// Code set; use Verify to get that as an error.
func (e *Engine) Match(t *Template, f Face) MatchResult {
	r, err := e.Verify(t, f)
	if err != nil {
		return MatchResult{Distance: math.Inf(1), Band: BandDecline, Code: Code(err)}
	}
	return r
}

// CanMatch reports whether the engine can compare faces with the template: one of its own
// matcher's, or a dlib template (dlib descriptors are computed under both matchers).
func (e *Engine) CanMatch(t *Template) bool {
	if t == nil {
		return false
	}
	switch t.ModelVersion {
	case e.modelVersion:
		return len(t.Descriptors) > 0
	case e.ModelVersion():
		return e.onnx != nil && len(t.Embeddings) > 0
	}
	return false
}

// Current reports whether the template is of the configured matcher, i.e. needs no upgrade.
func (e *Engine) Current(t *Template) bool {
	return t != nil && t.ModelVersion == e.ModelVersion()
}

// Verify is Match that reports a template it cannot compare as an error wrapping
// ErrModelMismatch or ErrInvalidArgument.
func (e *Engine) Verify(t *Template, f Face) (MatchResult, error) {
	if t == nil || (len(t.Descriptors) == 0 && len(t.Embeddings) == 0) {
		return MatchResult{}, newError(CodeInvalidArgument, ErrInvalidArgument, fmt.Errorf("empty template"))
	}
	if !e.CanMatch(t) {
		return MatchResult{}, newError(CodeModelMismatch, ErrModelMismatch,
			fmt.Errorf("template %q, engine %q: re-enrol", t.ModelVersion, e.ModelVersion()))
	}
	best := math.Inf(1)
	if t.ModelVersion == e.modelVersion {
		for _, td := range t.Descriptors {
			best = math.Min(best, Distance(td, f.Descriptor))
		}
		return e.dlibPolicy().Result(best), nil
	}
	if len(f.Embedding) == 0 {
		return MatchResult{}, newError(CodeInvalidArgument, ErrInvalidArgument, fmt.Errorf("probe has no embedding"))
	}
	for _, te := range t.Embeddings {
		best = math.Min(best, CosineDistance(te, f.Embedding))
	}
	return e.cfg.Policy.resultONNX(best), nil
}

// dlibPolicy is the policy for dlib distances: the configured one under the dlib matcher, dlib's
// default under the ONNX matcher.
func (e *Engine) dlibPolicy() MatchPolicy {
	if e.onnx == nil {
		return e.cfg.Policy
	}
	return DlibPolicy()
}

// DlibPolicy returns the bands the engine applies to dlib descriptor distances.
func (e *Engine) DlibPolicy() MatchPolicy { return e.dlibPolicy() }

// Distance is the configured matcher's distance between two analysed faces (+Inf when a face
// lacks what the matcher needs).
func (e *Engine) Distance(a, b Face) float64 {
	if e.onnx != nil {
		return CosineDistance(a.Embedding, b.Embedding)
	}
	return Distance(a.Descriptor, b.Descriptor)
}

// TemplateFrom builds a template of the configured matcher from analysed faces (a login selfie
// that re-seals an older template, a re-enrolment's frame).
func (e *Engine) TemplateFrom(faces ...Face) *Template {
	t := &Template{ModelVersion: e.ModelVersion(), CreatedAt: time.Now().UTC()}
	for _, f := range faces {
		if e.onnx != nil {
			t.Embeddings = append(t.Embeddings, append([]float32(nil), f.Embedding...))
		} else {
			t.Descriptors = append(t.Descriptors, f.Descriptor)
		}
	}
	return t
}
