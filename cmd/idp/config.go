package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
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

	FaceWorkers   int   `yaml:"face_workers"`    // VISAGE_FACE_WORKERS: recognizers in the pool (0 = one per CPU)
	MaxImageBytes int64 `yaml:"max_image_bytes"` // VISAGE_MAX_IMAGE_BYTES
	KeepImages    bool  `yaml:"keep_images"`     // VISAGE_KEEP_IMAGES: keep the enrolment photo, sealed, in the template

	SessionTTL    time.Duration `yaml:"session_ttl"`    // VISAGE_SESSION_TTL
	MaxFailures   int           `yaml:"max_failures"`   // VISAGE_MAX_FAILURES
	FailureWindow time.Duration `yaml:"failure_window"` // VISAGE_FAILURE_WINDOW

	CodeTTL         time.Duration `yaml:"code_ttl"`          // VISAGE_CODE_TTL
	AccessTokenTTL  time.Duration `yaml:"access_token_ttl"`  // VISAGE_ACCESS_TOKEN_TTL
	IDTokenTTL      time.Duration `yaml:"id_token_ttl"`      // VISAGE_ID_TOKEN_TTL
	RefreshTokenTTL time.Duration `yaml:"refresh_token_ttl"` // VISAGE_REFRESH_TOKEN_TTL
	AuthRequestTTL  time.Duration `yaml:"auth_request_ttl"`  // VISAGE_AUTH_REQUEST_TTL
}

// defaultConfig returns the defaults documented in the README.
func defaultConfig() Config {
	return Config{
		Issuer: "http://localhost:8080", Listen: "localhost:8080", DataDir: "./data", ModelsDir: "./models/weights",
		LogLevel: "info", Demo: true, MaxImageBytes: 2 << 20,
		SessionTTL: 12 * time.Hour, MaxFailures: 5, FailureWindow: 15 * time.Minute,
		CodeTTL: 60 * time.Second, AccessTokenTTL: 15 * time.Minute, IDTokenTTL: 15 * time.Minute,
		RefreshTokenTTL: 30 * 24 * time.Hour, AuthRequestTTL: 30 * time.Minute,
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
	setInt64("VISAGE_MAX_IMAGE_BYTES", &cfg.MaxImageBytes)
	setBool("VISAGE_KEEP_IMAGES", &cfg.KeepImages)
	setDur("VISAGE_SESSION_TTL", &cfg.SessionTTL)
	setInt("VISAGE_MAX_FAILURES", &cfg.MaxFailures)
	setDur("VISAGE_FAILURE_WINDOW", &cfg.FailureWindow)
	setDur("VISAGE_CODE_TTL", &cfg.CodeTTL)
	setDur("VISAGE_ACCESS_TOKEN_TTL", &cfg.AccessTokenTTL)
	setDur("VISAGE_ID_TOKEN_TTL", &cfg.IDTokenTTL)
	setDur("VISAGE_REFRESH_TOKEN_TTL", &cfg.RefreshTokenTTL)
	setDur("VISAGE_AUTH_REQUEST_TTL", &cfg.AuthRequestTTL)
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
	if c.FaceWorkers < 0 {
		errs = append(errs, errors.New("face_workers: must be 0 (one per CPU) or more"))
	}
	if c.MaxImageBytes < 10<<10 || c.MaxImageBytes > 20<<20 {
		errs = append(errs, fmt.Errorf("max_image_bytes %d: want 10 KiB to 20 MiB", c.MaxImageBytes))
	}
	if c.MaxFailures < 1 {
		errs = append(errs, errors.New("max_failures: must be at least 1"))
	}
	for name, d := range map[string]time.Duration{"session_ttl": c.SessionTTL, "failure_window": c.FailureWindow, "code_ttl": c.CodeTTL,
		"access_token_ttl": c.AccessTokenTTL, "id_token_ttl": c.IDTokenTTL, "refresh_token_ttl": c.RefreshTokenTTL, "auth_request_ttl": c.AuthRequestTTL} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be a positive duration", name))
		}
	}
	if c.CodeTTL > 10*time.Minute {
		errs = append(errs, errors.New("code_ttl: at most 10m (RFC 6749 section 4.1.2)"))
	}
	return errors.Join(errs...)
}
