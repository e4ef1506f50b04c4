package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/visage-idp/visage/store"
)

// RunSessionsConformance runs the store.SessionsStorage suite. newStorage must return a fresh,
// empty, migrated storage for each call and clean it up when the test ends. Beyond the
// interface's comments it pins down: times round-trip at TimePrecision in UTC; nil and empty
// byte slices are equivalent; UpdateVerification is all or nothing (a failing review, image or
// event insert leaves the session unchanged); ClaimDeliveries never leases one delivery twice,
// even to concurrent callers.
func RunSessionsConformance(t *testing.T, newStorage func(t *testing.T) store.SessionsStorage) {
	t.Helper()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s store.SessionsStorage)
	}{
		{"Applications", testApplications},
		{"UserLinks", testUserLinks},
		{"APIKeys", testAPIKeys},
		{"Workflows", testWorkflows},
		{"Verifications", testVerifications},
		{"OpenVerificationUnique", testOpenVerificationUnique},
		{"ListVerifications", testListVerifications},
		{"UpdateVerification", testUpdateVerification},
		{"UpdateVerificationAtomic", testUpdateVerificationAtomic},
		{"ResubmissionAndLivenessMethod", testResubmission},
		{"DeleteVerification", testDeleteVerification},
		{"PurgeVerifications", testPurgeVerifications},
		{"Deliveries", testDeliveries},
		{"DeliveryOrderPerSession", testDeliveryOrder},
		{"ConcurrentClaims", testConcurrentClaims},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStorage(t)) })
	}
}

// t0 is a time with sub-microsecond digits, to check truncation.
var sessT0 = time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)

func us(t time.Time) time.Time { return t.Truncate(TimePrecision).UTC() }

func mustApp(t *testing.T, s store.SessionsStorage, id string) store.Application {
	t.Helper()
	a := store.Application{ID: id, Name: "app " + id, WebhookURL: "https://example.com/hook/" + id, WebhookSecret: "secret-" + id,
		KeepImages: true, ResultRetention: 90 * time.Hour, CreatedAt: sessT0}
	if err := s.CreateApplication(context.Background(), a); err != nil {
		t.Fatalf("CreateApplication(%s): %v", id, err)
	}
	return a
}

func mustWorkflow(t *testing.T, s store.SessionsStorage, id string) store.Workflow {
	t.Helper()
	w := store.Workflow{ID: id, Name: "wf " + id, Type: "biometric_authentication", Features: []string{"LIVENESS", "FACE_MATCH"},
		LivenessMethod: "PASSIVE", FaceMatchApprove: 84, FaceMatchDecline: 50, LivenessApprove: 70, LivenessDecline: 40, MaxAttempts: 3, CreatedAt: sessT0}
	if err := s.CreateWorkflow(context.Background(), w); err != nil {
		t.Fatalf("CreateWorkflow(%s): %v", id, err)
	}
	return w
}

func newVerification(id, app, wf, vendor string) store.Verification {
	return store.Verification{ID: id, AppID: app, WorkflowID: wf, VendorData: vendor, Callback: "https://example.com/cb",
		Metadata: []byte(`{"k":"v"}`), Status: store.StatusNotStarted, TokenHash: "tok-" + id, Reference: []byte("sealed-" + id),
		ReferenceSource: "portrait_image", CreatedAt: sessT0, UpdatedAt: sessT0, ExpiresAt: sessT0.Add(30 * time.Minute)}
}

func mustVerification(t *testing.T, s store.SessionsStorage, v store.Verification) store.Verification {
	t.Helper()
	got, err := s.CreateVerification(context.Background(), v)
	if err != nil {
		t.Fatalf("CreateVerification(%s): %v", v.ID, err)
	}
	return got
}

func testApplications(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	b := mustApp(t, s, "b")
	a := mustApp(t, s, "a")
	if err := s.CreateApplication(ctx, a); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("duplicate application: %v, want ErrAlreadyExists", err)
	}
	got, err := s.GetApplication(ctx, "a")
	a.CreatedAt = us(a.CreatedAt)
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("GetApplication = %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.GetApplication(ctx, "zz"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown application: %v", err)
	}
	list, err := s.ListApplications(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "a" || list[1].ID != b.ID {
		t.Errorf("ListApplications = %+v, %v", list, err)
	}
	a.WebhookURL, a.KeepImages, a.ResultRetention, a.Name = "", false, 0, "renamed"
	if err := s.UpdateApplication(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetApplication(ctx, "a"); !reflect.DeepEqual(got, a) {
		t.Errorf("after update = %+v, want %+v", got, a)
	}
	if err := s.UpdateApplication(ctx, store.Application{ID: "zz"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update unknown: %v", err)
	}
}

func testAPIKeys(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	mustApp(t, s, "a")
	k1 := store.APIKey{ID: "k1", AppID: "a", Name: "first", Hash: "h1", Hint: "vsk_ab", CreatedAt: sessT0}
	k2 := store.APIKey{ID: "k2", AppID: "a", Name: "second", Hash: "h2", Hint: "vsk_cd", CreatedAt: sessT0.Add(time.Second)}
	for _, k := range []store.APIKey{k2, k1} {
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateAPIKey(ctx, store.APIKey{ID: "k3", AppID: "a", Hash: "h1", CreatedAt: sessT0}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("duplicate hash: %v, want ErrAlreadyExists", err)
	}
	if err := s.CreateAPIKey(ctx, store.APIKey{ID: "k4", AppID: "nope", Hash: "h4", CreatedAt: sessT0}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("key of unknown application: %v, want ErrNotFound", err)
	}
	got, err := s.GetAPIKeyByHash(ctx, "h1")
	k1.CreatedAt = us(k1.CreatedAt)
	if err != nil || !reflect.DeepEqual(got, k1) {
		t.Errorf("GetAPIKeyByHash = %+v, %v; want %+v", got, err, k1)
	}
	if _, err := s.GetAPIKeyByHash(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown hash: %v", err)
	}
	list, err := s.ListAPIKeys(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "k1" || list[1].ID != "k2" {
		t.Errorf("ListAPIKeys = %+v, %v", list, err)
	}
	at := sessT0.Add(time.Hour)
	if err := s.RevokeAPIKey(ctx, "k1", at); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(ctx, "k1", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetAPIKeyByHash(ctx, "h1"); got.RevokedAt == nil || !got.RevokedAt.Equal(us(at)) {
		t.Errorf("revoked at %v, want the first revocation %v", got.RevokedAt, us(at))
	}
	if err := s.RevokeAPIKey(ctx, "nope", at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke unknown: %v", err)
	}
}

func testWorkflows(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	w := mustWorkflow(t, s, "wf_b")
	mustWorkflow(t, s, "wf_a")
	if err := s.CreateWorkflow(ctx, w); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("duplicate workflow: %v", err)
	}
	got, err := s.GetWorkflow(ctx, "wf_b")
	w.CreatedAt = us(w.CreatedAt)
	if err != nil || !reflect.DeepEqual(got, w) {
		t.Errorf("GetWorkflow = %+v, %v; want %+v", got, err, w)
	}
	if _, err := s.GetWorkflow(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown workflow: %v", err)
	}
	list, err := s.ListWorkflows(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "wf_a" {
		t.Errorf("ListWorkflows = %+v, %v", list, err)
	}
}

func testVerifications(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	mustApp(t, s, "a")
	mustWorkflow(t, s, "wf")
	v1 := newVerification("s1", "a", "wf", "user-1")
	got1 := mustVerification(t, s, v1)
	got2 := mustVerification(t, s, newVerification("s2", "a", "wf", "user-2"))
	if got1.Number <= 0 || got2.Number <= got1.Number {
		t.Errorf("numbers %d then %d: want positive and increasing", got1.Number, got2.Number)
	}
	want := v1
	want.Number = got1.Number
	want.CreatedAt, want.UpdatedAt, want.ExpiresAt = us(want.CreatedAt), us(want.UpdatedAt), us(want.ExpiresAt)
	if !reflect.DeepEqual(got1, want) {
		t.Errorf("CreateVerification returned %+v, want %+v", got1, want)
	}
	if got, err := s.GetVerification(ctx, "s1"); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("GetVerification = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.GetVerificationByToken(ctx, "tok-s1"); err != nil || got.ID != "s1" {
		t.Errorf("GetVerificationByToken = %+v, %v", got, err)
	}
	for name, err := range map[string]error{
		"get":      errOf(s.GetVerification(ctx, "nope")),
		"by token": errOf(s.GetVerificationByToken(ctx, "nope")),
		"open":     errOf(s.FindOpenVerification(ctx, "a", "wf", "nobody")),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s unknown: %v, want ErrNotFound", name, err)
		}
	}
	dupID := newVerification("s1", "a", "wf", "user-9")
	dupID.TokenHash = "other"
	if _, err := s.CreateVerification(ctx, dupID); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("duplicate id: %v", err)
	}
	dupTok := newVerification("s9", "a", "wf", "user-9")
	dupTok.TokenHash = "tok-s1"
	if _, err := s.CreateVerification(ctx, dupTok); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("duplicate token: %v", err)
	}
	if _, err := s.CreateVerification(ctx, newVerification("s8", "nope", "wf", "user-8")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown application: %v, want ErrNotFound", err)
	}
	if _, err := s.CreateVerification(ctx, newVerification("s7", "a", "nope", "user-7")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown workflow: %v, want ErrNotFound", err)
	}
	// Nil and empty byte slices are equivalent; a liveness-only session has no reference.
	bare := newVerification("s3", "a", "wf", "")
	bare.Metadata, bare.Reference, bare.ReferenceSource = []byte{}, nil, ""
	if got := mustVerification(t, s, bare); got.Metadata != nil || got.Reference != nil || got.Results != nil {
		t.Errorf("empty blobs read back as %q %q %q, want nil", got.Metadata, got.Reference, got.Results)
	}
	// Due sessions: open and expired at or before now, oldest first.
	due, err := s.ListDueVerifications(ctx, sessT0.Add(30*time.Minute), 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("ListDueVerifications = %d sessions, %v; want 3", len(due), err)
	}
	if due, _ := s.ListDueVerifications(ctx, sessT0.Add(29*time.Minute), 10); len(due) != 0 {
		t.Errorf("nothing is due before expiry, got %d", len(due))
	}
	if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s2", Status: store.StatusApproved, At: sessT0, Finished: true}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.ListDueVerifications(ctx, sessT0.Add(time.Hour), 10); len(due) != 2 || slices.ContainsFunc(due, func(v store.Verification) bool { return v.ID == "s2" }) {
		t.Errorf("a finished session is never due: %+v", due)
	}
}

func errOf[T any](_ T, err error) error { return err }

func testOpenVerificationUnique(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	mustApp(t, s, "a")
	mustApp(t, s, "b")
	mustWorkflow(t, s, "wf")
	mustWorkflow(t, s, "wf2")
	first := mustVerification(t, s, newVerification("s1", "a", "wf", "user-1"))
	if _, err := s.CreateVerification(ctx, newVerification("s2", "a", "wf", "user-1")); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("second open session for the same vendor data: %v, want ErrAlreadyExists", err)
	}
	if got, err := s.FindOpenVerification(ctx, "a", "wf", "user-1"); err != nil || got.ID != first.ID {
		t.Errorf("FindOpenVerification = %+v, %v; want %s", got.ID, err, first.ID)
	}
	// Other applications, workflows and vendor data are independent; so is empty vendor data.
	mustVerification(t, s, newVerification("s3", "b", "wf", "user-1"))
	mustVerification(t, s, newVerification("s4", "a", "wf2", "user-1"))
	mustVerification(t, s, newVerification("s5", "a", "wf", ""))
	mustVerification(t, s, newVerification("s6", "a", "wf", ""))
	// In Progress is still open; In Review is not.
	if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s1", Status: store.StatusInProgress, At: sessT0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateVerification(ctx, newVerification("s2", "a", "wf", "user-1")); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("In Progress session: %v, want ErrAlreadyExists", err)
	}
	if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s1", Status: store.StatusInReview, At: sessT0}); err != nil {
		t.Fatal(err)
	}
	mustVerification(t, s, newVerification("s2", "a", "wf", "user-1"))
	if got, err := s.FindOpenVerification(ctx, "a", "wf", "user-1"); err != nil || got.ID != "s2" {
		t.Errorf("FindOpenVerification after review = %+v, %v; want s2", got.ID, err)
	}
}

func testListVerifications(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	mustApp(t, s, "a")
	mustApp(t, s, "b")
	mustWorkflow(t, s, "wf")
	for i := range 7 {
		app := "a"
		if i == 6 {
			app = "b"
		}
		mustVerification(t, s, newVerification(fmt.Sprintf("s%d", i), app, "wf", fmt.Sprintf("user-%d", i%3)))
		if i < 3 { // finished, so that s3, s4, s5 may reuse the vendor data
			if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: fmt.Sprintf("s%d", i), Status: store.StatusDeclined, At: sessT0}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s3", Status: store.StatusApproved, At: sessT0}); err != nil {
		t.Fatal(err)
	}
	ids := func(vs []store.Verification) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		f     store.VerificationFilter
		want  []string
		total int
	}{
		{"all", store.VerificationFilter{}, []string{"s6", "s5", "s4", "s3", "s2", "s1", "s0"}, 7},
		{"app", store.VerificationFilter{AppID: "a"}, []string{"s5", "s4", "s3", "s2", "s1", "s0"}, 6},
		{"vendor", store.VerificationFilter{AppID: "a", VendorData: "user-0"}, []string{"s3", "s0"}, 2},
		{"status", store.VerificationFilter{AppID: "a", Status: store.StatusApproved}, []string{"s3"}, 1},
		{"page 1", store.VerificationFilter{AppID: "a", Limit: 4}, []string{"s5", "s4", "s3", "s2"}, 6},
		{"page 2", store.VerificationFilter{AppID: "a", Limit: 4, Offset: 4}, []string{"s1", "s0"}, 6},
		{"past the end", store.VerificationFilter{AppID: "a", Limit: 4, Offset: 8}, nil, 6},
		{"declined", store.VerificationFilter{AppID: "a", Status: store.StatusDeclined}, []string{"s2", "s1", "s0"}, 3},
		{"none", store.VerificationFilter{AppID: "b", Status: store.StatusDeclined}, nil, 0},
	} {
		got, total, err := s.ListVerifications(ctx, tc.f)
		if err != nil || !slices.Equal(ids(got), tc.want) || total != tc.total {
			t.Errorf("%s: ListVerifications = %v (total %d), %v; want %v (total %d)", tc.name, ids(got), total, err, tc.want, tc.total)
		}
	}
}

func newDelivery(id, app, session string, seqHint int) store.WebhookDelivery {
	return store.WebhookDelivery{ID: id, AppID: app, SessionID: session, Status: store.StatusApproved,
		Payload: []byte(fmt.Sprintf(`{"event_id":%q,"n":%d}`, id, seqHint)), State: store.DeliveryPending,
		NextAttemptAt: sessT0, GiveUpAt: sessT0.Add(24 * time.Hour), CreatedAt: sessT0}
}

func testUpdateVerification(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	mustApp(t, s, "a")
	mustWorkflow(t, s, "wf")
	mustVerification(t, s, newVerification("s1", "a", "wf", "user-1"))
	at := sessT0.Add(5 * time.Minute)
	// A status the session does not have: nothing changes.
	_, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s1", From: []string{store.StatusInProgress}, Status: store.StatusApproved, At: at,
		Event: ptr(newDelivery("e0", "a", "s1", 0))})
	if !errors.Is(err, store.ErrStatusChanged) {
		t.Fatalf("update from the wrong status: %v, want ErrStatusChanged", err)
	}
	if _, err := s.GetDelivery(ctx, "e0"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused update wrote its event: %v", err)
	}
	if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "nope", At: at}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update unknown: %v, want ErrNotFound", err)
	}
	got, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s1", From: store.OpenStatuses, Status: store.StatusInProgress, At: at,
		AddAttempt: true, IPAddress: "192.0.2.7", Event: ptr(newDelivery("e1", "a", "s1", 1))})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.StatusInProgress || got.Attempts != 1 || got.IPAddress != "192.0.2.7" || !got.UpdatedAt.Equal(us(at)) ||
		got.FinishedAt != nil || !bytes.Equal(got.Reference, []byte("sealed-s1")) || got.Results != nil {
		t.Errorf("after start: %+v", got)
	}
	at2 := at.Add(time.Minute)
	results := []byte(`{"face_matches":[{"score":91}]}`)
	got, err = s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s1", From: []string{store.StatusInProgress}, Status: store.StatusInReview,
		At: at2, AddAttempt: true, Results: results, DropReference: true, Finished: true,
		Images: []store.VerificationImage{{Kind: "selfie", Sealed: []byte("img1"), CreatedAt: at2}, {Kind: "selfie", Sealed: []byte("img2"), CreatedAt: at2}},
		Review: &store.Review{Author: "system", NewStatus: store.StatusInReview, Comment: "score between the bands", CreatedAt: at2},
		Event:  ptr(newDelivery("e2", "a", "s1", 2))})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.StatusInReview || got.Attempts != 2 || got.Reference != nil || !bytes.Equal(got.Results, results) ||
		got.FinishedAt == nil || !got.FinishedAt.Equal(us(at2)) || got.IPAddress != "192.0.2.7" {
		t.Errorf("after capture: %+v", got)
	}
	imgs, err := s.ListVerificationImages(ctx, "s1")
	if err != nil || len(imgs) != 2 || imgs[0].N != 1 || imgs[1].N != 2 || string(imgs[1].Sealed) != "img2" || imgs[0].SessionID != "s1" {
		t.Errorf("images = %+v, %v", imgs, err)
	}
	got, err = s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s1", From: []string{store.StatusInReview}, Status: store.StatusApproved, At: at2.Add(time.Minute),
		Review: &store.Review{Author: "admin", NewStatus: store.StatusApproved, Comment: "same person", CreatedAt: at2.Add(time.Minute)}})
	if err != nil || got.Status != store.StatusApproved || !got.FinishedAt.Equal(us(at2)) {
		t.Errorf("after review: %+v, %v (FinishedAt must stay)", got, err)
	}
	reviews, err := s.ListReviews(ctx, "s1")
	if err != nil || len(reviews) != 2 || reviews[0].Author != "system" || reviews[1].Comment != "same person" || reviews[1].ID <= reviews[0].ID ||
		reviews[1].SessionID != "s1" || !reviews[1].CreatedAt.Equal(us(at2.Add(time.Minute))) {
		t.Errorf("reviews = %+v, %v", reviews, err)
	}
	ds, err := s.ListDeliveries(ctx, store.DeliveryFilter{SessionID: "s1"})
	if err != nil || len(ds) != 2 || ds[0].ID != "e2" || ds[1].ID != "e1" || ds[0].Seq <= ds[1].Seq {
		t.Errorf("deliveries (newest first) = %+v, %v", ds, err)
	}
	d, err := s.GetDelivery(ctx, "e2")
	want := newDelivery("e2", "a", "s1", 2)
	want.Seq, want.NextAttemptAt, want.GiveUpAt, want.CreatedAt = d.Seq, us(want.NextAttemptAt), us(want.GiveUpAt), us(want.CreatedAt)
	if err != nil || !reflect.DeepEqual(d, want) {
		t.Errorf("GetDelivery = %+v, %v; want %+v", d, err, want)
	}
}

func testUpdateVerificationAtomic(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	mustApp(t, s, "a")
	mustWorkflow(t, s, "wf")
	mustVerification(t, s, newVerification("s1", "a", "wf", "user-1"))
	mustVerification(t, s, newVerification("s2", "a", "wf", "user-2"))
	if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s1", Status: store.StatusInProgress, At: sessT0, Event: ptr(newDelivery("e1", "a", "s1", 1))}); err != nil {
		t.Fatal(err)
	}
	// The event id exists already: the whole update must roll back.
	_, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s2", Status: store.StatusApproved, At: sessT0.Add(time.Minute), AddAttempt: true,
		DropReference: true, Finished: true, Results: []byte(`{}`),
		Review: &store.Review{Author: "x", NewStatus: store.StatusApproved, CreatedAt: sessT0},
		Images: []store.VerificationImage{{Kind: "selfie", Sealed: []byte("img"), CreatedAt: sessT0}},
		Event:  ptr(newDelivery("e1", "a", "s2", 2))})
	if !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("duplicate event id: %v, want ErrAlreadyExists", err)
	}
	got, err := s.GetVerification(ctx, "s2")
	if err != nil || got.Status != store.StatusNotStarted || got.Attempts != 0 || got.Reference == nil || got.Results != nil || got.FinishedAt != nil {
		t.Errorf("session changed by a failed update: %+v, %v", got, err)
	}
	if r, _ := s.ListReviews(ctx, "s2"); len(r) != 0 {
		t.Errorf("review of a failed update kept: %+v", r)
	}
	if imgs, _ := s.ListVerificationImages(ctx, "s2"); len(imgs) != 0 {
		t.Errorf("images of a failed update kept: %d", len(imgs))
	}
}

func testDeleteVerification(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	mustApp(t, s, "a")
	mustWorkflow(t, s, "wf")
	mustVerification(t, s, newVerification("s1", "a", "wf", "user-1"))
	mustVerification(t, s, newVerification("s2", "a", "wf", "user-2"))
	for _, id := range []string{"s1", "s2"} {
		if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: id, Status: store.StatusDeclined, At: sessT0, Results: []byte(`{}`),
			Review: &store.Review{Author: "x", NewStatus: store.StatusDeclined, CreatedAt: sessT0},
			Images: []store.VerificationImage{{Kind: "selfie", Sealed: []byte("img"), CreatedAt: sessT0}},
			Event:  ptr(newDelivery("e-"+id, "a", id, 1))}); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := s.ClaimDeliveries(ctx, sessT0, sessT0.Add(time.Minute), 10)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	if err := s.FinishDeliveryAttempt(ctx, claimed[0].LeaseToken, store.DeliveryAttempt{DeliveryID: "e-s1", At: sessT0, StatusCode: 500},
		store.DeliveryOutcome{State: store.DeliveryPending, NextAttemptAt: sessT0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVerification(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetVerification(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted session still readable: %v", err)
	}
	if _, err := s.GetVerificationByToken(ctx, "tok-s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted session readable by token: %v", err)
	}
	if r, _ := s.ListReviews(ctx, "s1"); len(r) != 0 {
		t.Errorf("reviews survive deletion: %+v", r)
	}
	if imgs, _ := s.ListVerificationImages(ctx, "s1"); len(imgs) != 0 {
		t.Errorf("images survive deletion")
	}
	if _, err := s.GetDelivery(ctx, "e-s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delivery survives deletion: %v", err)
	}
	if a, _ := s.ListDeliveryAttempts(ctx, "e-s1"); len(a) != 0 {
		t.Errorf("attempts survive deletion: %+v", a)
	}
	if _, err := s.GetVerification(ctx, "s2"); err != nil {
		t.Errorf("the other session went too: %v", err)
	}
	if r, _ := s.ListReviews(ctx, "s2"); len(r) != 1 {
		t.Errorf("the other session's reviews went too")
	}
	if err := s.DeleteVerification(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete again: %v, want ErrNotFound", err)
	}
}

func testPurgeVerifications(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	mustApp(t, s, "a")
	mustApp(t, s, "b")
	mustWorkflow(t, s, "wf")
	finish := func(id, app string, at time.Time, event bool) {
		t.Helper()
		mustVerification(t, s, newVerification(id, app, "wf", id))
		u := store.VerificationUpdate{ID: id, Status: store.StatusApproved, At: at, Finished: true}
		if event {
			u.Event = ptr(newDelivery("e-"+id, app, id, 1))
		}
		if _, err := s.UpdateVerification(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	cut := sessT0.Add(time.Hour)
	finish("old", "a", sessT0, false)
	finish("old-pending", "a", sessT0, true)
	finish("new", "a", cut.Add(time.Second), false)
	finish("at-cut", "a", cut, false)
	finish("other-app", "b", sessT0, false)
	mustVerification(t, s, newVerification("open", "a", "wf", "open")) // never finished
	n, err := s.PurgeVerifications(ctx, "a", cut)
	if err != nil || n != 1 {
		t.Fatalf("PurgeVerifications = %d, %v; want 1", n, err)
	}
	for id, gone := range map[string]bool{"old": true, "old-pending": false, "new": false, "at-cut": false, "other-app": false, "open": false} {
		_, err := s.GetVerification(ctx, id)
		if gone != errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: gone=%v, err %v", id, gone, err)
		}
	}
	// Once its webhook is delivered, the session with the pending event goes too.
	c, err := s.ClaimDeliveries(ctx, sessT0, sessT0.Add(time.Minute), 10)
	if err != nil || len(c) != 1 {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	if err := s.FinishDeliveryAttempt(ctx, c[0].LeaseToken, store.DeliveryAttempt{DeliveryID: c[0].ID, At: sessT0, StatusCode: 200},
		store.DeliveryOutcome{State: store.DeliveryDelivered}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeVerifications(ctx, "a", cut); err != nil || n != 1 {
		t.Errorf("second purge = %d, %v; want 1", n, err)
	}
}

func testDeliveries(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	mustApp(t, s, "a")
	mustWorkflow(t, s, "wf")
	for i, id := range []string{"s1", "s2", "s3"} {
		mustVerification(t, s, newVerification(id, "a", "wf", id))
		d := newDelivery("e"+id, "a", id, i)
		d.NextAttemptAt = sessT0.Add(time.Duration(i) * time.Minute)
		if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: id, Status: store.StatusApproved, At: sessT0, Event: &d}); err != nil {
			t.Fatal(err)
		}
	}
	lease := sessT0.Add(2 * time.Minute)
	c1, err := s.ClaimDeliveries(ctx, sessT0.Add(time.Minute), lease, 10)
	if err != nil || len(c1) != 2 || c1[0].ID != "es1" || c1[1].ID != "es2" {
		t.Fatalf("claim due at +1m = %+v, %v; want es1, es2 (es3 is not due)", c1, err)
	}
	if c1[0].LeaseToken == "" || c1[0].LeaseUntil == nil || !c1[0].LeaseUntil.Equal(us(lease)) {
		t.Errorf("claimed delivery without its lease: %+v", c1[0])
	}
	// Leased deliveries are not claimed again until the lease runs out.
	if c, _ := s.ClaimDeliveries(ctx, sessT0.Add(time.Minute), lease, 10); len(c) != 0 {
		t.Errorf("claimed leased deliveries again: %+v", c)
	}
	// es1 fails and is retried later; es2 is delivered.
	if err := s.FinishDeliveryAttempt(ctx, c1[0].LeaseToken, store.DeliveryAttempt{DeliveryID: "es1", At: sessT0.Add(time.Minute), StatusCode: 503,
		Error: "503 Service Unavailable", Duration: 15 * time.Millisecond},
		store.DeliveryOutcome{State: store.DeliveryPending, NextAttemptAt: sessT0.Add(10 * time.Minute), LastError: "503"}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDeliveryAttempt(ctx, c1[1].LeaseToken, store.DeliveryAttempt{DeliveryID: "es2", At: sessT0.Add(time.Minute), StatusCode: 200},
		store.DeliveryOutcome{State: store.DeliveryDelivered}); err != nil {
		t.Fatal(err)
	}
	// A second finish under the same lease is refused: the lease was released.
	if err := s.FinishDeliveryAttempt(ctx, c1[1].LeaseToken, store.DeliveryAttempt{DeliveryID: "es2", At: sessT0.Add(time.Minute), StatusCode: 200},
		store.DeliveryOutcome{State: store.DeliveryDelivered}); !errors.Is(err, store.ErrStatusChanged) {
		t.Errorf("finish twice: %v, want ErrStatusChanged", err)
	}
	if err := s.FinishDeliveryAttempt(ctx, "x", store.DeliveryAttempt{DeliveryID: "nope"}, store.DeliveryOutcome{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("finish unknown: %v, want ErrNotFound", err)
	}
	d1, _ := s.GetDelivery(ctx, "es1")
	if d1.State != store.DeliveryPending || d1.Attempts != 1 || d1.LeaseUntil != nil || d1.LeaseToken != "" || d1.LastError != "503" ||
		!d1.NextAttemptAt.Equal(us(sessT0.Add(10*time.Minute))) || d1.DeliveredAt != nil {
		t.Errorf("after a failed attempt: %+v", d1)
	}
	d2, _ := s.GetDelivery(ctx, "es2")
	if d2.State != store.DeliveryDelivered || d2.Attempts != 1 || d2.DeliveredAt == nil || !d2.DeliveredAt.Equal(us(sessT0.Add(time.Minute))) {
		t.Errorf("after delivery: %+v", d2)
	}
	attempts, err := s.ListDeliveryAttempts(ctx, "es1")
	want := store.DeliveryAttempt{DeliveryID: "es1", N: 1, At: us(sessT0.Add(time.Minute)), StatusCode: 503, Error: "503 Service Unavailable", Duration: 15 * time.Millisecond}
	if err != nil || len(attempts) != 1 || !reflect.DeepEqual(attempts[0], want) {
		t.Errorf("attempts = %+v, %v; want %+v", attempts, err, want)
	}
	// At +10m es1 (retry) and es3 are due; es2 never again.
	c2, err := s.ClaimDeliveries(ctx, sessT0.Add(10*time.Minute), sessT0.Add(11*time.Minute), 10)
	if err != nil || len(c2) != 2 || c2[0].ID != "es1" || c2[1].ID != "es3" || c2[0].Attempts != 1 {
		t.Fatalf("claim at +10m = %+v, %v", c2, err)
	}
	// A lease that ran out can be taken over; the old holder can then not finish.
	c3, err := s.ClaimDeliveries(ctx, sessT0.Add(11*time.Minute), sessT0.Add(12*time.Minute), 1)
	if err != nil || len(c3) != 1 || c3[0].ID != "es1" || c3[0].LeaseToken == c2[0].LeaseToken {
		t.Fatalf("take over an expired lease = %+v, %v", c3, err)
	}
	if err := s.FinishDeliveryAttempt(ctx, c2[0].LeaseToken, store.DeliveryAttempt{DeliveryID: "es1", At: sessT0.Add(11 * time.Minute), StatusCode: 200},
		store.DeliveryOutcome{State: store.DeliveryDelivered}); !errors.Is(err, store.ErrStatusChanged) {
		t.Errorf("finish under a lost lease: %v, want ErrStatusChanged", err)
	}
	if err := s.FinishDeliveryAttempt(ctx, c3[0].LeaseToken, store.DeliveryAttempt{DeliveryID: "es1", At: sessT0.Add(11 * time.Minute), Error: "timeout"},
		store.DeliveryOutcome{State: store.DeliveryFailed, LastError: "gave up"}); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.ListDeliveryAttempts(ctx, "es1"); len(a) != 2 || a[1].N != 2 || a[1].StatusCode != 0 {
		t.Errorf("attempts after the second = %+v", a)
	}
	failed, err := s.ListDeliveries(ctx, store.DeliveryFilter{State: store.DeliveryFailed})
	if err != nil || len(failed) != 1 || failed[0].ID != "es1" {
		t.Errorf("failed deliveries = %+v, %v", failed, err)
	}
	if all, _ := s.ListDeliveries(ctx, store.DeliveryFilter{Limit: 2}); len(all) != 2 || all[0].ID != "es3" {
		t.Errorf("newest two deliveries = %+v", all)
	}
}

// testDeliveryOrder: a session's later event waits while an earlier one is pending.
func testDeliveryOrder(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	mustApp(t, s, "a")
	mustWorkflow(t, s, "wf")
	mustVerification(t, s, newVerification("s1", "a", "wf", "u"))
	for i, st := range []string{store.StatusInProgress, store.StatusApproved} {
		d := newDelivery(fmt.Sprintf("e%d", i), "a", "s1", i)
		if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s1", Status: st, At: sessT0, Event: &d}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.ClaimDeliveries(ctx, sessT0, sessT0.Add(time.Minute), 10)
	if err != nil || len(c) != 1 || c[0].ID != "e0" {
		t.Fatalf("claim = %+v, %v; want only e0", c, err)
	}
	if err := s.FinishDeliveryAttempt(ctx, c[0].LeaseToken, store.DeliveryAttempt{DeliveryID: "e0", At: sessT0, StatusCode: 500},
		store.DeliveryOutcome{State: store.DeliveryPending, NextAttemptAt: sessT0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// e0 failed and waits an hour for its retry: the verdict e1 is not held back behind it, and
	// e0, now older than what the receiver will have, is never sent after it.
	c, err = s.ClaimDeliveries(ctx, sessT0.Add(time.Minute), sessT0.Add(2*time.Minute), 10)
	if err != nil || len(c) != 1 || c[0].ID != "e1" {
		t.Fatalf("claim after e0 failed = %+v, %v; want e1 at once", c, err)
	}
	if d, err := s.GetDelivery(ctx, "e0"); err != nil || d.State != store.DeliverySuperseded {
		t.Errorf("e0 after e1 was claimed: %+v, %v; want superseded", d, err)
	}
	if c, _ := s.ClaimDeliveries(ctx, sessT0.Add(90*time.Second), sessT0.Add(3*time.Minute), 10); len(c) != 0 {
		t.Errorf("claim while e1 is leased = %+v; want nothing (e0 superseded)", c)
	}

	// Strict order while nothing failed: a second session's two fresh events go one by one.
	mustVerification(t, s, newVerification("s2", "a", "wf", "v"))
	for i, st := range []string{store.StatusInProgress, store.StatusApproved} {
		d := newDelivery(fmt.Sprintf("f%d", i), "a", "s2", 10+i)
		if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s2", Status: st, At: sessT0, Event: &d}); err != nil {
			t.Fatal(err)
		}
	}
	c, err = s.ClaimDeliveries(ctx, sessT0, sessT0.Add(time.Minute), 10)
	if err != nil || len(c) != 1 || c[0].ID != "f0" {
		t.Fatalf("claim = %+v, %v; want only f0", c, err)
	}
	// While f0 is in flight (leased), f1 waits, and f0 is not superseded.
	if c, _ := s.ClaimDeliveries(ctx, sessT0.Add(time.Second), sessT0.Add(time.Minute), 10); len(c) != 0 {
		t.Errorf("f1 overtook f0 in flight: %+v", c)
	}
	if err := s.FinishDeliveryAttempt(ctx, c[0].LeaseToken, store.DeliveryAttempt{DeliveryID: "f0", At: sessT0, StatusCode: 204},
		store.DeliveryOutcome{State: store.DeliveryDelivered}); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.ClaimDeliveries(ctx, sessT0.Add(time.Second), sessT0.Add(time.Minute), 10); len(c) != 1 || c[0].ID != "f1" {
		t.Errorf("after f0, claim = %+v; want f1", c)
	}
}

func testConcurrentClaims(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	mustApp(t, s, "a")
	mustWorkflow(t, s, "wf")
	const n = 20
	for i := range n {
		id := fmt.Sprintf("s%02d", i)
		mustVerification(t, s, newVerification(id, "a", "wf", id))
		if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: id, Status: store.StatusApproved, At: sessT0, Event: ptr(newDelivery("e"+id, "a", id, i))}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				c, err := s.ClaimDeliveries(ctx, sessT0, sessT0.Add(time.Hour), 3)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, d := range c {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("claimed %d distinct deliveries, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s claimed %d times", id, k)
		}
	}
}

// testResubmission: the per-session liveness method is stored and raised; a Declined session
// that keeps its reference is due at its expiry (to drop the reference); a Resubmitted session
// is open (one per vendor data, found by FindOpenVerification, due at its new expiry) and its
// attempts start again.
func testResubmission(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	mustApp(t, s, "a")
	mustWorkflow(t, s, "wf")
	v := newVerification("s1", "a", "wf", "user-1")
	v.LivenessMethod = "FLASHING"
	if got := mustVerification(t, s, v); got.LivenessMethod != "FLASHING" {
		t.Errorf("liveness method %q, want FLASHING", got.LivenessMethod)
	}
	got, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s1", Status: store.StatusInProgress, LivenessMethod: "ACTIVE_3D", AddAttempt: true, At: sessT0})
	if err != nil || got.LivenessMethod != "ACTIVE_3D" || got.Attempts != 1 {
		t.Fatalf("raise the method: %+v, %v", got, err)
	}
	if got, err = s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s1", Status: store.StatusDeclined, Finished: true, At: sessT0}); err != nil || got.Reference == nil {
		t.Fatalf("decline keeping the reference: %+v, %v", got, err)
	}
	mustVerification(t, s, newVerification("s2", "a", "wf", "user-2")) // open, due at the same time
	due, err := s.ListDueVerifications(ctx, sessT0.Add(30*time.Minute), 10)
	if err != nil || len(due) != 2 || due[0].ID != "s1" {
		t.Fatalf("due: %+v, %v; want the declined session holding a reference and the open one", due, err)
	}
	later := sessT0.Add(time.Hour)
	got, err = s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s1", From: []string{store.StatusDeclined}, Status: store.StatusResubmitted,
		ResetAttempts: true, ExpiresAt: &later, At: sessT0})
	if err != nil || got.Status != store.StatusResubmitted || got.Attempts != 0 || !got.ExpiresAt.Equal(us(later)) {
		t.Fatalf("resubmit: %+v, %v", got, err)
	}
	if _, err := s.CreateVerification(ctx, newVerification("s3", "a", "wf", "user-1")); !errors.Is(err, store.ErrAlreadyExists) {
		t.Errorf("a second session beside a Resubmitted one: %v, want ErrAlreadyExists", err)
	}
	if open, err := s.FindOpenVerification(ctx, "a", "wf", "user-1"); err != nil || open.ID != "s1" {
		t.Errorf("FindOpenVerification = %s, %v; want the Resubmitted s1", open.ID, err)
	}
	if due, _ := s.ListDueVerifications(ctx, sessT0.Add(30*time.Minute), 10); len(due) != 1 || due[0].ID != "s2" {
		t.Errorf("due before the new expiry: %+v, want only s2", due)
	}
	if due, _ := s.ListDueVerifications(ctx, later, 10); len(due) != 2 {
		t.Errorf("due at the new expiry: %d sessions, want 2", len(due))
	}
	// Declined without a reference is never due.
	if _, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s2", Status: store.StatusDeclined, DropReference: true, Finished: true, At: sessT0}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.ListDueVerifications(ctx, later, 10); len(due) != 1 || due[0].ID != "s1" {
		t.Errorf("due: %+v, want only s1", due)
	}
	for _, st := range []string{store.StatusNotFinished, store.StatusKycExpired} {
		if got, err := s.UpdateVerification(ctx, store.VerificationUpdate{ID: "s2", Status: st, At: sessT0}); err != nil || got.Status != st {
			t.Errorf("status %q: %+v, %v", st, got.Status, err)
		}
	}
}

// testUserLinks: an application reaches a user only once linked, idempotently; unlinking takes
// it back; deleting the user removes the link.
func testUserLinks(t *testing.T, s store.SessionsStorage) {
	ctx := context.Background()
	users, ok := s.(store.Storage)
	if !ok {
		t.Skip("the backend does not hold users")
	}
	mustApp(t, s, "shop")
	mustApp(t, s, "bank")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, id := range []string{"u-alice", "u-bob"} {
		if err := users.CreateUser(ctx, store.User{ID: id, Username: id, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	linked := func(app, user string) bool {
		t.Helper()
		ok, err := s.UserLinked(ctx, app, user)
		if err != nil {
			t.Fatalf("UserLinked(%s, %s): %v", app, user, err)
		}
		return ok
	}
	if linked("shop", "u-alice") {
		t.Fatal("linked before LinkUser")
	}
	for range 2 {
		if err := s.LinkUser(ctx, "shop", "u-alice", "operator", now); err != nil {
			t.Fatalf("LinkUser: %v", err)
		}
	}
	if !linked("shop", "u-alice") || linked("bank", "u-alice") || linked("shop", "u-bob") {
		t.Fatal("links leak across applications or users")
	}
	if err := s.LinkUser(ctx, "nope", "u-alice", "operator", now); err == nil {
		t.Error("a link to an unknown application was stored")
	}
	if err := s.UnlinkUser(ctx, "shop", "u-alice"); err != nil || linked("shop", "u-alice") {
		t.Errorf("UnlinkUser: %v", err)
	}
	if err := s.UnlinkUser(ctx, "shop", "u-alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second UnlinkUser: %v, want ErrNotFound", err)
	}
	if err := s.LinkUser(ctx, "bank", "u-bob", "operator", now); err != nil {
		t.Fatal(err)
	}
	if err := users.DeleteUser(ctx, "u-bob"); err != nil {
		t.Fatal(err)
	}
	if linked("bank", "u-bob") {
		t.Error("the link outlived the user")
	}
}
