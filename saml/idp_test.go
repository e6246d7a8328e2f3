package saml_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/saml"
	"github.com/lanyard/lanyard/testkit"
)

const (
	email    = "jane.smith@nhs.net"
	password = "correct horse battery staple"
	spEntity = "https://rota.example/saml"
)

type fixture struct {
	s      *testkit.Server
	orgID  string
	userID string
}

func newFixture(t testing.TB, opt testkit.Options) *fixture {
	t.Helper()
	s := testkit.NewServer(t, opt)
	ctx := t.Context()
	by := admin.Actor{ID: "test"}
	o, err := s.Admin.CreateOrganisation(ctx, by, "RRK", "Leeds Teaching Hospitals")
	if err != nil {
		t.Fatal(err)
	}
	cu, err := s.Admin.CreateUser(ctx, by, admin.NewUser{OrgODS: "RRK", Email: email, Name: "Jane Smith", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{s: s, orgID: o.ID, userID: cu.User.ID}
}

// idpMetadata fetches and parses the IdP's metadata.
func (f *fixture) idpMetadata(t testing.TB) *crewsaml.EntityDescriptor {
	t.Helper()
	p := f.s.Browser(t).Get(f.s.URL + "/saml/metadata")
	if p.Status != http.StatusOK {
		t.Fatalf("GET /saml/metadata: %d\n%.1000s", p.Status, p.Body)
	}
	var ed crewsaml.EntityDescriptor
	if err := xml.Unmarshal([]byte(p.Body), &ed); err != nil {
		t.Fatalf("parse IdP metadata: %v", err)
	}
	return &ed
}

// newSP makes a crewjam service provider with its own key and an ACS URL
// on a loopback server; register adds it to the directory.
func (f *fixture) newSP(t testing.TB, entityID string) *crewsaml.ServiceProvider {
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
	return &crewsaml.ServiceProvider{
		EntityID: entityID, Key: key, Certificate: cert,
		MetadataURL: *base.JoinPath("/saml/metadata"), AcsURL: *base.JoinPath("/saml/acs"),
		IDPMetadata: f.idpMetadata(t),
	}
}

func (f *fixture) register(t testing.TB, sp *crewsaml.ServiceProvider, nameID string, attrs ...string) {
	t.Helper()
	md, err := xml.Marshal(sp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saml.ParseSPMetadata(md, time.Now()); err != nil {
		t.Fatalf("SP metadata: %v", err)
	}
	if err := f.s.Directory.CreateServiceProvider(t.Context(), directory.ServiceProvider{
		ID: directory.NewID(), EntityID: sp.EntityID, OrgID: f.orgID, Name: "Rota", Metadata: md,
		NameIDFormat: nameID, Attributes: attrs, CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
}

// authnRequest makes an SP-initiated request over HTTP-Redirect and
// returns its URL and ID.
func authnRequest(t testing.TB, sp *crewsaml.ServiceProvider, relayState string, edit func(*crewsaml.AuthnRequest)) (string, string) {
	t.Helper()
	req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(crewsaml.HTTPRedirectBinding), crewsaml.HTTPRedirectBinding, crewsaml.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(req)
	}
	u, err := req.Redirect(relayState, sp)
	if err != nil {
		t.Fatal(err)
	}
	return u.String(), req.ID
}

// acsPost turns the IdP's auto-posting form into the request the browser
// would send to the SP's ACS, after checking where it goes.
func acsPost(t testing.TB, sp *crewsaml.ServiceProvider, p testkit.Page) (*http.Request, url.Values) {
	t.Helper()
	action, fields := p.Form(t, `name="SAMLResponse"`)
	if action != sp.AcsURL.String() {
		t.Errorf("response form posts to %q, want the ACS URL %q", action, sp.AcsURL.String())
	}
	r := httptest.NewRequest(http.MethodPost, action, strings.NewReader(fields.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := r.ParseForm(); err != nil {
		t.Fatal(err)
	}
	return r, fields
}

func attr(a *crewsaml.Assertion, name string) []string {
	var out []string
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			if at.Name == name {
				for _, v := range at.Values {
					out = append(out, v.Value)
				}
			}
		}
	}
	return out
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

func TestSPInitiatedRedirectThenOIDCSSO(t *testing.T) {
	each(t, func(t *testing.T, opt testkit.Options) {
		f := newFixture(t, opt)
		sp := f.newSP(t, spEntity)
		f.register(t, sp, directory.NameIDPersistent, "email", "odsCode", "roles")
		b := f.s.Browser(t)

		reqURL, reqID := authnRequest(t, sp, "relay-1", nil)
		p, loc := b.Follow(b.Get(reqURL), f.s.URL)
		if loc != nil || !strings.Contains(p.Body, `name="email"`) {
			t.Fatalf("SSO without a session: want the login page, got %d %s (left for %v)", p.Status, p.URL, loc)
		}
		// The login page answers the AuthnRequest itself, with the
		// headers every Lanyard page carries.
		for h, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
			if got := p.Header.Get(h); got != want {
				t.Errorf("login page at %s: %s %q, want %q", p.URL.Path, h, got, want)
			}
		}
		if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("login page at %s: Content-Security-Policy %q, want frame-ancestors 'none'", p.URL.Path, csp)
		}
		p, loc = b.Follow(b.SignIn(p, email, password), f.s.URL)
		if loc != nil || p.Status != http.StatusOK {
			t.Fatalf("after sign-in: %d %s (left for %v)\n%.2000s", p.Status, p.URL, loc, p.Body)
		}
		r, fields := acsPost(t, sp, p)
		if got := fields.Get("RelayState"); got != "relay-1" {
			t.Errorf("RelayState = %q, want %q", got, "relay-1")
		}
		a, err := sp.ParseResponse(r, []string{reqID})
		if err != nil {
			t.Fatalf("SP ParseResponse: %v", private(err))
		}
		nameID := a.Subject.NameID
		if nameID.Format != saml.NameIDFormatPersistent || nameID.Value == "" || strings.Contains(nameID.Value, f.userID) || strings.Contains(nameID.Value, "@") {
			t.Errorf("NameID = %+v, want an opaque persistent value", nameID)
		}
		if got := attr(a, "email"); !slices.Equal(got, []string{email}) {
			t.Errorf("email = %q, want %q", got, email)
		}
		if got := attr(a, "odsCode"); !slices.Equal(got, []string{"RRK"}) {
			t.Errorf("odsCode = %q, want RRK", got)
		}
		if got := attr(a, "roles"); len(got) == 0 {
			t.Errorf("roles missing")
		}
		if got := attr(a, "displayName"); got != nil {
			t.Errorf("displayName = %q released, but the SP did not choose it", got)
		}

		// A second request from the same SP: SSO, same NameID, no prompt.
		reqURL, reqID = authnRequest(t, sp, "relay-2", nil)
		p, _ = b.Follow(b.Get(reqURL), f.s.URL)
		r, _ = acsPost(t, sp, p)
		a2, err := sp.ParseResponse(r, []string{reqID})
		if err != nil {
			t.Fatalf("SSO ParseResponse: %v", private(err))
		}
		if a2.Subject.NameID.Value != nameID.Value {
			t.Errorf("persistent NameID changed: %q then %q", nameID.Value, a2.Subject.NameID.Value)
		}

		// ForceAuthn asks for the password again.
		reqURL, _ = authnRequest(t, sp, "", func(r *crewsaml.AuthnRequest) { force := true; r.ForceAuthn = &force })
		if p, _ := b.Follow(b.Get(reqURL), f.s.URL); !strings.Contains(p.Body, `name="email"`) {
			t.Errorf("ForceAuthn: want the login page, got %d\n%.500s", p.Status, p.Body)
		}

		// SSO across protocols: OIDC in the same browser, no password.
		const redirectURI = "http://127.0.0.1:9999/callback"
		c, secret, err := f.s.Admin.CreateClient(t.Context(), admin.Actor{ID: "test"}, admin.NewClient{OrgODS: "RRK", Name: "Rostering",
			RedirectURIs: []string{redirectURI}})
		if err != nil {
			t.Fatal(err)
		}
		rp := f.s.RP(t, c.ID, secret, redirectURI)
		ar := rp.AuthURL()
		p, loc = b.Follow(b.Get(ar.URL), f.s.URL)
		if loc == nil {
			t.Fatalf("OIDC after SAML login showed a page: %d %s", p.Status, p.URL)
		}
		tok, err := rp.Exchange(ar, rp.Callback(ar, loc))
		if err != nil {
			t.Fatal(err)
		}
		if idt := rp.VerifyIDToken(ar, tok); idt.Subject != f.userID {
			t.Errorf("OIDC subject %q, want %q", idt.Subject, f.userID)
		}
	})
}

func TestEmailNameIDAndPassive(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	sp := f.newSP(t, spEntity)
	f.register(t, sp, directory.NameIDEmail)
	b := f.s.Browser(t)

	// IsPassive without a session: a NoPassive status, no login page.
	reqURL, reqID := authnRequest(t, sp, "", func(r *crewsaml.AuthnRequest) { passive := true; r.IsPassive = &passive })
	p, _ := b.Follow(b.Get(reqURL), f.s.URL)
	r, fields := acsPost(t, sp, p)
	raw, _ := base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
	if !strings.Contains(string(raw), crewsaml.StatusNoPassive) {
		t.Errorf("IsPassive without a session: response lacks NoPassive:\n%s", raw)
	}
	if _, err := sp.ParseResponse(r, []string{reqID}); err == nil {
		t.Error("SP accepted a NoPassive response as a login")
	}

	reqURL, reqID = authnRequest(t, sp, "", nil)
	p, _ = b.Follow(b.Get(reqURL), f.s.URL)
	p, _ = b.Follow(b.SignIn(p, email, password), f.s.URL)
	r, _ = acsPost(t, sp, p)
	a, err := sp.ParseResponse(r, []string{reqID})
	if err != nil {
		t.Fatalf("ParseResponse: %v", private(err))
	}
	if n := a.Subject.NameID; n.Format != saml.NameIDFormatEmail || n.Value != email {
		t.Errorf("NameID = %+v, want the email", n)
	}
	if len(a.AttributeStatements) != 0 {
		t.Errorf("attributes released to an SP that chose none: %+v", a.AttributeStatements)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	known := f.newSP(t, spEntity)
	f.register(t, known, directory.NameIDPersistent, "email")
	unknown := f.newSP(t, "https://unknown.example/saml")
	b := f.s.Browser(t)
	// Sign in first, so a refusal cannot be blamed on the missing session.
	reqURL, _ := authnRequest(t, known, "", nil)
	p, _ := b.Follow(b.Get(reqURL), f.s.URL)
	b.Follow(b.SignIn(p, email, password), f.s.URL)

	for _, c := range []struct {
		name string
		url  string
	}{
		{"unknown SP", func() string { u, _ := authnRequest(t, unknown, "", nil); return u }()},
		{"ACS URL not in metadata", func() string {
			u, _ := authnRequest(t, known, "", func(r *crewsaml.AuthnRequest) {
				r.AssertionConsumerServiceURL = "https://evil.example/acs"
			})
			return u
		}()},
		{"not SAML", f.s.URL + "/saml/sso?SAMLRequest=bm90IHNhbWw%3D"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, loc := b.Follow(b.Get(c.url), f.s.URL)
			if p.Status == http.StatusOK || strings.Contains(p.Body, "SAMLResponse") || loc != nil {
				t.Errorf("got %d (left for %v), want a refusal without SAMLResponse\n%.500s", p.Status, loc, p.Body)
			}
		})
	}

	// A resume link is single use.
	if p := b.Get(f.s.URL + "/saml/sso/resume?r=nope"); p.Status != http.StatusBadRequest {
		t.Errorf("unknown resume id: %d, want 400", p.Status)
	}
}

func TestMetadata(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	md := f.idpMetadata(t)
	if got, want := md.EntityID, f.s.URL+"/saml/metadata"; got != want {
		t.Errorf("entityID = %q, want %q", got, want)
	}
	if len(md.IDPSSODescriptors) != 1 {
		t.Fatalf("%d IDPSSODescriptors, want 1", len(md.IDPSSODescriptors))
	}
	d := md.IDPSSODescriptors[0]
	var bindings []string
	for _, s := range d.SingleSignOnServices {
		if s.Location != f.s.URL+"/saml/sso" {
			t.Errorf("SSO location %q", s.Location)
		}
		bindings = append(bindings, s.Binding)
	}
	slices.Sort(bindings)
	if want := []string{crewsaml.HTTPPostBinding, crewsaml.HTTPRedirectBinding}; !slices.Equal(bindings, want) {
		t.Errorf("SSO bindings = %q, want %q", bindings, want)
	}
	var formats []string
	for _, n := range d.NameIDFormats {
		formats = append(formats, string(n))
	}
	if want := []string{saml.NameIDFormatPersistent, saml.NameIDFormatEmail}; !slices.Equal(formats, want) {
		t.Errorf("NameID formats = %q, want %q", formats, want)
	}
	if len(d.KeyDescriptors) != 1 || d.KeyDescriptors[0].Use != "signing" {
		t.Fatalf("key descriptors = %+v, want one signing key", d.KeyDescriptors)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(d.KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data), ""))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}

	// The certificate's key is the one the OIDC JWKS publishes under the
	// current key ID.
	_, kid, err := f.s.OIDC.SigningRSAKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "Lanyard SAML signing "+kid {
		t.Errorf("certificate CN = %q, want it to name kid %q", cert.Subject.CommonName, kid)
	}
	jwk := jwksKey(t, f, kid)
	pub := cert.PublicKey.(*rsa.PublicKey)
	if !pub.Equal(jwk) {
		t.Error("metadata certificate key differs from the JWKS signing key")
	}

	// Every instance makes the same certificate.
	second := testkit.NewServer(t, testkit.Options{Share: f.s})
	p := second.Browser(t).Get(second.Base + "/saml/metadata")
	var md2 crewsaml.EntityDescriptor
	if err := xml.Unmarshal([]byte(p.Body), &md2); err != nil {
		t.Fatal(err)
	}
	if got := md2.IDPSSODescriptors[0].KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data; got != d.KeyDescriptors[0].KeyInfo.X509Data.X509Certificates[0].Data {
		t.Error("a second instance publishes a different certificate")
	}
}

func jwksKey(t *testing.T, f *fixture, kid string) *rsa.PublicKey {
	t.Helper()
	hc := f.s.Client(t)
	get := func(u string, v any) {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
	var disc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	get(f.s.URL+"/.well-known/openid-configuration", &disc)
	var set struct {
		Keys []struct{ Kid, Kty, N, E string }
	}
	get(disc.JWKSURI, &set)
	for _, k := range set.Keys {
		if k.Kid != kid || k.Kty != "RSA" {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil {
			t.Fatalf("JWK %s: bad n or e", kid)
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	t.Fatalf("JWKS has no RSA key %q", kid)
	return nil
}

// private returns the cause crewjam keeps out of its error message.
func private(err error) error {
	var ie *crewsaml.InvalidResponseError
	if errors.As(err, &ie) {
		return ie.PrivateErr
	}
	return err
}

func TestSPInitiatedPostBinding(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	sp := f.newSP(t, spEntity)
	f.register(t, sp, directory.NameIDPersistent, "email", "organisationName")
	b := f.s.Browser(t)

	req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(crewsaml.HTTPPostBinding), crewsaml.HTTPPostBinding, crewsaml.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	spPage := testkit.Page{URL: &sp.AcsURL, Body: string(req.Post("relay-post"))}
	action, fields := spPage.Form(t, `name="SAMLRequest"`)
	if action != f.s.URL+"/saml/sso" {
		t.Fatalf("SP posts to %q", action)
	}
	p, _ := b.Follow(b.Post(action, fields), f.s.URL)
	p, _ = b.Follow(b.SignIn(p, email, password), f.s.URL)
	r, got := acsPost(t, sp, p)
	if got.Get("RelayState") != "relay-post" {
		t.Errorf("RelayState = %q, want relay-post", got.Get("RelayState"))
	}
	a, err := sp.ParseResponse(r, []string{req.ID})
	if err != nil {
		t.Fatalf("ParseResponse: %v", private(err))
	}
	if got := attr(a, "organisationName"); !slices.Equal(got, []string{"Leeds Teaching Hospitals"}) {
		t.Errorf("organisationName = %q", got)
	}
	if cr := a.AuthnStatements[0].AuthnContext.AuthnContextClassRef; cr == nil || cr.Value != saml.ContextPassword {
		t.Errorf("AuthnContextClassRef = %+v, want %s", cr, saml.ContextPassword)
	}
}

// TestResumeIsBoundToTheBrowser: the link that resumes a request after
// sign-in works only in the browser that made the request.
func TestResumeIsBoundToTheBrowser(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	sp := f.newSP(t, spEntity)
	f.register(t, sp, directory.NameIDPersistent, "email")
	victim := f.s.Browser(t)
	reqURL, _ := authnRequest(t, sp, "relay-1", nil)
	p, _ := victim.Follow(victim.Get(reqURL), f.s.URL)
	p, _ = victim.Follow(victim.SignIn(p, email, password), f.s.URL)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "SAMLResponse") {
		t.Fatalf("victim's own flow: %d", p.Status)
	}
	other := f.s.Browser(t)
	reqURL, _ = authnRequest(t, sp, "relay-2", nil)
	p, _ = other.Follow(other.Get(reqURL), f.s.URL)
	after := other.SignIn(p, email, password) // redirect chain towards /saml/sso/resume?r=…
	var resume string
	for range 5 {
		loc := after.Header.Get("Location")
		if strings.Contains(loc, "/saml/sso/resume") {
			u, _ := after.URL.Parse(loc)
			resume = u.String()
			break
		}
		u, _ := after.URL.Parse(loc)
		after = other.Get(u.String())
	}
	if resume == "" {
		t.Fatal("no resume link in the redirects after sign-in")
	}
	if got := victim.Get(resume); got.Status != http.StatusBadRequest || strings.Contains(got.Body, "SAMLResponse") {
		t.Errorf("another browser resumed the request: %d", got.Status)
	}
	if got := other.Get(resume); got.Status != http.StatusOK || !strings.Contains(got.Body, "SAMLResponse") {
		t.Errorf("the request's own browser could not resume after another tried: %d", got.Status)
	}
}
