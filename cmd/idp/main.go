// Command idp is Lanyard, the identity provider of the national health and
// care directory. It parses the command line and configuration and wires
// the packages together; see `idp help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/lanyard/lanyard/cmd/idp/server"
	"github.com/lanyard/lanyard/directory"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage:
  idp serve   [--config F] [--addr 127.0.0.1:8080] [--issuer URL] [--data DIR] [--database URL] [--redis URL] [--demo]
  idp migrate [--config F] [--data DIR] [--database URL]
  idp check-config [--config F] [serve flags]
  idp admin org create    --ods CODE --name NAME [--json]
  idp admin user create   --org CODE --email EMAIL --name "Given Family" [--password-stdin] [--role org-admin] [--json]
  idp admin client create --org CODE --name NAME --redirect-uri URI [--redirect-uri URI…] [--post-logout-redirect-uri URI…] [--public] [--json]
  idp admin sp create     --org CODE --metadata FILE_OR_URL [--name NAME] [--nameid persistent|email] [--attribute A…] [--json]
  idp admin org policy    --ods CODE [--min-length N] [--history N] [--max-age-days N] [--banned-term T…] [--require-mfa]
  idp admin org risk      --ods CODE [--step-up BITS] [--block BITS] [--json]
  idp admin agent create  --org CODE --public-key FILE [--json]   (also: agent list, unmatched, disable)
  idp admin audit verify  [--json]
  idp admin masterkey rotate
  idp agent [keygen|capture] --config agent.yaml
  idp risk replay --geoip FILE.mmdb [--asn FILE.mmdb] [--anonymisers FILE] < events.jsonl
  idp version
admin commands also take --config, --data and --database.`

// exitError carries an exit code: 2 for usage and configuration, 1 otherwise.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{2, fmt.Errorf(format, a...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Environ())
	stop()
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
	case errors.Is(err, server.ErrSetup), errors.Is(err, directory.ErrInvalid),
		errors.Is(err, directory.ErrConflict), errors.Is(err, directory.ErrNotFound):
		code = 2
	}
	if !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "idp: "+oneLine(err))
	}
	os.Exit(code)
}

// oneLine joins a multi-line error (errors.Join of every config problem,
// a driver's indented detail) into the one line the command-line contract
// promises.
func oneLine(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "; ")
}

type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, environ []string) error {
	e := env{stdin, stdout, stderr, environ}
	if len(args) == 0 {
		return usageErr("no command given; `idp help` lists them")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return e.serve(ctx, rest)
	case "migrate":
		return e.migrate(ctx, rest)
	case "check-config":
		return e.checkConfig(rest)
	case "admin":
		return e.admin(ctx, rest)
	case "agent":
		return e.agent(ctx, rest)
	case "risk":
		return e.risk(ctx, rest)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		return usageErr("unknown command %q; `idp help` lists them", cmd)
	}
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("idp %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// configFlags are the flags that override configuration settings.
type configFlags struct {
	fs         *flag.FlagSet
	configFile string
	set        map[string]*string
}

// newFlags returns a flag set with --config and the named settings
// ("addr", "issuer", "data", "database", "redis").
func newFlags(name string, settings ...string) *configFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cf := &configFlags{fs: fs, set: map[string]*string{}}
	fs.StringVar(&cf.configFile, "config", "", "YAML configuration file")
	help := map[string]string{
		"addr": "listen address", "issuer": "public base URL", "data": "data folder",
		"database": "sqlite:PATH or postgres:// URL", "redis": "redis:// URL (empty: in-process)",
	}
	for _, s := range settings {
		cf.set[s] = fs.String(s, "", help[s])
	}
	return cf
}

func (cf *configFlags) parse(args []string) error {
	if err := cf.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &exitError{0, err}
		}
		return usageErr("%s: %v", cf.fs.Name(), err)
	}
	if cf.fs.NArg() > 0 {
		return usageErr("%s: unexpected argument %q", cf.fs.Name(), cf.fs.Arg(0))
	}
	return nil
}

// load builds the configuration: defaults, the YAML file, LANYARD_*
// variables, then the flags given on the command line.
func (cf *configFlags) load(environ []string) (server.Config, error) {
	cfg := server.Defaults()
	if cf.configFile != "" {
		f, err := os.Open(cf.configFile)
		if err != nil {
			return cfg, usageErr("config: %v", err)
		}
		err = cfg.LoadYAML(f)
		f.Close()
		if err != nil {
			return cfg, usageErr("config %s: %v", cf.configFile, err)
		}
	}
	if err := cfg.ApplyEnv(environ); err != nil {
		return cfg, usageErr("environment: %v", err)
	}
	cf.fs.Visit(func(f *flag.Flag) {
		switch v := f.Value.String(); f.Name {
		case "addr":
			cfg.Addr = v
		case "issuer":
			cfg.Issuer = v
		case "data":
			cfg.Data = v
		case "database":
			cfg.Database = v
		case "redis":
			cfg.Redis = v
		}
	})
	cfg.Resolve()
	if err := cfg.Validate(); err != nil {
		return cfg, usageErr("invalid configuration: %v", err)
	}
	return cfg, nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
