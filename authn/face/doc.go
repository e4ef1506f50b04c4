// Package face is Visage's face engine: it decodes a selfie safely, finds the one face in it,
// checks that the face is good enough to match, computes dlib's 128-d descriptor and (under the
// default ONNX matcher) a 512-d ArcFace-class embedding, and matches it against an enrolled
// template. It has no HTTP in it and keeps no global state; an Engine holds a pool of dlib
// recognizers (github.com/Kagami/go-face) and one ONNX Runtime session (the process's one
// environment is internal/ortenv's), and is safe for concurrent use.
//
// # Pipeline of Analyze
//
//  1. Decode: the header is read first (size, format, pixel dimensions, EXIF orientation) and
//     anything over Config.MaxBytes or MaxWidth x MaxHeight is refused before a pixel is
//     decoded. JPEG and PNG only, decoded by Go's memory-safe decoders, then turned upright
//     (EXIF orientation 1-8, from a JPEG's APP1 or a PNG's eXIf chunk).
//  2. Detect: dlib's HOG detector on a working copy - scaled down to 480 px for big frames, or
//     upsampled 2x when the image is under 400 px so that faces of about 40-60 px are found.
//     If a scaled-down copy shows no face, HOG runs again on a copy of up to 1024 px. If HOG
//     finds nothing, or only faces too small to use, the CNN (MMOD) detector runs on a copy of
//     at most 320 px (about 0.25 s here). Working copies reach dlib as JPEGs this package
//     encodes: the caller's bytes never reach the C decoder.
//  3. Choose: the dominant face is the largest; among faces at least 0.7 of its width, the one
//     nearest the centre. Another face of comparable size fails with ErrMultipleFaces
//     (MULTIPLE_FACES); smaller ones are noted as BACKGROUND_FACES_IGNORED.
//  4. Describe: the descriptor comes from the pass that found the face; a face under 100 px
//     wide in a scaled-down copy is described again on a crop of the full-resolution image.
//  5. Embed (MatcherONNX): the face is warped by the least-squares similarity that takes dlib's 5
//     landmarks onto a template fitted for them (alignTemplate) into a 112x112 chip, BGR,
//     (p-127.5)/128, and fr_feature.onnx's output is L2-normalised.
//  6. Check quality: inter-ocular distance, face brightness, sharpness (variance of the
//     Laplacian), yaw and roll from the 5 landmarks, and how much of the face is outside the
//     frame; each failed check is a Warning with its measured value and threshold.
//
// # Matching
//
// The template's model version chooses the matcher. ONNX: the distance is 1 - cosine of the
// embeddings; dlib: the Euclidean distance of the descriptors (dlib templates still match under
// the ONNX matcher, until an approved selfie replaces them: Decision.Upgrade in authn). Each
// matcher's similarity maps its distance to [0,1] (a logistic, strictly decreasing) so that the
// approve threshold scores 76 and the decline threshold 50 for both; Score is
// round(100*Similarity). A MatchPolicy turns the distance into a Band: approve below
// ApproveBelow, decline above DeclineAbove, review in between; README.md has the calibration.
//
// # Templates and keys
//
// Enroll builds a Template (embeddings, or under dlib descriptors of jittered face chips, the
// model version, and the photo only if asked). Templates are stored sealed with AES-256-GCM under a KeyRing: biometric
// keys in their own file, separate from every other secret, with key ids so that keys rotate.
// Opening with a wrong key, an unknown key id or a tampered blob fails with ErrTemplateKey.
//
// # Errors
//
// Errors wrap the sentinels (ErrTooLarge, ErrCorrupt, ErrUnsupportedFormat, ErrNoFace,
// ErrMultipleFaces, ErrQuality, ErrEnrolmentMismatch, ErrTemplateKey, ErrModelMismatch,
// ErrQueueFull, ErrClosed, ErrInvalidArgument, ErrInternal) and are usually an *Error; Code maps
// any of them, and context errors, to a Didit-style code.
//
// The package never logs; it never keeps an image or descriptor beyond the call that made it.
package face
