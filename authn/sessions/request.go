package sessions

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/visage-idp/visage/authn/face"
	"github.com/visage-idp/visage/authn/liveness"
)

// Limits of a create-session request.
const (
	MaxVendorData  = 1000
	MaxWorkflowID  = 100
	MaxCallback    = 2048
	MaxMetadata    = 16 << 10
	DefaultMaxBody = 8 << 20 // a 2 MB portrait is 2.7 MB of base64
)

// CreateRequest is a parsed POST /v3/session/ body.
type CreateRequest struct {
	WorkflowID string
	VendorData string
	Callback   string
	Metadata   json.RawMessage // a JSON object, compacted; nil when absent or null
	Portrait   []byte          // the decoded portrait_image (JPEG or PNG); nil when absent
	// WorkflowType is the workflow_type sent ("" when absent): only biometric_authentication.
	WorkflowType string
	// LivenessMethod is the liveness_method asked for ("" when absent): PASSIVE, FLASHING or
	// ACTIVE_3D; the Service refuses one weaker than the workflow's.
	LivenessMethod string
}

// portraitHash is the hex SHA-256 of the portrait, "" without one.
func (r CreateRequest) portraitHash() string {
	if r.Portrait == nil {
		return ""
	}
	sum := sha256.Sum256(r.Portrait)
	return hex.EncodeToString(sum[:])
}

// RequestError is a request the API refuses with 400: either field errors, answered as
// {"field": "message", ...} as Didit does, or a Detail for a body that is not a JSON object,
// answered as {"detail": "..."}.
type RequestError struct {
	Fields map[string]string
	Detail string
}

func (e *RequestError) Error() string {
	if e.Detail != "" {
		return "bad request: " + e.Detail
	}
	names := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, k+": "+e.Fields[k])
	}
	return "bad request: " + strings.Join(parts, "; ")
}

// Body is the JSON the API answers with.
func (e *RequestError) Body() any {
	if e.Detail != "" {
		return map[string]string{"detail": e.Detail}
	}
	return e.Fields
}

func fieldError(field, msg string) *RequestError {
	return &RequestError{Fields: map[string]string{field: msg}}
}

// ParseCreateRequest parses and checks a create-session body: types, lengths, the callback
// URL, the metadata object, and the portrait's base64, size (at most maxPortrait bytes
// decoded) and format (JPEG or PNG). Unknown fields are ignored, as Didit's other optional
// fields may be sent. It does not look at the workflow or the face: the Service does.
func ParseCreateRequest(body []byte, maxPortrait int) (CreateRequest, error) {
	var req CreateRequest
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return req, &RequestError{Detail: JSONErrorText(err, "a JSON object")}
	}
	if raw == nil {
		return req, &RequestError{Detail: "JSON parse error - the body must be a JSON object"}
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return req, &RequestError{Detail: "JSON parse error - data after the JSON object"}
	}
	errs := map[string]string{}
	str := func(name string, max int, required bool) string {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			if required {
				errs[name] = "This field is required."
			}
			return ""
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			errs[name] = "Not a valid string."
			return ""
		}
		switch {
		case required && strings.TrimSpace(s) == "":
			errs[name] = "This field may not be blank."
		case utf8.RuneCountInString(s) > max:
			errs[name] = fmt.Sprintf("Ensure this field has no more than %d characters.", max)
		}
		return s
	}
	req.WorkflowID = strings.TrimSpace(str("workflow_id", MaxWorkflowID, true))
	req.VendorData = str("vendor_data", MaxVendorData, false)
	req.Callback = strings.TrimSpace(str("callback", MaxCallback, false))
	req.WorkflowType = strings.TrimSpace(str("workflow_type", 100, false))
	if _, bad := errs["workflow_type"]; !bad && req.WorkflowType != "" && req.WorkflowType != WorkflowType {
		errs["workflow_type"] = fmt.Sprintf("%q is not a valid choice: this server runs %q workflows only.", req.WorkflowType, WorkflowType)
	}
	req.LivenessMethod = strings.TrimSpace(str("liveness_method", 20, false))
	if _, bad := errs["liveness_method"]; !bad && req.LivenessMethod != "" {
		switch liveness.Method(req.LivenessMethod) {
		case liveness.MethodPassive, liveness.MethodFlashing, liveness.MethodActive3D:
		default:
			errs["liveness_method"] = fmt.Sprintf("%q is not a valid choice: PASSIVE, FLASHING or ACTIVE_3D.", req.LivenessMethod)
		}
	}
	if _, bad := errs["callback"]; !bad && req.Callback != "" {
		u, err := url.Parse(req.Callback)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			errs["callback"] = "Enter a valid URL (absolute http or https, without credentials)."
		}
	}
	if v, ok := raw["metadata"]; ok && string(v) != "null" {
		var obj map[string]json.RawMessage
		switch {
		case len(v) > MaxMetadata:
			errs["metadata"] = fmt.Sprintf("The metadata must be at most %d bytes of JSON.", MaxMetadata)
		case json.Unmarshal(v, &obj) != nil || obj == nil:
			errs["metadata"] = "The metadata must be a JSON object."
		default:
			var b bytes.Buffer
			if err := json.Compact(&b, v); err != nil {
				errs["metadata"] = "The metadata must be a JSON object."
			} else {
				req.Metadata = b.Bytes()
			}
		}
	}
	if v, ok := raw["portrait_image"]; ok && string(v) != "null" {
		img, msg := decodePortrait(v, maxPortrait)
		if msg != "" {
			errs["portrait_image"] = msg
		} else {
			req.Portrait = img
		}
	}
	if len(errs) > 0 {
		return CreateRequest{}, &RequestError{Fields: errs}
	}
	return req, nil
}

// decodePortrait decodes a base64 portrait (optionally a data: URL) and checks its size and
// format. It returns the image, or a message for the field error.
func decodePortrait(v json.RawMessage, maxBytes int) ([]byte, string) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, "The portrait_image must be a base64 string."
	}
	if i := strings.Index(s, ","); strings.HasPrefix(s, "data:") && i > 0 {
		s = s[i+1:]
	}
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return nil, "The portrait_image is empty."
	}
	// Check the size before decoding anything big.
	if base64.StdEncoding.DecodedLen(len(s)) > maxBytes+2 {
		return nil, fmt.Sprintf("The portrait_image is larger than %d bytes.", maxBytes)
	}
	enc := base64.StdEncoding
	if !strings.HasSuffix(s, "=") && len(s)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	img, err := enc.DecodeString(s)
	if err != nil {
		if img2, err2 := base64.URLEncoding.DecodeString(s); err2 == nil {
			img, err = img2, nil
		}
	}
	if err != nil {
		return nil, "The portrait_image is not valid base64."
	}
	if len(img) > maxBytes {
		return nil, fmt.Sprintf("The portrait_image is larger than %d bytes.", maxBytes)
	}
	if _, err := face.Sniff(img); err != nil {
		if errors.Is(err, face.ErrUnsupportedFormat) || errors.Is(err, face.ErrCorrupt) {
			return nil, "The portrait_image must be a JPEG or PNG image."
		}
		return nil, "The portrait_image could not be read."
	}
	return img, ""
}

// JSONErrorText describes a JSON decoding error for an API client without Go's type names:
// "JSON parse error - " and where the syntax broke, or that the body is not what was expected
// (want, such as "a JSON object").
func JSONErrorText(err error, want string) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return "JSON parse error - the body is empty; send " + want + "."
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "JSON parse error - the body ends in the middle of the JSON."
	case errors.As(err, &se):
		return fmt.Sprintf("JSON parse error - invalid JSON at byte %d.", se.Offset)
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("JSON parse error - the field %q must be %s, not %s.", te.Field, jsonKind(te.Type.Kind()), te.Value)
	case errors.As(err, &te):
		return fmt.Sprintf("JSON parse error - the body must be %s, not %s.", want, te.Value)
	}
	return "JSON parse error - the body is not valid JSON; send " + want + "."
}

// jsonKind names a Go kind as JSON calls it.
func jsonKind(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16,
		reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another type"
}
