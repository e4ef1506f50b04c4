package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// httpSignIn runs a whole sign-in over HTTP from client address ip (X-Forwarded-For, believed
// from the trusted loopback proxy): /authorize, the username, the selfie, the redirect with a
// code. It returns the selfie post's latency, its HTTP status and whether a code came back.
func httpSignIn(t *testing.T, s *server, authURL, username, ip string, selfie []byte) (time.Duration, int, bool) {
	c := stranger()
	get := func(u string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := c.Do(req)
		if err != nil {
			t.Errorf("GET %s: %v", u, err)
			return nil, ""
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	abs := func(loc string) string {
		if strings.HasPrefix(loc, "/") {
			return s.url + loc
		}
		return loc
	}
	// Follow redirects by hand until a page (or the relying party) answers.
	follow := func(u string) (*http.Response, string) {
		for range 10 {
			resp, body := get(u)
			if resp == nil || resp.StatusCode/100 != 3 {
				return resp, body
			}
			u = abs(resp.Header.Get("Location"))
			if !strings.HasPrefix(u, s.url) {
				return resp, u
			}
		}
		return nil, ""
	}
	resp, body := follow(authURL)
	if resp == nil {
		return 0, 0, false
	}
	m := csrfRE.FindStringSubmatch(body)
	id := resp.Request.URL.Query().Get("authRequestID")
	if m == nil || id == "" {
		t.Errorf("login page: %d %.200s", resp.StatusCode, body)
		return 0, 0, false
	}
	req, _ := http.NewRequest(http.MethodPost, s.url+"/login", strings.NewReader(url.Values{"csrf_token": {m[1]}, "authRequestID": {id}, "username": {username}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", ip)
	r2, err := c.Do(req)
	if err != nil {
		t.Errorf("POST /login: %v", err)
		return 0, 0, false
	}
	r2.Body.Close()
	sp, sbody := follow(abs(r2.Header.Get("Location")))
	cm := csrfRE.FindStringSubmatch(sbody)
	if sp == nil || cm == nil {
		t.Errorf("selfie page: %.200s", sbody)
		return 0, 0, false
	}
	start := time.Now()
	var st int
	var v struct{ Status, Code, Redirect string }
	for attempt := 0; ; attempt++ {
		sreq := func() (*http.Response, []byte, error) {
			return postImageFrom(c, s.url+"/login/selfie", ip, map[string]string{"csrf_token": cm[1], "authRequestID": id}, selfie)
		}
		r3, b3, err := sreq()
		if err != nil {
			t.Errorf("selfie post: no answer: %v", err)
			return time.Since(start), 0, false
		}
		st = r3.StatusCode
		_ = json.Unmarshal(b3, &v)
		// A busy server says when to come back; a real client does, once or twice.
		if st == http.StatusServiceUnavailable && r3.Header.Get("Retry-After") != "" && attempt < 3 {
			time.Sleep(time.Second)
			continue
		}
		break
	}
	took := time.Since(start)
	if v.Redirect == "" {
		return took, st, false
	}
	_, last := follow(abs(v.Redirect))
	return took, st, strings.Contains(last, "code=")
}

// postImageFrom is postImage from client address ip.
func postImageFrom(c *http.Client, target, ip string, fields map[string]string, img []byte) (*http.Response, []byte, error) {
	tr := c.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	c2 := *c
	c2.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r.Header.Set("X-Forwarded-For", ip)
		return tr.RoundTrip(r)
	})
	return postImage(&c2, target, fields, img)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestLoadBombsAndSignIns is the load generator of README's "Abuse resistance" figures: 40
// image bombs from one address and 20 genuine sign-ins from 20 others, all at once, against
// bin/idp on SQLite with the default limits. Bounded (60 requests and their pages, a minute of
// watching memory afterwards), loopback only. It runs with VISAGE_LOAD_TEST=1 and reports
// figures; it asserts only that every request was answered, no bomb was accepted and every
// genuine sign-in got its code.
func TestLoadBombsAndSignIns(t *testing.T) {
	if os.Getenv("VISAGE_LOAD_TEST") != "1" {
		t.Skip("set VISAGE_LOAD_TEST=1 to run the load generator (about 2 minutes)")
	}
	s := startServer(t, "VISAGE_TRUSTED_PROXIES=127.0.0.1", "VISAGE_FACE_WORKERS=2",
		"VISAGE_RATE_LIMIT_BURST=30", "VISAGE_RATE_LIMIT_NETWORK_BURST=120") // the defaults, not the harness's
	s.cli(t, "users", "add", "--username", "aaron", "--portrait", lfw(t, "Aaron_Peirsol", 1))
	r := newRP(t, s, "load-app", "--first-party")
	selfie, err := os.ReadFile(lfw(t, "Aaron_Peirsol", 2))
	if err != nil {
		t.Fatal(err)
	}
	b := bombs(t)

	var peak int
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				_, now := peakRSS(t, s.cmd.Process.Pid)
				peak = max(peak, now)
			}
		}
	}()

	var mu sync.Mutex
	var bombTimes, signinTimes []time.Duration
	bombStatus := map[int]int{}
	approved := 0
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := stranger()
			token := csrf(t, c, s.url+"/register")
			start := time.Now()
			resp, _, err := postImageFrom(c, s.url+"/register", "198.51.100.66", map[string]string{"csrf_token": token, "username": fmt.Sprintf("bomb%d", i)}, b[[]string{"png", "jpeg"}[i%2]])
			took := time.Since(start)
			if err != nil {
				t.Errorf("bomb %d: no answer: %v", i, err)
				return
			}
			mu.Lock()
			bombTimes = append(bombTimes, took)
			bombStatus[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := r.authorize()
			took, st, ok := httpSignIn(t, s, a.url, "aaron", fmt.Sprintf("192.0.2.%d", 10+i), selfie)
			mu.Lock()
			defer mu.Unlock()
			signinTimes = append(signinTimes, took)
			if ok {
				approved++
			} else {
				t.Errorf("genuine sign-in %d: status %d, no code", i, st)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(begin)
	close(stop)
	sampler.Wait()
	_, after := peakRSS(t, s.cmd.Process.Pid)
	for code := range bombStatus {
		if code == http.StatusOK {
			t.Errorf("a bomb was accepted")
		}
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		slices.Sort(d)
		return d[min(len(d)-1, int(p*float64(len(d))))]
	}
	t.Logf("wall %v; bombs: %d answered %v, p50 %v, max %v; genuine: %d of 20 approved, selfie verdict p50 %v, p99 %v",
		wall.Round(time.Millisecond), len(bombTimes), bombStatus, pct(bombTimes, 0.5).Round(time.Millisecond), pct(bombTimes, 1).Round(time.Millisecond),
		approved, pct(signinTimes, 0.5).Round(time.Millisecond), pct(signinTimes, 0.99).Round(time.Millisecond))
	// A minute later: what the process gives back.
	time.Sleep(time.Minute)
	_, later := peakRSS(t, s.cmd.Process.Pid)
	t.Logf("server RSS: peak %d MB during the load (sampled every 50 ms), %d MB right after, %d MB a minute later", peak, after, later)
}
