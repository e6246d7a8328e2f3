package directory

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on identifiers and names.
const (
	MaxEmailLen = 254 // RFC 5321 path limit
	MaxNameLen  = 200
)

// NormaliseODSCode returns code in its canonical form (trimmed, upper case)
// or an error wrapping ErrInvalid. ODS codes are 3 to 10 letters and digits:
// trusts have 3 ("RRK"), sites and practices 5 or 6 ("RRK02", "A81001").
func NormaliseODSCode(code string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(code))
	if n := len(c); n < 3 || n > 10 {
		return "", fmt.Errorf("%w: ODS code %q: must be 3 to 10 letters and digits", ErrInvalid, code)
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if (b < 'A' || b > 'Z') && (b < '0' || b > '9') {
			return "", fmt.Errorf("%w: ODS code %q: must be 3 to 10 letters and digits", ErrInvalid, code)
		}
	}
	return c, nil
}

// NormaliseEmail checks that email is a bare address (no display name, no
// comments) of at most MaxEmailLen bytes with a dotted domain, and returns it
// trimmed. Uniqueness and lookup use EmailKey.
func NormaliseEmail(email string) (string, error) {
	e := strings.TrimSpace(email)
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: email %q: %s", ErrInvalid, email, why)
	}
	if e == "" {
		return bad("must not be empty")
	}
	if len(e) > MaxEmailLen || !utf8.ValidString(e) {
		return bad(fmt.Sprintf("must be valid UTF-8 of at most %d bytes", MaxEmailLen))
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Name != "" || a.Address != e {
		return bad("must be a plain address such as name@example.nhs.uk")
	}
	at := strings.LastIndexByte(e, '@')
	domain := e[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") || strings.HasPrefix(domain, "[") {
		return bad("domain must be a dotted host name")
	}
	return e, nil
}

// EmailKey is the case-insensitive form under which emails are unique.
func EmailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// CheckName checks a person's or organisation's name: non-empty after
// trimming, at most MaxNameLen bytes, no control characters. field names the
// setting in the message.
func CheckName(field, name string) (string, error) {
	n := strings.TrimSpace(name)
	switch {
	case n == "":
		return "", fmt.Errorf("%w: %s must not be empty", ErrInvalid, field)
	case len(n) > MaxNameLen || !utf8.ValidString(n):
		return "", fmt.Errorf("%w: %s must be valid UTF-8 of at most %d bytes", ErrInvalid, field, MaxNameLen)
	case strings.IndexFunc(n, unicode.IsControl) >= 0:
		return "", fmt.Errorf("%w: %s must not contain control characters", ErrInvalid, field)
	}
	return n, nil
}
