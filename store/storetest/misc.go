package storetest

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/visage-idp/visage/store"
)

func testCountFailures(t *testing.T, s store.Storage) {
	ctx := t.Context()
	type attempt struct {
		success bool
		at      time.Duration // offset from base
	}
	F := func(d time.Duration) attempt { return attempt{false, d} }
	S := func(d time.Duration) attempt { return attempt{true, d} }
	sec := time.Second
	cases := []struct {
		name     string
		attempts []attempt
		since    time.Duration
		want     int
	}{
		{"no attempts", nil, 0, 0},
		{"failures since", []attempt{F(1 * sec), F(2 * sec), F(3 * sec)}, 0, 3},
		{"failures before since are not counted", []attempt{F(-2 * sec), F(-1 * sec), F(1 * sec)}, 0, 1},
		{"since is inclusive", []attempt{F(0), F(-time.Microsecond)}, 0, 1},
		{"a success resets the count", []attempt{F(1 * sec), F(2 * sec), S(3 * sec), F(4 * sec)}, 0, 1},
		{"a success after every failure", []attempt{F(1 * sec), F(2 * sec), S(3 * sec)}, 0, 0},
		{"only successes", []attempt{S(1 * sec), S(2 * sec)}, 0, 0},
		{"a success before since", []attempt{F(-3 * sec), S(-2 * sec), F(1 * sec), F(2 * sec)}, 0, 2},
		{"the latest success counts", []attempt{S(1 * sec), F(2 * sec), S(3 * sec), F(4 * sec), F(5 * sec)}, 0, 2},
		{"a success at the same instant resets", []attempt{F(1 * sec), S(1 * sec)}, 0, 0},
		{"recorded out of order", []attempt{F(5 * sec), S(3 * sec), F(1 * sec), F(4 * sec)}, 0, 2},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			user := fmt.Sprintf("u-%d", i)
			for _, a := range c.attempts {
				mustOK(t, "RecordAttempt", s.RecordAttempt(ctx, store.Attempt{UserID: user, IP: "2001:db8::1", Success: a.success, At: at(a.at)}))
			}
			// Noise from another user at the same times.
			for _, a := range c.attempts {
				mustOK(t, "RecordAttempt (other user)", s.RecordAttempt(ctx, store.Attempt{UserID: user + "-other", IP: "192.0.2.9", At: at(a.at)}))
			}
			got, err := s.CountFailures(ctx, user, at(c.since))
			mustOK(t, "CountFailures", err)
			if got != c.want {
				t.Errorf("CountFailures = %d, want %d", got, c.want)
			}
		})
	}
	// Identical attempts are all kept.
	for range 4 {
		mustOK(t, "RecordAttempt (duplicate)", s.RecordAttempt(ctx, store.Attempt{UserID: "u-dup", IP: "192.0.2.1", At: at(0)}))
	}
	got, err := s.CountFailures(ctx, "u-dup", at(-time.Hour))
	mustOK(t, "CountFailures duplicates", err)
	if got != 4 {
		t.Errorf("CountFailures of 4 identical failures = %d, want 4", got)
	}
}

func testGarbageCollect(t *testing.T, s store.Storage) {
	ctx := t.Context()
	now := at(0)
	past, future := at(-time.Second), at(time.Second)

	mustOK(t, "CreateUser", s.CreateUser(ctx, newUser("u-1", "alice")))
	mustOK(t, "CreateClient", s.CreateClient(ctx, newClient("app")))
	consent := store.Consent{UserID: "u-1", ClientID: "app", Scopes: []string{"openid"}, GrantedAt: at(-1000 * time.Hour)}
	mustOK(t, "PutConsent", s.PutConsent(ctx, consent))
	mustOK(t, "RecordAttempt", s.RecordAttempt(ctx, store.Attempt{UserID: "u-1", IP: "192.0.2.1", At: at(-1000 * time.Hour)}))
	g := newGrant("grant-1", "app", "u-1")
	g.CreatedAt = at(-1000 * time.Hour)
	mustOK(t, "CreateGrant", s.CreateGrant(ctx, g))

	type item struct {
		name  string
		alive bool
		get   func() error
	}
	var items []item
	add := func(name string, expires time.Time, create func(time.Time) error, get func() error) {
		mustOK(t, "create "+name, create(expires))
		items = append(items, item{name, !expires.Before(now), get})
	}
	for _, e := range []struct {
		suffix  string
		expires time.Time
	}{{"expired", past}, {"expiring-now", now}, {"live", future}} {
		id := e.suffix
		add("auth request "+id, e.expires, func(x time.Time) error {
			r := newAuthRequest("req-"+id, "app")
			r.ExpiresAt = x
			return s.CreateAuthRequest(ctx, r)
		}, func() error { return second(s.GetAuthRequest(ctx, "req-"+id)) })
		add("auth code "+id, e.expires, func(x time.Time) error {
			c := newAuthCode("code-"+id, "req-live")
			c.ExpiresAt = x
			return s.CreateAuthCode(ctx, c)
		}, func() error { return second(s.GetAuthCode(ctx, "code-"+id)) })
		add("access token "+id, e.expires, func(x time.Time) error {
			a := newAccessToken("at-"+id, g)
			a.ExpiresAt = x
			return s.CreateAccessToken(ctx, a)
		}, func() error { return second(s.GetAccessToken(ctx, "at-"+id)) })
		add("refresh token "+id, e.expires, func(x time.Time) error {
			r := newRefreshToken("rt-"+id, g)
			r.ExpiresAt = x
			return s.CreateRefreshToken(ctx, r)
		}, func() error { return second(s.GetRefreshToken(ctx, "rt-"+id)) })
		add("session "+id, e.expires, func(x time.Time) error {
			x2 := newSession("sess-"+id, "u-1")
			x2.ExpiresAt = x
			return s.CreateSession(ctx, x2)
		}, func() error { return second(s.GetSession(ctx, "sess-"+id)) })
		add("retired key "+id, e.expires, func(x time.Time) error {
			if err := s.CreateSigningKey(ctx, newSigningKey("key-"+id, "RS256", at(-1000*time.Hour))); err != nil {
				return err
			}
			return s.RetireSigningKey(ctx, "key-"+id, at(-900*time.Hour), x)
		}, func() error {
			keys, err := s.ListSigningKeys(ctx)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if k.ID == "key-"+id {
					return nil
				}
			}
			return store.ErrNotFound
		})
	}
	// Used and revoked things are collected by expiry only.
	usedCode := newAuthCode("code-used-live", "req-live")
	usedCode.ExpiresAt = future
	mustOK(t, "CreateAuthCode used", s.CreateAuthCode(ctx, usedCode))
	_, err := s.UseAuthCode(ctx, usedCode.CodeHash, g.ID, past)
	mustOK(t, "UseAuthCode", err)
	revokedSession := newSession("sess-revoked-live", "u-1")
	revokedSession.ExpiresAt, revokedSession.RevokedAt = future, &past
	mustOK(t, "CreateSession revoked", s.CreateSession(ctx, revokedSession))
	mustOK(t, "CreateSigningKey active", s.CreateSigningKey(ctx, newSigningKey("key-active", "ES256", at(-1000*time.Hour))))

	n, err := s.GarbageCollect(ctx, now, store.Retention{})
	mustOK(t, "GarbageCollect", err)
	if n != 6 {
		t.Errorf("GarbageCollect removed %d records, want 6", n)
	}
	for _, it := range items {
		err := it.get()
		if it.alive && err != nil {
			t.Errorf("%s: %v after GarbageCollect, want it kept", it.name, err)
		}
		if !it.alive && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v after GarbageCollect, want it removed (ErrNotFound)", it.name, err)
		}
	}
	for what, err := range map[string]error{
		"used live code":       second(s.GetAuthCode(ctx, usedCode.CodeHash)),
		"revoked live session": second(s.GetSession(ctx, revokedSession.ID)),
		"user":                 second(s.GetUser(ctx, "u-1")),
		"client":               second(s.GetClient(ctx, "app")),
		"grant":                second(s.GetGrant(ctx, g.ID)),
		"consent":              second(s.GetConsent(ctx, "u-1", "app")),
	} {
		if err != nil {
			t.Errorf("%s after GarbageCollect: %v, want it kept", what, err)
		}
	}
	keys, err := s.ListSigningKeys(ctx)
	mustOK(t, "ListSigningKeys", err)
	if ids := keyIDs(keys); len(ids) != 3 {
		t.Errorf("signing keys after GarbageCollect: %v, want key-active, key-expiring-now, key-live", ids)
	}
	failures, err := s.CountFailures(ctx, "u-1", time.Time{})
	mustOK(t, "CountFailures", err)
	if failures != 1 {
		t.Errorf("CountFailures after GarbageCollect = %d, want 1 (attempts are kept)", failures)
	}

	n, err = s.GarbageCollect(ctx, now, store.Retention{})
	mustOK(t, "GarbageCollect again", err)
	if n != 0 {
		t.Errorf("GarbageCollect again removed %d records, want 0", n)
	}
}

func testNotFound(t *testing.T, s store.Storage) {
	ctx := t.Context()
	// One of everything exists, under other keys, so a backend cannot pass by luck.
	mustOK(t, "CreateUserWithTemplate", s.CreateUserWithTemplate(ctx, newUser("u-1", "alice"), newTemplate("u-1")))
	mustOK(t, "CreateClient", s.CreateClient(ctx, newClient("app")))
	mustOK(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, newAuthRequest("req-1", "app")))
	mustOK(t, "CreateAuthCode", s.CreateAuthCode(ctx, newAuthCode("code-1", "req-1")))
	g := newGrant("grant-1", "app", "u-1")
	mustOK(t, "CreateGrant", s.CreateGrant(ctx, g))
	mustOK(t, "CreateAccessToken", s.CreateAccessToken(ctx, newAccessToken("at-1", g)))
	mustOK(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, newRefreshToken("rt-1", g)))
	mustOK(t, "CreateSession", s.CreateSession(ctx, newSession("sess-1", "u-1")))
	mustOK(t, "PutConsent", s.PutConsent(ctx, store.Consent{UserID: "u-1", ClientID: "app", GrantedAt: at(0)}))
	mustOK(t, "CreateSigningKey", s.CreateSigningKey(ctx, newSigningKey("key-1", "RS256", at(0))))

	now := at(time.Minute)
	cases := []struct {
		name string
		call func() error
	}{
		{"GetUser", func() error { return second(s.GetUser(ctx, "missing")) }},
		{"GetUserByUsername", func() error { return second(s.GetUserByUsername(ctx, "missing")) }},
		{"UpdateUser", func() error { return s.UpdateUser(ctx, newUser("missing", "missing")) }},
		{"DeleteUser", func() error { return s.DeleteUser(ctx, "missing") }},
		{"PutTemplate", func() error { return s.PutTemplate(ctx, newTemplate("missing")) }},
		{"GetTemplate", func() error { return second(s.GetTemplate(ctx, "missing")) }},
		{"DeleteTemplate", func() error { return s.DeleteTemplate(ctx, "missing") }},
		{"GetClient", func() error { return second(s.GetClient(ctx, "missing")) }},
		{"UpdateClient", func() error { return s.UpdateClient(ctx, newClient("missing")) }},
		{"DeleteClient", func() error { return s.DeleteClient(ctx, "missing") }},
		{"GetAuthRequest", func() error { return second(s.GetAuthRequest(ctx, "missing")) }},
		{"UpdateAuthRequest", func() error { return s.UpdateAuthRequest(ctx, newAuthRequest("missing", "app")) }},
		{"DeleteAuthRequest", func() error { return s.DeleteAuthRequest(ctx, "missing") }},
		{"GetAuthCode", func() error { return second(s.GetAuthCode(ctx, "missing")) }},
		{"UseAuthCode", func() error { return second(s.UseAuthCode(ctx, "missing", "grant-1", now)) }},
		{"GetGrant", func() error { return second(s.GetGrant(ctx, "missing")) }},
		{"RevokeGrant", func() error { return s.RevokeGrant(ctx, "missing", now) }},
		{"GetAccessToken", func() error { return second(s.GetAccessToken(ctx, "missing")) }},
		{"RevokeAccessToken", func() error { return s.RevokeAccessToken(ctx, "missing", now) }},
		{"GetRefreshToken", func() error { return second(s.GetRefreshToken(ctx, "missing")) }},
		{"RotateRefreshToken", func() error { return second(s.RotateRefreshToken(ctx, "missing", newRefreshToken("rt-2", g), now)) }},
		{"RevokeRefreshToken", func() error { return s.RevokeRefreshToken(ctx, "missing", now) }},
		{"GetSession", func() error { return second(s.GetSession(ctx, "missing")) }},
		{"RevokeSession", func() error { return s.RevokeSession(ctx, "missing", now) }},
		{"GetConsent (user)", func() error { return second(s.GetConsent(ctx, "missing", "app")) }},
		{"GetConsent (client)", func() error { return second(s.GetConsent(ctx, "u-1", "missing")) }},
		{"RetireSigningKey", func() error { return s.RetireSigningKey(ctx, "missing", now, now) }},
		{"DeleteSigningKey", func() error { return s.DeleteSigningKey(ctx, "missing") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, c.name, c.call(), store.ErrNotFound)
		})
	}
}

func testAlreadyExists(t *testing.T, s store.Storage) {
	ctx := t.Context()
	g := newGrant("grant-1", "app", "u-1")
	cases := []struct {
		name   string
		create func() error
	}{
		{"CreateUser", func() error { return s.CreateUser(ctx, newUser("u-1", "alice")) }},
		{"CreateUserWithTemplate", func() error { return s.CreateUserWithTemplate(ctx, newUser("u-2", "bob"), newTemplate("u-2")) }},
		{"CreateClient", func() error { return s.CreateClient(ctx, newClient("app")) }},
		{"CreateAuthRequest", func() error { return s.CreateAuthRequest(ctx, newAuthRequest("req-1", "app")) }},
		{"CreateAuthCode", func() error { return s.CreateAuthCode(ctx, newAuthCode("code-1", "req-1")) }},
		{"CreateGrant", func() error { return s.CreateGrant(ctx, g) }},
		{"CreateAccessToken", func() error { return s.CreateAccessToken(ctx, newAccessToken("at-1", g)) }},
		{"CreateRefreshToken", func() error { return s.CreateRefreshToken(ctx, newRefreshToken("rt-1", g)) }},
		{"CreateSession", func() error { return s.CreateSession(ctx, newSession("sess-1", "u-1")) }},
		{"CreateSigningKey", func() error { return s.CreateSigningKey(ctx, newSigningKey("key-1", "RS256", at(0))) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mustOK(t, c.name, c.create())
			wantErr(t, c.name+" again", c.create(), store.ErrAlreadyExists)
		})
	}
}

func testTimePrecision(t *testing.T, s store.Storage) {
	ctx := t.Context()
	nyc := time.FixedZone("UTC-05:00", -5*3600)
	cases := []struct {
		name string
		in   time.Time
		want time.Time // what must come back, in UTC
	}{
		{"nanoseconds are truncated to microseconds", time.Date(2026, 1, 2, 3, 4, 5, 123456789, nyc), time.Date(2026, 1, 2, 8, 4, 5, 123456000, time.UTC)},
		{"milliseconds survive", time.Date(2026, 1, 2, 3, 4, 5, 7000000, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 7000000, time.UTC)},
		{"one microsecond survives", time.Date(2026, 1, 2, 3, 4, 5, 1000, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 1000, time.UTC)},
		{"before 1970", time.Date(1969, 12, 31, 23, 59, 59, 999999500, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{"the Unix epoch", time.Unix(0, 0), time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"far future", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{"zero time", time.Time{}, time.Time{}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Plain times (Session.AuthTime) and nullable ones (Session.RevokedAt).
			x := newSession(fmt.Sprintf("sess-%d", i), "u-1")
			x.AuthTime, x.RevokedAt = c.in, &c.in
			mustOK(t, "CreateSession", s.CreateSession(ctx, x))
			got, err := s.GetSession(ctx, x.ID)
			mustOK(t, "GetSession", err)
			for what, v := range map[string]*time.Time{"time": &got.AuthTime, "nullable time": got.RevokedAt} {
				if v == nil {
					t.Errorf("%s: read back nil", what)
					continue
				}
				if !v.Equal(c.want) || v.Nanosecond() != c.want.Nanosecond() || v.Location() != time.UTC {
					t.Errorf("%s: wrote %s, read back %s (location %q); want %s in UTC",
						what, c.in.Format(time.RFC3339Nano), v.Format(time.RFC3339Nano), v.Location(), c.want.Format(time.RFC3339Nano))
				}
			}
			if c.in.IsZero() && !got.AuthTime.IsZero() {
				t.Errorf("zero time read back as %s, want IsZero", got.AuthTime)
			}
		})
	}
}

func testRoundTripValues(t *testing.T, s store.Storage) {
	ctx := t.Context()
	tricky := []string{"", "a,b", `q"uote`, `back\slash`, "{brace}", "[\"json\"]", "NULL", "null", " spaced ", "new\nline", "ünïcødé 🙂", "'single'"}
	sliceCases := []struct {
		name string
		v    []string
	}{
		{"nil", nil},
		{"empty", []string{}},
		{"one empty string", []string{""}},
		{"tricky strings", tricky},
		{"order and duplicates kept", []string{"b", "a", "b", "c"}},
	}
	for i, c := range sliceCases {
		t.Run("slice "+c.name, func(t *testing.T) {
			g := newGrant(fmt.Sprintf("grant-%d", i), "app", "u-1")
			g.Scopes, g.Audience, g.AMR = c.v, c.v, c.v
			mustOK(t, "CreateGrant", s.CreateGrant(ctx, g))
			got, err := s.GetGrant(ctx, g.ID)
			mustOK(t, "GetGrant", err)
			checkEqual(t, "GetGrant", g, got)

			r := newAuthRequest(fmt.Sprintf("req-%d", i), "app")
			r.Scopes, r.Prompt, r.ACRValues, r.UILocales, r.AMR = c.v, c.v, c.v, c.v, c.v
			mustOK(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r))
			gotR, err := s.GetAuthRequest(ctx, r.ID)
			mustOK(t, "GetAuthRequest", err)
			checkEqual(t, "GetAuthRequest", r, gotR)

			cl := newClient(fmt.Sprintf("client-%d", i))
			cl.RedirectURIs, cl.PostLogoutRedirectURIs = c.v, c.v
			mustOK(t, "CreateClient", s.CreateClient(ctx, cl))
			gotC, err := s.GetClient(ctx, cl.ID)
			mustOK(t, "GetClient", err)
			checkEqual(t, "GetClient", cl, gotC)
		})
	}

	for i, d := range []time.Duration{0, 1, time.Microsecond + 1, 90 * 24 * time.Hour, math.MaxInt64, -time.Second} {
		t.Run(fmt.Sprintf("duration %d", int64(d)), func(t *testing.T) {
			cl := newClient(fmt.Sprintf("ttl-%d", i))
			cl.AccessTokenTTL, cl.RefreshTokenTTL = d, d
			mustOK(t, "CreateClient", s.CreateClient(ctx, cl))
			got, err := s.GetClient(ctx, cl.ID)
			mustOK(t, "GetClient", err)
			checkEqual(t, "GetClient", cl, got)

			r := newAuthRequest(fmt.Sprintf("req-ttl-%d", i), "app")
			r.MaxAge = &d
			mustOK(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r))
			gotR, err := s.GetAuthRequest(ctx, r.ID)
			mustOK(t, "GetAuthRequest", err)
			checkEqual(t, "GetAuthRequest", r, gotR)
		})
	}

	t.Run("booleans and strings", func(t *testing.T) {
		for i, b := range []bool{false, true} {
			u := newUser(fmt.Sprintf("u-bool-%d", i), fmt.Sprintf("bool-%d", i))
			u.EmailVerified, u.Admin, u.DisplayName = b, b, tricky[i+9]
			mustOK(t, "CreateUser", s.CreateUser(ctx, u))
			got, err := s.GetUser(ctx, u.ID)
			mustOK(t, "GetUser", err)
			checkEqual(t, "GetUser", u, got)

			cl := newClient(fmt.Sprintf("bool-%d", i))
			cl.Public, cl.FirstParty, cl.ClaimsInIDToken = b, b, b
			mustOK(t, "CreateClient", s.CreateClient(ctx, cl))
			gotC, err := s.GetClient(ctx, cl.ID)
			mustOK(t, "GetClient", err)
			checkEqual(t, "GetClient", cl, gotC)
		}
	})
}

// racers is how many goroutines race for one single-use value.
const racers = 20

func testConcurrentUseAuthCode(t *testing.T, s store.Storage) {
	ctx := t.Context()
	mustOK(t, "CreateAuthCode", s.CreateAuthCode(ctx, newAuthCode("code-1", "req-1")))

	type result struct {
		grant string
		code  store.AuthCode
		err   error
	}
	results := make([]result, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			grant := fmt.Sprintf("grant-%d", i)
			c, err := s.UseAuthCode(ctx, "code-1", grant, at(time.Duration(i)*time.Millisecond))
			results[i] = result{grant, c, err}
		})
	}
	close(start)
	wg.Wait()

	winner := ""
	for _, r := range results {
		switch {
		case r.err == nil:
			if winner != "" {
				t.Errorf("UseAuthCode succeeded twice: %s and %s", winner, r.grant)
			}
			winner = r.grant
		case !errors.Is(r.err, store.ErrAlreadyUsed):
			t.Errorf("UseAuthCode (%s): %v, want success or ErrAlreadyUsed", r.grant, r.err)
		}
	}
	if winner == "" {
		t.Fatalf("UseAuthCode: no goroutine won")
	}
	for _, r := range results {
		if r.code.GrantID != winner || r.code.UsedAt == nil {
			t.Errorf("UseAuthCode (%s) returned GrantID %q, UsedAt %v; want the winner's %q", r.grant, r.code.GrantID, r.code.UsedAt, winner)
		}
	}
	got, err := s.GetAuthCode(ctx, "code-1")
	mustOK(t, "GetAuthCode", err)
	if got.GrantID != winner {
		t.Errorf("stored GrantID %q, want the winner's %q", got.GrantID, winner)
	}
}

func testConcurrentRotateRefreshToken(t *testing.T, s store.Storage) {
	ctx := t.Context()
	g := newGrant("grant-1", "app", "u-1")
	mustOK(t, "CreateGrant", s.CreateGrant(ctx, g))
	mustOK(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, newRefreshToken("rt-0", g)))

	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			next := newRefreshToken(fmt.Sprintf("rt-next-%d", i), g)
			old, err := s.RotateRefreshToken(ctx, "rt-0", next, at(time.Duration(i)*time.Millisecond))
			if err == nil && old.UsedAt == nil {
				err = errors.New("the old token came back without UsedAt")
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()

	wins, stored := 0, 0
	for i, err := range errs {
		if err == nil {
			wins++
		} else if !errors.Is(err, store.ErrAlreadyUsed) {
			t.Errorf("RotateRefreshToken %d: %v, want success or ErrAlreadyUsed", i, err)
		}
		_, getErr := s.GetRefreshToken(ctx, fmt.Sprintf("rt-next-%d", i))
		switch {
		case getErr == nil:
			stored++
			if err != nil {
				t.Errorf("rotation %d failed (%v) but its token was stored", i, err)
			}
		case !errors.Is(getErr, store.ErrNotFound):
			t.Errorf("GetRefreshToken rt-next-%d: %v", i, getErr)
		}
	}
	if wins != 1 || stored != 1 {
		t.Errorf("%d rotations of one token: %d succeeded and %d new tokens were stored; want exactly 1 and 1", racers, wins, stored)
	}
}

// testConcurrentRevokeGrant races RevokeGrant against token creation and rotation in the same
// grant (a code replay revoking what the first exchange is still issuing): afterwards every
// token of the grant must be revoked, whichever finished first.
func testConcurrentRevokeGrant(t *testing.T, s store.Storage) {
	ctx := t.Context()
	for round := range 10 {
		g := newGrant(fmt.Sprint("grant-", round), "app", "u-1")
		mustOK(t, "CreateGrant", s.CreateGrant(ctx, g))
		mustOK(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, newRefreshToken(fmt.Sprintf("rt-%d", round), g)))
		const creators = 4
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			<-start
			if err := s.RevokeGrant(ctx, g.ID, at(time.Minute)); err != nil {
				t.Errorf("RevokeGrant: %v", err)
			}
		})
		for i := range creators {
			wg.Go(func() {
				<-start
				if err := s.CreateAccessToken(ctx, newAccessToken(fmt.Sprintf("at-%d-%d", round, i), g)); err != nil {
					t.Errorf("CreateAccessToken: %v", err)
				}
			})
		}
		wg.Go(func() {
			<-start
			if _, err := s.RotateRefreshToken(ctx, fmt.Sprintf("rt-%d", round), newRefreshToken(fmt.Sprintf("rt-%d-next", round), g), at(time.Second)); err != nil {
				t.Errorf("RotateRefreshToken: %v", err)
			}
		})
		close(start)
		wg.Wait()

		for i := range creators {
			a, err := s.GetAccessToken(ctx, fmt.Sprintf("at-%d-%d", round, i))
			mustOK(t, "GetAccessToken", err)
			if a.RevokedAt == nil {
				t.Errorf("round %d: access token %s escaped the revocation of its grant", round, a.ID)
			}
		}
		for _, h := range []string{fmt.Sprintf("rt-%d", round), fmt.Sprintf("rt-%d-next", round)} {
			r, err := s.GetRefreshToken(ctx, h)
			mustOK(t, "GetRefreshToken", err)
			if r.RevokedAt == nil {
				t.Errorf("round %d: refresh token %s escaped the revocation of its grant", round, h)
			}
		}
	}
}

// testRetention: GarbageCollect removes attempts, audit events and token-less grants older than
// the retention, and nothing younger; a grant that still has a token is kept however old.
func testRetention(t *testing.T, s store.Storage) {
	ctx := t.Context()
	now := at(0)
	keep := store.Retention{Attempts: 90 * 24 * time.Hour, Audit: 365 * 24 * time.Hour, Grants: 24 * time.Hour}
	mustOK(t, "CreateUser", s.CreateUser(ctx, newUser("u-1", "alice")))
	mustOK(t, "CreateClient", s.CreateClient(ctx, newClient("app")))
	mustOK(t, "RecordAttempt old", s.RecordAttempt(ctx, store.Attempt{UserID: "u-1", IP: "192.0.2.1", At: now.Add(-91 * 24 * time.Hour)}))
	mustOK(t, "RecordAttempt recent", s.RecordAttempt(ctx, store.Attempt{UserID: "u-1", IP: "192.0.2.1", At: now.Add(-89 * 24 * time.Hour)}))
	risk, hasRisk := s.(store.RiskStorage)
	if hasRisk {
		for _, age := range []time.Duration{366 * 24 * time.Hour, 364 * 24 * time.Hour} {
			mustOK(t, "AppendAudit", risk.AppendAudit(ctx, store.AuditEvent{At: now.Add(-age), UserID: "u-1", ClientID: "app", IP: "192.0.2.1", Method: "PASSIVE", Outcome: "approved"}))
		}
	}
	oldBare := newGrant("grant-old-bare", "app", "u-1")
	oldBare.CreatedAt = now.Add(-25 * time.Hour)
	newBare := newGrant("grant-new-bare", "app", "u-1")
	newBare.CreatedAt = now.Add(-23 * time.Hour)
	oldLive := newGrant("grant-old-live", "app", "u-1")
	oldLive.CreatedAt = now.Add(-1000 * time.Hour)
	for _, g := range []store.Grant{oldBare, newBare, oldLive} {
		mustOK(t, "CreateGrant", s.CreateGrant(ctx, g))
	}
	rt := newRefreshToken("rt-live", oldLive)
	rt.ExpiresAt = now.Add(time.Hour)
	mustOK(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))

	_, err := s.GarbageCollect(ctx, now, keep)
	mustOK(t, "GarbageCollect", err)
	failures, err := s.CountFailures(ctx, "u-1", time.Time{})
	mustOK(t, "CountFailures", err)
	if failures != 1 {
		t.Errorf("attempts after GarbageCollect: %d failures, want 1 (the one younger than 90 days)", failures)
	}
	if hasRisk {
		evs, err := risk.ListAudit(ctx, "u-1", 10)
		mustOK(t, "ListAudit", err)
		if len(evs) != 1 {
			t.Errorf("audit after GarbageCollect: %d events, want 1 (the one younger than 365 days)", len(evs))
		}
	}
	for id, want := range map[string]bool{oldBare.ID: false, newBare.ID: true, oldLive.ID: true} {
		_, err := s.GetGrant(ctx, id)
		if want && err != nil {
			t.Errorf("grant %s: %v, want it kept", id, err)
		}
		if !want && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("grant %s: %v, want it removed", id, err)
		}
	}
}
