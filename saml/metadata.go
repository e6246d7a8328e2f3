// Package saml is Lanyard's SAML 2.0 identity provider, built on
// crewjam/saml. This file checks the metadata a service provider is
// registered from.
package saml

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/lanyard/lanyard/directory"
)

// MaxMetadataSize bounds SP metadata: real metadata is a few KiB, and
// anything far larger is a mistake or an attack.
const MaxMetadataSize = 256 << 10

// SupportedBindings are the bindings Lanyard sends assertions over: only
// HTTP-POST, as the Web Browser SSO profile requires (a response does not
// fit the HTTP-Redirect binding, which the profile forbids for responses).
var SupportedBindings = []string{crewsaml.HTTPPostBinding}

// ParseSPMetadata parses and checks a service provider's metadata: an
// EntityDescriptor, or an EntitiesDescriptor holding exactly one, with one
// SPSSODescriptor. It refuses, with an error wrapping directory.ErrInvalid
// that says why:
//   - input over MaxMetadataSize, and any DTD (DOCTYPE or ENTITY
//     declaration), before parsing;
//   - metadata whose validUntil is at or before now;
//   - an SP with no AssertionConsumerService over a supported binding
//     (HTTP-POST), or one whose Location is not https
//     (http only on a loopback address);
//   - a KeyDescriptor certificate that does not parse, is expired or is not
//     yet valid at now.
//
// Assertion consumer services over other SAML bindings are ignored when a
// supported one exists. ParseSPMetadata reads no clock and does no I/O.
func ParseSPMetadata(data []byte, now time.Time) (*crewsaml.EntityDescriptor, error) {
	ed, err := parseSPMetadata(data, now)
	if err != nil {
		return nil, fmt.Errorf("%w: SP metadata: %w", directory.ErrInvalid, err)
	}
	return ed, nil
}

func parseSPMetadata(data []byte, now time.Time) (*crewsaml.EntityDescriptor, error) {
	if len(data) > MaxMetadataSize {
		return nil, fmt.Errorf("larger than %d KiB", MaxMetadataSize>>10)
	}
	if hasDTD(data) {
		return nil, errors.New("DTDs (DOCTYPE and ENTITY declarations) are not allowed")
	}
	ed, err := unmarshal(data, now)
	if err != nil {
		return nil, err
	}
	if ed.EntityID == "" {
		return nil, errors.New("EntityDescriptor has no entityID")
	} else if directory.CheckEntityID(ed.EntityID) != nil {
		return nil, fmt.Errorf("entityID must be at most %d bytes with no spaces or control characters, got %q", directory.MaxEntityIDLen, ed.EntityID)
	}
	if !ed.ValidUntil.IsZero() && !now.Before(ed.ValidUntil) {
		return nil, fmt.Errorf("expired on %s (validUntil)", day(ed.ValidUntil))
	}
	switch n := len(ed.SPSSODescriptors); n {
	case 0:
		return nil, errors.New("no SPSSODescriptor")
	case 1:
	default:
		return nil, fmt.Errorf("%d SPSSODescriptors, want one", n)
	}
	sp := ed.SPSSODescriptors[0]
	if sp.ValidUntil != nil && !now.Before(*sp.ValidUntil) {
		return nil, fmt.Errorf("SPSSODescriptor expired on %s (validUntil)", day(*sp.ValidUntil))
	}
	if _, err := ACSURLs(ed); err != nil {
		return nil, err
	}
	for i, kd := range sp.KeyDescriptors {
		if err := checkKey(kd, now); err != nil {
			return nil, fmt.Errorf("KeyDescriptor %d: %w", i+1, err)
		}
	}
	return ed, nil
}

// hasDTD reports whether data declares a DTD or an entity anywhere,
// comments included: metadata never needs one, so a false alarm costs
// nothing.
func hasDTD(data []byte) bool {
	upper := bytes.ToUpper(data)
	return bytes.Contains(upper, []byte("<!DOCTYPE")) || bytes.Contains(upper, []byte("<!ENTITY"))
}

// unmarshal decodes an EntityDescriptor, or an EntitiesDescriptor holding
// exactly one (whose validUntil is checked against now).
func unmarshal(data []byte, now time.Time) (*crewsaml.EntityDescriptor, error) {
	var root struct{ XMLName xml.Name }
	if err := xml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("not XML: %w", err)
	}
	const md = "urn:oasis:names:tc:SAML:2.0:metadata"
	switch root.XMLName {
	case xml.Name{Space: md, Local: "EntityDescriptor"}:
		var ed crewsaml.EntityDescriptor
		if err := xml.Unmarshal(data, &ed); err != nil {
			return nil, fmt.Errorf("EntityDescriptor: %w", err)
		}
		return &ed, nil
	case xml.Name{Space: md, Local: "EntitiesDescriptor"}:
		var eds crewsaml.EntitiesDescriptor
		if err := xml.Unmarshal(data, &eds); err != nil {
			return nil, fmt.Errorf("EntitiesDescriptor: %w", err)
		}
		if eds.ValidUntil != nil && !eds.ValidUntil.IsZero() && !now.Before(*eds.ValidUntil) {
			return nil, fmt.Errorf("expired on %s (validUntil)", day(*eds.ValidUntil))
		}
		if n := len(eds.EntityDescriptors); n != 1 || len(eds.EntitiesDescriptors) != 0 {
			return nil, fmt.Errorf("EntitiesDescriptor holds %d EntityDescriptors and %d EntitiesDescriptors, want exactly one EntityDescriptor",
				n, len(eds.EntitiesDescriptors))
		}
		return &eds.EntityDescriptors[0], nil
	default:
		return nil, fmt.Errorf("root element is {%s}%s, want an EntityDescriptor in namespace %s", root.XMLName.Space, root.XMLName.Local, md)
	}
}

// ACSURLs returns the Locations of the SP's assertion consumer services
// over supported bindings, in document order, after checking each: https,
// or http on a loopback address. The error names the unsupported binding
// when there is no service over a supported one. ed must have an
// SPSSODescriptor (as ParseSPMetadata checks).
func ACSURLs(ed *crewsaml.EntityDescriptor) ([]string, error) {
	if len(ed.SPSSODescriptors) == 0 {
		return nil, errors.New("no SPSSODescriptor")
	}
	acs := ed.SPSSODescriptors[0].AssertionConsumerServices
	if len(acs) == 0 {
		return nil, errors.New("no AssertionConsumerService")
	}
	var urls []string
	for _, a := range acs {
		if !slices.Contains(SupportedBindings, a.Binding) {
			continue
		}
		if err := checkLocation(a.Location); err != nil {
			return nil, fmt.Errorf("AssertionConsumerService Location %q: %w", a.Location, err)
		}
		urls = append(urls, a.Location)
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("AssertionConsumerService binding %s is not supported (Lanyard sends assertions over HTTP-POST only)", acs[0].Binding)
	}
	return urls, nil
}

// checkLocation accepts an absolute https URL with a host, or http on a
// loopback address (for development and tests).
func checkLocation(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return errors.New("must not be empty")
	case err != nil || !u.IsAbs() || u.Host == "":
		return errors.New("must be an absolute URL")
	case u.User != nil:
		return errors.New("must not carry user info")
	case u.Fragment != "":
		return errors.New("must not have a fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && IsLoopback(u.Hostname()):
		return nil
	default:
		return errors.New("must be https (http only on a loopback address)")
	}
}

// IsLoopback reports whether host is "localhost" or a loopback address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkKey parses every certificate of a KeyDescriptor and checks that it
// is valid at now.
func checkKey(kd crewsaml.KeyDescriptor, now time.Time) error {
	var use string
	switch kd.Use {
	case "signing", "encryption":
		use = kd.Use
	case "":
		use = "signing and encryption"
	default:
		return fmt.Errorf("use must be signing or encryption, got %q", kd.Use)
	}
	certs := kd.KeyInfo.X509Data.X509Certificates
	if len(certs) == 0 {
		return fmt.Errorf("%s key has no X509Certificate", use)
	}
	for _, c := range certs {
		der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
		if err != nil {
			return fmt.Errorf("%s certificate is not base64: %w", use, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("%s certificate: %w", use, err)
		}
		switch {
		case now.After(cert.NotAfter):
			return fmt.Errorf("%s certificate expired on %s", use, day(cert.NotAfter))
		case now.Before(cert.NotBefore):
			return fmt.Errorf("%s certificate is not valid until %s", use, day(cert.NotBefore))
		}
	}
	return nil
}

func day(t time.Time) string { return t.UTC().Format(time.DateOnly) }
