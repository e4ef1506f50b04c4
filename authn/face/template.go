package face

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"time"
)

// Template is what enrolment keeps of a person: one or more descriptors and the model version
// that made them. It is stored only sealed (KeyRing.Seal).
type Template struct {
	ModelVersion string
	Descriptors  []Descriptor
	CreatedAt    time.Time
	// Image is a JPEG of the first enrolment photo, re-encoded from the decoded pixels (so with
	// no EXIF or other metadata), kept only if EnrollOptions.KeepImage was set.
	Image []byte
}

// EnrollOptions configures Enroll.
type EnrollOptions struct {
	KeepImage bool // keep a re-encoded JPEG of the first photo in the template
	// MaxDescriptors keeps at most this many descriptors, the sharpest photos first
	// (default 5).
	MaxDescriptors int
}

// Enroll analyses one or more photos of the same person and builds a template. Every photo must
// be usable: the first one that is not fails the enrolment with an error naming the photo and
// carrying its code (errors.Is with ErrNoFace, ErrMultipleFaces, ErrQuality, ...). Photos of
// different people (a pair above the policy's DeclineAbove) fail with ErrEnrolmentMismatch. The
// warnings of all photos are returned, non-blocking ones included.
func (e *Engine) Enroll(ctx context.Context, images [][]byte, opts EnrollOptions) (*Template, []Warning, error) {
	if len(images) == 0 {
		return nil, nil, newError(CodeInvalidArgument, ErrInvalidArgument, errors.New("enrol: no photo"))
	}
	if opts.MaxDescriptors <= 0 {
		opts.MaxDescriptors = 5
	}
	type shot struct {
		d     Descriptor
		sharp float64
	}
	var shots []shot
	var warnings []Warning
	var keep *image.RGBA
	for i, img := range images {
		a, err := e.AnalyzeWith(ctx, img, AnalyzeOptions{Jitter: true})
		if err != nil {
			return nil, warnings, fmt.Errorf("face: enrol photo %d of %d: %w", i+1, len(images), err)
		}
		warnings = append(warnings, a.Warnings...)
		if err := a.Err(); err != nil {
			return nil, warnings, fmt.Errorf("face: enrol photo %d of %d: %w", i+1, len(images), err)
		}
		if i == 0 {
			keep, _ = a.Image.(*image.RGBA)
		}
		shots = append(shots, shot{a.Face.Descriptor, a.Measures.Sharpness})
	}
	for i := range shots {
		for j := i + 1; j < len(shots); j++ {
			if d := Distance(shots[i].d, shots[j].d); d > e.cfg.Policy.DeclineAbove {
				return nil, warnings, newError(CodeEnrolmentMismatch, ErrEnrolmentMismatch,
					fmt.Errorf("photos %d and %d are %.3f apart (decline above %.3f)", i+1, j+1, d, e.cfg.Policy.DeclineAbove))
			}
		}
	}
	// Keep the sharpest photos.
	for i := 1; i < len(shots); i++ {
		for j := i; j > 0 && shots[j].sharp > shots[j-1].sharp; j-- {
			shots[j], shots[j-1] = shots[j-1], shots[j]
		}
	}
	t := &Template{ModelVersion: e.modelVersion, CreatedAt: time.Now().UTC()}
	for i := 0; i < len(shots) && i < opts.MaxDescriptors; i++ {
		t.Descriptors = append(t.Descriptors, shots[i].d)
	}
	if opts.KeepImage && keep != nil {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, keep, &jpeg.Options{Quality: 90}); err != nil {
			return nil, warnings, newError(CodeInternal, ErrInternal, fmt.Errorf("enrol: encoding kept image: %w", err))
		}
		t.Image = buf.Bytes()
	}
	return t, warnings, nil
}

// templateMagic starts the binary encoding of a template (version 1).
const templateMagic = "VTPL\x01"

// MarshalBinary encodes the template: magic, model version, creation time, descriptors
// (little-endian float32), image.
func (t *Template) MarshalBinary() ([]byte, error) {
	if len(t.ModelVersion) > math.MaxUint16 || len(t.Descriptors) > math.MaxUint16 || len(t.Image) > math.MaxUint32 {
		return nil, newError(CodeInvalidArgument, ErrInvalidArgument, errors.New("template too large"))
	}
	b := make([]byte, 0, 32+len(t.ModelVersion)+512*len(t.Descriptors)+len(t.Image))
	b = append(b, templateMagic...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(t.ModelVersion)))
	b = append(b, t.ModelVersion...)
	b = binary.LittleEndian.AppendUint64(b, uint64(t.CreatedAt.UnixNano()))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(t.Descriptors)))
	for _, d := range t.Descriptors {
		for _, v := range d {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Image)))
	b = append(b, t.Image...)
	return b, nil
}

// UnmarshalBinary decodes MarshalBinary's output.
func (t *Template) UnmarshalBinary(b []byte) error {
	bad := func(what string) error {
		return newError(CodeInvalidArgument, ErrInvalidArgument, fmt.Errorf("template encoding: %s", what))
	}
	if !bytes.HasPrefix(b, []byte(templateMagic)) {
		return bad("bad magic")
	}
	b = b[len(templateMagic):]
	if len(b) < 2 {
		return bad("short")
	}
	n := int(binary.LittleEndian.Uint16(b))
	b = b[2:]
	if len(b) < n+8+2 {
		return bad("short")
	}
	var out Template
	out.ModelVersion = string(b[:n])
	b = b[n:]
	out.CreatedAt = time.Unix(0, int64(binary.LittleEndian.Uint64(b))).UTC()
	b = b[8:]
	nd := int(binary.LittleEndian.Uint16(b))
	b = b[2:]
	if len(b) < nd*512+4 {
		return bad("short descriptors")
	}
	out.Descriptors = make([]Descriptor, nd)
	for i := range out.Descriptors {
		for j := range out.Descriptors[i] {
			out.Descriptors[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(b))
			b = b[4:]
		}
	}
	ni := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	if len(b) != ni {
		return bad("image length")
	}
	if ni > 0 {
		out.Image = bytes.Clone(b)
	}
	*t = out
	return nil
}

// Decoy returns a template in the engine's format that no face matches (a fixed direction of
// the descriptor space, far from where faces fall). The sign-in of an account that does not
// exist is matched against it, so that it costs the same work and gets the same answer as a
// known account whose face does not match: nothing tells a stranger which usernames exist.
func (e *Engine) Decoy() *Template {
	var d Descriptor
	for i := range d {
		// Alternating signs, 0.09 each: a norm near a real descriptor's, at a distance of more
		// than 1 from any face (the decline band starts at 0.60).
		d[i] = 0.09
		if i%2 == 1 {
			d[i] = -0.09
		}
	}
	return &Template{ModelVersion: e.ModelVersion(), Descriptors: []Descriptor{d}}
}
