package main

import "testing"

func TestCheckOrigin(t *testing.T) {
	for o, ok := range map[string]bool{
		"https://spa.example":        true,
		"http://localhost:5173":      true,
		"https://spa.example/":       false,
		"https://spa.example/app":    false,
		"https://spa.example?x=1":    false,
		"spa.example":                false,
		"*":                          false,
		"null":                       false,
		"https://user@spa.example":   false,
		"javascript://spa.example":   false,
		"https://spa.example#anchor": false,
	} {
		if err := checkOrigin(o); (err == nil) != ok {
			t.Errorf("checkOrigin(%q) = %v, want ok=%v", o, err, ok)
		}
	}
}

func TestCheckJWKSURI(t *testing.T) {
	for _, tc := range []struct {
		uri, issuer string
		ok          bool
	}{
		{"https://kc.example/realms/r/protocol/openid-connect/certs", "https://id.example", true},
		{"http://kc.example/certs", "https://id.example", false},
		{"http://127.0.0.1:8081/certs", "http://localhost:8080", true},
		{"/certs", "http://localhost:8080", false},
		{"file:///etc/keys.json", "http://localhost:8080", false},
	} {
		if err := checkJWKSURI(tc.uri, tc.issuer); (err == nil) != tc.ok {
			t.Errorf("checkJWKSURI(%q, %q) = %v, want ok=%v", tc.uri, tc.issuer, err, tc.ok)
		}
	}
}

func TestCheckRedirectURI(t *testing.T) {
	for _, tc := range []struct {
		uri    string
		public bool
		ok     bool
	}{
		{"https://app.example/callback", false, true},
		{"http://127.0.0.1:8080/cb?x=1", false, true},
		{"http://localhost/cb", true, true},
		{"not a url", false, false},
		{"not a url", true, false},
		{"app.example/callback", false, false},
		{"/callback", false, false},
		{"https://app.example/cb#frag", false, false},
		{"https://app.example/cb#", false, false},
		{"https:///cb", false, false},
		{"https://user:pw@app.example/cb", false, false},
		{"javascript:alert(1)", true, false},
		{"ftp://app.example/cb", false, false},
		{"com.example.app:/oauth", true, true},
		{"com.example.app:/oauth", false, false}, // private-use schemes are for native (public) clients
		{"com.example.app:/oauth#x", true, false},
	} {
		if err := checkRedirectURI(tc.uri, tc.public); (err == nil) != tc.ok {
			t.Errorf("checkRedirectURI(%q, public=%v) = %v, want ok=%v", tc.uri, tc.public, err, tc.ok)
		}
	}
}
