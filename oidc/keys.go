package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/visage-idp/visage/store"
)

// Supported ID-token signing algorithms. RS256 is the default because every relying party can
// verify it; ES256 is offered per client.
const (
	AlgRS256 = string(jose.RS256)
	AlgES256 = string(jose.ES256)
)

// signingKey is a private key ready for go-jose, satisfying op.SigningKey and op.Key.
type signingKey struct {
	id      string
	alg     jose.SignatureAlgorithm
	private crypto.Signer
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Algorithm() jose.SignatureAlgorithm          { return k.alg }
func (k *signingKey) Key() any                                    { return k.private }
func (k *signingKey) ID() string                                  { return k.id }
func (k *signingKey) Use() string                                 { return "sig" }

// publicKey is a published verification key (op.Key).
type publicKey struct{ signingKey }

func (k *publicKey) Key() any { return k.private.Public() }

// generateKey makes a new private key for alg and returns it encoded as a private JWK.
func generateKey(alg string) (id string, encoded []byte, err error) {
	var priv crypto.Signer
	switch alg {
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return "", nil, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	if err != nil {
		return "", nil, fmt.Errorf("keys: generate %s: %w", alg, err)
	}
	id = randomID(12)
	jwk := jose.JSONWebKey{Key: priv, KeyID: id, Algorithm: alg, Use: "sig"}
	encoded, err = json.Marshal(jwk)
	if err != nil {
		return "", nil, fmt.Errorf("keys: encode: %w", err)
	}
	return id, encoded, nil
}

func decodeKey(k store.SigningKey) (*signingKey, error) {
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(k.Private, &jwk); err != nil {
		return nil, fmt.Errorf("keys: decode %s: %w", k.ID, err)
	}
	signer, ok := jwk.Key.(crypto.Signer)
	if !ok || jwk.IsPublic() {
		return nil, fmt.Errorf("keys: %s is not a private key", k.ID)
	}
	return &signingKey{id: k.ID, alg: jose.SignatureAlgorithm(k.Algorithm), private: signer}, nil
}

// EnsureKeys creates an active RS256 and ES256 key if there is none: it runs on first start.
func EnsureKeys(ctx context.Context, st store.Storage, now time.Time) error {
	keys, err := st.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: list: %w", err)
	}
	for _, alg := range []string{AlgRS256, AlgES256} {
		if activeKey(keys, alg) != nil {
			continue
		}
		if _, err := createKey(ctx, st, alg, now); err != nil {
			return err
		}
	}
	return nil
}

func createKey(ctx context.Context, st store.Storage, alg string, now time.Time) (string, error) {
	id, enc, err := generateKey(alg)
	if err != nil {
		return "", err
	}
	if err := st.CreateSigningKey(ctx, store.SigningKey{ID: id, Algorithm: alg, Private: enc, CreatedAt: now}); err != nil {
		return "", fmt.Errorf("keys: store %s key: %w", alg, err)
	}
	return id, nil
}

// activeKey returns the newest unretired key for alg.
func activeKey(keys []store.SigningKey, alg string) *store.SigningKey {
	var best *store.SigningKey
	for i := range keys {
		k := &keys[i]
		if k.Algorithm != alg || k.RetiredAt != nil {
			continue
		}
		if best == nil || k.CreatedAt.After(best.CreatedAt) {
			best = k
		}
	}
	return best
}

// RotateKeys adds a new key for every algorithm and retires the previous ones. Retired public
// keys stay in the JWKS for maxTokenLifetime (the longest lifetime of a token they signed), so
// every token already issued still verifies; GarbageCollect deletes them afterwards.
func RotateKeys(ctx context.Context, st store.Storage, now time.Time, maxTokenLifetime time.Duration) ([]string, error) {
	keys, err := st.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list: %w", err)
	}
	var created []string
	for _, alg := range []string{AlgRS256, AlgES256} {
		id, err := createKey(ctx, st, alg, now)
		if err != nil {
			return created, err
		}
		created = append(created, id)
		for _, k := range keys {
			if k.Algorithm == alg && k.RetiredAt == nil {
				if err := st.RetireSigningKey(ctx, k.ID, now, now.Add(maxTokenLifetime)); err != nil {
					return created, fmt.Errorf("keys: retire %s: %w", k.ID, err)
				}
			}
		}
	}
	return created, nil
}

// keySet loads the signing key for alg and the published keys.
func (s *Storage) signingKeyFor(ctx context.Context, alg string) (*signingKey, error) {
	keys, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list: %w", err)
	}
	k := activeKey(keys, alg)
	if k == nil {
		return nil, errors.New("keys: no active signing key for " + alg)
	}
	return decodeKey(*k)
}

func (s *Storage) publishedKeys(ctx context.Context) ([]*publicKey, error) {
	keys, err := s.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list: %w", err)
	}
	now := s.now()
	var out []*publicKey
	for _, k := range keys {
		if k.PublishUntil != nil && now.After(*k.PublishUntil) {
			continue
		}
		sk, err := decodeKey(k)
		if err != nil {
			return nil, err
		}
		out = append(out, &publicKey{*sk})
	}
	return out, nil
}
