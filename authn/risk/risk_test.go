package risk

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct {
		name string
		s    Signals
		want string
	}{
		{"known device, known IP", Signals{DeviceKnown: true, IPKnown: true}, MethodNone},
		{"known device, new IP", Signals{DeviceKnown: true}, MethodPassive},
		{"new device, known IP", Signals{IPKnown: true}, MethodPassive},
		{"new device, new IP", Signals{}, MethodPassive},
		{"new device, Tor", Signals{Tor: true}, MethodActive},
		{"new device, VPN", Signals{VPN: true, IPKnown: true}, MethodActive},
		{"known device on Tor but known IP", Signals{DeviceKnown: true, IPKnown: true, Tor: true}, MethodNone},
		{"acr demands a selfie", Signals{DeviceKnown: true, IPKnown: true, Minimum: MethodPassive}, MethodPassive},
		{"acr demands active", Signals{DeviceKnown: true, Minimum: MethodActive}, MethodActive},
		{"minimum never lowers", Signals{Tor: true, Minimum: MethodPassive}, MethodActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Decide(tt.s); got.Method != tt.want {
				t.Fatalf("Decide(%+v) = %+v, want %s", tt.s, got, tt.want)
			}
		})
	}
	flashing := p
	flashing.NewDeviceAnonymous = MethodFlashing
	if got := flashing.Decide(Signals{Tor: true}); got.Method != MethodFlashing {
		t.Fatalf("configurable escalation: got %s", got.Method)
	}
	bad := p
	bad.NewDevice = MethodNone
	if bad.Validate() == nil {
		t.Fatal("a policy that lets a new device in without a selfie must not validate")
	}
	bad.NewDevice = "SMS"
	if bad.Validate() == nil {
		t.Fatal("unknown method must not validate")
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	tests := []struct {
		name, remote, xff, want string
	}{
		{"no proxy", "203.0.113.7:5000", "", "203.0.113.7"},
		{"untrusted peer cannot spoof", "203.0.113.7:5000", "198.51.100.1", "203.0.113.7"},
		{"trusted proxy", "10.1.2.3:443", "198.51.100.1", "198.51.100.1"},
		{"spoofed left hop ignored", "10.1.2.3:443", "1.2.3.4, 198.51.100.1", "198.51.100.1"},
		{"chain of trusted proxies", "10.1.2.3:443", "198.51.100.1, 10.9.9.9", "198.51.100.1"},
		{"malformed hop", "10.1.2.3:443", "junk", "10.1.2.3"},
		{"ipv6 peer", "[::1]:443", "2001:db8::5", "2001:db8::5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := ClientIP(r, trusted); got.String() != tt.want {
				t.Fatalf("ClientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestKnownIP(t *testing.T) {
	hist := []string{"198.51.100.20", "2001:db8:1:2::9"}
	tests := []struct {
		ip   string
		want bool
	}{
		{"198.51.100.20", true},
		{"198.51.100.99", true}, // same /24
		{"198.51.101.20", false},
		{"2001:db8:1:2::1", true}, // same /64
		{"2001:db8:1:3::1", false},
		{"::ffff:198.51.100.7", true}, // v4-mapped
	}
	for _, tt := range tests {
		if got := KnownIP(netip.MustParseAddr(tt.ip), hist, 24, 64); got != tt.want {
			t.Errorf("KnownIP(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if KnownIP(netip.MustParseAddr("198.51.100.99"), hist, 32, 128) {
		t.Error("with /32 only the exact address is known")
	}
}

func TestListReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tor.txt")
	if err := os.WriteFile(path, []byte("# tor exits\n192.0.2.1\n198.51.100.0/24 # a range\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := OpenList(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Contains(netip.MustParseAddr("192.0.2.1")) || !l.Contains(netip.MustParseAddr("198.51.100.77")) || l.Contains(netip.MustParseAddr("192.0.2.2")) {
		t.Fatal("list contents wrong")
	}
	if changed, err := l.Reload(); err != nil || changed {
		t.Fatalf("unchanged file reloaded: %v %v", changed, err)
	}
	if err := os.WriteFile(path, []byte("192.0.2.2\n2001:db8::/32\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(2 * time.Second)
	_ = os.Chtimes(path, future, future)
	if changed, err := l.Reload(); err != nil || !changed {
		t.Fatalf("changed file not reloaded: %v %v", changed, err)
	}
	if l.Contains(netip.MustParseAddr("192.0.2.1")) || !l.Contains(netip.MustParseAddr("192.0.2.2")) || !l.Contains(netip.MustParseAddr("2001:db8::1")) {
		t.Fatal("reloaded contents wrong")
	}
	if err := os.WriteFile(path, []byte("not-an-ip\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(path, future.Add(time.Second), future.Add(time.Second))
	if _, err := l.Reload(); err == nil {
		t.Fatal("bad line accepted")
	}
	if !l.Contains(netip.MustParseAddr("192.0.2.2")) {
		t.Fatal("a failed reload must keep the previous list")
	}
}

func TestDeviceCookie(t *testing.T) {
	hash, block := make([]byte, 32), make([]byte, 32)
	hash[0], block[0] = 1, 2
	dc := NewDeviceCookies(hash, block, time.Hour, false)
	w := httptest.NewRecorder()
	id, err := dc.Issue(w, "")
	if err != nil || id == "" {
		t.Fatal(err)
	}
	cookie := w.Result().Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie flags: %+v", cookie)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(cookie)
	if got, ok := dc.Read(r); !ok || got != id {
		t.Fatalf("Read = %q %v, want %q", got, ok, id)
	}
	forged := httptest.NewRequest(http.MethodGet, "/", nil)
	forged.AddCookie(&http.Cookie{Name: DeviceCookieName, Value: cookie.Value[:len(cookie.Value)-4] + "AAAA"})
	if _, ok := dc.Read(forged); ok {
		t.Fatal("a forged cookie was accepted")
	}
	other := NewDeviceCookies(block, hash, time.Hour, false)
	if _, ok := other.Read(r); ok {
		t.Fatal("a cookie under other keys was accepted")
	}
	expired := NewDeviceCookies(hash, block, time.Nanosecond, false)
	time.Sleep(1100 * time.Millisecond)
	if _, ok := expired.Read(r); ok {
		t.Fatal("an expired cookie was accepted")
	}
}
