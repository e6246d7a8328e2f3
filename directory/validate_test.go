package directory

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormaliseODSCode(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"RRK", "RRK", true},
		{" rrk02 ", "RRK02", true},
		{"A81001", "A81001", true},
		{"DEMO1", "DEMO1", true},
		{"8A718", "8A718", true},
		{"", "", false},
		{"RR", "", false},
		{"ABCDEFGHIJK", "", false},
		{"RR-K", "", false},
		{"RR K", "", false},
		{"RRK'; DROP TABLE", "", false},
		{"ÅBC", "", false},
		{"ＲＲＫ", "", false},
	} {
		got, err := NormaliseODSCode(tc.in)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("NormaliseODSCode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("NormaliseODSCode(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
		}
	}
}

func TestNormaliseEmail(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"demo.user@lanyard.test", "demo.user@lanyard.test", true},
		{" Jane.Smith@NHS.net ", "Jane.Smith@NHS.net", true},
		{"a+tag@example.nhs.uk", "a+tag@example.nhs.uk", true},
		{"", "", false},
		{"jane", "", false},
		{"jane@", "", false},
		{"@nhs.net", "", false},
		{"jane@localhost", "", false},
		{"Jane <jane@nhs.net>", "", false},
		{"jane@nhs.net (work)", "", false},
		{"jane@@nhs.net", "", false},
		{"jane@nhs..net", "", false},
		{"jane@.nhs.net", "", false},
		{"jane@[127.0.0.1]", "", false},
		{"ja ne@nhs.net", "", false},
		{"jane@nhs.net\r\nBcc: x@y.z", "", false},
		{strings.Repeat("a", 250) + "@nhs.net", "", false},
		{"\xff@nhs.net", "", false},
	} {
		got, err := NormaliseEmail(tc.in)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("NormaliseEmail(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("NormaliseEmail(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
		}
	}
	if EmailKey("Jane.Smith@NHS.net") != EmailKey("jane.smith@nhs.NET") {
		t.Error("EmailKey differs by case")
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"Jane Smith", true},
		{"  Siân O'Brien-Ng ", true},
		{"", false},
		{"   ", false},
		{"a\x00b", false},
		{"line\nbreak", false},
		{strings.Repeat("x", MaxNameLen+1), false},
		{"\xff", false},
	} {
		_, err := CheckName("name", tc.in)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("CheckName(%q) err = %v; want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestCheckRedirectURI(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"https://app.example.nhs.uk/callback", true},
		{"http://127.0.0.1:9999/callback", true},
		{"http://localhost/cb", true},
		{"http://[::1]:8080/cb", true},
		{"com.example.app:/callback", true},
		{"http://app.example.nhs.uk/callback", false},
		{"https://app.example.nhs.uk/cb#frag", false},
		{"https://user:pw@app.example.nhs.uk/cb", false},
		{"/relative", false},
		{"javascript:alert(1)", false},
		{"https:///nohost", false},
		{"", false},
	} {
		err := CheckRedirectURI(tc.in)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("CheckRedirectURI(%q) = %v; want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestClientSecret(t *testing.T) {
	s := NewClientSecret()
	c := Client{SecretHash: HashClientSecret(s)}
	if !c.VerifySecret(s) {
		t.Error("VerifySecret(right secret) = false")
	}
	if c.VerifySecret(s[:len(s)-1]) || c.VerifySecret("") {
		t.Error("VerifySecret(wrong secret) = true")
	}
	if (Client{Public: true, SecretHash: c.SecretHash}).VerifySecret(s) {
		t.Error("public client accepted a secret")
	}
}

func FuzzNormaliseODSCode(f *testing.F) {
	for _, s := range []string{"RRK", "rrk02", "A81001", " DEMO1 ", "", "R-K", "ＲＲＫ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormaliseODSCode(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("NormaliseODSCode(%q) error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if len(got) < 3 || len(got) > 10 || strings.ToUpper(got) != got || strings.TrimSpace(got) != got {
			t.Fatalf("NormaliseODSCode(%q) = %q: not canonical", s, got)
		}
		if again, err := NormaliseODSCode(got); err != nil || again != got {
			t.Fatalf("NormaliseODSCode not idempotent on %q: %q, %v", got, again, err)
		}
	})
}

func FuzzNormaliseEmail(f *testing.F) {
	for _, s := range []string{"demo.user@lanyard.test", "Jane <j@nhs.net>", "a@b", "x@y.z\r\n", "\"q uoted\"@nhs.net"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormaliseEmail(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("NormaliseEmail(%q) error %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if len(got) > MaxEmailLen || !utf8.ValidString(got) || strings.ContainsAny(got, "\r\n<>") || strings.Count(got, "@") < 1 {
			t.Fatalf("NormaliseEmail(%q) accepted %q", s, got)
		}
		if again, err := NormaliseEmail(got); err != nil || again != got {
			t.Fatalf("NormaliseEmail not idempotent on %q: %q, %v", got, again, err)
		}
	})
}

func FuzzCheckRedirectURI(f *testing.F) {
	for _, s := range []string{"https://a.example/cb", "http://127.0.0.1:1/x", "com.x.y:/cb", "http://evil.example/", "https://a#b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckRedirectURI(s) != nil {
			return
		}
		if strings.Contains(s, "#") || len(s) > MaxRedirectURILen {
			t.Fatalf("CheckRedirectURI accepted %q", s)
		}
	})
}
