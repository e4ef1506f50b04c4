package sessions

import (
	"encoding/json"
	"math"
	"time"

	"github.com/visage-idp/visage/store"
)

// Features of a workflow, in Didit's enums.
const (
	FeatureLiveness   = "LIVENESS"
	FeatureFaceMatch  = "FACE_MATCH"
	FeatureIPAnalysis = "IP_ANALYSIS"
)

// WorkflowType is the only workflow type: re-authentication of a returning user. A workflow of
// this type must contain LIVENESS.
const WorkflowType = "biometric_authentication"

// Warning codes this package adds to those of authn/face and authn/liveness.
const (
	CodeLowFaceMatch     = "LOW_FACE_MATCH_SIMILARITY"
	CodeNoReferenceImage = "NO_REFERENCE_IMAGE"
	CodeVPNOrTor         = "IP_VPN_OR_TOR_DETECTED"
	CodeLowLivenessScore = "LOW_LIVENESS_SCORE"
)

// Log types of a warning, as Didit names them.
const (
	LogInformation = "information"
	LogWarning     = "warning"
	LogError       = "error"
)

// Warning is a Didit-style warning.
type Warning struct {
	Risk             string  `json:"risk"`
	AdditionalData   *string `json:"additional_data"`
	LogType          string  `json:"log_type"`
	ShortDescription string  `json:"short_description"`
	LongDescription  string  `json:"long_description"`
}

// LivenessCheck is one liveness result.
type LivenessCheck struct {
	NodeID   string    `json:"node_id"`
	Status   string    `json:"status"`
	Method   string    `json:"method"`
	Score    float64   `json:"score"`
	Warnings []Warning `json:"warnings"`
}

// FaceMatch is one face-match result.
type FaceMatch struct {
	NodeID          string    `json:"node_id"`
	Status          string    `json:"status"`
	Score           float64   `json:"score"`
	ReferenceSource string    `json:"reference_source"` // portrait_image | enrolled
	Warnings        []Warning `json:"warnings"`
}

// IPAnalysis is the address and device the hosted page was completed from.
type IPAnalysis struct {
	NodeID        string    `json:"node_id"`
	Status        string    `json:"status"`
	IPAddress     string    `json:"ip_address"`
	IsVPNOrTor    bool      `json:"is_vpn_or_tor"`
	BrowserFamily string    `json:"browser_family"`
	OSFamily      string    `json:"os_family"`
	DeviceType    string    `json:"device_type"`
	UserAgent     string    `json:"user_agent"`
	Warnings      []Warning `json:"warnings"`
}

// Results are the feature results stored with a session (store.Verification.Results).
type Results struct {
	LivenessChecks []LivenessCheck `json:"liveness_checks"`
	FaceMatches    []FaceMatch     `json:"face_matches"`
	IPAnalyses     []IPAnalysis    `json:"ip_analyses"`
}

// ReviewEntry is a review in the decision.
type ReviewEntry struct {
	User      string `json:"user"`
	NewStatus string `json:"new_status"`
	Comment   string `json:"comment"`
	CreatedAt string `json:"created_at"`
}

// LivenessSummary is the top-level liveness block of Didit's biometric re-authentication guide:
// the liveness check's status, method and 0-100 score.
type LivenessSummary struct {
	Status string  `json:"status"`
	Method string  `json:"method"`
	Score  float64 `json:"score"`
}

// FaceSummary is the top-level face block of the guide: the face match's status and its
// similarity from 0 to 1 (the face_matches score divided by 100).
type FaceSummary struct {
	Status          string  `json:"status"`
	SimilarityScore float64 `json:"similarity_score"`
}

// summaries derives the guide's top-level blocks from the result arrays: nil until the check
// ran (or when the workflow does not have it).
func summaries(lcs []LivenessCheck, fms []FaceMatch) (*LivenessSummary, *FaceSummary) {
	var l *LivenessSummary
	var f *FaceSummary
	if len(lcs) > 0 {
		l = &LivenessSummary{Status: lcs[0].Status, Method: lcs[0].Method, Score: lcs[0].Score}
	}
	if len(fms) > 0 {
		f = &FaceSummary{Status: fms[0].Status, SimilarityScore: math.Round(fms[0].Score*100) / 10000}
	}
	return l, f
}

// Decision is the body of GET /v3/session/{id}/decision/ and the decision of a webhook. A
// feature array is null when the workflow does not have the feature and empty until it ran;
// liveness and face (the guide's shape of the same results) are null until they ran.
type Decision struct {
	SessionID      string           `json:"session_id"`
	SessionNumber  int64            `json:"session_number"`
	SessionURL     string           `json:"session_url"`
	Status         string           `json:"status"`
	WorkflowID     string           `json:"workflow_id"`
	Features       []string         `json:"features"`
	VendorData     string           `json:"vendor_data"`
	Metadata       json.RawMessage  `json:"metadata"`
	Callback       string           `json:"callback"`
	CreatedAt      string           `json:"created_at"`
	ExpiresAt      string           `json:"expires_at"`
	LivenessChecks []LivenessCheck  `json:"liveness_checks"`
	FaceMatches    []FaceMatch      `json:"face_matches"`
	IPAnalyses     []IPAnalysis     `json:"ip_analyses"`
	Liveness       *LivenessSummary `json:"liveness"`
	Face           *FaceSummary     `json:"face"`
	Reviews        []ReviewEntry    `json:"reviews"`
}

// timeText formats times as Didit does: RFC 3339 in UTC with microseconds.
func timeText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }

// score2 rounds a 0-100 score to two decimals.
func score2(v float64) float64 { return math.Round(v*100) / 100 }

// verdict combines per-feature statuses: any Declined declines, else any In Review reviews,
// else Approved.
func verdict(statuses ...string) string {
	out := store.StatusApproved
	for _, s := range statuses {
		switch s {
		case store.StatusDeclined:
			return store.StatusDeclined
		case store.StatusInReview:
			out = store.StatusInReview
		}
	}
	return out
}

// band applies a workflow's thresholds to a score: at or above approve approves, below
// decline declines, between goes to review.
func band(score float64, approve, decline int) string {
	switch {
	case score >= float64(approve):
		return store.StatusApproved
	case score < float64(decline):
		return store.StatusDeclined
	}
	return store.StatusInReview
}

func warning(code, logType, short string) Warning {
	return Warning{Risk: code, LogType: logType, ShortDescription: short, LongDescription: short}
}

// logTypeFor is the log type of a warning on a feature with that status.
func logTypeFor(status string) string {
	switch status {
	case store.StatusDeclined:
		return LogError
	case store.StatusInReview:
		return LogWarning
	}
	return LogInformation
}

func hasFeature(w store.Workflow, f string) bool {
	for _, x := range w.Features {
		if x == f {
			return true
		}
	}
	return false
}
