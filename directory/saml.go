package directory

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ServiceProvider is a SAML 2.0 service provider registered by an
// organisation, from the metadata it publishes.
type ServiceProvider struct {
	ID       string // internal
	EntityID string // the SP's SAML entity ID; unique
	OrgID    string // the registering organisation
	Name     string
	// Metadata is the SP's metadata XML as given, checked by the caller
	// (package saml) before it is stored.
	Metadata []byte
	// NameIDFormat is NameIDPersistent or NameIDEmail.
	NameIDFormat string
	// Attributes are the attributes released to the SP, each one of
	// SAMLAttributes, in the order given.
	Attributes []string
	CreatedAt  time.Time
}

// NameID formats a ServiceProvider may ask for.
const (
	// NameIDPersistent is an opaque identifier, different for every SP.
	NameIDPersistent = "persistent"
	// NameIDEmail is the user's email address.
	NameIDEmail = "email"
)

// SAMLAttributes are the attributes a ServiceProvider may be given, in the
// order they are listed.
var SAMLAttributes = []string{"email", "displayName", "givenName", "surname", "odsCode", "organisationName", "roles"}

// MaxEntityIDLen bounds a SAML entity ID (SAML core §8.3.6).
const MaxEntityIDLen = 1024

// CheckEntityID checks a SAML entity ID: 1 to MaxEntityIDLen bytes of
// UTF-8 with no spaces or control characters.
func CheckEntityID(id string) error {
	switch {
	case id == "" || len(id) > MaxEntityIDLen || !utf8.ValidString(id):
		return fmt.Errorf("%w: entity ID must be 1 to %d bytes of UTF-8, got %d bytes", ErrInvalid, MaxEntityIDLen, len(id))
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("%w: entity ID %q must not contain spaces or control characters", ErrInvalid, id)
	}
	return nil
}

// CheckNameIDFormat checks a ServiceProvider's NameIDFormat.
func CheckNameIDFormat(f string) error {
	if f != NameIDPersistent && f != NameIDEmail {
		return fmt.Errorf("%w: NameID format must be %s or %s, got %q", ErrInvalid, NameIDPersistent, NameIDEmail, f)
	}
	return nil
}

// CheckSAMLAttributes checks that every attribute is one of SAMLAttributes
// and none is repeated. An empty list is valid: the SP gets the NameID only.
func CheckSAMLAttributes(attrs []string) error {
	seen := make(map[string]bool, len(attrs))
	for _, a := range attrs {
		known := false
		for _, k := range SAMLAttributes {
			known = known || a == k
		}
		switch {
		case !known:
			return fmt.Errorf("%w: attribute must be one of %s, got %q", ErrInvalid, strings.Join(SAMLAttributes, ", "), a)
		case seen[a]:
			return fmt.Errorf("%w: attribute %q given twice", ErrInvalid, a)
		}
		seen[a] = true
	}
	return nil
}
