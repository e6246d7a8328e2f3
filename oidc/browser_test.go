package oidc_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/testkit"
)

// TestChromiumLogin signs in through the real pages in headless Chromium,
// from the relying party's authorization request to its callback.
func TestChromiumLogin(t *testing.T) {
	f := newFixture(t, testkit.Options{})

	// The relying party's callback records the one redirect it expects.
	callbacks := make(chan *url.URL, 1)
	rpServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r)
			return
		}
		select {
		case callbacks <- r.URL:
		default:
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>Relying party</title><p id="signed-in">signed in</p>`)
	}))
	t.Cleanup(rpServer.Close)
	callback := rpServer.URL + "/callback"
	c, secret, err := f.s.Admin.CreateClient(t.Context(), admin.Actor{ID: "test"}, admin.NewClient{OrgODS: "RRK",
		Name: "Rostering in a browser", RedirectURIs: []string{callback}})
	if err != nil {
		t.Fatal(err)
	}
	rp := f.s.RP(t, c.ID, secret, callback)
	ar := rp.AuthURL()

	ctx := testkit.Chromium(t, f.s.HTTP.Certificate())
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s (at %s): %v", step, loc, err)
		}
	}

	do("open the authorization URL", chromedp.Navigate(ar.URL), chromedp.WaitVisible(chromedp.ID("email")))
	testkit.Screenshot(t, ctx, "login-identify")
	const nhsBlue = "rgb(0, 94, 184)"
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('.nhsuk-header')).backgroundColor`))
	if err != nil {
		t.Fatalf("header background: %v", err)
	}
	if bg != nhsBlue {
		t.Errorf("header background = %q, want NHS blue %q: is the NHS.UK stylesheet served?", bg, nhsBlue)
	}

	do("enter the email",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Continue"]`)),
		chromedp.WaitVisible(chromedp.ID("password")))
	testkit.Screenshot(t, ctx, "login-password")

	do("enter the password",
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Sign in"]`)),
		chromedp.WaitVisible(chromedp.ID("signed-in")))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc, callback+"?") {
		t.Fatalf("browser ended at %s, want the RP callback %s", loc, callback)
	}

	var got *url.URL
	select {
	case got = <-callbacks:
	default:
		t.Fatal("the RP's callback was not requested")
	}
	code := rp.Callback(ar, got)
	tok, err := rp.Exchange(ar, code)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	var cl claims
	if err := rp.VerifyIDToken(ar, tok).Claims(&cl); err != nil {
		t.Fatal(err)
	}
	if cl.Sub != f.userID {
		t.Errorf("sub = %q, want %q", cl.Sub, f.userID)
	}
	if !slices.Contains(cl.AMR, "pwd") {
		t.Errorf("amr = %v, want it to contain pwd", cl.AMR)
	}
}
