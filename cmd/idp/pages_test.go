package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/visage-idp/visage/oidc"
	"github.com/visage-idp/visage/store"
)

// TestNotFoundPages: an unknown path gets the styled HTML page (the path escaped), never Go's
// plain text; /v3 and answers that already have a body type pass unchanged.
func TestNotFoundPages(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "not_found"})
	})
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "fine") })
	h := notFoundPages(mux)
	get := func(path string) (*http.Response, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		resp := rec.Result()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/no/such/<b>page</b>")
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("unknown path: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if strings.Contains(body, "404 page not found") || !strings.Contains(body, "Page not found") || !strings.Contains(body, `id="error-message"`) ||
		!strings.Contains(body, "/static/style.css") || strings.Contains(body, "<b>page</b>") || !strings.Contains(body, "&lt;b&gt;page&lt;/b&gt;") {
		t.Fatalf("unknown path page:\n%s", body)
	}
	if resp, body := get("/v3/nope"); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "<html") {
		t.Fatalf("/v3 was rewritten: %d %s", resp.StatusCode, body)
	}
	if resp, body := get("/json"); !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.Contains(body, "not_found") {
		t.Fatalf("a JSON 404 was rewritten: %q %s", resp.Header.Get("Content-Type"), body)
	}
	if resp, body := get("/ok"); resp.StatusCode != http.StatusOK || body != "fine" {
		t.Fatalf("a page was touched: %d %s", resp.StatusCode, body)
	}
}

// TestErrorPageEscapes: the developer error pages put the client's name and the rejected
// redirect_uri into HTML escaped.
func TestErrorPageEscapes(t *testing.T) {
	rec := httptest.NewRecorder()
	title, msg := oidc.UnregisteredRedirectPage(store.Client{ID: "shop", Name: "<i>Shop</i>"}, `https://evil.example/"><script>alert(1)</script>`)
	errorPage(rec, httptest.NewRequest(http.MethodGet, "/authorize", nil), http.StatusBadRequest, title, msg)
	body := rec.Body.String()
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<i>Shop") {
		t.Fatalf("unescaped:\n%s", body)
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;i&gt;Shop&lt;/i&gt;", "idp clients add --redirect-uri", `id="error-message"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page does not contain %q:\n%s", want, body)
		}
	}
}
