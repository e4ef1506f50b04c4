package liveness

import (
	"context"
	"errors"
	"fmt"

	"github.com/visage-idp/visage/authn/face"
)

// Method is a liveness method, named as in Didit's API.
type Method string

// The three methods.
const (
	// MethodPassive checks one frame with the fused MiniFASNet models.
	MethodPassive Method = "PASSIVE"
	// MethodActive3D checks a burst of frames in which the user turns the head as challenged.
	MethodActive3D Method = "ACTIVE_3D"
	// MethodFlashing checks a burst of frames taken while the screen flashes a challenged colour
	// sequence onto the face.
	MethodFlashing Method = "FLASHING"
)

// Valid reports whether m is one of the three methods.
func (m Method) Valid() bool {
	return m == MethodPassive || m == MethodActive3D || m == MethodFlashing
}

// ParseMethod accepts a method name in any case ("passive", "ACTIVE_3D").
func ParseMethod(s string) (Method, error) {
	m := Method(upper(s))
	if !m.Valid() {
		return "", newError(CodeInvalidMethod, ErrInvalidInput, fmt.Errorf("unknown liveness method %q (want PASSIVE, ACTIVE_3D or FLASHING)", s))
	}
	return m, nil
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// Warning and error codes, Didit style. A failed check is a Warning in a Result whose Live is
// false; a request that cannot be checked at all (bad input, unusable challenge) is an *Error
// with one of these codes, and the Result returned with it repeats it as a Warning.
const (
	// Passive.
	CodeFaceAttack     = "LIVENESS_FACE_ATTACK"  // the fused passive score is below the threshold
	CodeNoFaceDetected = face.CodeNoFaceDetected // NO_FACE_DETECTED: a frame without a usable face
	CodeMultipleFaces  = face.CodeMultipleFaces  // MULTIPLE_FACES

	// Challenge state.
	CodeChallengeMissing  = "CHALLENGE_MISSING"   // no challenge id was sent
	CodeChallengeUnknown  = "CHALLENGE_NOT_FOUND" // never issued, or swept long ago
	CodeChallengeExpired  = "CHALLENGE_EXPIRED"   // answered after its deadline
	CodeChallengeReplayed = "CHALLENGE_REPLAYED"  // answered before: a challenge is single-use

	// Burst shape.
	CodeTooFewFrames     = "TOO_FEW_FRAMES"
	CodeTooManyFrames    = "TOO_MANY_FRAMES"
	CodeFramesTooLarge   = "FRAMES_TOO_LARGE"    // a frame or the whole burst over its byte limit
	CodeFramesOutOfOrder = "FRAMES_OUT_OF_ORDER" // capture times not strictly increasing
	CodeFrameTiming      = "FRAME_TIMING"        // capture times missing, or spanning more than the challenge allows
	CodeDuplicateFrames  = "DUPLICATE_FRAMES"    // the same bytes sent twice in a burst
	CodeInvalidMethod    = "INVALID_METHOD"
	CodeModelUnavailable = "MODEL_UNAVAILABLE"

	// ACTIVE_3D.
	CodeWrongMovementOrder = "WRONG_MOVEMENT_ORDER"    // the head turns are not the issued ones, in the issued order
	CodeMovementIncomplete = "MOVEMENT_NOT_COMPLETED"  // a turn was never wide enough, or the burst does not start and end frontal
	CodeFlatMotion         = "FLAT_MOTION"             // the turned faces are a planar warp of the frontal one (a photo)
	CodeFaceChanged        = "FACE_CHANGED"            // not the same face in every frame
	CodeFaceMismatch       = "FACE_MISMATCH"           // the frames do not match the reference template
	CodeColorSequence      = "COLOR_SEQUENCE_MISMATCH" // FLASHING: the reflections do not follow the issued colours
	CodeNoColorReflection  = "NO_COLOR_REFLECTION"     // FLASHING: the face does not change colour at all (a fixed video or photo)
	CodeInsufficientFrames = "INSUFFICIENT_USABLE_FRAMES"
)

// Sentinel errors; errors from this package wrap one of them (errors.Is) and are usually an
// *Error with a precise Code (get it with Code).
var (
	// ErrInvalidInput: the request is malformed (frame count, sizes, times, method). The handler
	// answers 400; nothing is kept.
	ErrInvalidInput = errors.New("liveness: invalid input")
	// ErrChallenge: the challenge id is missing, unknown, expired or already used.
	ErrChallenge = errors.New("liveness: challenge not usable")
	// ErrModel: the ONNX models could not be loaded or run.
	ErrModel = errors.New("liveness: model failure")
	// ErrClosed: the Passive or Challenger was closed.
	ErrClosed = errors.New("liveness: closed")
)

// Error carries a Didit-style code, the sentinel it belongs to and the cause.
type Error struct {
	Code  string
	Err   error
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%v (%s): %v", e.Err, e.Code, e.Cause)
	}
	return fmt.Sprintf("%v (%s)", e.Err, e.Code)
}

// Unwrap returns the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

func newError(code string, sentinel, cause error) *Error {
	return &Error{Code: code, Err: sentinel, Cause: cause}
}

// Code returns the code of the first *Error (of this package or of authn/face) in err's chain,
// "TIMEOUT"/"CANCELED" for context errors, "INTERNAL_ERROR" otherwise, "" for nil.
func Code(err error) string {
	if err == nil {
		return ""
	}
	var le *Error
	if errors.As(err, &le) && le.Code != "" {
		return le.Code
	}
	var fe *face.Error
	if errors.As(err, &fe) && fe.Code != "" {
		return fe.Code
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return face.CodeTimeout
	case errors.Is(err, context.Canceled):
		return face.CodeCanceled
	}
	return face.CodeInternal
}

// Warning is one failed or noteworthy check, with the measured value that caused it.
type Warning struct {
	Code    string  `json:"code"`
	Value   float64 `json:"value"`
	Message string  `json:"message"`
}

// Result is the outcome of one liveness check.
type Result struct {
	Method Method `json:"method"`
	// Score is 0-100: for PASSIVE 100 x the fused probability of a real face; for ACTIVE_3D
	// and FLASHING the weakest of the sub-scores (passive, motion or colour), so that one
	// failed check drives it down.
	Score    int       `json:"score"`
	Live     bool      `json:"live"`
	Warnings []Warning `json:"warnings,omitempty"`
	// Frames is how many frames were analysed (1 for PASSIVE).
	Frames int `json:"frames"`
	// Probe is the analysis of the most frontal usable frame of a burst, for the caller's face
	// match (the Verifier need not analyse the frames again). Never serialised, never logged.
	Probe *face.Analysis `json:"-"`
}

// HasWarning reports whether the result carries a warning with that code.
func (r Result) HasWarning(code string) bool {
	for _, w := range r.Warnings {
		if w.Code == code {
			return true
		}
	}
	return false
}

func (r *Result) warn(code string, value float64, format string, args ...any) {
	r.Warnings = append(r.Warnings, Warning{Code: code, Value: value, Message: fmt.Sprintf(format, args...)})
}
