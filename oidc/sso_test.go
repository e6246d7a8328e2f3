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

// TestLogoutWithoutHintAsksFirst checks RP-initiated logout without an
// id_token_hint: a plain GET (a link or an image on any page) shows the
// "sign out?" page and ends nothing; a POST without the session's CSRF
// token is refused; the confirmation ends the session and goes on to the
// registered post_logout_redirect_uri with the state.
func TestLogoutWithoutHintAsksFirst(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	rp := f.s.RP(t, f.clientID, f.secret, redirectURI)
	b := f.s.Browser(t)
	ar := rp.AuthURL()
	if _, err := rp.Exchange(ar, login(t, f, b, rp, ar)); err != nil {
		t.Fatal(err)
	}
	endSession := discovery(t, rp)["end_session_endpoint"].(string)
	signedIn := func() bool {
		ar := rp.AuthURL(oauth2.SetAuthURLParam("prompt", "none"))
		_, loc := b.Follow(b.Get(ar.URL), f.s.URL)
		return loc != nil && loc.Query().Get("code") != ""
	}

	q := url.Values{"client_id": {f.clientID}, "post_logout_redirect_uri": {logoutURI}, "state": {"s2"}}
	ask := b.Get(endSession + "?" + q.Encode())
	if ask.Status != http.StatusOK || ask.Header.Get("Location") != "" || !strings.Contains(ask.Body, `name="csrf_token"`) {
		t.Fatalf("logout without id_token_hint: %d Location %q, want the confirmation page: %.400s", ask.Status, ask.Header.Get("Location"), ask.Body)
	}
	if csp := ask.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("confirmation page CSP %q", csp)
	}
	if !signedIn() {
		t.Fatal("asking ended the session")
	}

	forged := b.Post(endSession, url.Values{"client_id": {f.clientID}, "post_logout_redirect_uri": {logoutURI}, "csrf_token": {"forged"}})
	if forged.Status != http.StatusForbidden || forged.Header.Get("Location") != "" {
		t.Errorf("logout POST with a forged CSRF token: %d Location %q, want 403", forged.Status, forged.Header.Get("Location"))
	}
	if !signedIn() {
		t.Fatal("a forged confirmation ended the session")
	}

	out := b.Submit(ask, "csrf_token", nil)
	loc, err := url.Parse(out.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), logoutURI) || loc.Query().Get("state") != "s2" {
		t.Fatalf("confirmed logout: %d Location %q, want %s with state s2", out.Status, out.Header.Get("Location"), logoutURI)
	}
	if signedIn() {
		t.Error("confirmed logout left the session alive")
	}
	// Without a session there is nothing to confirm.
	if p := b.Get(endSession); p.Status != http.StatusFound && p.Status != http.StatusSeeOther {
		t.Errorf("logout without a session: %d, want a redirect", p.Status)
	}
}
