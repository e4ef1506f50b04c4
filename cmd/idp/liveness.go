package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/liveness"
	"github.com/visage-idp/visage/authn/liveness/livenesseval"
)

// runEvalLiveness implements `idp eval liveness`: ISO/IEC 30107-3 figures of the PASSIVE check
// (face engine, then the two fused MiniFASNet models) on a bona fide and an attack image set.
func runEvalLiveness(ctx context.Context, args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("eval liveness", flag.ContinueOnError)
	fl.SetOutput(stdout)
	bonafide := fl.String("bonafide", "", "folder of bona fide (live) images, searched recursively")
	attack := fl.String("attack", "", "folder of attack images (prints, screens), searched recursively")
	labels := fl.String("labels", "", "instead of --bonafide/--attack: a CSV with path (relative to it) and is_attack or label columns")
	asJSON := fl.Bool("json", false, "print one JSON object: bonafide, attack, fta, threshold, apcer, bpcer, eer, bpcer_at_apcer_1pct")
	plotFile := fl.String("plot", "", "write the score distributions to this PNG file")
	threshold := fl.Float64("threshold", liveness.DefaultThreshold, "operating threshold on the fused probability of a real face")
	models := fl.String("models", defaultModelsDir(), "model weights folder (holding antispoof/, onnxruntime/ and dlib/)")
	workers := fl.Int("workers", runtime.NumCPU(), "images analysed in parallel")
	listFailures := fl.Bool("failures", false, "list the images that failed to acquire and the misclassified ones")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("eval liveness: unexpected argument %q", fl.Arg(0))
	}
	if *threshold <= 0 || *threshold >= 1 {
		return fmt.Errorf("eval liveness: --threshold %v must be between 0 and 1", *threshold)
	}
	var samples []livenesseval.Sample
	var err error
	switch {
	case *labels != "" && (*bonafide != "" || *attack != ""):
		return errors.New("eval liveness: give either --labels or --bonafide and --attack")
	case *labels != "":
		samples, err = livenesseval.CSVSamples(*labels)
	case *bonafide != "" && *attack != "":
		samples, err = livenesseval.DirSamples(*bonafide, *attack)
	default:
		return errors.New("eval liveness: --bonafide DIR and --attack DIR (or --labels CSV) are required")
	}
	if err != nil {
		return fmt.Errorf("eval liveness: %w", err)
	}

	fc := face.DefaultConfig()
	fc.ModelsDir = *models
	fc.Workers = max(1, *workers)
	engine, err := face.NewEngine(fc)
	if err != nil {
		return fmt.Errorf("eval liveness: %w", err)
	}
	defer engine.Close()
	passive, err := liveness.NewPassive(liveness.PassiveConfig{ModelsDir: *models, Threshold: *threshold})
	if err != nil {
		return fmt.Errorf("eval liveness: %w", err)
	}
	defer passive.Close()

	start := time.Now()
	scored, err := livenesseval.Run(ctx, samples, func(ctx context.Context, img []byte) (float64, error) {
		a, err := engine.Analyze(ctx, img)
		if err != nil {
			if code := face.Code(err); code == face.CodeNoFaceDetected || code == face.CodeMultipleFaces {
				return 0, fmt.Errorf("%w: %s", livenesseval.ErrNotAcquired, code)
			}
			return 0, err
		}
		return passive.Score(ctx, a.Image, a.Face.Box)
	}, *workers)
	if err != nil {
		return fmt.Errorf("eval liveness: %w", err)
	}
	elapsed := time.Since(start)
	bona, att, fta := livenesseval.Split(scored)
	m := livenesseval.Compute(bona, att, fta, *threshold)

	if *plotFile != "" {
		title := "PASSIVE"
		if *labels != "" {
			title += " on " + *labels
		}
		if err := livenesseval.WritePlot(*plotFile, title, bona, att, m); err != nil {
			return fmt.Errorf("eval liveness: %w", err)
		}
	}
	if *asJSON {
		out := struct {
			Bonafide      int     `json:"bonafide"`
			Attack        int     `json:"attack"`
			FTA           float64 `json:"fta"`
			Threshold     float64 `json:"threshold"`
			APCER         float64 `json:"apcer"`
			BPCER         float64 `json:"bpcer"`
			EER           float64 `json:"eer"`
			BPCERAtAPCER1 float64 `json:"bpcer_at_apcer_1pct"`
		}{m.Bonafide, m.Attack, r4(m.FTA), m.Threshold, r4(m.APCER), r4(m.BPCER), r4(m.EER), r4(m.BPCERAtAPCER1)}
		enc := json.NewEncoder(stdout)
		return enc.Encode(out)
	}
	pct := func(v float64) string { return fmt.Sprintf("%6.2f %%", 100*v) }
	fmt.Fprintf(stdout, "presentations   %d bona fide, %d attack acquired; %d not acquired (FTA %s)\n", m.Bonafide, m.Attack, fta, strings.TrimSpace(pct(m.FTA)))
	fmt.Fprintf(stdout, "threshold       %.4f (fused real-face probability; accepted when >=)\n", m.Threshold)
	fmt.Fprintf(stdout, "APCER           %s  attacks accepted at the threshold\n", pct(m.APCER))
	fmt.Fprintf(stdout, "BPCER           %s  bona fide rejected at the threshold\n", pct(m.BPCER))
	fmt.Fprintf(stdout, "EER             %s  at threshold %.4f\n", pct(m.EER), m.EERThreshold)
	fmt.Fprintf(stdout, "BPCER@APCER<=1%% %s  at threshold %.4f\n", pct(m.BPCERAtAPCER1), m.APCER1Threshold)
	fmt.Fprintf(stdout, "time            %s for %d images (%.1f ms each, %d workers)\n", elapsed.Round(time.Millisecond), len(samples), float64(elapsed.Milliseconds())/float64(max(1, len(samples))), *workers)
	if hwm := peakRSS(); hwm != "" {
		fmt.Fprintf(stdout, "peak RSS        %s\n", hwm)
	}
	if *listFailures {
		sort.SliceStable(scored, func(i, j int) bool { return scored[i].Path < scored[j].Path })
		for _, s := range scored {
			switch {
			case s.Failure != "":
				fmt.Fprintf(stdout, "not acquired    %s (%s)\n", s.Path, s.Failure)
			case s.Attack && s.Score >= m.Threshold:
				fmt.Fprintf(stdout, "attack accepted %s (%.4f)\n", s.Path, s.Score)
			case !s.Attack && s.Score < m.Threshold:
				fmt.Fprintf(stdout, "live rejected   %s (%.4f)\n", s.Path, s.Score)
			}
		}
	}
	return nil
}

func r4(v float64) float64 { return float64(int64(v*10000+0.5)) / 10000 }
