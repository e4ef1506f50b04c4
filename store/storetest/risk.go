package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/visage-idp/visage/store"
)

// RiskBackend is a backend with the adaptive step-up records.
type RiskBackend interface {
	store.Storage
	store.RiskStorage
}

// RunRiskConformance runs the store.RiskStorage suite. Beyond the interface's comments it pins
// down: ListDevices is most recently seen first, ListAudit newest first with IDs increasing,
// SuccessfulIPs distinct and sorted, and DeleteUser removes the user's devices.
func RunRiskConformance(t *testing.T, newStorage func(t *testing.T) RiskBackend) {
	t.Helper()
	for _, tt := range []struct {
		name string
		run  func(t *testing.T, s RiskBackend)
	}{
		{"Devices", testDevices},
		{"KnownAddresses", testKnownAddresses},
		{"Failures", testFailures},
		{"Audit", testAudit},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStorage(t)) })
	}
}

func riskUser(t *testing.T, s RiskBackend, id string) {
	t.Helper()
	now := time.Now().UTC()
	if err := s.CreateUser(context.Background(), store.User{ID: id, Username: "user-" + id, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

func testDevices(t *testing.T, s RiskBackend) {
	ctx := context.Background()
	riskUser(t, s, "u1")
	riskUser(t, s, "u2")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	if _, err := s.GetDevice(ctx, "d1", "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown device: %v", err)
	}
	if err := s.TouchDevice(ctx, store.Device{ID: "d1", UserID: "u1", UserAgent: "ua1", LastSeen: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchDevice(ctx, store.Device{ID: "d2", UserID: "u1", UserAgent: "ua2", LastSeen: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	d, err := s.GetDevice(ctx, "d1", "u1")
	if err != nil || !d.FirstSeen.Equal(t0) || !d.LastSeen.Equal(t0) || d.UserAgent != "ua1" || d.RevokedAt != nil {
		t.Fatalf("GetDevice = %+v, %v", d, err)
	}
	if _, err := s.GetDevice(ctx, "d1", "u2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a device is bound to its user: %v", err)
	}
	if err := s.RevokeDevice(ctx, "d1", "u1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.GetDevice(ctx, "d1", "u1"); d.RevokedAt == nil || !d.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("revoked device = %+v", d)
	}
	if err := s.RevokeDevice(ctx, "nope", "u1", t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	// A new approved sign-in re-binds it: LastSeen moves, FirstSeen stays, revocation clears.
	if err := s.TouchDevice(ctx, store.Device{ID: "d1", UserID: "u1", UserAgent: "ua1b", LastSeen: t0.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d, _ = s.GetDevice(ctx, "d1", "u1")
	if !d.FirstSeen.Equal(t0) || !d.LastSeen.Equal(t0.Add(2*time.Hour)) || d.RevokedAt != nil || d.UserAgent != "ua1b" {
		t.Fatalf("touched device = %+v", d)
	}
	list, err := s.ListDevices(ctx, "u1")
	if err != nil || len(list) != 2 || list[0].ID != "d1" || list[1].ID != "d2" {
		t.Fatalf("ListDevices = %+v, %v", list, err)
	}
	if err := s.TouchDevice(ctx, store.Device{ID: "d1", UserID: "u2", LastSeen: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListDevices(ctx, "u1"); len(list) != 0 {
		t.Fatalf("DeleteUser left devices: %+v", list)
	}
	if _, err := s.GetDevice(ctx, "d1", "u2"); err != nil {
		t.Fatalf("another user's device must stay: %v", err)
	}
}

func testKnownAddresses(t *testing.T, s RiskBackend) {
	ctx := context.Background()
	riskUser(t, s, "u1")
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	for _, a := range []store.Attempt{
		{UserID: "u1", IP: "198.51.100.9", Success: true, At: t0},
		{UserID: "u1", IP: "198.51.100.9", Success: true, At: t0.Add(time.Minute)},
		{UserID: "u1", IP: "203.0.113.5", Success: true, At: t0.Add(-48 * time.Hour)},
		{UserID: "u1", IP: "192.0.2.1", Success: false, At: t0},
		{UserID: "u1", IP: "192.0.2.1", Success: false, At: t0.Add(time.Second)},
		{UserID: "other", IP: "192.0.2.1", Success: false, At: t0.Add(2 * time.Second)},
	} {
		if err := s.RecordAttempt(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	ips, err := s.SuccessfulIPs(ctx, "u1", t0.Add(-time.Hour))
	if err != nil || !slices.Equal(ips, []string{"198.51.100.9"}) {
		t.Fatalf("SuccessfulIPs = %v, %v", ips, err)
	}
	ips, _ = s.SuccessfulIPs(ctx, "u1", t0.Add(-72*time.Hour))
	if !slices.Equal(ips, []string{"198.51.100.9", "203.0.113.5"}) {
		t.Fatalf("SuccessfulIPs (wider window) = %v", ips)
	}
	n, err := s.CountIPFailures(ctx, "192.0.2.1", t0.Add(-time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("CountIPFailures = %d, %v; want 3 (across users)", n, err)
	}
	if n, _ := s.CountIPFailures(ctx, "192.0.2.1", t0.Add(time.Millisecond)); n != 2 {
		t.Fatalf("CountIPFailures since = %d, want 2", n)
	}
	if err := s.RecordAttempt(ctx, store.Attempt{UserID: "u1", IP: "192.0.2.1", Success: true, At: t0.Add(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountIPFailures(ctx, "192.0.2.1", t0.Add(-time.Hour)); n != 3 {
		t.Fatalf("after a success from the address: %d failures, want still 3 (a success must not wipe failures against others)", n)
	}
}

// testFailures: lockout counts per account, per account and device, and per address, with the
// account's and device's counts reset by a success there and nowhere else.
func testFailures(t *testing.T, s RiskBackend) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	for _, a := range []store.Attempt{
		{UserID: "owner", IP: "198.51.100.9", DeviceID: "owner-phone", Success: true, At: t0},
		{UserID: "owner", IP: "203.0.113.66", DeviceID: "attacker", Success: false, At: t0.Add(1 * time.Second)},
		{UserID: "owner", IP: "203.0.113.66", DeviceID: "attacker", Success: false, At: t0.Add(2 * time.Second)},
		{UserID: "owner", IP: "203.0.113.66", Success: false, At: t0.Add(3 * time.Second)},
		{UserID: "owner", IP: "198.51.100.9", DeviceID: "owner-phone", Success: false, At: t0.Add(4 * time.Second)},
		{UserID: "attacker", IP: "203.0.113.66", DeviceID: "attacker", Success: true, At: t0.Add(5 * time.Second)},
	} {
		if err := s.RecordAttempt(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	since := t0.Add(-time.Hour)
	tests := []struct {
		name     string
		q        store.FailureQuery
		want     int
		wantLast time.Time
	}{
		{"account", store.FailureQuery{UserID: "owner", Since: since, ResetOnSuccess: true}, 4, t0.Add(4 * time.Second)},
		{"account and the owner's device", store.FailureQuery{UserID: "owner", DeviceID: "owner-phone", Since: since, ResetOnSuccess: true}, 1, t0.Add(4 * time.Second)},
		{"account and the attacker's device", store.FailureQuery{UserID: "owner", DeviceID: "attacker", Since: since, ResetOnSuccess: true}, 2, t0.Add(2 * time.Second)},
		{"address, any account, not reset by the attacker's own success", store.FailureQuery{IP: "203.0.113.66", Since: since}, 3, t0.Add(3 * time.Second)},
		{"account and address", store.FailureQuery{UserID: "owner", IP: "198.51.100.9", Since: since, ResetOnSuccess: true}, 1, t0.Add(4 * time.Second)},
		{"since", store.FailureQuery{UserID: "owner", Since: t0.Add(3 * time.Second), ResetOnSuccess: true}, 2, t0.Add(4 * time.Second)},
		{"nobody", store.FailureQuery{UserID: "nobody", Since: since, ResetOnSuccess: true}, 0, time.Time{}},
	}
	for _, tc := range tests {
		n, last, err := s.Failures(ctx, tc.q)
		if err != nil || n != tc.want || !last.Equal(tc.wantLast) {
			t.Errorf("%s: %d, last %v, %v; want %d, last %v", tc.name, n, last, err, tc.want, tc.wantLast)
		}
	}
	if _, _, err := s.Failures(ctx, store.FailureQuery{Since: since}); err == nil {
		t.Error("a query for every account and address was accepted")
	}
	// A success on the owner's phone resets that device's and the account's counts.
	if err := s.RecordAttempt(ctx, store.Attempt{UserID: "owner", IP: "198.51.100.9", DeviceID: "owner-phone", Success: true, At: t0.Add(6 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.Failures(ctx, store.FailureQuery{UserID: "owner", Since: since, ResetOnSuccess: true}); n != 0 {
		t.Errorf("account failures after the owner's success: %d, want 0", n)
	}
	// An administrator's unlock deletes the account's failures, and only them.
	n, err := s.ClearFailures(ctx, "owner")
	if err != nil || n != 4 {
		t.Errorf("ClearFailures = %d, %v; want 4", n, err)
	}
	if n, _ := s.CountIPFailures(ctx, "203.0.113.66", since); n != 0 {
		t.Errorf("address failures after the unlock: %d, want 0", n)
	}
	if ips, _ := s.SuccessfulIPs(ctx, "owner", since); len(ips) != 1 {
		t.Errorf("successful addresses after the unlock: %v, want the owner's", ips)
	}
}

func testAudit(t *testing.T, s RiskBackend) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	want := []store.AuditEvent{
		{At: t0, UserID: "u1", ClientID: "c", IP: "192.0.2.1", DeviceID: "d", DeviceKnown: true, IPKnown: true, Method: "NONE", Outcome: "approved", Reason: "known device, known network"},
		{At: t0.Add(time.Second), UserID: "u2", ClientID: "c", IP: "192.0.2.2", Tor: true, Method: "ACTIVE_3D", Outcome: "declined", Reason: "new device from a Tor exit"},
		{At: t0.Add(2 * time.Second), UserID: "u1", ClientID: "c", IP: "192.0.2.3", VPN: true, Method: "PASSIVE", Outcome: "approved"},
	}
	for _, e := range want {
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ListAudit(ctx, "", 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("ListAudit = %d, %v", len(all), err)
	}
	for i, got := range all {
		w := want[len(want)-1-i]
		w.ID = got.ID
		if !got.At.Equal(w.At) {
			t.Fatalf("event %d time %v, want %v", i, got.At, w.At)
		}
		got.At = w.At
		if got != w {
			t.Fatalf("event %d = %+v, want %+v", i, got, w)
		}
		if i > 0 && got.ID >= all[i-1].ID {
			t.Fatalf("ids not decreasing: %d then %d", all[i-1].ID, got.ID)
		}
	}
	u1, _ := s.ListAudit(ctx, "u1", 10)
	if len(u1) != 2 || u1[0].IP != "192.0.2.3" {
		t.Fatalf("ListAudit(u1) = %+v", u1)
	}
	if one, _ := s.ListAudit(ctx, "", 1); len(one) != 1 || one[0].UserID != "u1" {
		t.Fatalf("limit: %+v", one)
	}
}
