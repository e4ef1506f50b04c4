package faceeval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// BenchConfig configures Bench.
type BenchConfig struct {
	Workers int      // parallel callers (default 1)
	N       int      // measured calls in total (default 200)
	Warmup  int      // unmeasured calls first, per worker (default 2)
	Images  [][]byte // inputs, used round-robin
}

// BenchResult is the latency and throughput of a benchmark. Its JSON form has the keys p50_ms,
// p95_ms, p99_ms, per_second and workers.
type BenchResult struct {
	P50       float64 `json:"p50_ms"`
	P95       float64 `json:"p95_ms"`
	P99       float64 `json:"p99_ms"`
	PerSecond float64 `json:"per_second"`
	Workers   int     `json:"workers"`

	N      int           `json:"-"`
	Errors int           `json:"-"` // calls that returned an error (their latency is counted)
	Max    float64       `json:"-"` // ms
	Mean   float64       `json:"-"` // ms
	Wall   time.Duration `json:"-"`
}

// Bench calls fn N times from Workers goroutines over the images (round-robin) and reports the
// latency percentiles of the calls and the throughput (N / wall time). A call's error counts
// in Errors, it does not stop the run; cancellation of ctx does.
func Bench(ctx context.Context, cfg BenchConfig, fn func(context.Context, []byte) error) (BenchResult, error) {
	if len(cfg.Images) == 0 {
		return BenchResult{}, errors.New("faceeval: bench: no images")
	}
	cfg.Workers = max(1, cfg.Workers)
	if cfg.N <= 0 {
		cfg.N = 200
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 2
	}
	var wg sync.WaitGroup
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < cfg.Warmup; i++ {
				_ = fn(ctx, cfg.Images[(w+i)%len(cfg.Images)])
			}
		}(w)
	}
	wg.Wait()

	lat := make([]float64, cfg.N)
	var next, errs atomic.Int64
	start := time.Now()
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.N || ctx.Err() != nil {
					return
				}
				t := time.Now()
				if err := fn(ctx, cfg.Images[i%len(cfg.Images)]); err != nil {
					errs.Add(1)
				}
				lat[i] = float64(time.Since(t).Nanoseconds()) / 1e6
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if err := ctx.Err(); err != nil {
		return BenchResult{}, fmt.Errorf("faceeval: bench: %w", err)
	}
	slices.Sort(lat)
	var sum float64
	for _, v := range lat {
		sum += v
	}
	r := BenchResult{
		P50: r2(percentile(lat, 0.50)), P95: r2(percentile(lat, 0.95)), P99: r2(percentile(lat, 0.99)),
		PerSecond: r2(float64(cfg.N) / wall.Seconds()), Workers: cfg.Workers,
		N: cfg.N, Errors: int(errs.Load()), Max: r2(lat[len(lat)-1]), Mean: r2(sum / float64(len(lat))), Wall: wall,
	}
	return r, nil
}

// percentile of sorted xs by the nearest-rank method.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	k := int(math.Ceil(p*float64(len(xs)))) - 1
	return xs[min(max(k, 0), len(xs)-1)]
}

func r2(v float64) float64 { return math.Round(v*100) / 100 }
