package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// bombs returns a PNG of 4096x4096 zeros and a flat 4096x4096 JPEG: tiny files, 16 MP each.
func bombs(t testing.TB) map[string][]byte {
	t.Helper()
	var p, j bytes.Buffer
	if err := png.Encode(&p, image.NewGray(image.Rect(0, 0, 4096, 4096))); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&j, image.NewRGBA(image.Rect(0, 0, 4096, 4096)), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"png": p.Bytes(), "jpeg": j.Bytes()}
}

// stranger is a cookie-holding HTTP client that does not follow redirects.
func stranger() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// csrf fetches page with c and returns the form's CSRF token.
func csrf(t testing.TB, c *http.Client, page string) string {
	t.Helper()
	resp, err := c.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(body)
	if m == nil {
		t.Fatalf("GET %s: %d, no CSRF token in %.300s", page, resp.StatusCode, body)
	}
	return string(m[1])
}

// postImage posts a multipart form with an image field.
func postImage(c *http.Client, target string, fields map[string]string, img []byte) (*http.Response, []byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("image", "selfie.jpg")
	_, _ = fw.Write(img)
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, target, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// peakRSS returns the process's peak and current resident set, in MB.
func peakRSS(t testing.TB, pid int) (peak, now int) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && (fields[0] == "VmHWM:" || fields[0] == "VmRSS:") {
			kb, _ := strconv.Atoi(fields[1])
			if fields[0] == "VmHWM:" {
				peak = kb / 1024
			} else {
				now = kb / 1024
			}
		}
	}
	return peak, now
}

// TestImageBombs: a stranger with nothing but the register page's CSRF token sends 16 image
// bombs at once (a 4096x4096 PNG of zeros, a flat 4096x4096 JPEG: small files, 16 MP each).
// Every one is answered, refused as too large from its header, and the server's memory stays
// where it was: no pixel buffer was allocated for them.
func TestImageBombs(t *testing.T) {
	s := startServer(t)
	b := bombs(t)
	_, before := peakRSS(t, s.cmd.Process.Pid)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 16 {
		kind := []string{"png", "jpeg"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := stranger()
			token := csrf(t, c, s.url+"/register")
			resp, body, err := postImage(c, s.url+"/register", map[string]string{"csrf_token": token, "username": fmt.Sprintf("bomber%d", i)}, b[kind])
			if err != nil {
				errs <- fmt.Sprintf("%s bomb %d: no answer: %v", kind, i, err)
				return
			}
			var v struct{ Code string }
			_ = json.Unmarshal(body, &v)
			if resp.StatusCode != http.StatusBadRequest || v.Code != "IMAGE_TOO_LARGE" {
				errs <- fmt.Sprintf("%s bomb %d: %d %s", kind, i, resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	peak, after := peakRSS(t, s.cmd.Process.Pid)
	t.Logf("server RSS %d MB before, %d MB after, peak %d MB", before, after, peak)
	// Decoding one bomb would take 64 MB (16 MP in RGBA); sixteen at once, a gigabyte.
	if after-before > 64 {
		t.Errorf("RSS grew by %d MB for 16 refused images", after-before)
	}
	// Nothing was enrolled.
	if out := s.cli(t, "users", "list"); strings.Contains(out, "bomber") {
		t.Errorf("a bomb created an account:\n%s", out)
	}
}

// TestRateLimits: a stranger hammering the username step from one address is refused with 429
// and Retry-After once the burst is spent; a neighbour on another network is not; /metrics
// counts the refusals.
func TestRateLimits(t *testing.T) {
	s := startServer(t, "VISAGE_RATE_LIMIT_BURST=5", "VISAGE_RATE_LIMIT_PER_MINUTE=1")
	c := stranger()
	form := url.Values{"csrf_token": {"x"}, "username": {"alice"}}.Encode()
	post := func(forwardedFor string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/login", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if forwardedFor != "" {
			req.Header.Set("X-Forwarded-For", forwardedFor)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for i := range 5 {
		if resp := post(""); resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	resp := post("")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("6th request: %d, want 429", resp.StatusCode)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %q, want 1 to 60 seconds", resp.Header.Get("Retry-After"))
	}
	// X-Forwarded-For from an untrusted peer changes nothing: still this address, still refused.
	if resp := post("203.0.113.50"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a forged X-Forwarded-For escaped the limit: %d", resp.StatusCode)
	}
	mresp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(m), `visage_rate_limited_total{scope="address"} 2`) {
		t.Fatalf("metrics:\n%s", m)
	}
}
