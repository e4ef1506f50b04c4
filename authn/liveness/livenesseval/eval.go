// Package livenesseval measures presentation-attack detection as ISO/IEC 30107-3 reports it:
// APCER (the share of attack presentations accepted as bona fide) and BPCER (the share of bona
// fide presentations rejected) at an operating threshold, the equal error rate, and BPCER at the
// lowest threshold that keeps APCER at or below 1 %. It reads labelled image sets, scores them
// with any function (idp eval liveness uses the face engine and the PASSIVE models), and draws
// the score distributions. Images are read, scored and dropped; nothing is logged of them.
package livenesseval

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Sample is one labelled presentation.
type Sample struct {
	Path   string
	Attack bool
}

// IsImage reports whether a file name has a JPEG or PNG extension.
func IsImage(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// DirSamples lists the images under bonafideDir and attackDir (recursively), sorted by path.
func DirSamples(bonafideDir, attackDir string) ([]Sample, error) {
	var out []Sample
	for _, d := range []struct {
		dir    string
		attack bool
	}{{bonafideDir, false}, {attackDir, true}} {
		var n int
		err := filepath.WalkDir(d.dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() && IsImage(p) {
				out = append(out, Sample{Path: p, Attack: d.attack})
				n++
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("livenesseval: listing %s: %w", d.dir, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("livenesseval: no JPEG or PNG images under %s", d.dir)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Attack != out[j].Attack {
			return !out[i].Attack
		}
		return out[i].Path < out[j].Path
	})
	return out, nil
}

// CSVSamples reads a labels file with a header naming a "path" column (relative to the file's
// folder) and either an "is_attack" column (0/1) or a "label" column ("bonafide" is bona fide,
// anything else an attack), as replay/frames/labels.csv has.
func CSVSamples(labelsFile string) ([]Sample, error) {
	f, err := os.Open(labelsFile)
	if err != nil {
		return nil, fmt.Errorf("livenesseval: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("livenesseval: %s header: %w", labelsFile, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimSpace(strings.ToLower(h))] = i
	}
	pi, ok := col["path"]
	if !ok {
		return nil, fmt.Errorf("livenesseval: %s has no path column", labelsFile)
	}
	ai, hasAttack := col["is_attack"]
	li, hasLabel := col["label"]
	if !hasAttack && !hasLabel {
		return nil, fmt.Errorf("livenesseval: %s has neither an is_attack nor a label column", labelsFile)
	}
	base := filepath.Dir(labelsFile)
	var out []Sample
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("livenesseval: %s line %d: %w", labelsFile, line, err)
		}
		s := Sample{Path: filepath.Join(base, filepath.FromSlash(rec[pi]))}
		if hasAttack {
			v, err := strconv.Atoi(strings.TrimSpace(rec[ai]))
			if err != nil {
				return nil, fmt.Errorf("livenesseval: %s line %d: is_attack %q", labelsFile, line, rec[ai])
			}
			s.Attack = v != 0
		} else {
			s.Attack = strings.TrimSpace(strings.ToLower(rec[li])) != "bonafide"
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("livenesseval: %s lists no images", labelsFile)
	}
	return out, nil
}

// ScoreFunc scores one image: the probability that it shows a live face. An error wrapping
// ErrNotAcquired is a failure to acquire (no usable face); any other error stops the run.
type ScoreFunc func(ctx context.Context, img []byte) (float64, error)

// ErrNotAcquired marks a presentation the system could not acquire (no face found).
var ErrNotAcquired = errors.New("livenesseval: presentation not acquired")

// Scored is one scored sample.
type Scored struct {
	Sample
	Score float64
	// Failure is the reason the sample was not acquired ("" if it was).
	Failure string
}

// Run scores the samples, workers at a time, keeping the input order.
func Run(ctx context.Context, samples []Sample, score ScoreFunc, workers int) ([]Scored, error) {
	out := make([]Scored, len(samples))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan int)
	)
	for w := 0; w < max(1, workers); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i].Sample = samples[i]
				data, err := os.ReadFile(samples[i].Path)
				if err == nil {
					out[i].Score, err = score(ctx, data)
				}
				switch {
				case err == nil:
				case errors.Is(err, ErrNotAcquired):
					out[i].Failure = strings.TrimPrefix(err.Error(), ErrNotAcquired.Error()+": ")
				default:
					once.Do(func() { first = fmt.Errorf("livenesseval: %s: %w", samples[i].Path, err); cancel() })
				}
			}
		}()
	}
feed:
	for i := range samples {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("livenesseval: %w", err)
	}
	return out, nil
}

// Split returns the scores of the acquired bona fide and attack samples, and the number of
// samples not acquired.
func Split(scored []Scored) (bonafide, attack []float64, fta int) {
	for _, s := range scored {
		switch {
		case s.Failure != "":
			fta++
		case s.Attack:
			attack = append(attack, s.Score)
		default:
			bonafide = append(bonafide, s.Score)
		}
	}
	return bonafide, attack, fta
}

// Metrics are the ISO/IEC 30107-3 figures of one run. A presentation is accepted as bona fide
// when its score is at or above the threshold. Samples not acquired are counted in FTA and left
// out of APCER and BPCER.
type Metrics struct {
	Bonafide, Attack int     // acquired samples of each kind
	FTA              float64 // share of all samples not acquired
	Threshold        float64
	APCER, BPCER     float64 // at Threshold
	EER              float64 // where APCER and BPCER are closest: their mean there
	EERThreshold     float64
	// BPCERAtAPCER1 is BPCER at APCER1Threshold, the lowest threshold with APCER <= 1 %.
	BPCERAtAPCER1   float64
	APCER1Threshold float64
}

// Compute computes the metrics at threshold.
func Compute(bonafide, attack []float64, fta int, threshold float64) Metrics {
	b := append([]float64(nil), bonafide...)
	a := append([]float64(nil), attack...)
	sort.Float64s(b)
	sort.Float64s(a)
	m := Metrics{Bonafide: len(b), Attack: len(a), Threshold: threshold}
	if total := len(b) + len(a) + fta; total > 0 {
		m.FTA = float64(fta) / float64(total)
	}
	m.APCER, m.BPCER = rates(b, a, threshold)
	// Candidate thresholds: every score, just above every attack score, and beyond all.
	cand := make([]float64, 0, len(b)+2*len(a)+2)
	cand = append(cand, 0, math.Inf(1))
	cand = append(cand, b...)
	for _, v := range a {
		cand = append(cand, v, math.Nextafter(v, math.Inf(1)))
	}
	sort.Float64s(cand)
	m.EER, m.EERThreshold = math.NaN(), math.NaN()
	bestGap := math.Inf(1)
	m.APCER1Threshold = math.Inf(1)
	for _, t := range cand {
		ap, bp := rates(b, a, t)
		if g := math.Abs(ap - bp); g < bestGap {
			bestGap, m.EER, m.EERThreshold = g, (ap+bp)/2, t
		}
		if ap <= 0.01 && t < m.APCER1Threshold {
			m.APCER1Threshold = t
		}
	}
	_, m.BPCERAtAPCER1 = rates(b, a, m.APCER1Threshold)
	return m
}

// rates returns APCER and BPCER at t over sorted scores.
func rates(bonafide, attack []float64, t float64) (apcer, bpcer float64) {
	if len(attack) > 0 {
		apcer = float64(len(attack)-sort.SearchFloat64s(attack, t)) / float64(len(attack))
	}
	if len(bonafide) > 0 {
		bpcer = float64(sort.SearchFloat64s(bonafide, t)) / float64(len(bonafide))
	}
	return apcer, bpcer
}

func sortFloats(v []float64) { sort.Float64s(v) }
