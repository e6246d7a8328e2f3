// Package policy holds the password policy of the NHS national directory,
// after NCSC password guidance: a minimum length and no composition rules,
// long passphrases, refusal of common, breached and guessable passwords, a
// reuse history and an optional expiry with a warning period.
//
// A Policy says what is required; a Checker tests one candidate password
// against it and explains each refusal in plain words. National returns the
// national defaults, and an organisation's own policy can only make them
// stricter, through Tighten.
//
// The reuse history (Policy.History) is not checked here: it needs the
// stored argon2id hashes of earlier passwords, so the caller verifies the
// normalised candidate against each of the last History hashes with
// authn/password.
//
// Passwords are compared, length-checked and hashed in their Normalise
// form, so the caller must hash and verify Normalise(pw), never pw.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/lanyard/lanyard/authn/password"
)

// Bounds of any policy.
const (
	// NationalMinLength is the national minimum length, in runes of the
	// normalised password.
	NationalMinLength = 10
	// MaxMinLength is the largest MinLength an organisation may set, so
	// that every policy accepts any passphrase of that length.
	MaxMinLength = 256
	// HardMaxLength is the largest MaxLength, in runes: 1024 runes of at
	// most 4 bytes fit password.MaxLength (4096 bytes).
	HardMaxLength = password.MaxLength / utf8.UTFMax
	// MinMaxLength is the smallest MaxLength a policy may set.
	MinMaxLength = 256
	// MaxHistory bounds History, since each remembered password costs an
	// argon2id verification when a password is changed.
	MaxHistory = 24
	// MaxBannedTerm bounds the length of a banned term, in runes.
	MaxBannedTerm = 64
	// MinBannedTerm is the shortest banned term, in runes after
	// normalisation; shorter terms would refuse too many passwords.
	MinBannedTerm = 3
)

const day = 24 * time.Hour

// Policy is a password policy. The zero value of a field means "inherit"
// in an organisation's policy (see Tighten); a Policy passed to
// Checker.Check should come from National().Tighten(org).
type Policy struct {
	// MinLength is the minimum length in runes, after normalisation.
	MinLength int
	// MaxLength is the maximum length in runes, after normalisation; zero
	// or anything over HardMaxLength means HardMaxLength. The normalised
	// password must also fit password.MaxLength bytes.
	MaxLength int
	// History is how many previous passwords may not be reused. It is
	// enforced by the caller, not by Checker.Check.
	History int
	// MaxAge is how long a password lasts before it must be changed at the
	// next login; zero means it never expires.
	MaxAge time.Duration
	// WarnBefore is how long before expiry the user is warned.
	WarnBefore time.Duration
	// BannedTerms are words that may not appear anywhere in a password,
	// compared after the same folding as the password (case, accents,
	// look-alike digits and symbols, separators). They are shown to the
	// user when refused, so must not be secret.
	BannedTerms []string
}

// National returns the national defaults: at least 10 characters, up to
// 1024, the last 4 passwords not reusable, expiry after 365 days with a
// warning from 14 days before, and "NHS" banned as a term every attacker
// tries first against NHS staff.
func National() Policy {
	return Policy{
		MinLength:   NationalMinLength,
		MaxLength:   HardMaxLength,
		History:     4,
		MaxAge:      365 * day,
		WarnBefore:  14 * day,
		BannedTerms: []string{"NHS"},
	}
}

// Tighten returns p made stricter by org, field by field, so that an
// organisation can never weaken p: the longer MinLength, the larger History,
// the shorter non-zero MaxAge (a zero MaxAge in one of them defers to the
// other), the longer WarnBefore (but never longer than the resulting
// MaxAge), and the union of BannedTerms. MaxLength takes the larger of the
// two as Check applies them (zero counts as HardMaxLength), since a lower
// maximum only shuts out long passphrases. Other negative values count as
// zero. Neither argument is modified.
func (p Policy) Tighten(org Policy) Policy {
	t := Policy{
		MinLength: max(p.MinLength, org.MinLength, 0),
		MaxLength: max(effectiveMax(p.MaxLength), effectiveMax(org.MaxLength)),
		History:   max(p.History, org.History, 0),
		MaxAge:    shorterAge(p.MaxAge, org.MaxAge),
	}
	t.WarnBefore = max(p.WarnBefore, org.WarnBefore, 0)
	if t.MaxAge > 0 && t.WarnBefore > t.MaxAge {
		t.WarnBefore = t.MaxAge
	}
	seen := make(map[string]bool)
	for _, term := range slices.Concat(p.BannedTerms, org.BannedTerms) {
		k := termKey(term)
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		t.BannedTerms = append(t.BannedTerms, term)
	}
	return t
}

// effectiveMax returns the MaxLength that Check applies for m.
func effectiveMax(m int) int {
	if m <= 0 || m > HardMaxLength {
		return HardMaxLength
	}
	return m
}

// shorterAge returns the shorter positive age of a and b, or zero when
// neither is positive.
func shorterAge(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return max(b, 0)
	case b <= 0:
		return a
	default:
		return min(a, b)
	}
}

// Validate reports every problem with p as an organisation's policy, joined
// with errors.Join, each as "key: rule, got value". Values weaker than the
// national ones are not errors: Tighten overrides them.
func (p Policy) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.MinLength < 0 || p.MinLength > MaxMinLength {
		bad("min_length: must be between 0 and %d, got %d", MaxMinLength, p.MinLength)
	}
	if p.MaxLength != 0 && (p.MaxLength < MinMaxLength || p.MaxLength > HardMaxLength) {
		bad("max_length: must be 0 (national default) or between %d and %d, got %d", MinMaxLength, HardMaxLength, p.MaxLength)
	}
	if p.History < 0 || p.History > MaxHistory {
		bad("history: must be between 0 and %d, got %d", MaxHistory, p.History)
	}
	if p.MaxAge < 0 || (p.MaxAge > 0 && p.MaxAge < day) {
		bad("max_age: must be 0 (never expires) or at least 24h, got %s", p.MaxAge)
	}
	if p.WarnBefore < 0 || (p.MaxAge > 0 && p.WarnBefore >= p.MaxAge) {
		bad("warn_before: must be at least 0 and shorter than max_age (%s), got %s", p.MaxAge, p.WarnBefore)
	}
	for i, term := range p.BannedTerms {
		n := utf8.RuneCountInString(termKey(term))
		if n < MinBannedTerm || utf8.RuneCountInString(term) > MaxBannedTerm {
			bad("banned_terms[%d]: must be %d to %d letters or digits, got %q", i, MinBannedTerm, MaxBannedTerm, term)
		}
	}
	return errors.Join(errs...)
}

// Expires returns when a password changed at changedAt expires, or the zero
// time when p.MaxAge is zero (never). A zero changedAt (never recorded)
// gives a time long past, so such a password counts as expired.
func (p Policy) Expires(changedAt time.Time) time.Time {
	if p.MaxAge <= 0 {
		return time.Time{}
	}
	return changedAt.Add(p.MaxAge)
}

// Warn reports whether, at now, a password changed at changedAt is within
// WarnBefore of expiring but not yet expired.
func (p Policy) Warn(changedAt, now time.Time) bool {
	if p.MaxAge <= 0 || p.WarnBefore <= 0 {
		return false
	}
	exp := p.Expires(changedAt)
	return !now.Before(exp.Add(-p.WarnBefore)) && now.Before(exp)
}

// Expired reports whether, at now, a password changed at changedAt has
// expired, so the user must change it before the login completes.
func (p Policy) Expired(changedAt, now time.Time) bool {
	if p.MaxAge <= 0 {
		return false
	}
	return !now.Before(p.Expires(changedAt))
}
