package storetest

import (
	"testing"
	"time"

	"github.com/visage-idp/visage/store"
)

func testClients(t *testing.T, s store.Storage) {
	ctx := t.Context()
	public := store.Client{
		ID:           "public-spa",
		Name:         "SPA",
		RedirectURIs: []string{"http://localhost:5173/callback"},
		Public:       true,
		AuthMethod:   "none",
		CreatedAt:    at(0),
	}
	confidential := newClient("confidential")
	withKeys := newClient("b-jwt")
	withKeys.AuthMethod = "private_key_jwt"
	withKeys.SecretHash = ""
	withKeys.JWKS = []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)
	for _, c := range []store.Client{public, confidential, withKeys} {
		mustOK(t, "CreateClient "+c.ID, s.CreateClient(ctx, c))
		got, err := s.GetClient(ctx, c.ID)
		mustOK(t, "GetClient "+c.ID, err)
		checkEqual(t, "GetClient "+c.ID, c, got)
	}
	wantErr(t, "CreateClient with an existing ID", s.CreateClient(ctx, newClient("confidential")), store.ErrAlreadyExists)

	list, err := s.ListClients(ctx)
	mustOK(t, "ListClients", err)
	wantOrder := []store.Client{withKeys, confidential, public}
	if len(list) != len(wantOrder) {
		t.Fatalf("ListClients: %d clients, want %d", len(list), len(wantOrder))
	}
	for i := range wantOrder {
		checkEqual(t, "ListClients (ordered by ID)", wantOrder[i], list[i])
	}

	changed := confidential
	changed.Name = "Renamed"
	changed.SecretHash = "$argon2id$new"
	changed.RedirectURIs = []string{"https://new.example/cb"}
	changed.PostLogoutRedirectURIs = nil
	changed.JWKS = nil
	changed.FirstParty = false
	changed.IDTokenSigningAlg = "RS256"
	changed.AccessTokenTTL = time.Nanosecond
	changed.RefreshTokenTTL = 0
	changed.WebOrigins = []string{"https://spa.example"}
	changed.JWKSURI = ""
	changed.ResourceServerFor = nil
	mustOK(t, "UpdateClient", s.UpdateClient(ctx, changed))
	got, err := s.GetClient(ctx, changed.ID)
	mustOK(t, "GetClient after UpdateClient", err)
	checkEqual(t, "GetClient after UpdateClient", changed, got)
	wantErr(t, "UpdateClient of a missing client", s.UpdateClient(ctx, newClient("missing")), store.ErrNotFound)
	_, err = s.GetClient(ctx, "missing")
	wantErr(t, "GetClient after updating a missing client", err, store.ErrNotFound)

	mustOK(t, "DeleteClient", s.DeleteClient(ctx, public.ID))
	_, err = s.GetClient(ctx, public.ID)
	wantErr(t, "GetClient after DeleteClient", err, store.ErrNotFound)
	wantErr(t, "DeleteClient twice", s.DeleteClient(ctx, public.ID), store.ErrNotFound)
	list, err = s.ListClients(ctx)
	mustOK(t, "ListClients after DeleteClient", err)
	if len(list) != 2 {
		t.Errorf("ListClients after DeleteClient: %d clients, want 2", len(list))
	}
}

func testAuthRequests(t *testing.T, s store.Storage) {
	ctx := t.Context()
	// MaxAge: absent, zero (max_age=0 forces a fresh login) and a value must stay distinct.
	cases := []struct {
		name   string
		maxAge *time.Duration
	}{
		{"no max_age", nil},
		{"max_age=0", ptr(time.Duration(0))},
		{"max_age=3600", ptr(time.Hour)},
		{"max_age with nanoseconds", ptr(90*time.Second + 7)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newAuthRequest("req-"+c.name, "app")
			r.MaxAge = c.maxAge
			mustOK(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r))
			got, err := s.GetAuthRequest(ctx, r.ID)
			mustOK(t, "GetAuthRequest", err)
			checkEqual(t, "GetAuthRequest", r, got)
			if !got.AuthTime.IsZero() || got.UserID != "" || got.Done {
				t.Errorf("a fresh request read back as authenticated: %+v", got)
			}
		})
	}

	minimal := store.AuthRequest{ID: "req-minimal", ClientID: "app", ResponseType: "code", CreatedAt: at(0), ExpiresAt: at(time.Minute)}
	mustOK(t, "CreateAuthRequest minimal", s.CreateAuthRequest(ctx, minimal))
	got, err := s.GetAuthRequest(ctx, minimal.ID)
	mustOK(t, "GetAuthRequest minimal", err)
	checkEqual(t, "GetAuthRequest minimal", minimal, got)

	r := newAuthRequest("req-1", "app")
	mustOK(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r))
	wantErr(t, "CreateAuthRequest with an existing ID", s.CreateAuthRequest(ctx, r), store.ErrAlreadyExists)

	// The login completes: every field may change but the ID.
	done := r
	done.UserID = "u-1"
	done.SessionID = "sess-1"
	done.AuthTime = at(30 * time.Second)
	done.AMR = []string{"face", "liveness"}
	done.ACR = "urn:visage:face+liveness"
	done.Done = true
	done.Scopes = []string{"openid"}
	done.MaxAge = nil
	done.Prompt = nil
	done.ExpiresAt = at(20 * time.Minute)
	mustOK(t, "UpdateAuthRequest", s.UpdateAuthRequest(ctx, done))
	got, err = s.GetAuthRequest(ctx, r.ID)
	mustOK(t, "GetAuthRequest after UpdateAuthRequest", err)
	checkEqual(t, "GetAuthRequest after UpdateAuthRequest", done, got)
	wantErr(t, "UpdateAuthRequest of a missing request", s.UpdateAuthRequest(ctx, newAuthRequest("req-404", "app")), store.ErrNotFound)
	_, err = s.GetAuthRequest(ctx, "req-404")
	wantErr(t, "GetAuthRequest after updating a missing request", err, store.ErrNotFound)

	mustOK(t, "DeleteAuthRequest", s.DeleteAuthRequest(ctx, r.ID))
	_, err = s.GetAuthRequest(ctx, r.ID)
	wantErr(t, "GetAuthRequest after DeleteAuthRequest", err, store.ErrNotFound)
	wantErr(t, "DeleteAuthRequest twice", s.DeleteAuthRequest(ctx, r.ID), store.ErrNotFound)
}

func testAuthCodes(t *testing.T, s store.Storage) {
	ctx := t.Context()
	mustOK(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, newAuthRequest("req-1", "app")))
	code := newAuthCode("hash-1", "req-1")
	mustOK(t, "CreateAuthCode", s.CreateAuthCode(ctx, code))
	wantErr(t, "CreateAuthCode with an existing hash", s.CreateAuthCode(ctx, newAuthCode("hash-1", "req-2")), store.ErrAlreadyExists)

	got, err := s.GetAuthCode(ctx, "hash-1")
	mustOK(t, "GetAuthCode", err)
	checkEqual(t, "GetAuthCode", code, got)

	_, err = s.UseAuthCode(ctx, "hash-404", "grant-x", at(time.Second))
	wantErr(t, "UseAuthCode of a missing code", err, store.ErrNotFound)

	usedAt := at(10 * time.Second)
	used := code
	used.GrantID, used.UsedAt = "grant-1", &usedAt
	got, err = s.UseAuthCode(ctx, "hash-1", "grant-1", usedAt)
	mustOK(t, "UseAuthCode", err)
	checkEqual(t, "UseAuthCode result", used, got)
	got, err = s.GetAuthCode(ctx, "hash-1")
	mustOK(t, "GetAuthCode after UseAuthCode", err)
	checkEqual(t, "GetAuthCode after UseAuthCode", used, got)

	// Replay: the stored code comes back, with the first exchange's grant, and nothing changes.
	got, err = s.UseAuthCode(ctx, "hash-1", "grant-2", at(20*time.Second))
	wantErr(t, "UseAuthCode a second time", err, store.ErrAlreadyUsed)
	checkEqual(t, "UseAuthCode replay result", used, got)
	got, err = s.GetAuthCode(ctx, "hash-1")
	mustOK(t, "GetAuthCode after the replay", err)
	checkEqual(t, "GetAuthCode after the replay", used, got)

	// Codes are independent.
	other := newAuthCode("hash-2", "req-1")
	mustOK(t, "CreateAuthCode hash-2", s.CreateAuthCode(ctx, other))
	_, err = s.UseAuthCode(ctx, "hash-2", "grant-3", usedAt)
	mustOK(t, "UseAuthCode hash-2", err)
}

func testGrantsAndTokens(t *testing.T, s store.Storage) {
	ctx := t.Context()
	g := newGrant("grant-1", "app", "u-1")
	mustOK(t, "CreateGrant", s.CreateGrant(ctx, g))
	got, err := s.GetGrant(ctx, g.ID)
	mustOK(t, "GetGrant", err)
	checkEqual(t, "GetGrant", g, got)
	wantErr(t, "CreateGrant with an existing ID", s.CreateGrant(ctx, newGrant("grant-1", "other", "u-2")), store.ErrAlreadyExists)

	// A grant stored already revoked reads back so.
	gr := newGrant("grant-2", "app", "u-1")
	gr.RevokedAt = ptr(at(-time.Second))
	mustOK(t, "CreateGrant revoked", s.CreateGrant(ctx, gr))
	got, err = s.GetGrant(ctx, gr.ID)
	mustOK(t, "GetGrant revoked", err)
	checkEqual(t, "GetGrant revoked", gr, got)

	at1 := newAccessToken("at-1", g)
	mustOK(t, "CreateAccessToken", s.CreateAccessToken(ctx, at1))
	gotAT, err := s.GetAccessToken(ctx, at1.ID)
	mustOK(t, "GetAccessToken", err)
	checkEqual(t, "GetAccessToken", at1, gotAT)
	wantErr(t, "CreateAccessToken with an existing ID", s.CreateAccessToken(ctx, at1), store.ErrAlreadyExists)

	revokedAt := at(time.Minute)
	mustOK(t, "RevokeAccessToken", s.RevokeAccessToken(ctx, at1.ID, revokedAt))
	at1.RevokedAt = &revokedAt
	gotAT, err = s.GetAccessToken(ctx, at1.ID)
	mustOK(t, "GetAccessToken after RevokeAccessToken", err)
	checkEqual(t, "GetAccessToken after RevokeAccessToken", at1, gotAT)
	mustOK(t, "RevokeAccessToken twice", s.RevokeAccessToken(ctx, at1.ID, at(time.Hour)))
	gotAT, err = s.GetAccessToken(ctx, at1.ID)
	mustOK(t, "GetAccessToken after the second revocation", err)
	checkEqual(t, "GetAccessToken after the second revocation (first time kept)", at1, gotAT)

	rt := newRefreshToken("rt-1", g)
	mustOK(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, rt))
	gotRT, err := s.GetRefreshToken(ctx, rt.TokenHash)
	mustOK(t, "GetRefreshToken", err)
	checkEqual(t, "GetRefreshToken", rt, gotRT)
	wantErr(t, "CreateRefreshToken with an existing hash", s.CreateRefreshToken(ctx, rt), store.ErrAlreadyExists)

	mustOK(t, "RevokeRefreshToken", s.RevokeRefreshToken(ctx, rt.TokenHash, revokedAt))
	rt.RevokedAt = &revokedAt
	mustOK(t, "RevokeRefreshToken twice", s.RevokeRefreshToken(ctx, rt.TokenHash, at(time.Hour)))
	gotRT, err = s.GetRefreshToken(ctx, rt.TokenHash)
	mustOK(t, "GetRefreshToken after RevokeRefreshToken", err)
	checkEqual(t, "GetRefreshToken after RevokeRefreshToken (first time kept)", rt, gotRT)

	// Revoking one token leaves the grant alone.
	got, err = s.GetGrant(ctx, g.ID)
	mustOK(t, "GetGrant after token revocations", err)
	checkEqual(t, "GetGrant after token revocations", g, got)
}

func testListSessionGrants(t *testing.T, s store.Storage) {
	ctx := t.Context()
	list, err := s.ListSessionGrants(ctx, "no-such-session")
	mustOK(t, "ListSessionGrants of an unknown session", err)
	if len(list) != 0 {
		t.Fatalf("ListSessionGrants of an unknown session: %d grants", len(list))
	}
	later := newGrant("g-later", "app-b", "u-1")
	later.SessionID, later.CreatedAt = "sess-1", at(time.Minute)
	earlier := newGrant("g-earlier", "app-a", "u-1")
	earlier.SessionID, earlier.RevokedAt = "sess-1", ptr(at(2*time.Minute))
	other := newGrant("g-other", "app-a", "u-1")
	other.SessionID = "sess-2"
	for _, g := range []store.Grant{later, earlier, other} {
		mustOK(t, "CreateGrant "+g.ID, s.CreateGrant(ctx, g))
	}
	list, err = s.ListSessionGrants(ctx, "sess-1")
	mustOK(t, "ListSessionGrants", err)
	want := []store.Grant{earlier, later}
	if len(list) != len(want) {
		t.Fatalf("ListSessionGrants: %d grants, want %d", len(list), len(want))
	}
	for i := range want {
		checkEqual(t, "ListSessionGrants (oldest first, revoked included)", want[i], list[i])
	}
}

func testRevokeGrant(t *testing.T, s store.Storage) {
	ctx := t.Context()
	g, other := newGrant("grant-1", "app", "u-1"), newGrant("grant-2", "app", "u-1")
	mustOK(t, "CreateGrant", s.CreateGrant(ctx, g))
	mustOK(t, "CreateGrant other", s.CreateGrant(ctx, other))

	earlier := at(time.Second)
	access := []store.AccessToken{newAccessToken("at-1", g), newAccessToken("at-2", g), newAccessToken("at-3", g)}
	access[2].RevokedAt = &earlier
	refresh := []store.RefreshToken{newRefreshToken("rt-1", g), newRefreshToken("rt-2", g)}
	for _, a := range access {
		mustOK(t, "CreateAccessToken "+a.ID, s.CreateAccessToken(ctx, a))
	}
	for _, r := range refresh {
		mustOK(t, "CreateRefreshToken "+r.TokenHash, s.CreateRefreshToken(ctx, r))
	}
	_, err := s.RotateRefreshToken(ctx, "rt-1", newRefreshToken("rt-3", g), at(2*time.Second))
	mustOK(t, "RotateRefreshToken", err)
	otherAT, otherRT := newAccessToken("at-other", other), newRefreshToken("rt-other", other)
	mustOK(t, "CreateAccessToken other", s.CreateAccessToken(ctx, otherAT))
	mustOK(t, "CreateRefreshToken other", s.CreateRefreshToken(ctx, otherRT))

	revokedAt := at(time.Minute)
	mustOK(t, "RevokeGrant", s.RevokeGrant(ctx, g.ID, revokedAt))
	wantErr(t, "RevokeGrant of a missing grant", s.RevokeGrant(ctx, "grant-404", revokedAt), store.ErrNotFound)

	gotG, err := s.GetGrant(ctx, g.ID)
	mustOK(t, "GetGrant", err)
	if gotG.RevokedAt == nil || !gotG.RevokedAt.Equal(revokedAt.Truncate(TimePrecision)) {
		t.Errorf("grant RevokedAt = %v, want %v", gotG.RevokedAt, revokedAt)
	}
	for _, a := range access {
		got, err := s.GetAccessToken(ctx, a.ID)
		mustOK(t, "GetAccessToken "+a.ID, err)
		want := revokedAt
		if a.RevokedAt != nil {
			want = *a.RevokedAt // revoked before: the first time stays
		}
		if got.RevokedAt == nil || !got.RevokedAt.Equal(want.Truncate(TimePrecision)) {
			t.Errorf("access token %s RevokedAt = %v, want %v", a.ID, got.RevokedAt, want)
		}
	}
	for _, h := range []string{"rt-1", "rt-2", "rt-3"} {
		got, err := s.GetRefreshToken(ctx, h)
		mustOK(t, "GetRefreshToken "+h, err)
		if got.RevokedAt == nil || !got.RevokedAt.Equal(revokedAt.Truncate(TimePrecision)) {
			t.Errorf("refresh token %s RevokedAt = %v, want %v", h, got.RevokedAt, revokedAt)
		}
	}

	// The other grant and its tokens are untouched.
	gotOther, err := s.GetGrant(ctx, other.ID)
	mustOK(t, "GetGrant other", err)
	checkEqual(t, "other grant", other, gotOther)
	gotAT, err := s.GetAccessToken(ctx, otherAT.ID)
	mustOK(t, "GetAccessToken other", err)
	checkEqual(t, "other grant's access token", otherAT, gotAT)
	gotRT, err := s.GetRefreshToken(ctx, otherRT.TokenHash)
	mustOK(t, "GetRefreshToken other", err)
	checkEqual(t, "other grant's refresh token", otherRT, gotRT)

	// Revoking again keeps the first time.
	mustOK(t, "RevokeGrant twice", s.RevokeGrant(ctx, g.ID, at(time.Hour)))
	gotG, err = s.GetGrant(ctx, g.ID)
	mustOK(t, "GetGrant after the second RevokeGrant", err)
	if gotG.RevokedAt == nil || !gotG.RevokedAt.Equal(revokedAt.Truncate(TimePrecision)) {
		t.Errorf("grant RevokedAt after the second RevokeGrant = %v, want %v", gotG.RevokedAt, revokedAt)
	}

	// Tokens that arrive in the revoked grant later (a code exchange racing a replay's
	// revocation) are born revoked.
	late := newAccessToken("at-late", g)
	mustOK(t, "CreateAccessToken in a revoked grant", s.CreateAccessToken(ctx, late))
	gotAT, err = s.GetAccessToken(ctx, late.ID)
	mustOK(t, "GetAccessToken late", err)
	if gotAT.RevokedAt == nil || !gotAT.RevokedAt.Equal(revokedAt.Truncate(TimePrecision)) {
		t.Errorf("access token created in a revoked grant: RevokedAt = %v, want %v", gotAT.RevokedAt, revokedAt)
	}
	mustOK(t, "CreateRefreshToken in a revoked grant", s.CreateRefreshToken(ctx, newRefreshToken("rt-late", g)))
	_, err = s.RotateRefreshToken(ctx, "rt-2", newRefreshToken("rt-late-2", g), at(2*time.Minute))
	mustOK(t, "RotateRefreshToken in a revoked grant", err)
	for _, h := range []string{"rt-late", "rt-late-2"} {
		got, err := s.GetRefreshToken(ctx, h)
		mustOK(t, "GetRefreshToken "+h, err)
		if got.RevokedAt == nil || !got.RevokedAt.Equal(revokedAt.Truncate(TimePrecision)) {
			t.Errorf("refresh token %s created in a revoked grant: RevokedAt = %v, want %v", h, got.RevokedAt, revokedAt)
		}
	}
}

func testRotateRefreshToken(t *testing.T, s store.Storage) {
	ctx := t.Context()
	g := newGrant("grant-1", "app", "u-1")
	mustOK(t, "CreateGrant", s.CreateGrant(ctx, g))
	old := newRefreshToken("rt-1", g)
	mustOK(t, "CreateRefreshToken", s.CreateRefreshToken(ctx, old))

	_, err := s.RotateRefreshToken(ctx, "rt-404", newRefreshToken("rt-x", g), at(time.Second))
	wantErr(t, "RotateRefreshToken of a missing token", err, store.ErrNotFound)
	_, err = s.GetRefreshToken(ctx, "rt-x")
	wantErr(t, "GetRefreshToken of the token a failed rotation offered", err, store.ErrNotFound)

	// The new hash collides: nothing happens, the old token stays usable.
	other := newRefreshToken("rt-other", g)
	mustOK(t, "CreateRefreshToken other", s.CreateRefreshToken(ctx, other))
	collide := newRefreshToken("rt-other", g)
	collide.Scopes = []string{"changed"}
	_, err = s.RotateRefreshToken(ctx, "rt-1", collide, at(time.Second))
	wantErr(t, "RotateRefreshToken onto an existing hash", err, store.ErrAlreadyExists)
	got, err := s.GetRefreshToken(ctx, "rt-1")
	mustOK(t, "GetRefreshToken after the failed rotation", err)
	checkEqual(t, "old token after the failed rotation", old, got)
	got, err = s.GetRefreshToken(ctx, "rt-other")
	mustOK(t, "GetRefreshToken rt-other", err)
	checkEqual(t, "existing token after the failed rotation", other, got)

	// The new token must stay in the old one's grant.
	otherGrant := newGrant("grant-2", "app", "u-1")
	mustOK(t, "CreateGrant grant-2", s.CreateGrant(ctx, otherGrant))
	if _, err := s.RotateRefreshToken(ctx, "rt-1", newRefreshToken("rt-elsewhere", otherGrant), at(time.Second)); err == nil {
		t.Errorf("RotateRefreshToken into another grant: no error")
	}
	_, err = s.GetRefreshToken(ctx, "rt-elsewhere")
	wantErr(t, "GetRefreshToken of the token offered in another grant", err, store.ErrNotFound)
	got, err = s.GetRefreshToken(ctx, "rt-1")
	mustOK(t, "GetRefreshToken after the rotation into another grant", err)
	checkEqual(t, "old token after the rotation into another grant", old, got)

	usedAt := at(time.Minute)
	next := newRefreshToken("rt-2", g)
	next.CreatedAt, next.ExpiresAt = usedAt, at(31*24*time.Hour)
	got, err = s.RotateRefreshToken(ctx, "rt-1", next, usedAt)
	mustOK(t, "RotateRefreshToken", err)
	used := old
	used.UsedAt = &usedAt
	checkEqual(t, "RotateRefreshToken result (the old token, used)", used, got)
	got, err = s.GetRefreshToken(ctx, "rt-1")
	mustOK(t, "GetRefreshToken old", err)
	checkEqual(t, "old token after rotation", used, got)
	got, err = s.GetRefreshToken(ctx, "rt-2")
	mustOK(t, "GetRefreshToken new", err)
	checkEqual(t, "new token after rotation", next, got)

	// Reuse: ErrAlreadyUsed with the old token, and the offered token is not stored.
	got, err = s.RotateRefreshToken(ctx, "rt-1", newRefreshToken("rt-3", g), at(2*time.Minute))
	wantErr(t, "RotateRefreshToken reusing a used token", err, store.ErrAlreadyUsed)
	checkEqual(t, "RotateRefreshToken reuse result", used, got)
	_, err = s.GetRefreshToken(ctx, "rt-3")
	wantErr(t, "GetRefreshToken of the token offered on reuse", err, store.ErrNotFound)
	got, err = s.GetRefreshToken(ctx, "rt-1")
	mustOK(t, "GetRefreshToken old after reuse", err)
	checkEqual(t, "old token after reuse", used, got)

	// The chain goes on from the new token.
	_, err = s.RotateRefreshToken(ctx, "rt-2", newRefreshToken("rt-4", g), at(3*time.Minute))
	mustOK(t, "RotateRefreshToken of the new token", err)
}

func testSessions(t *testing.T, s store.Storage) {
	ctx := t.Context()
	sessions := []store.Session{newSession("s-1", "u-1"), newSession("s-2", "u-1"), newSession("s-3", "u-1"), newSession("s-other", "u-2")}
	earlier := at(time.Second)
	sessions[2].RevokedAt = &earlier
	for _, x := range sessions {
		mustOK(t, "CreateSession "+x.ID, s.CreateSession(ctx, x))
		got, err := s.GetSession(ctx, x.ID)
		mustOK(t, "GetSession "+x.ID, err)
		checkEqual(t, "GetSession "+x.ID, x, got)
	}
	wantErr(t, "CreateSession with an existing ID", s.CreateSession(ctx, newSession("s-1", "u-9")), store.ErrAlreadyExists)

	revokedAt := at(time.Minute)
	mustOK(t, "RevokeSession", s.RevokeSession(ctx, "s-1", revokedAt))
	mustOK(t, "RevokeSession twice", s.RevokeSession(ctx, "s-1", at(time.Hour)))
	got, err := s.GetSession(ctx, "s-1")
	mustOK(t, "GetSession after RevokeSession", err)
	want := sessions[0]
	want.RevokedAt = &revokedAt
	checkEqual(t, "GetSession after RevokeSession (first time kept)", want, got)
	wantErr(t, "RevokeSession of a missing session", s.RevokeSession(ctx, "s-404", revokedAt), store.ErrNotFound)

	allAt := at(2 * time.Minute)
	n, err := s.RevokeUserSessions(ctx, "u-1", allAt)
	mustOK(t, "RevokeUserSessions", err)
	if n != 1 {
		t.Errorf("RevokeUserSessions = %d, want 1 (s-2; s-1 and s-3 were revoked already)", n)
	}
	for id, want := range map[string]time.Time{"s-1": revokedAt, "s-2": allAt, "s-3": earlier} {
		got, err := s.GetSession(ctx, id)
		mustOK(t, "GetSession "+id, err)
		if got.RevokedAt == nil || !got.RevokedAt.Equal(want.Truncate(TimePrecision)) {
			t.Errorf("session %s RevokedAt = %v, want %v", id, got.RevokedAt, want)
		}
	}
	got, err = s.GetSession(ctx, "s-other")
	mustOK(t, "GetSession s-other", err)
	checkEqual(t, "the other user's session", sessions[3], got)

	n, err = s.RevokeUserSessions(ctx, "u-1", allAt)
	mustOK(t, "RevokeUserSessions again", err)
	if n != 0 {
		t.Errorf("RevokeUserSessions again = %d, want 0", n)
	}
	n, err = s.RevokeUserSessions(ctx, "u-404", allAt)
	mustOK(t, "RevokeUserSessions of an unknown user", err)
	if n != 0 {
		t.Errorf("RevokeUserSessions of an unknown user = %d, want 0", n)
	}
}

func testConsents(t *testing.T, s store.Storage) {
	ctx := t.Context()
	_, err := s.GetConsent(ctx, "u-1", "app")
	wantErr(t, "GetConsent before PutConsent", err, store.ErrNotFound)

	c := store.Consent{UserID: "u-1", ClientID: "app", Scopes: []string{"openid", "profile"}, GrantedAt: at(0)}
	mustOK(t, "PutConsent", s.PutConsent(ctx, c))
	got, err := s.GetConsent(ctx, "u-1", "app")
	mustOK(t, "GetConsent", err)
	checkEqual(t, "GetConsent", c, got)

	other := store.Consent{UserID: "u-1", ClientID: "other-app", Scopes: []string{"openid"}, GrantedAt: at(time.Second)}
	mustOK(t, "PutConsent for another client", s.PutConsent(ctx, other))

	replaced := store.Consent{UserID: "u-1", ClientID: "app", Scopes: []string{"openid", "profile", "email"}, GrantedAt: at(time.Hour)}
	mustOK(t, "PutConsent (replace)", s.PutConsent(ctx, replaced))
	got, err = s.GetConsent(ctx, "u-1", "app")
	mustOK(t, "GetConsent after replace", err)
	checkEqual(t, "GetConsent after replace", replaced, got)
	got, err = s.GetConsent(ctx, "u-1", "other-app")
	mustOK(t, "GetConsent other client", err)
	checkEqual(t, "GetConsent other client", other, got)
	_, err = s.GetConsent(ctx, "u-2", "app")
	wantErr(t, "GetConsent of another user", err, store.ErrNotFound)
}

func testSigningKeys(t *testing.T, s store.Storage) {
	ctx := t.Context()
	keys, err := s.ListSigningKeys(ctx)
	mustOK(t, "ListSigningKeys on empty storage", err)
	if len(keys) != 0 {
		t.Fatalf("ListSigningKeys on empty storage: %d keys", len(keys))
	}

	k1 := newSigningKey("k-1", "RS256", at(-48*time.Hour))
	k2 := newSigningKey("k-2", "ES256", at(-24*time.Hour))
	k3 := newSigningKey("k-3", "RS256", at(-time.Hour))
	k0 := newSigningKey("k-0", "RS256", at(-time.Hour)) // same time as k-3: ID breaks the tie
	for _, k := range []store.SigningKey{k3, k1, k0, k2} {
		mustOK(t, "CreateSigningKey "+k.ID, s.CreateSigningKey(ctx, k))
	}
	wantErr(t, "CreateSigningKey with an existing ID", s.CreateSigningKey(ctx, newSigningKey("k-1", "ES256", at(0))), store.ErrAlreadyExists)

	retiredAt, publishUntil := at(0), at(7*24*time.Hour)
	mustOK(t, "RetireSigningKey", s.RetireSigningKey(ctx, "k-1", retiredAt, publishUntil))
	k1.RetiredAt, k1.PublishUntil = &retiredAt, &publishUntil
	wantErr(t, "RetireSigningKey of a missing key", s.RetireSigningKey(ctx, "k-404", retiredAt, publishUntil), store.ErrNotFound)

	keys, err = s.ListSigningKeys(ctx)
	mustOK(t, "ListSigningKeys", err)
	want := []store.SigningKey{k1, k2, k0, k3}
	if len(keys) != len(want) {
		t.Fatalf("ListSigningKeys: %d keys, want %d", len(keys), len(want))
	}
	for i := range want {
		checkEqual(t, "ListSigningKeys (ordered by CreatedAt, ID)", want[i], keys[i])
	}

	mustOK(t, "DeleteSigningKey", s.DeleteSigningKey(ctx, "k-1"))
	wantErr(t, "DeleteSigningKey twice", s.DeleteSigningKey(ctx, "k-1"), store.ErrNotFound)
	keys, err = s.ListSigningKeys(ctx)
	mustOK(t, "ListSigningKeys after DeleteSigningKey", err)
	if len(keys) != 3 || keys[0].ID != "k-2" {
		t.Errorf("ListSigningKeys after DeleteSigningKey: %v, want k-2, k-0, k-3", keyIDs(keys))
	}
}

func keyIDs(keys []store.SigningKey) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

func testClientAssertions(t *testing.T, s store.Storage) {
	ctx := t.Context()
	mustOK(t, "UseClientAssertion", s.UseClientAssertion(ctx, "app", "jti-1", at(time.Minute)))
	wantErr(t, "UseClientAssertion again", s.UseClientAssertion(ctx, "app", "jti-1", at(time.Minute)), store.ErrAlreadyUsed)
	mustOK(t, "UseClientAssertion of another client, same jti", s.UseClientAssertion(ctx, "other", "jti-1", at(time.Minute)))
	mustOK(t, "UseClientAssertion expiring first", s.UseClientAssertion(ctx, "app", "jti-2", at(-time.Minute)))
	n, err := s.GarbageCollect(ctx, at(0), store.Retention{})
	mustOK(t, "GarbageCollect", err)
	if n != 1 {
		t.Errorf("GarbageCollect removed %d records, want 1 (the expired assertion id)", n)
	}
	mustOK(t, "UseClientAssertion of a collected jti", s.UseClientAssertion(ctx, "app", "jti-2", at(time.Minute)))
	wantErr(t, "UseClientAssertion of a live jti after GarbageCollect", s.UseClientAssertion(ctx, "app", "jti-1", at(time.Minute)), store.ErrAlreadyUsed)
}
