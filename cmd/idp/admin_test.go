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

// TestUsersUpdateEmail: only an operator verifies an email; changing it unverifies it; an
// address another account holds (in any case) is refused; --backchannel-logout-uri is checked.
func TestUsersUpdateEmail(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("VISAGE_DATA_DIR", dir)
	t.Setenv("VISAGE_CONFIG", "")
	t.Setenv("VISAGE_MODELS_DIR", testenv.ModelsDir(t))
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "visage.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, u := range []store.User{{ID: "u1", Username: "alice", Email: "alice@corp.example"}, {ID: "u2", Username: "bob"}} {
		u.CreatedAt, u.UpdatedAt = now, now
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	run := func(group, cmd string, args ...string) (string, error) {
		var out bytes.Buffer
		err := runAdmin(ctx, group, cmd, args, &out)
		return out.String(), err
	}
	user := func(id string) store.User {
		st, err := sqlite.Open(ctx, filepath.Join(dir, "visage.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		u, err := st.GetUser(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	if _, err := run("users", "update", "--username", "alice", "--email-verified"); err != nil || !user("u1").EmailVerified {
		t.Fatalf("verify: %v %+v", err, user("u1"))
	}
	if _, err := run("users", "update", "--username", "alice", "--display-name", "Alice A"); err != nil || !user("u1").EmailVerified || user("u1").DisplayName != "Alice A" {
		t.Fatalf("display name change touched the verification: %v %+v", err, user("u1"))
	}
	if _, err := run("users", "update", "--username", "alice", "--email", "alice@new.example"); err != nil || user("u1").EmailVerified {
		t.Fatalf("a changed email stays verified: %v %+v", err, user("u1"))
	}
	if _, err := run("users", "update", "--username", "bob", "--email", "ALICE@new.example"); err == nil || !strings.Contains(err.Error(), "another account") {
		t.Fatalf("bob took alice's email: %v", err)
	}
	if u := user("u2"); u.Email != "" {
		t.Fatalf("refused update changed bob: %+v", u)
	}
	if _, err := run("users", "update", "--username", "bob", "--email-verified"); err == nil {
		t.Fatal("verified an empty email")
	}
	if _, err := run("clients", "add", "--id", "kc", "--redirect-uri", "https://kc.example/cb", "--backchannel-logout-uri", "https://kc.example/bc#frag"); err == nil {
		t.Fatal("accepted a back-channel logout URI with a fragment")
	}
	if _, err := run("clients", "add", "--id", "kc", "--redirect-uri", "https://kc.example/cb", "--backchannel-logout-uri", "https://kc.example/bc"); err != nil {
		t.Fatal(err)
	}
	// A redirect URI that is not an absolute http(s) URL is refused with a clear error, and
	// nothing is added.
	if _, err := run("clients", "add", "--id", "bad", "--redirect-uri", "not a url"); err == nil || !strings.Contains(err.Error(), "absolute http(s) URL") {
		t.Fatalf("accepted --redirect-uri 'not a url': %v", err)
	}
	if _, err := run("clients", "add", "--id", "bad", "--redirect-uri", "https://app.example/cb#x"); err == nil || !strings.Contains(err.Error(), "fragment") {
		t.Fatalf("accepted a redirect URI with a fragment: %v", err)
	}
	if _, err := run("clients", "add", "--id", "shop", "--name", "Corner Shop", "--public", "--redirect-uri", "https://shop.example/cb"); err != nil {
		t.Fatal(err)
	}
	out, err := run("clients", "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "NAME") || !strings.Contains(out, "Corner Shop") || strings.Contains(out, "bad ") {
		t.Fatalf("clients list:\n%s", out)
	}
}
