// Package demorp is the demo relying party served at /demo: a "Sign in with Visage" button that
// runs the authorization code flow with PKCE (S256), state and nonce against the provider, then
// verifies the ID token with github.com/coreos/go-oidc and shows its claims. It talks to the
// provider only over HTTP, exactly as any client app would.
package demorp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"

	"github.com/visage-idp/visage/templates"
)

// ClientID is the demo client's id, registered by `idp serve`.
const ClientID = "visage-demo"

// CallbackPath is the demo's redirect URI path.
const CallbackPath = "/demo/callback"

// RP is the demo relying party.
type RP struct {
	issuer string
	cookie *securecookie.SecureCookie
	secure bool
	log    *slog.Logger

	mu       sync.Mutex
	provider *gooidc.Provider // discovered on first use: the server may still be starting
}

// New returns the demo RP for the issuer; hashKey/blockKey protect its state cookie.
func New(issuer string, hashKey, blockKey []byte, secure bool, log *slog.Logger) *RP {
	return &RP{issuer: issuer, cookie: securecookie.New(hashKey, blockKey), secure: secure, log: log}
}

// Routes registers /demo, /demo/login and /demo/callback.
func (d *RP) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /demo", d.home)
	mux.HandleFunc("GET /demo/login", d.login)
	mux.HandleFunc("GET "+CallbackPath, d.callback)
}

func (d *RP) discover(ctx context.Context) (*gooidc.Provider, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.provider != nil {
		return d.provider, nil
	}
	p, err := gooidc.NewProvider(ctx, d.issuer)
	if err != nil {
		return nil, fmt.Errorf("demo: discovery: %w", err)
	}
	d.provider = p
	return p, nil
}

func (d *RP) config(p *gooidc.Provider) *oauth2.Config {
	// A public client: client_id in the body, no Basic header (the provider accepts only the
	// registered method, and x/oauth2 would otherwise try Basic first).
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{ClientID: ClientID, Endpoint: ep, RedirectURL: d.issuer + CallbackPath,
		Scopes: []string{gooidc.ScopeOpenID, "profile", "email"}}
}

func (d *RP) home(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = templates.DemoHome("/demo/login").Render(r.Context(), w)
}

type flowState struct {
	State, Nonce, Verifier string
	Created                time.Time
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (d *RP) login(w http.ResponseWriter, r *http.Request) {
	p, err := d.discover(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	st := flowState{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Created: time.Now()}
	enc, err := d.cookie.Encode("visage_demo", st)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "visage_demo", Value: enc, Path: "/demo", HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteLaxMode, MaxAge: 600})
	http.Redirect(w, r, d.config(p).AuthCodeURL(st.State, gooidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusFound)
}

func (d *RP) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var st flowState
	c, err := r.Cookie("visage_demo")
	if err != nil || d.cookie.Decode("visage_demo", c.Value, &st) != nil {
		d.fail(w, r, fmt.Errorf("no sign-in in progress (state cookie missing or invalid)"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "visage_demo", Path: "/demo", MaxAge: -1})
	q := r.URL.Query()
	if q.Get("state") != st.State {
		d.fail(w, r, fmt.Errorf("state mismatch: the response does not belong to this sign-in"))
		return
	}
	if e := q.Get("error"); e != "" {
		d.fail(w, r, fmt.Errorf("%s: %s", e, q.Get("error_description")))
		return
	}
	p, err := d.discover(ctx)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	tok, err := d.config(p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		d.fail(w, r, fmt.Errorf("code exchange: %w", err))
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&gooidc.Config{ClientID: ClientID}).Verify(ctx, raw)
	if err != nil {
		d.fail(w, r, fmt.Errorf("ID token: %w", err))
		return
	}
	if idt.Nonce != st.Nonce {
		d.fail(w, r, fmt.Errorf("ID token nonce mismatch"))
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		d.fail(w, r, err)
		return
	}
	names := make([]string, 0, len(claims))
	for k := range claims {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]templates.DemoClaim, 0, len(names))
	for _, k := range names {
		v, _ := json.Marshal(claims[k])
		out = append(out, templates.DemoClaim{Name: k, Value: string(v)})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = templates.DemoResult(out, "").Render(ctx, w)
}

func (d *RP) fail(w http.ResponseWriter, r *http.Request, err error) {
	d.log.WarnContext(r.Context(), "demo sign-in failed", "err", err)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_ = templates.DemoResult(nil, err.Error()).Render(r.Context(), w)
}
