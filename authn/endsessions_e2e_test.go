package authn_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/testkit"
)

// signedIn tells whether the browser's session still opens the account
// page without asking for the password.
func signedIn(t *testing.T, f *fixture, b *testkit.Browser) bool {
	t.Helper()
	p, loc := b.Follow(b.Get(f.s.URL+"/account"), f.s.URL)
	if loc != nil {
		t.Fatalf("/account left for %v", loc)
	}
	return p.Status == http.StatusOK && strings.Contains(p.Body, "Your account")
}

// TestPasswordChangeAndResetEndOtherSessions: a password change signs the
// user out everywhere but the browser that changed it, and revokes the
// refresh tokens issued elsewhere; a reset by email signs them out
// everywhere. What an intruder holds stops working.
func TestPasswordChangeAndResetEndOtherSessions(t *testing.T) {
	f := newFixture(t)
	c, secret, err := f.s.Admin.CreateClient(t.Context(), admin.Actor{ID: "test"}, admin.NewClient{OrgODS: "RRK", Name: "Rota", RedirectURIs: []string{redirectURI}})
	if err != nil {
		t.Fatal(err)
	}
	rp := f.s.RP(t, c.ID, secret, redirectURI)

	home := f.signIn(t, firstPass)
	intruder := f.signIn(t, firstPass)
	// The intruder's session gives an application a refresh token.
	ar := rp.AuthURL()
	_, loc := intruder.Follow(intruder.Get(ar.URL), f.s.URL)
	if loc == nil {
		t.Fatal("SSO from the intruder's session showed a page")
	}
	tok, err := rp.Exchange(ar, rp.Callback(ar, loc))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v (refresh token %q)", err, tok.RefreshToken)
	}

	const second = "lantern orchard thistle"
	if p := change(t, home, f, firstPass, second); !strings.Contains(p.Body, "Your password has been changed") {
		t.Fatalf("change: %d\n%.1500s", p.Status, p.Body)
	}
	if !signedIn(t, f, home) {
		t.Error("the browser that changed the password was signed out")
	}
	if signedIn(t, f, intruder) {
		t.Error("another browser is still signed in after the password change")
	}
	_, err = rp.OAuth2.TokenSource(rp.Ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refresh token from the other session after the change: %v, want invalid_grant", err)
	}

	// A reset by email ends every session, the one that asked included.
	requestReset(t, f, f.s.Browser(t), email)
	link := resetLink(t, f.sink.Wait(t, 2)[1])
	b := f.s.Browser(t)
	const third = "copper meadow lantern"
	if p := b.Submit(b.Get(link), `name="new_password"`, map[string]string{"new_password": third, "confirm_password": third}); !strings.Contains(p.Body, "Your password has been reset") {
		t.Fatalf("reset: %d\n%.1500s", p.Status, p.Body)
	}
	if signedIn(t, f, home) {
		t.Error("still signed in after a password reset")
	}
	if !signedIn(t, f, f.signIn(t, third)) {
		t.Error("cannot sign in with the new password")
	}
}
