package directory

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Client secrets are 260 random bits, so a fast hash is enough: nobody can
// guess one, and the server does not pay argon2's cost at every token call.
const secretHashPrefix = "sha256:"

// NewClientSecret returns a fresh client secret of 52 base32 characters.
func NewClientSecret() string { return rand.Text() + rand.Text() }

// HashClientSecret returns the form in which a client secret is stored.
func HashClientSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return secretHashPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// VerifySecret reports, in constant time, whether secret is the client's.
// A public client has no secret and never matches.
func (c Client) VerifySecret(secret string) bool {
	if c.Public || c.SecretHash == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(HashClientSecret(secret)), []byte(c.SecretHash)) == 1
}

// MaxRedirectURILen bounds a registered redirect URI.
const MaxRedirectURILen = 2000

// CheckRedirectURI checks a redirect URI offered for registration: an
// absolute URL without fragment or user info that is https, http on a
// loopback address (RFC 8252 native and development clients), or a
// private-use scheme containing a dot (com.example.app:/callback).
func CheckRedirectURI(raw string) error {
	bad := func(why string) error { return fmt.Errorf("%w: redirect URI %q: %s", ErrInvalid, raw, why) }
	if raw == "" || len(raw) > MaxRedirectURILen {
		return bad(fmt.Sprintf("must be 1 to %d bytes", MaxRedirectURILen))
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs():
		return bad("must be an absolute URL")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("must not have a fragment")
	case u.User != nil:
		return bad("must not carry user info")
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" {
			return bad("must have a host")
		}
	case "http":
		host := u.Hostname()
		ip, err := netip.ParseAddr(host)
		if host != "localhost" && (err != nil || !ip.IsLoopback()) {
			return bad("http is allowed only on a loopback address; use https")
		}
	default:
		if !strings.Contains(u.Scheme, ".") {
			return bad("must be https, loopback http, or a private-use scheme such as com.example.app")
		}
	}
	return nil
}
