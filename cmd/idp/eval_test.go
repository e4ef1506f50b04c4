package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/visage-idp/visage/internal/testenv"
)

func jsonKeys(t *testing.T, out []byte) (map[string]any, []string) {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(out, &obj); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	var keys []string
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return obj, keys
}

func TestEvalFacesPairsJSON(t *testing.T) {
	models := testenv.ModelsDir(t)
	images := testenv.Path(t, "lfw-view1", "images")
	// The first 6 genuine and 6 impostor pairs of DevTest, in the LFW format.
	all, err := os.ReadFile(testenv.Path(t, "lfw-view1", "pairsDevTest.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(all), "\n")
	var g, i []string
	for _, l := range lines[1:] {
		switch f := strings.Fields(l); {
		case len(f) == 3 && len(g) < 6:
			g = append(g, l)
		case len(f) == 4 && len(i) < 6:
			i = append(i, l)
		}
	}
	dir := t.TempDir()
	pairs := filepath.Join(dir, "pairs.txt")
	os.WriteFile(pairs, []byte("6\n"+strings.Join(append(g, i...), "\n")+"\n"), 0o600)
	plot := filepath.Join(dir, "roc.png")

	var out bytes.Buffer
	err = runEvalFaces(context.Background(), []string{"--images", images, "--pairs", pairs, "--json", "--plot", plot, "--models", models, "--workers", "2"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	obj, keys := jsonKeys(t, out.Bytes())
	if want := []string{"accuracy", "eer", "far_at_approve", "frr_at_approve", "fta", "genuine", "images", "impostor", "tar_at_far", "thresholds"}; !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	if obj["genuine"].(float64) != 6 || obj["impostor"].(float64) != 6 || obj["images"].(float64) < 20 || obj["fta"].(float64) != 0 {
		t.Errorf("figures %v", obj)
	}
	tar := obj["tar_at_far"].(map[string]any)
	th := obj["thresholds"].(map[string]any)
	if tar["1e-2"] == nil || tar["1e-3"] == nil || tar["1e-4"] == nil || th["1e-2"] == nil || th["1e-3"] == nil || th["1e-4"] == nil || th["approve"] == nil {
		t.Errorf("tar_at_far %v thresholds %v", tar, th)
	}
	if st, err := os.Stat(plot); err != nil || st.Size() < 1000 {
		t.Errorf("plot: %v", err)
	}
}

func TestEvalFacesFolder(t *testing.T) {
	models := testenv.ModelsDir(t)
	dir := t.TempDir()
	for _, person := range []string{"Aaron_Peirsol", "Bill_Gates", "Alec_Baldwin"} {
		// Links, not copies: the test data stays where it is.
		if err := os.Symlink(testenv.Path(t, "lfw-view1", "images", person), filepath.Join(dir, person)); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := runEvalFaces(context.Background(), []string{"--images", dir, "--models", models, "--impostors", "20"}, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"images ", "failures to acquire", "EER", "TAR at FAR 1e-2", "TAR at FAR 1e-3", "20 impostor"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

// TestEvalFacesAllPairs: --all-pairs compares every pair of images of a one-folder-per-person
// directory (3 people, 2+2+3 photos: 1+1+3 genuine, 16 impostor pairs), with the rates at the
// approve threshold, and a pairs file's pairs from the same descriptions.
func TestEvalFacesAllPairs(t *testing.T) {
	models := testenv.ModelsDir(t)
	dir := t.TempDir()
	for person, nums := range map[string][]int{"Aaron_Peirsol": {1, 2}, "Bill_Gates": {3, 4}, "Alec_Baldwin": {1, 2, 3}} {
		if err := os.Mkdir(filepath.Join(dir, person), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range nums {
			name := fmt.Sprintf("%s_%04d.jpg", person, n)
			if err := os.Symlink(testenv.Path(t, "lfw-view1", "images", person, name), filepath.Join(dir, person, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	pairs := filepath.Join(t.TempDir(), "pairs.txt")
	os.WriteFile(pairs, []byte("Bill_Gates\t3\t4\nAaron_Peirsol\t1\tAlec_Baldwin\t2\n"), 0o600)
	var out bytes.Buffer
	if err := runEvalFaces(context.Background(), []string{"--images", dir, "--all-pairs", "--pairs", pairs, "--json", "--models", models, "--workers", "2"}, &out); err != nil {
		t.Fatal(err)
	}
	var r struct {
		Images, Genuine, Impostor int
		FARAtApprove              float64                          `json:"far_at_approve"`
		FRRAtApprove              float64                          `json:"frr_at_approve"`
		TAR                       map[string]float64               `json:"tar_at_far"`
		PairsFile                 *struct{ Genuine, Impostor int } `json:"pairs_file"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if r.Images != 7 || r.Genuine != 5 || r.Impostor != 16 || r.PairsFile == nil || r.PairsFile.Genuine != 1 || r.PairsFile.Impostor != 1 {
		t.Fatalf("counts: %s", out.String())
	}
	// Seven clear photos of three people: no impostor approved, the genuine pairs approved.
	if r.FARAtApprove != 0 || r.FRRAtApprove > 0.2 || r.TAR["1e-4"] < 0.8 {
		t.Errorf("rates: %s", out.String())
	}
}

func TestEvalFacesFlags(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{
		{},
		{"--images", t.TempDir(), "--baseline", "--compare"},
		{"--images", "/nonexistent-folder"},
		{"--images", t.TempDir(), "stray"},
	} {
		if err := runEvalFaces(context.Background(), args, &out); err == nil {
			t.Errorf("eval faces %v: no error", args)
		}
	}
}

func TestBenchFacesJSON(t *testing.T) {
	models := testenv.ModelsDir(t)
	var out bytes.Buffer
	err := runBenchFaces(context.Background(), []string{"--images", testenv.Path(t, "samples", "image_T1.jpg"), "--n", "6", "--workers", "1", "--json", "--models", models,
		testenv.Path(t, "samples", "image_F1.jpg")}, &out)
	if err != nil {
		t.Fatal(err)
	}
	obj, keys := jsonKeys(t, out.Bytes())
	if want := []string{"p50_ms", "p95_ms", "p99_ms", "per_second", "workers"}; !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	if obj["workers"].(float64) != 1 || obj["p50_ms"].(float64) <= 0 || obj["per_second"].(float64) <= 0 {
		t.Errorf("figures %v", obj)
	}
	if err := runBenchFaces(context.Background(), []string{"--images", t.TempDir(), "--models", models}, &out); err == nil {
		t.Error("an empty folder was benchmarked")
	}
}
