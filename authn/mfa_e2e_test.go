package authn_test

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/testkit"
)

var (
	secretRE = regexp.MustCompile(`Key: <strong class="lanyard-secret">([A-Z2-7 ]+)</strong>`)
	codesRE  = regexp.MustCompile(`<li><strong>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</strong></li>`)
)

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type mfaFixture struct {
	*fixture
	rp *testkit.RP
}

// newAdminFixture makes Jane an organisation administrator, who must use MFA.
func newAdminFixture(t *testing.T) *mfaFixture {
	t.Helper()
	f := newFixture(t)
	org, _ := f.s.Directory.OrganisationByODS(t.Context(), "RRK")
	if err := f.s.Directory.PutMembership(t.Context(), directory.Membership{UserID: f.userID, OrgID: org.ID,
		Roles: []directory.Role{directory.RoleOrgAdmin, directory.RoleStaff}, CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	c, secret, err := f.s.Admin.CreateClient(t.Context(), admin.Actor{ID: "test"}, admin.NewClient{OrgODS: "RRK", Name: "Rota", RedirectURIs: []string{redirectURI}})
	if err != nil {
		t.Fatal(err)
	}
	return &mfaFixture{fixture: f, rp: f.s.RP(t, c.ID, secret, redirectURI)}
}

type idClaims struct {
	AMR []string `json:"amr"`
	ACR string   `json:"acr"`
}

// finishAtRP follows the browser to the RP and checks the ID token's amr.
func (f *mfaFixture) finishAtRP(t *testing.T, b *testkit.Browser, p testkit.Page, ar testkit.AuthRequest, wantAMR ...string) {
	t.Helper()
	p, loc := b.Follow(p, f.s.URL)
	if loc == nil {
		t.Fatalf("not sent to the RP: %d %s\n%.1500s", p.Status, p.URL, p.Body)
	}
	tok, err := f.rp.Exchange(ar, f.rp.Callback(ar, loc))
	if err != nil {
		t.Fatal(err)
	}
	var c idClaims
	if err := f.rp.VerifyIDToken(ar, tok).Claims(&c); err != nil {
		t.Fatal(err)
	}
	for _, m := range wantAMR {
		if !slices.Contains(c.AMR, m) {
			t.Errorf("amr %v lacks %q", c.AMR, m)
		}
	}
	if wantMFA := slices.Contains(wantAMR, "mfa"); wantMFA != (c.ACR == "urn:lanyard:acr:2fa") {
		t.Errorf("acr %q with amr %v", c.ACR, c.AMR)
	}
}

// TestTOTPEnrolAndSignIn: an administrator without MFA must enrol before
// any application gets a code; then the code step refuses wrong, replayed
// and stale codes, and a recovery code works once.
func TestTOTPEnrolAndSignIn(t *testing.T) {
	f := newAdminFixture(t)
	b := f.s.Browser(t)
	ar := f.rp.AuthURL()
	p, _ := b.Follow(b.Get(ar.URL), f.s.URL)
	p, loc := b.Follow(b.SignIn(p, email, firstPass), f.s.URL)
	if loc != nil || !strings.Contains(p.Body, "Set up an authenticator app") {
		t.Fatalf("administrator without MFA reached %v instead of enrolment", loc)
	}
	if !strings.Contains(p.Body, `src="data:image/png;base64,`) {
		t.Error("enrolment page has no QR code")
	}
	m := secretRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no secret on the enrolment page")
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	if got := b.Submit(p, `name="code"`, map[string]string{"code": "000000"}); got.Status != http.StatusUnprocessableEntity {
		t.Errorf("wrong first code: %d", got.Status)
	}
	codes := b.Submit(p, `name="code"`, map[string]string{"code": code(t, secret, f.clock.Now())})
	recovery := codesRE.FindAllStringSubmatch(codes.Body, -1)
	if len(recovery) != 10 {
		t.Fatalf("%d recovery codes shown, want 10", len(recovery))
	}
	f.finishAtRP(t, b, b.Submit(codes, `name="saved_codes"`, nil), ar, "pwd", "otp", "mfa")
	if !strings.Contains(f.sink.Wait(t, 1)[0].Data, "authenticator app was added") {
		t.Error("no email about the new factor")
	}

	signIn := func(b *testkit.Browser) (testkit.Page, testkit.AuthRequest) {
		ar := f.rp.AuthURL(oauth2.SetAuthURLParam("prompt", "login"))
		p, _ := b.Follow(b.Get(ar.URL), f.s.URL)
		p, _ = b.Follow(b.SignIn(p, email, firstPass), f.s.URL)
		if !strings.Contains(p.Body, "Confirm it’s you") {
			t.Fatalf("no second-factor step:\n%.1500s", p.Body)
		}
		return p, ar
	}
	f.clock.Advance(2 * time.Minute)
	b2 := f.s.Browser(t)
	p, ar = signIn(b2)
	for name, c := range map[string]string{
		"wrong":          "123456",
		"two steps ago":  code(t, secret, f.clock.Now().Add(-60*time.Second)),
		"not six digits": "12345",
	} {
		if got := b2.Submit(p, `name="code"`, map[string]string{"code": c}); got.Status != http.StatusUnprocessableEntity {
			t.Errorf("%s code: %d, want 422", name, got.Status)
		}
	}
	good := code(t, secret, f.clock.Now().Add(-30*time.Second)) // one step of skew is allowed
	f.finishAtRP(t, b2, b2.Submit(p, `name="code"`, map[string]string{"code": good}), ar, "pwd", "otp", "mfa")

	b3 := f.s.Browser(t)
	p, _ = signIn(b3)
	if got := b3.Submit(p, `name="code"`, map[string]string{"code": good}); got.Status != http.StatusUnprocessableEntity {
		t.Errorf("replayed code: %d, want 422", got.Status)
	}

	// Five wrong codes within 15 minutes block codes for the rest of them.
	b6 := f.s.Browser(t)
	p, _ = signIn(b6)
	if got := b6.Submit(p, `name="code"`, map[string]string{"code": code(t, secret, f.clock.Now())}); got.Status != http.StatusTooManyRequests {
		t.Errorf("a right code after five wrong ones: %d, want 429", got.Status)
	}
	f.clock.Advance(16 * time.Minute)

	// A recovery code works once.
	b4 := f.s.Browser(t)
	p, ar = signIn(b4)
	p = b4.Get(f.s.URL + strings.ReplaceAll(regexp.MustCompile(`href="(/login\?c=[A-Z0-9]+&amp;recovery=1)"`).FindStringSubmatch(p.Body)[1], "&amp;", "&"))
	f.finishAtRP(t, b4, b4.Submit(p, `name="code"`, map[string]string{"code": strings.ToLower(recovery[0][1])}), ar, "otp", "mfa")
	b5 := f.s.Browser(t)
	p, _ = signIn(b5)
	p = b5.Get(f.s.URL + strings.ReplaceAll(regexp.MustCompile(`href="(/login\?c=[A-Z0-9]+&amp;recovery=1)"`).FindStringSubmatch(p.Body)[1], "&amp;", "&"))
	if got := b5.Submit(p, `name="code"`, map[string]string{"code": recovery[0][1]}); got.Status != http.StatusUnprocessableEntity {
		t.Errorf("spent recovery code: %d, want 422", got.Status)
	}
}

// TestStepUpForACRValues: a staff member signed in with a password only
// is asked for a second factor (not refused) when an application asks for
// acr_values MFA, and enrols if they have none.
func TestStepUpForACRValues(t *testing.T) {
	f := newFixture(t)
	c, secret, err := f.s.Admin.CreateClient(t.Context(), admin.Actor{ID: "test"}, admin.NewClient{OrgODS: "RRK", Name: "Prescribing", RedirectURIs: []string{redirectURI}})
	if err != nil {
		t.Fatal(err)
	}
	mf := &mfaFixture{fixture: f, rp: f.s.RP(t, c.ID, secret, redirectURI)}
	b := f.s.Browser(t)
	ar := mf.rp.AuthURL()
	p, _ := b.Follow(b.Get(ar.URL), f.s.URL)
	mf.finishAtRP(t, b, b.SignIn(p, email, firstPass), ar, "pwd")

	ar = mf.rp.AuthURL(oauth2.SetAuthURLParam("acr_values", "urn:lanyard:acr:2fa"))
	p, loc := b.Follow(b.Get(ar.URL), f.s.URL)
	if loc != nil || !strings.Contains(p.Body, "Set up an authenticator app") {
		t.Fatalf("acr_values MFA with a password session: %v, want a step-up to enrolment", loc)
	}
	secretText := strings.ReplaceAll(secretRE.FindStringSubmatch(p.Body)[1], " ", "")
	codes := b.Submit(p, `name="code"`, map[string]string{"code": code(t, secretText, f.clock.Now())})
	mf.finishAtRP(t, b, b.Submit(codes, `name="saved_codes"`, nil), ar, "pwd", "otp", "mfa")
}

func TestTOTPImportedToken(t *testing.T) {
	f := newAdminFixture(t)
	const seed = "JBSWY3DPEHPK3PXPJBSWY3DP"
	u, _ := f.s.Directory.User(t.Context(), f.userID)
	cred, err := f.s.Authn.NewTOTPCredential(u.ID, "Hardware token", seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.Directory.PutCredential(t.Context(), cred); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Authn.NewTOTPCredential(u.ID, "bad", "not base32!"); err == nil {
		t.Error("a malformed seed was accepted")
	}
	b := f.s.Browser(t)
	ar := f.rp.AuthURL()
	p, _ := b.Follow(b.Get(ar.URL), f.s.URL)
	p, _ = b.Follow(b.SignIn(p, email, firstPass), f.s.URL)
	f.finishAtRP(t, b, b.Submit(p, `name="code"`, map[string]string{"code": code(t, seed, f.clock.Now())}), ar, "pwd", "otp", "mfa")
}

// TestOrganisationRequiresMFAAndNewRecoveryCodes: an organisation that
// requires MFA sends its staff to enrolment; recovery codes can be made
// anew from the account page, and only the new ones work.
func TestOrganisationRequiresMFAAndNewRecoveryCodes(t *testing.T) {
	f := newFixture(t)
	org, _ := f.s.Directory.OrganisationByODS(t.Context(), "RRK")
	if err := f.s.Directory.PutOrgPolicy(t.Context(), org.ID, directory.OrgPolicy{RequireMFA: true}); err != nil {
		t.Fatal(err)
	}
	b := f.s.Browser(t)
	p, _ := b.Follow(b.Get(f.s.URL+"/account"), f.s.URL)
	p, _ = b.Follow(b.SignIn(p, email, firstPass), f.s.URL)
	if !strings.Contains(p.Body, "Set up an authenticator app") {
		t.Fatalf("staff of an organisation requiring MFA were not sent to enrolment:\n%.1500s", p.Body)
	}
	secret := strings.ReplaceAll(secretRE.FindStringSubmatch(p.Body)[1], " ", "")
	codesPage := b.Submit(p, `name="code"`, map[string]string{"code": code(t, secret, f.clock.Now())})
	first := codesRE.FindAllStringSubmatch(codesPage.Body, -1)
	p, _ = b.Follow(b.Submit(codesPage, `name="saved_codes"`, nil), f.s.URL)
	if !strings.Contains(p.Body, "Make new recovery codes") {
		t.Fatal("account page has no recovery-code button")
	}
	fresh := b.Submit(p, `Make new recovery codes`, nil)
	second := codesRE.FindAllStringSubmatch(fresh.Body, -1)
	if len(second) != 10 || second[0][1] == first[0][1] {
		t.Fatalf("new recovery codes: %d, first %v", len(second), second)
	}
	useRecovery := func(c string) int {
		b := f.s.Browser(t)
		p, _ := b.Follow(b.Get(f.s.URL+"/account"), f.s.URL)
		p, _ = b.Follow(b.SignIn(p, email, firstPass), f.s.URL)
		p = b.Get(f.s.URL + strings.ReplaceAll(regexp.MustCompile(`href="(/login\?c=[A-Z0-9]+&amp;recovery=1)"`).FindStringSubmatch(p.Body)[1], "&amp;", "&"))
		return b.Submit(p, `name="code"`, map[string]string{"code": c}).Status
	}
	if got := useRecovery(first[1][1]); got != http.StatusUnprocessableEntity {
		t.Errorf("an old recovery code after regeneration: %d, want 422", got)
	}
	if got := useRecovery(second[1][1]); got != http.StatusSeeOther {
		t.Errorf("a new recovery code: %d, want 303", got)
	}
}

// TestRemoveAuthenticatorApp: a member of staff removes their own
// authenticator app from the security keys page. A forged form and a stale
// sign-in remove nothing; a fresh one removes it, emails the user and is
// audited; and an administrator, who must use MFA, is then asked to set up
// a second factor again at the next sign-in.
func TestRemoveAuthenticatorApp(t *testing.T) {
	f := newAdminFixture(t)
	b := f.s.Browser(t)
	ar := f.rp.AuthURL()
	p, _ := b.Follow(b.Get(ar.URL), f.s.URL)
	p, _ = b.Follow(b.SignIn(p, email, firstPass), f.s.URL)
	m := secretRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no enrolment page:\n%.1500s", p.Body)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	codes := b.Submit(p, `name="code"`, map[string]string{"code": code(t, secret, f.clock.Now())})
	f.finishAtRP(t, b, b.Submit(codes, `name="saved_codes"`, nil), ar, "otp", "mfa")
	f.sink.Wait(t, 1) // "an authenticator app was added"
	apps := func() int {
		creds, err := f.s.Directory.Credentials(t.Context(), f.userID, directory.CredentialTOTP)
		if err != nil {
			t.Fatal(err)
		}
		return len(creds)
	}

	page := b.Get(f.s.URL + "/account/security-keys")
	if !strings.Contains(page.Body, "Remove the authenticator app") {
		t.Fatalf("security keys page does not offer to remove the app:\n%.2000s", page.Body)
	}
	forged := b.Post(f.s.URL+"/account/authenticator-app/remove", url.Values{"csrf_token": {"forged"}, "remove_app": {"1"}})
	if forged.Status != http.StatusForbidden || apps() != 1 {
		t.Errorf("forged removal: %d, %d apps left, want 403 and 1", forged.Status, apps())
	}

	// Ten minutes after signing in, removing asks for a new sign-in first.
	f.clock.Advance(11 * time.Minute)
	stale := b.Submit(page, `name="remove_app"`, nil)
	if loc := stale.Header.Get("Location"); stale.Status/100 != 3 || !strings.HasPrefix(loc, "/login") || apps() != 1 {
		t.Errorf("stale sign-in: %d to %q with %d apps, want a redirect to sign in and the app kept", stale.Status, loc, apps())
	}

	// After signing in again (password and code), it goes.
	ar = f.rp.AuthURL(oauth2.SetAuthURLParam("prompt", "login"))
	p, _ = b.Follow(b.Get(ar.URL), f.s.URL)
	p, _ = b.Follow(b.SignIn(p, email, firstPass), f.s.URL)
	f.finishAtRP(t, b, b.Submit(p, `name="code"`, map[string]string{"code": code(t, secret, f.clock.Now())}), ar, "otp", "mfa")
	page = b.Get(f.s.URL + "/account/security-keys")
	done := b.Submit(page, `name="remove_app"`, nil)
	if done.Status != http.StatusSeeOther || done.Header.Get("Location") != "/account/security-keys" || apps() != 0 {
		t.Fatalf("removal: %d to %q with %d apps left, want 303 back to the page and none", done.Status, done.Header.Get("Location"), apps())
	}
	if after := b.Get(f.s.URL + "/account/security-keys"); strings.Contains(after.Body, "Remove the authenticator app") {
		t.Error("the page still offers the removed app")
	}
	if mails := f.sink.Wait(t, 2); !strings.Contains(mails[1].Data, "authenticator app was removed") {
		t.Errorf("no email about the removal:\n%s", mails[1].Data)
	}
	evs, err := f.s.Directory.AuditEventsFor(t.Context(), f.userID, f.clock.Now().Add(-time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(evs, func(e directory.AuditEvent) bool { return e.Action == "mfa.remove" && e.Detail["method"] == "totp" }) {
		t.Error("no mfa.remove of the app in the audit log")
	}

	// An administrator must still use a second factor: set one up again.
	ar = f.rp.AuthURL()
	b2 := f.s.Browser(t)
	p, _ = b2.Follow(b2.Get(ar.URL), f.s.URL)
	p, loc := b2.Follow(b2.SignIn(p, email, firstPass), f.s.URL)
	if loc != nil || !strings.Contains(p.Body, "Set up an authenticator app") {
		t.Errorf("administrator without a second factor reached %v instead of enrolment", loc)
	}
}
