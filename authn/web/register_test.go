package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/visage-idp/visage/internal/testenv"
	"github.com/visage-idp/visage/store"
)

// testPNGPath writes a picture with no face in it (a colour gradient) and returns its path.
func testPNGPath(t *testing.T) string {
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := 0; y < 240; y++ {
		for x := 0; x < 320; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / 320), uint8(y * 255 / 240), 120, 255})
		}
	}
	p := filepath.Join(t.TempDir(), "gradient.png")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	codeLikeRE = regexp.MustCompile(`\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b`)
	waitRE     = regexp.MustCompile(`\b\d+ (seconds|minutes)\b|\b3 to 64 letters\b`)
)

// plainMessage fails if a message a person reads carries a code or a measurement.
func plainMessage(t *testing.T, msg string) {
	t.Helper()
	if m := codeLikeRE.FindString(msg); m != "" {
		t.Fatalf("message %q carries the code %s", msg, m)
	}
	if strings.ContainsAny(waitRE.ReplaceAllString(msg, ""), "0123456789") {
		t.Fatalf("message %q carries a number", msg)
	}
}

// postRegister submits the register page's fields and photo the way capture.js does.
func (e *stepEnv) postRegister(t *testing.T, b *browser, fields map[string]string, photo string, withCSRF bool) (int, verdict) {
	t.Helper()
	resp, body, _ := e.follow(t, b, "/register")
	m := csrfRE.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("register page: %d", resp.StatusCode)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if withCSRF {
		_ = mw.WriteField("csrf_token", m[1])
	}
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	if photo != "" {
		img, err := os.ReadFile(photo)
		if err != nil {
			t.Fatal(err)
		}
		fw, _ := mw.CreateFormFile("image", "selfie.jpg")
		_, _ = fw.Write(img)
	}
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/register", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	r := e.do(t, b, req)
	defer r.Body.Close()
	var v verdict
	_ = json.NewDecoder(r.Body).Decode(&v)
	return r.StatusCode, v
}

func TestRegister(t *testing.T) {
	e := newStepEnvWith(t, nil, true)
	ctx := context.Background()
	colin := lfwPhoto(t, "Colin_Powell", 38)
	b := newBrowser("198.51.100.10")
	tests := []struct {
		name     string
		fields   map[string]string
		photo    string
		csrf     bool
		status   int
		code     string
		username string // a user that must exist afterwards ("" = none created)
	}{
		{"no CSRF token", map[string]string{"username": "colin"}, colin, false, http.StatusForbidden, "CSRF", ""},
		{"bad username", map[string]string{"username": "x"}, colin, true, http.StatusBadRequest, "INVALID_USERNAME", ""},
		// A bad username is a field error said before any face work: not the face's verdict.
		{"username with a space, printed photo", map[string]string{"username": "Aaron Peirsol"}, testenv.Path(t, "nuaa-train", "attack_print", "0001", "0001_00_00_01_0.jpg"), true, http.StatusBadRequest, "INVALID_USERNAME", ""},
		{"short username, no face", map[string]string{"username": "ab"}, testPNGPath(t), true, http.StatusBadRequest, "INVALID_USERNAME", ""},
		{"bad email", map[string]string{"username": "colin", "email": "not-an-address"}, colin, true, http.StatusBadRequest, "INVALID_EMAIL", ""},
		{"no photo", map[string]string{"username": "colin"}, "", true, http.StatusBadRequest, "NO_IMAGE", ""},
		{"no face", map[string]string{"username": "colin"}, testPNGPath(t), true, http.StatusBadRequest, "NO_FACE_DETECTED", ""},
		{"printed photo", map[string]string{"username": "nuaa"}, testenv.Path(t, "nuaa-train", "attack_print", "0001", "0001_00_00_01_0.jpg"), true, http.StatusBadRequest, "LIVENESS_FACE_ATTACK", ""},
		{"enrols", map[string]string{"username": "Colin", "display_name": "Colin P", "email": "colin@example.com"}, colin, true, http.StatusOK, "", "colin"},
		{"username taken", map[string]string{"username": "colin"}, colin, true, http.StatusConflict, "USERNAME_TAKEN", "colin"},
		// A taken username is said only once the face is valid: no cheap username probe.
		{"username taken, no face", map[string]string{"username": "colin"}, testPNGPath(t), true, http.StatusBadRequest, "NO_FACE_DETECTED", "colin"},
		// A stranger claiming colin's address, in any case, is refused without naming colin.
		{"email taken", map[string]string{"username": "mallory", "email": "COLIN@Example.com"}, lfwPhoto(t, "Aaron_Peirsol", 2), true, http.StatusConflict, "EMAIL_TAKEN", ""},
		{"email with a display name", map[string]string{"username": "mallory", "email": "Colin <colin@example.com>"}, colin, true, http.StatusBadRequest, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, v := e.postRegister(t, b, tt.fields, tt.photo, tt.csrf)
			if status != tt.status || (tt.code != "" && v.Code != tt.code) {
				t.Fatalf("got %d %+v, want %d %s", status, v, tt.status, tt.code)
			}
			if strings.TrimSpace(v.Message) == "" {
				t.Fatal("no message for the user")
			}
			plainMessage(t, v.Message)
			if want := map[string]string{"INVALID_USERNAME": "username", "INVALID_EMAIL": "email", "USERNAME_TAKEN": "username", "EMAIL_TAKEN": "email"}[v.Code]; v.Field != want {
				t.Fatalf("%s: field %q, want %q", v.Code, v.Field, want)
			}
			if v.Code == "EMAIL_TAKEN" && strings.Contains(strings.ToLower(v.Message), "colin") {
				t.Fatalf("the refusal names the account holding the email: %q", v.Message)
			}
			if tt.username == "" {
				if u := strings.ToLower(tt.fields["username"]); u != "" {
					if _, err := e.store.GetUserByUsername(ctx, u); !errors.Is(err, store.ErrNotFound) {
						t.Fatalf("a refused enrolment left user %q behind (%v)", u, err)
					}
				}
				return
			}
			u, err := e.store.GetUserByUsername(ctx, tt.username)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.GetTemplate(ctx, u.ID); err != nil {
				t.Fatalf("user without template: %v", err)
			}
			if u.EmailVerified {
				t.Fatal("an email typed on the register page counts as verified")
			}
		})
	}
	// The new account signs in with another photo of the same person.
	o := e.signInAs(t, newBrowser("198.51.100.10"), "colin", lfwPhoto(t, "Colin_Powell", 74), url.Values{})
	if o.code == "" {
		t.Fatalf("the new account cannot sign in: %+v", o)
	}
}
