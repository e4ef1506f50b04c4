package face

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/visage-idp/visage/internal/testenv"
)

// TestCalibrateONNX fits alignTemplate and measures both matchers on every pair of LFW View 1's
// 4,992 images and on the View 1 pairs files, from one analysis per image. It takes long (one
// dlib analysis and one embedding per image), so it runs only with VISAGE_CALIBRATE=1;
// VISAGE_CALIBRATE_CACHE=DIR keeps the analyses and embeddings between runs. It fails if the
// fitted template moved more than half a pixel from alignTemplate. README.md quotes its log.
func TestCalibrateONNX(t *testing.T) {
	if os.Getenv("VISAGE_CALIBRATE") == "" {
		t.Skip("set VISAGE_CALIBRATE=1 (takes minutes)")
	}
	cache := os.Getenv("VISAGE_CALIBRATE_CACHE")
	root := testenv.Path(t, "lfw-view1", "images")
	e, err := NewEngine(Config{ModelsDir: testenv.ModelsDir(t), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	type analysed struct {
		Path, Person string
		LM           [5][2]float64
		Desc         Descriptor
		OK           bool
	}
	var faces []analysed
	load := func(name string, v any) bool {
		if cache == "" {
			return false
		}
		b, err := os.ReadFile(filepath.Join(cache, name))
		return err == nil && json.Unmarshal(b, v) == nil
	}
	save := func(name string, v any) {
		if cache != "" {
			b, _ := json.Marshal(v)
			_ = os.WriteFile(filepath.Join(cache, name), b, 0o600)
		}
	}
	parallel := func(n int, fn func(i int)) {
		var wg sync.WaitGroup
		jobs := make(chan int)
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					fn(i)
				}
			}()
		}
		for i := 0; i < n; i++ {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
	}
	if !load("lfw_lm.json", &faces) {
		paths, _ := filepath.Glob(filepath.Join(root, "*", "*.jpg"))
		faces = make([]analysed, len(paths))
		parallel(len(paths), func(i int) {
			data, err := os.ReadFile(paths[i])
			if err != nil {
				t.Error(err)
				return
			}
			f := analysed{Path: paths[i], Person: filepath.Base(filepath.Dir(paths[i]))}
			if a, err := e.AnalyzeWith(context.Background(), data, AnalyzeOptions{AllowMultipleFaces: true, SkipEmbedding: true}); err == nil {
				f.LM, f.Desc, f.OK = a.Face.lm, a.Face.Descriptor, true
			}
			faces[i] = f
		})
		save("lfw_lm.json", faces)
	}
	// Fit: eye centres on ArcFace's, every point at its median position.
	le, re := [2]float64{38.2946, 51.6963}, [2]float64{73.5318, 51.5014}
	var pos [5][2][]float64
	for _, f := range faces {
		if !f.OK {
			continue
		}
		cr := [2]float64{(f.LM[0][0] + f.LM[1][0]) / 2, (f.LM[0][1] + f.LM[1][1]) / 2}
		cl := [2]float64{(f.LM[2][0] + f.LM[3][0]) / 2, (f.LM[2][1] + f.LM[3][1]) / 2}
		s := fitSimilarity([][2]float64{cl, cr}, [][2]float64{le, re})
		for i := range f.LM {
			x, y := s.apply(f.LM[i][0], f.LM[i][1])
			pos[i][0] = append(pos[i][0], x)
			pos[i][1] = append(pos[i][1], y)
		}
	}
	var fit [5][2]float64
	for i := range fit {
		for c := range fit[i] {
			slices.Sort(pos[i][c])
			fit[i][c] = pos[i][c][len(pos[i][c])/2]
			if d := math.Abs(fit[i][c] - alignTemplate[i][c]); d > 0.5 {
				t.Errorf("landmark %d coordinate %d: fitted %.2f, alignTemplate %.2f", i, c, fit[i][c], alignTemplate[i][c])
			}
		}
	}
	t.Logf("%d images; fitted template %.2f", len(faces), fit)

	var embs [][]float32
	if !load("emb_fit.json", &embs) || len(embs) != len(faces) {
		embs = make([][]float32, len(faces))
		parallel(len(faces), func(i int) {
			f := faces[i]
			if !f.OK {
				return
			}
			data, err := os.ReadFile(f.Path)
			if err != nil {
				t.Error(err)
				return
			}
			img, err := Decode(data, Limits{MaxBytes: 1 << 24, MaxWidth: 8000, MaxHeight: 8000})
			if err != nil {
				t.Error(err)
				return
			}
			if embs[i], err = e.onnx.embed(img, f.LM); err != nil {
				t.Error(err)
			}
		})
		save("emb_fit.json", embs)
	}
	index := map[string]int{}
	for i, f := range faces {
		index[f.Path] = i
	}
	onnx := func(i, j int) float64 { return CosineDistance(embs[i], embs[j]) }
	dlib := func(i, j int) float64 { return Distance(faces[i].Desc, faces[j].Desc) }
	// Score-level fusion, each distance divided by its matcher's all-pairs FAR 1e-4 threshold
	// (0.5891 and 0.4762), weights 0.75 ONNX and 0.25 dlib (0.5/0.5 measured worse).
	fusion := func(i, j int) float64 { return 0.75*onnx(i, j)/0.5891 + 0.25*dlib(i, j)/0.4762 }
	for _, m := range []struct {
		name   string
		dist   func(i, j int) float64
		policy MatchPolicy
	}{{"onnx", onnx, DefaultPolicyFor(MatcherONNX)}, {"dlib", dlib, DlibPolicy()}, {"fusion", fusion, MatchPolicy{ApproveBelow: 1, DeclineAbove: 1}}} {
		var gen, imp []float64
		for i := range faces {
			for j := i + 1; j < len(faces); j++ {
				d := math.Inf(1)
				if faces[i].OK && faces[j].OK {
					d = m.dist(i, j)
				}
				if faces[i].Person == faces[j].Person {
					gen = append(gen, d)
				} else {
					imp = append(imp, d)
				}
			}
		}
		logRates(t, m.name+" all pairs", gen, imp, m.policy)
		for _, file := range []string{"pairsDevTrain.txt", "pairsDevTest.txt"} {
			gen, imp = gen[:0], imp[:0]
			for _, p := range readLFWPairs(t, file) {
				i, oki := index[p.A]
				j, okj := index[p.B]
				if !oki || !okj {
					t.Fatalf("%s: %s / %s not among the analysed images", file, p.A, p.B)
				}
				d := math.Inf(1)
				if faces[i].OK && faces[j].OK {
					d = m.dist(i, j)
				}
				if p.Genuine {
					gen = append(gen, d)
				} else {
					imp = append(imp, d)
				}
			}
			logRates(t, m.name+" "+strings.TrimSuffix(file, ".txt"), gen, imp, m.policy)
		}
	}
}

// logRates logs EER, TAR at FAR 1e-3/1e-4 (with their thresholds) and the rates at the policy.
func logRates(t *testing.T, name string, gen, imp []float64, p MatchPolicy) {
	t.Helper()
	g, im := slices.Clone(gen), slices.Clone(imp)
	slices.Sort(g)
	slices.Sort(im)
	below := func(xs []float64, v float64) float64 { return float64(sort.SearchFloat64s(xs, v)) }
	tar := func(far float64) (float64, float64) {
		k := int(math.Floor(far*float64(len(im)) + 1e-9))
		thr := im[min(k, len(im)-1)]
		return below(g, thr) / float64(len(g)), thr
	}
	eer, best := 0.0, math.Inf(1)
	for _, v := range g {
		far, frr := below(im, v)/float64(len(im)), 1-below(g, v)/float64(len(g))
		if d := math.Abs(far - frr); d < best {
			best, eer = d, (far+frr)/2
		}
	}
	t3, th3 := tar(1e-3)
	t4, th4 := tar(1e-4)
	t.Logf("%s: %d genuine, %d impostor; EER %.4f; TAR %.4f at FAR 1e-3 (d < %.4f), %.4f at 1e-4 (d < %.4f); approve < %.3f: FAR %.6f (%d), FRR %.4f",
		name, len(g), len(im), eer, t3, th3, t4, th4, p.ApproveBelow, below(im, p.ApproveBelow)/float64(len(im)), int(below(im, p.ApproveBelow)), 1-below(g, p.ApproveBelow)/float64(len(g)))
}
