package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/visage-idp/visage/store"
)

// Lifetimes are the token and request lifetimes the provider uses.
type Lifetimes struct {
	AuthRequest  time.Duration // from /authorize to a completed login
	Code         time.Duration
	AccessToken  time.Duration
	IDToken      time.Duration
	RefreshToken time.Duration
}

// DefaultLifetimes are the defaults documented in the README.
func DefaultLifetimes() Lifetimes {
	return Lifetimes{
		AuthRequest:  30 * time.Minute,
		Code:         60 * time.Second,
		AccessToken:  15 * time.Minute,
		IDToken:      15 * time.Minute,
		RefreshToken: 30 * 24 * time.Hour,
	}
}

// MaxSigned is the longest lifetime of anything signed by a signing key (ID tokens): a retired
// key stays in the JWKS at least this long.
func (l Lifetimes) MaxSigned() time.Duration { return l.IDToken + time.Minute }

// Storage implements op.Storage over store.Storage.
type Storage struct {
	store     store.Storage
	lifetimes Lifetimes
	loginURL  func(authRequestID string) string
	devMode   bool
	now       func() time.Time
	log       *slog.Logger
}

var _ op.Storage = (*Storage)(nil)

// NewStorage returns the adapter. loginURL maps an auth request id to the login page; devMode
// allows http redirect URIs for web clients (set when the issuer itself is plain http).
func NewStorage(st store.Storage, lifetimes Lifetimes, loginURL func(string) string, devMode bool, now func() time.Time, log *slog.Logger) *Storage {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Storage{store: st, lifetimes: lifetimes, loginURL: loginURL, devMode: devMode, now: func() time.Time { return now().UTC() }, log: log}
}

func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashToken is how single-use secrets (codes, refresh tokens, client secrets) are stored.
func hashToken(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// HashSecret returns the stored form of a client secret.
func HashSecret(secret string) string { return hashToken(secret) }

// GenerateSecret returns a new random client secret.
func GenerateSecret() string { return randomID(32) }

const refreshIDPrefix = "rt:"

// --- op.AuthStorage ---

// CreateAuthRequest stores a validated authorization request. Public clients must use PKCE with
// S256; "plain" is refused for every client.
func (s *Storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, err := s.store.GetClient(ctx, req.ClientID)
	if err != nil {
		return nil, fmt.Errorf("create auth request: client: %w", err)
	}
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	if c.Public && req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required for public clients: send code_challenge with code_challenge_method=S256")
	}
	now := s.now()
	ar := store.AuthRequest{
		ID:                  randomID(16),
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		State:               req.State,
		Nonce:               req.Nonce,
		Scopes:              req.Scopes,
		ResponseType:        string(req.ResponseType),
		ResponseMode:        string(req.ResponseMode),
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt:              req.Prompt,
		LoginHint:           req.LoginHint,
		ACRValues:           req.ACRValues,
		CreatedAt:           now,
		ExpiresAt:           now.Add(s.lifetimes.AuthRequest),
	}
	if req.MaxAge != nil {
		d := time.Duration(*req.MaxAge) * time.Second
		ar.MaxAge = &d
	}
	for _, t := range req.UILocales {
		ar.UILocales = append(ar.UILocales, t.String())
	}
	if err := s.store.CreateAuthRequest(ctx, ar); err != nil {
		return nil, fmt.Errorf("create auth request: %w", err)
	}
	return &authRequest{AuthRequest: ar}, nil
}

// AuthRequestByID loads a live (unexpired) request.
func (s *Storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	ar, err := s.store.GetAuthRequest(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("auth request %s: %w", id, err)
	}
	if s.now().After(ar.ExpiresAt) {
		return nil, errors.New("auth request expired")
	}
	return &authRequest{AuthRequest: ar}, nil
}

// AuthRequestByCode loads the request a code was issued for. A code presented again after it
// was exchanged revokes every token issued from it (RFC 6749 section 4.1.2).
func (s *Storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	h := hashToken(code)
	c, err := s.store.GetAuthCode(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("auth code: %w", err)
	}
	if c.UsedAt != nil {
		s.revokeReplayedCode(ctx, c)
		return nil, errors.New("authorization code already used; the tokens issued from it are revoked")
	}
	if s.now().After(c.ExpiresAt) {
		return nil, errors.New("authorization code expired")
	}
	ar, err := s.store.GetAuthRequest(ctx, c.AuthRequestID)
	if err != nil {
		return nil, fmt.Errorf("auth code: request: %w", err)
	}
	return &authRequest{AuthRequest: ar, codeHash: h}, nil
}

func (s *Storage) revokeReplayedCode(ctx context.Context, c store.AuthCode) {
	if c.GrantID == "" {
		return
	}
	if err := s.store.RevokeGrant(ctx, c.GrantID, s.now()); err != nil {
		s.log.ErrorContext(ctx, "revoke grant of replayed code", "grant", c.GrantID, "err", err)
		return
	}
	s.log.WarnContext(ctx, "authorization code replayed: grant revoked", "grant", c.GrantID)
}

// SaveAuthCode records the code (hashed) for the request.
func (s *Storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.store.CreateAuthCode(ctx, store.AuthCode{CodeHash: hashToken(code), AuthRequestID: id, ExpiresAt: s.now().Add(s.lifetimes.Code)})
}

// DeleteAuthRequest deletes the request once its code is exchanged. The code record stays (until
// garbage collection) so that a replay is still recognised.
func (s *Storage) DeleteAuthRequest(ctx context.Context, id string) error {
	if err := s.store.DeleteAuthRequest(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// grantFromCode creates the grant for a code exchange, marking the code used atomically.
func (s *Storage) grantFromCode(ctx context.Context, ar *authRequest) (store.Grant, error) {
	now := s.now()
	g := store.Grant{
		ID: randomID(16), ClientID: ar.ClientID, UserID: ar.UserID, SessionID: ar.SessionID,
		Scopes: ar.Scopes, Audience: ar.GetAudience(), AuthTime: ar.AuthTime, AMR: ar.AMR, ACR: ar.ACR, CreatedAt: now,
	}
	if ar.codeHash == "" {
		return store.Grant{}, errors.New("token request without an authorization code")
	}
	if prev, err := s.store.UseAuthCode(ctx, ar.codeHash, g.ID, now); err != nil {
		if errors.Is(err, store.ErrAlreadyUsed) {
			s.revokeReplayedCode(ctx, prev)
			return store.Grant{}, errors.New("authorization code already used")
		}
		return store.Grant{}, fmt.Errorf("use code: %w", err)
	}
	if err := s.store.CreateGrant(ctx, g); err != nil {
		return store.Grant{}, fmt.Errorf("create grant: %w", err)
	}
	return g, nil
}

func (s *Storage) newAccessToken(ctx context.Context, g store.Grant, scopes []string) (string, time.Time, error) {
	now := s.now()
	t := store.AccessToken{
		ID: "at_" + randomID(16), GrantID: g.ID, ClientID: g.ClientID, UserID: g.UserID,
		Scopes: scopes, Audience: g.Audience, CreatedAt: now, ExpiresAt: now.Add(s.lifetimes.AccessToken),
	}
	if err := s.store.CreateAccessToken(ctx, t); err != nil {
		return "", time.Time{}, fmt.Errorf("create access token: %w", err)
	}
	return t.ID, t.ExpiresAt, nil
}

// CreateAccessToken issues an access token for a code exchange without offline_access.
func (s *Storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	ar, ok := req.(*authRequest)
	if !ok {
		return "", time.Time{}, fmt.Errorf("unsupported token request %T", req)
	}
	g, err := s.grantFromCode(ctx, ar)
	if err != nil {
		return "", time.Time{}, err
	}
	return s.newAccessToken(ctx, g, ar.Scopes)
}

// CreateAccessAndRefreshTokens issues tokens for a code exchange or rotates a refresh token:
// the presented token is marked used and a new one issued in the same grant. Presenting a used
// refresh token revokes the whole grant.
func (s *Storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	now := s.now()
	var (
		g      store.Grant
		scopes []string
		rt     store.RefreshToken
	)
	switch r := req.(type) {
	case *authRequest:
		var err error
		if g, err = s.grantFromCode(ctx, r); err != nil {
			return "", "", time.Time{}, err
		}
		scopes = r.Scopes
	case *refreshRequest:
		g, scopes = r.grant, r.scopes
	default:
		return "", "", time.Time{}, fmt.Errorf("unsupported token request %T", req)
	}
	value := randomID(32)
	rt = store.RefreshToken{
		TokenHash: hashToken(value), GrantID: g.ID, ClientID: g.ClientID, UserID: g.UserID,
		Scopes: scopes, Audience: g.Audience, AuthTime: g.AuthTime, AMR: g.AMR, ACR: g.ACR,
		CreatedAt: now, ExpiresAt: now.Add(s.lifetimes.RefreshToken),
	}
	if current == "" {
		if err := s.store.CreateRefreshToken(ctx, rt); err != nil {
			return "", "", time.Time{}, fmt.Errorf("create refresh token: %w", err)
		}
	} else if old, err := s.store.RotateRefreshToken(ctx, hashToken(current), rt, now); err != nil {
		if errors.Is(err, store.ErrAlreadyUsed) {
			s.revokeReusedRefresh(ctx, old)
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used; the grant is revoked")
		}
		return "", "", time.Time{}, fmt.Errorf("rotate refresh token: %w", err)
	}
	id, exp, err := s.newAccessToken(ctx, g, scopes)
	if err != nil {
		return "", "", time.Time{}, err
	}
	return id, value, exp, nil
}

func (s *Storage) revokeReusedRefresh(ctx context.Context, t store.RefreshToken) {
	if err := s.store.RevokeGrant(ctx, t.GrantID, s.now()); err != nil {
		s.log.ErrorContext(ctx, "revoke grant of reused refresh token", "grant", t.GrantID, "err", err)
		return
	}
	s.log.WarnContext(ctx, "refresh token reused: grant revoked", "grant", t.GrantID)
}

// TokenRequestByRefreshToken loads a live refresh token. A used one means reuse: the grant is
// revoked.
func (s *Storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	rt, err := s.store.GetRefreshToken(ctx, hashToken(token))
	if err != nil {
		return nil, fmt.Errorf("refresh token: %w", err)
	}
	if rt.UsedAt != nil {
		s.revokeReusedRefresh(ctx, rt)
		return nil, errors.New("refresh token already used; the grant is revoked")
	}
	if rt.RevokedAt != nil || s.now().After(rt.ExpiresAt) {
		return nil, errors.New("refresh token revoked or expired")
	}
	g, err := s.store.GetGrant(ctx, rt.GrantID)
	if err != nil {
		return nil, fmt.Errorf("refresh token grant: %w", err)
	}
	if g.RevokedAt != nil {
		return nil, errors.New("grant revoked")
	}
	return &refreshRequest{token: rt, grant: g, scopes: rt.Scopes}, nil
}

// TerminateSession ends the user's browser sessions (end_session).
func (s *Storage) TerminateSession(ctx context.Context, userID, _ string) error {
	if _, err := s.store.RevokeUserSessions(ctx, userID, s.now()); err != nil {
		return fmt.Errorf("terminate session: %w", err)
	}
	return nil
}

// RevokeToken revokes an access token (by id) or a refresh token (and with it its grant).
func (s *Storage) RevokeToken(ctx context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	now := s.now()
	if strings.HasPrefix(tokenOrID, refreshIDPrefix) {
		rt, err := s.store.GetRefreshToken(ctx, strings.TrimPrefix(tokenOrID, refreshIDPrefix))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		if rt.ClientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		if err := s.store.RevokeGrant(ctx, rt.GrantID, now); err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		return nil
	}
	at, err := s.store.GetAccessToken(ctx, tokenOrID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // RFC 7009: an invalid token is not an error
	} else if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	if at.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	if err := s.store.RevokeAccessToken(ctx, at.ID, now); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// GetRefreshTokenInfo maps a refresh token to its user and an internal id for revocation.
func (s *Storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	rt, err := s.store.GetRefreshToken(ctx, hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return "", "", op.ErrInvalidRefreshToken
	} else if err != nil {
		return "", "", err
	}
	return rt.UserID, refreshIDPrefix + rt.TokenHash, nil
}

type ctxKey int

const clientIDKey ctxKey = 1

// withClientID records the client a token request comes from, so that SigningKey can sign its
// ID token with the client's chosen algorithm.
func withClientID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, clientIDKey, id)
}

// SigningKey returns the active key for the requesting client's algorithm (RS256 by default).
func (s *Storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	alg := AlgRS256
	if id, _ := ctx.Value(clientIDKey).(string); id != "" {
		if c, err := s.store.GetClient(ctx, id); err == nil && c.IDTokenSigningAlg == AlgES256 {
			alg = AlgES256
		}
	}
	return s.signingKeyFor(ctx, alg)
}

// SignatureAlgorithms lists the algorithms published in discovery.
func (s *Storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256, jose.ES256}, nil
}

// KeySet returns every published public key, retired ones included until they expire.
func (s *Storage) KeySet(ctx context.Context) ([]op.Key, error) {
	keys, err := s.publishedKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out, nil
}

// --- op.OPStorage ---

// GetClientByClientID loads a client.
func (s *Storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.store.GetClient(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("client %q: %w", id, err)
	}
	_, pre := preauthFrom(ctx, id)
	return &client{Client: c, loginURL: s.loginURL, devMode: s.devMode, idTTL: s.lifetimes.IDToken, preauthenticated: pre}, nil
}

// AuthorizeClientIDSecret checks a client secret in constant time. On a request whose client
// the provider authenticated already (authenticateClient), the secret is that request's ticket.
func (s *Storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	if pa, ok := preauthFrom(ctx, id); ok {
		if subtle.ConstantTimeCompare([]byte(pa.ticket), []byte(secret)) == 1 {
			return nil
		}
		return errors.New("invalid client ticket")
	}
	c, err := s.store.GetClient(ctx, id)
	if err != nil {
		return fmt.Errorf("client %q: %w", id, err)
	}
	if c.Public || c.SecretHash == "" || subtle.ConstantTimeCompare([]byte(hashToken(secret)), []byte(c.SecretHash)) != 1 {
		return errors.New("invalid client secret")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in zitadel/oidc; SetUserinfoFromRequest does the work.
func (s *Storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

type sessionRequest interface {
	sessionID() string
	acr() string
}

// SetUserinfoFromRequest fills the ID token's user claims (for clients that want them there)
// and adds sid, plus acr on refresh (zitadel sets it only for code exchanges).
func (s *Storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.setUserinfo(ctx, info, req.GetSubject(), scopes); err != nil {
		return err
	}
	if sr, ok := req.(sessionRequest); ok {
		if sid := sr.sessionID(); sid != "" {
			info.AppendClaims("sid", sid)
		}
		if _, isRefresh := req.(*refreshRequest); isRefresh && sr.acr() != "" {
			info.AppendClaims("acr", sr.acr())
		}
	}
	return nil
}

func (s *Storage) setUserinfo(ctx context.Context, info *oidc.UserInfo, userID string, scopes []string) error {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return fmt.Errorf("userinfo: %w", err)
	}
	info.Subject = u.ID
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeProfile:
			info.PreferredUsername = u.Username
			info.Name = u.DisplayName
			info.UpdatedAt = oidc.FromTime(u.UpdatedAt)
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = oidc.Bool(u.EmailVerified)
			// Always present, false unless an operator verified the address: zitadel's struct
			// omits a false email_verified, and relying parties such as oauth2-proxy read a
			// missing one as true.
			info.AppendClaims("email_verified", u.EmailVerified)
		}
	}
	return nil
}

// liveAccessToken loads an access token that is neither revoked, expired nor in a revoked grant.
func (s *Storage) liveAccessToken(ctx context.Context, id string) (store.AccessToken, error) {
	at, err := s.store.GetAccessToken(ctx, id)
	if err != nil {
		return at, fmt.Errorf("access token: %w", err)
	}
	if at.RevokedAt != nil || s.now().After(at.ExpiresAt) {
		return at, errors.New("access token revoked or expired")
	}
	g, err := s.store.GetGrant(ctx, at.GrantID)
	if err != nil {
		return at, fmt.Errorf("access token grant: %w", err)
	}
	if g.RevokedAt != nil {
		return at, errors.New("access token grant revoked")
	}
	return at, nil
}

// SetUserinfoFromToken answers /userinfo for a live access token.
func (s *Storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	at, err := s.liveAccessToken(ctx, tokenID)
	if err != nil {
		return err
	}
	if at.UserID != subject {
		return errors.New("access token subject mismatch")
	}
	return s.setUserinfo(ctx, info, at.UserID, at.Scopes)
}

// SetIntrospectionFromToken answers introspection for a live access token, only to the client
// the token was issued to or to a client registered as a resource server for that client
// (store.Client.ResourceServerFor); anybody else learns only active=false.
func (s *Storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, callerID string) error {
	at, err := s.liveAccessToken(ctx, tokenID)
	if err != nil {
		return err
	}
	if at.UserID != subject {
		return errors.New("access token subject mismatch")
	}
	if at.ClientID != callerID {
		caller, err := s.store.GetClient(ctx, callerID)
		if err != nil {
			return fmt.Errorf("introspection caller: %w", err)
		}
		if !slices.Contains(caller.ResourceServerFor, at.ClientID) {
			return fmt.Errorf("client %q may not introspect tokens of client %q", callerID, at.ClientID)
		}
	}
	info := new(oidc.UserInfo)
	if err := s.setUserinfo(ctx, info, at.UserID, at.Scopes); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Scope = at.Scopes
	resp.ClientID = at.ClientID
	resp.Audience = at.Audience
	resp.Expiration = oidc.FromTime(at.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(at.CreatedAt)
	resp.TokenType = oidc.BearerToken
	return nil
}

// GetPrivateClaimsFromScopes adds no private claims.
func (s *Storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID returns a client's public key for private_key_jwt.
func (s *Storage) GetKeyByIDAndClientID(ctx context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	c, err := s.store.GetClient(ctx, clientID)
	if err != nil {
		return nil, fmt.Errorf("client %q: %w", clientID, err)
	}
	if len(c.JWKS) == 0 {
		return nil, fmt.Errorf("client %q has no registered keys", clientID)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(c.JWKS, &set); err != nil {
		return nil, fmt.Errorf("client %q keys: %w", clientID, err)
	}
	for _, k := range set.Keys {
		if keyID == "" || k.KeyID == keyID {
			if !k.IsPublic() {
				return nil, fmt.Errorf("client %q key %q is not a public key", clientID, k.KeyID)
			}
			k := k
			return &k, nil
		}
	}
	return nil, fmt.Errorf("client %q: no key %q", clientID, keyID)
}

// ValidateJWTProfileScopes keeps the requested scopes.
func (s *Storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

// Health reports whether the store answers.
func (s *Storage) Health(ctx context.Context) error {
	_, err := s.store.ListSigningKeys(ctx)
	return err
}
