// Package words is the catalogue of what a person is told about a face, liveness or lockout
// outcome on the selfie, register and hosted Sessions pages: one plain sentence with the next
// step for every code. Codes and measurements belong in logs, the audit and the console (and
// in a separate JSON code field the scripts read); they never appear in these sentences.
package words

import (
	"fmt"
	"math"
	"time"
)

// Fallback is said for a code the catalogue does not know.
const Fallback = "We could not check your selfie. Take a new one and try again."

// catalogue maps every face, liveness and sign-in outcome code to its sentence.
var catalogue = map[string]string{
	// The face engine (authn/face).
	"NO_FACE_DETECTED":         "We could not see a face. Move your whole face into the oval and look at the camera.",
	"MULTIPLE_FACES":           "More than one face is in the picture. Make sure only you are in front of the camera.",
	"FACE_TOO_SMALL":           "Your face is too far away. Move closer so that your face fills the oval.",
	"FACE_TOO_DARK":            "The picture is too dark. Find more light, for example face a window or a lamp, and try again.",
	"FACE_TOO_BRIGHT":          "The picture is too bright. Move out of direct light and try again.",
	"FACE_BLURRED":             "The picture is blurred. Hold still, wipe the camera lens and try again.",
	"FACE_NOT_FRONTAL":         "Look straight at the camera, with your head level, and try again.",
	"FACE_CUT_OFF":             "Part of your face is outside the picture. Move your whole face into the oval.",
	"BACKGROUND_FACES_IGNORED": "Someone else is in the picture. Make sure only you are in front of the camera.",
	"IMAGE_TOO_LARGE":          "The picture is too large to send. Take a new selfie with the camera on this page.",
	"IMAGE_CORRUPT":            "The picture could not be read. Take a new selfie.",
	"UNSUPPORTED_IMAGE_FORMAT": "The picture must be a photo from the camera. Take a new selfie with the camera on this page.",
	"LOW_QUALITY":              "The picture is not clear enough. Find more light, hold still and try again.",
	"ENROLMENT_FACES_DIFFER":   "The photos do not all show the same face. Take every photo of the same person.",
	"TEMPLATE_KEY_ERROR":       "Your enrolled face cannot be used right now. Try again later, or ask your administrator for help.",
	"MODEL_VERSION_MISMATCH":   "Your enrolled face needs to be enrolled again. Ask your administrator for help.",
	"ENGINE_BUSY":              "The server is busy and nothing was changed. Try again in a few seconds.",
	"ENGINE_CLOSED":            "The server is restarting. Try again in a minute.",
	"CANCELED":                 "The check stopped before it finished. Try again.",
	"TIMEOUT":                  "The check took too long. Try again.",
	"INTERNAL_ERROR":           "Something went wrong on our side and nothing was changed. Try again.",
	"INVALID_ARGUMENT":         "The picture could not be used. Take a new selfie.",

	// Liveness (authn/liveness).
	"LIVENESS_FACE_ATTACK":       "We could not confirm that a real person is in front of the camera. Use the camera directly, in good light, with nothing covering your face, and try again.",
	"CHALLENGE_MISSING":          "This live check is missing. Reload the page and try again.",
	"CHALLENGE_NOT_FOUND":        "This live check has expired. Reload the page and try again.",
	"CHALLENGE_EXPIRED":          "This live check took too long and has expired. Reload the page and try again.",
	"CHALLENGE_REPLAYED":         "This live check was already used. Reload the page and try again.",
	"CHALLENGE_CAPACITY":         "Too many people are signing in right now. Wait a moment and try again.",
	"TOO_FEW_FRAMES":             "Not enough of the video was recorded. Keep your face in the oval until the check ends, then try again.",
	"TOO_MANY_FRAMES":            "The recording could not be used. Reload the page and try again.",
	"FRAMES_TOO_LARGE":           "The recording is too large to send. Reload the page and try again.",
	"FRAMES_OUT_OF_ORDER":        "The recording could not be used. Reload the page and try again.",
	"FRAME_TIMING":               "The recording did not follow the check's timing. Reload the page and follow the steps without pausing.",
	"DUPLICATE_FRAMES":           "The recording looked frozen. Make sure the camera is working, reload the page and try again.",
	"INVALID_METHOD":             "This check is not available. Reload the page and try again.",
	"MODEL_UNAVAILABLE":          "The live check is not available right now. Try again later.",
	"WRONG_MOVEMENT_ORDER":       "Turn your head in the order shown on the screen, then try again.",
	"MOVEMENT_NOT_COMPLETED":     "Turn your head further each time you are asked, and start and end looking straight at the camera.",
	"FLAT_MOTION":                "We could not confirm a real face. Use the camera directly, not a photo or a screen, and try again.",
	"FACE_CHANGED":               "Keep the same face in the oval for the whole check, and try again.",
	"FACE_MISMATCH":              "The face in the check does not match your enrolled face. Try again, or check your username.",
	"COLOR_SEQUENCE_MISMATCH":    "The screen colours did not show on your face. Turn the screen brightness up, move closer and try again.",
	"NO_COLOR_REFLECTION":        "The screen colours did not show on your face. Turn the screen brightness up, move closer and try again.",
	"INSUFFICIENT_USABLE_FRAMES": "Your face was not clear enough during the check. Find more light, keep your whole face in the oval and try again.",

	// Sign-in decisions (authn, authn/web, authn/sessions).
	"FACE_MATCH_DECLINED":       "The face does not match the enrolled face. Try again, or check your username.",
	"LOW_FACE_MATCH_SIMILARITY": "We could not clearly match your face. Look straight at the camera, in good light, and try again.",
	"LOW_LIVENESS_SCORE":        "We could not confirm that a real person is in front of the camera. Use the camera directly, in good light, and try again.",
	"NO_REFERENCE_IMAGE":        "There is no enrolled face to compare with. Enrol your face first.",
	"NO_IMAGE":                  "No picture was sent. Take a selfie and try again.",
	"IP_VPN_OR_TOR_DETECTED":    "Your connection goes through a VPN or Tor. Turn it off and try again.",
	"ACCOUNT_LOCKED":            "Too many failed attempts. Wait a few minutes and try again.",
	"RATE_LIMITED":              "Too many requests. Wait a moment and try again.",
	"BUSY":                      "The server is busy and nothing was changed. Try again in a few seconds.",
	"INTERNAL":                  "Something went wrong on our side and nothing was changed. Try again.",
	"BAD_REQUEST":               "The picture could not be sent. Reload the page and try again.",
	"CSRF":                      "This page has expired. Reload the page and try again.",
	"REQUEST_EXPIRED":           "This sign-in has expired. Go back to the application and start again.",
	"REENROL_FACE_MISMATCH":     "This face does not match the face enrolled on your account, so it cannot replace it here. Ask an administrator to re-enrol you.",
	"REQUEST_NOT_BOUND":         "This sign-in was started in another browser. Go back to the application and start again here.",
	"ACTIVE_LIVENESS_REQUIRED":  "This sign-in needs a short live check. Reload the page and follow the steps.",
	"NO_CHALLENGE":              "This sign-in does not need a live check. Reload the page.",
	"INVALID_USERNAME":          "Choose a username of 3 to 64 letters, digits, dots, dashes or underscores, with no spaces.",
	"INVALID_DISPLAY_NAME":      "Choose a shorter display name.",
	"INVALID_EMAIL":             "Enter a valid email address, or leave the email empty.",
	"USERNAME_TAKEN":            "That username is taken. Choose another one.",
	"EMAIL_TAKEN":               "That email address is already used by another account. Use another one, or leave it empty.",
}

// For returns the sentence for code, or Fallback.
func For(code string) string {
	if m, ok := catalogue[code]; ok {
		return m
	}
	return Fallback
}

// Known reports whether the catalogue has a sentence for code.
func Known(code string) bool {
	_, ok := catalogue[code]
	return ok
}

// Codes returns every code of the catalogue (in no order).
func Codes() []string {
	out := make([]string, 0, len(catalogue))
	for c := range catalogue {
		out = append(out, c)
	}
	return out
}

// Who is whose failures or requests were counted for a lockout.
type Who int

const (
	// Account: failed sign-ins to one account.
	Account Who = iota
	// Network: failed sign-ins from the person's network.
	Network
	// Address: too many requests from the person's address (the rate limiter).
	Address
	// NetworkRequests: too many requests from the person's network (the rate limiter).
	NetworkRequests
)

// Lockout says that the person must wait, and for how long, in words ("Try again in 3
// minutes.").
func Lockout(who Who, wait time.Duration) string {
	var what string
	switch who {
	case Account:
		what = "There were too many failed attempts on this account."
	case Network:
		what = "There were too many failed attempts from your network."
	case Address:
		what = "There were too many requests from your device."
	default:
		what = "There were too many requests from your network."
	}
	return what + " Try again in " + Wait(wait) + "."
}

// Wait says a wait as a person would read it: "a second", "20 seconds", "a minute", "3
// minutes" (rounded up).
func Wait(d time.Duration) string {
	secs := int(math.Ceil(d.Seconds()))
	switch {
	case secs <= 1:
		return "a second"
	case secs < 60:
		return fmt.Sprintf("%d seconds", secs)
	case secs <= 60:
		return "a minute"
	default:
		return fmt.Sprintf("%d minutes", (secs+59)/60)
	}
}
