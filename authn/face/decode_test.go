package face

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"runtime"
	"testing"

	"github.com/visage-idp/visage/internal/testenv"
)

// exifTIFF returns a TIFF block whose IFD0 holds only the orientation tag.
func exifTIFF(orientation uint16, bigEndian bool) []byte {
	var bo binary.AppendByteOrder = binary.LittleEndian
	t := []byte("II")
	if bigEndian {
		bo, t = binary.BigEndian, []byte("MM")
	}
	t = bo.AppendUint16(t, 42)
	t = bo.AppendUint32(t, 8)
	t = bo.AppendUint16(t, 1)           // one entry
	t = bo.AppendUint16(t, 0x0112)      // Orientation
	t = bo.AppendUint16(t, 3)           // SHORT
	t = bo.AppendUint32(t, 1)           // one value
	t = bo.AppendUint16(t, orientation) // value, left-justified
	t = bo.AppendUint16(t, 0)           // padding
	return bo.AppendUint32(t, 0)        // no next IFD
}

// withJPEGExif inserts an APP1 Exif segment right after the SOI marker.
func withJPEGExif(jpg []byte, orientation uint16, bigEndian bool) []byte {
	body := append([]byte("Exif\x00\x00"), exifTIFF(orientation, bigEndian)...)
	seg := []byte{0xFF, 0xE1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(body)+2))
	seg = append(seg, body...)
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(append([]byte(typ), data...)))
}

// withPNGExif inserts an eXIf chunk right after IHDR.
func withPNGExif(p []byte, orientation uint16) []byte {
	ihdrEnd := 8 + 8 + 13 + 4
	out := append([]byte{}, p[:ihdrEnd]...)
	out = append(out, pngChunk("eXIf", exifTIFF(orientation, true))...)
	return append(out, p[ihdrEnd:]...)
}

// hugePNGHeader is a well-formed PNG that claims w x h pixels but holds almost no data.
func hugePNGHeader(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB
	p := append([]byte("\x89PNG\r\n\x1a\n"), pngChunk("IHDR", ihdr)...)
	p = append(p, pngChunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})...)
	return append(p, pngChunk("IEND", nil)...)
}

// cornerImage is 64x32 with a colour per quadrant: red top-left, green top-right, blue
// bottom-left, white bottom-right.
func cornerImage() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, 64, 32))
	for y := 0; y < 32; y++ {
		for x := 0; x < 64; x++ {
			c := color.RGBA{A: 255}
			switch {
			case x < 32 && y < 16:
				c.R = 255
			case y < 16:
				c.G = 255
			case x < 32:
				c.B = 255
			default:
				c = color.RGBA{255, 255, 255, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

func TestDecodeOrientation(t *testing.T) {
	// Expected colours at the displayed TL, TR, BL, BR corners, from the EXIF 2.3 definitions
	// (e.g. 6: "the 0th row is the visual right-hand side, the 0th column the visual top").
	const r, g, b, w = "red", "green", "blue", "white"
	want := map[uint16][4]string{
		1: {r, g, b, w}, 2: {g, r, w, b}, 3: {w, b, g, r}, 4: {b, w, r, g},
		5: {r, b, g, w}, 6: {b, r, w, g}, 7: {w, g, b, r}, 8: {g, w, r, b},
	}
	name := func(c color.RGBA) string {
		hi := func(v uint8) bool { return v > 160 }
		switch {
		case hi(c.R) && hi(c.G) && hi(c.B):
			return w
		case hi(c.R):
			return r
		case hi(c.G):
			return g
		case hi(c.B):
			return b
		}
		return "?"
	}
	src := cornerImage()
	pngData, jpgData := encPNG(t, src), encJPEG(t, src)
	for o := uint16(1); o <= 8; o++ {
		for _, tc := range []struct {
			kind string
			data []byte
		}{
			{"png-eXIf", withPNGExif(pngData, o)},
			{"jpeg-II", withJPEGExif(jpgData, o, false)},
			{"jpeg-MM", withJPEGExif(jpgData, o, true)},
		} {
			img, err := Decode(tc.data, Limits{MaxBytes: 1 << 20, MaxWidth: 100, MaxHeight: 100})
			if err != nil {
				t.Fatalf("orientation %d %s: %v", o, tc.kind, err)
			}
			wantW, wantH := 64, 32
			if o >= 5 {
				wantW, wantH = 32, 64
			}
			if img.Rect.Dx() != wantW || img.Rect.Dy() != wantH {
				t.Errorf("orientation %d %s: size %v, want %dx%d", o, tc.kind, img.Rect.Size(), wantW, wantH)
				continue
			}
			W, H := wantW-4, wantH-4
			got := [4]string{name(img.RGBAAt(3, 3)), name(img.RGBAAt(W, 3)), name(img.RGBAAt(3, H)), name(img.RGBAAt(W, H))}
			if got != want[o] {
				t.Errorf("orientation %d %s: corners TL,TR,BL,BR = %v, want %v", o, tc.kind, got, want[o])
			}
		}
	}
}

// TestDecodeRejects: bad and hostile input is refused with its code, and refused cheaply: what
// the header condemns allocates next to nothing (no pixel buffer). Memory is counted, not time,
// so that a busy machine cannot fail the test.
func TestDecodeRejects(t *testing.T) {
	photo := readFile(t, lfw(t, "Aaron_Peirsol", 1))
	lim := Limits{MaxBytes: 2 << 20, MaxWidth: 4096, MaxHeight: 4096, MaxPixels: 2_100_000}
	zeroPNG := encPNG(t, image.NewGray(image.Rect(0, 0, 4096, 4096)))
	flatJPEG := encJPEG(t, image.NewRGBA(image.Rect(0, 0, 4096, 4096)))
	t.Logf("bombs: %d-byte PNG and %d-byte JPEG of 4096x4096", len(zeroPNG), len(flatJPEG))
	const header = 256 << 10 // bytes a header-only refusal may allocate
	tests := []struct {
		name     string
		data     []byte
		lim      Limits
		want     error
		code     string
		maxAlloc uint64
	}{
		{"truncated JPEG", photo[:len(photo)/2], lim, ErrCorrupt, CodeImageCorrupt, 8 << 20},
		{"JPEG header only", photo[:200], lim, ErrCorrupt, CodeImageCorrupt, header},
		{"20000x20000 PNG header", hugePNGHeader(20000, 20000), lim, ErrTooLarge, CodeImageTooLarge, header},
		{"4096x4096 PNG of zeros (pixel bomb)", zeroPNG, lim, ErrTooLarge, CodeImageTooLarge, header},
		{"4096x4096 flat JPEG (pixel bomb)", flatJPEG, lim, ErrTooLarge, CodeImageTooLarge, header},
		{"PNG of zero width", hugePNGHeader(0, 10), lim, ErrCorrupt, CodeImageCorrupt, header},
		{"too many bytes", photo, Limits{MaxBytes: 1000}, ErrTooLarge, CodeImageTooLarge, header},
		{"GIF", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), lim, ErrUnsupportedFormat, CodeUnsupportedFormat, header},
		{"WebP", []byte("RIFF\x24\x00\x00\x00WEBPVP8 "), lim, ErrUnsupportedFormat, CodeUnsupportedFormat, header},
		{"empty", nil, lim, ErrCorrupt, CodeImageCorrupt, header},
		{"JPEG magic then garbage", append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte{0x42}, 500)...), lim, ErrCorrupt, CodeImageCorrupt, header},
		{"rotated portrait over width limit", withJPEGExif(encJPEG(t, image.NewRGBA(image.Rect(0, 0, 300, 100))), 6, false), Limits{MaxWidth: 200, MaxHeight: 400}, nil, "", 0},
		{"rotated landscape over height limit", withJPEGExif(encJPEG(t, image.NewRGBA(image.Rect(0, 0, 300, 100))), 6, false), Limits{MaxWidth: 400, MaxHeight: 200}, ErrTooLarge, CodeImageTooLarge, header},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			img, err := Decode(tc.data, tc.lim)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if img.Rect.Dx() != 100 || img.Rect.Dy() != 300 {
					t.Fatalf("size %v, want 100x300", img.Rect.Size())
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode error %v, want %v", err, tc.want)
			}
			if got := Code(err); got != tc.code {
				t.Errorf("Code = %q, want %q", got, tc.code)
			}
			if img != nil {
				t.Errorf("got an image with the error")
			}
			if alloc > tc.maxAlloc {
				t.Errorf("allocated %d bytes, want at most %d", alloc, tc.maxAlloc)
			}
		})
	}
}

func TestDecodeFormats(t *testing.T) {
	jpg := readFile(t, lfw(t, "Aaron_Peirsol", 1))
	ref := decodeFile(t, lfw(t, "Aaron_Peirsol", 1))
	gray := image.NewGray(image.Rect(0, 0, 40, 30))
	for _, tc := range []struct {
		name string
		data []byte
		w, h int
	}{
		{"LFW JPEG", jpg, 250, 250},
		{"PNG", encPNG(t, ref), 250, 250},
		{"grey JPEG", encJPEG(t, gray), 40, 30},
		{"grey PNG", encPNG(t, gray), 40, 30},
		{"EXIF-6 selfie", readFile(t, testenv.Path(t, "samples", "image_T1.jpg")), 480, 640},
	} {
		img, err := Decode(tc.data, Limits{MaxBytes: 2 << 20, MaxWidth: 4096, MaxHeight: 4096})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if img.Rect != image.Rect(0, 0, tc.w, tc.h) {
			t.Errorf("%s: bounds %v, want %dx%d", tc.name, img.Rect, tc.w, tc.h)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the decoder: it must never panic or hang, must return
// either an image within the limits or one of its three typed errors.
func FuzzDecode(f *testing.F) {
	src := cornerImage()
	jpg := encJPEG(f, src)
	p := encPNG(f, src)
	f.Add(jpg)
	f.Add(p)
	f.Add(withJPEGExif(jpg, 6, false))
	f.Add(withJPEGExif(jpg, 8, true))
	f.Add(withPNGExif(p, 3))
	f.Add(jpg[:len(jpg)/2])
	f.Add(hugePNGHeader(20000, 20000))
	f.Add(hugePNGHeader(64, 64))
	f.Add([]byte("GIF89a"))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x08, 'E', 'x', 'i', 'f', 0, 0})
	lim := Limits{MaxBytes: 1 << 20, MaxWidth: 512, MaxHeight: 512}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Decode(data, lim)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupportedFormat) {
				t.Fatalf("untyped error %v", err)
			}
			if img != nil {
				t.Fatal("image returned with an error")
			}
			return
		}
		b := img.Bounds()
		if b.Min != (image.Point{}) || b.Dx() <= 0 || b.Dy() <= 0 || b.Dx() > lim.MaxWidth || b.Dy() > lim.MaxHeight {
			t.Fatalf("bounds %v outside limits", b)
		}
	})
}
