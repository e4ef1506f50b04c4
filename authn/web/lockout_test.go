package web

import (
	"context"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/visage-idp/visage/authn/risk"
	"github.com/visage-idp/visage/authn/words"
)

// TestLockoutGriefing: a stranger who knows only the username sends failing selfies from his
// own browser and network until the account is locked for him. The owner, on the device and
// network she signed in from before, still gets in; the stranger stays locked out.
func TestLockoutGriefing(t *testing.T) {
	e := newStepEnv(t, func(c *Config) { c.MaxFailures = 3 })
	owner := newBrowser("192.0.2.10")
	if o := e.signIn(t, owner, lfwPhoto(t, "Aaron_Peirsol", 2), nil); o.code == "" {
		t.Fatalf("owner's first sign-in: %+v", o)
	}
	stranger := newBrowser("198.51.100.200")
	other := lfwPhoto(t, "Colin_Powell", 38)
	for i := range 3 {
		if o := e.signIn(t, stranger, other, nil); o.code != "" || o.status == http.StatusTooManyRequests {
			t.Fatalf("stranger's attempt %d: %+v", i+1, o)
		}
	}
	if o := e.signIn(t, stranger, other, nil); o.status != http.StatusTooManyRequests {
		t.Fatalf("the stranger is not locked out after 3 failures: %+v", o)
	}
	// A browser without the owner's device cookie counts the account's failures: held back.
	if o := e.signIn(t, newBrowser("192.0.2.10"), lfwPhoto(t, "Aaron_Peirsol", 2), nil); o.status != http.StatusTooManyRequests {
		t.Fatalf("a browser without the device cookie was not held back: %+v", o)
	}
	owner.dropSession(e.srv.URL)
	if o := e.signIn(t, owner, lfwPhoto(t, "Aaron_Peirsol", 2), nil); o.code == "" || o.status == http.StatusTooManyRequests {
		t.Fatalf("the owner on her known device and network was locked out by a stranger: %+v", o)
	}
}

// TestIPLimitNotResetBySuccess: one address fails against a victim, signs in to its own account,
// and fails again: the success does not wipe the address's failures, and the limit holds.
func TestIPLimitNotResetBySuccess(t *testing.T) {
	e := newStepEnv(t, func(c *Config) { c.MaxFailures = 100; c.MaxIPFailures = 5 })
	img, err := os.ReadFile(lfwPhoto(t, "Colin_Powell", 74))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Enrol(context.Background(), e.store, testEngine(t), e.web.keys, Account{Username: "mallory"}, [][]byte{img}, false, time.Now); err != nil {
		t.Fatal(err)
	}
	attacker := newBrowser("198.51.100.200")
	wrong := lfwPhoto(t, "Colin_Powell", 38)
	for i := range 3 {
		if o := e.signIn(t, attacker, wrong, nil); o.code != "" || o.status == http.StatusTooManyRequests {
			t.Fatalf("failure %d: %+v", i+1, o)
		}
	}
	if o := e.signInAs(t, newBrowser("198.51.100.200"), "mallory", wrong, nil); o.code == "" {
		t.Fatalf("the attacker's own sign-in: %+v", o)
	}
	for i := range 2 {
		if o := e.signIn(t, attacker, wrong, nil); o.code != "" || o.status == http.StatusTooManyRequests {
			t.Fatalf("failure %d after the success: %+v", i+4, o)
		}
	}
	if o := e.signIn(t, newBrowser("198.51.100.200"), wrong, nil); o.status != http.StatusTooManyRequests {
		t.Fatalf("5 failures from one address, one success between them: not limited: %+v", o)
	}
}

// TestLockoutBackoff: past the limit the wait grows step by step (a minute, then two), and the
// page says how long in words.
func TestLockoutBackoff(t *testing.T) {
	clock := &testClock{t: time.Now()}
	e := newStepEnvClock(t, func(c *Config) { c.MaxFailures = 2; c.FailureWindow = time.Hour }, false, clock.Now)
	b := newBrowser("198.51.100.200")
	wrong := lfwPhoto(t, "Colin_Powell", 38)
	fail := func(step string) {
		t.Helper()
		o := e.signIn(t, b, wrong, nil)
		if o.code != "" || o.status == http.StatusTooManyRequests {
			t.Fatalf("%s: %+v", step, o)
		}
		// The person reads a sentence with the next step; the code is in its own field.
		if o.verdict.Code == "" || o.verdict.Message != words.For(o.verdict.Code) {
			t.Fatalf("%s: decline %+v is not the catalogue's sentence for its code", step, o.verdict)
		}
		plainMessage(t, o.verdict.Message)
	}
	lockedFor := func(step string) {
		t.Helper()
		if o := e.signIn(t, b, wrong, nil); o.status != http.StatusTooManyRequests {
			t.Fatalf("%s: not locked: %+v", step, o)
		}
	}
	fail("failure 1")
	fail("failure 2")
	lockedFor("after 2 failures")
	clock.Add(61 * time.Second)
	fail("failure 3, a minute later")
	lockedFor("after 3 failures: two minutes now")
	// The lockout says how long, in words.
	u0, err := e.store.GetUserByUsername(context.Background(), "aaron")
	if err != nil {
		t.Fatal(err)
	}
	msg, locked, err := e.web.locked(context.Background(), u0.ID, assessment{signals: risk.Signals{IP: netip.MustParseAddr("198.51.100.200")}})
	if err != nil || !locked || msg != "There were too many failed attempts on this account. Try again in 2 minutes." {
		t.Fatalf("locked() = %q, %v, %v", msg, locked, err)
	}
	plainMessage(t, msg)
	clock.Add(61 * time.Second)
	lockedFor("a minute after the 3rd failure")
	clock.Add(60 * time.Second)
	fail("failure 4, two minutes later")
	lockedFor("after 4 failures")
	// An administrator's unlock (idp users unlock) clears the account's failures.
	u, err := e.store.GetUserByUsername(context.Background(), "aaron")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.store.ClearFailures(context.Background(), u.ID); err != nil || n != 4 {
		t.Fatalf("ClearFailures = %d, %v", n, err)
	}
	if o := e.signIn(t, newBrowser("198.51.100.10"), lfwPhoto(t, "Aaron_Peirsol", 2), nil); o.code == "" {
		t.Fatalf("after the unlock: %+v", o)
	}
}
