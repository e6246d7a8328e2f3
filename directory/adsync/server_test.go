package adsync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/directory/adsync"
	"github.com/lanyard/lanyard/testkit"
)

const (
	emailA  = "alice.ward@rrk.nhs.uk"  // organisation A (RRK), also of C (RX3)
	emailA2 = "arthur.bell@rrk.nhs.uk" // organisation A, linked by the account list
	emailB  = "bella.stone@rx1.nhs.uk" // organisation B (RX1)
	passA   = "copper lantern meadow"
	passB   = "saffron tide harbour"
	guidA   = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	guidB   = "11111111-2222-3333-4444-555555555555"
)

type syncFixture struct {
	s          *testkit.Server
	clock      *testkit.Clock
	kA, kB, kC adsync.PrivateKeys
	a, b, c    *adsync.Client
	orgA, orgB string
	orgC       string
	userA      directory.User
	userA2     directory.User
	userB      directory.User
}

func newSyncFixture(t *testing.T, opt testkit.Options) *syncFixture {
	t.Helper()
	ctx := t.Context()
	f := &syncFixture{clock: testkit.NewClock(time.Now())}
	opt.Now = f.clock.Now
	f.s = testkit.NewServer(t, opt)
	by := admin.Actor{ID: "test"}
	for _, o := range [][2]string{{"RRK", "Leeds Teaching Hospitals"}, {"RX1", "Other Trust"}, {"RX3", "Third Trust"}} {
		if _, err := f.s.Admin.CreateOrganisation(ctx, by, o[0], o[1]); err != nil {
			t.Fatal(err)
		}
	}
	org := func(code string) string {
		o, err := f.s.Directory.OrganisationByODS(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		return o.ID
	}
	f.orgA, f.orgB, f.orgC = org("RRK"), org("RX1"), org("RX3")
	user := func(ods, email, name, pw string) directory.User {
		cu, err := f.s.Admin.CreateUser(ctx, by, admin.NewUser{OrgODS: ods, Email: email, Name: name, Password: pw})
		if err != nil {
			t.Fatal(err)
		}
		return cu.User
	}
	f.userA = user("RRK", emailA, "Alice Ward", passA)
	f.userA2 = user("RRK", emailA2, "Arthur Bell", "")
	f.userB = user("RX1", emailB, "Bella Stone", passB)
	f.clock.Advance(time.Second)
	if err := f.s.Directory.PutMembership(ctx, directory.Membership{UserID: f.userA.ID, OrgID: f.orgC, Roles: []directory.Role{directory.RoleStaff}, CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		k   *adsync.PrivateKeys
		c   **adsync.Client
		org string
	}{{&f.kA, &f.a, f.orgA}, {&f.kB, &f.b, f.orgB}, {&f.kC, &f.c, f.orgC}} {
		k, err := adsync.GenerateKeys()
		if err != nil {
			t.Fatal(err)
		}
		*x.k = k
		register(t, f.s, k, x.org, f.clock.Now())
		*x.c = f.client(t, k)
	}
	return f
}

func register(t *testing.T, s *testkit.Server, k adsync.PrivateKeys, orgID string, now time.Time) {
	t.Helper()
	p := k.Public()
	if err := s.Directory.CreateSyncAgent(t.Context(), directory.SyncAgent{
		ID: p.KeyID(), OrgID: orgID, SignKey: p.Sign, SealKey: p.Seal.Bytes(), CreatedAt: now,
	}); err != nil {
		t.Fatal(err)
	}
}

func (f *syncFixture) client(t *testing.T, k adsync.PrivateKeys) *adsync.Client {
	t.Helper()
	c, err := adsync.NewClient(f.s.URL, k, f.s.Client(t))
	if err != nil {
		t.Fatal(err)
	}
	c.Now = f.clock.Now
	return c
}

// signIn signs in at /account with the password and reports whether it worked.
func (f *syncFixture) signIn(t *testing.T, email, pw string) (*testkit.Browser, bool) {
	t.Helper()
	b := f.s.Browser(t)
	p, _ := b.Follow(b.Get(f.s.URL+"/account"), f.s.URL)
	p, _ = b.Follow(b.SignIn(p, email, pw), f.s.URL)
	return b, strings.Contains(p.Body, "Your account")
}

// pending returns the organisation's sealed events.
func (f *syncFixture) pending(t *testing.T, orgID string) []directory.PasswordEvent {
	t.Helper()
	evs, err := f.s.Directory.SealedPasswordEvents(t.Context(), orgID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// audits returns the actions of the audit events whose action starts with prefix.
func (f *syncFixture) audits(t *testing.T, prefix string) []directory.AuditEvent {
	t.Helper()
	evs, err := f.s.Directory.AuditEvents(t.Context(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []directory.AuditEvent
	for _, e := range evs {
		if strings.HasPrefix(e.Action, prefix) {
			out = append(out, e)
		}
	}
	return out
}

func TestADSync(t *testing.T) {
	for _, v := range []struct {
		name string
		opt  testkit.Options
	}{
		{"sqlite", testkit.Options{}},
		{"postgres+redis", testkit.Options{Postgres: true, Redis: true}},
	} {
		t.Run(v.name, func(t *testing.T) {
			f := newSyncFixture(t, v.opt)
			t.Run("LanyardToAD", f.testLanyardToAD)
			t.Run("ADToLanyard", f.testADToLanyard)
			t.Run("Isolation", f.testIsolation)
			t.Run("RequestsRefused", f.testRefused)
			t.Run("Accounts", f.testAccounts)
			t.Run("Policy", f.testPolicy)
			t.Run("Metrics", f.testMetrics)
		})
	}
}

// A self-service change becomes a sealed change that only the agent's key
// opens; the long poll wakes for it; an ack deletes it and links the user.
func (f *syncFixture) testLanyardToAD(t *testing.T) {
	ctx := t.Context()
	if n := len(f.pending(t, f.orgA)); n != 0 {
		t.Fatalf("%d changes pending before any change", n)
	}
	b, ok := f.signIn(t, emailA, passA)
	if !ok {
		t.Fatal("cannot sign in")
	}
	const next = "orchard pebble violin"
	type result struct {
		ch  adsync.Changes
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		ch, err := f.a.Changes(context.WithoutCancel(ctx), 0, 20*time.Second)
		done <- result{ch, err, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond) // the poll is waiting
	p := b.Get(f.s.URL + "/account/password")
	changed := time.Now()
	p = b.Submit(p, `name="new_password"`, map[string]string{"current_password": passA, "new_password": next, "confirm_password": next})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Your password has been changed") {
		t.Fatalf("self-service change: %d\n%.1500s", p.Status, p.Body)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if d := r.at.Sub(changed); d > 3*time.Second {
		t.Errorf("long poll answered %v after the change", d)
	}
	if len(r.ch.Changes) != 1 {
		t.Fatalf("changes = %+v, want one", r.ch.Changes)
	}
	c := r.ch.Changes[0]
	if c.UserID != f.userA.ID || c.Email != emailA || c.Source != directory.PasswordSourceSelf || c.GUID != "" || c.Seq <= 0 {
		t.Errorf("change = %+v", c)
	}
	if bytes.Contains(c.Sealed, []byte(next)) {
		t.Fatal("password in the clear")
	}
	if pw, err := adsync.OpenPassword(f.kA.Seal, c.ID, c.UserID, c.Sealed); err != nil || pw != next {
		t.Fatalf("OpenPassword with A's key = %q, %v", pw, err)
	}
	for name, k := range map[string]adsync.PrivateKeys{"B's key": f.kB, "C's key": f.kC} {
		if _, err := adsync.OpenPassword(k.Seal, c.ID, c.UserID, c.Sealed); !errors.Is(err, adsync.ErrSealed) {
			t.Errorf("opened with %s: %v", name, err)
		}
	}
	// The user's other organisation, C, got its own change sealed to C's agent.
	cc, err := f.c.Changes(ctx, 0, 0)
	if err != nil || len(cc.Changes) != 1 {
		t.Fatalf("C's changes = %+v, %v", cc, err)
	}
	if pw, err := adsync.OpenPassword(f.kC.Seal, cc.Changes[0].ID, f.userA.ID, cc.Changes[0].Sealed); err != nil || pw != next {
		t.Fatalf("C's change opens to %q, %v", pw, err)
	}
	// Nothing for B; and after the last Seq, nothing more for A.
	if bc, err := f.b.Changes(ctx, 0, 0); err != nil || len(bc.Changes) != 0 {
		t.Errorf("B sees %+v, %v", bc, err)
	}
	if ac, err := f.a.Changes(ctx, c.Seq, 0); err != nil || len(ac.Changes) != 0 {
		t.Errorf("after seq %d: %+v, %v", c.Seq, ac, err)
	}

	if err := f.a.Ack(ctx, adsync.Ack{ID: c.ID, Result: adsync.ResultApplied, GUID: strings.ToUpper(guidA)}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.pending(t, f.orgA)); n != 0 {
		t.Errorf("%d changes pending after the ack", n)
	}
	if err := f.a.Ack(ctx, adsync.Ack{ID: c.ID, Result: adsync.ResultApplied}); err != nil {
		t.Errorf("second ack: %v", err)
	}
	if l, err := f.s.Directory.ADLinkByUser(ctx, f.orgA, f.userA.ID); err != nil || l.GUID != guidA {
		t.Errorf("link after ack = %+v, %v", l, err)
	}
	if evs := f.audits(t, "adsync.change.applied"); len(evs) != 1 || evs[0].Target != f.userA.ID || evs[0].OrgID != f.orgA {
		t.Errorf("ack audits: %+v", evs)
	}
	if err := f.c.Ack(ctx, adsync.Ack{ID: cc.Changes[0].ID, Result: adsync.ResultUnmatched}); err != nil {
		t.Fatal(err)
	}
	// Further changes carry the link.
	f.clock.Advance(time.Minute)
	if err := f.s.Passwords.Set(ctx, f.userA, passA+" again", directory.PasswordSourceAdmin, directory.AuditEvent{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	ac, err := f.a.Changes(ctx, c.Seq, 0)
	if err != nil || len(ac.Changes) != 1 || ac.Changes[0].GUID != guidA || ac.Changes[0].Source != directory.PasswordSourceAdmin {
		t.Fatalf("admin change = %+v, %v", ac, err)
	}
	if err := f.a.Ack(ctx, adsync.Ack{ID: ac.Changes[0].ID, Result: adsync.ResultApplied}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range f.pending(t, f.orgC) {
		if err := f.c.Ack(ctx, adsync.Ack{ID: ch.ID, Result: adsync.ResultApplied}); err != nil {
			t.Fatal(err)
		}
	}
}

// An AD change is applied (login works, sessions kept), once; a stale one
// is dropped and audited; a weak one refused; no echo to its own agent.
func (f *syncFixture) testADToLanyard(t *testing.T) {
	ctx := t.Context()
	f.clock.Advance(time.Minute)
	const adPass = "glacier kettle harmonica"
	kept, ok := f.signIn(t, emailA, passA+" again")
	if !ok {
		t.Fatal("cannot sign in with the admin's password")
	}
	f.clock.Advance(time.Second)
	ch := adsync.ADChange{ID: "ad-change-1", GUID: guidA, UPN: emailA, ChangedAt: f.clock.Now(), Password: adPass}
	res, err := f.a.SendADChange(ctx, ch)
	if err != nil || res.Outcome != adsync.OutcomeApplied || res.UserID != f.userA.ID {
		t.Fatalf("SendADChange = %+v, %v", res, err)
	}
	if _, ok := f.signIn(t, emailA, adPass); !ok {
		t.Error("cannot sign in with the password set in AD")
	}
	if _, ok := f.signIn(t, emailA, passA+" again"); ok {
		t.Error("the replaced password still works")
	}
	if p := kept.Get(f.s.URL + "/account"); !strings.Contains(p.Body, "Your account") {
		t.Error("the session from before the AD change was ended")
	}
	// No echo: nothing for A; C (the user's other organisation) gets it.
	if ac, err := f.a.Changes(ctx, 0, 0); err != nil || len(ac.Changes) != 0 {
		t.Errorf("A's own AD change came back: %+v, %v", ac, err)
	}
	cc, err := f.c.Changes(ctx, 0, 0)
	if err != nil || len(cc.Changes) != 1 || cc.Changes[0].Source != directory.PasswordSourceAD {
		t.Fatalf("C's changes = %+v, %v", cc, err)
	}
	if err := f.c.Ack(ctx, adsync.Ack{ID: cc.Changes[0].ID, Result: adsync.ResultApplied}); err != nil {
		t.Fatal(err)
	}
	creds := func() []directory.Credential {
		cs, err := f.s.Directory.Credentials(ctx, f.userA.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	before := creds()
	// Resending is harmless.
	res, err = f.a.SendADChange(ctx, ch)
	if err != nil || res.Outcome != adsync.OutcomeDuplicate {
		t.Errorf("resend = %+v, %v", res, err)
	}
	// A change older than the last applied is dropped and audited.
	stale := adsync.ADChange{ID: "ad-change-0", GUID: guidA, ChangedAt: ch.ChangedAt.Add(-time.Second), Password: "lighthouse marble quince"}
	res, err = f.a.SendADChange(ctx, stale)
	if err != nil || res.Outcome != adsync.OutcomeStale {
		t.Errorf("stale = %+v, %v", res, err)
	}
	if evs := f.audits(t, "adsync.password.stale"); len(evs) != 1 || evs[0].Target != f.userA.ID || evs[0].Detail["change"] != "ad-change-0" {
		t.Errorf("stale audits: %+v", evs)
	}
	if res, err := f.a.SendADChange(ctx, stale); err != nil || res.Outcome != adsync.OutcomeStale {
		t.Errorf("stale resent = %+v, %v", res, err)
	}
	if n := len(f.audits(t, "adsync.password.stale")); n != 1 {
		t.Errorf("stale resent audited again: %d", n)
	}
	// Equal times: Lanyard's wins. A Lanyard change now, then an AD change dated the same instant.
	f.clock.Advance(time.Minute)
	if err := f.s.Passwords.Set(ctx, f.userA, "walnut canyon lullaby", directory.PasswordSourceAdmin, directory.AuditEvent{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	before = creds()
	res, err = f.a.SendADChange(ctx, adsync.ADChange{ID: "ad-change-2", GUID: guidA, ChangedAt: f.clock.Now(), Password: "prairie velvet anchor"})
	if err != nil || res.Outcome != adsync.OutcomeStale {
		t.Errorf("same-instant AD change = %+v, %v; want stale (Lanyard wins ties)", res, err)
	}
	// A weak password is refused.
	f.clock.Advance(time.Second)
	res, err = f.a.SendADChange(ctx, adsync.ADChange{ID: "ad-change-3", GUID: guidA, ChangedAt: f.clock.Now(), Password: "password123"})
	if err != nil || res.Outcome != adsync.OutcomeRefused || !strings.Contains(res.Detail, "common") {
		t.Errorf("weak = %+v, %v", res, err)
	}
	if after := creds(); len(after) != len(before) || after[len(after)-1].ID != before[len(before)-1].ID {
		t.Error("a dropped or refused change changed the credentials")
	}
	// An unknown account is unmatched.
	res, err = f.a.SendADChange(ctx, adsync.ADChange{ID: "ad-change-4", GUID: "99999999-0000-0000-0000-000000000000", UPN: "nobody@rrk.nhs.uk", ChangedAt: f.clock.Now(), Password: "lighthouse marble quince"})
	if err != nil || res.Outcome != adsync.OutcomeUnmatched {
		t.Errorf("unknown account = %+v, %v", res, err)
	}
	for _, ch := range f.pending(t, f.orgA) {
		_ = f.a.Ack(ctx, adsync.Ack{ID: ch.ID, Result: adsync.ResultApplied})
	}
	for _, ch := range f.pending(t, f.orgC) {
		_ = f.c.Ack(ctx, adsync.Ack{ID: ch.ID, Result: adsync.ResultApplied})
	}
}

// B's agent can neither read nor acknowledge A's changes, nor set or link
// A's users.
func (f *syncFixture) testIsolation(t *testing.T) {
	ctx := t.Context()
	f.clock.Advance(time.Minute)
	const pw = "harvest comet pillow"
	if err := f.s.Passwords.Set(ctx, f.userA, pw, directory.PasswordSourceAdmin, directory.AuditEvent{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	evs := f.pending(t, f.orgA)
	if len(evs) != 1 {
		t.Fatalf("%d pending for A", len(evs))
	}
	if bc, err := f.b.Changes(ctx, 0, 1*time.Second); err != nil || len(bc.Changes) != 0 {
		t.Errorf("B reads A's changes: %+v, %v", bc, err)
	}
	if err := f.b.Ack(ctx, adsync.Ack{ID: evs[0].ID, Result: adsync.ResultApplied, GUID: guidB}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.pending(t, f.orgA)); n != 1 {
		t.Errorf("B's ack deleted A's change: %d left", n)
	}
	f.clock.Advance(time.Second)
	for i, ch := range []adsync.ADChange{
		{ID: "b-1", GUID: guidA, ChangedAt: f.clock.Now(), Password: "intruder maple beacon"},                // A's linked GUID
		{ID: "b-2", GUID: guidB, UPN: emailA, ChangedAt: f.clock.Now(), Password: "intruder maple beacon"},   // A's user's email as UPN
		{ID: "b-3", GUID: guidB, Mail: emailA2, ChangedAt: f.clock.Now(), Password: "intruder maple beacon"}, // and as mail
	} {
		res, err := f.b.SendADChange(ctx, ch)
		if err != nil || res.Outcome != adsync.OutcomeUnmatched || res.UserID != "" {
			t.Errorf("B's change %d for A's user = %+v, %v", i, res, err)
		}
	}
	if _, ok := f.signIn(t, emailA, pw); !ok {
		t.Error("A's user's password changed by B's agent")
	}
	links, err := f.b.Accounts(ctx, adsync.Accounts{Accounts: []adsync.Account{{GUID: guidA, UPN: emailA}, {GUID: guidB, UPN: emailB}}, Complete: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(links.Links) != 1 || links.Links[0].UserID != f.userB.ID || len(links.UnmatchedAD) != 1 || links.UnmatchedAD[0] != guidA {
		t.Errorf("B's links = %+v", links)
	}
	for _, l := range []string{f.userA.ID, f.userA2.ID} {
		if l2, err := f.s.Directory.ADLinkByUser(ctx, f.orgB, l); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("A's user linked in B: %+v, %v", l2, err)
		}
	}
	// The same GUID may exist in A and in B: different forests.
	if l, err := f.s.Directory.ADLinkByGUID(ctx, f.orgA, guidA); err != nil || l.UserID != f.userA.ID {
		t.Errorf("A's link changed: %+v, %v", l, err)
	}
	if err := f.a.Ack(ctx, adsync.Ack{ID: evs[0].ID, Result: adsync.ResultApplied}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range f.pending(t, f.orgC) {
		_ = f.c.Ack(ctx, adsync.Ack{ID: ch.ID, Result: adsync.ResultApplied})
	}
}

// rawRequest sends a request signed by k at at, with body; mutate may
// spoil it after signing.
func (f *syncFixture) rawRequest(t *testing.T, method, path string, body []byte, k adsync.PrivateKeys, at time.Time, mutate func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, f.s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	adsync.SignRequest(req, body, k, at)
	if mutate != nil {
		mutate(req)
	}
	resp, err := f.s.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}

// Requests with a bad signature, date, nonce, agent or body are refused
// with the protocol's status and change nothing.
func (f *syncFixture) testRefused(t *testing.T) {
	ctx := t.Context()
	f.clock.Advance(time.Minute)
	if err := f.s.Passwords.Set(ctx, f.userA, "thimble orbit sparrow", directory.PasswordSourceAdmin, directory.AuditEvent{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	evs := f.pending(t, f.orgA)
	if len(evs) != 1 {
		t.Fatalf("%d pending", len(evs))
	}
	ack, _ := json.Marshal(adsync.Acks{Acks: []adsync.Ack{{ID: evs[0].ID, Result: adsync.ResultApplied}}})
	now := f.clock.Now()
	stranger, _ := adsync.GenerateKeys()
	disabled, _ := adsync.GenerateKeys()
	dp := disabled.Public()
	if err := f.s.Directory.CreateSyncAgent(ctx, directory.SyncAgent{
		ID: dp.KeyID(), OrgID: f.orgA, SignKey: dp.Sign, SealKey: dp.Seal.Bytes(), CreatedAt: now, Disabled: true,
	}); err != nil {
		t.Fatal(err)
	}

	// A replayed request: the first is served, the copy refused.
	req, _ := http.NewRequestWithContext(ctx, "POST", f.s.URL+adsync.PathPrefix+"policy-check", bytes.NewReader([]byte(`{"password":"x"}`)))
	adsync.SignRequest(req, []byte(`{"password":"x"}`), f.kA, now)
	hdr := req.Header.Clone()
	if st, msg := f.rawRequest(t, "POST", adsync.PathPrefix+"policy-check", []byte(`{"password":"x"}`), f.kA, now, func(r *http.Request) { r.Header = hdr.Clone() }); st != http.StatusOK {
		t.Fatalf("first request: %d %s", st, msg)
	}
	if st, msg := f.rawRequest(t, "POST", adsync.PathPrefix+"policy-check", []byte(`{"password":"x"}`), f.kA, now, func(r *http.Request) { r.Header = hdr.Clone() }); st != http.StatusUnauthorized || !strings.Contains(msg, "replayed") {
		t.Errorf("replay: %d %q", st, msg)
	}

	big := append([]byte(`{"acks":[],"pad":"`), bytes.Repeat([]byte("x"), adsync.MaxBody)...)
	big = append(big, `"}`...)
	for _, c := range []struct {
		name, method, path string
		body               []byte
		k                  adsync.PrivateKeys
		at                 time.Time
		mutate             func(*http.Request)
		status             int
		msg                string
	}{
		{"unsigned", "POST", "acks", ack, f.kA, now, func(r *http.Request) { r.Header.Del(adsync.HeaderSignature) }, 401, "not signed"},
		{"stale date", "POST", "acks", ack, f.kA, now.Add(-adsync.MaxSkew - time.Minute), nil, 401, "clock skew"},
		{"future date", "POST", "acks", ack, f.kA, now.Add(adsync.MaxSkew + time.Minute), nil, 401, "clock skew"},
		{"bad signature", "POST", "acks", ack, f.kA, now, func(r *http.Request) {
			r.Body = readCloser(bytes.Replace(ack, []byte("applied"), []byte("refused"), 1))
			r.ContentLength = -1
		}, 401, "does not verify"},
		{"other agent's key", "POST", "acks", ack, stranger, now, func(r *http.Request) { r.Header.Set(adsync.HeaderAgent, f.kA.Public().KeyID()) }, 401, "does not verify"},
		{"unknown agent", "POST", "acks", ack, stranger, now, nil, 401, "not registered"},
		{"disabled agent", "POST", "acks", ack, disabled, now, nil, 401, "not registered"},
		{"oversized body", "POST", "acks", big, f.kA, now, nil, 413, "large"},
		{"malformed JSON", "POST", "acks", []byte(`{"acks":[{"id":`), f.kA, now, nil, 400, "malformed JSON"},
		{"trailing data", "POST", "acks", append(bytes.Clone(ack), "{}"...), f.kA, now, nil, 400, "malformed JSON"},
		{"unknown result", "POST", "acks", []byte(`{"acks":[{"id":"` + evs[0].ID + `","result":"done"}]}`), f.kA, now, nil, 400, "result"},
		{"wrong method", "GET", "acks", nil, f.kA, now, nil, 405, "use POST"},
		{"unknown endpoint", "GET", "users", nil, f.kA, now, nil, 404, "no such endpoint"},
		{"bad after", "GET", "changes?after=x", nil, f.kA, now, nil, 400, "after"},
		{"bad wait", "GET", "changes?after=0&wait=31", nil, f.kA, now, nil, 400, "wait"},
		{"AD change without ID", "POST", "passwords", []byte(`{"guid":"` + guidA + `","password":"lighthouse marble quince","changed_at":"2030-01-01T00:00:00Z"}`), f.kA, now, nil, 400, "id"},
	} {
		st, msg := f.rawRequest(t, c.method, adsync.PathPrefix+c.path, c.body, c.k, c.at, c.mutate)
		if st != c.status || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %d %q, want %d with %q", c.name, st, msg, c.status, c.msg)
		}
	}
	if n := len(f.pending(t, f.orgA)); n != 1 {
		t.Errorf("refused requests deleted the change: %d left", n)
	}
	if n := len(f.audits(t, "adsync.change.refused")); n != 0 {
		t.Errorf("refused requests audited %d results", n)
	}
	// The typed client errors.
	sc := f.client(t, stranger)
	if _, err := sc.Policy(ctx); !errors.Is(err, adsync.ErrRefused) {
		t.Errorf("unknown agent through the client: %v", err)
	}
	if err := f.a.Ack(ctx, adsync.Ack{ID: evs[0].ID, Result: adsync.ResultApplied}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range f.pending(t, f.orgC) {
		_ = f.c.Ack(ctx, adsync.Ack{ID: ch.ID, Result: adsync.ResultApplied})
	}
	// Every contact was recorded.
	a, err := f.s.Directory.SyncAgent(ctx, f.kA.Public().KeyID())
	if err != nil || !a.LastContact.Equal(f.clock.Now()) {
		t.Errorf("A's last contact = %v, %v; want %v", a.LastContact, err, f.clock.Now())
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func readCloser(b []byte) nopCloser { return nopCloser{bytes.NewReader(b)} }

// The account list links by UPN or mail once, then by GUID, and reports
// what is unmatched on both sides, also to the administrators.
func (f *syncFixture) testAccounts(t *testing.T) {
	ctx := t.Context()
	const guidA2, guidX = "aaaaaaaa-0000-0000-0000-000000000002", "aaaaaaaa-0000-0000-0000-0000000000ff"
	in := adsync.Accounts{Complete: true, Accounts: []adsync.Account{
		{GUID: guidA, UPN: "alice@ad.rrk.local"},                                    // linked already
		{GUID: "{" + strings.ToUpper(guidA2) + "}", Mail: strings.ToUpper(emailA2)}, // by mail
		{GUID: guidX, UPN: "nobody@rrk.nhs.uk", SAM: "nobody"},
	}}
	links, err := f.a.Accounts(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{guidA: f.userA.ID, guidA2: f.userA2.ID}
	if len(links.Links) != 2 {
		t.Errorf("links = %+v", links.Links)
	}
	for _, l := range links.Links {
		if want[l.GUID] != l.UserID {
			t.Errorf("link %+v, want user %s", l, want[l.GUID])
		}
	}
	if len(links.UnmatchedAD) != 1 || links.UnmatchedAD[0] != guidX || len(links.UnmatchedLanyard) != 0 {
		t.Errorf("unmatched = %v / %v", links.UnmatchedAD, links.UnmatchedLanyard)
	}
	us, err := f.s.Directory.ADUnmatchedAccounts(ctx, f.orgA)
	if err != nil || len(us) != 1 || us[0].Ref != guidX || us[0].Label != "nobody@rrk.nhs.uk" {
		t.Errorf("stored unmatched = %+v, %v", us, err)
	}
	// C has a user and no accounts: that user is unmatched on Lanyard's side.
	cl, err := f.c.Accounts(ctx, adsync.Accounts{Complete: true})
	if err != nil || len(cl.UnmatchedLanyard) != 1 || cl.UnmatchedLanyard[0] != emailA {
		t.Errorf("C's links = %+v, %v", cl, err)
	}
	if _, err := f.a.Accounts(ctx, adsync.Accounts{Accounts: []adsync.Account{{GUID: guidX}, {GUID: guidX}}}); !errors.Is(err, adsync.ErrRefused) {
		t.Errorf("duplicate GUIDs: %v", err)
	}
}

// The policy check applies the whole policy and the user's history; the
// offline policy carries the organisation's terms.
func (f *syncFixture) testPolicy(t *testing.T) {
	ctx := t.Context()
	if err := f.s.Directory.PutOrgPolicy(ctx, f.orgA, directory.OrgPolicy{MinLength: 14, BannedTerms: []string{"leeds"}}); err != nil {
		t.Fatal(err)
	}
	pol, err := f.a.Policy(ctx)
	if err != nil || pol.MinLength != 14 || !slices.Contains(pol.BannedTerms, "leeds") || pol.MaxLength <= 0 || !pol.FetchedAt.Equal(f.clock.Now()) {
		t.Errorf("policy = %+v, %v", pol, err)
	}
	if pb, err := f.b.Policy(ctx); err != nil || pb.MinLength != 10 || slices.Contains(pb.BannedTerms, "leeds") || len(pb.BannedTerms) != len(pol.BannedTerms)-1 {
		t.Errorf("B's policy = %+v, %v", pb, err)
	}
	if v, err := f.b.PolicyCheck(ctx, adsync.PolicyCheck{GUID: guidB, Password: "password123"}); err != nil || v.OK || !strings.Contains(strings.Join(v.Reasons, " "), "common") {
		t.Errorf("common password for B: %+v, %v", v, err)
	}
	for _, c := range []struct {
		name string
		pc   adsync.PolicyCheck
		ok   bool
	}{
		{"good", adsync.PolicyCheck{GUID: guidA, Password: "marigold tundra cobbler"}, true},
		{"banned term", adsync.PolicyCheck{GUID: guidA, Password: "leeds marigold tundra"}, false},
		{"too short for the organisation", adsync.PolicyCheck{GUID: guidA, Password: "ochre wren 9"}, false},
		{"the current password", adsync.PolicyCheck{GUID: guidA, Password: "thimble orbit sparrow"}, true},
		{"a previous password", adsync.PolicyCheck{GUID: guidA, Password: "walnut canyon lullaby"}, false},
		{"user's name, by UPN", adsync.PolicyCheck{UPN: emailA, Password: "alice ward forever"}, false},
		{"unlinked account", adsync.PolicyCheck{GUID: "bbbbbbbb-0000-0000-0000-000000000000", Password: "marigold tundra cobbler"}, true},
	} {
		v, err := f.a.PolicyCheck(ctx, c.pc)
		if err != nil || v.OK != c.ok || (!v.OK && len(v.Reasons) == 0) {
			t.Errorf("%s: %+v, %v; want ok=%v", c.name, v, err, c.ok)
		}
	}
}

// /metrics shows the queue, the oldest pending change and each agent's
// last contact, and counts agents gone silent.
func (f *syncFixture) testMetrics(t *testing.T) {
	ctx := t.Context()
	metrics := func() string {
		resp, err := f.s.Client(t).Get(f.s.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return b.String()
	}
	if err := f.s.Passwords.Set(ctx, f.userA, "quartz meadow lantern", directory.PasswordSourceAdmin, directory.AuditEvent{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(90 * time.Second)
	m := metrics()
	for _, want := range []string{
		`lanyard_adsync_queue_depth{org="RRK"} 1`,
		`lanyard_adsync_oldest_pending_seconds{org="RRK"} 90`,
		`lanyard_adsync_agent_last_contact_seconds{agent="` + f.kB.Public().KeyID() + `",org="RX1"}`,
		`lanyard_adsync_agents_silent 0`,
		`lanyard_adsync_scrape_ok 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	f.clock.Advance(20 * time.Minute)
	if _, err := f.a.Policy(ctx); err != nil {
		t.Fatal(err)
	}
	m = metrics()
	if !strings.Contains(m, `lanyard_adsync_agents_silent 2`) || !strings.Contains(m, `lanyard_adsync_agent_last_contact_seconds{agent="`+f.kA.Public().KeyID()+`",org="RRK"} 0`) {
		t.Errorf("after 20 minutes, A called, B and C silent:\n%s", grep(m, "lanyard_adsync"))
	}
	silent, err := f.s.SilentAgents(ctx)
	if err != nil || len(silent) != 2 {
		t.Errorf("SilentAgents = %+v, %v", silent, err)
	}
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
