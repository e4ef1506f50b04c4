package face

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"image/png"
)

// Limits bound what Decode accepts. They are checked from the file header, before any pixel is
// decoded, so a small file that claims a huge image costs nothing.
type Limits struct {
	MaxBytes  int64 // size of the encoded file
	MaxWidth  int   // width after EXIF orientation
	MaxHeight int   // height after EXIF orientation
	// MaxPixels bounds width x height: what decoding costs in time and memory (4 bytes a
	// pixel) grows with it, whatever the file's size. A 100 KB PNG of zeros can claim 16 MP.
	MaxPixels int
}

// Format is a supported input encoding.
type Format string

// Supported input formats.
const (
	FormatJPEG Format = "jpeg"
	FormatPNG  Format = "png"
)

const (
	jpegMagic = "\xFF\xD8\xFF"
	pngMagic  = "\x89PNG\r\n\x1a\n"
)

// Sniff returns the format of data from its magic bytes, or ErrUnsupportedFormat.
func Sniff(data []byte) (Format, error) {
	switch {
	case bytes.HasPrefix(data, []byte(jpegMagic)):
		return FormatJPEG, nil
	case bytes.HasPrefix(data, []byte(pngMagic)):
		return FormatPNG, nil
	}
	return "", newError(CodeUnsupportedFormat, ErrUnsupportedFormat, nil)
}

// Decode decodes a JPEG or PNG safely: it rejects files over lim.MaxBytes, reads the header and
// rejects images over lim.MaxWidth x lim.MaxHeight before decoding pixels, decodes with the
// standard library's memory-safe decoders (a panic is reported as ErrCorrupt), and applies the
// EXIF orientation (JPEG APP1 or PNG eXIf) so that the result is upright as a person would see
// it. The result is always a fresh *image.RGBA with Bounds().Min == (0,0).
//
// Errors wrap ErrTooLarge, ErrCorrupt or ErrUnsupportedFormat.
func Decode(data []byte, lim Limits) (*image.RGBA, error) {
	p, err := probe(data, lim)
	if err != nil {
		return nil, err
	}
	return decodeProbed(data, p)
}

// probed is what the header says about an image.
type probed struct {
	format        Format
	width, height int // as stored, before orientation
	orientation   int // EXIF 1..8
}

// probe checks the size, format and header of data against lim without decoding pixels.
func probe(data []byte, lim Limits) (probed, error) {
	if lim.MaxBytes > 0 && int64(len(data)) > lim.MaxBytes {
		return probed{}, newError(CodeImageTooLarge, ErrTooLarge,
			fmt.Errorf("%d bytes, limit %d", len(data), lim.MaxBytes))
	}
	if len(data) == 0 {
		return probed{}, newError(CodeImageCorrupt, ErrCorrupt, fmt.Errorf("empty input"))
	}
	format, err := Sniff(data)
	if err != nil {
		return probed{}, err
	}
	var cfg image.Config
	switch format {
	case FormatJPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	case FormatPNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	}
	if err != nil {
		return probed{}, newError(CodeImageCorrupt, ErrCorrupt, fmt.Errorf("%s header: %w", format, err))
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return probed{}, newError(CodeImageCorrupt, ErrCorrupt, fmt.Errorf("%s header: empty image %dx%d", format, cfg.Width, cfg.Height))
	}
	p := probed{format: format, width: cfg.Width, height: cfg.Height, orientation: 1}
	if format == FormatJPEG {
		p.orientation = jpegOrientation(data)
	} else {
		p.orientation = pngOrientation(data)
	}
	w, h := p.width, p.height
	if p.orientation >= 5 {
		w, h = h, w
	}
	if (lim.MaxWidth > 0 && w > lim.MaxWidth) || (lim.MaxHeight > 0 && h > lim.MaxHeight) {
		return probed{}, newError(CodeImageTooLarge, ErrTooLarge,
			fmt.Errorf("%dx%d pixels, limit %dx%d", w, h, lim.MaxWidth, lim.MaxHeight))
	}
	if lim.MaxPixels > 0 && int64(w)*int64(h) > int64(lim.MaxPixels) {
		return probed{}, newError(CodeImageTooLarge, ErrTooLarge,
			fmt.Errorf("%dx%d = %d pixels, limit %d", w, h, int64(w)*int64(h), lim.MaxPixels))
	}
	return p, nil
}

// decodeProbed decodes the pixels of an image that passed probe and orients them.
func decodeProbed(data []byte, p probed) (img *image.RGBA, err error) {
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, newError(CodeImageCorrupt, ErrCorrupt, fmt.Errorf("%s decoder panic: %v", p.format, r))
		}
	}()
	var src image.Image
	switch p.format {
	case FormatJPEG:
		src, err = jpeg.Decode(bytes.NewReader(data))
	case FormatPNG:
		src, err = png.Decode(bytes.NewReader(data))
	default:
		return nil, newError(CodeUnsupportedFormat, ErrUnsupportedFormat, nil)
	}
	if err != nil {
		return nil, newError(CodeImageCorrupt, ErrCorrupt, fmt.Errorf("%s: %w", p.format, err))
	}
	if b := src.Bounds(); b.Dx() != p.width || b.Dy() != p.height {
		return nil, newError(CodeImageCorrupt, ErrCorrupt, fmt.Errorf("%s: header says %dx%d, pixels are %dx%d", p.format, p.width, p.height, b.Dx(), b.Dy()))
	}
	return orientRGBA(src, p.orientation), nil
}

// toRGBA copies src into a new *image.RGBA with origin (0,0); image/draw has fast paths for the
// YCbCr, Gray and RGBA images the decoders return.
func toRGBA(src image.Image) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
	return dst
}

// orientRGBA returns src as an upright *image.RGBA for EXIF orientation o (1..8; anything else
// is treated as 1).
func orientRGBA(src image.Image, o int) *image.RGBA {
	in := toRGBA(src)
	if o < 2 || o > 8 {
		return in
	}
	w, h := in.Rect.Dx(), in.Rect.Dy()
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, ow, oh))
	for y := 0; y < h; y++ {
		row := in.Pix[y*in.Stride : y*in.Stride+4*w]
		for x := 0; x < w; x++ {
			var dx, dy int
			switch o {
			case 2: // mirrored horizontally
				dx, dy = w-1-x, y
			case 3: // rotated 180
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored vertically
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // stored rotated 90 CCW: rotate 90 CW to display
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // stored rotated 90 CW: rotate 90 CCW to display
				dx, dy = y, w-1-x
			}
			copy(out.Pix[dy*out.Stride+4*dx:dy*out.Stride+4*dx+4], row[4*x:4*x+4])
		}
	}
	return out
}

// jpegOrientation returns the EXIF orientation (1..8) of a JPEG, 1 if absent or unreadable. It
// walks the marker segments before the first scan and reads the first APP1 "Exif" segment.
func jpegOrientation(data []byte) int {
	i := 2
	for i+4 <= len(data) {
		if data[i] != 0xFF {
			return 1
		}
		marker := data[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		if marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01 {
			i += 2
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // start of scan / end of image: no EXIF before it
			return 1
		}
		n := int(binary.BigEndian.Uint16(data[i+2 : i+4]))
		if n < 2 || i+2+n > len(data) {
			return 1
		}
		seg := data[i+4 : i+2+n]
		if marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return tiffOrientation(seg[6:])
		}
		i += 2 + n
	}
	return 1
}

// pngOrientation returns the orientation in a PNG eXIf chunk placed before the image data.
func pngOrientation(data []byte) int {
	i := len(pngMagic)
	for i+8 <= len(data) {
		n := int(binary.BigEndian.Uint32(data[i : i+4]))
		typ := string(data[i+4 : i+8])
		if n < 0 || n > len(data)-i-12 {
			return 1
		}
		if typ == "eXIf" {
			return tiffOrientation(data[i+8 : i+8+n])
		}
		if typ == "IDAT" || typ == "IEND" {
			return 1
		}
		i += 12 + n
	}
	return 1
}

// tiffOrientation reads tag 0x0112 of IFD0 of a TIFF structure (the body of an EXIF block).
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:4]) != 42 {
		return 1
	}
	off := int64(bo.Uint32(t[4:8]))
	if off < 8 || off+2 > int64(len(t)) {
		return 1
	}
	count := int(bo.Uint16(t[off : off+2]))
	for k := 0; k < count; k++ {
		e := off + 2 + int64(k)*12
		if e+12 > int64(len(t)) {
			return 1
		}
		if bo.Uint16(t[e:e+2]) != 0x0112 {
			continue
		}
		typ, n := bo.Uint16(t[e+2:e+4]), bo.Uint32(t[e+4:e+8])
		if typ != 3 || n != 1 { // SHORT, one value, stored in the first two bytes of the value field
			return 1
		}
		if v := int(bo.Uint16(t[e+8 : e+10])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}
