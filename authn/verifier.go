// Package authn decides whether a selfie authenticates a user: a Verifier takes the captured
// frames and the user's face template and returns a Decision with its signals (face-match score
// and distance, warnings, method). It is a library, testable without a server; the login pages
// (authn/web) and later the Sessions API call it. Sub-packages hold the face engine
// (authn/face) and the HTTP pages (authn/web).
package authn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/visage-idp/visage/authn/face"
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

// Methods that can run.
const (
	MethodFaceMatch = "FACE_MATCH"
)

// FaceMatch is the face-match signal.
type FaceMatch struct {
	Score      int     `json:"score"`      // 0-100
	Similarity float64 `json:"similarity"` // [0,1]
	Distance   float64 `json:"distance"`   // Euclidean distance of the descriptors
	Band       string  `json:"band"`       // approve | review | decline
}

// Decision is what a verification concluded and why.
type Decision struct {
	Status    Status         `json:"status"`
	Method    string         `json:"method"`
	FaceMatch *FaceMatch     `json:"face_match,omitempty"`
	Warnings  []face.Warning `json:"warnings,omitempty"`
	// Reason is a short human explanation for a decline ("no face found", "not a match").
	Reason string `json:"reason,omitempty"`
	// Code is the Didit-style warning code behind a decline, if any.
	Code string `json:"code,omitempty"`
	// AMR lists the RFC 8176 authentication methods that this verification proves.
	AMR     []string      `json:"amr,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Verifier runs the face pipeline against a template.
type Verifier struct {
	Engine *face.Engine
}

// Verify checks one selfie frame against the template. Bad images and failed checks are
// Declined decisions, not errors; the error is for failures of the system itself (cancelled
// context, full queue, model failure).
func (v *Verifier) Verify(ctx context.Context, frames [][]byte, tmpl *face.Template) (Decision, error) {
	start := time.Now()
	d := Decision{Method: MethodFaceMatch, Status: Declined}
	defer func() { d.Elapsed = time.Since(start) }()
	if len(frames) == 0 {
		d.Reason, d.Code = "no image was sent", "NO_IMAGE"
		return d, nil
	}
	if tmpl == nil || len(tmpl.Descriptors) == 0 {
		d.Reason, d.Code = "no enrolled face to compare with", "NO_REFERENCE_IMAGE"
		return d, nil
	}
	if tmpl.ModelVersion != v.Engine.ModelVersion() {
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
	m := v.Engine.Match(tmpl, a.Face.Descriptor)
	d.FaceMatch = &FaceMatch{Score: m.Score, Similarity: m.Similarity, Distance: m.Distance, Band: string(m.Band)}
	switch m.Band {
	case face.BandApprove:
		d.Status = Approved
		d.AMR = []string{"face"}
	case face.BandReview:
		d.Status, d.Code, d.Reason = Review, "LOW_FACE_MATCH_SIMILARITY", "the face is not a clear match"
	default:
		d.Code, d.Reason = "FACE_MATCH_DECLINED", "the face does not match the enrolled face"
	}
	return d, nil
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
