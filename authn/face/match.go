package face

import (
	"encoding/json"
	"fmt"
	"math"
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

// MatchResult is the outcome of matching a probe descriptor against a template.
type MatchResult struct {
	Distance   float64 // Euclidean distance to the closest template descriptor; +Inf if not comparable
	Similarity float64 // Similarity(Distance), in [0,1]
	Score      int     // round(100 * Similarity), 0-100
	Band       Band
	Code       string // empty, or why the template could not be compared (e.g. MODEL_VERSION_MISMATCH)
}

// MarshalJSON writes an infinite distance as null.
func (m MatchResult) MarshalJSON() ([]byte, error) {
	type out struct {
		Distance   *float64 `json:"distance"`
		Similarity float64  `json:"similarity"`
		Score      int      `json:"score"`
		Band       Band     `json:"band"`
		Code       string   `json:"code,omitempty"`
	}
	o := out{Similarity: m.Similarity, Score: m.Score, Band: m.Band, Code: m.Code}
	if !math.IsInf(m.Distance, 0) && !math.IsNaN(m.Distance) {
		o.Distance = &m.Distance
	}
	return json.Marshal(o)
}

// Result scores a distance under the policy.
func (p MatchPolicy) Result(d float64) MatchResult {
	s := Similarity(d)
	return MatchResult{Distance: d, Similarity: s, Score: int(math.Round(100 * s)), Band: p.Band(d)}
}

// Match compares a probe descriptor with a template: the smallest distance over the template's
// descriptors, scored with the engine's policy. A nil or empty template, or one made by another
// model version, gives Band decline with Distance +Inf and Code set; use Verify to get that as an
// error.
func (e *Engine) Match(t *Template, d Descriptor) MatchResult {
	r, err := e.Verify(t, d)
	if err != nil {
		return MatchResult{Distance: math.Inf(1), Band: BandDecline, Code: Code(err)}
	}
	return r
}

// Verify is Match that reports a template it cannot compare as an error wrapping
// ErrModelMismatch or ErrInvalidArgument.
func (e *Engine) Verify(t *Template, d Descriptor) (MatchResult, error) {
	if t == nil || len(t.Descriptors) == 0 {
		return MatchResult{}, newError(CodeInvalidArgument, ErrInvalidArgument, fmt.Errorf("empty template"))
	}
	if t.ModelVersion != e.modelVersion {
		return MatchResult{}, newError(CodeModelMismatch, ErrModelMismatch,
			fmt.Errorf("template %q, engine %q: re-enrol", t.ModelVersion, e.modelVersion))
	}
	best := math.Inf(1)
	for _, td := range t.Descriptors {
		best = math.Min(best, Distance(td, d))
	}
	return e.cfg.Policy.Result(best), nil
}
