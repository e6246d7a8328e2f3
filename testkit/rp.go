package testkit

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/url"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// RP is a real OpenID Connect relying party (go-oidc and x/oauth2) for a
// client registered on the server.
type RP struct {
	t        testing.TB
	Ctx      context.Context // carries the HTTP client that trusts the server
	Provider *gooidc.Provider
	Verifier *gooidc.IDTokenVerifier
	OAuth2   oauth2.Config
}

// RP discovers the server as a relying party would and returns one for
// the client. An empty secret makes a public client.
func (s *Server) RP(t testing.TB, clientID, secret, redirectURI string, scopes ...string) *RP {
	t.Helper()
	return NewRP(t, s.URL, s.Client(t), clientID, secret, redirectURI, scopes...)
}

// NewRP is a relying party of the provider at issuer, reached with hc.
func NewRP(t testing.TB, issuer string, hc *http.Client, clientID, secret, redirectURI string, scopes ...string) *RP {
	t.Helper()
	ctx := gooidc.ClientContext(t.Context(), hc)
	p, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if len(scopes) == 0 {
		scopes = []string{gooidc.ScopeOpenID, "profile", "email", gooidc.ScopeOfflineAccess}
	}
	return &RP{
		t: t, Ctx: ctx, Provider: p,
		Verifier: p.Verifier(&gooidc.Config{ClientID: clientID}),
		OAuth2: oauth2.Config{
			ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: redirectURI, Scopes: scopes,
		},
	}
}

// AuthRequest is an authorization request the RP made, with what it must
// remember to finish it.
type AuthRequest struct {
	URL      string
	State    string
	Nonce    string
	Verifier string
}

// AuthURL makes an authorization request with state, nonce and PKCE S256;
// extra adds parameters (prompt, max_age…).
func (rp *RP) AuthURL(extra ...oauth2.AuthCodeOption) AuthRequest {
	ar := AuthRequest{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{gooidc.Nonce(ar.Nonce), oauth2.S256ChallengeOption(ar.Verifier)}, extra...)
	ar.URL = rp.OAuth2.AuthCodeURL(ar.State, opts...)
	return ar
}

// Callback checks the redirect the browser was sent to and returns the code.
func (rp *RP) Callback(ar AuthRequest, loc *url.URL) string {
	rp.t.Helper()
	if loc == nil {
		rp.t.Fatal("the browser was not sent back to the relying party")
	}
	q := loc.Query()
	if e := q.Get("error"); e != "" {
		rp.t.Fatalf("authorization error %s: %s", e, q.Get("error_description"))
	}
	if got := q.Get("state"); got != ar.State {
		rp.t.Fatalf("state = %q, want %q", got, ar.State)
	}
	if q.Get("code") == "" {
		rp.t.Fatalf("no code in %s", loc)
	}
	return q.Get("code")
}

// Exchange redeems a code with the request's PKCE verifier.
func (rp *RP) Exchange(ar AuthRequest, code string) (*oauth2.Token, error) {
	return rp.OAuth2.Exchange(rp.Ctx, code, oauth2.VerifierOption(ar.Verifier))
}

// VerifyIDToken verifies the token response's ID token (signature, issuer,
// audience, expiry) and its nonce.
func (rp *RP) VerifyIDToken(ar AuthRequest, tok *oauth2.Token) *gooidc.IDToken {
	rp.t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		rp.t.Fatal("token response has no id_token")
	}
	idt, err := rp.Verifier.Verify(rp.Ctx, raw)
	if err != nil {
		rp.t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != ar.Nonce {
		rp.t.Errorf("nonce = %q, want %q", idt.Nonce, ar.Nonce)
	}
	return idt
}
