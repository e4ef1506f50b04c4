// Package oidc is Visage's OpenID Provider: a small adapter that implements zitadel/oidc's
// op.Storage over store.Storage, the provider set-up (discovery, JWKS, authorize, token,
// userinfo, introspection, revocation, end_session), signing keys, and the acr/amr claims the
// face login produces. It knows nothing about faces: the login pages (authn/web) complete an
// authorization request through Authenticate and Approve and this package turns it into tokens.
package oidc
