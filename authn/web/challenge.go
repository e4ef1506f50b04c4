package web

import (
	"errors"
	"io"
	"net/http"

	"github.com/gorilla/sessions"

	"github.com/visage-idp/visage/authn"
	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/risk"
	"github.com/visage-idp/visage/authn/words"
	"github.com/visage-idp/visage/oidc"
)

// pendingLogin loads the login in progress that a selfie or challenge post answers (the caller
// has checked the CSRF token): the auth request, the user, the step-up assessment, and refuses a
// locked account or address. It answers the error itself and returns ok=false.
func (s *Server) pendingLogin(w http.ResponseWriter, r *http.Request, sess *sessions.Session) (oidc.LoginRequest, string, assessment, bool) {
	id := r.FormValue("authRequestID")
	if !s.provider.Bound(r, id) {
		s.refuseUnbound(w, r, true)
		return oidc.LoginRequest{}, "", assessment{}, false
	}
	lr, err := s.provider.LoginRequest(r.Context(), id)
	if err != nil || str(sess, "login_req") != id {
		writeJSON(w, http.StatusBadRequest, verdict{Status: "error", Code: "REQUEST_EXPIRED", Message: "This sign-in has expired. Go back to the application and start again."})
		return oidc.LoginRequest{}, "", assessment{}, false
	}
	userID := str(sess, "login_user")
	if userID == "" {
		writeJSON(w, http.StatusBadRequest, verdict{Status: "error", Code: "REQUEST_EXPIRED", Message: "This sign-in has expired. Go back to the application and start again."})
		return oidc.LoginRequest{}, "", assessment{}, false
	}
	a, err := s.assess(r, lr, userID)
	if err != nil {
		s.internalJSON(w, r, "assess sign-in", err)
		return oidc.LoginRequest{}, "", assessment{}, false
	}
	if msg, locked, err := s.locked(r.Context(), userID, a); err != nil {
		s.internalJSON(w, r, "lockout", err)
		return oidc.LoginRequest{}, "", assessment{}, false
	} else if locked {
		s.audit(r.Context(), a, lr, userID, "locked")
		writeJSON(w, http.StatusTooManyRequests, verdict{Status: string(authn.Declined), Code: "ACCOUNT_LOCKED", Message: msg})
		return oidc.LoginRequest{}, "", assessment{}, false
	}
	return lr, userID, a, true
}

// challengeIssue answers the liveness page's request for a challenge: the method is the one the
// server's policy requires, never one the page asks for. The challenge id is kept in the
// browser session; only that challenge is accepted in the answer.
func (s *Server) challengeIssue(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	sess := s.session(r)
	_ = r.ParseMultipartForm(64 << 10)
	if !checkCSRF(r, sess) {
		s.refuseCSRF(w, r, true)
		return
	}
	_, _, a, ok := s.pendingLogin(w, r, sess)
	if !ok {
		return
	}
	if s.chall == nil || (a.decision.Method != risk.MethodActive && a.decision.Method != risk.MethodFlashing) {
		writeJSON(w, http.StatusConflict, verdict{Status: "error", Code: "NO_CHALLENGE", Message: "This sign-in does not use a live challenge. Reload the page."})
		return
	}
	ch, err := s.chall.Issue(liveness.Method(a.decision.Method))
	if err != nil {
		s.internalJSON(w, r, "issue challenge", err)
		return
	}
	sess.Values["challenge"] = ch.ID
	s.save(w, r, sess)
	writeJSON(w, http.StatusOK, ch)
}

// challengeSubmit verifies the burst answering the session's challenge.
func (s *Server) challengeSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess := s.session(r)
	limit := s.cfg.MaxUploadBytes
	if s.chall != nil {
		limit = s.chall.Config().MaxBurstBytes + 1<<20
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseMultipartForm(limit); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, verdict{Status: "error", Code: "FRAMES_TOO_LARGE", Message: words.For("FRAMES_TOO_LARGE")})
			return
		}
		writeJSON(w, http.StatusBadRequest, verdict{Status: "error", Code: "BAD_REQUEST", Message: "Send the frames as multipart/form-data."})
		return
	}
	if !checkCSRF(r, sess) {
		s.refuseCSRF(w, r, true)
		return
	}
	lr, userID, a, ok := s.pendingLogin(w, r, sess)
	if !ok {
		return
	}
	if s.chall == nil {
		writeJSON(w, http.StatusConflict, verdict{Status: "error", Code: "NO_CHALLENGE", Message: "Live challenges are not enabled."})
		return
	}
	id := r.FormValue("challenge_id")
	if id == "" || id != str(sess, "challenge") {
		writeJSON(w, http.StatusBadRequest, verdict{Status: "error", Code: liveness.CodeChallengeMissing, Message: "The answer does not name this sign-in's challenge."})
		return
	}
	// The challenge is single-use: forget it whatever the outcome.
	delete(sess.Values, "challenge")
	s.save(w, r, sess)
	frames, bad := readFrames(r)
	if bad != nil {
		writeJSON(w, http.StatusBadRequest, bad)
		return
	}
	tmpl, err := s.template(ctx, userID)
	if err != nil {
		s.internalJSON(w, r, "load template", err)
		return
	}
	d, err := s.verifier.VerifyChallenge(ctx, s.chall, id, frames, tmpl)
	if err != nil && d.Code == "" {
		s.internalJSON(w, r, "verify challenge", err)
		return
	}
	// A refused answer (expired, replayed, malformed burst) still counts as a failed attempt.
	s.conclude(w, r, sess, lr, userID, a, d, err != nil)
}

// readFrames collects the "frames" parts and their "frame_times".
func readFrames(r *http.Request) ([]liveness.Frame, *verdict) {
	files := r.MultipartForm.File["frames"]
	if len(files) == 0 {
		return nil, &verdict{Status: "error", Code: "TOO_FEW_FRAMES", Message: "No frames were sent."}
	}
	times, err := liveness.ParseFrameTimes(r.MultipartForm.Value["frame_times"], len(files))
	if err != nil {
		return nil, &verdict{Status: "error", Code: liveness.Code(err), Message: words.For(liveness.Code(err))}
	}
	frames := make([]liveness.Frame, len(files))
	for i, fh := range files {
		f, err := fh.Open()
		if err != nil {
			return nil, &verdict{Status: "error", Code: "BAD_REQUEST", Message: "A frame could not be read."}
		}
		buf, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, &verdict{Status: "error", Code: "BAD_REQUEST", Message: "A frame could not be read."}
		}
		frames[i] = liveness.Frame{Data: buf, At: times[i]}
	}
	return frames, nil
}
