package web

import (
	"net/http"
	"time"

	"github.com/visage-idp/visage/templates"
)

// devicesPage lists the signed-in user's devices.
func (s *Server) devicesPage(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	ss, ok := s.liveSession(r.Context(), sess)
	if !ok {
		s.errorPage(w, r, http.StatusUnauthorized, "Not signed in", "Sign in to an application with Visage first, then come back to this page.")
		return
	}
	u, err := s.store.GetUser(r.Context(), ss.UserID)
	if err != nil {
		s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	}
	devs, err := s.store.ListDevices(r.Context(), ss.UserID)
	if err != nil {
		s.log.ErrorContext(r.Context(), "list devices", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	}
	current, _ := s.devices.Read(r)
	rows := make([]templates.DeviceRow, 0, len(devs))
	for _, d := range devs {
		rows = append(rows, templates.DeviceRow{ID: d.ID, UserAgent: d.UserAgent, FirstSeen: d.FirstSeen.Format(time.RFC1123),
			LastSeen: d.LastSeen.Format(time.RFC1123), Revoked: d.RevokedAt != nil, Current: d.ID == current})
	}
	csrf := csrfToken(sess)
	s.save(w, r, sess)
	s.render(w, r, http.StatusOK, templates.DevicesPage(u.Username, rows, csrf))
}

// forgetDevice revokes one of the signed-in user's devices.
func (s *Server) forgetDevice(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	if !checkCSRF(r, sess) {
		s.refuseCSRF(w, r, false)
		return
	}
	ss, ok := s.liveSession(r.Context(), sess)
	if !ok {
		s.errorPage(w, r, http.StatusUnauthorized, "Not signed in", "Sign in first.")
		return
	}
	if err := s.store.RevokeDevice(r.Context(), r.FormValue("device"), ss.UserID, s.now()); err != nil && !isNotFound(err) {
		s.log.ErrorContext(r.Context(), "forget device", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Error", "Something went wrong on our side. Try again.")
		return
	}
	http.Redirect(w, r, "/account/devices", http.StatusSeeOther)
}
