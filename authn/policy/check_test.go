package policy

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// fakeBreached is a breach index holding a fixed set of passwords.
type fakeBreached map[string]bool

func (f fakeBreached) ContainsPassword(pw string) bool { return f[pw] }

func codes(vs []Violation) []Code {
	var cs []Code
	for _, v := range vs {
		cs = append(cs, v.Code)
	}
	return cs
}

func containsCode(cs []Code, c Code) bool {
	for _, x := range cs {
		if x == c {
			return true
		}
	}
	return false
}

// passphrase returns n runes of varied words, with no repetition.
func passphrase(n int) string {
	words := strings.Fields("amber tractor whistles quietly beside seventeen purple onions while " +
		"a nervous heron counts pebbles under the old viaduct near muddy allotments " +
		"where grandmother keeps bees and argues cheerfully with crows about " +
		"turnips marmalade lighthouses bicycles accordions and the price of string " +
		"until midnight trains rattle past sleepy cottages full of jigsaw puzzles")
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[i%len(words)])
		if i >= len(words) {
			b.WriteString(words[(i*7)%len(words)])
		}
	}
	return b.String()[:n]
}

// wide returns n distinct 4-byte runes that form no run.
func wide(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteRune(rune(0x20000 + 2*i))
	}
	return b.String()
}

func TestCheck(t *testing.T) {
	jane := Context{
		GivenName:  "Jane",
		FamilyName: "Smith",
		Email:      "jane.smith12@nhs.net",
		OrgName:    "Leeds Teaching Hospitals NHS Trust",
		ODSCode:    "RRK",
	}
	tom := Context{GivenName: "Tom", FamilyName: "O'Neil", Email: "tom.oneil@nhs.net", OrgName: "Guy's and St Thomas' NHS Foundation Trust", ODSCode: "RJ1"}
	anna := Context{GivenName: "Anna", FamilyName: "Lee", OrgName: "NHS England", ODSCode: "X24"}
	national := National()
	leeds := national.Tighten(Policy{MinLength: 14, BannedTerms: []string{"Lanyard", "Elland Road"}})
	breached := fakeBreached{"Kx7!velvet-otter": true, "Password1234": true, "ｇｏｌｄｅｎ ｓｐｏｏｎ ９９": true}

	for _, c := range []struct {
		name string
		p    Policy
		pw   string
		ctx  Context
		want []Code
	}{
		// Length.
		{"empty", national, "", jane, []Code{CodeRequired}},
		{"nine characters", national, "Kx7!veLvt", jane, []Code{CodeTooShort}},
		{"ten characters", national, "Kx7!veLvtQ", jane, nil},
		{"short and common", national, "dragon", jane, []Code{CodeTooShort, CodeCommon}},
		{"org minimum 14", leeds, "purpleonion 3", jane, []Code{CodeTooShort}},
		{"org minimum met", leeds, "purple onion 33", jane, nil},
		{"256-character passphrase", national, passphrase(256), jane, nil},
		{"1024 characters", national, passphrase(1024), jane, nil},
		{"1025 characters", national, passphrase(1025), jane, []Code{CodeTooLong}},
		{"1024 four-byte runes", national, wide(1024), jane, nil},
		{"1025 four-byte runes", national, wide(1025), jane, []Code{CodeTooLong}},
		{"huge input", national, strings.Repeat("password", 3000), jane, []Code{CodeTooLong}},
		{"full-width counts once per letter", national, "ｖｉａｄｕｃｔｓ", jane, []Code{CodeTooShort}},
		{"combining accents count after composing", national, "cafe\u0301 cre\u0300m", jane, []Code{CodeTooShort}},

		// Common passwords.
		{"correct horse battery staple", national, "correct horse battery staple", jane, nil},
		{"Password1234", national, "Password1234", jane, []Code{CodeCommon}},
		{"P@ssw0rd2024!", national, "P@ssw0rd2024!", jane, []Code{CodeCommon}},
		{"leading digits", national, "2024password!", jane, []Code{CodeCommon}},
		{"spaced out", national, "p a s s w o r d 1 2 3", jane, []Code{CodeCommon}},
		{"full-width", national, "ｐａｓｓｗｏｒｄ１２３", jane, []Code{CodeCommon}},
		{"combining accent", national, "pa\u0301ssword123", jane, []Code{CodeCommon}},
		{"accents", national, "pässwörd2024", jane, []Code{CodeCommon}},
		{"zero-width space", national, "pass\u200bword123", jane, []Code{CodeCommon}},
		{"keyboard pattern", national, "qwertyuiop", jane, []Code{CodeCommon}},
		{"word plus year", national, "Liverpool1986", jane, []Code{CodeCommon}},
		{"repeated word", national, "monkeymonkey", jane, []Code{CodeCommon}},
		{"repeated character", national, "aaaaaaaaaaaa", jane, []Code{CodeCommon}},
		{"repeated pair", national, "abababababab", jane, []Code{CodeCommon}},
		{"digit run", national, "0123456789", jane, []Code{CodeCommon}},
		{"letter run backwards", national, "zyxwvutsrqpo", jane, []Code{CodeCommon}},
		{"spaces only", national, "            ", jane, []Code{CodeCommon}},
		{"common word inside passphrase", national, "monkey tractor lighthouse", jane, nil},
		{"three random words", national, "VelvetOtterMarmalade", jane, nil},

		// Breaches.
		{"breached", national, "Kx7!velvet-otter", jane, []Code{CodeBreached}},
		{"breached as typed before normalising", national, "ｇｏｌｄｅｎ ｓｐｏｏｎ ９９", jane, []Code{CodeBreached}},
		{"common wins over breached", national, "Password1234", jane, []Code{CodeCommon}},

		// Context.
		{"name and year", national, "Jane.Smith2024", jane, []Code{CodeContext}},
		{"family name inside", national, "ilovesmithsfood", jane, []Code{CodeContext}},
		{"name in leetspeak", national, "j4ne-5m1th-rules", jane, []Code{CodeContext}},
		{"email local part", national, "smith12 is my id!", jane, []Code{CodeContext}},
		{"org name", national, "nhsleeds2024", jane, []Code{CodeContext, CodeBanned}},
		{"org name alone", national, "Leeds United forever", jane, []Code{CodeContext}},
		{"org initials", national, "ltht rocks 2024", jane, []Code{CodeContext}},
		{"ODS code", national, "rrk-theatre-four", jane, []Code{CodeContext}},
		{"ODS code inside a word passes", national, "merrkat-theatre", jane, nil},
		{"short name as a word", national, "Tom1990!tractor", tom, []Code{CodeContext}},
		{"short name inside a word passes", national, "tomatoes on toast", tom, nil},
		{"apostrophe name", national, "oneil-forever-99", tom, []Code{CodeContext}},
		{"apostrophe org", national, "guys hospital 4ever", tom, []Code{CodeContext}},
		{"org ODS code with digit", national, "rj1 is where i work", tom, []Code{CodeContext}},
		{"generic org words pass", national, "teaching hospital trust", jane, nil},
		{"four-letter name inside a word passes", national, "bananas in pyjamas", anna, nil},
		{"four-letter name as a word", national, "anna-banana-2020", anna, []Code{CodeContext}},
		{"two-letter name ignored", national, "leeway to the left", anna, nil},
		{"no context", national, "Jane.Smith2024", Context{}, nil},
		{"second of several ODS codes", national, "rj1 is where i work", Context{ODSCode: "RRK RJ1"}, []Code{CodeContext}},

		// Banned terms.
		{"national ban on NHS", national, "i work for the nhs", jane, []Code{CodeBanned}},
		{"NHS in leetspeak", national, "nh5-tractor-42", Context{}, []Code{CodeBanned}},
		{"org banned term", leeds, "MyLanyardIsBlue!", jane, []Code{CodeBanned}},
		{"org banned term in leetspeak", leeds, "L4nyard is blue 7", jane, []Code{CodeBanned}},
		{"org banned phrase", leeds, "marching-on-ellandroad", jane, []Code{CodeBanned}},
		{"org ban not national", national, "MyLanyardIsBlue!", jane, nil},

		// Characters.
		{"control character", national, "correct horse\x00battery", jane, []Code{CodeInvalid}},
		{"invalid UTF-8", national, "\xffcorrect horse battery", jane, []Code{CodeInvalid}},
		{"emoji and other scripts", national, "🦔 ежик в тумане", jane, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			chk := NewChecker(nil, breached)
			got := codes(chk.Check(c.p, c.pw, c.ctx))
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("Check(%.40q) codes mismatch (-want +got):\n%s", c.pw, diff)
			}
		})
	}
}

func TestCheckMessages(t *testing.T) {
	chk := NewChecker(nil, fakeBreached{"Kx7!velvet-otter": true})
	n := National()
	jane := Context{GivenName: "Jane", FamilyName: "Smith", Email: "jane.smith@nhs.net", OrgName: "Leeds Teaching Hospitals", ODSCode: "RRK"}
	for _, c := range []struct {
		pw   string
		p    Policy
		want []Violation
	}{
		{"", n, []Violation{{CodeRequired, "Enter a password"}}},
		{"Kx7!velvt", n, []Violation{{CodeTooShort, "Your password must be at least 10 characters long"}}},
		{strings.Repeat("x", 1025), n, []Violation{{CodeTooLong, "Your password must be 1,024 characters or fewer"}}},
		{"Password1234", n, []Violation{{CodeCommon, "This is a commonly used password. Choose something harder to guess, for example three random words"}}},
		{"Kx7!velvet-otter", n, []Violation{{CodeBreached, "This password has appeared in a data breach elsewhere, so criminals may try it. Choose a different password"}}},
		{"Jane.Smith2024", n, []Violation{{CodeContext, "Your password must not contain your name or your email address"}}},
		{"leeds marmalade 7", n, []Violation{{CodeContext, "Your password must not contain the name or code of your organisation"}}},
		{"the nhs marmalade", n, []Violation{{CodeBanned, `Your password must not contain "NHS"`}}},
		{"bad\x01character!", n, []Violation{{CodeInvalid, "Your password contains a character that cannot be used. Remove it and try again"}}},
	} {
		got := chk.Check(c.p, c.pw, jane)
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("Check(%.40q) mismatch (-want +got):\n%s", c.pw, diff)
		}
	}
}

func TestContextWords(t *testing.T) {
	got := contextWords(Context{
		GivenName:  "Mary-Jane",
		FamilyName: "Ó Briain",
		Email:      "mj.obriain+lanyard@example.nhs.uk",
		OrgName:    "Leeds Teaching Hospitals NHS Trust",
		ODSCode:    " rrk ",
	})
	var keys []string
	for _, w := range got {
		keys = append(keys, w.key)
	}
	want := []string{
		"mary", "jane", "briain", "maryjane", "obriain", "maryjaneobriain", "obriainmaryjane",
		"obriain", "lanyard", "mjobriainlanyard",
		"leeds", "lthnt", "ltht", "lth", "rrk",
	}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("contextWords keys mismatch (-want +got):\n%s", diff)
	}
}

func TestThousands(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0"}, {10, "10"}, {999, "999"}, {1000, "1,000"}, {1024, "1,024"}, {1234567, "1,234,567"}} {
		if got := thousands(c.n); got != c.want {
			t.Errorf("thousands(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"", "Password1234", "P@ssw0rd2024!", "Jane.Smith2024", "nhsleeds2024", "correct horse battery staple", "\xff\x00", "ｐａｓｓｗｏｒｄ１２３", "rrk"} {
		f.Add(s, "Jane", "Smith", "jane.smith@nhs.net", "Leeds Teaching Hospitals NHS Trust", "RRK")
	}
	chk := NewChecker(nil, fakeBreached{"hunter2hunter2": true})
	p := National().Tighten(Policy{BannedTerms: []string{"Lanyard"}})
	valid := map[Code]bool{CodeRequired: true, CodeInvalid: true, CodeTooShort: true, CodeTooLong: true, CodeCommon: true, CodeBreached: true, CodeContext: true, CodeBanned: true}
	f.Fuzz(func(t *testing.T, pw, given, family, email, org, ods string) {
		vs := chk.Check(p, pw, Context{given, family, email, org, ods})
		seen := make(map[Code]bool)
		for _, v := range vs {
			if !valid[v.Code] || seen[v.Code] || v.Message == "" || !utf8.ValidString(v.Message) {
				t.Fatalf("Check(%q) = %+v: unknown, repeated or empty violation", pw, vs)
			}
			seen[v.Code] = true
		}
		if (pw == "") != seen[CodeRequired] {
			t.Fatalf("Check(%q) = %+v: required iff empty", pw, vs)
		}
	})
}
