package oidc

import (
	"net/url"
	"slices"
	"strings"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/lanyard/lanyard/directory"
)

// client adapts a directory.Client to op.Client.
type client struct {
	c        directory.Client
	lifetime time.Duration // ID token lifetime
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }

// ApplicationType: confidential clients are web applications; a public
// client is native when it redirects to loopback or a private-use scheme,
// and a browser application otherwise.
func (c *client) ApplicationType() op.ApplicationType {
	if !c.c.Public {
		return op.ApplicationTypeWeb
	}
	for _, r := range c.c.RedirectURIs {
		if u, err := url.Parse(r); err == nil && (u.Scheme != "https" || isLoopback(u.Hostname())) {
			return op.ApplicationTypeNative
		}
	}
	return op.ApplicationTypeUserAgent
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1" || strings.HasPrefix(host, "127.")
}

func (c *client) AuthMethod() zoidc.AuthMethod {
	if c.c.Public {
		return zoidc.AuthMethodNone
	}
	return zoidc.AuthMethodBasic
}

func (c *client) ResponseTypes() []zoidc.ResponseType {
	return []zoidc.ResponseType{zoidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []zoidc.GrantType {
	g := []zoidc.GrantType{zoidc.GrantTypeCode, zoidc.GrantTypeRefreshToken}
	if !c.c.Public {
		g = append(g, zoidc.GrantTypeClientCredentials)
	}
	return g
}

// LoginURL is where the provider sends the browser to sign in.
func (c *client) LoginURL(id string) string { return loginPath + "?id=" + url.QueryEscape(id) }

func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return c.lifetime }
func (c *client) DevMode() bool                       { return false }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed allows Lanyard's own scopes beyond the standard ones.
func (c *client) IsScopeAllowed(scope string) bool { return slices.Contains(extraScopes, scope) }

// IDTokenUserinfoClaimsAssertion puts the profile claims in the ID token,
// as relying parties of health applications expect them there.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
