package face

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// KeyRing holds the biometric template keys: AES-256 keys used only for face templates,
// separate from every other secret of the deployment (OIDC signing keys, session and cookie
// keys, database credentials), in their own file. One key is primary and seals new templates;
// the others still open the templates they sealed, so keys can rotate without re-enrolment.
// A KeyRing is safe for concurrent use.
type KeyRing struct {
	path string

	mu      sync.RWMutex
	primary string
	keys    map[string]keyEntry
	order   []string
}

type keyEntry struct {
	key     []byte
	aead    cipher.AEAD
	created time.Time
}

// keyRingFile is the JSON form of the key ring file.
type keyRingFile struct {
	Version int            `json:"version"`
	Primary string         `json:"primary"`
	Keys    []keyRingEntry `json:"keys"`
}

type keyRingEntry struct {
	ID      string    `json:"id"`
	Key     string    `json:"key"` // hex, 32 bytes
	Created time.Time `json:"created"`
}

// LoadOrCreateKeyRing opens the key ring at path, or creates it with one random 32-byte key if
// the file does not exist. The file is written with mode 0600; an existing file readable by
// group or others is refused.
func LoadOrCreateKeyRing(path string) (*KeyRing, error) {
	k := &KeyRing{path: path, keys: map[string]keyEntry{}}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, err := k.addKey(); err != nil {
			return nil, err
		}
		if err := k.save(); err != nil {
			return nil, err
		}
		return k, nil
	case err != nil:
		return nil, fmt.Errorf("face: biometric key ring: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("face: biometric key ring %s has mode %v: it must not be readable by group or others (chmod 600)", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("face: biometric key ring: %w", err)
	}
	var f keyRingFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("face: biometric key ring %s: %w", path, err)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("face: biometric key ring %s: unknown version %d", path, f.Version)
	}
	for _, e := range f.Keys {
		key, err := hex.DecodeString(e.Key)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("face: biometric key ring %s: key %q is not 32 hex-encoded bytes", path, e.ID)
		}
		if err := k.install(e.ID, key, e.Created); err != nil {
			return nil, err
		}
	}
	if _, ok := k.keys[f.Primary]; !ok {
		return nil, fmt.Errorf("face: biometric key ring %s: primary key %q not in the ring", path, f.Primary)
	}
	k.primary = f.Primary
	return k, nil
}

func (k *KeyRing) install(id string, key []byte, created time.Time) error {
	if id == "" || len(id) > 255 {
		return fmt.Errorf("face: biometric key ring: bad key id %q", id)
	}
	if _, dup := k.keys[id]; dup {
		return fmt.Errorf("face: biometric key ring: duplicate key id %q", id)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("face: biometric key %q: %w", id, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("face: biometric key %q: %w", id, err)
	}
	k.keys[id] = keyEntry{key: key, aead: aead, created: created}
	k.order = append(k.order, id)
	return nil
}

// addKey creates a random key, makes it primary and returns its id. Caller holds k.mu (or owns k).
func (k *KeyRing) addKey() (string, error) {
	key := make([]byte, 32)
	idb := make([]byte, 8)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("face: biometric key: %w", err)
	}
	if _, err := rand.Read(idb); err != nil {
		return "", fmt.Errorf("face: biometric key: %w", err)
	}
	id := "bk-" + hex.EncodeToString(idb)
	if err := k.install(id, key, time.Now().UTC()); err != nil {
		return "", err
	}
	k.primary = id
	return id, nil
}

// save writes the ring atomically (temporary file in the same folder, fsync, rename), mode 0600.
func (k *KeyRing) save() error {
	f := keyRingFile{Version: 1, Primary: k.primary}
	for _, id := range k.order {
		e := k.keys[id]
		f.Keys = append(f.Keys, keyRingEntry{ID: id, Key: hex.EncodeToString(e.key), Created: e.created})
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("face: biometric key ring: %w", err)
	}
	dir := filepath.Dir(k.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("face: biometric key ring: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".biokeys-*")
	if err != nil {
		return fmt.Errorf("face: biometric key ring: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("face: biometric key ring: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("face: biometric key ring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("face: biometric key ring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("face: biometric key ring: %w", err)
	}
	if err := os.Rename(tmp.Name(), k.path); err != nil {
		return fmt.Errorf("face: biometric key ring: %w", err)
	}
	return nil
}

// PrimaryID returns the id of the key that seals new templates.
func (k *KeyRing) PrimaryID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.primary
}

// KeyIDs returns the ids of every key in the ring, oldest first.
func (k *KeyRing) KeyIDs() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return append([]string(nil), k.order...)
}

// Rotate adds a new random key, makes it primary and saves the ring; old keys stay to open the
// templates they sealed (re-seal them with Seal(Open(blob)) to retire an old key).
func (k *KeyRing) Rotate() (newKeyID string, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	oldPrimary, oldOrder := k.primary, len(k.order)
	id, err := k.addKey()
	if err != nil {
		return "", err
	}
	if err := k.save(); err != nil {
		delete(k.keys, id)
		k.order, k.primary = k.order[:oldOrder], oldPrimary
		return "", err
	}
	return id, nil
}

// Sealed template layout: magic "VFT1", key id length (1 byte), key id, 12-byte nonce, AES-GCM
// ciphertext and tag. The header (magic and key id) is authenticated as additional data.
const sealMagic = "VFT1"

// Seal encrypts a template with the primary key.
func (k *KeyRing) Seal(t *Template) ([]byte, error) {
	if t == nil {
		return nil, newError(CodeInvalidArgument, ErrInvalidArgument, errors.New("seal: nil template"))
	}
	plain, err := t.MarshalBinary()
	if err != nil {
		return nil, err
	}
	k.mu.RLock()
	id := k.primary
	e := k.keys[id]
	k.mu.RUnlock()
	header := append(append([]byte(sealMagic), byte(len(id))), id...)
	nonce := make([]byte, e.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("face: seal: %w", err)
	}
	out := append(header, nonce...)
	return e.aead.Seal(out, nonce, plain, header), nil
}

// Open decrypts a sealed template. An unknown key id, a wrong key, or any tampering fails with
// an error wrapping ErrTemplateKey; never a template that silently fails to match.
func (k *KeyRing) Open(blob []byte) (*Template, error) {
	fail := func(format string, args ...any) error {
		return newError(CodeTemplateKey, ErrTemplateKey, fmt.Errorf(format, args...))
	}
	if !bytes.HasPrefix(blob, []byte(sealMagic)) || len(blob) < len(sealMagic)+1 {
		return nil, fail("not a sealed template")
	}
	n := int(blob[len(sealMagic)])
	hl := len(sealMagic) + 1 + n
	if len(blob) < hl+12+16 {
		return nil, fail("sealed template truncated")
	}
	id := string(blob[len(sealMagic)+1 : hl])
	k.mu.RLock()
	e, ok := k.keys[id]
	k.mu.RUnlock()
	if !ok {
		return nil, fail("key id %q is not in the biometric key ring", id)
	}
	ns := e.aead.NonceSize()
	plain, err := e.aead.Open(nil, blob[hl:hl+ns], blob[hl+ns:], blob[:hl])
	if err != nil {
		return nil, fail("key %q: %v (wrong key or tampered template)", id, err)
	}
	var t Template
	if err := t.UnmarshalBinary(plain); err != nil {
		return nil, fail("key %q: %v", id, err)
	}
	return &t, nil
}

// SealedKeyID returns the id of the key a sealed template was sealed with (from its header),
// e.g. to find the templates still sealed under an old key.
func SealedKeyID(blob []byte) (string, error) {
	if !bytes.HasPrefix(blob, []byte(sealMagic)) || len(blob) < len(sealMagic)+1 {
		return "", newError(CodeTemplateKey, ErrTemplateKey, errors.New("not a sealed template"))
	}
	n := int(blob[len(sealMagic)])
	if len(blob) < len(sealMagic)+1+n {
		return "", newError(CodeTemplateKey, ErrTemplateKey, errors.New("sealed template truncated"))
	}
	return string(blob[len(sealMagic)+1 : len(sealMagic)+1+n]), nil
}
