package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/visage-idp/visage/store"
)

func testUsers(t *testing.T, s store.Storage) {
	ctx := t.Context()

	users, err := s.ListUsers(ctx)
	mustOK(t, "ListUsers on empty storage", err)
	if len(users) != 0 {
		t.Fatalf("ListUsers on empty storage: %d users", len(users))
	}

	// Inserted out of order; ListUsers sorts by username, which is case-sensitive.
	want := []store.User{
		newUser("u-3", "carol"),
		newUser("u-1", "alice"),
		newUser("u-2", "Alice"),
		newUser("u-4", "zoë"),
	}
	want[1].Admin = true
	want[2].Email = "capital.alice@example.org" // emails are unique case-insensitively
	want[3].EmailVerified = false
	for _, u := range want {
		mustOK(t, "CreateUser "+u.ID, s.CreateUser(ctx, u))
	}

	for _, u := range want {
		got, err := s.GetUser(ctx, u.ID)
		mustOK(t, "GetUser "+u.ID, err)
		checkEqual(t, "GetUser "+u.ID, u, got)

		got, err = s.GetUserByUsername(ctx, u.Username)
		mustOK(t, "GetUserByUsername "+u.Username, err)
		checkEqual(t, "GetUserByUsername "+u.Username, u, got)
	}

	_, err = s.GetUserByUsername(ctx, "ALICE")
	wantErr(t, "GetUserByUsername with other case", err, store.ErrNotFound)

	users, err = s.ListUsers(ctx)
	mustOK(t, "ListUsers", err)
	order := []string{"u-2", "u-1", "u-3", "u-4"} // "Alice" < "alice" < "carol" < "zoë" bytewise
	if len(users) != len(order) {
		t.Fatalf("ListUsers: %d users, want %d", len(users), len(order))
	}
	for i, id := range order {
		if users[i].ID != id {
			t.Errorf("ListUsers[%d] = %q, want %q (ordered by username)", i, users[i].ID, id)
		}
		for _, u := range want {
			if u.ID == users[i].ID {
				checkEqual(t, "ListUsers "+u.ID, u, users[i])
			}
		}
	}

	// Unique ID and unique username.
	dupID := newUser("u-1", "someone-else")
	wantErr(t, "CreateUser with an existing ID", s.CreateUser(ctx, dupID), store.ErrAlreadyExists)
	dupName := newUser("u-9", "alice")
	wantErr(t, "CreateUser with an existing username", s.CreateUser(ctx, dupName), store.ErrAlreadyExists)
	_, err = s.GetUser(ctx, "u-9")
	wantErr(t, "GetUser after the failed create", err, store.ErrNotFound)
	got, err := s.GetUser(ctx, "u-1")
	mustOK(t, "GetUser u-1 after the failed creates", err)
	checkEqual(t, "u-1 after the failed creates", want[1], got)

	// Delete, then the username is free again.
	mustOK(t, "DeleteUser u-3", s.DeleteUser(ctx, "u-3"))
	_, err = s.GetUser(ctx, "u-3")
	wantErr(t, "GetUser after DeleteUser", err, store.ErrNotFound)
	_, err = s.GetUserByUsername(ctx, "carol")
	wantErr(t, "GetUserByUsername after DeleteUser", err, store.ErrNotFound)
	wantErr(t, "DeleteUser twice", s.DeleteUser(ctx, "u-3"), store.ErrNotFound)
	mustOK(t, "CreateUser reusing a deleted username", s.CreateUser(ctx, newUser("u-5", "carol")))
}

func testUniqueEmail(t *testing.T, s store.Storage) {
	ctx := t.Context()
	alice := newUser("u-1", "alice")
	alice.Email = "Alice@Corp.example"
	mustOK(t, "CreateUser alice", s.CreateUser(ctx, alice))
	for _, email := range []string{"Alice@Corp.example", "alice@corp.example", "ALICE@CORP.EXAMPLE"} {
		u := newUser("u-2", "mallory")
		u.Email = email
		err := s.CreateUser(ctx, u)
		wantErr(t, "CreateUser with "+email, err, store.ErrEmailTaken)
		wantErr(t, "CreateUser with "+email, err, store.ErrAlreadyExists)
		err = s.CreateUserWithTemplate(ctx, u, newTemplate(u.ID))
		wantErr(t, "CreateUserWithTemplate with "+email, err, store.ErrEmailTaken)
	}
	_, err := s.GetUser(ctx, "u-2")
	wantErr(t, "GetUser after the refused creates", err, store.ErrNotFound)

	// A username clash is not an email clash.
	dup := newUser("u-3", "alice")
	dup.Email = "new@corp.example"
	err = s.CreateUser(ctx, dup)
	wantErr(t, "CreateUser with a taken username", err, store.ErrAlreadyExists)
	if errors.Is(err, store.ErrEmailTaken) {
		t.Fatalf("a username clash reported as an email clash: %v", err)
	}

	bob := newUser("u-4", "bob")
	mustOK(t, "CreateUser bob", s.CreateUser(ctx, bob))
	bob.Email = "alice@CORP.example"
	wantErr(t, "UpdateUser to a taken email", s.UpdateUser(ctx, bob), store.ErrEmailTaken)
	// Users without an email do not clash.
	for i, id := range []string{"u-5", "u-6"} {
		u := newUser(id, fmt.Sprintf("noemail%d", i))
		u.Email = ""
		mustOK(t, "CreateUser without email "+id, s.CreateUser(ctx, u))
	}
	// Deleting frees the address.
	mustOK(t, "DeleteUser alice", s.DeleteUser(ctx, alice.ID))
	mustOK(t, "UpdateUser to the freed email", s.UpdateUser(ctx, bob))
}

func testUserUpdate(t *testing.T, s store.Storage) {
	ctx := t.Context()
	alice, bob := newUser("u-1", "alice"), newUser("u-2", "bob")
	mustOK(t, "CreateUser alice", s.CreateUser(ctx, alice))
	mustOK(t, "CreateUser bob", s.CreateUser(ctx, bob))

	changed := alice
	changed.Username = "alice.renamed"
	changed.DisplayName = "Alice Ŕenamed"
	changed.Email = "other@example.org"
	changed.EmailVerified = false
	changed.Admin = true
	changed.UpdatedAt = at(time.Hour)
	mustOK(t, "UpdateUser", s.UpdateUser(ctx, changed))
	got, err := s.GetUser(ctx, alice.ID)
	mustOK(t, "GetUser after UpdateUser", err)
	checkEqual(t, "GetUser after UpdateUser", changed, got)
	_, err = s.GetUserByUsername(ctx, "alice")
	wantErr(t, "GetUserByUsername with the old username", err, store.ErrNotFound)
	got, err = s.GetUserByUsername(ctx, "alice.renamed")
	mustOK(t, "GetUserByUsername with the new username", err)
	checkEqual(t, "GetUserByUsername with the new username", changed, got)

	taken := changed
	taken.Username = "bob"
	wantErr(t, "UpdateUser to a taken username", s.UpdateUser(ctx, taken), store.ErrAlreadyExists)
	got, err = s.GetUser(ctx, alice.ID)
	mustOK(t, "GetUser after the failed update", err)
	checkEqual(t, "user after the failed update", changed, got)

	wantErr(t, "UpdateUser of a missing user", s.UpdateUser(ctx, newUser("u-404", "nobody")), store.ErrNotFound)
	_, err = s.GetUserByUsername(ctx, "nobody")
	wantErr(t, "GetUserByUsername after updating a missing user", err, store.ErrNotFound)
}

func testTemplates(t *testing.T, s store.Storage) {
	ctx := t.Context()
	wantErr(t, "PutTemplate for a missing user", s.PutTemplate(ctx, newTemplate("u-404")), store.ErrNotFound)

	mustOK(t, "CreateUser", s.CreateUser(ctx, newUser("u-1", "alice")))
	_, err := s.GetTemplate(ctx, "u-1")
	wantErr(t, "GetTemplate before PutTemplate", err, store.ErrNotFound)

	first := newTemplate("u-1")
	mustOK(t, "PutTemplate", s.PutTemplate(ctx, first))
	got, err := s.GetTemplate(ctx, "u-1")
	mustOK(t, "GetTemplate", err)
	checkEqual(t, "GetTemplate", first, got)

	// PutTemplate replaces; a large blob with every byte value survives.
	blob := make([]byte, 64<<10)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	second := store.Template{UserID: "u-1", KeyID: "bio-key-2", ModelVersion: "v2", Sealed: blob, CreatedAt: at(time.Hour)}
	mustOK(t, "PutTemplate (replace)", s.PutTemplate(ctx, second))
	got, err = s.GetTemplate(ctx, "u-1")
	mustOK(t, "GetTemplate after replace", err)
	checkEqual(t, "GetTemplate after replace", second, got)

	if err := s.PutTemplate(ctx, store.Template{UserID: "u-1", KeyID: "k", Sealed: nil, CreatedAt: at(0)}); err == nil {
		t.Errorf("PutTemplate with an empty sealed blob: no error")
	}
	got, err = s.GetTemplate(ctx, "u-1")
	mustOK(t, "GetTemplate after the rejected put", err)
	if !bytes.Equal(got.Sealed, blob) {
		t.Errorf("the rejected put changed the stored template")
	}

	mustOK(t, "DeleteTemplate", s.DeleteTemplate(ctx, "u-1"))
	_, err = s.GetTemplate(ctx, "u-1")
	wantErr(t, "GetTemplate after DeleteTemplate", err, store.ErrNotFound)
	wantErr(t, "DeleteTemplate twice", s.DeleteTemplate(ctx, "u-1"), store.ErrNotFound)
	if _, err := s.GetUser(ctx, "u-1"); err != nil {
		t.Errorf("GetUser after DeleteTemplate: %v (the user must stay)", err)
	}
}

func testCreateUserWithTemplate(t *testing.T, s store.Storage) {
	ctx := t.Context()
	u, tpl := newUser("u-1", "alice"), newTemplate("u-1")
	mustOK(t, "CreateUserWithTemplate", s.CreateUserWithTemplate(ctx, u, tpl))
	gotU, err := s.GetUser(ctx, "u-1")
	mustOK(t, "GetUser", err)
	checkEqual(t, "GetUser", u, gotU)
	gotT, err := s.GetTemplate(ctx, "u-1")
	mustOK(t, "GetTemplate", err)
	checkEqual(t, "GetTemplate", tpl, gotT)

	emptySealed := newTemplate("u-2")
	emptySealed.Sealed = nil
	cases := []struct {
		name     string
		user     store.User
		template store.Template
		sentinel error // nil: any error
	}{
		// The user row is valid: only the template insert can fail, and the user must go too.
		{"template insert fails", newUser("u-2", "bob"), emptySealed, nil},
		{"template for another user", newUser("u-3", "carol"), newTemplate("u-404"), nil},
		{"template for an existing user", newUser("u-4", "dave"), newTemplate("u-1"), nil},
		{"username taken", newUser("u-5", "alice"), newTemplate("u-5"), store.ErrAlreadyExists},
		{"id taken", newUser("u-1", "erin"), newTemplate("u-1"), store.ErrAlreadyExists},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.template.KeyID = "must-not-be-stored"
			err := s.CreateUserWithTemplate(ctx, c.user, c.template)
			if err == nil {
				t.Fatalf("CreateUserWithTemplate: no error")
			}
			if c.sentinel != nil {
				wantErr(t, "CreateUserWithTemplate", err, c.sentinel)
			}
			if c.user.ID != "u-1" {
				_, err = s.GetUser(ctx, c.user.ID)
				wantErr(t, "GetUser after the failed enrolment", err, store.ErrNotFound)
				_, err = s.GetTemplate(ctx, c.user.ID)
				wantErr(t, "GetTemplate after the failed enrolment", err, store.ErrNotFound)
			}
			if c.user.Username != "alice" {
				_, err = s.GetUserByUsername(ctx, c.user.Username)
				wantErr(t, "GetUserByUsername after the failed enrolment", err, store.ErrNotFound)
			}
			// The existing enrolment is untouched.
			gotU, err := s.GetUser(ctx, "u-1")
			mustOK(t, "GetUser u-1", err)
			checkEqual(t, "u-1 after the failed enrolment", u, gotU)
			gotT, err := s.GetTemplate(ctx, "u-1")
			mustOK(t, "GetTemplate u-1", err)
			checkEqual(t, "u-1's template after the failed enrolment", tpl, gotT)
		})
	}
	users, err := s.ListUsers(ctx)
	mustOK(t, "ListUsers", err)
	if len(users) != 1 {
		t.Errorf("ListUsers after the failed enrolments: %d users, want 1", len(users))
	}
}

func testDeleteUserCascades(t *testing.T, s store.Storage) {
	ctx := t.Context()
	mustOK(t, "CreateClient", s.CreateClient(ctx, newClient("app")))

	// Two users with the same kinds of data; only the victim's must go.
	type owned struct {
		user    store.User
		session store.Session
		grant   store.Grant
		access  store.AccessToken
		refresh store.RefreshToken
		request store.AuthRequest
		code    store.AuthCode
	}
	populate := func(id string) owned {
		o := owned{user: newUser(id, "name-"+id), session: newSession("sess-"+id, id), grant: newGrant("grant-"+id, "app", id)}
		o.access = newAccessToken("at-"+id, o.grant)
		o.refresh = newRefreshToken("rt-"+id, o.grant)
		o.request = newAuthRequest("req-"+id, "app")
		o.request.UserID, o.request.SessionID, o.request.AuthTime, o.request.AMR, o.request.Done = id, o.session.ID, at(0), []string{"face"}, true
		o.code = newAuthCode("code-"+id, o.request.ID)
		mustOK(t, "CreateUserWithTemplate "+id, s.CreateUserWithTemplate(ctx, o.user, newTemplate(id)))
		mustOK(t, "CreateSession "+id, s.CreateSession(ctx, o.session))
		mustOK(t, "CreateGrant "+id, s.CreateGrant(ctx, o.grant))
		mustOK(t, "CreateAccessToken "+id, s.CreateAccessToken(ctx, o.access))
		mustOK(t, "CreateRefreshToken "+id, s.CreateRefreshToken(ctx, o.refresh))
		mustOK(t, "PutConsent "+id, s.PutConsent(ctx, store.Consent{UserID: id, ClientID: "app", Scopes: []string{"openid"}, GrantedAt: at(0)}))
		mustOK(t, "CreateAuthRequest "+id, s.CreateAuthRequest(ctx, o.request))
		mustOK(t, "CreateAuthCode "+id, s.CreateAuthCode(ctx, o.code))
		for i := range 3 {
			mustOK(t, "RecordAttempt "+id, s.RecordAttempt(ctx, store.Attempt{UserID: id, IP: "192.0.2.1", At: at(time.Duration(i) * time.Second)}))
		}
		return o
	}
	victim, bystander := populate("u-victim"), populate("u-bystander")

	mustOK(t, "DeleteUser", s.DeleteUser(ctx, victim.user.ID))

	check := func(o owned, gone bool) {
		t.Helper()
		lookups := []struct {
			what string
			err  error
		}{
			{"GetUser", second(s.GetUser(ctx, o.user.ID))},
			{"GetUserByUsername", second(s.GetUserByUsername(ctx, o.user.Username))},
			{"GetTemplate", second(s.GetTemplate(ctx, o.user.ID))},
			{"GetSession", second(s.GetSession(ctx, o.session.ID))},
			{"GetGrant", second(s.GetGrant(ctx, o.grant.ID))},
			{"GetAccessToken", second(s.GetAccessToken(ctx, o.access.ID))},
			{"GetRefreshToken", second(s.GetRefreshToken(ctx, o.refresh.TokenHash))},
			{"GetConsent", second(s.GetConsent(ctx, o.user.ID, "app"))},
			{"GetAuthRequest", second(s.GetAuthRequest(ctx, o.request.ID))},
			{"GetAuthCode", second(s.GetAuthCode(ctx, o.code.CodeHash))},
		}
		for _, l := range lookups {
			if gone {
				wantErr(t, l.what+" of the deleted user", l.err, store.ErrNotFound)
			} else if l.err != nil {
				t.Errorf("%s of the other user: %v", l.what, l.err)
			}
		}
		n, err := s.CountFailures(ctx, o.user.ID, time.Time{})
		mustOK(t, "CountFailures", err)
		if want := map[bool]int{true: 0, false: 3}[gone]; n != want {
			t.Errorf("CountFailures for %s: %d, want %d", o.user.ID, n, want)
		}
	}
	check(victim, true)
	check(bystander, false)
	if _, err := s.GetClient(ctx, "app"); err != nil {
		t.Errorf("GetClient after DeleteUser: %v (clients are not the user's)", err)
	}

	// A new account with the same ID starts clean.
	mustOK(t, "CreateUser with the deleted ID", s.CreateUser(ctx, victim.user))
	n, err := s.CountFailures(ctx, victim.user.ID, time.Time{})
	mustOK(t, "CountFailures", err)
	if n != 0 {
		t.Errorf("CountFailures for the re-created user: %d, want 0", n)
	}
	_, err = s.GetTemplate(ctx, victim.user.ID)
	wantErr(t, "GetTemplate for the re-created user", err, store.ErrNotFound)
}

// second returns the error of a (value, error) pair.
func second[T any](_ T, err error) error { return err }
