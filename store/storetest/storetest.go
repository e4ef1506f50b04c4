// Package storetest is the conformance suite for store.Storage: every backend runs
// RunConformance from its own tests, so all backends share one definition of the semantics.
//
// Beyond what the comments in package store say, the suite pins down these details:
//
//   - Times are stored in UTC with microsecond precision (TimePrecision): a time read back
//     equals the written time truncated to the microsecond, and its location is time.UTC.
//   - Durations (Client TTLs, AuthRequest.MaxAge) round-trip to the nanosecond, and a nil
//     MaxAge stays distinct from a zero one.
//   - Slices round-trip in order and element by element; nil and empty are equivalent.
//     Byte slices likewise (nil and empty are equivalent).
//   - ListUsers is ordered by username, ListClients by ID, ListSigningKeys by CreatedAt then ID.
//   - Update* replaces every field of the record but its key; it wraps ErrNotFound when the key
//     is absent, and UpdateUser wraps ErrAlreadyExists when the new username is taken.
//   - Delete*, Revoke*, RetireSigningKey, UseAuthCode and RotateRefreshToken wrap ErrNotFound
//     when the key is absent. Revoking again succeeds and keeps the first revocation time.
//     RevokeUserSessions returns how many sessions it newly revoked.
//   - PutTemplate wraps ErrNotFound when the user does not exist, and a template's Sealed blob
//     must not be empty. CreateUserWithTemplate requires t.UserID == u.ID.
//   - A non-empty User.Email is unique compared case-insensitively (ASCII at least): CreateUser,
//     CreateUserWithTemplate and UpdateUser wrap ErrEmailTaken and ErrAlreadyExists on a clash.
//     Any number of users may have no email.
//   - DeleteUser also removes the authorization requests (and their codes) the user signed in to.
//   - A token created in (or rotated into) a revoked grant is stored revoked, with the grant's
//     revocation time, so a token can never escape RevokeGrant by racing it.
//   - RotateRefreshToken returns the old token as stored after the rotation (UsedAt set). The
//     new token must be in the old one's grant. If the new token's hash exists already it wraps
//     ErrAlreadyExists; on any failure nothing is written and the old token stays unused.
//   - CountFailures counts the failures at or after since that no success of the user follows
//     (a success at the same instant as a failure also resets it). Since, like every time, is
//     taken at TimePrecision.
//   - GarbageCollect removes what expired strictly before now (ExpiresAt < now, and retired
//     keys with PublishUntil < now); grants, users, clients, consents and attempts stay.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/visage-idp/visage/store"
)

// TimePrecision is the precision every backend must store times with.
const TimePrecision = time.Microsecond

// RunConformance runs the whole suite. newStorage must return a fresh, empty, migrated storage
// for each call, and close and remove it when the test ends (t.Cleanup).
func RunConformance(t *testing.T, newStorage func(t *testing.T) store.Storage) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Storage)
	}{
		{"Users", testUsers},
		{"UserUpdate", testUserUpdate},
		{"UniqueEmail", testUniqueEmail},
		{"Templates", testTemplates},
		{"CreateUserWithTemplate", testCreateUserWithTemplate},
		{"DeleteUserCascades", testDeleteUserCascades},
		{"Clients", testClients},
		{"AuthRequests", testAuthRequests},
		{"AuthCodes", testAuthCodes},
		{"GrantsAndTokens", testGrantsAndTokens},
		{"RevokeGrant", testRevokeGrant},
		{"ListSessionGrants", testListSessionGrants},
		{"RotateRefreshToken", testRotateRefreshToken},
		{"Sessions", testSessions},
		{"Consents", testConsents},
		{"SigningKeys", testSigningKeys},
		{"CountFailures", testCountFailures},
		{"GarbageCollect", testGarbageCollect},
		{"Retention", testRetention},
		{"ClientAssertions", testClientAssertions},
		{"NotFound", testNotFound},
		{"AlreadyExists", testAlreadyExists},
		{"TimePrecision", testTimePrecision},
		{"RoundTripValues", testRoundTripValues},
		{"ConcurrentUseAuthCode", testConcurrentUseAuthCode},
		{"ConcurrentRotateRefreshToken", testConcurrentRotateRefreshToken},
		{"ConcurrentRevokeGrant", testConcurrentRevokeGrant},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newStorage(t))
		})
	}
}

// base is the suite's reference instant: not UTC, with nanoseconds below TimePrecision, so
// every round trip checks both the conversion to UTC and the truncation.
func base() time.Time {
	return time.Date(2026, time.March, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+05:30", 5*3600+1800))
}

// at returns base plus d.
func at(d time.Duration) time.Time { return base().Add(d) }

func ptr[T any](v T) *T { return &v }

var (
	timeType = reflect.TypeFor[time.Time]()
	byteType = reflect.TypeFor[byte]()
)

// diff compares a stored record with the one read back, field by field, under the suite's
// rules (times truncated to TimePrecision and returned in UTC, nil slices equal empty ones).
func diff(want, got any) []string {
	var out []string
	diffValue("", reflect.ValueOf(want), reflect.ValueOf(got), &out)
	return out
}

func diffValue(path string, w, g reflect.Value, out *[]string) {
	if w.Type() != g.Type() {
		*out = append(*out, fmt.Sprintf("%s: type %s, got %s", path, w.Type(), g.Type()))
		return
	}
	switch {
	case w.Type() == timeType:
		wt := w.Interface().(time.Time).Truncate(TimePrecision)
		gt := g.Interface().(time.Time)
		if !gt.Equal(wt) {
			*out = append(*out, fmt.Sprintf("%s: want %s, got %s", path, wt.UTC().Format(time.RFC3339Nano), gt.Format(time.RFC3339Nano)))
		} else if gt.Location() != time.UTC {
			*out = append(*out, fmt.Sprintf("%s: location %q, want UTC", path, gt.Location()))
		}
	case w.Kind() == reflect.Pointer:
		switch {
		case w.IsNil() && g.IsNil():
		case w.IsNil() || g.IsNil():
			*out = append(*out, fmt.Sprintf("%s: want %s, got %s", path, show(w), show(g)))
		default:
			diffValue(path, w.Elem(), g.Elem(), out)
		}
	case w.Kind() == reflect.Slice && w.Type().Elem() == byteType:
		if !bytes.Equal(w.Bytes(), g.Bytes()) {
			*out = append(*out, fmt.Sprintf("%s: want %d bytes %.32x, got %d bytes %.32x", path, w.Len(), w.Bytes(), g.Len(), g.Bytes()))
		}
	case w.Kind() == reflect.Slice:
		if w.Len() != g.Len() {
			*out = append(*out, fmt.Sprintf("%s: want %#v, got %#v", path, w.Interface(), g.Interface()))
			return
		}
		for i := range w.Len() {
			diffValue(fmt.Sprintf("%s[%d]", path, i), w.Index(i), g.Index(i), out)
		}
	case w.Kind() == reflect.Struct:
		for i := range w.NumField() {
			name := w.Type().Field(i).Name
			if path != "" {
				name = path + "." + name
			}
			diffValue(name, w.Field(i), g.Field(i), out)
		}
	default:
		if !reflect.DeepEqual(w.Interface(), g.Interface()) {
			*out = append(*out, fmt.Sprintf("%s: want %#v, got %#v", path, w.Interface(), g.Interface()))
		}
	}
}

func show(v reflect.Value) string {
	if v.IsNil() {
		return "nil"
	}
	if v.Type().Elem() == timeType {
		return v.Elem().Interface().(time.Time).Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%v", v.Elem().Interface())
}

// checkEqual reports the differences between want (as written) and got (as read back).
func checkEqual[T any](t *testing.T, what string, want, got T) {
	t.Helper()
	if d := diff(want, got); len(d) > 0 {
		t.Errorf("%s: read back differs from what was written:\n  %s", what, strings.Join(d, "\n  "))
	}
}

// mustOK fails the test now if err is not nil.
func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr reports whether err wraps target, and that it is not another sentinel.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want one wrapping %q", what, err, target)
		return
	}
	for _, other := range []error{store.ErrNotFound, store.ErrAlreadyExists, store.ErrAlreadyUsed} {
		if target == store.ErrEmailTaken && other == store.ErrAlreadyExists {
			continue // an email clash is an ErrAlreadyExists too
		}
		if other != target && errors.Is(err, other) {
			t.Errorf("%s: error %v also wraps %q", what, err, other)
		}
	}
}

// Fixtures: every field set, times with nanoseconds, slices with more than one element.

func newUser(id, username string) store.User {
	return store.User{
		ID:            id,
		Username:      username,
		DisplayName:   "Display " + username,
		Email:         username + "@example.org",
		EmailVerified: true,
		Admin:         false,
		CreatedAt:     at(-48 * time.Hour),
		UpdatedAt:     at(-24 * time.Hour),
	}
}

func newTemplate(userID string) store.Template {
	return store.Template{
		UserID:       userID,
		KeyID:        "bio-key-1",
		ModelVersion: "dlib-resnet-v1",
		Sealed:       []byte("sealed\x00template\xff for " + userID),
		CreatedAt:    at(-47 * time.Hour),
	}
}

func newClient(id string) store.Client {
	return store.Client{
		ID:                     id,
		SecretHash:             "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		Name:                   "Client " + id,
		RedirectURIs:           []string{"https://" + id + ".example/cb", "http://127.0.0.1:8080/cb"},
		PostLogoutRedirectURIs: []string{"https://" + id + ".example/bye"},
		Public:                 false,
		AuthMethod:             "client_secret_basic",
		JWKS:                   []byte(`{"keys":[]}`),
		FirstParty:             true,
		IDTokenSigningAlg:      "ES256",
		ClaimsInIDToken:        true,
		AccessTokenTTL:         15*time.Minute + 1,
		RefreshTokenTTL:        30 * 24 * time.Hour,
		CreatedAt:              at(-72 * time.Hour),
		WebOrigins:             []string{"https://" + id + ".example", "http://localhost:5173"},
		JWKSURI:                "https://" + id + ".example/jwks.json",
		ResourceServerFor:      []string{"spa-" + id},
		BackchannelLogoutURI:   "https://" + id + ".example/backchannel-logout",
	}
}

func newAuthRequest(id, clientID string) store.AuthRequest {
	return store.AuthRequest{
		ID:                  id,
		ClientID:            clientID,
		RedirectURI:         "https://" + clientID + ".example/cb",
		State:               "state-" + id,
		Nonce:               "nonce-" + id,
		Scopes:              []string{"openid", "profile", "email", "offline_access"},
		ResponseType:        "code",
		ResponseMode:        "query",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		Prompt:              []string{"login", "consent"},
		MaxAge:              ptr(300 * time.Second),
		LoginHint:           "alice",
		ACRValues:           []string{"urn:visage:face", "urn:visage:face+liveness"},
		UILocales:           []string{"fr-CA", "en"},
		CreatedAt:           at(-time.Minute),
		ExpiresAt:           at(10 * time.Minute),
	}
}

func newAuthCode(hash, requestID string) store.AuthCode {
	return store.AuthCode{
		CodeHash:      hash,
		AuthRequestID: requestID,
		ExpiresAt:     at(time.Minute),
	}
}

func newGrant(id, clientID, userID string) store.Grant {
	return store.Grant{
		ID:        id,
		ClientID:  clientID,
		UserID:    userID,
		SessionID: "sess-" + userID,
		Scopes:    []string{"openid", "profile", "offline_access"},
		Audience:  []string{clientID, "https://api.example"},
		AuthTime:  at(-2 * time.Minute),
		AMR:       []string{"face", "liveness"},
		ACR:       "urn:visage:face+liveness",
		CreatedAt: at(-time.Minute),
	}
}

func newAccessToken(id string, g store.Grant) store.AccessToken {
	return store.AccessToken{
		ID:        id,
		GrantID:   g.ID,
		ClientID:  g.ClientID,
		UserID:    g.UserID,
		Scopes:    g.Scopes,
		Audience:  g.Audience,
		CreatedAt: at(0),
		ExpiresAt: at(15 * time.Minute),
	}
}

func newRefreshToken(hash string, g store.Grant) store.RefreshToken {
	return store.RefreshToken{
		TokenHash: hash,
		GrantID:   g.ID,
		ClientID:  g.ClientID,
		UserID:    g.UserID,
		Scopes:    g.Scopes,
		Audience:  g.Audience,
		AuthTime:  g.AuthTime,
		AMR:       g.AMR,
		ACR:       g.ACR,
		CreatedAt: at(0),
		ExpiresAt: at(30 * 24 * time.Hour),
	}
}

func newSession(id, userID string) store.Session {
	return store.Session{
		ID:        id,
		UserID:    userID,
		AuthTime:  at(-2 * time.Minute),
		AMR:       []string{"face"},
		ACR:       "urn:visage:face",
		CreatedAt: at(-2 * time.Minute),
		ExpiresAt: at(8 * time.Hour),
	}
}

func newSigningKey(id, alg string, created time.Time) store.SigningKey {
	return store.SigningKey{
		ID:        id,
		Algorithm: alg,
		Private:   []byte(`{"kty":"EC","crv":"P-256","d":"` + id + `"}`),
		CreatedAt: created,
	}
}
