package saml_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/lanyard/lanyard/saml"
)

const authnXML = `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id-1" Version="2.0" IssueInstant="2031-03-04T05:06:07Z"><saml:Issuer>https://rota.example/saml</saml:Issuer></samlp:AuthnRequest>`

func TestDecode(t *testing.T) {
	bomb := deflate64(bytes.Repeat([]byte("a"), saml.MaxMessageSize+1))
	for _, c := range []struct {
		name    string
		decode  func(string) ([]byte, error)
		in      string
		wantErr string
	}{
		{"redirect", saml.DecodeRedirect, deflate64([]byte(authnXML)), ""},
		{"redirect: deflate bomb", saml.DecodeRedirect, bomb, "inflates to more than"},
		{"redirect: not base64", saml.DecodeRedirect, "a b", "base64"},
		{"redirect: not deflate", saml.DecodeRedirect, base64.StdEncoding.EncodeToString([]byte{0xff, 0xff, 0xff}), "deflate"},
		{"redirect: too long", saml.DecodeRedirect, strings.Repeat("A", saml.MaxEncodedSize+4), "more than"},
		{"post", saml.DecodePost, base64.StdEncoding.EncodeToString([]byte(authnXML)), ""},
		{"post: wrapped lines", saml.DecodePost, "\n" + base64.StdEncoding.EncodeToString([]byte(authnXML)) + "\r\n", ""},
		{"post: not base64", saml.DecodePost, "***", "base64"},
		{"post: too large", saml.DecodePost, base64.StdEncoding.EncodeToString(make([]byte, saml.MaxMessageSize+1)), "more than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := c.decode(c.in)
			if c.wantErr == "" {
				if err != nil || string(out) != authnXML {
					t.Errorf("decode = %q, %v, want the request", out, err)
				}
				return
			}
			if !errors.Is(err, saml.ErrMalformed) || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("decode error = %v, want ErrMalformed mentioning %q", err, c.wantErr)
			}
		})
	}
}

func TestParseMessage(t *testing.T) {
	for _, c := range []struct {
		name, in, wantErr string
	}{
		{"request", authnXML, ""},
		{"billion laughs", string(readFile(t, "billion-laughs.xml")), "DTDs"},
		{"external entity", string(readFile(t, "xxe.xml")), "DTDs"},
		{"doctype in lower case", "<!doctype x>" + authnXML, "DTDs"},
		{"not XML", "hello", "no root element"},
		{"unclosed", "<a>", "XML"},
		{"two roots", `<a/><b/>`, "XML"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, err := saml.ParseMessage([]byte(c.in))
			switch {
			case c.wantErr == "":
				if err != nil || root.Tag != "AuthnRequest" {
					t.Errorf("ParseMessage = %v, %v", root, err)
				}
			default:
				if !errors.Is(err, saml.ErrMalformed) || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("ParseMessage error = %v, want ErrMalformed mentioning %q", err, c.wantErr)
				}
			}
		})
	}
}

// checkDecoded is what every accepted message must satisfy.
func checkDecoded(t *testing.T, out []byte, err error) {
	if err != nil {
		if !errors.Is(err, saml.ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		return
	}
	if len(out) > saml.MaxMessageSize {
		t.Fatalf("accepted %d bytes, over MaxMessageSize", len(out))
	}
	root, err := saml.ParseMessage(out)
	if err != nil {
		if !errors.Is(err, saml.ErrMalformed) {
			t.Fatalf("ParseMessage error %v does not wrap ErrMalformed", err)
		}
		return
	}
	if root == nil {
		t.Fatal("ParseMessage accepted a message without a root")
	}
	if u := bytes.ToUpper(out); bytes.Contains(u, []byte("<!DOCTYPE")) || bytes.Contains(u, []byte("<!ENTITY")) {
		t.Fatal("ParseMessage accepted a DTD")
	}
}

// FuzzDecodeRedirect: the HTTP-Redirect decoding path (base64, DEFLATE,
// XML) never panics, stays within its bounds and refuses DTDs. Seeds are
// in testdata/fuzz/FuzzDecodeRedirect as well.
func FuzzDecodeRedirect(f *testing.F) {
	f.Add(deflate64([]byte(authnXML)))
	f.Add(deflate64(readFile(f, "billion-laughs.xml")))
	f.Add(deflate64(bytes.Repeat([]byte("<a>"), 1000)))
	f.Add("!!!")
	f.Add("")
	f.Fuzz(func(t *testing.T, encoded string) {
		out, err := saml.DecodeRedirect(encoded)
		checkDecoded(t, out, err)
	})
}

// FuzzDecodePost: the HTTP-POST decoding path (base64, XML). Seeds are in
// testdata/fuzz/FuzzDecodePost as well.
func FuzzDecodePost(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString([]byte(authnXML)))
	f.Add(base64.StdEncoding.EncodeToString(readFile(f, "xxe.xml")))
	f.Add(" " + base64.StdEncoding.EncodeToString([]byte("<a xmlns='urn:x'><b/></a>")) + "\n")
	f.Add("=")
	f.Fuzz(func(t *testing.T, encoded string) {
		out, err := saml.DecodePost(encoded)
		checkDecoded(t, out, err)
	})
}
