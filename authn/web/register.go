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
	"github.com/visage-idp/visage/authn/words"
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
		return &FieldError{Field: "username", Code: "INVALID_USERNAME", Err: errors.New("username: 3 to 64 characters among a-z, 0-9, '.', '_' and '-'")}
	}
	if a.DisplayName == "" {
		a.DisplayName = a.Username
	}
	if len(a.DisplayName) > 128 {
		return &FieldError{Field: "display_name", Code: "INVALID_DISPLAY_NAME", Err: errors.New("display name: at most 128 characters")}
	}
	a.Email = strings.TrimSpace(a.Email)
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
			return &FieldError{Field: "email", Code: "INVALID_EMAIL", Err: errors.New("email: not a valid address")}
		}
	} else if a.EmailVerified {
		return errors.New("email: there is no email to mark verified")
	}
	return nil
}

// FieldError is an account field that is not acceptable: Field names the form field, Code the
// catalogue entry (authn/words) the page shows, Err the operator's explanation (the CLI prints
// it).
type FieldError struct {
	Field, Code string
	Err         error
}

func (e *FieldError) Error() string { return e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

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
	// The account fields first: a bad username is a field error, said before any face work.
	if err := acct.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			writeJSON(w, http.StatusBadRequest, verdict{Status: "error", Code: fe.Code, Field: fe.Field, Message: words.For(fe.Code)})
			return
		}
		s.internalJSON(w, r, "validate account", err)
		return
	}
	if s.passive != nil {
		// Enrolment from the camera must be live too: a printed photo must not become anybody's face.
		if a, err := s.engine.Analyze(ctx, img); err == nil && a.Usable() {
			res, err := s.passive.Check(ctx, a.Image, a.Face.Box)
			if err != nil {
				s.internalJSON(w, r, "enrol liveness", err)
				return
			}
			if !res.Live {
				writeJSON(w, http.StatusBadRequest, verdict{Status: "error", Code: liveness.CodeFaceAttack, Message: words.For(liveness.CodeFaceAttack)})
				return
			}
		}
	}
	u, err := Enrol(ctx, s.store, s.engine, s.keys, acct, [][]byte{img}, s.cfg.KeepEnrolmentImage, s.now)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrEmailTaken):
		// Said without naming the account that holds it.
		writeJSON(w, http.StatusConflict, verdict{Status: "error", Code: "EMAIL_TAKEN", Field: "email", Message: words.For("EMAIL_TAKEN")})
		return
	case errors.Is(err, store.ErrAlreadyExists):
		writeJSON(w, http.StatusConflict, verdict{Status: "error", Code: "USERNAME_TAKEN", Field: "username", Message: words.For("USERNAME_TAKEN")})
		return
	case errors.Is(err, face.ErrQueueFull), ctx.Err() != nil:
		s.internalJSON(w, r, "enrol", err)
		return
	default:
		code := face.Code(err)
		if code == "" {
			s.log.WarnContext(ctx, "enrolment refused", "err", err)
			code = face.CodeInvalidArgument
		}
		writeJSON(w, http.StatusBadRequest, verdict{Status: "error", Code: code, Message: words.For(code)})
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
