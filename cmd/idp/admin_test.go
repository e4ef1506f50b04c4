package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/visage-idp/visage/internal/testenv"
	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/sqlite"
)

// TestUsersUnlock: `idp users unlock` clears the account's failed attempts, and only them, and
// audits it.
func TestUsersUnlock(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("VISAGE_DATA_DIR", dir)
	t.Setenv("VISAGE_MODELS_DIR", testenv.ModelsDir(t))
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "visage.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, u := range []string{"alice", "bob"} {
		if err := st.CreateUser(ctx, store.User{ID: "id-" + u, Username: u, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := st.RecordAttempt(ctx, store.Attempt{UserID: "id-" + u, IP: "192.0.2.1", At: now}); err != nil {
				t.Fatal(err)
			}
		}
	}
	st.Close()

	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"users", "unlock", "--username", "alice"}, &out, &errOut); err != nil {
		t.Fatalf("users unlock: %v (%s)", err, errOut.String())
	}
	if !strings.Contains(out.String(), "3 failed attempts cleared") {
		t.Errorf("output %q", out.String())
	}
	if err := run(ctx, []string{"users", "unlock", "--username", "nobody"}, &out, &errOut); err == nil {
		t.Error("unlocking an unknown user succeeded")
	}
	st, err = sqlite.Open(ctx, filepath.Join(dir, "visage.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for user, want := range map[string]int{"id-alice": 0, "id-bob": 3} {
		if n, _, err := st.Failures(ctx, store.FailureQuery{UserID: user, Since: now.Add(-time.Hour)}); err != nil || n != want {
			t.Errorf("%s: %d failures (%v), want %d", user, n, err, want)
		}
	}
	evs, err := st.ListAudit(ctx, "id-alice", 5)
	if err != nil || len(evs) != 1 || evs[0].Outcome != "unlocked" {
		t.Errorf("audit: %+v, %v", evs, err)
	}
}
