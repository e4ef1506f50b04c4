package oidc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/visage-idp/visage/store"
)

// The provider's answers to RFC 9700 (OAuth 2.0 Security Best Current Practice) and the OIDC
// specs where zitadel/oidc's defaults are looser. harden wraps zitadel's handler:
//
//   - /authorize: the redirect URI must match exactly (redirectURIAllowed), response_mode can
//     only be query, request objects are refused;
//   - every authorization response, success or error, carries iss (RFC 9207);
//   - CORS only on token, userinfo, keys, discovery and revocation, only for origins a client
//     registered, never with credentials (zitadel reflects any Origin with credentials);
//   - clients authenticate with their registered method only (authenticateClient);
//   - token, userinfo and introspection answers are Cache-Control: no-store;
//   - discovery lists only what works.

const (
	pathDiscovery  = "/.well-known/openid-configuration"
	pathAuthorize  = "/authorize"
	pathCallback   = "/authorize/callback"
	pathToken      = "/oauth/token"
	pathIntrospect = "/oauth/introspect"
	pathUserinfo   = "/userinfo"
	pathRevoke     = "/revoke"
	pathKeys       = "/keys"
	pathDevice     = "/device_authorization"
)

// endpoint is the absolute URL of a provider path.
func (p *Provider) endpoint(path string) string { return strings.TrimSuffix(p.issuer, "/") + path }

func (p *Provider) harden(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, p.basePath)
		switch path {
		case pathDiscovery, pathToken, pathUserinfo, pathKeys, pathRevoke:
			if p.cors(w, r, path) {
				return // a preflight, answered
			}
		}
		switch path {
		case pathDiscovery:
			p.discovery(w, r)
		case pathAuthorize:
			if !p.checkAuthorize(w, r) {
				return
			}
			next.ServeHTTP(&issWriter{ResponseWriter: w, iss: p.issuer}, r)
		case pathCallback:
			next.ServeHTTP(&issWriter{ResponseWriter: w, iss: p.issuer}, r)
		case pathToken, pathIntrospect, pathRevoke:
			noStore(w)
			if r.Method != http.MethodPost {
				w.Header().Set("Allow", http.MethodPost)
				writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
				return
			}
			r2, err := p.authenticateClient(r, p.endpoint(path), path != pathIntrospect)
			if err != nil {
				p.writeClientAuthError(w, r, err)
				return
			}
			next.ServeHTTP(w, r2)
		case pathUserinfo:
			noStore(w)
			next.ServeHTTP(w, r)
		case pathDevice:
			http.NotFound(w, r) // the device flow is not offered

		default:
			next.ServeHTTP(w, r)
		}
	})
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// checkAuthorize refuses, before zitadel sees it, an authorization request whose redirect URI
// is not registered exactly (an error page, never a redirect) and one asking for what the
// provider does not do (an error redirect to the verified redirect URI). It reports whether
// zitadel may go on.
func (p *Provider) checkAuthorize(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		return true // zitadel answers the parse error
	}
	clientID, redirectURI := r.Form.Get("client_id"), r.Form.Get("redirect_uri")
	if clientID == "" || redirectURI == "" {
		return true // zitadel refuses these without redirecting
	}
	c, err := p.store.GetClient(r.Context(), clientID)
	if errors.Is(err, store.ErrNotFound) {
		p.log.WarnContext(r.Context(), "authorization request for an unknown client", "client", clientID)
		title, msg := UnknownClientPage(clientID)
		p.errorPage(w, r, http.StatusBadRequest, title, msg)
		return false
	} else if err != nil {
		return true // zitadel answers a store failure
	}
	if !redirectURIAllowed(c, redirectURI) {
		p.log.WarnContext(r.Context(), "authorization request with an unregistered redirect_uri", "client", clientID)
		title, msg := UnregisteredRedirectPage(c, redirectURI)
		p.errorPage(w, r, http.StatusBadRequest, title, msg)
		return false
	}
	var code, desc string
	switch {
	case r.Form.Get("response_mode") != "" && r.Form.Get("response_mode") != string(oidc.ResponseModeQuery):
		code, desc = "invalid_request", "response_mode must be query"
	case r.Form.Get("request") != "":
		code, desc = "request_not_supported", "request objects are not supported"
	case r.Form.Get("request_uri") != "":
		code, desc = "request_uri_not_supported", "request_uri is not supported"
	default:
		return true
	}
	u, err := url.Parse(redirectURI)
	if err != nil {
		return true
	}
	q := u.Query()
	q.Set("error", code)
	q.Set("error_description", desc)
	if s := r.Form.Get("state"); s != "" {
		q.Set("state", s)
	}
	q.Set("iss", p.issuer)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
	return false
}

// issWriter adds iss (RFC 9207) to an authorization response: a redirect to an absolute URI
// carrying code or error. The provider's own redirects (to the login page) are relative and
// left alone.
type issWriter struct {
	http.ResponseWriter
	iss   string
	wrote bool
}

func (w *issWriter) WriteHeader(status int) {
	if !w.wrote && status >= 300 && status < 400 {
		w.addIss()
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *issWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *issWriter) addIss() {
	loc := w.Header().Get("Location")
	u, err := url.Parse(loc)
	if err != nil || !u.IsAbs() {
		return
	}
	q := u.Query()
	if (q.Get("code") == "" && q.Get("error") == "") || q.Has("iss") {
		return
	}
	q.Set("iss", w.iss)
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
}

// cors answers CORS for the endpoints browser apps call. An Origin gets
// Access-Control-Allow-Origin only if a client registered it (at the token and revocation
// endpoints: the client the request names), and never Access-Control-Allow-Credentials. It
// answers a preflight itself and reports whether it did.
func (p *Provider) cors(w http.ResponseWriter, r *http.Request, path string) bool {
	origin := r.Header.Get("Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	w.Header().Add("Vary", "Origin")
	if origin != "" && p.originAllowed(r, origin, path, preflight) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		if preflight {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
			w.Header().Set("Access-Control-Max-Age", "600")
		}
	}
	if preflight {
		w.WriteHeader(http.StatusNoContent)
	}
	return preflight
}

func (p *Provider) originAllowed(r *http.Request, origin, path string, preflight bool) bool {
	ctx := r.Context()
	if (path == pathToken || path == pathRevoke) && !preflight {
		pc, err := presented(r)
		if err != nil {
			return false
		}
		c, cerr := p.store.GetClient(ctx, pc.id)
		return cerr == nil && slices.Contains(c.WebOrigins, origin)
	}
	clients, err := p.store.ListClients(ctx)
	if err != nil {
		p.log.ErrorContext(ctx, "cors: list clients", "err", err)
		return false
	}
	for _, c := range clients {
		if slices.Contains(c.WebOrigins, origin) {
			return true
		}
	}
	return false
}

// discovery serves zitadel's discovery document corrected to what the provider does.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	raw, err := json.Marshal(op.CreateDiscoveryConfig(ctx, p.op, p.storage))
	var d map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &d)
	}
	if err != nil {
		p.log.ErrorContext(ctx, "discovery", "err", err)
		http.Error(w, "discovery unavailable", http.StatusInternalServerError)
		return
	}
	for _, k := range []string{"device_authorization_endpoint", "check_session_iframe", "request_object_signing_alg_values_supported"} {
		delete(d, k)
	}
	d["response_types_supported"] = []string{string(oidc.ResponseTypeCode)}
	d["response_modes_supported"] = []string{string(oidc.ResponseModeQuery)}
	d["grant_types_supported"] = []string{string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken)}
	d["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
	d["revocation_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
	d["introspection_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}
	algs := make([]string, len(assertionAlgs))
	for i, a := range assertionAlgs {
		algs[i] = string(a)
	}
	for _, k := range []string{"token_endpoint_auth_signing_alg_values_supported", "revocation_endpoint_auth_signing_alg_values_supported",
		"introspection_endpoint_auth_signing_alg_values_supported"} {
		d[k] = algs
	}
	d["code_challenge_methods_supported"] = []string{string(oidc.CodeChallengeMethodS256)}
	d["acr_values_supported"] = []string{ACRDevice, ACRSelfie, ACRActive}
	d["claims_supported"] = supportedClaims
	d["authorization_response_iss_parameter_supported"] = true
	d["request_parameter_supported"] = false
	d["request_uri_parameter_supported"] = false
	d["claims_parameter_supported"] = false
	d["subject_types_supported"] = []string{"public"}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(d)
}

// supportedClaims are the claims the provider issues in ID tokens and userinfo.
var supportedClaims = []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp", "at_hash", "c_hash",
	"name", "preferred_username", "updated_at", "email", "email_verified"}

// UnknownClientPage is the error page (title, text) for an authorization request naming a
// client_id that is not registered: for the developer of the application, never a redirect.
func UnknownClientPage(clientID string) (string, string) {
	return "Unknown application", fmt.Sprintf("No application is registered with client_id %q. "+
		"The operator of this Visage registers it with: idp clients add --id %s --redirect-uri URI "+
		"(README, \"Administration\").", clientID, clientID)
}

// UnregisteredRedirectPage is the error page (title, text) for an authorization request whose
// redirect_uri is not registered for the client: it names both, and says how to register it.
func UnregisteredRedirectPage(c store.Client, redirectURI string) (string, string) {
	name := fmt.Sprintf("client_id %q", c.ID)
	if c.Name != "" {
		name = fmt.Sprintf("%s (client_id %q)", c.Name, c.ID)
	}
	return "Redirect URI not registered", fmt.Sprintf("The application %s asked to return to %q, which is not one of its "+
		"registered redirect URIs (they must match exactly, scheme, host, port, path and query). "+
		"The operator of this Visage registers it with: idp clients add --redirect-uri %s "+
		"(README, \"Administration\"); idp clients list shows the registered ones.", name, redirectURI, redirectURI)
}
