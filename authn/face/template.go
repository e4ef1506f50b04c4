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

// Template is what enrolment keeps of a person: one or more descriptors (dlib) or embeddings
// (ONNX) and the model version that made them. It is stored only sealed (KeyRing.Seal).
type Template struct {
	ModelVersion string
	Descriptors  []Descriptor // dlib templates
	Embeddings   [][]float32  // ONNX templates: unit vectors
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
		f     Face
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
		shots = append(shots, shot{a.Face, a.Measures.Sharpness})
	}
	for i := range shots {
		for j := i + 1; j < len(shots); j++ {
			if d := e.Distance(shots[i].f, shots[j].f); d > e.cfg.Policy.DeclineAbove {
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
	var keepFaces []Face
	for i := 0; i < len(shots) && i < opts.MaxDescriptors; i++ {
		keepFaces = append(keepFaces, shots[i].f)
	}
	t := e.TemplateFrom(keepFaces...)
	if opts.KeepImage && keep != nil {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, keep, &jpeg.Options{Quality: 90}); err != nil {
			return nil, warnings, newError(CodeInternal, ErrInternal, fmt.Errorf("enrol: encoding kept image: %w", err))
		}
		t.Image = buf.Bytes()
	}
	return t, warnings, nil
}

// templateMagic starts the binary encoding of a template: version 1 (dlib descriptors only,
// still read) and version 2 (with embeddings, written).
const (
	templateMagicV1 = "VTPL\x01"
	templateMagic   = "VTPL\x02"
)

// MarshalBinary encodes the template: magic, model version, creation time, descriptors
// (little-endian float32), embeddings (count, dimension, little-endian float32), image.
func (t *Template) MarshalBinary() ([]byte, error) {
	dim := 0
	if len(t.Embeddings) > 0 {
		dim = len(t.Embeddings[0])
	}
	for _, e := range t.Embeddings {
		if len(e) != dim || dim == 0 {
			return nil, newError(CodeInvalidArgument, ErrInvalidArgument, errors.New("template embeddings differ in length"))
		}
	}
	if len(t.ModelVersion) > math.MaxUint16 || len(t.Descriptors) > math.MaxUint16 || len(t.Embeddings) > math.MaxUint16 || dim > math.MaxUint16 || len(t.Image) > math.MaxUint32 {
		return nil, newError(CodeInvalidArgument, ErrInvalidArgument, errors.New("template too large"))
	}
	b := make([]byte, 0, 36+len(t.ModelVersion)+512*len(t.Descriptors)+4*dim*len(t.Embeddings)+len(t.Image))
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
	b = binary.LittleEndian.AppendUint16(b, uint16(len(t.Embeddings)))
	b = binary.LittleEndian.AppendUint16(b, uint16(dim))
	for _, e := range t.Embeddings {
		for _, v := range e {
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
	v2 := bytes.HasPrefix(b, []byte(templateMagic))
	if !v2 && !bytes.HasPrefix(b, []byte(templateMagicV1)) {
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
	if v2 {
		if len(b) < 4 {
			return bad("short embeddings")
		}
		ne, dim := int(binary.LittleEndian.Uint16(b)), int(binary.LittleEndian.Uint16(b[2:]))
		b = b[4:]
		if (ne > 0 && dim == 0) || len(b) < ne*dim*4+4 {
			return bad("short embeddings")
		}
		for i := 0; i < ne; i++ {
			e := make([]float32, dim)
			for j := range e {
				e[j] = math.Float32frombits(binary.LittleEndian.Uint32(b))
				b = b[4:]
			}
			out.Embeddings = append(out.Embeddings, e)
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
	if e.onnx != nil {
		// A unit vector of alternating signs: faces' embeddings are nearly orthogonal to it
		// (distance about 1; decline starts at 0.60).
		v := make([]float32, arcfaceDim)
		for i := range v {
			v[i] = float32(1 / math.Sqrt(arcfaceDim))
			if i%2 == 1 {
				v[i] = -v[i]
			}
		}
		return &Template{ModelVersion: e.ModelVersion(), Embeddings: [][]float32{v}}
	}
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
