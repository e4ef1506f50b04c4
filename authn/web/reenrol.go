package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gorilla/sessions"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/risk"
	"github.com/visage-idp/visage/authn/words"
	"github.com/visage-idp/visage/oidc"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/templates"
)

// Re-enrolment replaces a user's face template when their face has changed. It is offered only
// within ReenrolWindow of a sign-in that matched a selfie (a known-device sign-in is not enough),
// and the new face is captured through an ACTIVE_3D challenge, so neither a stolen session an
// hour old nor a photo can replace anybody's face.

// reenrolSession returns the SSO session if it allows re-enrolment, or answers why not.
func (s *Server) reenrolSession(w http.ResponseWriter, r *http.Request, sess *sessions.Session, asJSON bool) (store.Session, bool) {
	refuse := func(status int, code, msg string) {
		if asJSON {
			writeJSON(w, status, verdict{Status: "error", Code: code, Message: msg})
			return
		}
		s.errorPage(w, r, status, "Re-enrolment not allowed", msg)
	}
	ss, ok := s.liveSession(r.Context(), sess)
	switch {
	case !ok:
		refuse(http.StatusUnauthorized, "NOT_SIGNED_IN", "Sign in with a selfie first, then re-enrol within a few minutes.")
	case oidc.ACRLevel(ss.ACR) < oidc.ACRLevel(oidc.ACRSelfie):
		refuse(http.StatusForbidden, "SELFIE_REQUIRED", "Your last sign-in did not use a selfie. Sign in with a selfie, then re-enrol.")
	case s.now().Sub(ss.AuthTime) > s.cfg.ReenrolWindow:
		refuse(http.StatusForbidden, "SIGN_IN_TOO_OLD", fmt.Sprintf("Re-enrolment is only possible within %s of a selfie sign-in. Sign in again.", s.cfg.ReenrolWindow))
	case s.chall == nil:
		refuse(http.StatusServiceUnavailable, "NO_CHALLENGE", "Live challenges are not enabled on this server.")
	default:
		return ss, true
	}
	return ss, false
}

func (s *Server) reenrolPage(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if _, ok := s.reenrolSession(w, r, sess, false); !ok {
		return
	}
	csrf := csrfToken(sess)
	s.save(w, r, sess)
	s.render(w, r, http.StatusOK, templates.LivenessPage(templates.LivenessData{Title: "Re-enrol your face",
		Intro: "Follow the head-turn instructions: the frames become your new face template.", Method: string(liveness.MethodActive3D),
		ChallengeURL: "/account/reenrol/challenge", PostURL: "/account/reenrol", CSRF: csrf}))
}

func (s *Server) reenrolChallenge(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	_ = r.ParseMultipartForm(64 << 10)
	sess := s.session(r)
	if !checkCSRF(r, sess) {
		s.refuseCSRF(w, r, true)
		return
	}
	if _, ok := s.reenrolSession(w, r, sess, true); !ok {
		return
	}
	ch, err := s.chall.Issue(liveness.MethodActive3D)
	if err != nil {
		s.internalJSON(w, r, "issue challenge", err)
		return
	}
	sess.Values["reenrol_challenge"] = ch.ID
	s.save(w, r, sess)
	writeJSON(w, http.StatusOK, ch)
}

// CodeReenrolMismatch is the answer to a re-enrolment whose new face does not match the current
// template.
const CodeReenrolMismatch = "REENROL_FACE_MISMATCH"

func (s *Server) reenrolSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess := s.session(r)
	if s.chall == nil {
		writeJSON(w, http.StatusServiceUnavailable, verdict{Status: "error", Code: "NO_CHALLENGE", Message: "Live challenges are not enabled on this server."})
		return
	}
	limit := s.chall.Config().MaxBurstBytes + 1<<20
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseMultipartForm(limit); err != nil {
		writeJSON(w, http.StatusBadRequest, verdict{Status: "error", Code: "BAD_REQUEST", Message: words.For("FRAMES_TOO_LARGE")})
		return
	}
	if !checkCSRF(r, sess) {
		s.refuseCSRF(w, r, true)
		return
	}
	ss, ok := s.reenrolSession(w, r, sess, true)
	if !ok {
		return
	}
	id := r.FormValue("challenge_id")
	if id == "" || id != str(sess, "reenrol_challenge") {
		writeJSON(w, http.StatusBadRequest, verdict{Status: "error", Code: liveness.CodeChallengeMissing, Message: "The answer does not name your re-enrolment challenge."})
		return
	}
	delete(sess.Values, "reenrol_challenge")
	s.save(w, r, sess)
	frames, bad := readFrames(r)
	if bad != nil {
		writeJSON(w, http.StatusBadRequest, bad)
		return
	}
	// The challenge checks that every frame shows the same live, turning head; the new face is
	// then compared with the current template below (a stolen session must not swap the face).
	current, err := s.template(ctx, ss.UserID)
	if err != nil {
		s.internalJSON(w, r, "load template", err)
		return
	}
	res, err := s.chall.Verify(ctx, id, frames, nil)
	if err != nil {
		if errors.Is(err, liveness.ErrInvalidInput) || errors.Is(err, liveness.ErrChallenge) {
			writeJSON(w, http.StatusBadRequest, verdict{Status: "Declined", Code: liveness.Code(err), Message: words.For(liveness.Code(err))})
			return
		}
		s.internalJSON(w, r, "re-enrol challenge", err)
		return
	}
	if !res.Live || res.Probe == nil || !res.Probe.Usable() {
		code := "LIVENESS_FACE_ATTACK"
		if len(res.Warnings) > 0 {
			code = res.Warnings[0].Code
		}
		s.log.InfoContext(ctx, "re-enrolment refused", "user", ss.UserID, "code", code)
		writeJSON(w, http.StatusOK, verdict{Status: "Declined", Code: code, Message: words.For(code)})
		return
	}
	now := s.now()
	if current != nil {
		// The new face must match the current one at least in the review band: a face can age,
		// grow a beard or change glasses, not become someone else's. A change beyond that is
		// refused (an administrator re-enrols the user after checking who they are).
		if m := s.engine.Match(current, res.Probe.Face); m.Band == face.BandDecline {
			if err := s.store.AppendAudit(ctx, store.AuditEvent{At: now, UserID: ss.UserID, IP: risk.ClientIP(r, s.cfg.TrustedProxies).String(), Method: string(liveness.MethodActive3D),
				Outcome: "reenrol_refused", Reason: fmt.Sprintf("new face does not match the current template: face match %s score %d (%s, distance %.3f) %s", m.Matcher, m.Score, m.Band, m.Distance, m.Code)}); err != nil {
				s.log.ErrorContext(ctx, "audit", "err", err)
			}
			s.log.InfoContext(ctx, "re-enrolment refused", "user", ss.UserID, "code", CodeReenrolMismatch)
			writeJSON(w, http.StatusOK, verdict{Status: "Declined", Code: CodeReenrolMismatch,
				Message: words.For(CodeReenrolMismatch)})
			return
		}
	}
	tmpl := s.engine.TemplateFrom(res.Probe.Face)
	tmpl.CreatedAt = now
	sealed, err := s.keys.Seal(tmpl)
	if err != nil {
		s.internalJSON(w, r, "seal template", err)
		return
	}
	if err := s.store.PutTemplate(ctx, store.Template{UserID: ss.UserID, KeyID: s.keys.PrimaryID(), ModelVersion: tmpl.ModelVersion, Sealed: sealed, CreatedAt: now}); err != nil {
		s.internalJSON(w, r, "store template", err)
		return
	}
	if err := s.store.AppendAudit(ctx, store.AuditEvent{At: now, UserID: ss.UserID, IP: risk.ClientIP(r, s.cfg.TrustedProxies).String(), Method: string(liveness.MethodActive3D),
		Outcome: "reenrolled", Reason: "face template replaced after an active challenge"}); err != nil {
		s.log.ErrorContext(ctx, "audit", "err", err)
	}
	s.log.InfoContext(ctx, "face re-enrolled", "user", ss.UserID)
	writeJSON(w, http.StatusOK, verdict{Status: "Approved", Message: "Your new face is enrolled.", Redirect: "/account/devices"})
}
