package oidc

import (
	"net/url"
	"slices"
	"strconv"

	"github.com/visage-idp/visage/store"
)

// redirectURIAllowed reports whether uri may receive an authorization response for c: it must
// equal a registered redirect URI byte for byte. The one exception is RFC 8252 section 7.3: a
// public (native) client's registered http://127.0.0.1/... or http://[::1]/... URI matches the
// same URI with any port, because the app listens on a port the system picks at run time.
// Nothing else varies: not the scheme, not the host (localhost is not a loopback IP literal, see
// RFC 8252 section 8.3), not the path, query or user info.
//
// zitadel/oidc's own check (op.ValidateAuthReqRedirectURI for native clients) compares only
// path and query of any loopback or localhost URI, so http://localhost:9999/cb there also
// admits https://localhost/cb and http://127.0.0.2:1234/cb; the provider runs this check first.
func redirectURIAllowed(c store.Client, uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	if !c.Public {
		return false
	}
	u, ok := loopbackIPURI(uri)
	if !ok {
		return false
	}
	for _, reg := range c.RedirectURIs {
		r, ok := loopbackIPURI(reg)
		if !ok {
			continue
		}
		if r.Hostname() == u.Hostname() && r.EscapedPath() == u.EscapedPath() && r.RawQuery == u.RawQuery &&
			r.ForceQuery == u.ForceQuery {
			return true
		}
	}
	return false
}

// loopbackIPURI parses an http URI whose host is the literal 127.0.0.1 or [::1], with no user
// info and no fragment.
func loopbackIPURI(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return nil, false
	}
	switch u.Hostname() {
	case "127.0.0.1", "::1":
	default:
		return nil, false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, false
		}
	}
	return u, true
}
