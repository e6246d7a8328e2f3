package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"log/slog"

	"github.com/lanyard/lanyard/authn"
	"github.com/lanyard/lanyard/authn/breached"
	"github.com/lanyard/lanyard/authn/mail"
	"github.com/lanyard/lanyard/authn/password"
	"github.com/lanyard/lanyard/cmd/idp/server"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/directory/seal"
	"github.com/lanyard/lanyard/directory/sqlstore"
	"github.com/lanyard/lanyard/saml"
)

var cliActor = admin.Actor{ID: "cli"}

func (e env) admin(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return usageErr("admin: want a subject and a verb, such as `admin org create`")
	}
	switch sub := args[0] + " " + args[1]; sub {
	case "org create":
		return e.adminOrgCreate(ctx, args[2:])
	case "user create":
		return e.adminUserCreate(ctx, args[2:])
	case "client create":
		return e.adminClientCreate(ctx, args[2:])
	case "audit verify":
		return e.adminAuditVerify(ctx, args[2:])
	case "masterkey rotate":
		return e.adminMasterKeyRotate(args[2:])
	case "breached import":
		return e.adminBreachedImport(ctx, args[2:])
	case "org policy":
		return e.adminOrgPolicy(ctx, args[2:])
	case "org risk":
		return e.adminOrgRisk(ctx, args[2:])
	case "user unlock":
		return e.adminUserUnlock(ctx, args[2:])
	case "user totp-import":
		return e.adminTOTPImport(ctx, args[2:])
	case "user mfa-reset":
		return e.adminMFAReset(ctx, args[2:])
	case "sp create":
		return e.adminSPCreate(ctx, args[2:])
	case "agent create", "agent list", "agent unmatched", "agent disable":
		return e.adminAgent(ctx, args[1], args[2:])
	default:
		return usageErr("admin: unknown command %q", sub)
	}
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// openAdmin loads the configuration and opens the directory for an admin
// command, with the admin service on it.
func (e env) openAdmin(ctx context.Context, cf *configFlags) (*sqlstore.Store, *admin.Service, func(), error) {
	cfg, err := cf.load(e.environ)
	if err != nil {
		return nil, nil, nil, err
	}
	return openAdminConfig(ctx, cfg)
}

// openAdminConfig is openAdmin for a command that has loaded the
// configuration already.
func openAdminConfig(ctx context.Context, cfg server.Config) (*sqlstore.Store, *admin.Service, func(), error) {
	st, _, err := server.OpenDirectory(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	pw, _, ix, err := server.NewPasswords(cfg, st, time.Now)
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	return st, admin.New(st, pw, time.Now), func() {
		ix.Close()
		st.Close()
	}, nil
}

func (e env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func required(fs *flag.FlagSet, names ...string) error {
	var missing []string
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return usageErr("%s: missing %s", fs.Name(), strings.Join(missing, ", "))
	}
	return nil
}

func (e env) adminOrgCreate(ctx context.Context, args []string) error {
	cf := newFlags("admin org create", "data", "database")
	ods := cf.fs.String("ods", "", "ODS code")
	name := cf.fs.String("name", "", "organisation name")
	asJSON := cf.fs.Bool("json", false, "print one JSON object")
	if err := cf.parse(args); err != nil {
		return err
	}
	if err := required(cf.fs, "ods", "name"); err != nil {
		return err
	}
	_, svc, done, err := e.openAdmin(ctx, cf)
	if err != nil {
		return err
	}
	defer done()
	o, err := svc.CreateOrganisation(ctx, cliActor, *ods, *name)
	if err != nil {
		return err
	}
	if *asJSON {
		return e.printJSON(map[string]any{"id": o.ID, "ods_code": o.ODSCode, "name": o.Name, "created_at": o.CreatedAt})
	}
	fmt.Fprintf(e.stdout, "created organisation %s %q (id %s)\n", o.ODSCode, o.Name, o.ID)
	return nil
}

func (e env) adminUserCreate(ctx context.Context, args []string) error {
	cf := newFlags("admin user create", "data", "database")
	org := cf.fs.String("org", "", "ODS code of the organisation")
	email := cf.fs.String("email", "", "email address")
	name := cf.fs.String("name", "", `full name, "Given Family"`)
	pwStdin := cf.fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	var roles stringList
	cf.fs.Var(&roles, "role", "role beyond staff (org-admin, national-admin); repeatable")
	asJSON := cf.fs.Bool("json", false, "print one JSON object")
	if err := cf.parse(args); err != nil {
		return err
	}
	if err := required(cf.fs, "org", "email", "name"); err != nil {
		return err
	}
	var pw string
	if *pwStdin {
		line, err := bufio.NewReader(io.LimitReader(e.stdin, password.MaxLength+2)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read password: %w", err)
		}
		if pw = strings.TrimRight(line, "\r\n"); pw == "" {
			return usageErr("admin user create: --password-stdin given but standard input is empty")
		}
	}
	_, svc, done, err := e.openAdmin(ctx, cf)
	if err != nil {
		return err
	}
	defer done()
	in := admin.NewUser{OrgODS: *org, Email: *email, Name: *name, Password: pw}
	for _, r := range roles {
		in.Roles = append(in.Roles, directory.Role(r))
	}
	cu, err := svc.CreateUser(ctx, cliActor, in)
	if err != nil {
		return err
	}
	if *asJSON {
		return e.printJSON(map[string]any{
			"id": cu.User.ID, "email": cu.User.Email, "given_name": cu.User.GivenName, "family_name": cu.User.FamilyName,
			"org": cu.Organisation.ODSCode, "roles": cu.Roles, "password_set": pw != "",
		})
	}
	fmt.Fprintf(e.stdout, "created user %s (%s) in %s with roles %v (id %s)\n", cu.User.Email, cu.User.Name(), cu.Organisation.ODSCode, cu.Roles, cu.User.ID)
	if pw == "" {
		fmt.Fprintln(e.stdout, "no password set: the user sets one through a reset")
	}
	return nil
}

func (e env) adminClientCreate(ctx context.Context, args []string) error {
	cf := newFlags("admin client create", "data", "database")
	org := cf.fs.String("org", "", "ODS code of the organisation")
	name := cf.fs.String("name", "", "application name")
	var redirects, logouts stringList
	cf.fs.Var(&redirects, "redirect-uri", "redirect URI; repeatable")
	cf.fs.Var(&logouts, "post-logout-redirect-uri", "post-logout redirect URI; repeatable")
	public := cf.fs.Bool("public", false, "public client (no secret; PKCE required)")
	asJSON := cf.fs.Bool("json", false, "print one JSON object")
	if err := cf.parse(args); err != nil {
		return err
	}
	if err := required(cf.fs, "org", "name", "redirect-uri"); err != nil {
		return err
	}
	_, svc, done, err := e.openAdmin(ctx, cf)
	if err != nil {
		return err
	}
	defer done()
	c, secret, err := svc.CreateClient(ctx, cliActor, admin.NewClient{
		OrgODS: *org, Name: *name, RedirectURIs: redirects, PostLogoutRedirectURIs: logouts, Public: *public,
	})
	if err != nil {
		return err
	}
	if *asJSON {
		out := map[string]any{
			"client_id": c.ID, "name": c.Name, "org": strings.ToUpper(strings.TrimSpace(*org)), "public": c.Public,
			"redirect_uris": c.RedirectURIs, "post_logout_redirect_uris": c.PostLogoutRedirectURIs,
		}
		if secret != "" {
			out["client_secret"] = secret
		}
		return e.printJSON(out)
	}
	fmt.Fprintf(e.stdout, "created client %q\nclient_id:     %s\n", c.Name, c.ID)
	if secret != "" {
		fmt.Fprintf(e.stdout, "client_secret: %s\n(shown once: only its hash is kept)\n", secret)
	}
	return nil
}

func (e env) adminAuditVerify(ctx context.Context, args []string) error {
	cf := newFlags("admin audit verify", "data", "database")
	asJSON := cf.fs.Bool("json", false, "print one JSON object")
	if err := cf.parse(args); err != nil {
		return err
	}
	st, _, done, err := e.openAdmin(ctx, cf)
	if err != nil {
		return err
	}
	defer done()
	n, err := directory.VerifyAudit(ctx, st)
	var bl *directory.BrokenLink
	if err != nil && !errors.As(err, &bl) {
		return err
	}
	if *asJSON {
		out := map[string]any{"ok": bl == nil, "verified": n}
		if bl != nil {
			out["broken_at"], out["reason"] = bl.Seq, bl.Reason
		}
		if err := e.printJSON(out); err != nil {
			return err
		}
	} else if bl == nil {
		fmt.Fprintf(e.stdout, "audit log intact: %d events verified\n", n)
	}
	if bl != nil {
		return &exitError{1, bl}
	}
	return nil
}

func (e env) adminMasterKeyRotate(args []string) error {
	cf := newFlags("admin masterkey rotate", "data")
	if err := cf.parse(args); err != nil {
		return err
	}
	cfg, err := cf.load(e.environ)
	if err != nil {
		return err
	}
	id, err := seal.Rotate(cfg.MasterKeyFile)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "new master key %s added to %s; it seals from the next start, older keys still open\n", id, cfg.MasterKeyFile)
	return nil
}

func (e env) adminBreachedImport(ctx context.Context, args []string) error {
	cf := newFlags("admin breached import", "data")
	minCount := cf.fs.Uint64("min-count", 1, "skip hashes seen fewer times than this")
	asJSON := cf.fs.Bool("json", false, "print one JSON object")
	if err := cf.fs.Parse(args); err != nil {
		return usageErr("%s: %v", cf.fs.Name(), err)
	}
	if cf.fs.NArg() != 1 {
		return usageErr("admin breached import: want one FILE (Pwned Passwords SHA1HEX:COUNT lines)")
	}
	cfg, err := cf.load(e.environ)
	if err != nil {
		return err
	}
	f, err := os.Open(cf.fs.Arg(0))
	if err != nil {
		return usageErr("admin breached import: %v", err)
	}
	defer f.Close()
	opt := breached.ImportOptions{MinCount: *minCount, TempDir: filepath.Dir(cfg.Password.BreachedIndex)}
	if fi, err := f.Stat(); err == nil {
		opt.TotalBytes = fi.Size()
	}
	if tty, ok := e.stderr.(*os.File); ok && !*asJSON {
		if fi, err := tty.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			opt.Progress = func(p breached.Progress) { fmt.Fprintf(tty, "\r\033[K%s", breached.ProgressLine(p)) }
		}
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Password.BreachedIndex), 0o700); err != nil {
		return err
	}
	st, err := breached.Import(ctx, f, cfg.Password.BreachedIndex, opt)
	if opt.Progress != nil {
		fmt.Fprintln(e.stderr)
	}
	var le *breached.LineError
	if errors.As(err, &le) {
		return usageErr("admin breached import: %s: %v", cf.fs.Arg(0), err)
	} else if err != nil {
		return err
	}
	if *asJSON {
		return e.printJSON(map[string]any{"index": cfg.Password.BreachedIndex, "hashes": st.Hashes, "lines": st.Lines,
			"skipped": st.Skipped, "duplicates": st.Duplicates, "bytes": st.Bytes, "bytes_per_hash": st.BytesPerHash(),
			"seconds": (st.Read + st.Build).Seconds()})
	}
	fmt.Fprintf(e.stdout, "indexed %d breached-password hashes into %s (%d bytes, %.2f bytes a hash) in %s\n",
		st.Hashes, cfg.Password.BreachedIndex, st.Bytes, st.BytesPerHash(), (st.Read + st.Build).Round(time.Millisecond))
	fmt.Fprintln(e.stdout, "running servers load it within a minute")
	return nil
}

func (e env) adminOrgPolicy(ctx context.Context, args []string) error {
	cf := newFlags("admin org policy", "data", "database")
	ods := cf.fs.String("ods", "", "ODS code")
	minLen := cf.fs.Int("min-length", 0, "minimum password length (the national 10 if lower)")
	history := cf.fs.Int("history", 0, "previous passwords that may not be reused (the national 4 if fewer)")
	maxAge := cf.fs.Int("max-age-days", 0, "days a password lasts (the national limit if longer or 0)")
	requireMFA := cf.fs.Bool("require-mfa", false, "require a second factor for all staff")
	var banned stringList
	cf.fs.Var(&banned, "banned-term", "a word no password may contain; repeatable")
	asJSON := cf.fs.Bool("json", false, "print one JSON object")
	if err := cf.parse(args); err != nil {
		return err
	}
	if err := required(cf.fs, "ods"); err != nil {
		return err
	}
	st, _, done, err := e.openAdmin(ctx, cf)
	if err != nil {
		return err
	}
	defer done()
	o, err := st.OrganisationByODS(ctx, *ods)
	if err != nil {
		return err
	}
	p := directory.OrgPolicy{MinLength: *minLen, History: *history, MaxAgeDays: *maxAge, BannedTerms: banned, RequireMFA: *requireMFA}
	if err := st.InTx(ctx, func(tx directory.Store) error {
		if err := tx.PutOrgPolicy(ctx, o.ID, p); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, directory.AuditEvent{Time: time.Now(), Actor: cliActor.ID, Action: "organisation.policy", Target: o.ID,
			OrgID: o.ID, Outcome: directory.OutcomeSuccess, Detail: map[string]string{"min_length": fmt.Sprint(*minLen), "history": fmt.Sprint(*history),
				"max_age_days": fmt.Sprint(*maxAge), "banned_terms": strings.Join(banned, ","), "require_mfa": fmt.Sprint(*requireMFA)}})
		return err
	}); err != nil {
		return err
	}
	if *asJSON {
		return e.printJSON(map[string]any{"ods_code": o.ODSCode, "policy": p})
	}
	fmt.Fprintf(e.stdout, "policy of %s set; it can only tighten the national policy\n", o.ODSCode)
	return nil
}

// adminOrgRisk sets an organisation's risk thresholds: lower than the
// national ones to step up or block sooner (higher values are ignored by
// the engine, which only lets organisations tighten).
func (e env) adminOrgRisk(ctx context.Context, args []string) error {
	cf := newFlags("admin org risk", "data", "database")
	ods := cf.fs.String("ods", "", "ODS code")
	stepUp := cf.fs.Float64("step-up", 0, "score in bits from which a second factor is asked (0: the national threshold)")
	block := cf.fs.Float64("block", 0, "score in bits from which a sign-in is refused (0: the national threshold)")
	asJSON := cf.fs.Bool("json", false, "print one JSON object")
	if err := cf.parse(args); err != nil {
		return err
	}
	if err := required(cf.fs, "ods"); err != nil {
		return err
	}
	if *stepUp < 0 || *block < 0 || math.IsNaN(*stepUp) || math.IsNaN(*block) {
		return usageErr("admin org risk: --step-up and --block must be 0 or more")
	}
	if *stepUp > 0 && *block > 0 && *block <= *stepUp {
		return usageErr("admin org risk: --block (%g) must be above --step-up (%g)", *block, *stepUp)
	}
	st, _, done, err := e.openAdmin(ctx, cf)
	if err != nil {
		return err
	}
	defer done()
	o, err := st.OrganisationByODS(ctx, *ods)
	if err != nil {
		return err
	}
	p := directory.RiskPolicy{StepUp: *stepUp, Block: *block}
	if err := st.InTx(ctx, func(tx directory.Store) error {
		if err := tx.PutRiskPolicy(ctx, o.ID, p); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, directory.AuditEvent{Time: time.Now(), Actor: cliActor.ID, Action: "organisation.risk_policy", Target: o.ID,
			OrgID: o.ID, Outcome: directory.OutcomeSuccess, Detail: map[string]string{"step_up": fmt.Sprint(*stepUp), "block": fmt.Sprint(*block)}})
		return err
	}); err != nil {
		return err
	}
	if *asJSON {
		return e.printJSON(map[string]any{"ods_code": o.ODSCode, "step_up": p.StepUp, "block": p.Block})
	}
	fmt.Fprintf(e.stdout, "risk thresholds of %s set; values above the national ones are ignored (organisations can only tighten)\n", o.ODSCode)
	return nil
}

func (e env) adminUserUnlock(ctx context.Context, args []string) error {
	cf := newFlags("admin user unlock", "data", "database", "redis")
	email := cf.fs.String("email", "", "email address of the account")
	if err := cf.parse(args); err != nil {
		return err
	}
	if err := required(cf.fs, "email"); err != nil {
		return err
	}
	cfg, err := cf.load(e.environ)
	if err != nil {
		return err
	}
	st, _, err := server.OpenDirectory(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	// Recorded in the directory, which every server reads at each attempt
	// (the account's lockout generation), the unlock reaches them all,
	// with lockout state in Redis or in their own memory; Redis itself
	// needs no write. The unlock and its audit event commit together.
	now := time.Now()
	if err := st.InTx(ctx, func(tx directory.Store) error {
		if err := authn.UnlockInDirectory(ctx, tx, *email, now); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, directory.AuditEvent{Time: now, Actor: cliActor.ID, Action: "user.unlock",
			Target: directory.EmailKey(*email), Outcome: directory.OutcomeSuccess})
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "unlocked %s from every place\n", *email)
	return nil
}

func (e env) adminTOTPImport(ctx context.Context, args []string) error {
	cf := newFlags("admin user totp-import", "data", "database")
	email := cf.fs.String("email", "", "email address of the user")
	name := cf.fs.String("name", "Hardware token", "label of the token")
	stdin := cf.fs.Bool("secret-stdin", false, "read the token's seed (base32) from standard input")
	if err := cf.parse(args); err != nil {
		return err
	}
	if err := required(cf.fs, "email"); err != nil {
		return err
	}
	if !*stdin {
		return usageErr("admin user totp-import: give the seed on standard input with --secret-stdin (never as an argument)")
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	cfg, err := cf.load(e.environ)
	if err != nil {
		return err
	}
	keys, err := seal.Load(cfg.MasterKeyFile)
	if err != nil {
		return &exitError{2, err}
	}
	st, _, done, err := openAdminConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()
	u, err := st.UserByEmail(ctx, *email)
	if err != nil {
		return err
	}
	cred, err := authn.NewTOTPCredential(keys, u.ID, *name, strings.TrimSpace(line), time.Now())
	if err != nil {
		return err
	}
	if err := st.InTx(ctx, func(tx directory.Store) error {
		if err := tx.PutCredential(ctx, cred); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, directory.AuditEvent{Time: time.Now(), Actor: cliActor.ID, Action: "mfa.enrol", Target: u.ID,
			Outcome: directory.OutcomeSuccess, Detail: map[string]string{"method": "totp", "name": *name, "by": "administrator"}})
		return err
	}); err != nil {
		return err
	}
	if err := notifyUser(ctx, cfg, u, "A token was added to your NHS directory account",
		"Hello "+u.Name()+",\n\nAn administrator set up a hardware token ("+*name+") as a second way to confirm it's you when you sign in.\n\nIf you did not ask for this, tell your organisation's administrator.\n"); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "TOTP token %q enrolled for %s\n", *name, u.Email)
	return nil
}

// notifyUser mails the user through the configured relay (or the outbox
// folder) and waits for the attempt.
func notifyUser(ctx context.Context, cfg server.Config, u directory.User, subject, body string) error {
	q, err := server.NewMail(cfg, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		return err
	}
	defer q.Close()
	return q.Send(ctx, mail.Message{To: u.Email, Subject: subject, Body: body})
}

func (e env) adminMFAReset(ctx context.Context, args []string) error {
	cf := newFlags("admin user mfa-reset", "data", "database")
	email := cf.fs.String("email", "", "email address of the user")
	if err := cf.parse(args); err != nil {
		return err
	}
	if err := required(cf.fs, "email"); err != nil {
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
	u, err := st.UserByEmail(ctx, *email)
	if err != nil {
		return err
	}
	n := 0
	if err := st.InTx(ctx, func(tx directory.Store) error {
		creds, err := tx.Credentials(ctx, u.ID, "")
		if err != nil {
			return err
		}
		for _, c := range creds {
			switch c.Type {
			case directory.CredentialTOTP, directory.CredentialWebAuthn, directory.CredentialRecovery:
				if err := tx.DeleteCredential(ctx, u.ID, c.ID); err != nil {
					return err
				}
				n++
			}
		}
		_, err = tx.AppendAudit(ctx, directory.AuditEvent{Time: time.Now(), Actor: cliActor.ID, Action: "mfa.reset", Target: u.ID,
			Outcome: directory.OutcomeSuccess, Detail: map[string]string{"removed": fmt.Sprint(n)}})
		return err
	}); err != nil {
		return err
	}
	if err := notifyUser(ctx, cfg, u, "Your NHS directory sign-in methods were reset",
		"Hello "+u.Name()+",\n\nAn administrator removed your authenticator apps, security keys and recovery codes. You will be asked to set up a new one when you next sign in.\n\nIf you did not ask for this, tell your organisation's administrator.\n"); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "removed %d second factors and recovery codes of %s; they enrol again at their next sign-in if MFA is required\n", n, u.Email)
	return nil
}

func (e env) adminSPCreate(ctx context.Context, args []string) error {
	cf := newFlags("admin sp create", "data", "database")
	org := cf.fs.String("org", "", "ODS code of the organisation")
	source := cf.fs.String("metadata", "", "the SP's metadata: a file, or an https:// URL")
	name := cf.fs.String("name", "", "application name (default: the entity ID)")
	nameID := cf.fs.String("nameid", directory.NameIDPersistent, "NameID: persistent (opaque, different per SP) or email")
	var attrs stringList
	cf.fs.Var(&attrs, "attribute", "attribute released ("+strings.Join(directory.SAMLAttributes, ", ")+"); repeatable (default: all)")
	asJSON := cf.fs.Bool("json", false, "print one JSON object")
	if err := cf.parse(args); err != nil {
		return err
	}
	if err := required(cf.fs, "org", "metadata"); err != nil {
		return err
	}
	if len(attrs) == 0 {
		attrs = slices.Clone(directory.SAMLAttributes)
	}
	if err := directory.CheckNameIDFormat(*nameID); err != nil {
		return usageErr("admin sp create: --nameid: %v", err)
	}
	if err := directory.CheckSAMLAttributes(attrs); err != nil {
		return usageErr("admin sp create: --attribute: %v", err)
	}
	data, err := readMetadata(ctx, *source)
	if err != nil {
		return err
	}
	ed, err := saml.ParseSPMetadata(data, time.Now())
	if err != nil {
		return err
	}
	acsURLs, err := saml.ACSURLs(ed)
	if err != nil {
		return err
	}
	st, _, done, err := e.openAdmin(ctx, cf)
	if err != nil {
		return err
	}
	defer done()
	o, err := st.OrganisationByODS(ctx, *org)
	if errors.Is(err, directory.ErrNotFound) {
		return usageErr("admin sp create: no organisation with ODS code %q", strings.TrimSpace(*org))
	} else if err != nil {
		return err
	}
	sp := directory.ServiceProvider{
		ID: directory.NewID(), EntityID: ed.EntityID, OrgID: o.ID, Name: *name, Metadata: data,
		NameIDFormat: *nameID, Attributes: attrs, CreatedAt: time.Now(),
	}
	if strings.TrimSpace(sp.Name) == "" {
		sp.Name = ed.EntityID
	}
	err = st.InTx(ctx, func(tx directory.Store) error {
		if err := tx.CreateServiceProvider(ctx, sp); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, directory.AuditEvent{Time: sp.CreatedAt, Actor: cliActor.ID, Action: "sp.create", Target: sp.ID,
			OrgID: o.ID, Outcome: directory.OutcomeSuccess, Detail: map[string]string{"entity_id": sp.EntityID,
				"nameid_format": sp.NameIDFormat, "attributes": strings.Join(sp.Attributes, ",")}})
		return err
	})
	if errors.Is(err, directory.ErrConflict) {
		return usageErr("admin sp create: a service provider with entity ID %q already exists", sp.EntityID)
	} else if err != nil {
		return err
	}
	sp.Name = strings.TrimSpace(sp.Name)
	if *asJSON {
		return e.printJSON(map[string]any{
			"id": sp.ID, "entity_id": sp.EntityID, "org": o.ODSCode, "name": sp.Name,
			"nameid_format": sp.NameIDFormat, "attributes": sp.Attributes, "acs_urls": acsURLs,
		})
	}
	fmt.Fprintf(e.stdout, "created service provider %q for %s (id %s)\nentity ID:  %s\nNameID:     %s\nattributes: %s\nACS:        %s\n",
		sp.Name, o.ODSCode, sp.ID, sp.EntityID, sp.NameIDFormat, strings.Join(sp.Attributes, ", "), strings.Join(acsURLs, ", "))
	return nil
}

// metadataFetchTimeout bounds fetching SP metadata from a URL.
const metadataFetchTimeout = 10 * time.Second

// readMetadata reads SP metadata from a file, or from an https URL (http
// only on a loopback address), reading at most one byte more than
// saml.MaxMetadataSize so that the parser refuses larger metadata.
func readMetadata(ctx context.Context, source string) ([]byte, error) {
	limit := int64(saml.MaxMetadataSize) + 1
	if !strings.HasPrefix(source, "https://") && !strings.HasPrefix(source, "http://") {
		f, err := os.Open(source)
		if err != nil {
			return nil, usageErr("admin sp create: --metadata: %v", err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, limit))
		if err != nil {
			return nil, fmt.Errorf("read metadata %s: %w", source, err)
		}
		return data, nil
	}
	checkURL := func(u *url.URL) error {
		if u.Scheme == "https" || u.Scheme == "http" && saml.IsLoopback(u.Hostname()) {
			return nil
		}
		return usageErr("admin sp create: --metadata %s: fetch metadata over https (http only on a loopback address)", u.Redacted())
	}
	u, err := url.Parse(source)
	if err != nil {
		return nil, usageErr("admin sp create: --metadata: %v", err)
	}
	if err := checkURL(u); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, metadataFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, source, nil)
	if err != nil {
		return nil, usageErr("admin sp create: --metadata: %v", err)
	}
	client := &http.Client{
		Timeout: metadataFetchTimeout,
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			return checkURL(r.URL)
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch metadata %s: %s", u.Redacted(), resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("fetch metadata %s: %w", u.Redacted(), err)
	}
	return data, nil
}
