package face

import (
	"context"
	"errors"
	"fmt"
)

// Warning and error codes, in the style of Didit's face-match API. Every Warning carries one of
// the first nine; Code maps any error returned by this package to one of them or to one of the
// error-only codes below.
const (
	CodeNoFaceDetected         = "NO_FACE_DETECTED"
	CodeMultipleFaces          = "MULTIPLE_FACES"
	CodeFaceTooSmall           = "FACE_TOO_SMALL"
	CodeFaceTooDark            = "FACE_TOO_DARK"
	CodeFaceTooBright          = "FACE_TOO_BRIGHT"
	CodeFaceBlurred            = "FACE_BLURRED"
	CodeFaceNotFrontal         = "FACE_NOT_FRONTAL"
	CodeFaceCutOff             = "FACE_CUT_OFF"
	CodeBackgroundFacesIgnored = "BACKGROUND_FACES_IGNORED"

	CodeImageTooLarge     = "IMAGE_TOO_LARGE"
	CodeImageCorrupt      = "IMAGE_CORRUPT"
	CodeUnsupportedFormat = "UNSUPPORTED_IMAGE_FORMAT"
	CodeLowQuality        = "LOW_QUALITY" // ErrQuality without a more precise warning code
	CodeEnrolmentMismatch = "ENROLMENT_FACES_DIFFER"
	CodeTemplateKey       = "TEMPLATE_KEY_ERROR"
	CodeModelMismatch     = "MODEL_VERSION_MISMATCH"
	CodeBusy              = "ENGINE_BUSY"
	CodeEngineClosed      = "ENGINE_CLOSED"
	CodeCanceled          = "CANCELED"
	CodeTimeout           = "TIMEOUT"
	CodeInternal          = "INTERNAL_ERROR"
	CodeInvalidArgument   = "INVALID_ARGUMENT"
)

// Sentinel errors. Errors returned by this package wrap one of them (test with errors.Is) and
// are usually an *Error carrying the precise code (get it with Code).
var (
	ErrTooLarge          = errors.New("face: image too large")
	ErrCorrupt           = errors.New("face: corrupt image")
	ErrUnsupportedFormat = errors.New("face: unsupported image format (JPEG or PNG only)")
	ErrNoFace            = errors.New("face: no face detected")
	ErrMultipleFaces     = errors.New("face: more than one face of comparable size")
	ErrQuality           = errors.New("face: image quality too low for matching")
	ErrEnrolmentMismatch = errors.New("face: enrolment photos show different people")
	ErrTemplateKey       = errors.New("face: template cannot be opened with the biometric key ring")
	ErrModelMismatch     = errors.New("face: template was made by another model version")
	ErrQueueFull         = errors.New("face: engine queue full")
	ErrClosed            = errors.New("face: engine closed")
	ErrInvalidArgument   = errors.New("face: invalid argument")
	ErrInternal          = errors.New("face: internal engine error")
)

// Error is the error type of this package: a Didit-style Code, the sentinel it belongs to
// (Err, reachable with errors.Is) and an optional cause with the details.
type Error struct {
	Code  string // e.g. "IMAGE_CORRUPT", "FACE_BLURRED"
	Err   error  // one of the sentinel errors above
	Cause error  // the underlying error, if any (e.g. from image/jpeg or crypto/cipher)
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%v (%s): %v", e.Err, e.Code, e.Cause)
	}
	return fmt.Sprintf("%v (%s)", e.Err, e.Code)
}

// Unwrap returns both the sentinel and the cause, so errors.Is works with either.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

func newError(code string, sentinel, cause error) *Error {
	return &Error{Code: code, Err: sentinel, Cause: cause}
}

// Code maps an error to its Didit-style code: the Code of the first *Error in the chain,
// else the code of a known sentinel or context error, else "INTERNAL_ERROR". Code(nil) is "".
func Code(err error) string {
	if err == nil {
		return ""
	}
	var fe *Error
	if errors.As(err, &fe) && fe.Code != "" {
		return fe.Code
	}
	for _, m := range []struct {
		err  error
		code string
	}{
		{ErrTooLarge, CodeImageTooLarge},
		{ErrCorrupt, CodeImageCorrupt},
		{ErrUnsupportedFormat, CodeUnsupportedFormat},
		{ErrNoFace, CodeNoFaceDetected},
		{ErrMultipleFaces, CodeMultipleFaces},
		{ErrQuality, CodeLowQuality},
		{ErrEnrolmentMismatch, CodeEnrolmentMismatch},
		{ErrTemplateKey, CodeTemplateKey},
		{ErrModelMismatch, CodeModelMismatch},
		{ErrQueueFull, CodeBusy},
		{ErrClosed, CodeEngineClosed},
		{ErrInvalidArgument, CodeInvalidArgument},
		{context.DeadlineExceeded, CodeTimeout},
		{context.Canceled, CodeCanceled},
	} {
		if errors.Is(err, m.err) {
			return m.code
		}
	}
	return CodeInternal
}
