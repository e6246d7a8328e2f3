package saml

// This file reads SAML protocol messages from the browser (HTTP-Redirect
// and HTTP-POST bindings): bounded decoding, XML that cannot expand, and
// signature checks against the SP's registered keys.

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"
	xrv "github.com/mattermost/xml-roundtrip-validator"
	dsig "github.com/russellhaering/goxmldsig"
)

// Size limits of protocol messages. Real AuthnRequests and LogoutRequests
// are a few KiB.
const (
	// MaxMessageSize bounds a decoded (inflated) message's XML.
	MaxMessageSize = 64 << 10
	// MaxEncodedSize bounds the base64 text of a message in a query or form.
	MaxEncodedSize = 128 << 10
	// MaxRelayStateSize bounds RelayState. SAML bindings say 80 bytes; SPs
	// in the wild send more, so Lanyard allows some room but no more.
	MaxRelayStateSize = 1024
)

// ErrMalformed is wrapped by every error about a message that cannot be
// decoded or parsed.
var ErrMalformed = errors.New("malformed SAML message")

// DecodeRedirect decodes a message sent over the HTTP-Redirect binding:
// base64, then raw DEFLATE, to at most MaxMessageSize bytes. Errors wrap
// ErrMalformed.
func DecodeRedirect(encoded string) ([]byte, error) {
	if len(encoded) > MaxEncodedSize {
		return nil, fmt.Errorf("%w: more than %d bytes of base64", ErrMalformed, MaxEncodedSize)
	}
	compressed, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrMalformed, err)
	}
	fr := flate.NewReader(bytes.NewReader(compressed))
	defer fr.Close()
	out, err := io.ReadAll(io.LimitReader(fr, MaxMessageSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: deflate: %v", ErrMalformed, err)
	}
	if len(out) > MaxMessageSize {
		return nil, fmt.Errorf("%w: inflates to more than %d bytes", ErrMalformed, MaxMessageSize)
	}
	return out, nil
}

// DecodePost decodes a message sent over the HTTP-POST binding: base64 of
// at most MaxMessageSize bytes. Errors wrap ErrMalformed.
func DecodePost(encoded string) ([]byte, error) {
	if len(encoded) > MaxEncodedSize {
		return nil, fmt.Errorf("%w: more than %d bytes of base64", ErrMalformed, MaxEncodedSize)
	}
	// Some SPs wrap the base64 in lines.
	out, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(encoded), ""))
	if err != nil {
		return nil, fmt.Errorf("%w: base64: %v", ErrMalformed, err)
	}
	if len(out) > MaxMessageSize {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrMalformed, MaxMessageSize)
	}
	return out, nil
}

// ParseMessage parses a decoded message into its root element. It refuses,
// before parsing, any DTD (so no entity expansion or external entity), and
// XML that does not survive a round trip through encoding/xml (the
// mattermost validator, against namespace confusion). Errors wrap
// ErrMalformed.
func ParseMessage(data []byte) (*etree.Element, error) {
	if len(data) > MaxMessageSize {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrMalformed, MaxMessageSize)
	}
	if hasDTD(data) {
		return nil, fmt.Errorf("%w: DTDs (DOCTYPE and ENTITY declarations) are not allowed", ErrMalformed)
	}
	if err := xrv.Validate(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, fmt.Errorf("%w: XML: %v", ErrMalformed, err)
	}
	root := doc.Root()
	if root == nil {
		return nil, fmt.Errorf("%w: no root element", ErrMalformed)
	}
	if n := len(doc.ChildElements()); n != 1 {
		return nil, fmt.Errorf("%w: XML document with %d root elements", ErrMalformed, n)
	}
	return root, nil
}

// inbound is a protocol message as the browser delivered it.
type inbound struct {
	binding    string // crewsaml.HTTPRedirectBinding or crewsaml.HTTPPostBinding
	param      string // "SAMLRequest" or "SAMLResponse"
	xml        []byte
	root       *etree.Element
	relayState string
	// Redirect binding signature (SAML bindings §3.4.4.1): the algorithm,
	// the signature and the octets signed, as they came in the query.
	sigAlg, signature string
	signed            string
}

// readInbound reads a SAMLRequest or SAMLResponse from r over either
// binding. Errors wrap ErrMalformed.
func readInbound(w http.ResponseWriter, r *http.Request) (*inbound, error) {
	in := &inbound{}
	switch r.Method {
	case http.MethodGet:
		in.binding = crewsaml.HTTPRedirectBinding
		raw, err := rawQuery(r.URL.RawQuery)
		if err != nil {
			return nil, err
		}
		var signed []string
		for _, p := range []string{"SAMLRequest", "SAMLResponse"} {
			if v, ok := raw[p]; ok {
				if in.param != "" {
					return nil, fmt.Errorf("%w: both SAMLRequest and SAMLResponse", ErrMalformed)
				}
				in.param = p
				signed = append(signed, p+"="+v)
			}
		}
		if in.param == "" {
			return nil, fmt.Errorf("%w: no SAMLRequest or SAMLResponse", ErrMalformed)
		}
		for _, p := range []string{"RelayState", "SigAlg"} {
			if v, ok := raw[p]; ok {
				signed = append(signed, p+"="+v)
			}
		}
		in.signed = strings.Join(signed, "&")
		values := map[string]string{}
		for k, v := range raw {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return nil, fmt.Errorf("%w: query parameter %s: %v", ErrMalformed, k, err)
			}
			values[k] = u
		}
		in.relayState, in.sigAlg, in.signature = values["RelayState"], values["SigAlg"], values["Signature"]
		if (in.sigAlg == "") != (in.signature == "") {
			return nil, fmt.Errorf("%w: SigAlg and Signature go together", ErrMalformed)
		}
		if in.xml, err = DecodeRedirect(values[in.param]); err != nil {
			return nil, err
		}
	case http.MethodPost:
		in.binding = crewsaml.HTTPPostBinding
		r.Body = http.MaxBytesReader(w, r.Body, 2*MaxEncodedSize)
		if err := r.ParseForm(); err != nil {
			return nil, fmt.Errorf("%w: form: %v", ErrMalformed, err)
		}
		for _, p := range []string{"SAMLRequest", "SAMLResponse"} {
			switch vs := r.PostForm[p]; len(vs) {
			case 0:
			case 1:
				if in.param != "" {
					return nil, fmt.Errorf("%w: both SAMLRequest and SAMLResponse", ErrMalformed)
				}
				in.param = p
			default:
				return nil, fmt.Errorf("%w: %s given %d times", ErrMalformed, p, len(vs))
			}
		}
		if in.param == "" {
			return nil, fmt.Errorf("%w: no SAMLRequest or SAMLResponse", ErrMalformed)
		}
		if len(r.PostForm["RelayState"]) > 1 {
			return nil, fmt.Errorf("%w: RelayState given more than once", ErrMalformed)
		}
		in.relayState = r.PostForm.Get("RelayState")
		var err error
		if in.xml, err = DecodePost(r.PostForm.Get(in.param)); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: method %s", ErrMalformed, r.Method)
	}
	if err := checkRelayState(in.relayState); err != nil {
		return nil, err
	}
	root, err := ParseMessage(in.xml)
	if err != nil {
		return nil, err
	}
	in.root = root
	return in, nil
}

// rawQuery splits a query into its still-escaped values, refusing any of
// the SAML parameters given twice (the signature covers exact octets).
func rawQuery(q string) (map[string]string, error) {
	out := map[string]string{}
	for part := range strings.SplitSeq(q, "&") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature":
			if _, dup := out[k]; dup {
				return nil, fmt.Errorf("%w: %s given twice", ErrMalformed, k)
			}
			out[k] = v
		}
	}
	return out, nil
}

// checkRelayState bounds RelayState and refuses control characters.
func checkRelayState(s string) error {
	if len(s) > MaxRelayStateSize {
		return fmt.Errorf("%w: RelayState longer than %d bytes", ErrMalformed, MaxRelayStateSize)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: RelayState has control characters", ErrMalformed)
	}
	return nil
}

// unmarshalElement decodes el into v through encoding/xml.
func unmarshalElement(el *etree.Element, v any) error {
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	b, err := doc.WriteToBytes()
	if err != nil {
		return err
	}
	if err := xml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// ErrSignature is wrapped by every signature failure.
var ErrSignature = errors.New("SAML signature")

// Signature algorithms Lanyard accepts from SPs: SHA-256 and stronger.
var acceptedSigAlgs = map[string]struct {
	hash crypto.Hash
	alg  x509.SignatureAlgorithm
}{
	dsig.RSASHA256SignatureMethod:   {crypto.SHA256, x509.SHA256WithRSA},
	dsig.RSASHA384SignatureMethod:   {crypto.SHA384, x509.SHA384WithRSA},
	dsig.RSASHA512SignatureMethod:   {crypto.SHA512, x509.SHA512WithRSA},
	dsig.ECDSASHA256SignatureMethod: {crypto.SHA256, x509.ECDSAWithSHA256},
	dsig.ECDSASHA384SignatureMethod: {crypto.SHA384, x509.ECDSAWithSHA384},
	dsig.ECDSASHA512SignatureMethod: {crypto.SHA512, x509.ECDSAWithSHA512},
}

// signingCerts returns the SP's certificates for signing (use="signing"
// or no use).
func signingCerts(sp *crewsaml.SPSSODescriptor) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, kd := range sp.KeyDescriptors {
		if kd.Use != "" && kd.Use != "signing" {
			continue
		}
		for _, c := range kd.KeyInfo.X509Data.X509Certificates {
			der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
			if err != nil {
				return nil, err
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, err
			}
			out = append(out, cert)
		}
	}
	return out, nil
}

// verify checks the message's signature against the SP's signing keys:
// the query signature of the Redirect binding, or an enveloped XML
// signature (POST binding; also accepted over Redirect, as crewjam sends
// it). It returns the element to read, which for an XML signature is the
// signed content only. With no signature, it returns the root unless
// required. Errors wrap ErrSignature.
func verify(in *inbound, sp *crewsaml.SPSSODescriptor, required bool, now time.Time) (*etree.Element, bool, error) {
	certs, err := signingCerts(sp)
	if err != nil {
		return nil, false, fmt.Errorf("%w: SP certificate: %v", ErrSignature, err)
	}
	if in.signature != "" {
		if len(certs) == 0 {
			return nil, false, fmt.Errorf("%w: signed, but the SP's metadata has no signing key", ErrSignature)
		}
		a, ok := acceptedSigAlgs[in.sigAlg]
		if !ok {
			return nil, false, fmt.Errorf("%w: SigAlg %q not accepted (use RSA or ECDSA with SHA-256 or stronger)", ErrSignature, in.sigAlg)
		}
		sig, err := base64.StdEncoding.DecodeString(in.signature)
		if err != nil {
			return nil, false, fmt.Errorf("%w: Signature is not base64", ErrSignature)
		}
		for _, c := range certs {
			if c.CheckSignature(a.alg, []byte(in.signed), sig) == nil {
				if now.Before(c.NotBefore) || now.After(c.NotAfter) {
					return nil, false, fmt.Errorf("%w: signing certificate not valid now", ErrSignature)
				}
				return in.root, true, nil
			}
		}
		return nil, false, fmt.Errorf("%w: query signature does not verify with the SP's keys", ErrSignature)
	}
	var sigEl *etree.Element
	for _, c := range in.root.ChildElements() {
		if c.Tag == "Signature" && c.NamespaceURI() == dsig.Namespace {
			sigEl = c
		}
	}
	if sigEl == nil {
		if required {
			return nil, false, fmt.Errorf("%w: the SP signs its requests, and this one is not signed", ErrSignature)
		}
		return in.root, false, nil
	}
	if len(certs) == 0 {
		return nil, false, fmt.Errorf("%w: signed, but the SP's metadata has no signing key", ErrSignature)
	}
	if m := sigEl.FindElement("./SignedInfo/SignatureMethod"); m == nil {
		return nil, false, fmt.Errorf("%w: no SignatureMethod", ErrSignature)
	} else if _, ok := acceptedSigAlgs[m.SelectAttrValue("Algorithm", "")]; !ok {
		return nil, false, fmt.Errorf("%w: SignatureMethod %q not accepted (use RSA or ECDSA with SHA-256 or stronger)", ErrSignature, m.SelectAttrValue("Algorithm", ""))
	}
	vc := dsig.NewDefaultValidationContext(nil)
	vc.IdAttribute = "ID"
	vc.Clock = dsig.NewFakeClockAt(now)
	el := in.root.Copy()
	// A KeyInfo without a certificate (a bare key) names nothing we can
	// check: verify against the registered keys instead.
	if s := el.FindElement("./Signature"); s != nil && el.FindElement("./Signature/KeyInfo/X509Data/X509Certificate") == nil {
		if ki := s.FindElement("KeyInfo"); ki != nil {
			s.RemoveChild(ki)
		}
	}
	var lastErr error
	for _, c := range certs {
		vc.CertificateStore = &dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{c}}
		signed, err := vc.Validate(el)
		if err == nil {
			return signed, true, nil
		}
		lastErr = err
	}
	return nil, false, fmt.Errorf("%w: XML signature: %v", ErrSignature, lastErr)
}
