package conformance

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lanyard/lanyard/directory"
)

// Organisation policies.

// fullPolicy sets every field of directory.OrgPolicy.
func fullPolicy() directory.OrgPolicy {
	return directory.OrgPolicy{
		MinLength:   14,
		History:     12,
		MaxAgeDays:  90,
		BannedTerms: []string{"zeta", "Royal", "ünïcödé", `quote"d`, "alpha"}, // kept in this order
		RequireMFA:  true,
	}
}

// wantPolicy checks the stored policy of orgID. Empty and nil BannedTerms
// differ: a policy with none comes back as the zero OrgPolicy.
func wantPolicy(t *testing.T, s directory.Store, step, orgID string, want directory.OrgPolicy) {
	t.Helper()
	got, err := s.OrgPolicy(t.Context(), orgID)
	if err != nil {
		t.Errorf("%s: OrgPolicy(%q): %v", step, orgID, err)
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: OrgPolicy(%q) mismatch (-want +got):\n%s", step, orgID, diff)
	}
}

func testOrgPolicyDefault(t *testing.T, s directory.Store) {
	mustCreateOrg(t, s, org("org-1", "RRK"))
	wantPolicy(t, s, "new organisation", "org-1", directory.OrgPolicy{})
}

func testOrgPolicyRoundTrip(t *testing.T, s directory.Store) {
	ctx := t.Context()
	o := org("org-1", "RRK")
	mustCreateOrg(t, s, o)
	mustCreateOrg(t, s, org("org-2", "RX1"))

	if err := s.PutOrgPolicy(ctx, "org-1", fullPolicy()); err != nil {
		t.Fatalf("PutOrgPolicy(full): %v", err)
	}
	wantPolicy(t, s, "after put", "org-1", fullPolicy())
	wantPolicy(t, s, "other organisation after put", "org-2", directory.OrgPolicy{})

	// A put replaces the whole policy; it does not merge.
	mfaOnly := directory.OrgPolicy{RequireMFA: true}
	if err := s.PutOrgPolicy(ctx, "org-1", mfaOnly); err != nil {
		t.Fatalf("PutOrgPolicy(MFA only): %v", err)
	}
	wantPolicy(t, s, "after replace", "org-1", mfaOnly)

	// It joins the caller's transaction.
	err := s.InTx(ctx, func(tx directory.Store) error {
		if err := tx.PutOrgPolicy(ctx, "org-1", fullPolicy()); err != nil {
			return err
		}
		wantPolicy(t, tx, "inside the transaction", "org-1", fullPolicy())
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want the error fn returned", err)
	}
	wantPolicy(t, s, "after rollback", "org-1", mfaOnly)

	if err := s.PutOrgPolicy(ctx, "org-1", directory.OrgPolicy{BannedTerms: []string{}}); err != nil {
		t.Fatalf("PutOrgPolicy(zero): %v", err)
	}
	wantPolicy(t, s, "after clearing", "org-1", directory.OrgPolicy{})

	// The policy is no part of the organisation's record.
	got, err := s.Organisation(ctx, "org-1")
	if err != nil {
		t.Fatalf("Organisation: %v", err)
	}
	if diff := cmp.Diff(o, got); diff != "" {
		t.Errorf("Organisation after policy puts mismatch (-want +got):\n%s", diff)
	}
}

func testOrgPolicyUnknownOrg(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	_, err := s.OrgPolicy(ctx, "org-9")
	wantErr(t, "OrgPolicy(unknown organisation)", err, directory.ErrNotFound)
	wantErr(t, "PutOrgPolicy(unknown organisation)", s.PutOrgPolicy(ctx, "org-9", fullPolicy()), directory.ErrNotFound)
	_, err = s.OrgPolicy(ctx, "")
	wantErr(t, `OrgPolicy("")`, err, directory.ErrInvalid)
	wantErr(t, `PutOrgPolicy("")`, s.PutOrgPolicy(ctx, "", fullPolicy()), directory.ErrInvalid)

	// The refused put left nothing behind for a later organisation.
	mustCreateOrg(t, s, org("org-9", "RX9"))
	wantPolicy(t, s, "organisation created after a refused put", "org-9", directory.OrgPolicy{})
}

func testOrgPolicyInvalid(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	if err := s.PutOrgPolicy(ctx, "org-1", fullPolicy()); err != nil {
		t.Fatalf("PutOrgPolicy: %v", err)
	}
	for _, c := range []struct {
		name   string
		change func(*directory.OrgPolicy)
	}{
		{"negative min length", func(p *directory.OrgPolicy) { p.MinLength = -1 }},
		{"negative history", func(p *directory.OrgPolicy) { p.History = -1 }},
		{"negative max age", func(p *directory.OrgPolicy) { p.MaxAgeDays = -1 }},
		{"empty banned term", func(p *directory.OrgPolicy) { p.BannedTerms = append(p.BannedTerms, "") }},
		{"blank banned term", func(p *directory.OrgPolicy) { p.BannedTerms = []string{" \t"} }},
		{"banned term not UTF-8", func(p *directory.OrgPolicy) { p.BannedTerms = []string{"bad\xff"} }},
	} {
		p := directory.OrgPolicy{MinLength: 20}
		c.change(&p)
		wantErr(t, fmt.Sprintf("PutOrgPolicy(%s)", c.name), s.PutOrgPolicy(ctx, "org-1", p), directory.ErrInvalid)
	}
	wantPolicy(t, s, "after refused puts", "org-1", fullPolicy())
}

// Password-change outbox.

var passwordSources = []string{directory.PasswordSourceSelf, directory.PasswordSourceReset, directory.PasswordSourceAdmin, directory.PasswordSourceAD}

// passwordEvent returns event i of user in org, with a sub-microsecond time
// and a sealed payload holding NUL and high bytes.
func passwordEvent(i int, userID, orgID string) directory.PasswordEvent {
	return directory.PasswordEvent{
		ID:     fmt.Sprintf("pe-%d", i),
		UserID: userID,
		OrgID:  orgID,
		Source: passwordSources[i%len(passwordSources)],
		Time:   base.Add(time.Duration(i)*time.Minute + 1500*time.Nanosecond),
		Sealed: []byte{0, byte(i), 0xff, 0},
	}
}

// storedEvent is e as the store returns it with Seq seq: Time truncated to
// the microsecond, an empty Sealed as nil.
func storedEvent(e directory.PasswordEvent, seq int64) directory.PasswordEvent {
	e.Seq, e.Time = seq, e.Time.Truncate(time.Microsecond)
	if len(e.Sealed) == 0 {
		e.Sealed = nil
	}
	return e
}

// mustAppendPassword appends es and returns them as stored, checking that
// each Seq is greater than the one before.
func mustAppendPassword(t *testing.T, s directory.Store, es ...directory.PasswordEvent) []directory.PasswordEvent {
	t.Helper()
	var out []directory.PasswordEvent
	var last int64
	for _, e := range es {
		got, err := s.AppendPasswordEvent(t.Context(), e)
		if err != nil {
			t.Fatalf("AppendPasswordEvent(%q): %v", e.ID, err)
		}
		if got.Seq <= last {
			t.Errorf("AppendPasswordEvent(%q).Seq = %d, want > %d (the previous one)", e.ID, got.Seq, last)
		}
		last = got.Seq
		if diff := cmp.Diff(storedEvent(e, got.Seq), got); diff != "" {
			t.Errorf("AppendPasswordEvent(%q) mismatch (-want +got):\n%s", e.ID, diff)
		}
		out = append(out, got)
	}
	return out
}

// wantPasswordEvents checks what PasswordEvents returns. nil and empty
// Sealed differ.
func wantPasswordEvents(t *testing.T, s directory.Store, step, orgID string, afterSeq int64, limit int, want []directory.PasswordEvent) {
	t.Helper()
	got, err := s.PasswordEvents(t.Context(), orgID, afterSeq, limit)
	if err != nil {
		t.Errorf("%s: PasswordEvents(%q, %d, %d): %v", step, orgID, afterSeq, limit, err)
		return
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: PasswordEvents(%q, %d, %d) mismatch (-want +got):\n%s", step, orgID, afterSeq, limit, diff)
	}
}

func testPasswordEventAppendList(t *testing.T, s directory.Store) {
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	mustCreateUser(t, s, user("user-2", "bob@example.nhs.uk"))
	zone := time.FixedZone("UTC-03:30", -(3*3600 + 1800))

	e1 := passwordEvent(1, "user-1", "org-1")
	e2 := passwordEvent(2, "user-2", "org-2")
	e2.Sealed = nil // the organisation has no sync agent
	e3 := passwordEvent(3, "user-1", "")
	e3.Sealed = []byte{}
	e4 := passwordEvent(4, "user-1", "org-1")
	e4.Time = time.Date(2031, time.March, 4, 1, 2, 3, 999999999, zone)
	e5 := passwordEvent(5, "user-2", "org-1")
	e5.Time = time.Date(1969, time.July, 20, 20, 17, 40, 123456789, zone) // before the Unix epoch
	all := mustAppendPassword(t, s, e1, e2, e3, e4, e5)
	for _, i := range []int{1, 2} { // e2 and e3
		if all[i].Sealed != nil {
			t.Errorf("AppendPasswordEvent(%q).Sealed = %#v, want nil", all[i].ID, all[i].Sealed)
		}
	}

	wantPasswordEvents(t, s, "every organisation", "", 0, 100, all)
	wantPasswordEvents(t, s, "org-1", "org-1", 0, 100, []directory.PasswordEvent{all[0], all[3], all[4]})
	wantPasswordEvents(t, s, "org-2", "org-2", 0, 100, all[1:2])
	wantPasswordEvents(t, s, "unknown organisation", "org-9", 0, 100, nil)
	for _, c := range []struct {
		org   string
		after int64
		limit int
		want  []directory.PasswordEvent
	}{
		{"", 0, 2, all[0:2]},
		{"", all[1].Seq, 2, all[2:4]},
		{"", all[3].Seq, 2, all[4:]},
		{"", all[4].Seq, 2, nil},
		{"", -1, 1, all[0:1]},
		{"org-1", all[0].Seq, 1, all[3:4]},
		{"org-1", all[1].Seq, 5, all[3:5]},
		{"org-1", all[4].Seq, 5, nil},
	} {
		wantPasswordEvents(t, s, "paging", c.org, c.after, c.limit, c.want)
	}

	// A reader paging by the last Seq it saw gets every event once, in order.
	var (
		paged []directory.PasswordEvent
		after int64
	)
	for range len(all) + 1 {
		page, err := s.PasswordEvents(t.Context(), "", after, 2)
		if err != nil {
			t.Fatalf("PasswordEvents(after %d): %v", after, err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].Seq
	}
	if diff := cmp.Diff(all, paged); diff != "" {
		t.Errorf("paging by the last Seq mismatch (-want +got):\n%s", diff)
	}
}

func testPasswordEventRollback(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	e1, e2 := passwordEvent(1, "user-1", "org-1"), passwordEvent(2, "user-1", "org-1")

	err := s.InTx(ctx, func(tx directory.Store) error {
		got, err := tx.AppendPasswordEvent(ctx, e1)
		if err != nil {
			return err
		}
		wantPasswordEvents(t, tx, "inside the transaction", "", 0, 10, []directory.PasswordEvent{got})
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want the error fn returned", err)
	}
	wantPasswordEvents(t, s, "after rollback", "", 0, 10, nil)

	// A failing statement after the append rolls the append back.
	err = s.InTx(ctx, func(tx directory.Store) error {
		if _, err := tx.AppendPasswordEvent(ctx, e1); err != nil {
			return err
		}
		return tx.CreateUser(ctx, user("user-2", "ALICE@example.nhs.uk"))
	})
	wantErr(t, "InTx with a conflicting create", err, directory.ErrConflict)
	wantPasswordEvents(t, s, "after failed statement", "", 0, 10, nil)

	// The change and its event commit together.
	var want []directory.PasswordEvent
	err = s.InTx(ctx, func(tx directory.Store) error {
		c := directory.Credential{ID: "c-pw", UserID: "user-1", Type: directory.CredentialPassword, Secret: []byte("hash"), CreatedAt: base}
		if err := tx.PutCredential(ctx, c); err != nil {
			return err
		}
		for _, e := range []directory.PasswordEvent{e1, e2} {
			got, err := tx.AppendPasswordEvent(ctx, e)
			if err != nil {
				return err
			}
			want = append(want, got)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	wantPasswordEvents(t, s, "after commit", "", 0, 10, want)
	if len(want) == 2 && want[1].Seq <= want[0].Seq {
		t.Errorf("Seqs appended in one transaction = %d, %d; want increasing", want[0].Seq, want[1].Seq)
	}
}

func testPasswordEventDelete(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	all := mustAppendPassword(t, s, passwordEvent(1, "user-1", "org-1"), passwordEvent(2, "user-1", "org-1"), passwordEvent(3, "user-1", "org-1"))

	if err := s.DeletePasswordEvent(ctx, "pe-2"); err != nil {
		t.Errorf("DeletePasswordEvent(pe-2): %v", err)
	}
	wantPasswordEvents(t, s, "after deleting pe-2", "", 0, 10, []directory.PasswordEvent{all[0], all[2]})
	wantErr(t, "DeletePasswordEvent(pe-2) again", s.DeletePasswordEvent(ctx, "pe-2"), directory.ErrNotFound)
	wantErr(t, "DeletePasswordEvent(missing)", s.DeletePasswordEvent(ctx, "pe-9"), directory.ErrNotFound)
	wantErr(t, `DeletePasswordEvent("")`, s.DeletePasswordEvent(ctx, ""), directory.ErrInvalid)

	// Deleting the newest event does not free its Seq: a reader resuming
	// after it must still see the next event.
	if err := s.DeletePasswordEvent(ctx, "pe-3"); err != nil {
		t.Errorf("DeletePasswordEvent(pe-3): %v", err)
	}
	next := mustAppendPassword(t, s, passwordEvent(4, "user-1", "org-1"))
	if len(next) == 1 && next[0].Seq <= all[2].Seq {
		t.Errorf("AppendPasswordEvent after deleting the newest event: Seq %d, want > %d (the deleted one's)", next[0].Seq, all[2].Seq)
	}
	wantPasswordEvents(t, s, "after the newest was deleted", "", all[2].Seq, 10, next)
}

func testPasswordEventInvalid(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	stored := mustAppendPassword(t, s, passwordEvent(1, "user-1", "org-1"))
	for _, c := range []struct {
		name   string
		change func(*directory.PasswordEvent)
		want   error
	}{
		{"empty ID", func(e *directory.PasswordEvent) { e.ID = "" }, directory.ErrInvalid},
		{"empty user", func(e *directory.PasswordEvent) { e.UserID = "" }, directory.ErrInvalid},
		{"empty source", func(e *directory.PasswordEvent) { e.Source = "" }, directory.ErrInvalid},
		{"unknown source", func(e *directory.PasswordEvent) { e.Source = "ldap" }, directory.ErrInvalid},
		{"zero time", func(e *directory.PasswordEvent) { e.Time = time.Time{} }, directory.ErrInvalid},
		{"unknown user", func(e *directory.PasswordEvent) { e.UserID = "user-9" }, directory.ErrNotFound},
		{"ID taken", func(e *directory.PasswordEvent) { e.ID = "pe-1" }, directory.ErrConflict},
	} {
		e := passwordEvent(2, "user-1", "org-1")
		c.change(&e)
		_, err := s.AppendPasswordEvent(ctx, e)
		wantErr(t, fmt.Sprintf("AppendPasswordEvent(%s)", c.name), err, c.want)
	}
	for _, limit := range []int{0, -1} {
		_, err := s.PasswordEvents(ctx, "", 0, limit)
		wantErr(t, fmt.Sprintf("PasswordEvents(limit %d)", limit), err, directory.ErrInvalid)
	}
	wantPasswordEvents(t, s, "after refused appends", "", 0, 10, stored)
}

// testPasswordEventsConcurrent appends from concurrent transactions, each
// doing more work after its append, while a reader polls by the last Seq it
// saw: as Seq follows commit order, the reader misses none.
func testPasswordEventsConcurrent(t *testing.T, s directory.Store) {
	const appenders = 20
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		appended = map[string]int64{} // ID -> Seq
		start    = make(chan struct{})
		done     = make(chan struct{})
		read     []directory.PasswordEvent
		readErr  error
		readerWG sync.WaitGroup
	)
	readerWG.Go(func() {
		var after int64
		poll := func() bool {
			page, err := s.PasswordEvents(ctx, "", after, 100)
			if err != nil {
				readErr = err
				return false
			}
			read = append(read, page...)
			if len(page) > 0 {
				after = page[len(page)-1].Seq
			}
			return true
		}
		for {
			select {
			case <-done:
				poll() // whatever committed last
				return
			default:
				if !poll() {
					return
				}
			}
		}
	})
	for i := range appenders {
		wg.Go(func() {
			<-start
			err := s.InTx(ctx, func(tx directory.Store) error {
				e, err := tx.AppendPasswordEvent(ctx, passwordEvent(i, "user-1", "org-1"))
				if err != nil {
					return err
				}
				// Work between the append and the commit widens the window
				// in which a later Seq could commit first.
				if _, err := tx.PasswordEvents(ctx, "org-1", 0, 1); err != nil {
					return err
				}
				if _, err := tx.User(ctx, "user-1"); err != nil {
					return err
				}
				mu.Lock()
				appended[e.ID] = e.Seq
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Errorf("InTx(AppendPasswordEvent(%d)): %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(done)
	readerWG.Wait()
	if readErr != nil {
		t.Fatalf("PasswordEvents while appending: %v", readErr)
	}

	all, err := s.PasswordEvents(ctx, "", 0, 2*appenders)
	if err != nil {
		t.Fatalf("PasswordEvents: %v", err)
	}
	if len(all) != appenders {
		t.Errorf("PasswordEvents returned %d events, want %d", len(all), appenders)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Errorf("PasswordEvents Seqs %v, want strictly increasing", seqs(all))
			break
		}
	}
	for _, e := range all {
		if seq, ok := appended[e.ID]; !ok || seq != e.Seq {
			t.Errorf("stored event %q has Seq %d; AppendPasswordEvent returned %d (returned: %t)", e.ID, e.Seq, seq, ok)
		}
	}
	if diff := cmp.Diff(all, read); diff != "" {
		t.Errorf("a reader polling by the last Seq it saw missed or repeated events (-want +got):\n%s\nstored Seqs %v, read %v", diff, seqs(all), seqs(read))
	}
}

func seqs(es []directory.PasswordEvent) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

// A user's audit trail.

func testAuditEventsFor(t *testing.T, s directory.Store) {
	ctx := t.Context()
	since := base
	at := func(target string, d time.Duration) directory.AuditEvent {
		return directory.AuditEvent{
			Time: since.Add(d), Actor: "user-1", Action: "login.password", Target: target,
			OrgID: "org-1", IP: "192.0.2.7", Outcome: directory.OutcomeSuccess,
			Detail: map[string]string{"at": d.String()},
		}
	}
	var evs []directory.AuditEvent
	for _, ev := range []directory.AuditEvent{
		at("user-1", -time.Hour),                  // 0: before since
		at("user-1", 0),                           // 1: at since
		at("user-10", time.Minute),                // 2: another target sharing a prefix
		at("org-1", 2*time.Minute),                // 3: another target
		at("user-1", 3*time.Minute),               // 4
		at("user-1", time.Minute),                 // 5: appended later, older
		at("user-1", 3*time.Minute),               // 6: same time as 4, appended later
		at("USER-1", 4*time.Minute),               // 7: differs in case
		at("user-1", 5*time.Minute+time.Second/3), // 8: sub-microsecond time
	} {
		got, err := s.AppendAudit(ctx, ev)
		if err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		evs = append(evs, got)
	}
	pick := func(is ...int) []directory.AuditEvent {
		var out []directory.AuditEvent
		for _, i := range is {
			out = append(out, evs[i])
		}
		return out
	}
	zone := time.FixedZone("UTC-03:30", -(3*3600 + 1800))
	for _, c := range []struct {
		name   string
		target string
		since  time.Time
		limit  int
		want   []directory.AuditEvent
	}{
		{"newest first from since", "user-1", since, 10, pick(8, 6, 4, 5, 1)},
		{"limit keeps the newest", "user-1", since, 2, pick(8, 6)},
		{"since in another zone", "user-1", since.In(zone), 10, pick(8, 6, 4, 5, 1)},
		{"since just after an event", "user-1", since.Add(time.Nanosecond), 10, pick(8, 6, 4, 5)},
		{"earlier since", "user-1", since.Add(-time.Hour), 10, pick(8, 6, 4, 5, 1, 0)},
		{"zero since", "user-1", time.Time{}, 10, pick(8, 6, 4, 5, 1, 0)},
		{"since after every event", "user-1", since.Add(time.Hour), 10, nil},
		{"other target", "user-10", since, 10, pick(2)},
		{"case matters", "USER-1", since, 10, pick(7)},
		{"unknown target", "user-9", since, 10, nil},
	} {
		got, err := s.AuditEventsFor(ctx, c.target, c.since, c.limit)
		if err != nil {
			t.Errorf("%s: AuditEventsFor(%q, %v, %d): %v", c.name, c.target, c.since, c.limit, err)
			continue
		}
		if diff := cmp.Diff(c.want, got, equateEmpty); diff != "" {
			t.Errorf("%s: AuditEventsFor(%q, %v, %d) mismatch (-want +got):\n%s", c.name, c.target, c.since, c.limit, diff)
		}
	}
	for _, c := range []struct {
		name   string
		target string
		limit  int
	}{
		{"limit 0", "user-1", 0},
		{"negative limit", "user-1", -1},
		{"empty target", "", 10},
	} {
		_, err := s.AuditEventsFor(ctx, c.target, since, c.limit)
		wantErr(t, fmt.Sprintf("AuditEventsFor(%s)", c.name), err, directory.ErrInvalid)
	}

	// It reads inside the caller's transaction.
	err := s.InTx(ctx, func(tx directory.Store) error {
		ev, err := tx.AppendAudit(ctx, at("user-1", 6*time.Minute))
		if err != nil {
			return err
		}
		got, err := tx.AuditEventsFor(ctx, "user-1", since, 1)
		if err != nil {
			return err
		}
		if diff := cmp.Diff([]directory.AuditEvent{ev}, got, equateEmpty); diff != "" {
			t.Errorf("AuditEventsFor inside the transaction mismatch (-want +got):\n%s", diff)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("InTx = %v, want the error fn returned", err)
	}
}

// testCredentialPasswordHistory checks that old password hashes are kept
// like any other credential type and apart from the current password.
func testCredentialPasswordHistory(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	hash := func(n int) []byte { return fmt.Appendf(nil, "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA%d", n) }
	current := directory.Credential{ID: "c-pw", UserID: "user-1", Type: directory.CredentialPassword, Secret: hash(0), CreatedAt: base}
	var history []directory.Credential
	for i := 1; i <= 3; i++ { // stored newest first, listed oldest first
		history = append(history, directory.Credential{
			ID: fmt.Sprintf("c-old-%d", i), UserID: "user-1", Type: directory.CredentialPasswordHistory,
			Secret: hash(i), CreatedAt: base.Add(-time.Duration(i) * time.Hour),
		})
	}
	for _, c := range append([]directory.Credential{current}, history...) {
		if err := s.PutCredential(ctx, c); err != nil {
			t.Fatalf("PutCredential(%q, type %q): %v", c.ID, c.Type, err)
		}
	}
	slices.Reverse(history)
	check := func(step string, typ directory.CredentialType, want []directory.Credential) {
		t.Helper()
		got, err := s.Credentials(ctx, "user-1", typ)
		if err != nil {
			t.Errorf("%s: Credentials(user-1, %q): %v", step, typ, err)
			return
		}
		if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
			t.Errorf("%s: Credentials(user-1, %q) mismatch (-want +got):\n%s", step, typ, diff)
		}
	}
	check("after puts", directory.CredentialPasswordHistory, history)
	check("after puts", directory.CredentialPassword, []directory.Credential{current})
	check("after puts", "", append(slices.Clone(history), current))

	if err := s.DeleteCredential(ctx, "user-1", history[0].ID); err != nil {
		t.Errorf("DeleteCredential(oldest): %v", err)
	}
	check("after deleting the oldest", directory.CredentialPasswordHistory, history[1:])
}
