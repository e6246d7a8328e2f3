package saml_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/testkit"
)

// benchSSO measures SP-initiated SSO (HTTP-Redirect AuthnRequest in, signed
// and encrypted response out) for a browser that already has a session,
// through the real server on loopback, with the given parallelism (0:
// serial). It reports responses per second of wall time and the p50 and
// p99 latency of the request to Lanyard; making the AuthnRequest (the SP's
// side) is outside the latency but inside the wall time.
func benchSSO(b *testing.B, parallel bool) {
	f := newFixture(b, testkit.Options{})
	sp := f.newSP(b, spEntity)
	f.register(b, sp, directory.NameIDPersistent, "email", "odsCode", "roles")
	br := f.s.Browser(b)
	f.signIn(b, br, sp)
	var (
		mu  sync.Mutex
		lat []time.Duration
		xml int
	)
	one := func() {
		u, _ := authnRequest(b, sp, "", nil)
		start := time.Now()
		p := br.Get(u)
		d := time.Since(start)
		if p.Status != http.StatusOK {
			b.Fatalf("SSO: %d", p.Status)
		}
		mu.Lock()
		lat, xml = append(lat, d), len(p.Body)
		mu.Unlock()
	}
	b.ReportAllocs()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				one()
			}
		})
	} else {
		for b.Loop() {
			one()
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "responses/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(xml), "B/response-page")
}

func BenchmarkSSOWithSession(b *testing.B)         { benchSSO(b, false) }
func BenchmarkSSOWithSessionParallel(b *testing.B) { benchSSO(b, true) }

// BenchmarkRSASign is the cost of one RSA-2048 PKCS#1 v1.5 SHA-256
// signature, the bound on SAML responses: each response carries two (the
// assertion's and the response's).
func BenchmarkRSASign(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte("signed info"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signatures/s")
}
