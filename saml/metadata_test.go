package saml_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/saml"
)

var update = flag.Bool("update", false, "rewrite the golden files: testdata/sp-metadata.xml (with a fresh certificate) and testdata/idp-metadata*.golden")

// now is the tests' clock: within the validity of testdata's certificate.
var now = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

// newCert returns a fresh self-signed certificate, base64 DER, valid from
// notBefore to notAfter.
func newCert(t testing.TB, notBefore, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sp.example.nhs.uk"},
		NotBefore: notBefore, NotAfter: notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// metadata is SP metadata with placeholders: ENTITY, ACS (the
// AssertionConsumerService elements) and KEYS (the KeyDescriptors).
const metadata = `<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="ENTITY">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="true" WantAssertionsSigned="true">
KEYS
    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
ACS
  </md:SPSSODescriptor>
</md:EntityDescriptor>
`

func key(use, cert string) string {
	u := ""
	if use != "" {
		u = ` use="` + use + `"`
	}
	return `    <md:KeyDescriptor` + u + `><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + cert + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`
}

func acs(binding, location string) string {
	return `    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:` + binding + `" Location="` + location + `" index="1"/>`
}

func build(entity, keys, services string) []byte {
	return []byte(strings.NewReplacer("ENTITY", entity, "KEYS", keys, "ACS", services).Replace(metadata))
}

// good returns valid metadata with fresh signing and encryption keys.
func good(t testing.TB) []byte {
	cert := newCert(t, now.Add(-24*time.Hour), now.Add(365*24*time.Hour))
	return build("https://rota.example.nhs.uk/saml", key("signing", cert)+"\n"+key("encryption", cert),
		acs("HTTP-Artifact", "https://rota.example.nhs.uk/saml/artifact")+"\n"+acs("HTTP-POST", "https://rota.example.nhs.uk/saml/acs")+"\n"+acs("HTTP-POST", "http://127.0.0.1:8443/acs")+"\n"+acs("HTTP-Redirect", "https://rota.example.nhs.uk/saml/redirect-acs"))
}

// writeTestdata rewrites testdata/sp-metadata.xml (with -update).
func writeTestdata(t *testing.T) {
	cert := newCert(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC))
	data := build("https://rota.example.nhs.uk/saml", key("signing", cert), acs("HTTP-POST", "https://rota.example.nhs.uk/saml/acs"))
	if err := os.WriteFile(filepath.Join("testdata", "sp-metadata.xml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseSPMetadataGood(t *testing.T) {
	if *update {
		writeTestdata(t)
	}
	testdata, err := os.ReadFile(filepath.Join("testdata", "sp-metadata.xml"))
	if err != nil {
		t.Fatal(err)
	}
	entities := []byte(`<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" validUntil="2032-01-01T00:00:00Z">` +
		strings.TrimPrefix(string(good(t)), `<?xml version="1.0" encoding="UTF-8"?>`) + `</EntitiesDescriptor>`)
	for _, tc := range []struct {
		name string
		data []byte
		acs  []string
	}{
		{"testdata", testdata, []string{"https://rota.example.nhs.uk/saml/acs"}},
		{"generated", good(t), []string{"https://rota.example.nhs.uk/saml/acs", "http://127.0.0.1:8443/acs"}},
		{"in EntitiesDescriptor", entities, []string{"https://rota.example.nhs.uk/saml/acs", "http://127.0.0.1:8443/acs"}},
		{"no keys", build("urn:example:sp", "", acs("HTTP-POST", "https://localhost/acs")), []string{"https://localhost/acs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ed, err := saml.ParseSPMetadata(tc.data, now)
			if err != nil {
				t.Fatalf("ParseSPMetadata: %v", err)
			}
			got, err := saml.ACSURLs(ed)
			if err != nil {
				t.Fatalf("ACSURLs: %v", err)
			}
			if diff := cmp.Diff(tc.acs, got); diff != "" {
				t.Errorf("ACSURLs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSPMetadataRefusals(t *testing.T) {
	valid := newCert(t, now.Add(-24*time.Hour), now.Add(24*time.Hour))
	expired := newCert(t, time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	future := newCert(t, time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2033, 1, 1, 0, 0, 0, 0, time.UTC))
	post := acs("HTTP-POST", "https://sp.example.nhs.uk/acs")
	withDoctype := []byte(`<?xml version="1.0"?><!DOCTYPE md:EntityDescriptor [<!ELEMENT x ANY>]>` + string(build("urn:example:sp", "", post)[len(`<?xml version="1.0" encoding="UTF-8"?>`):]))
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"oversized", append(build("urn:example:sp", "", post), bytes.Repeat([]byte(" "), saml.MaxMetadataSize)...), "larger than 256 KiB"},
		{"DOCTYPE", withDoctype, "DTDs (DOCTYPE and ENTITY declarations) are not allowed"},
		{"billion laughs", readFile(t, "billion-laughs.xml"), "DTDs"},
		{"external entity", readFile(t, "xxe.xml"), "DTDs"},
		{"lower-case doctype", []byte(`<!doctype x>`), "DTDs"},
		{"not XML", []byte("hello"), "not XML"},
		{"empty", nil, "not XML"},
		{"wrong root", []byte(`<EntityDescriptor entityID="x"/>`), "root element is {}EntityDescriptor"},
		{"no entity ID", build("", "", post), "no entityID"},
		{"entity ID with space", build("urn:example: sp", "", post), "entityID must be"},
		{"expired metadata", []byte(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="urn:x" validUntil="2030-01-01T00:00:00Z"/>`), "expired on 2030-01-01 (validUntil)"},
		{"two entities", []byte(`<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><EntityDescriptor entityID="a"/><EntityDescriptor entityID="b"/></EntitiesDescriptor>`), "want exactly one EntityDescriptor"},
		{"IdP metadata", []byte(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="urn:x"><IDPSSODescriptor/></EntityDescriptor>`), "no SPSSODescriptor"},
		{"no ACS", build("urn:example:sp", "", ""), "SP metadata: no AssertionConsumerService"},
		{"HTTP-Redirect only", build("urn:example:sp", "", acs("HTTP-Redirect", "https://sp.example.nhs.uk/acs")),
			"SP metadata: AssertionConsumerService binding urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect is not supported (Lanyard sends assertions over HTTP-POST only)"},
		{"SOAP only", build("urn:example:sp", "", acs("SOAP", "https://sp.example.nhs.uk/soap")),
			"SP metadata: AssertionConsumerService binding urn:oasis:names:tc:SAML:2.0:bindings:SOAP is not supported (Lanyard sends assertions over HTTP-POST only)"},
		{"unknown binding", build("urn:example:sp", "", acs("HTTP-Carrier-Pigeon", "https://sp.example.nhs.uk/acs")), "binding urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Carrier-Pigeon is not supported"},
		{"http ACS", build("urn:example:sp", "", acs("HTTP-POST", "http://sp.example.nhs.uk/acs")), "must be https (http only on a loopback address)"},
		{"relative ACS", build("urn:example:sp", "", acs("HTTP-POST", "/acs")), `invalid url scheme ""`},
		{"ACS without host", build("urn:example:sp", "", acs("HTTP-POST", "https:///acs")), "must be an absolute URL"},
		{"expired signing certificate", build("urn:example:sp", key("signing", expired), post), "SP metadata: KeyDescriptor 1: signing certificate expired on 2024-01-01"},
		{"expired encryption certificate", build("urn:example:sp", key("signing", valid)+key("encryption", expired), post), "KeyDescriptor 2: encryption certificate expired on 2024-01-01"},
		{"expired key of either use", build("urn:example:sp", key("", expired), post), "signing and encryption certificate expired on 2024-01-01"},
		{"future certificate", build("urn:example:sp", key("signing", future), post), "signing certificate is not valid until 2032-01-01"},
		{"unknown key use", build("urn:example:sp", key("decoration", valid), post), `use must be signing or encryption, got "decoration"`},
		{"bad base64", build("urn:example:sp", key("signing", "!!!"), post), "signing certificate is not base64"},
		{"not a certificate", build("urn:example:sp", key("signing", "aGVsbG8="), post), "signing certificate: x509"},
		{"no certificate", build("urn:example:sp", key("signing", ""), post), "signing certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := saml.ParseSPMetadata(tc.data, now)
			if !errors.Is(err, directory.ErrInvalid) {
				t.Fatalf("ParseSPMetadata = %v, want an error wrapping ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseSPMetadata = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzParseSPMetadata(f *testing.F) {
	for _, name := range []string{"sp-metadata.xml", "billion-laughs.xml", "xxe.xml"} {
		f.Add(readFile(f, name))
	}
	f.Add(good(f))
	f.Add(bytes.Repeat([]byte("<a>"), saml.MaxMetadataSize/3+1))
	f.Add([]byte(`<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><EntityDescriptor entityID="a"><SPSSODescriptor><AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://a/acs"/></SPSSODescriptor></EntityDescriptor></EntitiesDescriptor>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ed, err := saml.ParseSPMetadata(data, now)
		switch {
		case err != nil && !errors.Is(err, directory.ErrInvalid):
			t.Fatalf("ParseSPMetadata = %v, want an error wrapping ErrInvalid", err)
		case err == nil:
			if len(data) > saml.MaxMetadataSize {
				t.Fatalf("ParseSPMetadata accepted %d bytes", len(data))
			}
			if urls, err := saml.ACSURLs(ed); err != nil || len(urls) == 0 {
				t.Fatalf("accepted metadata has ACS URLs %v, %v", urls, err)
			}
		}
	})
}
