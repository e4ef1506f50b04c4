package liveness

import (
	"context"
	"fmt"
	"image"
	"math"
	"strconv"

	"github.com/visage-idp/visage/authn/face"
)

// The FLASHING check. The page paints the screen with the issued colours while it captures
// frames; the screen lights the face, so the face's colour moves towards each colour in turn. A
// photo, a screen or a video recorded beforehand cannot know the random sequence and timing.
//
// For each colour the face's mean colour is measured on the frames captured while it was on
// screen (after SettleMS). The measure is chromatic and relative: each channel divided by its
// mean over the whole sequence (which removes the skin tone and the white balance), in log, minus
// the mean of the three channels (which removes the overall brightness and the camera's
// exposure changes). The issued colours go through the same centring; the two are compared by
// their correlation over all colours and channels, and each colour's observed shift must be
// closest to its issued colour among the palette's.

// faceColor returns the mean R, G, B of the central part of the face box: the cheeks, nose and
// mouth, where the skin faces the screen, without hair or background.
func faceColor(img image.Image, box image.Rectangle) [3]float64 {
	m := rgbaOf(img)
	r := image.Rect(
		box.Min.X+box.Dx()*20/100, box.Min.Y+box.Dy()*30/100,
		box.Max.X-box.Dx()*20/100, box.Max.Y-box.Dy()*10/100).Intersect(m.Rect)
	var s [3]float64
	if r.Empty() {
		return s
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		p := m.Pix[m.PixOffset(r.Min.X, y):]
		for x := 0; x < r.Dx(); x++ {
			s[0] += float64(p[4*x])
			s[1] += float64(p[4*x+1])
			s[2] += float64(p[4*x+2])
		}
	}
	n := float64(r.Dx() * r.Dy())
	return [3]float64{s[0] / n, s[1] / n, s[2] / n}
}

// parseColor reads "#rrggbb" into 0..1 channels.
func parseColor(s string) ([3]float64, error) {
	var c [3]float64
	if len(s) != 7 || s[0] != '#' {
		return c, fmt.Errorf("colour %q is not #rrggbb", s)
	}
	for i := 0; i < 3; i++ {
		v, err := strconv.ParseUint(s[1+2*i:3+2*i], 16, 8)
		if err != nil {
			return c, fmt.Errorf("colour %q: %w", s, err)
		}
		c[i] = float64(v) / 255
	}
	return c, nil
}

// centre removes, from a list of per-step channel vectors, each channel's mean over the steps and
// then each step's mean over the channels.
func centre(v [][3]float64) [][3]float64 {
	out := make([][3]float64, len(v))
	var mean [3]float64
	for _, x := range v {
		for k := range mean {
			mean[k] += x[k] / float64(len(v))
		}
	}
	for i, x := range v {
		var m float64
		for k := range x {
			out[i][k] = x[k] - mean[k]
			m += out[i][k] / 3
		}
		for k := range x {
			out[i][k] -= m
		}
	}
	return out
}

func cosine(a, b [3]float64) float64 {
	var ab, aa, bb float64
	for k := range a {
		ab += a[k] * b[k]
		aa += a[k] * a[k]
		bb += b[k] * b[k]
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// colourEvidence is the outcome of comparing observed and issued colour shifts.
type colourEvidence struct {
	corr    float64 // correlation of observed and issued centred shifts, over steps and channels
	shift   float64 // RMS of the observed centred log shift
	matched int     // steps whose shift is closest to their issued colour
	steps   int     // steps measured
}

// compareColours compares per-step mean face colours with the issued colours of those steps.
func compareColours(observed [][3]float64, issued [][3]float64) colourEvidence {
	ev := colourEvidence{steps: len(observed)}
	if len(observed) < 3 {
		return ev
	}
	// Observed: log of each channel relative to its mean over the steps, centred per step.
	var mean [3]float64
	for _, o := range observed {
		for k := range mean {
			mean[k] += o[k] / float64(len(observed))
		}
	}
	logs := make([][3]float64, len(observed))
	for i, o := range observed {
		for k := range o {
			logs[i][k] = math.Log(math.Max(o[k], 0.5) / math.Max(mean[k], 0.5))
		}
	}
	obs := centre(logs)
	exp := centre(issued)
	var ab, aa, bb float64
	for i := range obs {
		for k := 0; k < 3; k++ {
			ab += obs[i][k] * exp[i][k]
			aa += obs[i][k] * obs[i][k]
			bb += exp[i][k] * exp[i][k]
		}
	}
	if aa > 0 && bb > 0 {
		ev.corr = ab / math.Sqrt(aa*bb)
	}
	ev.shift = math.Sqrt(aa / float64(3*len(obs)))
	// Per step: which palette colour, centred in this sequence's context, is closest?
	var issuedMean [3]float64
	for _, c := range issued {
		for k := range issuedMean {
			issuedMean[k] += c[k] / float64(len(issued))
		}
	}
	cand := make([][3]float64, len(paletteOrder))
	for j, name := range paletteOrder {
		p := palette[name]
		var m float64
		for k := range p {
			cand[j][k] = p[k] - issuedMean[k]
			m += cand[j][k] / 3
		}
		for k := range p {
			cand[j][k] -= m
		}
	}
	for i := range obs {
		best, bestC := -1, math.Inf(-1)
		for j := range cand {
			if c := cosine(obs[i], cand[j]); c > bestC {
				best, bestC = j, c
			}
		}
		if best >= 0 && cosine(cand[best], exp[i]) > 0.999 {
			ev.matched++
		}
	}
	return ev
}

// verifyFlashing checks a FLASHING burst. See Verify.
func (c *Challenger) verifyFlashing(ctx context.Context, ch *Challenge, fr []frameInfo, ref *face.Template, res *Result) error {
	fc := c.cfg.Flash
	// Frame 0 is the baseline, captured at the sequence start under the page's normal light: the
	// reference face and the frame for passive liveness.
	if fr[0].a == nil {
		res.warn(CodeNoFaceDetected, 0, "no usable face in the first frame (%s)", fr[0].code)
		c.commonChecks(fr, -1, nil, 0.25, res)
		res.Score = 0
		return nil
	}
	scores := []int{c.commonChecks(fr, 0, func(int) float64 { return fc.MaxFaceDistance }, 0.25, res)}

	// Assign frames to colours by capture time.
	t0 := fr[0].at
	per := make([][][3]float64, len(ch.Colors))
	for _, f := range fr[1:] {
		if f.a == nil {
			continue
		}
		ms := int(f.at.Sub(t0).Milliseconds())
		for k, s := range ch.Colors {
			if ms >= s.StartMS+fc.SettleMS && ms < s.StartMS+s.DurationMS {
				per[k] = append(per[k], faceColor(f.a.Image, f.a.Face.Box))
				break
			}
		}
	}
	var observed, issued [][3]float64
	for k, s := range ch.Colors {
		if len(per[k]) == 0 {
			continue
		}
		var m [3]float64
		for _, v := range per[k] {
			for q := range m {
				m[q] += v[q] / float64(len(per[k]))
			}
		}
		col, err := parseColor(s.Color)
		if err != nil {
			return fmt.Errorf("liveness: challenge %s: %w", shortID(ch.ID), err)
		}
		observed = append(observed, m)
		issued = append(issued, col)
	}
	colour := 0
	need := int(math.Ceil(fc.MinMatchedSteps * float64(len(ch.Colors))))
	switch ev := compareColours(observed, issued); {
	case len(observed) < need:
		res.warn(CodeFrameTiming, float64(len(observed)), "frames were captured during only %d of the %d colours (at least %d needed): the capture does not follow the issued timing", len(observed), len(ch.Colors), need)
	case ev.shift < fc.MinShift:
		res.warn(CodeNoColorReflection, ev.shift, "the face does not change colour with the screen (shift %.4f, at least %.4f)", ev.shift, fc.MinShift)
	case ev.corr < fc.MinCorrelation || ev.matched < need:
		res.warn(CodeColorSequence, ev.corr, "the face's colour changes do not follow the issued colours (correlation %.2f, at least %.2f; %d of %d colours recognised, at least %d)", ev.corr, fc.MinCorrelation, ev.matched, ev.steps, need)
		colour = scoreOf(math.Max(0, ev.corr))
		if colour >= 50 {
			colour = 49
		}
	default:
		colour = scoreOf(ev.corr)
	}
	scores = append(scores, colour)

	if err := ctxErr(ctx); err != nil {
		return err
	}
	p, err := c.passiveOf(ctx, fr, []int{0})
	if err != nil {
		return err
	}
	scores = append(scores, c.passiveCheck(p, 1, res))
	res.Probe = fr[0].a
	scores = append(scores, c.checkReference(ref, res.Probe, res))
	res.Score = minInt(scores)
	return nil
}
