package face

import (
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Config configures an Engine. Zero numeric fields take their DefaultConfig value, a zero
// QualityConfig or MatchPolicy takes the default one; so Config{ModelsDir: dir} is a complete
// configuration.
type Config struct {
	// ModelsDir is the folder that `make models` fills: it must hold dlib/ with
	// shape_predictor_5_face_landmarks.dat, dlib_face_recognition_resnet_model_v1.dat and
	// mmod_human_face_detector.dat, and for the ONNX matcher arcface/fr_feature.onnx and
	// onnxruntime/libonnxruntime.so.1. Default: $VISAGE_MODELS_DIR, else models/weights.
	ModelsDir string
	// Matcher chooses the recognizer that new templates are made with and matched by:
	// MatcherONNX (default: the ArcFace-class MobileFaceNet through ONNX Runtime, on dlib's
	// detection and landmarks) or MatcherDlib (dlib's ResNet only, for operators who want CC0
	// models only). Templates made by dlib keep matching under MatcherONNX (with the dlib
	// policy) until they are replaced.
	Matcher string
	// Workers is the number of dlib recognizers in the pool, i.e. how many images are analysed
	// at the same time. Each costs about 36 MB of resident memory (more while the CNN
	// fallback runs). Default runtime.NumCPU().
	Workers int
	// QueueSize is how many requests may wait for a free recognizer; beyond that Analyze fails
	// at once with ErrQueueFull. Default 16.
	QueueSize int
	// MaxBytes, MaxWidth, MaxHeight and MaxPixels bound the input, checked from the header
	// before any pixel is decoded (defaults 2 MB, 4096 x 4096, 2,100,000 pixels: a 1920 x 1080
	// frame fits, a 4096 x 4096 image bomb does not).
	MaxBytes            int64
	MaxWidth, MaxHeight int
	MaxPixels           int
	// AnalyzeTimeout bounds one Analyze call, queueing included, whatever the caller's context
	// allows (default 10 s): a request that cannot be answered in time gives its recognizer up.
	AnalyzeTimeout time.Duration
	Detect         DetectConfig
	Quality        QualityConfig
	// Policy is the match policy of the configured Matcher, in its distance (Euclidean for
	// dlib, 1 - cosine for ONNX). Default DefaultPolicyFor(Matcher).
	Policy MatchPolicy
	// EnrolJitter: enrolment describes each photo as the mean descriptor of this many randomly
	// jittered (zoomed, rotated, shifted, mirrored) copies of the aligned face chip, as dlib
	// allows; 0 means the default (10), negative disables. The jittering recognizers are
	// created on first use, at most Workers of them.
	EnrolJitter int
}

// DetectConfig tunes the detection cascade. See doc.go for how it runs.
type DetectConfig struct {
	// WorkingMaxSide: images whose longer side exceeds it are scaled down to it for the first
	// HOG pass (default 480: a 640x480 selfie is detected at 480x360).
	WorkingMaxSide int
	// UpsampleBelow: images whose longer side is below it are upsampled by UpsampleFactor for the
	// first HOG pass, so that faces of about 60 px are found (dlib's HOG window is 80 px).
	// Defaults 400 and 2.
	UpsampleBelow  int
	UpsampleFactor float64
	// SecondPassMaxSide: when a scaled-down first pass finds nothing, HOG runs again on a copy
	// whose longer side is at most this (default 1024), to find small faces in big frames.
	SecondPassMaxSide int
	// DisableCNN turns off the CNN (MMOD) detector fallback that runs when HOG finds nothing.
	DisableCNN bool
	// CNNMaxSide bounds the copy the CNN fallback runs on (default 320; ~0.25 s here).
	CNNMaxSide int
	// RefineBelow: when the chosen face is narrower than this in a scaled-down working copy, it
	// is described again on a crop of the full-resolution image (default 100 px; negative
	// disables).
	RefineBelow int
	// MultipleFaceRatio: another face at least this fraction of the dominant face's width makes
	// the image MULTIPLE_FACES; smaller ones are ignored with BACKGROUND_FACES_IGNORED
	// (default 0.7).
	MultipleFaceRatio float64
	// JPEGQuality of the working copies handed to dlib (default 95).
	JPEGQuality int
}

// QualityConfig holds the quality thresholds. A measured value beyond a threshold yields a
// blocking Warning (unless its code is listed in Advisory); see README.md for the measurements
// the defaults come from. A threshold of 0 disables its check, except when the whole
// QualityConfig is zero, which means DefaultQuality().
type QualityConfig struct {
	MinInterOcular float64 // FACE_TOO_SMALL: distance between the eye centres, px of the decoded image
	MinBrightness  float64 // FACE_TOO_DARK: mean luma (0-255) of the face box
	MaxBrightness  float64 // FACE_TOO_BRIGHT: mean luma (0-255) of the face box
	MinSharpness   float64 // FACE_BLURRED: variance of the Laplacian of the face box resampled to 128x128 grey
	MaxYaw         float64 // FACE_NOT_FRONTAL: |yaw| in degrees, estimated from the 5 landmarks
	MaxRoll        float64 // FACE_NOT_FRONTAL: |roll| in degrees (eye line against horizontal)
	MaxCutOff      float64 // FACE_CUT_OFF: fraction of the face box's width or height outside the frame
	// Advisory lists warning codes that are reported but do not block matching.
	Advisory []string
}

func (q QualityConfig) isZero() bool {
	return q.MinInterOcular == 0 && q.MinBrightness == 0 && q.MaxBrightness == 0 &&
		q.MinSharpness == 0 && q.MaxYaw == 0 && q.MaxRoll == 0 && q.MaxCutOff == 0 && len(q.Advisory) == 0
}

// MatchPolicy maps a matcher's distance to a Band: below ApproveBelow approve, above
// DeclineAbove decline, review in between.
type MatchPolicy struct {
	ApproveBelow float64
	DeclineAbove float64
}

// DefaultQuality returns the default quality thresholds (see README.md for their measurements).
func DefaultQuality() QualityConfig {
	return QualityConfig{
		MinInterOcular: 18,
		MinBrightness:  30,
		MaxBrightness:  200,
		MinSharpness:   8,
		MaxYaw:         45,
		MaxRoll:        40,
		MaxCutOff:      0.15,
	}
}

// The matchers.
const (
	MatcherONNX = "onnx"
	MatcherDlib = "dlib"
)

// DefaultPolicy returns the default matcher's (MatcherONNX) bands.
func DefaultPolicy() MatchPolicy { return DefaultPolicyFor(MatcherONNX) }

// DefaultPolicyFor returns a matcher's default bands: for ONNX (cosine distance) calibrated for
// FAR <= 1e-4 over all impostor pairs of LFW View 1's images and <= 1e-3 over NUAA's live
// photos; for dlib (Euclidean distance) calibrated on LFW View 1 pairsDevTrain. The runs are in
// README.md. An unknown matcher gets the ONNX bands.
func DefaultPolicyFor(matcher string) MatchPolicy {
	if matcher == MatcherDlib {
		return DlibPolicy()
	}
	return MatchPolicy{ApproveBelow: onnxApprove, DeclineAbove: onnxDecline}
}

// DlibPolicy returns dlib's default bands (also used for dlib templates under the ONNX matcher).
func DlibPolicy() MatchPolicy {
	return MatchPolicy{ApproveBelow: 0.53, DeclineAbove: 0.60}
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	models := os.Getenv("VISAGE_MODELS_DIR")
	if models == "" {
		models = filepath.Join("models", "weights")
	}
	return Config{
		ModelsDir: models,
		Matcher:   MatcherONNX,
		Workers:   runtime.NumCPU(),
		QueueSize: 16,
		MaxBytes:  2 << 20,
		MaxWidth:  4096,
		MaxHeight: 4096,
		MaxPixels: 2_100_000,

		AnalyzeTimeout: 10 * time.Second,
		Detect: DetectConfig{
			WorkingMaxSide:    480,
			UpsampleBelow:     400,
			UpsampleFactor:    2,
			SecondPassMaxSide: 1024,
			CNNMaxSide:        320,
			RefineBelow:       100,
			MultipleFaceRatio: 0.7,
			JPEGQuality:       95,
		},
		Quality:     DefaultQuality(),
		Policy:      DefaultPolicy(),
		EnrolJitter: 10,
	}
}

// withDefaults fills the zero fields of c from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.ModelsDir == "" {
		c.ModelsDir = d.ModelsDir
	}
	if c.Matcher == "" {
		c.Matcher = d.Matcher
	}
	if c.Workers <= 0 {
		c.Workers = d.Workers
	}
	if c.QueueSize <= 0 {
		c.QueueSize = d.QueueSize
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = d.MaxBytes
	}
	if c.MaxWidth <= 0 {
		c.MaxWidth = d.MaxWidth
	}
	if c.MaxPixels <= 0 {
		c.MaxPixels = d.MaxPixels
	}
	if c.AnalyzeTimeout <= 0 {
		c.AnalyzeTimeout = d.AnalyzeTimeout
	}
	if c.MaxHeight <= 0 {
		c.MaxHeight = d.MaxHeight
	}
	dd, cd := d.Detect, &c.Detect
	if cd.WorkingMaxSide <= 0 {
		cd.WorkingMaxSide = dd.WorkingMaxSide
	}
	if cd.UpsampleBelow <= 0 {
		cd.UpsampleBelow = dd.UpsampleBelow
	}
	if cd.UpsampleFactor <= 0 {
		cd.UpsampleFactor = dd.UpsampleFactor
	}
	if cd.SecondPassMaxSide <= 0 {
		cd.SecondPassMaxSide = dd.SecondPassMaxSide
	}
	if cd.CNNMaxSide <= 0 {
		cd.CNNMaxSide = dd.CNNMaxSide
	}
	if cd.RefineBelow == 0 {
		cd.RefineBelow = dd.RefineBelow
	}
	if cd.MultipleFaceRatio <= 0 {
		cd.MultipleFaceRatio = dd.MultipleFaceRatio
	}
	if cd.JPEGQuality <= 0 || cd.JPEGQuality > 100 {
		cd.JPEGQuality = dd.JPEGQuality
	}
	if c.Quality.isZero() {
		c.Quality = d.Quality
	}
	if c.EnrolJitter == 0 {
		c.EnrolJitter = d.EnrolJitter
	}
	if c.Policy == (MatchPolicy{}) {
		c.Policy = DefaultPolicyFor(c.Matcher)
	}
	return c
}

func (c Config) limits() Limits {
	return Limits{MaxBytes: c.MaxBytes, MaxWidth: c.MaxWidth, MaxHeight: c.MaxHeight, MaxPixels: c.MaxPixels}
}
