package oidc_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/lanyard/lanyard/testkit"
)

func TestSingleSignOnAndLogout(t *testing.T) {
	each(t, func(t *testing.T, opt testkit.Options) {
		f := newFixture(t, opt)
		rp1 := f.s.RP(t, f.clientID, f.secret, redirectURI)
		id2, secret2 := f.newClient(t, "Pharmacy", false)
		rp2 := f.s.RP(t, id2, secret2, redirectURI)
		b := f.s.Browser(t)

		// prompt=none before signing in: login_required, back at the RP.
		ar := rp1.AuthURL(oauth2.SetAuthURLParam("prompt", "none"))
		_, loc := b.Follow(b.Get(ar.URL), f.s.URL)
		if loc == nil || loc.Query().Get("error") != "login_required" || loc.Query().Get("state") != ar.State {
			t.Fatalf("prompt=none without a session: redirected to %v, want error=login_required", loc)
		}

		ar1 := rp1.AuthURL()
		tok1, err := rp1.Exchange(ar1, login(t, f, b, rp1, ar1))
		if err != nil {
			t.Fatal(err)
		}
		idt1 := rp1.VerifyIDToken(ar1, tok1)

		// The second application gets in without a prompt.
		ar2 := rp2.AuthURL()
		p, loc := b.Follow(b.Get(ar2.URL), f.s.URL)
		if loc == nil {
			t.Fatalf("second application was shown a page instead of SSO: %d %s", p.Status, p.URL)
		}
		tok2, err := rp2.Exchange(ar2, rp2.Callback(ar2, loc))
		if err != nil {
			t.Fatal(err)
		}
		if idt2 := rp2.VerifyIDToken(ar2, tok2); idt2.Subject != idt1.Subject || !idt2.IssuedAt.After(idt1.IssuedAt.Add(-1)) {
			t.Errorf("SSO subject %q, want %q", idt2.Subject, idt1.Subject)
		}

		// prompt=none with a session succeeds silently.
		ar3 := rp2.AuthURL(oauth2.SetAuthURLParam("prompt", "none"))
		if _, loc := b.Follow(b.Get(ar3.URL), f.s.URL); loc == nil || loc.Query().Get("code") == "" {
			t.Errorf("prompt=none with a session: %v, want a code", loc)
		}

		// prompt=login and max_age=0 ask for the password again.
		for _, extra := range []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0")} {
			ar := rp1.AuthURL(extra)
			p, loc := b.Follow(b.Get(ar.URL), f.s.URL)
			if loc != nil || !strings.Contains(p.Body, `name="email"`) {
				t.Fatalf("re-authentication request went straight to the RP (%v)", loc)
			}
			p, loc = b.Follow(b.SignIn(p, email, password), f.s.URL)
			tok, err := rp1.Exchange(ar, rp1.Callback(ar, loc))
			if err != nil {
				t.Fatal(err)
			}
			if idt := rp1.VerifyIDToken(ar, tok); idt.Subject != f.userID {
				t.Errorf("re-authenticated subject %q", idt.Subject)
			}
		}

		// RP-initiated logout to a registered URI ends the session everywhere.
		d := discovery(t, rp1)
		endSession := d["end_session_endpoint"].(string)
		bad := b.Get(endSession + "?" + url.Values{"id_token_hint": {tok1.Extra("id_token").(string)}, "post_logout_redirect_uri": {"https://evil.example/"}}.Encode())
		if loc := bad.Header.Get("Location"); strings.HasPrefix(loc, "https://evil.example") {
			t.Errorf("logout redirected to an unregistered URI %q", loc)
		}
		if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Body, "There is a problem with this sign-out link") ||
			!strings.HasPrefix(bad.Header.Get("Content-Type"), "text/html") {
			t.Errorf("unregistered post_logout_redirect_uri: %d %q, want 400 and the sign-out error page: %.300s",
				bad.Status, bad.Header.Get("Content-Type"), bad.Body)
		}
		out := b.Get(endSession + "?" + url.Values{"id_token_hint": {tok1.Extra("id_token").(string)}, "post_logout_redirect_uri": {logoutURI}, "state": {"s1"}}.Encode())
		if loc := out.Header.Get("Location"); !strings.HasPrefix(loc, logoutURI) {
			t.Fatalf("logout: %d Location %q, want %s", out.Status, loc, logoutURI)
		}
		ar4 := rp2.AuthURL(oauth2.SetAuthURLParam("prompt", "none"))
		if _, loc := b.Follow(b.Get(ar4.URL), f.s.URL); loc == nil || loc.Query().Get("error") != "login_required" {
			t.Errorf("after logout, prompt=none at the other application: %v, want login_required", loc)
		}
		if _, err := rp1.OAuth2.TokenSource(rp1.Ctx, &oauth2.Token{RefreshToken: tok1.RefreshToken}).Token(); err == nil {
			t.Error("refresh token of the ended session still works")
		}
	})
}
