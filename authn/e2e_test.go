package authn_test

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lanyard/lanyard/authn"
	"github.com/lanyard/lanyard/authn/breached"
	"github.com/lanyard/lanyard/cmd/idp/server"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/testkit"
)

const (
	email       = "jane.smith@nhs.net"
	firstPass   = "correct horse battery staple"
	breachedPw  = "velvet cactus umbrella 42"
	redirectURI = "http://127.0.0.1:9999/callback"
)

type fixture struct {
	s      *testkit.Server
	sink   *testkit.SMTPSink
	clock  *testkit.Clock
	userID string
}

// newFixture starts a server that mails through a real SMTP sink and has a
// breached-password index built from a generated corpus, with one user.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	sink := testkit.NewSMTPSink(t)
	clock := testkit.NewClock(time.Now())
	s := testkit.NewServer(t, testkit.Options{Now: clock.Now, Configure: func(c *server.Config) {
		c.SMTP = server.SMTPConfig{Host: sink.Host, Port: sink.Port, From: "lanyard@lanyard.test", TLS: "none"}
		var corpus strings.Builder
		for i := range 5000 {
			fmt.Fprintf(&corpus, "%X:%d\n", sha1.Sum([]byte(fmt.Sprintf("generated breach %d", i))), i+1)
		}
		fmt.Fprintf(&corpus, "%X:3\n", sha1.Sum([]byte(breachedPw)))
		idx := filepath.Join(c.Data, "breached.idx")
		if _, err := breached.Import(context.Background(), strings.NewReader(corpus.String()), idx, breached.ImportOptions{TempDir: c.Data}); err != nil {
			t.Fatalf("import corpus: %v", err)
		}
	}})
	by := admin.Actor{ID: "test"}
	if _, err := s.Admin.CreateOrganisation(t.Context(), by, "RRK", "Leeds Teaching Hospitals"); err != nil {
		t.Fatal(err)
	}
	cu, err := s.Admin.CreateUser(t.Context(), by, admin.NewUser{OrgODS: "RRK", Email: email, Name: "Jane Smith", Password: firstPass})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{s: s, sink: sink, clock: clock, userID: cu.User.ID}
}

// signIn signs in at /account and returns the browser.
func (f *fixture) signIn(t *testing.T, pw string) *testkit.Browser {
	t.Helper()
	b := f.s.Browser(t)
	p, _ := b.Follow(b.Get(f.s.URL+"/account"), f.s.URL)
	p, _ = b.Follow(b.SignIn(p, email, pw), f.s.URL)
	if !strings.Contains(p.Body, "Your account") {
		t.Fatalf("not signed in: %d %s\n%.1500s", p.Status, p.URL, p.Body)
	}
	return b
}

func change(t *testing.T, b *testkit.Browser, f *fixture, current, next string) testkit.Page {
	t.Helper()
	p := b.Get(f.s.URL + "/account/password")
	return b.Submit(p, `name="new_password"`, map[string]string{"current_password": current, "new_password": next, "confirm_password": next})
}

func TestPasswordPolicyOnEveryChange(t *testing.T) {
	f := newFixture(t)
	b := f.signIn(t, firstPass)
	for _, tc := range []struct{ name, pw, want string }{
		{"short", "tiny pass", "at least 10 characters"},
		{"common", "password123", "commonly used"},
		{"leetspeak", "P@ssw0rd2024!", "commonly used"},
		{"own name", "JaneSmith!2025", "must not contain your name"},
		{"breached", breachedPw, "appeared in a data breach"},
		{"current", firstPass, "last 4 passwords"},
	} {
		p := change(t, b, f, firstPass, tc.pw)
		if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, tc.want) {
			t.Errorf("%s (%q): %d, want 422 saying %q:\n%.3000s", tc.name, tc.pw, p.Status, tc.want, p.Body)
		}
	}
	if p := change(t, b, f, "not my password", "orchard lantern pebble"); p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, "current password is not right") {
		t.Errorf("wrong current password: %d", p.Status)
	}
	// Four good changes; then each of the last four is refused, the fifth back is allowed.
	history := []string{firstPass, "orchard lantern pebble", "quiet harbour violin", "amber kettle meadow", "silver fox glacier"}
	for i := 1; i < len(history); i++ {
		f.clock.Advance(10 * time.Minute)
		if p := change(t, b, f, history[i-1], history[i]); p.Status != http.StatusOK || !strings.Contains(p.Body, "Your password has been changed") {
			t.Fatalf("change %d to %q: %d\n%.2000s", i, history[i], p.Status, p.Body)
		}
	}
	cur := history[len(history)-1]
	for _, old := range history[1:] {
		if p := change(t, b, f, cur, old); !strings.Contains(p.Body, "last 4 passwords") {
			t.Errorf("reuse of %q (one of the last 4) was not refused: %d %q", old, p.Status, errorMessages(p.Body))
		}
	}
	if p := change(t, b, f, cur, history[0]); p.Status != http.StatusOK {
		t.Errorf("the fifth password back was refused: %d %q", p.Status, errorMessages(p.Body))
	}
	// Each change told the user, and went to the outbox for AD sync.
	mails := f.sink.Wait(t, 5)
	if !strings.Contains(mails[len(mails)-1].Data, "password has been changed") {
		t.Errorf("last mail:\n%s", mails[len(mails)-1].Data)
	}
	evs, err := f.s.Directory.PasswordEvents(t.Context(), "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 6 { // the admin's initial password and five changes
		t.Errorf("%d password events in the outbox, want 6", len(evs))
	}
}

func TestExpiredPasswordIsChangedBeforeTheRPGetsACode(t *testing.T) {
	f := newFixture(t)
	c, secret, err := f.s.Admin.CreateClient(t.Context(), admin.Actor{ID: "test"}, admin.NewClient{OrgODS: "RRK", Name: "Rota", RedirectURIs: []string{redirectURI}})
	if err != nil {
		t.Fatal(err)
	}
	rp := f.s.RP(t, c.ID, secret, redirectURI)
	f.clock.Advance(366 * 24 * time.Hour)
	b := f.s.Browser(t)
	ar := rp.AuthURL()
	p, _ := b.Follow(b.Get(ar.URL), f.s.URL)
	p, loc := b.Follow(b.SignIn(p, email, firstPass), f.s.URL)
	if loc != nil || !strings.Contains(p.Body, "Your password has expired") {
		t.Fatalf("expired password: sent to %v, want the new-password page:\n%.1500s", loc, p.Body)
	}
	p = b.Submit(p, `name="new_password"`, map[string]string{"new_password": firstPass, "confirm_password": firstPass})
	if !strings.Contains(p.Body, "last 4 passwords") {
		t.Errorf("the expired password itself was accepted again")
	}
	p = b.Submit(p, `name="new_password"`, map[string]string{"new_password": "harbour lantern thistle", "confirm_password": "harbour lantern thistle"})
	_, loc = b.Follow(p, f.s.URL)
	if _, err := rp.Exchange(ar, rp.Callback(ar, loc)); err != nil {
		t.Fatalf("exchange after the change: %v", err)
	}
}

var linkRE = regexp.MustCompile(`https://\S+/password/reset\?token=[A-Z0-9]+`)

// resetLink finds the reset link in a delivered message, undoing the
// quoted-printable transfer encoding.
func resetLink(t *testing.T, m testkit.Mail) string {
	t.Helper()
	body, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(m.Data)))
	if err != nil {
		t.Fatal(err)
	}
	link := linkRE.FindString(string(body))
	if link == "" {
		t.Fatalf("no reset link in:\n%s", body)
	}
	return link
}

func requestReset(t *testing.T, f *fixture, b *testkit.Browser, addr string) testkit.Page {
	t.Helper()
	p := b.Get(f.s.URL + "/password/forgot")
	return b.Submit(p, `name="email"`, map[string]string{"email": addr})
}

func TestPasswordReset(t *testing.T) {
	f := newFixture(t)
	// An unfamiliar place locks the account first; the reset must lift it.
	attacker := f.s.Browser(t)
	for i := range 6 {
		p, _ := attacker.Follow(attacker.Get(f.s.URL+"/account"), f.s.URL)
		attacker.SignIn(p, email, fmt.Sprintf("guess %d guess", i))
	}
	p, _ := attacker.Follow(attacker.Get(f.s.URL+"/account"), f.s.URL)
	if p = attacker.SignIn(p, email, firstPass); !strings.Contains(p.Body, "too many attempts") {
		t.Fatalf("account not locked for the unfamiliar place: %d", p.Status)
	}

	b := f.s.Browser(t)
	unknown := requestReset(t, f, b, "nobody@nhs.net")
	known := requestReset(t, f, b, email)
	norm := func(s string) string {
		return regexp.MustCompile(`value="[^"]*"|nobody@nhs.net|`+regexp.QuoteMeta(email)).ReplaceAllString(s, "X")
	}
	if unknown.Status != known.Status || norm(unknown.Body) != norm(known.Body) || !strings.Contains(known.Body, "Check your email") {
		t.Errorf("the reset page reveals whether an account exists")
	}
	m := f.sink.Wait(t, 1)
	if len(m) != 1 || m[0].To[0] != email {
		t.Fatalf("mails sent: %v, want one to %s", m, email)
	}
	link := resetLink(t, m[0])
	form := b.Get(link)
	if form.Status != http.StatusOK {
		t.Fatalf("reset link: %d", form.Status)
	}
	if p := b.Submit(form, `name="new_password"`, map[string]string{"new_password": "password123", "confirm_password": "password123"}); !strings.Contains(p.Body, "commonly used") {
		t.Errorf("a common password was accepted on reset")
	}
	const newPass = "lantern orchard thistle"
	done := b.Submit(form, `name="new_password"`, map[string]string{"new_password": newPass, "confirm_password": newPass})
	if !strings.Contains(done.Body, "Your password has been reset") {
		t.Fatalf("reset: %d\n%.1500s", done.Status, done.Body)
	}
	if again := b.Submit(form, `name="new_password"`, map[string]string{"new_password": "another good one here", "confirm_password": "another good one here"}); !strings.Contains(again.Body, "expired or has already been used") {
		t.Errorf("a reset link worked twice: %d", again.Status)
	}
	if !strings.Contains(f.sink.Wait(t, 2)[1].Data, "password has been reset") {
		t.Error("no email saying the password was reset")
	}
	p, _ = attacker.Follow(attacker.Get(f.s.URL+"/account"), f.s.URL)
	if p, _ = attacker.Follow(attacker.SignIn(p, email, newPass), f.s.URL); !strings.Contains(p.Body, "Your account") {
		t.Errorf("still locked after the reset: %d", p.Status)
	}

	// Links expire, and belong to the account they were sent for.
	requestReset(t, f, b, email)
	late := resetLink(t, f.sink.Wait(t, 3)[2])
	f.clock.Advance(31 * time.Minute)
	if p := b.Get(late); !strings.Contains(p.Body, "expired or has already been used") {
		t.Errorf("a 31-minute-old link worked: %d", p.Status)
	}
	requestReset(t, f, b, email)
	moved := resetLink(t, f.sink.Wait(t, 4)[3])
	u, _ := f.s.Directory.User(t.Context(), f.userID)
	u.Email = "jane.smith2@nhs.net"
	if err := f.s.Directory.UpdateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if p := b.Get(moved); !strings.Contains(p.Body, "expired or has already been used") {
		t.Errorf("a link sent to the old address works after the email changed: %d", p.Status)
	}
	if bad := b.Get(f.s.URL + "/password/reset?" + url.Values{"token": {"NOTATOKEN"}}.Encode()); bad.Status != http.StatusBadRequest {
		t.Errorf("made-up token: %d", bad.Status)
	}
}

var errorRE = regexp.MustCompile(`(?s)<span class="nhsuk-error-message"[^>]*>\s*<span class="nhsuk-u-visually-hidden">Error: </span>([^<]*)`)

// errorMessages returns the field error messages on a page.
func errorMessages(body string) []string {
	var out []string
	for _, m := range errorRE.FindAllStringSubmatch(body, -1) {
		out = append(out, strings.TrimSpace(m[1]))
	}
	return out
}

func TestAccountPageAndOrganisationPolicy(t *testing.T) {
	f := newFixture(t)
	stranger := f.s.Browser(t)
	p, _ := stranger.Follow(stranger.Get(f.s.URL+"/account"), f.s.URL)
	stranger.SignIn(p, email, "not the right one at all")
	f.clock.Advance(365*24*time.Hour - 10*24*time.Hour) // ten days before expiry
	b := f.signIn(t, firstPass)
	page := b.Get(f.s.URL + "/account")
	for _, want := range []string{"Your password expires soon", "Expires on", "Your sign-ins in the last 7 days"} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	if strings.Contains(page.Body, "Wrong password") {
		t.Error("a failed sign-in from 355 days ago is listed among the last 7 days")
	}
	p, _ = stranger.Follow(stranger.Get(f.s.URL+"/account"), f.s.URL)
	stranger.SignIn(p, email, "still not the right one")
	page = b.Get(f.s.URL + "/account")
	if !strings.Contains(page.Body, "Signed in") || !strings.Contains(page.Body, "Wrong password") || !strings.Contains(page.Body, "a program") {
		t.Errorf("recent sign-ins do not show both outcomes and the device:\n%.4000s", page.Body)
	}

	// The organisation tightens the policy: 14 characters and a banned term.
	org, err := f.s.Directory.OrganisationByODS(t.Context(), "RRK")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.Directory.PutOrgPolicy(t.Context(), org.ID, directory.OrgPolicy{MinLength: 14, BannedTerms: []string{"leodis"}}); err != nil {
		t.Fatal(err)
	}
	if p := change(t, b, f, firstPass, "violin harbor"); !strings.Contains(p.Body, "at least 14 characters") {
		t.Errorf("organisation minimum not applied: %q", errorMessages(p.Body))
	}
	if p := change(t, b, f, firstPass, "leodis harbour violin"); !strings.Contains(p.Body, "leodis") {
		t.Errorf("organisation banned term not applied: %q", errorMessages(p.Body))
	}
	if err := f.s.Directory.PutOrgPolicy(t.Context(), org.ID, directory.OrgPolicy{MinLength: 4}); err != nil {
		t.Fatal(err)
	}
	if p := change(t, b, f, firstPass, "harbour1"); !strings.Contains(p.Body, "at least 10 characters") {
		t.Errorf("an organisation weakened the national minimum: %q", errorMessages(p.Body))
	}
}

// TestUnlockRecordedInTheDirectory locks an account on a server whose
// lockout state lives in its own memory (SQLite and the in-process store),
// then unlocks it as `idp admin user unlock` does from another process, by
// recording the unlock in the directory: the next sign-in gets in.
func TestUnlockRecordedInTheDirectory(t *testing.T) {
	f := newFixture(t)
	b := f.s.Browser(t)
	try := func(pw string) testkit.Page {
		p, _ := b.Follow(b.Get(f.s.URL+"/account"), f.s.URL)
		p, _ = b.Follow(b.SignIn(p, email, pw), f.s.URL)
		return p
	}
	for i := range authn.DefaultLockout.Threshold {
		try(fmt.Sprintf("wrong guess number %d", i))
	}
	if p := try(firstPass); !strings.Contains(p.Body, "too many attempts") {
		t.Fatalf("not locked after %d wrong passwords:\n%.1000s", authn.DefaultLockout.Threshold, p.Body)
	}
	if err := authn.UnlockInDirectory(t.Context(), f.s.Directory, email, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if p := try(firstPass); p.URL.Path != "/account" || !strings.Contains(p.Body, "<title>Your account") {
		t.Errorf("still locked after the unlock was recorded: %d %s\n%.3000s", p.Status, p.URL, p.Body)
	}
}
