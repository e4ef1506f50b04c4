package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/postgres"
	"github.com/visage-idp/visage/store/sqlite"
)

// app is what every command opens: configuration, logger, data directory and store.
type app struct {
	cfg     Config
	log     *slog.Logger
	store   Store
	secrets secrets
}

// Store is everything the binary keeps: one backend, SQLite or PostgreSQL, implements all of it.
type Store interface {
	store.Storage
	store.RiskStorage
	store.SessionsStorage
}

// openStore opens the configured backend and applies its pending migrations (both backends
// migrate under a lock, so nodes that start together apply each migration once).
func openStore(ctx context.Context, cfg Config) (Store, error) {
	switch cfg.Store.Driver {
	case "postgres":
		st, err := postgres.Open(ctx, cfg.Store.DSN)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	default:
		path := cfg.Store.DSN
		if path == "" {
			path = filepath.Join(cfg.DataDir, "visage.db")
		}
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	}
}

// secrets are the server's own random keys, created on first start in the data directory. The
// biometric key ring lives in a file of its own (biometric-keys.json): it never shares a key
// with anything here.
type secrets struct {
	OPCryptoKey    []byte `json:"op_crypto_key"`    // 32 bytes: opaque access tokens and codes
	CookieHashKey  []byte `json:"cookie_hash_key"`  // 64 bytes: browser cookie HMAC
	CookieBlockKey []byte `json:"cookie_block_key"` // 32 bytes: browser cookie AES
	DeviceHashKey  []byte `json:"device_hash_key"`  // 64 bytes: device cookie HMAC
	DeviceBlockKey []byte `json:"device_block_key"` // 32 bytes: device cookie AES
}

// sizes lists every key with its size, so that a file from an older version gains new keys.
func (s *secrets) sizes() map[*[]byte]int {
	return map[*[]byte]int{&s.OPCryptoKey: 32, &s.CookieHashKey: 64, &s.CookieBlockKey: 32, &s.DeviceHashKey: 64, &s.DeviceBlockKey: 32}
}

func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("VISAGE_CONFIG")
	return fs.String("config", def, "YAML configuration file (env VISAGE_CONFIG)")
}

func openApp(ctx context.Context, configPath string) (*app, error) {
	cfg, err := loadConfig(configPath, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[cfg.LogLevel]
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log) // zitadel/oidc logs through the default logger
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	sec, err := loadOrCreateSecrets(filepath.Join(cfg.DataDir, "secrets.json"))
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &app{cfg: cfg, log: log, store: st, secrets: sec}, nil
}

func (a *app) Close() error { return a.store.Close() }

func (a *app) keyRing() (*face.KeyRing, error) {
	return face.LoadOrCreateKeyRing(filepath.Join(a.cfg.DataDir, "biometric-keys.json"))
}

func (a *app) engine() (*face.Engine, error) {
	fc := face.DefaultConfig()
	fc.ModelsDir = a.cfg.ModelsDir
	fc.Matcher, fc.Policy = a.cfg.Face.Matcher, face.DefaultPolicyFor(a.cfg.Face.Matcher)
	if a.cfg.FaceWorkers > 0 {
		fc.Workers = a.cfg.FaceWorkers
	}
	fc.MaxBytes = a.cfg.MaxImageBytes
	fc.MaxPixels = a.cfg.MaxImagePixels
	return face.NewEngine(fc)
}

func loadOrCreateSecrets(path string) (secrets, error) {
	var s secrets
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return s, fmt.Errorf("secrets: %w", err)
	default:
		if err := json.Unmarshal(b, &s); err != nil {
			return s, fmt.Errorf("secrets %s: %w", path, err)
		}
	}
	missing := false
	for k, n := range s.sizes() {
		switch len(*k) {
		case n:
		case 0:
			*k, missing = randBytes(n), true
		default:
			return s, fmt.Errorf("secrets %s: a key has %d bytes, want %d", path, len(*k), n)
		}
	}
	if !missing {
		return s, nil
	}
	// Write a new file and rename it over the old one; if another process won the race, its
	// file is the one everybody uses.
	enc, _ := json.MarshalIndent(s, "", "  ")
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if err := os.WriteFile(tmp, enc, 0o600); err != nil {
		return s, fmt.Errorf("secrets: %w", err)
	}
	if err == nil && len(b) > 0 {
		if err := os.Rename(tmp, path); err != nil {
			return s, fmt.Errorf("secrets: %w", err)
		}
		return s, nil
	}
	if err := os.Link(tmp, path); err != nil {
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return loadOrCreateSecrets(path)
		}
		return s, fmt.Errorf("secrets: %w", err)
	}
	os.Remove(tmp)
	return s, nil
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}
