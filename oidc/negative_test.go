package oidc_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/lanyard/lanyard/oidc"
	"github.com/lanyard/lanyard/testkit"
)

func TestWrongPasswordAndUnknownUserLookAlike(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	rp := f.s.RP(t, f.clientID, f.secret, redirectURI)
	try := func(email, pw string) (testkit.Page, time.Duration) {
		b := f.s.Browser(t)
		p, _ := b.Follow(b.Get(rp.AuthURL().URL), f.s.URL)
		start := time.Now()
		p = b.SignIn(p, email, pw)
		return p, time.Since(start)
	}
	wrong, dWrong := try(email, "not the password at all")
	unknown, dUnknown := try("nobody@nhs.net", "not the password at all")
	for name, p := range map[string]testkit.Page{"wrong password": wrong, "unknown user": unknown} {
		if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "Your email address or password is not right") {
			t.Errorf("%s: %d, want 422 with the common message:\n%.1500s", name, p.Status, p.Body)
		}
	}
	strip := func(s string) string { // the pages differ only in the echoed email and tokens
		s = strings.ReplaceAll(s, "nobody@nhs.net", "EMAIL")
		s = strings.ReplaceAll(s, email, "EMAIL")
		return regexpCeremony.ReplaceAllString(regexpValues.ReplaceAllString(s, `value="X"`), "c=X")
	}
	if strip(wrong.Body) != strip(unknown.Body) {
		t.Error("wrong password and unknown user pages differ")
	}
	// Both verify one argon2id hash (~25 ms); allow for a loaded machine.
	if r := float64(dWrong) / float64(dUnknown); r < 0.33 || r > 3 {
		t.Errorf("timing differs: wrong password %v, unknown user %v", dWrong, dUnknown)
	}
	if !auditHas(t, f, "login.password") {
		t.Error("failed logins not audited")
	}
}

func TestUnregisteredRedirectURIIsNeverFollowed(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	rp := f.s.RP(t, f.clientID, f.secret, "https://evil.example/callback")
	b := f.s.Browser(t)
	p := b.Get(rp.AuthURL().URL)
	if p.Status != http.StatusBadRequest || p.Header.Get("Location") != "" || strings.Contains(p.Header.Get("Location"), "evil") {
		t.Errorf("unregistered redirect_uri: %d Location %q, want 400 and no redirect", p.Status, p.Header.Get("Location"))
	}
	checkAuthorizeErrorPage(t, p)
	if strings.Contains(p.Body, "evil.example") {
		t.Error("the error page repeats the unregistered redirect_uri")
	}
}

// checkAuthorizeErrorPage checks that a refused authorize request got
// Lanyard's own HTML error page (not zitadel's plain text), with the page
// headers, a reference for support, and none of the request's wording.
func checkAuthorizeErrorPage(t *testing.T, p testkit.Page) {
	t.Helper()
	if ct := p.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("error page Content-Type %q, want text/html", ct)
	}
	for _, want := range []string{"There is a problem with this sign-in link", "nhsuk-", "Go back to the application"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("error page lacks %q: %.400s", want, p.Body)
		}
	}
	if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("error page CSP %q", csp)
	}
	if cc := p.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("error page Cache-Control %q", cc)
	}
}

func TestAuthorizeRefusalsShowAnErrorPage(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	b := f.s.Browser(t)
	base := f.s.URL + "/authorize?"
	for name, q := range map[string]url.Values{
		"unknown client": {"client_id": {"no-such-client"}, "redirect_uri": {redirectURI}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"<script>alert(1)</script>"}},
		"no redirect_uri": {"client_id": {f.clientID}, "response_type": {"code"}, "scope": {"openid"}},
		"no client_id":    {"redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"}},
		"spoofed wording": {"client_id": {"Call 0800 000 000 to unlock your account"}, "redirect_uri": {redirectURI},
			"response_type": {"code"}, "scope": {"openid"}},
	} {
		t.Run(name, func(t *testing.T) {
			p := b.Get(base + q.Encode())
			if p.Status != http.StatusBadRequest || p.Header.Get("Location") != "" {
				t.Fatalf("status %d Location %q, want 400 and no redirect", p.Status, p.Header.Get("Location"))
			}
			checkAuthorizeErrorPage(t, p)
			for _, v := range q {
				if len(v[0]) > 8 && strings.Contains(p.Body, v[0]) && v[0] != redirectURI {
					t.Errorf("error page repeats the request's %q", v[0])
				}
			}
			if strings.Contains(p.Body, "0800") {
				t.Error("error page repeats words from the request")
			}
		})
	}
}

func TestCodeReplayRevokesTokens(t *testing.T) {
	each(t, func(t *testing.T, opt testkit.Options) {
		f := newFixture(t, opt)
		rp := f.s.RP(t, f.clientID, f.secret, redirectURI)
		ar := rp.AuthURL()
		code := login(t, f, f.s.Browser(t), rp, ar)
		tok, err := rp.Exchange(ar, code)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rp.Exchange(ar, code); err == nil {
			t.Fatal("a code was redeemed twice")
		}
		if introspect(t, f, rp, tok.AccessToken) {
			t.Error("access token from the first redemption still active after replay")
		}
		if _, err := rp.OAuth2.TokenSource(rp.Ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Error("refresh token from the first redemption still works after replay")
		}
		if !auditHas(t, f, "oidc.code_replay") {
			t.Error("code replay not audited")
		}
	})
}

func TestTokenRequestsRefused(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	f := newFixture(t, testkit.Options{Now: clock.Now})
	rp := f.s.RP(t, f.clientID, f.secret, redirectURI)

	t.Run("wrong code_verifier", func(t *testing.T) {
		ar := rp.AuthURL()
		code := login(t, f, f.s.Browser(t), rp, ar)
		ar.Verifier = oauth2.GenerateVerifier()
		if _, err := rp.Exchange(ar, code); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Errorf("wrong verifier: err = %v, want invalid_grant", err)
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		ar := rp.AuthURL()
		code := login(t, f, f.s.Browser(t), rp, ar)
		bad := *rp
		bad.OAuth2.ClientSecret = "X" + f.secret // never the real one
		// One try: x/oauth2 otherwise retries with the secret in the body,
		// and the first try has already spent the code.
		bad.OAuth2.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
		if _, err := bad.Exchange(ar, code); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Errorf("wrong secret: err = %v, want invalid_client", err)
		}
	})
	t.Run("expired code", func(t *testing.T) {
		ar := rp.AuthURL()
		code := login(t, f, f.s.Browser(t), rp, ar)
		clock.Advance(f.s.Config.OIDC.CodeLifetime + time.Second)
		if _, err := rp.Exchange(ar, code); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Errorf("expired code: err = %v, want invalid_grant", err)
		}
	})
	t.Run("tampered tokens", func(t *testing.T) {
		ar := rp.AuthURL()
		tok, err := rp.Exchange(ar, login(t, f, f.s.Browser(t), rp, ar))
		if err != nil {
			t.Fatal(err)
		}
		raw := tok.Extra("id_token").(string)
		parts := strings.Split(raw, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), f.userID, "SOMEONEELSE0000000000000000", 1)))
		if _, err := rp.Verifier.Verify(rp.Ctx, strings.Join(parts, ".")); err == nil {
			t.Error("tampered ID token verified")
		}
		at := []byte(tok.AccessToken)
		at[len(at)/2] ^= 1
		if _, err := rp.Provider.UserInfo(rp.Ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: string(at), TokenType: "Bearer"})); err == nil {
			t.Error("userinfo accepted a tampered access token")
		}
		if introspect(t, f, rp, string(at)) {
			t.Error("tampered access token introspected as active")
		}
	})
	t.Run("malformed and oversized", func(t *testing.T) {
		tokenURL := rp.OAuth2.Endpoint.TokenURL
		for name, body := range map[string]string{
			"no grant":     "code=x",
			"bad grant":    "grant_type=magic",
			"bad encoding": "grant_type=authorization_code&code=%zz",
			"no code":      "grant_type=authorization_code",
			"garbage code": "grant_type=authorization_code&code=AAAA&redirect_uri=" + url.QueryEscape(redirectURI),
			"bad refresh":  "grant_type=refresh_token&refresh_token=nope",
		} {
			req, _ := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(f.clientID, f.secret)
			resp, err := f.s.Client(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode > 499 {
				t.Errorf("%s: status %d, want 4xx", name, resp.StatusCode)
			}
		}
		big := "grant_type=authorization_code&code=" + strings.Repeat("A", int(f.s.Config.HTTP.MaxBodyBytes))
		resp, err := f.s.Client(t).Post(tokenURL, "application/x-www-form-urlencoded", strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized token request: %d, want 413", resp.StatusCode)
		}
		b := f.s.Browser(t)
		if p := b.Get(f.s.URL + "/authorize?response_type=code&scope=openid"); p.Status != http.StatusBadRequest {
			t.Errorf("authorize without client_id: %d, want 400", p.Status)
		}
	})
}

func TestPKCERules(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	pubID, _ := f.newClient(t, "Mobile", true)
	pub := f.s.RP(t, pubID, "", redirectURI)
	b := f.s.Browser(t)

	plain := pub.OAuth2.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq"),
		oauth2.SetAuthURLParam("code_challenge_method", "plain"))
	if _, loc := b.Follow(b.Get(plain), f.s.URL); loc == nil || loc.Query().Get("error") != "invalid_request" {
		t.Errorf("plain PKCE: %v, want error=invalid_request", loc)
	}
	none := pub.OAuth2.AuthCodeURL("st")
	if _, loc := b.Follow(b.Get(none), f.s.URL); loc == nil || loc.Query().Get("error") != "invalid_request" {
		t.Errorf("public client without PKCE: %v, want error=invalid_request", loc)
	}
	ar := pub.AuthURL()
	tok, err := pub.Exchange(ar, login(t, f, b, pub, ar))
	if err != nil {
		t.Fatalf("public client with S256: %v", err)
	}
	pub.VerifyIDToken(ar, tok)
}

func TestLoginFormNeedsCSRFAndSameOrigin(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	rp := f.s.RP(t, f.clientID, f.secret, redirectURI)
	b := f.s.Browser(t)
	p, _ := b.Follow(b.Get(rp.AuthURL().URL), f.s.URL)
	action, fields := p.Form(t, `name="email"`)
	fields.Set("email", email)
	fields.Del("csrf_token")
	if got := b.Post(action, fields); got.Status != http.StatusForbidden {
		t.Errorf("no CSRF token: %d, want 403", got.Status)
	}
	fields.Set("csrf_token", "forged")
	if got := b.Post(action, fields); got.Status != http.StatusForbidden {
		t.Errorf("wrong CSRF token: %d, want 403", got.Status)
	}
	_, fields = p.Form(t, `name="email"`)
	fields.Set("email", email)
	req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := b.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST: %d, want 403", resp.StatusCode)
	}
	// A different browser cannot continue this browser's ceremony.
	other := f.s.Browser(t)
	_, fields = p.Form(t, `name="email"`)
	fields.Set("email", email)
	if got := other.Post(action, fields); got.Status != http.StatusBadRequest || !strings.Contains(got.Body, "expired") {
		t.Errorf("ceremony from another browser: %d, want 400 expired page", got.Status)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options"} {
		if p.Header.Get(h) == "" {
			t.Errorf("login page lacks %s", h)
		}
	}
	if cc := p.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("login page Cache-Control %q, want no-store", cc)
	}
}

// TestRedisOutageMidFlow cuts Redis between the login page and the form
// post: the user gets a clear 503 page, and once Redis is back a new login
// works.
func TestRedisOutageMidFlow(t *testing.T) {
	f := newFixture(t, testkit.Options{Postgres: true, Redis: true, RedisProxy: true})
	rp := f.s.RP(t, f.clientID, f.secret, redirectURI)
	b := f.s.Browser(t)
	p, _ := b.Follow(b.Get(rp.AuthURL().URL), f.s.URL)
	f.s.RedisProxy.Cut()
	got := b.Submit(p, `name="email"`, map[string]string{"email": email})
	if got.Status != http.StatusServiceUnavailable || !strings.Contains(got.Body, "problem with the service") {
		t.Errorf("with Redis down: %d, want the 503 page:\n%.1500s", got.Status, got.Body)
	}
	if _, loc := b.Follow(b.Get(rp.AuthURL().URL), f.s.URL); loc == nil || loc.Query().Get("error") != "temporarily_unavailable" {
		t.Errorf("authorize with Redis down: sent to %v, want the RP with error=temporarily_unavailable", loc)
	}
	f.s.RedisProxy.Restore()
	ar := rp.AuthURL()
	if _, err := rp.Exchange(ar, login(t, f, f.s.Browser(t), rp, ar)); err != nil {
		t.Errorf("login after Redis came back: %v", err)
	}
}

// TestConcurrentRefreshIsReuse presents one refresh token in many token
// requests at once, on both backends. The rotation commits while the ID
// token is signed, and the response waits for it: at most one request may
// get new tokens, every other one gets invalid_grant (never a server error,
// never tokens), the race counts as reuse (the family is revoked, so even
// the winner's refresh token stops working), and no access token handed
// out to a loser works.
func TestConcurrentRefreshIsReuse(t *testing.T) {
	t.Run("overlap when a core is free", func(t *testing.T) { concurrentRefresh(t) })
	t.Run("overlap always", func(t *testing.T) {
		oidc.AlwaysOverlap(t)
		concurrentRefresh(t)
	})
}

func concurrentRefresh(t *testing.T) {
	each(t, func(t *testing.T, opt testkit.Options) {
		f := newFixture(t, opt)
		rp := f.s.RP(t, f.clientID, f.secret, redirectURI)
		ar := rp.AuthURL()
		tok, err := rp.Exchange(ar, login(t, f, f.s.Browser(t), rp, ar))
		if err != nil {
			t.Fatal(err)
		}
		const n = 8
		hc := f.s.Client(t)
		type answer struct {
			status int
			body   map[string]any
		}
		answers := make(chan answer, n)
		start := make(chan struct{})
		for range n {
			go func() {
				<-start
				req, _ := http.NewRequest(http.MethodPost, rp.OAuth2.Endpoint.TokenURL,
					strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(url.QueryEscape(f.clientID), url.QueryEscape(f.secret))
				resp, err := hc.Do(req)
				if err != nil {
					t.Error(err)
					answers <- answer{status: -1}
					return
				}
				defer resp.Body.Close()
				var body map[string]any
				json.NewDecoder(resp.Body).Decode(&body)
				answers <- answer{resp.StatusCode, body}
			}()
		}
		close(start)
		var won []map[string]any
		for range n {
			a := <-answers
			switch {
			case a.status == http.StatusOK:
				won = append(won, a.body)
			case a.status == http.StatusBadRequest && a.body["error"] == "invalid_grant" && a.body["access_token"] == nil:
			default:
				t.Errorf("concurrent refresh answered %d %v, want 200 or 400 invalid_grant", a.status, a.body)
			}
		}
		if len(won) > 1 {
			t.Fatalf("%d concurrent uses of one refresh token got new tokens, want at most 1", len(won))
		}
		if len(won) == 1 {
			rt, _ := won[0]["refresh_token"].(string)
			if _, err := rp.OAuth2.TokenSource(rp.Ctx, &oauth2.Token{RefreshToken: rt}).Token(); err == nil {
				t.Error("after a reuse race the winner's refresh token still works; the family should be revoked")
			}
		}
		if !auditHas(t, f, "oidc.refresh_token_reuse") {
			t.Error("the reuse race is not in the audit log")
		}
	})
}
