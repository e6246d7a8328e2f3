package main

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// The bare server is a floor for Lanyard's figures only if it does the
// work a provider must: these check that it really refuses what it should,
// through the same load generator that measures it.
func TestBareServer(t *testing.T) {
	ctx := t.Context()
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	b, err := startBare(ctx, tr) // includes one full login
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()

	t.Run("refresh rotates, and a rotated token is refused", func(t *testing.T) {
		op, err := b.refreshOp(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := b.login(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := op(ctx, 0); err != nil {
			t.Fatal(err)
		}
		rctx := context.WithValue(ctx, oauth2.HTTPClient, b.client)
		if _, err := b.oauth.TokenSource(rctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
			t.Fatalf("first use of a fresh refresh token: %v", err)
		}
		_, err = b.oauth.TokenSource(rctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		wantGrantError(t, err, "invalid_grant")
	})

	t.Run("a wrong client secret is refused", func(t *testing.T) {
		tok, err := b.login(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bad := b.oauth
		bad.ClientSecret = "wrong"
		_, err = bad.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, b.client), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		wantGrantError(t, err, "invalid_client")
	})

	t.Run("codes are one-time and bound to the verifier", func(t *testing.T) {
		code, verifier := bareCode(t, b, userPassword)
		xctx := context.WithValue(ctx, oauth2.HTTPClient, b.client)
		_, err := b.oauth.Exchange(xctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		wantGrantError(t, err, "invalid_grant")
		code, verifier = bareCode(t, b, userPassword)
		if _, err := b.oauth.Exchange(xctx, code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatal(err)
		}
		_, err = b.oauth.Exchange(xctx, code, oauth2.VerifierOption(verifier))
		wantGrantError(t, err, "invalid_grant")
	})

	t.Run("a wrong password gets no code", func(t *testing.T) {
		br, err := newBrowser(tr)
		if err != nil {
			t.Fatal(err)
		}
		p := barePasswordPage(t, b, br)
		p, err = br.submit(ctx, p, `name="password"`, url.Values{"password": {"not the password"}})
		if err != nil {
			t.Fatal(err)
		}
		if p.status != http.StatusUnauthorized || p.header.Get("Location") != "" {
			t.Fatalf("wrong password: status %d, Location %q", p.status, p.header.Get("Location"))
		}
	})

	t.Run("a form without its CSRF token is refused", func(t *testing.T) {
		br, err := newBrowser(tr)
		if err != nil {
			t.Fatal(err)
		}
		p := barePasswordPage(t, b, br)
		p, err = br.submit(ctx, p, `name="password"`, url.Values{"password": {userPassword}, "csrf_token": {""}})
		if err != nil {
			t.Fatal(err)
		}
		if p.status != http.StatusForbidden {
			t.Fatalf("no CSRF token: status %d, want 403", p.status)
		}
	})

	t.Run("an unregistered redirect URI is refused", func(t *testing.T) {
		bad := b.oauth
		bad.RedirectURL = "http://127.0.0.1:9999/elsewhere"
		br, err := newBrowser(tr)
		if err != nil {
			t.Fatal(err)
		}
		p, err := br.get(ctx, bad.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err != nil {
			t.Fatal(err)
		}
		if p.status != http.StatusBadRequest || p.header.Get("Location") != "" {
			t.Fatalf("status %d, Location %q", p.status, p.header.Get("Location"))
		}
	})
}

// barePasswordPage starts a login in br and returns its password page.
func barePasswordPage(t *testing.T, b *target, br *browser) page {
	t.Helper()
	ctx := t.Context()
	p, err := br.get(ctx, b.oauth.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	if p, err = br.submit(ctx, p, `name="email"`, url.Values{"email": {userEmail}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("no password page: status %d: %.300s", p.status, p.body)
	}
	return p
}

// bareCode signs in with pw and returns the code and its verifier.
func bareCode(t *testing.T, b *target, pw string) (code, verifier string) {
	t.Helper()
	br, err := newBrowser(b.tr)
	if err != nil {
		t.Fatal(err)
	}
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	ctx := t.Context()
	p, err := br.get(ctx, b.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	if p, err = br.submit(ctx, p, `name="email"`, url.Values{"email": {userEmail}}); err != nil {
		t.Fatal(err)
	}
	if p, err = br.submit(ctx, p, `name="password"`, url.Values{"password": {pw}}); err != nil {
		t.Fatal(err)
	}
	_, loc, err := br.follow(ctx, p, b.issuer)
	if err != nil || loc == nil {
		t.Fatalf("no redirect to the client: %v (status %d)", err, p.status)
	}
	if loc.Query().Get("state") != state {
		t.Fatalf("state %q, want %q", loc.Query().Get("state"), state)
	}
	return loc.Query().Get("code"), verifier
}

func wantGrantError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != code {
		t.Fatalf("got %v, want the token endpoint's %s", err, code)
	}
}

// The load generator's measurement stops at its limits and reports the
// bare server's rate.
func TestMeasureBareLogins(t *testing.T) {
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	b, err := startBare(t.Context(), tr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	r, err := measure(t.Context(), 2, limits{duration: 20 * time.Second, maxOps: 4}, b.loginOp)
	if err != nil {
		t.Fatal(err)
	}
	if r.ops != 4 || r.rate() <= 0 || len(r.latencies) != 4 {
		t.Fatalf("ops %d, rate %.1f, %d latencies", r.ops, r.rate(), len(r.latencies))
	}
}
