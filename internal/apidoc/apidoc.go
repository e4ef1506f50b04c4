// Package apidoc checks HTTP responses against an OpenAPI 3 document: the Sessions API's unit
// tests and the end-to-end tests use it to hold every response to /v3/openapi.json.
package apidoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Doc checks HTTP responses against the OpenAPI document: the operation (method and path
// template), the documented status code, the JSON content type and the response schema. It
// implements the part of JSON Schema the document uses: $ref, anyOf, oneOf, type (with "null"),
// enum, properties, required, additionalProperties, items, minimum, maximum, minLength,
// maxLength, minProperties, and the formats uuid, date-time and uri.
type Doc struct {
	root map[string]any
}

func Parse(b []byte) (*Doc, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	if v, _ := root["openapi"].(string); !strings.HasPrefix(v, "3.") {
		return nil, fmt.Errorf("openapi: version %q, want 3.x", v)
	}
	return &Doc{root: root}, nil
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// operation finds the operation for a method and a concrete path.
func (d *Doc) operation(method, path string) (map[string]any, string, error) {
	for tmpl, item := range obj(d.root["paths"]) {
		if !pathMatches(tmpl, path) {
			continue
		}
		op := obj(obj(item)[strings.ToLower(method)])
		if op == nil {
			return nil, tmpl, fmt.Errorf("%s %s: path %s documents no %s", method, path, tmpl, method)
		}
		return op, tmpl, nil
	}
	return nil, "", fmt.Errorf("%s %s: no documented path matches", method, path)
}

func pathMatches(tmpl, path string) bool {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if strings.HasPrefix(ts[i], "{") && strings.HasSuffix(ts[i], "}") {
			if ps[i] == "" {
				return false
			}
			continue
		}
		if ts[i] != ps[i] {
			return false
		}
	}
	return true
}

// checkResponse validates one response.
func (d *Doc) CheckResponse(method, path string, status int, contentType string, body []byte) error {
	op, tmpl, err := d.operation(method, path)
	if err != nil {
		return err
	}
	resp := obj(obj(op["responses"])[strconv.Itoa(status)])
	if resp == nil {
		return fmt.Errorf("%s %s: status %d is not documented", method, tmpl, status)
	}
	content := obj(resp["content"])
	if content == nil {
		if len(bytes.TrimSpace(body)) != 0 {
			return fmt.Errorf("%s %s %d: documented without a body, got %q", method, tmpl, status, body)
		}
		return nil
	}
	media := obj(content["application/json"])
	if media == nil {
		return fmt.Errorf("%s %s %d: no application/json content documented", method, tmpl, status)
	}
	if !strings.HasPrefix(contentType, "application/json") {
		return fmt.Errorf("%s %s %d: content type %q, want application/json", method, tmpl, status, contentType)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("%s %s %d: body is not JSON: %w", method, tmpl, status, err)
	}
	if err := d.validate(obj(media["schema"]), v, "$"); err != nil {
		return fmt.Errorf("%s %s %d: %w", method, tmpl, status, err)
	}
	return nil
}

// validateComponent validates v against a named component schema.
func (d *Doc) ValidateComponent(name string, v any) error {
	return d.validate(map[string]any{"$ref": "#/components/schemas/" + name}, v, "$")
}

func (d *Doc) resolve(ref string) (map[string]any, error) {
	const prefix = "#/components/schemas/"
	if !strings.HasPrefix(ref, prefix) {
		return nil, fmt.Errorf("unsupported $ref %q", ref)
	}
	s := obj(obj(obj(d.root["components"])["schemas"])[strings.TrimPrefix(ref, prefix)])
	if s == nil {
		return nil, fmt.Errorf("$ref %q does not resolve", ref)
	}
	return s, nil
}

func typeOf(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

var dateTimeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)

func (d *Doc) validate(s map[string]any, v any, at string) error {
	if s == nil {
		return fmt.Errorf("%s: no schema", at)
	}
	if ref, ok := s["$ref"].(string); ok {
		r, err := d.resolve(ref)
		if err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		return d.validate(r, v, at)
	}
	if alts, ok := s["anyOf"].([]any); ok {
		var errs []string
		for _, a := range alts {
			err := d.validate(obj(a), v, at)
			if err == nil {
				return nil
			}
			errs = append(errs, err.Error())
		}
		return fmt.Errorf("%s: matches none of the anyOf alternatives (%s)", at, strings.Join(errs, "; "))
	}
	if alts, ok := s["oneOf"].([]any); ok {
		n := 0
		var errs []string
		for _, a := range alts {
			if err := d.validate(obj(a), v, at); err == nil {
				n++
			} else {
				errs = append(errs, err.Error())
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: matches %d of the oneOf alternatives, want 1 (%s)", at, n, strings.Join(errs, "; "))
		}
		return nil
	}
	got := typeOf(v)
	if t, ok := s["type"]; ok {
		var allowed []string
		switch x := t.(type) {
		case string:
			allowed = []string{x}
		case []any:
			for _, e := range x {
				allowed = append(allowed, e.(string))
			}
		}
		if !slices.Contains(allowed, got) && !(got == "integer" && slices.Contains(allowed, "number")) {
			return fmt.Errorf("%s: %s, want %v", at, got, allowed)
		}
	}
	if enum, ok := s["enum"].([]any); ok && got != "null" {
		if !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
			return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
		}
	}
	num := func(key string) (float64, bool) {
		n, ok := s[key].(json.Number)
		if !ok {
			return 0, false
		}
		f, err := n.Float64()
		return f, err == nil
	}
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		if lo, ok := num("minimum"); ok && f < lo {
			return fmt.Errorf("%s: %v < minimum %v", at, f, lo)
		}
		if hi, ok := num("maximum"); ok && f > hi {
			return fmt.Errorf("%s: %v > maximum %v", at, f, hi)
		}
		if math.IsNaN(f) {
			return fmt.Errorf("%s: NaN", at)
		}
	case string:
		if lo, ok := num("minLength"); ok && float64(utf8.RuneCountInString(x)) < lo {
			return fmt.Errorf("%s: shorter than %v", at, lo)
		}
		if hi, ok := num("maxLength"); ok && float64(utf8.RuneCountInString(x)) > hi {
			return fmt.Errorf("%s: longer than %v", at, hi)
		}
		switch s["format"] {
		case "uuid":
			if _, err := uuid.Parse(x); err != nil {
				return fmt.Errorf("%s: %q is not a uuid", at, x)
			}
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil || !dateTimeRE.MatchString(x) {
				return fmt.Errorf("%s: %q is not an RFC 3339 date-time", at, x)
			}
		case "uri":
			if u, err := url.Parse(x); err != nil || u.Scheme == "" || u.Host == "" {
				return fmt.Errorf("%s: %q is not an absolute URI", at, x)
			}
		}
	case []any:
		if items := obj(s["items"]); items != nil {
			for i, e := range x {
				if err := d.validate(items, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	case map[string]any:
		props := obj(s["properties"])
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := x[r.(string)]; !ok {
					return fmt.Errorf("%s: required property %q missing", at, r)
				}
			}
		}
		if lo, ok := num("minProperties"); ok && float64(len(x)) < lo {
			return fmt.Errorf("%s: fewer than %v properties", at, lo)
		}
		for k, e := range x {
			if ps := obj(props[k]); ps != nil {
				if err := d.validate(ps, e, at+"."+k); err != nil {
					return err
				}
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					return fmt.Errorf("%s: property %q is not documented", at, k)
				}
			case map[string]any:
				if err := d.validate(ap, e, at+"."+k); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// CheckRefs reports the first $ref of the document that does not resolve.
func (d *Doc) CheckRefs() error {
	var errs []error
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if _, err := d.resolve(ref); err != nil {
					errs = append(errs, err)
				}
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(d.root)
	return errors.Join(errs...)
}

// Operation reports whether the document has an operation for the method and concrete path.
func (d *Doc) Operation(method, path string) error {
	_, _, err := d.operation(method, path)
	return err
}
