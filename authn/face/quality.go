package face

import (
	"fmt"
	"image"
	"math"
	"slices"
)

// yawGain converts the nose's sideways offset from the eyes' midpoint (in units of the
// inter-ocular distance) to a yaw angle: yaw = atan(offset / yawGain). It was fitted on
// Pointing'04 (tilt 0, |pan| <= 45 degrees), see README.md.
const yawGain = 0.31

// sharpSize is the side of the grey square the face box is resampled to before the Laplacian,
// so that sharpness does not depend on the face's size in pixels.
const sharpSize = 128

// eyeCentres returns the centres of the eye on the image's left and on the image's right.
func eyeCentres(lm [5][2]float64) (left, right [2]float64) {
	right = [2]float64{(lm[0][0] + lm[1][0]) / 2, (lm[0][1] + lm[1][1]) / 2}
	left = [2]float64{(lm[2][0] + lm[3][0]) / 2, (lm[2][1] + lm[3][1]) / 2}
	return left, right
}

// pose estimates yaw and roll (degrees) and the inter-ocular distance (px) from 5 landmarks.
func pose(lm [5][2]float64) (yaw, roll, iod float64) {
	l, r := eyeCentres(lm)
	ux, uy := r[0]-l[0], r[1]-l[1]
	iod = math.Hypot(ux, uy)
	if iod < 1e-6 {
		return 0, 0, 0
	}
	ux, uy = ux/iod, uy/iod
	roll = math.Atan2(uy, ux) * 180 / math.Pi
	mx, my := (l[0]+r[0])/2, (l[1]+r[1])/2
	off := ((lm[4][0]-mx)*ux + (lm[4][1]-my)*uy) / iod // along the eye line, >0 towards the image's right
	yaw = -math.Atan(off/yawGain) * 180 / math.Pi
	return yaw, roll, iod
}

// faceRegionCutOff estimates the face (brows to chin, cheek to cheek) from the landmarks and
// returns the fraction of it that lies outside bounds.
func faceRegionCutOff(lm [5][2]float64, bounds image.Rectangle) float64 {
	l, r := eyeCentres(lm)
	ux, uy := r[0]-l[0], r[1]-l[1] // along the eye line, length = iod
	vx, vy := -uy, ux              // perpendicular, towards the chin
	mx, my := (l[0]+r[0])/2, (l[1]+r[1])/2
	const n = 16
	out := 0
	for i := 0; i < n; i++ {
		a := -1.1 + 2.2*(float64(i)+0.5)/n
		for j := 0; j < n; j++ {
			b := -0.6 + 2.4*(float64(j)+0.5)/n
			x, y := mx+a*ux+b*vx, my+a*uy+b*vy
			if x < float64(bounds.Min.X) || y < float64(bounds.Min.Y) || x >= float64(bounds.Max.X) || y >= float64(bounds.Max.Y) {
				out++
			}
		}
	}
	return float64(out) / (n * n)
}

// luma is the BT.601 luma of an RGBA pixel, 0-255.
func luma(p []uint8) float64 {
	return 0.299*float64(p[0]) + 0.587*float64(p[1]) + 0.114*float64(p[2])
}

// brightness is the mean luma over the face box (clipped to the image), on at most ~64x64 samples.
func brightness(img *image.RGBA, box image.Rectangle) float64 {
	b := box.Intersect(img.Rect)
	if b.Empty() {
		return 0
	}
	step := max(1, max(b.Dx(), b.Dy())/64)
	var sum float64
	var n int
	for y := b.Min.Y; y < b.Max.Y; y += step {
		for x := b.Min.X; x < b.Max.X; x += step {
			i := img.PixOffset(x, y)
			sum += luma(img.Pix[i : i+4])
			n++
		}
	}
	return sum / float64(n)
}

// sharpness is the variance of the 4-neighbour Laplacian of the face box resampled to
// sharpSize x sharpSize grey.
func sharpness(img *image.RGBA, box image.Rectangle) float64 {
	b := box.Intersect(img.Rect)
	if b.Dx() < 2 || b.Dy() < 2 {
		return 0
	}
	sq := resize(img, b, sharpSize, sharpSize)
	g := make([]float64, sharpSize*sharpSize)
	for i := range g {
		g[i] = luma(sq.Pix[4*i : 4*i+4])
	}
	var sum, sum2 float64
	n := 0
	for y := 1; y < sharpSize-1; y++ {
		for x := 1; x < sharpSize-1; x++ {
			i := y*sharpSize + x
			v := g[i-1] + g[i+1] + g[i-sharpSize] + g[i+sharpSize] - 4*g[i]
			sum += v
			sum2 += v * v
			n++
		}
	}
	mean := sum / float64(n)
	return sum2/float64(n) - mean*mean
}

// measure computes the quality values of a face.
func measure(img *image.RGBA, box image.Rectangle, lm [5][2]float64) Measures {
	yaw, roll, iod := pose(lm)
	return Measures{
		InterOcular: iod,
		Brightness:  brightness(img, box),
		Sharpness:   sharpness(img, box),
		Yaw:         yaw,
		Roll:        roll,
		CutOff:      faceRegionCutOff(lm, img.Rect),
	}
}

// check turns the measures into warnings, framing first (size, cut-off, pose), then light, then
// sharpness, which the others also lower: Analysis.Err reports the first blocking one.
func (q QualityConfig) check(m Measures) []Warning {
	var ws []Warning
	add := func(code string, value, threshold float64, msg string) {
		ws = append(ws, Warning{Code: code, Value: round2(value), Threshold: threshold,
			Blocking: !slices.Contains(q.Advisory, code), Message: msg})
	}
	if q.MinInterOcular > 0 && m.InterOcular < q.MinInterOcular {
		add(CodeFaceTooSmall, m.InterOcular, q.MinInterOcular,
			fmt.Sprintf("face too small: %.0f px between the eyes (minimum %.0f)", m.InterOcular, q.MinInterOcular))
	}
	if q.MaxCutOff > 0 && m.CutOff > q.MaxCutOff {
		add(CodeFaceCutOff, m.CutOff, q.MaxCutOff,
			fmt.Sprintf("face cut off: %.0f%% of it is outside the picture (maximum %.0f%%)", 100*m.CutOff, 100*q.MaxCutOff))
	}
	if q.MaxYaw > 0 && math.Abs(m.Yaw) > q.MaxYaw {
		add(CodeFaceNotFrontal, m.Yaw, q.MaxYaw,
			fmt.Sprintf("face not frontal: turned %.0f degrees sideways (maximum %.0f)", math.Abs(m.Yaw), q.MaxYaw))
	} else if q.MaxRoll > 0 && math.Abs(m.Roll) > q.MaxRoll {
		add(CodeFaceNotFrontal, m.Roll, q.MaxRoll,
			fmt.Sprintf("face not frontal: head tilted %.0f degrees (maximum %.0f)", math.Abs(m.Roll), q.MaxRoll))
	}
	if q.MinBrightness > 0 && m.Brightness < q.MinBrightness {
		add(CodeFaceTooDark, m.Brightness, q.MinBrightness,
			fmt.Sprintf("face too dark: mean brightness %.0f of 255 (minimum %.0f)", m.Brightness, q.MinBrightness))
	}
	if q.MaxBrightness > 0 && m.Brightness > q.MaxBrightness {
		add(CodeFaceTooBright, m.Brightness, q.MaxBrightness,
			fmt.Sprintf("face too bright: mean brightness %.0f of 255 (maximum %.0f)", m.Brightness, q.MaxBrightness))
	}
	if q.MinSharpness > 0 && m.Sharpness < q.MinSharpness {
		add(CodeFaceBlurred, m.Sharpness, q.MinSharpness,
			fmt.Sprintf("face blurred: sharpness %.0f (minimum %.0f)", m.Sharpness, q.MinSharpness))
	}
	return ws
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
