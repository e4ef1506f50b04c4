package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func TestAllow(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := New(Config{Address: Rate{Burst: 3, PerMinute: 6}, Network: Rate{Burst: 5, PerMinute: 60}, Now: c.Now})
	a := netip.MustParseAddr("198.51.100.7")
	for i := range 3 {
		if ok, _, _ := l.Allow(a); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait, scope := l.Allow(a)
	if ok || scope != "address" || wait != 10*time.Second {
		t.Fatalf("4th request: ok=%v wait=%v scope=%q, want refused by the address for 10s", ok, wait, scope)
	}
	// Neighbours on the same /24 share the network bucket (5): two more fit, the third not.
	n1, n2, n3 := netip.MustParseAddr("198.51.100.8"), netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("198.51.100.10")
	if ok, _, _ := l.Allow(n1); !ok {
		t.Fatal("neighbour 1 refused")
	}
	if ok, _, _ := l.Allow(n2); !ok {
		t.Fatal("neighbour 2 refused")
	}
	if ok, _, scope := l.Allow(n3); ok || scope != "network" {
		t.Fatalf("6th request from the /24: ok=%v scope=%q, want refused by the network", ok, scope)
	}
	// Another network is not affected.
	if ok, _, _ := l.Allow(netip.MustParseAddr("203.0.113.1")); !ok {
		t.Fatal("another network refused")
	}
	// A refused request took nothing: after 10 s the address has one token again.
	c.t = c.t.Add(10 * time.Second)
	if ok, _, _ := l.Allow(a); !ok {
		t.Fatal("no token back after the wait")
	}
	// IPv6: one /64 is one network; IPv4-mapped addresses count as IPv4.
	v6 := New(Config{Network: Rate{Burst: 1, PerMinute: 1}, Now: c.Now})
	if ok, _, _ := v6.Allow(netip.MustParseAddr("2001:db8:1:2::1")); !ok {
		t.Fatal("first v6 refused")
	}
	if ok, _, _ := v6.Allow(netip.MustParseAddr("2001:db8:1:2:ffff::9")); ok {
		t.Fatal("same /64 not limited")
	}
	if ok, _, _ := v6.Allow(netip.MustParseAddr("2001:db8:1:3::1")); !ok {
		t.Fatal("another /64 refused")
	}
	m := New(Config{Address: Rate{Burst: 1, PerMinute: 1}, Now: c.Now})
	m.Allow(netip.MustParseAddr("192.0.2.1"))
	if ok, _, _ := m.Allow(netip.MustParseAddr("::ffff:192.0.2.1")); ok {
		t.Fatal("IPv4-mapped address escaped its IPv4 bucket")
	}
}

func TestSweepForgetsIdleClients(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := New(Config{Address: Rate{Burst: 2, PerMinute: 60}, Network: Rate{Burst: 10, PerMinute: 60}, Now: c.Now})
	for i := range 1000 {
		l.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}))
	}
	if len(l.addrs) != 1000 {
		t.Fatalf("%d address buckets", len(l.addrs))
	}
	c.t = c.t.Add(2 * time.Minute)
	l.Allow(netip.MustParseAddr("192.0.2.1"))
	if len(l.addrs) != 1 || len(l.nets) != 1 {
		t.Fatalf("after the sweep: %d address and %d network buckets, want 1 and 1", len(l.addrs), len(l.nets))
	}
}

// TestMiddleware: an attacker hammering the selfie endpoint from one address gets 429 with
// Retry-After and a plain message; the handler behind never sees the refused requests; requests
// the limits do not apply to pass; the counter says what happened.
func TestMiddleware(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := New(Config{Address: Rate{Burst: 2, PerMinute: 2}, Now: c.Now,
		ClientIP: func(r *http.Request) netip.Addr { return netip.MustParseAddrPort(r.RemoteAddr).Addr() },
		Limited:  func(r *http.Request) bool { return r.Method == http.MethodPost }})
	served := 0
	h := l.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }))
	post := func(accept string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/login/selfie", strings.NewReader("x"))
		r.RemoteAddr = "198.51.100.7:4444"
		r.Header.Set("Accept", accept)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	post("application/json")
	post("application/json")
	w := post("application/json")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "30" || !strings.Contains(w.Body.String(), `"RATE_LIMITED"`) ||
		!strings.Contains(w.Body.String(), "Try again in 30 seconds") {
		t.Fatalf("3rd post: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body.String())
	}
	if w := post("text/html"); w.Code != http.StatusTooManyRequests || strings.Contains(w.Body.String(), "{") {
		t.Fatalf("page post: %d %s", w.Code, w.Body.String())
	}
	if served != 2 {
		t.Fatalf("handler served %d requests, want 2", served)
	}
	get := httptest.NewRequest(http.MethodGet, "/login", nil)
	get.RemoteAddr = "198.51.100.7:4444"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, get)
	if rec.Code != http.StatusOK || served != 3 {
		t.Fatalf("unlimited request: %d", rec.Code)
	}
	var b strings.Builder
	l.WriteMetrics(&b)
	if !strings.Contains(b.String(), `visage_rate_limited_total{scope="address"} 2`) {
		t.Fatalf("metrics:\n%s", b.String())
	}
}
