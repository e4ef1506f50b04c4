package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/visage-idp/visage/authn"
	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/risk"
	"github.com/visage-idp/visage/authn/words"
	"github.com/visage-idp/visage/oidc"
	"github.com/visage-idp/visage/store"
)

// AMRDevice is the amr value of a sign-in on existing trust (known device and network, no
// selfie). It is Visage's own: RFC 8176 registers no value for it.
const AMRDevice = "device"

// assessment is the step-up decision for one sign-in and its inputs.
type assessment struct {
	signals  risk.Signals
	deviceID string // from a genuine device cookie, if any
	decision risk.Decision
}

// assess gathers the signals of a sign-in by userID and decides the method it needs.
func (s *Server) assess(r *http.Request, lr oidc.LoginRequest, userID string) (assessment, error) {
	ctx := r.Context()
	var a assessment
	a.signals.IP = risk.ClientIP(r, s.cfg.TrustedProxies)
	if id, ok := s.devices.Read(r); ok {
		a.deviceID = id
		d, err := s.store.GetDevice(ctx, id, userID)
		if err == nil {
			a.signals.DeviceKnown = d.RevokedAt == nil
		} else if !isNotFound(err) {
			return a, fmt.Errorf("device: %w", err)
		}
	}
	ips, err := s.store.SuccessfulIPs(ctx, userID, s.now().Add(-s.cfg.KnownIPWindow))
	if err != nil {
		return a, fmt.Errorf("known addresses: %w", err)
	}
	a.signals.IPKnown = risk.KnownIP(a.signals.IP, ips, s.cfg.IPv4Bits, s.cfg.IPv6Bits)
	a.signals.Tor = s.tor.Contains(a.signals.IP)
	a.signals.VPN = s.vpn.Contains(a.signals.IP)
	a.signals.Minimum = minimumMethod(lr, s.cfg.Policy)
	a.decision = s.cfg.Policy.Decide(a.signals)
	return a, nil
}

// minimumMethod is what the relying party demands: acr_values, prompt=login and max_age all
// require a selfie now; the active acr requires an active challenge.
func minimumMethod(lr oidc.LoginRequest, p risk.Policy) string {
	switch lr.RequiredACR() {
	case oidc.ACRActive:
		if risk.Strength(p.NewDeviceAnonymous) >= risk.Strength(risk.MethodActive) {
			return p.NewDeviceAnonymous
		}
		return risk.MethodActive
	case oidc.ACRSelfie:
		return risk.MethodPassive
	}
	if lr.HasPrompt("login") || lr.MaxAge != nil {
		return risk.MethodPassive
	}
	return ""
}

// acrFor is the acr a verified method earns.
func acrFor(method string) string {
	if risk.Strength(method) >= risk.Strength(risk.MethodActive) {
		return oidc.ACRActive
	}
	return oidc.ACRSelfie
}

// verify runs the method the policy chose. A single frame can only satisfy PASSIVE: an active
// method is never downgraded.
func (s *Server) verify(ctx context.Context, method string, frames [][]byte, tmpl *face.Template) (authn.Decision, error) {
	if method != risk.MethodPassive {
		return authn.Decision{Status: authn.Declined, Method: method, Code: "ACTIVE_LIVENESS_REQUIRED",
			Reason: "this sign-in needs an active liveness challenge"}, nil
	}
	return s.verifier.Verify(ctx, frames, tmpl)
}

// locked reports whether this sign-in must wait, and says for how long in words.
//
// Failures count per address, for any account and never reset by a success there (an
// attacker's sign-ins to his own account must not clear his failures against others), and per
// account: from the owner's known device on a known network only that device's failures count,
// so that failures from anywhere else cannot lock the owner out; from anywhere else every
// failure of the account counts, reset by a success. Past the limit the wait grows step by
// step: a minute after the limit's failure, doubling with each further one, at most the
// failure window.
func (s *Server) locked(ctx context.Context, userID string, a assessment) (string, bool, error) {
	now := s.now()
	since := now.Add(-s.cfg.FailureWindow)
	acct := store.FailureQuery{UserID: userID, Since: since, ResetOnSuccess: true}
	if a.signals.DeviceKnown && a.signals.IPKnown && a.deviceID != "" {
		acct.DeviceID = a.deviceID
	}
	n, last, err := s.store.Failures(ctx, acct)
	if err != nil {
		return "", false, err
	}
	if wait := s.backoff(n, s.cfg.MaxFailures, last, now); wait > 0 {
		return words.Lockout(words.Account, wait), true, nil
	}
	n, last, err = s.store.Failures(ctx, store.FailureQuery{IP: a.signals.IP.String(), Since: since})
	if err != nil {
		return "", false, err
	}
	if wait := s.backoff(n, s.cfg.MaxIPFailures, last, now); wait > 0 {
		return words.Lockout(words.Network, wait), true, nil
	}
	return "", false, nil
}

// backoff returns how long to wait after n failures, the latest at last: nothing below limit,
// then a minute, doubling with every further failure, at most the failure window.
func (s *Server) backoff(n, limit int, last, now time.Time) time.Duration {
	if n < limit {
		return 0
	}
	wait := min(time.Minute<<min(n-limit, 20), s.cfg.FailureWindow)
	return max(0, last.Add(wait).Sub(now))
}

// audit records the decision with its inputs and counts it.
func (s *Server) audit(ctx context.Context, a assessment, lr oidc.LoginRequest, userID, outcome string) {
	s.metrics.Inc(a.decision.Method, outcome)
	e := store.AuditEvent{At: s.now(), UserID: userID, ClientID: lr.ClientID, IP: a.signals.IP.String(), DeviceID: a.deviceID,
		DeviceKnown: a.signals.DeviceKnown, IPKnown: a.signals.IPKnown, Tor: a.signals.Tor, VPN: a.signals.VPN,
		Method: a.decision.Method, Outcome: outcome, Reason: a.decision.Reason}
	if err := s.store.AppendAudit(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "audit", "err", err)
	}
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

func userAgent(r *http.Request) string {
	ua := r.UserAgent()
	if len(ua) > 256 {
		ua = ua[:256]
	}
	return ua
}

// Metrics counts step-up decisions by method and outcome, served in the Prometheus text format.
type Metrics struct {
	mu     sync.Mutex
	counts map[[2]string]int64
	also   []func(io.Writer)
}

// NewMetrics returns empty counters.
func NewMetrics() *Metrics { return &Metrics{counts: map[[2]string]int64{}} }

// Also adds a writer of more metrics (another component's counters) to what /metrics serves.
func (m *Metrics) Also(write func(io.Writer)) {
	m.mu.Lock()
	m.also = append(m.also, write)
	m.mu.Unlock()
}

// Inc counts one decision.
func (m *Metrics) Inc(method, outcome string) {
	m.mu.Lock()
	m.counts[[2]string{method, outcome}]++
	m.mu.Unlock()
}

// Get returns one counter.
func (m *Metrics) Get(method, outcome string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[[2]string{method, outcome}]
}

// ServeHTTP writes the counters.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	keys := make([][2]string, 0, len(m.counts))
	for k := range m.counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintln(w, "# HELP visage_stepup_decisions_total Sign-in step-up decisions by method and outcome.")
	fmt.Fprintln(w, "# TYPE visage_stepup_decisions_total counter")
	for _, k := range keys {
		fmt.Fprintf(w, "visage_stepup_decisions_total{method=%q,outcome=%q} %d\n", k[0], k[1], m.counts[k])
	}
	also := m.also
	m.mu.Unlock()
	for _, write := range also {
		write(w)
	}
}
