package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/visage-idp/visage/authn"
	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/face/faceeval"
	"github.com/visage-idp/visage/authn/liveness"
)

// defaultModelsDir is $VISAGE_MODELS_DIR, else models/weights.
func defaultModelsDir() string {
	if d := os.Getenv("VISAGE_MODELS_DIR"); d != "" {
		return d
	}
	return filepath.Join("models", "weights")
}

// runEvalFaces implements `idp eval faces`: verification accuracy of the face engine on an
// LFW-style pairs file or a one-folder-per-person directory.
func runEvalFaces(ctx context.Context, args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("eval faces", flag.ContinueOnError)
	fl.SetOutput(stdout)
	images := fl.String("images", "", "image folder: LFW layout (NAME/NAME_NNNN.jpg) with --pairs, else one folder per person")
	pairsFile := fl.String("pairs", "", "pairs file in the LFW format (pairsDevTrain.txt, pairsDevTest.txt, pairs.txt)")
	asJSON := fl.Bool("json", false, "print one JSON object: images, fta, genuine, impostor, eer, accuracy, tar_at_far, thresholds")
	plotFile := fl.String("plot", "", "write a ROC/DET plot to this PNG file")
	models := fl.String("models", defaultModelsDir(), "model weights folder (holding dlib/)")
	workers := fl.Int("workers", runtime.NumCPU(), "images analysed in parallel")
	baseline := fl.Bool("baseline", false, "evaluate plain go-face (Recognize, first face) instead of the engine")
	compare := fl.Bool("compare", false, "also evaluate plain go-face and put both in the text output and the plot (JSON stays the engine's)")
	gate := fl.Bool("quality-gate", false, "count images with a blocking quality or MULTIPLE_FACES warning as failures to acquire, as login does")
	impostors := fl.Int("impostors", 0, "folder mode: impostor pairs to sample (0: as many as genuine pairs, at least 1000)")
	seed := fl.Uint64("seed", 1, "folder mode: seed of the impostor sampling")
	approve := fl.Float64("approve", 0, "approve-below distance to report (default: the engine's policy)")
	decline := fl.Float64("decline", 0, "decline-above distance to report (default: the engine's policy)")
	limit := fl.Int("limit", 0, "use only the first N pairs of each kind (0: all)")
	listFTA := fl.Bool("failures", false, "list the images that failed to acquire")
	study := fl.Int("quality-study", 0, "instead of the evaluation: degrade the second photo of this many genuine pairs (blur, dark, bright, small, cut off, rolled) and print how the quality measure and the match suffer")
	enrolSide := fl.Bool("enrol", false, "describe the first image of each pair as enrolment does (jittered descriptor under the dlib matcher), the second as login does")
	allPairs := fl.Bool("all-pairs", false, "compare every pair of images under --images (one folder per person: same folder genuine, else impostor) instead of --pairs or sampled pairs")
	matcher := fl.String("matcher", face.MatcherONNX, "matcher to evaluate: onnx or dlib")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("eval faces: unexpected argument %q", fl.Arg(0))
	}
	if *images == "" {
		return errors.New("eval faces: --images DIR is required")
	}
	if *baseline && *compare {
		return errors.New("eval faces: --baseline and --compare exclude each other")
	}
	var pairs []faceeval.Pair
	var all []faceeval.Image
	var err error
	switch {
	case *allPairs:
		if *study > 0 || *limit > 0 {
			return errors.New("eval faces: --all-pairs excludes --limit and --quality-study")
		}
		if all, err = faceeval.FolderImages(*images); err == nil && *pairsFile != "" {
			// Both: every pair, and the pairs file's pairs from the same descriptions.
			pairs, err = faceeval.ReadLFWPairs(*pairsFile, *images)
		}
	case *pairsFile != "":
		pairs, err = faceeval.ReadLFWPairs(*pairsFile, *images)
	default:
		pairs, err = faceeval.FolderPairs(*images, faceeval.FolderOptions{Impostors: *impostors, Seed: *seed})
	}
	if err != nil {
		return fmt.Errorf("eval faces: %w", err)
	}
	if *limit > 0 {
		pairs = limitPairs(pairs, *limit)
	}

	if *baseline {
		*matcher = face.MatcherDlib
	}
	policy := face.DefaultPolicyFor(*matcher)
	var engine *face.Engine
	if !*baseline {
		cfg := face.DefaultConfig()
		cfg.ModelsDir, cfg.Workers, cfg.Matcher = *models, max(1, *workers), *matcher
		cfg.Policy = face.DefaultPolicyFor(*matcher)
		cfg.QueueSize = 4 * cfg.Workers
		engine, err = face.NewEngine(cfg)
		if err != nil {
			return fmt.Errorf("eval faces: %w", err)
		}
		defer engine.Close()
		policy = engine.Config().Policy
	}
	if *approve > 0 {
		policy.ApproveBelow = *approve
	}
	if *decline > 0 {
		policy.DeclineAbove = *decline
	}
	if policy.DeclineAbove < policy.ApproveBelow {
		return fmt.Errorf("eval faces: decline threshold %.3f below approve threshold %.3f", policy.DeclineAbove, policy.ApproveBelow)
	}
	opts := faceeval.Options{Workers: max(1, *workers), Policy: policy}
	if engine != nil {
		opts.Distance = engine.Distance
	}
	evaluate := func(describe faceeval.DescribeFunc, o faceeval.Options) (*faceeval.Result, error) {
		if *allPairs {
			o.Pairs = pairs
			return faceeval.EvaluateAllPairs(ctx, all, describe, o)
		}
		return faceeval.Evaluate(ctx, pairs, describe, o)
	}
	if *study > 0 {
		if engine == nil {
			return errors.New("eval faces: --quality-study needs the engine, not --baseline")
		}
		rows, err := faceeval.QualityStudy(ctx, engine, pairs, *study, opts.Workers, policy)
		if err != nil {
			return fmt.Errorf("eval faces: %w", err)
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(rows)
		}
		fmt.Fprintf(stdout, "%-7s %5s %9s  %-17s %6s %6s %6s  %8s  %8s %8s\n", "defect", "level", "found", "measure", "p10", "median", "p90", "dist med", "approved", "not decl")
		for _, r := range rows {
			fmt.Fprintf(stdout, "%-7s %5.2f %4d/%-4d  %-17s %6.1f %6.1f %6.1f  %8.3f  %8.3f %8.3f\n", r.Degradation, r.Level, r.Found, r.N, r.Measure, r.P10, r.Median, r.P90, r.DistanceMedian, r.Approved, r.NotDeclined)
		}
		return nil
	}

	type system struct {
		name string
		res  *faceeval.Result
	}
	var systems []system
	if engine != nil {
		eopts := opts
		name := "engine (" + engine.Matcher() + ")"
		if *enrolSide {
			eopts.EnrolDescribe = faceeval.EngineDescriber(engine, *gate, true)
			name += ", enrolment side jittered"
		}
		if *gate {
			name += ", quality gate"
		}
		res, err := evaluate(faceeval.EngineDescriber(engine, *gate, false), eopts)
		if err != nil {
			return fmt.Errorf("eval faces: %w", err)
		}
		systems = append(systems, system{name, res})
	}
	if *baseline || *compare {
		b, err := faceeval.NewBaseline(*models, max(1, *workers))
		if err != nil {
			return fmt.Errorf("eval faces: %w", err)
		}
		bopts := opts
		bopts.Distance = faceeval.DlibDistance
		if *compare {
			bopts.Policy = face.DlibPolicy()
		}
		res, err := evaluate(b.Describe, bopts)
		b.Close()
		if err != nil {
			return fmt.Errorf("eval faces: %w", err)
		}
		systems = append(systems, system{"plain go-face", res})
	}

	if *plotFile != "" {
		var curves []faceeval.Curve
		for _, s := range systems {
			curves = append(curves, faceeval.Curve{Name: s.name, Genuine: s.res.GenuineD, Impostor: s.res.ImpostorD,
				Approve: s.res.Metrics.Approve, Decline: s.res.Metrics.Decline})
		}
		title := filepath.Base(*images)
		if *pairsFile != "" {
			title = strings.TrimSuffix(filepath.Base(*pairsFile), filepath.Ext(*pairsFile))
		}
		if err := faceeval.WritePlot(*plotFile, title, curves); err != nil {
			return fmt.Errorf("eval faces: %w", err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(systems[0].res)
	}
	for _, s := range systems {
		if *allPairs {
			s.name += ", all pairs"
		}
		printEval(stdout, s.name, s.res, *listFTA)
		if s.res.PairsFile != nil {
			printEval(stdout, s.name+": "+filepath.Base(*pairsFile), s.res.PairsFile, false)
		}
	}
	if *plotFile != "" {
		fmt.Fprintf(stdout, "plot written to %s\n", *plotFile)
	}
	return nil
}

// limitPairs keeps the first n genuine and the first n impostor pairs.
func limitPairs(pairs []faceeval.Pair, n int) []faceeval.Pair {
	var out []faceeval.Pair
	g, i := 0, 0
	for _, p := range pairs {
		if p.Genuine && g < n {
			out, g = append(out, p), g+1
		} else if !p.Genuine && i < n {
			out, i = append(out, p), i+1
		}
	}
	return out
}

func printEval(w io.Writer, name string, r *faceeval.Result, listFTA bool) {
	m := r.Metrics
	fmt.Fprintf(w, "== %s\n", name)
	fmt.Fprintf(w, "images                %d\n", r.Images)
	fmt.Fprintf(w, "failures to acquire   %d (%.2f%%)%s\n", r.FTA, 100*float64(r.FTA)/float64(max(1, r.Images)), ftaCodes(r.Failures))
	fmt.Fprintf(w, "pairs                 %d genuine, %d impostor\n", r.Genuine, r.Impostor)
	fmt.Fprintf(w, "EER                   %.4f (at distance %.4f)\n", m.EER, m.EERThreshold)
	fmt.Fprintf(w, "TAR at FAR 1e-2       %.4f (distance < %.4f)\n", m.TAR1e2, m.Threshold1e2)
	fmt.Fprintf(w, "TAR at FAR 1e-3       %.4f (distance < %.4f)\n", m.TAR1e3, m.Threshold1e3)
	fmt.Fprintf(w, "TAR at FAR 1e-4       %.4f (distance < %.4f)\n", m.TAR1e4, m.Threshold1e4)
	fmt.Fprintf(w, "approve < %.3f        accuracy %.4f, FAR %.6f (%d of %d), FRR %.4f\n", m.Approve, m.Accuracy, m.ApproveFAR, int(math.Round(m.ApproveFAR*float64(m.Impostor))), m.Impostor, m.ApproveFRR)
	fmt.Fprintf(w, "decline > %.3f        FAR %.4f (impostors not declined), FRR %.4f (genuine declined)\n", m.Decline, m.DeclineFAR, m.DeclineFRR)
	fmt.Fprintf(w, "review band           %.2f%% of genuine, %.2f%% of impostor pairs\n", 100*m.ReviewGenuine, 100*m.ReviewImpostor)
	fmt.Fprintf(w, "accuracy at 0.6       %.4f; best %.4f at %.4f\n", m.AccuracyAt06, m.BestAccuracy, m.BestAccuracyThreshold)
	fmt.Fprintf(w, "mean distance         genuine %.4f, impostor %.4f\n", m.GenuineMean, m.ImpostorMean)
	if listFTA {
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  fta %s %s\n", f.Code, f.Path)
		}
	}
}

func ftaCodes(fs []faceeval.Failure) string {
	if len(fs) == 0 {
		return ""
	}
	count := map[string]int{}
	for _, f := range fs {
		count[f.Code]++
	}
	var parts []string
	for c, n := range count {
		parts = append(parts, c+" "+strconv.Itoa(n))
	}
	slices.Sort(parts)
	return ": " + strings.Join(parts, ", ")
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// runBenchFaces implements `idp bench faces`: latency and throughput of decode, detect, quality
// and describe (Engine.Analyze) on a set of images.
func runBenchFaces(ctx context.Context, args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("bench faces", flag.ContinueOnError)
	fl.SetOutput(stdout)
	var inputs listFlag
	fl.Var(&inputs, "images", "image file or folder (searched recursively for .jpg/.jpeg/.png); repeatable, further files may follow the flags (default: $VISAGE_TESTDATA/nuaa-train/bonafide, 640x480 webcam selfies)")
	workers := fl.Int("workers", runtime.NumCPU(), "parallel callers and recognizers")
	n := fl.Int("n", 200, "measured calls")
	asJSON := fl.Bool("json", false, "print one JSON object: p50_ms, p95_ms, p99_ms, per_second, workers")
	models := fl.String("models", defaultModelsDir(), "model weights folder (holding dlib/)")
	matcher := fl.String("matcher", face.MatcherONNX, "matcher: onnx or dlib")
	verdict := fl.Bool("verdict", false, "measure a whole sign-in verdict per image (analyse, embed, PASSIVE liveness, match against a template enrolled from the first image) instead of the analysis alone")
	if err := fl.Parse(args); err != nil {
		return err
	}
	inputs = append(inputs, fl.Args()...)
	if len(inputs) == 0 {
		td := os.Getenv("VISAGE_TESTDATA")
		if td == "" {
			td = filepath.Join("..", "shared", "testdata")
		}
		inputs = listFlag{filepath.Join(td, "nuaa-train", "bonafide")}
	}
	var files []string
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			return fmt.Errorf("bench faces: %w", err)
		}
		if !st.IsDir() {
			files = append(files, in)
			continue
		}
		err = filepath.WalkDir(in, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && faceeval.IsImage(p) {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("bench faces: %w", err)
		}
	}
	if len(files) == 0 {
		return errors.New("bench faces: no images")
	}
	slices.Sort(files)
	imgs := make([][]byte, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("bench faces: %w", err)
		}
		imgs = append(imgs, b)
	}
	cfg := face.DefaultConfig()
	cfg.ModelsDir, cfg.Workers, cfg.Matcher = *models, max(1, *workers), *matcher
	engine, err := face.NewEngine(cfg)
	if err != nil {
		return fmt.Errorf("bench faces: %w", err)
	}
	defer engine.Close()
	call := func(ctx context.Context, img []byte) error {
		_, err := engine.Analyze(ctx, img)
		return err
	}
	if *verdict {
		passive, err := liveness.NewPassive(liveness.PassiveConfig{ModelsDir: *models})
		if err != nil {
			return fmt.Errorf("bench faces: %w", err)
		}
		defer passive.Close()
		tmpl, _, err := engine.Enroll(ctx, imgs[:1], face.EnrollOptions{})
		if err != nil {
			return fmt.Errorf("bench faces: enrolling the first image: %w", err)
		}
		v := &authn.Verifier{Engine: engine, Passive: passive}
		call = func(ctx context.Context, img []byte) error {
			_, err := v.Verify(ctx, [][]byte{img}, tmpl)
			return err
		}
	}
	res, err := faceeval.Bench(ctx, faceeval.BenchConfig{Workers: cfg.Workers, N: *n, Images: imgs}, call)
	if err != nil {
		return fmt.Errorf("bench faces: %w", err)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "images %d, calls %d, workers %d, errors %d\n", len(imgs), res.N, res.Workers, res.Errors)
	fmt.Fprintf(stdout, "latency ms  p50 %.1f  p95 %.1f  p99 %.1f  max %.1f  mean %.1f\n", res.P50, res.P95, res.P99, res.Max, res.Mean)
	fmt.Fprintf(stdout, "throughput  %.1f images/s\n", res.PerSecond)
	if hwm := peakRSS(); hwm != "" {
		fmt.Fprintf(stdout, "peak RSS    %s\n", hwm)
	}
	return nil
}

// peakRSS reads the process's peak resident set size (Linux), or "".
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
