package authn

import (
	"net/url"
	"strings"
	"testing"
)

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"/login/oidc?id=X&after=1", true},
		{"/account", true},
		{"", false},
		{"account", false},
		{"//evil.example/", false},
		{"/\\evil.example", false},
		{"https://evil.example/", false},
		{"/ok\r\nSet-Cookie: x=y", false},
	} {
		if got := localPath(tc.in); got != tc.ok {
			t.Errorf("localPath(%q) = %v, want %v", tc.in, got, tc.ok)
		}
	}
}

// FuzzLocalPath: whatever localPath accepts, a browser resolving it against
// the issuer stays on the issuer's host.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/login/oidc?id=1", "//x", "/\\x", "https://x/", "/%2F%2Fx", "/\t/x", "/ /x"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://id.example.nhs.uk/")
	f.Fuzz(func(t *testing.T, s string) {
		if !localPath(s) {
			return
		}
		// Browsers drop tabs and newlines from URLs and treat \ like /.
		cleaned := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(s)
		u, err := base.Parse(cleaned)
		if err != nil {
			return // not followed at all
		}
		if u.Host != base.Host || u.Scheme != base.Scheme {
			t.Fatalf("localPath(%q) accepted a path that leaves the host: %s", s, u)
		}
	})
}
