package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/lanyard/lanyard/directory/ephemeral/mem"
	"github.com/lanyard/lanyard/risk"
)

const riskUsage = `usage:
  idp risk replay --geoip FILE.mmdb [--asn FILE.mmdb] [--anonymisers FILE] < events.jsonl > decisions.jsonl`

// risk runs `idp risk …`.
func (e env) risk(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "replay" {
		return usageErr("%s", riskUsage)
	}
	fs := flag.NewFlagSet("risk replay", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	geoPath := fs.String("geoip", "", "MaxMind-format database (.mmdb) with countries, cities and locations")
	asnPath := fs.String("asn", "", "optional second database with network operators (ASN)")
	anonPath := fs.String("anonymisers", "", "optional file of anonymising networks' ranges, one CIDR a line")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(e.stdout, riskUsage)
			return nil
		}
		return usageErr("risk replay: %v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("risk replay: unexpected argument %q", fs.Arg(0))
	}
	if *geoPath == "" {
		return usageErr("risk replay: --geoip FILE.mmdb is required")
	}
	paths := []string{*geoPath}
	if *asnPath != "" {
		paths = append(paths, *asnPath)
	}
	geo, err := risk.OpenGeoIP(paths...)
	if err != nil {
		return usageErr("risk replay: %v", err)
	}
	defer geo.Close()
	var anon *risk.Anonymisers
	if *anonPath != "" {
		f, err := os.Open(*anonPath)
		if err != nil {
			return usageErr("risk replay: --anonymisers: %v", err)
		}
		anon, err = risk.LoadAnonymisers(f)
		f.Close()
		if err != nil {
			return usageErr("risk replay: --anonymisers %s: %v", *anonPath, err)
		}
	}
	// A fresh in-memory profile store and counters: the replay learns only
	// from the events it is given.
	eng := risk.New(risk.Config{}, risk.NewMemStore(), mem.New(50_000_000), geo, anon, nil)
	start := time.Now()
	n, err := eng.Replay(ctx, e.stdin, e.stdout)
	if err != nil {
		return fmt.Errorf("risk replay: %w", err)
	}
	fmt.Fprintf(e.stderr, "idp: risk replay: %d events in %s\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}
