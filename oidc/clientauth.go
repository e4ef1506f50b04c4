package oidc

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/visage-idp/visage/store"
)

// Client authentication at the token, introspection and revocation endpoints.
//
// zitadel/oidc accepts either secret method from any secret client, answers some failures with
// 400, accepts private_key_jwt assertions only with aud = issuer and neither remembers their
// jti nor bounds their lifetime. The provider therefore authenticates the client itself, in
// front of zitadel: exactly one method, the one the client registered; a failure is 401
// invalid_client (with WWW-Authenticate: Basic when Basic was used or is the client's method).
// A request that passes reaches zitadel carrying Basic credentials made of the client id and a
// one-request ticket that only this request's context accepts (see preauthenticated).

const (
	// maxAssertionLifetime bounds how far in the future a client assertion's exp may lie.
	maxAssertionLifetime = 10 * time.Minute
	// assertionSkew is the clock difference tolerated on nbf and iat.
	assertionSkew = time.Minute
)

var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// clientAuthError is a refused client authentication.
type clientAuthError struct {
	desc        string
	basicChall  bool // answer with WWW-Authenticate: Basic
	internalErr error
}

func (e *clientAuthError) Error() string { return e.desc }

func refuse(desc string, basic bool) *clientAuthError {
	return &clientAuthError{desc: desc, basicChall: basic}
}

type preauthKey struct{}

// preauthenticated is set on the context of a request whose client the provider authenticated.
type preauthenticated struct {
	clientID string
	ticket   string
}

func preauthFrom(ctx context.Context, clientID string) (preauthenticated, bool) {
	p, ok := ctx.Value(preauthKey{}).(preauthenticated)
	return p, ok && p.clientID == clientID
}

// presentedClient is what a request says about its client, before any check.
type presentedClient struct {
	id, method, secret, assertion string
	basic                         bool // the Authorization header carried Basic credentials
}

// presented reads the client authentication of a POST form request. Credentials are read from
// the body and the Authorization header only, never from the query string.
func presented(r *http.Request) (presentedClient, *clientAuthError) {
	if err := r.ParseForm(); err != nil {
		return presentedClient{}, refuse("unreadable form", false)
	}
	var pc presentedClient
	user, pass, hasBasic := r.BasicAuth()
	pc.basic = hasBasic
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	aType, assertion := r.PostForm.Get("client_assertion_type"), r.PostForm.Get("client_assertion")
	n := 0
	for _, used := range []bool{hasBasic, formSecret != "", aType != "" || assertion != ""} {
		if used {
			n++
		}
	}
	if n > 1 {
		return pc, refuse("more than one client authentication method", hasBasic)
	}
	switch {
	case hasBasic:
		id, err1 := url.QueryUnescape(user)
		secret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return pc, refuse("malformed Basic credentials", true)
		}
		pc.id, pc.secret, pc.method = id, secret, string(oidc.AuthMethodBasic)
	case formSecret != "":
		pc.id, pc.secret, pc.method = formID, formSecret, string(oidc.AuthMethodPost)
	case aType != "" || assertion != "":
		if aType != oidc.ClientAssertionTypeJWTAssertion || assertion == "" {
			return pc, refuse("client_assertion_type must be "+oidc.ClientAssertionTypeJWTAssertion+" with a client_assertion", false)
		}
		tok, err := jwt.ParseSigned(assertion, assertionAlgs)
		if err != nil {
			return pc, refuse("malformed client_assertion", false)
		}
		var c jwt.Claims
		if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil || c.Subject == "" {
			return pc, refuse("client_assertion without sub", false)
		}
		pc.id, pc.assertion, pc.method = c.Subject, assertion, string(oidc.AuthMethodPrivateKeyJWT)
	default:
		pc.id, pc.method = formID, string(oidc.AuthMethodNone)
	}
	if pc.id == "" {
		return pc, refuse("no client authentication", false)
	}
	if formID != "" && formID != pc.id {
		return pc, refuse("client_id does not match the client's credentials", hasBasic)
	}
	return pc, nil
}

// registeredMethod is the one authentication method a client may use.
func registeredMethod(c store.Client) string {
	if c.Public {
		return string(oidc.AuthMethodNone)
	}
	if c.AuthMethod == "" {
		return string(oidc.AuthMethodBasic)
	}
	return c.AuthMethod
}

// authenticateClient checks the client of a token, introspection or revocation request
// (endpointURL is the absolute URL that was called). On success it returns the request to hand
// to zitadel: for a confidential client, with Basic credentials of the client id and a ticket
// that the request's context accepts, and no other credentials.
func (p *Provider) authenticateClient(r *http.Request, endpointURL string, allowPublic bool) (*http.Request, *clientAuthError) {
	pc, cerr := presented(r)
	if cerr != nil {
		return nil, cerr
	}
	ctx := r.Context()
	c, err := p.store.GetClient(ctx, pc.id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refuse("unknown client", pc.basic)
	} else if err != nil {
		return nil, &clientAuthError{desc: "client lookup failed", internalErr: err}
	}
	method := registeredMethod(c)
	basic := pc.basic || method == string(oidc.AuthMethodBasic)
	if pc.method != method {
		return nil, refuse(fmt.Sprintf("this client authenticates with %s, not %s", method, pc.method), basic)
	}
	switch method {
	case string(oidc.AuthMethodBasic), string(oidc.AuthMethodPost):
		if c.SecretHash == "" || subtle.ConstantTimeCompare([]byte(hashToken(pc.secret)), []byte(c.SecretHash)) != 1 {
			return nil, refuse("invalid client credentials", basic)
		}
	case string(oidc.AuthMethodPrivateKeyJWT):
		if err := p.verifyAssertion(ctx, c, pc.assertion, endpointURL); err != nil {
			p.log.WarnContext(ctx, "client assertion refused", "client", c.ID, "err", err)
			return nil, refuse("invalid client_assertion", false)
		}
	case string(oidc.AuthMethodNone):
		if !allowPublic {
			return nil, refuse("this endpoint needs an authenticated client", false)
		}
		return r.WithContext(withClientID(ctx, c.ID)), nil
	default:
		return nil, refuse("unsupported client authentication method "+method, false)
	}
	// Hand zitadel a request it authenticates by the ticket.
	pa := preauthenticated{clientID: c.ID, ticket: randomID(24)}
	form := url.Values{}
	for k, v := range r.PostForm {
		switch k {
		case "client_id", "client_secret", "client_assertion", "client_assertion_type":
		default:
			form[k] = v
		}
	}
	r2 := r.Clone(context.WithValue(withClientID(ctx, c.ID), preauthKey{}, pa))
	r2.PostForm = form
	all := url.Values{}
	for k, v := range r.URL.Query() {
		all[k] = v
	}
	for k, v := range form {
		all[k] = append(all[k], v...)
	}
	r2.Form = all
	r2.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(pa.ticket))
	return r2, nil
}

// verifyAssertion checks a private_key_jwt client assertion (RFC 7523, OIDC Core section 9):
// signed by one of the client's keys (its JWKS or its jwks_uri), iss = sub = the client, aud
// naming this provider (the issuer, the token endpoint or the endpoint called), not expired and
// not valid for more than maxAssertionLifetime, and a jti never seen before.
func (p *Provider) verifyAssertion(ctx context.Context, c store.Client, raw, endpointURL string) error {
	tok, err := jwt.ParseSigned(raw, assertionAlgs)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	kid := tok.Headers[0].KeyID
	var keys []jose.JSONWebKey
	switch {
	case c.JWKSURI != "":
		if keys, err = p.jwks.keys(ctx, c.JWKSURI, kid); err != nil {
			return err
		}
	case len(c.JWKS) > 0:
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(c.JWKS, &set); err != nil {
			return fmt.Errorf("registered keys: %w", err)
		}
		keys = matchKeys(set.Keys, kid)
	}
	if len(keys) == 0 {
		return fmt.Errorf("no registered key %q", kid)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if err := tok.Claims(k.Key, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return errors.New("signature does not verify with the client's keys")
	}
	if claims.Issuer != c.ID || claims.Subject != c.ID {
		return errors.New("iss and sub must be the client id")
	}
	auds := []string{p.issuer, p.endpoint("/oauth/token"), endpointURL}
	if !slices.ContainsFunc(claims.Audience, func(a string) bool { return slices.Contains(auds, a) }) {
		return fmt.Errorf("aud %v names neither the issuer nor the token endpoint", []string(claims.Audience))
	}
	now := p.now()
	if claims.Expiry == nil {
		return errors.New("no exp")
	}
	exp := claims.Expiry.Time()
	if !now.Before(exp) {
		return errors.New("expired")
	}
	if exp.Sub(now) > maxAssertionLifetime {
		return fmt.Errorf("exp more than %s ahead", maxAssertionLifetime)
	}
	if claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(assertionSkew)) {
		return errors.New("not yet valid (nbf)")
	}
	if claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(assertionSkew)) {
		return errors.New("issued in the future (iat)")
	}
	if claims.ID == "" {
		return errors.New("no jti")
	}
	if err := p.store.UseClientAssertion(ctx, c.ID, claims.ID, exp); err != nil {
		if errors.Is(err, store.ErrAlreadyUsed) {
			return errors.New("jti already used")
		}
		return err
	}
	return nil
}

// writeClientAuthError answers a refused client authentication: 401 invalid_client.
func (p *Provider) writeClientAuthError(w http.ResponseWriter, r *http.Request, e *clientAuthError) {
	if e.internalErr != nil {
		p.log.ErrorContext(r.Context(), "client authentication", "err", e.internalErr)
		writeJSONError(w, http.StatusInternalServerError, "server_error", "server error")
		return
	}
	if e.basicChall {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+p.issuer+`", charset="UTF-8"`)
	}
	writeJSONError(w, http.StatusUnauthorized, "invalid_client", e.desc)
}

func writeJSONError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
