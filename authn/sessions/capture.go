package sessions

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/visage-idp/visage/authn"
	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/risk"
	"github.com/visage-idp/visage/authn/words"
	"github.com/visage-idp/visage/store"
)

// Client describes the browser that sent a selfie, for IP analysis.
type Client struct {
	IP        netip.Addr
	UserAgent string
}

// Outcome is what a capture concluded.
type Outcome struct {
	// Status is the session's status after the capture; In Progress when the image could not
	// be used and the user may try again (Retry).
	Status  string
	Retry   bool
	Message string // for the user
	Codes   []string
	Session store.Verification
}

// Capture is what the hosted page sent: one selfie (PASSIVE liveness, or no liveness), or the
// burst answering an ACTIVE_3D or FLASHING challenge.
type Capture struct {
	Frame       []byte
	ChallengeID string
	Burst       []liveness.Frame
}

// ErrWrongCapture: the capture does not fit the workflow's liveness method (a single selfie for
// a challenge method, or a burst for PASSIVE).
var ErrWrongCapture = errors.New("sessions: capture does not fit the workflow's liveness method")

// open checks that the session can still be completed, starting it if needed (a new or a
// Resubmitted session), expiring it when its time is up or its enrolment is gone, and applies
// the Tor/VPN escalation for the client's address.
func (s *Service) open(ctx context.Context, v store.Verification, wf store.Workflow, c Client) (store.Verification, error) {
	if slices.Contains(store.OpenStatuses, v.Status) && !s.now().Before(v.ExpiresAt) {
		out, err := s.Expire(ctx, v) // before Start: a session never opened in time is Expired, not Abandoned
		if err != nil {
			return v, err
		}
		return out, fmt.Errorf("%w: it expired", ErrFinished)
	}
	if v.Status == store.StatusNotStarted || v.Status == store.StatusResubmitted {
		var err error
		if v, err = s.Start(ctx, v); err != nil {
			return v, err
		}
	}
	if v.Status != store.StatusInProgress {
		return v, fmt.Errorf("%w: it is %s", ErrFinished, v.Status)
	}
	if gone, err := s.enrolmentGone(ctx, v); err != nil {
		return v, err
	} else if gone {
		out, err := s.KycExpire(ctx, v)
		if err != nil {
			return v, err
		}
		return out, fmt.Errorf("%w: the enrolment it compares against was deleted or replaced", ErrFinished)
	}
	return s.escalate(ctx, v, wf, c.IP)
}

// Challenge issues the liveness challenge of a session whose liveness method is ACTIVE_3D or
// FLASHING (the workflow's, the session's own, or escalated for the client's address).
func (s *Service) Challenge(ctx context.Context, v store.Verification, c Client) (liveness.Challenge, store.Verification, error) {
	wf, err := s.st.GetWorkflow(ctx, v.WorkflowID)
	if err != nil {
		return liveness.Challenge{}, v, fmt.Errorf("challenge: %w", err)
	}
	v, err = s.open(ctx, v, wf, c)
	if err != nil {
		return liveness.Challenge{}, v, err
	}
	m := liveness.Method(LivenessMethod(v, wf))
	if m != liveness.MethodActive3D && m != liveness.MethodFlashing {
		return liveness.Challenge{}, v, fmt.Errorf("%w: session %s has no challenge", ErrWrongCapture, v.ID)
	}
	if s.challenger == nil {
		return liveness.Challenge{}, v, fmt.Errorf("challenge: %w: %s liveness is not available on this server", liveness.ErrModel, m)
	}
	ch, err := s.challenger.Issue(m)
	if err != nil {
		return liveness.Challenge{}, v, fmt.Errorf("challenge: %w", err)
	}
	return ch, v, nil
}

// Capture runs the workflow on what the hosted page captured: liveness (PASSIVE on the selfie,
// or the ACTIVE_3D / FLASHING challenge on the burst), face match against the session's
// reference and IP analysis, then concludes the session (or asks for another try when the
// capture was unusable and attempts remain). Failed checks are outcomes, not errors; the
// error is for failures of the service (wrapping ErrBusy when the engine is full), or wraps
// ErrFinished when the session can no longer be completed, or ErrWrongCapture.
func (s *Service) Capture(ctx context.Context, v store.Verification, in Capture, c Client) (Outcome, error) {
	wf, err := s.st.GetWorkflow(ctx, v.WorkflowID)
	if err != nil {
		return Outcome{}, fmt.Errorf("capture: %w", err)
	}
	v, err = s.open(ctx, v, wf, c)
	if err != nil {
		return Outcome{Status: v.Status, Session: v}, err
	}
	method := LivenessMethod(v, wf)
	app, err := s.st.GetApplication(ctx, v.AppID)
	if err != nil {
		return Outcome{}, fmt.Errorf("capture: %w", err)
	}
	challenge := hasFeature(wf, FeatureLiveness) && method != string(liveness.MethodPassive)
	if challenge != (in.Burst != nil) || (!challenge && in.Frame == nil) {
		return Outcome{Status: v.Status, Session: v}, fmt.Errorf("%w: session %s wants %s", ErrWrongCapture, v.ID, map[bool]string{true: "a challenge burst", false: "one selfie"}[challenge])
	}
	var tmpl *face.Template
	if v.Reference != nil {
		if tmpl, err = s.keys.Open(v.Reference); err != nil {
			return Outcome{}, fmt.Errorf("capture: open the reference of %s: %w", v.ID, err)
		}
	}

	var res Results
	var probe *face.Analysis
	var statuses, codes []string
	unusable := ""     // why the frame cannot be used, if it cannot (for the results)
	unusableCode := "" // ... as a code: the person reads its sentence (authn/words)

	if hasFeature(wf, FeatureLiveness) {
		var r liveness.Result
		switch {
		case challenge && s.challenger == nil:
			return Outcome{}, fmt.Errorf("capture: %w: %s liveness is not available on this server", liveness.ErrModel, method)
		case challenge:
			r, err = s.challenger.Verify(ctx, in.ChallengeID, in.Burst, tmpl)
			if err != nil && (errors.Is(err, liveness.ErrChallenge) || errors.Is(err, liveness.ErrInvalidInput)) {
				// A challenge that cannot be checked (expired, used, a malformed burst) is an
				// unusable capture: the page asks again.
				unusable = "the check could not be completed (" + liveness.Code(err) + ")"
				unusableCode = liveness.Code(err)
				r.Probe, err = nil, nil
			} else if err == nil && r.Method != "" && risk.Strength(string(r.Method)) < risk.Strength(method) {
				// A challenge issued before the session was escalated does not count.
				unusable = "the check is weaker than this verification needs (" + string(r.Method) + ", not " + method + ")"
				unusableCode = liveness.CodeInvalidMethod
				r = liveness.Result{}
			}
		case s.passive == nil:
			return Outcome{}, fmt.Errorf("capture: %w: PASSIVE liveness is not available on this server", liveness.ErrModel)
		default:
			r, err = s.passive.CheckFrame(ctx, s.engine, in.Frame)
		}
		if err != nil {
			return Outcome{}, s.systemError("capture: liveness", err)
		}
		lc := LivenessCheck{NodeID: "liveness_1", Method: string(r.Method), Score: float64(r.Score), Warnings: []Warning{}}
		switch {
		case r.Probe == nil:
			lc.Status = store.StatusDeclined
			lc.Score = 0
			if unusable == "" {
				unusable = firstMessage(r.Warnings)
				unusableCode = face.CodeNoFaceDetected
				if len(r.Warnings) > 0 {
					unusableCode = r.Warnings[0].Code
				}
			}
		case challenge && !r.Live:
			// A failed challenge check (wrong turns, a flat face, no reflection) is decisive.
			lc.Status = store.StatusDeclined
			probe = r.Probe
		default:
			lc.Status = band(lc.Score, wf.LivenessApprove, wf.LivenessDecline)
			probe = r.Probe
		}
		if lc.Method == "" {
			lc.Method = method
		}
		for _, w := range r.Warnings {
			lc.Warnings = append(lc.Warnings, warning(w.Code, logTypeFor(lc.Status), w.Message))
			codes = append(codes, w.Code)
		}
		if lc.Status != store.StatusApproved && r.Probe != nil && len(r.Warnings) == 0 {
			lc.Warnings = append(lc.Warnings, warning(CodeLowLivenessScore, logTypeFor(lc.Status),
				fmt.Sprintf("The liveness score %v is below the workflow's approval threshold %d.", lc.Score, wf.LivenessApprove)))
			codes = append(codes, CodeLowLivenessScore)
		}
		res.LivenessChecks = []LivenessCheck{lc}
		statuses = append(statuses, lc.Status)
	} else {
		a, err := s.engine.Analyze(ctx, in.Frame)
		if err != nil {
			if systemFailure(ctx, err) {
				return Outcome{}, s.systemError("capture: analyse", err)
			}
			unusable = imageReason(err)
			unusableCode = face.Code(err)
			codes = append(codes, face.Code(err))
		} else {
			probe = a
		}
	}
	if probe != nil && !probe.Usable() {
		unusable = imageReason(probe.Err())
		unusableCode = face.Code(probe.Err())
		if !hasFeature(wf, FeatureLiveness) {
			codes = append(codes, face.Code(probe.Err()))
		}
	}
	if unusable != "" && v.Attempts+1 < wf.MaxAttempts {
		out, err := s.transition(ctx, v, store.VerificationUpdate{From: []string{store.StatusInProgress}, AddAttempt: true}, nil, nil)
		if err != nil {
			return Outcome{}, err
		}
		s.log.InfoContext(ctx, "session capture unusable", "session", v.ID, "codes", strings.Join(codes, ","), "attempt", out.Attempts)
		return Outcome{Status: out.Status, Retry: true, Message: words.For(unusableCode), Codes: codes, Session: out}, nil
	}

	if hasFeature(wf, FeatureFaceMatch) {
		fm := FaceMatch{NodeID: "face_match_1", ReferenceSource: v.ReferenceSource, Warnings: []Warning{}}
		switch {
		case v.Reference == nil:
			fm.Status = store.StatusDeclined
			fm.Warnings = append(fm.Warnings, warning(CodeNoReferenceImage, LogError, "There is no reference face to compare with."))
			codes = append(codes, CodeNoReferenceImage)
		case probe == nil || !probe.Usable():
			fm.Status = store.StatusDeclined
			code := face.CodeNoFaceDetected
			if probe != nil {
				code = face.Code(probe.Err())
			}
			fm.Warnings = append(fm.Warnings, warning(code, LogError, "The selfie has no usable face: "+unusable+"."))
			codes = append(codes, code)
		default:
			m := s.engine.Match(tmpl, probe.Face)
			fm.Score = score2(100 * m.Similarity)
			fm.Status = band(fm.Score, wf.FaceMatchApprove, wf.FaceMatchDecline)
			if m.Code != "" {
				fm.Status = store.StatusDeclined
				fm.Warnings = append(fm.Warnings, warning(m.Code, LogError, "The reference face cannot be compared with this selfie."))
				codes = append(codes, m.Code)
			} else if fm.Status != store.StatusApproved {
				fm.Warnings = append(fm.Warnings, warning(CodeLowFaceMatch, logTypeFor(fm.Status),
					fmt.Sprintf("The face match score %v is below the workflow's approval threshold %d.", fm.Score, wf.FaceMatchApprove)))
				codes = append(codes, CodeLowFaceMatch)
			}
		}
		res.FaceMatches = []FaceMatch{fm}
		statuses = append(statuses, fm.Status)
	}
	if hasFeature(wf, FeatureIPAnalysis) {
		ia := s.ipAnalysis(c)
		res.IPAnalyses = []IPAnalysis{ia}
		statuses = append(statuses, ia.Status)
		for _, w := range ia.Warnings {
			codes = append(codes, w.Risk)
		}
	}
	status := verdict(statuses...)
	// A Declined session keeps its reference face until it expires, so that it can be
	// resubmitted; every other verdict drops it now.
	u := store.VerificationUpdate{From: []string{store.StatusInProgress}, Status: status, AddAttempt: true,
		DropReference: status != store.StatusDeclined, Finished: true}
	if c.IP.IsValid() {
		u.IPAddress = c.IP.String()
	}
	if app.KeepImages {
		for _, f := range keptFrames(in) {
			sealed, err := s.keys.Seal(&face.Template{ModelVersion: "frame", Image: f, CreatedAt: s.now()})
			if err != nil {
				return Outcome{}, fmt.Errorf("capture: seal a frame: %w", err)
			}
			u.Images = append(u.Images, store.VerificationImage{Kind: "selfie", Sealed: sealed, CreatedAt: s.now()})
		}
	}
	out, err := s.transition(ctx, v, u, &res, nil)
	if err != nil {
		return Outcome{}, err
	}
	s.log.InfoContext(ctx, "session capture", "session", v.ID, "status", status, "codes", strings.Join(codes, ","))
	msg := map[string]string{
		store.StatusApproved:   "Verified. You can go back to the application.",
		store.StatusDeclined:   "Not verified. Go back to the application.",
		store.StatusInReview:   "Thank you. Your verification will be reviewed.",
		store.StatusInProgress: "",
	}[status]
	return Outcome{Status: out.Status, Message: msg, Codes: codes, Session: out}, nil
}

// maxKeptFrames is how many frames of a burst are kept when the application keeps images.
const maxKeptFrames = 5

// keptFrames picks the frames to keep: the selfie, or up to maxKeptFrames of a burst, evenly
// spread.
func keptFrames(in Capture) [][]byte {
	if in.Burst == nil {
		return [][]byte{in.Frame}
	}
	n := len(in.Burst)
	var out [][]byte
	for i := range min(n, maxKeptFrames) {
		k := i * (n - 1) / max(min(n, maxKeptFrames)-1, 1)
		out = append(out, in.Burst[k].Data)
	}
	return out
}

// imageReason explains, for the user, why an image cannot be used.
func imageReason(err error) string {
	var fe *face.Error
	if errors.Is(err, face.ErrQuality) && errors.As(err, &fe) && fe.Cause != nil {
		return "it is not good enough (" + fe.Cause.Error() + ")"
	}
	return authn.ReasonFor(err)
}

func firstMessage(ws []liveness.Warning) string {
	for _, w := range ws {
		if w.Message != "" {
			return w.Message
		}
	}
	return "no usable face was found"
}

func (s *Service) systemError(what string, err error) error {
	if errors.Is(err, face.ErrQueueFull) {
		return fmt.Errorf("%s: %w: %w", what, ErrBusy, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ipAnalysis checks the client address against the Tor and VPN lists and describes the
// browser from its User-Agent.
func (s *Service) ipAnalysis(c Client) IPAnalysis {
	ia := IPAnalysis{NodeID: "ip_analysis_1", Status: store.StatusApproved, Warnings: []Warning{}, UserAgent: c.UserAgent}
	ia.BrowserFamily, ia.OSFamily, ia.DeviceType = describeUserAgent(c.UserAgent)
	if c.IP.IsValid() {
		ia.IPAddress = c.IP.String()
		ia.IsVPNOrTor = s.tor.Contains(c.IP) || s.vpn.Contains(c.IP)
	}
	if ia.IsVPNOrTor {
		ia.Status = store.StatusInReview
		ia.Warnings = append(ia.Warnings, warning(CodeVPNOrTor, LogWarning, "The address is a Tor exit or a VPN/hosting address."))
	}
	return ia
}

// describeUserAgent extracts the browser family, OS family and device type from a User-Agent,
// by the common tokens; anything else is "Other".
func describeUserAgent(ua string) (browser, os, device string) {
	browser, os, device = "Other", "Other", "desktop"
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"}, {"Firefox/", "Firefox"},
		{"HeadlessChrome/", "HeadlessChrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	for _, o := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iOS"}, {"Windows", "Windows"}, {"Mac OS X", "macOS"},
		{"CrOS", "Chrome OS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			os = o.name
			break
		}
	}
	switch {
	case strings.Contains(ua, "iPad") || strings.Contains(ua, "Tablet"):
		device = "tablet"
	case strings.Contains(ua, "Mobile") || strings.Contains(ua, "iPhone") || strings.Contains(ua, "Android"):
		device = "mobile"
	}
	return browser, os, device
}
