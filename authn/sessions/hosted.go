package sessions

import (
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"

	"github.com/a-h/templ"

	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/risk"
	"github.com/visage-idp/visage/authn/words"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/templates"
)

// captureReply is the JSON the capture script receives: {status, message, redirect}.
type captureReply struct {
	Status   string   `json:"status"`
	Message  string   `json:"message,omitempty"`
	Codes    []string `json:"codes,omitempty"`
	Redirect string   `json:"redirect,omitempty"`
}

// pageHeaders keeps the session token (in the URL) out of caches and Referer headers.
func pageHeaders(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Frame-Options", "DENY")
}

func (s *Service) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	pageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.Render(r.Context(), w); err != nil {
		s.log.ErrorContext(r.Context(), "render", "err", err)
	}
}

// bySessionToken loads the session named by the page's token.
func (s *Service) bySessionToken(r *http.Request) (store.Verification, error) {
	tok := r.PathValue("token")
	if tok == "" || len(tok) > 128 {
		return store.Verification{}, ErrNotFound
	}
	v, err := s.st.GetVerificationByToken(r.Context(), HashKey(tok))
	if errors.Is(err, store.ErrNotFound) {
		return v, ErrNotFound
	}
	return v, err
}

// CallbackURL is where the browser goes when the session is over: the application's
// callback with verificationSessionId and status added, or "" without a callback.
func CallbackURL(v store.Verification) string {
	if v.Callback == "" {
		return ""
	}
	u, err := url.Parse(v.Callback)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("verificationSessionId", v.ID)
	q.Set("status", v.Status)
	u.RawQuery = q.Encode()
	return u.String()
}

var doneMessages = map[string]string{
	store.StatusApproved:    "You are verified. Go back to the application to continue.",
	store.StatusDeclined:    "The verification did not succeed. Go back to the application to try again or choose another way.",
	store.StatusInReview:    "Thank you. Your verification will be reviewed by a person.",
	store.StatusExpired:     "This verification link has expired. Go back to the application to start again.",
	store.StatusAbandoned:   "This verification was not finished in time. Go back to the application to start again.",
	store.StatusNotFinished: "You left this verification. Go back to the application to try again or choose another way.",
	store.StatusKycExpired:  "Your enrolment is no longer valid. Go back to the application to enrol again.",
}

// hostedPage shows the camera for an open session (marking it In Progress), or how it ended.
func (s *Service) hostedPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v, err := s.bySessionToken(r)
	if errors.Is(err, ErrNotFound) {
		s.render(w, r, http.StatusNotFound, templates.ErrorPage("Unknown verification", "This verification link is not valid."))
		return
	} else if err != nil {
		s.log.ErrorContext(ctx, "hosted page", "err", err)
		s.render(w, r, http.StatusInternalServerError, templates.ErrorPage("Error", "Something went wrong on our side. Try again."))
		return
	}
	wf, err := s.st.GetWorkflow(ctx, v.WorkflowID)
	if err != nil {
		s.log.ErrorContext(ctx, "hosted page: workflow", "err", err)
		s.render(w, r, http.StatusInternalServerError, templates.ErrorPage("Error", "Something went wrong on our side. Try again."))
		return
	}
	if v.Status == store.StatusNotStarted || v.Status == store.StatusResubmitted || v.Status == store.StatusInProgress {
		out, err := s.open(ctx, v, wf, Client{IP: risk.ClientIP(r, s.cfg.TrustedProxies), UserAgent: r.UserAgent()})
		switch {
		case err == nil || errors.Is(err, ErrFinished):
			v = out
		case errors.Is(err, store.ErrStatusChanged):
			if v, err = s.st.GetVerification(ctx, v.ID); err != nil {
				s.render(w, r, http.StatusInternalServerError, templates.ErrorPage("Error", "Something went wrong on our side. Try again."))
				return
			}
		default:
			s.log.ErrorContext(ctx, "hosted page: open", "err", err)
			s.render(w, r, http.StatusInternalServerError, templates.ErrorPage("Error", "Something went wrong on our side. Try again."))
			return
		}
	}
	if v.Status != store.StatusInProgress {
		s.render(w, r, http.StatusOK, templates.SessionDonePage(templates.SessionDoneData{Status: v.Status, Message: doneMessages[v.Status], CallbackURL: CallbackURL(v)}))
		return
	}
	base := "/session/" + r.PathValue("token")
	method := LivenessMethod(v, wf)
	d := templates.SessionCaptureData{PostURL: base + "/capture", CSRF: s.csrf(v.ID), Method: method, LeaveURL: base + "/leave"}
	if hasFeature(wf, FeatureLiveness) {
		d.Checks = append(d.Checks, "that a live person is in front of the camera")
	}
	if hasFeature(wf, FeatureFaceMatch) {
		d.Checks = append(d.Checks, "that the face matches the one the application has")
	}
	if hasFeature(wf, FeatureIPAnalysis) {
		d.Checks = append(d.Checks, "where the connection comes from")
	}
	if hasFeature(wf, FeatureLiveness) && method != string(liveness.MethodPassive) {
		s.render(w, r, http.StatusOK, templates.SessionLivenessPage(d, templates.LivenessData{Method: method,
			ChallengeURL: base + "/challenge", PostURL: base + "/capture", CSRF: d.CSRF}))
		return
	}
	s.render(w, r, http.StatusOK, templates.SessionCapturePage(d))
}

// uploadLimit is the largest capture post the session needs from this client: one selfie, or a
// challenge burst when its liveness method (escalated for the client's address, if it would
// be) is a challenge.
func (s *Service) uploadLimit(v store.Verification, wf store.Workflow, ip netip.Addr) int64 {
	limit := s.cfg.MaxUploadBytes
	m := LivenessMethod(v, wf)
	if m != "" && ip.IsValid() && (s.tor.Contains(ip) || s.vpn.Contains(ip)) && risk.Strength(s.cfg.AnonymousMethod) > risk.Strength(m) {
		m = s.cfg.AnonymousMethod
	}
	if s.challenger != nil && m != "" && m != string(liveness.MethodPassive) {
		limit = max(limit, s.challenger.Config().MaxBurstBytes+1<<20)
	}
	return limit
}

// hostedSession loads the session of a hosted page post and checks its CSRF token, after
// parsing the multipart body within the workflow's limit. It answers the errors itself.
func (s *Service) hostedSession(w http.ResponseWriter, r *http.Request) (store.Verification, store.Workflow, bool) {
	pageHeaders(w)
	v, err := s.bySessionToken(r)
	if errors.Is(err, ErrNotFound) {
		writeJSON(w, http.StatusNotFound, captureReply{Status: "error", Message: "This verification link is not valid."})
		return v, store.Workflow{}, false
	} else if err != nil {
		s.internal(w, r, "hosted page", err)
		return v, store.Workflow{}, false
	}
	wf, err := s.st.GetWorkflow(r.Context(), v.WorkflowID)
	if err != nil {
		s.internal(w, r, "hosted page", err)
		return v, wf, false
	}
	limit := s.uploadLimit(v, wf, risk.ClientIP(r, s.cfg.TrustedProxies))
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseMultipartForm(limit); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, captureReply{Status: "error", Message: words.For("IMAGE_TOO_LARGE")})
			return v, wf, false
		}
		writeJSON(w, http.StatusBadRequest, captureReply{Status: "error", Message: "Send the capture as multipart/form-data."})
		return v, wf, false
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.FormValue("csrf_token")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf(v.ID))) != 1 {
		writeJSON(w, http.StatusForbidden, captureReply{Status: "error", Message: "The page's security token is missing or wrong. Reload the page."})
		return v, wf, false
	}
	return v, wf, true
}

// finishedReply answers a post to a session that can no longer be completed.
func (s *Service) finishedReply(w http.ResponseWriter, r *http.Request, v store.Verification, err error) bool {
	page := s.cfg.BaseURL + "/session/" + r.PathValue("token")
	switch {
	case errors.Is(err, ErrFinished):
		next := CallbackURL(v)
		if next == "" {
			next = page
		}
		writeJSON(w, http.StatusConflict, captureReply{Status: v.Status, Message: "This verification is already finished.", Redirect: next})
	case errors.Is(err, store.ErrStatusChanged):
		writeJSON(w, http.StatusConflict, captureReply{Status: "error", Message: "This verification changed meanwhile.", Redirect: page})
	case errors.Is(err, ErrWrongCapture):
		writeJSON(w, http.StatusBadRequest, captureReply{Status: "error", Message: "This capture does not fit the verification. Reload the page.", Redirect: page})
	default:
		return false
	}
	return true
}

// hostedChallenge issues the ACTIVE_3D or FLASHING challenge of the session (static/liveness.js).
func (s *Service) hostedChallenge(w http.ResponseWriter, r *http.Request) {
	v, _, ok := s.hostedSession(w, r)
	if !ok {
		return
	}
	ch, v, err := s.Challenge(r.Context(), v, Client{IP: risk.ClientIP(r, s.cfg.TrustedProxies), UserAgent: r.UserAgent()})
	if s.finishedReply(w, r, v, err) {
		return
	} else if err != nil {
		s.internal(w, r, "hosted challenge", err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

// hostedCapture receives the hosted page's capture: one selfie (field image) from
// static/capture.js, or a challenge burst (challenge_id, frames, frame_times) from
// static/liveness.js.
func (s *Service) hostedCapture(w http.ResponseWriter, r *http.Request) {
	v, _, ok := s.hostedSession(w, r)
	if !ok {
		return
	}
	var in Capture
	if r.MultipartForm != nil && len(r.MultipartForm.File["frames"]) > 0 {
		files := r.MultipartForm.File["frames"]
		times, err := liveness.ParseFrameTimes(r.MultipartForm.Value["frame_times"], len(files))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, captureReply{Status: "error", Message: words.For("FRAME_TIMING")})
			return
		}
		in.ChallengeID = r.FormValue("challenge_id")
		for i, fh := range files {
			f, err := fh.Open()
			if err != nil {
				writeJSON(w, http.StatusBadRequest, captureReply{Status: "error", Message: "A frame could not be read."})
				return
			}
			data, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				writeJSON(w, http.StatusBadRequest, captureReply{Status: "error", Message: "A frame could not be read."})
				return
			}
			in.Burst = append(in.Burst, liveness.Frame{Data: data, At: times[i]})
		}
	} else {
		f, _, err := r.FormFile("image")
		if err != nil {
			writeJSON(w, http.StatusBadRequest, captureReply{Status: "error", Message: "The image field is missing."})
			return
		}
		in.Frame, err = io.ReadAll(f)
		f.Close()
		if err != nil {
			writeJSON(w, http.StatusBadRequest, captureReply{Status: "error", Message: "The image could not be read."})
			return
		}
	}
	out, err := s.Capture(r.Context(), v, in, Client{IP: risk.ClientIP(r, s.cfg.TrustedProxies), UserAgent: r.UserAgent()})
	if s.finishedReply(w, r, out.Session, err) {
		return
	} else if err != nil {
		s.internal(w, r, "hosted capture", err)
		return
	}
	if out.Retry {
		writeJSON(w, http.StatusOK, captureReply{Status: "retry", Message: out.Message, Codes: out.Codes})
		return
	}
	next := CallbackURL(out.Session)
	if next == "" {
		next = s.cfg.BaseURL + "/session/" + r.PathValue("token")
	}
	writeJSON(w, http.StatusOK, captureReply{Status: out.Status, Message: out.Message, Redirect: next})
}

// hostedLeave is the hosted page's "Not now" form: the user leaves the capture, the session is
// Not Finished, and the browser goes back to the application's callback (or the finished page).
func (s *Service) hostedLeave(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pageHeaders(w)
	v, err := s.bySessionToken(r)
	if errors.Is(err, ErrNotFound) {
		s.render(w, r, http.StatusNotFound, templates.ErrorPage("Unknown verification", "This verification link is not valid."))
		return
	} else if err != nil {
		s.log.ErrorContext(ctx, "hosted leave", "err", err)
		s.render(w, r, http.StatusInternalServerError, templates.ErrorPage("Error", "Something went wrong on our side. Try again."))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.render(w, r, http.StatusBadRequest, templates.ErrorPage("Bad request", "The form could not be read. Go back and reload."))
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf_token")), []byte(s.csrf(v.ID))) != 1 {
		s.render(w, r, http.StatusForbidden, templates.ErrorPage("Form expired", "The page's security token is missing or wrong. Go back and reload."))
		return
	}
	if out, err := s.Leave(ctx, v); err == nil {
		v = out
	} else if !errors.Is(err, ErrFinished) && !errors.Is(err, store.ErrStatusChanged) {
		s.log.ErrorContext(ctx, "hosted leave", "err", err)
		s.render(w, r, http.StatusInternalServerError, templates.ErrorPage("Error", "Something went wrong on our side. Try again."))
		return
	} else if v, err = s.st.GetVerification(ctx, v.ID); err != nil {
		s.render(w, r, http.StatusInternalServerError, templates.ErrorPage("Error", "Something went wrong on our side. Try again."))
		return
	}
	next := CallbackURL(v)
	if next == "" {
		next = "/session/" + r.PathValue("token")
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}
