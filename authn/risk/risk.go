// Package risk decides how much proof a sign-in needs. It gathers the signals — is this a
// device the user signed in from before (a signed, random device id in a cookie, never a
// fingerprint), is the client address one the user signed in from recently (also by /24 and
// /64), is it a Tor exit or a VPN/hosting range (operator-supplied list files, reloaded when they
// change) — and a Policy maps them to a method: no selfie, a PASSIVE selfie, or an active
// challenge (ACTIVE_3D or FLASHING). A relying party can demand more with acr_values; the policy
// never grants less than asked.
package risk

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Methods, weakest first. They match the liveness method names of the Sessions API.
const (
	MethodNone     = "NONE"
	MethodPassive  = "PASSIVE"
	MethodFlashing = "FLASHING"
	MethodActive   = "ACTIVE_3D"
)

// Strength orders the methods; an unknown method ranks like ACTIVE_3D so that a typo never
// weakens a policy.
func Strength(m string) int {
	switch m {
	case MethodNone:
		return 0
	case MethodPassive:
		return 1
	case MethodFlashing, MethodActive:
		return 2
	}
	return 2
}

// Signals are the inputs of a decision.
type Signals struct {
	DeviceKnown bool
	IP          netip.Addr
	IPKnown     bool
	Tor         bool
	VPN         bool
	// Minimum is the weakest method the request accepts (from acr_values, prompt=login,
	// max_age); empty means no demand.
	Minimum string
}

// Policy maps signals to a method. Each field is a method name.
type Policy struct {
	KnownDeviceKnownIP string `yaml:"known_device_known_ip"`
	KnownDeviceNewIP   string `yaml:"known_device_new_ip"`
	NewDevice          string `yaml:"new_device"`
	NewDeviceAnonymous string `yaml:"new_device_tor_or_vpn"` // Tor exit or VPN/hosting range
}

// DefaultPolicy is the documented default table.
func DefaultPolicy() Policy {
	return Policy{KnownDeviceKnownIP: MethodNone, KnownDeviceNewIP: MethodPassive, NewDevice: MethodPassive, NewDeviceAnonymous: MethodActive}
}

// Validate checks every entry names a method.
func (p Policy) Validate() error {
	for name, m := range map[string]string{"known_device_known_ip": p.KnownDeviceKnownIP, "known_device_new_ip": p.KnownDeviceNewIP,
		"new_device": p.NewDevice, "new_device_tor_or_vpn": p.NewDeviceAnonymous} {
		switch m {
		case MethodNone, MethodPassive, MethodFlashing, MethodActive:
		default:
			return fmt.Errorf("risk policy %s: %q is not NONE, PASSIVE, FLASHING or ACTIVE_3D", name, m)
		}
	}
	if p.NewDevice == MethodNone || p.NewDeviceAnonymous == MethodNone {
		return fmt.Errorf("risk policy: a new device always needs a selfie")
	}
	return nil
}

// Decision is a method and why it was chosen.
type Decision struct {
	Method string
	Reason string
}

// Decide applies the table, then raises the method to the request's minimum.
func (p Policy) Decide(s Signals) Decision {
	var d Decision
	switch {
	case s.DeviceKnown && s.IPKnown:
		d = Decision{p.KnownDeviceKnownIP, "known device, known network"}
	case s.DeviceKnown:
		d = Decision{p.KnownDeviceNewIP, "known device, new network"}
	case s.Tor || s.VPN:
		d = Decision{p.NewDeviceAnonymous, "new device from a Tor exit or VPN/hosting range"}
	default:
		d = Decision{p.NewDevice, "new device"}
	}
	if s.Minimum != "" && Strength(s.Minimum) > Strength(d.Method) {
		d = Decision{s.Minimum, d.Reason + "; the application asked for more"}
	}
	return d
}

// ClientIP returns the client address: the peer, unless the peer is a trusted proxy, in which
// case X-Forwarded-For is read from the right, skipping trusted proxies. A header from an
// untrusted peer is ignored, so it cannot be spoofed.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	var ip netip.Addr
	if err == nil {
		ip = peer.Addr().Unmap()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		ip = a.Unmap()
	}
	if !inAny(ip, trusted) {
		return ip
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return ip // a malformed hop: stop at the last address we can trust
		}
		ip = a.Unmap()
		if !inAny(ip, trusted) {
			return ip
		}
	}
	return ip
}

func inAny(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// SameNetwork reports whether a and b share the first v4Bits (IPv4) or v6Bits (IPv6) bits.
func SameNetwork(a, b netip.Addr, v4Bits, v6Bits int) bool {
	a, b = a.Unmap(), b.Unmap()
	if a.Is4() != b.Is4() || !a.IsValid() || !b.IsValid() {
		return false
	}
	bits := v6Bits
	if a.Is4() {
		bits = v4Bits
	}
	pa, err := a.Prefix(bits)
	if err != nil {
		return false
	}
	return pa.Contains(b)
}

// KnownIP reports whether ip is, or shares a network with, one of the addresses of history.
func KnownIP(ip netip.Addr, history []string, v4Bits, v6Bits int) bool {
	for _, h := range history {
		a, err := netip.ParseAddr(h)
		if err != nil {
			continue
		}
		if a.Unmap() == ip.Unmap() || SameNetwork(ip, a, v4Bits, v6Bits) {
			return true
		}
	}
	return false
}
