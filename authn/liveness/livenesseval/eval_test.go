package livenesseval

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/visage-idp/visage/internal/testenv"
)

func TestCompute(t *testing.T) {
	cases := []struct {
		name                string
		bona, attack        []float64
		fta                 int
		threshold           float64
		apcer, bpcer, eer   float64
		bpcerAt1, eerThresh float64
	}{
		{"separable", []float64{0.6, 0.7, 0.9, 0.95}, []float64{0.01, 0.1, 0.2, 0.3}, 0, 0.5, 0, 0, 0, 0, math.Nextafter(0.3, 1)},
		{"one attack above, one live below", []float64{0.4, 0.7, 0.9, 0.95}, []float64{0.01, 0.1, 0.2, 0.8}, 2, 0.5, 0.25, 0.25, 0.25, 0.5, 0.7},
		{"threshold is inclusive", []float64{0.5}, []float64{0.5}, 0, 0.5, 1, 0, 0.5, 1, 0},
	}
	for _, tc := range cases {
		m := Compute(tc.bona, tc.attack, tc.fta, tc.threshold)
		near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
		if !near(m.APCER, tc.apcer) || !near(m.BPCER, tc.bpcer) || !near(m.EER, tc.eer) || !near(m.BPCERAtAPCER1, tc.bpcerAt1) {
			t.Errorf("%s: APCER %v BPCER %v EER %v BPCER@1%% %v; want %v %v %v %v", tc.name, m.APCER, m.BPCER, m.EER, m.BPCERAtAPCER1, tc.apcer, tc.bpcer, tc.eer, tc.bpcerAt1)
		}
		if tc.name != "threshold is inclusive" && !near(m.EERThreshold, tc.eerThresh) {
			t.Errorf("%s: EER threshold %v, want %v", tc.name, m.EERThreshold, tc.eerThresh)
		}
		if want := float64(tc.fta) / float64(len(tc.bona)+len(tc.attack)+tc.fta); !near(m.FTA, want) {
			t.Errorf("%s: FTA %v, want %v", tc.name, m.FTA, want)
		}
		if ap, _ := rates(sortedCopy(tc.bona), sortedCopy(tc.attack), m.APCER1Threshold); ap > 0.01 {
			t.Errorf("%s: APCER %v at the APCER<=1%% threshold", tc.name, ap)
		}
	}
}

func TestCSVSamples(t *testing.T) {
	s, err := CSVSamples(testenv.Path(t, "replay", "frames", "labels.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var bona, attack int
	for _, x := range s {
		if _, err := os.Stat(x.Path); err != nil {
			t.Fatalf("listed image missing: %v", err)
		}
		if x.Attack {
			attack++
		} else {
			bona++
		}
	}
	if bona != 64 || attack != 73 {
		t.Errorf("%d bona fide and %d attacks, want 64 and 73", bona, attack)
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("file,kind\na.jpg,x\n"), 0o600)
	if _, err := CSVSamples(bad); err == nil {
		t.Error("a CSV without path column was accepted")
	}
}

func TestDirSamplesAndRun(t *testing.T) {
	s, err := DirSamples(testenv.Path(t, "samples"), testenv.Path(t, "samples"))
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 6 || s[0].Attack || !s[5].Attack {
		t.Fatalf("samples %v", s)
	}
	if _, err := DirSamples(t.TempDir(), testenv.Path(t, "samples")); err == nil {
		t.Error("an empty folder was accepted")
	}
	// Run keeps the order, records failures to acquire, stops on other errors.
	scored, err := Run(context.Background(), s, func(_ context.Context, b []byte) (float64, error) {
		if len(b)%2 == 0 {
			return 0, ErrNotAcquired
		}
		return 0.5, nil
	}, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range scored {
		if scored[i].Path != s[i].Path {
			t.Fatalf("order changed at %d", i)
		}
	}
	boom := errors.New("model failure")
	if _, err := Run(context.Background(), s, func(context.Context, []byte) (float64, error) { return 0, boom }, 2); !errors.Is(err, boom) {
		t.Errorf("Run error = %v", err)
	}
}

func TestWritePlot(t *testing.T) {
	bona := []float64{0.9, 0.95, 0.99, 0.4}
	attack := []float64{0.01, 0.02, 0.3}
	p := filepath.Join(t.TempDir(), "scores.png")
	if err := WritePlot(p, "test", bona, attack, Compute(bona, attack, 0, 0.5)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Fatalf("plot file: %d bytes, %v", len(b), err)
	}
}
