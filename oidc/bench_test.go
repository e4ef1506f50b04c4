package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/sqlite"
)

// benchProvider serves the provider over a real SQLite store on loopback.
func benchProvider(b testing.TB) (*httptest.Server, *Provider, store.Storage) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := EnsureKeys(ctx, st, time.Now().UTC()); err != nil {
		b.Fatal(err)
	}
	srv := newLoopback(b)
	p, err := NewProvider(Config{Issuer: srv.url, LoginPath: "/login", LoggedOutPath: "/"}, st)
	if err != nil {
		b.Fatal(err)
	}
	srv.start(p.Handler())
	return srv.srv, p, st
}

// seedRefreshToken creates a user, a completed auth request and a code, and exchanges it through
// the storage adapter, returning a refresh token.
func seedRefreshToken(b testing.TB, p *Provider, st store.Storage, clientID string, i int) string {
	b.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	uid := fmt.Sprintf("u-%s-%d", clientID, i)
	if err := st.CreateUser(ctx, store.User{ID: uid, Username: uid, CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	ar := store.AuthRequest{ID: "ar-" + uid, ClientID: clientID, RedirectURI: "http://127.0.0.1/cb", Scopes: []string{"openid", "offline_access"},
		ResponseType: "code", CreatedAt: now, ExpiresAt: now.Add(time.Hour), UserID: uid, AuthTime: now, AMR: []string{"face"}, ACR: ACRSelfie, Done: true}
	if err := st.CreateAuthRequest(ctx, ar); err != nil {
		b.Fatal(err)
	}
	code := "code-" + uid
	if err := p.storage.SaveAuthCode(ctx, ar.ID, code); err != nil {
		b.Fatal(err)
	}
	req, err := p.storage.AuthRequestByCode(ctx, code)
	if err != nil {
		b.Fatal(err)
	}
	_, rt, _, err := p.storage.CreateAccessAndRefreshTokens(ctx, req, "")
	if err != nil {
		b.Fatal(err)
	}
	return rt
}

// BenchmarkRefreshGrant measures the token endpoint under load: parallel refresh_token grants
// (each rotating its own chain) over loopback HTTP, with an ID token signed per grant. It reports
// requests per second and the p99 latency.
//
//	go test -run '^$' -bench RefreshGrant -benchtime 2000x ./oidc
func BenchmarkRefreshGrant(b *testing.B) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		b.Run(alg, func(b *testing.B) {
			srv, p, st := benchProvider(b)
			clientID := "bench-" + strings.ToLower(alg)
			if err := st.CreateClient(context.Background(), store.Client{ID: clientID, SecretHash: HashSecret("bench-secret-0123456789"), AuthMethod: "client_secret_basic",
				RedirectURIs: []string{"http://127.0.0.1/cb"}, IDTokenSigningAlg: alg, CreatedAt: time.Now()}); err != nil {
				b.Fatal(err)
			}
			const chains = 16
			tokens := make(chan string, chains)
			for i := 0; i < chains; i++ {
				tokens <- seedRefreshToken(b, p, st, clientID, i)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: chains}}
			var mu sync.Mutex
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rt := <-tokens
					t0 := time.Now()
					next, err := refreshGrant(client, srv.URL, clientID, "bench-secret-0123456789", rt, true)
					d := time.Since(t0)
					if err != nil {
						b.Error(err)
						return
					}
					tokens <- next
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if len(lat) == 0 {
				return
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		})
	}
}

// refreshGrant posts one refresh_token grant with client_secret_basic and returns the rotated
// refresh token; with wantIDToken an answer without an ID token is an error too.
func refreshGrant(client *http.Client, base, clientID, secret, rt string, wantIDToken bool) (string, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("refresh: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	if err != nil || resp.StatusCode != http.StatusOK || out.RefreshToken == "" || (wantIDToken && out.IDToken == "") {
		return "", fmt.Errorf("refresh: status %d err %v", resp.StatusCode, err)
	}
	return out.RefreshToken, nil
}
