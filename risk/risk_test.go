package risk_test

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral/mem"
	"github.com/lanyard/lanyard/risk"
	"github.com/lanyard/lanyard/risk/geotest"
)

var testNets = []geotest.Network{
	{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Country: "GB", City: "Leeds", Lat: 53.8, Lon: -1.55, ASN: 64600, ASOrg: "HSCN"},
	{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "GB", City: "Leeds", Lat: 53.8, Lon: -1.55, ASN: 64501, ASOrg: "Broadband One"},
	{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: "FR", City: "Paris", Lat: 48.86, Lon: 2.35, ASN: 64900, ASOrg: "Hosting FR"},
	{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Country: "US", City: "Ashburn", Lat: 39.04, Lon: -77.49, ASN: 64901, ASOrg: "Hosting US"},
}

func testGeo(t testing.TB) *risk.GeoIP {
	t.Helper()
	b, err := geotest.Build(testNets)
	if err != nil {
		t.Fatal(err)
	}
	g, err := risk.OpenGeoIPBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func TestGeoIPLookup(t *testing.T) {
	g := testGeo(t)
	for _, c := range []struct {
		ip   string
		want string
		asn  uint32
	}{
		{"203.0.113.7", "Leeds, GB", 64600},
		{"198.51.100.1", "Paris, FR", 64900},
		{"::ffff:198.51.100.1", "Paris, FR", 64900},
		{"2001:db8:1::5", "Ashburn, US", 64901},
		{"8.8.8.8", "", 0},
	} {
		p := g.Lookup(netip.MustParseAddr(c.ip))
		if p.String() != c.want || p.ASN != c.asn {
			t.Errorf("Lookup(%s) = %q AS%d, want %q AS%d", c.ip, p.String(), p.ASN, c.want, c.asn)
		}
	}
	var none *risk.GeoIP
	if p := none.Lookup(netip.MustParseAddr("203.0.113.7")); p != (risk.Place{}) {
		t.Errorf("nil GeoIP knows %+v", p)
	}
	if _, err := risk.OpenGeoIPBytes([]byte("not a database")); !errors.Is(err, risk.ErrGeoIP) {
		t.Errorf("OpenGeoIPBytes(garbage) = %v, want ErrGeoIP", err)
	}
	good, _ := geotest.Build(testNets)
	if _, err := risk.OpenGeoIPBytes(good[:len(good)/2]); !errors.Is(err, risk.ErrGeoIP) {
		t.Errorf("OpenGeoIPBytes(truncated) = %v, want ErrGeoIP", err)
	}
	bad := append([]byte(nil), good...)
	for i := 100; i < 400; i++ { // scribble over the search tree
		bad[i] ^= 0x5a
	}
	if _, err := risk.OpenGeoIPBytes(bad); !errors.Is(err, risk.ErrGeoIP) {
		t.Errorf("OpenGeoIPBytes(corrupt tree) = %v, want ErrGeoIP", err)
	}
	if _, err := risk.OpenGeoIP("testdata/missing.mmdb"); !errors.Is(err, risk.ErrGeoIP) || !strings.Contains(err.Error(), "missing.mmdb") {
		t.Errorf("OpenGeoIP(missing) = %v, want ErrGeoIP naming the file", err)
	}
}

func TestAnonymisers(t *testing.T) {
	a, err := risk.LoadAnonymisers(strings.NewReader("# exits\n10.0.0.0/8\n10.1.2.0/24 # nested\n192.0.2.7\n\n2001:db8::/32\n::ffff:198.51.100.0/120\n"))
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{
		"10.200.3.4": true, "10.1.2.3": true, "11.0.0.1": false, "192.0.2.7": true, "192.0.2.8": false,
		"2001:db8:ffff::1": true, "2001:db9::1": false, "198.51.100.200": true, "::ffff:10.0.0.1": true, "9.255.255.255": false,
	} {
		if got := a.Contains(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", ip, got, want)
		}
	}
	if a.Len() != 5 {
		t.Errorf("Len = %d, want 5", a.Len())
	}
	if _, err := risk.LoadAnonymisers(strings.NewReader("10.0.0.0/8\nnot-a-range\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v, want an error naming line 2", err)
	}
	var none *risk.Anonymisers
	if none.Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("nil list contains an address")
	}
}

func TestDeviceCookie(t *testing.T) {
	k1, k2 := []byte("01234567890123456789012345678901"), []byte("abcdefghijabcdefghijabcdefghij12")
	d := risk.NewDevices([][]byte{k1})
	v, id := d.New()
	if len(v) > 64 || len(v) < 20 {
		t.Errorf("cookie %q: length %d outside the lockout's 20..64", v, len(v))
	}
	if got, ok := d.Parse(v); !ok || got != id {
		t.Errorf("Parse(New()) = %q, %v; want %q", got, ok, id)
	}
	rotated := risk.NewDevices([][]byte{k2, k1})
	if got, ok := rotated.Parse(v); !ok || got != id {
		t.Errorf("after rotation Parse = %q, %v; want the old cookie to verify", got, ok)
	}
	other := risk.NewDevices([][]byte{k2})
	for name, bad := range map[string]string{
		"other key": v, "empty": "", "no tag": id, "tampered id": "A" + v[1:], "tampered tag": v[:len(v)-2] + map[bool]string{true: "BB", false: "AA"}[strings.HasSuffix(v, "AA")],
		"random": strings.Repeat("A", len(v)),
	} {
		dd := d
		if name == "other key" {
			dd = other
		}
		if _, ok := dd.Parse(bad); ok && !(name == "tampered id" && v[0] == 'A') {
			t.Errorf("Parse(%s) accepted %q", name, bad)
		}
	}
}

// world is an engine over a memory store with the test GeoIP.
func world(t testing.TB, geo *risk.GeoIP, anon *risk.Anonymisers) (*risk.Engine, *risk.MemStore) {
	st := risk.NewMemStore()
	return risk.New(risk.Config{}, st, mem.New(1_000_000), geo, anon, nil), st
}

var london, _ = time.LoadLocation("Europe/London")

const chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36"

// history signs u in at the hospital on the hour given, every day for
// days days before end.
func history(e *risk.Engine, u string, hour, days int, end time.Time) {
	for d := days; d > 0; d-- {
		day := end.AddDate(0, 0, -d).In(london)
		at := risk.Attempt{Time: time.Date(day.Year(), day.Month(), day.Day(), hour, 10, 0, 0, london), UserID: u, OrgID: "org", Role: "staff",
			IP: netip.MustParseAddr("203.0.113.20"), Device: "dev-" + u, UserAgent: chrome}
		if e.Assess(context.Background(), at).Verdict != risk.Block {
			e.Observe(context.Background(), at, risk.Succeeded)
		}
	}
}

func TestEngineDecisions(t *testing.T) {
	ctx := t.Context()
	anon, _ := risk.LoadAnonymisers(strings.NewReader("2001:db8:1::/48\n"))
	e, st := world(t, testGeo(t), anon)
	end := time.Date(2031, time.March, 20, 0, 0, 0, 0, london)
	history(e, "day", 9, 40, end)
	history(e, "night", 2, 40, end)
	// Colleagues who sign in from home on their phones: the population
	// knows the broadband provider and the phones.
	for i := range 10 {
		for d := 40; d > 0; d-- {
			a := risk.Attempt{Time: end.AddDate(0, 0, -d).Add(19 * time.Hour), UserID: "home" + itoa(i), OrgID: "org", Role: "staff",
				IP: netip.MustParseAddr("192.0.2." + itoa(10+i)), Device: "phone" + itoa(i), UserAgent: "Mozilla/5.0 (iPhone) Safari/604.1"}
			e.Observe(ctx, a, risk.Succeeded)
		}
	}
	if err := e.Flush(ctx, end); err != nil {
		t.Fatal(err)
	}
	at := func(user string, hour int, ip, device, ua string) risk.Attempt {
		return risk.Attempt{Time: end.Add(time.Duration(hour) * time.Hour).Add(5 * time.Minute), UserID: user, OrgID: "org", Role: "staff",
			IP: netip.MustParseAddr(ip), Device: device, UserAgent: ua}
	}
	for _, c := range []struct {
		name    string
		at      risk.Attempt
		want    []risk.Verdict
		reasons []string
	}{
		{"usual", at("day", 9, "203.0.113.20", "dev-day", chrome), []risk.Verdict{risk.Allow}, nil},
		{"night shift at 02:00 at the hospital", at("night", 2, "203.0.113.20", "dev-night", chrome), []risk.Verdict{risk.Allow}, nil},
		{"own device at an odd hour", at("day", 3, "203.0.113.20", "dev-day", chrome), []risk.Verdict{risk.Allow}, nil},
		{"new phone at home at the usual hour", at("day", 9, "192.0.2.9", "new-phone", "Mozilla/5.0 (iPhone) Safari/604.1"), []risk.Verdict{risk.Allow}, nil},
		{"Paris host at 03:00, new device", at("day", 3, "198.51.100.4", "", "python-requests/2.31"), []risk.Verdict{risk.StepUp, risk.Block},
			[]string{"a country not used before by this user: FR", "an unusual time for this user"}},
		{"anonymiser at the usual hour", at("day", 9, "2001:db8:1::9", "evil", chrome), []risk.Verdict{risk.StepUp, risk.Block},
			[]string{"an anonymising network"}},
	} {
		d := e.Assess(ctx, c.at)
		if !containsVerdict(c.want, d.Verdict) {
			t.Errorf("%s: %s (score %v, %q), want one of %v", c.name, d.Verdict, d.Score, d.Reasons, c.want)
		}
		for _, r := range c.reasons {
			if !strings.Contains(strings.Join(d.Reasons, "; "), r) {
				t.Errorf("%s: reasons %q lack %q", c.name, d.Reasons, r)
			}
		}
	}
	for _, n := range st.ProfileSizes() {
		if n > 2048 {
			t.Errorf("profile of %d bytes, want under 2 KB", n)
		}
	}
}

func containsVerdict(vs []risk.Verdict, v risk.Verdict) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// TestUnknownGeoNeverBlocksEveryone: without a GeoIP database, or for
// addresses it does not know, familiar sign-ins are allowed and nothing
// is blocked for want of a place.
func TestUnknownGeoNeverBlocksEveryone(t *testing.T) {
	for name, geo := range map[string]*risk.GeoIP{"no database": nil, "database without the addresses": testGeo(t)} {
		t.Run(name, func(t *testing.T) {
			e, _ := world(t, geo, nil)
			end := time.Date(2031, time.March, 20, 0, 0, 0, 0, london)
			for u := range 20 {
				user := "u" + string(rune('a'+u))
				for d := 30; d > 0; d-- {
					day := end.AddDate(0, 0, -d)
					a := risk.Attempt{Time: day.Add(9 * time.Hour), UserID: user, OrgID: "org", Role: "staff",
						IP: netip.MustParseAddr("100.64.0." + itoa(u)), Device: "dev-" + user, UserAgent: chrome}
					e.Observe(t.Context(), a, risk.Succeeded)
				}
			}
			for u := range 20 {
				user := "u" + string(rune('a'+u))
				a := risk.Attempt{Time: end.Add(9 * time.Hour), UserID: user, OrgID: "org", Role: "staff",
					IP: netip.MustParseAddr("100.64.0." + itoa(u)), Device: "dev-" + user, UserAgent: chrome}
				if d := e.Assess(t.Context(), a); d.Verdict != risk.Allow {
					t.Errorf("%s usual sign-in: %s %v %q", user, d.Verdict, d.Score, d.Reasons)
				}
				a.IP, a.Device = netip.MustParseAddr("100.100.0."+itoa(u)), ""
				if d := e.Assess(t.Context(), a); d.Verdict == risk.Block {
					t.Errorf("%s new device and address, no place known: blocked (%v %q)", user, d.Score, d.Reasons)
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestSprayAndFailures(t *testing.T) {
	ctx := t.Context()
	e, _ := world(t, testGeo(t), nil)
	end := time.Date(2031, time.March, 20, 0, 0, 0, 0, london)
	history(e, "victim", 9, 30, end)
	ip := netip.MustParseAddr("198.51.100.66")
	now := end.Add(9 * time.Hour)
	for i := range 30 {
		a := risk.Attempt{Time: now.Add(time.Duration(i) * time.Second), Account: "acct-" + itoa(i), IP: ip, UserAgent: "python-requests/2.31"}
		e.Observe(ctx, a, risk.PasswordFailed)
	}
	d := e.Assess(ctx, risk.Attempt{Time: now.Add(time.Minute), UserID: "victim", OrgID: "org", Role: "staff", IP: ip, UserAgent: "python-requests/2.31"})
	if d.Verdict == risk.Allow || !strings.Contains(strings.Join(d.Reasons, ";"), "failed on 30 accounts") {
		t.Errorf("after a spray: %s %v %q, want it stopped, naming the spray", d.Verdict, d.Score, d.Reasons)
	}
	// An hour later the address is forgotten.
	d = e.Assess(ctx, risk.Attempt{Time: now.Add(2 * time.Hour), UserID: "victim", OrgID: "org", Role: "staff", IP: ip, UserAgent: "python-requests/2.31"})
	if strings.Contains(strings.Join(d.Reasons, ";"), "accounts recently") {
		t.Errorf("spray still counted two hours later: %q", d.Reasons)
	}
}

func TestImpossibleTravel(t *testing.T) {
	ctx := t.Context()
	e, _ := world(t, testGeo(t), nil)
	end := time.Date(2031, time.March, 20, 0, 0, 0, 0, london)
	history(e, "u", 9, 30, end)
	last := end.Add(9*time.Hour + 10*time.Minute)
	e.Observe(ctx, risk.Attempt{Time: last, UserID: "u", OrgID: "org", Role: "staff", IP: netip.MustParseAddr("203.0.113.20"), Device: "dev-u", UserAgent: chrome}, risk.Succeeded)
	d := e.Assess(ctx, risk.Attempt{Time: last.Add(40 * time.Minute), UserID: "u", OrgID: "org", Role: "staff", IP: netip.MustParseAddr("2001:db8:1::1"), UserAgent: chrome})
	if d.Verdict == risk.Allow || !strings.Contains(strings.Join(d.Reasons, ";"), "impossible travel") {
		t.Errorf("Leeds then Ashburn 40 minutes later: %s %v %q", d.Verdict, d.Score, d.Reasons)
	}
}

type policyStore struct {
	*risk.MemStore
	p directory.RiskPolicy
}

func (s policyStore) RiskPolicy(context.Context, string) (directory.RiskPolicy, error) {
	return s.p, nil
}

func TestOrganisationsMayOnlyTighten(t *testing.T) {
	n := risk.DefaultThresholds
	for _, c := range []struct {
		p    directory.RiskPolicy
		want risk.Thresholds
	}{
		{directory.RiskPolicy{}, n},
		{directory.RiskPolicy{StepUp: 3}, risk.Thresholds{StepUp: 3, Block: n.Block}},
		{directory.RiskPolicy{StepUp: 99, Block: 99}, n},
		{directory.RiskPolicy{Block: 10}, risk.Thresholds{StepUp: n.StepUp, Block: 10}},
	} {
		if got := n.Tighten(c.p); got != c.want {
			t.Errorf("Tighten(%+v) = %+v, want %+v", c.p, got, c.want)
		}
	}
	// The engine applies the organisation's thresholds.
	strict := risk.New(risk.Config{}, policyStore{risk.NewMemStore(), directory.RiskPolicy{StepUp: 0.1, Block: 0.2}}, mem.New(1000), nil, nil, nil)
	d := strict.Assess(t.Context(), risk.Attempt{Time: time.Now(), UserID: "u", OrgID: "org", IP: netip.MustParseAddr("192.0.2.1")})
	if d.Verdict != risk.Block {
		t.Errorf("with a 0.2-bit block threshold: %s %v", d.Verdict, d.Score)
	}
}

func TestParseEvent(t *testing.T) {
	for _, c := range []struct {
		line, want string
	}{
		{`{"time":"2031-03-04T05:06:07Z","user":"u","ip":"192.0.2.1","outcome":"success"}`, ""},
		{`{"time":"2031-03-04T05:06:07+01:00","user":"u","ip":"2001:db8::1","outcome":"failure","second_factor":"fail","new":[1]}`, ""},
		{`{"user":"u","ip":"192.0.2.1","outcome":"success"}`, `"time"`},
		{`{"time":"yesterday","user":"u","ip":"192.0.2.1","outcome":"success"}`, "JSON"},
		{`{"time":"2031-03-04T05:06:07Z","ip":"192.0.2.1","outcome":"success"}`, `"user"`},
		{`{"time":"2031-03-04T05:06:07Z","user":"u","ip":"nope","outcome":"success"}`, `"ip"`},
		{`{"time":"2031-03-04T05:06:07Z","user":"u","ip":"192.0.2.1","outcome":"maybe"}`, `"outcome"`},
		{`{"time":"2031-03-04T05:06:07Z","user":"u","ip":"192.0.2.1","outcome":"success","second_factor":"yes"}`, `"second_factor"`},
		{`[1,2]`, "JSON"},
	} {
		_, err := risk.ParseEvent([]byte(c.line))
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("ParseEvent(%s) = %v, want error mentioning %q", c.line, err, c.want)
		}
	}
}

func TestReplayOrderAndOutput(t *testing.T) {
	e, _ := world(t, nil, nil)
	in := `{"time":"2031-03-04T05:06:07Z","user":"u","ip":"192.0.2.1","outcome":"success"}
{"time":"2031-03-04T05:06:06Z","user":"u","ip":"192.0.2.1","outcome":"success"}
`
	var out strings.Builder
	n, err := e.Replay(t.Context(), strings.NewReader(in), &out)
	if n != 1 || err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "time order") {
		t.Errorf("Replay backwards = %d, %v; want 1 and an error naming line 2", n, err)
	}
	if !strings.HasPrefix(out.String(), `{"decision":"`) || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("output %q: want the first decision, flushed", out.String())
	}
}
