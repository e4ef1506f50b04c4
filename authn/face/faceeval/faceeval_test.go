package faceeval

import (
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/internal/testenv"
)

func TestCompute(t *testing.T) {
	// 10 genuine, 100 impostor distances, hand-checkable.
	gen := []float64{0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.62, math.Inf(1)}
	var imp []float64
	for i := 0; i < 100; i++ {
		imp = append(imp, 0.5+float64(i)*0.01) // 0.50 .. 1.49
	}
	m := Compute(gen, imp, 0.5, 0.6)
	if m.Genuine != 10 || m.Impostor != 100 {
		t.Fatalf("counts %d/%d", m.Genuine, m.Impostor)
	}
	// approve < 0.5: genuine accepted 6 (0.1..0.45), impostors 0.
	if m.ApproveFRR != 0.4 || m.ApproveFAR != 0 || math.Abs(m.Accuracy-(6+100)/110.0) > 1e-12 {
		t.Errorf("approve: FRR %v FAR %v acc %v", m.ApproveFRR, m.ApproveFAR, m.Accuracy)
	}
	// decline > 0.6: genuine declined 0.62 and Inf (2/10); impostors not declined 0.50..0.60 (11).
	if m.DeclineFRR != 0.2 || m.DeclineFAR != 0.11 {
		t.Errorf("decline: FRR %v FAR %v", m.DeclineFRR, m.DeclineFAR)
	}
	// FAR 1e-2 allows 1 impostor: threshold is the second impostor, 0.51; genuine below: 7.
	if m.Threshold1e2 != 0.51 || m.TAR1e2 != 0.7 {
		t.Errorf("FAR 1e-2: threshold %v TAR %v", m.Threshold1e2, m.TAR1e2)
	}
	// FAR 1e-3 allows none: threshold 0.50, TAR 6/10.
	if m.Threshold1e3 != 0.5 || m.TAR1e3 != 0.6 {
		t.Errorf("FAR 1e-3: threshold %v TAR %v", m.Threshold1e3, m.TAR1e3)
	}
	if m.EER < 0.05 || m.EER > 0.25 {
		t.Errorf("EER %v", m.EER)
	}
	// Perfect separation.
	if p := Compute([]float64{0.1, 0.2}, []float64{0.8, 0.9}, 0.5, 0.6); p.EER != 0 || p.TAR1e3 != 1 || p.Accuracy != 1 {
		t.Errorf("separable: %+v", p)
	}
}

func TestReadLFWPairs(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pairs.txt")
	os.WriteFile(f, []byte("3\nAaron_Peirsol\t1\t2\nAaron_Peirsol 3 4\nA_B\t1\tC_D\t12\n"), 0o600)
	pairs, err := ReadLFWPairs(f, "/img")
	if err != nil {
		t.Fatal(err)
	}
	want := []Pair{
		{"/img/Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "/img/Aaron_Peirsol/Aaron_Peirsol_0002.jpg", true},
		{"/img/Aaron_Peirsol/Aaron_Peirsol_0003.jpg", "/img/Aaron_Peirsol/Aaron_Peirsol_0004.jpg", true},
		{"/img/A_B/A_B_0001.jpg", "/img/C_D/C_D_0012.jpg", false},
	}
	if !reflect.DeepEqual(pairs, want) {
		t.Errorf("got %v", pairs)
	}
	os.WriteFile(f, []byte("1\nA 1 B\n"), 0o600)
	if _, err := ReadLFWPairs(f, "/img"); err == nil {
		t.Error("bad line accepted")
	}
	// The real View 1 files.
	for file, n := range map[string]int{"pairsDevTrain.txt": 2200, "pairsDevTest.txt": 1000} {
		ps, err := ReadLFWPairs(testenv.Path(t, "lfw-view1", file), testenv.Path(t, "lfw-view1", "images"))
		if err != nil || len(ps) != n {
			t.Fatalf("%s: %d pairs, %v", file, len(ps), err)
		}
		g := 0
		for _, p := range ps {
			if p.Genuine {
				g++
			}
		}
		if g != n/2 {
			t.Errorf("%s: %d genuine pairs, want %d", file, g, n/2)
		}
		if _, err := os.Stat(ps[n-1].B); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}

func TestFolderPairs(t *testing.T) {
	dir := t.TempDir()
	for person, n := range map[string]int{"ann": 3, "bob": 2, "cid": 1, "empty": 0} {
		os.MkdirAll(filepath.Join(dir, person), 0o700)
		for i := 0; i < n; i++ {
			os.WriteFile(filepath.Join(dir, person, string(rune('a'+i))+".jpg"), nil, 0o600)
		}
	}
	os.WriteFile(filepath.Join(dir, "ann", "notes.txt"), nil, 0o600)
	pairs, err := FolderPairs(dir, FolderOptions{Impostors: 5, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	var gen, imp []Pair
	for _, p := range pairs {
		if p.Genuine {
			gen = append(gen, p)
			if filepath.Dir(p.A) != filepath.Dir(p.B) {
				t.Errorf("genuine pair across folders: %v", p)
			}
		} else {
			imp = append(imp, p)
			if filepath.Dir(p.A) == filepath.Dir(p.B) {
				t.Errorf("impostor pair within a folder: %v", p)
			}
		}
	}
	if len(gen) != 3+1 || len(imp) != 5 {
		t.Errorf("%d genuine (want 4), %d impostor (want 5)", len(gen), len(imp))
	}
	again, _ := FolderPairs(dir, FolderOptions{Impostors: 5, Seed: 7})
	if !reflect.DeepEqual(pairs, again) {
		t.Error("same seed, different pairs")
	}
	// Asking for more impostors than exist gives all of them (3*2 + 3*1 + 2*1 = 11), once each.
	all, _ := FolderPairs(dir, FolderOptions{Impostors: 100})
	seen := map[Pair]bool{}
	for _, p := range all {
		if !p.Genuine {
			if seen[p] {
				t.Errorf("duplicate %v", p)
			}
			seen[p] = true
		}
	}
	if len(seen) != 11 {
		t.Errorf("%d impostor pairs, want all 11", len(seen))
	}
	if _, err := FolderPairs(filepath.Join(dir, "ann"), FolderOptions{}); err == nil {
		t.Error("a folder without person folders was accepted")
	}
}

// TestEvaluateLFWSubset runs the engine on the first 40 genuine and 40 impostor pairs of
// DevTest: every image acquired, and the figures of a working face matcher.
func TestEvaluateLFWSubset(t *testing.T) {
	e, err := face.NewEngine(face.Config{ModelsDir: testenv.ModelsDir(t), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pairs, err := ReadLFWPairs(testenv.Path(t, "lfw-view1", "pairsDevTest.txt"), testenv.Path(t, "lfw-view1", "images"))
	if err != nil {
		t.Fatal(err)
	}
	var sub []Pair
	g, i := 0, 0
	for _, p := range pairs {
		if p.Genuine && g < 40 {
			sub, g = append(sub, p), g+1
		} else if !p.Genuine && i < 40 {
			sub, i = append(sub, p), i+1
		}
	}
	res, err := Evaluate(context.Background(), sub, EngineDescriber(e, false, false), Options{Workers: 2, Distance: e.Distance})
	if err != nil {
		t.Fatal(err)
	}
	if res.Genuine != 40 || res.Impostor != 40 || res.Images < 100 {
		t.Fatalf("counts: %+v", res)
	}
	if res.FTA != 0 {
		t.Errorf("%d failures to acquire: %v", res.FTA, res.Failures)
	}
	if res.EER > 0.1 || res.Accuracy < 0.85 || res.Metrics.GenuineMean > res.Metrics.ImpostorMean-0.2 {
		t.Errorf("figures of a broken matcher: EER %.3f accuracy %.3f genuine %.3f impostor %.3f", res.EER, res.Accuracy, res.Metrics.GenuineMean, res.Metrics.ImpostorMean)
	}
	// The JSON form has exactly the documented keys.
	b, _ := json.Marshal(res)
	var obj map[string]any
	json.Unmarshal(b, &obj)
	var keys []string
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := []string{"accuracy", "eer", "far_at_approve", "frr_at_approve", "fta", "genuine", "images", "impostor", "tar_at_far", "thresholds"}; !slices.Equal(keys, want) {
		t.Errorf("JSON keys %v, want %v", keys, want)
	}
	if tar := obj["tar_at_far"].(map[string]any); len(tar) != 3 || tar["1e-2"] == nil || tar["1e-3"] == nil || tar["1e-4"] == nil {
		t.Errorf("tar_at_far %v", tar)
	}

	plot := filepath.Join(t.TempDir(), "roc.png")
	if err := WritePlot(plot, "subset", []Curve{{Name: "engine", Genuine: res.GenuineD, Impostor: res.ImpostorD, Approve: 0.53, Decline: 0.6}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cfg, err := png.DecodeConfig(f); err != nil || cfg.Width < 600 {
		t.Errorf("plot: %v %+v", err, cfg)
	}

	// A cancelled evaluation stops with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, sub, EngineDescriber(e, false, false), Options{Workers: 2}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestBench(t *testing.T) {
	calls := 0
	res, err := Bench(context.Background(), BenchConfig{Workers: 1, N: 10, Warmup: 1, Images: [][]byte{{1}, {2}}},
		func(ctx context.Context, img []byte) error {
			calls++
			if img[0] == 2 {
				return errors.New("odd")
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 11 || res.N != 10 || res.Errors != 5 || res.Workers != 1 || res.PerSecond <= 0 || res.P99 < res.P50 {
		t.Errorf("calls %d, result %+v", calls, res)
	}
	b, _ := json.Marshal(res)
	var obj map[string]any
	json.Unmarshal(b, &obj)
	if len(obj) != 5 || obj["p50_ms"] == nil || obj["p95_ms"] == nil || obj["p99_ms"] == nil || obj["per_second"] == nil || obj["workers"] == nil {
		t.Errorf("JSON %s", b)
	}
	if _, err := Bench(context.Background(), BenchConfig{}, nil); err == nil {
		t.Error("no images accepted")
	}
}

// TestQualityStudy runs the calibration study on two pairs: each defect must move its measure
// the right way and never improve the match.
func TestQualityStudy(t *testing.T) {
	e, err := face.NewEngine(face.Config{ModelsDir: testenv.ModelsDir(t), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pairs, err := ReadLFWPairs(testenv.Path(t, "lfw-view1", "pairsDevTrain.txt"), testenv.Path(t, "lfw-view1", "images"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := QualityStudy(context.Background(), e, pairs, 2, 2, face.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]StudyRow{}
	last := map[string]StudyRow{}
	for _, r := range rows {
		if _, ok := first[r.Degradation]; !ok {
			first[r.Degradation] = r
		}
		last[r.Degradation] = r
		if r.N != 2 {
			t.Errorf("%s %.2f: %d probes, want 2", r.Degradation, r.Level, r.N)
		}
	}
	if len(first) != len(Degradations()) {
		t.Fatalf("%d degradations in the rows", len(first))
	}
	for name, dir := range map[string]float64{"blur": -1, "dark": -1, "bright": +1, "small": -1, "cut": +1, "roll": +1} {
		f, l := first[name], last[name]
		if f.Found != 2 {
			t.Errorf("%s: undegraded photos not found", name)
			continue
		}
		if l.Found > 0 && (l.Median-f.Median)*dir <= 0 {
			t.Errorf("%s: measure went from %.2f to %.2f, want a move of sign %+.0f", name, f.Median, l.Median, dir)
		}
		if l.DistanceMedian < f.DistanceMedian-0.02 {
			t.Errorf("%s: the strongest defect improved the match (%.3f -> %.3f)", name, f.DistanceMedian, l.DistanceMedian)
		}
	}
}
