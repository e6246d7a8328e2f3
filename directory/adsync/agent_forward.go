package adsync

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The DC's hook runs inside the operation that changes the password,
// after the DC took the time it stores as pwdLastSet and before it
// commits. So the candidate a committed pwdLastSet P belongs to is the
// first one captured at or after P, within the hook's time limit. Both
// times are the DC's clock.
//
// A pwdLastSet that the agent already saw before a candidate was captured
// cannot be that candidate's commit (the commit comes after the hook), so
// it confirms nothing: this keeps a candidate AD refused after the hook
// (wrong old password, history) from being taken for an earlier change
// that had no candidate (made before the hook was installed).
const (
	// confirmSlack is how long before P a capture may be taken as P's.
	// None: the DC reads the clock for P before it runs the hook, and a
	// hook run before P (a candidate refused after the hook, followed at
	// once by another change) must not be taken for it.
	confirmSlack = 0
	// confirmWindow is how long after P the hook may start. It starts
	// within milliseconds (tens on a busy DC); Samba kills it after 10 s.
	confirmWindow = 3 * time.Second
)

// seenMark is a pwdLastSet the agent saw for an account and when it first
// saw it.
type seenMark struct {
	pwdLastSet int64
	at         time.Time
}

// see records acct's pwdLastSet as seen at now, unless already seen.
func (a *Agent) see(acct ADAccount, now time.Time) {
	g, err := ParseGUID(acct.GUID)
	if err != nil {
		return
	}
	k := [16]byte(g)
	a.seenMu.Lock()
	if m, ok := a.seen[k]; !ok || m.pwdLastSet != acct.PwdLastSet {
		a.seen[k] = seenMark{acct.PwdLastSet, now}
	}
	a.seenMu.Unlock()
}

// seenBefore reports whether acct's current pwdLastSet was seen before t.
func (a *Agent) seenBefore(acct ADAccount, t time.Time) bool {
	g, err := ParseGUID(acct.GUID)
	if err != nil {
		return false
	}
	a.seenMu.Lock()
	m, ok := a.seen[[16]byte(g)]
	a.seenMu.Unlock()
	return ok && m.pwdLastSet == acct.PwdLastSet && m.at.Before(t)
}

// candidateLoop watches the spool for captured passwords, moves those AD
// committed to the outbox, and forwards the outbox to Lanyard in the order
// AD committed them.
func (a *Agent) candidateLoop(ctx context.Context) {
	abo, lbo := a.newBackoff(), a.newBackoff()
	var scanAfter, sendAfter time.Time
	tick := time.NewTicker(a.cfg.Poll.Candidates)
	defer tick.Stop()
	for {
		now := time.Now()
		if !now.Before(scanAfter) {
			if err := a.scanSpool(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				a.log.Warn("checking captured passwords against AD failed; retrying", "err", err)
				scanAfter = now.Add(abo.next())
			} else {
				abo.reset()
			}
		}
		if !now.Before(sendAfter) {
			if err := a.forwardOutbox(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				a.log.Warn("forwarding AD changes to lanyard failed; retrying", "err", err)
				sendAfter = now.Add(lbo.next())
			} else {
				lbo.reset()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// scanSpool confirms, supersedes or expires the spooled candidates.
func (a *Agent) scanSpool(ctx context.Context) error {
	names, err := listCandidates(a.cfg.StateDir, spoolDir)
	if err != nil || len(names) == 0 {
		clear(a.cands)
		return err
	}
	now := a.now()
	live := make(map[string]bool, len(names))
	bySAM := map[string][]string{}
	for _, n := range names {
		live[n] = true
		c, ok := a.cands[n]
		if !ok {
			c, err = readCandidate(a.cfg.StateDir, spoolDir, n)
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				a.log.Error("dropping an unreadable spool file", "file", n, "err", err)
				a.drop(n, "")
				continue
			}
			a.cands[n] = c
		}
		if now.Sub(c.CapturedAt) > a.cfg.CandidateTTL {
			a.stats.expired.Add(1)
			a.log.Info("captured password never committed by AD; dropped", "candidate", c.ID, "sam", c.SAM, "outcome", "expired")
			a.drop(n, c.ID)
			continue
		}
		k := strings.ToLower(c.SAM)
		bySAM[k] = append(bySAM[k], n)
	}
	for n := range a.cands {
		if !live[n] {
			delete(a.cands, n)
		}
	}
	if len(bySAM) == 0 {
		return nil
	}
	accts, err := a.dir.AccountsBySAM(ctx, slices.Sorted(maps.Keys(bySAM)))
	if err != nil {
		return err
	}
	// The answer shows AD as it was at some moment before now: now is when
	// its pwdLastSets were surely visible (see seenBefore).
	now = a.now()
	a.touchAD()
	for sam, ns := range bySAM {
		acct, ok := accts[sam]
		if !ok {
			continue // renamed or not visible yet: wait, or expire
		}
		if err := a.settle(acct, ns); err != nil {
			return err
		}
		a.see(acct, now)
	}
	return nil
}

// settle decides the candidates of one account (names in capture order)
// against its current pwdLastSet.
func (a *Agent) settle(acct ADAccount, names []string) error {
	if acct.PwdLastSet == 0 {
		return nil // "must change at next logon": nothing to confirm by
	}
	p := acct.PasswordTime()
	a.mu.Lock()
	usable := acct.PwdLastSet != a.j.own[acct.GUID] && acct.PwdLastSet > a.j.confirmed[acct.GUID]
	a.mu.Unlock()
	match := -1
	if usable {
		for i, n := range names {
			c := a.cands[n].CapturedAt
			if !c.Before(p.Add(-confirmSlack)) && !c.After(p.Add(confirmWindow)) && !a.seenBefore(acct, c) {
				match = i
				break
			}
		}
	}
	for i, n := range names {
		c := a.cands[n]
		if (match >= 0 && i < match) || (match < 0 && c.CapturedAt.Before(p.Add(-confirmSlack))) {
			a.stats.superseded.Add(1)
			a.log.Info("captured password replaced by a later one in AD; dropped", "candidate", c.ID, "sam", c.SAM, "outcome", "superseded")
			a.drop(n, c.ID)
		}
	}
	if match < 0 {
		if usable {
			a.log.Debug("captured passwords wait for AD to commit", "sam", acct.SAM, "pwd_last_set", p, "pending", len(names))
		}
		return nil
	}
	n := names[match]
	c := a.cands[n]
	c.GUID, c.Mail, c.ChangedAt, c.USN = acct.GUID, acct.Mail, p, acct.USN
	if acct.UPN != "" {
		c.UPN = acct.UPN
	}
	if err := writeCandidate(a.cfg.StateDir, outboxDir, c); err != nil {
		return err
	}
	a.mu.Lock()
	err := a.j.append(jrec{K: "confirmed", GUID: acct.GUID, Set: acct.PwdLastSet}, true)
	a.mu.Unlock()
	if err != nil {
		return err
	}
	a.stats.confirmed.Add(1)
	a.log.Debug("AD committed a captured password", "candidate", c.ID, "guid", c.GUID)
	a.drop(n, c.ID)
	return nil
}

// drop removes a spool file.
func (a *Agent) drop(name, id string) {
	delete(a.cands, name)
	if err := removeSync(a.cfg.StateDir, spoolDir, name); err != nil {
		a.log.Error("removing a spool file failed", "file", name, "err", err)
	}
}

// forwardOutbox sends the committed AD changes to Lanyard, oldest first,
// and removes each once Lanyard gave a final outcome.
func (a *Agent) forwardOutbox(ctx context.Context) error {
	names, err := listCandidates(a.cfg.StateDir, outboxDir)
	if err != nil {
		return err
	}
	for _, n := range names {
		c, err := readCandidate(a.cfg.StateDir, outboxDir, n)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		var pw string
		if err == nil {
			pw, err = c.Open(a.keys.Seal)
		}
		if err != nil {
			a.log.Error("dropping an unusable outbox file", "file", n, "err", err)
			os.Remove(filepath.Join(a.cfg.StateDir, outboxDir, n))
			continue
		}
		res, err := a.lanyard.SendADChange(ctx, ADChange{
			ID: c.ID, GUID: c.GUID, UPN: c.UPN, Mail: c.Mail, SAM: c.SAM, ChangedAt: c.ChangedAt, USN: c.USN, Password: pw,
		})
		if err != nil {
			if retryLater(err) {
				return err
			}
			a.log.Error("lanyard refused an AD change; dropped", "candidate", c.ID, "guid", c.GUID, "err", err)
			a.stats.fwdOther.Add(1)
		} else {
			a.touchLanyard()
			switch res.Outcome {
			case OutcomeApplied:
				a.stats.forwarded.Add(1)
			case OutcomeDuplicate:
				a.stats.fwdDuplicate.Add(1)
			case OutcomeStale:
				a.stats.fwdStale.Add(1)
			default:
				a.stats.fwdOther.Add(1)
			}
			a.log.Info("AD change sent to lanyard", "candidate", c.ID, "guid", c.GUID, "user_id", res.UserID, "outcome", res.Outcome, "reason", res.Detail)
		}
		if err := removeSync(a.cfg.StateDir, outboxDir, n); err != nil {
			return err
		}
	}
	return nil
}

// housekeeping refreshes the cached offline policy, reports AD's accounts
// for linking, and clears what a crash may have left behind.
func (a *Agent) housekeeping(ctx context.Context) {
	var policyAt, accountsAt time.Time
	pbo, abo := a.newBackoff(), a.newBackoff()
	tick := time.NewTicker(min(time.Second, a.cfg.Poll.Policy, a.cfg.Poll.Accounts))
	defer tick.Stop()
	for {
		now := time.Now()
		if !now.Before(policyAt) {
			if err := a.refreshPolicy(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				a.log.Warn("fetching the offline policy failed; retrying", "err", err)
				policyAt = now.Add(pbo.next())
			} else {
				pbo.reset()
				policyAt = now.Add(a.cfg.Poll.Policy)
			}
		}
		if !now.Before(accountsAt) {
			if err := a.reportAccounts(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				a.log.Warn("reporting accounts for linking failed; retrying", "err", err)
				accountsAt = now.Add(abo.next())
			} else {
				abo.reset()
				accountsAt = now.Add(a.cfg.Poll.Accounts)
			}
		}
		old := now.Add(-time.Minute)
		for _, d := range []string{spoolDir, outboxDir, ""} {
			removeStaleTemps(filepath.Join(a.cfg.StateDir, d), old)
		}
		a.clearOwnMarks(old)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// clearOwnMarks removes own-write marks a crash left (a mark lives only
// for the duration of one LDAP modify).
func (a *Agent) clearOwnMarks(before time.Time) {
	dir := filepath.Join(a.cfg.StateDir, ownDir)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(before) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func (a *Agent) refreshPolicy(ctx context.Context) error {
	op, err := a.lanyard.Policy(ctx)
	if err != nil {
		return err
	}
	a.touchLanyard()
	if op.FetchedAt.IsZero() {
		op.FetchedAt = a.now().UTC()
	}
	return writeCachedPolicy(a.cfg.StateDir, op)
}

// maxAccountsReport is the most accounts sent in one request; a larger
// directory is sent in parts, none of them Complete.
const maxAccountsReport = 10000

// reportAccounts sends AD's user accounts to Lanyard for linking.
func (a *Agent) reportAccounts(ctx context.Context) error {
	var batch []Account
	parts, total := 0, 0
	send := func(complete bool) error {
		links, err := a.lanyard.Accounts(ctx, Accounts{Accounts: batch, Complete: complete})
		if err != nil {
			return err
		}
		a.touchLanyard()
		a.log.Debug("accounts reported", "accounts", len(batch), "links", len(links.Links),
			"unmatched_ad", len(links.UnmatchedAD), "unmatched_lanyard", len(links.UnmatchedLanyard))
		parts++
		batch = batch[:0]
		return nil
	}
	err := a.dir.EachAccount(ctx, func(page []ADAccount) error {
		a.touchAD()
		now := a.now()
		for _, ac := range page {
			a.see(ac, now)
			batch = append(batch, Account{GUID: ac.GUID, UPN: ac.UPN, Mail: ac.Mail, SAM: ac.SAM, Disabled: ac.Disabled()})
		}
		total += len(page)
		if len(batch) >= maxAccountsReport {
			return send(false)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(batch) > 0 || parts == 0 {
		if err := send(parts == 0); err != nil {
			return err
		}
	}
	a.stats.accounts.Store(int64(total))
	return nil
}
