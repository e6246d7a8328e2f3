package sqlstore_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/sqlstore"
)

// benchUsers is the population BenchmarkUserByEmail looks users up in: a
// large trust's worth and then some.
const benchUsers = 100_000

func benchEmail(i int) string { return fmt.Sprintf("user.%06d@bench.example.nhs.uk", i) }

// loadUsers creates n users in batches of one transaction each.
func loadUsers(b *testing.B, s *sqlstore.Store, n int) {
	b.Helper()
	const batch = 10_000
	at := time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)
	for lo := 0; lo < n; lo += batch {
		err := s.InTx(b.Context(), func(tx directory.Store) error {
			for i := lo; i < min(lo+batch, n); i++ {
				u := directory.User{
					ID: fmt.Sprintf("u%06d", i), Email: benchEmail(i), GivenName: "Given", FamilyName: fmt.Sprintf("Family %d", i),
					Status: directory.UserActive, CreatedAt: at, UpdatedAt: at,
				}
				if err := tx.CreateUser(b.Context(), u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("load users %d…: %v", lo, err)
		}
	}
}

// BenchmarkUserByEmail times the lookup every login starts with, among
// benchUsers users, and reports the median and 99th percentile latency.
func BenchmarkUserByEmail(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := newStore(b, e.dsn(b))
			start := time.Now()
			loadUsers(b, s, benchUsers)
			b.Logf("loaded %d users in %v", benchUsers, time.Since(start).Round(time.Millisecond))
			emails := make([]string, benchUsers)
			for i := range emails {
				emails[i] = benchEmail(i)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			var lat []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				i := rng.IntN(benchUsers)
				t0 := time.Now()
				u, err := s.UserByEmail(b.Context(), emails[i])
				lat = append(lat, time.Since(t0))
				if err != nil || u.Email != emails[i] {
					b.Fatalf("UserByEmail(%q) = %q, %v; want that user", emails[i], u.Email, err)
				}
			}
			slices.Sort(lat)
			pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
			us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
			b.ReportMetric(us(pct(0.50)), "p50-us")
			b.ReportMetric(us(pct(0.99)), "p99-us")
		})
	}
}
