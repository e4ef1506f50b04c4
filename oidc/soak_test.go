package oidc

import (
	"context"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/sqlite"
)

// TestRefreshSoakWAL runs 10,000 refresh grants (16 chains in parallel, each rotation a write
// transaction) against the provider on SQLite, with the server's housekeeping (a truncating
// checkpoint) running as often as the test can afford. The write-ahead log must stay under
// 64 MB throughout, shrink to nothing at a checkpoint, and garbage collection must leave no
// expired row behind.
func TestRefreshSoakWAL(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 refresh grants")
	}
	srv, p, st := benchProvider(t)
	ctx := context.Background()
	const clientID = "soak"
	if err := st.CreateClient(ctx, store.Client{ID: clientID, SecretHash: HashSecret("soak-secret-0123456789"), AuthMethod: "client_secret_basic",
		RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	db := st.(*sqlite.Store)
	walPath := db.Path() + "-wal"
	const chains, total = 16, 10_000
	tokens := make(chan string, chains)
	for i := range chains {
		tokens <- seedRefreshToken(t, p, st, clientID, i)
	}
	var maxWAL int64
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { // housekeeping, as serve runs it, only more often
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				if fi, err := os.Stat(walPath); err == nil {
					maxWAL = max(maxWAL, fi.Size())
				}
				_ = db.Checkpoint(ctx) // busy is fine: next time
			}
		}
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: chains}}
	var wg sync.WaitGroup
	var failed sync.Once
	per := total / chains
	for range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt := <-tokens
			for range per {
				next, err := refreshGrant(client, srv.URL, clientID, "soak-secret-0123456789", rt, false)
				if err != nil {
					failed.Do(func() { t.Error(err) })
					return
				}
				rt = next
			}
		}()
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	if fi, err := os.Stat(walPath); err == nil {
		maxWAL = max(maxWAL, fi.Size())
	}
	t.Logf("%d refresh grants; largest WAL seen %.1f MB", per*chains, float64(maxWAL)/(1<<20))
	if maxWAL > 64<<20 {
		t.Errorf("WAL reached %d bytes, want under 64 MB", maxWAL)
	}
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(walPath); err != nil || fi.Size() != 0 {
		t.Errorf("WAL after a truncating checkpoint: %v, want 0 bytes", fi.Size())
	}
	// Everything issued expires within the refresh token lifetime: collected as of then, no
	// token, code or grant is left.
	later := time.Now().Add(DefaultLifetimes().RefreshToken + time.Hour)
	n, err := st.GarbageCollect(ctx, later, store.Retention{Grants: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sqlite.OpenDB(ctx, db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	t.Logf("garbage collection removed %d rows", n)
	for _, table := range []string{"access_tokens", "refresh_tokens", "auth_codes", "grants"} {
		var c int
		if err := raw.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&c); err != nil {
			t.Fatal(err)
		}
		if c != 0 {
			t.Errorf("%s: %d rows left after garbage collection, want 0", table, c)
		}
	}
}
