package livenesseval

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/visage-idp/visage/internal/plotpng"
)

// WritePlot writes a PNG of the two score distributions (share of each class per bin, so that
// classes of different sizes compare) with the threshold drawn as a vertical line, and the
// APCER/BPCER curves against the threshold in a second panel.
func WritePlot(path, title string, bonafide, attack []float64, m Metrics) error {
	const bins = 40
	hist := plot.New()
	hist.Title.Text = title + ": score distribution"
	hist.X.Label.Text = "fused MiniFASNet probability of a real face"
	hist.Y.Label.Text = "share of the class's presentations (square-root axis)"
	hist.Y.Scale = sqrtScale{}
	hist.Y.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "0"}, {Value: 0.01, Label: "0.01"}, {Value: 0.05, Label: "0.05"}, {Value: 0.1, Label: "0.1"}, {Value: 0.25, Label: "0.25"}, {Value: 0.5, Label: "0.5"}, {Value: 0.75, Label: "0.75"}, {Value: 1, Label: "1"}})
	hist.X.Min, hist.X.Max = 0, 1
	blue := color.NRGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xb0}
	red := color.NRGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xb0}
	var top float64
	for _, c := range []struct {
		name   string
		scores []float64
		col    color.Color
	}{{fmt.Sprintf("bona fide (%d)", len(bonafide)), bonafide, blue}, {fmt.Sprintf("attack (%d)", len(attack)), attack, red}} {
		if len(c.scores) == 0 {
			continue
		}
		counts := make([]float64, bins)
		for _, s := range c.scores {
			counts[min(bins-1, max(0, int(s*bins)))]++
		}
		xys := make(plotter.XYs, bins)
		for i := range counts {
			xys[i] = plotter.XY{X: (float64(i) + 0.5) / bins, Y: counts[i] / float64(len(c.scores))}
			top = math.Max(top, xys[i].Y)
		}
		h, err := plotter.NewHistogram(xys, bins)
		if err != nil {
			return fmt.Errorf("livenesseval: plot: %w", err)
		}
		h.FillColor = c.col
		h.LineStyle.Width = 0
		hist.Add(h)
		hist.Legend.Add(c.name, h)
	}
	line, err := plotter.NewLine(plotter.XYs{{X: m.Threshold, Y: 0}, {X: m.Threshold, Y: math.Max(top, 0.01) * 1.05}})
	if err != nil {
		return fmt.Errorf("livenesseval: plot: %w", err)
	}
	line.Width = vg.Points(1.5)
	line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	hist.Add(line)
	hist.Legend.Add(fmt.Sprintf("threshold %.2f: APCER %.1f %%, BPCER %.1f %%", m.Threshold, 100*m.APCER, 100*m.BPCER), line)
	hist.Legend.Top = true
	hist.Legend.XOffs = -vg.Inch

	curves := plot.New()
	curves.Title.Text = fmt.Sprintf("APCER and BPCER against the threshold (EER %.1f %%)", 100*m.EER)
	curves.X.Label.Text = "threshold"
	curves.Y.Label.Text = "error rate"
	curves.X.Min, curves.X.Max = 0, 1
	curves.Y.Min, curves.Y.Max = 0, 1
	b := sortedCopy(bonafide)
	a := sortedCopy(attack)
	var ap, bp plotter.XYs
	for i := 0; i <= 200; i++ {
		t := float64(i) / 200
		x, y := rates(b, a, t)
		ap = append(ap, plotter.XY{X: t, Y: x})
		bp = append(bp, plotter.XY{X: t, Y: y})
	}
	for _, c := range []struct {
		name string
		xy   plotter.XYs
		col  color.Color
	}{{"APCER (attacks accepted)", ap, red}, {"BPCER (bona fide rejected)", bp, blue}} {
		l, err := plotter.NewLine(c.xy)
		if err != nil {
			return fmt.Errorf("livenesseval: plot: %w", err)
		}
		l.Color = c.col
		l.Width = vg.Points(1.5)
		curves.Add(l)
		curves.Legend.Add(c.name, l)
	}
	th, err := plotter.NewLine(plotter.XYs{{X: m.Threshold, Y: 0}, {X: m.Threshold, Y: 1}})
	if err != nil {
		return fmt.Errorf("livenesseval: plot: %w", err)
	}
	th.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	curves.Add(th, plotter.NewGrid())
	curves.Legend.Top = true
	curves.Legend.XOffs = -vg.Inch
	curves.Legend.YOffs = -vg.Inch

	if err := plotpng.WriteSideBySide(path, hist, curves); err != nil {
		return fmt.Errorf("livenesseval: %w", err)
	}
	return nil
}

func sortedCopy(v []float64) []float64 {
	out := append([]float64(nil), v...)
	sortFloats(out)
	return out
}

// sqrtScale is a square-root axis: small shares stay visible next to a tall peak.
type sqrtScale struct{}

func (sqrtScale) Normalize(lo, hi, x float64) float64 {
	lo, hi = math.Sqrt(math.Max(0, lo)), math.Sqrt(math.Max(0, hi))
	if hi == lo {
		return 0
	}
	return (math.Sqrt(math.Max(0, x)) - lo) / (hi - lo)
}
