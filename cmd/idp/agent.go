package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/lanyard/lanyard/authn/password"
	"github.com/lanyard/lanyard/directory/adsync"
)

const agentUsage = `usage:
  idp agent --config agent.yaml          run the AD password sync agent
  idp agent capture --config agent.yaml  the DC's password hook: new password on stdin,
                                         SAMBA_CPS_ACCOUNT_NAME, SAMBA_CPS_USER_PRINCIPAL_NAME,
                                         SAMBA_CPS_FULL_NAME in the environment; exit 0 accepts
  idp agent keygen --out DIR             write DIR/agent.key (0600) and DIR/agent.pub`

// agent runs `idp agent` and its subcommands.
func (e env) agent(ctx context.Context, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "capture":
			return e.agentCapture(ctx, args[1:])
		case "keygen":
			return e.agentKeygen(args[1:])
		case "help", "-h", "--help":
			fmt.Fprintln(e.stdout, agentUsage)
			return nil
		}
	}
	cfg, err := e.agentConfig("agent", args)
	if err != nil {
		return err
	}
	log := newLogger(e.stderr, cfg.LogLevel)
	a, l, err := adsync.OpenAgent(cfg, log)
	if err != nil {
		return usageErr("agent: %v", err)
	}
	defer l.Close()
	log.Info("agent started", "lanyard", cfg.Lanyard.URL, "ad", cfg.AD.URL, "state_dir", cfg.StateDir)
	return a.Run(ctx)
}

// agentConfig parses --config and loads agent.yaml.
func (e env) agentConfig(name string, args []string) (adsync.AgentConfig, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "agent.yaml")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(e.stdout, agentUsage)
			return adsync.AgentConfig{}, &exitError{0, err}
		}
		return adsync.AgentConfig{}, usageErr("%s: %v", name, err)
	}
	if fs.NArg() > 0 {
		return adsync.AgentConfig{}, usageErr("%s: unexpected argument %q", name, fs.Arg(0))
	}
	if *path == "" {
		return adsync.AgentConfig{}, usageErr("%s: --config agent.yaml is required", name)
	}
	cfg, err := adsync.LoadAgentConfig(*path)
	if err != nil {
		return cfg, usageErr("%v", err)
	}
	return cfg, nil
}

// agentCapture is the DC's password hook. It must answer quickly: the DC
// waits for it (and kills it after 10 s).
func (e env) agentCapture(ctx context.Context, args []string) error {
	start := time.Now()
	cfg, err := e.agentConfig("agent capture", args)
	if err != nil {
		return err
	}
	// The DC keeps the hook's stderr; a refusal is the one line the command
	// contract promises, and the details only at log_level debug.
	log := slog.New(slog.DiscardHandler)
	if cfg.LogLevel == "debug" {
		log = newLogger(e.stderr, cfg.LogLevel)
	}
	in := adsync.CaptureInput{}
	for _, kv := range e.environ {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "SAMBA_CPS_ACCOUNT_NAME":
			in.SAM = v
		case "SAMBA_CPS_USER_PRINCIPAL_NAME":
			in.UPN = v
		case "SAMBA_CPS_FULL_NAME":
			in.FullName = v
		}
	}
	pw, err := io.ReadAll(io.LimitReader(e.stdin, 4*password.MaxLength+1))
	if err != nil {
		return fmt.Errorf("agent capture: read password: %w", err)
	}
	if len(pw) > 4*password.MaxLength {
		return &exitError{1, errors.New("agent capture: password refused: too long")}
	}
	in.Password = string(pw)
	keys, err := adsync.LoadKeyFile(cfg.KeyFile)
	if err != nil {
		return usageErr("agent capture: %v", err)
	}
	hc, err := adsync.LanyardHTTPClient(cfg, cfg.Policy.CheckTimeout)
	if err != nil {
		return usageErr("agent capture: %v", err)
	}
	cl, err := adsync.NewClient(cfg.Lanyard.URL, keys, hc)
	if err != nil {
		return usageErr("agent capture: %v", err)
	}
	res, err := adsync.Capture(ctx, cfg, keys, cl, in, time.Now(), log)
	if err != nil {
		return fmt.Errorf("agent capture: %w", err)
	}
	log.Debug("password hook", "sam", in.SAM, "decision", res.Decision, "accepted", res.Accepted,
		"candidate", res.CandidateID, "ms", time.Since(start).Milliseconds())
	if !res.Accepted {
		return &exitError{1, fmt.Errorf("agent capture: password refused (%s): %s", res.Decision, strings.Join(res.Reasons, "; "))}
	}
	return nil
}

// agentKeygen writes a new pair of agent keys.
func (e env) agentKeygen(args []string) error {
	fs := flag.NewFlagSet("agent keygen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.String("out", "", "folder for agent.key and agent.pub")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(e.stdout, agentUsage)
			return &exitError{0, err}
		}
		return usageErr("agent keygen: %v", err)
	}
	if *out == "" || fs.NArg() > 0 {
		return usageErr("agent keygen: want --out DIR")
	}
	key, pub, id, err := adsync.WriteKeys(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote %s (private, keep it on the agent) and %s (give it to `idp admin agent create --public-key`); agent id %s\n", key, pub, id)
	return nil
}
