package adsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// pullLoop long-polls Lanyard's changes and applies them to AD in order,
// acknowledging each with its result. A change is acknowledged only after
// its result is in the journal; one that AD could not be reached for is
// left unacknowledged and asked for again after a backoff.
func (a *Agent) pullLoop(ctx context.Context) {
	var after int64
	lbo, abo := a.newBackoff(), a.newBackoff()
	for ctx.Err() == nil {
		if err := a.flushAcks(ctx); err != nil {
			a.log.Warn("acknowledging changes failed; retrying", "err", err, "pending", len(a.pending))
			sleep(ctx, lbo.next())
			continue
		}
		cs, err := a.lanyard.Changes(ctx, after, a.cfg.Poll.Changes)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("fetching changes from lanyard failed; retrying", "err", err)
			sleep(ctx, lbo.next())
			continue
		}
		a.touchLanyard()
		lbo.reset()
		adDown := false
		for _, c := range cs.Changes {
			ack, err := a.applyChange(ctx, c)
			if err != nil {
				if ctx.Err() == nil {
					a.log.Warn("active directory unavailable; change kept for later", "change", c.ID, "err", err)
				}
				adDown = true
				break
			}
			a.pending = append(a.pending, ack)
			after = c.Seq
		}
		if err := a.flushAcks(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("acknowledging changes failed; retrying", "err", err, "pending", len(a.pending))
			sleep(ctx, lbo.next())
		}
		if adDown {
			sleep(ctx, abo.next())
		} else {
			abo.reset()
		}
		a.mu.Lock()
		err = a.j.maybeCompact(a.now())
		a.mu.Unlock()
		if err != nil {
			a.log.Error("compacting the journal failed", "err", err)
		}
	}
}

// flushAcks sends the pending acknowledgements, a hundred at a time.
func (a *Agent) flushAcks(ctx context.Context) error {
	for len(a.pending) > 0 {
		batch := a.pending[:min(len(a.pending), 100)]
		if err := a.lanyard.Ack(ctx, batch...); err != nil {
			if !retryLater(err) {
				// Lanyard will never take these; they are in its outbox
				// still and come back on the next poll.
				a.log.Error("lanyard refused acknowledgements", "err", err, "count", len(batch))
				a.pending = a.pending[len(batch):]
				continue
			}
			return err
		}
		a.touchLanyard()
		a.mu.Lock()
		for _, k := range batch {
			if err := a.j.append(jrec{K: "acked", ID: k.ID, At: a.now().Unix()}, false); err != nil {
				a.log.Error("journal", "err", err)
			}
		}
		a.mu.Unlock()
		a.pending = a.pending[len(batch):]
	}
	a.pending = nil
	return nil
}

// changeSettle is how old a Lanyard change must be before the agent writes
// it (see applyChange). It adds at most this much to Lanyard → AD latency.
const changeSettle = 1500 * time.Millisecond

// applyChange applies one Lanyard change to AD and returns its
// acknowledgement. It returns an error only when AD could not be reached
// (or ctx ended): the change must then be tried again later. Applying the
// same change twice writes AD at most once, across restarts too.
func (a *Agent) applyChange(ctx context.Context, c Change) (Ack, error) {
	a.mu.Lock()
	rec := a.j.changes[c.ID]
	var done bool
	var prev jchange
	if rec != nil {
		prev, done = *rec, rec.Done
	}
	a.mu.Unlock()
	if done {
		return Ack{ID: c.ID, Result: prev.Result, GUID: prev.GUID, Detail: prev.Detail}, nil
	}
	// Let a fresh change settle first: an AD change made at about the same
	// time then has committed, and the conflict rule below sees it, rather
	// than this write landing between the account's read and that change
	// and overwriting the newer password. (A wait of at most changeSettle,
	// whatever the two clocks say.)
	if wait := min(c.Time.Add(changeSettle).Sub(a.now()), changeSettle); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Ack{}, ctx.Err()
		case <-t.C:
		}
	}
	log := a.log.With("change", c.ID, "user_id", c.UserID)

	acct, found, err := a.dir.AccountForChange(ctx, c.GUID, c.Email)
	if err != nil {
		if errors.Is(err, ErrADUnavailable) || ctx.Err() != nil {
			return Ack{}, err
		}
		return a.finish(log, c, "", ResultUnmatched, fmt.Sprintf("looking up the account failed: %v", err), 0)
	}
	a.touchAD()
	if !found {
		return a.finish(log, c, "", ResultUnmatched, "no AD account with this objectGUID, userPrincipalName or mail", 0)
	}
	if rec != nil && acct.GUID == prev.GUID && acct.PwdLastSet != prev.Pre {
		// A crash after the write and before its result was recorded:
		// pwdLastSet moved, so the write happened.
		return a.finish(log, c, acct.GUID, ResultApplied, "written before a restart", acct.PwdLastSet)
	}
	a.mu.Lock()
	own := a.j.own[acct.GUID]
	a.mu.Unlock()
	if t := acct.PasswordTime(); t.After(c.Time) && acct.PwdLastSet != own {
		return a.finish(log, c, acct.GUID, ResultStale,
			fmt.Sprintf("AD's password was set at %s, after this change", t.Format("2006-01-02T15:04:05.000Z07:00")), 0)
	}
	pw, err := OpenPassword(a.keys.Seal, c.ID, c.UserID, c.Sealed)
	if err != nil {
		return a.finish(log, c, acct.GUID, ResultRefused, "the sealed password cannot be opened with this agent's key", 0)
	}
	unmark, err := markOwnWrite(a.cfg.StateDir, a.keys, acct.SAM, pw)
	if err != nil {
		return Ack{}, err
	}
	defer unmark()
	a.mu.Lock()
	err = a.j.append(jrec{K: "intent", ID: c.ID, GUID: acct.GUID, Pre: acct.PwdLastSet}, true)
	a.mu.Unlock()
	if err != nil {
		return Ack{}, err
	}
	a.stats.adWrites.Add(1)
	if err := a.dir.SetPassword(ctx, acct.DN, pw); err != nil {
		if errors.Is(err, ErrADRefused) {
			return a.finish(log, c, acct.GUID, ResultRefused, err.Error(), 0)
		}
		return Ack{}, err
	}
	a.touchAD()
	after, err := a.dir.Account(ctx, acct.DN)
	if err != nil {
		// Written; the intent settles it on the next delivery.
		return Ack{}, err
	}
	set := after.PwdLastSet
	if hooked, ok := ownWriteTime(a.cfg.StateDir, a.keys, acct.SAM, pw); ok && a.capturedAfter(acct.SAM, hooked) {
		// A change made in AD ran the hook after this write did, so the
		// pwdLastSet read now may be that change's: claiming it as this
		// agent's own would keep that change's candidate from ever being
		// confirmed. Claim nothing; the candidate settles it.
		set = 0
	}
	return a.finish(log, c, acct.GUID, ResultApplied, "", set)
}

// capturedAfter reports whether the spool holds a candidate for sam
// captured after t.
func (a *Agent) capturedAfter(sam string, t time.Time) bool {
	names, err := listCandidates(a.cfg.StateDir, spoolDir)
	if err != nil {
		return false
	}
	for _, n := range names {
		c, err := readCandidate(a.cfg.StateDir, spoolDir, n)
		if err == nil && strings.EqualFold(c.SAM, sam) && c.CapturedAt.After(t) {
			return true
		}
	}
	return false
}

// finish records a change's result durably and returns its ack. set is
// the account's pwdLastSet after the agent's own write, or 0.
func (a *Agent) finish(log *slog.Logger, c Change, guid, result, detail string, set int64) (Ack, error) {
	a.mu.Lock()
	err := a.j.append(jrec{K: "done", ID: c.ID, GUID: guid, Result: result, Detail: detail, Set: set}, true)
	a.mu.Unlock()
	if err != nil {
		return Ack{}, err
	}
	switch result {
	case ResultApplied:
		a.stats.applied.Add(1)
		log.Info("password written to AD", "outcome", result, "guid", guid)
	case ResultStale:
		a.stats.stale.Add(1)
		log.Info("change older than AD's password; not written", "outcome", result, "guid", guid, "reason", detail)
	case ResultUnmatched:
		a.stats.unmatched.Add(1)
		log.Info("no AD account for the change", "outcome", result, "reason", detail)
	case ResultRefused:
		a.stats.refused.Add(1)
		log.Warn("AD refused the password", "outcome", result, "guid", guid, "reason", detail)
	}
	return Ack{ID: c.ID, Result: result, GUID: guid, Detail: detail}, nil
}
