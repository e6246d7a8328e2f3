package authn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lanyard/lanyard/authn/password"
	"github.com/lanyard/lanyard/authn/policy"
	"github.com/lanyard/lanyard/directory"
)

// PolicyError is a password refused by the policy. Its message, and each
// Violation's, is plain words for the person choosing the password. It
// matches directory.ErrInvalid.
type PolicyError struct {
	Violations []policy.Violation
}

func (e *PolicyError) Error() string {
	msgs := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		msgs[i] = v.Message
	}
	return "password refused: " + strings.Join(msgs, "; ")
}

// Is makes a PolicyError match directory.ErrInvalid.
func (e *PolicyError) Is(target error) bool { return target == directory.ErrInvalid }

// CodeReused is the violation of the reuse history, checked here because it
// needs the stored hashes.
const CodeReused policy.Code = "reused"

// Passwords sets passwords under the policy, for every way a password is
// set: self-service change and reset, administrators, and (later) Active
// Directory. Each change keeps the replaced hash for the reuse history,
// writes a password event to the outbox and an audit event, in one
// transaction. It is safe for concurrent use.
type Passwords struct {
	dir      directory.Store
	hasher   *password.Hasher
	checker  *policy.Checker
	national policy.Policy
	now      func() time.Time
}

// NewPasswords returns a Passwords applying national, tightened by each of
// the user's organisations.
func NewPasswords(dir directory.Store, hasher *password.Hasher, checker *policy.Checker, national policy.Policy, now func() time.Time) *Passwords {
	return &Passwords{dir: dir, hasher: hasher, checker: checker, national: national, now: now}
}

// FromOrg converts an organisation's stored tightening to a policy.Policy.
func FromOrg(o directory.OrgPolicy) policy.Policy {
	return policy.Policy{
		MinLength: o.MinLength, History: o.History, MaxAge: time.Duration(o.MaxAgeDays) * 24 * time.Hour,
		BannedTerms: o.BannedTerms,
	}
}

// PolicyFor returns the policy that applies to the user (the national one
// tightened by every organisation they belong to) and what a guesser would
// know of them.
func (p *Passwords) PolicyFor(ctx context.Context, st directory.Store, u directory.User) (policy.Policy, policy.Context, string, error) {
	pol := p.national
	pc := policy.Context{GivenName: u.GivenName, FamilyName: u.FamilyName, Email: u.Email}
	ms, err := st.Memberships(ctx, u.ID)
	if err != nil {
		return pol, pc, "", err
	}
	slices.SortStableFunc(ms, func(a, b directory.Membership) int { return a.CreatedAt.Compare(b.CreatedAt) })
	var primary string
	var names, codes []string
	for _, m := range ms {
		o, err := st.Organisation(ctx, m.OrgID)
		if err != nil {
			return pol, pc, "", err
		}
		op, err := st.OrgPolicy(ctx, m.OrgID)
		if err != nil {
			return pol, pc, "", err
		}
		pol = pol.Tighten(FromOrg(op))
		if primary == "" {
			primary = o.ID
		}
		names, codes = append(names, o.Name), append(codes, o.ODSCode)
	}
	pc.OrgName, pc.ODSCode = strings.Join(names, " "), strings.Join(codes, " ")
	return pol, pc, primary, nil
}

// Check tells whether pw would be accepted for u, without the reuse
// history (which Set also checks). nil means acceptable.
func (p *Passwords) Check(ctx context.Context, u directory.User, pw string) ([]policy.Violation, error) {
	pol, pc, _, err := p.PolicyFor(ctx, p.dir, u)
	if err != nil {
		return nil, err
	}
	return p.checker.Check(pol, pw, pc), nil
}

// Set sets u's password in its own transaction; see SetTx.
func (p *Passwords) Set(ctx context.Context, u directory.User, pw, source string, by directory.AuditEvent) error {
	return p.dir.InTx(ctx, func(tx directory.Store) error { return p.SetTx(ctx, tx, u, pw, source, by) })
}

// SetTx checks pw against the user's policy and reuse history and, when it
// passes, stores it through st (the caller's transaction): the old hash
// joins the history, a password event goes to the outbox, and an audit
// event records who did it (by's Actor and IP) and how (source). A refused
// password returns *PolicyError.
func (p *Passwords) SetTx(ctx context.Context, st directory.Store, u directory.User, pw, source string, by directory.AuditEvent) error {
	pol, pc, orgID, err := p.PolicyFor(ctx, st, u)
	if err != nil {
		return err
	}
	if v := p.checker.Check(pol, pw, pc); len(v) > 0 {
		return &PolicyError{Violations: v}
	}
	norm := policy.Normalise(pw)
	creds, err := st.Credentials(ctx, u.ID, "")
	if err != nil {
		return err
	}
	var current *directory.Credential
	var history []directory.Credential
	for _, c := range creds {
		switch c.Type {
		case directory.CredentialPassword:
			current = &c
		case directory.CredentialPasswordHistory:
			history = append(history, c)
		}
	}
	slices.SortFunc(history, func(a, b directory.Credential) int { return b.CreatedAt.Compare(a.CreatedAt) }) // newest first
	recent := history
	if current != nil {
		recent = append([]directory.Credential{*current}, history...)
	}
	for i, c := range recent {
		if i >= pol.History {
			break
		}
		if ok, _, _ := p.hasher.Verify(string(c.Secret), norm); ok {
			return &PolicyError{Violations: []policy.Violation{{Code: CodeReused,
				Message: fmt.Sprintf("You cannot use any of your last %d passwords. Choose a password you have not used before", pol.History)}}}
		}
	}
	hash, err := p.hasher.Hash(norm)
	if err != nil {
		return &PolicyError{Violations: []policy.Violation{{Code: policy.CodeTooLong, Message: "Your password is too long"}}}
	}
	now := p.now()
	if current != nil {
		old := *current
		old.Type = directory.CredentialPasswordHistory
		if err := st.PutCredential(ctx, old); err != nil {
			return err
		}
		history = append([]directory.Credential{old}, history...)
	}
	for _, c := range history[min(len(history), max(pol.History-1, 0)):] {
		if err := st.DeleteCredential(ctx, u.ID, c.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
			return err
		}
	}
	if err := st.PutCredential(ctx, directory.Credential{
		ID: directory.NewID(), UserID: u.ID, Type: directory.CredentialPassword, Secret: []byte(hash), CreatedAt: now,
	}); err != nil {
		return err
	}
	// The outbox before the audit log, in every transaction (lock order).
	if _, err := st.AppendPasswordEvent(ctx, directory.PasswordEvent{
		ID: directory.NewID(), UserID: u.ID, OrgID: orgID, Source: source, Time: now,
	}); err != nil {
		return err
	}
	by.Time, by.Action, by.Target, by.OrgID, by.Outcome = now, "password.set", u.ID, orgID, directory.OutcomeSuccess
	by.Detail = map[string]string{"source": source}
	_, err = st.AppendAudit(ctx, by)
	return err
}

// Status is a user's password's age and expiry.
type Status struct {
	ChangedAt time.Time
	Expires   time.Time // zero: never
	Expired   bool
	Warn      bool // within the warning period before expiry
}

// Status returns the state of u's password; the zero Status when u has none.
func (p *Passwords) Status(ctx context.Context, u directory.User) (Status, error) {
	creds, err := p.dir.Credentials(ctx, u.ID, directory.CredentialPassword)
	if err != nil || len(creds) == 0 {
		return Status{}, err
	}
	pol, _, _, err := p.PolicyFor(ctx, p.dir, u)
	if err != nil {
		return Status{}, err
	}
	changed, now := creds[len(creds)-1].CreatedAt, p.now()
	return Status{ChangedAt: changed, Expires: pol.Expires(changed), Expired: pol.Expired(changed, now), Warn: pol.Warn(changed, now)}, nil
}
