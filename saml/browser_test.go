package saml_test

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/crewjam/saml/samlsp"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/testkit"
)

// TestChromiumSPInitiated signs in to a real samlsp SP in headless
// Chromium: the SP redirects to Lanyard, the pages sign the user in, and
// the auto-submitting response form (allowed by its CSP hash) posts the
// assertion back.
func TestChromiumSPInitiated(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	base := f.newSP(t, spEntity)
	spSrv := httptest.NewUnstartedServer(nil)
	spSrv.StartTLS()
	t.Cleanup(spSrv.Close)
	u, _ := url.Parse(spSrv.URL)
	mw, err := samlsp.New(samlsp.Options{EntityID: spEntity, URL: *u, Key: base.Key.(*rsa.PrivateKey), Certificate: base.Certificate,
		IDPMetadata: base.IDPMetadata, CookieSameSite: http.SameSiteNoneMode})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/saml/", mw)
	mux.Handle("/", mw.RequireAccount(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>Rota</title><p id="signed-in">signed in as %s</p>`, samlsp.AttributeFromContext(r.Context(), "email"))
	})))
	spSrv.Config.Handler = mux
	f.register(t, &mw.ServiceProvider, directory.NameIDPersistent, "email")

	ctx := testkit.Chromium(t, f.s.HTTP.Certificate(), spSrv.Certificate())
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s (at %s): %v", step, loc, err)
		}
	}
	do("open the SP", chromedp.Navigate(spSrv.URL+"/rota"), chromedp.WaitVisible(chromedp.ID("email")))
	do("enter the email",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Continue"]`)),
		chromedp.WaitVisible(chromedp.ID("password")))
	do("enter the password",
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Sign in"]`)),
		chromedp.WaitVisible(chromedp.ID("signed-in")))
	testkit.Screenshot(t, ctx, "sp-signed-in")
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("signed-in")))
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.Contains(text, email) || !strings.HasPrefix(loc, spSrv.URL+"/rota") {
		t.Errorf("at %s the SP says %q, want the user at /rota", loc, text)
	}
}
