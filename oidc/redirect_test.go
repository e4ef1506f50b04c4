package oidc

import (
	"testing"

	"github.com/visage-idp/visage/store"
)

func TestRedirectURIAllowed(t *testing.T) {
	native := store.Client{Public: true, RedirectURIs: []string{"http://127.0.0.1/cb", "http://[::1]:8400/cb?x=1", "http://localhost:9999/cb", "com.example.app:/oauth"}}
	web := store.Client{RedirectURIs: []string{"http://127.0.0.1/cb", "https://app.example/cb"}}
	for _, tc := range []struct {
		c    store.Client
		uri  string
		want bool
	}{
		{native, "http://127.0.0.1/cb", true},
		{native, "http://127.0.0.1:1/cb", true},
		{native, "http://127.0.0.1:65535/cb", true},
		{native, "http://127.0.0.1:0/cb", false},
		{native, "http://127.0.0.1:65536/cb", false},
		{native, "http://[::1]:5000/cb?x=1", true},
		{native, "http://[::1]:5000/cb", false},
		{native, "http://[0:0::1]:5000/cb?x=1", false},
		{native, "http://127.0.0.1:5000/CB", false},
		{native, "http://127.0.0.1:5000/cb#frag", false},
		{native, "http://127.0.0.1.:5000/cb", false},
		{native, "http://localhost:9999/cb", true},
		{native, "http://localhost:9998/cb", false},
		{native, "com.example.app:/oauth", true},
		{native, "com.example.app:/oauth2", false},
		{web, "http://127.0.0.1/cb", true},
		{web, "http://127.0.0.1:8080/cb", false},
		{web, "https://app.example/cb", true},
		{web, "https://APP.example/cb", false},
	} {
		if got := redirectURIAllowed(tc.c, tc.uri); got != tc.want {
			t.Errorf("public=%v %s: %v, want %v", tc.c.Public, tc.uri, got, tc.want)
		}
	}
}
