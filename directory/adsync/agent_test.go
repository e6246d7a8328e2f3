package adsync

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAD is a directory of accounts kept in memory. Its clock is the
// test's; a password write sets pwdLastSet to it.
type fakeAD struct {
	mu     sync.Mutex
	now    func() time.Time
	accts  map[string]*ADAccount // by GUID
	writes []string              // "sam=password"
	down   bool
}

func (f *fakeAD) add(sam string, pwdLastSet time.Time) ADAccount {
	f.mu.Lock()
	defer f.mu.Unlock()
	g := fmt.Sprintf("00000000-0000-4000-8000-%012d", len(f.accts)+1)
	a := &ADAccount{DN: "CN=" + sam, GUID: g, SAM: sam, UPN: sam + "@trust.local", PwdLastSet: ToFileTime(pwdLastSet), USN: 1}
	f.accts[g] = a
	return *a
}

func (f *fakeAD) AccountForChange(ctx context.Context, guid, email string) (ADAccount, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return ADAccount{}, false, ErrADUnavailable
	}
	for _, a := range f.accts {
		if a.GUID == guid || (guid == "" && strings.EqualFold(a.UPN, email)) {
			return *a, true, nil
		}
	}
	return ADAccount{}, false, nil
}

func (f *fakeAD) AccountsBySAM(ctx context.Context, sams []string) (map[string]ADAccount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, ErrADUnavailable
	}
	out := map[string]ADAccount{}
	for _, a := range f.accts {
		out[strings.ToLower(a.SAM)] = *a
	}
	return out, nil
}

func (f *fakeAD) Account(ctx context.Context, dn string) (ADAccount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.accts {
		if a.DN == dn {
			return *a, nil
		}
	}
	return ADAccount{}, fmt.Errorf("%s not found", dn)
}

func (f *fakeAD) SetPassword(ctx context.Context, dn, pw string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return ErrADUnavailable
	}
	for _, a := range f.accts {
		if a.DN == dn {
			a.PwdLastSet, a.USN = ToFileTime(f.now()), a.USN+1
			f.writes = append(f.writes, a.SAM+"="+pw)
			return nil
		}
	}
	return fmt.Errorf("%s not found", dn)
}

func (f *fakeAD) EachAccount(ctx context.Context, fn func([]ADAccount) error) error {
	f.mu.Lock()
	var page []ADAccount
	for _, a := range f.accts {
		page = append(page, *a)
	}
	f.mu.Unlock()
	return fn(page)
}

// fakeLanyard records what the agent sends.
type fakeLanyard struct {
	mu      sync.Mutex
	acks    []Ack
	changes []ADChange
}

func (f *fakeLanyard) Changes(ctx context.Context, after int64, wait time.Duration) (Changes, error) {
	<-ctx.Done()
	return Changes{}, ctx.Err()
}
func (f *fakeLanyard) Ack(ctx context.Context, acks ...Ack) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acks = append(f.acks, acks...)
	return nil
}
func (f *fakeLanyard) SendADChange(ctx context.Context, ch ADChange) (ADChangeResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, ch)
	return ADChangeResult{Outcome: OutcomeApplied}, nil
}
func (f *fakeLanyard) Policy(ctx context.Context) (OfflinePolicy, error) { return OfflinePolicy{}, nil }
func (f *fakeLanyard) Accounts(ctx context.Context, a Accounts) (Links, error) {
	return Links{}, nil
}

type agentFixture struct {
	cfg   AgentConfig
	keys  PrivateKeys
	clock *time.Time
	ad    *fakeAD
	ly    *fakeLanyard
}

func newAgentFixture(t *testing.T) *agentFixture {
	t.Helper()
	cfg := DefaultAgentConfig()
	cfg.StateDir = t.TempDir()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	f := &agentFixture{cfg: cfg, keys: testKeys(t), clock: &now, ly: &fakeLanyard{}}
	f.ad = &fakeAD{now: f.now, accts: map[string]*ADAccount{}}
	return f
}

func (f *agentFixture) now() time.Time          { return *f.clock }
func (f *agentFixture) advance(d time.Duration) { *f.clock = f.clock.Add(d) }

// agent opens an agent on the fixture's state folder, as after a restart.
func (f *agentFixture) agent(t *testing.T) *Agent {
	t.Helper()
	a, err := NewAgent(f.cfg, f.keys, f.ly, f.ad, slog.New(slog.NewTextHandler(t.Output(), nil)), f.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.j.close() })
	return a
}

func (f *agentFixture) change(t *testing.T, seq int64, acct ADAccount, pw string) Change {
	t.Helper()
	c := Change{Seq: seq, ID: fmt.Sprintf("C%d", seq), UserID: "U-" + acct.SAM, Email: acct.UPN, Time: f.now()}
	var err error
	if c.Sealed, err = SealPassword(f.keys.Seal.PublicKey(), c.ID, c.UserID, pw); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestApplyChangeOnceAcrossRestarts(t *testing.T) {
	f := newAgentFixture(t)
	acct := f.ad.add("jsmith", f.now().Add(-time.Hour))
	a := f.agent(t)
	f.advance(time.Second)
	c := f.change(t, 1, acct, "orchard lantern pebble")
	f.advance(time.Second)
	ack, err := a.applyChange(t.Context(), c)
	if err != nil || ack.Result != ResultApplied || ack.GUID != acct.GUID {
		t.Fatalf("applyChange = %+v, %v", ack, err)
	}
	// Delivered again, now and after a restart: not written again.
	if ack2, _ := a.applyChange(t.Context(), c); ack2 != ack {
		t.Errorf("second delivery = %+v, want %+v", ack2, ack)
	}
	a.j.close()
	if ack3, _ := f.agent(t).applyChange(t.Context(), c); ack3 != ack {
		t.Errorf("delivery after restart = %+v, want %+v", ack3, ack)
	}
	if len(f.ad.writes) != 1 {
		t.Errorf("AD written %d times: %q", len(f.ad.writes), f.ad.writes)
	}
}

func TestApplyChangeAfterCrashMidWrite(t *testing.T) {
	f := newAgentFixture(t)
	acct := f.ad.add("jsmith", f.now().Add(-time.Hour))
	c := f.change(t, 1, acct, "orchard lantern pebble")
	// The agent recorded its intent and AD took the write, then it died.
	a := f.agent(t)
	a.j.append(jrec{K: "intent", ID: c.ID, GUID: acct.GUID, Pre: acct.PwdLastSet}, true)
	f.ad.SetPassword(t.Context(), acct.DN, "orchard lantern pebble")
	a.j.close()
	f.advance(time.Minute)
	ack, err := f.agent(t).applyChange(t.Context(), c)
	if err != nil || ack.Result != ResultApplied {
		t.Fatalf("applyChange = %+v, %v", ack, err)
	}
	if len(f.ad.writes) != 1 {
		t.Errorf("AD written %d times after the restart", len(f.ad.writes))
	}
}

func TestApplyChangeConflictRule(t *testing.T) {
	f := newAgentFixture(t)
	acct := f.ad.add("jsmith", f.now().Add(-time.Hour))
	a := f.agent(t)
	old := f.change(t, 1, acct, "orchard lantern pebble") // made now
	// AD changed after it, by someone else: AD's is newer and wins.
	f.advance(time.Second)
	f.ad.accts[acct.GUID].PwdLastSet = ToFileTime(f.now())
	if ack, err := a.applyChange(t.Context(), old); err != nil || ack.Result != ResultStale {
		t.Fatalf("older change = %+v, %v; want stale", ack, err)
	}
	// A later Lanyard change is written, and the next one made before that
	// write is still written: AD's newer pwdLastSet is the agent's own.
	f.advance(time.Second)
	c2, c3 := f.change(t, 2, acct, "quiet harbour violin"), f.change(t, 3, acct, "amber kettle meadow")
	f.advance(time.Second)
	for _, c := range []Change{c2, c3} {
		if ack, err := a.applyChange(t.Context(), c); err != nil || ack.Result != ResultApplied {
			t.Fatalf("%s = %+v, %v; want applied", c.ID, ack, err)
		}
		f.advance(time.Second)
	}
	if strings.Join(f.ad.writes, ",") != "jsmith=quiet harbour violin,jsmith=amber kettle meadow" {
		t.Errorf("writes %q", f.ad.writes)
	}
	// AD down: an error, nothing recorded, applied later.
	f.ad.down = true
	c4 := f.change(t, 4, acct, "silver fox glacier")
	if _, err := a.applyChange(t.Context(), c4); err == nil {
		t.Fatal("no error while AD is down")
	}
	f.ad.down = false
	if ack, err := a.applyChange(t.Context(), c4); err != nil || ack.Result != ResultApplied {
		t.Fatalf("after AD returned = %+v, %v", ack, err)
	}
	// No AD account: unmatched.
	c5 := f.change(t, 5, ADAccount{SAM: "nobody", UPN: "nobody@trust.local"}, "silver fox glacier")
	if ack, _ := a.applyChange(t.Context(), c5); ack.Result != ResultUnmatched {
		t.Errorf("unknown account = %+v", ack)
	}
}

// spool captures a candidate for sam at the fixture's time.
func (f *agentFixture) spool(t *testing.T, sam, pw string) Candidate {
	t.Helper()
	c, err := NewCandidate(f.keys.Seal.PublicKey(), sam, "", pw, f.now())
	if err != nil {
		t.Fatal(err)
	}
	if err := writeCandidate(f.cfg.StateDir, spoolDir, c); err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *agentFixture) commit(guid string) {
	f.ad.accts[guid].PwdLastSet = ToFileTime(f.now())
}

func TestCandidatesConfirmedOnlyByTheirCommit(t *testing.T) {
	f := newAgentFixture(t)
	acct := f.ad.add("jsmith", f.now().Add(-time.Hour))
	a := f.agent(t)
	ctx := t.Context()
	scan := func() {
		t.Helper()
		if err := a.scanSpool(ctx); err != nil {
			t.Fatal(err)
		}
	}
	outbox := func() []string {
		names, _ := listCandidates(f.cfg.StateDir, outboxDir)
		var pws []string
		for _, n := range names {
			c, _ := readCandidate(f.cfg.StateDir, outboxDir, n)
			pw, _ := c.Open(f.keys.Seal)
			pws = append(pws, pw)
		}
		return pws
	}
	// Before the DC commits: waits.
	f.advance(time.Second)
	f.commit(acct.GUID) // an earlier change the agent has seen (listing accounts)…
	if err := a.reportAccounts(ctx); err != nil {
		t.Fatal(err)
	}
	f.advance(time.Second)
	f.spool(t, "JSmith", "refused after the hook") // …then a candidate AD refuses
	f.advance(100 * time.Millisecond)
	scan()
	if got := outbox(); len(got) != 0 {
		t.Fatalf("a candidate AD never committed was confirmed: %q", got)
	}
	// A good change: the DC reads the clock, runs the hook, commits.
	f.advance(time.Second)
	f.commit(acct.GUID)
	f.advance(10 * time.Millisecond)
	f.spool(t, "jsmith", "the good one")
	scan()
	if got := outbox(); strings.Join(got, ",") != "the good one" {
		t.Fatalf("outbox %q, want the good one only", got)
	}
	if s := a.Stats(); s.Superseded != 1 || s.Confirmed != 1 || s.Spool != 0 {
		t.Errorf("stats %+v", s)
	}
	// The agent's own write confirms nothing, not even a candidate caught
	// just after it.
	f.advance(time.Second)
	c := f.change(t, 1, acct, "from lanyard")
	f.advance(time.Second)
	if _, err := a.applyChange(ctx, c); err != nil {
		t.Fatal(err)
	}
	f.advance(10 * time.Millisecond)
	f.spool(t, "jsmith", "not the agent's")
	scan()
	if got := outbox(); len(got) != 1 {
		t.Errorf("outbox %q after the agent's own write", got)
	}
	// Forwarded in order, then gone.
	if err := a.forwardOutbox(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.ly.changes) != 1 || f.ly.changes[0].Password != "the good one" || f.ly.changes[0].GUID != acct.GUID {
		t.Errorf("sent %+v", f.ly.changes)
	}
	// Expired after the TTL.
	f.advance(f.cfg.CandidateTTL + time.Second)
	scan()
	if s := a.Stats(); s.Expired != 1 || s.Spool != 0 || s.Outbox != 0 {
		t.Errorf("stats after the TTL %+v", s)
	}
}

func TestJournalSurvivesTornLine(t *testing.T) {
	f := newAgentFixture(t)
	a := f.agent(t)
	a.j.append(jrec{K: "done", ID: "C1", GUID: "g", Result: ResultApplied, Set: 42}, true)
	a.j.f.Write([]byte(`{"k":"done","id":"C2","res":"appl`)) // a crash mid-append
	a.j.close()
	j, err := openJournal(f.cfg.StateDir, f.now())
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if c := j.changes["C1"]; c == nil || !c.Done || j.own["g"] != 42 {
		t.Errorf("C1 lost: %+v", j.changes)
	}
	if j.changes["C2"] != nil {
		t.Error("a torn record was applied")
	}
	// Acknowledged long ago: forgotten at the next compaction.
	j.append(jrec{K: "acked", ID: "C1", At: f.now().Add(-time.Hour).Unix()}, false)
	if err := j.compact(f.now()); err != nil {
		t.Fatal(err)
	}
	if j.changes["C1"] != nil || j.own["g"] != 42 {
		t.Errorf("after compaction: %+v %v", j.changes, j.own)
	}
}

func TestBackoff(t *testing.T) {
	b := &backoff{min: 100 * time.Millisecond, max: 2 * time.Second}
	for i := range 12 {
		d := b.next()
		ceil := min(100*time.Millisecond<<i, 2*time.Second)
		if d < ceil/2 || d > ceil {
			t.Errorf("wait %d = %v, want within [%v, %v]", i, d, ceil/2, ceil)
		}
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Errorf("after reset %v", d)
	}
}
