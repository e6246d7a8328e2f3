package authn_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/lanyard/lanyard/cmd/idp/server"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/testkit"
)

const (
	waEmail    = "sam.patel@nhs.net"
	waPassword = "correct horse battery staple"
)

// waFixture is a server whose issuer is https://localhost:PORT (WebAuthn
// refuses an IP address as the relying party ID), mailing to an SMTP sink,
// with one user.
type waFixture struct {
	s      *testkit.Server
	sink   *testkit.SMTPSink
	issuer string
	userID string
}

// newWAFixture starts the server on clock (nil: the real time) with a user
// holding roles (staff when none).
func newWAFixture(t *testing.T, clock *testkit.Clock, roles ...directory.Role) *waFixture {
	t.Helper()
	sink := testkit.NewSMTPSink(t)
	opt := testkit.Options{Configure: func(c *server.Config) {
		_, port, err := net.SplitHostPort(c.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Issuer = "https://localhost:" + port
		c.SMTP = server.SMTPConfig{Host: sink.Host, Port: sink.Port, From: "lanyard@lanyard.test", TLS: "none"}
	}}
	if clock != nil {
		opt.Now = clock.Now
	}
	s := testkit.NewServer(t, opt)
	by := admin.Actor{ID: "test"}
	if _, err := s.Admin.CreateOrganisation(t.Context(), by, "RRK", "Leeds Teaching Hospitals"); err != nil {
		t.Fatal(err)
	}
	if len(roles) == 0 {
		roles = []directory.Role{directory.RoleStaff}
	}
	cu, err := s.Admin.CreateUser(t.Context(), by, admin.NewUser{OrgODS: "RRK", Email: waEmail, Name: "Sam Patel", Password: waPassword, Roles: roles})
	if err != nil {
		t.Fatal(err)
	}
	return &waFixture{s: s, sink: sink, issuer: s.URL, userID: cu.User.ID}
}

// client returns an HTTP client with its own cookies that trusts the
// server under the name localhost and does not follow redirects.
func (f *waFixture) client(t *testing.T) *http.Client {
	t.Helper()
	hc := f.s.Client(t)
	tr := hc.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.ServerName = "127.0.0.1" // the test certificate's name; URLs say localhost
	hc.Transport = tr
	return hc
}

// rp registers a client whose callback is a local server that records the
// redirect it gets, and returns a relying party for it.
func (f *waFixture) rp(t *testing.T) (*testkit.RP, string, <-chan *url.URL) {
	t.Helper()
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
		Name: "Rostering with keys", RedirectURIs: []string{callback}})
	if err != nil {
		t.Fatal(err)
	}
	return testkit.NewRP(t, f.issuer, f.client(t), c.ID, secret, callback), callback, callbacks
}

type waClaims struct {
	Sub string   `json:"sub"`
	AMR []string `json:"amr"`
	ACR string   `json:"acr"`
}

// redeemCode takes the callback the browser reached, exchanges the code and
// returns the ID token's claims.
func redeemCode(t *testing.T, rp *testkit.RP, ar testkit.AuthRequest, callbacks <-chan *url.URL) waClaims {
	t.Helper()
	var got *url.URL
	select {
	case got = <-callbacks:
	default:
		t.Fatal("the RP's callback was not requested")
	}
	tok, err := rp.Exchange(ar, rp.Callback(ar, got))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	var cl waClaims
	if err := rp.VerifyIDToken(ar, tok).Claims(&cl); err != nil {
		t.Fatal(err)
	}
	return cl
}

// chromeDo runs actions in the tab, failing the test with the page's address
// and text when they fail or take more than 20 seconds.
func chromeDo(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	stepCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(stepCtx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		t.Fatalf("%s (at %s): %v\npage text:\n%.1500s", step, loc, err, body)
	}
}

// virtualAuthenticator enables WebAuthn in the tab and adds a virtual
// authenticator that answers user presence at once.
func virtualAuthenticator(t *testing.T, ctx context.Context, opts webauthn.VirtualAuthenticatorOptions) webauthn.AuthenticatorID {
	t.Helper()
	off := false
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{EnableUI: &off}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	opts.AutomaticPresenceSimulation = true
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &opts})
	if err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return res.AuthenticatorID
}

func authenticatorCredentials(t *testing.T, ctx context.Context, id webauthn.AuthenticatorID) []*webauthn.Credential {
	t.Helper()
	res, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		t.Fatalf("WebAuthn.getCredentials: %v", err)
	}
	return res.Credentials
}

// passwordSignIn signs in at /account with the email and password.
func (f *waFixture) passwordSignIn(t *testing.T, ctx context.Context) {
	t.Helper()
	chromeDo(t, ctx, "open the account page", chromedp.Navigate(f.issuer+"/account"), chromedp.WaitVisible(chromedp.ID("email")))
	chromeDo(t, ctx, "enter the email",
		chromedp.SendKeys(chromedp.ID("email"), waEmail),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Continue"]`)),
		chromedp.WaitVisible(chromedp.ID("password")))
	chromeDo(t, ctx, "enter the password",
		chromedp.SendKeys(chromedp.ID("password"), waPassword),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Sign in"]`)))
}

// addKey registers a key named name on the account's security keys page
// and waits for it to be listed.
func (f *waFixture) addKey(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	chromeDo(t, ctx, "open the security keys page", chromedp.Navigate(f.issuer+"/account/security-keys"), chromedp.WaitVisible(chromedp.ID("name")))
	chromeDo(t, ctx, "register a key",
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.Click(chromedp.ID("webauthn-register-button")),
		chromedp.WaitVisible(chromedp.Search(`//td[normalize-space()="`+name+`"]`)))
}

func (f *waFixture) storedKeys(t *testing.T) []directory.Credential {
	t.Helper()
	creds, err := f.s.Directory.Credentials(t.Context(), f.userID, directory.CredentialWebAuthn)
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// TestWebAuthnSecurityKeyChromium registers a security key (CTAP2 over
// USB, not discoverable) on the account page, then signs in to a relying
// party with the password and the key as the second factor. The browser
// is made to lack the Level 3 JSON helpers, so the script's own
// conversions are the ones tested here.
func TestWebAuthnSecurityKeyChromium(t *testing.T) {
	f := newWAFixture(t, nil)
	rp, callback, callbacks := f.rp(t)
	ctx := testkit.Chromium(t, f.s.HTTP.Certificate())
	auth := virtualAuthenticator(t, ctx, webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportUsb})
	// This browser lacks the JSON helpers of WebAuthn Level 3, as older
	// ones do, so webauthn.js converts the options and results itself.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
		delete PublicKeyCredential.parseCreationOptionsFromJSON;
		delete PublicKeyCredential.parseRequestOptionsFromJSON;
		delete PublicKeyCredential.prototype.toJSON;`}); err != nil {
		t.Fatalf("Page.addScriptToEvaluateOnNewDocument: %v", err)
	}

	f.passwordSignIn(t, ctx)
	chromeDo(t, ctx, "reach the account page", chromedp.WaitVisible(chromedp.Search(`//h1[normalize-space()="Your account"]`)))
	if helpers, err := chromedp.Run(ctx, chromedp.Evaluate[string](`typeof PublicKeyCredential.parseCreationOptionsFromJSON + " " +
		typeof PublicKeyCredential.parseRequestOptionsFromJSON + " " + typeof PublicKeyCredential.prototype.toJSON`)); err != nil ||
		helpers != "undefined undefined undefined" {
		t.Fatalf("Level 3 helpers: %q, %v; want them gone", helpers, err)
	}
	f.addKey(t, ctx, "YubiKey")
	testkit.Screenshot(t, ctx, "security-keys")
	if creds := authenticatorCredentials(t, ctx, auth); len(creds) != 1 || creds[0].IsResidentCredential {
		t.Fatalf("authenticator holds %d credentials (resident %v), want 1 not resident", len(creds), len(creds) == 1 && creds[0].IsResidentCredential)
	}
	if keys := f.storedKeys(t); len(keys) != 1 || keys[0].Name != "YubiKey" || !keys[0].LastUsedAt.IsZero() {
		t.Fatalf("stored keys = %+v, want one unused YubiKey", keys)
	}
	kind, err := chromedp.Run(ctx, chromedp.Text(chromedp.Search(`//td[normalize-space()="YubiKey"]/following-sibling::td[1]`)))
	if err != nil || kind != "Security key" {
		t.Errorf("listed type = %q, %v; want Security key", kind, err)
	}

	chromeDo(t, ctx, "sign out", chromedp.Navigate(f.issuer+"/account"),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Sign out"]`)),
		chromedp.WaitVisible(chromedp.Search(`//h1[contains(., "signed out")]`)))

	ar := rp.AuthURL()
	chromeDo(t, ctx, "open the authorization URL", chromedp.Navigate(ar.URL), chromedp.WaitVisible(chromedp.ID("email")))
	chromeDo(t, ctx, "enter the email",
		chromedp.SendKeys(chromedp.ID("email"), waEmail),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Continue"]`)),
		chromedp.WaitVisible(chromedp.ID("password")))
	chromeDo(t, ctx, "enter the password",
		chromedp.SendKeys(chromedp.ID("password"), waPassword),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Sign in"]`)),
		chromedp.WaitVisible(chromedp.ID("webauthn-mfa-button")))
	testkit.Screenshot(t, ctx, "mfa")
	chromeDo(t, ctx, "use the security key", chromedp.Click(chromedp.ID("webauthn-mfa-button")), chromedp.WaitVisible(chromedp.ID("signed-in")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, callback+"?") {
		t.Fatalf("browser ended at %s, want the RP callback", loc)
	}

	cl := redeemCode(t, rp, ar, callbacks)
	if cl.Sub != f.userID {
		t.Errorf("sub = %q, want %q", cl.Sub, f.userID)
	}
	for _, m := range []string{"pwd", "hwk", "mfa"} {
		if !slices.Contains(cl.AMR, m) {
			t.Errorf("amr = %v, want it to contain %q", cl.AMR, m)
		}
	}
	if slices.Contains(cl.AMR, "user") {
		t.Errorf("amr = %v, want no user verification from a key without it", cl.AMR)
	}
	if cl.ACR != "urn:lanyard:acr:2fa" {
		t.Errorf("acr = %q, want urn:lanyard:acr:2fa", cl.ACR)
	}
	if keys := f.storedKeys(t); len(keys) != 1 || keys[0].LastUsedAt.IsZero() {
		t.Errorf("stored keys = %+v, want the key's last use recorded", keys)
	}
}

// TestWebAuthnPasskeyChromium registers a passkey (discoverable, with user
// verification) and then, in a fresh browser profile holding the same
// credential, signs in to a relying party with it alone: no email, no
// password.
func TestWebAuthnPasskeyChromium(t *testing.T) {
	f := newWAFixture(t, nil)
	rp, callback, callbacks := f.rp(t)
	ctx := testkit.Chromium(t, f.s.HTTP.Certificate())
	opts := webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true}
	auth := virtualAuthenticator(t, ctx, opts)

	f.passwordSignIn(t, ctx)
	chromeDo(t, ctx, "reach the account page", chromedp.WaitVisible(chromedp.Search(`//h1[normalize-space()="Your account"]`)))
	f.addKey(t, ctx, "Work laptop")
	creds := authenticatorCredentials(t, ctx, auth)
	if len(creds) != 1 || !creds[0].IsResidentCredential {
		t.Fatalf("authenticator holds %d credentials, want 1 resident", len(creds))
	}
	if string(creds[0].UserHandle) != f.userID {
		t.Errorf("user handle = %q, want the user's ID %q", creds[0].UserHandle, f.userID)
	}
	kind, err := chromedp.Run(ctx, chromedp.Text(chromedp.Search(`//td[normalize-space()="Work laptop"]/following-sibling::td[1]`)))
	if err != nil || kind != "Passkey" {
		t.Errorf("listed type = %q, %v; want Passkey", kind, err)
	}

	// cdproto always sends generateCmtgKeyOnNextOperation, which Chromium
	// accepts only from an authenticator with the cmtgKey extension.
	opts.HasCmtgKey = true
	passkey := &webauthn.Credential{CredentialID: creds[0].CredentialID, IsResidentCredential: true, RpID: creds[0].RpID,
		PrivateKey: creds[0].PrivateKey, UserHandle: creds[0].UserHandle, SignCount: creds[0].SignCount}

	// Each sign-in runs in a new browser profile (no session, no cookies)
	// whose authenticator holds the same passkey.
	for _, c := range []struct {
		name   string
		button bool
	}{
		// Chromium's virtual environment answers the email field's
		// autofill request (conditional mediation) by itself, with the
		// only passkey there is, as if the user picked it.
		{"Autofill", false},
		// The passkey reaches the authenticator once the autofill request
		// has found none, so only the button can use it.
		{"Button", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			fresh, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
			defer cancel()
			auth := virtualAuthenticator(t, fresh, opts)
			add := func() {
				t.Helper()
				if _, err := chromedp.Call(fresh, webauthn.AddCredential, webauthn.AddCredentialParams{AuthenticatorID: auth, Credential: passkey}); err != nil {
					t.Fatalf("WebAuthn.addCredential: %v", err)
				}
			}
			ar := rp.AuthURL()
			if c.button {
				chromeDo(t, fresh, "open the authorization URL", chromedp.Navigate(ar.URL), chromedp.WaitVisible(chromedp.ID("webauthn-passkey-button")))
				testkit.Screenshot(t, fresh, "identify-passkey")
				add()
				chromeDo(t, fresh, "sign in with the passkey", chromedp.Click(chromedp.ID("webauthn-passkey-button")), chromedp.WaitVisible(chromedp.ID("signed-in")))
			} else {
				add()
				chromeDo(t, fresh, "open the authorization URL and pick the passkey", chromedp.Navigate(ar.URL), chromedp.WaitVisible(chromedp.ID("signed-in")))
			}
			if loc, _ := chromedp.Run(fresh, chromedp.Location()); !strings.HasPrefix(loc, callback+"?") {
				t.Fatalf("browser ended at %s, want the RP callback", loc)
			}
			cl := redeemCode(t, rp, ar, callbacks)
			if cl.Sub != f.userID {
				t.Errorf("sub = %q, want %q", cl.Sub, f.userID)
			}
			for _, m := range []string{"swk", "user", "mfa"} {
				if !slices.Contains(cl.AMR, m) {
					t.Errorf("amr = %v, want it to contain %q", cl.AMR, m)
				}
			}
			if slices.Contains(cl.AMR, "pwd") {
				t.Errorf("amr = %v, want no password", cl.AMR)
			}
			if cl.ACR != "urn:lanyard:acr:2fa" {
				t.Errorf("acr = %q, want urn:lanyard:acr:2fa", cl.ACR)
			}
			// The next profile's copy carries on from this one's counter.
			if got := authenticatorCredentials(t, fresh, auth); len(got) == 1 {
				passkey.SignCount = got[0].SignCount
			}
		})
	}

	// A copy of the passkey made at registration has a counter that has
	// since been passed: a clone, refused.
	t.Run("ClonedCopy", func(t *testing.T) {
		fresh, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
		defer cancel()
		auth := virtualAuthenticator(t, fresh, opts)
		clone := *passkey
		clone.SignCount = creds[0].SignCount
		if _, err := chromedp.Call(fresh, webauthn.AddCredential, webauthn.AddCredentialParams{AuthenticatorID: auth, Credential: &clone}); err != nil {
			t.Fatalf("WebAuthn.addCredential: %v", err)
		}
		ar := rp.AuthURL()
		chromeDo(t, fresh, "open the authorization URL and pick the cloned passkey", chromedp.Navigate(ar.URL),
			chromedp.WaitVisible(chromedp.Search(`//h1[normalize-space()="This security key cannot be used"]`)))
		evs, err := f.s.Directory.AuditEventsFor(t.Context(), f.userID, time.Now().Add(-time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(evs, func(e directory.AuditEvent) bool {
			return e.Action == "webauthn.clone_warning" && e.Outcome == directory.OutcomeDenied
		}) {
			t.Errorf("no webauthn.clone_warning in the audit log")
		}
	})
}

// TestWebAuthnEnrolChromium signs an administrator, who must use a second
// factor and has none, in to a relying party: the enrolment page registers
// a security key, which then counts as the second factor.
func TestWebAuthnEnrolChromium(t *testing.T) {
	f := newWAFixture(t, nil, directory.RoleOrgAdmin)
	rp, callback, callbacks := f.rp(t)
	ctx := testkit.Chromium(t, f.s.HTTP.Certificate())
	auth := virtualAuthenticator(t, ctx, webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportUsb})

	ar := rp.AuthURL()
	chromeDo(t, ctx, "open the authorization URL", chromedp.Navigate(ar.URL), chromedp.WaitVisible(chromedp.ID("email")))
	chromeDo(t, ctx, "enter the email",
		chromedp.SendKeys(chromedp.ID("email"), waEmail),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Continue"]`)),
		chromedp.WaitVisible(chromedp.ID("password")))
	chromeDo(t, ctx, "enter the password",
		chromedp.SendKeys(chromedp.ID("password"), waPassword),
		chromedp.Click(chromedp.Search(`//button[normalize-space()="Sign in"]`)),
		chromedp.WaitVisible(chromedp.ID("webauthn-enrol-button")))
	testkit.Screenshot(t, ctx, "enrol")
	chromeDo(t, ctx, "register a security key", chromedp.Click(chromedp.ID("webauthn-enrol-button")),
		chromedp.WaitVisible(chromedp.Search(`//button[normalize-space()="I have saved them, continue"]`)))
	testkit.Screenshot(t, ctx, "recovery-codes")
	chromeDo(t, ctx, "confirm the recovery codes are saved",
		chromedp.Click(chromedp.Search(`//button[normalize-space()="I have saved them, continue"]`)), chromedp.WaitVisible(chromedp.ID("signed-in")))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, callback+"?") {
		t.Fatalf("browser ended at %s, want the RP callback", loc)
	}
	if creds := authenticatorCredentials(t, ctx, auth); len(creds) != 1 {
		t.Fatalf("authenticator holds %d credentials, want 1", len(creds))
	}
	if keys := f.storedKeys(t); len(keys) != 1 || keys[0].Name != "Security key" {
		t.Errorf("stored keys = %+v, want one named Security key", keys)
	}
	cl := redeemCode(t, rp, ar, callbacks)
	for _, m := range []string{"pwd", "hwk", "mfa"} {
		if !slices.Contains(cl.AMR, m) {
			t.Errorf("amr = %v, want it to contain %q", cl.AMR, m)
		}
	}
	if cl.ACR != "urn:lanyard:acr:2fa" {
		t.Errorf("acr = %q, want urn:lanyard:acr:2fa", cl.ACR)
	}
}

// softKey is a security key in software for tests without a browser: an
// ES256 key pair whose credential the test stores directly, and which signs
// assertions as an authenticator would.
type softKey struct {
	id   []byte
	priv *ecdsa.PrivateKey
}

func newSoftKey(t *testing.T) *softKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return &softKey{id: id, priv: priv}
}

// store registers the key for userID as the directory keeps it, with the
// signature counter at count.
func (k *softKey) store(t *testing.T, f *waFixture, name string, count uint32) directory.Credential {
	t.Helper()
	pub, err := k.priv.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         1, // P-256
		XCoord:        pub[1:33], YCoord: pub[33:65],
	})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := json.Marshal(gowebauthn.Credential{ID: k.id, PublicKey: cose, AttestationFormat: "none",
		Transport: []protocol.AuthenticatorTransport{protocol.USB}, Flags: gowebauthn.CredentialFlags{UserPresent: true},
		Authenticator: gowebauthn.Authenticator{SignCount: count, Attachment: protocol.CrossPlatform}})
	if err != nil {
		t.Fatal(err)
	}
	rec := directory.Credential{ID: "SOFTKEY" + strings.ToUpper(hex.EncodeToString(k.id[:4])), UserID: f.userID, Type: directory.CredentialWebAuthn,
		Name: name, Secret: secret, CreatedAt: time.Now()}
	if err := f.s.Directory.PutCredential(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// assert returns the AuthenticationResponseJSON of an assertion over
// challenge at origin, with user presence and the given counter; tamper
// changes the signature.
func (k *softKey) assert(t *testing.T, origin, challenge string, counter uint32, tamper bool) string {
	t.Helper()
	u, err := url.Parse(origin)
	if err != nil {
		t.Fatal(err)
	}
	clientData, _ := json.Marshal(map[string]any{"type": "webauthn.get", "challenge": challenge, "origin": origin, "crossOrigin": false})
	rpIDHash := sha256.Sum256([]byte(u.Hostname()))
	authData := append(rpIDHash[:], byte(protocol.FlagUserPresent))
	authData = binary.BigEndian.AppendUint32(authData, counter)
	cdHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(slices.Clone(authData), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if tamper {
		sig[len(sig)-1] ^= 1
	}
	b64 := base64.RawURLEncoding.EncodeToString
	body, _ := json.Marshal(map[string]any{
		"id": b64(k.id), "rawId": b64(k.id), "type": "public-key", "authenticatorAttachment": "cross-platform",
		"clientExtensionResults": map[string]any{},
		"response":               map[string]any{"clientDataJSON": b64(clientData), "authenticatorData": b64(authData), "signature": b64(sig)},
	})
	return string(body)
}

var dataAttrRE = regexp.MustCompile(`\sdata-(begin|ceremony|csrf)="([^"]*)"`)

// webauthnData returns the data-begin, data-ceremony and data-csrf of the
// WebAuthn element with id on the page.
func webauthnData(t *testing.T, p testkit.Page, id string) map[string]string {
	t.Helper()
	i := strings.Index(p.Body, `id="`+id+`"`)
	if i < 0 {
		t.Fatalf("no #%s on %s (status %d):\n%.2000s", id, p.URL, p.Status, p.Body)
	}
	tag := p.Body[strings.LastIndex(p.Body[:i], "<"):]
	tag = tag[:strings.Index(tag, ">")]
	out := map[string]string{}
	for _, m := range dataAttrRE.FindAllStringSubmatch(tag, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

type beginAnswer struct {
	Options struct {
		PublicKey struct {
			Challenge        string `json:"challenge"`
			RPID             string `json:"rpId"`
			UserVerification string `json:"userVerification"`
			AllowCredentials []struct {
				ID string `json:"id"`
			} `json:"allowCredentials"`
		} `json:"publicKey"`
		Mediation string `json:"mediation"`
	} `json:"options"`
	Finish string `json:"finish"`
	Error  string `json:"error"`
}

// postBegin posts form to a begin URL and decodes the answer.
func postBegin(t *testing.T, b *testkit.Browser, u string, form url.Values) (int, beginAnswer) {
	t.Helper()
	p := b.Post(u, form)
	var a beginAnswer
	if err := json.Unmarshal([]byte(p.Body), &a); err != nil {
		t.Fatalf("POST %s: %d, body not JSON: %v\n%.500s", u, p.Status, err, p.Body)
	}
	if ct := p.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("POST %s: Content-Type %q, want application/json", u, ct)
	}
	return p.Status, a
}

// identify opens the first sign-in page in a new browser and returns it
// with the ceremony's fields.
func (f *waFixture) identify(t *testing.T) (*testkit.Browser, url.Values) {
	t.Helper()
	b := testkit.NewBrowser(t, f.client(t))
	p, _ := b.Follow(b.Get(f.issuer+"/account"), f.issuer)
	d := webauthnData(t, p, "webauthn-passkey")
	if d["begin"] != "/login/webauthn/passkey/begin" {
		t.Errorf("data-begin = %q, want /login/webauthn/passkey/begin", d["begin"])
	}
	return b, url.Values{"ceremony": {d["ceremony"]}, "csrf_token": {d["csrf"]}}
}

func TestWebAuthnBeginPasskey(t *testing.T) {
	f := newWAFixture(t, nil)
	b, good := f.identify(t)
	with := func(k, v string) url.Values {
		form := url.Values{}
		for key, vs := range good {
			form[key] = slices.Clone(vs)
		}
		if v == "" {
			form.Del(k)
		} else {
			form.Set(k, v)
		}
		return form
	}
	for _, c := range []struct {
		name string
		path string
		form url.Values
		want int
	}{
		{"NoCSRF", "/login/webauthn/passkey/begin", with("csrf_token", ""), http.StatusForbidden},
		{"WrongCSRF", "/login/webauthn/passkey/begin", with("csrf_token", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), http.StatusForbidden},
		{"UnknownCeremony", "/login/webauthn/passkey/begin", with("ceremony", "NOSUCHCEREMONY"), http.StatusBadRequest},
		{"NoCeremony", "/login/webauthn/passkey/begin", with("ceremony", ""), http.StatusBadRequest},
		{"SecondFactorBeforePassword", "/login/webauthn/mfa/begin", good, http.StatusConflict},
		{"EnrolBeforePassword", "/login/webauthn/enrol/begin", good, http.StatusConflict},
		{"AccountWithoutSession", "/account/security-keys/begin", good, http.StatusForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, a := postBegin(t, b, f.issuer+c.path, c.form)
			if status != c.want {
				t.Errorf("POST %s = %d, want %d", c.path, status, c.want)
			}
			if a.Error == "" || a.Options.PublicKey.Challenge != "" {
				t.Errorf("answer = %+v, want an error and no options", a)
			}
		})
	}

	t.Run("Button", func(t *testing.T) {
		status, a := postBegin(t, b, f.issuer+"/login/webauthn/passkey/begin", good)
		if status != http.StatusOK {
			t.Fatalf("status = %d (%s), want 200", status, a.Error)
		}
		pk := a.Options.PublicKey
		if pk.RPID != "localhost" || len(pk.Challenge) < 22 || pk.UserVerification != "preferred" || len(pk.AllowCredentials) != 0 || a.Options.Mediation != "" {
			t.Errorf("options = %+v, want rpId localhost, a challenge, user verification preferred, no allowed credentials, no mediation", a.Options)
		}
		if a.Finish != "/login/webauthn/passkey/finish" {
			t.Errorf("finish = %q", a.Finish)
		}
	})
	t.Run("Autofill", func(t *testing.T) {
		status, a := postBegin(t, b, f.issuer+"/login/webauthn/passkey/begin", with("mediation", "conditional"))
		if status != http.StatusOK || a.Options.Mediation != "conditional" {
			t.Errorf("status %d, mediation %q; want 200, conditional", status, a.Options.Mediation)
		}
	})
}

// TestWebAuthnUnavailableOnIPIssuer checks that with an IP address as the
// issuer's host, which WebAuthn cannot use, begin says so instead of
// offering options no browser would take.
func TestWebAuthnUnavailableOnIPIssuer(t *testing.T) {
	s := testkit.NewServer(t, testkit.Options{})
	b := s.Browser(t)
	p, _ := b.Follow(b.Get(s.URL+"/account"), s.URL)
	d := webauthnData(t, p, "webauthn-passkey")
	status, a := postBegin(t, b, s.URL+"/login/webauthn/passkey/begin", url.Values{"ceremony": {d["ceremony"]}, "csrf_token": {d["csrf"]}})
	if status != http.StatusServiceUnavailable || a.Error == "" {
		t.Errorf("begin = %d %+v, want 503 with an error", status, a)
	}
}

// mfaPage signs in with the password in a new browser and returns the
// second-factor page's WebAuthn fields.
func (f *waFixture) mfaPage(t *testing.T) (*testkit.Browser, url.Values) {
	t.Helper()
	b := testkit.NewBrowser(t, f.client(t))
	p, _ := b.Follow(b.Get(f.issuer+"/account"), f.issuer)
	p, _ = b.Follow(b.SignIn(p, waEmail, waPassword), f.issuer)
	d := webauthnData(t, p, "webauthn-mfa")
	if d["begin"] != "/login/webauthn/mfa/begin" {
		t.Errorf("data-begin = %q, want /login/webauthn/mfa/begin", d["begin"])
	}
	return b, url.Values{"ceremony": {d["ceremony"]}, "csrf_token": {d["csrf"]}}
}

// TestWebAuthnSecondFactor drives the second factor with a key in
// software: a good assertion signs in, and tampered, replayed, garbled and
// counter-regressed ones are refused.
func TestWebAuthnSecondFactor(t *testing.T) {
	f := newWAFixture(t, nil)
	key := newSoftKey(t)
	rec := key.store(t, f, "Soft key", 10)

	finish := func(t *testing.T, b *testkit.Browser, form url.Values, credential string) testkit.Page {
		t.Helper()
		form = url.Values{"ceremony": form["ceremony"], "csrf_token": form["csrf_token"], "credential": {credential}}
		return b.Post(f.issuer+"/login/webauthn/mfa/finish", form)
	}
	challenge := func(t *testing.T, b *testkit.Browser, form url.Values) string {
		t.Helper()
		status, a := postBegin(t, b, f.issuer+"/login/webauthn/mfa/begin", form)
		if status != http.StatusOK {
			t.Fatalf("begin = %d %s", status, a.Error)
		}
		if pk := a.Options.PublicKey; len(pk.AllowCredentials) != 1 || pk.AllowCredentials[0].ID != base64.RawURLEncoding.EncodeToString(key.id) ||
			pk.UserVerification != "discouraged" {
			t.Errorf("options = %+v, want the user's one key, user verification discouraged", pk)
		}
		return a.Options.PublicKey.Challenge
	}
	refused := func(t *testing.T, p testkit.Page, status int, text string) {
		t.Helper()
		if p.Status != status || !strings.Contains(p.Body, text) {
			t.Errorf("finish = %d, want %d with %q:\n%.1500s", p.Status, status, text, p.Body)
		}
	}

	t.Run("Garbage", func(t *testing.T) {
		b, form := f.mfaPage(t)
		challenge(t, b, form)
		for _, cred := range []string{"", "{not json", `{"id":"x","type":"public-key","response":{}}`} {
			refused(t, finish(t, b, form, cred), http.StatusBadRequest, "could not be checked")
		}
	})
	t.Run("NoCSRF", func(t *testing.T) {
		b, form := f.mfaPage(t)
		ch := challenge(t, b, form)
		form.Set("csrf_token", "")
		refused(t, finish(t, b, form, key.assert(t, f.issuer, ch, 11, false)), http.StatusForbidden, "This form has expired")
	})
	t.Run("ChallengeNotIssued", func(t *testing.T) {
		b, form := f.mfaPage(t)
		challenge(t, b, form)
		refused(t, finish(t, b, form, key.assert(t, f.issuer, base64.RawURLEncoding.EncodeToString(make([]byte, 32)), 11, false)),
			http.StatusBadRequest, "could not be checked")
	})
	t.Run("OtherOrigin", func(t *testing.T) {
		b, form := f.mfaPage(t)
		ch := challenge(t, b, form)
		refused(t, finish(t, b, form, key.assert(t, "https://evil.example", ch, 11, false)), http.StatusBadRequest, "could not be checked")
	})
	t.Run("Tampered", func(t *testing.T) {
		b, form := f.mfaPage(t)
		ch := challenge(t, b, form)
		refused(t, finish(t, b, form, key.assert(t, f.issuer, ch, 11, true)), http.StatusBadRequest, "could not be checked")
		// The challenge was spent on the failure: the good signature
		// cannot follow.
		refused(t, finish(t, b, form, key.assert(t, f.issuer, ch, 11, false)), http.StatusBadRequest, "could not be checked")
	})
	t.Run("GoodThenReplayed", func(t *testing.T) {
		b, form := f.mfaPage(t)
		ch := challenge(t, b, form)
		good := key.assert(t, f.issuer, ch, 11, false)
		p := finish(t, b, form, good)
		if p.Status != http.StatusSeeOther {
			t.Fatalf("finish = %d, want 303:\n%.1500s", p.Status, p.Body)
		}
		if p, _ := b.Follow(p, f.issuer); !strings.Contains(p.Body, "Your account") {
			t.Errorf("not signed in: %d %s", p.Status, p.URL)
		}
		keys, err := f.s.Directory.Credentials(t.Context(), f.userID, directory.CredentialWebAuthn)
		if err != nil || len(keys) != 1 || keys[0].LastUsedAt.IsZero() {
			t.Fatalf("keys = %+v, %v; want the key's use recorded", keys, err)
		}
		var cred gowebauthn.Credential
		if err := json.Unmarshal(keys[0].Secret, &cred); err != nil || cred.Authenticator.SignCount != 11 {
			t.Errorf("stored counter = %d, %v; want 11", cred.Authenticator.SignCount, err)
		}
		// The same assertion again, in the same ceremony's place.
		b2, form2 := f.mfaPage(t)
		challenge(t, b2, form2)
		refused(t, finish(t, b2, form2, good), http.StatusBadRequest, "could not be checked")
	})
	t.Run("CounterWentBack", func(t *testing.T) {
		b, form := f.mfaPage(t)
		ch := challenge(t, b, form)
		refused(t, finish(t, b, form, key.assert(t, f.issuer, ch, 11, false)), http.StatusForbidden, "This security key cannot be used")
		evs, err := f.s.Directory.AuditEventsFor(t.Context(), f.userID, time.Now().Add(-time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(evs, func(e directory.AuditEvent) bool { return e.Action == "webauthn.clone_warning" })
		if i < 0 {
			t.Fatal("no webauthn.clone_warning in the audit log")
		}
		if e := evs[i]; e.Outcome != directory.OutcomeDenied || e.Detail["credential"] != rec.ID || e.Detail["stored_count"] != "11" || e.Detail["count"] != "11" {
			t.Errorf("clone warning = %+v", e)
		}
	})
}

// TestWebAuthnManageKeys lists, adds (without a browser able to) and
// removes keys on the account page; removing needs a recent sign-in.
func TestWebAuthnManageKeys(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	f := newWAFixture(t, clock)
	b := testkit.NewBrowser(t, f.client(t))
	p, _ := b.Follow(b.Get(f.issuer+"/account/security-keys"), f.issuer)
	p, _ = b.Follow(b.SignIn(p, waEmail, waPassword), f.issuer)
	if !strings.Contains(p.Body, "You have not added a security key or passkey.") {
		t.Fatalf("security keys page: %d %s\n%.2000s", p.Status, p.URL, p.Body)
	}

	t.Run("AddWithoutWebAuthn", func(t *testing.T) {
		got := b.Submit(p, `name="credential"`, map[string]string{"name": "Blue"})
		if got.Status != http.StatusUnprocessableEntity || !strings.Contains(got.Body, "Your browser did not register") ||
			!strings.Contains(got.Body, `value="Blue"`) {
			t.Errorf("add = %d, want 422 with the problem and the name kept:\n%.2000s", got.Status, got.Body)
		}
	})
	t.Run("AddWithoutCSRF", func(t *testing.T) {
		got := b.Submit(p, `name="credential"`, map[string]string{"name": "Blue", "csrf_token": "", "credential": "{}"})
		if got.Status != http.StatusForbidden {
			t.Errorf("add = %d, want 403", got.Status)
		}
	})
	t.Run("BeginGivesOptions", func(t *testing.T) {
		action, fields := p.Form(t, `name="credential"`)
		if action != f.issuer+"/account/security-keys/finish" {
			t.Errorf("form action = %q", action)
		}
		status, a := postBegin(t, b, f.issuer+"/account/security-keys/begin", url.Values{"csrf_token": fields["csrf_token"]})
		if status != http.StatusOK || a.Options.PublicKey.Challenge == "" || a.Options.PublicKey.RPID != "" {
			// Creation options name the RP in rp.id, not rpId.
			t.Errorf("begin = %d %+v", status, a)
		}
	})

	key := newSoftKey(t)
	rec := key.store(t, f, "Soft key", 0)
	p = b.Get(f.issuer + "/account/security-keys")
	if !strings.Contains(p.Body, "<td class=\"nhsuk-table__cell\">Soft key</td>") || !strings.Contains(p.Body, ">Never<") {
		t.Fatalf("key not listed:\n%.3000s", p.Body)
	}

	t.Run("RemoveAfterTenMinutesSignsInAgain", func(t *testing.T) {
		clock.Advance(11 * time.Minute)
		got := b.Submit(p, `value="`+rec.ID+`"`, nil)
		if loc := got.Header.Get("Location"); got.Status != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?c=") {
			t.Errorf("remove = %d to %q, want 303 to sign in", got.Status, loc)
		}
		if keys := f.storedKeys(t); len(keys) != 1 {
			t.Errorf("%d keys, want the key kept", len(keys))
		}
	})
	t.Run("RemoveWithoutCSRF", func(t *testing.T) {
		got := b.Submit(p, `value="`+rec.ID+`"`, map[string]string{"csrf_token": "x"})
		if got.Status != http.StatusForbidden || len(f.storedKeys(t)) != 1 {
			t.Errorf("remove = %d, want 403 and the key kept", got.Status)
		}
	})
	t.Run("RemoveAfterSigningInAgain", func(t *testing.T) {
		// Signing in again now needs the key as the second factor.
		b2 := testkit.NewBrowser(t, f.client(t))
		q, _ := b2.Follow(b2.Get(f.issuer+"/account/security-keys"), f.issuer)
		q, _ = b2.Follow(b2.SignIn(q, waEmail, waPassword), f.issuer)
		d := webauthnData(t, q, "webauthn-mfa")
		form := url.Values{"ceremony": {d["ceremony"]}, "csrf_token": {d["csrf"]}}
		_, a := postBegin(t, b2, f.issuer+d["begin"], form)
		form.Set("credential", key.assert(t, f.issuer, a.Options.PublicKey.Challenge, 1, false))
		q, _ = b2.Follow(b2.Post(f.issuer+a.Finish, form), f.issuer)
		if !strings.Contains(q.Body, "Soft key") {
			t.Fatalf("back on the security keys page: %d %s\n%.2000s", q.Status, q.URL, q.Body)
		}
		got := b2.Submit(q, `value="`+rec.ID+`"`, nil)
		if loc := got.Header.Get("Location"); got.Status != http.StatusSeeOther || loc != "/account/security-keys" {
			t.Fatalf("remove = %d to %q, want 303 back to the list", got.Status, loc)
		}
		if keys := f.storedKeys(t); len(keys) != 0 {
			t.Errorf("%d keys after removal, want 0", len(keys))
		}
		m := f.sink.Wait(t, 1)
		body, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(m[len(m)-1].Data)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), "was removed") || !strings.Contains(string(body), "Soft key") {
			t.Errorf("last mail does not tell of the removal:\n%s", body)
		}
		evs, err := f.s.Directory.AuditEventsFor(t.Context(), f.userID, clock.Now().Add(-time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(evs, func(e directory.AuditEvent) bool {
			return e.Action == "mfa.remove" && e.Detail["method"] == "webauthn" && e.Detail["credential"] == rec.ID
		}) {
			t.Error("no mfa.remove of the key in the audit log")
		}
	})
}
