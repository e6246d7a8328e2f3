package authn

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lanyard/lanyard/authn/password"
	"github.com/lanyard/lanyard/authn/policy"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/adsync"
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

	// OnOutbox, when set, is called with the organisations that got a
	// sealed password event, after Set or SetFromAD committed it (SetTx
	// cannot know when its caller commits: the agents' long polls find
	// those changes by polling). Set it before first use.
	OnOutbox func(orgIDs ...string)
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

// Set sets u's password in its own transaction; see SetTx. The costly
// part (hashing the password and comparing it with the reuse history) runs
// before the transaction, so that the database's write lock is not held
// through it.
func (p *Passwords) Set(ctx context.Context, u directory.User, pw, source string, by directory.AuditEvent) error {
	pre, err := p.prepare(ctx, p.dir, u, pw)
	if err != nil {
		return err
	}
	var sealed []string
	err = p.dir.InTx(ctx, func(tx directory.Store) error {
		var err error
		sealed, err = p.commit(ctx, tx, u, pw, source, by, "", pre)
		return err
	})
	if err == nil && len(sealed) > 0 && p.OnOutbox != nil {
		p.OnOutbox(sealed...)
	}
	return err
}

// SetTx checks pw against the user's policy and reuse history and, when it
// passes, stores it through st (the caller's transaction): the old hash
// joins the history, a password event goes to the outbox, and an audit
// event records who did it (by's Actor and IP) and how (source). A refused
// password returns *PolicyError.
//
// For each organisation of the user with an active sync agent, the outbox
// event carries pw sealed to that agent (adsync.SealPassword, bound to the
// event and the user); the user's first organisation gets an event without
// a password when it has no agent.
func (p *Passwords) SetTx(ctx context.Context, st directory.Store, u directory.User, pw, source string, by directory.AuditEvent) error {
	pre, err := p.prepare(ctx, st, u, pw)
	if err != nil {
		return err
	}
	_, err = p.commit(ctx, st, u, pw, source, by, "", pre)
	return err
}

// prepared is a password checked against the policy and the reuse history
// and hashed, ready for commit.
type prepared struct {
	hash    string
	checked []string // IDs of the stored passwords it was compared with, newest first
}

// prepare checks pw against u's policy and reuse history as read through
// st, and hashes it.
func (p *Passwords) prepare(ctx context.Context, st directory.Store, u directory.User, pw string) (*prepared, error) {
	pol, pc, _, err := p.PolicyFor(ctx, st, u)
	if err != nil {
		return nil, err
	}
	if v := p.checker.Check(pol, pw, pc); len(v) > 0 {
		return nil, &PolicyError{Violations: v}
	}
	norm := policy.Normalise(pw)
	_, _, recent, err := passwordCreds(ctx, st, u.ID, pol.History)
	if err != nil {
		return nil, err
	}
	pre := &prepared{}
	for _, c := range recent {
		if ok, _, _ := p.hasher.Verify(string(c.Secret), norm); ok {
			return nil, &PolicyError{Violations: []policy.Violation{{Code: CodeReused,
				Message: fmt.Sprintf("You cannot use any of your last %d passwords. Choose a password you have not used before", pol.History)}}}
		}
		pre.checked = append(pre.checked, c.ID)
	}
	if pre.hash, err = p.hasher.Hash(norm); err != nil {
		return nil, &PolicyError{Violations: []policy.Violation{{Code: policy.CodeTooLong, Message: "Your password is too long"}}}
	}
	return pre, nil
}

// passwordCreds returns u's current password (nil when none), the history
// (newest first) and the passwords the reuse rule compares with: the
// current one and the history, newest first, at most history of them.
func passwordCreds(ctx context.Context, st directory.Store, userID string, history int) (current *directory.Credential, old, recent []directory.Credential, err error) {
	creds, err := st.Credentials(ctx, userID, "")
	if err != nil {
		return nil, nil, nil, err
	}
	for _, c := range creds {
		switch c.Type {
		case directory.CredentialPassword:
			current = &c
		case directory.CredentialPasswordHistory:
			old = append(old, c)
		}
	}
	slices.SortFunc(old, func(a, b directory.Credential) int { return b.CreatedAt.Compare(a.CreatedAt) }) // newest first
	recent = old
	if current != nil {
		recent = append([]directory.Credential{*current}, old...)
	}
	return current, old, recent[:min(len(recent), max(history, 0))], nil
}

// commit stores the prepared password through st (a transaction). When the
// policy or the stored passwords changed since prepare (another change
// committed in between), it prepares again inside the transaction. It
// returns the organisations that got a sealed event; fromOrg, when set, is
// the organisation whose Active Directory the password came from, which
// gets no outbox event (no echo).
func (p *Passwords) commit(ctx context.Context, st directory.Store, u directory.User, pw, source string, by directory.AuditEvent, fromOrg string, pre *prepared) (sealed []string, err error) {
	pol, _, orgID, err := p.PolicyFor(ctx, st, u)
	if err != nil {
		return nil, err
	}
	current, history, recent, err := passwordCreds(ctx, st, u.ID, pol.History)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(recent))
	for i, c := range recent {
		ids[i] = c.ID
	}
	if !slices.Equal(ids, pre.checked) {
		if pre, err = p.prepare(ctx, st, u, pw); err != nil {
			return nil, err
		}
	}
	now := p.now()
	if current != nil {
		old := *current
		old.Type = directory.CredentialPasswordHistory
		if err := st.PutCredential(ctx, old); err != nil {
			return nil, err
		}
		history = append([]directory.Credential{old}, history...)
	}
	for _, c := range history[min(len(history), max(pol.History-1, 0)):] {
		if err := st.DeleteCredential(ctx, u.ID, c.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
			return nil, err
		}
	}
	if err := st.PutCredential(ctx, directory.Credential{
		ID: directory.NewID(), UserID: u.ID, Type: directory.CredentialPassword, Secret: []byte(pre.hash), CreatedAt: now,
	}); err != nil {
		return nil, err
	}
	if source != directory.PasswordSourceAD {
		// The conflict rule: an AD change made before now is older than this one.
		if _, err := st.AdvancePasswordOrigin(ctx, u.ID, now); err != nil {
			return nil, err
		}
	}
	// The outbox before the audit log, in every transaction (lock order).
	if sealed, err = p.outbox(ctx, st, u, pw, source, orgID, fromOrg, now); err != nil {
		return nil, err
	}
	by.Time, by.Action, by.Target, by.OrgID, by.Outcome = now, "password.set", u.ID, orgID, directory.OutcomeSuccess
	by.Detail = map[string]string{"source": source}
	if _, err = st.AppendAudit(ctx, by); err != nil {
		return nil, err
	}
	return sealed, nil
}

// outbox appends the change's password events: one sealed to the active
// sync agent of each of the user's organisations except fromOrg, and one
// without a password for the first organisation (primary) when it has no
// agent and is not fromOrg.
func (p *Passwords) outbox(ctx context.Context, st directory.Store, u directory.User, pw, source, primary, fromOrg string, now time.Time) (sealed []string, err error) {
	ms, err := st.Memberships(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	orgs := make([]string, 0, len(ms)+1)
	for _, m := range ms {
		orgs = append(orgs, m.OrgID)
	}
	if !slices.Contains(orgs, primary) {
		orgs = append(orgs, primary) // "" for a user of no organisation
	}
	for _, org := range orgs {
		if org == fromOrg && fromOrg != "" {
			continue
		}
		e := directory.PasswordEvent{ID: directory.NewID(), UserID: u.ID, OrgID: org, Source: source, Time: now}
		if org != "" {
			a, err := st.ActiveSyncAgent(ctx, org)
			switch {
			case err == nil:
				key, err := ecdh.X25519().NewPublicKey(a.SealKey)
				if err != nil {
					return nil, fmt.Errorf("sync agent %s of organisation %s: sealing key: %w", a.ID, org, err)
				}
				if e.Sealed, err = adsync.SealPassword(key, e.ID, u.ID, pw); err != nil {
					return nil, err
				}
			case !errors.Is(err, directory.ErrNotFound):
				return nil, err
			}
		}
		if e.Sealed == nil && org != primary {
			continue
		}
		if _, err := st.AppendPasswordEvent(ctx, e); err != nil {
			return nil, err
		}
		if e.Sealed != nil {
			sealed = append(sealed, org)
		}
	}
	return sealed, nil
}

// ErrStale is an AD change not newer than the last password change
// applied to the user (the conflict rule): it is dropped.
var ErrStale = adsync.ErrStaleChange

// OrgPolicy returns the policy of the organisation orgID (the national
// one tightened by it) and what a guesser knows of it: the policy an AD
// account of that organisation not linked to any user gets.
func (p *Passwords) OrgPolicy(ctx context.Context, orgID string) (policy.Policy, policy.Context, error) {
	o, err := p.dir.Organisation(ctx, orgID)
	if err != nil {
		return p.national, policy.Context{}, err
	}
	op, err := p.dir.OrgPolicy(ctx, orgID)
	if err != nil {
		return p.national, policy.Context{}, err
	}
	return p.national.Tighten(FromOrg(op)), policy.Context{OrgName: o.Name, ODSCode: o.ODSCode}, nil
}

// SetFromAD applies a password change made in the Active Directory of the
// organisation orgID to u, in its own transaction: the policy and reuse
// history are checked as for any change (a refusal is *PolicyError), the
// old hash joins the history and the expiry restarts, and the user's
// sessions are kept. changedAt is the change's time in AD (pwdLastSet):
// when it is not later than the last change applied to u from either side,
// nothing is set and the error is ErrStale. No outbox event is written for
// orgID (no echo); the user's other organisations with agents get one. by
// is audited as for SetTx; within is called in the same transaction after
// a successful set or a stale drop (to record the change's ID), with the
// outcome error (nil or ErrStale), and its error rolls everything back.
func (p *Passwords) SetFromAD(ctx context.Context, orgID string, u directory.User, pw string, changedAt time.Time, by directory.AuditEvent,
	within func(tx directory.Store, err error) error) error {
	var (
		stale  bool
		sealed []string
	)
	// Hash outside the transaction (see Set); a refusal is reported only
	// when the change is not stale, as the conflict rule comes first.
	pre, preErr := p.prepare(ctx, p.dir, u, pw)
	err := p.dir.InTx(ctx, func(tx directory.Store) error {
		stale, sealed = false, nil
		advanced, err := tx.AdvancePasswordOrigin(ctx, u.ID, changedAt)
		if err != nil {
			return err
		}
		if !advanced {
			stale = true
			return within(tx, ErrStale)
		}
		if preErr != nil {
			return preErr
		}
		if sealed, err = p.commit(ctx, tx, u, pw, directory.PasswordSourceAD, by, orgID, pre); err != nil {
			return err
		}
		return within(tx, nil)
	})
	if err == nil && stale {
		return ErrStale
	}
	if err == nil && len(sealed) > 0 && p.OnOutbox != nil {
		p.OnOutbox(sealed...)
	}
	return err
}

// CheckCandidate tells whether pw would be accepted for u as a new
// password, reuse history included; the current password is accepted (it
// is what Lanyard already holds, as when the sync agent writes it into AD).
// nil means acceptable.
func (p *Passwords) CheckCandidate(ctx context.Context, u directory.User, pw string) ([]policy.Violation, error) {
	pol, pc, _, err := p.PolicyFor(ctx, p.dir, u)
	if err != nil {
		return nil, err
	}
	if v := p.checker.Check(pol, pw, pc); len(v) > 0 {
		return v, nil
	}
	creds, err := p.dir.Credentials(ctx, u.ID, "")
	if err != nil {
		return nil, err
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
	norm := policy.Normalise(pw)
	if current != nil {
		if ok, _, _ := p.hasher.Verify(string(current.Secret), norm); ok {
			return nil, nil
		}
	}
	slices.SortFunc(history, func(a, b directory.Credential) int { return b.CreatedAt.Compare(a.CreatedAt) })
	for i, c := range history {
		if i >= pol.History-1 {
			break
		}
		if ok, _, _ := p.hasher.Verify(string(c.Secret), norm); ok {
			return []policy.Violation{{Code: CodeReused,
				Message: fmt.Sprintf("You cannot use any of your last %d passwords. Choose a password you have not used before", pol.History)}}, nil
		}
	}
	return nil, nil
}

// CheckPolicy tells whether pw is acceptable under the policy pol (the
// national one tightened by an organisation's) for someone described by
// pc, without any user's history. nil means acceptable.
func (p *Passwords) CheckPolicy(pol policy.Policy, pw string, pc policy.Context) []policy.Violation {
	return p.checker.Check(pol, pw, pc)
}

// National returns the national policy.
func (p *Passwords) National() policy.Policy { return p.national }

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
