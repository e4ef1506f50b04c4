package face

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func sampleTemplate() *Template {
	t := &Template{ModelVersion: "dlib-resnet-v1+sp5:test", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}
	for k := 0; k < 3; k++ {
		var d Descriptor
		for i := range d {
			d[i] = float32(math.Sin(float64(i*(k+1)))) / 10
		}
		t.Descriptors = append(t.Descriptors, d)
	}
	return t
}

func sameTemplate(a, b *Template) bool {
	if a.ModelVersion != b.ModelVersion || !a.CreatedAt.Equal(b.CreatedAt) || len(a.Descriptors) != len(b.Descriptors) || !bytes.Equal(a.Image, b.Image) {
		return false
	}
	for i := range a.Descriptors {
		if a.Descriptors[i] != b.Descriptors[i] {
			return false
		}
	}
	return true
}

func TestKeyRingSealOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "biometric-keys.json")
	ring, err := LoadOrCreateKeyRing(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	tmpl := sampleTemplate()
	tmpl.Image = []byte("\xff\xd8 kept photo")
	blob, err := ring.Seal(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, []byte("kept photo")) || bytes.Contains(blob, []byte(tmpl.ModelVersion)) {
		t.Error("sealed blob contains plaintext")
	}
	if id, err := SealedKeyID(blob); err != nil || id != ring.PrimaryID() {
		t.Errorf("SealedKeyID = %q, %v; want %q", id, err, ring.PrimaryID())
	}
	got, err := ring.Open(blob)
	if err != nil {
		t.Fatal(err)
	}
	if !sameTemplate(got, tmpl) {
		t.Errorf("round trip changed the template")
	}
	// Reloading the file gives the same key.
	again, err := LoadOrCreateKeyRing(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Open(blob); err != nil {
		t.Errorf("reloaded ring: %v", err)
	}

	// Failures are loud: ErrTemplateKey, never a template.
	other, err := LoadOrCreateKeyRing(filepath.Join(dir, "other.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Same key id, different key: rewrite the other ring's file with this ring's id.
	forged := bytes.ReplaceAll(mustRead(t, filepath.Join(dir, "other.json")), []byte(other.PrimaryID()), []byte(ring.PrimaryID()))
	if err := os.WriteFile(filepath.Join(dir, "forged.json"), forged, 0o600); err != nil {
		t.Fatal(err)
	}
	forgedRing, err := LoadOrCreateKeyRing(filepath.Join(dir, "forged.json"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(blob)
	tampered[len(tampered)-20] ^= 1
	retagged := bytes.Clone(blob)
	retagged[len(sealMagic)+1] ^= 1 // key id changed: unknown id
	for _, tc := range []struct {
		name string
		ring *KeyRing
		blob []byte
	}{
		{"another ring (unknown key id)", other, blob},
		{"same key id, wrong key", forgedRing, blob},
		{"tampered ciphertext", ring, tampered},
		{"tampered key id", ring, retagged},
		{"truncated", ring, blob[:len(blob)-1]},
		{"header only", ring, blob[:10]},
		{"not sealed", ring, []byte("hello")},
		{"empty", ring, nil},
	} {
		tmpl, err := tc.ring.Open(tc.blob)
		if !errors.Is(err, ErrTemplateKey) || Code(err) != CodeTemplateKey || tmpl != nil {
			t.Errorf("%s: (%v, %v), want ErrTemplateKey", tc.name, tmpl, err)
		}
	}
}

func TestKeyRingRotate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	ring, err := LoadOrCreateKeyRing(path)
	if err != nil {
		t.Fatal(err)
	}
	first := ring.PrimaryID()
	old, err := ring.Seal(sampleTemplate())
	if err != nil {
		t.Fatal(err)
	}
	id, err := ring.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if id == first || ring.PrimaryID() != id || len(ring.KeyIDs()) != 2 {
		t.Fatalf("after Rotate: new %q, primary %q, ids %v", id, ring.PrimaryID(), ring.KeyIDs())
	}
	fresh, err := ring.Seal(sampleTemplate())
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := SealedKeyID(fresh); k != id {
		t.Errorf("new template sealed with %q, want the new primary %q", k, id)
	}
	// The rotation is persisted: a reloaded ring opens both, and seals with the new key.
	reloaded, err := LoadOrCreateKeyRing(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, blob := range map[string][]byte{"old": old, "new": fresh} {
		if got, err := reloaded.Open(blob); err != nil || !sameTemplate(got, sampleTemplate()) {
			t.Errorf("reloaded ring, %s template: %v", name, err)
		}
	}
	if reloaded.PrimaryID() != id {
		t.Errorf("reloaded primary %q, want %q", reloaded.PrimaryID(), id)
	}
}

func TestKeyRingRefusesLoosePermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if _, err := LoadOrCreateKeyRing(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKeyRing(path); err == nil {
		t.Error("a world-readable key ring was accepted")
	}
	if err := os.WriteFile(path, []byte(`{"version":1,"primary":"x","keys":[{"id":"x","key":"00"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKeyRing(path); err == nil {
		t.Error("a 1-byte key was accepted")
	}
}

func TestTemplateBinary(t *testing.T) {
	tmpl := sampleTemplate()
	b, err := tmpl.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Template
	if err := got.UnmarshalBinary(b); err != nil || !sameTemplate(&got, tmpl) {
		t.Fatalf("round trip: %v", err)
	}
	for cut := 0; cut < len(b); cut += 37 {
		if err := new(Template).UnmarshalBinary(b[:cut]); err == nil {
			t.Errorf("truncated at %d accepted", cut)
		}
	}
}

func TestSimilarityAndBands(t *testing.T) {
	p := DefaultPolicy()
	prev := 2.0
	for d := 0.0; d <= 1.5; d += 0.01 {
		s := Similarity(d)
		if s < 0 || s > 1 || s >= prev {
			t.Fatalf("Similarity(%.2f) = %f, not in [0,1] or not decreasing (previous %f)", d, s, prev)
		}
		prev = s
	}
	for _, tc := range []struct {
		d    float64
		band Band
	}{
		{0, BandApprove}, {p.ApproveBelow - 1e-9, BandApprove}, {p.ApproveBelow, BandReview},
		{p.DeclineAbove, BandReview}, {p.DeclineAbove + 1e-9, BandDecline}, {math.Inf(1), BandDecline}, {math.NaN(), BandDecline},
	} {
		r := p.Result(tc.d)
		if r.Band != tc.band {
			t.Errorf("distance %v: band %s, want %s", tc.d, r.Band, tc.band)
		}
		if r.Score != int(math.Round(100*r.Similarity)) {
			t.Errorf("distance %v: score %d for similarity %f", tc.d, r.Score, r.Similarity)
		}
	}
	if Similarity(0.6) != 0.5 {
		t.Errorf("Similarity(0.6) = %f, documented as 0.5", Similarity(0.6))
	}
	b, err := p.Result(math.Inf(1)).MarshalJSON()
	if err != nil || !bytes.Contains(b, []byte(`"distance":null`)) {
		t.Errorf("JSON of an infinite distance: %s, %v", b, err)
	}
}

func TestCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{nil, ""},
		{ErrNoFace, CodeNoFaceDetected},
		{newError(CodeFaceBlurred, ErrQuality, nil), CodeFaceBlurred},
		{errors.Join(errors.New("ctx"), ErrQueueFull), CodeBusy},
		{errors.New("other"), CodeInternal},
	} {
		if got := Code(tc.err); got != tc.code {
			t.Errorf("Code(%v) = %q, want %q", tc.err, got, tc.code)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
