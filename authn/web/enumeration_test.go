package web

import (
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestNoUsernameEnumeration: a stranger holding only usernames and a photo of somebody learns
// nothing from the selfie step about which usernames exist: the answers (status code and every
// field) are the same, the time taken overlaps, and an unknown name locks out like a known one.
func TestNoUsernameEnumeration(t *testing.T) {
	e := newStepEnv(t, func(c *Config) { c.MaxFailures = 8; c.MaxIPFailures = 1000 })
	stranger := lfwPhoto(t, "Colin_Powell", 38)
	var known, unknown []time.Duration
	var first map[string]outcome
	for i := range 6 {
		for _, name := range []string{"aaron", "nobody-here"} {
			start := time.Now()
			o := e.signInAs(t, newBrowser("198.51.100.20"), name, stranger, nil)
			took := time.Since(start)
			if name == "aaron" {
				known = append(known, took)
			} else {
				unknown = append(unknown, took)
			}
			if o.code != "" || !o.selfieAsked {
				t.Fatalf("%s attempt %d: %+v", name, i+1, o)
			}
			o.verdict.Redirect = ""
			if first == nil {
				first = map[string]outcome{}
			}
			if _, ok := first[name]; !ok {
				first[name] = o
			}
		}
	}
	k, u := first["aaron"], first["nobody-here"]
	if k.status != u.status || k.method != u.method || !reflect.DeepEqual(k.verdict, u.verdict) {
		t.Fatalf("known and unknown usernames answer differently:\nknown   %d %s %+v\nunknown %d %s %+v", k.status, k.method, k.verdict, u.status, u.method, u.verdict)
	}
	slices.Sort(known)
	slices.Sort(unknown)
	t.Logf("known: %v\nunknown: %v", known, unknown)
	// The two distributions overlap (before: 3-29 ms for unknown names against 360-424 ms).
	if unknown[len(unknown)-1] < known[0] || known[len(known)-1] < unknown[0] {
		t.Errorf("timing separates known from unknown usernames: known %v, unknown %v", known, unknown)
	}
	// Both reach the lockout after the same number of failures (6 so far, the limit is 8).
	for _, name := range []string{"aaron", "nobody-here"} {
		for range 2 {
			e.signInAs(t, newBrowser("198.51.100.20"), name, stranger, nil)
		}
		if o := e.signInAs(t, newBrowser("198.51.100.20"), name, stranger, nil); o.status != http.StatusTooManyRequests {
			t.Errorf("%s after 8 failures: %+v, want 429", name, o)
		}
	}
}
