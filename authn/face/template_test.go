package face

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/visage-idp/visage/internal/testenv"
)

// TestTemplateEncoding: version-2 templates round-trip their embeddings; version-1 blobs (dlib
// templates sealed before the ONNX matcher) still decode; malformed embeddings are refused.
func TestTemplateEncoding(t *testing.T) {
	onnx := &Template{ModelVersion: "arcface-mbf-512:test", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Image: []byte("jpeg")}
	for k := 0; k < 2; k++ {
		e := make([]float32, arcfaceDim)
		for i := range e {
			e[i] = float32(math.Cos(float64(i*(k+2)))) / 20
		}
		onnx.Embeddings = append(onnx.Embeddings, e)
	}
	b, err := onnx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Template
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got.ModelVersion != onnx.ModelVersion || len(got.Embeddings) != 2 || !slices.Equal(got.Embeddings[1], onnx.Embeddings[1]) || !bytes.Equal(got.Image, onnx.Image) || len(got.Descriptors) != 0 {
		t.Fatalf("round trip: %q, %d embeddings, image %q", got.ModelVersion, len(got.Embeddings), got.Image)
	}

	// A version-1 blob as the previous release wrote it: magic, version, time, descriptors, image.
	old := sampleTemplate()
	v1 := []byte(templateMagicV1)
	v1 = binary.LittleEndian.AppendUint16(v1, uint16(len(old.ModelVersion)))
	v1 = append(v1, old.ModelVersion...)
	v1 = binary.LittleEndian.AppendUint64(v1, uint64(old.CreatedAt.UnixNano()))
	v1 = binary.LittleEndian.AppendUint16(v1, uint16(len(old.Descriptors)))
	for _, d := range old.Descriptors {
		for _, v := range d {
			v1 = binary.LittleEndian.AppendUint32(v1, math.Float32bits(v))
		}
	}
	v1 = binary.LittleEndian.AppendUint32(v1, 0)
	var dec Template
	if err := dec.UnmarshalBinary(v1); err != nil {
		t.Fatalf("version 1: %v", err)
	}
	if !sameTemplate(old, &dec) || dec.Embeddings != nil {
		t.Fatalf("version 1 decoded differently")
	}

	ragged := &Template{ModelVersion: "x", Embeddings: [][]float32{{1, 0}, {1}}}
	if _, err := ragged.MarshalBinary(); err == nil {
		t.Error("embeddings of different lengths encoded")
	}
	if err := dec.UnmarshalBinary(b[:len(b)-10]); err == nil {
		t.Error("truncated version-2 blob decoded")
	}
}

// TestAlignment: the similarity fit is exact on points related by a similarity, and the chip
// puts the landmarks where the template says.
func TestAlignment(t *testing.T) {
	src := [][2]float64{{10, 20}, {30, 25}, {22, 40}}
	want := similarity2D{a: 0.8, b: 0.3, tx: 5, ty: -7}
	var dst [][2]float64
	for _, p := range src {
		x, y := want.apply(p[0], p[1])
		dst = append(dst, [2]float64{x, y})
	}
	got := fitSimilarity(src, dst)
	if math.Abs(got.a-want.a)+math.Abs(got.b-want.b)+math.Abs(got.tx-want.tx)+math.Abs(got.ty-want.ty) > 1e-9 {
		t.Fatalf("fit %+v, want %+v", got, want)
	}
	inv := got.inverse()
	for i, p := range dst {
		x, y := inv.apply(p[0], p[1])
		if math.Hypot(x-src[i][0], y-src[i][1]) > 1e-9 {
			t.Fatalf("inverse maps %v to (%v, %v), want %v", p, x, y, src[i])
		}
	}
}

// TestDecoy: the decoy template is the engine's own format and declines every face, under both
// matchers.
func TestDecoy(t *testing.T) {
	for _, matcher := range []string{MatcherONNX, MatcherDlib} {
		e := testEngine(t)
		if matcher == MatcherDlib {
			var err error
			if e, err = NewEngine(Config{ModelsDir: testenv.ModelsDir(t), Workers: 1, Matcher: MatcherDlib}); err != nil {
				t.Fatal(err)
			}
			defer e.Close()
		}
		d := e.Decoy()
		if !e.CanMatch(d) || !e.Current(d) {
			t.Fatalf("%s: decoy %q cannot be matched by the engine", matcher, d.ModelVersion)
		}
		for _, p := range []string{lfw(t, "Bill_Gates", 3), lfw(t, "Aaron_Peirsol", 1)} {
			if r := e.Match(d, analyze(t, e, readFile(t, p)).Face); r.Band != BandDecline || r.Distance < 0.8 {
				t.Errorf("%s: %s against the decoy: %+v", matcher, p, r)
			}
		}
	}
}
