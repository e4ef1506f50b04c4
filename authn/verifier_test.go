package authn

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/internal/testenv"
)

var (
	setupOnce sync.Once
	engine    *face.Engine
	passive   *liveness.Passive
	setupErr  error
)

func models(t *testing.T) (*face.Engine, *liveness.Passive) {
	t.Helper()
	setupOnce.Do(func() {
		cfg := face.DefaultConfig()
		cfg.ModelsDir = testenv.ModelsDir(t)
		cfg.Workers = 1
		if engine, setupErr = face.NewEngine(cfg); setupErr != nil {
			return
		}
		passive, setupErr = liveness.NewPassive(liveness.PassiveConfig{ModelsDir: testenv.ModelsDir(t)})
	})
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return engine, passive
}

func read(t *testing.T, elems ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(testenv.Path(t, elems...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gradient(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := 0; y < 240; y++ {
		for x := 0; x < 320; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 255 / 320), uint8(y * 255 / 240), 120, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestVerify(t *testing.T) {
	eng, pas := models(t)
	ctx := context.Background()
	enrol := func(elems ...string) *face.Template {
		tmpl, _, err := eng.Enroll(ctx, [][]byte{read(t, elems...)}, face.EnrollOptions{})
		if err != nil {
			t.Fatalf("enrol %v: %v", elems, err)
		}
		return tmpl
	}
	aaron := enrol("lfw-view1", "images", "Aaron_Peirsol", "Aaron_Peirsol_0001.jpg")
	nuaa := enrol("nuaa-train", "bonafide", "0001", "0001_00_00_01_0.jpg")
	faceOnly := &Verifier{Engine: eng}
	withLiveness := &Verifier{Engine: eng, Passive: pas}
	tests := []struct {
		name     string
		v        *Verifier
		tmpl     *face.Template
		frame    []byte
		status   Status
		code     string
		amr      []string
		liveness bool
	}{
		{"same person", faceOnly, aaron, read(t, "lfw-view1", "images", "Aaron_Peirsol", "Aaron_Peirsol_0002.jpg"), Approved, "", []string{"face"}, false},
		{"different person", faceOnly, aaron, read(t, "lfw-view1", "images", "Colin_Powell", "Colin_Powell_0038.jpg"), Declined, "FACE_MATCH_DECLINED", nil, false},
		{"no face", faceOnly, aaron, gradient(t), Declined, "NO_FACE_DETECTED", nil, false},
		{"corrupt image", faceOnly, aaron, []byte("\xff\xd8\xff\xe0 not really a jpeg"), Declined, face.Code(face.ErrCorrupt), nil, false},
		{"no template", faceOnly, nil, read(t, "lfw-view1", "images", "Aaron_Peirsol", "Aaron_Peirsol_0002.jpg"), Declined, "NO_REFERENCE_IMAGE", nil, false},
		{"live webcam frame", withLiveness, nuaa, read(t, "nuaa-train", "bonafide", "0001", "0001_00_00_01_116.jpg"), Approved, "", []string{"face"}, true},
		{"printed photo of the same person", withLiveness, nuaa, read(t, "nuaa-train", "attack_print", "0001", "0001_00_00_01_0.jpg"), Declined, "LIVENESS_FACE_ATTACK", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.v.Verify(ctx, [][]byte{tt.frame}, tt.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status != tt.status || d.Code != tt.code || !slices.Equal(d.AMR, tt.amr) {
				t.Fatalf("got %s %q amr %v (%s), want %s %q amr %v", d.Status, d.Code, d.AMR, d.Reason, tt.status, tt.code, tt.amr)
			}
			if (d.Liveness != nil) != tt.liveness {
				t.Fatalf("liveness signal present = %v, want %v", d.Liveness != nil, tt.liveness)
			}
			if d.Elapsed <= 0 {
				t.Fatal("elapsed time not recorded")
			}
		})
	}
	stale := *aaron
	stale.ModelVersion = "some-other-model"
	if _, err := faceOnly.Verify(ctx, [][]byte{read(t, "lfw-view1", "images", "Aaron_Peirsol", "Aaron_Peirsol_0002.jpg")}, &stale); err == nil {
		t.Fatal("a template of another model version must be an error, not a mismatch")
	}
}

// TestDlibTemplateUpgrade: a template sealed by dlib (before the ONNX matcher was the default)
// keeps signing its owner in, and the first approved selfie yields its ONNX successor, which
// then matches the owner and still declines others.
func TestDlibTemplateUpgrade(t *testing.T) {
	eng, _ := models(t)
	if eng.Matcher() != face.MatcherONNX {
		t.Skip("the engine under test is not the ONNX matcher")
	}
	ctx := context.Background()
	dcfg := face.DefaultConfig()
	dcfg.ModelsDir, dcfg.Workers, dcfg.Matcher, dcfg.Policy = testenv.ModelsDir(t), 1, face.MatcherDlib, face.MatchPolicy{}
	dcfg.EnrolJitter = -1 // deterministic: no random jitter
	dlib, err := face.NewEngine(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dlib.Close()
	if dlib.ModelVersion() != eng.DlibVersion() {
		t.Fatalf("dlib engine version %q, ONNX engine's dlib version %q", dlib.ModelVersion(), eng.DlibVersion())
	}
	frames := func(subject string, n int) [][]byte {
		dir := testenv.Path(t, "nuaa-train", "bonafide", subject)
		names, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out [][]byte
		for _, e := range names[:min(n, len(names))] {
			out = append(out, read(t, "nuaa-train", "bonafide", subject, e.Name()))
		}
		return out
	}
	owner, other := frames("0001", 6), frames("0003", 3)
	old, _, err := dlib.Enroll(ctx, owner[:1], face.EnrollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if old.ModelVersion != eng.DlibVersion() || len(old.Descriptors) != 1 || len(old.Embeddings) != 0 {
		t.Fatalf("dlib template: %q, %d descriptors, %d embeddings", old.ModelVersion, len(old.Descriptors), len(old.Embeddings))
	}
	v := &Verifier{Engine: eng}
	// The owner's other webcam frames: approved against the dlib template, with dlib's policy,
	// each carrying the successor template.
	var upgraded *face.Template
	for i, f := range owner[1:] {
		d, err := v.Verify(ctx, [][]byte{f}, old)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != Approved || d.FaceMatch.Matcher != face.MatcherDlib || d.Upgrade == nil {
			t.Fatalf("owner frame %d against the dlib template: %s %s (%s, distance %.3f), upgrade %v", i+1, d.Status, d.Code, d.FaceMatch.Matcher, d.FaceMatch.Distance, d.Upgrade != nil)
		}
		if upgraded == nil {
			upgraded = d.Upgrade
		}
	}
	if upgraded.ModelVersion != eng.ModelVersion() || len(upgraded.Embeddings) != 1 || len(upgraded.Descriptors) != 0 {
		t.Fatalf("successor: %q, %d embeddings, %d descriptors", upgraded.ModelVersion, len(upgraded.Embeddings), len(upgraded.Descriptors))
	}
	// Sealed and opened again, as the store does.
	ring, err := face.LoadOrCreateKeyRing(t.TempDir() + "/keys.json")
	if err != nil {
		t.Fatal(err)
	}
	blob, err := ring.Seal(upgraded)
	if err != nil {
		t.Fatal(err)
	}
	if upgraded, err = ring.Open(blob); err != nil {
		t.Fatal(err)
	}
	for i, f := range owner {
		d, err := v.Verify(ctx, [][]byte{f}, upgraded)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != Approved || d.FaceMatch.Matcher != face.MatcherONNX || d.Upgrade != nil {
			t.Errorf("owner frame %d against the successor: %s %s (%s, distance %.3f)", i, d.Status, d.Code, d.FaceMatch.Matcher, d.FaceMatch.Distance)
		}
	}
	// (Against the old dlib template NUAA's look-alikes are dlib's known weakness, which is why
	// it is replaced; the successor declines them.)
	for i, f := range other {
		d, err := v.Verify(ctx, [][]byte{f}, upgraded)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status == Approved || d.Upgrade != nil {
			t.Errorf("another person's frame %d approved against the successor (distance %.3f)", i, d.FaceMatch.Distance)
		}
	}
}
