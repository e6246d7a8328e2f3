package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lanyard/lanyard/cmd/idp/server"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/adsync"
	"github.com/lanyard/lanyard/directory/sqlstore"
)

// adminAgent runs `idp admin agent VERB`: the organisations' AD sync agents.
func (e env) adminAgent(ctx context.Context, verb string, args []string) error {
	switch verb {
	case "create":
		return e.adminAgentCreate(ctx, args)
	case "list":
		return e.adminAgentList(ctx, args)
	case "unmatched":
		return e.adminAgentUnmatched(ctx, args)
	case "disable":
		return e.adminAgentDisable(ctx, args)
	}
	return usageErr("admin: unknown command %q", "agent "+verb)
}

// orgByODS finds the organisation of --org, as a usage error when there is none.
func orgByODS(ctx context.Context, st *sqlstore.Store, cmd, code string) (directory.Organisation, error) {
	o, err := st.OrganisationByODS(ctx, code)
	if errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrInvalid) {
		return o, usageErr("%s: no organisation with ODS code %q", cmd, strings.TrimSpace(code))
	}
	return o, err
}

func (e env) adminAgentCreate(ctx context.Context, args []string) error {
	const cmd = "admin agent create"
	cf := newFlags(cmd, "data", "database")
	org := cf.fs.String("org", "", "ODS code of the organisation")
	keyFile := cf.fs.String("public-key", "", "the agent's public key file (written by the agent: two PEM PUBLIC KEY blocks)")
	asJSON := cf.fs.Bool("json", false, "print one JSON object")
	if err := cf.parse(args); err != nil {
		return err
	}
	if err := required(cf.fs, "org", "public-key"); err != nil {
		return err
	}
	data, err := os.ReadFile(*keyFile)
	if err != nil {
		return usageErr("%s: --public-key: %v", cmd, err)
	}
	pub, err := adsync.ParsePublicPEM(data)
	if err != nil {
		return usageErr("%s: --public-key %s: %v", cmd, *keyFile, err)
	}
	st, _, done, err := e.openAdmin(ctx, cf)
	if err != nil {
		return err
	}
	defer done()
	o, err := orgByODS(ctx, st, cmd, *org)
	if err != nil {
		return err
	}
	a := directory.SyncAgent{ID: pub.KeyID(), OrgID: o.ID, SignKey: pub.Sign, SealKey: pub.Seal.Bytes(), CreatedAt: time.Now()}
	err = st.InTx(ctx, func(tx directory.Store) error {
		if err := tx.CreateSyncAgent(ctx, a); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, directory.AuditEvent{Time: a.CreatedAt, Actor: cliActor.ID, Action: "adsync.agent.create", Target: a.ID,
			OrgID: o.ID, Outcome: directory.OutcomeSuccess})
		return err
	})
	if errors.Is(err, directory.ErrConflict) {
		if existing, gerr := st.SyncAgent(ctx, a.ID); gerr == nil {
			return &exitError{1, fmt.Errorf("%s: this key is registered already, as agent %s", cmd, existing.ID)}
		}
		return &exitError{1, fmt.Errorf("%s: %s has an active agent already; disable it first with `idp admin agent disable --id ID`", cmd, o.ODSCode)}
	} else if err != nil {
		return err
	}
	if *asJSON {
		return e.printJSON(map[string]any{"id": a.ID, "org": o.ODSCode, "created_at": a.CreatedAt.UTC()})
	}
	fmt.Fprintf(e.stdout, "registered agent %s for %s\n", a.ID, o.ODSCode)
	return nil
}

// agentJSON is one agent as `admin agent list --json` prints it.
type agentJSON struct {
	ID            string     `json:"id"`
	Org           string     `json:"org"`
	CreatedAt     time.Time  `json:"created_at"`
	LastContact   *time.Time `json:"last_contact"` // null: never
	SilentSeconds int64      `json:"silent_seconds"`
	Silent        bool       `json:"silent"`
	Disabled      bool       `json:"disabled"`
}

func (e env) adminAgentList(ctx context.Context, args []string) error {
	const cmd = "admin agent list"
	cf := newFlags(cmd, "data", "database")
	org := cf.fs.String("org", "", "ODS code of the organisation (default: every organisation)")
	asJSON := cf.fs.Bool("json", false, "print one JSON object")
	if err := cf.parse(args); err != nil {
		return err
	}
	cfg, err := cf.load(e.environ)
	if err != nil {
		return err
	}
	st, _, done, err := openAdminConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()
	orgID := ""
	if *org != "" {
		o, err := orgByODS(ctx, st, cmd, *org)
		if err != nil {
			return err
		}
		orgID = o.ID
	}
	agents, err := st.SyncAgents(ctx, orgID)
	if err != nil {
		return err
	}
	now := time.Now()
	codes := map[string]string{}
	out := make([]agentJSON, 0, len(agents))
	for _, a := range agents {
		code, ok := codes[a.OrgID]
		if !ok {
			o, err := st.Organisation(ctx, a.OrgID)
			if err != nil {
				return err
			}
			code, codes[a.OrgID] = o.ODSCode, o.ODSCode
		}
		silence := server.AgentSilence(a, now)
		j := agentJSON{ID: a.ID, Org: code, CreatedAt: a.CreatedAt, SilentSeconds: int64(silence / time.Second),
			Silent: !a.Disabled && silence > cfg.ADSync.SilentAfter, Disabled: a.Disabled}
		if !a.LastContact.IsZero() {
			lc := a.LastContact
			j.LastContact = &lc
		}
		out = append(out, j)
	}
	if *asJSON {
		return e.printJSON(map[string]any{"agents": out, "silent_after_seconds": int64(cfg.ADSync.SilentAfter / time.Second)})
	}
	if len(out) == 0 {
		fmt.Fprintln(e.stdout, "no agents")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tORG\tLAST CONTACT\tSTATE")
	for _, j := range out {
		last := "never"
		if j.LastContact != nil {
			last = j.LastContact.UTC().Format(time.RFC3339) + " (" + (time.Duration(j.SilentSeconds) * time.Second).String() + " ago)"
		}
		state := "ok"
		switch {
		case j.Disabled:
			state = "disabled"
		case j.Silent:
			state = "SILENT"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.ID, j.Org, last, state)
	}
	return tw.Flush()
}

func (e env) adminAgentUnmatched(ctx context.Context, args []string) error {
	const cmd = "admin agent unmatched"
	cf := newFlags(cmd, "data", "database")
	org := cf.fs.String("org", "", "ODS code of the organisation")
	asJSON := cf.fs.Bool("json", false, "print one JSON object")
	if err := cf.parse(args); err != nil {
		return err
	}
	if err := required(cf.fs, "org"); err != nil {
		return err
	}
	st, _, done, err := e.openAdmin(ctx, cf)
	if err != nil {
		return err
	}
	defer done()
	o, err := orgByODS(ctx, st, cmd, *org)
	if err != nil {
		return err
	}
	us, err := st.ADUnmatchedAccounts(ctx, o.ID)
	if err != nil {
		return err
	}
	type entry struct {
		Ref    string    `json:"ref"`
		Label  string    `json:"label"`
		SeenAt time.Time `json:"seen_at"`
	}
	ad, lanyard := []entry{}, []entry{}
	for _, u := range us {
		en := entry{Ref: u.Ref, Label: u.Label, SeenAt: u.SeenAt}
		if u.Side == directory.UnmatchedAD {
			ad = append(ad, en)
		} else {
			lanyard = append(lanyard, en)
		}
	}
	if *asJSON {
		return e.printJSON(map[string]any{"org": o.ODSCode, "ad": ad, "lanyard": lanyard})
	}
	fmt.Fprintf(e.stdout, "%s: %d AD accounts without a Lanyard user, %d Lanyard users without an AD account\n", o.ODSCode, len(ad), len(lanyard))
	for _, en := range ad {
		fmt.Fprintf(e.stdout, "  AD       %s  %s\n", en.Ref, en.Label)
	}
	for _, en := range lanyard {
		fmt.Fprintf(e.stdout, "  Lanyard  %s  %s\n", en.Ref, en.Label)
	}
	return nil
}

func (e env) adminAgentDisable(ctx context.Context, args []string) error {
	const cmd = "admin agent disable"
	cf := newFlags(cmd, "data", "database")
	id := cf.fs.String("id", "", "the agent's ID")
	asJSON := cf.fs.Bool("json", false, "print one JSON object")
	if err := cf.parse(args); err != nil {
		return err
	}
	if err := required(cf.fs, "id"); err != nil {
		return err
	}
	st, _, done, err := e.openAdmin(ctx, cf)
	if err != nil {
		return err
	}
	defer done()
	a, err := st.SyncAgent(ctx, *id)
	if errors.Is(err, directory.ErrNotFound) {
		return usageErr("%s: no agent %q", cmd, *id)
	} else if err != nil {
		return err
	}
	err = st.InTx(ctx, func(tx directory.Store) error {
		if err := tx.DisableSyncAgent(ctx, a.ID); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, directory.AuditEvent{Time: time.Now(), Actor: cliActor.ID, Action: "adsync.agent.disable", Target: a.ID,
			OrgID: a.OrgID, Outcome: directory.OutcomeSuccess})
		return err
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return e.printJSON(map[string]any{"id": a.ID, "disabled": true})
	}
	fmt.Fprintf(e.stdout, "disabled agent %s\n", a.ID)
	return nil
}
