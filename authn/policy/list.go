package policy

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/lanyard/lanyard/authn/password"
)

// embeddedList is the zxcvbn-ts common-password list; see data/README.md.
//
//go:embed data/common-passwords.txt.gz
var embeddedList []byte

// MaxListBytes bounds what LoadList reads, so a wrong file cannot exhaust
// memory. NCSC's top-100k list is about 1 MB.
const MaxListBytes = 256 << 20

// List is a deny-list of passwords, held lower-case and normalised. It is
// immutable and safe for concurrent use.
type List struct {
	words []string // sorted, distinct
}

// LoadList reads a deny-list of one password a line, such as NCSC's
// PwnedPasswordsTop100k.txt: UTF-8, with or without a byte-order mark and
// CR before LF. Each line is taken whole (spaces included) and compared
// after Normalise and lower-casing. Empty lines, lines that are not valid
// UTF-8 and lines longer than password.MaxLength are skipped, since no
// acceptable password can equal them. It fails if r fails or holds more
// than MaxListBytes.
func LoadList(r io.Reader) (*List, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxListBytes+1))
	if err != nil {
		return nil, fmt.Errorf("policy: read password list: %w", err)
	}
	if len(data) > MaxListBytes {
		return nil, fmt.Errorf("policy: password list is larger than %d bytes", MaxListBytes)
	}
	// One string backs every entry that normalising leaves unchanged, so
	// the list costs little more than its text.
	text := strings.TrimPrefix(string(data), "\uFEFF")
	var words []string
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" || len(line) > password.MaxLength || !utf8.ValidString(line) {
			continue
		}
		words = append(words, strings.ToLower(Normalise(line)))
	}
	slices.Sort(words)
	return &List{words: slices.Compact(words)}, nil
}

// DefaultList returns the embedded list of common passwords (49,233 from
// @zxcvbn-ts/language-common 4.1.3, MIT; see data/README.md). It is
// decompressed and sorted on first use (about 20 ms and 1.3 MB of heap on
// a 2-core machine), and shared after.
func DefaultList() *List { return defaultList() }

var defaultList = sync.OnceValue(func() *List {
	l, err := loadEmbedded()
	if err != nil {
		panic(err) // the embedded file is part of the build
	}
	return l
})

func loadEmbedded() (*List, error) {
	zr, err := gzip.NewReader(bytes.NewReader(embeddedList))
	if err != nil {
		return nil, fmt.Errorf("policy: embedded password list: %w", err)
	}
	return LoadList(zr)
}

// Len returns the number of distinct entries.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return len(l.words)
}

// Contains reports whether s, already normalised and lower-cased (a form
// from Fold), is on the list. A nil List contains nothing.
func (l *List) Contains(s string) bool {
	if l == nil {
		return false
	}
	_, ok := slices.BinarySearch(l.words, s)
	return ok
}

// Union returns a new list holding the entries of both; either may be nil.
func (l *List) Union(o *List) *List {
	words := slices.Concat(l.wordsOrNil(), o.wordsOrNil())
	slices.Sort(words)
	return &List{words: slices.Compact(words)}
}

func (l *List) wordsOrNil() []string {
	if l == nil {
		return nil
	}
	return l.words
}
