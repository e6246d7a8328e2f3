package risk_test

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral/mem"
	"github.com/lanyard/lanyard/directory/sqlstore"
	"github.com/lanyard/lanyard/risk"
)

// BenchmarkAssessSQLite measures Assess with the profile read from SQLite
// (the embedded default), for a user with 60 days of history, and reports
// the 99th percentile.
func BenchmarkAssessSQLite(b *testing.B) {
	ctx := b.Context()
	st, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "lanyard.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Date(2031, time.March, 4, 0, 0, 0, 0, time.UTC)
	st.CreateOrganisation(ctx, directory.Organisation{ID: "org", ODSCode: "RRK", Name: "Trust", CreatedAt: now, UpdatedAt: now})
	for i := range 50 {
		u := directory.User{ID: fmt.Sprintf("u%d", i), Email: fmt.Sprintf("u%d@nhs.net", i), GivenName: "U", FamilyName: "Ser", Status: directory.UserActive, CreatedAt: now, UpdatedAt: now}
		if err := st.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
	e := risk.New(risk.Config{}, st, mem.New(1_000_000), testGeo(b), nil, nil)
	for d := 60; d > 0; d-- {
		for i := range 50 {
			at := risk.Attempt{Time: now.AddDate(0, 0, -d).Add(time.Duration(8+i%10) * time.Hour), UserID: fmt.Sprintf("u%d", i), OrgID: "org", Role: "staff",
				IP: netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", i)), Device: fmt.Sprintf("dev%d-%d", i, d%3), UserAgent: chrome}
			e.Observe(ctx, at, risk.Succeeded)
		}
	}
	durs := make([]time.Duration, 0, 1<<16)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		at := risk.Attempt{Time: now.Add(time.Duration(i%1000) * time.Second), UserID: fmt.Sprintf("u%d", i%50), OrgID: "org", Role: "staff",
			IP: netip.MustParseAddr("198.51.100.9"), Device: "x", UserAgent: chrome}
		t0 := time.Now()
		e.Assess(ctx, at)
		durs = append(durs, time.Since(t0))
		i++
	}
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds()), "µs-p99")
	b.ReportMetric(float64(e.ProfileSize(ctx, "u1")), "B/profile")
}

// BenchmarkProfileSize fills a profile to every cap (devices, browsers,
// networks, places) and reports its encoded size, which must stay under
// 2 KB.
func BenchmarkProfileSize(b *testing.B) {
	ctx := b.Context()
	st := risk.NewMemStore()
	e := risk.New(risk.Config{}, st, mem.New(100_000), testGeo(b), nil, nil)
	now := time.Date(2031, time.March, 4, 0, 0, 0, 0, time.UTC)
	uas := []string{chrome, "Mozilla/5.0 (iPhone) Safari/604.1", "Mozilla/5.0 (X11; Linux) Firefox/125.0", "Mozilla/5.0 (Android) Chrome/124.0", "Edg/1 Windows"}
	for b.Loop() {
		for i := range 400 {
			ip := []string{"203.0.113.", "192.0.2.", "198.51.100."}[i%3] + fmt.Sprint(i%250)
			if i%7 == 0 {
				ip = fmt.Sprintf("2001:db8:%x::1", i)
			}
			e.Observe(ctx, risk.Attempt{Time: now.Add(time.Duration(i) * 37 * time.Minute), UserID: "u", OrgID: "org", Role: "staff",
				IP: netip.MustParseAddr(ip), Device: fmt.Sprintf("dev-%d", i), UserAgent: uas[i%len(uas)]}, risk.Succeeded)
		}
	}
	n := slices.Max(st.ProfileSizes())
	if n >= 2048 {
		b.Errorf("profile of %d bytes, want under 2 KB", n)
	}
	b.ReportMetric(float64(n), "B/profile")
}

// BenchmarkReplay350k replays 350,000 events (3,500 users, 100 each, in
// time order) through a fresh engine, as `idp risk replay` does.
func BenchmarkReplay350k(b *testing.B) {
	var in bytes.Buffer
	start := time.Date(2031, time.January, 6, 0, 0, 0, 0, time.UTC)
	const users, each = 3500, 100
	for k := range each {
		for u := range users {
			t := start.Add(time.Duration(k)*24*time.Hour + time.Duration(u)*10*time.Second)
			fmt.Fprintf(&in, `{"time":%q,"user":"u%d","org":"O%d","role":"staff","ip":"203.0.113.%d","device":"d%d","ua":%q,"tz":"Europe/London","outcome":"success","second_factor":"pass"}`+"\n",
				t.Format(time.RFC3339), u, u%8, u%250, u, chrome)
		}
	}
	data := in.Bytes()
	geo := testGeo(b)
	b.ResetTimer()
	for b.Loop() {
		e := risk.New(risk.Config{}, risk.NewMemStore(), mem.New(10_000_000), geo, nil, nil)
		n, err := e.Replay(b.Context(), bytes.NewReader(data), io.Discard)
		if err != nil || n != users*each {
			b.Fatalf("Replay = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(users*each)/(b.Elapsed().Seconds()/float64(b.N)), "events/s")
}
