package liveness

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/visage-idp/visage/authn/face"
)

// Verify checks the answer to a challenge: the frames the page captured, with their capture
// times, in capture order. ref, if not nil, is the user's enrolled template: the most frontal
// frame must not be declined against it (FACE_MISMATCH); the full match decision stays with the
// caller, who finds that frame's analysis in Result.Probe.
//
// A challenge is single-use: the first answer that names it uses it up, whatever happens next.
// A request that cannot be checked (missing, unknown, used or expired challenge; too few or too
// many frames; frames too large, without times or out of time order) returns an *Error wrapping
// ErrChallenge or ErrInvalidInput, and a Result with Live false repeating its code as a warning.
// Failed liveness checks are not errors: they are warnings in a Result with Live false. Other
// errors are failures of the system (context, engine queue, models). Frames are never kept.
func (c *Challenger) Verify(ctx context.Context, challengeID string, frames []Frame, ref *face.Template) (Result, error) {
	start := c.cfg.Now()
	ch, err := c.take(challengeID)
	if err == nil {
		err = c.validate(ch, frames)
	}
	res := Result{Method: ch.Method, Frames: len(frames)}
	if err != nil {
		code := Code(err)
		res.warn(code, 0, "%s", errMessage(err))
		c.cfg.Logger.Info("liveness challenge rejected", "challenge", shortID(challengeID), "method", string(ch.Method), "code", code)
		return res, err
	}
	fr, err := c.analyzeBurst(ctx, frames)
	if err != nil {
		return res, err
	}
	switch ch.Method {
	case MethodActive3D:
		err = c.verifyActive(ctx, &ch, fr, ref, &res)
	case MethodFlashing:
		err = c.verifyFlashing(ctx, &ch, fr, ref, &res)
	default:
		err = fmt.Errorf("liveness: challenge of unknown method %q", ch.Method)
	}
	if err != nil {
		return Result{Method: ch.Method, Frames: len(frames)}, err
	}
	res.Live = len(res.Warnings) == 0
	codes := make([]string, len(res.Warnings))
	for i, w := range res.Warnings {
		codes[i] = w.Code
	}
	c.cfg.Logger.Info("liveness challenge verified", "challenge", shortID(challengeID), "method", string(ch.Method),
		"live", res.Live, "score", res.Score, "warnings", strings.Join(codes, ","), "frames", len(frames),
		"elapsed", c.cfg.Now().Sub(start).Round(time.Millisecond))
	return res, nil
}

func errMessage(err error) string {
	var le *Error
	if errors.As(err, &le) && le.Cause != nil {
		return le.Cause.Error()
	}
	return err.Error()
}

// validate checks the shape of a burst before any decoding.
func (c *Challenger) validate(ch Challenge, frames []Frame) error {
	minFrames := 4
	if ch.Method == MethodFlashing {
		minFrames = len(ch.Colors) + 1
	}
	switch {
	case len(frames) < minFrames:
		return newError(CodeTooFewFrames, ErrInvalidInput, fmt.Errorf("%d frames, at least %d needed", len(frames), minFrames))
	case len(frames) > c.cfg.MaxFrames:
		return newError(CodeTooManyFrames, ErrInvalidInput, fmt.Errorf("%d frames, at most %d allowed", len(frames), c.cfg.MaxFrames))
	}
	var total int64
	for i, f := range frames {
		n := int64(len(f.Data))
		if n == 0 {
			return newError(CodeFramesTooLarge, ErrInvalidInput, fmt.Errorf("frame %d is empty", i))
		}
		if n > c.cfg.MaxFrameBytes {
			return newError(CodeFramesTooLarge, ErrInvalidInput, fmt.Errorf("frame %d has %d bytes, at most %d allowed", i, n, c.cfg.MaxFrameBytes))
		}
		total += n
		if f.At.IsZero() {
			return newError(CodeFrameTiming, ErrInvalidInput, fmt.Errorf("frame %d has no capture time", i))
		}
		if i > 0 && !f.At.After(frames[i-1].At) {
			return newError(CodeFramesOutOfOrder, ErrInvalidInput, fmt.Errorf("frame %d was captured at %s, not after frame %d (%s)", i, f.At.Format(time.RFC3339Nano), i-1, frames[i-1].At.Format(time.RFC3339Nano)))
		}
	}
	if total > c.cfg.MaxBurstBytes {
		return newError(CodeFramesTooLarge, ErrInvalidInput, fmt.Errorf("the burst has %d bytes, at most %d allowed", total, c.cfg.MaxBurstBytes))
	}
	if span := frames[len(frames)-1].At.Sub(frames[0].At); span > ch.ExpiresAt.Sub(ch.IssuedAt) {
		return newError(CodeFrameTiming, ErrInvalidInput, fmt.Errorf("the frames span %s, longer than the challenge allows (%s)", span.Round(time.Millisecond), ch.ExpiresAt.Sub(ch.IssuedAt)))
	}
	return nil
}

// frameInfo is what a burst's analysis keeps of one frame.
type frameInfo struct {
	at   time.Time
	a    *face.Analysis // nil if no usable face
	code string         // why a is nil (face engine code)
	sum  [32]byte
	view *view // lazily built
}

func (f *frameInfo) viewOf() *view {
	if f.view == nil {
		f.view = newView(rgbaOf(f.a.Image), f.a.Face.Box, f.a.Face.Landmarks)
	}
	return f.view
}

func rgbaOf(img image.Image) *image.RGBA {
	if m, ok := img.(*image.RGBA); ok {
		return m
	}
	return asRGBA(img, img.Bounds())
}

// analyzeBurst runs the face engine on every frame, Workers at a time. Images the engine
// rejects (no face, several faces, corrupt) are recorded with their code; system failures stop
// the burst.
func (c *Challenger) analyzeBurst(ctx context.Context, frames []Frame) ([]frameInfo, error) {
	out := make([]frameInfo, len(frames))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
		next = make(chan int)
	)
	for w := 0; w < c.cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				a, err := c.cfg.Engine.Analyze(ctx, frames[i].Data)
				out[i].at = frames[i].At
				out[i].sum = sha256.Sum256(frames[i].Data)
				if err != nil {
					if systemError(ctx, err) {
						mu.Lock()
						if ferr == nil {
							ferr = fmt.Errorf("liveness: analysing frame %d: %w", i, err)
						}
						mu.Unlock()
						cancel()
						continue
					}
					out[i].code = face.Code(err)
					continue
				}
				out[i].a = a
			}
		}()
	}
feed:
	for i := range frames {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ferr != nil {
		return nil, ferr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("liveness: analysing burst: %w", err)
	}
	return out, nil
}

// commonChecks runs the checks both challenge methods share on the usable frames: duplicates,
// several faces, missing faces and the same face throughout (each frame against frame refIdx,
// within maxDist(i)). It returns the binary sub-score (100 or 0).
func (c *Challenger) commonChecks(fr []frameInfo, refIdx int, maxDist func(i int) float64, maxMissing float64, res *Result) int {
	score := 100
	seen := map[[32]byte]int{}
	for i, f := range fr {
		if j, ok := seen[f.sum]; ok {
			res.warn(CodeDuplicateFrames, float64(i), "frames %d and %d are byte-identical: a camera never sends the same frame twice", j, i)
			score = 0
			break
		}
		seen[f.sum] = i
	}
	missing, multiple := 0, 0
	for _, f := range fr {
		if f.a == nil {
			missing++
			if f.code == CodeMultipleFaces {
				multiple++
			}
		}
	}
	if multiple > 0 {
		res.warn(CodeMultipleFaces, float64(multiple), "%d frame(s) show more than one face", multiple)
		score = 0
	}
	if frac := float64(missing) / float64(len(fr)); frac > maxMissing {
		res.warn(CodeNoFaceDetected, frac, "no usable face in %d of %d frames", missing, len(fr))
		score = 0
	}
	if refIdx >= 0 {
		worst, worstIdx, limit := 0.0, -1, 0.0
		for i, f := range fr {
			if f.a == nil || i == refIdx {
				continue
			}
			d, l := face.Distance(fr[refIdx].a.Face.Descriptor, f.a.Face.Descriptor), maxDist(i)
			if d > l && (worstIdx < 0 || d-l > worst-limit) {
				worst, worstIdx, limit = d, i, l
			}
		}
		if worstIdx >= 0 {
			res.warn(CodeFaceChanged, worst, "frame %d shows a different face (descriptor distance %.2f to the reference frame, limit %.2f)", worstIdx, worst, limit)
			score = 0
		}
	}
	return score
}

// checkReference declines a probe that the template declines.
func (c *Challenger) checkReference(ref *face.Template, probe *face.Analysis, res *Result) int {
	if ref == nil || probe == nil {
		return 100
	}
	m := c.cfg.Engine.Match(ref, probe.Face)
	if m.Band == face.BandDecline {
		if m.Code != "" {
			res.warn(CodeFaceMismatch, 0, "the enrolled template cannot be compared (%s)", m.Code)
		} else {
			res.warn(CodeFaceMismatch, m.Distance, "the face does not match the enrolled face (distance %.2f)", m.Distance)
		}
		return 0
	}
	return 100
}

// passiveOf runs the passive models on the frames at idx and returns the median fused score.
func (c *Challenger) passiveOf(ctx context.Context, fr []frameInfo, idx []int) (float64, error) {
	scores := make([]float64, 0, len(idx))
	for _, i := range idx {
		s, err := c.cfg.Passive.Score(ctx, fr[i].a.Image, fr[i].a.Face.Box)
		if err != nil {
			return 0, fmt.Errorf("liveness: passive on frame %d: %w", i, err)
		}
		scores = append(scores, s)
	}
	if len(scores) == 0 {
		return 0, nil
	}
	return median(scores), nil
}

func (c *Challenger) passiveCheck(p float64, n int, res *Result) int {
	if p < c.cfg.Passive.Threshold() {
		res.warn(CodeFaceAttack, p, "the face looks like a photo, a screen or a mask (passive score %.2f over %d frame(s), threshold %.2f)", p, n, c.cfg.Passive.Threshold())
	}
	return scoreOf(p)
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ParseFrameTime reads a capture time as the page sends it: RFC 3339 (with or without
// fractional seconds) or milliseconds since the Unix epoch (an integer or a decimal).
func ParseFrameTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, newError(CodeFrameTiming, ErrInvalidInput, fmt.Errorf("empty frame time"))
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	bad := newError(CodeFrameTiming, ErrInvalidInput, fmt.Errorf("frame time %q is neither RFC 3339 nor milliseconds since the epoch", truncate(s, 40)))
	whole, frac, _ := strings.Cut(s, ".")
	ms, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || ms <= 0 || ms > 1e14 || len(frac) > 6 {
		return time.Time{}, bad
	}
	var ns int64
	if frac != "" {
		f, err := strconv.ParseUint(frac, 10, 32)
		if err != nil {
			return time.Time{}, bad
		}
		ns = int64(f) * int64(math.Pow10(6-len(frac)))
	}
	return time.UnixMilli(ms).Add(time.Duration(ns)), nil
}

// ParseFrameTimes parses one time per frame; the counts must agree.
func ParseFrameTimes(values []string, frames int) ([]time.Time, error) {
	if len(values) != frames {
		return nil, newError(CodeFrameTiming, ErrInvalidInput, fmt.Errorf("%d frame times for %d frames", len(values), frames))
	}
	out := make([]time.Time, len(values))
	for i, v := range values {
		t, err := ParseFrameTime(v)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", i, err)
		}
		out[i] = t
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// equalStrings reports whether two slices hold the same strings in the same order.
func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
