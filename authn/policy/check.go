package policy

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lanyard/lanyard/authn/password"
)

// Breached is an index of passwords known from data breaches, such as a
// local copy of Have I Been Pwned. ContainsPassword gets the password as
// typed and its Normalise form when they differ. It must be safe for
// concurrent use and fast (Check has a budget of 1 ms).
type Breached interface {
	ContainsPassword(pw string) bool
}

// Context is what an attacker targeting this user would guess from: the
// user's names and email address and their organisation.
type Context struct {
	GivenName  string
	FamilyName string
	Email      string
	// OrgName is the organisation's name; for a user of several, their
	// names joined with spaces.
	OrgName string
	// ODSCode is the organisation's ODS code, or several separated by
	// spaces or commas.
	ODSCode string
}

// Code identifies why a password was refused, for logs and metrics.
type Code string

// Codes of Violation.
const (
	CodeRequired Code = "required"  // the password is empty
	CodeInvalid  Code = "invalid"   // control characters or invalid UTF-8
	CodeTooShort Code = "too_short" // fewer runes than MinLength
	CodeTooLong  Code = "too_long"  // more runes than MaxLength or bytes than password.MaxLength
	CodeCommon   Code = "common"    // on the common-password list, or a trivial pattern
	CodeBreached Code = "breached"  // in the breach index
	CodeContext  Code = "context"   // contains the user's name, email or organisation
	CodeBanned   Code = "banned"    // contains a banned term
)

// Violation is one reason a password is refused. Message is plain English
// for the user, written for the NHS.UK design system's error message
// component, and never contains the password.
type Violation struct {
	Code    Code
	Message string
}

// Checker checks candidate passwords. It is immutable and safe for
// concurrent use.
type Checker struct {
	common   *List
	breached Breached
}

// NewChecker returns a Checker refusing the passwords on common, or on
// DefaultList() when common is nil, and those breached reports, or none
// for breaches when breached is nil.
func NewChecker(common *List, breached Breached) *Checker {
	if common == nil {
		common = DefaultList()
	}
	return &Checker{common: common, breached: breached}
}

// Check tests pw, as typed, against p and returns every reason to refuse
// it, or nil if it is acceptable. The order is: required (alone), invalid,
// too_short, too_long (after which nothing else is checked), common,
// breached (only asked when not common), context, banned.
//
// The common check compares every Fold form with the list, so the password
// is refused when it equals a common password after case folding,
// look-alike substitution, and removing spaces and the digits and symbols
// around it ("P@ssw0rd2024!"), or is a repetition ("passwordpassword",
// "aaaaaaaaaa") or a run ("0123456789"). A passphrase that merely contains
// common words ("correct horse battery staple") passes.
//
// Context words are the user's names (each part of at least 3 letters,
// and the names run together), the parts of the email address before the
// @, the organisation's name without generic words (see orgStopWords) and
// its initials, and the ODS code. Words of 5 or more characters are
// refused anywhere in a Fold form ("Jane.Smith2024", "nhsleeds2024" for
// Leeds Teaching Hospitals); shorter ones only as a whole word, between
// non-letters or at an end ("Tom1990!", "RRK-2024"), so that "Anna" does
// not refuse "bananas". Banned terms are refused anywhere.
//
// The reuse history is not checked: see the package documentation.
func (c *Checker) Check(p Policy, pw string, ctx Context) []Violation {
	if pw == "" {
		return []Violation{{CodeRequired, "Enter a password"}}
	}
	maxRunes := effectiveMax(p.MaxLength)
	tooLong := func() Violation {
		return Violation{CodeTooLong, fmt.Sprintf("Your password must be %s characters or fewer", thousands(maxRunes))}
	}
	// NFKC shrinks a rune at most from 4 bytes to 1 (mathematical
	// letters), so anything longer cannot fit and is not worth normalising.
	if len(pw) > utf8.UTFMax*password.MaxLength {
		return []Violation{tooLong()}
	}

	var vs []Violation
	if !validChars(pw) {
		vs = append(vs, Violation{CodeInvalid, "Your password contains a character that cannot be used. Remove it and try again"})
	}
	n := Normalise(pw)
	runes := utf8.RuneCountInString(n)
	if runes < p.MinLength {
		vs = append(vs, Violation{CodeTooShort, fmt.Sprintf("Your password must be at least %s characters long", thousands(p.MinLength))})
	}
	if runes > maxRunes || len(n) > password.MaxLength {
		return append(vs, tooLong())
	}

	forms := fold(n)
	common := c.isCommon(forms)
	if common {
		vs = append(vs, Violation{CodeCommon, "This is a commonly used password. Choose something harder to guess, for example three random words"})
	} else if c.breached != nil && (c.breached.ContainsPassword(pw) || (n != pw && c.breached.ContainsPassword(n))) {
		vs = append(vs, Violation{CodeBreached, "This password has appeared in a data breach elsewhere, so criminals may try it. Choose a different password"})
	}
	if what := matchContext(forms, contextWords(ctx)); what != "" {
		vs = append(vs, Violation{CodeContext, "Your password must not contain " + what})
	}
	if terms := matchBanned(forms, p.BannedTerms); len(terms) > 0 {
		vs = append(vs, Violation{CodeBanned, "Your password must not contain " + orList(terms)})
	}
	return vs
}

// validChars reports whether s is valid UTF-8 without control characters,
// which no keyboard types into a password field.
func validChars(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func (c *Checker) isCommon(forms []string) bool {
	for _, f := range forms {
		if c.common.Contains(f) || trivial(f) {
			return true
		}
	}
	return false
}

// trivial reports whether f is a short unit repeated ("aaaaaaaaaa",
// "abcabcabcabc") or a run of consecutive characters ("0123456789",
// "zyxwvuts"); longer repeated units are caught by Fold offering the unit.
func trivial(f string) bool {
	if u, _ := period(f); u != "" && utf8.RuneCountInString(u) < 4 {
		return true
	}
	if utf8.RuneCountInString(f) < 4 {
		return false
	}
	var prev rune
	step := 0
	for i, r := range f {
		if i > 0 {
			d := int(r - prev)
			if d != 1 && d != -1 || (step != 0 && d != step) {
				return false
			}
			step = d
		}
		prev = r
	}
	return true
}

// What a context word identifies, in the words of the message.
const (
	whatName  = "your name"
	whatEmail = "your email address"
	whatOrg   = "the name or code of your organisation"
)

type contextWord struct {
	key   string
	what  string
	whole bool // only as a whole word: shorter than 5 runes
}

// orgStopWords are the generic words of NHS organisation names: they do
// not point at one organisation, so they are not context words (the
// common list and the banned term "NHS" cover the guessable ones).
var orgStopWords = map[string]bool{
	"a": true, "an": true, "and": true, "at": true, "for": true, "in": true, "of": true, "on": true, "the": true, "to": true,
	"st": true, "nhs": true, "trust": true, "trusts": true, "foundation": true, "hospital": true, "hospitals": true,
	"teaching": true, "university": true, "universities": true, "health": true, "healthcare": true, "care": true,
	"service": true, "services": true, "integrated": true, "board": true, "icb": true, "ccg": true,
	"commissioning": true, "clinical": true, "group": true, "community": true, "partnership": true,
	"partnerships": true, "mental": true, "ambulance": true, "practice": true, "surgery": true, "medical": true,
	"centre": true, "center": true, "clinic": true, "limited": true, "ltd": true, "plc": true, "cic": true,
	"royal": true, "general": true, "national": true, "county": true, "city": true, "district": true,
	"primary": true, "acute": true, "specialist": true, "children": true, "childrens": true, "women": true,
	"womens": true, "north": true, "south": true, "east": true, "west": true, "central": true, "northern": true,
	"southern": true, "eastern": true, "western": true, "family": true, "dental": true, "pharmacy": true,
	"network": true, "pcn": true, "unit": true, "infirmary": true, "social": true, "partners": true,
	"federation": true, "alliance": true, "support": true, "system": true, "england": true, "wales": true,
	"region": true, "regional": true, "council": true, "authority": true, "department": true,
}

// acronymSkip are left out of an organisation's initials: "Leeds
// Teaching Hospitals NHS Trust" gives LTHNT, LTHT and LTH.
var acronymSkip = map[string]bool{"a": true, "an": true, "and": true, "at": true, "for": true, "in": true, "of": true, "on": true, "the": true, "to": true}

// contextWords returns the words of ctx a password must not contain.
func contextWords(ctx Context) []contextWord {
	var out []contextWord
	add := func(key, what string) {
		n := utf8.RuneCountInString(key)
		if n < 3 {
			return
		}
		for _, w := range out {
			if w.key == key && w.what == what {
				return
			}
		}
		out = append(out, contextWord{key: key, what: what, whole: n < 5})
	}
	given, family := words(ctx.GivenName), words(ctx.FamilyName)
	for _, w := range given {
		add(w, whatName)
	}
	for _, w := range family {
		add(w, whatName)
	}
	g, f := strings.Join(given, ""), strings.Join(family, "")
	add(g, whatName)
	add(f, whatName)
	if g != "" && f != "" {
		add(g+f, whatName)
		add(f+g, whatName)
	}

	local := ctx.Email
	if i := strings.LastIndexByte(local, '@'); i >= 0 {
		local = local[:i]
	}
	parts := words(local)
	for _, w := range parts {
		add(w, whatEmail)
		for _, l := range strings.FieldsFunc(w, notLetter) {
			add(l, whatEmail)
		}
	}
	add(strings.Join(parts, ""), whatEmail)

	org := words(strings.NewReplacer("'", "", "’", "").Replace(ctx.OrgName))
	var significant []string
	for _, w := range org {
		if !orgStopWords[w] {
			significant = append(significant, w)
			add(w, whatOrg)
		}
	}
	if len(significant) > 1 {
		add(strings.Join(significant, ""), whatOrg)
	}
	var all, noNHS, core strings.Builder
	for _, w := range org {
		if acronymSkip[w] {
			continue
		}
		r, _ := utf8.DecodeRuneInString(w)
		all.WriteRune(r)
		if w != "nhs" {
			noNHS.WriteRune(r)
			if w != "trust" && w != "foundation" {
				core.WriteRune(r)
			}
		}
	}
	add(all.String(), whatOrg)
	add(noNHS.String(), whatOrg)
	add(core.String(), whatOrg)

	for _, ods := range words(ctx.ODSCode) {
		add(ods, whatOrg)
	}
	return out
}

// words splits s, lower-cased and without accents, into runs of letters
// and digits.
func words(s string) []string {
	if s == "" {
		return nil
	}
	s = stripMarks(strings.ToLower(Normalise(s)))
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// matchContext returns what the first matching context words identify,
// joined as "your name or your email address", or "".
func matchContext(forms []string, ws []contextWord) string {
	var found []string
	for _, w := range ws {
		if containsString(found, w.what) {
			continue
		}
		for _, f := range forms {
			if (!w.whole && strings.Contains(f, w.key)) || (w.whole && containsWord(f, w.key)) {
				found = append(found, w.what)
				break
			}
		}
	}
	if len(found) == 0 {
		return ""
	}
	// Keep a fixed order: name, email, organisation.
	var ordered []string
	for _, what := range []string{whatName, whatEmail, whatOrg} {
		if containsString(found, what) {
			ordered = append(ordered, what)
		}
	}
	return strings.Join(ordered, " or ")
}

// containsWord reports whether w occurs in f with no letter just before
// or after it.
func containsWord(f, w string) bool {
	for off := 0; ; {
		i := strings.Index(f[off:], w)
		if i < 0 {
			return false
		}
		start, end := off+i, off+i+len(w)
		before, _ := utf8.DecodeLastRuneInString(f[:start])
		after, _ := utf8.DecodeRuneInString(f[end:])
		if (start == 0 || !unicode.IsLetter(before)) && (end == len(f) || !unicode.IsLetter(after)) {
			return true
		}
		_, size := utf8.DecodeRuneInString(f[start:])
		off = start + size
	}
}

// matchBanned returns the banned terms, as configured, found in any form.
func matchBanned(forms []string, terms []string) []string {
	var found []string
	for _, t := range terms {
		k := termKey(t)
		if k == "" {
			continue
		}
		keys := append([]string{k}, leet(k)...)
	search:
		for _, f := range forms {
			for _, k := range keys {
				if strings.Contains(f, k) {
					found = append(found, t)
					break search
				}
			}
		}
	}
	return found
}

// orList quotes terms and joins them with "or".
func orList(terms []string) string {
	q := make([]string, len(terms))
	for i, t := range terms {
		q[i] = `"` + t + `"`
	}
	return strings.Join(q, " or ")
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// thousands formats n with commas, as the NHS.UK style guide writes
// numbers: 1,024.
func thousands(n int) string {
	s := strconv.Itoa(n)
	if n < 0 {
		return s
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
