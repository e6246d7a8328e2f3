package saml_test

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/lanyard/lanyard/cmd/idp/server"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/saml"
	"github.com/lanyard/lanyard/testkit"
)

// signIn signs the browser in through an SP-initiated request of sp,
// returning the assertion.
func (f *fixture) signIn(t testing.TB, b *testkit.Browser, sp *crewsaml.ServiceProvider) *crewsaml.Assertion {
	t.Helper()
	reqURL, reqID := authnRequest(t, sp, "", nil)
	p, _ := b.Follow(b.Get(reqURL), f.s.URL)
	if strings.Contains(p.Body, `name="email"`) {
		p, _ = b.Follow(b.SignIn(p, email, password), f.s.URL)
	}
	r, _ := acsPost(t, sp, p)
	a, err := sp.ParseResponse(r, []string{reqID})
	if err != nil {
		t.Fatalf("ParseResponse: %v", private(err))
	}
	return a
}

// refusal checks that p is a 400 page with title and no SAML response.
func refusal(t *testing.T, p testkit.Page, title string) {
	t.Helper()
	if p.Status != http.StatusBadRequest || strings.Contains(p.Body, "SAMLResponse") || !strings.Contains(p.Body, title) {
		t.Errorf("got %d, want 400 %q without a SAMLResponse:\n%.800s", p.Status, title, p.Body)
	}
}

func TestIdPInitiated(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	base := f.newSP(t, spEntity) // key, certificate and the IdP's metadata
	spSrv := httptest.NewUnstartedServer(nil)
	u, _ := url.Parse("http://" + spSrv.Listener.Addr().String())
	mw, err := samlsp.New(samlsp.Options{EntityID: spEntity, URL: *u, Key: base.Key.(*rsa.PrivateKey), Certificate: base.Certificate,
		IDPMetadata: base.IDPMetadata, AllowIDPInitiated: true})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/saml/", mw)
	mux.Handle("/", mw.RequireAccount(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s at %s", samlsp.AttributeFromContext(r.Context(), "email"), r.URL.Path)
	})))
	spSrv.Config.Handler = mux
	spSrv.Start()
	t.Cleanup(spSrv.Close)
	sp := &mw.ServiceProvider
	f.register(t, sp, directory.NameIDPersistent, "email")
	b := f.s.Browser(t)

	launch := f.s.URL + saml.IdPInitiatedPath + url.PathEscape(spEntity) + "?RelayState=" + url.QueryEscape("/rota/today")
	p, _ := b.Follow(b.Get(launch), f.s.URL)
	if !strings.Contains(p.Body, `name="email"`) {
		t.Fatalf("IdP-initiated without a session: want the login page, got %d\n%.500s", p.Status, p.Body)
	}
	p, _ = b.Follow(b.SignIn(p, email, password), f.s.URL)
	action, fields := p.Form(t, `name="SAMLResponse"`)
	if action != sp.AcsURL.String() || fields.Get("RelayState") != "/rota/today" {
		t.Fatalf("response posts to %q with RelayState %q", action, fields.Get("RelayState"))
	}
	// The real SP middleware accepts the unsolicited response and sends
	// the browser on to the RelayState.
	landed, _ := b.Follow(b.Post(action, fields), spSrv.URL+"/")
	if landed.Status != http.StatusOK || landed.Body != "hello "+email+" at /rota/today" {
		t.Fatalf("at the SP: %d %q", landed.Status, landed.Body)
	}

	// With the session, no prompt; unknown SPs are refused clearly.
	p, _ = b.Follow(b.Get(f.s.URL+saml.IdPInitiatedPath+url.PathEscape(spEntity)), f.s.URL)
	if _, fields := p.Form(t, `name="SAMLResponse"`); fields.Get("RelayState") != "" {
		t.Errorf("RelayState %q without one asked", fields.Get("RelayState"))
	}
	refusal(t, b.Get(f.s.URL+saml.IdPInitiatedPath+url.PathEscape("https://nobody.example/saml")), "This application is not registered with Lanyard")
	refusal(t, b.Get(launch+strings.Repeat("x", saml.MaxRelayStateSize)), "This sign-in request is not valid")
}

// rawResponse returns the decoded SAMLResponse XML of the IdP's form.
func rawResponse(t *testing.T, p testkit.Page) string {
	t.Helper()
	_, fields := p.Form(t, `name="SAMLResponse"`)
	raw, err := base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestEncryptedAssertion(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	encrypting := f.newSP(t, spEntity) // crewjam lists its certificate for encryption
	f.register(t, encrypting, directory.NameIDPersistent, "email")
	plain := f.newSP(t, "https://plain.example/saml")
	plain.Certificate = nil // metadata without a key: nothing to encrypt to
	f.register(t, plain, directory.NameIDEmail)
	b := f.s.Browser(t)

	for _, c := range []struct {
		name      string
		sp        *crewsaml.ServiceProvider
		encrypted bool
	}{
		{"encryption key", encrypting, true},
		{"no key", plain, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			reqURL, reqID := authnRequest(t, c.sp, "", nil)
			p, _ := b.Follow(b.Get(reqURL), f.s.URL)
			if strings.Contains(p.Body, `name="email"`) {
				p, _ = b.Follow(b.SignIn(p, email, password), f.s.URL)
			}
			raw := rawResponse(t, p)
			if got := strings.Contains(raw, "EncryptedAssertion"); got != c.encrypted {
				t.Errorf("EncryptedAssertion in response = %v, want %v", got, c.encrypted)
			}
			if got := strings.Contains(raw, `saml:Assertion `) || strings.Contains(raw, "<saml:Subject>"); got == c.encrypted {
				t.Errorf("plain assertion visible = %v with encryption %v", got, c.encrypted)
			}
			if !strings.Contains(raw, dsig.RSASHA256SignatureMethod) || strings.Contains(raw, dsig.RSASHA1SignatureMethod) {
				t.Error("response not signed with RSA-SHA256")
			}
			r, _ := acsPost(t, c.sp, p)
			a, err := c.sp.ParseResponse(r, []string{reqID})
			if err != nil {
				t.Fatalf("SP ParseResponse: %v", private(err))
			}
			if a.Subject.NameID.Value == "" {
				t.Error("no NameID")
			}
		})
	}
}

// signingSP is an SP that signs its AuthnRequests with RSA-SHA256.
func (f *fixture) signingSP(t *testing.T, entityID string) *crewsaml.ServiceProvider {
	t.Helper()
	sp := f.newSP(t, entityID)
	sp.SignatureMethod = dsig.RSASHA256SignatureMethod
	f.register(t, sp, directory.NameIDPersistent, "email")
	return sp
}

func TestSignedAuthnRequests(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	sp := f.signingSP(t, spEntity)
	b := f.s.Browser(t)
	f.signIn(t, b, sp) // Redirect binding, query signature: accepted

	// POST binding, enveloped signature: accepted.
	post := func(sp *crewsaml.ServiceProvider, edit func(*crewsaml.AuthnRequest)) testkit.Page {
		req, err := sp.MakeAuthenticationRequest(sp.GetSSOBindingLocation(crewsaml.HTTPPostBinding), crewsaml.HTTPPostBinding, crewsaml.HTTPPostBinding)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(req)
		}
		page := testkit.Page{URL: &sp.AcsURL, Body: string(req.Post(""))}
		action, fields := page.Form(t, `name="SAMLRequest"`)
		return b.Post(action, fields)
	}
	if p := post(sp, nil); p.Status != http.StatusOK || !strings.Contains(p.Body, "SAMLResponse") {
		t.Fatalf("signed POST request: %d\n%.500s", p.Status, p.Body)
	}

	// The same SP with another key (its registered one unchanged).
	impostor := *sp
	impostor.Key, _ = rsa.GenerateKey(rand.Reader, 2048)
	sha1 := *sp
	sha1.SignatureMethod = dsig.RSASHA1SignatureMethod
	unsigned := *sp
	unsigned.SignatureMethod = ""
	redirect := func(sp *crewsaml.ServiceProvider, tamper func(string) string) testkit.Page {
		u, _ := authnRequest(t, sp, "relay", nil)
		if tamper != nil {
			u = tamper(u)
		}
		return b.Get(u)
	}
	const title = "This sign-in request is not valid"
	for _, c := range []struct {
		name string
		p    func() testkit.Page
	}{
		{"redirect signed with another key", func() testkit.Page { return redirect(&impostor, nil) }},
		{"redirect with a corrupted signature", func() testkit.Page {
			return redirect(sp, func(u string) string {
				head, enc, _ := strings.Cut(u, "&Signature=")
				v, _ := url.QueryUnescape(enc)
				sig, _ := base64.StdEncoding.DecodeString(v)
				sig[10] ^= 1
				return head + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
			})
		}},
		{"redirect with RelayState changed after signing", func() testkit.Page {
			return redirect(sp, func(u string) string { return strings.Replace(u, "RelayState=relay", "RelayState=other", 1) })
		}},
		{"redirect signed with SHA-1", func() testkit.Page { return redirect(&sha1, nil) }},
		{"redirect unsigned", func() testkit.Page { return redirect(&unsigned, nil) }},
		{"POST signed with another key", func() testkit.Page { return post(&impostor, nil) }},
		{"POST unsigned", func() testkit.Page { return post(&unsigned, nil) }},
		{"POST changed after signing", func() testkit.Page {
			return post(sp, func(r *crewsaml.AuthnRequest) { r.ProviderName = "tampered" })
		}},
	} {
		t.Run(c.name, func(t *testing.T) { refusal(t, c.p(), title) })
	}
}

func TestReplayedRequestAndClockSkew(t *testing.T) {
	each(t, func(t *testing.T, opt testkit.Options) {
		opt.Configure = func(c *server.Config) { c.SAML.ClockSkew = time.Minute }
		f := newFixture(t, opt)
		sp := f.newSP(t, spEntity)
		f.register(t, sp, directory.NameIDPersistent)
		b := f.s.Browser(t)
		f.signIn(t, b, sp)

		reqURL, _ := authnRequest(t, sp, "", nil)
		if p := b.Get(reqURL); p.Status != http.StatusOK {
			t.Fatalf("first use: %d", p.Status)
		}
		refusal(t, b.Get(reqURL), "This sign-in request has already been used")
		if opt.Redis {
			// Another instance sharing Redis knows the ID too.
			second := testkit.NewServer(t, testkit.Options{Share: f.s})
			refusal(t, second.Browser(t).Get(strings.Replace(reqURL, f.s.URL, second.Base, 1)), "This sign-in request has already been used")
		}

		for _, c := range []struct {
			name  string
			shift time.Duration
			ok    bool
		}{
			{"issued 50s ago", -50 * time.Second, true},
			{"issued 50s ahead", 50 * time.Second, true},
			{"issued 2m ago", -2 * time.Minute, false},
			{"issued 2m ahead", 2 * time.Minute, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				u, _ := authnRequest(t, sp, "", func(r *crewsaml.AuthnRequest) { r.IssueInstant = time.Now().Add(c.shift) })
				p := b.Get(u)
				if c.ok && p.Status != http.StatusOK {
					t.Errorf("within the skew: %d", p.Status)
				} else if !c.ok {
					refusal(t, p, "This sign-in request has expired")
				}
			})
		}
	})
}

var secretRE = regexp.MustCompile(`Key: <strong class="lanyard-secret">([A-Z2-7 ]+)</strong>`)

func totpCode(t *testing.T, secret string) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRequestedAuthnContextStepsUpToMFA(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	sp := f.newSP(t, spEntity)
	f.register(t, sp, directory.NameIDPersistent)
	b := f.s.Browser(t)
	if a := f.signIn(t, b, sp); a.AuthnStatements[0].AuthnContext.AuthnContextClassRef.Value != saml.ContextPassword {
		t.Fatalf("password sign-in stated %q", a.AuthnStatements[0].AuthnContext.AuthnContextClassRef.Value)
	}
	ask := func(class, comparison string) (string, string) {
		return authnRequest(t, sp, "", func(r *crewsaml.AuthnRequest) {
			r.RequestedAuthnContext = &crewsaml.RequestedAuthnContext{Comparison: comparison, AuthnContextClassRef: class}
		})
	}

	// Asking for a password class with a password session: no prompt, the
	// class asked for is stated.
	u, id := ask(saml.ContextPasswordPlain, "minimum")
	p, _ := b.Follow(b.Get(u), f.s.URL)
	r, _ := acsPost(t, sp, p)
	a, err := sp.ParseResponse(r, []string{id})
	if err != nil {
		t.Fatalf("ParseResponse: %v", private(err))
	}
	if got := a.AuthnStatements[0].AuthnContext.AuthnContextClassRef.Value; got != saml.ContextPasswordPlain {
		t.Errorf("stated %q, want %q", got, saml.ContextPasswordPlain)
	}

	// Asking for MFA: the same path as OIDC's acr_values, a step-up (here
	// enrolment, as Jane has no second factor yet), then the response.
	u, id = ask(saml.ContextREFEDSMFA, "exact")
	p, _ = b.Follow(b.Get(u), f.s.URL)
	m := secretRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("MFA asked of a password session: want the enrolment page, got %d\n%.1500s", p.Status, p.Body)
	}
	codes := b.Submit(p, `name="code"`, map[string]string{"code": totpCode(t, strings.ReplaceAll(m[1], " ", ""))})
	p, _ = b.Follow(b.Submit(codes, `name="saved_codes"`, nil), f.s.URL)
	r, _ = acsPost(t, sp, p)
	if a, err = sp.ParseResponse(r, []string{id}); err != nil {
		t.Fatalf("ParseResponse after step-up: %v", private(err))
	}
	if got := a.AuthnStatements[0].AuthnContext.AuthnContextClassRef.Value; got != saml.ContextREFEDSMFA {
		t.Errorf("after step-up stated %q, want %q", got, saml.ContextREFEDSMFA)
	}

	// Now MFA, the session satisfies "better than password" at once.
	u, id = ask(saml.ContextPassword, "better")
	p, _ = b.Follow(b.Get(u), f.s.URL)
	r, _ = acsPost(t, sp, p)
	if a, err = sp.ParseResponse(r, []string{id}); err != nil {
		t.Fatalf("ParseResponse: %v", private(err))
	}
	if got := a.AuthnStatements[0].AuthnContext.AuthnContextClassRef.Value; got != saml.ContextMFA {
		t.Errorf("better than password stated %q, want %q", got, saml.ContextMFA)
	}

	// A class Lanyard does not offer: NoAuthnContext, no login page.
	u, id = ask("urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos", "exact")
	p, _ = b.Follow(b.Get(u), f.s.URL)
	if raw := rawResponse(t, p); !strings.Contains(raw, saml.StatusNoAuthnContext) {
		t.Errorf("unknown class: response lacks NoAuthnContext:\n%s", raw)
	}
	r, _ = acsPost(t, sp, p)
	if _, err := sp.ParseResponse(r, []string{id}); err == nil {
		t.Error("SP accepted a NoAuthnContext response as a login")
	}
}

// spWithACS registers an SP whose metadata lists the given assertion
// consumer services (binding and location).
func (f *fixture) spWithACS(t *testing.T, entityID string, acs ...crewsaml.IndexedEndpoint) *crewsaml.ServiceProvider {
	t.Helper()
	sp := f.newSP(t, entityID)
	md := sp.Metadata()
	md.SPSSODescriptors[0].AssertionConsumerServices = acs
	b, err := xml.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.Directory.CreateServiceProvider(t.Context(), directory.ServiceProvider{
		ID: directory.NewID(), EntityID: entityID, OrgID: f.orgID, Name: "Odd", Metadata: b,
		NameIDFormat: directory.NameIDPersistent, CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestBindingAndACSRefusals(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	redirectOnly := f.spWithACS(t, "https://redirect-only.example/saml",
		crewsaml.IndexedEndpoint{Binding: crewsaml.HTTPRedirectBinding, Location: "https://redirect-only.example/acs", Index: 1})
	normal := f.newSP(t, spEntity)
	f.register(t, normal, directory.NameIDPersistent)
	unknown := f.newSP(t, "https://unknown.example/saml")
	b := f.s.Browser(t)
	f.signIn(t, b, normal)

	for _, c := range []struct {
		name, url, title string
	}{
		{"Redirect-only ACS", func() string {
			u, _ := authnRequest(t, redirectOnly, "", func(r *crewsaml.AuthnRequest) {
				r.AssertionConsumerServiceURL, r.ProtocolBinding = "", ""
			})
			return u
		}(), "registration is out of date"}, // registered before Redirect ACS was refused at registration
		{"Redirect ACS asked by URL", func() string {
			u, _ := authnRequest(t, redirectOnly, "", func(r *crewsaml.AuthnRequest) {
				r.AssertionConsumerServiceURL, r.ProtocolBinding = "https://redirect-only.example/acs", ""
			})
			return u
		}(), "registration is out of date"},
		{"artifact ProtocolBinding", func() string {
			u, _ := authnRequest(t, normal, "", func(r *crewsaml.AuthnRequest) { r.ProtocolBinding = crewsaml.HTTPArtifactBinding })
			return u
		}(), "Lanyard does not support"},
		{"unknown SP", func() string { u, _ := authnRequest(t, unknown, "", nil); return u }(), "This application is not registered with Lanyard"},
		{"ACS URL not in metadata", func() string {
			u, _ := authnRequest(t, normal, "", func(r *crewsaml.AuthnRequest) { r.AssertionConsumerServiceURL = "https://evil.example/acs" })
			return u
		}(), "an address it has not registered"},
		{"ACS index not in metadata", func() string {
			u, _ := authnRequest(t, normal, "", func(r *crewsaml.AuthnRequest) {
				r.AssertionConsumerServiceURL, r.AssertionConsumerServiceIndex = "", "7"
			})
			return u
		}(), "an address it has not registered"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, loc := b.Follow(b.Get(c.url), f.s.URL)
			if loc != nil {
				t.Fatalf("left for %v", loc)
			}
			refusal(t, p, c.title)
		})
	}
}

// deflate64 is the Redirect binding's encoding of data.
func deflate64(data []byte) string {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	w.Write(data)
	w.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

func TestUnsafeMessagesRefused(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	sp := f.newSP(t, spEntity)
	f.register(t, sp, directory.NameIDPersistent)
	b := f.s.Browser(t)
	f.signIn(t, b, sp)
	req, err := sp.MakeAuthenticationRequest(f.s.URL+saml.SSOPath, crewsaml.HTTPRedirectBinding, crewsaml.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(req.Element())
	good, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	withDTD := []byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>` + string(good))
	xxe := []byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>` + strings.Replace(string(good), "</saml:Issuer>", "&e;</saml:Issuer>", 1))
	huge := bytes.Replace(good, []byte("</samlp:AuthnRequest>"), []byte("<!--"+strings.Repeat("x", saml.MaxMessageSize)+"--></samlp:AuthnRequest>"), 1)
	get := func(q string) testkit.Page { return b.Get(f.s.URL + saml.SSOPath + "?" + q) }
	post := func(v string) testkit.Page { return b.Post(f.s.URL+saml.SSOPath, url.Values{"SAMLRequest": {v}}) }
	for _, c := range []struct {
		name string
		p    func() testkit.Page
	}{
		{"redirect: DTD with entities", func() testkit.Page { return get("SAMLRequest=" + url.QueryEscape(deflate64(withDTD))) }},
		{"POST: DTD with entities", func() testkit.Page { return post(base64.StdEncoding.EncodeToString(withDTD)) }},
		{"POST: external entity", func() testkit.Page { return post(base64.StdEncoding.EncodeToString(xxe)) }},
		{"redirect: inflates beyond the limit", func() testkit.Page { return get("SAMLRequest=" + url.QueryEscape(deflate64(huge))) }},
		{"POST: beyond the limit", func() testkit.Page { return post(base64.StdEncoding.EncodeToString(huge)) }},
		{"redirect: not base64", func() testkit.Page { return get("SAMLRequest=%21%21%21") }},
		{"redirect: not deflate", func() testkit.Page {
			return get("SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte("plain text, not deflate"))))
		}},
		{"redirect: truncated deflate", func() testkit.Page {
			d, _ := base64.StdEncoding.DecodeString(deflate64(good))
			return get("SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(d[:len(d)/2])))
		}},
		{"POST: not base64", func() testkit.Page { return post("%%%") }},
		{"POST: not XML", func() testkit.Page { return post(base64.StdEncoding.EncodeToString([]byte("<<<"))) }},
		{"redirect: SAMLRequest twice", func() testkit.Page {
			v := url.QueryEscape(deflate64(good))
			return get("SAMLRequest=" + v + "&SAMLRequest=" + v)
		}},
		{"no SAMLRequest", func() testkit.Page { return get("RelayState=x") }},
	} {
		t.Run(c.name, func(t *testing.T) { refusal(t, c.p(), "This sign-in request is not valid") })
	}
	// Control: the same request, well encoded, is answered.
	if p := get("SAMLRequest=" + url.QueryEscape(deflate64(good))); p.Status != http.StatusOK || !strings.Contains(p.Body, "SAMLResponse") {
		t.Errorf("well-formed request: %d", p.Status)
	}
}

// TestCrossSiteEndpoints: the one list of endpoints that take cross-site
// POSTs is exactly what the HTTP-POST binding needs; every other unsafe
// request to /saml/ from another site is refused.
func TestCrossSiteEndpoints(t *testing.T) {
	if want := []string{"POST /saml/sso", "POST /saml/slo"}; !slices.Equal(saml.CrossSiteEndpoints, want) {
		t.Errorf("CrossSiteEndpoints = %q, want %q", saml.CrossSiteEndpoints, want)
	}
	f := newFixture(t, testkit.Options{})
	hc := f.s.Client(t)
	crossSite := func(method, path string) *http.Response {
		req, _ := http.NewRequest(method, f.s.URL+path, strings.NewReader("SAMLRequest=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.Header.Set("Origin", "https://sp.example")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, pattern := range saml.CrossSiteEndpoints {
		method, path, _ := strings.Cut(pattern, " ")
		// Let through to the SAML handler, which refuses the bad message.
		if resp := crossSite(method, path); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("cross-site %s: %d, want 400 from the SAML handler", pattern, resp.StatusCode)
		}
	}
	for _, pattern := range []string{"POST /saml/metadata", "POST /saml/sso/resume", "POST /saml/slo/next", "POST /saml/idp/x", "PUT /saml/sso", "DELETE /saml/slo"} {
		method, path, _ := strings.Cut(pattern, " ")
		if resp := crossSite(method, path); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site %s: %d, want 403", pattern, resp.StatusCode)
		}
	}
}
