package web

import (
	"net/http"

	"github.com/visage-idp/visage/templates"
)

// endSession serves /end_session (OIDC RP-Initiated Logout 1.0, GET or POST). A valid
// id_token_hint ends the session it names; when it names the session this browser holds (or
// this browser holds none) the browser goes straight to the post-logout URI. Any other request
// (a bare link, a hint for somebody else) signs nobody out: the user is asked to confirm, with
// a CSRF-protected POST to /end_session/confirm.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	lr, err := s.provider.ParseLogout(r)
	if err != nil {
		s.log.InfoContext(ctx, "end_session refused", "err", err)
		s.errorPage(w, r, http.StatusBadRequest, "Sign-out request refused", "The application's sign-out request is invalid (unknown client, unregistered post_logout_redirect_uri or a bad id_token_hint). Nothing was changed.")
		return
	}
	sess := s.session(r)
	ss, live := s.liveSession(ctx, sess)
	if lr.HasHint() {
		if lr.HintSessionID != "" {
			if err := s.provider.EndSession(ctx, lr.HintSessionID); err != nil {
				s.log.ErrorContext(ctx, "end session", "err", err)
				s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
				return
			}
		}
		if !live || ss.ID == lr.HintSessionID || (lr.HintSessionID == "" && ss.UserID == lr.HintUserID) {
			s.signOut(w, r, ss.ID, lr.RedirectURI)
			return
		}
	} else if !live {
		s.signOut(w, r, "", lr.RedirectURI)
		return
	}
	username := ""
	if u, err := s.store.GetUser(ctx, ss.UserID); err == nil {
		username = u.Username
	}
	d := templates.LogoutData{Username: username, ClientID: lr.ClientID, PostLogoutRedirectURI: r.FormValue("post_logout_redirect_uri"),
		State: r.FormValue("state"), CSRF: csrfToken(sess)}
	s.save(w, r, sess)
	s.render(w, r, http.StatusOK, templates.LogoutPage(d))
}

// confirmEndSession answers the confirmation page.
func (s *Server) confirmEndSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess := s.session(r)
	if !checkCSRF(r, sess) {
		s.refuseCSRF(w, r, false)
		return
	}
	lr, err := s.provider.ParseLogout(r)
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Sign-out request refused", "The sign-out request is invalid. Nothing was changed.")
		return
	}
	if r.FormValue("decision") != "logout" {
		s.render(w, r, http.StatusOK, templates.MessagePage("Still signed in", "You are still signed in to Visage.", "Home", "/"))
		return
	}
	sid := ""
	if ss, ok := s.liveSession(ctx, sess); ok {
		sid = ss.ID
	}
	s.signOut(w, r, sid, lr.RedirectURI)
}

// signOut ends SSO session sid (if any) server-side, clears the browser's session and sends it
// to next.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request, sid, next string) {
	ctx := r.Context()
	if err := s.provider.EndSession(ctx, sid); err != nil {
		s.log.ErrorContext(ctx, "end session", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	}
	sess := s.session(r)
	delete(sess.Values, "sid")
	delete(sess.Values, "login_req")
	delete(sess.Values, "login_user")
	sess.Options.MaxAge = -1
	s.save(w, r, sess)
	http.Redirect(w, r, next, http.StatusFound)
}
