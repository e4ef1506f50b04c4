package oidc

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/visage-idp/visage/store"
)

// TestDeveloperErrorPages: an authorization request for an unknown client, or with a
// redirect_uri the client did not register, gets an error page (never a redirect) that names
// the client and the rejected URI and says how to register it.
func TestDeveloperErrorPages(t *testing.T) {
	o := newTestOP(t)
	if err := o.st.CreateClient(context.Background(), store.Client{ID: "shop", Name: "Corner Shop", Public: true, AuthMethod: "none", CreatedAt: time.Now(),
		RedirectURIs: []string{"https://shop.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	_, challenge := pkcePair()
	for _, tc := range []struct {
		name, client, uri string
		want              []string
	}{
		{"unknown client", "nobody", "https://shop.example/cb", []string{"Unknown application", `"nobody"`, "idp clients add --id nobody --redirect-uri"}},
		{"unregistered redirect_uri", "shop", "https://evil.example/cb?<b>x</b>", []string{"Redirect URI not registered", "Corner Shop", `"shop"`,
			`"https://evil.example/cb?<b>x</b>"`, "idp clients add --redirect-uri https://evil.example/cb?<b>x</b>"}},
		{"registered URI with a different path", "shop", "https://shop.example/cb2", []string{`"https://shop.example/cb2"`, "idp clients add --redirect-uri"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := url.Values{"client_id": {tc.client}, "redirect_uri": {tc.uri}, "response_type": {"code"}, "scope": {"openid"},
				"state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			resp, err := noRedirect.Get(o.url + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			for _, w := range tc.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("page %q does not say %q", b, w)
				}
			}
		})
	}
}
