package faceeval

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"slices"
	"sync"

	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/math/f64"

	"github.com/visage-idp/visage/authn/face"
)

// Degradation is one synthetic quality defect applied at increasing levels, with the quality
// measure that should detect it.
type Degradation struct {
	Name    string
	Measure string // the face.Measures field it moves
	Levels  []float64
	Apply   func(img *image.RGBA, level float64) *image.RGBA
	Value   func(m face.Measures) float64
}

// Degradations are the defects the quality thresholds are calibrated on: Gaussian blur (sigma
// in px of the photo), darkening and brightening (the distance to black or white multiplied by
// the level), shrinking (the photo scaled by the level onto a grey canvas of the same size),
// cutting off the bottom (that fraction of the rows removed), and rolling (degrees).
func Degradations() []Degradation {
	return []Degradation{
		{"blur", "sharpness", []float64{0, 1, 1.5, 2, 3, 4, 6}, gaussianBlur, func(m face.Measures) float64 { return m.Sharpness }},
		{"dark", "brightness", []float64{1, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08}, func(img *image.RGBA, f float64) *image.RGBA {
			return mapRGB(img, func(v float64) float64 { return v * f })
		}, func(m face.Measures) float64 { return m.Brightness }},
		{"bright", "brightness", []float64{1, 0.5, 0.35, 0.25, 0.18, 0.12, 0.08}, func(img *image.RGBA, f float64) *image.RGBA {
			return mapRGB(img, func(v float64) float64 { return 255 - (255-v)*f })
		}, func(m face.Measures) float64 { return m.Brightness }},
		{"small", "inter-ocular px", []float64{1, 0.7, 0.55, 0.45, 0.38, 0.32, 0.26}, shrinkOnCanvas, func(m face.Measures) float64 { return m.InterOcular }},
		{"cut", "cut-off fraction", []float64{0, 0.15, 0.22, 0.28, 0.34, 0.4}, func(img *image.RGBA, f float64) *image.RGBA {
			return img.SubImage(image.Rect(img.Rect.Min.X, img.Rect.Min.Y, img.Rect.Max.X, img.Rect.Max.Y-int(f*float64(img.Rect.Dy())))).(*image.RGBA)
		}, func(m face.Measures) float64 { return m.CutOff }},
		{"roll", "|roll| degrees", []float64{0, 10, 20, 30, 40, 50}, rotateAbout, func(m face.Measures) float64 { return math.Abs(m.Roll) }},
	}
}

// StudyRow is the outcome of one degradation level over the study's pairs.
type StudyRow struct {
	Degradation, Measure  string
	Level                 float64
	N, Found              int     // probes, and probes in which a face was found
	P10, Median, P90      float64 // of the quality measure over the found faces
	DistanceMedian        float64 // genuine distance, +Inf counted for faces not found
	Approved, NotDeclined float64 // fraction of genuine pairs below the approve / not above the decline threshold
}

// QualityStudy degrades the second photo of up to maxPairs genuine pairs with each Degradation
// and reports, per level, the measured quality value and how the genuine distance to the
// undegraded first photo (and so the match decision under policy) suffers. It is how the
// default quality thresholds were chosen: a threshold sits where the decisions start to fail.
func QualityStudy(ctx context.Context, e *face.Engine, pairs []Pair, maxPairs, workers int, policy face.MatchPolicy) ([]StudyRow, error) {
	var gen []Pair
	for _, p := range pairs {
		if p.Genuine && len(gen) < maxPairs {
			gen = append(gen, p)
		}
	}
	if len(gen) == 0 {
		return nil, errors.New("faceeval: quality study: no genuine pairs")
	}
	opts := face.AnalyzeOptions{AllowMultipleFaces: true}
	refs := make([]*face.Descriptor, len(gen))
	probes := make([]*image.RGBA, len(gen))
	lim := e.Config()
	for i, p := range gen {
		a, err := readAnalyze(ctx, e, p.A, opts)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			continue // the reference photo itself has no face: leave the pair out
		}
		refs[i] = &a.Face.Descriptor
		data, err := os.ReadFile(p.B)
		if err != nil {
			return nil, fmt.Errorf("faceeval: %w", err)
		}
		if probes[i], err = face.Decode(data, face.Limits{MaxBytes: lim.MaxBytes, MaxWidth: lim.MaxWidth, MaxHeight: lim.MaxHeight}); err != nil {
			refs[i] = nil
		}
	}
	var rows []StudyRow
	for _, d := range Degradations() {
		for _, level := range d.Levels {
			var mu sync.Mutex
			var dists, values []float64
			jobs := make(chan int)
			var wg sync.WaitGroup
			for w := 0; w < max(1, workers); w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range jobs {
						dist := math.Inf(1)
						var value float64
						jpg, err := encodeJPEG(d.Apply(probes[i], level))
						if err == nil {
							if a, err := e.AnalyzeWith(ctx, jpg, opts); err == nil {
								dist, value = face.Distance(*refs[i], a.Face.Descriptor), d.Value(a.Measures)
							}
						}
						mu.Lock()
						dists = append(dists, dist)
						if !math.IsInf(dist, 1) {
							values = append(values, value)
						}
						mu.Unlock()
					}
				}()
			}
			for i := range gen {
				if refs[i] != nil {
					jobs <- i
				}
			}
			close(jobs)
			wg.Wait()
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("faceeval: quality study: %w", err)
			}
			slices.Sort(dists)
			slices.Sort(values)
			row := StudyRow{Degradation: d.Name, Measure: d.Measure, Level: level, N: len(dists), Found: len(values),
				DistanceMedian: percentile(dists, 0.5)}
			if len(values) > 0 {
				row.P10, row.Median, row.P90 = percentile(values, 0.1), percentile(values, 0.5), percentile(values, 0.9)
			}
			for _, x := range dists {
				if x < policy.ApproveBelow {
					row.Approved++
				}
				if x <= policy.DeclineAbove {
					row.NotDeclined++
				}
			}
			row.Approved /= float64(max(1, len(dists)))
			row.NotDeclined /= float64(max(1, len(dists)))
			rows = append(rows, row)
		}
	}
	return rows, nil
}

func readAnalyze(ctx context.Context, e *face.Engine, path string, opts face.AnalyzeOptions) (*face.Analysis, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("faceeval: %w", err)
	}
	return e.AnalyzeWith(ctx, data, opts)
}

func mapRGB(src *image.RGBA, f func(float64) float64) *image.RGBA {
	dst := image.NewRGBA(src.Rect)
	for i, v := range src.Pix {
		if i%4 == 3 {
			dst.Pix[i] = 255
			continue
		}
		dst.Pix[i] = uint8(math.Max(0, math.Min(255, f(float64(v))+0.5)))
	}
	return dst
}

func gaussianBlur(src *image.RGBA, sigma float64) *image.RGBA {
	if sigma <= 0 {
		return src
	}
	r := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*r+1)
	var sum float64
	for i := range k {
		x := float64(i - r)
		k[i] = math.Exp(-x * x / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	b := src.Rect
	w, h := b.Dx(), b.Dy()
	at := func(x, y int) int { return src.PixOffset(b.Min.X+x, b.Min.Y+y) }
	tmp := make([]float64, w*h*3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				var v float64
				for i := -r; i <= r; i++ {
					v += k[i+r] * float64(src.Pix[at(min(max(x+i, 0), w-1), y)+c])
				}
				tmp[(y*w+x)*3+c] = v
			}
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				var v float64
				for i := -r; i <= r; i++ {
					v += k[i+r] * tmp[(min(max(y+i, 0), h-1)*w+x)*3+c]
				}
				dst.Pix[y*dst.Stride+4*x+c] = uint8(math.Min(255, v+0.5))
			}
			dst.Pix[y*dst.Stride+4*x+3] = 255
		}
	}
	return dst
}

func shrinkOnCanvas(src *image.RGBA, f float64) *image.RGBA {
	b := src.Rect
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for i := range dst.Pix {
		dst.Pix[i] = 128
	}
	w, h := int(float64(b.Dx())*f), int(float64(b.Dy())*f)
	at := image.Rect((b.Dx()-w)/2, (b.Dy()-h)/2, (b.Dx()-w)/2+w, (b.Dy()-h)/2+h)
	xdraw.BiLinear.Scale(dst, at, src, b, xdraw.Src, nil)
	return dst
}

func rotateAbout(src *image.RGBA, deg float64) *image.RGBA {
	b := src.Rect
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for i := range dst.Pix {
		dst.Pix[i] = 128
	}
	th := deg * math.Pi / 180
	c, s := math.Cos(th), math.Sin(th)
	cx, cy := float64(b.Dx())/2, float64(b.Dy())/2
	// Transform maps source to destination coordinates: rotate about the centre.
	m := f64.Aff3{c, -s, cx - c*cx + s*cy, s, c, cy - s*cx - c*cy}
	xdraw.BiLinear.Transform(dst, m, src, b, xdraw.Over, nil)
	return dst
}

func encodeJPEG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92}); err != nil {
		return nil, fmt.Errorf("faceeval: %w", err)
	}
	return buf.Bytes(), nil
}
