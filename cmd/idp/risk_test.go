package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanyard/lanyard/risk/geotest"
)

func writeGeo(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "geo.mmdb")
	if err := geotest.WriteFile(p, []geotest.Network{
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Country: "GB", City: "Leeds", Lat: 53.8, Lon: -1.55, ASN: 64600, ASOrg: "HSCN"},
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: "FR", City: "Paris", Lat: 48.86, Lon: 2.35, ASN: 64900, ASOrg: "Hosting FR"},
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRiskReplay: the replay reads events, writes one decision per event,
// learns from successes, and reports bad input and bad files clearly.
func TestRiskReplay(t *testing.T) {
	dir := t.TempDir()
	geo := writeGeo(t, dir)
	anon := filepath.Join(dir, "anon.txt")
	os.WriteFile(anon, []byte("# VPN exits\n192.0.2.0/24\n"), 0o600)
	var in strings.Builder
	day := time.Date(2031, time.March, 3, 9, 0, 0, 0, time.UTC)
	for d := range 20 {
		fmt.Fprintf(&in, `{"time":%q,"user":"u1","org":"RRK","role":"staff","ip":"203.0.113.5","device":"pc-1","ua":"Mozilla/5.0 (Windows NT 10.0) Chrome/124.0","tz":"Europe/London","outcome":"success","second_factor":"pass","extra":1}`+"\n",
			day.AddDate(0, 0, d).Format(time.RFC3339))
	}
	last := day.AddDate(0, 0, 20).Add(-6 * time.Hour) // 03:00
	fmt.Fprintf(&in, `{"time":%q,"user":"u1","org":"RRK","role":"staff","ip":"198.51.100.9","device":"x","ua":"python-requests/2.31","tz":"Europe/London","outcome":"success","second_factor":"fail"}`+"\n",
		last.Format(time.RFC3339))
	fmt.Fprintf(&in, `{"time":%q,"user":"u1","org":"RRK","role":"staff","ip":"203.0.113.5","device":"pc-1","ua":"Mozilla/5.0 (Windows NT 10.0) Chrome/124.0","tz":"Europe/London","outcome":"success","second_factor":"pass"}`+"\n",
		last.Add(6*time.Hour).Format(time.RFC3339))
	r := idp(t, dir, in.String(), nil, "risk", "replay", "--geoip", geo, "--anonymisers", anon)
	if r.code != 0 {
		t.Fatalf("replay: exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 22 {
		t.Fatalf("%d output lines for 22 events", len(lines))
	}
	type out struct {
		Decision string   `json:"decision"`
		Score    *float64 `json:"score"`
		Reasons  []string `json:"reasons"`
	}
	var got []out
	for i, l := range lines {
		var o out
		if err := json.Unmarshal([]byte(l), &o); err != nil || o.Score == nil || o.Reasons == nil {
			t.Fatalf("line %d %q: %v (want decision, score, reasons)", i+1, l, err)
		}
		got = append(got, o)
	}
	if got[19].Decision != "allow" || got[21].Decision != "allow" {
		t.Errorf("usual sign-ins: %+v, %+v; want allow", got[19], got[21])
	}
	if a := got[20]; a.Decision == "allow" || !strings.Contains(strings.Join(a.Reasons, "; "), "FR") {
		t.Errorf("03:00 from a Paris host with a script: %+v; want stepped up or blocked, naming FR", a)
	}

	wantFail(t, idp(t, dir, "", nil, "risk", "replay"), 2, "--geoip FILE.mmdb is required")
	wantFail(t, idp(t, dir, "", nil, "risk", "replay", "--geoip", filepath.Join(dir, "missing.mmdb")), 2, "missing.mmdb")
	corrupt := filepath.Join(dir, "corrupt.mmdb")
	os.WriteFile(corrupt, []byte("not a MaxMind database"), 0o600)
	wantFail(t, idp(t, dir, "", nil, "risk", "replay", "--geoip", corrupt), 2, "corrupt.mmdb")
	wantFail(t, idp(t, dir, `{"time":"yesterday","user":"u1","ip":"203.0.113.5","outcome":"success"}`+"\n", nil, "risk", "replay", "--geoip", geo), 1, "line 1")
	bad := lines[0] // not an event: no time
	wantFail(t, idp(t, dir, in.String()[:strings.Index(in.String(), "\n")+1]+bad+"\n", nil, "risk", "replay", "--geoip", geo), 1, "line 2")
	wantFail(t, idp(t, dir, "", nil, "risk", "replay", "--geoip", geo, "--anonymisers", geo), 2, "anonymisers")
	wantFail(t, idp(t, dir, "", nil, "risk", "nonsense"), 2, "risk replay --geoip")
}

// TestServeBadGeoIP: a missing geoip_db fails the configuration check and
// a corrupt one fails the start, each with one clear line and exit 2.
func TestServeBadGeoIP(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	wantFail(t, idp(t, dir, "", []string{"LANYARD_GEOIP_DB=" + filepath.Join(dir, "nope.mmdb")}, "check-config", "--data", data), 2,
		"geoip_db: must be a readable file")
	corrupt := filepath.Join(dir, "corrupt.mmdb")
	os.WriteFile(corrupt, []byte("\xab\xcd\xefMaxMind.com truncated"), 0o600)
	wantFail(t, idp(t, dir, "", []string{"LANYARD_GEOIP_DB=" + corrupt}, "serve", "--data", data, "--addr", "127.0.0.1:0"), 2,
		"geoip_db: geoip database "+corrupt)
}
