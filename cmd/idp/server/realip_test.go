package server

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddress(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy, header ignored", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9:5000"},
		{"trusted proxy", "10.1.2.3:5000", []string{"198.51.100.1"}, "198.51.100.1:0"},
		{"chain of trusted proxies", "10.1.2.3:5000", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1:0"},
		{"client spoofs a header", "10.1.2.3:5000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1:0"},
		{"two headers", "10.1.2.3:5000", []string{"1.2.3.4", "198.51.100.1"}, "198.51.100.1:0"},
		{"malformed hop", "10.1.2.3:5000", []string{"198.51.100.1, garbage"}, "10.1.2.3:0"},
		{"no header", "10.1.2.3:5000", nil, "10.1.2.3:0"},
		{"ipv6 proxy", "[::1]:5000", []string{"2001:db8::7"}, "[2001:db8::7]:0"},
		{"all trusted", "10.1.2.3:5000", []string{"10.4.4.4"}, "10.4.4.4:0"},
	} {
		var got string
		h := clientAddress(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }))
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.peer
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got != tc.want {
			t.Errorf("%s: RemoteAddr = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func FuzzClientAddress(f *testing.F) {
	f.Add("10.1.2.3:1", "1.2.3.4, 5.6.7.8")
	f.Add("203.0.113.1:1", "10.0.0.1")
	f.Add("10.0.0.1:1", ",,, ::ffff:1.2.3.4 ,")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		var got string
		h := clientAddress(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }))
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		h.ServeHTTP(httptest.NewRecorder(), r)
		if p, err := netip.ParseAddrPort(peer); err != nil || !trusted[0].Contains(p.Addr().Unmap()) {
			if got != peer {
				t.Fatalf("untrusted peer %q became %q", peer, got)
			}
		}
	})
}
