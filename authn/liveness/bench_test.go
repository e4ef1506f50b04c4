package liveness

import (
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// reportLatency adds p50 and p95 of the per-iteration durations, and the process's peak RSS.
func reportLatency(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	ms := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.95), "p95-ms")
	if kb := peakRSSKB(); kb > 0 {
		b.ReportMetric(float64(kb)/1024, "peak-RSS-MB")
	}
}

func peakRSSKB() int {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// BenchmarkPassive: the PASSIVE models on one 640x480 webcam frame whose face the engine has
// already found (the cost on top of the face engine: two crops, two ONNX runs).
func BenchmarkPassive(b *testing.B) {
	eng, p := models(b)
	a, err := eng.Analyze(b.Context(), readFile(b, "nuaa-train", "bonafide", "0001", "0001_00_00_01_116.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	if s := a.Image.Bounds().Size(); s.X != 640 || s.Y != 480 {
		b.Fatalf("frame is %v", s)
	}
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		if _, err := p.Score(b.Context(), a.Image, a.Face.Box); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t))
	}
	b.StopTimer()
	reportLatency(b, d)
}

// BenchmarkPassiveFrame: the whole PASSIVE check of one 640x480 JPEG, face engine included.
func BenchmarkPassiveFrame(b *testing.B) {
	eng, p := models(b)
	frame := readFile(b, "nuaa-train", "bonafide", "0001", "0001_00_00_01_116.jpg")
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		if r, err := p.CheckFrame(b.Context(), eng, frame); err != nil || !r.Live {
			b.Fatal(r, err)
		}
		d = append(d, time.Since(t))
	}
	b.StopTimer()
	reportLatency(b, d)
}

// BenchmarkActive3D: verifying a whole head-turn answer (14 Pointing'04 frames, 384x288).
func BenchmarkActive3D(b *testing.B) {
	c := newChallenger(b, nil)
	steps := []string{StepLeft, StepRight, StepCenter}
	frames := timed(p04Burst(b, "01", steps), time.Now(), c.cfg.Active.StepMS)
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ch, err := c.issueWith(MethodActive3D, steps, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t := time.Now()
		if r, err := c.Verify(b.Context(), ch.ID, frames, nil); err != nil || !r.Live {
			b.Fatal(r.Warnings, err)
		}
		d = append(d, time.Since(t))
	}
	b.StopTimer()
	reportLatency(b, d)
	b.ReportMetric(float64(len(frames)), "frames")
}

// BenchmarkFlashing: verifying a whole colour-flash answer (13 frames of 640x480).
func BenchmarkFlashing(b *testing.B) {
	eng, _ := models(b)
	c := newChallenger(b, nil)
	photo := readFile(b, "nuaa-train", "bonafide", "0001", "0001_00_00_01_116.jpg")
	names := []string{"#ff0000", "#00ff00", "#0000ff", "#ffff00", "#ff00ff", "#00ffff"}
	proto, err := c.issueWith(MethodFlashing, nil, names)
	if err != nil {
		b.Fatal(err)
	}
	frames := flashBurst(b, eng, photo, proto, names, time.Now())
	d := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ch, err := c.issueWith(MethodFlashing, nil, names)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t := time.Now()
		if r, err := c.Verify(b.Context(), ch.ID, frames, nil); err != nil || !r.Live {
			b.Fatal(r.Warnings, err)
		}
		d = append(d, time.Since(t))
	}
	b.StopTimer()
	reportLatency(b, d)
	b.ReportMetric(float64(len(frames)), "frames")
}

// BenchmarkPlanarity: one dense homography alignment of a turned face against the frontal one.
func BenchmarkPlanarity(b *testing.B) {
	eng, _ := models(b)
	idx := pointing04(b, "01")
	ref, err := eng.Analyze(b.Context(), readFile(b, "pointing04", idx[p04key{1, 0, 0}]))
	if err != nil {
		b.Fatal(err)
	}
	mov, err := eng.Analyze(b.Context(), readFile(b, "pointing04", idx[p04key{1, 0, -45}]))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rv := newView(rgbaOf(ref.Image), ref.Face.Box, ref.Face.Landmarks)
		mv := newView(rgbaOf(mov.Image), mov.Face.Box, mov.Face.Landmarks)
		planarity(rv, mv)
	}
}
