package secheaders

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWrap(t *testing.T) {
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<p>hi</p>"))
	})
	for _, tc := range []struct {
		name string
		hsts bool
	}{{"http issuer", false}, {"https issuer", true}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Wrap(page, tc.hsts).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/login", nil))
			h := rec.Result().Header
			for k, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			csp := h.Get("Content-Security-Policy")
			for _, d := range []string{"frame-ancestors 'none'", "script-src 'self'", "object-src 'none'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("CSP %q lacks %s", csp, d)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("CSP allows inline script: %q", csp)
			}
			if got := h.Get("Strict-Transport-Security") != ""; got != tc.hsts {
				t.Errorf("HSTS present = %v, want %v", got, tc.hsts)
			}
		})
	}
}
