package saml_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
	"golang.org/x/oauth2"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/saml"
	"github.com/lanyard/lanyard/testkit"
)

const (
	redirectURI = "http://127.0.0.1:9999/callback"
	logoutURI   = "http://127.0.0.1:9999/signed-out"
)

// sloSP is a crewjam SP with a single logout service, and what it knows
// of its session at Lanyard.
type sloSP struct {
	*crewsaml.ServiceProvider
	nameID, sessionIndex string
	loggedOut            int
}

// newSLOSP registers an SP whose metadata lists its SLO service over
// binding.
func (f *fixture) newSLOSP(t *testing.T, entityID, binding string, signs bool) *sloSP {
	t.Helper()
	sp := f.newSP(t, entityID)
	sp.SloURL = *sp.AcsURL.ResolveReference(&url.URL{Path: "/saml/slo"})
	sp.LogoutBindings = []string{binding}
	if signs {
		sp.SignatureMethod = dsig.RSASHA256SignatureMethod
	}
	f.register(t, sp, directory.NameIDPersistent, "email")
	return &sloSP{ServiceProvider: sp}
}

// ssoTo signs the browser in to sp (with a prompt when it has no session)
// and keeps what the assertion says of the session.
func (f *fixture) ssoTo(t *testing.T, b *testkit.Browser, sp *sloSP) {
	t.Helper()
	a := f.signIn(t, b, sp.ServiceProvider)
	sp.nameID, sp.sessionIndex = a.Subject.NameID.Value, a.AuthnStatements[0].SessionIndex
	if sp.sessionIndex == "" {
		t.Fatal("assertion has no SessionIndex")
	}
}

// idpCert is the certificate Lanyard signs with now.
func (f *fixture) idpCert(t *testing.T) *x509.Certificate {
	t.Helper()
	kd := f.idpMetadata(t).IDPSSODescriptors[0].KeyDescriptors[0]
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(kd.KeyInfo.X509Data.X509Certificates[0].Data), ""))
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// receive checks a LogoutRequest that Lanyard sent sp through the browser
// (signed, naming sp's user and session) and returns sp's LogoutResponse,
// which crewjam makes, as the page the browser gets from sp.
func (f *fixture) receive(t *testing.T, sp *sloSP, cert *x509.Certificate, xmlReq []byte, relayState string) testkit.Page {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(xmlReq); err != nil {
		t.Fatal(err)
	}
	var req crewsaml.LogoutRequest
	if err := unmarshal(doc.Root(), &req); err != nil {
		t.Fatal(err)
	}
	if req.NameID == nil || req.NameID.Value != sp.nameID || req.SessionIndex == nil || req.SessionIndex.Value != sp.sessionIndex {
		t.Errorf("%s got LogoutRequest for NameID %+v SessionIndex %+v, want %q %q", sp.EntityID, req.NameID, req.SessionIndex, sp.nameID, sp.sessionIndex)
	}
	if req.Destination != sp.SloURL.String() || req.Issuer == nil || req.Issuer.Value != f.s.URL+saml.MetadataPath {
		t.Errorf("LogoutRequest Destination %q Issuer %+v", req.Destination, req.Issuer)
	}
	sp.loggedOut++
	html, err := sp.MakePostLogoutResponse(req.ID, relayState)
	if err != nil {
		t.Fatal(err)
	}
	return testkit.Page{URL: &sp.SloURL, Status: http.StatusOK, Body: string(html)}
}

func unmarshal(el *etree.Element, v any) error {
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	b, _ := doc.WriteToBytes()
	return xml.Unmarshal(b, v)
}

// walkLogout follows the browser through a logout from p, delivering each
// LogoutRequest to the SP it is for and its answer back to Lanyard, until
// the logout leaves Lanyard: a LogoutResponse form for the SP that asked
// (returned as the page) or a redirect elsewhere (returned as location).
func (f *fixture) walkLogout(t *testing.T, b *testkit.Browser, p testkit.Page, sps ...*sloSP) (testkit.Page, *url.URL) {
	t.Helper()
	cert := f.idpCert(t)
	bySLO := map[string]*sloSP{}
	for _, sp := range sps {
		bySLO[sp.SloURL.String()] = sp
	}
	for range 10 {
		var loc *url.URL
		p, loc = b.Follow(p, f.s.URL)
		if loc != nil {
			base := loc.Scheme + "://" + loc.Host + loc.Path
			sp, ok := bySLO[base]
			if !ok {
				return p, loc
			}
			// HTTP-Redirect: the query signature covers the exact octets.
			signed, sigEnc, _ := strings.Cut(loc.RawQuery, "&Signature=")
			sigText, _ := url.QueryUnescape(sigEnc)
			sig, _ := base64.StdEncoding.DecodeString(sigText)
			if !strings.Contains(signed, "SigAlg="+url.QueryEscape(dsig.RSASHA256SignatureMethod)) ||
				cert.CheckSignature(x509.SHA256WithRSA, []byte(signed), sig) != nil {
				t.Errorf("redirect LogoutRequest to %s: query signature does not verify", sp.EntityID)
			}
			xmlReq, err := saml.DecodeRedirect(loc.Query().Get("SAMLRequest"))
			if err != nil {
				t.Fatal(err)
			}
			p = f.receive(t, sp, cert, xmlReq, loc.Query().Get("RelayState"))
		} else if strings.Contains(p.Body, `name="SAMLRequest"`) {
			action, fields := p.Form(t, `name="SAMLRequest"`)
			sp, ok := bySLO[action]
			if !ok {
				t.Fatalf("LogoutRequest posted to %q, no SP there", action)
			}
			raw, _ := base64.StdEncoding.DecodeString(fields.Get("SAMLRequest"))
			doc := etree.NewDocument()
			if err := doc.ReadFromBytes(raw); err != nil {
				t.Fatal(err)
			}
			vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
			vc.IdAttribute = "ID"
			if _, err := vc.Validate(doc.Root()); err != nil {
				t.Errorf("POST LogoutRequest to %s: signature: %v", sp.EntityID, err)
			}
			p = f.receive(t, sp, cert, raw, fields.Get("RelayState"))
		} else {
			return p, nil
		}
		// The SP's LogoutResponse goes back to Lanyard by the browser.
		action, fields := p.Form(t, `name="SAMLResponse"`)
		if action != f.s.URL+saml.SLOPath {
			t.Fatalf("SP answers to %q, want Lanyard's SLO endpoint", action)
		}
		p = b.Post(action, fields)
	}
	t.Fatal("logout did not finish in 10 steps")
	return p, nil
}

// oidcLogin signs the browser in through an OIDC RP (SSO when it has a
// session) and returns its tokens.
func (f *fixture) oidcLogin(t *testing.T, b *testkit.Browser) (*testkit.RP, *oauth2.Token) {
	t.Helper()
	c, secret, err := f.s.Admin.CreateClient(t.Context(), admin.Actor{ID: "test"}, admin.NewClient{OrgODS: "RRK", Name: "Rostering",
		RedirectURIs: []string{redirectURI}, PostLogoutRedirectURIs: []string{logoutURI}})
	if err != nil {
		t.Fatal(err)
	}
	rp := f.s.RP(t, c.ID, secret, redirectURI)
	ar := rp.AuthURL()
	p, loc := b.Follow(b.Get(ar.URL), f.s.URL)
	if loc == nil {
		p, loc = b.Follow(b.SignIn(p, email, password), f.s.URL)
	}
	if loc == nil {
		t.Fatalf("OIDC login ended at %d %s", p.Status, p.URL)
	}
	tok, err := rp.Exchange(ar, rp.Callback(ar, loc))
	if err != nil {
		t.Fatal(err)
	}
	return rp, tok
}

// signedOut checks that the browser's Lanyard session is over: SAML SSO
// asks for the password and the OIDC refresh token no longer works.
func (f *fixture) signedOut(t *testing.T, b *testkit.Browser, sp *sloSP, rp *testkit.RP, tok *oauth2.Token) {
	t.Helper()
	u, _ := authnRequest(t, sp.ServiceProvider, "", nil)
	if p, _ := b.Follow(b.Get(u), f.s.URL); !strings.Contains(p.Body, `name="email"`) {
		t.Errorf("after logout, SSO did not ask for a sign-in: %d", p.Status)
	}
	if _, err := rp.OAuth2.TokenSource(rp.Ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Error("the OIDC refresh token of the ended session still works")
	}
}

func TestSingleLogoutFromSP(t *testing.T) {
	each(t, func(t *testing.T, opt testkit.Options) {
		for _, c := range []struct {
			name    string
			binding string
			signs   bool
		}{
			{"Redirect, signed", crewsaml.HTTPRedirectBinding, true},
			{"POST, unsigned", crewsaml.HTTPPostBinding, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				f := newFixture(t, opt)
				a := f.newSLOSP(t, "https://a.example/saml", crewsaml.HTTPPostBinding, c.signs)
				bPost := f.newSLOSP(t, "https://b.example/saml", crewsaml.HTTPPostBinding, false)
				cRedirect := f.newSLOSP(t, "https://c.example/saml", crewsaml.HTTPRedirectBinding, false)
				b := f.s.Browser(t)
				f.ssoTo(t, b, a)
				f.ssoTo(t, b, bPost)
				f.ssoTo(t, b, cRedirect)
				rp, tok := f.oidcLogin(t, b) // no prompt: the same session

				var start testkit.Page
				if c.binding == crewsaml.HTTPRedirectBinding {
					u, err := a.MakeRedirectLogoutRequest(a.nameID, "relay-out")
					if err != nil {
						t.Fatal(err)
					}
					start = b.Get(u.String())
				} else {
					html, err := a.MakePostLogoutRequest(a.nameID, "relay-out")
					if err != nil {
						t.Fatal(err)
					}
					action, fields := testkit.Page{URL: &a.SloURL, Body: string(html)}.Form(t, `name="SAMLRequest"`)
					start = b.Post(action, fields)
				}
				p, loc := f.walkLogout(t, b, start, a, bPost, cRedirect)
				if loc != nil {
					t.Fatalf("logout left for %v instead of answering the SP", loc)
				}
				if bPost.loggedOut != 1 || cRedirect.loggedOut != 1 || a.loggedOut != 0 {
					t.Errorf("LogoutRequests: initiator %d, POST SP %d, Redirect SP %d; want 0, 1, 1", a.loggedOut, bPost.loggedOut, cRedirect.loggedOut)
				}
				action, fields := p.Form(t, `name="SAMLResponse"`)
				if action != a.SloURL.String() || fields.Get("RelayState") != "relay-out" {
					t.Errorf("LogoutResponse to %q RelayState %q", action, fields.Get("RelayState"))
				}
				if err := a.ValidateLogoutResponseForm(fields.Get("SAMLResponse")); err != nil {
					t.Errorf("the SP refuses Lanyard's LogoutResponse: %v", private(err))
				}
				f.signedOut(t, b, a, rp, tok)
			})
		}
	})
}

func TestSingleLogoutRefusals(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	a := f.newSLOSP(t, "https://a.example/saml", crewsaml.HTTPPostBinding, false)
	other := f.newSLOSP(t, "https://b.example/saml", crewsaml.HTTPPostBinding, false)
	b := f.s.Browser(t)
	f.ssoTo(t, b, a)

	// A LogoutRequest naming someone else (here, B's NameID sent by A)
	// leaves the session alone.
	u, err := a.MakeRedirectLogoutRequest("not-the-user", "")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := b.Follow(b.Get(u.String()), f.s.URL)
	_, fields := p.Form(t, `name="SAMLResponse"`)
	raw, _ := base64.StdEncoding.DecodeString(fields.Get("SAMLResponse"))
	if !strings.Contains(string(raw), saml.StatusUnknownPrincipal) {
		t.Errorf("wrong NameID: response lacks UnknownPrincipal:\n%s", raw)
	}
	reqURL, _ := authnRequest(t, a.ServiceProvider, "", nil)
	if p, _ := b.Follow(b.Get(reqURL), f.s.URL); !strings.Contains(p.Body, "SAMLResponse") {
		t.Errorf("a LogoutRequest for another user ended the session")
	}

	// A replayed LogoutRequest is refused; an unknown SP too.
	u, _ = a.MakeRedirectLogoutRequest(a.nameID, "")
	b.Follow(b.Get(u.String()), f.s.URL)
	refusal(t, b.Get(u.String()), "This sign-in request has already been used")
	unknown := f.newSP(t, "https://unknown.example/saml")
	unknown.SloURL = *unknown.AcsURL.ResolveReference(&url.URL{Path: "/slo"})
	u, _ = unknown.MakeRedirectLogoutRequest("x", "")
	refusal(t, b.Get(u.String()), "This application is not registered with Lanyard")

	// A LogoutResponse for no logout under way.
	html, _ := other.MakePostLogoutResponse("id-nothing", "nope")
	action, fields := testkit.Page{URL: &other.SloURL, Body: string(html)}.Form(t, `name="SAMLResponse"`)
	if p := b.Post(action, fields); p.Status != http.StatusBadRequest {
		t.Errorf("stray LogoutResponse: %d, want 400", p.Status)
	}
}

func TestOIDCLogoutEndsSAMLSessions(t *testing.T) {
	each(t, func(t *testing.T, opt testkit.Options) {
		f := newFixture(t, opt)
		b := f.s.Browser(t)
		rp, tok := f.oidcLogin(t, b)
		sp := f.newSLOSP(t, "https://b.example/saml", crewsaml.HTTPPostBinding, false)
		f.ssoTo(t, b, sp) // no prompt: SSO from the OIDC session

		var d map[string]any
		if err := rp.Provider.Claims(&d); err != nil {
			t.Fatal(err)
		}
		endSession := d["end_session_endpoint"].(string) + "?" + url.Values{"id_token_hint": {tok.Extra("id_token").(string)},
			"post_logout_redirect_uri": {logoutURI}, "state": {"s1"}}.Encode()
		_, loc := f.walkLogout(t, b, b.Get(endSession), sp)
		if loc == nil || loc.String() != logoutURI+"?state=s1" {
			t.Fatalf("after the SAML logouts the browser went to %v, want %s?state=s1", loc, logoutURI)
		}
		if sp.loggedOut != 1 {
			t.Errorf("the SAML SP got %d LogoutRequests, want 1", sp.loggedOut)
		}
		f.signedOut(t, b, sp, rp, tok)
	})
}

// TestSignOutPageEndsSAMLSessions: Lanyard's own sign-out page tells the
// SAML SPs too.
func TestSignOutPageEndsSAMLSessions(t *testing.T) {
	f := newFixture(t, testkit.Options{})
	sp := f.newSLOSP(t, "https://b.example/saml", crewsaml.HTTPRedirectBinding, false)
	b := f.s.Browser(t)
	f.ssoTo(t, b, sp)
	p := b.Get(f.s.URL + "/logout")
	p, loc := f.walkLogout(t, b, b.Submit(p, `name="csrf_token"`, nil), sp)
	if loc != nil || p.URL.Path != "/logged-out" || sp.loggedOut != 1 {
		t.Errorf("sign-out ended at %v %s with %d LogoutRequests, want /logged-out and 1", loc, p.URL, sp.loggedOut)
	}
}
