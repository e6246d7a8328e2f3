package server_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanyard/lanyard/cmd/idp/server"
)

func TestRiskConfig(t *testing.T) {
	c := server.Defaults()
	c.Resolve()
	if err := c.ApplyEnv([]string{"LANYARD_RISK_STEP_UP=5.5", "LANYARD_RISK_BLOCK=12"}); err != nil {
		t.Fatal(err)
	}
	if c.Risk.StepUp != 5.5 || c.Risk.Block != 12 {
		t.Errorf("from the environment: %+v", c.Risk)
	}
	if err := c.ApplyEnv([]string{"LANYARD_RISK_STEP_UP=lots"}); err == nil || !strings.Contains(err.Error(), "LANYARD_RISK_STEP_UP: want a number") {
		t.Errorf("bad number: %v", err)
	}
	c.GeoIPDB = filepath.Join(t.TempDir(), "missing.mmdb")
	c.Risk.Anonymisers = filepath.Join(t.TempDir(), "missing.txt")
	c.Risk.StepUp, c.Risk.Block, c.Risk.HalfLife, c.Risk.TimeZone, c.Risk.DigestInterval = 0, -1, 0, "Mars/Olympus", 0
	err := c.Validate()
	for _, want := range []string{"geoip_db: must be a readable file", "risk.anonymisers: must be a readable file", "risk.step_up:",
		"risk.block:", "risk.half_life:", "risk.time_zone:", "risk.digest_interval:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to report %q", err, want)
		}
	}
}

// TestOpenCorruptGeoIP: a corrupt database stops the start with a setup
// error (exit 2) naming the setting and the file.
func TestOpenCorruptGeoIP(t *testing.T) {
	dir := t.TempDir()
	c := server.Defaults()
	c.Data = dir
	c.Resolve()
	c.GeoIPDB = filepath.Join(dir, "geo.mmdb")
	os.WriteFile(c.GeoIPDB, []byte("\xab\xcd\xefMaxMind.com\xe0not really"), 0o600)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := server.Open(t.Context(), c, slog.New(slog.DiscardHandler), server.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open with a corrupt geoip_db succeeded")
	}
	if !errors.Is(err, server.ErrSetup) || !strings.Contains(err.Error(), "geoip_db") || !strings.Contains(err.Error(), c.GeoIPDB) {
		t.Errorf("Open = %v; want a setup error naming geoip_db and the file", err)
	}
}
