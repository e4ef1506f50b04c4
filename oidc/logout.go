package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/visage-idp/visage/store"
)

// Logout follows OIDC RP-Initiated Logout 1.0 and Back-Channel Logout 1.0. The login pages
// serve /end_session (they own the browser's cookie): ParseLogout validates the request, and
// EndSession ends one SSO session for good.

// LogoutRequest is a validated RP-Initiated Logout request.
type LogoutRequest struct {
	// HintUserID and HintSessionID come from a valid id_token_hint (sub and sid); empty without.
	HintUserID, HintSessionID string
	ClientID                  string
	// RedirectURI is the registered post_logout_redirect_uri (with state), or the logged-out page.
	RedirectURI string
}

// HasHint reports whether the request carried a valid id_token_hint.
func (l LogoutRequest) HasHint() bool { return l.HintUserID != "" }

// ParseLogout validates an end_session request (query or form): the id_token_hint's signature
// and issuer (an expired hint is accepted, as the specification allows), that client_id matches
// its azp, and that post_logout_redirect_uri is registered for the client exactly.
func (p *Provider) ParseLogout(r *http.Request) (LogoutRequest, error) {
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	req, err := op.ParseEndSessionRequest(r, p.op.Decoder())
	if err != nil {
		return LogoutRequest{}, fmt.Errorf("logout request: %w", err)
	}
	es, err := op.ValidateEndSessionRequest(ctx, req, p.op)
	if err != nil {
		return LogoutRequest{}, fmt.Errorf("logout request: %w", err)
	}
	lr := LogoutRequest{ClientID: es.ClientID, RedirectURI: es.RedirectURI}
	if c := es.IDTokenHintClaims; c != nil {
		lr.HintUserID, lr.HintSessionID = c.GetSubject(), c.SessionID
	}
	return lr, nil
}

// backchannelEvent is the event a Back-Channel Logout token carries.
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// EndSession ends SSO session sid: the session is revoked (a copied cookie naming it signs
// nobody in any more), the grants issued in it are revoked with their access and refresh
// tokens except those that asked for offline_access (which by definition outlive the
// session), and every client that received tokens in the session and registered a
// backchannel_logout_uri is sent a logout token. Unknown or already ended sessions are no error
// (and nobody is told twice).
func (p *Provider) EndSession(ctx context.Context, sid string) error {
	if sid == "" {
		return nil
	}
	now := p.storage.now()
	ss, err := p.store.GetSession(ctx, sid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if ss.RevokedAt != nil {
		return nil // ended before: its grants were revoked and its clients told then
	}
	if err := p.store.RevokeSession(ctx, sid, now); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	grants, err := p.store.ListSessionGrants(ctx, sid)
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	var clients []string
	for _, g := range grants {
		if !slices.Contains(clients, g.ClientID) {
			clients = append(clients, g.ClientID)
		}
		if g.RevokedAt != nil || slices.Contains(g.Scopes, oidc.ScopeOfflineAccess) {
			continue
		}
		if err := p.store.RevokeGrant(ctx, g.ID, now); err != nil {
			return fmt.Errorf("end session: revoke grant: %w", err)
		}
	}
	p.log.InfoContext(ctx, "session ended", "user", ss.UserID, "grants", len(grants))
	p.sendBackchannel(ctx, ss, clients)
	return nil
}

// sendBackchannel posts a logout token to each client's backchannel_logout_uri, in parallel,
// each bounded by the back-channel timeout. Failures are logged: the session is ended anyway.
func (p *Provider) sendBackchannel(ctx context.Context, ss store.Session, clientIDs []string) {
	var wg sync.WaitGroup
	for _, id := range clientIDs {
		c, err := p.store.GetClient(ctx, id)
		if err != nil || c.BackchannelLogoutURI == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.postLogoutToken(ctx, c, ss); err != nil {
				p.log.WarnContext(ctx, "back-channel logout", "client", c.ID, "err", err)
			}
		}()
	}
	wg.Wait()
}

func (p *Provider) postLogoutToken(ctx context.Context, c store.Client, ss store.Session) error {
	tok, err := p.LogoutToken(ctx, c, ss)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.backchannelTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %d", c.BackchannelLogoutURI, resp.StatusCode)
	}
	return nil
}

// LogoutToken builds the Back-Channel Logout 1.0 logout token for client c and session ss:
// signed with the client's ID token algorithm, typ logout+jwt, with iss, aud, iat, exp (two
// minutes), jti, sub, sid and the back-channel logout event, and never a nonce.
func (p *Provider) LogoutToken(ctx context.Context, c store.Client, ss store.Session) (string, error) {
	alg := AlgRS256
	if c.IDTokenSigningAlg == AlgES256 {
		alg = AlgES256
	}
	key, err := p.storage.signingKeyFor(ctx, alg)
	if err != nil {
		return "", fmt.Errorf("logout token: %w", err)
	}
	opts := (&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", key.ID())
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.SignatureAlgorithm(), Key: key.Key()}, opts)
	if err != nil {
		return "", fmt.Errorf("logout token: %w", err)
	}
	now := p.storage.now()
	claims := map[string]any{
		"iss": p.issuer, "aud": c.ID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": randomID(16),
		"sub": ss.UserID, "sid": ss.ID, "events": map[string]any{backchannelEvent: map[string]any{}},
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("logout token: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("logout token: %w", err)
	}
	return jws.CompactSerialize()
}
