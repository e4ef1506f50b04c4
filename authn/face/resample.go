package face

import (
	"image"
	"math"
)

// tap is one output sample's source window: weights for src[start], src[start+1], ...
type tap struct {
	start int
	w     []float32
}

// taps computes separable resampling weights from n source samples to m output samples: box
// (area) averaging when shrinking, so nothing aliases, and linear interpolation when enlarging.
func taps(n, m int) []tap {
	out := make([]tap, m)
	scale := float64(m) / float64(n)
	if scale < 1 {
		inv := 1 / scale
		for i := range out {
			lo, hi := float64(i)*inv, float64(i+1)*inv
			start := int(math.Floor(lo))
			end := min(n, int(math.Ceil(hi)))
			w := make([]float32, 0, end-start)
			for j := start; j < end; j++ {
				ov := math.Min(hi, float64(j+1)) - math.Max(lo, float64(j))
				w = append(w, float32(ov*scale))
			}
			out[i] = tap{start: start, w: w}
		}
		return out
	}
	for i := range out {
		x := (float64(i)+0.5)/scale - 0.5
		x0 := int(math.Floor(x))
		f := float32(x - float64(x0))
		switch {
		case x0 < 0:
			out[i] = tap{start: 0, w: []float32{1}}
		case x0 >= n-1:
			out[i] = tap{start: n - 1, w: []float32{1}}
		default:
			out[i] = tap{start: x0, w: []float32{1 - f, f}}
		}
	}
	return out
}

// resize resamples the rectangle r of src to a new w x h *image.RGBA (alpha is set opaque).
func resize(src *image.RGBA, r image.Rectangle, w, h int) *image.RGBA {
	r = r.Intersect(src.Rect)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	if r.Empty() || w <= 0 || h <= 0 {
		return dst
	}
	sw, sh := r.Dx(), r.Dy()
	tx, ty := taps(sw, w), taps(sh, h)
	// Horizontal pass into a float buffer of w x sh x 3.
	tmp := make([]float32, w*sh*3)
	for y := 0; y < sh; y++ {
		row := src.Pix[src.PixOffset(r.Min.X, r.Min.Y+y):]
		o := tmp[y*w*3 : (y+1)*w*3]
		for x, t := range tx {
			var cr, cg, cb float32
			p := row[4*t.start:]
			for k, wt := range t.w {
				cr += wt * float32(p[4*k])
				cg += wt * float32(p[4*k+1])
				cb += wt * float32(p[4*k+2])
			}
			o[3*x], o[3*x+1], o[3*x+2] = cr, cg, cb
		}
	}
	// Vertical pass.
	acc := make([]float32, w*3)
	for y, t := range ty {
		clear(acc)
		for k, wt := range t.w {
			in := tmp[(t.start+k)*w*3 : (t.start+k+1)*w*3]
			for i, v := range in {
				acc[i] += wt * v
			}
		}
		out := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
		for x := 0; x < w; x++ {
			out[4*x] = clamp8(acc[3*x])
			out[4*x+1] = clamp8(acc[3*x+1])
			out[4*x+2] = clamp8(acc[3*x+2])
			out[4*x+3] = 255
		}
	}
	return dst
}

func clamp8(v float32) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}
