package sessions

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net/url"
	"strings"
	"testing"

	"github.com/visage-idp/visage/authn/face"
)

// tinyPNG is a real 8x8 PNG (no face in it).
func tinyPNG(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.Set(0, 0, color.White)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestParseCreateRequest(t *testing.T) {
	pngData := tinyPNG(t)
	b64 := base64.StdEncoding.EncodeToString(pngData)
	big := append([]byte{0xFF, 0xD8, 0xFF}, make([]byte, 2<<20)...) // JPEG magic, 2 MB + 3 bytes
	for _, tc := range []struct {
		name   string
		body   string
		field  string // expected field error ("" = success, "detail" = a detail error)
		check  func(t *testing.T, r CreateRequest)
		maxImg int
	}{
		{name: "minimal", body: `{"workflow_id":"wf"}`, check: func(t *testing.T, r CreateRequest) {
			if r.WorkflowID != "wf" || r.VendorData != "" || r.Metadata != nil || r.Portrait != nil {
				t.Errorf("%+v", r)
			}
		}},
		{name: "everything", body: `{"workflow_id":" wf ","vendor_data":"user-42","callback":"https://app.example/cb?x=1","metadata":{ "a" : [1, 2] },"portrait_image":"` + b64 + `","contact_details":{"email":"x@y"}}`,
			check: func(t *testing.T, r CreateRequest) {
				if r.WorkflowID != "wf" || r.VendorData != "user-42" || r.Callback != "https://app.example/cb?x=1" ||
					string(r.Metadata) != `{"a":[1,2]}` || !bytes.Equal(r.Portrait, pngData) {
					t.Errorf("%+v", r)
				}
			}},
		{name: "data URL portrait", body: `{"workflow_id":"wf","portrait_image":"data:image/png;base64,` + b64 + `"}`, check: func(t *testing.T, r CreateRequest) {
			if !bytes.Equal(r.Portrait, pngData) {
				t.Error("portrait not decoded")
			}
		}},
		{name: "unpadded base64", body: `{"workflow_id":"wf","portrait_image":"` + strings.TrimRight(b64, "=") + `"}`, check: func(t *testing.T, r CreateRequest) {
			if !bytes.Equal(r.Portrait, pngData) {
				t.Error("portrait not decoded")
			}
		}},
		{name: "nulls are absent", body: `{"workflow_id":"wf","vendor_data":null,"metadata":null,"portrait_image":null,"callback":null}`},
		{name: "malformed JSON", body: `{"workflow_id":`, field: "detail"},
		{name: "not an object", body: `["workflow_id"]`, field: "detail"},
		{name: "null body", body: `null`, field: "detail"},
		{name: "trailing data", body: `{"workflow_id":"wf"} {}`, field: "detail"},
		{name: "empty body", body: ``, field: "detail"},
		{name: "no workflow", body: `{"vendor_data":"u"}`, field: "workflow_id"},
		{name: "blank workflow", body: `{"workflow_id":"  "}`, field: "workflow_id"},
		{name: "workflow not a string", body: `{"workflow_id":7}`, field: "workflow_id"},
		{name: "long vendor data", body: `{"workflow_id":"wf","vendor_data":"` + strings.Repeat("é", MaxVendorData+1) + `"}`, field: "vendor_data"},
		{name: "relative callback", body: `{"workflow_id":"wf","callback":"/cb"}`, field: "callback"},
		{name: "javascript callback", body: `{"workflow_id":"wf","callback":"javascript:alert(1)"}`, field: "callback"},
		{name: "callback with credentials", body: `{"workflow_id":"wf","callback":"https://u:p@app.example/cb"}`, field: "callback"},
		{name: "metadata array", body: `{"workflow_id":"wf","metadata":[1]}`, field: "metadata"},
		{name: "metadata string", body: `{"workflow_id":"wf","metadata":"{}"}`, field: "metadata"},
		{name: "metadata too big", body: `{"workflow_id":"wf","metadata":{"x":"` + strings.Repeat("a", MaxMetadata) + `"}}`, field: "metadata"},
		{name: "portrait not base64", body: `{"workflow_id":"wf","portrait_image":"%%%%"}`, field: "portrait_image"},
		{name: "portrait not a string", body: `{"workflow_id":"wf","portrait_image":{"a":1}}`, field: "portrait_image"},
		{name: "portrait empty", body: `{"workflow_id":"wf","portrait_image":""}`, field: "portrait_image"},
		{name: "portrait not an image", body: `{"workflow_id":"wf","portrait_image":"` + base64.StdEncoding.EncodeToString([]byte("GIF89a not supported")) + `"}`, field: "portrait_image"},
		{name: "portrait too large", body: `{"workflow_id":"wf","portrait_image":"` + base64.StdEncoding.EncodeToString(big) + `"}`, field: "portrait_image"},
		{name: "portrait at the limit", maxImg: len(pngData), body: `{"workflow_id":"wf","portrait_image":"` + b64 + `"}`},
		{name: "portrait one byte over", maxImg: len(pngData) - 1, body: `{"workflow_id":"wf","portrait_image":"` + b64 + `"}`, field: "portrait_image"},
		{name: "two field errors", body: `{"workflow_id":"","callback":"nope"}`, field: "workflow_id,callback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maxImg := tc.maxImg
			if maxImg == 0 {
				maxImg = 2 << 20
			}
			r, err := ParseCreateRequest([]byte(tc.body), maxImg)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if tc.check != nil {
					tc.check(t, r)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v, want a *RequestError", err)
			}
			if tc.field == "detail" {
				if re.Detail == "" || len(re.Fields) != 0 {
					t.Errorf("want a detail error, got %+v", re)
				}
				return
			}
			for _, f := range strings.Split(tc.field, ",") {
				if re.Fields[f] == "" {
					t.Errorf("no error for %s in %+v", f, re.Fields)
				}
			}
			if n := len(strings.Split(tc.field, ",")); len(re.Fields) != n {
				t.Errorf("%d field errors %v, want %d", len(re.Fields), re.Fields, n)
			}
		})
	}
}

// FuzzParseCreateRequest: whatever the body, the parser never panics, and either refuses it
// with a non-empty *RequestError or returns a request whose every part is valid.
func FuzzParseCreateRequest(f *testing.F) {
	pngData := tinyPNG(f)
	for _, s := range []string{
		`{"workflow_id":"wf"}`,
		`{"workflow_id":"wf","vendor_data":"u","callback":"https://a.example/x","metadata":{"k":[1,{"z":null}]}}`,
		`{"workflow_id":"wf","portrait_image":"` + base64.StdEncoding.EncodeToString(pngData) + `"}`,
		`{"workflow_id":"wf","portrait_image":"data:image/png;base64,/9j/4AAQ"}`,
		`{"workflow_id":1,"metadata":"x","callback":"ftp://x"}`,
		`[]`, `null`, `{`, `{"workflow_id":"\u0000"}`, `{"a":1}{"b":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const maxImg = 4096
		r, err := ParseCreateRequest(body, maxImg)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || (re.Detail == "" && len(re.Fields) == 0) {
				t.Fatalf("error %v is not a useful *RequestError", err)
			}
			if _, err := json.Marshal(re.Body()); err != nil {
				t.Fatalf("error body does not marshal: %v", err)
			}
			return
		}
		if strings.TrimSpace(r.WorkflowID) == "" || len(r.WorkflowID) > 4*MaxWorkflowID {
			t.Fatalf("accepted workflow_id %q", r.WorkflowID)
		}
		if r.Callback != "" {
			u, err := url.Parse(r.Callback)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("accepted callback %q", r.Callback)
			}
		}
		if r.Metadata != nil {
			var m map[string]any
			if err := json.Unmarshal(r.Metadata, &m); err != nil || m == nil {
				t.Fatalf("accepted metadata %q", r.Metadata)
			}
		}
		if r.Portrait != nil {
			if len(r.Portrait) > maxImg {
				t.Fatalf("accepted a %d-byte portrait", len(r.Portrait))
			}
			if _, err := face.Sniff(r.Portrait); err != nil {
				t.Fatalf("accepted a portrait that is not JPEG or PNG")
			}
		}
	})
}
