package liveness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/visage-idp/visage/authn/face"
)

// Head-turn steps of an ACTIVE_3D challenge, from the user's point of view: "left" is the user's
// own left, which in the (unmirrored) camera image turns the face towards the image's right,
// i.e. a negative face.Face.Yaw.
const (
	StepLeft   = "left"
	StepRight  = "right"
	StepCenter = "center"
)

// ColorStep is one screen colour of a FLASHING challenge.
type ColorStep struct {
	// Color is "#rrggbb".
	Color string `json:"color"`
	// StartMS is when the page shows the colour, in milliseconds after the sequence start,
	// which is the capture time of the first frame (a frame taken just before the first
	// colour, under the page's normal light).
	StartMS int `json:"start_ms"`
	// DurationMS is how long the colour stays on screen.
	DurationMS int `json:"duration_ms"`
}

// Challenge is what the page needs to run a challenge. It serialises to the JSON the page reads.
type Challenge struct {
	ID     string `json:"id"`
	Method Method `json:"method"`
	// Steps (ACTIVE_3D): the head turns in order, always ending with "center". The burst starts
	// with the user looking at the camera before the first step.
	Steps []string `json:"steps,omitempty"`
	// StepMS (ACTIVE_3D): how long the page gives each step (and the initial look at the
	// camera), capturing a frame every FrameIntervalMS.
	StepMS int `json:"step_ms,omitempty"`
	// Colors (FLASHING): the sequence, back to back.
	Colors []ColorStep `json:"colors,omitempty"`
	// FrameIntervalMS is how often the page should capture a frame (ACTIVE_3D); for FLASHING
	// the page captures FramesPerColor frames in the second half of each colour.
	FrameIntervalMS int       `json:"frame_interval_ms,omitempty"`
	FramesPerColor  int       `json:"frames_per_color,omitempty"`
	IssuedAt        time.Time `json:"issued_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	// Limits of the answer.
	MaxFrames     int   `json:"max_frames"`
	MaxFrameBytes int64 `json:"max_frame_bytes"`
	MaxBurstBytes int64 `json:"max_burst_bytes"`
}

// turns returns the issued head turns without the final centre.
func (c *Challenge) turns() []string {
	var t []string
	for _, s := range c.Steps {
		if s != StepCenter {
			t = append(t, s)
		}
	}
	return t
}

// ChallengerConfig configures a Challenger. Engine and Passive are required; zero values take
// the defaults documented on each field.
type ChallengerConfig struct {
	Engine  *face.Engine
	Passive *Passive
	// TTL: a challenge must be answered within this time of being issued. Default 60 s.
	TTL time.Duration
	// MaxPending bounds the challenges kept in memory (issued, not yet answered or expired);
	// Issue fails with CHALLENGE_CAPACITY beyond it. Default 10000.
	MaxPending int
	// Frame limits of an answer. Defaults: 32 frames, 400 KiB per frame, 8 MiB per burst; at
	// least 4 frames (ACTIVE_3D) or one per colour plus the first (FLASHING).
	MaxFrames     int
	MaxFrameBytes int64
	MaxBurstBytes int64
	// Workers is how many frames of a burst are analysed at once. Default: the engine's
	// workers (more would only queue, and could fill the engine's queue).
	Workers int
	Active  ActiveConfig
	Flash   FlashConfig
	// Now and Rand replace the clock and crypto/rand (tests).
	Now  func() time.Time
	Rand io.Reader
	// Logger receives one line per issued and verified challenge (id prefix, method, outcome,
	// codes; never face data). Default slog.Default().
	Logger *slog.Logger
}

// ActiveConfig holds the ACTIVE_3D thresholds (see README.md for the measurements).
type ActiveConfig struct {
	// TurnYaw: a frame counts as turned when its yaw differs from the initial frontal yaw by at
	// least this many degrees (this package's landmark estimate, landmarkYaw, which under-reads
	// real angles: Pointing'04's 45 degree turns read 17-41). Default 15.
	TurnYaw float64
	// CenterYaw: a frame counts as frontal when within this many degrees of the initial yaw.
	// Default 10.
	CenterYaw float64
	// MaxStartYaw: the initial frames must have |yaw| below this. Default 20.
	MaxStartYaw float64
	// FlatCorrelation: a turned face whose texture a homography aligns with the frontal face to
	// this correlation or better is a flat picture (FLAT_MOTION). Default 0.95.
	FlatCorrelation float64
	// MaxFaceDistance: every frame's descriptor must be within this distance of the frontal
	// reference frame's (FACE_CHANGED). Default: the engine's policy DeclineAbove (0.6).
	MaxFaceDistance float64
	// MaxTurnedFaceDistance is the same limit for frames that are not frontal (beyond
	// CenterYaw), whose descriptors drift from
	// the frontal one (up to about 0.6 for the same person at 45 degrees on Pointing'04).
	// Default MaxFaceDistance + 0.1.
	MaxTurnedFaceDistance float64
	// MaxMissingFaces is the fraction of frames allowed without a detected face (blur, a
	// strong turn). Default 0.25.
	MaxMissingFaces float64
	// StepMS and FrameIntervalMS are handed to the page. Defaults 1600 and 400 (about 20
	// frames for a look at the camera and four steps).
	StepMS, FrameIntervalMS int
	// ExtraTurn is the probability (0..1) of a third turn. Default 0.5; negative disables.
	ExtraTurn float64
}

// FlashConfig holds the FLASHING thresholds (see README.md).
type FlashConfig struct {
	// Colors is the number of colours in a sequence. Default 6.
	Colors int
	// MinDurationMS and MaxDurationMS bound each colour's random duration. Defaults 550, 750.
	MinDurationMS, MaxDurationMS int
	// SettleMS: frames in the first SettleMS of a colour are not used (the camera's latency).
	// Default 150.
	SettleMS int
	// FramesPerColor is handed to the page. Default 2.
	FramesPerColor int
	// MinCorrelation: the observed colour shifts must correlate with the issued ones at least
	// this much. Default 0.6.
	MinCorrelation float64
	// MinMatchedSteps: the fraction of colours whose reflection must be recognised as the issued
	// colour. Default 0.75.
	MinMatchedSteps float64
	// MinShift: the RMS chromatic change of the face (relative, e.g. 0.004 = 0.4 %) under which
	// the face is deemed not to reflect the screen at all. Default 0.004.
	MinShift float64
	// MaxFaceDistance as in ActiveConfig.
	MaxFaceDistance float64
}

func (c ChallengerConfig) withDefaults() ChallengerConfig {
	if c.TTL <= 0 {
		c.TTL = 60 * time.Second
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 10000
	}
	if c.MaxFrames <= 0 {
		c.MaxFrames = 32
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = 400 << 10
	}
	if c.MaxBurstBytes <= 0 {
		c.MaxBurstBytes = 8 << 20
	}
	if c.Workers <= 0 && c.Engine != nil {
		c.Workers = c.Engine.Config().Workers
	}
	if c.Workers <= 0 {
		c.Workers = 1
	}
	dist := 0.6
	if c.Engine != nil {
		dist = c.Engine.DlibPolicy().DeclineAbove
	}
	a := &c.Active
	if a.TurnYaw <= 0 {
		a.TurnYaw = 15
	}
	if a.CenterYaw <= 0 {
		a.CenterYaw = 10
	}
	if a.MaxStartYaw <= 0 {
		a.MaxStartYaw = 20
	}
	if a.FlatCorrelation <= 0 || a.FlatCorrelation >= 1 {
		a.FlatCorrelation = 0.95
	}
	if a.MaxFaceDistance <= 0 {
		a.MaxFaceDistance = dist
	}
	if a.MaxTurnedFaceDistance <= 0 {
		a.MaxTurnedFaceDistance = a.MaxFaceDistance + 0.1
	}
	if a.MaxMissingFaces <= 0 {
		a.MaxMissingFaces = 0.25
	}
	if a.StepMS <= 0 {
		a.StepMS = 1600
	}
	if a.FrameIntervalMS <= 0 {
		a.FrameIntervalMS = 400
	}
	if a.ExtraTurn == 0 {
		a.ExtraTurn = 0.5
	}
	f := &c.Flash
	if f.Colors <= 2 {
		f.Colors = 6
	}
	if f.MinDurationMS <= 0 {
		f.MinDurationMS = 550
	}
	if f.MaxDurationMS < f.MinDurationMS {
		f.MaxDurationMS = max(750, f.MinDurationMS)
	}
	if f.SettleMS <= 0 {
		f.SettleMS = 150
	}
	if f.FramesPerColor <= 0 {
		f.FramesPerColor = 2
	}
	if f.MinCorrelation <= 0 {
		f.MinCorrelation = 0.6
	}
	if f.MinMatchedSteps <= 0 {
		f.MinMatchedSteps = 0.75
	}
	if f.MinShift <= 0 {
		f.MinShift = 0.004
	}
	if f.MaxFaceDistance <= 0 {
		f.MaxFaceDistance = dist
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Challenger issues single-use ACTIVE_3D and FLASHING challenges and verifies their answers. It
// keeps the challenges in memory (so a deployment with several replicas must route a challenge's
// answer to the replica that issued it). It is safe for concurrent use.
type Challenger struct {
	cfg ChallengerConfig

	mu        sync.Mutex
	pending   map[string]*entry
	lastSweep time.Time
}

type entry struct {
	ch   Challenge
	used bool
}

// NewChallenger checks the configuration.
func NewChallenger(cfg ChallengerConfig) (*Challenger, error) {
	if cfg.Engine == nil || cfg.Passive == nil {
		return nil, fmt.Errorf("liveness: NewChallenger needs an Engine and a Passive checker")
	}
	cfg = cfg.withDefaults()
	return &Challenger{cfg: cfg, pending: map[string]*entry{}}, nil
}

// Config returns the effective configuration.
func (c *Challenger) Config() ChallengerConfig { return c.cfg }

// CodeChallengeCapacity: too many challenges are pending.
const CodeChallengeCapacity = "CHALLENGE_CAPACITY"

// Issue creates a challenge for ACTIVE_3D or FLASHING (PASSIVE needs none).
func (c *Challenger) Issue(m Method) (Challenge, error) {
	if m != MethodActive3D && m != MethodFlashing {
		return Challenge{}, newError(CodeInvalidMethod, ErrInvalidInput, fmt.Errorf("method %q has no challenge (want ACTIVE_3D or FLASHING)", m))
	}
	var ch Challenge
	var err error
	if m == MethodActive3D {
		ch, err = c.newActive()
	} else {
		ch, err = c.newFlashing()
	}
	if err != nil {
		return Challenge{}, err
	}
	return c.store(ch)
}

// issueWith stores a challenge with given steps or colours (tests that replay recorded motion).
func (c *Challenger) issueWith(m Method, steps []string, colors []string) (Challenge, error) {
	ch, err := c.base(m)
	if err != nil {
		return Challenge{}, err
	}
	if m == MethodActive3D {
		ch.Steps = steps
		ch.StepMS = c.cfg.Active.StepMS
		ch.FrameIntervalMS = c.cfg.Active.FrameIntervalMS
	} else {
		ch.Colors = c.timeColors(colors, func() int { return (c.cfg.Flash.MinDurationMS + c.cfg.Flash.MaxDurationMS) / 2 })
		ch.FramesPerColor = c.cfg.Flash.FramesPerColor
	}
	return c.store(ch)
}

func (c *Challenger) store(ch Challenge) (Challenge, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	c.sweepLocked(now, false)
	if len(c.pending) >= c.cfg.MaxPending {
		c.sweepLocked(now, true)
		if len(c.pending) >= c.cfg.MaxPending {
			return Challenge{}, newError(CodeChallengeCapacity, ErrChallenge, fmt.Errorf("%d challenges pending", len(c.pending)))
		}
	}
	c.pending[ch.ID] = &entry{ch: ch}
	c.cfg.Logger.Info("liveness challenge issued", "challenge", shortID(ch.ID), "method", string(ch.Method), "expires_in", ch.ExpiresAt.Sub(ch.IssuedAt))
	return ch, nil
}

// Pending returns the number of challenges kept (issued and not yet swept).
func (c *Challenger) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Sweep forgets every expired challenge now. A sweep also runs by itself at most once a TTL,
// on Issue and Verify, and forgets the challenges expired for more than a TTL: until then a late
// answer is reported as CHALLENGE_EXPIRED, and a second answer as CHALLENGE_REPLAYED, rather
// than as unknown. When MaxPending is reached, Issue sweeps every expired challenge.
func (c *Challenger) Sweep() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sweepLocked(c.cfg.Now(), true)
}

func (c *Challenger) sweepLocked(now time.Time, force bool) int {
	keep := c.cfg.TTL // how long an expired challenge is remembered
	if force {
		keep = 0
	} else if now.Sub(c.lastSweep) < c.cfg.TTL {
		return 0
	}
	c.lastSweep = now
	n := 0
	for id, e := range c.pending {
		if now.After(e.ch.ExpiresAt.Add(keep)) {
			delete(c.pending, id)
			n++
		}
	}
	return n
}

// take marks a challenge used and returns it, or the reason it cannot be answered. Every answer
// that names a known challenge uses it up, whether or not the answer is well formed.
func (c *Challenger) take(id string) (Challenge, error) {
	if id == "" {
		return Challenge{}, newError(CodeChallengeMissing, ErrChallenge, fmt.Errorf("no challenge id in the answer"))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	c.sweepLocked(now, false)
	e, ok := c.pending[id]
	switch {
	case !ok:
		return Challenge{}, newError(CodeChallengeUnknown, ErrChallenge, fmt.Errorf("challenge %s was never issued or has been forgotten", shortID(id)))
	case e.used:
		return e.ch, newError(CodeChallengeReplayed, ErrChallenge, fmt.Errorf("challenge %s was already answered", shortID(id)))
	}
	e.used = true
	if now.After(e.ch.ExpiresAt) {
		return e.ch, newError(CodeChallengeExpired, ErrChallenge, fmt.Errorf("challenge %s expired %s ago", shortID(id), now.Sub(e.ch.ExpiresAt).Round(time.Millisecond)))
	}
	return e.ch, nil
}

func (c *Challenger) base(m Method) (Challenge, error) {
	var b [16]byte
	if _, err := io.ReadFull(c.cfg.Rand, b[:]); err != nil {
		return Challenge{}, fmt.Errorf("liveness: challenge id: %w", err)
	}
	now := c.cfg.Now()
	return Challenge{
		ID:            base64.RawURLEncoding.EncodeToString(b[:]),
		Method:        m,
		IssuedAt:      now,
		ExpiresAt:     now.Add(c.cfg.TTL),
		MaxFrames:     c.cfg.MaxFrames,
		MaxFrameBytes: c.cfg.MaxFrameBytes,
		MaxBurstBytes: c.cfg.MaxBurstBytes,
	}, nil
}

// intn returns a uniform random int in [0, n) from the configured source.
func (c *Challenger) intn(n int) (int, error) {
	v, err := rand.Int(c.cfg.Rand, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("liveness: random: %w", err)
	}
	return int(v.Int64()), nil
}

// newActive draws the turns: left and right in a random order, then with probability ExtraTurn
// the first direction again, then centre. So the page cannot be answered by one recorded
// video: there are four possible sequences.
func (c *Challenger) newActive() (Challenge, error) {
	ch, err := c.base(MethodActive3D)
	if err != nil {
		return ch, err
	}
	first, err := c.intn(2)
	if err != nil {
		return ch, err
	}
	turns := []string{StepLeft, StepRight}
	if first == 1 {
		turns = []string{StepRight, StepLeft}
	}
	if p := c.cfg.Active.ExtraTurn; p > 0 {
		r, err := c.intn(1000)
		if err != nil {
			return ch, err
		}
		if float64(r) < p*1000 {
			turns = append(turns, turns[0])
		}
	}
	ch.Steps = append(turns, StepCenter)
	ch.StepMS = c.cfg.Active.StepMS
	ch.FrameIntervalMS = c.cfg.Active.FrameIntervalMS
	return ch, nil
}

// palette holds the FLASHING colours: saturated, so that each tints the face in a distinct
// chromatic direction.
var palette = map[string][3]float64{
	"#ff0000": {1, 0, 0},
	"#00ff00": {0, 1, 0},
	"#0000ff": {0, 0, 1},
	"#ffff00": {1, 1, 0},
	"#ff00ff": {1, 0, 1},
	"#00ffff": {0, 1, 1},
}

var paletteOrder = []string{"#ff0000", "#00ff00", "#0000ff", "#ffff00", "#ff00ff", "#00ffff"}

// newFlashing draws Colors colours, no colour twice in a row and at least three distinct ones,
// each with a random duration.
func (c *Challenger) newFlashing() (Challenge, error) {
	ch, err := c.base(MethodFlashing)
	if err != nil {
		return ch, err
	}
	f := c.cfg.Flash
	for {
		var names []string
		distinct := map[string]bool{}
		for len(names) < f.Colors {
			i, err := c.intn(len(paletteOrder))
			if err != nil {
				return ch, err
			}
			n := paletteOrder[i]
			if len(names) > 0 && names[len(names)-1] == n {
				continue
			}
			names = append(names, n)
			distinct[n] = true
		}
		if len(distinct) < 3 {
			continue
		}
		var derr error
		ch.Colors = c.timeColors(names, func() int {
			d, err := c.intn(f.MaxDurationMS - f.MinDurationMS + 1)
			if err != nil {
				derr = err
			}
			return f.MinDurationMS + d
		})
		if derr != nil {
			return ch, derr
		}
		break
	}
	ch.FramesPerColor = f.FramesPerColor
	return ch, nil
}

// timeColors lays colours back to back. The first starts at 0, i.e. right after the first frame.
func (c *Challenger) timeColors(names []string, dur func() int) []ColorStep {
	out := make([]ColorStep, 0, len(names))
	t := 0
	for _, n := range names {
		d := dur()
		out = append(out, ColorStep{Color: n, StartMS: t, DurationMS: d})
		t += d
	}
	return out
}

// shortID is what logs show of a challenge id.
func shortID(id string) string {
	if len(id) > 6 {
		return id[:6]
	}
	return id
}

// Frame is one captured frame: the JPEG or PNG bytes and the capture time the page reported.
type Frame struct {
	Data []byte
	At   time.Time
}

// ctxErr wraps a context error.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("liveness: %w", err)
	}
	return nil
}
