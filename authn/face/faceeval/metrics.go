package faceeval

import (
	"math"
	"slices"
	"sort"
)

// Metrics are verification figures computed from genuine and impostor distances. A pair is
// accepted at threshold t when its distance is < t. Pairs with an image that failed to acquire
// carry distance +Inf: a genuine one counts as a false rejection, an impostor one as a correct
// rejection (ISO/IEC 19795-1 "FTA included" rates).
type Metrics struct {
	Genuine, Impostor int
	EER               float64 // equal error rate
	EERThreshold      float64
	// TAR at the threshold where FAR <= 1e-2, 1e-3 and 1e-4 (the largest such threshold), and
	// those thresholds. With N impostor pairs, at most floor(FAR*N) are accepted (so with fewer
	// than 10,000 impostor pairs the 1e-4 point accepts none).
	TAR1e2, TAR1e3, TAR1e4                   float64
	Threshold1e2, Threshold1e3, Threshold1e4 float64
	// At the approve threshold: accuracy, FAR (impostors approved) and FRR (genuine not approved).
	Approve                                 float64
	Accuracy, ApproveFAR, ApproveFRR        float64
	Decline                                 float64
	DeclineFAR, DeclineFRR                  float64 // impostors not declined, genuine declined
	ReviewGenuine, ReviewImpostor           float64 // fraction of each class in the review band
	AccuracyAt06                            float64 // at dlib's customary 0.6, for comparison
	BestAccuracy, BestAccuracyThreshold     float64
	GenuineMean, ImpostorMean, GenuineP99th float64
}

// below counts values < t in sorted xs.
func below(xs []float64, t float64) int { return sort.SearchFloat64s(xs, t) }

// atMost counts values <= t in sorted xs.
func atMost(xs []float64, t float64) int {
	return sort.Search(len(xs), func(i int) bool { return xs[i] > t })
}

// Compute returns the metrics for genuine and impostor distances and the match bands
// (approve below approve, decline above decline).
func Compute(genuine, impostor []float64, approve, decline float64) Metrics {
	g, im := slices.Clone(genuine), slices.Clone(impostor)
	slices.Sort(g)
	slices.Sort(im)
	ng, ni := float64(len(g)), float64(len(im))
	m := Metrics{Genuine: len(g), Impostor: len(im), Approve: approve, Decline: decline}
	if len(g) == 0 || len(im) == 0 {
		return m
	}
	far := func(t float64) float64 { return float64(below(im, t)) / ni }
	frr := func(t float64) float64 { return float64(len(g)-below(g, t)) / ng }
	acc := func(t float64) float64 { return (float64(below(g, t)) + float64(len(im)-below(im, t))) / (ng + ni) }

	// EER: over every candidate threshold, the one where FAR and FRR are closest.
	cands := append(append([]float64{}, g...), im...)
	slices.Sort(cands)
	cands = slices.Compact(cands)
	best := math.Inf(1)
	for _, t := range cands {
		if math.IsInf(t, 1) {
			continue
		}
		a, r := far(t), frr(t)
		if d := math.Abs(a - r); d < best {
			best, m.EER, m.EERThreshold = d, (a+r)/2, t
		}
		if v := acc(t); v > m.BestAccuracy {
			m.BestAccuracy, m.BestAccuracyThreshold = v, t
		}
	}
	tarAt := func(target float64) (tar, thr float64) {
		k := int(math.Floor(target*ni + 1e-9)) // impostors allowed below the threshold
		if k >= len(im) {
			thr = im[len(im)-1] + 1e-6
		} else {
			thr = im[k]
		}
		return float64(below(g, thr)) / ng, thr
	}
	m.TAR1e2, m.Threshold1e2 = tarAt(1e-2)
	m.TAR1e3, m.Threshold1e3 = tarAt(1e-3)
	m.TAR1e4, m.Threshold1e4 = tarAt(1e-4)
	m.Accuracy, m.ApproveFAR, m.ApproveFRR = acc(approve), far(approve), frr(approve)
	m.DeclineFAR = float64(atMost(im, decline)) / ni
	m.DeclineFRR = float64(len(g)-atMost(g, decline)) / ng
	m.ReviewGenuine = float64(atMost(g, decline)-below(g, approve)) / ng
	m.ReviewImpostor = float64(atMost(im, decline)-below(im, approve)) / ni
	m.AccuracyAt06 = acc(0.6)
	m.GenuineMean, m.ImpostorMean = finiteMean(g), finiteMean(im)
	m.GenuineP99th = g[min(len(g)-1, int(0.99*ng))]
	return m
}

func finiteMean(xs []float64) float64 {
	var s float64
	n := 0
	for _, x := range xs {
		if !math.IsInf(x, 0) {
			s += x
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

// rocPoints returns (FAR, TAR) at every distinct threshold, for plotting.
func rocPoints(genuine, impostor []float64) (far, tar []float64) {
	g, im := slices.Clone(genuine), slices.Clone(impostor)
	slices.Sort(g)
	slices.Sort(im)
	cands := append(append([]float64{}, g...), im...)
	slices.Sort(cands)
	cands = slices.Compact(cands)
	for _, t := range cands {
		if math.IsInf(t, 1) {
			continue
		}
		far = append(far, float64(below(im, t))/float64(len(im)))
		tar = append(tar, float64(below(g, t))/float64(len(g)))
	}
	return far, tar
}
