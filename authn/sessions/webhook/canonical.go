// Package webhook signs and verifies the webhooks of Visage's Sessions API exactly as Didit
// does, so that an application written for Didit verifies Visage's webhooks unchanged, and an
// application written in Go can use Verifier instead of its own code. It has no dependency
// beyond the standard library (no cgo, no face engine): applications import it on its own.
//
// Each webhook carries four headers, all HMAC-SHA256 in lowercase hex under the application's
// webhook secret:
//
//   - X-Signature-V2 over the canonical form of the JSON body: keys sorted, no whitespace,
//     floats with no fractional part written as integers, non-ASCII characters kept as UTF-8
//     (Python's json.dumps(..., sort_keys=True, ensure_ascii=False, separators=(",", ":"))
//     after turning whole floats into ints).
//   - X-Signature over the raw body bytes.
//   - X-Signature-Simple over "timestamp:session_id:status:webhook_type", for receivers that
//     cannot canonicalise JSON.
//   - X-Timestamp, the body's Unix timestamp (seconds) as a decimal string.
//
// Visage sends every body in exactly that canonical form (Prepare), so the bytes on the wire
// are the bytes X-Signature-V2 signs: a receiver that computes the HMAC of the raw body, as
// Didit's guide tells it to, gets X-Signature-V2 for every body, ASCII or not, and X-Signature
// carries the same value. Verifier also accepts bodies that a proxy re-encoded (it compares
// X-Signature-V2 with the HMAC of the raw body and of its canonical form).
package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Canonical parses a JSON document and writes it back in Didit's signing form: compact,
// object keys sorted, whole floats as integers. escapeNonASCII writes characters beyond ASCII
// (and DEL) as \uXXXX escapes, UTF-16 surrogate pairs beyond the BMP, as the raw body does;
// otherwise they stay UTF-8, as X-Signature-V2 signs them.
func Canonical(doc []byte, escapeNonASCII bool) ([]byte, error) {
	v, err := Decode(doc)
	if err != nil {
		return nil, err
	}
	return Encode(v, escapeNonASCII)
}

// Decode parses a JSON document keeping numbers as json.Number, the form Encode expects. It
// refuses trailing data after the document.
func Decode(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("webhook: decode JSON: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("webhook: decode JSON: data after the document")
	}
	return v, nil
}

// Encode writes v, a value made of map[string]any, []any, string, json.Number, bool and nil
// (what Decode returns), in the canonical form described at Canonical.
func Encode(v any, escapeNonASCII bool) ([]byte, error) {
	var b bytes.Buffer
	if err := encode(&b, v, escapeNonASCII); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encode(b *bytes.Buffer, v any, ascii bool) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		writeString(b, x, ascii)
	case json.Number:
		s, err := number(string(x))
		if err != nil {
			return err
		}
		b.WriteString(s)
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		s, err := floatText(x)
		if err != nil {
			return err
		}
		b.WriteString(s)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := encode(b, e, ascii); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		// Byte order of UTF-8 is code point order, which is how Python sorts str keys.
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k, ascii)
			b.WriteByte(':')
			if err := encode(b, x[k], ascii); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("webhook: encode: unsupported type %T", v)
	}
	return nil
}

// number rewrites a JSON number literal the way Python reads and writes it: integer literals
// exactly (arbitrary size), other literals as a float64, written as an integer when whole and
// otherwise as Python's repr writes it.
func number(lit string) (string, error) {
	if !strings.ContainsAny(lit, ".eE") {
		n, ok := new(big.Int).SetString(lit, 10)
		if !ok {
			return "", fmt.Errorf("webhook: bad number %q", lit)
		}
		return n.String(), nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return "", fmt.Errorf("webhook: bad number %q: %w", lit, err)
	}
	return floatText(f)
}

// floatText writes a float64 as Python does after Didit's whole-float shortening.
func floatText(f float64) (string, error) {
	switch {
	case math.IsNaN(f):
		return "NaN", nil
	case math.IsInf(f, 1):
		return "Infinity", nil
	case math.IsInf(f, -1):
		return "-Infinity", nil
	case f == math.Trunc(f):
		i, _ := big.NewFloat(f).Int(nil)
		return i.String(), nil
	}
	// Python's repr: the shortest digits that round-trip, in fixed notation when the decimal
	// exponent is in [-4, 16), else in scientific notation with at least two exponent digits
	// (which is also Go's 'e' format). A non-whole float64 is below 2^53 < 1e16.
	if a := math.Abs(f); a < 1e-4 {
		return strconv.FormatFloat(f, 'e', -1, 64), nil
	}
	return strconv.FormatFloat(f, 'f', -1, 64), nil
}

const hexDigits = "0123456789abcdef"

// writeString writes s as a JSON string the way Python's json module does: \" \\ \n \r \t \b
// \f, other control characters as \u00xx; with ascii, also everything from DEL up as \uxxxx.
func writeString(b *bytes.Buffer, s string, ascii bool) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			switch {
			case r < 0x20:
				writeU(b, r)
			case ascii && r >= 0x7f:
				if r > 0xffff {
					r -= 0x10000
					writeU(b, 0xd800+(r>>10))
					writeU(b, 0xdc00+(r&0x3ff))
				} else {
					writeU(b, r)
				}
			default:
				var buf [utf8.UTFMax]byte
				n := utf8.EncodeRune(buf[:], r)
				b.Write(buf[:n])
			}
		}
	}
	b.WriteByte('"')
}

func writeU(b *bytes.Buffer, r rune) {
	b.WriteString(`\u`)
	b.WriteByte(hexDigits[r>>12&0xf])
	b.WriteByte(hexDigits[r>>8&0xf])
	b.WriteByte(hexDigits[r>>4&0xf])
	b.WriteByte(hexDigits[r&0xf])
}
