package policy

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNational(t *testing.T) {
	got := National()
	want := Policy{
		MinLength:   10,
		MaxLength:   1024,
		History:     4,
		MaxAge:      365 * 24 * time.Hour,
		WarnBefore:  14 * 24 * time.Hour,
		BannedTerms: []string{"NHS"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("National() mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("National().Validate() = %v, want nil", err)
	}
	if got.MaxLength < 256 {
		t.Errorf("National().MaxLength = %d, want at least 256", got.MaxLength)
	}
}

func TestTighten(t *testing.T) {
	n := National()
	for _, c := range []struct {
		name string
		org  Policy
		want Policy
	}{
		{"zero org inherits", Policy{}, n},
		{
			"weaker org is ignored",
			Policy{MinLength: 6, MaxLength: 300, History: 1, MaxAge: 400 * day, WarnBefore: day},
			n,
		},
		{
			"stricter org wins",
			Policy{MinLength: 14, History: 10, MaxAge: 90 * day, WarnBefore: 21 * day, BannedTerms: []string{"Leeds", "nhs"}},
			Policy{MinLength: 14, MaxLength: 1024, History: 10, MaxAge: 90 * day, WarnBefore: 21 * day, BannedTerms: []string{"NHS", "Leeds"}},
		},
		{
			"warning capped at max age",
			Policy{MaxAge: 10 * day},
			Policy{MinLength: 10, MaxLength: 1024, History: 4, MaxAge: 10 * day, WarnBefore: 10 * day, BannedTerms: []string{"NHS"}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := n.Tighten(c.org)
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("National().Tighten(%+v) mismatch (-want +got):\n%s", c.org, diff)
			}
		})
	}

	t.Run("never expiring national defers to org", func(t *testing.T) {
		got := Policy{}.Tighten(Policy{MaxAge: 90 * day})
		if got.MaxAge != 90*day {
			t.Errorf("Policy{}.Tighten(MaxAge 90d).MaxAge = %s, want %s", got.MaxAge, 90*day)
		}
	})
	t.Run("does not modify arguments", func(t *testing.T) {
		a := Policy{BannedTerms: make([]string, 1, 4)}
		a.BannedTerms[0] = "alpha"
		b := Policy{BannedTerms: []string{"beta"}}
		_ = a.Tighten(b)
		if got := a.BannedTerms[:cap(a.BannedTerms)][1]; got != "" {
			t.Errorf("Tighten wrote %q into its receiver's spare capacity", got)
		}
	})
}

func randomPolicy(r *rand.Rand) Policy {
	durations := []time.Duration{-day, 0, time.Hour, day, 14 * day, 30 * day, 90 * day, 365 * day, 1000 * day}
	terms := []string{"NHS", "nhs", "Leeds", "leeds", "LTHT", "Lanyard", "  ", "x"}
	p := Policy{
		MinLength:  r.IntN(300) - 10,
		MaxLength:  r.IntN(1200) - 10,
		History:    r.IntN(30) - 2,
		MaxAge:     durations[r.IntN(len(durations))],
		WarnBefore: durations[r.IntN(len(durations))],
	}
	for range r.IntN(4) {
		p.BannedTerms = append(p.BannedTerms, terms[r.IntN(len(terms))])
	}
	return p
}

// TestTightenNeverWeakens checks on random policies that the result is at
// least as strict as either input in every field, and refuses every
// password that either input refuses (except for being too long, since a
// longer maximum is the stricter one).
func TestTightenNeverWeakens(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := NewChecker(nil, nil)
	passwords := []string{
		"short", "Password1234", "correct horse battery staple", "Jane.Smith2024",
		"nhsleeds2024", "my lanyard is blue", strings.Repeat("abcdefghij klmnop ", 20),
		strings.Repeat("x", 1100), "LeedsUnited!!", "ltht-rrk-99",
	}
	ctx := Context{GivenName: "Jane", FamilyName: "Smith", OrgName: "Leeds Teaching Hospitals", ODSCode: "RRK"}
	for i := range 2000 {
		a, b := randomPolicy(r), randomPolicy(r)
		got := a.Tighten(b)
		for _, in := range []Policy{a, b} {
			if got.MinLength < in.MinLength {
				t.Fatalf("#%d: %+v.Tighten(%+v).MinLength = %d, below %d", i, a, b, got.MinLength, in.MinLength)
			}
			if got.History < in.History {
				t.Fatalf("#%d: %+v.Tighten(%+v).History = %d, below %d", i, a, b, got.History, in.History)
			}
			if in.MaxAge > 0 && (got.MaxAge <= 0 || got.MaxAge > in.MaxAge) {
				t.Fatalf("#%d: %+v.Tighten(%+v).MaxAge = %s, want in (0, %s]", i, a, b, got.MaxAge, in.MaxAge)
			}
			if effectiveMax(got.MaxLength) < effectiveMax(in.MaxLength) {
				t.Fatalf("#%d: %+v.Tighten(%+v).MaxLength = %d, below %d", i, a, b, got.MaxLength, in.MaxLength)
			}
			if in.WarnBefore > got.WarnBefore && got.WarnBefore != got.MaxAge {
				t.Fatalf("#%d: %+v.Tighten(%+v).WarnBefore = %s, below %s and not the max age", i, a, b, got.WarnBefore, in.WarnBefore)
			}
			for _, term := range in.BannedTerms {
				if k := termKey(term); k != "" && !containsKey(got.BannedTerms, k) {
					t.Fatalf("#%d: %+v.Tighten(%+v).BannedTerms = %q, missing %q", i, a, b, got.BannedTerms, term)
				}
			}
			changed := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			for _, age := range []time.Duration{0, 10 * day, 100 * day, 400 * day} {
				now := changed.Add(age)
				if in.Expired(changed, now) && !got.Expired(changed, now) {
					t.Fatalf("#%d: expired under %+v after %s but not under %+v", i, in, age, got)
				}
			}
			if i%20 != 0 {
				continue // Check is the slow part
			}
			for _, pw := range passwords {
				have := codes(c.Check(got, pw, ctx))
				for _, code := range codes(c.Check(in, pw, ctx)) {
					if code != CodeTooLong && !containsCode(have, code) {
						t.Fatalf("#%d: Check(%+v, %q) has %s but the tightened %+v gives %v", i, in, pw, code, got, have)
					}
				}
			}
		}
	}
}

func containsKey(terms []string, k string) bool {
	for _, t := range terms {
		if termKey(t) == k {
			return true
		}
	}
	return false
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		p    Policy
		want []string // substrings of the error, one per problem
	}{
		{"zero", Policy{}, nil},
		{"national", National(), nil},
		{"strict org", Policy{MinLength: 16, History: 12, MaxAge: 90 * day, WarnBefore: 7 * day, BannedTerms: []string{"Leeds", "LTHT"}}, nil},
		{"min length too long", Policy{MinLength: 300}, []string{"min_length: must be between 0 and 256, got 300"}},
		{"negative min length", Policy{MinLength: -1}, []string{"min_length"}},
		{"max length too small", Policy{MaxLength: 100}, []string{"max_length: must be 0 (national default) or between 256 and 1024, got 100"}},
		{"max length too large", Policy{MaxLength: 5000}, []string{"max_length"}},
		{"history", Policy{History: 100}, []string{"history: must be between 0 and 24, got 100"}},
		{"max age under a day", Policy{MaxAge: time.Hour}, []string{"max_age: must be 0 (never expires) or at least 24h, got 1h0m0s"}},
		{"warning not before expiry", Policy{MaxAge: 7 * day, WarnBefore: 7 * day}, []string{"warn_before"}},
		{"short banned term", Policy{BannedTerms: []string{"ok", "fine"}}, []string{`banned_terms[0]: must be 3 to 64 letters or digits, got "ok"`}},
		{"every problem at once", Policy{MinLength: 999, History: -1, BannedTerms: []string{" - "}}, []string{"min_length", "history", "banned_terms[0]"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.p.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors containing %q", c.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(c.want) {
				t.Errorf("Validate() = %q, want %d problems", lines, len(c.want))
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	changed := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	n := National()
	expires := changed.Add(365 * day)
	for _, c := range []struct {
		name          string
		p             Policy
		now           time.Time
		warn, expired bool
	}{
		{"just changed", n, changed, false, false},
		{"before warning", n, expires.Add(-14*day - time.Second), false, false},
		{"warning starts", n, expires.Add(-14 * day), true, false},
		{"last second", n, expires.Add(-time.Second), true, false},
		{"expired", n, expires, false, true},
		{"long expired", n, expires.Add(1000 * day), false, true},
		{"never expires", Policy{}, changed.Add(10000 * day), false, false},
		{"no warning", Policy{MaxAge: 30 * day}, changed.Add(29 * day), false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.Warn(changed, c.now); got != c.warn {
				t.Errorf("Warn(%v, %v) = %v, want %v", changed, c.now, got, c.warn)
			}
			if got := c.p.Expired(changed, c.now); got != c.expired {
				t.Errorf("Expired(%v, %v) = %v, want %v", changed, c.now, got, c.expired)
			}
		})
	}
	if got := n.Expires(changed); !got.Equal(expires) {
		t.Errorf("Expires(%v) = %v, want %v", changed, got, expires)
	}
	if got := (Policy{}).Expires(changed); !got.IsZero() {
		t.Errorf("Policy{}.Expires(%v) = %v, want zero", changed, got)
	}
	if !n.Expired(time.Time{}, changed) {
		t.Errorf("Expired(zero time, %v) = false, want true (never recorded)", changed)
	}
}
