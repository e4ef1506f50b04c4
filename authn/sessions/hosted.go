package sessions

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/a-h/templ"

	"github.com/visage-idp/visage/authn/risk"
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
	store.StatusApproved:  "You are verified.",
	store.StatusDeclined:  "The verification did not succeed.",
	store.StatusInReview:  "Thank you. Your verification will be reviewed by a person.",
	store.StatusExpired:   "This verification link has expired. Go back to the application to start again.",
	store.StatusAbandoned: "This verification was not finished in time. Go back to the application to start again.",
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
	if (v.Status == store.StatusNotStarted || v.Status == store.StatusInProgress) && !s.now().Before(v.ExpiresAt) {
		if out, err := s.Expire(ctx, v); err == nil {
			v = out
		} else if !errors.Is(err, store.ErrStatusChanged) {
			s.log.ErrorContext(ctx, "hosted page: expire", "err", err)
		}
	}
	if v.Status == store.StatusNotStarted {
		out, err := s.Start(ctx, v)
		if err != nil && !errors.Is(err, store.ErrStatusChanged) {
			s.log.ErrorContext(ctx, "hosted page: start", "err", err)
			s.render(w, r, http.StatusInternalServerError, templates.ErrorPage("Error", "Something went wrong on our side. Try again."))
			return
		}
		if err == nil {
			v = out
		} else if v, err = s.st.GetVerification(ctx, v.ID); err != nil {
			s.render(w, r, http.StatusInternalServerError, templates.ErrorPage("Error", "Something went wrong on our side. Try again."))
			return
		}
	}
	if v.Status != store.StatusInProgress {
		s.render(w, r, http.StatusOK, templates.SessionDonePage(templates.SessionDoneData{Status: v.Status, Message: doneMessages[v.Status], CallbackURL: CallbackURL(v)}))
		return
	}
	wf, err := s.st.GetWorkflow(ctx, v.WorkflowID)
	if err != nil {
		s.log.ErrorContext(ctx, "hosted page: workflow", "err", err)
		s.render(w, r, http.StatusInternalServerError, templates.ErrorPage("Error", "Something went wrong on our side. Try again."))
		return
	}
	d := templates.SessionCaptureData{PostURL: "/session/" + r.PathValue("token") + "/capture", CSRF: s.csrf(v.ID), Method: wf.LivenessMethod}
	if hasFeature(wf, FeatureLiveness) {
		d.Checks = append(d.Checks, "that a live person is in front of the camera")
	}
	if hasFeature(wf, FeatureFaceMatch) {
		d.Checks = append(d.Checks, "that the face matches the one the application has")
	}
	if hasFeature(wf, FeatureIPAnalysis) {
		d.Checks = append(d.Checks, "where the connection comes from")
	}
	s.render(w, r, http.StatusOK, templates.SessionCapturePage(d))
}

// hostedCapture receives the selfie of the hosted page.
func (s *Service) hostedCapture(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pageHeaders(w)
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)
	if err := r.ParseMultipartForm(s.cfg.MaxUploadBytes); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, captureReply{Status: "error", Message: fmt.Sprintf("The selfie is larger than %d bytes.", s.cfg.MaxUploadBytes)})
			return
		}
		writeJSON(w, http.StatusBadRequest, captureReply{Status: "error", Message: "Send the selfie as multipart/form-data with an image field."})
		return
	}
	v, err := s.bySessionToken(r)
	if errors.Is(err, ErrNotFound) {
		writeJSON(w, http.StatusNotFound, captureReply{Status: "error", Message: "This verification link is not valid."})
		return
	} else if err != nil {
		s.internal(w, r, "hosted capture", err)
		return
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.FormValue("csrf_token")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf(v.ID))) != 1 {
		writeJSON(w, http.StatusForbidden, captureReply{Status: "error", Message: "The page's security token is missing or wrong. Reload the page."})
		return
	}
	f, _, err := r.FormFile("image")
	if err != nil {
		writeJSON(w, http.StatusBadRequest, captureReply{Status: "error", Message: "The image field is missing."})
		return
	}
	frame, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		writeJSON(w, http.StatusBadRequest, captureReply{Status: "error", Message: "The image could not be read."})
		return
	}
	page := s.cfg.BaseURL + "/session/" + r.PathValue("token")
	out, err := s.Capture(ctx, v, frame, Client{IP: risk.ClientIP(r, s.cfg.TrustedProxies), UserAgent: r.UserAgent()})
	if errors.Is(err, ErrFinished) {
		next := CallbackURL(out.Session)
		if next == "" {
			next = page
		}
		writeJSON(w, http.StatusConflict, captureReply{Status: out.Status, Message: "This verification is already finished.", Redirect: next})
		return
	} else if errors.Is(err, store.ErrStatusChanged) {
		writeJSON(w, http.StatusConflict, captureReply{Status: "error", Message: "This verification changed meanwhile.", Redirect: page})
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
		next = page
	}
	writeJSON(w, http.StatusOK, captureReply{Status: out.Status, Message: out.Message, Redirect: next})
}
