package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Header names.
const (
	HeaderSignatureV2     = "X-Signature-V2"
	HeaderSignature       = "X-Signature"
	HeaderSignatureSimple = "X-Signature-Simple"
	HeaderTimestamp       = "X-Timestamp"
)

// TypeStatusUpdated is the webhook_type of a status change.
const TypeStatusUpdated = "status.updated"

// Signatures are the values of the four signature headers.
type Signatures struct {
	V2        string
	Raw       string
	Simple    string
	Timestamp string
}

// Set writes the signatures into h.
func (s Signatures) Set(h http.Header) {
	h.Set(HeaderSignatureV2, s.V2)
	h.Set(HeaderSignature, s.Raw)
	h.Set(HeaderSignatureSimple, s.Simple)
	h.Set(HeaderTimestamp, s.Timestamp)
}

// Mac returns the lowercase hex HMAC-SHA256 of msg under secret.
func Mac(secret string, msg []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(msg)
	return hex.EncodeToString(m.Sum(nil))
}

// Sign computes the signatures of a webhook body as sent (body is the exact bytes of the
// request). The body must be a JSON object; its timestamp, session_id, status and
// webhook_type make up the simple signature.
func Sign(secret string, body []byte) (Signatures, error) {
	v, err := Decode(body)
	if err != nil {
		return Signatures{}, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Signatures{}, errors.New("webhook: sign: the body is not a JSON object")
	}
	canon, err := Encode(obj, false)
	if err != nil {
		return Signatures{}, err
	}
	ts := field(obj, "timestamp")
	simple := ts + ":" + field(obj, "session_id") + ":" + field(obj, "status") + ":" + field(obj, "webhook_type")
	return Signatures{V2: Mac(secret, canon), Raw: Mac(secret, body), Simple: Mac(secret, []byte(simple)), Timestamp: ts}, nil
}

// field renders a top-level value as Python's str() would for the simple signature: strings as
// they are, numbers in their canonical form, missing values as "None".
func field(obj map[string]any, key string) string {
	switch x := obj[key].(type) {
	case string:
		return x
	case json.Number:
		if s, err := number(string(x)); err == nil {
			return s
		}
		return string(x)
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	default:
		b, _ := Encode(x, false)
		return string(b)
	}
}

// Prepare turns a stored event (a JSON object without a timestamp) into a request body stamped
// with now, and signs it. The body is the canonical JSON with non-ASCII characters kept as
// UTF-8: exactly the bytes X-Signature-V2 signs, so HMAC(raw body) equals X-Signature-V2 (and
// X-Signature).
func Prepare(secret string, event []byte, now time.Time) ([]byte, Signatures, error) {
	v, err := Decode(event)
	if err != nil {
		return nil, Signatures{}, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, Signatures{}, errors.New("webhook: prepare: the event is not a JSON object")
	}
	obj["timestamp"] = json.Number(strconv.FormatInt(now.Unix(), 10))
	body, err := Encode(obj, false)
	if err != nil {
		return nil, Signatures{}, fmt.Errorf("webhook: prepare: %w", err)
	}
	sig, err := Sign(secret, body)
	if err != nil {
		return nil, Signatures{}, err
	}
	return body, sig, nil
}
