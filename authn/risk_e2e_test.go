package authn_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/xml"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/lanyard/lanyard/cmd/idp/server"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/risk/geotest"
	"github.com/lanyard/lanyard/testkit"
)

// Addresses of the test world (documentation ranges, placed by a test
// GeoIP database).
const (
	hospitalIP = "203.0.113.10"  // Leeds, on the hospital network
	parisIP    = "198.51.100.77" // Paris, a hosting provider
	riskPass   = "correct horse battery staple"
)

var riskGeo = []geotest.Network{
	{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Country: "GB", City: "Leeds", Lat: 53.80, Lon: -1.55, ASN: 64600, ASOrg: "Health and Social Care Network"},
	{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: "FR", City: "Paris", Lat: 48.86, Lon: 2.35, ASN: 64900, ASOrg: "Hosting FR"},
}

var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

type riskFixture struct {
	s     *testkit.Server
	sink  *testkit.SMTPSink
	clock *testkit.Clock
	orgID string
	admin directory.User
}

// newRiskFixture starts a server with a test GeoIP database, believing
// X-Forwarded-For from loopback (so browsers can come from anywhere), a
// real SMTP sink, the clock at start, and an organisation with an
// administrator.
func newRiskFixture(t *testing.T, start time.Time, opt testkit.Options) *riskFixture {
	t.Helper()
	sink := testkit.NewSMTPSink(t)
	clock := testkit.NewClock(start)
	geo := filepath.Join(t.TempDir(), "geo.mmdb")
	if err := geotest.WriteFile(geo, riskGeo); err != nil {
		t.Fatal(err)
	}
	opt.Now = clock.Now
	opt.Configure = func(c *server.Config) {
		c.SMTP = server.SMTPConfig{Host: sink.Host, Port: sink.Port, From: "lanyard@lanyard.test", TLS: "none"}
		c.GeoIPDB = geo
		c.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
	}
	s := testkit.NewServer(t, opt)
	by := admin.Actor{ID: "test"}
	o, err := s.Admin.CreateOrganisation(t.Context(), by, "RRK", "Leeds Teaching Hospitals")
	if err != nil {
		t.Fatal(err)
	}
	f := &riskFixture{s: s, sink: sink, clock: clock, orgID: o.ID}
	f.admin = f.user(t, "ada.admin@nhs.net", "Ada Admin", directory.RoleOrgAdmin, directory.RoleStaff)
	return f
}

func (f *riskFixture) user(t *testing.T, email, name string, roles ...directory.Role) directory.User {
	t.Helper()
	cu, err := f.s.Admin.CreateUser(t.Context(), admin.Actor{ID: "test"}, admin.NewUser{OrgODS: "RRK", Email: email, Name: name, Password: riskPass, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	return cu.User
}

// xff adds X-Forwarded-For to every request: the browser's address.
type xff struct {
	base http.RoundTripper
	mu   sync.Mutex
	ip   string
}

func (x *xff) RoundTrip(r *http.Request) (*http.Response, error) {
	x.mu.Lock()
	ip := x.ip
	x.mu.Unlock()
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", ip)
	return x.base.RoundTrip(r)
}

// browser returns a browser at ip with userAgent and an empty cookie jar.
func (f *riskFixture) browser(t *testing.T, ip, userAgent string) *testkit.Browser {
	t.Helper()
	hc := f.s.Client(t)
	hc.Transport = &uaTransport{base: &xff{base: hc.Transport, ip: ip}, ua: userAgent}
	return testkit.NewBrowser(t, hc)
}

type uaTransport struct {
	base http.RoundTripper
	ua   string
}

func (u *uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	return u.base.RoundTrip(r)
}

const (
	uaEdge    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 Edg/124.0"
	uaFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
)

// learn signs the user in at /account from b once a day for days days,
// at hour:05 London time, starting days before until; then it sets the
// clock to until.
func (f *riskFixture) learn(t *testing.T, b *testkit.Browser, email string, hour, days int, until time.Time) {
	t.Helper()
	first := until.In(london).AddDate(0, 0, -days-1)
	for d := range days {
		day := first.AddDate(0, 0, d)
		f.clock.Set(time.Date(day.Year(), day.Month(), day.Day(), hour, 5, 0, 0, london).UTC())
		p, _ := b.Follow(b.Get(f.s.URL+"/account"), f.s.URL)
		if !strings.Contains(p.Body, `name="email"`) {
			// Still signed in from yesterday? Sign out first.
			t.Fatalf("learning day %d: no sign-in page: %d\n%.800s", d, p.Status, p.Body)
		}
		p, _ = b.Follow(b.SignIn(p, email, riskPass), f.s.URL)
		if !strings.Contains(p.Body, "Your account") {
			t.Fatalf("learning day %d: not signed in: %d\n%.1500s", d, p.Status, p.Body)
		}
		f.clock.Advance(11 * time.Hour) // the session lapses before the next day
	}
	f.clock.Set(until)
}

func (f *riskFixture) rp(t *testing.T) *testkit.RP {
	t.Helper()
	c, secret, err := f.s.Admin.CreateClient(t.Context(), admin.Actor{ID: "test"}, admin.NewClient{OrgODS: "RRK", Name: "Rota", RedirectURIs: []string{redirectURI}})
	if err != nil {
		t.Fatal(err)
	}
	return f.s.RP(t, c.ID, secret, redirectURI)
}

func mailText(t *testing.T, m testkit.Mail) string {
	t.Helper()
	b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(m.Data)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mailsTo returns the bodies of every message to addr.
func (f *riskFixture) mailsTo(t *testing.T, addr string) []string {
	t.Helper()
	var out []string
	for _, m := range f.sink.Mails() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, mailText(t, m))
			}
		}
	}
	return out
}

// waitMail waits until addr has a message containing want, and returns it.
func (f *riskFixture) waitMail(t *testing.T, addr, want string) string {
	t.Helper()
	for {
		n := len(f.sink.Mails())
		for _, m := range f.mailsTo(t, addr) {
			if strings.Contains(m, want) {
				return m
			}
		}
		f.sink.Wait(t, n+1) // fails the test after 30 seconds
	}
}

var reportLinkRE = regexp.MustCompile(`https://\S+/login/risk/report\?t=\S+`)

// unusualStart returns a time for the unusual attempt close to the real
// clock (SAML and token checks use it) and a learning hour twelve hours
// away from it.
func unusualStart() (time.Time, int) {
	now := time.Now().UTC().Truncate(time.Second)
	return now, (now.In(london).Hour() + 12) % 24
}

// TestRiskStepUpWithMFA: a user who always signs in at the hospital at
// one hour signs in from a Paris hosting provider, twelve hours off, in a
// new browser: the password is not enough, the second factor is asked for
// (though the organisation does not require it), the user is emailed, the
// application gets its code only after the factor, and the administrators'
// digest lists it.
func TestRiskStepUpWithMFA(t *testing.T) {
	at, hour := unusualStart()
	f := newRiskFixture(t, at.Add(-30*24*time.Hour), testkit.Options{})
	jane := f.user(t, "jane.smith@nhs.net", "Jane Smith")
	f.learn(t, f.browser(t, hospitalIP, uaEdge), jane.Email, hour, 20, at)

	secret := "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	cred, err := f.s.Authn.NewTOTPCredential(jane.ID, "Authenticator app", secret)
	if err == nil {
		err = f.s.Directory.PutCredential(t.Context(), cred)
	}
	if err != nil {
		t.Fatal(err)
	}
	rp := f.rp(t)
	b := f.browser(t, parisIP, uaFirefox)
	ar := rp.AuthURL()
	p, _ := b.Follow(b.Get(ar.URL), f.s.URL)
	p, loc := b.Follow(b.SignIn(p, jane.Email, riskPass), f.s.URL)
	if loc != nil || !strings.Contains(p.Body, "Confirm it’s you") {
		t.Fatalf("unusual sign-in was not stepped up: left for %v, %d\n%.1500s", loc, p.Status, p.Body)
	}
	m := f.waitMail(t, jane.Email, "Was this you?")
	for _, want := range []string{"Paris, FR", "198.51.100.77", "second factor", "/login/risk/report?t="} {
		if !strings.Contains(m, want) {
			t.Errorf("user's alert lacks %q", want)
		}
	}
	p, loc = b.Follow(b.Submit(p, `name="code"`, map[string]string{"code": code(t, secret, f.clock.Now())}), f.s.URL)
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("after the second factor the RP got no code: %d\n%.1500s", p.Status, p.Body)
	}
	f.rpTokenOK(t, rp, ar, loc, jane.ID)

	evs, err := f.s.Directory.RiskEvents(t.Context(), f.orgID, at.Add(-time.Hour), at.Add(time.Hour), 10)
	if err != nil || len(evs) != 1 || evs[0].Decision != directory.RiskStepUp || evs[0].Outcome != "passed" || len(evs[0].Reasons) == 0 {
		t.Fatalf("risk events = %+v, %v; want one passed step-up with reasons", evs, err)
	}
	audit := f.auditDetail(t, jane.ID, "login.risk")
	if audit["decision"] != "step_up" || audit["reasons"] == "" || audit["score"] == "" {
		t.Errorf("audit of the decision = %v", audit)
	}

	// The digest for the period goes to the administrator once, whichever
	// instance sends it.
	f.clock.Set(at.Add(25 * time.Hour))
	if n, err := f.s.Authn.SendRiskDigests(t.Context()); err != nil || n != 1 {
		t.Fatalf("SendRiskDigests = %d, %v; want 1", n, err)
	}
	if n, err := f.s.Authn.SendRiskDigests(t.Context()); err != nil || n != 0 {
		t.Errorf("second SendRiskDigests = %d, %v; want 0", n, err)
	}
	d := f.waitMail(t, f.admin.Email, "Unusual sign-ins")
	for _, want := range []string{"Jane Smith", "asked for a second factor", "Paris, FR", "second factor was proven"} {
		if !strings.Contains(d, want) {
			t.Errorf("digest lacks %q:\n%s", want, d)
		}
	}
}

func (f *riskFixture) rpTokenOK(t *testing.T, rp *testkit.RP, ar testkit.AuthRequest, loc *url.URL, userID string) {
	t.Helper()
	tok, err := rp.Exchange(ar, rp.Callback(ar, loc))
	if err != nil {
		t.Fatal(err)
	}
	var c idClaims
	idt := rp.VerifyIDToken(ar, tok)
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != userID || c.ACR != "urn:lanyard:acr:2fa" {
		t.Errorf("ID token subject %q acr %q, want %q with MFA", idt.Subject, c.ACR, userID)
	}
}

func (f *riskFixture) auditDetail(t *testing.T, userID, action string) map[string]string {
	t.Helper()
	evs, err := f.s.Directory.AuditEventsFor(t.Context(), userID, time.Time{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs { // newest first
		if e.Action == action {
			return e.Detail
		}
	}
	return nil
}

// TestRiskBlockWithoutMFA: the same unusual sign-in by a user with no
// second factor is blocked with a clear page and the RP gets no code; the
// user's "it wasn't me" link locks the account (once) and alerts the
// administrator.
func TestRiskBlockWithoutMFA(t *testing.T) {
	at, hour := unusualStart()
	f := newRiskFixture(t, at.Add(-30*24*time.Hour), testkit.Options{})
	bob := f.user(t, "bob.jones@nhs.net", "Bob Jones")
	f.learn(t, f.browser(t, hospitalIP, uaEdge), bob.Email, hour, 20, at)

	rp := f.rp(t)
	b := f.browser(t, parisIP, uaFirefox)
	ar := rp.AuthURL()
	p, _ := b.Follow(b.Get(ar.URL), f.s.URL)
	p = b.SignIn(p, bob.Email, riskPass)
	p, loc := b.Follow(p, f.s.URL)
	if loc != nil {
		t.Fatalf("blocked sign-in reached the RP: %v", loc)
	}
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "We have stopped this sign-in") || !strings.Contains(p.Body, "no second way to confirm") {
		t.Fatalf("no clear block page: %d\n%.2000s", p.Status, p.Body)
	}
	if strings.Contains(p.Body, `name="code"`) || strings.Contains(p.Body, "Set up an authenticator app") {
		t.Error("a blocked user was offered to enrol a factor")
	}
	// The ceremony is over: going back does not resume it.
	if p := b.Get(f.s.URL + "/login?c=x"); p.Status == http.StatusOK && strings.Contains(p.Body, `name="password"`) {
		t.Error("ceremony still usable after the block")
	}

	alert := f.waitMail(t, bob.Email, "Was this you?")
	if !strings.Contains(alert, "We stopped it") {
		t.Errorf("alert does not say the sign-in was stopped:\n%s", alert)
	}
	link := reportLinkRE.FindString(alert)
	if link == "" {
		t.Fatalf("no report link in:\n%s", alert)
	}
	home := f.browser(t, hospitalIP, uaEdge)
	page := home.Get(link)
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "Paris, FR") {
		t.Fatalf("report page: %d\n%.1500s", page.Status, page.Body)
	}
	// A forged or altered link does nothing.
	if p := home.Get(link + "x"); p.Status != http.StatusBadRequest {
		t.Errorf("altered link: %d, want 400", p.Status)
	}
	done := home.Submit(page, `name="token"`, nil)
	if done.Status != http.StatusOK || !strings.Contains(done.Body, "Your account is locked") {
		t.Fatalf("report: %d\n%.1500s", done.Status, done.Body)
	}
	u, err := f.s.Directory.User(t.Context(), bob.ID)
	if err != nil || u.Status != directory.UserDisabled || !strings.Contains(u.DisabledNote, "not theirs") {
		t.Errorf("after the report the user is %+v, %v; want disabled with a note", u, err)
	}
	alertAdmin := f.waitMail(t, f.admin.Email, "Account locked")
	if !strings.Contains(alertAdmin, "Bob Jones") {
		t.Errorf("administrator's alert lacks the user:\n%s", alertAdmin)
	}
	// The link works once.
	before := len(f.mailsTo(t, f.admin.Email))
	again := home.Submit(page, `name="token"`, nil)
	if again.Status != http.StatusOK || len(f.mailsTo(t, f.admin.Email)) != before {
		t.Errorf("second use of the link: %d, administrator mails %d -> %d", again.Status, before, len(f.mailsTo(t, f.admin.Email)))
	}
	// And the locked account cannot sign in, even from the hospital.
	p, _ = home.Follow(home.Get(f.s.URL+"/account"), f.s.URL)
	if p = home.SignIn(p, bob.Email, riskPass); !strings.Contains(p.Body, "disabled") {
		t.Errorf("locked account signed in: %d", p.Status)
	}
}

// TestRiskNightShiftAllowed: a night-shift nurse who signs in at 02:00
// at the hospital is not troubled at 02:00 at the hospital.
func TestRiskNightShiftAllowed(t *testing.T) {
	night := time.Date(2031, time.March, 20, 2, 0, 0, 0, london).UTC()
	f := newRiskFixture(t, night.Add(-30*24*time.Hour), testkit.Options{})
	nick := f.user(t, "nick.night@nhs.net", "Nick Night")
	b := f.browser(t, hospitalIP, uaEdge)
	f.learn(t, b, nick.Email, 2, 20, night.Add(3*time.Minute))
	rp := f.rp(t)
	ar := rp.AuthURL()
	p, _ := b.Follow(b.Get(ar.URL), f.s.URL)
	p, loc := b.Follow(b.SignIn(p, nick.Email, riskPass), f.s.URL)
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("night-shift sign-in at 02:00 did not reach the RP: %d\n%.1500s", p.Status, p.Body)
	}
	if d := f.auditDetail(t, nick.ID, "login.risk"); d["decision"] != "allow" {
		t.Errorf("decision %v, want allow", d)
	}
	if got := f.mailsTo(t, nick.Email); len(got) != 0 {
		t.Errorf("night-shift nurse was emailed: %q", got)
	}
	// The account page names where the recent sign-ins came from.
	if acct := b.Get(f.s.URL + "/account"); !strings.Contains(acct.Body, "Leeds, GB") || strings.Contains(acct.Body, ">Unknown<") {
		t.Errorf("recent sign-ins do not name the place (Leeds, GB):\n%.3000s", acct.Body)
	}
}

// TestRiskSAMLBlocked: SAML goes through the same ceremony, so the same
// unusual sign-in without a second factor gets the block page and the
// service provider gets no assertion.
func TestRiskSAMLBlocked(t *testing.T) {
	at, hour := unusualStart()
	f := newRiskFixture(t, at.Add(-30*24*time.Hour), testkit.Options{})
	sam := f.user(t, "sam.saml@nhs.net", "Sam Saml")
	f.learn(t, f.browser(t, hospitalIP, uaEdge), sam.Email, hour, 20, at)
	sp := f.newSP(t, "https://rota.example/saml")

	b := f.browser(t, parisIP, uaFirefox)
	req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(crewsaml.HTTPRedirectBinding), crewsaml.HTTPRedirectBinding, crewsaml.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	u, err := req.Redirect("relay", sp)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := b.Follow(b.Get(u.String()), f.s.URL)
	if !strings.Contains(p.Body, `name="email"`) {
		t.Fatalf("SAML request did not start a sign-in: %d\n%.1000s", p.Status, p.Body)
	}
	p, loc := b.Follow(b.SignIn(p, sam.Email, riskPass), f.s.URL)
	if loc != nil || strings.Contains(p.Body, "SAMLResponse") {
		t.Fatalf("blocked SAML sign-in produced a response (left for %v)", loc)
	}
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "We have stopped this sign-in") {
		t.Fatalf("no block page: %d\n%.1500s", p.Status, p.Body)
	}
	f.waitMail(t, sam.Email, "Was this you?")
}

// newSP makes a crewjam service provider registered for the organisation.
func (f *riskFixture) newSP(t *testing.T, entityID string) *crewsaml.ServiceProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test SP"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	acs := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(acs.Close)
	base, _ := url.Parse(acs.URL)
	p := f.s.Browser(t).Get(f.s.URL + "/saml/metadata")
	var ed crewsaml.EntityDescriptor
	if err := xml.Unmarshal([]byte(p.Body), &ed); err != nil {
		t.Fatalf("IdP metadata: %v", err)
	}
	sp := &crewsaml.ServiceProvider{EntityID: entityID, Key: key, Certificate: cert,
		MetadataURL: *base.JoinPath("/saml/metadata"), AcsURL: *base.JoinPath("/saml/acs"), IDPMetadata: &ed}
	md, err := xml.Marshal(sp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.Directory.CreateServiceProvider(t.Context(), directory.ServiceProvider{
		ID: directory.NewID(), EntityID: entityID, OrgID: f.orgID, Name: "Rota", Metadata: md,
		NameIDFormat: directory.NameIDPersistent, CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	return sp
}
