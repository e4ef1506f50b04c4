package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/visage-idp/visage/authn"
	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/oidc"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/templates"
)

func (s *Server) registerPage(w http.ResponseWriter, r *http.Request) {
	sess := s.session(r)
	id := r.URL.Query().Get("authRequestID")
	if id != "" && !s.provider.Bound(r, id) {
		s.refuseUnbound(w, r, false)
		return
	}
	d := templates.SelfieData{Title: "Enrol your face", Intro: "Choose a username, then take a selfie: it becomes your password.",
		PostURL: "/register", AuthRequestID: id, CSRF: csrfToken(sess), Register: true}
	s.save(w, r, sess)
	s.render(w, r, http.StatusOK, templates.SelfiePage(d))
}

// Account is what enrolment needs besides the photo.
type Account struct {
	Username, DisplayName, Email string
	// EmailVerified is set by an operator only (idp users add|update --email-verified); an
	// address typed on the register page is never verified.
	EmailVerified bool
}

// Validate checks the account fields and normalises the username.
func (a *Account) Validate() error {
	a.Username = normaliseUsername(a.Username)
	if !ValidUsername(a.Username) {
		return errors.New("username: 3 to 64 characters among a-z, 0-9, '.', '_' and '-'")
	}
	if a.DisplayName == "" {
		a.DisplayName = a.Username
	}
	if len(a.DisplayName) > 128 {
		return errors.New("display name: at most 128 characters")
	}
	a.Email = strings.TrimSpace(a.Email)
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
			return errors.New("email: not a valid address")
		}
	} else if a.EmailVerified {
		return errors.New("email: there is no email to mark verified")
	}
	return nil
}

// Enrol builds a face template from the photos and creates the user with it atomically: the
// account exists only if enrolment succeeded. It is shared by the register page and the CLI.
func Enrol(ctx context.Context, st store.Storage, engine *face.Engine, keys *face.KeyRing, a Account, photos [][]byte, keepImage bool, now func() time.Time) (store.User, error) {
	if err := a.Validate(); err != nil {
		return store.User{}, err
	}
	// The face first: a taken username is said only after the rest of the request, face
	// included, is valid (CreateUserWithTemplate refuses it), so that the form cannot be used to
	// probe usernames cheaply.
	tmpl, _, err := engine.Enroll(ctx, photos, face.EnrollOptions{KeepImage: keepImage})
	if err != nil {
		return store.User{}, fmt.Errorf("enrol: %w", err)
	}
	sealed, err := keys.Seal(tmpl)
	if err != nil {
		return store.User{}, fmt.Errorf("enrol: seal template: %w", err)
	}
	t := now().UTC()
	u := store.User{ID: randomToken()[:22], Username: a.Username, DisplayName: a.DisplayName, Email: a.Email, EmailVerified: a.EmailVerified, CreatedAt: t, UpdatedAt: t}
	if err := st.CreateUserWithTemplate(ctx, u, store.Template{UserID: u.ID, KeyID: keys.PrimaryID(), ModelVersion: tmpl.ModelVersion, Sealed: sealed, CreatedAt: t}); err != nil {
		return store.User{}, fmt.Errorf("enrol: %w", err)
	}
	return u, nil
}

func (s *Server) registerSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess, img, ok := s.imagePost(w, r)
	if !ok {
		return
	}
	// A sign-in request named here must belong to this browser, or the new account would
	// complete somebody else's request.
	if id := r.FormValue("authRequestID"); id != "" && !s.provider.Bound(r, id) {
		s.refuseUnbound(w, r, true)
		return
	}
	acct := Account{Username: r.FormValue("username"), DisplayName: r.FormValue("display_name"), Email: r.FormValue("email")}
	if s.passive != nil {
		// Enrolment from the camera must be live too: a printed photo must not become anybody's face.
		if a, err := s.engine.Analyze(ctx, img); err == nil && a.Usable() {
			res, err := s.passive.Check(ctx, a.Image, a.Face.Box)
			if err != nil {
				s.internalJSON(w, r, "enrol liveness", err)
				return
			}
			if !res.Live {
				writeJSON(w, http.StatusBadRequest, verdict{Status: "error", Code: liveness.CodeFaceAttack, Message: "The selfie did not pass the liveness check. Use the camera, in good light."})
				return
			}
		}
	}
	u, err := Enrol(ctx, s.store, s.engine, s.keys, acct, [][]byte{img}, s.cfg.KeepEnrolmentImage, s.now)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrEmailTaken):
		// Said without naming the account that holds it.
		writeJSON(w, http.StatusConflict, verdict{Status: "error", Code: "EMAIL_TAKEN", Message: "That email address is already used by another account. Use another one, or leave it empty."})
		return
	case errors.Is(err, store.ErrAlreadyExists):
		writeJSON(w, http.StatusConflict, verdict{Status: "error", Code: "USERNAME_TAKEN", Message: "That username is taken."})
		return
	case errors.Is(err, face.ErrQueueFull), ctx.Err() != nil:
		s.internalJSON(w, r, "enrol", err)
		return
	default:
		code := face.Code(err)
		msg := err.Error()
		if code != "" {
			msg = "The selfie cannot be enrolled: " + authn.ReasonFor(err) + "."
		}
		writeJSON(w, http.StatusBadRequest, verdict{Status: "error", Code: code, Message: msg})
		return
	}
	s.log.InfoContext(ctx, "user enrolled", "user", u.ID)
	sess.Values["username"] = u.Username
	id := r.FormValue("authRequestID")
	if id == "" {
		s.save(w, r, sess)
		writeJSON(w, http.StatusOK, verdict{Status: string(authn.Approved), Message: "Enrolled. You can now sign in with your face."})
		return
	}
	lr, err := s.provider.LoginRequest(ctx, id)
	if err != nil {
		s.save(w, r, sess)
		writeJSON(w, http.StatusOK, verdict{Status: string(authn.Approved), Message: "Enrolled. The sign-in request expired: go back to the application to sign in."})
		return
	}
	// The enrolment selfie authenticates this first sign-in.
	a, err := s.newSession(ctx, u.ID, authn.Decision{AMR: []string{"face"}}, oidc.ACRSelfie)
	if err != nil {
		s.internalJSON(w, r, "create session", err)
		return
	}
	sess.Values["sid"] = a.SessionID
	next, err := s.complete(ctx, lr, a)
	if err != nil {
		s.internalJSON(w, r, "complete login", err)
		return
	}
	s.save(w, r, sess)
	writeJSON(w, http.StatusOK, verdict{Status: string(authn.Approved), Message: "Enrolled.", Redirect: next})
}
