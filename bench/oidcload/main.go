// Command oidcload measures Lanyard end to end over HTTP, for the figures
// of issue 4: browser-style logins per second next to the raw argon2id
// verification rate, and refresh-token grants per second next to the cost
// of one RS256 signature.
//
// It starts a full server in process (server.Open, as cmd/idp does) on a
// fresh data folder and a loopback port, registers an organisation, a user
// and a confidential client, and drives it with a scripted browser (cookie
// jar, one redirect at a time) and an x/oauth2 relying party using PKCE.
// All traffic stays on 127.0.0.1.
//
//	go run ./bench/oidcload [-backend sqlite|postgres] [-duration 10s] [-concurrency 1,2,4] [-mode login|refresh|all] [-bare]
//
// With -bare it also measures bare.go, the least any provider must do for
// the same flows, to show what this machine allows.
//
// With -backend postgres the directory goes to a fresh schema of the
// database named by LANYARD_TEST_POSTGRES and ephemeral state to the Redis
// named by LANYARD_TEST_REDIS under a fresh key prefix; both are removed
// at the end.
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
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "oidcload:", err)
		os.Exit(1)
	}
}

type options struct {
	backend     string
	duration    time.Duration
	concurrency []int
	mode        string
	maxOps      int
	cpuProfile  string
	bare        bool
	postgresURL string
	redisURL    string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("oidcload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.backend, "backend", "sqlite", "storage: sqlite (SQLite file + in-process ephemeral store) or postgres (PostgreSQL + Redis)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "time limit of each measurement")
	conc := fs.String("concurrency", "1,2,4", "comma-separated numbers of concurrent workers")
	fs.StringVar(&o.mode, "mode", "all", "what to measure: login, refresh or all")
	fs.IntVar(&o.maxOps, "max", 100_000, "operation limit of each measurement")
	fs.BoolVar(&o.bare, "bare", false, "also measure the bare server (bare.go: the least any provider must do for the same flow) at each concurrency, between the same ceiling halves")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of each login and refresh measurement (server and load generator) to `PREFIX`.login-c1.pprof and so on")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []string
	switch o.backend {
	case "sqlite":
	case "postgres":
		// The test command's variables name the loopback backends; this is
		// a command, like cmd/idp, so it may read them.
		o.postgresURL, o.redisURL = os.Getenv("LANYARD_TEST_POSTGRES"), os.Getenv("LANYARD_TEST_REDIS")
		if o.postgresURL == "" || o.redisURL == "" {
			errs = append(errs, "-backend postgres: LANYARD_TEST_POSTGRES and LANYARD_TEST_REDIS must both be set")
		}
	default:
		errs = append(errs, fmt.Sprintf("-backend: must be sqlite or postgres, got %q", o.backend))
	}
	if o.mode != "login" && o.mode != "refresh" && o.mode != "all" {
		errs = append(errs, fmt.Sprintf("-mode: must be login, refresh or all, got %q", o.mode))
	}
	if o.duration <= 0 {
		errs = append(errs, fmt.Sprintf("-duration: must be positive, got %s", o.duration))
	}
	if o.maxOps < 1 {
		errs = append(errs, fmt.Sprintf("-max: must be at least 1, got %d", o.maxOps))
	}
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 256 {
			errs = append(errs, fmt.Sprintf("-concurrency: each must be from 1 to 256, got %q", s))
			continue
		}
		o.concurrency = append(o.concurrency, n)
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	printMachine(stdout, o)

	t, err := startTarget(ctx, o, log)
	if err != nil {
		return err
	}
	defer t.close()
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }

	// profiled runs fn under a CPU profile of its own (server and load
	// generator alike) when -cpuprofile is set, leaving the ceilings out.
	profiled := func(name string, fn func() (result, error)) (result, error) {
		if o.cpuProfile == "" {
			return fn()
		}
		path := fmt.Sprintf("%s.%s.pprof", o.cpuProfile, name)
		f, err := os.Create(path)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return result{}, err
		}
		defer progress("CPU profile written to %s", path)
		defer pprof.StopCPUProfile()
		return fn()
	}

	// Others may share the machine, so each ceiling is measured in two
	// halves, just before and just after the measurement it bounds.
	limit := limits{duration: o.duration, maxOps: o.maxOps}
	half := limits{duration: o.duration / 2, maxOps: max(1, o.maxOps/2)}
	bracket := func(c int, name string, ceiling func(context.Context, int, limits) (result, error), ops ...func() (result, error)) (ceil result, rs []result, err error) {
		progress("%s, concurrency %d…", name, c)
		before, err := ceiling(ctx, c, half)
		if err != nil {
			return ceil, nil, err
		}
		for _, op := range ops {
			r, err := op()
			if err != nil {
				return ceil, nil, err
			}
			rs = append(rs, r)
		}
		after, err := ceiling(ctx, c, half)
		return merge(before, after), rs, err
	}
	targets := []*target{t}
	if o.bare {
		b, err := startBare(ctx, t.tr)
		if err != nil {
			return err
		}
		defer b.close()
		targets = append(targets, b)
	}
	profileName := func(kind string, t *target, c int) string {
		if t != targets[0] {
			kind += "-bare"
		}
		return fmt.Sprintf("%s-c%d", kind, c)
	}
	if o.mode == "login" || o.mode == "all" {
		var ceiling []result
		logins := make([][]result, len(targets))
		for _, c := range o.concurrency {
			var ops []func() (result, error)
			for _, t := range targets {
				ops = append(ops, func() (result, error) {
					r, err := profiled(profileName("login", t, c), func() (result, error) { return measure(ctx, c, limit, t.loginOp) })
					if err != nil {
						return r, fmt.Errorf("login on %s: %w", t.name, err)
					}
					return r, nil
				})
			}
			ceil, rs, err := bracket(c, "argon2id verify / login / argon2id verify", measureVerify, ops...)
			if err != nil {
				return err
			}
			ceiling = append(ceiling, ceil)
			for i, r := range rs {
				logins[i] = append(logins[i], r)
			}
		}
		printTable(stdout, fmt.Sprintf("argon2id verifications (m=%d KiB, t=%d, p=%d), the ceiling for logins",
			t.srv.Config.Password.MemoryKiB, t.srv.Config.Password.Iterations, t.srv.Config.Password.Parallelism), ceiling, nil)
		for i, t := range targets {
			printTable(stdout, fmt.Sprintf("full logins on %s: authorize, email page, password page, code, token exchange (goal: ≥ 85%% of the ceiling)",
				t.name), logins[i], ceiling)
		}
	}
	if o.mode == "refresh" || o.mode == "all" {
		var ceiling []result
		grants := make([][]result, len(targets))
		for _, c := range o.concurrency {
			var ops []func() (result, error)
			for _, t := range targets {
				// One login per worker, before anything is timed.
				op, err := t.refreshOp(ctx, c)
				if err != nil {
					return fmt.Errorf("refresh setup on %s: %w", t.name, err)
				}
				ops = append(ops, func() (result, error) {
					r, err := profiled(profileName("refresh", t, c), func() (result, error) { return measure(ctx, c, limit, op) })
					if err != nil {
						return r, fmt.Errorf("refresh on %s: %w", t.name, err)
					}
					return r, nil
				})
			}
			ceil, rs, err := bracket(c, "RS256 sign / refresh / RS256 sign", measureSign, ops...)
			if err != nil {
				return err
			}
			ceiling = append(ceiling, ceil)
			for i, r := range rs {
				grants[i] = append(grants[i], r)
			}
		}
		printTable(stdout, "RS256 signatures of a typical ID token (2048-bit key, go-jose), the ceiling for refreshes", ceiling, nil)
		for i, t := range targets {
			printTable(stdout, fmt.Sprintf("refresh-token grants on %s, token endpoint latency (goal: ≥ 80%% of the ceiling)", t.name), grants[i], ceiling)
		}
	}
	fmt.Fprintf(stdout, "\nload average after the run: %s\n", loadavg())
	return nil
}

func printMachine(w io.Writer, o options) {
	fmt.Fprintf(w, "machine: %d CPUs, GOMAXPROCS %d, %s, %s %s/%s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "load average before the run: %s\n", loadavg())
	fmt.Fprintf(w, "backend %s, mode %s, each measurement: %s or %d operations, concurrency %v\n",
		o.backend, o.mode, o.duration, o.maxOps, o.concurrency)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "CPU model unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "CPU model unknown"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
