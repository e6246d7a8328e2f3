package conformance

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lanyard/lanyard/directory"
)

// adsyncTests are the Active Directory sync subtests; Run runs them with
// the rest.
var adsyncTests = []struct {
	name string
	fn   func(*testing.T, directory.Store)
}{
	{"SyncAgentCreateGet", testSyncAgentCreateGet},
	{"SyncAgentOneActivePerOrg", testSyncAgentOneActive},
	{"SyncAgentInvalidAndMissing", testSyncAgentInvalid},
	{"SyncAgentTouch", testSyncAgentTouch},
	{"ADLinksUniqueBothWaysPerOrg", testADLinks},
	{"OrgUsers", testOrgUsers},
	{"PasswordOriginAdvances", testPasswordOrigin},
	{"PasswordOriginRace", testPasswordOriginRace}, // 50 goroutines, the latest time wins
	{"ADChangeRecords", testADChangeRecords},
	{"ADUnmatched", testADUnmatched},
	{"SealedPasswordEventsPerOrg", testSealedPasswordEvents},
}

func agent(id, orgID string) directory.SyncAgent {
	return directory.SyncAgent{
		ID: id, OrgID: orgID, SignKey: []byte("sign-" + id + "\x00\xff"), SealKey: []byte("seal-" + id + "\x00\xfe"),
		CreatedAt: base.Add(123456789 * time.Nanosecond),
	}
}

// stored is a as a store returns it: times truncated to the microsecond.
func storedAgent(a directory.SyncAgent) directory.SyncAgent {
	a.CreatedAt = a.CreatedAt.UTC().Truncate(time.Microsecond)
	if !a.LastContact.IsZero() {
		a.LastContact = a.LastContact.UTC().Truncate(time.Microsecond)
	}
	return a
}

func wantAgent(t *testing.T, s directory.Store, step string, want directory.SyncAgent) {
	t.Helper()
	got, err := s.SyncAgent(t.Context(), want.ID)
	if err != nil {
		t.Errorf("%s: SyncAgent(%q): %v", step, want.ID, err)
		return
	}
	if diff := cmp.Diff(storedAgent(want), got); diff != "" {
		t.Errorf("%s: SyncAgent(%q) mismatch (-want +got):\n%s", step, want.ID, diff)
	}
}

func testSyncAgentCreateGet(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	mustCreateOrg(t, s, org("org-2", "RX1"))
	a, b := agent("a1", "org-1"), agent("b1", "org-2")
	for _, x := range []directory.SyncAgent{a, b} {
		if err := s.CreateSyncAgent(ctx, x); err != nil {
			t.Fatalf("CreateSyncAgent(%q): %v", x.ID, err)
		}
	}
	wantAgent(t, s, "created", a)
	got, err := s.ActiveSyncAgent(ctx, "org-2")
	if err != nil || got.ID != "b1" {
		t.Errorf("ActiveSyncAgent(org-2) = %q, %v; want b1", got.ID, err)
	}
	all, err := s.SyncAgents(ctx, "")
	if err != nil || len(all) != 2 || all[0].ID != "a1" || all[1].ID != "b1" {
		t.Errorf("SyncAgents(all) = %v, %v; want a1, b1", all, err)
	}
	one, err := s.SyncAgents(ctx, "org-1")
	if err != nil || len(one) != 1 || one[0].ID != "a1" {
		t.Errorf("SyncAgents(org-1) = %v, %v; want a1", one, err)
	}
	none, err := s.SyncAgents(ctx, "org-9")
	if err != nil || len(none) != 0 {
		t.Errorf("SyncAgents(unknown organisation) = %v, %v; want none", none, err)
	}
	wantErr(t, "CreateSyncAgent(same ID)", s.CreateSyncAgent(ctx, agent("a1", "org-2")), directory.ErrConflict)

	// It joins the caller's transaction.
	err = s.InTx(ctx, func(tx directory.Store) error {
		if err := tx.DisableSyncAgent(ctx, "a1"); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v", err)
	}
	wantAgent(t, s, "after a rolled back disable", a)
}

func testSyncAgentOneActive(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	if err := s.CreateSyncAgent(ctx, agent("a1", "org-1")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CreateSyncAgent(second active)", s.CreateSyncAgent(ctx, agent("a2", "org-1")), directory.ErrConflict)
	// A disabled agent may be registered beside it, and once the first is
	// disabled another may become the active one.
	d := agent("a0", "org-1")
	d.Disabled = true
	if err := s.CreateSyncAgent(ctx, d); err != nil {
		t.Fatalf("CreateSyncAgent(disabled): %v", err)
	}
	if err := s.DisableSyncAgent(ctx, "a1"); err != nil {
		t.Fatalf("DisableSyncAgent: %v", err)
	}
	if err := s.DisableSyncAgent(ctx, "a1"); err != nil {
		t.Fatalf("DisableSyncAgent again: %v", err)
	}
	_, err := s.ActiveSyncAgent(ctx, "org-1")
	wantErr(t, "ActiveSyncAgent(all disabled)", err, directory.ErrNotFound)
	if err := s.CreateSyncAgent(ctx, agent("a2", "org-1")); err != nil {
		t.Fatalf("CreateSyncAgent(after disabling): %v", err)
	}
	if got, err := s.ActiveSyncAgent(ctx, "org-1"); err != nil || got.ID != "a2" {
		t.Errorf("ActiveSyncAgent = %q, %v; want a2", got.ID, err)
	}
	a1 := agent("a1", "org-1")
	a1.Disabled = true
	wantAgent(t, s, "disabled", a1)
}

func testSyncAgentInvalid(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	for name, change := range map[string]func(*directory.SyncAgent){
		"empty ID":       func(a *directory.SyncAgent) { a.ID = "" },
		"empty org":      func(a *directory.SyncAgent) { a.OrgID = "" },
		"no sign key":    func(a *directory.SyncAgent) { a.SignKey = nil },
		"no seal key":    func(a *directory.SyncAgent) { a.SealKey = nil },
		"zero CreatedAt": func(a *directory.SyncAgent) { a.CreatedAt = time.Time{} },
	} {
		a := agent("a1", "org-1")
		change(&a)
		wantErr(t, "CreateSyncAgent("+name+")", s.CreateSyncAgent(ctx, a), directory.ErrInvalid)
	}
	wantErr(t, "CreateSyncAgent(unknown organisation)", s.CreateSyncAgent(ctx, agent("a1", "org-9")), directory.ErrNotFound)
	_, err := s.SyncAgent(ctx, "a1")
	wantErr(t, "SyncAgent(refused)", err, directory.ErrNotFound)
	wantErr(t, "DisableSyncAgent(missing)", s.DisableSyncAgent(ctx, "a1"), directory.ErrNotFound)
	wantErr(t, "TouchSyncAgent(missing)", s.TouchSyncAgent(ctx, "a1", base), directory.ErrNotFound)
	wantErr(t, "TouchSyncAgent(zero time)", s.TouchSyncAgent(ctx, "a1", time.Time{}), directory.ErrInvalid)
	_, err = s.ActiveSyncAgent(ctx, "org-1")
	wantErr(t, "ActiveSyncAgent(none)", err, directory.ErrNotFound)
}

func testSyncAgentTouch(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	a := agent("a1", "org-1")
	if err := s.CreateSyncAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	later := base.Add(time.Hour + 999*time.Nanosecond)
	if err := s.TouchSyncAgent(ctx, "a1", later); err != nil {
		t.Fatal(err)
	}
	// An earlier contact (another instance's slower request) keeps the later one.
	if err := s.TouchSyncAgent(ctx, "a1", base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	a.LastContact = later
	wantAgent(t, s, "touched", a)
}

func testADLinks(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	mustCreateOrg(t, s, org("org-2", "RX1"))
	mustCreateUser(t, s, user("u1", "u1@example.nhs.uk"))
	mustCreateUser(t, s, user("u2", "u2@example.nhs.uk"))
	at := base.Add(5 * time.Nanosecond)
	link := func(o, u, g string) directory.ADLink {
		return directory.ADLink{OrgID: o, UserID: u, GUID: g, CreatedAt: at}
	}
	for _, l := range []directory.ADLink{link("org-1", "u1", "g1"), link("org-1", "u2", "g2"), link("org-2", "u1", "g2")} {
		if err := s.LinkAD(ctx, l); err != nil {
			t.Fatalf("LinkAD(%+v): %v", l, err)
		}
	}
	wantErr(t, "LinkAD(user linked again)", s.LinkAD(ctx, link("org-1", "u1", "g3")), directory.ErrConflict)
	wantErr(t, "LinkAD(GUID linked again)", s.LinkAD(ctx, link("org-1", "u2", "g1")), directory.ErrConflict)
	wantErr(t, "LinkAD(unknown user)", s.LinkAD(ctx, link("org-1", "u9", "g9")), directory.ErrNotFound)
	wantErr(t, "LinkAD(unknown organisation)", s.LinkAD(ctx, link("org-9", "u1", "g9")), directory.ErrNotFound)
	wantErr(t, "LinkAD(empty GUID)", s.LinkAD(ctx, link("org-1", "u1", "")), directory.ErrInvalid)
	wantErr(t, "LinkAD(zero time)", s.LinkAD(ctx, directory.ADLink{OrgID: "org-1", UserID: "u1", GUID: "g5"}), directory.ErrInvalid)

	stored := func(l directory.ADLink) directory.ADLink {
		l.CreatedAt = l.CreatedAt.Truncate(time.Microsecond)
		return l
	}
	got, err := s.ADLinkByGUID(ctx, "org-2", "g2")
	if err != nil || got != stored(link("org-2", "u1", "g2")) {
		t.Errorf("ADLinkByGUID(org-2, g2) = %+v, %v", got, err)
	}
	got, err = s.ADLinkByUser(ctx, "org-1", "u2")
	if err != nil || got != stored(link("org-1", "u2", "g2")) {
		t.Errorf("ADLinkByUser(org-1, u2) = %+v, %v", got, err)
	}
	// Scoped to the organisation: org-2 does not see org-1's GUID g1.
	_, err = s.ADLinkByGUID(ctx, "org-2", "g1")
	wantErr(t, "ADLinkByGUID(other organisation's GUID)", err, directory.ErrNotFound)
	_, err = s.ADLinkByUser(ctx, "org-2", "u2")
	wantErr(t, "ADLinkByUser(not linked there)", err, directory.ErrNotFound)
	ls, err := s.ADLinks(ctx, "org-1")
	if diff := cmp.Diff([]directory.ADLink{stored(link("org-1", "u1", "g1")), stored(link("org-1", "u2", "g2"))}, ls); err != nil || diff != "" {
		t.Errorf("ADLinks(org-1) %v mismatch (-want +got):\n%s", err, diff)
	}
}

func testOrgUsers(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	mustCreateOrg(t, s, org("org-2", "RX1"))
	for _, id := range []string{"u3", "u1", "u2"} {
		mustCreateUser(t, s, user(id, id+"@example.nhs.uk"))
	}
	for _, m := range [][2]string{{"u3", "org-1"}, {"u1", "org-1"}, {"u2", "org-2"}, {"u1", "org-2"}} {
		if err := s.PutMembership(ctx, directory.Membership{UserID: m[0], OrgID: m[1], Roles: []directory.Role{directory.RoleStaff}, CreatedAt: base}); err != nil {
			t.Fatal(err)
		}
	}
	us, err := s.OrgUsers(ctx, "org-1")
	if err != nil || len(us) != 2 || us[0].ID != "u1" || us[1].ID != "u3" || us[0].Email != "u1@example.nhs.uk" {
		t.Errorf("OrgUsers(org-1) = %+v, %v; want u1, u3", us, err)
	}
	if us, err := s.OrgUsers(ctx, "org-9"); err != nil || len(us) != 0 {
		t.Errorf("OrgUsers(unknown) = %+v, %v; want none", us, err)
	}
}

func testPasswordOrigin(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("u1", "u1@example.nhs.uk"))
	if got, err := s.PasswordOrigin(ctx, "u1"); err != nil || !got.IsZero() {
		t.Errorf("PasswordOrigin(none) = %v, %v; want zero", got, err)
	}
	t1 := base.Add(time.Minute + 1500*time.Nanosecond)
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{t1, true},                       // first
		{t1, false},                      // equal is not later
		{t1.Add(-time.Second), false},    // earlier
		{t1.Add(time.Microsecond), true}, // later
	} {
		got, err := s.AdvancePasswordOrigin(ctx, "u1", c.at)
		if err != nil || got != c.want {
			t.Errorf("AdvancePasswordOrigin(%v) = %v, %v; want %v", c.at, got, err, c.want)
		}
	}
	if got, err := s.PasswordOrigin(ctx, "u1"); err != nil || !got.Equal(t1.Add(time.Microsecond).Truncate(time.Microsecond)) {
		t.Errorf("PasswordOrigin = %v, %v", got, err)
	}
	_, err := s.AdvancePasswordOrigin(ctx, "u9", t1)
	wantErr(t, "AdvancePasswordOrigin(unknown user)", err, directory.ErrNotFound)
	_, err = s.AdvancePasswordOrigin(ctx, "u1", time.Time{})
	wantErr(t, "AdvancePasswordOrigin(zero)", err, directory.ErrInvalid)
	// It joins the caller's transaction.
	err = s.InTx(ctx, func(tx directory.Store) error {
		if ok, err := tx.AdvancePasswordOrigin(ctx, "u1", t1.Add(time.Hour)); err != nil || !ok {
			return fmt.Errorf("advance in tx: %v %w", ok, err)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatal(err)
	}
	if got, _ := s.PasswordOrigin(ctx, "u1"); !got.Equal(t1.Add(time.Microsecond).Truncate(time.Microsecond)) {
		t.Errorf("PasswordOrigin after rollback = %v", got)
	}
}

func testPasswordOriginRace(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("u1", "u1@example.nhs.uk"))
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			if _, err := s.AdvancePasswordOrigin(ctx, "u1", base.Add(time.Duration(i)*time.Second)); err != nil {
				t.Errorf("AdvancePasswordOrigin(%d): %v", i, err)
			}
		})
	}
	wg.Wait()
	if got, err := s.PasswordOrigin(ctx, "u1"); err != nil || !got.Equal(base.Add((racers-1)*time.Second)) {
		t.Errorf("PasswordOrigin after the race = %v, %v; want the latest", got, err)
	}
}

func testADChangeRecords(t *testing.T, s directory.Store) {
	ctx := t.Context()
	r := directory.ADChangeRecord{OrgID: "org-1", ID: "c1", UserID: "u1", Outcome: "applied", Time: base.Add(7 * time.Nanosecond)}
	if err := s.RecordADChange(ctx, r); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "RecordADChange(again)", s.RecordADChange(ctx, r), directory.ErrConflict)
	// The same ID from another organisation's agent is another change.
	r2 := r
	r2.OrgID, r2.Outcome, r2.UserID, r2.Time = "org-2", "unmatched", "", base.Add(time.Hour)
	if err := s.RecordADChange(ctx, r2); err != nil {
		t.Fatalf("RecordADChange(other organisation): %v", err)
	}
	got, err := s.ADChange(ctx, "org-1", "c1")
	r.Time = r.Time.Truncate(time.Microsecond)
	if err != nil || got != r {
		t.Errorf("ADChange = %+v, %v; want %+v", got, err, r)
	}
	_, err = s.ADChange(ctx, "org-3", "c1")
	wantErr(t, "ADChange(other organisation)", err, directory.ErrNotFound)
	for name, bad := range map[string]directory.ADChangeRecord{
		"empty org": {ID: "x", Outcome: "applied", Time: base}, "empty ID": {OrgID: "o", Outcome: "applied", Time: base},
		"no outcome": {OrgID: "o", ID: "x", Time: base}, "zero time": {OrgID: "o", ID: "x", Outcome: "applied"},
	} {
		wantErr(t, "RecordADChange("+name+")", s.RecordADChange(ctx, bad), directory.ErrInvalid)
	}
	n, err := s.PruneADChanges(ctx, base.Add(time.Minute))
	if err != nil || n != 1 {
		t.Errorf("PruneADChanges = %d, %v; want 1", n, err)
	}
	_, err = s.ADChange(ctx, "org-1", "c1")
	wantErr(t, "ADChange(pruned)", err, directory.ErrNotFound)
	if _, err := s.ADChange(ctx, "org-2", "c1"); err != nil {
		t.Errorf("ADChange(kept): %v", err)
	}
}

func testADUnmatched(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	mustCreateOrg(t, s, org("org-2", "RX1"))
	u := func(side, ref, label string) directory.ADUnmatched {
		return directory.ADUnmatched{OrgID: "org-1", Side: side, Ref: ref, Label: label, SeenAt: base}
	}
	if err := s.ReplaceADUnmatched(ctx, "org-1", directory.UnmatchedAD, []directory.ADUnmatched{u("ad", "g2", "b@ad"), u("ad", "g1", "a@ad")}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceADUnmatched(ctx, "org-1", directory.UnmatchedLanyard, []directory.ADUnmatched{u("lanyard", "u1", "u1@x")}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceADUnmatched(ctx, "org-2", directory.UnmatchedAD, []directory.ADUnmatched{u("ad", "g9", "z")}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ADUnmatchedAccounts(ctx, "org-1")
	want := []directory.ADUnmatched{u("ad", "g1", "a@ad"), u("ad", "g2", "b@ad"), u("lanyard", "u1", "u1@x")}
	if diff := cmp.Diff(want, got); err != nil || diff != "" {
		t.Errorf("ADUnmatchedAccounts %v mismatch (-want +got):\n%s", err, diff)
	}
	// Replacing one side leaves the other alone.
	if err := s.ReplaceADUnmatched(ctx, "org-1", directory.UnmatchedAD, nil); err != nil {
		t.Fatal(err)
	}
	got, err = s.ADUnmatchedAccounts(ctx, "org-1")
	if diff := cmp.Diff(want[2:], got); err != nil || diff != "" {
		t.Errorf("after clearing AD side %v (-want +got):\n%s", err, diff)
	}
	wantErr(t, "ReplaceADUnmatched(bad side)", s.ReplaceADUnmatched(ctx, "org-1", "other", nil), directory.ErrInvalid)
	wantErr(t, "ReplaceADUnmatched(empty ref)", s.ReplaceADUnmatched(ctx, "org-1", directory.UnmatchedAD, []directory.ADUnmatched{u("ad", "", "x")}), directory.ErrInvalid)
	wantErr(t, "ReplaceADUnmatched(twice)", s.ReplaceADUnmatched(ctx, "org-1", directory.UnmatchedAD, []directory.ADUnmatched{u("ad", "g1", "x"), u("ad", "g1", "y")}), directory.ErrConflict)
	wantErr(t, "ReplaceADUnmatched(unknown org)", s.ReplaceADUnmatched(ctx, "org-9", directory.UnmatchedAD, []directory.ADUnmatched{u("ad", "g1", "x")}), directory.ErrNotFound)
	// A refused replace changed nothing.
	got, _ = s.ADUnmatchedAccounts(ctx, "org-1")
	if diff := cmp.Diff(want[2:], got); diff != "" {
		t.Errorf("after refused replaces (-want +got):\n%s", diff)
	}
}

func testSealedPasswordEvents(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("u1", "u1@example.nhs.uk"))
	e1 := passwordEvent(1, "u1", "org-1")
	e2 := passwordEvent(2, "u1", "org-1")
	e2.Sealed = nil // written before the organisation had an agent
	e3 := passwordEvent(3, "u1", "org-2")
	e4 := passwordEvent(4, "u1", "org-1")
	all := mustAppendPassword(t, s, e1, e2, e3, e4)
	got, err := s.SealedPasswordEvents(ctx, "org-1", 0, 100)
	if diff := cmp.Diff([]directory.PasswordEvent{all[0], all[3]}, got); err != nil || diff != "" {
		t.Errorf("SealedPasswordEvents(org-1) %v mismatch (-want +got):\n%s", err, diff)
	}
	got, err = s.SealedPasswordEvents(ctx, "org-1", all[0].Seq, 1)
	if err != nil || len(got) != 1 || got[0].ID != all[3].ID {
		t.Errorf("SealedPasswordEvents(after first, limit 1) = %v, %v", got, err)
	}
	_, err = s.SealedPasswordEvents(ctx, "org-1", 0, 0)
	wantErr(t, "SealedPasswordEvents(limit 0)", err, directory.ErrInvalid)
	_, err = s.SealedPasswordEvents(ctx, "", 0, 10)
	wantErr(t, "SealedPasswordEvents(no organisation)", err, directory.ErrInvalid)

	stats, err := s.OutboxStats(ctx)
	want := []directory.OutboxStat{{OrgID: "org-1", Count: 2, Oldest: all[0].Time}, {OrgID: "org-2", Count: 1, Oldest: all[2].Time}}
	if diff := cmp.Diff(want, stats); err != nil || diff != "" {
		t.Errorf("OutboxStats %v mismatch (-want +got):\n%s", err, diff)
	}

	// An organisation cannot delete another's event.
	_, err = s.DeleteOrgPasswordEvent(ctx, "org-2", e1.ID)
	wantErr(t, "DeleteOrgPasswordEvent(other organisation's)", err, directory.ErrNotFound)
	del, err := s.DeleteOrgPasswordEvent(ctx, "org-1", e1.ID)
	if diff := cmp.Diff(all[0], del); err != nil || diff != "" {
		t.Errorf("DeleteOrgPasswordEvent %v mismatch (-want +got):\n%s", err, diff)
	}
	_, err = s.DeleteOrgPasswordEvent(ctx, "org-1", e1.ID)
	wantErr(t, "DeleteOrgPasswordEvent(again)", err, directory.ErrNotFound)
	_, err = s.DeleteOrgPasswordEvent(ctx, "", e1.ID)
	wantErr(t, "DeleteOrgPasswordEvent(no organisation)", err, directory.ErrInvalid)
	wantPasswordEvents(t, s, "after deleting", "", 0, 100, []directory.PasswordEvent{all[1], all[2], all[3]})
}
