package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/risk"
)

// Config is the whole configuration: a YAML file (serve --config FILE) with VISAGE_* environment
// variables overriding it. Every field, its variable and its default is listed in the README.
type Config struct {
	Issuer    string `yaml:"issuer"`     // VISAGE_ISSUER
	Listen    string `yaml:"listen"`     // VISAGE_LISTEN, host:port
	DataDir   string `yaml:"data_dir"`   // VISAGE_DATA_DIR
	ModelsDir string `yaml:"models_dir"` // VISAGE_MODELS_DIR
	LogLevel  string `yaml:"log_level"`  // VISAGE_LOG_LEVEL: debug, info, warn, error
	Demo      bool   `yaml:"demo"`       // VISAGE_DEMO: serve the demo client at /demo

	Store    StoreConfig      `yaml:"store"`    // VISAGE_STORE_DRIVER, VISAGE_STORE_DSN
	Sessions sessionsSettings `yaml:"sessions"` // VISAGE_SESSIONS_*: the Sessions API

	FaceWorkers   int   `yaml:"face_workers"`    // VISAGE_FACE_WORKERS: recognizers in the pool (0 = one per CPU)
	MaxImageBytes int64 `yaml:"max_image_bytes"` // VISAGE_MAX_IMAGE_BYTES
	KeepImages    bool  `yaml:"keep_images"`     // VISAGE_KEEP_IMAGES: keep the enrolment photo, sealed, in the template

	LivenessThreshold float64 `yaml:"liveness_threshold"` // VISAGE_LIVENESS_THRESHOLD: fused MiniFASNet real-face probability (0 = the measured default)

	SessionTTL    time.Duration `yaml:"session_ttl"`    // VISAGE_SESSION_TTL
	MaxFailures   int           `yaml:"max_failures"`   // VISAGE_MAX_FAILURES
	FailureWindow time.Duration `yaml:"failure_window"` // VISAGE_FAILURE_WINDOW

	CodeTTL         time.Duration `yaml:"code_ttl"`          // VISAGE_CODE_TTL
	AccessTokenTTL  time.Duration `yaml:"access_token_ttl"`  // VISAGE_ACCESS_TOKEN_TTL
	IDTokenTTL      time.Duration `yaml:"id_token_ttl"`      // VISAGE_ID_TOKEN_TTL
	RefreshTokenTTL time.Duration `yaml:"refresh_token_ttl"` // VISAGE_REFRESH_TOKEN_TTL
	AuthRequestTTL  time.Duration `yaml:"auth_request_ttl"`  // VISAGE_AUTH_REQUEST_TTL

	// Adaptive step-up.
	TrustedProxies []string      `yaml:"trusted_proxies"` // VISAGE_TRUSTED_PROXIES (comma-separated CIDRs or addresses)
	TorList        string        `yaml:"tor_list"`        // VISAGE_TOR_LIST: file of Tor exit addresses/CIDRs
	VPNList        string        `yaml:"vpn_list"`        // VISAGE_VPN_LIST: file of VPN/hosting CIDRs
	ListReload     time.Duration `yaml:"list_reload"`     // VISAGE_LIST_RELOAD: how often the list files are checked
	KnownIPWindow  time.Duration `yaml:"known_ip_window"` // VISAGE_KNOWN_IP_WINDOW
	KnownIPv4Bits  int           `yaml:"known_ipv4_bits"` // VISAGE_KNOWN_IPV4_BITS
	KnownIPv6Bits  int           `yaml:"known_ipv6_bits"` // VISAGE_KNOWN_IPV6_BITS
	MaxIPFailures  int           `yaml:"max_ip_failures"` // VISAGE_MAX_IP_FAILURES
	DeviceTTL      time.Duration `yaml:"device_ttl"`      // VISAGE_DEVICE_TTL
	StepUp         risk.Policy   `yaml:"step_up"`         // VISAGE_STEP_UP_KNOWN_DEVICE_KNOWN_IP, _KNOWN_DEVICE_NEW_IP, _NEW_DEVICE, _NEW_DEVICE_TOR_OR_VPN

	// Abuse resistance.
	MaxImagePixels        int     `yaml:"max_image_pixels"`              // VISAGE_MAX_IMAGE_PIXELS: width x height of a selfie, checked from the header
	RateLimitBurst        int     `yaml:"rate_limit_burst"`              // VISAGE_RATE_LIMIT_BURST: requests one address may make at once (0 = no limit)
	RateLimitPerMinute    float64 `yaml:"rate_limit_per_minute"`         // VISAGE_RATE_LIMIT_PER_MINUTE
	RateLimitNetBurst     int     `yaml:"rate_limit_network_burst"`      // VISAGE_RATE_LIMIT_NETWORK_BURST: the same for one /24 or /64
	RateLimitNetPerMinute float64 `yaml:"rate_limit_network_per_minute"` // VISAGE_RATE_LIMIT_NETWORK_PER_MINUTE

	// Housekeeping: how long records that do not expire by themselves are kept (0 = for ever).
	AttemptsRetention time.Duration `yaml:"attempts_retention"` // VISAGE_ATTEMPTS_RETENTION: sign-in attempts (at least known_ip_window and failure_window)
	AuditRetention    time.Duration `yaml:"audit_retention"`    // VISAGE_AUDIT_RETENTION
	GrantRetention    time.Duration `yaml:"grant_retention"`    // VISAGE_GRANT_RETENTION: grants with no token left

	Face FaceConfig `yaml:"face"`
}

// FaceConfig is the `face:` section.
type FaceConfig struct {
	Matcher string `yaml:"matcher"` // VISAGE_FACE_MATCHER: onnx (default) or dlib
}

// StoreConfig chooses the backend: the embedded SQLite file (one node) or PostgreSQL (one or
// more nodes).
type StoreConfig struct {
	Driver string `yaml:"driver"` // sqlite (default) or postgres
	// DSN: for postgres a connection URL or keyword string; for sqlite the database file
	// (default data_dir/visage.db).
	DSN string `yaml:"dsn"`
}

// defaultConfig returns the defaults documented in the README.
func defaultConfig() Config {
	return Config{
		Issuer: "http://localhost:8080", Listen: "localhost:8080", DataDir: "./data", ModelsDir: "./models/weights",
		LogLevel: "info", Demo: true, MaxImageBytes: 2 << 20, Store: StoreConfig{Driver: "sqlite"}, Sessions: defaultSessionsSettings(),
		SessionTTL: 12 * time.Hour, MaxFailures: 5, FailureWindow: 15 * time.Minute,
		CodeTTL: 60 * time.Second, AccessTokenTTL: 15 * time.Minute, IDTokenTTL: 15 * time.Minute,
		RefreshTokenTTL: 30 * 24 * time.Hour, AuthRequestTTL: 30 * time.Minute,
		ListReload: time.Minute, KnownIPWindow: 90 * 24 * time.Hour, KnownIPv4Bits: 24, KnownIPv6Bits: 64, MaxIPFailures: 20,
		DeviceTTL: 400 * 24 * time.Hour, StepUp: risk.DefaultPolicy(),
		AttemptsRetention: 90 * 24 * time.Hour, AuditRetention: 365 * 24 * time.Hour, GrantRetention: 24 * time.Hour,
		MaxImagePixels: 2_100_000, RateLimitBurst: 30, RateLimitPerMinute: 30, RateLimitNetBurst: 120, RateLimitNetPerMinute: 120,
		Face: FaceConfig{Matcher: face.MatcherONNX},
	}
}

// loadConfig reads the YAML file (if path is set), applies the environment and validates.
func loadConfig(path string, env func(string) (string, bool)) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	var errs []error
	setStr := func(name string, dst *string) {
		if v, ok := env(name); ok {
			*dst = v
		}
	}
	setBool := func(name string, dst *bool) {
		if v, ok := env(name); ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want true or false", name, v))
			}
			*dst = b
		}
	}
	setInt := func(name string, dst *int) {
		if v, ok := env(name); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want an integer", name, v))
			}
			*dst = n
		}
	}
	setInt64 := func(name string, dst *int64) {
		if v, ok := env(name); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want an integer", name, v))
			}
			*dst = n
		}
	}
	setFloat := func(name string, dst *float64) {
		if v, ok := env(name); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want a number", name, v))
			}
			*dst = f
		}
	}
	setDur := func(name string, dst *time.Duration) {
		if v, ok := env(name); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want a duration such as 90s or 15m", name, v))
			}
			*dst = d
		}
	}
	setStr("VISAGE_ISSUER", &cfg.Issuer)
	setStr("VISAGE_LISTEN", &cfg.Listen)
	setStr("VISAGE_DATA_DIR", &cfg.DataDir)
	setStr("VISAGE_MODELS_DIR", &cfg.ModelsDir)
	setStr("VISAGE_LOG_LEVEL", &cfg.LogLevel)
	setBool("VISAGE_DEMO", &cfg.Demo)
	setInt("VISAGE_FACE_WORKERS", &cfg.FaceWorkers)
	setStr("VISAGE_FACE_MATCHER", &cfg.Face.Matcher)
	setInt64("VISAGE_MAX_IMAGE_BYTES", &cfg.MaxImageBytes)
	setBool("VISAGE_KEEP_IMAGES", &cfg.KeepImages)
	if v, ok := env("VISAGE_LIVENESS_THRESHOLD"); ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("VISAGE_LIVENESS_THRESHOLD=%q: want a number between 0 and 1", v))
		}
		cfg.LivenessThreshold = f
	}
	setDur("VISAGE_SESSION_TTL", &cfg.SessionTTL)
	setInt("VISAGE_MAX_FAILURES", &cfg.MaxFailures)
	setDur("VISAGE_FAILURE_WINDOW", &cfg.FailureWindow)
	setDur("VISAGE_CODE_TTL", &cfg.CodeTTL)
	setDur("VISAGE_ACCESS_TOKEN_TTL", &cfg.AccessTokenTTL)
	setDur("VISAGE_ID_TOKEN_TTL", &cfg.IDTokenTTL)
	setDur("VISAGE_REFRESH_TOKEN_TTL", &cfg.RefreshTokenTTL)
	setDur("VISAGE_AUTH_REQUEST_TTL", &cfg.AuthRequestTTL)
	if v, ok := env("VISAGE_TRUSTED_PROXIES"); ok {
		cfg.TrustedProxies = nil
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				cfg.TrustedProxies = append(cfg.TrustedProxies, p)
			}
		}
	}
	setStr("VISAGE_TOR_LIST", &cfg.TorList)
	setStr("VISAGE_VPN_LIST", &cfg.VPNList)
	setDur("VISAGE_LIST_RELOAD", &cfg.ListReload)
	setDur("VISAGE_KNOWN_IP_WINDOW", &cfg.KnownIPWindow)
	setInt("VISAGE_KNOWN_IPV4_BITS", &cfg.KnownIPv4Bits)
	setInt("VISAGE_KNOWN_IPV6_BITS", &cfg.KnownIPv6Bits)
	setInt("VISAGE_MAX_IP_FAILURES", &cfg.MaxIPFailures)
	setDur("VISAGE_DEVICE_TTL", &cfg.DeviceTTL)
	setInt("VISAGE_MAX_IMAGE_PIXELS", &cfg.MaxImagePixels)
	setStr("VISAGE_STORE_DRIVER", &cfg.Store.Driver)
	setStr("VISAGE_STORE_DSN", &cfg.Store.DSN)
	if err := cfg.Sessions.applyEnv(env); err != nil {
		errs = append(errs, err)
	}
	setDur("VISAGE_ATTEMPTS_RETENTION", &cfg.AttemptsRetention)
	setDur("VISAGE_AUDIT_RETENTION", &cfg.AuditRetention)
	setDur("VISAGE_GRANT_RETENTION", &cfg.GrantRetention)
	setInt("VISAGE_RATE_LIMIT_BURST", &cfg.RateLimitBurst)
	setFloat("VISAGE_RATE_LIMIT_PER_MINUTE", &cfg.RateLimitPerMinute)
	setInt("VISAGE_RATE_LIMIT_NETWORK_BURST", &cfg.RateLimitNetBurst)
	setFloat("VISAGE_RATE_LIMIT_NETWORK_PER_MINUTE", &cfg.RateLimitNetPerMinute)
	setStr("VISAGE_STEP_UP_KNOWN_DEVICE_KNOWN_IP", &cfg.StepUp.KnownDeviceKnownIP)
	setStr("VISAGE_STEP_UP_KNOWN_DEVICE_NEW_IP", &cfg.StepUp.KnownDeviceNewIP)
	setStr("VISAGE_STEP_UP_NEW_DEVICE", &cfg.StepUp.NewDevice)
	setStr("VISAGE_STEP_UP_NEW_DEVICE_TOR_OR_VPN", &cfg.StepUp.NewDeviceAnonymous)
	if len(errs) > 0 {
		return cfg, fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return cfg, cfg.validate()
}

// validate checks every setting and says which one is wrong.
func (c Config) validate() error {
	var errs []error
	u, err := url.Parse(c.Issuer)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		errs = append(errs, fmt.Errorf("issuer %q: want an absolute http(s) URL such as https://id.example.com", c.Issuer))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("issuer %q: must not have a query or fragment", c.Issuer))
	case u.Path != "" && u.Path != "/":
		errs = append(errs, fmt.Errorf("issuer %q: serving under a path is not supported; use a host of its own", c.Issuer))
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		errs = append(errs, fmt.Errorf("listen %q: want host:port such as localhost:8080 or :8080", c.Listen))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir: must be set"))
	}
	if st, err := os.Stat(filepath.Join(c.ModelsDir, "dlib")); err != nil || !st.IsDir() {
		errs = append(errs, fmt.Errorf("models_dir %q: no dlib/ folder in it; run `make models` or set VISAGE_MODELS_DIR", c.ModelsDir))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel))
	}
	if c.Face.Matcher != face.MatcherONNX && c.Face.Matcher != face.MatcherDlib {
		errs = append(errs, fmt.Errorf("face.matcher %q: want onnx or dlib", c.Face.Matcher))
	}
	if c.FaceWorkers < 0 {
		errs = append(errs, errors.New("face_workers: must be 0 (one per CPU) or more"))
	}
	if c.MaxImageBytes < 10<<10 || c.MaxImageBytes > 20<<20 {
		errs = append(errs, fmt.Errorf("max_image_bytes %d: want 10 KiB to 20 MiB", c.MaxImageBytes))
	}
	if c.LivenessThreshold < 0 || c.LivenessThreshold >= 1 {
		errs = append(errs, errors.New("liveness_threshold: want 0 (default) or a probability below 1"))
	}
	if c.MaxFailures < 1 {
		errs = append(errs, errors.New("max_failures: must be at least 1"))
	}
	for name, d := range map[string]time.Duration{"session_ttl": c.SessionTTL, "failure_window": c.FailureWindow, "code_ttl": c.CodeTTL,
		"access_token_ttl": c.AccessTokenTTL, "id_token_ttl": c.IDTokenTTL, "refresh_token_ttl": c.RefreshTokenTTL, "auth_request_ttl": c.AuthRequestTTL,
		"list_reload": c.ListReload, "known_ip_window": c.KnownIPWindow, "device_ttl": c.DeviceTTL} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be a positive duration", name))
		}
	}
	if _, err := c.trustedProxies(); err != nil {
		errs = append(errs, err)
	}
	if err := c.StepUp.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("step_up: %w", err))
	}
	if c.KnownIPv4Bits < 8 || c.KnownIPv4Bits > 32 || c.KnownIPv6Bits < 16 || c.KnownIPv6Bits > 128 {
		errs = append(errs, errors.New("known_ipv4_bits: 8 to 32, known_ipv6_bits: 16 to 128"))
	}
	if c.MaxIPFailures < 1 {
		errs = append(errs, errors.New("max_ip_failures: must be at least 1"))
	}
	if err := c.Sessions.validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.Store.Driver {
	case "sqlite":
	case "postgres":
		if c.Store.DSN == "" {
			errs = append(errs, errors.New("store.dsn: required with store.driver postgres (e.g. postgres://visage@db:5432/visage)"))
		}
	default:
		errs = append(errs, fmt.Errorf("store.driver %q: want sqlite or postgres", c.Store.Driver))
	}
	if c.AttemptsRetention < 0 || c.AuditRetention < 0 || c.GrantRetention < 0 {
		errs = append(errs, errors.New("attempts_retention, audit_retention, grant_retention: 0 (keep for ever) or a positive duration"))
	}
	if c.AttemptsRetention > 0 && (c.AttemptsRetention < c.KnownIPWindow || c.AttemptsRetention < c.FailureWindow) {
		errs = append(errs, fmt.Errorf("attempts_retention %s: at least known_ip_window (%s) and failure_window (%s), which are read from the attempts", c.AttemptsRetention, c.KnownIPWindow, c.FailureWindow))
	}
	if c.MaxImagePixels < 100_000 || c.MaxImagePixels > 50_000_000 {
		errs = append(errs, fmt.Errorf("max_image_pixels %d: want 100000 to 50000000", c.MaxImagePixels))
	}
	if c.RateLimitBurst < 0 || c.RateLimitNetBurst < 0 || c.RateLimitPerMinute < 0 || c.RateLimitNetPerMinute < 0 ||
		(c.RateLimitBurst > 0 && c.RateLimitPerMinute == 0) || (c.RateLimitNetBurst > 0 && c.RateLimitNetPerMinute == 0) {
		errs = append(errs, errors.New("rate_limit_*: bursts 0 (no limit) or more, and a positive per-minute rate for every limit that is on"))
	}
	for _, f := range []struct{ name, path string }{{"tor_list", c.TorList}, {"vpn_list", c.VPNList}} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: %w", f.name, f.path, err))
			}
		}
	}
	if c.CodeTTL > 10*time.Minute {
		errs = append(errs, errors.New("code_ttl: at most 10m (RFC 6749 section 4.1.2)"))
	}
	return errors.Join(errs...)
}

// trustedProxies parses trusted_proxies (addresses or CIDRs).
func (c Config) trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range c.TrustedProxies {
		if strings.Contains(v, "/") {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return nil, fmt.Errorf("trusted_proxies %q: not a CIDR", v)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies %q: not an address", v)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
