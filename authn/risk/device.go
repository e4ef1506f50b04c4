package risk

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
)

// DeviceCookieName is the long-lived cookie that names a browser.
const DeviceCookieName = "visage_device"

// DeviceCookies issues and reads the device cookie: a random id, signed and encrypted
// (gorilla/securecookie), HttpOnly, with its issue time. A forged, tampered or expired cookie
// reads as no cookie.
type DeviceCookies struct {
	codec  *securecookie.SecureCookie
	maxAge time.Duration
	secure bool
}

type deviceValue struct {
	ID     string
	Issued int64
}

// NewDeviceCookies uses its own keys (not the session cookie's).
func NewDeviceCookies(hashKey, blockKey []byte, maxAge time.Duration, secure bool) *DeviceCookies {
	c := securecookie.New(hashKey, blockKey)
	c.MaxAge(int(maxAge.Seconds()))
	return &DeviceCookies{codec: c, maxAge: maxAge, secure: secure}
}

// Read returns the device id in the request's cookie, if it is genuine and unexpired.
func (d *DeviceCookies) Read(r *http.Request) (string, bool) {
	c, err := r.Cookie(DeviceCookieName)
	if err != nil {
		return "", false
	}
	var v deviceValue
	if err := d.codec.Decode(DeviceCookieName, c.Value, &v); err != nil || v.ID == "" {
		return "", false
	}
	if time.Since(time.Unix(v.Issued, 0)) > d.maxAge {
		return "", false
	}
	return v.ID, true
}

// Issue sets a cookie for id (a new random id when empty) and returns the id.
func (d *DeviceCookies) Issue(w http.ResponseWriter, id string) (string, error) {
	if id == "" {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		id = base64.RawURLEncoding.EncodeToString(b)
	}
	enc, err := d.codec.Encode(DeviceCookieName, deviceValue{ID: id, Issued: time.Now().Unix()})
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{Name: DeviceCookieName, Value: enc, Path: "/", MaxAge: int(d.maxAge.Seconds()),
		HttpOnly: true, Secure: d.secure, SameSite: http.SameSiteLaxMode})
	return id, nil
}
