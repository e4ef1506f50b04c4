package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/ratelimit"
	"github.com/visage-idp/visage/authn/risk"
	"github.com/visage-idp/visage/authn/web"
	"github.com/visage-idp/visage/internal/secheaders"
	"github.com/visage-idp/visage/oidc"
	"github.com/visage-idp/visage/oidc/demorp"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/templates"
)

func runServe(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfgPath := configFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	a, err := openApp(ctx, *cfgPath)
	if err != nil {
		return err
	}
	defer a.Close()
	cfg := a.cfg
	now := time.Now().UTC()
	if err := oidc.EnsureKeys(ctx, a.store, now); err != nil {
		return err
	}
	if cfg.Demo {
		if err := ensureDemoClient(ctx, a.store, cfg.Issuer, now); err != nil {
			return err
		}
	}
	keys, err := a.keyRing()
	if err != nil {
		return err
	}
	engine, err := a.engine()
	if err != nil {
		return fmt.Errorf("face engine: %w", err)
	}
	defer engine.Close()

	secure := strings.HasPrefix(cfg.Issuer, "https://")
	var opKey [32]byte
	copy(opKey[:], a.secrets.OPCryptoKey)
	provider, err := oidc.NewProvider(oidc.Config{
		Issuer: cfg.Issuer, CryptoKey: opKey, LoginPath: "/login", LoggedOutPath: "/logged-out", Logger: a.log,
		BindingKey: deriveKey(a.secrets.CookieHashKey, "auth-request-binding"), ErrorPage: errorPage,
		Lifetimes: oidc.Lifetimes{AuthRequest: cfg.AuthRequestTTL, Code: cfg.CodeTTL, AccessToken: cfg.AccessTokenTTL, IDToken: cfg.IDTokenTTL, RefreshToken: cfg.RefreshTokenTTL},
	}, a.store)
	if err != nil {
		return err
	}
	wc := web.DefaultConfig()
	wc.CookieHashKey, wc.CookieBlockKey, wc.Secure = a.secrets.CookieHashKey, a.secrets.CookieBlockKey, secure
	wc.SessionTTL, wc.MaxFailures, wc.FailureWindow, wc.KeepEnrolmentImage = cfg.SessionTTL, cfg.MaxFailures, cfg.FailureWindow, cfg.KeepImages
	wc.MaxUploadBytes = cfg.MaxImageBytes + 1<<20 // the image plus the form fields
	wc.DeviceHashKey, wc.DeviceBlockKey, wc.DeviceTTL = a.secrets.DeviceHashKey, a.secrets.DeviceBlockKey, cfg.DeviceTTL
	wc.Policy, wc.KnownIPWindow, wc.IPv4Bits, wc.IPv6Bits, wc.MaxIPFailures = cfg.StepUp, cfg.KnownIPWindow, cfg.KnownIPv4Bits, cfg.KnownIPv6Bits, cfg.MaxIPFailures
	if wc.TrustedProxies, err = cfg.trustedProxies(); err != nil {
		return err
	}
	tor, err := risk.OpenList(cfg.TorList, a.log)
	if err != nil {
		return err
	}
	vpn, err := risk.OpenList(cfg.VPNList, a.log)
	if err != nil {
		return err
	}
	go tor.Watch(ctx, cfg.ListReload)
	go vpn.Watch(ctx, cfg.ListReload)

	passive, err := liveness.NewPassive(liveness.PassiveConfig{ModelsDir: cfg.ModelsDir, Threshold: cfg.LivenessThreshold})
	if err != nil {
		return fmt.Errorf("passive liveness: %w", err)
	}
	defer passive.Close()
	challenger, err := liveness.NewChallenger(liveness.ChallengerConfig{Engine: engine, Passive: passive, Logger: a.log})
	if err != nil {
		return fmt.Errorf("liveness challenges: %w", err)
	}

	limiter := ratelimit.New(ratelimit.Config{
		Address:  ratelimit.Rate{Burst: cfg.RateLimitBurst, PerMinute: cfg.RateLimitPerMinute},
		Network:  ratelimit.Rate{Burst: cfg.RateLimitNetBurst, PerMinute: cfg.RateLimitNetPerMinute},
		ClientIP: func(r *http.Request) netip.Addr { return risk.ClientIP(r, wc.TrustedProxies) },
		Limited:  rateLimited,
	})
	mux := http.NewServeMux()
	pages := web.New(wc, web.Deps{Provider: provider, Store: a.store, Engine: engine, Keys: keys, Tor: tor, VPN: vpn,
		Passive: passive, Challenger: challenger, Log: a.log})
	pages.Metrics().Also(limiter.WriteMetrics)
	pages.Routes(mux)
	if err := mountSessions(ctx, mux, sessionsDeps{Cfg: cfg, Log: a.log, Store: a.store, Engine: engine, Keys: keys, Issuer: cfg.Issuer,
		CookieHashKey: a.secrets.CookieHashKey, CookieBlockKey: a.secrets.CookieBlockKey, Passive: passive, Challenger: challenger,
		EndSession: provider.EndSession}); err != nil {
		return err
	}
	if cfg.Demo {
		demorp.New(cfg.Issuer, a.secrets.CookieHashKey, a.secrets.CookieBlockKey, secure, a.log).Routes(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeHealth(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", readiness(a.store, engine, passive))
	mux.Handle("/", providerPages(provider.Handler()))

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: secheaders.Wrap(limiter.Middleware(notFoundPages(mux)), secure), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	go housekeeping(ctx, a, 10*time.Minute)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "Visage is serving %s on %s\n", cfg.Issuer, ln.Addr())
	if cfg.Demo {
		fmt.Fprintf(stdout, "Demo client: open %s/demo and press \"Sign in with Visage\"\n", cfg.Issuer)
	}
	a.log.Info("serving", "issuer", cfg.Issuer, "listen", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func ensureDemoClient(ctx context.Context, st store.Storage, issuer string, now time.Time) error {
	redirect := strings.TrimSuffix(issuer, "/") + demorp.CallbackPath
	c, err := st.GetClient(ctx, demorp.ClientID)
	if err == nil {
		if len(c.RedirectURIs) == 1 && c.RedirectURIs[0] == redirect {
			return nil
		}
		c.RedirectURIs = []string{redirect}
		return st.UpdateClient(ctx, c)
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("demo client: %w", err)
	}
	return st.CreateClient(ctx, store.Client{ID: demorp.ClientID, Name: "Visage demo app", Public: true, AuthMethod: "none",
		RedirectURIs: []string{redirect}, PostLogoutRedirectURIs: []string{strings.TrimSuffix(issuer, "/") + "/demo"}, IDTokenSigningAlg: oidc.AlgRS256, CreatedAt: now})
}

// providerPages renders the provider's plain-text refusals of /authorize (unknown client, bad
// redirect_uri: cases that must never redirect) as an HTML error page. (end_session is served
// by the login pages, which own the browser's cookie.)
func providerPages(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/authorize":
			rec := &recorder{header: http.Header{}}
			next.ServeHTTP(rec, r)
			if rec.status == http.StatusBadRequest && strings.HasPrefix(rec.header.Get("Content-Type"), "text/plain") {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.WriteHeader(http.StatusBadRequest)
				_ = templates.ErrorPage("Sign-in request refused", strings.TrimSpace(rec.body.String())).Render(r.Context(), w)
				return
			}
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			if rec.status == 0 {
				rec.status = http.StatusOK
			}
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body.Bytes())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// errorPage renders the HTML error page for the provider's own refusals.
func errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = templates.ErrorPage(title, msg).Render(r.Context(), w)
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}

// housekeeping removes what expired and what is past its retention every `every`, and on
// SQLite truncates the write-ahead log every minute (SQLite never shrinks it by itself).
func housekeeping(ctx context.Context, a *app, every time.Duration) {
	keep := store.Retention{Attempts: a.cfg.AttemptsRetention, Audit: a.cfg.AuditRetention, Grants: a.cfg.GrantRetention}
	gc := time.NewTicker(every)
	defer gc.Stop()
	cp := time.NewTicker(time.Minute)
	defer cp.Stop()
	checkpointer, _ := a.store.(interface{ Checkpoint(context.Context) error }) // SQLite's log

	for {
		select {
		case <-ctx.Done():
			return
		case <-gc.C:
			n, err := a.store.GarbageCollect(ctx, time.Now().UTC(), keep)
			if err != nil {
				a.log.Error("garbage collection", "err", err)
			} else if n > 0 {
				a.log.Info("garbage collection", "removed", n)
			}
		case <-cp.C:
			if checkpointer != nil {
				if err := checkpointer.Checkpoint(ctx); err != nil {
					a.log.Debug("checkpoint", "err", err)
				}
			}
		}
	}
}

// rateLimited says which requests the per-address and per-network limits apply to: those that
// anybody can send without an account and that cost CPU (a face analysis) or say something
// about an account: the username step, the selfie and challenge posts, registration, and the
// hosted Sessions pages (their URL holds a token).
func rateLimited(r *http.Request) bool {
	p := r.URL.Path
	if r.Method == http.MethodPost {
		switch p {
		case "/login", "/login/selfie", "/login/challenge", "/login/liveness", "/register":
			return true
		}
	}
	return strings.HasPrefix(p, "/session/")
}

// readiness answers /readyz: 200 when the store answers within 2 s and the models are loaded,
// else 503 naming what is not ready (for a load balancer's health check; /healthz only says
// that the process runs).
func readiness(st Store, engine *face.Engine, passive *liveness.Passive) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := map[string]string{"store": "ok", "models": "ok"}
		status := http.StatusOK
		if _, err := st.ListSigningKeys(ctx); err != nil {
			checks["store"], status = "unreachable", http.StatusServiceUnavailable
		}
		if engine == nil || passive == nil || engine.Closed() {
			checks["models"], status = "not loaded", http.StatusServiceUnavailable
		}
		checks["status"] = map[bool]string{true: "ready", false: "not ready"}[status == http.StatusOK]
		writeHealth(w, status, checks)
	}
}

func writeHealth(w http.ResponseWriter, status int, body map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// notFoundPages answers a 404 in plain text (Go's "404 page not found", zitadel's refusals of
// unknown paths) with the styled HTML page, except under /v3, whose API answers JSON. A 404
// that already has a body type other than plain text passes unchanged.
func notFoundPages(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v3/") || r.URL.Path == "/v3" {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&notFoundWriter{ResponseWriter: w, r: r}, r)
	})
}

// notFoundWriter replaces a plain-text 404 with the HTML page and drops the plain text.
type notFoundWriter struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (n *notFoundWriter) WriteHeader(status int) {
	ct := n.Header().Get("Content-Type")
	if status != http.StatusNotFound || !(ct == "" || strings.HasPrefix(ct, "text/plain")) || n.replaced {
		n.ResponseWriter.WriteHeader(status)
		return
	}
	n.replaced = true
	h := n.Header()
	h.Del("Content-Length")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	n.ResponseWriter.WriteHeader(http.StatusNotFound)
	_ = templates.NotFoundPage(n.r.URL.Path).Render(n.r.Context(), n.ResponseWriter)
}

func (n *notFoundWriter) Write(b []byte) (int, error) {
	if n.replaced {
		return len(b), nil
	}
	return n.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (n *notFoundWriter) Unwrap() http.ResponseWriter { return n.ResponseWriter }
