package main

// The Sessions API, its hosted page, webhooks and review console (authn/sessions,
// authn/console), and their admin commands: idp apikeys, idp workflows, idp users
// promote|demote. Settings are the YAML's sessions: block, each overridden by a
// VISAGE_SESSIONS_* variable (sessionsSettings, part of Config).

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/visage-idp/visage/authn/console"
	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/risk"
	"github.com/visage-idp/visage/authn/sessions"
	"github.com/visage-idp/visage/store"
)

// sessionsDeps is what mountSessions needs from serve.
type sessionsDeps struct {
	Cfg                           Config
	Log                           *slog.Logger
	Store                         Store
	Engine                        *face.Engine
	Keys                          *face.KeyRing
	Issuer                        string
	CookieHashKey, CookieBlockKey []byte
	// Passive and Challenger, when set, are the liveness checkers serve already runs for the
	// login; otherwise mountSessions makes its own (closed when ctx ends).
	Passive    *liveness.Passive
	Challenger *liveness.Challenger
	// EndSession ends an SSO session (the console's sign-out).
	EndSession func(ctx context.Context, sid string) error
}

// sessionsSettings are the Sessions API settings: the `sessions:` block of the YAML, each also
// a VISAGE_SESSIONS_* variable that overrides it.
type sessionsSettings struct {
	TTL            time.Duration `yaml:"ttl"`             // VISAGE_SESSIONS_TTL (30m): time to complete a session
	WebhookTimeout time.Duration `yaml:"webhook_timeout"` // VISAGE_SESSIONS_WEBHOOK_TIMEOUT (10s): per attempt
	WebhookHorizon time.Duration `yaml:"webhook_horizon"` // VISAGE_SESSIONS_WEBHOOK_HORIZON (24h): retries stop after it
	RetryMin       time.Duration `yaml:"retry_min"`       // VISAGE_SESSIONS_RETRY_MIN (2s): first retry delay
	RetryMax       time.Duration `yaml:"retry_max"`       // VISAGE_SESSIONS_RETRY_MAX (10m): longest retry delay
	PollInterval   time.Duration `yaml:"poll"`            // VISAGE_SESSIONS_POLL (1s): dispatcher poll
	ExpireInterval time.Duration `yaml:"expire_every"`    // VISAGE_SESSIONS_EXPIRE_EVERY (15s)
	PurgeInterval  time.Duration `yaml:"purge_every"`     // VISAGE_SESSIONS_PURGE_EVERY (1h)
	Console        bool          `yaml:"console"`         // VISAGE_SESSIONS_CONSOLE (true): serve /console
	ConsoleTTL     time.Duration `yaml:"console_ttl"`     // VISAGE_SESSIONS_CONSOLE_TTL (8h): console sign-in lifetime
}

// defaultSessionsSettings returns the documented defaults.
func defaultSessionsSettings() sessionsSettings {
	d := sessions.DefaultConfig()
	return sessionsSettings{TTL: d.SessionTTL, WebhookTimeout: d.WebhookTimeout, WebhookHorizon: d.WebhookHorizon, RetryMin: d.RetryMin,
		RetryMax: d.RetryMax, PollInterval: d.PollInterval, ExpireInterval: d.ExpireInterval, PurgeInterval: d.PurgeInterval,
		Console: true, ConsoleTTL: 8 * time.Hour}
}

// loadSessionsSettings is the defaults with the environment applied.
func loadSessionsSettings(env func(string) (string, bool)) (sessionsSettings, error) {
	s := defaultSessionsSettings()
	if err := s.applyEnv(env); err != nil {
		return s, err
	}
	return s, s.validate()
}

// applyEnv applies the VISAGE_SESSIONS_* variables that are set.
func (s *sessionsSettings) applyEnv(env func(string) (string, bool)) error {
	var errs []error
	for name, dst := range map[string]*time.Duration{
		"VISAGE_SESSIONS_TTL": &s.TTL, "VISAGE_SESSIONS_WEBHOOK_TIMEOUT": &s.WebhookTimeout, "VISAGE_SESSIONS_WEBHOOK_HORIZON": &s.WebhookHorizon,
		"VISAGE_SESSIONS_RETRY_MIN": &s.RetryMin, "VISAGE_SESSIONS_RETRY_MAX": &s.RetryMax, "VISAGE_SESSIONS_POLL": &s.PollInterval,
		"VISAGE_SESSIONS_EXPIRE_EVERY": &s.ExpireInterval, "VISAGE_SESSIONS_PURGE_EVERY": &s.PurgeInterval, "VISAGE_SESSIONS_CONSOLE_TTL": &s.ConsoleTTL,
	} {
		v, ok := env(name)
		if !ok {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil || dur <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a positive duration such as 90s or 15m", name, v))
			continue
		}
		*dst = dur
	}
	if v, ok := env("VISAGE_SESSIONS_CONSOLE"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("VISAGE_SESSIONS_CONSOLE=%q: want true or false", v))
		}
		s.Console = b
	}
	if len(errs) > 0 {
		return fmt.Errorf("sessions settings: %w", errors.Join(errs...))
	}
	return nil
}

// validate checks the settings after the YAML and the environment.
func (s sessionsSettings) validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"ttl": s.TTL, "webhook_timeout": s.WebhookTimeout, "webhook_horizon": s.WebhookHorizon,
		"retry_min": s.RetryMin, "retry_max": s.RetryMax, "poll": s.PollInterval, "expire_every": s.ExpireInterval,
		"purge_every": s.PurgeInterval, "console_ttl": s.ConsoleTTL} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("sessions.%s: must be a positive duration", name))
		}
	}
	if s.RetryMin > s.RetryMax {
		errs = append(errs, fmt.Errorf("sessions.retry_min (VISAGE_SESSIONS_RETRY_MIN) %s is above sessions.retry_max %s", s.RetryMin, s.RetryMax))
	}
	if len(errs) > 0 {
		return fmt.Errorf("sessions settings: %w", errors.Join(errs...))
	}
	return nil
}

// deriveKey derives a purpose-bound key from a server secret (HMAC-SHA256), so that the
// Sessions API and the console need no secret of their own in secrets.json.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("visage/" + purpose))
	return m.Sum(nil)
}

// mountSessions registers /v3/... API routes, the hosted page, the console and the OpenAPI
// document on mux and starts the webhook worker (with session expiry and result purge) until
// ctx ends.
func mountSessions(ctx context.Context, mux *http.ServeMux, d sessionsDeps) error {
	set := d.Cfg.Sessions
	var err error
	issuer := strings.TrimSuffix(d.Issuer, "/")
	passive, ownPassive := d.Passive, d.Passive == nil
	if ownPassive {
		if passive, err = liveness.NewPassive(liveness.PassiveConfig{ModelsDir: d.Cfg.ModelsDir, Threshold: d.Cfg.LivenessThreshold}); err != nil {
			return fmt.Errorf("sessions: passive liveness: %w", err)
		}
	}
	closePassive := func() {
		if ownPassive {
			if err := passive.Close(); err != nil {
				d.Log.Error("sessions: close passive liveness", "err", err)
			}
		}
	}
	proxies, err := d.Cfg.trustedProxies()
	if err != nil {
		closePassive()
		return err
	}
	tor, err := risk.OpenList(d.Cfg.TorList, d.Log)
	if err != nil {
		closePassive()
		return fmt.Errorf("sessions: %w", err)
	}
	vpn, err := risk.OpenList(d.Cfg.VPNList, d.Log)
	if err != nil {
		closePassive()
		return fmt.Errorf("sessions: %w", err)
	}
	challenger := d.Challenger
	if challenger == nil {
		if challenger, err = liveness.NewChallenger(liveness.ChallengerConfig{Engine: d.Engine, Passive: passive, Logger: d.Log.With("component", "liveness")}); err != nil {
			closePassive()
			return fmt.Errorf("sessions: liveness challenges: %w", err)
		}
	}
	cfg := sessions.Config{BaseURL: issuer, SessionTTL: set.TTL, MaxPortraitBytes: int(d.Cfg.MaxImageBytes), MaxUploadBytes: d.Cfg.MaxImageBytes + 1<<20,
		TokenKey: deriveKey(d.CookieHashKey, "sessions-token"), TrustedProxies: proxies, AnonymousMethod: d.Cfg.StepUp.NewDeviceAnonymous,
		WebhookTimeout: set.WebhookTimeout,
		WebhookHorizon: set.WebhookHorizon, RetryMin: set.RetryMin, RetryMax: set.RetryMax, PollInterval: set.PollInterval,
		ExpireInterval: set.ExpireInterval, PurgeInterval: set.PurgeInterval}
	svc, err := sessions.New(cfg, sessions.Deps{Store: d.Store, Engine: d.Engine, Keys: d.Keys, Passive: passive, Challenger: challenger, Tor: tor, VPN: vpn, Log: d.Log.With("component", "sessions")})
	if err != nil {
		closePassive()
		return err
	}
	svc.Routes(mux)
	if set.Console {
		if err := ensureConsoleClient(ctx, d.Store, issuer, time.Now().UTC()); err != nil {
			closePassive()
			return err
		}
		con, err := console.New(console.Config{Issuer: issuer, HashKey: deriveKey(d.CookieHashKey, "console-hash"),
			BlockKey: deriveKey(d.CookieBlockKey, "console-block"), Secure: strings.HasPrefix(issuer, "https://"), SessionTTL: set.ConsoleTTL},
			console.Deps{Sessions: svc, Store: d.Store, Keys: d.Keys, Log: d.Log.With("component", "console"), EndSession: d.EndSession})
		if err != nil {
			closePassive()
			return err
		}
		con.Routes(mux)
	}
	go tor.Watch(ctx, d.Cfg.ListReload)
	go vpn.Watch(ctx, d.Cfg.ListReload)
	go func() {
		svc.Run(ctx)
		closePassive()
	}()
	d.Log.Info("sessions API mounted", "console", set.Console, "session_ttl", set.TTL, "webhook_horizon", set.WebhookHorizon)
	return nil
}

// ensureConsoleClient registers (or repairs) the console's OIDC client.
func ensureConsoleClient(ctx context.Context, st store.Storage, issuer string, now time.Time) error {
	want := console.Client(issuer, now)
	c, err := st.GetClient(ctx, console.ClientID)
	if errors.Is(err, store.ErrNotFound) {
		if err := st.CreateClient(ctx, want); err != nil {
			return fmt.Errorf("console client: %w", err)
		}
		return nil
	} else if err != nil {
		return fmt.Errorf("console client: %w", err)
	}
	if len(c.RedirectURIs) == 1 && c.RedirectURIs[0] == want.RedirectURIs[0] && c.Public && c.FirstParty {
		return nil
	}
	want.CreatedAt = c.CreatedAt
	if err := st.UpdateClient(ctx, want); err != nil {
		return fmt.Errorf("console client: %w", err)
	}
	return nil
}

// runAPIKeys is `idp apikeys create --name N [--webhook-url U] [--app ID] [--keep-images]
// [--retention D] | list | revoke --id ID | update --app ID [--webhook-url U] [--keep-images=B]
// [--retention D] [--rotate-secret]`.
func runAPIKeys(ctx context.Context, a *app, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("apikeys: missing subcommand (create, list, revoke, update, link, unlink)")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("apikeys "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		name, webhookURL, appID, id, username string
		keepImages, rotate                    bool
		retention                             time.Duration
	)
	switch cmd {
	case "create":
		fs.StringVar(&name, "name", "", "name of the key (and of its new application) (required)")
		fs.StringVar(&webhookURL, "webhook-url", "", "where the application's webhooks go (new application)")
		fs.StringVar(&appID, "app", "", "add the key to this existing application instead of creating one")
		fs.BoolVar(&keepImages, "keep-images", false, "keep the captured frames, sealed, for the console (new application)")
		fs.DurationVar(&retention, "retention", 0, "delete finished sessions this long after they finish; 0 keeps them (new application)")
	case "update":
		fs.StringVar(&appID, "app", "", "application id (required)")
		fs.StringVar(&webhookURL, "webhook-url", "", "new webhook URL (\"-\" removes it)")
		fs.BoolVar(&keepImages, "keep-images", false, "keep the captured frames")
		fs.DurationVar(&retention, "retention", 0, "result retention; 0 keeps them")
		fs.BoolVar(&rotate, "rotate-secret", false, "replace the webhook secret (printed once)")
	case "revoke":
		fs.StringVar(&id, "id", "", "key id (required)")
	case "link", "unlink":
		fs.StringVar(&appID, "app", "", "application id (required)")
		fs.StringVar(&username, "username", "", "the user whose enrolled face the application may (link) or may no longer (unlink) match against (required)")
	case "list":
	default:
		return fmt.Errorf("apikeys: unknown subcommand %q (want create, list, revoke, update, link, unlink)", cmd)
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("apikeys %s: %w", cmd, err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	st := a.store
	now := time.Now().UTC()
	switch cmd {
	case "link", "unlink":
		if appID == "" || username == "" {
			return fmt.Errorf("apikeys %s: --app and --username are required", cmd)
		}
		if _, err := st.GetApplication(ctx, appID); err != nil {
			return fmt.Errorf("apikeys %s: application %q: %w", cmd, appID, err)
		}
		u, err := st.GetUserByUsername(ctx, strings.ToLower(username))
		if err != nil {
			return fmt.Errorf("apikeys %s: user %q: %w", cmd, username, err)
		}
		if cmd == "link" {
			if err := st.LinkUser(ctx, appID, u.ID, "operator", now); err != nil {
				return fmt.Errorf("apikeys link: %w", err)
			}
			fmt.Fprintf(stdout, "application %s may now match against the face of %s\n", appID, u.Username)
			return nil
		}
		if err := st.UnlinkUser(ctx, appID, u.ID); err != nil {
			return fmt.Errorf("apikeys unlink: %w", err)
		}
		fmt.Fprintf(stdout, "application %s may no longer match against the face of %s\n", appID, u.Username)
		return nil
	case "create":
		if strings.TrimSpace(name) == "" {
			return errors.New("apikeys create: --name is required")
		}
		secret := ""
		if appID == "" {
			if err := checkWebhookURL(webhookURL); err != nil {
				return fmt.Errorf("apikeys create: %w", err)
			}
			if retention < 0 {
				return errors.New("apikeys create: --retention must not be negative")
			}
			appID = sessions.NewAppID()
			secret = sessions.NewWebhookSecret()
			if err := st.CreateApplication(ctx, store.Application{ID: appID, Name: name, WebhookURL: webhookURL, WebhookSecret: secret,
				KeepImages: keepImages, ResultRetention: retention, CreatedAt: now}); err != nil {
				return fmt.Errorf("apikeys create: %w", err)
			}
		} else if set["webhook-url"] || set["keep-images"] || set["retention"] {
			return errors.New("apikeys create: --webhook-url, --keep-images and --retention apply to a new application; use `apikeys update --app`")
		}
		raw, k := sessions.NewAPIKey(appID, name, now)
		if err := st.CreateAPIKey(ctx, k); err != nil {
			return fmt.Errorf("apikeys create: %w", err)
		}
		fmt.Fprintf(stdout, "application: %s\nkey id: %s\napi key: %s\n", appID, k.ID, raw)
		if secret != "" {
			fmt.Fprintf(stdout, "webhook secret: %s\n", secret)
		}
		fmt.Fprintln(stdout, "(shown once: only the key's SHA-256 is stored; send it in the x-api-key header)")
	case "list":
		keys, err := st.ListAPIKeys(ctx)
		if err != nil {
			return fmt.Errorf("apikeys list: %w", err)
		}
		apps := map[string]store.Application{}
		list, err := st.ListApplications(ctx)
		if err != nil {
			return fmt.Errorf("apikeys list: %w", err)
		}
		for _, ap := range list {
			apps[ap.ID] = ap
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY ID\tNAME\tKEY\tAPPLICATION\tWEBHOOK URL\tKEEP IMAGES\tRETENTION\tCREATED\tREVOKED")
		for _, k := range keys {
			ap := apps[k.AppID]
			revoked, ret := "-", "forever"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			if ap.ResultRetention > 0 {
				ret = ap.ResultRetention.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s…\t%s\t%s\t%v\t%s\t%s\t%s\n", k.ID, k.Name, k.Hint, k.AppID, orDash(ap.WebhookURL), ap.KeepImages, ret,
				k.CreatedAt.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		if id == "" {
			return errors.New("apikeys revoke: --id is required")
		}
		if err := st.RevokeAPIKey(ctx, id, now); err != nil {
			return fmt.Errorf("apikeys revoke: %w", err)
		}
		fmt.Fprintf(stdout, "key %s revoked\n", id)
	case "update":
		if appID == "" {
			return errors.New("apikeys update: --app is required")
		}
		ap, err := st.GetApplication(ctx, appID)
		if err != nil {
			return fmt.Errorf("apikeys update: %w", err)
		}
		if set["webhook-url"] {
			if webhookURL == "-" {
				webhookURL = ""
			}
			if err := checkWebhookURL(webhookURL); err != nil {
				return fmt.Errorf("apikeys update: %w", err)
			}
			ap.WebhookURL = webhookURL
		}
		if set["keep-images"] {
			ap.KeepImages = keepImages
		}
		if set["retention"] {
			if retention < 0 {
				return errors.New("apikeys update: --retention must not be negative")
			}
			ap.ResultRetention = retention
		}
		if rotate {
			ap.WebhookSecret = sessions.NewWebhookSecret()
		}
		if err := st.UpdateApplication(ctx, ap); err != nil {
			return fmt.Errorf("apikeys update: %w", err)
		}
		fmt.Fprintf(stdout, "application %s updated\n", ap.ID)
		if rotate {
			fmt.Fprintf(stdout, "webhook secret: %s\n(shown once)\n", ap.WebhookSecret)
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func checkWebhookURL(u string) error {
	if u == "" {
		return nil
	}
	_, err := sessions.ParseCreateRequest([]byte(`{"workflow_id":"x","callback":`+strconv.Quote(u)+`}`), 0)
	if err != nil {
		return fmt.Errorf("--webhook-url %q: want an absolute http(s) URL without credentials", u)
	}
	return nil
}

// workflowFile is the YAML (or JSON) of `idp workflows create --file F`: a list of workflows.
type workflowFile struct {
	Workflows []workflowSpec `yaml:"workflows"`
}

type workflowSpec struct {
	ID               string   `yaml:"id"`
	Name             string   `yaml:"name"`
	WorkflowType     string   `yaml:"workflow_type"`
	Features         []string `yaml:"features"`
	LivenessMethod   string   `yaml:"liveness_method"`
	FaceMatchApprove *int     `yaml:"face_match_approve"`
	FaceMatchDecline *int     `yaml:"face_match_decline"`
	LivenessApprove  *int     `yaml:"liveness_approve"`
	LivenessDecline  *int     `yaml:"liveness_decline"`
	MaxAttempts      int      `yaml:"max_attempts"`
}

func orDefault(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// runWorkflows is `idp workflows create --id ID --features LIVENESS,FACE_MATCH[,IP_ANALYSIS]
// [--liveness-method PASSIVE] [--face-match-approve N] [--face-match-decline N]
// [--liveness-approve N] [--liveness-decline N] [--max-attempts N] [--name N] | create --file
// F | list`.
func runWorkflows(ctx context.Context, a *app, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("workflows: missing subcommand (create, list)")
	}
	cmd, args := args[0], args[1:]
	now := time.Now().UTC()
	switch cmd {
	case "create":
		fs := flag.NewFlagSet("workflows create", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var spec workflowSpec
		var features, file string
		fa, fd, la, ld := -1, -1, -1, -1
		fs.StringVar(&spec.ID, "id", "", "workflow id, used as workflow_id (required)")
		fs.StringVar(&spec.Name, "name", "", "name")
		fs.StringVar(&spec.WorkflowType, "workflow-type", sessions.WorkflowType, "workflow type (only biometric_authentication)")
		fs.StringVar(&features, "features", "LIVENESS,FACE_MATCH", "comma-separated: LIVENESS, FACE_MATCH, IP_ANALYSIS")
		fs.StringVar(&spec.LivenessMethod, "liveness-method", "PASSIVE", "PASSIVE (one selfie), ACTIVE_3D (head turns) or FLASHING (screen colours)")
		fs.IntVar(&fa, "face-match-approve", -1, "face-match score (0-100) at or above which a session is approved (default from the face engine's policy)")
		fs.IntVar(&fd, "face-match-decline", -1, "face-match score below which it is declined; between the two it goes to review")
		fs.IntVar(&la, "liveness-approve", -1, "liveness score at or above which liveness passes")
		fs.IntVar(&ld, "liveness-decline", -1, "liveness score below which it fails; between, review")
		fs.IntVar(&spec.MaxAttempts, "max-attempts", 3, "selfies the hosted page takes when one is unusable")
		fs.StringVar(&file, "file", "", "YAML or JSON file with `workflows: [{id, features, liveness_method, face_match_approve, ...}]`")
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("workflows create: %w", err)
		}
		var specs []workflowSpec
		if file != "" {
			b, err := os.ReadFile(file)
			if err != nil {
				return fmt.Errorf("workflows create: %w", err)
			}
			var wf workflowFile
			dec := yaml.NewDecoder(strings.NewReader(string(b)))
			dec.KnownFields(true)
			if err := dec.Decode(&wf); err != nil {
				return fmt.Errorf("workflows create: %s: %w", file, err)
			}
			if len(wf.Workflows) == 0 {
				return fmt.Errorf("workflows create: %s has no workflows", file)
			}
			specs = wf.Workflows
		} else {
			spec.Features = strings.Split(features, ",")
			spec.FaceMatchApprove, spec.FaceMatchDecline, spec.LivenessApprove, spec.LivenessDecline = &fa, &fd, &la, &ld
			specs = []workflowSpec{spec}
		}
		// Check them all before storing any.
		var ws []store.Workflow
		for i, sp := range specs {
			if sp.WorkflowType != "" && sp.WorkflowType != sessions.WorkflowType {
				return fmt.Errorf("workflows create: workflow %d (%s): workflow_type %q: want %s", i+1, sp.ID, sp.WorkflowType, sessions.WorkflowType)
			}
			w, err := sessions.NewWorkflow(sessions.WorkflowOptions{ID: sp.ID, Name: sp.Name, Features: sp.Features, LivenessMethod: sp.LivenessMethod,
				FaceMatchApprove: orDefault(sp.FaceMatchApprove), FaceMatchDecline: orDefault(sp.FaceMatchDecline),
				LivenessApprove: orDefault(sp.LivenessApprove), LivenessDecline: orDefault(sp.LivenessDecline), MaxAttempts: sp.MaxAttempts}, now)
			if err != nil {
				return fmt.Errorf("workflows create: workflow %d (%s): %w", i+1, sp.ID, err)
			}
			ws = append(ws, w)
		}
		for _, w := range ws {
			if err := a.store.CreateWorkflow(ctx, w); err != nil {
				return fmt.Errorf("workflows create: %w", err)
			}
			fmt.Fprintf(stdout, "workflow %s created: %s; face match approve >= %d, decline < %d; liveness approve >= %d, decline < %d\n",
				w.ID, describeFeatures(w), w.FaceMatchApprove, w.FaceMatchDecline, w.LivenessApprove, w.LivenessDecline)
		}
	case "list":
		ws, err := a.store.ListWorkflows(ctx)
		if err != nil {
			return fmt.Errorf("workflows list: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTYPE\tFEATURES\tFACE MATCH (APPROVE/DECLINE)\tLIVENESS (APPROVE/DECLINE)\tMAX ATTEMPTS\tCREATED")
		for _, w := range ws {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d/%d\t%d\t%s\n", w.ID, w.Type, describeFeatures(w), w.FaceMatchApprove, w.FaceMatchDecline,
				w.LivenessApprove, w.LivenessDecline, w.MaxAttempts, w.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	default:
		return fmt.Errorf("workflows: unknown subcommand %q (want create, list)", cmd)
	}
	return nil
}

func describeFeatures(w store.Workflow) string {
	var parts []string
	for _, f := range w.Features {
		if f == sessions.FeatureLiveness {
			f += "(" + w.LivenessMethod + ")"
		}
		parts = append(parts, f)
	}
	return strings.Join(parts, ",")
}

// runUserRole is `idp users promote --username U` (admin: true) and `idp users demote
// --username U` (admin: false): the admin role opens the review console.
func runUserRole(ctx context.Context, a *app, args []string, stdout io.Writer, admin bool) error {
	verb := map[bool]string{true: "promote", false: "demote"}[admin]
	fs := flag.NewFlagSet("users "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	username := fs.String("username", "", "username (required)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("users %s: %w", verb, err)
	}
	if *username == "" {
		return fmt.Errorf("users %s: --username is required", verb)
	}
	u, err := a.store.GetUserByUsername(ctx, strings.ToLower(strings.TrimSpace(*username)))
	if err != nil {
		return fmt.Errorf("users %s: %w", verb, err)
	}
	u.Admin, u.UpdatedAt = admin, time.Now().UTC()
	if err := a.store.UpdateUser(ctx, u); err != nil {
		return fmt.Errorf("users %s: %w", verb, err)
	}
	if admin {
		fmt.Fprintf(stdout, "user %s is an administrator (review console at /console)\n", u.Username)
	} else {
		fmt.Fprintf(stdout, "user %s is no longer an administrator\n", u.Username)
	}
	return nil
}
