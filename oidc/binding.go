package oidc

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"time"
)

// Browser binding. Every authorization request belongs to the browser that sent it to
// /authorize: the redirect out of /authorize to the login page sets a cookie named after the
// request whose value is an HMAC of the request id under a server key. The login pages, the
// selfie and challenge posts, consent and /authorize/callback ask Bound before they act, so a
// request id that reaches another browser (a link sent to a victim, a leaked URL) is refused
// there: it cannot be completed by someone else's SSO session, and its code cannot be
// collected by someone who does not hold the cookie.

// bindingPrefix starts the name of every binding cookie.
const bindingPrefix = "visage_ar_"

type binder struct {
	key    []byte
	secure bool
	ttl    time.Duration
}

// name is the cookie's name for request id: a hash, so that several sign-ins may run side by
// side in one browser without one cookie overwriting another.
func (b binder) name(id string) string {
	sum := sha256.Sum256([]byte("visage auth request cookie name\x00" + id))
	return bindingPrefix + base64.RawURLEncoding.EncodeToString(sum[:12])
}

func (b binder) mac(id string) string {
	h := hmac.New(sha256.New, b.key)
	h.Write([]byte("visage auth request binding\x00" + id))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func (b binder) set(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{Name: b.name(id), Value: b.mac(id), Path: "/", MaxAge: int(b.ttl.Seconds()),
		HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode})
}

func (b binder) clear(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{Name: b.name(id), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode})
}

func (b binder) bound(r *http.Request, id string) bool {
	if id == "" {
		return false
	}
	c, err := r.Cookie(b.name(id))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(b.mac(id))) == 1
}

// Bound reports whether the browser that sent r holds the binding cookie of auth request id,
// that is whether it is the browser that started the request at /authorize.
func (p *Provider) Bound(r *http.Request, id string) bool { return p.binder.bound(r, id) }

// UnboundTitle and UnboundMessage are what a browser that does not hold a request is told.
const (
	UnboundTitle   = "Sign-in started elsewhere"
	UnboundMessage = "This sign-in request was started in another browser, so it cannot be completed here and no code was issued. " +
		"If you did not start it, somebody may have sent you this link: ignore it. Otherwise go back to the application and sign in again from this browser."
)

// bindBrowser wraps the provider's handler: the redirect from /authorize to the login page sets
// the request's binding cookie, and /authorize/callback refuses a browser without it (and
// clears it when the request is answered).
func (p *Provider) bindBrowser(next http.Handler) http.Handler {
	authorize := p.basePath + "/authorize"
	callback := authorize + "/callback"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case authorize:
			next.ServeHTTP(&bindingWriter{ResponseWriter: w, p: p}, r)
			return
		case callback:
			id := r.URL.Query().Get("id")
			if !p.binder.bound(r, id) {
				p.log.WarnContext(r.Context(), "authorization callback from a browser that does not hold the request")
				p.errorPage(w, r, http.StatusForbidden, UnboundTitle, UnboundMessage)
				return
			}
			p.binder.clear(w, id)
		}
		next.ServeHTTP(w, r)
	})
}

// bindingWriter sets the binding cookie when the response is a redirect to the login page.
type bindingWriter struct {
	http.ResponseWriter
	p     *Provider
	wrote bool
}

func (b *bindingWriter) WriteHeader(status int) {
	if !b.wrote && status/100 == 3 {
		if id, ok := b.p.loginRedirect(b.Header().Get("Location")); ok {
			b.p.binder.set(b.ResponseWriter, id)
		}
	}
	b.wrote = true
	b.ResponseWriter.WriteHeader(status)
}

func (b *bindingWriter) Write(p []byte) (int, error) {
	if !b.wrote {
		b.WriteHeader(http.StatusOK)
	}
	return b.ResponseWriter.Write(p)
}

// loginRedirect reports whether loc is the login page and returns its auth request id.
func (p *Provider) loginRedirect(loc string) (string, bool) {
	u, err := url.Parse(loc)
	if err != nil || u.Path != p.loginPath {
		return "", false
	}
	if u.Host != "" && u.Host != p.host {
		return "", false
	}
	id := u.Query().Get("authRequestID")
	return id, id != ""
}
