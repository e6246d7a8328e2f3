package policy

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestNormalise(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"password", "password"},
		{"ｐａｓｓｗｏｒｄ１２３", "password123"},
		{"e\u0301cole", "\u00e9cole"},
		{"\u00e9cole", "\u00e9cole"},
		{"ﬁsh and chips", "fish and chips"},
		{"𝐏𝐚𝐬𝐬", "Pass"},
		{"a\u00a0b", "a b"},
		{"bad\xffbyte", "bad\ufffdbyte"},
		{"Café Crème", "Café Crème"},
	} {
		if got := Normalise(c.in); got != c.want {
			t.Errorf("Normalise(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFold(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string // forms that must be among the result
		not  []string // forms that must not
	}{
		{"Password123!", []string{"password123!", "password"}, nil},
		{"P@ssw0rd2024!", []string{"p@ssw0rd2024!", "p@ssw0rd", "password"}, nil},
		{"2024password", []string{"password"}, nil},
		{"@dmin2024", []string{"admin"}, nil},
		{"hell0", []string{"hello"}, nil},
		{"correct horse battery staple", []string{"correct horse battery staple", "correcthorsebatterystaple"}, []string{"correct", "horse"}},
		{"pässwörd", []string{"pässwörd", "password"}, nil},
		{"pa\u0301ssword", []string{"password"}, nil},
		{"pass\u200bword", []string{"password"}, nil},
		{"Jane.Smith-2024", []string{"jane.smith-2024", "janesmith2024", "janesmith"}, nil},
		{"abcabcabc", []string{"abc"}, nil},
		{"passwordpassword", []string{"password"}, nil},
		{"1l1ke", []string{"ilike", "llike", "illke", "lllke"}, nil},
		{"|3|_|3", []string{"lel_le", "lelle", "ieiie"}, nil},
		{"ｐａｓｓｗｏｒｄ１２３", []string{"password123", "password"}, nil},
		{"ΣΊΣΥΦΟΣ", []string{"σίσυφοσ", "σισυφοσ"}, nil},
		{"", nil, []string{""}},
		{"!!!!", []string{"!!!!", "iiii", "!"}, nil},
	} {
		got := Fold(c.in)
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("Fold(%q) = %q, want it to contain %q", c.in, got, w)
			}
		}
		for _, w := range c.not {
			if slices.Contains(got, w) {
				t.Errorf("Fold(%q) = %q, want it not to contain %q", c.in, got, w)
			}
		}
	}
}

func TestFoldBounded(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("1|", 2048),
		strings.Repeat("P@55w0rd!1", 400),
		strings.Repeat("é", 1000),
	} {
		got := Fold(in)
		if len(got) > MaxForms {
			t.Errorf("len(Fold(%.20q…)) = %d, want at most %d", in, len(got), MaxForms)
		}
	}
	if n := len(leet(strings.Repeat("1", 100))); n != 2 {
		t.Errorf("len(leet(100 ones)) = %d, want 2", n)
	}
	if n := len(leet("111")); n != 8 {
		t.Errorf("len(leet(%q)) = %d, want 8", "111", n)
	}
}

func FuzzNormalise(f *testing.F) {
	for _, s := range []string{"", "password", "ｐａｓｓｗｏｒｄ１２３", "e\u0301", "\xff\xfe", "ﷺ", "\u0344\u0301", "가\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := Normalise(in)
		if !utf8.ValidString(got) {
			t.Fatalf("Normalise(%q) = %q, not valid UTF-8", in, got)
		}
		if !norm.NFKC.IsNormalString(got) {
			t.Fatalf("Normalise(%q) = %q, not NFKC", in, got)
		}
		if again := Normalise(got); again != got {
			t.Fatalf("Normalise(Normalise(%q)) = %q, want %q", in, again, got)
		}
	})
}

func FuzzFold(f *testing.F) {
	for _, s := range []string{"", "P@ssw0rd2024!", "correct horse battery staple", "1|1|1|1|", "abcabc", "pässwörd", "\xff", "ΣΊΣΥΦΟΣ", "ǅ", "İ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 4*4096 {
			return
		}
		n := Normalise(in)
		got := Fold(in)
		if len(got) > MaxForms {
			t.Fatalf("Fold(%q) gave %d forms, want at most %d", in, len(got), MaxForms)
		}
		if n != "" && (len(got) == 0 || got[0] != strings.ToLower(n)) {
			t.Fatalf("Fold(%q)[0] = %q, want %q", in, got, strings.ToLower(n))
		}
		limit := utf8.RuneCountInString(n)
		seen := make(map[string]bool)
		for _, f := range got {
			if f == "" || seen[f] {
				t.Fatalf("Fold(%q) = %q: empty or repeated form", in, got)
			}
			seen[f] = true
			if !utf8.ValidString(f) {
				t.Fatalf("Fold(%q) has %q, not valid UTF-8", in, f)
			}
			if utf8.RuneCountInString(f) > limit {
				t.Fatalf("Fold(%q) has %q, longer than %d runes", in, f, limit)
			}
		}
		if again := Fold(n); !slices.Equal(again, got) {
			t.Fatalf("Fold(Normalise(%q)) = %q, want %q", in, again, got)
		}
	})
}
