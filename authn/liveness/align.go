package liveness

import (
	"image"
	"math"
)

// This file measures whether two views of a face are related by a plane projective transform (a
// homography), which is what a printed photo or a screen undergoes when it is moved or tilted in
// front of the camera, or whether they show a 3D head that turned.
//
// The five dlib landmarks alone cannot tell: the four eye corners are nearly collinear, so a
// homography (or an affine map) fitted to them is ill-conditioned and any model fitted to all
// five absorbs the nose's sideways shift. So the check is dense: start from the affine map the
// landmarks give, refine a full homography by maximising the correlation of the face texture
// (a Gauss-Newton scheme in the spirit of Evangelidis and Psarakis' ECC, on the zero-mean,
// unit-norm face patch, coarse to fine), and report the correlation reached. A planar object is
// aligned almost perfectly (correlation close to 1); a real head turned by 20 degrees or more
// is not (the nose occludes the far cheek, the far side compresses, the background shifts).

// gray is a float grey-level image.
type gray struct {
	w, h int
	pix  []float32
}

func (g *gray) at(x, y int) float32 { return g.pix[y*g.w+x] }

// sample returns the bilinear value at (x, y) and whether the point lies inside the image.
func (g *gray) sample(x, y float64) (float64, bool) {
	if x < 0 || y < 0 || x > float64(g.w-1) || y > float64(g.h-1) {
		return 0, false
	}
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, g.w-1), min(y0+1, g.h-1)
	fx, fy := x-float64(x0), y-float64(y0)
	a := float64(g.at(x0, y0))*(1-fx) + float64(g.at(x1, y0))*fx
	b := float64(g.at(x0, y1))*(1-fx) + float64(g.at(x1, y1))*fx
	return a*(1-fy) + b*fy, true
}

// grayOf converts the region r of img to grey (Rec. 601 luma), scaled by s with area averaging
// when shrinking; the result's pixel (0,0) is r.Min scaled.
func grayOf(img *image.RGBA, r image.Rectangle, s float64) *gray {
	r = r.Intersect(img.Rect)
	w := max(1, int(math.Round(float64(r.Dx())*s)))
	h := max(1, int(math.Round(float64(r.Dy())*s)))
	g := &gray{w: w, h: h, pix: make([]float32, w*h)}
	sx := float64(r.Dx()) / float64(w)
	sy := float64(r.Dy()) / float64(h)
	for y := 0; y < h; y++ {
		y0 := r.Min.Y + int(float64(y)*sy)
		y1 := max(y0+1, min(r.Max.Y, r.Min.Y+int(float64(y+1)*sy)))
		for x := 0; x < w; x++ {
			x0 := r.Min.X + int(float64(x)*sx)
			x1 := max(x0+1, min(r.Max.X, r.Min.X+int(float64(x+1)*sx)))
			var sum float64
			for yy := y0; yy < y1; yy++ {
				p := img.Pix[img.PixOffset(x0, yy):]
				for xx := 0; xx < x1-x0; xx++ {
					sum += 0.299*float64(p[4*xx]) + 0.587*float64(p[4*xx+1]) + 0.114*float64(p[4*xx+2])
				}
			}
			g.pix[y*w+x] = float32(sum / float64((x1-x0)*(y1-y0)))
		}
	}
	return g
}

// blur returns g convolved with a Gaussian of standard deviation sigma (separable, clamped
// borders).
func (g *gray) blur(sigma float64) *gray {
	if sigma <= 0 {
		return g
	}
	rad := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*rad+1)
	var ks float64
	for i := range k {
		d := float64(i - rad)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
		ks += k[i]
	}
	for i := range k {
		k[i] /= ks
	}
	tmp := make([]float32, len(g.pix))
	for y := 0; y < g.h; y++ {
		row := g.pix[y*g.w : (y+1)*g.w]
		for x := 0; x < g.w; x++ {
			var s float64
			for i, kv := range k {
				xx := min(max(x+i-rad, 0), g.w-1)
				s += kv * float64(row[xx])
			}
			tmp[y*g.w+x] = float32(s)
		}
	}
	out := &gray{w: g.w, h: g.h, pix: make([]float32, len(g.pix))}
	for y := 0; y < g.h; y++ {
		for x := 0; x < g.w; x++ {
			var s float64
			for i, kv := range k {
				yy := min(max(y+i-rad, 0), g.h-1)
				s += kv * float64(tmp[yy*g.w+x])
			}
			out.pix[y*g.w+x] = float32(s)
		}
	}
	return out
}

// gradients returns the central-difference derivatives of g.
func (g *gray) gradients() (gx, gy *gray) {
	gx = &gray{w: g.w, h: g.h, pix: make([]float32, len(g.pix))}
	gy = &gray{w: g.w, h: g.h, pix: make([]float32, len(g.pix))}
	for y := 0; y < g.h; y++ {
		for x := 0; x < g.w; x++ {
			xl, xr := max(x-1, 0), min(x+1, g.w-1)
			yu, yd := max(y-1, 0), min(y+1, g.h-1)
			gx.pix[y*g.w+x] = (g.at(xr, y) - g.at(xl, y)) / float32(max(1, xr-xl))
			gy.pix[y*g.w+x] = (g.at(x, yd) - g.at(x, yu)) / float32(max(1, yd-yu))
		}
	}
	return gx, gy
}

// homography maps (u, v) to ((h0 u + h1 v + h2)/d, (h3 u + h4 v + h5)/d), d = h6 u + h7 v + 1.
type homography [8]float64

func (h homography) apply(u, v float64) (x, y, d float64) {
	d = h[6]*u + h[7]*v + 1
	return (h[0]*u + h[1]*v + h[2]) / d, (h[3]*u + h[4]*v + h[5]) / d, d
}

// fitAffine returns the least-squares affine map from src to dst points (as a homography with
// h6 = h7 = 0), and false if the points are degenerate.
func fitAffine(src, dst [][2]float64) (homography, bool) {
	var a [3][3]float64
	var bx, by [3]float64
	for i := range src {
		r := [3]float64{src[i][0], src[i][1], 1}
		for j := 0; j < 3; j++ {
			for k := 0; k < 3; k++ {
				a[j][k] += r[j] * r[k]
			}
			bx[j] += r[j] * dst[i][0]
			by[j] += r[j] * dst[i][1]
		}
	}
	px, ok1 := solve3(a, bx)
	py, ok2 := solve3(a, by)
	if !ok1 || !ok2 {
		return homography{}, false
	}
	return homography{px[0], px[1], px[2], py[0], py[1], py[2], 0, 0}, true
}

func solve3(a [3][3]float64, b [3]float64) ([3]float64, bool) {
	m := make([][]float64, 3)
	for i := range m {
		m[i] = append(a[i][:], b[i])
	}
	x, ok := gaussSolve(m)
	var out [3]float64
	copy(out[:], x)
	return out, ok
}

// gaussSolve solves the augmented system m (n rows of n+1) by Gaussian elimination with
// partial pivoting.
func gaussSolve(m [][]float64) ([]float64, bool) {
	n := len(m)
	for c := 0; c < n; c++ {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(m[r][c]) > math.Abs(m[p][c]) {
				p = r
			}
		}
		if math.Abs(m[p][c]) < 1e-12 {
			return nil, false
		}
		m[c], m[p] = m[p], m[c]
		for r := c + 1; r < n; r++ {
			f := m[r][c] / m[c][c]
			for k := c; k <= n; k++ {
				m[r][k] -= f * m[c][k]
			}
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := m[r][n]
		for k := r + 1; k < n; k++ {
			s -= m[r][k] * x[k]
		}
		x[r] = s / m[r][r]
	}
	return x, true
}

// view is one frame prepared for alignment: grey, scaled so that the face is alignWidth pixels
// wide, with the face box and landmarks in the same coordinates.
type view struct {
	img  *gray
	box  [4]float64 // x0, y0, x1, y1
	lm   [5][2]float64
	blur map[float64]*blurred
}

type blurred struct {
	img, gx, gy *gray
}

// alignWidth is the face width, in pixels, at which views are compared.
const alignWidth = 112

// newView prepares a frame: a region of twice the face box around it, scaled to alignWidth.
func newView(img *image.RGBA, box image.Rectangle, lm [5]image.Point) *view {
	s := float64(alignWidth) / float64(max(1, box.Dx()))
	r := image.Rect(box.Min.X-box.Dx()/2, box.Min.Y-box.Dy()/2, box.Max.X+box.Dx()/2, box.Max.Y+box.Dy()/2).Intersect(img.Rect)
	g := grayOf(img, r, s)
	sx := float64(g.w) / float64(r.Dx())
	sy := float64(g.h) / float64(r.Dy())
	v := &view{img: g, blur: map[float64]*blurred{}}
	v.box = [4]float64{float64(box.Min.X-r.Min.X) * sx, float64(box.Min.Y-r.Min.Y) * sy, float64(box.Max.X-r.Min.X) * sx, float64(box.Max.Y-r.Min.Y) * sy}
	for i, p := range lm {
		v.lm[i] = [2]float64{(float64(p.X-r.Min.X) + 0.5) * sx, (float64(p.Y-r.Min.Y) + 0.5) * sy}
	}
	return v
}

func (v *view) at(sigma float64) *blurred {
	if b, ok := v.blur[sigma]; ok {
		return b
	}
	b := &blurred{img: v.img.blur(sigma)}
	b.gx, b.gy = b.img.gradients()
	v.blur[sigma] = b
	return b
}

// planarity aligns the face of ref onto mov with a homography refined from the landmarks'
// affine map, and returns the correlation (-1..1) of the aligned face patches and the fraction
// of the patch that stayed inside mov. High correlation after a free homography means the two
// faces are views of one plane.
func planarity(ref, mov *view) (corr, inside float64) {
	// Template grid over the inner face box of ref, in coordinates normalised to the box.
	const n = 40
	bx0, by0, bx1, by1 := ref.box[0], ref.box[1], ref.box[2], ref.box[3]
	cx, cy := (bx0+bx1)/2, (by0+by1)/2
	sc := bx1 - bx0
	grid := make([]gridPoint, 0, n*n)
	for j := 0; j < n; j++ {
		for i := 0; i < n; i++ {
			x := bx0 + (bx1-bx0)*(0.08+0.84*(float64(i)+0.5)/n)
			y := by0 + (by1-by0)*(0.02+0.96*(float64(j)+0.5)/n)
			grid = append(grid, gridPoint{u: (x - cx) / sc, v: (y - cy) / sc, x: x, y: y})
		}
	}
	// Starting maps, from normalised ref coordinates to mov pixels: the affine map the five
	// landmarks give, and the map of the face boxes (they fail differently: the landmarks on a
	// strongly turned face, the box on a tilted one). The best correlation reached wins: a flat
	// picture must not escape by making one start diverge.
	src := make([][2]float64, 5)
	dst := make([][2]float64, 5)
	for i := range src {
		src[i] = [2]float64{(ref.lm[i][0] - cx) / sc, (ref.lm[i][1] - cy) / sc}
		dst[i] = mov.lm[i]
	}
	var starts []homography
	if h, ok := fitAffine(src, dst); ok {
		starts = append(starts, h)
	}
	mw := mov.box[2] - mov.box[0]
	starts = append(starts, homography{mw, 0, (mov.box[0] + mov.box[2]) / 2, 0, mw, (mov.box[1] + mov.box[3]) / 2, 0, 0})
	starts = append(starts, coarseSearch(ref, mov, grid))
	for _, h := range starts {
		c, in := refine(ref, mov, grid, h)
		if c > corr {
			corr, inside = c, in
		}
	}
	return corr, inside
}

// gridPoint is a template sample: (u, v) normalised to the reference face box, (x, y) in pixels.
type gridPoint struct{ u, v, x, y float64 }

// refine runs the coarse-to-fine Gauss-Newton alignment from h and returns the final
// correlation and the fraction of the grid inside mov.
func refine(ref, mov *view, grid []gridPoint, h homography) (corr, inside float64) {
	tmpl := make([]float64, len(grid))
	warped := make([]float64, len(grid))
	valid := make([]bool, len(grid))
	jac := make([][8]float64, len(grid))
	for _, sigma := range []float64{3, 1.5, 0.75} {
		rb, mb := ref.at(sigma), mov.at(sigma)
		for k, p := range grid {
			tmpl[k], _ = rb.img.sample(p.x, p.y)
		}
		for iter := 0; iter < 25; iter++ {
			// Warp, collect values and Jacobians of the valid points.
			var cnt int
			for k, p := range grid {
				x, y, d := h.apply(p.u, p.v)
				val, in := mb.img.sample(x, y)
				valid[k] = in && d > 0.2
				if !valid[k] {
					continue
				}
				cnt++
				warped[k] = val
				gx, _ := mb.gx.sample(x, y)
				gy, _ := mb.gy.sample(x, y)
				jac[k] = [8]float64{
					gx * p.u / d, gx * p.v / d, gx / d,
					gy * p.u / d, gy * p.v / d, gy / d,
					-(gx*x + gy*y) * p.u / d, -(gx*x + gy*y) * p.v / d,
				}
			}
			if cnt < len(grid)/2 {
				return 0, float64(cnt) / float64(len(grid))
			}
			tn, wn, tmean, wmean := normStats(tmpl, warped, valid)
			if tn == 0 || wn == 0 {
				return 0, float64(cnt) / float64(len(grid))
			}
			var jmean [8]float64
			for k := range grid {
				if valid[k] {
					for q := 0; q < 8; q++ {
						jmean[q] += jac[k][q]
					}
				}
			}
			for q := range jmean {
				jmean[q] /= float64(cnt)
			}
			// Gauss-Newton on || t/|t| - w/|w| || with the mean removed from both.
			var ata [8][8]float64
			var atb [8]float64
			for k := range grid {
				if !valid[k] {
					continue
				}
				var jr [8]float64
				for q := 0; q < 8; q++ {
					jr[q] = (jac[k][q] - jmean[q]) / wn
				}
				e := (tmpl[k]-tmean)/tn - (warped[k]-wmean)/wn
				for a := 0; a < 8; a++ {
					atb[a] += jr[a] * e
					for b := a; b < 8; b++ {
						ata[a][b] += jr[a] * jr[b]
					}
				}
			}
			m := make([][]float64, 8)
			for a := 0; a < 8; a++ {
				m[a] = make([]float64, 9)
				for b := 0; b < 8; b++ {
					if b >= a {
						m[a][b] = ata[a][b]
					} else {
						m[a][b] = ata[b][a]
					}
				}
				m[a][a] *= 1.01 // Levenberg damping
				m[a][a] += 1e-9
				m[a][8] = atb[a]
			}
			delta, ok := gaussSolve(m)
			if !ok {
				break
			}
			var step float64
			for q := 0; q < 8; q++ {
				h[q] += delta[q]
			}
			// Convergence: the largest displacement of the box corners, in pixels.
			for _, c := range [][2]float64{{-0.5, -0.5}, {0.5, -0.5}, {-0.5, 0.5}, {0.5, 0.5}} {
				dx := delta[0]*c[0] + delta[1]*c[1] + delta[2]
				dy := delta[3]*c[0] + delta[4]*c[1] + delta[5]
				step = math.Max(step, math.Hypot(dx, dy))
			}
			if step < 0.02 {
				break
			}
		}
	}
	// Final correlation at the finest level.
	mb := mov.at(0.75)
	var cnt int
	for k, p := range grid {
		x, y, d := h.apply(p.u, p.v)
		val, in := mb.img.sample(x, y)
		valid[k] = in && d > 0.2
		if valid[k] {
			warped[k] = val
			cnt++
		}
	}
	tn, wn, tmean, wmean := normStats(tmpl, warped, valid)
	if tn == 0 || wn == 0 {
		return 0, float64(cnt) / float64(len(grid))
	}
	var c float64
	for k := range grid {
		if valid[k] {
			c += (tmpl[k] - tmean) * (warped[k] - wmean)
		}
	}
	return c / (tn * wn), float64(cnt) / float64(len(grid))
}

// normStats returns the norms and means of the zero-mean valid values of a and b.
func normStats(a, b []float64, valid []bool) (an, bn, am, bm float64) {
	var cnt int
	for k := range a {
		if valid[k] {
			am += a[k]
			bm += b[k]
			cnt++
		}
	}
	if cnt == 0 {
		return 0, 0, 0, 0
	}
	am /= float64(cnt)
	bm /= float64(cnt)
	for k := range a {
		if valid[k] {
			an += (a[k] - am) * (a[k] - am)
			bn += (b[k] - bm) * (b[k] - bm)
		}
	}
	return math.Sqrt(an), math.Sqrt(bn), am, bm
}

// coarseSearch finds the scale and translation that best correlate a sparse subset of the
// template with mov, heavily blurred, over a window around mov's face box: a start that does
// not depend on mov's detection being right.
func coarseSearch(ref, mov *view, grid []gridPoint) homography {
	const sigma = 4
	rb, mb := ref.at(sigma), mov.at(sigma)
	var sub []gridPoint
	n := int(math.Sqrt(float64(len(grid))))
	for j := 0; j < n; j += 3 {
		for i := 0; i < n; i += 3 {
			sub = append(sub, grid[j*n+i])
		}
	}
	tmpl := make([]float64, len(sub))
	for k, p := range sub {
		tmpl[k], _ = rb.img.sample(p.x, p.y)
	}
	var tm, tn float64
	for _, v := range tmpl {
		tm += v
	}
	tm /= float64(len(tmpl))
	for k := range tmpl {
		tmpl[k] -= tm
		tn += tmpl[k] * tmpl[k]
	}
	mw := mov.box[2] - mov.box[0]
	mcx, mcy := (mov.box[0]+mov.box[2])/2, (mov.box[1]+mov.box[3])/2
	best, bestC := homography{mw, 0, mcx, 0, mw, mcy, 0, 0}, math.Inf(-1)
	vals := make([]float64, len(sub))
	for si := 0; si < 9; si++ {
		k := mw * math.Pow(2, -1+float64(si)*0.25) // 0.5x .. 2x the detected box
		for ty := -8; ty <= 8; ty++ {
			for tx := -8; tx <= 8; tx++ {
				cx, cy := mcx+float64(tx)*mw/8, mcy+float64(ty)*mw/8
				var m, cnt float64
				ok := true
				for q, p := range sub {
					v, in := mb.img.sample(cx+k*p.u, cy+k*p.v)
					if !in {
						ok = false
						break
					}
					vals[q] = v
					m += v
					cnt++
				}
				if !ok {
					continue
				}
				m /= cnt
				var c, vn float64
				for q := range vals {
					d := vals[q] - m
					c += d * tmpl[q]
					vn += d * d
				}
				if vn == 0 || tn == 0 {
					continue
				}
				if c /= math.Sqrt(vn * tn); c > bestC {
					bestC = c
					best = homography{k, 0, cx, 0, k, cy, 0, 0}
				}
			}
		}
	}
	return best
}
