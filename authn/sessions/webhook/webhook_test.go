package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/visage-idp/visage/internal/testenv"
)

type vectors struct {
	Secret string `json:"secret"`
	Cases  map[string]struct {
		Body             string `json:"body"`
		XSignature       string `json:"x_signature"`
		XSignatureV2     string `json:"x_signature_v2"`
		XSignatureSimple string `json:"x_signature_simple"`
	} `json:"cases"`
}

// loadVectors reads Didit's signature test vectors from the shared test data.
func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.TestData(t), "webhooks", "signatures.json"))
	if err != nil {
		t.Fatalf("signature vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("signature vectors: %v", err)
	}
	if len(v.Cases) == 0 || v.Secret == "" {
		t.Fatal("signature vectors: no cases")
	}
	return v
}

func TestSignVectors(t *testing.T) {
	v := loadVectors(t)
	for name, c := range v.Cases {
		t.Run(name, func(t *testing.T) {
			sig, err := Sign(v.Secret, []byte(c.Body))
			if err != nil {
				t.Fatal(err)
			}
			if sig.V2 != c.XSignatureV2 {
				t.Errorf("X-Signature-V2 = %s, want %s", sig.V2, c.XSignatureV2)
			}
			if sig.Raw != c.XSignature {
				t.Errorf("X-Signature = %s, want %s", sig.Raw, c.XSignature)
			}
			if sig.Simple != c.XSignatureSimple {
				t.Errorf("X-Signature-Simple = %s, want %s", sig.Simple, c.XSignatureSimple)
			}
			// The vectors' bodies are in the form Visage sends: re-encoding gives the same bytes.
			raw, err := Canonical([]byte(c.Body), true)
			if err != nil || string(raw) != c.Body {
				t.Errorf("Canonical(ascii) = %s, %v; want the body itself", raw, err)
			}
		})
	}
}

func TestVerifyVectors(t *testing.T) {
	v := loadVectors(t)
	for name, c := range v.Cases {
		t.Run(name, func(t *testing.T) {
			var env struct {
				Timestamp int64  `json:"timestamp"`
				EventID   string `json:"event_id"`
			}
			if err := json.Unmarshal([]byte(c.Body), &env); err != nil {
				t.Fatal(err)
			}
			ts := time.Unix(env.Timestamp, 0)
			h := func(v2, raw string) http.Header {
				h := http.Header{}
				if v2 != "" {
					h.Set(HeaderSignatureV2, v2)
				}
				if raw != "" {
					h.Set(HeaderSignature, raw)
				}
				h.Set(HeaderTimestamp, strconv.FormatInt(env.Timestamp, 10))
				return h
			}
			reencoded, _ := Canonical([]byte(c.Body), false) // what a proxy re-encoding the JSON might send
			tampered := strings.Replace(c.Body, `"status":"`, `"status":"X`, 1)
			for _, tc := range []struct {
				name    string
				header  http.Header
				body    string
				secret  string
				now     time.Time
				want    error
				replays bool
			}{
				{"v2", h(c.XSignatureV2, ""), c.Body, v.Secret, ts, nil, true},
				{"v2 after re-encoding", h(c.XSignatureV2, ""), string(reencoded), v.Secret, ts, nil, false},
				{"raw only", h("", c.XSignature), c.Body, v.Secret, ts, nil, false},
				{"4m59s late", h(c.XSignatureV2, ""), c.Body, v.Secret, ts.Add(4*time.Minute + 59*time.Second), nil, false},
				{"5m01s late", h(c.XSignatureV2, ""), c.Body, v.Secret, ts.Add(5*time.Minute + time.Second), ErrStale, false},
				{"5m01s early", h(c.XSignatureV2, ""), c.Body, v.Secret, ts.Add(-5*time.Minute - time.Second), ErrStale, false},
				{"wrong secret", h(c.XSignatureV2, ""), c.Body, "whsec_other", ts, ErrSignature, false},
				{"tampered body", h(c.XSignatureV2, ""), tampered, v.Secret, ts, ErrSignature, false},
				{"tampered raw", h("", c.XSignature), string(reencoded) + " ", v.Secret, ts, ErrSignature, false},
				{"no signature", h("", ""), c.Body, v.Secret, ts, ErrSignature, false},
				{"X-Timestamp differs", func() http.Header {
					x := h(c.XSignatureV2, "")
					x.Set(HeaderTimestamp, "1")
					return x
				}(), c.Body, v.Secret, ts, ErrSignature, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					ver := &Verifier{Secret: tc.secret, Seen: NewMemoryDeduper(), Now: func() time.Time { return tc.now }}
					ev, err := ver.Verify(tc.header, []byte(tc.body))
					if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
						t.Fatalf("Verify = %v, want %v", err, tc.want)
					}
					if err != nil {
						return
					}
					if ev.EventID != env.EventID || ev.Timestamp != env.Timestamp || ev.WebhookType != TypeStatusUpdated {
						t.Errorf("event = %+v", ev)
					}
					if _, err := ver.Verify(tc.header, []byte(tc.body)); !errors.Is(err, ErrDuplicate) {
						t.Errorf("second delivery: %v, want ErrDuplicate", err)
					}
					ver.Forget(ev.EventID)
					if _, err := ver.Verify(tc.header, []byte(tc.body)); err != nil {
						t.Errorf("after Forget: %v", err)
					}
				})
			}
		})
	}
}

// pythonJSON decodes a JSON string literal holding what Python printed.
func pythonJSON(t *testing.T, quoted string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal([]byte(quoted), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCanonicalMatchesPython compares with what CPython 3's json.dumps(sort_keys=True,
// separators=(",", ":"), ensure_ascii=...) printed for the same input after Didit's whole-float
// shortening (the expected strings below are its output, JSON-quoted).
func TestCanonicalMatchesPython(t *testing.T) {
	big := "1500000000000000078757140382806630373056702871662238732373781173267703686983362293679557062620671796065556665749325817265413784853040645863467188277180060474272580801389863705606745350692182135089053429852456199917621678558451461320111979114170213741868888183230085264257173504208294580298189100810240"
	for _, tc := range []struct {
		name, in, utf8, ascii string
	}{
		{"numbers", `{"b":1,"a":[96.0,96.15,1e-05,0.1,1.5e300,-0.0,12345678901234567890123,1E2,2.5E-7,0.0001]}`,
			`"{\"a\":[96,96.15,1e-05,0.1,` + big + `,0,12345678901234567890123,100,2.5e-07,0.0001],\"b\":1}"`,
			`"{\"a\":[96,96.15,1e-05,0.1,` + big + `,0,12345678901234567890123,100,2.5e-07,0.0001],\"b\":1}"`},
		{"strings", `{"s":"tab\there\u0001\u007f<>&/\u2028 é 😀","k":null,"t":true,"f":false}`,
			`"{\"f\":false,\"k\":null,\"s\":\"tab\\there\\u0001\u007f<>&/\u2028 \u00e9 \ud83d\ude00\",\"t\":true}"`,
			`"{\"f\":false,\"k\":null,\"s\":\"tab\\there\\u0001\\u007f<>&/\\u2028 \\u00e9 \\ud83d\\ude00\",\"t\":true}"`},
		{"key order", `{"é":1,"z":2,"Z":3,"10":4,"9":5,"":6}`,
			`"{\"\":6,\"10\":4,\"9\":5,\"Z\":3,\"z\":2,\"\u00e9\":1}"`,
			`"{\"\":6,\"10\":4,\"9\":5,\"Z\":3,\"z\":2,\"\\u00e9\":1}"`},
		{"nesting", `[1,{"x":{}},[]]`, `"[1,{\"x\":{}},[]]"`, `"[1,{\"x\":{}},[]]"`},
		{"fractions", `{"n":123456789.125,"m":-3.0e-5}`, `"{\"m\":-3e-05,\"n\":123456789.125}"`, `"{\"m\":-3e-05,\"n\":123456789.125}"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []struct {
				ascii bool
				want  string
			}{{false, tc.utf8}, {true, tc.ascii}} {
				got, err := Canonical([]byte(tc.in), mode.ascii)
				if want := pythonJSON(t, mode.want); err != nil || string(got) != want {
					t.Errorf("Canonical(ascii=%v) = %s, %v\nwant %s", mode.ascii, got, err, want)
				}
			}
		})
	}
	for _, bad := range []string{``, `{`, `{"a":1} {}`, `[1,]`, `nul`} {
		if _, err := Canonical([]byte(bad), false); err == nil {
			t.Errorf("Canonical(%q) succeeded", bad)
		}
	}
}

func TestPrepareAndHandler(t *testing.T) {
	const secret = "whsec_prepare"
	event := []byte(`{"event_id":"e-1","webhook_type":"status.updated","session_id":"s-1","status":"Approved","vendor_data":"Zoë","created_at":1790000000,"decision":{"face_matches":[{"score":91.0}]}}`)
	now := time.Unix(1790000123, 0)
	body, sig, err := Prepare(secret, event, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"timestamp":1790000123`) || !strings.Contains(string(body), `"Zoë"`) || !strings.Contains(string(body), `"score":91}`) {
		t.Errorf("body = %s", body)
	}
	if sig.Timestamp != "1790000123" {
		t.Errorf("timestamp header %q", sig.Timestamp)
	}
	var got []Event
	fail := true
	ver := &Verifier{Secret: secret, Seen: NewMemoryDeduper(), Now: func() time.Time { return now.Add(time.Minute) }}
	srv := httptest.NewServer(ver.Handler(func(_ context.Context, ev Event) error {
		if fail {
			fail = false
			return errors.New("database down")
		}
		got = append(got, ev)
		return nil
	}))
	defer srv.Close()
	post := func(b []byte, s Signatures) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(string(b)))
		s.Set(req.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i, want := range []int{500, 200, 200} { // fails, is retried and processed, then a duplicate
		if code := post(body, sig); code != want {
			t.Errorf("delivery %d: %d, want %d", i+1, code, want)
		}
	}
	if len(got) != 1 || got[0].VendorData != "Zoë" || got[0].SessionID != "s-1" || string(got[0].Decision) != `{"face_matches":[{"score":91}]}` {
		t.Errorf("processed %+v", got)
	}
	forged := sig
	forged.V2 = strings.Repeat("0", 64)
	if code := post(body, forged); code != http.StatusUnauthorized {
		t.Errorf("forged: %d, want 401", code)
	}
}

// TestPrepareSignsTheRawBody is the receiver of Didit's guide: "X-Signature-V2 is an
// HMAC-SHA256 of the raw body". For every body, ASCII or not, the header must be the HMAC of
// the bytes sent, and the webhook package's own Verifier must accept it too.
func TestPrepareSignsTheRawBody(t *testing.T) {
	const secret = "whsec_raw"
	now := time.Unix(1790000123, 0)
	for _, vendor := range []string{"user-42", "José Müller 北京", "emoji 😀 and \u2028", `quote " and backslash \\ and </script>`} {
		t.Run(vendor, func(t *testing.T) {
			event, err := json.Marshal(map[string]any{"event_id": "e-" + vendor, "webhook_type": TypeStatusUpdated, "session_id": "s-1",
				"status": "Approved", "vendor_data": vendor, "created_at": 1790000000, "metadata": map[string]string{"note": vendor},
				"decision": map[string]any{"face": map[string]any{"similarity_score": 0.96}, "liveness": map[string]any{"score": 96.0}}})
			if err != nil {
				t.Fatal(err)
			}
			body, sig, err := Prepare(secret, event, now)
			if err != nil {
				t.Fatal(err)
			}
			m := hmac.New(sha256.New, []byte(secret)) // the guide's receiver, on the raw bytes
			m.Write(body)
			if want := hex.EncodeToString(m.Sum(nil)); sig.V2 != want || sig.Raw != want {
				t.Errorf("X-Signature-V2 %s, X-Signature %s; HMAC of the raw body %s", sig.V2, sig.Raw, want)
			}
			if !utf8.Valid(body) || !strings.Contains(string(body), strings.ReplaceAll(strings.ReplaceAll(vendor, `\`, `\\`), `"`, `\"`)) {
				t.Errorf("the body does not carry the vendor data as UTF-8: %s", body)
			}
			var got struct {
				VendorData string `json:"vendor_data"`
			}
			if err := json.Unmarshal(body, &got); err != nil || got.VendorData != vendor {
				t.Errorf("decoded vendor_data %q, %v", got.VendorData, err)
			}
			h := http.Header{}
			sig.Set(h)
			ver := &Verifier{Secret: secret, Now: func() time.Time { return now }}
			if _, err := ver.Verify(h, body); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}
