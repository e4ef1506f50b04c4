package faceeval

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/visage-idp/visage/internal/plotpng"
)

// Curve is one system's distances to plot.
type Curve struct {
	Name              string
	Genuine, Impostor []float64
	Approve, Decline  float64 // operating points marked on the curve (0: none)
}

// palette returns the line colours, one per curve.
func palette() []color.Color {
	return []color.Color{
		color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
		color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
		color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	}
}

// WritePlot writes a PNG with two panels: the ROC (TAR against FAR, FAR on a log axis) and the
// DET (FRR against FAR, both log), one line per curve, the approve and decline thresholds marked.
// Rates of zero are drawn at half of one pair (1/(2N)) so that they fit on the log axes.
func WritePlot(path, title string, curves []Curve) error {
	roc := plot.New()
	roc.Title.Text = title + " ROC"
	roc.X.Label.Text = "FAR (impostor pairs accepted)"
	roc.Y.Label.Text = "TAR (genuine pairs accepted)"
	roc.X.Scale = plot.LogScale{}
	roc.X.Tick.Marker = plot.LogTicks{Prec: -1}
	roc.Legend.Top = false
	roc.Legend.Left = false

	det := plot.New()
	det.Title.Text = title + " DET"
	det.X.Label.Text = "FAR"
	det.Y.Label.Text = "FRR (genuine pairs rejected)"
	det.X.Scale, det.Y.Scale = plot.LogScale{}, plot.LogScale{}
	det.X.Tick.Marker, det.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}

	floorX, floorY := 1.0, 1.0
	for _, c := range curves {
		floorX = math.Min(floorX, 0.5/float64(max(1, len(c.Impostor))))
		floorY = math.Min(floorY, 0.5/float64(max(1, len(c.Genuine))))
	}
	for i, c := range curves {
		far, tar := rocPoints(c.Genuine, c.Impostor)
		var rocXY, detXY plotter.XYs
		for j := range far {
			if far[j] == 0 && j+1 < len(far) && far[j+1] == 0 {
				continue // at FAR 0 only the best TAR is drawn
			}
			x := math.Max(far[j], floorX)
			rocXY = append(rocXY, plotter.XY{X: x, Y: tar[j]})
			detXY = append(detXY, plotter.XY{X: x, Y: math.Max(1-tar[j], floorY)})
		}
		col := palette()[i%len(palette())]
		for _, pl := range []struct {
			p  *plot.Plot
			xy plotter.XYs
		}{{roc, rocXY}, {det, detXY}} {
			if len(pl.xy) == 0 {
				continue
			}
			l, err := plotter.NewLine(pl.xy)
			if err != nil {
				return fmt.Errorf("faceeval: plot: %w", err)
			}
			l.Color = col
			l.Width = vg.Points(1.5)
			pl.p.Add(l)
			if pl.p == roc {
				pl.p.Legend.Add(c.Name, l)
			}
		}
		// Operating points.
		m := Compute(c.Genuine, c.Impostor, c.Approve, c.Decline)
		var pts, dpts plotter.XYs
		for _, op := range [][2]float64{{m.ApproveFAR, 1 - m.ApproveFRR}, {m.DeclineFAR, 1 - m.DeclineFRR}} {
			if c.Approve == 0 {
				break
			}
			pts = append(pts, plotter.XY{X: math.Max(op[0], floorX), Y: op[1]})
			dpts = append(dpts, plotter.XY{X: math.Max(op[0], floorX), Y: math.Max(1-op[1], floorY)})
		}
		if len(pts) > 0 {
			for _, pl := range []struct {
				p  *plot.Plot
				xy plotter.XYs
			}{{roc, pts}, {det, dpts}} {
				s, err := plotter.NewScatter(pl.xy)
				if err != nil {
					return fmt.Errorf("faceeval: plot: %w", err)
				}
				s.Color = col
				s.Shape = draw.CircleGlyph{}
				s.Radius = vg.Points(3.5)
				pl.p.Add(s)
			}
		}
	}
	roc.Add(plotter.NewGrid())
	det.Add(plotter.NewGrid())

	// Fixed log ranges: a perfectly separating matcher draws every DET point at the floor, and a
	// log axis of zero width cannot be drawn.
	roc.X.Min, roc.X.Max = floorX, 1
	det.X.Min, det.X.Max = floorX, 1
	det.Y.Min, det.Y.Max = floorY, 1
	if err := plotpng.WriteSideBySide(path, roc, det); err != nil {
		return fmt.Errorf("faceeval: %w", err)
	}
	return nil
}
