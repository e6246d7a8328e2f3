package oidc

import (
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/lanyard/lanyard/directory"
)

// authRequest is an authorization request while the user signs in; it
// lives in the ephemeral store as JSON, so any instance can finish it.
type authRequest struct {
	ID                  string    `json:"id"`
	CreatedAt           time.Time `json:"created_at"`
	ClientID            string    `json:"client_id"`
	RedirectURI         string    `json:"redirect_uri"`
	State               string    `json:"state,omitempty"`
	Nonce               string    `json:"nonce,omitempty"`
	Scopes              []string  `json:"scopes"`
	ResponseType        string    `json:"response_type"`
	ResponseMode        string    `json:"response_mode,omitempty"`
	CodeChallenge       string    `json:"code_challenge,omitempty"`
	CodeChallengeMethod string    `json:"code_challenge_method,omitempty"`
	Prompt              []string  `json:"prompt,omitempty"`
	MaxAge              *uint     `json:"max_age,omitempty"`
	ACRValues           []string  `json:"acr_values,omitempty"`
	HintUserID          string    `json:"hint_user_id,omitempty"`

	// Set when the user has signed in.
	UserID    string    `json:"user_id,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	AuthTime  time.Time `json:"auth_time"`
	AMR       []string  `json:"amr,omitempty"`
	ACR       string    `json:"acr,omitempty"`
	IsDone    bool      `json:"done"`
}

func (a *authRequest) GetID() string         { return a.ID }
func (a *authRequest) GetACR() string        { return a.ACR }
func (a *authRequest) GetAMR() []string      { return a.AMR }
func (a *authRequest) GetAudience() []string { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time {
	return a.AuthTime
}
func (a *authRequest) GetClientID() string { return a.ClientID }
func (a *authRequest) GetCodeChallenge() *zoidc.CodeChallenge {
	if a.CodeChallenge == "" {
		return nil
	}
	return &zoidc.CodeChallenge{Challenge: a.CodeChallenge, Method: zoidc.CodeChallengeMethod(a.CodeChallengeMethod)}
}
func (a *authRequest) GetNonce() string       { return a.Nonce }
func (a *authRequest) GetRedirectURI() string { return a.RedirectURI }
func (a *authRequest) GetResponseType() zoidc.ResponseType {
	return zoidc.ResponseType(a.ResponseType)
}
func (a *authRequest) GetResponseMode() zoidc.ResponseMode {
	return zoidc.ResponseMode(a.ResponseMode)
}
func (a *authRequest) GetScopes() []string { return a.Scopes }
func (a *authRequest) GetState() string    { return a.State }
func (a *authRequest) GetSubject() string  { return a.UserID }
func (a *authRequest) Done() bool          { return a.IsDone }

var _ op.AuthRequest = (*authRequest)(nil)

// refreshRequest is a refresh-token grant under way.
type refreshRequest struct {
	token  directory.RefreshToken
	scopes []string
}

func (r *refreshRequest) GetAMR() []string            { return r.token.AMR }
func (r *refreshRequest) GetAudience() []string       { return r.token.Audience }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.token.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.token.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.token.UserID }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

// clientCredentialsRequest is a client_credentials grant: the client acts
// for itself.
type clientCredentialsRequest struct {
	clientID string
	scopes   []string
}

func (c *clientCredentialsRequest) GetSubject() string    { return c.clientID }
func (c *clientCredentialsRequest) GetAudience() []string { return []string{c.clientID} }
func (c *clientCredentialsRequest) GetScopes() []string   { return c.scopes }

// accessToken is the server-side record of an opaque access token; deleting
// it revokes the token everywhere.
type accessToken struct {
	ID        string    `json:"id"`
	Subject   string    `json:"sub"`
	ClientID  string    `json:"client_id"`
	Audience  []string  `json:"aud"`
	Scopes    []string  `json:"scopes"`
	Expires   time.Time `json:"exp"`
	IssuedAt  time.Time `json:"iat"`
	FamilyID  string    `json:"family_id,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
}

// grant remembers what a code was exchanged for, so that a replayed code
// revokes it (RFC 6749 section 4.1.2).
type grant struct {
	AccessTokenIDs []string `json:"access_token_ids"`
	FamilyID       string   `json:"family_id,omitempty"`
}
