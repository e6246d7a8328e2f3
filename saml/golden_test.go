package saml_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/lanyard/lanyard/authn"
	"github.com/lanyard/lanyard/cmd/idp/server"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/saml"
	"github.com/lanyard/lanyard/testkit"
)

// fixedKeys is a KeySource with the test keys of testdata.
type fixedKeys struct {
	cur, next *rsa.PrivateKey
}

func (k fixedKeys) SigningRSAKey(context.Context) (*rsa.PrivateKey, string, error) {
	return k.cur, "kid-1", nil
}

func (k fixedKeys) NextRSAKey(context.Context) (*rsa.PrivateKey, string, bool, error) {
	return k.next, "kid-2", k.next != nil, nil
}

// noSessions is enough of authn for the metadata.
type noSessions struct{}

func (noSessions) Current(*http.Request) (authn.Session, bool, error) {
	return authn.Session{}, false, nil
}
func (noSessions) StartLogin(http.ResponseWriter, *http.Request, authn.LoginOptions) {}
func (noSessions) Fail(w http.ResponseWriter, _ *http.Request, status int, _, _ string) {
	w.WriteHeader(status)
}
func (noSessions) SignOut(http.ResponseWriter, *http.Request) (authn.Session, bool, error) {
	return authn.Session{}, false, nil
}
func (noSessions) OnFrontChannelLogout(authn.FrontChannelHook) {}

func readKey(t *testing.T, name string) *rsa.PrivateKey {
	t.Helper()
	b, _ := pem.Decode(readFile(t, name))
	if b == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

// TestMetadataGolden compares the metadata, made from fixed keys at a
// fixed time, byte for byte with testdata/idp-metadata.golden; -update
// rewrites it.
func TestMetadataGolden(t *testing.T) {
	for _, c := range []struct {
		name, golden string
		next         bool
		signed       bool
	}{
		{"one key", "idp-metadata.golden", false, false},
		{"next key published, signed requests required", "idp-metadata-next.golden", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			keys := fixedKeys{cur: readKey(t, "idp-key-1.pem")}
			if c.next {
				keys.next = readKey(t, "idp-key-2.pem")
			}
			idp := saml.New(saml.Config{BaseURL: "https://idp.example.nhs.uk/", RequireSignedRequests: c.signed}, nil, nil, noSessions{}, keys,
				func() time.Time { return now }, slog.New(slog.NewTextHandler(t.Output(), nil)))
			w := httptest.NewRecorder()
			idp.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/saml/metadata", nil))
			if w.Code != http.StatusOK {
				t.Fatalf("GET /saml/metadata: %d", w.Code)
			}
			path := filepath.Join("testdata", c.golden)
			if *update {
				if err := os.WriteFile(path, w.Body.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(w.Body.Bytes(), want) {
				t.Errorf("metadata differs from %s (go test -update rewrites it):\n%s", path, w.Body.String())
			}
		})
	}
}

// signingKeys returns the public keys of the signing certificates in
// metadata, in order.
func signingKeys(t *testing.T, ed *crewsaml.EntityDescriptor) []*rsa.PublicKey {
	t.Helper()
	var out []*rsa.PublicKey
	for _, kd := range ed.IDPSSODescriptors[0].KeyDescriptors {
		if kd.Use != "signing" {
			t.Errorf("key descriptor for %q", kd.Use)
			continue
		}
		der, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(kd.KeyInfo.X509Data.X509Certificates[0].Data), ""))
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.PublicKey.(*rsa.PublicKey))
	}
	return out
}

// TestNextSigningKeyPublishedBeforeRotation: as JWKS does, the metadata
// lists the next signing key's certificate before it signs, so an SP that
// fetched it then accepts responses signed after the rotation.
func TestNextSigningKeyPublishedBeforeRotation(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	// crewjam's SP reads its clock from a global; this test owns it.
	crewsaml.TimeNow = clock.Now
	t.Cleanup(func() { crewsaml.TimeNow = func() time.Time { return time.Now().UTC() } })
	f := newFixture(t, testkit.Options{Now: clock.Now, Configure: func(c *server.Config) {
		c.OIDC.SigningKeyPeriod, c.OIDC.SigningKeyLead = 2*time.Hour, time.Hour
		c.Session.IdleTimeout, c.Session.AbsoluteTimeout = 24*time.Hour, 24*time.Hour
	}})
	if got := signingKeys(t, f.idpMetadata(t)); len(got) != 1 {
		t.Fatalf("fresh metadata has %d signing keys, want 1", len(got))
	}
	clock.Advance(time.Hour + time.Minute) // within the lead of the rotation
	cached := f.idpMetadata(t)
	keys := signingKeys(t, cached)
	if len(keys) != 2 {
		t.Fatalf("metadata within the lead has %d signing keys, want the current and the next", len(keys))
	}
	_, kid, err := f.s.OIDC.SigningRSAKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !keys[0].Equal(jwksKey(t, f, kid)) {
		t.Error("first signing key is not the current JWKS key")
	}
	next, nextKid, ok, err := f.s.OIDC.NextRSAKey(t.Context())
	if err != nil || !ok {
		t.Fatalf("NextRSAKey = %v, %v", ok, err)
	}
	if !keys[1].Equal(&next.PublicKey) || !keys[1].Equal(jwksKey(t, f, nextKid)) {
		t.Error("second signing key is not the next key published in JWKS")
	}

	// After the rotation, an SP holding the metadata fetched before it
	// accepts the response signed with the new key.
	clock.Advance(time.Hour)
	if _, kid2, _ := f.s.OIDC.SigningRSAKey(t.Context()); kid2 != nextKid {
		t.Fatalf("after the rotation the signing key is %s, want %s", kid2, nextKid)
	}
	sp := f.newSP(t, spEntity)
	sp.IDPMetadata = cached
	f.register(t, sp, directory.NameIDPersistent)
	b := f.s.Browser(t)
	a := f.signIn(t, b, sp)
	if a == nil {
		t.Fatal("no assertion")
	}
	var ed crewsaml.EntityDescriptor
	p := b.Get(f.s.URL + "/saml/metadata")
	if err := xml.NewDecoder(io.NopCloser(strings.NewReader(p.Body))).Decode(&ed); err != nil {
		t.Fatal(err)
	}
	if got := signingKeys(t, &ed); len(got) == 0 || !got[0].Equal(&next.PublicKey) {
		t.Error("after the rotation the metadata does not lead with the new key")
	}
}
