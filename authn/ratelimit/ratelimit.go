// Package ratelimit limits how often one client address, and one client network (an IPv4 /24 or
// an IPv6 /64), may call the endpoints that cost CPU or reveal state without authentication: the
// username step, the selfie and challenge posts, registration and the hosted Sessions pages.
//
// Each key has a token bucket: it holds at most Burst tokens, refills at PerMinute tokens a
// minute, and a request takes one. A request whose address or network bucket is empty gets 429
// Too Many Requests with Retry-After (seconds until a token is back) at once, before any work.
// The buckets live in this process (a node behind a load balancer limits what reaches it); idle
// full buckets are dropped, so memory follows the number of recent clients.
package ratelimit

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/visage-idp/visage/authn/words"
)

// Rate is one bucket's shape; a zero Burst disables that limit.
type Rate struct {
	Burst     int     // tokens a bucket holds when full
	PerMinute float64 // tokens added a minute
}

// Config sets the limits.
type Config struct {
	Address Rate // one client address
	Network Rate // one IPv4 /24 or IPv6 /64
	// ClientIP returns the request's client address (e.g. risk.ClientIP with the trusted
	// proxies); an invalid address is limited as one key of its own.
	ClientIP func(*http.Request) netip.Addr
	// Limited reports whether a request is one that the limits apply to.
	Limited func(*http.Request) bool
	Now     func() time.Time // default time.Now
}

// DefaultConfig: a person signing in takes a handful of requests a minute; 30 at once and 30 a
// minute from one address, 120 and 120 a minute from one network (a household or an office
// behind one address block).
func DefaultConfig() Config {
	return Config{Address: Rate{Burst: 30, PerMinute: 30}, Network: Rate{Burst: 120, PerMinute: 120}}
}

type bucket struct {
	tokens float64
	at     time.Time
}

// Limiter holds the buckets.
type Limiter struct {
	cfg Config

	mu        sync.Mutex
	addrs     map[netip.Addr]*bucket
	nets      map[netip.Prefix]*bucket
	lastSweep time.Time
	refused   map[string]int64 // by scope: "address", "network"
}

// New returns a limiter.
func New(cfg Config) *Limiter {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, addrs: map[netip.Addr]*bucket{}, nets: map[netip.Prefix]*bucket{}, refused: map[string]int64{}}
}

// network returns the /24 or /64 that holds ip.
func network(ip netip.Addr) netip.Prefix {
	bits := 64
	if ip.Is4() {
		bits = 24
	}
	p, _ := ip.Prefix(bits)
	return p
}

// refill brings b up to now and returns how long until it holds a whole token (0: it does).
func refill(b *bucket, r Rate, now time.Time) time.Duration {
	perSec := r.PerMinute / 60
	b.tokens = math.Min(float64(r.Burst), b.tokens+now.Sub(b.at).Seconds()*perSec)
	b.at = now
	switch {
	case b.tokens >= 1:
		return 0
	case perSec <= 0:
		return time.Hour
	}
	return time.Duration((1 - b.tokens) / perSec * float64(time.Second))
}

// Allow takes a token for ip from its address and its network bucket. When either is empty it
// takes from neither and returns false, how long to wait, and which scope refused.
func (l *Limiter) Allow(ip netip.Addr) (ok bool, retry time.Duration, scope string) {
	ip = ip.Unmap()
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	type held struct {
		b     *bucket
		r     Rate
		scope string
	}
	var hs []held
	if l.cfg.Address.Burst > 0 {
		b := l.addrs[ip]
		if b == nil {
			b = &bucket{tokens: float64(l.cfg.Address.Burst), at: now}
			l.addrs[ip] = b
		}
		hs = append(hs, held{b, l.cfg.Address, "address"})
	}
	if l.cfg.Network.Burst > 0 && ip.IsValid() {
		n := network(ip)
		b := l.nets[n]
		if b == nil {
			b = &bucket{tokens: float64(l.cfg.Network.Burst), at: now}
			l.nets[n] = b
		}
		hs = append(hs, held{b, l.cfg.Network, "network"})
	}
	for _, h := range hs {
		if wait := refill(h.b, h.r, now); wait > 0 {
			l.refused[h.scope]++
			return false, wait, h.scope
		}
	}
	for _, h := range hs {
		h.b.tokens--
	}
	return true, 0, ""
}

// sweep drops buckets that have refilled completely (they hold no memory of anything), at most
// once a minute.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Minute {
		return
	}
	l.lastSweep = now
	full := func(b *bucket, r Rate) bool {
		return r.PerMinute > 0 && b.tokens+now.Sub(b.at).Seconds()*r.PerMinute/60 >= float64(r.Burst)
	}
	for k, b := range l.addrs {
		if full(b, l.cfg.Address) {
			delete(l.addrs, k)
		}
	}
	for k, b := range l.nets {
		if full(b, l.cfg.Network) {
			delete(l.nets, k)
		}
	}
}

// Middleware refuses the limited requests of a client over its limits with 429 and
// Retry-After, before next sees them.
func (l *Limiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.cfg.Limited == nil || !l.cfg.Limited(r) {
			next.ServeHTTP(w, r)
			return
		}
		var ip netip.Addr
		if l.cfg.ClientIP != nil {
			ip = l.cfg.ClientIP(r)
		}
		ok, retry, scope := l.Allow(ip)
		if ok {
			next.ServeHTTP(w, r)
			return
		}
		secs := max(1, int(math.Ceil(retry.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		retry = time.Duration(secs) * time.Second
		who := words.Address
		if scope == "network" {
			who = words.NetworkRequests
		}
		msg := words.Lockout(who, retry)
		if wantsJSON(r) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "code": "RATE_LIMITED", "message": msg, "detail": msg})
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, msg+"\n")
	})
}

// wantsJSON: the capture scripts and API clients read JSON; a page navigation reads text.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json") ||
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") ||
		strings.HasPrefix(r.URL.Path, "/v3/") || r.Method == http.MethodPost && r.Header.Get("Sec-Fetch-Mode") == "cors"
}

// WriteMetrics writes the refusal counters in the Prometheus text format.
func (l *Limiter) WriteMetrics(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(w, "# HELP visage_rate_limited_total Requests refused with 429 by the per-address and per-network limits.")
	fmt.Fprintln(w, "# TYPE visage_rate_limited_total counter")
	for _, scope := range []string{"address", "network"} {
		fmt.Fprintf(w, "visage_rate_limited_total{scope=%q} %d\n", scope, l.refused[scope])
	}
}
