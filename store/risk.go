package store

import (
	"context"
	"time"
)

// Device is a browser a user signed in from with an approved selfie, named by the random id in
// its device cookie. The same browser used by two users is two records.
type Device struct {
	ID        string
	UserID    string
	UserAgent string
	FirstSeen time.Time
	LastSeen  time.Time
	RevokedAt *time.Time
}

// AuditEvent records one step-up decision with its inputs and outcome.
type AuditEvent struct {
	ID          int64 // assigned by the store
	At          time.Time
	UserID      string
	ClientID    string
	IP          string
	DeviceID    string
	DeviceKnown bool
	IPKnown     bool
	Tor         bool
	VPN         bool
	Method      string // NONE, PASSIVE, ACTIVE_3D, FLASHING
	Outcome     string // approved, declined, locked, ...
	Reason      string
}

// RiskStorage holds what adaptive step-up needs. Backends implement it beside Storage.
type RiskStorage interface {
	// TouchDevice binds a device to a user after an approved sign-in: it creates the record
	// (FirstSeen = LastSeen = d.LastSeen) or updates LastSeen and UserAgent, and clears a
	// revocation (a fresh selfie re-establishes trust).
	TouchDevice(ctx context.Context, d Device) error
	// GetDevice returns the device record of that user.
	GetDevice(ctx context.Context, id, userID string) (Device, error)
	ListDevices(ctx context.Context, userID string) ([]Device, error)
	RevokeDevice(ctx context.Context, id, userID string, at time.Time) error

	// SuccessfulIPs lists the distinct addresses of the user's successful attempts since the time.
	SuccessfulIPs(ctx context.Context, userID string, since time.Time) ([]string, error)
	// CountIPFailures counts failed attempts from the address since the time, for any account. A
	// success from the address does not reset it: an attacker's sign-ins to his own account must
	// not wipe his failures against others'.
	CountIPFailures(ctx context.Context, ip string, since time.Time) (int, error)
	// Failures counts the failed attempts that q selects and returns the time of the latest
	// (zero when there is none).
	Failures(ctx context.Context, q FailureQuery) (n int, last time.Time, err error)
	// ClearFailures deletes the user's failed attempts (an administrator's unlock) and returns
	// how many there were.
	ClearFailures(ctx context.Context, userID string) (int64, error)

	AppendAudit(ctx context.Context, e AuditEvent) error
	// ListAudit returns the newest events first; userID "" means every user.
	ListAudit(ctx context.Context, userID string, limit int) ([]AuditEvent, error)
}

// FailureQuery selects failed sign-in attempts for lockout. At least one of UserID and IP is set.
type FailureQuery struct {
	UserID   string // "" for any account
	DeviceID string // "" for any device
	IP       string // "" for any address
	Since    time.Time
	// ResetOnSuccess counts only the failures after the latest success that matches the same
	// fields (the same account, device and address, where set).
	ResetOnSuccess bool
}
