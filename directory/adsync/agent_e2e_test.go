package adsync_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/directory/adsync"
	"github.com/lanyard/lanyard/testkit"
)

// The end-to-end tests run a real Lanyard (testkit.NewServer), the test
// binary's Samba AD DC (testkit.SambaDC) whose password hook runs the real
// `idp agent capture`, and the agent between them. Each test uses its own
// organisation, agent and AD accounts; the DC is shared, so the tests do
// not run in parallel.

const redirectURI = "http://127.0.0.1:9999/callback"

type e2e struct {
	t       *testing.T
	dc      *testkit.Samba
	srv     *testkit.Server
	proxy   *testkit.Proxy // between the agent (and its hook) and Lanyard
	orgID   string
	ods     string
	cfgPath string
	cfg     adsync.AgentConfig
	keys    adsync.PrivateKeys
	hookLog string // one line per run of the DC's hook for this test
	hook    string // the DC's hook command, set when the agent first starts
	hooked  bool

	mu     sync.Mutex
	agent  *adsync.Agent
	cancel context.CancelFunc
	done   chan struct{}
}

// newE2E starts Lanyard with an organisation and a registered agent, and
// points the DC's hook at the agent's capture. The agent is not started.
func newE2E(t *testing.T) *e2e {
	t.Helper()
	dc := testkit.SambaDC(t)
	idp := testkit.IDPBinary(t)
	srv := testkit.NewServer(t, testkit.Options{})
	ods := "T" + strings.ToUpper(rand.Text()[:4])
	org, err := srv.Admin.CreateOrganisation(t.Context(), admin.Actor{ID: "test"}, ods, "Test Trust "+ods)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := adsync.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	pub := keys.Public()
	if err := srv.Directory.CreateSyncAgent(t.Context(), directory.SyncAgent{
		ID: pub.KeyID(), OrgID: org.ID, SignKey: pub.Sign, SealKey: pub.Seal.Bytes(), CreatedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	proxy := testkit.NewProxy(t, strings.TrimPrefix(srv.Base, "https://"))
	dir := t.TempDir()
	priv, err := keys.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("agent.key", priv)
	write("bind.pw", []byte(testkit.SambaAdminPassword+"\n"))
	write("lanyard-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.HTTP.Certificate().Raw}))
	yaml := fmt.Sprintf(`lanyard:
  url: %s
  ca_file: lanyard-ca.pem
key_file: agent.key
ad:
  url: %s
  ca_file: %s
  bind_dn: %s
  bind_password_file: bind.pw
  base_dn: %s
  timeout: 5s
state_dir: state
policy:
  unreachable: fail-open
  check_timeout: 2s
poll:
  changes: 5s
  candidates: 100ms
  accounts: 1m
backoff:
  min: 100ms
  max: 1s
log_level: debug
`, "https://"+proxy.Addr(), dc.URL, dc.CAFile, testkit.SambaAdmin, testkit.SambaBaseDN)
	write("agent.yaml", []byte(yaml))
	e := &e2e{t: t, dc: dc, srv: srv, proxy: proxy, orgID: org.ID, ods: ods, cfgPath: filepath.Join(dir, "agent.yaml"), keys: keys,
		hookLog: filepath.Join(dir, "hook.log")}
	e.cfg, err = adsync.LoadAgentConfig(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The hook logs the account and the SHA-256 of each password it sees
	// (in the test's folder), then runs the real capture.
	e.hook = fmt.Sprintf(`pw=$(cat)
echo "$SAMBA_CPS_ACCOUNT_NAME $(printf %%s "$pw" | sha256sum | cut -c1-64)" >> %s
printf %%s "$pw" | exec %s agent capture --config %s 2>>%s`,
		e.hookLog, idp, e.cfgPath, filepath.Join(dir, "capture.log"))
	t.Cleanup(func() {
		e.stopAgent()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "capture.log")); err == nil && len(b) > 0 {
				t.Logf("capture log:\n%s", b)
			}
		}
	})
	return e
}

// startAgent runs the agent in this process until stopAgent or the end of
// the test.
func (e *e2e) startAgent() *adsync.Agent {
	e.t.Helper()
	if !e.hooked {
		e.dc.SetHook(e.t, e.hook)
		e.hooked = true
	}
	log := slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("agent", e.ods)
	a, l, err := adsync.OpenAgent(e.cfg, log)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer l.Close()
		a.Run(ctx)
	}()
	e.mu.Lock()
	e.agent, e.cancel, e.done = a, cancel, done
	e.mu.Unlock()
	return a
}

func (e *e2e) stopAgent() {
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.cancel, e.done = nil, nil
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// user is one person with a Lanyard account and an AD account.
type user struct {
	ad    testkit.SambaUser
	id    string
	email string
}

// newUser creates a Lanyard account and then an AD account with the same
// email, both with password pw. Call it before the agent first starts (the
// DC's hook is off until then). Lanyard's initial password is in its
// outbox, and the agent finds it older than AD's (ResultStale).
func (e *e2e) newUser(pw string) user {
	e.t.Helper()
	sam := "u" + strings.ToLower(rand.Text()[:10])
	email := sam + "@lanyard.test"
	cu, err := e.srv.Admin.CreateUser(e.t.Context(), admin.Actor{ID: "test"}, admin.NewUser{OrgODS: e.ods, Email: email, Name: "Test " + strings.ToUpper(sam[1:2]) + "person", Password: pw})
	if err != nil {
		e.t.Fatal(err)
	}
	ad := e.dc.CreateUser(e.t, sam, email, pw)
	return user{ad: ad, id: cu.User.ID, email: email}
}

// eventually polls cond every 50 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("after %v: %s", d, what)
		}
		<-tick.C
	}
	return time.Since(start)
}

// canLogin reports whether Lanyard takes email and pw at its sign-in page.
func (e *e2e) canLogin(email, pw string) bool {
	b := e.srv.Browser(e.t)
	p, _ := b.Follow(b.Get(e.srv.URL+"/account"), e.srv.URL)
	p, _ = b.Follow(b.SignIn(p, email, pw), e.srv.URL)
	return strings.Contains(p.Body, "Your account")
}

// changeInLanyard changes u's password through Lanyard's self-service page.
func (e *e2e) changeInLanyard(u user, old, pw string) {
	e.t.Helper()
	b := e.srv.Browser(e.t)
	p, _ := b.Follow(b.Get(e.srv.URL+"/account"), e.srv.URL)
	p, _ = b.Follow(b.SignIn(p, u.email, old), e.srv.URL)
	if !strings.Contains(p.Body, "Your account") {
		e.t.Fatalf("sign in as %s: %d %s", u.email, p.Status, p.URL)
	}
	p = b.Get(e.srv.URL + "/account/password")
	p = b.Submit(p, `name="new_password"`, map[string]string{"current_password": old, "new_password": pw, "confirm_password": pw})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Your password has been changed") {
		e.t.Fatalf("change password in lanyard: %d\n%.2000s", p.Status, p.Body)
	}
}

// lanyardSets counts the password changes Lanyard applied to u from each
// source (its audit log).
func (e *e2e) lanyardSets(u user) map[string]int {
	e.t.Helper()
	evs, err := e.srv.Directory.AuditEventsFor(e.t.Context(), u.id, time.Time{}, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	n := map[string]int{}
	for _, ev := range evs {
		if ev.Action == "password.set" && ev.Outcome == directory.OutcomeSuccess {
			n[ev.Detail["source"]]++
		}
	}
	return n
}

// hookRuns returns the SHA-256 (hex) of each password the DC's hook saw
// for u, in order: every password written to u's AD account, by anyone,
// and every candidate AD then refused.
func (e *e2e) hookRuns(u user) []string {
	b, _ := os.ReadFile(e.hookLog)
	var out []string
	for l := range strings.Lines(string(b)) {
		if sam, h, ok := strings.Cut(strings.TrimSpace(l), " "); ok && sam == u.ad.SAM {
			out = append(out, h)
		}
	}
	return out
}

func sha(pw string) string {
	s := sha256.Sum256([]byte(pw))
	return hex.EncodeToString(s[:])
}

func TestLanyardToAD(t *testing.T) {
	e := newE2E(t)
	u := e.newUser("amber kettle meadow 11")
	a := e.startAgent()
	e.changeInLanyard(u, "amber kettle meadow 11", "quiet harbour violin 22")
	took := eventually(t, 5*time.Second, "AD does not take the new password", func() bool {
		return e.dc.Bind(u.ad, "quiet harbour violin 22") == nil
	})
	t.Logf("Lanyard -> AD in %v", took)
	if err := e.dc.Bind(u.ad, "amber kettle meadow 11"); err == nil {
		t.Error("the old password still binds in AD")
	}
	// No echo: the write fired the DC's hook, and nothing came back.
	eventually(t, 5*time.Second, "the write was not acknowledged", func() bool { return a.Stats().Applied == 1 })
	if s := a.Stats(); s.ADWrites != 1 || s.Stale != 1 || s.Confirmed != 0 || s.Forwarded != 0 || s.Spool != 0 {
		t.Errorf("stats after one Lanyard change: %+v", s)
	}
	if got := e.lanyardSets(u); got[directory.PasswordSourceAD] != 0 {
		t.Errorf("lanyard applied %d changes from AD; want none (echo)", got[directory.PasswordSourceAD])
	}
}

func TestADToLanyard(t *testing.T) {
	e := newE2E(t)
	u := e.newUser("amber kettle meadow 11")
	a := e.startAgent()

	// An AD administrator resets the password over LDAP.
	if err := e.dc.ResetPassword(t, u.ad, "copper lantern orchard 33"); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 10*time.Second, "lanyard does not take the AD reset", func() bool { return a.Stats().Forwarded == 1 })
	t.Logf("AD reset -> Lanyard in %v", took)
	e.loginThroughRP(u.email, "copper lantern orchard 33")

	// The user changes it with kpasswd (Kerberos, as Ctrl-Alt-Del does).
	if err := e.dc.Kpasswd(u.ad, "copper lantern orchard 33", "violet harbour pebble 44"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "lanyard does not take the kpasswd change", func() bool { return a.Stats().Forwarded == 2 })
	e.loginThroughRP(u.email, "violet harbour pebble 44")
	if e.canLogin(u.email, "copper lantern orchard 33") {
		t.Error("the replaced password still signs in to lanyard")
	}
	if s := a.Stats(); s.ADWrites != 0 {
		t.Errorf("the agent wrote AD %d times; want none (echo)", s.ADWrites)
	}
	if got := e.lanyardSets(u)[directory.PasswordSourceAD]; got != 2 {
		t.Errorf("lanyard applied %d changes from AD, want 2", got)
	}
}

// loginThroughRP signs in through the real OIDC relying party.
func (e *e2e) loginThroughRP(email, pw string) {
	e.t.Helper()
	c, secret, err := e.srv.Admin.CreateClient(e.t.Context(), admin.Actor{ID: "test"}, admin.NewClient{
		OrgODS: e.ods, Name: "RP " + rand.Text()[:6], RedirectURIs: []string{redirectURI}})
	if err != nil {
		e.t.Fatal(err)
	}
	rp := e.srv.RP(e.t, c.ID, secret, redirectURI)
	ar := rp.AuthURL()
	b := e.srv.Browser(e.t)
	p, loc := b.Follow(b.Get(ar.URL), e.srv.URL)
	if loc == nil {
		p, loc = b.Follow(b.SignIn(p, email, pw), e.srv.URL)
	}
	if loc == nil {
		e.t.Fatalf("sign-in as %s did not return to the RP: %d %s", email, p.Status, p.URL)
	}
	tok, err := rp.Exchange(ar, rp.Callback(ar, loc))
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	rp.VerifyIDToken(ar, tok)
}

// setInLanyard changes u's password in Lanyard as an administrator would
// (the same outbox path as self-service).
func (e *e2e) setInLanyard(u user, pw string) {
	e.t.Helper()
	du, err := e.srv.Directory.User(e.t.Context(), u.id)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.srv.Passwords.Set(e.t.Context(), du, pw, directory.PasswordSourceAdmin, directory.AuditEvent{Actor: "test"}); err != nil {
		e.t.Fatalf("set password in lanyard: %v", err)
	}
}

// setManyInLanyard makes n changes in Lanyard, spread over users (each
// user's in order, the users' at once), and returns each user's passwords
// in order.
func (e *e2e) setManyInLanyard(users []user, n int) map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	for i := range n {
		u := users[i%len(users)]
		out[u.id] = append(out[u.id], testkit.Password())
	}
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			du, err := e.srv.Directory.User(e.t.Context(), u.id)
			for _, pw := range out[u.id] {
				if err == nil {
					err = e.srv.Passwords.Set(e.t.Context(), du, pw, directory.PasswordSourceAdmin, directory.AuditEvent{Actor: "test"})
				}
			}
			if err != nil {
				e.t.Errorf("set password in lanyard: %v", err)
			}
		})
	}
	wg.Wait()
	if e.t.Failed() {
		e.t.FailNow()
	}
	return out
}

func hashes(pws []string) []string {
	out := make([]string, len(pws))
	for i, pw := range pws {
		out[i] = sha(pw)
	}
	return out
}

// lanyardOutbox is the number of changes waiting for the agent.
func (e *e2e) lanyardOutbox() int {
	e.t.Helper()
	evs, err := e.srv.Directory.SealedPasswordEvents(e.t.Context(), e.orgID, 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(evs)
}

// settled waits until both sides' queues are empty.
func (e *e2e) settled(a *adsync.Agent, d time.Duration) {
	e.t.Helper()
	start := time.Now()
	var s adsync.AgentStats
	var n int
	eventually(e.t, d, "the queues do not drain", func() bool {
		s, n = a.Stats(), e.lanyardOutbox()
		if time.Since(start) > d-100*time.Millisecond {
			e.t.Logf("agent %+v; lanyard outbox %d", s, n)
		}
		return s.Spool == 0 && s.Outbox == 0 && n == 0
	})
}

func TestWeakPasswordRefusedInAD(t *testing.T) {
	e := newE2E(t)
	u := e.newUser("amber kettle meadow 11")
	a := e.startAgent()
	for _, weak := range []string{"Password123!", "P@ssw0rd2024", "Nhs-Trust-2025"} {
		if err := e.dc.ResetPassword(t, u.ad, weak); err == nil || !strings.Contains(err.Error(), "complexity") {
			t.Errorf("AD reset to %q: %v; want a refusal by the password check", weak, err)
		}
		if err := e.dc.Bind(u.ad, weak); err == nil {
			t.Errorf("AD took the weak password %q", weak)
		}
	}
	if err := e.dc.ChangePassword(u.ad, "amber kettle meadow 11", "password1"); err == nil {
		t.Error("AD took the common password password1 as a user change")
	}
	if s := a.Stats(); s.Spool != 0 || s.Outbox != 0 || s.Confirmed != 0 {
		t.Errorf("a refused password was spooled: %+v", s)
	}
	if n := len(e.hookRuns(u)); n != 4 {
		t.Errorf("the DC's hook ran %d times, want 4", n)
	}
}

func TestCandidateADRejectsNeverReachesLanyard(t *testing.T) {
	e := newE2E(t)
	e.dc.SetPasswordHistory(t, 5)
	// AD's first password is not one Lanyard ever had, so only AD's
	// history can refuse it.
	u := e.newUser("amber kettle meadow 11")
	adFirst := "harbour lantern copper 55"
	if err := e.dc.ResetPassword(t, u.ad, adFirst); err != nil {
		t.Fatal(err)
	}
	a := e.startAgent()
	e.settled(a, 5*time.Second)

	// A wrong old password: AD refuses before or after the hook.
	if err := e.dc.ChangePassword(u.ad, "not the password 99", "meadow violet tractor 66"); err == nil {
		t.Fatal("AD took a change with a wrong old password")
	}
	second := "silver fox glacier 77"
	if err := e.dc.ChangePassword(u.ad, adFirst, second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the change did not reach lanyard", func() bool { return a.Stats().Forwarded == 1 })
	// Back to adFirst: Lanyard's policy check passes it (Lanyard never had
	// it), the hook spools it, then AD's history refuses it.
	if err := e.dc.ChangePassword(u.ad, second, adFirst); err == nil || !strings.Contains(err.Error(), "history") {
		t.Fatalf("AD history did not refuse the change: %v", err)
	}
	eventually(t, 5*time.Second, "the refused candidate was not spooled", func() bool { return a.Stats().Spool == 1 })
	// A later good change supersedes the refused candidate.
	third := "orchard pebble violin 88"
	if err := e.dc.ChangePassword(u.ad, second, third); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the third change did not reach lanyard", func() bool { return a.Stats().Forwarded == 2 })
	e.settled(a, 5*time.Second)
	s := a.Stats()
	if s.Superseded != 1 || s.Confirmed != 2 || s.FwdOther != 0 {
		t.Errorf("stats: %+v; want 2 confirmed, 1 superseded", s)
	}
	if e.canLogin(u.email, adFirst) || e.canLogin(u.email, "meadow violet tractor 66") {
		t.Error("a password AD refused signs in to lanyard")
	}
	if !e.canLogin(u.email, third) {
		t.Error("the last AD password does not sign in to lanyard")
	}
	if got := e.lanyardSets(u)[directory.PasswordSourceAD]; got != 2 {
		t.Errorf("lanyard applied %d changes from AD, want 2", got)
	}
}

func TestADOutage(t *testing.T) {
	e := newE2E(t)
	users := []user{e.newUser("amber kettle meadow 11"), e.newUser("amber kettle meadow 11"), e.newUser("amber kettle meadow 11"), e.newUser("amber kettle meadow 11")}
	a := e.startAgent()
	e.settled(a, 5*time.Second)
	base := a.Stats()

	e.dc.Stop(t)
	pws := e.setManyInLanyard(users, 100)
	if s := a.Stats(); s.Applied != base.Applied {
		t.Fatalf("changes applied while AD was down: %+v", s)
	}
	e.dc.Start(t)
	took := eventually(t, 60*time.Second, "the 100 changes were not applied", func() bool { return a.Stats().Applied == base.Applied+100 })
	t.Logf("100 changes applied %v after AD returned", took)
	e.settled(a, 5*time.Second)
	for _, u := range users {
		// In order, each once: the DC's hook saw exactly Lanyard's sequence.
		want := hashes(pws[u.id])
		if got := e.hookRuns(u); !slices.Equal(got, want) {
			t.Errorf("%s: AD saw %d passwords, want %d in Lanyard's order\n got %q\nwant %q", u.ad.SAM, len(got), len(want), got, want)
		}
		if err := e.dc.Bind(u.ad, pws[u.id][len(pws[u.id])-1]); err != nil {
			t.Errorf("%s: the last password does not bind: %v", u.ad.SAM, err)
		}
		if n := e.lanyardSets(u)[directory.PasswordSourceAD]; n != 0 {
			t.Errorf("%s: lanyard took %d changes back from AD (ping-pong)", u.ad.SAM, n)
		}
	}
	if s := a.Stats(); s.ADWrites != base.ADWrites+100 || s.Forwarded != 0 || s.Confirmed != 0 {
		t.Errorf("stats: %+v; want exactly 100 writes to AD and nothing sent back", s)
	}
}

func TestLanyardOutage(t *testing.T) {
	e := newE2E(t)
	users := []user{e.newUser("amber kettle meadow 11"), e.newUser("amber kettle meadow 11"), e.newUser("amber kettle meadow 11")}
	a := e.startAgent()
	e.settled(a, 5*time.Second)
	eventually(t, 5*time.Second, "no offline policy cached", func() bool {
		_, err := adsync.ReadCachedPolicy(e.cfg.StateDir)
		return err == nil
	})

	e.proxy.Cut()
	last := map[string]string{}
	n := 0
	for _, u := range users {
		old := "amber kettle meadow 11"
		for i := range 2 {
			pw := testkit.Password()
			var err error
			if i == 0 {
				err = e.dc.ResetPassword(t, u.ad, pw)
			} else {
				err = e.dc.ChangePassword(u.ad, old, pw)
			}
			if err != nil {
				t.Fatalf("AD change while lanyard is down: %v", err)
			}
			n++
			eventually(t, 5*time.Second, "AD's change was not confirmed", func() bool { return a.Stats().Confirmed == int64(n) })
			old = pw
		}
		last[u.id] = old
		// The cached offline policy still refuses a common password.
		if err := e.dc.ResetPassword(t, u.ad, "Password123!"); err == nil {
			t.Error("AD took a common password while lanyard was down")
		}
	}
	if s := a.Stats(); s.Outbox != 6 || s.Forwarded != 0 {
		t.Fatalf("while lanyard is down: %+v; want 6 changes waiting", s)
	}
	e.proxy.Restore()
	took := eventually(t, 30*time.Second, "the AD changes did not arrive", func() bool { return a.Stats().Forwarded == 6 })
	t.Logf("6 AD changes arrived %v after lanyard returned", took)
	e.settled(a, 5*time.Second)
	for _, u := range users {
		if !e.canLogin(u.email, last[u.id]) {
			t.Errorf("%s: the last AD password does not sign in to lanyard", u.email)
		}
		if n := e.lanyardSets(u)[directory.PasswordSourceAD]; n != 2 {
			t.Errorf("%s: lanyard applied %d changes from AD, want 2", u.email, n)
		}
		if n := len(e.hookRuns(u)); n != 3 {
			t.Errorf("%s: %d passwords reached AD's hook, want 3 (no write back)", u.email, n)
		}
	}
	if s := a.Stats(); s.ADWrites != 0 {
		t.Errorf("the agent wrote AD %d times; want none (ping-pong)", s.ADWrites)
	}
}

func TestAgentKilledMidBatch(t *testing.T) {
	e := newE2E(t)
	users := []user{e.newUser("amber kettle meadow 11"), e.newUser("amber kettle meadow 11")}
	e.dc.SetHook(t, e.hook)
	e.hooked = true
	pws := e.setManyInLanyard(users, 60)
	total := func() int { return len(e.hookRuns(users[0])) + len(e.hookRuns(users[1])) }

	// The agent as its own process, killed with SIGKILL part way through.
	cmd := exec.Command(testkit.IDPBinary(t), "agent", "--config", e.cfgPath)
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the agent process applied nothing", func() bool { return total() >= 15 })
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	k := total()
	t.Logf("killed after %d of 60 writes", k)
	if k >= 60 {
		t.Fatal("the agent finished before it was killed; the test proves nothing")
	}

	a := e.startAgent()
	eventually(t, 60*time.Second, "the changes were not all applied after the restart", func() bool { return e.lanyardOutbox() == 0 })
	e.settled(a, 5*time.Second)
	for _, u := range users {
		want := hashes(pws[u.id])
		if got := e.hookRuns(u); !slices.Equal(got, want) {
			t.Errorf("%s: AD saw %d passwords, want each of %d once, in order\n got %q\nwant %q", u.ad.SAM, len(got), len(want), got, want)
		}
		if err := e.dc.Bind(u.ad, pws[u.id][len(pws[u.id])-1]); err != nil {
			t.Errorf("%s: the last password does not bind: %v", u.ad.SAM, err)
		}
		if n := e.lanyardSets(u)[directory.PasswordSourceAD]; n != 0 {
			t.Errorf("%s: lanyard took %d changes back from AD (ping-pong)", u.ad.SAM, n)
		}
	}
	if s := a.Stats(); s.Confirmed != 0 || s.Forwarded != 0 {
		t.Errorf("stats after restart: %+v; nothing should go back to lanyard", s)
	}
}

// TestConflict makes changes on both sides within a second, with the agent
// stopped (so both are pending when it starts) and running. The rule: the
// later change wins, by origin time (Lanyard's clock for its changes, AD's
// pwdLastSet for AD's).
func TestConflict(t *testing.T) {
	e := newE2E(t)
	u := e.newUser("amber kettle meadow 11")
	a := e.startAgent()
	e.settled(a, 5*time.Second)
	for round := range 4 {
		adFirst, agentRunning := round%2 == 0, round >= 2
		name := fmt.Sprintf("ad first %v, agent running %v", adFirst, agentRunning)
		if !agentRunning {
			e.stopAgent()
		}
		pa, pl := testkit.Password(), testkit.Password()
		var lanyardAt time.Time
		if adFirst {
			if err := e.dc.ResetPassword(t, u.ad, pa); err != nil {
				t.Fatal(err)
			}
			e.setInLanyard(u, pl)
			lanyardAt = time.Now() // at or after the change's time
		} else {
			lanyardAt = time.Now() // at or before it
			e.setInLanyard(u, pl)
			if err := e.dc.ResetPassword(t, u.ad, pa); err != nil {
				t.Fatal(err)
			}
		}
		adAt := adsync.FileTime(e.dc.PwdLastSet(t, u.ad))
		if d := lanyardAt.Sub(adAt).Abs(); d > time.Second {
			t.Fatalf("%s: the two changes were %v apart, not within a second", name, d)
		}
		if !agentRunning {
			a = e.startAgent()
		}
		e.settled(a, 10*time.Second)
		winner, loser := pa, pl
		if adFirst {
			winner, loser = pl, pa
		}
		if err := e.dc.Bind(u.ad, winner); err != nil {
			t.Errorf("%s: AD does not have the winning password: %v", name, err)
		}
		if err := e.dc.Bind(u.ad, loser); err == nil {
			t.Errorf("%s: AD kept the losing password", name)
		}
		if !e.canLogin(u.email, winner) || e.canLogin(u.email, loser) {
			t.Errorf("%s: lanyard does not have (only) the winning password", name)
		}
	}
}
