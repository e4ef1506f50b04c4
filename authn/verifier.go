// Package authn decides whether a selfie authenticates a user: a Verifier takes the captured
// frames and the user's face template and returns a Decision with its signals (liveness method
// and score, face-match score and distance, warnings). It is a library, testable without a
// server; the login pages (authn/web) and the Sessions API (authn/sessions) call it.
// Sub-packages hold the face engine (authn/face), presentation-attack detection
// (authn/liveness), the step-up policy (authn/risk) and the HTTP pages.
package authn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/liveness"
)

// Status is the verdict of a verification.
type Status string

// Verdicts. Review means the score fell between the approve and decline bands: the login page
// treats it as not approved (it cannot wait for a human); the Sessions API sends it to review.
const (
	Approved Status = "Approved"
	Review   Status = "In Review"
	Declined Status = "Declined"
)

// Methods that can run: a face match alone (no liveness model configured) or with a liveness
// method of authn/liveness.
const (
	MethodFaceMatch = "FACE_MATCH"
)

// RFC 8176 amr values the Verifier proves: "face" for the face match, "user" for the user
// presence an active challenge (head turn, colour flashes) demonstrates.
const (
	AMRFace = "face"
	AMRUser = "user"
)

// Liveness is the liveness signal of a decision.
type Liveness struct {
	Method   string   `json:"method"`
	Score    int      `json:"score"` // 0-100
	Live     bool     `json:"live"`
	Warnings []string `json:"warnings,omitempty"`
}

// FaceMatch is the face-match signal.
type FaceMatch struct {
	Matcher    string  `json:"matcher"`    // onnx | dlib: the template's matcher
	Score      int     `json:"score"`      // 0-100
	Similarity float64 `json:"similarity"` // [0,1]
	Distance   float64 `json:"distance"`   // the matcher's distance (1-cos for onnx, Euclidean for dlib)
	Band       string  `json:"band"`       // approve | review | decline
}

// Decision is what a verification concluded and why.
type Decision struct {
	Status    Status         `json:"status"`
	Method    string         `json:"method"`
	Liveness  *Liveness      `json:"liveness,omitempty"`
	FaceMatch *FaceMatch     `json:"face_match,omitempty"`
	Warnings  []face.Warning `json:"warnings,omitempty"`
	// Reason is a short human explanation for a decline ("no face found", "not a match").
	Reason string `json:"reason,omitempty"`
	// Code is the Didit-style warning code behind a decline, if any.
	Code string `json:"code,omitempty"`
	// AMR lists the RFC 8176 authentication methods that this verification proves.
	AMR []string `json:"amr,omitempty"`
	// Upgrade, on an approved decision against a template of another matcher (a dlib template
	// under the ONNX matcher), is the replacement template built from the approved probe; the
	// caller seals and stores it.
	Upgrade *face.Template `json:"-"`
	Elapsed time.Duration  `json:"elapsed_ns"`
}

// Verifier runs the face pipeline against a template.
type Verifier struct {
	Engine *face.Engine
	// Passive, when set, runs PASSIVE liveness on every single-frame verification: a selfie is
	// approved only if it is live and matches.
	Passive *liveness.Passive
}

// Verify checks one selfie frame against the template. Bad images and failed checks are
// Declined decisions, not errors; the error is for failures of the system itself (cancelled
// context, full queue, model failure).
func (v *Verifier) Verify(ctx context.Context, frames [][]byte, tmpl *face.Template) (d Decision, err error) {
	start := time.Now()
	d = Decision{Method: MethodFaceMatch, Status: Declined}
	if v.Passive != nil {
		d.Method = string(liveness.MethodPassive)
	}
	defer func() { d.Elapsed = time.Since(start) }()
	if len(frames) == 0 {
		d.Reason, d.Code = "no image was sent", "NO_IMAGE"
		return d, nil
	}
	if tmpl == nil || (len(tmpl.Descriptors) == 0 && len(tmpl.Embeddings) == 0) {
		d.Reason, d.Code = "no enrolled face to compare with", "NO_REFERENCE_IMAGE"
		return d, nil
	}
	if !v.Engine.CanMatch(tmpl) {
		return d, fmt.Errorf("verify: template model %q does not match engine model %q", tmpl.ModelVersion, v.Engine.ModelVersion())
	}
	a, err := v.Engine.Analyze(ctx, frames[0])
	if err != nil {
		if isSystemError(ctx, err) {
			return d, fmt.Errorf("verify: %w", err)
		}
		d.Code = face.Code(err)
		d.Reason = ReasonFor(err)
		return d, nil
	}
	d.Warnings = a.Warnings
	if !a.Usable() {
		for _, w := range a.Warnings {
			if w.Blocking {
				d.Code, d.Reason = w.Code, "the selfie is not good enough: "+w.Message
				break
			}
		}
		return d, nil
	}
	live := true
	if v.Passive != nil {
		res, err := v.Passive.Check(ctx, a.Image, a.Face.Box)
		if err != nil {
			return d, fmt.Errorf("verify: passive liveness: %w", err)
		}
		d.Liveness = livenessSignal(res)
		live = res.Live
	}
	v.match(&d, tmpl, a.Face, live, []string{AMRFace})
	return d, nil
}

// VerifyChallenge checks the answer to an ACTIVE_3D or FLASHING challenge (the burst of frames
// with their capture times) and matches the most frontal frame against the template. A request
// the challenge rejects (unknown, expired or replayed challenge, malformed burst) is a Declined
// decision whose Code says why, with the liveness error returned too so the caller can answer
// 400; model and context failures are returned as errors with an empty Code.
func (v *Verifier) VerifyChallenge(ctx context.Context, ch *liveness.Challenger, id string, frames []liveness.Frame, tmpl *face.Template) (d Decision, err error) {
	start := time.Now()
	d = Decision{Status: Declined}
	defer func() { d.Elapsed = time.Since(start) }()
	if tmpl == nil || (len(tmpl.Descriptors) == 0 && len(tmpl.Embeddings) == 0) {
		d.Reason, d.Code = "no enrolled face to compare with", "NO_REFERENCE_IMAGE"
		return d, nil
	}
	res, err := ch.Verify(ctx, id, frames, tmpl)
	d.Method = string(res.Method)
	d.Liveness = livenessSignal(res)
	if err != nil {
		if errors.Is(err, liveness.ErrInvalidInput) || errors.Is(err, liveness.ErrChallenge) {
			d.Code, d.Reason = liveness.Code(err), "the challenge answer was refused"
			return d, err
		}
		return d, fmt.Errorf("verify challenge: %w", err)
	}
	if res.Probe == nil {
		d.Code, d.Reason = firstWarning(res, "NO_FACE_DETECTED"), "no usable face in the frames"
		return d, nil
	}
	v.match(&d, tmpl, res.Probe.Face, res.Live, []string{AMRFace, AMRUser})
	return d, nil
}

// match fills the face-match signal and the verdict: approved only when live and in the approve
// band.
func (v *Verifier) match(d *Decision, tmpl *face.Template, probe face.Face, live bool, amr []string) {
	m := v.Engine.Match(tmpl, probe)
	d.FaceMatch = &FaceMatch{Matcher: m.Matcher, Score: m.Score, Similarity: m.Similarity, Distance: m.Distance, Band: string(m.Band)}
	switch {
	case !live:
		d.Status = Declined
		d.Code = "LIVENESS_FACE_ATTACK"
		if d.Liveness != nil && len(d.Liveness.Warnings) > 0 {
			d.Code = d.Liveness.Warnings[0]
		}
		d.Reason = "the liveness check failed (" + d.Code + ")"
	case m.Band == face.BandApprove:
		d.Status = Approved
		d.AMR = amr
		if !v.Engine.Current(tmpl) {
			// The template was made by another matcher (dlib): this approved selfie seals its
			// replacement.
			d.Upgrade = v.Engine.TemplateFrom(probe)
		}
	case m.Band == face.BandReview:
		d.Status, d.Code, d.Reason = Review, "LOW_FACE_MATCH_SIMILARITY", "the face is not a clear match"
	default:
		d.Status, d.Code, d.Reason = Declined, "FACE_MATCH_DECLINED", "the face does not match the enrolled face"
	}
}

func livenessSignal(r liveness.Result) *Liveness {
	l := &Liveness{Method: string(r.Method), Score: r.Score, Live: r.Live}
	for _, w := range r.Warnings {
		l.Warnings = append(l.Warnings, w.Code)
	}
	return l
}

func firstWarning(r liveness.Result, def string) string {
	if len(r.Warnings) > 0 {
		return r.Warnings[0].Code
	}
	return def
}

// isSystemError separates failures of the service from failures of the image.
func isSystemError(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, face.ErrQueueFull)
}

// ReasonFor explains, in words for the user, why an image was refused.
func ReasonFor(err error) string {
	switch {
	case errors.Is(err, face.ErrNoFace):
		return "no face was found in the picture"
	case errors.Is(err, face.ErrMultipleFaces):
		return "more than one face is in the picture"
	case errors.Is(err, face.ErrTooLarge):
		return "the image is too large"
	case errors.Is(err, face.ErrUnsupportedFormat):
		return "the image must be a JPEG or PNG"
	case errors.Is(err, face.ErrCorrupt):
		return "the image could not be read"
	}
	return "the image could not be checked (" + face.Code(err) + ")"
}
