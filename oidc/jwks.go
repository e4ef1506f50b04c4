package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jwksCache fetches and caches the key sets clients publish at their jwks_uri (as Keycloak does
// for its private_key_jwt client keys, which it rotates). A cached set is used for at most
// maxAge; a key id the cached set does not know triggers a new fetch, but at most once per
// minRefresh per URI, so a client (or an attacker posting assertions with random key ids) cannot
// make the provider hammer the client's server.
type jwksCache struct {
	client     *http.Client
	now        func() time.Time
	maxAge     time.Duration
	minRefresh time.Duration
	maxBytes   int64

	mu   sync.Mutex
	sets map[string]*cachedJWKS
}

type cachedJWKS struct {
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time // last successful fetch
	tried   time.Time // last attempt
}

func newJWKSCache(now func() time.Time) *jwksCache {
	return &jwksCache{
		client:     &http.Client{Timeout: 5 * time.Second},
		now:        now,
		maxAge:     10 * time.Minute,
		minRefresh: 30 * time.Second,
		maxBytes:   256 << 10,
		sets:       map[string]*cachedJWKS{},
	}
}

// keys returns the public signing keys at uri with the key id kid (every key when kid is
// empty), fetching the set when the cache is too old or lacks kid, within the refresh bound.
func (c *jwksCache) keys(ctx context.Context, uri, kid string) ([]jose.JSONWebKey, error) {
	c.mu.Lock()
	e := c.sets[uri]
	if e == nil {
		e = &cachedJWKS{}
		c.sets[uri] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.now()
	fresh := !e.fetched.IsZero() && now.Sub(e.fetched) < c.maxAge
	found := matchKeys(e.keys, kid)
	mayFetch := e.tried.IsZero() || now.Sub(e.tried) >= c.minRefresh
	if (fresh && len(found) > 0) || !mayFetch {
		if !fresh {
			return nil, fmt.Errorf("jwks_uri %s: no current key set (last fetch failed or too old)", uri)
		}
		return found, nil
	}
	e.tried = now
	keys, err := c.fetch(ctx, uri)
	if err != nil {
		if fresh {
			return found, nil
		}
		return nil, err
	}
	e.keys, e.fetched = keys, now
	return matchKeys(keys, kid), nil
}

func (c *jwksCache) fetch(ctx context.Context, uri string) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri %s: %w", uri, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks_uri %s: %w", uri, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks_uri %s: status %d", uri, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks_uri %s: %w", uri, err)
	}
	if int64(len(body)) > c.maxBytes {
		return nil, fmt.Errorf("jwks_uri %s: key set larger than %d bytes", uri, c.maxBytes)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks_uri %s: %w", uri, err)
	}
	return set.Keys, nil
}

// matchKeys returns the public signature keys with the key id kid (all of them when kid is
// empty).
func matchKeys(keys []jose.JSONWebKey, kid string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, k := range keys {
		if (kid != "" && k.KeyID != kid) || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		out = append(out, k)
	}
	return out
}
