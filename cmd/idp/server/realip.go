package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddress makes r.RemoteAddr the address of the client, for lockout,
// risk and the audit log. X-Forwarded-For is believed only when the
// connection comes from a trusted proxy, and then read from the right:
// the first address that is not itself a trusted proxy is the client, so
// a client cannot choose its address by sending the header itself.
func clientAddress(trusted []netip.Prefix, next http.Handler) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		peer, perr := netip.ParseAddr(host)
		if err != nil || perr != nil || !isTrusted(peer) {
			next.ServeHTTP(w, r)
			return
		}
		var hops []string
		for _, h := range r.Header.Values("X-Forwarded-For") {
			hops = append(hops, strings.Split(h, ",")...)
		}
		client := peer
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // a malformed hop: stop at the last good one
			}
			client = a.Unmap()
			if !isTrusted(client) {
				break
			}
		}
		r2 := r.Clone(r.Context())
		r2.RemoteAddr = netip.AddrPortFrom(client, 0).String()
		next.ServeHTTP(w, r2)
	})
}
