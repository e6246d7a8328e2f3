package oidc_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/lanyard/lanyard/testkit"
)

// on rewrites a URL of the shared issuer to one instance's own address.
func on(s *testkit.Server, raw string) string {
	return strings.Replace(raw, s.URL, s.Base, 1)
}

// next resolves a redirect's Location against the page.
func next(t *testing.T, p testkit.Page) string {
	t.Helper()
	if p.Status < 300 || p.Status > 399 {
		t.Fatalf("%s: status %d, want a redirect\n%.1500s", p.URL, p.Status, p.Body)
	}
	u, err := p.URL.Parse(p.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u.String()
}

// TestTwoInstances runs two servers on one PostgreSQL and one Redis behind
// one issuer, as behind a load balancer: each step of a login goes to the
// other instance than the step before, and the session made on one is
// valid on the other.
func TestTwoInstances(t *testing.T) {
	f := newFixture(t, testkit.Options{Postgres: true, Redis: true})
	a := f.s
	b := testkit.NewServer(t, testkit.Options{Share: a})
	rp := a.RP(t, f.clientID, f.secret, redirectURI)
	br := a.Browser(t)

	ar := rp.AuthURL()
	p := br.Get(on(a, ar.URL))    // authorize on A
	p = br.Get(on(b, next(t, p))) // /login/oidc on B starts the ceremony and shows its first page
	// A form on a page from B names B's own address; the load balancer's
	// address is the issuer's.
	issuer := func(u string) string { return strings.Replace(u, b.Base, a.URL, 1) }
	action, fields := p.Form(t, `name="email"`) // the email goes to A
	fields.Set("email", email)
	p = br.Post(on(a, issuer(action)), fields)
	p = br.Get(on(b, issuer(next(t, p)))) // password page from B
	action, fields = p.Form(t, `name="password"`)
	fields.Set("password", password)
	p = br.Post(on(a, issuer(action)), fields) // password to A
	p = br.Get(on(b, next(t, p)))              // back to /login/oidc on B: SSO session from A
	p = br.Get(on(a, issuer(next(t, p))))      // the provider's callback on A
	loc, err := url.Parse(next(t, p))
	if err != nil {
		t.Fatal(err)
	}
	code := rp.Callback(ar, loc)

	// The code made on B is redeemed at A's token endpoint, and the other
	// way round for refresh.
	tok, err := rp.Exchange(ar, code)
	if err != nil {
		t.Fatalf("exchange on A: %v", err)
	}
	if idt := rp.VerifyIDToken(ar, tok); idt.Subject != f.userID {
		t.Errorf("subject %q, want %q", idt.Subject, f.userID)
	}
	rpB := *rp
	rpB.OAuth2.Endpoint.TokenURL = on(b, rp.OAuth2.Endpoint.TokenURL)
	if _, err := rpB.OAuth2.TokenSource(rp.Ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Errorf("refresh on B: %v", err)
	}

	// The session is valid on both instances.
	for _, s := range []*testkit.Server{a, b} {
		ar := rp.AuthURL(oauth2.SetAuthURLParam("prompt", "none"))
		p := br.Get(on(s, ar.URL))
		p = br.Get(on(s, next(t, p)))
		p = br.Get(on(s, next(t, p)))
		loc, _ := url.Parse(next(t, p))
		if loc.Query().Get("code") == "" {
			t.Errorf("prompt=none on %s: %v, want a code", s.Base, loc)
		}
	}
	// Both publish the same keys.
	ka, kb := jwks(t, a), jwks(t, b)
	if ka == "" || ka != kb {
		t.Errorf("instances publish different JWKS:\n%s\n%s", ka, kb)
	}
}

func jwks(t *testing.T, s *testkit.Server) string {
	t.Helper()
	p := s.Browser(t).Get(s.Base + "/keys")
	if p.Status != http.StatusOK {
		t.Fatalf("JWKS on %s: %d", s.Base, p.Status)
	}
	return p.Body
}

func TestClientCredentials(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	rp := f.s.RP(t, f.clientID, f.secret, redirectURI)
	code, m := postForm(t, f, rp, rp.OAuth2.Endpoint.TokenURL, url.Values{"grant_type": {"client_credentials"}, "scope": {"org"}})
	at, _ := m["access_token"].(string)
	if code != 200 || at == "" {
		t.Fatalf("client_credentials: %d %v", code, m)
	}
	_, in := postForm(t, f, rp, discovery(t, rp)["introspection_endpoint"].(string), url.Values{"token": {at}})
	if in["active"] != true || in["sub"] != f.clientID {
		t.Errorf("introspection of a client token = %v", in)
	}
	pubID, _ := f.newClient(t, "Mobile", true)
	pub := *rp
	pub.OAuth2.ClientID, pub.OAuth2.ClientSecret = pubID, ""
	if code, m := postForm(t, f, &pub, rp.OAuth2.Endpoint.TokenURL, url.Values{"grant_type": {"client_credentials"}}); code < 400 {
		t.Errorf("public client got client_credentials: %d %v", code, m)
	}
	bad := *rp
	bad.OAuth2.ClientSecret = "wrong"
	if code, _ := postForm(t, f, &bad, rp.OAuth2.Endpoint.TokenURL, url.Values{"grant_type": {"client_credentials"}}); code != http.StatusUnauthorized && code != http.StatusBadRequest {
		t.Errorf("wrong secret: %d, want 401 or 400", code)
	}
}

// TestSessionTimeouts: a session ends after the idle timeout without use,
// and after the absolute timeout however much it is used.
func TestSessionTimeouts(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	f := newFixture(t, testkit.Options{Now: clock.Now})
	rp := f.s.RP(t, f.clientID, f.secret, redirectURI)
	silent := func(b *testkit.Browser) bool {
		_, loc := b.Follow(b.Get(rp.AuthURL(oauth2.SetAuthURLParam("prompt", "none")).URL), f.s.URL)
		return loc != nil && loc.Query().Get("code") != ""
	}
	cfg := f.s.Config.Session

	idle := f.s.Browser(t)
	login(t, f, idle, rp, rp.AuthURL())
	clock.Advance(cfg.IdleTimeout - time.Minute)
	if !silent(idle) {
		t.Fatal("session ended before the idle timeout")
	}
	clock.Advance(cfg.IdleTimeout + time.Second)
	if silent(idle) {
		t.Error("session outlived the idle timeout")
	}

	busy := f.s.Browser(t)
	login(t, f, busy, rp, rp.AuthURL())
	for elapsed := time.Duration(0); elapsed+cfg.IdleTimeout/2 < cfg.AbsoluteTimeout; elapsed += cfg.IdleTimeout / 2 {
		clock.Advance(cfg.IdleTimeout / 2)
		if !silent(busy) {
			t.Fatalf("busy session ended after %v, before the absolute timeout", elapsed+cfg.IdleTimeout/2)
		}
	}
	clock.Advance(cfg.IdleTimeout / 2)
	if silent(busy) {
		t.Error("session outlived the absolute timeout")
	}
}
