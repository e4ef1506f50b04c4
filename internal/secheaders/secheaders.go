// Package secheaders sets the browser security headers every Visage response carries: a
// Content-Security-Policy with no inline script and frame-ancestors 'none', X-Frame-Options
// DENY (for browsers without CSP level 2), Referrer-Policy no-referrer (authorization codes and
// request ids in URLs never leak to other sites), X-Content-Type-Options nosniff, and
// Strict-Transport-Security when the issuer is https.
package secheaders

import "net/http"

// CSP allows scripts, styles, fonts and fetches from Visage's own origin only, images and media
// also as data:/blob: (the camera preview and captured frames), no plugins, no <base>, and no
// framing by anybody. form-action is left out on purpose: Chromium applies it to the redirect
// that follows a form post, and the consent form's answer redirects to the relying party.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// HSTS is the Strict-Transport-Security value sent under an https issuer (two years).
const HSTS = "max-age=63072000"

// Wrap sets the headers on every response of next; hsts adds Strict-Transport-Security.
func Wrap(next http.Handler, hsts bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		if hsts {
			h.Set("Strict-Transport-Security", HSTS)
		}
		next.ServeHTTP(w, r)
	})
}
