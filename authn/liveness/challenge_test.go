package liveness

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestIssueActive(t *testing.T) {
	c := newChallenger(t, &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	orders := map[string]int{}
	ids := map[string]bool{}
	for i := 0; i < 200; i++ {
		ch, err := c.Issue(MethodActive3D)
		if err != nil {
			t.Fatal(err)
		}
		if ids[ch.ID] || len(ch.ID) < 20 {
			t.Fatalf("challenge id %q repeated or short", ch.ID)
		}
		ids[ch.ID] = true
		n := len(ch.Steps)
		if n < 3 || n > 4 || ch.Steps[n-1] != StepCenter {
			t.Fatalf("steps %v: want 2 or 3 turns then center", ch.Steps)
		}
		turns := ch.turns()
		if turns[0] == turns[1] || (len(turns) == 3 && turns[2] != turns[0]) {
			t.Fatalf("steps %v: turns must alternate", ch.Steps)
		}
		if !ch.ExpiresAt.Equal(ch.IssuedAt.Add(c.cfg.TTL)) || ch.StepMS <= 0 || ch.FrameIntervalMS <= 0 || ch.MaxFrames <= 0 {
			t.Fatalf("challenge %+v: bad timing or limits", ch)
		}
		orders[strings.Join(ch.Steps, ",")]++
	}
	if len(orders) != 4 {
		t.Errorf("200 challenges gave %d distinct step sequences, want all 4: %v", len(orders), orders)
	}
	if c.Pending() != 200 {
		t.Errorf("Pending = %d, want 200", c.Pending())
	}
}

func TestIssueFlashing(t *testing.T) {
	c := newChallenger(t, nil)
	seqs := map[string]bool{}
	for i := 0; i < 100; i++ {
		ch, err := c.Issue(MethodFlashing)
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.Colors) != c.cfg.Flash.Colors || ch.FramesPerColor <= 0 {
			t.Fatalf("%d colours, %d frames per colour", len(ch.Colors), ch.FramesPerColor)
		}
		distinct := map[string]bool{}
		next := 0
		for k, s := range ch.Colors {
			if _, ok := palette[s.Color]; !ok {
				t.Fatalf("colour %q not in the palette", s.Color)
			}
			if k > 0 && ch.Colors[k-1].Color == s.Color {
				t.Fatalf("colour %s twice in a row in %v", s.Color, colorNames(ch.Colors))
			}
			if s.StartMS != next || s.DurationMS < c.cfg.Flash.MinDurationMS || s.DurationMS > c.cfg.Flash.MaxDurationMS {
				t.Fatalf("colour %d starts at %d (want %d), lasts %d", k, s.StartMS, next, s.DurationMS)
			}
			next += s.DurationMS
			distinct[s.Color] = true
		}
		if len(distinct) < 3 {
			t.Fatalf("only %d distinct colours", len(distinct))
		}
		seqs[strings.Join(colorNames(ch.Colors), ",")] = true
	}
	if len(seqs) < 95 {
		t.Errorf("100 challenges gave only %d distinct sequences", len(seqs))
	}
}

func TestIssueJSON(t *testing.T) {
	c := newChallenger(t, nil)
	for _, m := range []Method{MethodActive3D, MethodFlashing} {
		ch, err := c.Issue(m)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(ch)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		want := []string{"id", "method", "issued_at", "expires_at", "max_frames", "max_frame_bytes", "max_burst_bytes"}
		if m == MethodActive3D {
			want = append(want, "steps", "step_ms", "frame_interval_ms")
		} else {
			want = append(want, "colors", "frames_per_color")
		}
		for _, k := range want {
			if _, ok := got[k]; !ok {
				t.Errorf("%s challenge JSON lacks %q: %s", m, k, b)
			}
		}
		if got["method"] != string(m) {
			t.Errorf("method = %v, want %s", got["method"], m)
		}
	}
	if _, err := c.Issue(MethodPassive); !errors.Is(err, ErrInvalidInput) || Code(err) != CodeInvalidMethod {
		t.Errorf("Issue(PASSIVE) = %v, want INVALID_METHOD", err)
	}
}

// TestVerifyBadInput: every malformed answer is a clear error before any frame is decoded, and
// the challenge is used up by it.
func TestVerifyBadInput(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := newChallenger(t, clock)
	jpeg := readFile(t, "samples", "image_T1.jpg")
	frames := func(n int) []Frame {
		out := make([]Frame, n)
		for i := range out {
			out[i] = Frame{Data: append([]byte(nil), jpeg...), At: clock.Now().Add(time.Duration(i) * 100 * time.Millisecond)}
			out[i].Data[len(out[i].Data)-3] = byte(i) // distinct bytes
		}
		return out
	}
	big := make([]byte, c.cfg.MaxFrameBytes+1)
	cases := []struct {
		name     string
		method   Method
		id       func(Challenge) string
		frames   func() []Frame
		before   func()
		sentinel error
		code     string
	}{
		{"missing challenge id", MethodActive3D, func(Challenge) string { return "" }, func() []Frame { return frames(6) }, nil, ErrChallenge, CodeChallengeMissing},
		{"unknown challenge id", MethodActive3D, func(Challenge) string { return "bm90LWlzc3VlZA" }, func() []Frame { return frames(6) }, nil, ErrChallenge, CodeChallengeUnknown},
		{"expired challenge", MethodActive3D, func(ch Challenge) string { return ch.ID }, func() []Frame { return frames(6) }, func() { clock.Add(c.cfg.TTL + time.Second) }, ErrChallenge, CodeChallengeExpired},
		{"too many frames", MethodActive3D, func(ch Challenge) string { return ch.ID }, func() []Frame { return frames(c.cfg.MaxFrames + 1) }, nil, ErrInvalidInput, CodeTooManyFrames},
		{"too few frames", MethodActive3D, func(ch Challenge) string { return ch.ID }, func() []Frame { return frames(3) }, nil, ErrInvalidInput, CodeTooFewFrames},
		{"too few frames for the colours", MethodFlashing, func(ch Challenge) string { return ch.ID }, func() []Frame { return frames(6) }, nil, ErrInvalidInput, CodeTooFewFrames},
		{"frame too large", MethodActive3D, func(ch Challenge) string { return ch.ID }, func() []Frame { f := frames(6); f[2].Data = big; return f }, nil, ErrInvalidInput, CodeFramesTooLarge},
		{"empty frame", MethodActive3D, func(ch Challenge) string { return ch.ID }, func() []Frame { f := frames(6); f[2].Data = nil; return f }, nil, ErrInvalidInput, CodeFramesTooLarge},
		{"burst too large", MethodActive3D, func(ch Challenge) string { return ch.ID }, func() []Frame {
			f := frames(c.cfg.MaxFrames)
			for i := range f {
				f[i].Data = make([]byte, c.cfg.MaxBurstBytes/int64(c.cfg.MaxFrames)+1)
			}
			return f
		}, nil, ErrInvalidInput, CodeFramesTooLarge},
		{"frames out of time order", MethodActive3D, func(ch Challenge) string { return ch.ID }, func() []Frame {
			f := frames(6)
			f[3].At, f[4].At = f[4].At, f[3].At
			return f
		}, nil, ErrInvalidInput, CodeFramesOutOfOrder},
		{"two frames at the same time", MethodActive3D, func(ch Challenge) string { return ch.ID }, func() []Frame { f := frames(6); f[1].At = f[0].At; return f }, nil, ErrInvalidInput, CodeFramesOutOfOrder},
		{"frame without time", MethodActive3D, func(ch Challenge) string { return ch.ID }, func() []Frame { f := frames(6); f[0].At = time.Time{}; return f }, nil, ErrInvalidInput, CodeFrameTiming},
		{"frames spanning longer than the challenge", MethodActive3D, func(ch Challenge) string { return ch.ID }, func() []Frame {
			f := frames(6)
			f[5].At = f[0].At.Add(c.cfg.TTL + time.Second)
			return f
		}, nil, ErrInvalidInput, CodeFrameTiming},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := c.Issue(tc.method)
			if err != nil {
				t.Fatal(err)
			}
			if tc.before != nil {
				tc.before()
			}
			res, err := c.Verify(t.Context(), tc.id(ch), tc.frames(), nil)
			if !errors.Is(err, tc.sentinel) || Code(err) != tc.code {
				t.Fatalf("Verify error = %v (code %s), want %v with code %s", err, Code(err), tc.sentinel, tc.code)
			}
			if res.Live || !res.HasWarning(tc.code) || res.Probe != nil {
				t.Errorf("result %+v: want not live, warning %s, no probe", res, tc.code)
			}
			if tc.id(ch) == ch.ID {
				// The challenge is used up: a second answer is a replay.
				_, err := c.Verify(t.Context(), ch.ID, frames(6), nil)
				if Code(err) != CodeChallengeReplayed {
					t.Errorf("second answer: %v, want CHALLENGE_REPLAYED", err)
				}
			}
		})
	}
}

func TestChallengeSweepAndCapacity(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	eng, p := models(t)
	c, err := NewChallenger(ChallengerConfig{Engine: eng, Passive: p, Now: clock.Now, MaxPending: 3, TTL: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var first Challenge
	for i := 0; i < 3; i++ {
		ch, err := c.Issue(MethodActive3D)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = ch
		}
	}
	if _, err := c.Issue(MethodFlashing); Code(err) != CodeChallengeCapacity {
		t.Fatalf("fourth pending challenge: %v, want CHALLENGE_CAPACITY", err)
	}
	clock.Add(61 * time.Second)
	if _, err := c.Issue(MethodFlashing); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := c.Pending(); n != 1 {
		t.Errorf("Pending after sweep = %d, want 1", n)
	}
	if _, err := c.Verify(t.Context(), first.ID, nil, nil); Code(err) != CodeChallengeUnknown {
		t.Errorf("swept challenge: %v, want CHALLENGE_NOT_FOUND", err)
	}
}

// TestChallengeSingleUseConcurrent: of many simultaneous answers to one challenge, exactly one
// gets past the challenge check.
func TestChallengeSingleUseConcurrent(t *testing.T) {
	c := newChallenger(t, nil)
	ch, err := c.Issue(MethodActive3D)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.take(ch.ID)
			mu.Lock()
			codes[Code(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[""] != 1 || codes[CodeChallengeReplayed] != 15 {
		t.Errorf("outcomes %v: want 1 success and 15 CHALLENGE_REPLAYED", codes)
	}
}

func TestParseFrameTime(t *testing.T) {
	ref := time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-01-02T03:04:05.678Z", ref, true},
		{"2026-01-02T04:04:05.678+01:00", ref, true},
		{"2026-01-02T03:04:05Z", ref.Truncate(time.Second), true},
		{"1767323045678", ref, true},
		{"1767323045678.5", ref.Add(500 * time.Microsecond), true},
		{" 1767323045678 ", ref, true},
		{"", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"-5", time.Time{}, false},
		{"NaN", time.Time{}, false},
		{"1e300", time.Time{}, false},
	}
	for _, tc := range cases {
		got, err := ParseFrameTime(tc.in)
		if (err == nil) != tc.ok || (tc.ok && !got.Equal(tc.want)) {
			t.Errorf("ParseFrameTime(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && (Code(err) != CodeFrameTiming || !errors.Is(err, ErrInvalidInput)) {
			t.Errorf("ParseFrameTime(%q) error %v: want FRAME_TIMING", tc.in, err)
		}
	}
	if _, err := ParseFrameTimes([]string{"1767323045678"}, 2); Code(err) != CodeFrameTiming {
		t.Errorf("count mismatch: %v", err)
	}
}

func TestParseMethod(t *testing.T) {
	for in, want := range map[string]Method{"passive": MethodPassive, "ACTIVE_3D": MethodActive3D, "Flashing": MethodFlashing} {
		if got, err := ParseMethod(in); err != nil || got != want {
			t.Errorf("ParseMethod(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseMethod("blink"); Code(err) != CodeInvalidMethod {
		t.Errorf("ParseMethod(blink): %v", err)
	}
}
