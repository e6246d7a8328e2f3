package server

import (
	"context"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/lanyard/lanyard/risk"
)

// RiskConfig configures the behavioural risk engine (docs/risk.md). The
// GeoIP database is the top-level geoip_db.
type RiskConfig struct {
	// Anonymisers is an optional file of address ranges of anonymising
	// networks (VPNs, relays, Tor exits), one CIDR a line.
	Anonymisers string `yaml:"anonymisers"`
	// ASNDB is an optional second MaxMind-format database with network
	// operators (GeoLite2-ASN) when geoip_db has none.
	ASNDB string `yaml:"asn_db"`
	// StepUp and Block are the national thresholds, in bits; organisations
	// may only lower them.
	StepUp float64 `yaml:"step_up"`
	Block  float64 `yaml:"block"`
	// HalfLife is how fast old habits fade from profiles.
	HalfLife time.Duration `yaml:"half_life"`
	// TimeZone is the users' zone, for their hours of the week.
	TimeZone string `yaml:"time_zone"`
	// DigestInterval is how often administrators get a digest of risk events.
	DigestInterval time.Duration `yaml:"digest_interval"`
}

// DefaultRisk returns the risk engine's defaults.
func DefaultRisk() RiskConfig {
	return RiskConfig{
		StepUp: risk.DefaultThresholds.StepUp, Block: risk.DefaultThresholds.Block,
		HalfLife: 30 * 24 * time.Hour, TimeZone: "Europe/London", DigestInterval: 24 * time.Hour,
	}
}

// validate returns every problem with the risk settings and geoip_db.
func (c *RiskConfig) validate(geoipDB string) []error {
	var errs []error
	bad := func(key, rule string, got any) {
		errs = append(errs, fmt.Errorf("%s: %s, got %q", key, rule, fmt.Sprint(got)))
	}
	for _, f := range []struct{ key, path string }{{"geoip_db", geoipDB}, {"risk.asn_db", c.ASNDB}, {"risk.anonymisers", c.Anonymisers}} {
		if f.path == "" {
			continue
		}
		if fi, err := os.Stat(f.path); err != nil || !fi.Mode().IsRegular() {
			bad(f.key, "must be a readable file", f.path)
		}
	}
	if c.ASNDB != "" && geoipDB == "" {
		bad("risk.asn_db", "needs geoip_db as well", c.ASNDB)
	}
	if c.StepUp <= 0 || c.StepUp > 100 || math.IsNaN(c.StepUp) {
		bad("risk.step_up", "must be from 0 (exclusive) to 100", c.StepUp)
	}
	if c.Block <= c.StepUp || c.Block > 200 || math.IsNaN(c.Block) {
		bad("risk.block", "must be above risk.step_up and at most 200", c.Block)
	}
	if c.HalfLife < 24*time.Hour || c.HalfLife > 365*24*time.Hour {
		bad("risk.half_life", "must be from 24h to 8760h", c.HalfLife)
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil || c.TimeZone == "" {
		bad("risk.time_zone", "must be an IANA time zone such as Europe/London", c.TimeZone)
	}
	if c.DigestInterval < time.Hour || c.DigestInterval > 7*24*time.Hour {
		bad("risk.digest_interval", "must be from 1h to 168h", c.DigestInterval)
	}
	return errs
}

// OpenRisk opens the GeoIP databases and the anonymiser list the
// configuration names. A missing or corrupt file is an error wrapping
// ErrSetup that names it. Without geoip_db the engine works without
// location. Close the returned GeoIP when done.
func OpenRisk(cfg Config) (*risk.GeoIP, *risk.Anonymisers, error) {
	var geo *risk.GeoIP
	if cfg.GeoIPDB != "" {
		paths := []string{cfg.GeoIPDB}
		if cfg.Risk.ASNDB != "" {
			paths = append(paths, cfg.Risk.ASNDB)
		}
		var err error
		if geo, err = risk.OpenGeoIP(paths...); err != nil {
			return nil, nil, setupErr("geoip_db: %w", err)
		}
	}
	var anon *risk.Anonymisers
	if cfg.Risk.Anonymisers != "" {
		f, err := os.Open(cfg.Risk.Anonymisers)
		if err != nil {
			geo.Close()
			return nil, nil, setupErr("risk.anonymisers: %w", err)
		}
		anon, err = risk.LoadAnonymisers(f)
		f.Close()
		if err != nil {
			geo.Close()
			return nil, nil, setupErr("risk.anonymisers %s: %w", cfg.Risk.Anonymisers, err)
		}
	}
	return geo, anon, nil
}

// newRisk builds the engine over the server's stores.
func (s *Server) newRisk() error {
	var err error
	if s.Geo, s.anon, err = OpenRisk(s.Config); err != nil {
		return err
	}
	rc := s.Config.Risk
	s.Risk = risk.New(risk.Config{
		Thresholds: risk.Thresholds{StepUp: rc.StepUp, Block: rc.Block}, HalfLife: rc.HalfLife, TimeZone: rc.TimeZone,
	}, s.Directory, s.Ephemeral, s.Geo, s.anon, s.Log)
	return nil
}

// riskLoop sends administrators' risk digests when they fall due and, at
// shutdown, saves what the engine learnt of populations.
func (s *Server) riskLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.Risk.Flush(fctx, s.Now()); err != nil {
				s.Log.Warn("risk: save populations", "reason", err.Error())
			}
			cancel()
			return
		case <-t.C:
			if n, err := s.Authn.SendRiskDigests(ctx); err != nil {
				s.Log.Error("risk digests", "reason", err.Error())
			} else if n > 0 {
				s.Log.Info("risk digests sent", "count", n)
			}
		}
	}
}
