package liveness

import (
	"context"
	"image"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/visage-idp/visage/authn/face"
)

// Frame labels of a head-turn burst.
const (
	labelCenter  = "C"
	labelLeft    = "L"
	labelRight   = "R"
	labelTransit = "-" // between centre and turned, or no face
)

// yawLabel classifies a yaw relative to the initial frontal yaw.
func (a ActiveConfig) yawLabel(rel float64) string {
	switch {
	case rel <= -a.TurnYaw:
		return labelLeft // the user's left: the face turns towards the image's right
	case rel >= a.TurnYaw:
		return labelRight
	case math.Abs(rel) <= a.CenterYaw:
		return labelCenter
	}
	return labelTransit
}

// run is a maximal stretch of consecutive usable frames with one label.
type run struct {
	label string
	idx   []int
}

// verifyActive checks an ACTIVE_3D burst. See Verify.
func (c *Challenger) verifyActive(ctx context.Context, ch *Challenge, fr []frameInfo, ref *face.Template, res *Result) error {
	ac := c.cfg.Active
	var usable []int
	for i, f := range fr {
		if f.a != nil {
			usable = append(usable, i)
		}
	}
	if len(usable) < 3 {
		res.warn(CodeInsufficientFrames, float64(len(usable)), "only %d frame(s) with a usable face", len(usable))
		c.commonChecks(fr, -1, nil, ac.MaxMissingFaces, res)
		res.Score = 0
		return nil
	}
	// The initial pose: the median yaw of the frames taken while the page asks to look at the
	// camera (the first StepMS), or of the first usable frame.
	var look []float64
	for _, i := range usable {
		if fr[i].at.Sub(fr[0].at) < time.Duration(ch.StepMS)*time.Millisecond {
			look = append(look, landmarkYaw(fr[i].a.Face.Landmarks))
		}
	}
	if len(look) == 0 {
		look = []float64{landmarkYaw(fr[usable[0]].a.Face.Landmarks)}
	}
	base := median(look)

	// Label the frames and collapse them into runs (transit frames split nothing).
	var runs []run
	rel := make([]float64, len(fr))
	for _, i := range usable {
		rel[i] = landmarkYaw(fr[i].a.Face.Landmarks) - base
		l := ac.yawLabel(rel[i])
		if l == labelTransit {
			continue
		}
		if len(runs) > 0 && runs[len(runs)-1].label == l {
			runs[len(runs)-1].idx = append(runs[len(runs)-1].idx, i)
			continue
		}
		runs = append(runs, run{label: l, idx: []int{i}})
	}

	// The frontal reference: the most frontal frame of the first run if it is frontal, else the
	// first usable frame.
	refIdx := usable[0]
	if len(runs) > 0 && runs[0].label == labelCenter {
		refIdx = closestTo(runs[0].idx, rel, 0)
	}
	// Descriptors drift as the head turns (a 45 degree turn of the same person reads about 0.6
	// from the frontal face): frames that are not frontal get MaxTurnedFaceDistance.
	limit := func(i int) float64 {
		if math.Abs(rel[i]) > ac.CenterYaw {
			return ac.MaxTurnedFaceDistance
		}
		return ac.MaxFaceDistance
	}
	scores := []int{c.commonChecks(fr, refIdx, limit, ac.MaxMissingFaces, res)}

	// Movement: the turns, in order, between a frontal start and a frontal end.
	want := make([]string, 0, len(ch.Steps))
	for _, t := range ch.turns() {
		if t == StepLeft {
			want = append(want, labelLeft)
		} else {
			want = append(want, labelRight)
		}
	}
	var got []string
	for _, r := range runs {
		if r.label != labelCenter {
			got = append(got, r.label)
		}
	}
	order := 100
	switch {
	case math.Abs(base) > ac.MaxStartYaw:
		res.warn(CodeMovementIncomplete, base, "the burst must start facing the camera (initial yaw %.0f degrees, at most %.0f)", base, ac.MaxStartYaw)
		order = 0
	case equalStrings(got, want):
		if len(runs) == 0 || runs[0].label != labelCenter || runs[len(runs)-1].label != labelCenter {
			res.warn(CodeMovementIncomplete, 0, "the burst must start and end facing the camera")
			order = 0
		}
	case isPrefix(got, want):
		res.warn(CodeMovementIncomplete, float64(len(got)), "only %d of the %d head turns were seen (turns seen: %s; asked: %s)", len(got), len(want), turnNames(got), turnNames(want))
		order = 0
	default:
		res.warn(CodeWrongMovementOrder, float64(len(got)), "the head turns do not follow the challenge (seen: %s; asked: %s)", turnNames(got), turnNames(want))
		order = 0
	}
	scores = append(scores, order)

	// 3D motion: for each turn, the most turned frame against the frontal reference.
	motion := 100
	worst := math.Inf(-1)
	if fr[refIdx].a != nil {
		for _, r := range runs {
			if r.label == labelCenter {
				continue
			}
			if err := ctxErr(ctx); err != nil {
				return err
			}
			far := r.idx[0]
			for _, i := range r.idx {
				if math.Abs(rel[i]) > math.Abs(rel[far]) {
					far = i
				}
			}
			if far == refIdx || math.Abs(rel[far]-rel[refIdx]) < ac.TurnYaw {
				continue // no turn against the reference: no evidence either way
			}
			corr, inside := planarity(fr[refIdx].viewOf(), fr[far].viewOf())
			if inside < 0.5 {
				continue // the turned face left the frame: no evidence either way
			}
			worst = math.Max(worst, corr)
		}
	}
	if !math.IsInf(worst, -1) {
		motion = motionScore(worst, ac.FlatCorrelation)
		if worst >= ac.FlatCorrelation {
			res.warn(CodeFlatMotion, worst, "the turned face is a flat warp of the frontal one (texture correlation %.3f after the best homography, limit %.2f): a photo or a screen moved in front of the camera", worst, ac.FlatCorrelation)
		}
	}
	scores = append(scores, motion)

	// Passive liveness on the frontal frames (the models were trained on frontal faces).
	var frontal []int
	for _, r := range runs {
		if r.label == labelCenter {
			frontal = append(frontal, r.idx...)
		}
	}
	if len(frontal) == 0 {
		frontal = []int{refIdx}
	}
	sort.SliceStable(frontal, func(a, b int) bool { return math.Abs(rel[frontal[a]]) < math.Abs(rel[frontal[b]]) })
	if len(frontal) > 6 {
		frontal = frontal[:6]
	}
	p, err := c.passiveOf(ctx, fr, frontal)
	if err != nil {
		return err
	}
	scores = append(scores, c.passiveCheck(p, len(frontal), res))

	res.Probe = fr[refIdx].a
	scores = append(scores, c.checkReference(ref, res.Probe, res))
	res.Score = minInt(scores)
	return nil
}

// motionScore maps the worst planarity correlation to 0-100: 50 at the limit, 100 at 2*limit-1
// or below, 0 at 1.
func motionScore(corr, limit float64) int {
	var s float64
	if corr >= limit {
		s = 0.5 * (1 - corr) / (1 - limit)
	} else {
		s = 0.5 + 0.5*(limit-corr)/(1-limit)
	}
	return scoreOf(s)
}

func closestTo(idx []int, v []float64, target float64) int {
	best := idx[0]
	for _, i := range idx {
		if math.Abs(v[i]-target) < math.Abs(v[best]-target) {
			best = i
		}
	}
	return best
}

func isPrefix(a, b []string) bool {
	return len(a) < len(b) && equalStrings(a, b[:len(a)])
}

func turnNames(labels []string) string {
	if len(labels) == 0 {
		return "none"
	}
	n := make([]string, len(labels))
	for i, l := range labels {
		if l == labelLeft {
			n[i] = StepLeft
		} else {
			n[i] = StepRight
		}
	}
	return strings.Join(n, ", ")
}

func minInt(v []int) int {
	m := 100
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

// yawGain converts the nose's sideways offset from the eyes' midpoint, in inter-ocular
// distances, to the yaw scale the ACTIVE_3D thresholds were measured on (README.md):
// yaw = -atan(offset / yawGain). This package computes its own yaw rather than using
// face.Face.Yaw so that its thresholds do not move when the face engine's calibration does.
const yawGain = 0.62

// landmarkYaw estimates the yaw in degrees from dlib's 5 landmarks (0-1: corners of the eye on
// the image's right, 2-3: of the eye on the image's left, 4: base of the nose). Positive when
// the face turns towards the image's left, as Pointing'04's pan; the user's own left is
// negative.
func landmarkYaw(lm [5]image.Point) float64 {
	rx, ry := float64(lm[0].X+lm[1].X)/2, float64(lm[0].Y+lm[1].Y)/2
	lx, ly := float64(lm[2].X+lm[3].X)/2, float64(lm[2].Y+lm[3].Y)/2
	ux, uy := rx-lx, ry-ly
	iod := math.Hypot(ux, uy)
	if iod < 1e-6 {
		return 0
	}
	ux, uy = ux/iod, uy/iod
	mx, my := (lx+rx)/2, (ly+ry)/2
	off := ((float64(lm[4].X)-mx)*ux + (float64(lm[4].Y)-my)*uy) / iod // along the eye line, > 0 towards the image's right
	return -math.Atan(off/yawGain) * 180 / math.Pi
}
