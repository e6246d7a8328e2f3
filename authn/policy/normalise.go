package policy

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Normalise returns pw in the form that is length-checked, compared and
// hashed: invalid UTF-8 replaced by U+FFFD, then Unicode NFKC, so that
// "ｐａｓｓｗｏｒｄ" and "password", or "é" typed as one or two code points,
// are the same password. The result is valid UTF-8 and NFKC-normal, and
// Normalise(Normalise(pw)) == Normalise(pw).
func Normalise(pw string) string {
	if isASCII(pw) {
		return pw
	}
	return norm.NFKC.String(strings.ToValidUTF8(pw, string(utf8.RuneError)))
}

// MaxForms bounds the number of strings Fold returns.
const MaxForms = maxBases * (1 + maxLeetVariants)

const (
	maxBases        = 6
	maxLeetVariants = 8
	// maxAmbiguous is how many characters with two readings (1 as i or
	// l) are expanded every way; past it only the two uniform readings are.
	maxAmbiguous = 3
)

// Fold returns the forms of pw compared against the common-password list,
// context words and banned terms, at most MaxForms distinct non-empty
// strings, each no longer in runes than Normalise(pw). The first is
// Normalise(pw) lower-cased (if not empty); then come the same without
// accents, without spaces and punctuation, without trailing and then
// also leading digits and symbols ("P@ssw0rd2024!" → "p@ssw0rd"), and the
// repeated unit of a repetition ("abcabc" → "abc"); and then each of those
// with look-alike digits and symbols read as letters ("p@ssw0rd" →
// "password"). Fold(Normalise(pw)) equals Fold(pw). Its cost is linear in
// len(pw).
func Fold(pw string) []string {
	return fold(Normalise(pw))
}

// fold is Fold of an already normalised string.
func fold(n string) []string {
	lower := strings.ToLower(n)
	plain := stripMarks(lower)
	joined := removeSeparators(plain)
	trailing := strings.TrimRightFunc(joined, notLetter)
	both := strings.TrimLeftFunc(trailing, notLetter)
	unit, _ := period(joined)
	forms := make([]string, 0, 8)
	add := func(s string) {
		if s != "" && !contains(forms, s) {
			forms = append(forms, s)
		}
	}
	for _, b := range [maxBases]string{lower, plain, joined, trailing, both, unit} {
		add(b)
	}
	bases := len(forms)
	for _, b := range forms[:bases] {
		for _, v := range leet(b) {
			add(v)
		}
	}
	return forms
}

func contains(forms []string, s string) bool {
	for _, f := range forms {
		if f == s {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func notLetter(r rune) bool { return !unicode.IsLetter(r) }

// stripMarks removes combining marks (accents, variation selectors), so
// that "pässwörd" compares as "passwort".
func stripMarks(s string) string {
	if isASCII(s) || (norm.NFD.QuickSpanString(s) == len(s) && strings.IndexFunc(s, isMark) < 0) {
		return s
	}
	d := norm.NFD.String(s)
	var b strings.Builder
	b.Grow(len(d))
	for _, r := range d {
		if !isMark(r) {
			b.WriteRune(r)
		}
	}
	return norm.NFC.String(b.String())
}

func isMark(r rune) bool { return r >= 0x300 && unicode.Is(unicode.Mn, r) }

// removeSeparators drops spaces, punctuation and invisible format
// characters (zero-width spaces and joiners, soft hyphens), but keeps the
// punctuation that stands for letters ('!' for i, '@' for a).
func removeSeparators(s string) string {
	drop := func(r rune) bool {
		switch r {
		case '!', '@':
			return false
		}
		return unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.Is(unicode.Cf, r)
	}
	if strings.IndexFunc(s, drop) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if !drop(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// period returns the shortest u and k ≥ 2 with s == u repeated k times,
// or "" and 0.
func period(s string) (string, int) {
	n := len(s)
	for p := 1; p <= n/2; p++ {
		if n%p == 0 && s[p:] == s[:n-p] {
			return s[:p], n / p
		}
	}
	return "", 0
}

// leetASCII reads a look-alike digit or symbol as the letter it stands
// for, with the second reading of the ambiguous ones ('1' as i or l).
var leetASCII = [utf8.RuneSelf][2]byte{
	'0': {'o'}, '1': {'i', 'l'}, '3': {'e'}, '4': {'a'}, '5': {'s'}, '6': {'g'}, '7': {'t'},
	'8': {'b'}, '9': {'g'}, '@': {'a'}, '$': {'s'}, '!': {'i'}, '|': {'l', 'i'}, '+': {'t'},
}

// leetOf returns the letter r stands for, the second reading if r is
// ambiguous (else 0), and whether r stands for a letter at all.
func leetOf(r rune) (one, two rune, ok bool) {
	if r < utf8.RuneSelf {
		l := leetASCII[r]
		return rune(l[0]), rune(l[1]), l[0] != 0
	}
	if r == '€' {
		return 'e', 0, true
	}
	return 0, 0, false
}

// leet returns the readings of s with look-alike characters replaced by
// letters, or nil if s has none. Each ambiguous character is expanded both
// ways when there are at most maxAmbiguous of them; otherwise only the two
// readings that treat them all alike are returned. At most
// maxLeetVariants strings.
func leet(s string) []string {
	var subs, ambiguous int
	for _, r := range s {
		if _, two, ok := leetOf(r); ok {
			subs++
			if two != 0 {
				ambiguous++
			}
		}
	}
	if subs == 0 {
		return nil
	}
	var masks []uint
	switch {
	case ambiguous == 0:
		masks = []uint{0}
	case ambiguous <= maxAmbiguous:
		for m := range uint(1) << ambiguous {
			masks = append(masks, m)
		}
	default:
		masks = []uint{0, ^uint(0)}
	}
	out := make([]string, 0, len(masks))
	for _, m := range masks {
		var b strings.Builder
		b.Grow(len(s))
		i := 0
		for _, r := range s {
			one, two, ok := leetOf(r)
			switch {
			case !ok:
				b.WriteRune(r)
			case two != 0:
				if m&(1<<min(i, 63)) != 0 {
					one = two
				}
				i++
				fallthrough
			default:
				b.WriteRune(one)
			}
		}
		out = append(out, b.String())
	}
	return out
}

// termKey is the comparison form of a banned term or context word:
// lower-case, without accents, spaces or punctuation.
func termKey(s string) string {
	return removeSeparators(stripMarks(strings.ToLower(Normalise(s))))
}
