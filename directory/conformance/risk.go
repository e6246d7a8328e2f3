package conformance

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lanyard/lanyard/directory"
)

// The risk engine's profiles, events, digest claims and thresholds.

// riskTests are the risk subtests; Run runs them with the rest.
var riskTests = []struct {
	name string
	fn   func(*testing.T, directory.Store)
}{
	{"RiskProfileRoundTrip", testRiskProfile},
	{"RiskProfileErrors", testRiskProfileErrors},
	{"RiskProfileUpdateInTxNotLost", testRiskProfileUpdateInTx},
	{"AccountUnlock", testAccountUnlock},
	{"RiskPopulationRoundTrip", testRiskPopulation},
	{"RiskEventAppendList", testRiskEvents},
	{"RiskEventErrors", testRiskEventErrors},
	{"RiskEventReportedOnce", testRiskEventReport}, // 50 goroutines, 1 winner
	{"RiskDigestClaimedOnce", testRiskDigestClaim}, // 50 goroutines, 1 winner
	{"RiskPolicy", testRiskPolicy},
	{"UsersWithRole", testUsersWithRole},
}

func riskFixture(t *testing.T, s directory.Store) {
	t.Helper()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	mustCreateOrg(t, s, org("org-2", "A81001"))
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	mustCreateUser(t, s, user("user-2", "bob@example.nhs.uk"))
}

func testRiskProfile(t *testing.T, s directory.Store) {
	ctx := t.Context()
	riskFixture(t, s)
	if _, err := s.RiskProfile(ctx, "user-1"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("RiskProfile before any put: %v, want ErrNotFound", err)
	}
	data := bytes.Repeat([]byte{0, 1, 0xff, 'x'}, directory.MaxRiskProfileSize/4) // binary, exactly the limit
	p := directory.RiskProfile{UserID: "user-1", Data: data, UpdatedAt: base.Add(1500 * time.Nanosecond)}
	if err := s.PutRiskProfile(ctx, p); err != nil {
		t.Fatalf("PutRiskProfile: %v", err)
	}
	got, err := s.RiskProfile(ctx, "user-1")
	if err != nil {
		t.Fatalf("RiskProfile: %v", err)
	}
	p.UpdatedAt = base.Add(time.Microsecond)
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("RiskProfile mismatch (-want +got):\n%s", diff)
	}
	p2 := directory.RiskProfile{UserID: "user-1", Data: []byte("replaced"), UpdatedAt: base.Add(time.Hour)}
	if err := s.PutRiskProfile(ctx, p2); err != nil {
		t.Fatalf("PutRiskProfile (replace): %v", err)
	}
	if got, err := s.RiskProfile(ctx, "user-1"); err != nil || !bytes.Equal(got.Data, p2.Data) || !got.UpdatedAt.Equal(p2.UpdatedAt) {
		t.Errorf("after replace: %+v, %v; want %+v", got, err, p2)
	}
	if _, err := s.RiskProfile(ctx, "user-2"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("RiskProfile of another user: %v, want ErrNotFound", err)
	}
}

func testRiskProfileErrors(t *testing.T, s directory.Store) {
	ctx := t.Context()
	riskFixture(t, s)
	for _, c := range []struct {
		name string
		p    directory.RiskProfile
		want error
	}{
		{"unknown user", directory.RiskProfile{UserID: "nobody", Data: []byte("x"), UpdatedAt: base}, directory.ErrNotFound},
		{"empty user", directory.RiskProfile{Data: []byte("x"), UpdatedAt: base}, directory.ErrInvalid},
		{"empty data", directory.RiskProfile{UserID: "user-1", UpdatedAt: base}, directory.ErrInvalid},
		{"too large", directory.RiskProfile{UserID: "user-1", Data: make([]byte, directory.MaxRiskProfileSize+1), UpdatedAt: base}, directory.ErrInvalid},
	} {
		if err := s.PutRiskProfile(ctx, c.p); !errors.Is(err, c.want) {
			t.Errorf("PutRiskProfile(%s) = %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := s.RiskProfile(ctx, "user-1"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("a refused put stored something: %v", err)
	}
	for _, c := range []struct {
		name string
		p    directory.RiskPopulation
	}{
		{"empty key", directory.RiskPopulation{Data: []byte("x")}},
		{"empty data", directory.RiskPopulation{Key: "org-1:staff"}},
		{"too large", directory.RiskPopulation{Key: "org-1:staff", Data: make([]byte, directory.MaxRiskProfileSize+1)}},
	} {
		if err := s.PutRiskPopulation(ctx, c.p); !errors.Is(err, directory.ErrInvalid) {
			t.Errorf("PutRiskPopulation(%s) = %v, want ErrInvalid", c.name, err)
		}
	}
}

func testRiskPopulation(t *testing.T, s directory.Store) {
	ctx := t.Context()
	if _, err := s.RiskPopulation(ctx, "org-1:staff"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("RiskPopulation before any put: %v, want ErrNotFound", err)
	}
	a := directory.RiskPopulation{Key: "org-1:staff", Data: []byte{1, 2, 3}, UpdatedAt: base}
	b := directory.RiskPopulation{Key: "org-1:org-admin", Data: []byte{4}, UpdatedAt: base.Add(time.Second)}
	for _, p := range []directory.RiskPopulation{a, b} {
		if err := s.PutRiskPopulation(ctx, p); err != nil {
			t.Fatalf("PutRiskPopulation(%q): %v", p.Key, err)
		}
	}
	a.Data, a.UpdatedAt = []byte{9, 9}, base.Add(time.Minute)
	if err := s.PutRiskPopulation(ctx, a); err != nil {
		t.Fatalf("PutRiskPopulation (replace): %v", err)
	}
	for _, want := range []directory.RiskPopulation{a, b} {
		got, err := s.RiskPopulation(ctx, want.Key)
		if err != nil {
			t.Errorf("RiskPopulation(%q): %v", want.Key, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("RiskPopulation(%q) mismatch (-want +got):\n%s", want.Key, diff)
		}
	}
}

func riskEvent(id, userID, orgID string, at time.Time) directory.RiskEvent {
	return directory.RiskEvent{
		ID: id, Time: at, UserID: userID, OrgID: orgID, Decision: directory.RiskStepUp, Score: 7.25,
		Reasons: []string{"new country: France", "unusual hour: Sunday 03:00"}, IP: "203.0.113.9", Place: "Paris, France",
	}
}

func mustAppendRiskEvent(t *testing.T, s directory.Store, evs ...directory.RiskEvent) {
	t.Helper()
	for _, e := range evs {
		if err := s.AppendRiskEvent(t.Context(), e); err != nil {
			t.Fatalf("AppendRiskEvent(%q): %v", e.ID, err)
		}
	}
}

func testRiskEvents(t *testing.T, s directory.Store) {
	ctx := t.Context()
	riskFixture(t, s)
	e1 := riskEvent("ev-1", "user-1", "org-1", base)
	e2 := riskEvent("ev-2", "user-2", "org-1", base.Add(time.Hour))
	e2.Decision, e2.Score, e2.Reasons, e2.Place = directory.RiskBlock, -0.5, nil, ""
	e3 := riskEvent("ev-3", "user-1", "org-2", base.Add(2*time.Hour))
	e4 := riskEvent("ev-4", "user-1", "org-1", base.Add(3*time.Hour))
	e4.Reasons = []string{"bad \xff text\x00"}
	mustAppendRiskEvent(t, s, e3, e1, e4, e2)
	e4.Reasons = []string{"bad \uFFFD text\uFFFD"}

	got, err := s.RiskEvent(ctx, "ev-2")
	if err != nil {
		t.Fatalf("RiskEvent: %v", err)
	}
	if diff := cmp.Diff(e2, got, equateEmpty); diff != "" {
		t.Errorf("RiskEvent mismatch (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		name         string
		org          string
		since, until time.Time
		limit        int
		want         []directory.RiskEvent
	}{
		{"org-1, all", "org-1", base, base.Add(24 * time.Hour), 10, []directory.RiskEvent{e1, e2, e4}},
		{"every org", "", base, base.Add(24 * time.Hour), 10, []directory.RiskEvent{e1, e2, e3, e4}},
		{"until is exclusive", "org-1", base, base.Add(time.Hour), 10, []directory.RiskEvent{e1}},
		{"since is inclusive", "org-1", base.Add(time.Hour), base.Add(24 * time.Hour), 10, []directory.RiskEvent{e2, e4}},
		{"limit", "", base, base.Add(24 * time.Hour), 2, []directory.RiskEvent{e1, e2}},
		{"no limit", "", base, base.Add(24 * time.Hour), 0, nil},
		{"other org", "org-9", base, base.Add(24 * time.Hour), 10, nil},
	} {
		got, err := s.RiskEvents(ctx, c.org, c.since, c.until, c.limit)
		if err != nil {
			t.Errorf("RiskEvents(%s): %v", c.name, err)
			continue
		}
		if diff := cmp.Diff(c.want, got, equateEmpty); diff != "" {
			t.Errorf("RiskEvents(%s) mismatch (-want +got):\n%s", c.name, diff)
		}
	}
	if err := s.SetRiskEventOutcome(ctx, "ev-1", "passed"); err != nil {
		t.Fatalf("SetRiskEventOutcome: %v", err)
	}
	if got, _ := s.RiskEvent(ctx, "ev-1"); got.Outcome != "passed" {
		t.Errorf("outcome %q after SetRiskEventOutcome, want passed", got.Outcome)
	}
	if err := s.SetRiskEventOutcome(ctx, "ev-9", "passed"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("SetRiskEventOutcome(missing) = %v, want ErrNotFound", err)
	}
}

func testRiskEventErrors(t *testing.T, s directory.Store) {
	ctx := t.Context()
	riskFixture(t, s)
	mustAppendRiskEvent(t, s, riskEvent("ev-1", "user-1", "org-1", base))
	allow := riskEvent("ev-2", "user-1", "org-1", base)
	allow.Decision = directory.RiskAllow
	nan := riskEvent("ev-3", "user-1", "org-1", base)
	nan.Score = math.NaN()
	for _, c := range []struct {
		name string
		e    directory.RiskEvent
		want error
	}{
		{"duplicate ID", riskEvent("ev-1", "user-2", "org-1", base), directory.ErrConflict},
		{"unknown user", riskEvent("ev-4", "nobody", "org-1", base), directory.ErrNotFound},
		{"empty ID", riskEvent("", "user-1", "org-1", base), directory.ErrInvalid},
		{"empty user", riskEvent("ev-5", "", "org-1", base), directory.ErrInvalid},
		{"allow is not kept", allow, directory.ErrInvalid},
		{"score not a number", nan, directory.ErrInvalid},
	} {
		if err := s.AppendRiskEvent(ctx, c.e); !errors.Is(err, c.want) {
			t.Errorf("AppendRiskEvent(%s) = %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := s.RiskEvent(ctx, "ev-9"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("RiskEvent(missing) = %v, want ErrNotFound", err)
	}
	if evs, err := s.RiskEvents(ctx, "", base.Add(-time.Hour), base.Add(time.Hour), 10); err != nil || len(evs) != 1 {
		t.Errorf("refused appends stored something: %d events, %v", len(evs), err)
	}
}

func testRiskEventReport(t *testing.T, s directory.Store) {
	ctx := t.Context()
	riskFixture(t, s)
	mustAppendRiskEvent(t, s, riskEvent("ev-1", "user-1", "org-1", base))
	if err := s.ReportRiskEvent(ctx, "ev-9", base); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("ReportRiskEvent(missing) = %v, want ErrNotFound", err)
	}
	if err := s.ReportRiskEvent(ctx, "ev-1", time.Time{}); !errors.Is(err, directory.ErrInvalid) {
		t.Errorf("ReportRiskEvent(zero time) = %v, want ErrInvalid", err)
	}
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			err := s.ReportRiskEvent(ctx, "ev-1", base.Add(time.Duration(i+1)*time.Second))
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, directory.ErrConflict):
				conflicts.Add(1)
			default:
				t.Errorf("ReportRiskEvent: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != racers-1 {
		t.Errorf("%d reports won and %d conflicted, want 1 and %d", wins.Load(), conflicts.Load(), racers-1)
	}
	got, err := s.RiskEvent(ctx, "ev-1")
	if err != nil || got.ReportedAt.IsZero() {
		t.Errorf("after report: ReportedAt %v, %v", got.ReportedAt, err)
	}
}

func testRiskDigestClaim(t *testing.T, s directory.Store) {
	ctx := t.Context()
	riskFixture(t, s)
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			ok, err := s.ClaimRiskDigest(ctx, "org-1", base)
			if err != nil {
				t.Errorf("ClaimRiskDigest: %v", err)
			}
			if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d claims of one digest won, want 1", wins.Load())
	}
	for _, c := range []struct {
		org    string
		period time.Time
		want   bool
	}{
		{"org-1", base, false},
		{"org-1", base.Add(24 * time.Hour), true},
		{"org-2", base, true},
	} {
		if ok, err := s.ClaimRiskDigest(ctx, c.org, c.period); err != nil || ok != c.want {
			t.Errorf("ClaimRiskDigest(%s, %v) = %v, %v; want %v", c.org, c.period, ok, err, c.want)
		}
	}
	if _, err := s.ClaimRiskDigest(ctx, "", base); !errors.Is(err, directory.ErrInvalid) {
		t.Errorf("ClaimRiskDigest(empty org) = %v, want ErrInvalid", err)
	}
}

func testRiskPolicy(t *testing.T, s directory.Store) {
	ctx := t.Context()
	riskFixture(t, s)
	if p, err := s.RiskPolicy(ctx, "org-1"); err != nil || p != (directory.RiskPolicy{}) {
		t.Errorf("RiskPolicy before any put = %+v, %v; want zero", p, err)
	}
	want := directory.RiskPolicy{StepUp: 4.5, Block: 9}
	if err := s.PutRiskPolicy(ctx, "org-1", want); err != nil {
		t.Fatalf("PutRiskPolicy: %v", err)
	}
	if err := s.PutRiskPolicy(ctx, "org-1", directory.RiskPolicy{StepUp: 4}); err != nil {
		t.Fatalf("PutRiskPolicy (replace): %v", err)
	}
	if p, err := s.RiskPolicy(ctx, "org-1"); err != nil || p != (directory.RiskPolicy{StepUp: 4}) {
		t.Errorf("RiskPolicy = %+v, %v; want {StepUp:4}", p, err)
	}
	if p, err := s.RiskPolicy(ctx, "org-2"); err != nil || p != (directory.RiskPolicy{}) {
		t.Errorf("RiskPolicy of another organisation = %+v, %v; want zero", p, err)
	}
	if _, err := s.RiskPolicy(ctx, "org-9"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("RiskPolicy(unknown org) = %v, want ErrNotFound", err)
	}
	if err := s.PutRiskPolicy(ctx, "org-9", want); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("PutRiskPolicy(unknown org) = %v, want ErrNotFound", err)
	}
	for _, p := range []directory.RiskPolicy{{StepUp: -1}, {Block: math.Inf(1)}, {StepUp: math.NaN()}} {
		if err := s.PutRiskPolicy(ctx, "org-1", p); !errors.Is(err, directory.ErrInvalid) {
			t.Errorf("PutRiskPolicy(%+v) = %v, want ErrInvalid", p, err)
		}
	}
}

func testUsersWithRole(t *testing.T, s directory.Store) {
	ctx := t.Context()
	riskFixture(t, s)
	mustCreateUser(t, s, user("user-3", "carol@example.nhs.uk"))
	for _, m := range []directory.Membership{
		{UserID: "user-2", OrgID: "org-1", Roles: []directory.Role{directory.RoleStaff, directory.RoleOrgAdmin}, CreatedAt: base},
		{UserID: "user-1", OrgID: "org-1", Roles: []directory.Role{directory.RoleOrgAdmin}, CreatedAt: base},
		{UserID: "user-3", OrgID: "org-1", Roles: []directory.Role{directory.RoleStaff}, CreatedAt: base},
		{UserID: "user-3", OrgID: "org-2", Roles: []directory.Role{directory.RoleOrgAdmin}, CreatedAt: base},
	} {
		if err := s.PutMembership(ctx, m); err != nil {
			t.Fatalf("PutMembership: %v", err)
		}
	}
	ids := func(us []directory.User) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.ID)
		}
		return out
	}
	for _, c := range []struct {
		org  string
		role directory.Role
		want []string
	}{
		{"org-1", directory.RoleOrgAdmin, []string{"user-1", "user-2"}},
		{"org-1", directory.RoleStaff, []string{"user-2", "user-3"}},
		{"org-2", directory.RoleOrgAdmin, []string{"user-3"}},
		{"org-2", directory.RoleStaff, nil},
		{"org-9", directory.RoleOrgAdmin, nil},
		{"org-1", "org-%", nil}, // not a pattern
	} {
		got, err := s.UsersWithRole(ctx, c.org, c.role)
		if err != nil {
			t.Errorf("UsersWithRole(%s, %s): %v", c.org, c.role, err)
			continue
		}
		if diff := cmp.Diff(c.want, ids(got), equateEmpty); diff != "" {
			t.Errorf("UsersWithRole(%s, %s) mismatch (-want +got):\n%s", c.org, c.role, diff)
		}
		for _, u := range got {
			if u.Email == "" {
				t.Errorf("UsersWithRole(%s, %s): user %s without email", c.org, c.role, u.ID)
			}
		}
	}
}

// testRiskProfileUpdateInTx checks that a profile read inside a
// transaction, to be written back, holds off a second transaction's read
// until the first commits, so that neither update is lost: the first reads
// and waits a moment before writing, while the second starts its own read.
func testRiskProfileUpdateInTx(t *testing.T, s directory.Store) {
	ctx := t.Context()
	riskFixture(t, s)
	if err := s.PutRiskProfile(ctx, directory.RiskProfile{UserID: "user-1", Data: []byte("a"), UpdatedAt: base}); err != nil {
		t.Fatal(err)
	}
	// appendByte reads the profile in a transaction (a new one when the
	// user has none), holds, and writes it back with c appended.
	appendByte := func(userID string, c byte, read chan<- struct{}, hold time.Duration) error {
		return s.InTx(ctx, func(tx directory.Store) error {
			p, err := tx.RiskProfile(ctx, userID)
			if errors.Is(err, directory.ErrNotFound) {
				p, err = directory.RiskProfile{UserID: userID, UpdatedAt: base}, nil
			}
			if err != nil {
				return err
			}
			if read != nil {
				close(read)
			}
			time.Sleep(hold)
			p.Data = append(p.Data, c)
			return tx.PutRiskProfile(ctx, p)
		})
	}
	// user-1 has a profile; user-2 has none yet, so there is no row to
	// lock when both transactions read.
	for userID, want := range map[string]string{"user-1": "abc", "user-2": "bc"} {
		read := make(chan struct{})
		errs := make(chan error, 2)
		go func() { errs <- appendByte(userID, 'b', read, 300*time.Millisecond) }()
		<-read
		go func() { errs <- appendByte(userID, 'c', nil, 0) }()
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.RiskProfile(ctx, userID)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Data) != want {
			t.Errorf("%s: profile after two concurrent updates %q, want %q (an update was lost)", userID, got.Data, want)
		}
	}
}

// testAccountUnlock checks the record of administrators' unlocks: none at
// first, the time given after an unlock (to the microsecond), a later
// unlock moving it on and an earlier one leaving it, accounts apart, and
// empty values refused.
func testAccountUnlock(t *testing.T, s directory.Store) {
	ctx := t.Context()
	if at, err := s.AccountUnlockedAt(ctx, "acct-1"); err != nil || !at.IsZero() {
		t.Fatalf("before any unlock: %v, %v; want the zero time", at, err)
	}
	t1 := base.Add(1500 * time.Nanosecond)
	if err := s.UnlockAccount(ctx, "acct-1", t1); err != nil {
		t.Fatal(err)
	}
	if at, err := s.AccountUnlockedAt(ctx, "acct-1"); err != nil || !at.Equal(t1.Truncate(time.Microsecond)) {
		t.Errorf("after an unlock: %v, %v; want %v", at, err, t1.Truncate(time.Microsecond))
	}
	t2 := t1.Add(time.Hour)
	if err := s.UnlockAccount(ctx, "acct-1", t2); err != nil {
		t.Fatal(err)
	}
	if err := s.UnlockAccount(ctx, "acct-1", t1.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if at, _ := s.AccountUnlockedAt(ctx, "acct-1"); !at.Equal(t2.Truncate(time.Microsecond)) {
		t.Errorf("after a later and an earlier unlock: %v, want the later %v", at, t2.Truncate(time.Microsecond))
	}
	if at, _ := s.AccountUnlockedAt(ctx, "acct-2"); !at.IsZero() {
		t.Errorf("another account: %v, want the zero time", at)
	}
	for _, c := range []struct {
		account string
		at      time.Time
	}{{"", t1}, {"acct-3", time.Time{}}} {
		if err := s.UnlockAccount(ctx, c.account, c.at); !errors.Is(err, directory.ErrInvalid) {
			t.Errorf("UnlockAccount(%q, %v): %v, want ErrInvalid", c.account, c.at, err)
		}
	}
}
