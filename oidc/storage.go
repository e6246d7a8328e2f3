package oidc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/lanyard/lanyard/authn"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
)

// Keys in the ephemeral store.
const (
	keyAuthRequest = "oidc:authreq:"
	keyCode        = "oidc:code:"     // + HashToken(code) -> auth request ID
	keyUsedCode    = "oidc:usedcode:" // + HashToken(code) -> auth request ID, after redemption
	keyGrant       = "oidc:grant:"    // + auth request ID -> grant
	keyAccessToken = "oidc:at:"       // + token ID -> accessToken
)

// storage is Lanyard's op.Storage: clients, users and refresh tokens from
// the directory; auth requests, codes and access tokens in the ephemeral
// store, so every instance can serve every step.
type storage struct {
	dir      directory.Store
	eph      ephemeral.Store
	keys     *keyManager
	sessions Sessions
	lt       Lifetimes
	now      func() time.Time
	log      *slog.Logger
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.ClientCredentialsStorage       = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*storage)(nil)
)

// errNotFound makes the provider answer "not found" rather than 500.
type errNotFound struct{ what string }

func (e errNotFound) Error() string { return e.what + " not found" }
func (errNotFound) IsNotFound()     {}

func (s *storage) audit(ctx context.Context, action, actor, target, outcome string, detail map[string]string) {
	if _, err := s.dir.AppendAudit(ctx, directory.AuditEvent{
		Time: s.now(), Actor: actor, Action: action, Target: target, Outcome: outcome, Detail: detail,
	}); err != nil {
		s.log.ErrorContext(ctx, "audit append failed", "action", action, "reason", err.Error())
	}
}

func (s *storage) putJSON(ctx context.Context, key string, v any, expires time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.eph.Put(ctx, key, b, expires, s.now())
}

func (s *storage) getJSON(ctx context.Context, key string, v any) error {
	b, err := s.eph.Get(ctx, key, s.now())
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// CreateAuthRequest stores a validated authorization request. PKCE must use
// S256 ("plain" is refused), and public clients must use it.
func (s *storage) CreateAuthRequest(ctx context.Context, req *zoidc.AuthRequest, hintUserID string) (op.AuthRequest, error) {
	c, err := s.client(ctx, req.ClientID)
	if err != nil {
		return nil, zoidc.ErrInvalidClient().WithParent(err)
	}
	if req.CodeChallenge != "" && req.CodeChallengeMethod != zoidc.CodeChallengeMethodS256 {
		return nil, zoidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256; plain is not accepted")
	}
	if c.Public && req.CodeChallenge == "" {
		return nil, zoidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge with S256) is required for public clients")
	}
	now := s.now()
	ar := &authRequest{
		ID: directory.NewID(), CreatedAt: now, ClientID: req.ClientID, RedirectURI: req.RedirectURI,
		State: req.State, Nonce: req.Nonce, Scopes: req.Scopes, ResponseType: string(req.ResponseType),
		ResponseMode: string(req.ResponseMode), CodeChallenge: req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod), Prompt: req.Prompt, MaxAge: req.MaxAge,
		ACRValues: req.ACRValues, HintUserID: hintUserID,
	}
	if err := s.putJSON(ctx, keyAuthRequest+ar.ID, ar, now.Add(s.lt.AuthRequest)); errors.Is(err, ephemeral.ErrUnavailable) {
		// RFC 6749 4.1.2.1: the application may try again later.
		return nil, (&zoidc.Error{ErrorType: "temporarily_unavailable", Description: "try again in a few minutes"}).WithParent(err)
	} else if err != nil {
		return nil, fmt.Errorf("save auth request: %w", err)
	}
	return ar, nil
}

func (s *storage) authRequest(ctx context.Context, id string) (*authRequest, error) {
	var ar authRequest
	if err := s.getJSON(ctx, keyAuthRequest+id, &ar); errors.Is(err, ephemeral.ErrNotFound) {
		return nil, errNotFound{"auth request"}
	} else if err != nil {
		return nil, err
	}
	return &ar, nil
}

func (s *storage) saveAuthRequest(ctx context.Context, ar *authRequest) error {
	return s.putJSON(ctx, keyAuthRequest+ar.ID, ar, ar.CreatedAt.Add(s.lt.AuthRequest))
}

func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	return s.authRequest(ctx, id)
}

func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.eph.Put(ctx, keyCode+directory.HashToken(code), []byte(id), s.now().Add(s.lt.Code), s.now())
}

// AuthRequestByCode redeems a code: it is taken atomically, so it works
// once across every instance. A code presented again revokes the tokens
// its first use obtained.
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	h := directory.HashToken(code)
	id, err := s.eph.Take(ctx, keyCode+h, s.now())
	if errors.Is(err, ephemeral.ErrNotFound) {
		if used, err := s.eph.Get(ctx, keyUsedCode+h, s.now()); err == nil {
			s.revokeGrant(ctx, string(used))
			return nil, zoidc.ErrInvalidGrant().WithDescription("code already used; the tokens it obtained are revoked")
		}
		return nil, errNotFound{"code"}
	} else if err != nil {
		return nil, err
	}
	if err := s.eph.Put(ctx, keyUsedCode+h, id, s.now().Add(s.lt.RefreshToken), s.now()); err != nil {
		return nil, err
	}
	return s.authRequest(ctx, string(id))
}

// revokeGrant revokes what the auth request's code obtained.
func (s *storage) revokeGrant(ctx context.Context, authReqID string) {
	var g grant
	if err := s.getJSON(ctx, keyGrant+authReqID, &g); err != nil {
		s.audit(ctx, "oidc.code_replay", "", authReqID, directory.OutcomeDenied, nil)
		return
	}
	for _, id := range g.AccessTokenIDs {
		s.eph.Delete(ctx, keyAccessToken+id)
	}
	n := 0
	if g.FamilyID != "" {
		n, _ = s.dir.RevokeRefreshFamily(ctx, g.FamilyID, s.now())
	}
	s.audit(ctx, "oidc.code_replay", "", authReqID, directory.OutcomeDenied, map[string]string{
		"access_tokens_revoked": fmt.Sprint(len(g.AccessTokenIDs)), "refresh_tokens_revoked": fmt.Sprint(n),
	})
}

func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.eph.Delete(ctx, keyAuthRequest+id)
}

func (s *storage) newAccessToken(ctx context.Context, req op.TokenRequest, clientID, familyID, sessionID string) (string, time.Time, error) {
	now := s.now()
	at := accessToken{
		ID: directory.NewID(), Subject: req.GetSubject(), ClientID: clientID, Audience: req.GetAudience(),
		Scopes: req.GetScopes(), IssuedAt: now, Expires: now.Add(s.lt.AccessToken), FamilyID: familyID, SessionID: sessionID,
	}
	if err := s.putJSON(ctx, keyAccessToken+at.ID, at, at.Expires); err != nil {
		return "", time.Time{}, fmt.Errorf("save access token: %w", err)
	}
	return at.ID, at.Expires, nil
}

func (s *storage) recordGrant(ctx context.Context, ar *authRequest, tokenID, familyID string) error {
	g := grant{AccessTokenIDs: []string{tokenID}, FamilyID: familyID}
	return s.putJSON(ctx, keyGrant+ar.ID, g, s.now().Add(s.lt.RefreshToken))
}

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	switch r := req.(type) {
	case *authRequest:
		id, exp, err := s.newAccessToken(ctx, r, r.ClientID, "", r.SessionID)
		if err == nil {
			err = s.recordGrant(ctx, r, id, "")
		}
		return id, exp, err
	case *clientCredentialsRequest:
		return s.newAccessToken(ctx, r, r.clientID, "", "")
	}
	return "", time.Time{}, fmt.Errorf("unsupported token request %T", req)
}

func newRefreshValue() string { return rand.Text() + rand.Text() }

// CreateAccessAndRefreshTokens issues an access token and a refresh token:
// a new family for a code, or the next token of the family for a refresh,
// rotating the presented one.
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	now := s.now()
	value := newRefreshValue()
	switch r := req.(type) {
	case *authRequest:
		rt := directory.RefreshToken{
			ID: directory.NewID(), TokenHash: directory.HashToken(value), FamilyID: directory.NewID(),
			ClientID: r.ClientID, UserID: r.UserID, SessionID: r.SessionID, Scopes: r.Scopes, Audience: r.GetAudience(),
			AMR: r.AMR, ACR: r.ACR, AuthTime: r.AuthTime, CreatedAt: now, ExpiresAt: now.Add(s.lt.RefreshToken),
		}
		if err := s.dir.CreateRefreshToken(ctx, rt); err != nil {
			return "", "", time.Time{}, fmt.Errorf("save refresh token: %w", err)
		}
		id, exp, err := s.newAccessToken(ctx, r, r.ClientID, rt.FamilyID, r.SessionID)
		if err == nil {
			err = s.recordGrant(ctx, r, id, rt.FamilyID)
		}
		return id, value, exp, err
	case *refreshRequest:
		old := r.token
		next := old
		next.ID, next.TokenHash, next.Scopes = directory.NewID(), directory.HashToken(value), r.scopes
		next.CreatedAt, next.ExpiresAt, next.RotatedAt, next.RevokedAt = now, now.Add(s.lt.RefreshToken), time.Time{}, time.Time{}
		id, exp, err := s.newAccessToken(ctx, r, old.ClientID, old.FamilyID, old.SessionID)
		if err != nil {
			return "", "", time.Time{}, err
		}
		rotate := func(ctx context.Context) error {
			err := s.dir.RotateRefreshToken(ctx, old.ID, next, now)
			if errors.Is(err, directory.ErrConflict) {
				// Lost a race with another use of the same token: that is reuse.
				s.reuse(ctx, old)
				return zoidc.ErrInvalidGrant().WithDescription("refresh token already used")
			} else if err != nil {
				return fmt.Errorf("rotate refresh token: %w", err)
			}
			return nil
		}
		undo := func(ctx context.Context) { s.eph.Delete(ctx, keyAccessToken+id) }
		// The rotation commits while zitadel signs the ID token (see
		// commit.go); the response waits for it.
		if err := commitAsync(ctx, rotate, undo); err != nil {
			return "", "", time.Time{}, err
		}
		return id, value, exp, nil
	}
	return "", "", time.Time{}, fmt.Errorf("unsupported token request %T", req)
}

// reuse handles a rotated refresh token presented again: someone holds a
// copy, so the whole family is revoked and the event audited.
func (s *storage) reuse(ctx context.Context, rt directory.RefreshToken) {
	n, err := s.dir.RevokeRefreshFamily(ctx, rt.FamilyID, s.now())
	if err != nil {
		s.log.ErrorContext(ctx, "revoke refresh family", "user_id", rt.UserID, "client_id", rt.ClientID, "reason", err.Error())
	}
	s.log.WarnContext(ctx, "refresh token reuse: family revoked", "user_id", rt.UserID, "client_id", rt.ClientID, "outcome", "revoked")
	s.audit(ctx, "oidc.refresh_token_reuse", rt.ClientID, rt.UserID, directory.OutcomeDenied, map[string]string{
		"client_id": rt.ClientID, "family": rt.FamilyID, "revoked": fmt.Sprint(n),
	})
}

func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	rt, err := s.dir.RefreshTokenByHash(ctx, directory.HashToken(token))
	if errors.Is(err, directory.ErrNotFound) {
		return nil, op.ErrInvalidRefreshToken
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	switch {
	case !rt.RevokedAt.IsZero():
		return nil, zoidc.ErrInvalidGrant().WithDescription("refresh token revoked")
	case !rt.RotatedAt.IsZero():
		s.reuse(ctx, rt)
		return nil, zoidc.ErrInvalidGrant().WithDescription("refresh token already used")
	case !now.Before(rt.ExpiresAt):
		return nil, zoidc.ErrInvalidGrant().WithDescription("refresh token expired")
	}
	u, err := s.dir.User(ctx, rt.UserID)
	if err != nil || u.Status != directory.UserActive {
		s.dir.RevokeRefreshFamily(ctx, rt.FamilyID, now)
		return nil, zoidc.ErrInvalidGrant().WithDescription("user is not active")
	}
	return &refreshRequest{token: rt, scopes: rt.Scopes}, nil
}

func (s *storage) TerminateSession(ctx context.Context, userID, clientID string) error { return nil }

// TerminateSessionFromRequest ends the browser's login session (every
// application's, SSO), revokes the refresh tokens issued from it, and
// sends the browser past the SAML applications of the session (front
// channel) on its way to the post-logout redirect.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	if id := sessionIDFrom(ctx); id != "" {
		sess, ok, err := s.sessions.EndSession(ctx, id)
		if err != nil {
			return "", err
		}
		if ok {
			s.sessionEnded(ctx, sess)
			s.audit(ctx, "session.logout", sess.UserID, sess.UserID, directory.OutcomeSuccess, map[string]string{"client_id": req.ClientID})
			// SAML applications in the session hear of it through the
			// browser before it reaches the post-logout redirect.
			return s.sessions.FrontChannelLogout(ctx, sess, req.RedirectURI), nil
		}
	}
	return req.RedirectURI, nil
}

// sessionEnded revokes the refresh tokens issued from a session that ended.
func (s *storage) sessionEnded(ctx context.Context, sess authn.Session) {
	if _, err := s.dir.RevokeRefreshTokensBySession(ctx, sess.SID, s.now()); err != nil {
		s.log.ErrorContext(ctx, "revoke refresh tokens of ended session", "user_id", sess.UserID, "reason", err.Error())
	}
}

// RevokeToken revokes an access token (by ID) or a refresh token (by value,
// with its whole family), if it was issued to clientID.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *zoidc.Error {
	if userID != "" {
		var at accessToken
		if err := s.getJSON(ctx, keyAccessToken+tokenOrID, &at); err != nil {
			return nil // unknown or expired: nothing to revoke (RFC 7009)
		}
		if at.ClientID != clientID {
			return zoidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		if err := s.eph.Delete(ctx, keyAccessToken+tokenOrID); err != nil {
			return zoidc.ErrServerError().WithParent(err)
		}
		return nil
	}
	rt, err := s.dir.RefreshTokenByHash(ctx, directory.HashToken(tokenOrID))
	if errors.Is(err, directory.ErrNotFound) {
		return nil
	} else if err != nil {
		return zoidc.ErrServerError().WithParent(err)
	}
	if rt.ClientID != clientID {
		return zoidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	if _, err := s.dir.RevokeRefreshFamily(ctx, rt.FamilyID, s.now()); err != nil {
		return zoidc.ErrServerError().WithParent(err)
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	rt, err := s.dir.RefreshTokenByHash(ctx, directory.HashToken(token))
	if err != nil {
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.UserID, rt.ID, nil
}

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	return s.keys.SigningKey(ctx)
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) { return s.keys.KeySet(ctx) }

// clientMemo keeps the client a request has loaded: zitadel asks for the
// client two or three times in one token request (authentication, then the
// grant's checks), and each would otherwise be a database read. It lives
// only as long as the request, so a change to the client applies to the
// next one.
type clientMemo struct {
	id string
	c  directory.Client
}

type clientMemoKeyType struct{}

var clientMemoKey clientMemoKeyType

// client returns the directory's client id, once per request.
func (s *storage) client(ctx context.Context, id string) (directory.Client, error) {
	m, _ := ctx.Value(clientMemoKey).(*clientMemo)
	if m != nil && m.id == id && id != "" {
		return m.c, nil
	}
	c, err := s.dir.Client(ctx, id)
	if err == nil && m != nil {
		m.id, m.c = id, c
	}
	return c, err
}

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.client(ctx, id)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, errNotFound{"client"}
	} else if err != nil {
		return nil, zoidc.ErrServerError().WithParent(err)
	}
	return &client{c: c, lifetime: s.lt.IDToken}, nil
}

func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	_, err := s.ClientCredentials(ctx, id, secret)
	return err
}

func (s *storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	c, err := s.client(ctx, id)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, errors.New("invalid client credentials")
	} else if err != nil {
		return nil, zoidc.ErrServerError().WithParent(err)
	}
	if !c.VerifySecret(secret) {
		return nil, errors.New("invalid client credentials")
	}
	return &client{c: c, lifetime: s.lt.IDToken}, nil
}

func (s *storage) ClientCredentialsTokenRequest(ctx context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return &clientCredentialsRequest{clientID: id, scopes: slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool {
		return sc == zoidc.ScopeOpenID || sc == zoidc.ScopeOfflineAccess
	})}, nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *zoidc.UserInfo, string, string, []string) error {
	return nil
}

func (s *storage) SetUserinfoFromRequest(ctx context.Context, ui *zoidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(ctx, ui, req.GetSubject(), scopes)
}

// SetUserinfoFromToken answers /userinfo for a live access token.
func (s *storage) SetUserinfoFromToken(ctx context.Context, ui *zoidc.UserInfo, tokenID, subject, origin string) error {
	var at accessToken
	if err := s.getJSON(ctx, keyAccessToken+tokenID, &at); err != nil || at.Subject != subject {
		return errors.New("access token not active")
	}
	if at.Subject == at.ClientID {
		return errors.New("client credentials token has no user")
	}
	return s.setUserinfo(ctx, ui, at.Subject, at.Scopes)
}

// SetIntrospectionFromToken answers introspection (RFC 7662) for a live
// access token, to a client the token is for.
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *zoidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	var at accessToken
	if err := s.getJSON(ctx, keyAccessToken+tokenID, &at); err != nil || at.Subject != subject {
		return errors.New("access token not active")
	}
	if at.ClientID != clientID && !slices.Contains(at.Audience, clientID) {
		return errors.New("token not for this client")
	}
	resp.Active = true
	resp.Scope = at.Scopes
	resp.ClientID = at.ClientID
	resp.Subject = at.Subject
	resp.Audience = at.Audience
	resp.Expiration = zoidc.FromTime(at.Expires)
	resp.IssuedAt = zoidc.FromTime(at.IssuedAt)
	resp.TokenType = zoidc.BearerToken
	if at.Subject != at.ClientID {
		var ui zoidc.UserInfo
		if err := s.setUserinfo(ctx, &ui, at.Subject, at.Scopes); err != nil {
			return err
		}
		resp.SetUserInfo(&ui)
	}
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("private_key_jwt is not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grant is not supported")
}

func (s *storage) Health(ctx context.Context) error {
	if err := s.dir.Ping(ctx); err != nil {
		return err
	}
	return s.eph.Ping(ctx)
}
