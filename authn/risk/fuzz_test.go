package risk

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseList: any file content either parses into valid prefixes or is refused; never a panic.
//
//	go test -fuzz FuzzParseList ./authn/risk
func FuzzParseList(f *testing.F) {
	for _, seed := range []string{"", "# c\n192.0.2.1\n", "198.51.100.0/24 # x\n2001:db8::/32\n", "::ffff:1.2.3.4\n", "1.2.3.4/33\n", "junk\n", "\x00\xff/"} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		path := filepath.Join(dir, "list.txt")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		prefixes, err := parseList(path)
		if err != nil {
			return
		}
		for _, p := range prefixes {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("invalid or unmasked prefix %v from %q", p, content)
			}
		}
	})
}

// FuzzClientIP: whatever X-Forwarded-For holds, the answer is a valid address, and an untrusted
// peer's header never changes it.
//
//	go test -fuzz FuzzClientIP ./authn/risk
func FuzzClientIP(f *testing.F) {
	for _, seed := range []string{"", "198.51.100.1", "1.2.3.4, 10.0.0.1", "junk", ",,,", "2001:db8::1, ::1"} {
		f.Add(seed)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, xff string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Forwarded-For", xff)
		r.RemoteAddr = "203.0.113.9:1234"
		if got := ClientIP(r, trusted); got != netip.MustParseAddr("203.0.113.9") {
			t.Fatalf("untrusted peer: header %q changed the address to %v", xff, got)
		}
		r.RemoteAddr = "10.1.1.1:1234"
		if got := ClientIP(r, trusted); !got.IsValid() {
			t.Fatalf("trusted peer: header %q gave an invalid address", xff)
		}
	})
}
