package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	models := t.TempDir()
	if err := os.Mkdir(filepath.Join(models, "dlib"), 0o755); err != nil {
		t.Fatal(err)
	}
	yamlFile := filepath.Join(t.TempDir(), "visage.yaml")
	if err := os.WriteFile(yamlFile, []byte("issuer: https://id.example.com\nlisten: 0.0.0.0:9000\nsession_ttl: 2h\nmodels_dir: "+models+
		"\nstore:\n  driver: sqlite\nsessions:\n  ttl: 5m\n  console: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badYAML := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(badYAML, []byte("isuer: typo\n"), 0o600)
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "yaml", file: yamlFile, check: func(t *testing.T, c Config) {
			if c.Issuer != "https://id.example.com" || c.Listen != "0.0.0.0:9000" || c.SessionTTL != 2*time.Hour || c.MaxFailures != 5 {
				t.Fatalf("got %+v", c)
			}
			if c.Sessions.TTL != 5*time.Minute || c.Sessions.Console || c.Sessions.WebhookHorizon != 24*time.Hour || c.Store.Driver != "sqlite" {
				t.Fatalf("sessions block: %+v, store %+v", c.Sessions, c.Store)
			}
		}},
		{name: "sessions variable overrides the yaml block", file: yamlFile, env: map[string]string{"VISAGE_SESSIONS_TTL": "7m"}, check: func(t *testing.T, c Config) {
			if c.Sessions.TTL != 7*time.Minute || c.Sessions.Console {
				t.Fatalf("sessions: %+v", c.Sessions)
			}
		}},
		{name: "postgres without a dsn", file: yamlFile, env: map[string]string{"VISAGE_STORE_DRIVER": "postgres"}, wantErr: "store.dsn"},
		{name: "unknown store driver", file: yamlFile, env: map[string]string{"VISAGE_STORE_DRIVER": "mysql"}, wantErr: "store.driver"},
		{name: "env overrides yaml", file: yamlFile, env: map[string]string{"VISAGE_ISSUER": "http://127.0.0.1:8081", "VISAGE_LISTEN": "127.0.0.1:8081", "VISAGE_CODE_TTL": "2s"},
			check: func(t *testing.T, c Config) {
				if c.Issuer != "http://127.0.0.1:8081" || c.Listen != "127.0.0.1:8081" || c.CodeTTL != 2*time.Second {
					t.Fatalf("got %+v", c)
				}
			}},
		{name: "unknown yaml key", file: badYAML, env: map[string]string{"VISAGE_MODELS_DIR": models}, wantErr: "isuer"},
		{name: "relative issuer", env: map[string]string{"VISAGE_ISSUER": "localhost:8080", "VISAGE_MODELS_DIR": models}, wantErr: "issuer"},
		{name: "bad listen", env: map[string]string{"VISAGE_LISTEN": "8080", "VISAGE_MODELS_DIR": models}, wantErr: "listen"},
		{name: "bad duration", env: map[string]string{"VISAGE_SESSION_TTL": "soon", "VISAGE_MODELS_DIR": models}, wantErr: "VISAGE_SESSION_TTL"},
		{name: "missing models", env: map[string]string{"VISAGE_MODELS_DIR": filepath.Join(models, "nope")}, wantErr: "make models"},
		{name: "code ttl too long", env: map[string]string{"VISAGE_CODE_TTL": "1h", "VISAGE_MODELS_DIR": models}, wantErr: "code_ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			c, err := loadConfig(tt.file, env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
