package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/lanyard/lanyard/cmd/idp/server"
)

func (e env) serve(ctx context.Context, args []string) error {
	cf := newFlags("serve", "addr", "issuer", "data", "database", "redis")
	demo := cf.fs.Bool("demo", false, "create a demo organisation, user and client once and print them")
	if err := cf.parse(args); err != nil {
		return err
	}
	cfg, err := cf.load(e.environ)
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, cfg.LogLevel)
	// Libraries that log through the default logger (zitadel/oidc) log as
	// JSON lines too.
	slog.SetDefault(log)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	if strings.HasSuffix(cfg.Addr, ":0") && cfg.Issuer == "http://"+cfg.Addr {
		cfg.Issuer = "http://" + ln.Addr().String() // a port chosen by the system
	}
	s, err := server.Open(ctx, cfg, log, server.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	if s.KeyCreated {
		log.Warn("created a new master key file; back it up, without it sealed secrets cannot be read", "path", cfg.MasterKeyFile)
	}
	if *demo {
		d, created, err := s.SeedDemo(ctx)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if created {
			fmt.Fprint(e.stdout, "Created demo data.\n")
		}
		fmt.Fprint(e.stdout, d.String())
	}
	fmt.Fprintf(e.stdout, "Lanyard %s listening on %s (issuer %s)\n", version, ln.Addr(), cfg.Issuer)
	log.Info("listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer)
	return s.Serve(ctx, ln)
}

func (e env) migrate(ctx context.Context, args []string) error {
	cf := newFlags("migrate", "data", "database")
	if err := cf.parse(args); err != nil {
		return err
	}
	cfg, err := cf.load(e.environ)
	if err != nil {
		return err
	}
	st, n, err := server.OpenDirectory(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(e.stdout, "applied %d migrations; database is up to date\n", n)
	return nil
}

func (e env) checkConfig(args []string) error {
	cf := newFlags("check-config", "addr", "issuer", "data", "database", "redis")
	if err := cf.parse(args); err != nil {
		return err
	}
	if _, err := cf.load(e.environ); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "configuration is valid")
	return nil
}
