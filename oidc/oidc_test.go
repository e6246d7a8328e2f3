package oidc_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/testkit"
)

const (
	redirectURI = "http://127.0.0.1:9999/callback"
	logoutURI   = "http://127.0.0.1:9999/signed-out"
	email       = "jane.smith@nhs.net"
	password    = "correct horse battery staple"
)

type fixture struct {
	s        *testkit.Server
	userID   string
	clientID string
	secret   string
}

func newFixture(t *testing.T, opt testkit.Options) *fixture {
	t.Helper()
	s := testkit.NewServer(t, opt)
	ctx := t.Context()
	by := admin.Actor{ID: "test"}
	if _, err := s.Admin.CreateOrganisation(ctx, by, "RRK", "Leeds Teaching Hospitals"); err != nil {
		t.Fatal(err)
	}
	// Staff, not an administrator: administrators must use MFA (see authn's tests).
	cu, err := s.Admin.CreateUser(ctx, by, admin.NewUser{OrgODS: "RRK", Email: email, Name: "Jane Smith", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	c, secret, err := s.Admin.CreateClient(ctx, by, admin.NewClient{OrgODS: "RRK", Name: "Rostering",
		RedirectURIs: []string{redirectURI}, PostLogoutRedirectURIs: []string{logoutURI}})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{s: s, userID: cu.User.ID, clientID: c.ID, secret: secret}
}

func (f *fixture) newClient(t *testing.T, name string, public bool) (id, secret string) {
	t.Helper()
	c, secret, err := f.s.Admin.CreateClient(t.Context(), admin.Actor{ID: "test"}, admin.NewClient{OrgODS: "RRK", Name: name,
		RedirectURIs: []string{redirectURI}, PostLogoutRedirectURIs: []string{logoutURI}, Public: public})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, secret
}

// login runs an authorization request in the browser, signing in when the
// login page appears, and returns the code sent to the RP.
func login(t *testing.T, f *fixture, b *testkit.Browser, rp *testkit.RP, ar testkit.AuthRequest) string {
	t.Helper()
	p, loc := b.Follow(b.Get(ar.URL), f.s.URL)
	if loc == nil {
		p, loc = b.Follow(b.SignIn(p, email, password), f.s.URL)
	}
	if loc == nil {
		t.Fatalf("sign-in did not return to the RP: %d %s\n%.2000s", p.Status, p.URL, p.Body)
	}
	return rp.Callback(ar, loc)
}

type claims struct {
	Sub        string   `json:"sub"`
	Email      string   `json:"email"`
	Name       string   `json:"name"`
	GivenName  string   `json:"given_name"`
	FamilyName string   `json:"family_name"`
	AMR        []string `json:"amr"`
	ACR        string   `json:"acr"`
	AuthTime   int64    `json:"auth_time"`
	Org        struct {
		ODSCode string `json:"ods_code"`
		Name    string `json:"name"`
	} `json:"org"`
	Roles []string `json:"roles"`
}

func each(t *testing.T, fn func(t *testing.T, opt testkit.Options)) {
	for _, b := range []struct {
		name string
		opt  testkit.Options
	}{
		{"sqlite+mem", testkit.Options{}},
		{"postgres+redis", testkit.Options{Postgres: true, Redis: true}},
	} {
		t.Run(b.name, func(t *testing.T) { fn(t, b.opt) })
	}
}

func TestCodeFlowWithRealRP(t *testing.T) {
	each(t, func(t *testing.T, opt testkit.Options) {
		f := newFixture(t, opt)
		rp := f.s.RP(t, f.clientID, f.secret, redirectURI)
		b := f.s.Browser(t)
		ar := rp.AuthURL()
		code := login(t, f, b, rp, ar)
		tok, err := rp.Exchange(ar, code)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		idt := rp.VerifyIDToken(ar, tok)
		var c claims
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		if c.Sub != f.userID || strings.Contains(c.Sub, "@") {
			t.Errorf("sub = %q, want the opaque user ID %q", c.Sub, f.userID)
		}
		if c.Email != email || c.Name != "Jane Smith" || c.GivenName != "Jane" || c.FamilyName != "Smith" {
			t.Errorf("profile claims = %+v", c)
		}
		if c.Org.ODSCode != "RRK" || c.Org.Name != "Leeds Teaching Hospitals" || !slices.Equal(c.Roles, []string{"staff"}) {
			t.Errorf("org/roles claims = %+v %v", c.Org, c.Roles)
		}
		if !slices.Equal(c.AMR, []string{"pwd"}) || c.ACR != "urn:lanyard:acr:1fa" || c.AuthTime == 0 {
			t.Errorf("amr %v acr %q auth_time %d", c.AMR, c.ACR, c.AuthTime)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token for offline_access")
		}

		ui, err := rp.Provider.UserInfo(rp.Ctx, oauth2.StaticTokenSource(tok))
		if err != nil || ui.Subject != f.userID || ui.Email != email {
			t.Errorf("userinfo = %+v, %v", ui, err)
		}

		// Refresh rotates the token; the old one then is reuse.
		tok2, err := rp.OAuth2.TokenSource(rp.Ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
			t.Errorf("refresh did not rotate the refresh token")
		}
		if _, err := rp.OAuth2.TokenSource(rp.Ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Error("reused rotated refresh token was accepted")
		}
		if _, err := rp.OAuth2.TokenSource(rp.Ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token(); err == nil {
			t.Error("after reuse, the family's current refresh token still works")
		}
		if !auditHas(t, f, "oidc.refresh_token_reuse") {
			t.Error("refresh token reuse not in the audit log")
		}

		// Introspection, then revocation.
		if active := introspect(t, f, rp, tok2.AccessToken); !active {
			t.Error("fresh access token is not active")
		}
		revoke(t, f, rp, tok2.AccessToken, "access_token")
		if active := introspect(t, f, rp, tok2.AccessToken); active {
			t.Error("revoked access token still active")
		}
		if _, err := rp.Provider.UserInfo(rp.Ctx, oauth2.StaticTokenSource(tok2)); err == nil {
			t.Error("userinfo accepted a revoked access token")
		}
	})
}

func auditHas(t *testing.T, f *fixture, action string) bool {
	t.Helper()
	evs, err := f.s.Directory.AuditEvents(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(evs, func(e directory.AuditEvent) bool { return e.Action == action })
}

func postForm(t *testing.T, f *fixture, rp *testkit.RP, endpoint string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(rp.OAuth2.ClientID), url.QueryEscape(rp.OAuth2.ClientSecret))
	resp, err := f.s.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func discovery(t *testing.T, rp *testkit.RP) map[string]any {
	var d map[string]any
	if err := rp.Provider.Claims(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

func introspect(t *testing.T, f *fixture, rp *testkit.RP, token string) bool {
	t.Helper()
	code, m := postForm(t, f, rp, discovery(t, rp)["introspection_endpoint"].(string), url.Values{"token": {token}})
	if code != 200 {
		t.Fatalf("introspection = %d %v", code, m)
	}
	return m["active"] == true
}

func revoke(t *testing.T, f *fixture, rp *testkit.RP, token, hint string) {
	t.Helper()
	code, m := postForm(t, f, rp, discovery(t, rp)["revocation_endpoint"].(string), url.Values{"token": {token}, "token_type_hint": {hint}})
	if code != 200 {
		t.Fatalf("revocation = %d %v", code, m)
	}
}

var (
	regexpValues   = regexp.MustCompile(`value="[^"]*"`)
	regexpCeremony = regexp.MustCompile(`c=[A-Z0-9]+`)
)
