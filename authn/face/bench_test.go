package face

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/visage-idp/visage/internal/testenv"
)

// selfies640 returns 640x480 selfies: NUAA webcam photos and frames of the selfie video.
func selfies640(b *testing.B) [][]byte {
	var imgs [][]byte
	for _, f := range nuaaBonafide(b, 16) {
		imgs = append(imgs, readFile(b, f))
	}
	frames := mjpegFrames(readFile(b, testenv.Path(b, "video", "selfie_apfol_640x480_15fps.mjpeg")))
	for i := 0; i < len(frames); i += len(frames) / 8 {
		imgs = append(imgs, frames[i])
	}
	return imgs
}

// BenchmarkAnalyzeSelfie640x480 measures Analyze (decode, detect, quality, describe) of
// 640x480 selfies with 1 and 2 workers calling in parallel; ns/op is wall time per image, so
// images/s is the throughput, and p50/p99 are per-call latencies.
func BenchmarkAnalyzeSelfie640x480(b *testing.B) {
	imgs := selfies640(b)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			e, err := NewEngine(Config{ModelsDir: testenv.ModelsDir(b), Workers: workers})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			ctx := context.Background()
			for _, img := range imgs[:4] {
				if _, err := e.Analyze(ctx, img); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]float64, b.N)
			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Int64
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1) - 1)
						if i >= b.N {
							return
						}
						t := time.Now()
						if _, err := e.Analyze(ctx, imgs[i%len(imgs)]); err != nil {
							failed.Add(1)
						}
						lat[i] = float64(time.Since(t).Microseconds()) / 1000
					}
				}()
			}
			wg.Wait()
			wall := time.Since(start)
			b.StopTimer()
			if failed.Load() > 0 {
				b.Fatalf("%d of %d calls failed", failed.Load(), b.N)
			}
			slices.Sort(lat)
			b.ReportMetric(lat[len(lat)/2], "p50_ms")
			b.ReportMetric(lat[min(len(lat)-1, len(lat)*99/100)], "p99_ms")
			b.ReportMetric(float64(b.N)/wall.Seconds(), "images/s")
		})
	}
}

// BenchmarkDecode640x480 is the Go part alone: probe, decode, EXIF orientation.
func BenchmarkDecode640x480(b *testing.B) {
	img := selfies640(b)[0]
	lim := DefaultConfig().limits()
	b.SetBytes(int64(len(img)))
	for b.Loop() {
		if _, err := Decode(img, lim); err != nil {
			b.Fatal(err)
		}
	}
}
