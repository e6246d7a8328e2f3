package saml

// This file maps SAML authentication context classes to Lanyard's two
// assurance levels (authn.ACRPassword, authn.ACRMFA).

import (
	"slices"

	"github.com/beevik/etree"

	"github.com/lanyard/lanyard/authn"
)

// More authentication context classes Lanyard understands in a
// RequestedAuthnContext; see ContextLevels.
const (
	ContextPasswordPlain  = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"
	ContextUnspecified    = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
	ContextMFAUnreg       = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered"
	ContextTimeSyncToken  = "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken"
	ContextREFEDSMFA      = "https://refeds.org/profile/mfa"
	ContextMicrosoftMFA   = "http://schemas.microsoft.com/claims/multipleauthn"
	ContextLanyardPasword = authn.ACRPassword
	ContextLanyardMFA     = authn.ACRMFA
)

// Assurance levels of ContextLevels.
const (
	levelPassword = 1
	levelMFA      = 2
)

// ContextLevels gives the level of each class Lanyard understands: 1 is
// met by a password, 2 needs a second factor (or a passkey). A request
// naming only classes not listed gets a NoAuthnContext status.
var ContextLevels = map[string]int{
	ContextUnspecified:    levelPassword,
	ContextPasswordPlain:  levelPassword,
	ContextPassword:       levelPassword,
	ContextLanyardPasword: levelPassword,
	ContextMFA:            levelMFA,
	ContextMFAUnreg:       levelMFA,
	ContextTimeSyncToken:  levelMFA,
	ContextREFEDSMFA:      levelMFA,
	ContextMicrosoftMFA:   levelMFA,
	ContextLanyardMFA:     levelMFA,
}

// requested is what an AuthnRequest's RequestedAuthnContext asks for.
type requested struct {
	comparison string   // exact (default), minimum, maximum or better
	classes    []string // as listed
}

// requestedContext reads the RequestedAuthnContext of an AuthnRequest
// element (crewjam keeps only one class). ok is false when there is none.
func requestedContext(root *etree.Element) (requested, bool) {
	var rac *etree.Element
	for _, c := range root.ChildElements() {
		if c.Tag == "RequestedAuthnContext" && c.NamespaceURI() == "urn:oasis:names:tc:SAML:2.0:protocol" {
			rac = c
		}
	}
	if rac == nil {
		return requested{}, false
	}
	q := requested{comparison: rac.SelectAttrValue("Comparison", "exact")}
	for _, c := range rac.ChildElements() {
		if c.Tag == "AuthnContextClassRef" {
			q.classes = append(q.classes, c.Text())
		}
	}
	return q, len(q.classes) > 0
}

// need returns the level a request needs, or 0 when Lanyard cannot meet
// it (no class it knows, or "better" than MFA).
func (q requested) need() int {
	var known []int
	for _, c := range q.classes {
		if l, ok := ContextLevels[c]; ok {
			known = append(known, l)
		}
	}
	if len(known) == 0 {
		return 0
	}
	switch q.comparison {
	case "better":
		if l := slices.Max(known) + 1; l <= levelMFA {
			return l
		}
		return 0
	case "maximum":
		return levelPassword
	default: // exact, minimum
		return slices.Min(known)
	}
}

// stated is the class to state in the assertion for a session at level
// have: the first requested class at or below have (for "better", the
// strongest Lanyard class at have), or Lanyard's own class without a
// request.
func (q requested) stated(have int, asked bool) string {
	if asked && q.comparison != "better" {
		for _, c := range q.classes {
			if l, ok := ContextLevels[c]; ok && l <= have {
				return c
			}
		}
	}
	if have >= levelMFA {
		return ContextMFA
	}
	return ContextPassword
}

// sessionLevel is the level of an authn session.
func sessionLevel(s authn.Session) int {
	if s.ACR == authn.ACRMFA {
		return levelMFA
	}
	return levelPassword
}
