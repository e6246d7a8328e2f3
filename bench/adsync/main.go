// Command adsync measures the AD password sync against a real Samba AD DC
// and a real Lanyard on this machine: the propagation latency each way
// (p50/p99 over -changes changes, one at a time), and the drain rate of a
// backlog of -backlog changes queued while the agent was away, with the
// agent's memory (run as its own `idp agent` process).
//
//	go run ./bench/adsync [-changes 200] [-backlog 10000] [-users 50]
//
// It needs what the tests need: root and the packages scripts/test
// installs. It uses testkit (through testing.Benchmark, which gives it a
// testing.B) for the DC, the server and the idp binary.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/pem"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
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

var (
	changes = flag.Int("changes", 200, "changes each way for the latency figures")
	backlog = flag.Int("backlog", 10000, "changes in the backlog to drain")
	nusers  = flag.Int("users", 50, "users the backlog is spread over")
)

func main() {
	flag.Parse()
	var err error
	var once sync.Once
	testing.Benchmark(func(b *testing.B) {
		once.Do(func() { err = run(b) })
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "adsync bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	b       *testing.B
	dc      *testkit.Samba
	srv     *testkit.Server
	ods     string
	orgID   string
	keys    adsync.PrivateKeys
	cfgPath string
	cfg     adsync.AgentConfig
}

func run(b *testing.B) error {
	printMachine()
	t0 := time.Now()
	dc := testkit.SambaDC(b)
	idp := testkit.IDPBinary(b)
	srv := testkit.NewServer(b, testkit.Options{})
	fmt.Printf("setup (DC, idp build, server): %v\n", time.Since(t0).Round(time.Millisecond))
	ctx := context.Background()
	x := &bench{b: b, dc: dc, srv: srv, ods: "B" + strings.ToUpper(rand.Text()[:4])}
	org, err := srv.Admin.CreateOrganisation(ctx, admin.Actor{ID: "bench"}, x.ods, "Bench Trust "+x.ods)
	if err != nil {
		return err
	}
	x.orgID = org.ID
	if x.keys, err = adsync.GenerateKeys(); err != nil {
		return err
	}
	pub := x.keys.Public()
	if err := srv.Directory.CreateSyncAgent(ctx, directory.SyncAgent{ID: pub.KeyID(), OrgID: org.ID, SignKey: pub.Sign, SealKey: pub.Seal.Bytes(), CreatedAt: time.Now()}); err != nil {
		return err
	}
	dir := b.TempDir()
	priv, _ := x.keys.MarshalPEM()
	for name, data := range map[string][]byte{
		"agent.key":      priv,
		"bind.pw":        []byte(testkit.SambaAdminPassword),
		"lanyard-ca.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.HTTP.Certificate().Raw}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	// The defaults but for the addresses: the figures are for agent.yaml as shipped.
	yaml := fmt.Sprintf("lanyard:\n  url: %s\n  ca_file: lanyard-ca.pem\nkey_file: agent.key\nad:\n  url: %s\n  ca_file: %s\n  bind_dn: %s\n  bind_password_file: bind.pw\n  base_dn: %s\nstate_dir: state\nlog_level: warn\n",
		srv.Base, dc.URL, dc.CAFile, testkit.SambaAdmin, testkit.SambaBaseDN)
	x.cfgPath = filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(x.cfgPath, []byte(yaml), 0o600); err != nil {
		return err
	}
	if x.cfg, err = adsync.LoadAgentConfig(x.cfgPath); err != nil {
		return err
	}

	t0 = time.Now()
	users, err := x.users(*nusers)
	if err != nil {
		return err
	}
	fmt.Printf("%d users in both directories: %v\n", len(users), time.Since(t0).Round(time.Millisecond))
	dc.SetHook(b, fmt.Sprintf("exec %s agent capture --config %s 2>/dev/null", idp, x.cfgPath))

	if err := x.latency(users); err != nil {
		return err
	}
	return x.drain(idp, users)
}

type user struct {
	id, email string
	ad        testkit.SambaUser
	pw        string
}

func (x *bench) users(n int) ([]*user, error) {
	var out []*user
	for range n {
		sam := "b" + strings.ToLower(rand.Text()[:10])
		email := sam + "@lanyard.test"
		pw := testkit.Password()
		cu, err := x.srv.Admin.CreateUser(context.Background(), admin.Actor{ID: "bench"}, admin.NewUser{OrgODS: x.ods, Email: email, Name: "Bench Person", Password: pw})
		if err != nil {
			return nil, err
		}
		out = append(out, &user{id: cu.User.ID, email: email, ad: x.dc.CreateUser(x.b, sam, email, pw), pw: pw})
	}
	return out, nil
}

// latency measures each way, one change at a time, from the moment the
// change is committed on one side to the moment the agent has it committed
// on the other (its counters move after the other side answered).
func (x *bench) latency(users []*user) error {
	log := slog.New(slog.DiscardHandler)
	a, l, err := adsync.OpenAgent(x.cfg, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() { cancel(); <-done; l.Close() }()
	// Let it settle: the users' initial passwords are stale in Lanyard's outbox.
	if err := waitFor(2*time.Minute, func() bool { return x.outbox() == 0 }); err != nil {
		return fmt.Errorf("initial drain: %w", err)
	}

	var toAD, toLanyard []time.Duration
	for i := range *changes {
		u := users[i%len(users)]
		pw := testkit.Password()
		du, err := x.srv.Directory.User(ctx, u.id)
		if err != nil {
			return err
		}
		before := a.Stats().Applied
		if err := x.srv.Passwords.Set(ctx, du, pw, directory.PasswordSourceAdmin, directory.AuditEvent{Actor: "bench"}); err != nil {
			return err
		}
		t0 := time.Now()
		if err := waitFor(30*time.Second, func() bool { return a.Stats().Applied > before }); err != nil {
			return fmt.Errorf("lanyard->AD change %d: %w", i, err)
		}
		toAD = append(toAD, time.Since(t0))
		u.pw = pw
	}
	report("Lanyard -> AD (committed in Lanyard -> written in AD)", toAD)

	for i := range *changes {
		u := users[i%len(users)]
		pw := testkit.Password()
		before := a.Stats().Forwarded
		if err := x.dc.ResetPassword(x.b, u.ad, pw); err != nil {
			return fmt.Errorf("AD reset: %w", err)
		}
		t0 := time.Now()
		if err := waitFor(30*time.Second, func() bool { return a.Stats().Forwarded > before }); err != nil {
			return fmt.Errorf("AD->lanyard change %d: %w", i, err)
		}
		toLanyard = append(toLanyard, time.Since(t0))
		u.pw = pw
	}
	report("AD -> Lanyard (committed in AD -> applied in Lanyard)", toLanyard)
	s := a.Stats()
	fmt.Printf("agent counters: %d AD writes, %d applied, %d forwarded, %d confirmed, %d superseded, %d expired\n",
		s.ADWrites, s.Applied, s.Forwarded, s.Confirmed, s.Superseded, s.Expired)
	return nil
}

// drain queues a backlog while the agent is away, then starts `idp agent`
// as its own process and times the drain, sampling its memory.
func (x *bench) drain(idp string, users []*user) error {
	ctx := context.Background()
	n := *backlog
	t0 := time.Now()
	// Straight into the outbox, sealed as Lanyard seals (a password change
	// costs an argon2id hash; the drain is what is measured here).
	last := map[string]string{}
	for i := range n {
		u := users[i%len(users)]
		pw := testkit.Password()
		id := directory.NewID()
		sealed, err := adsync.SealPassword(x.keys.Seal.PublicKey(), id, u.id, pw)
		if err != nil {
			return err
		}
		if _, err := x.srv.Directory.AppendPasswordEvent(ctx, directory.PasswordEvent{
			ID: id, UserID: u.id, OrgID: x.orgID, Source: directory.PasswordSourceAdmin, Time: time.Now(), Sealed: sealed,
		}); err != nil {
			return err
		}
		last[u.id] = pw
	}
	fmt.Printf("backlog of %d changes over %d users queued in %v\n", n, len(users), time.Since(t0).Round(time.Millisecond))

	cmd := exec.Command(idp, "agent", "--config", x.cfgPath)
	cmd.Stderr = os.Stderr
	t0 = time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	var peakRSS, sumRSS, samples int64
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(2 * time.Hour)
	for x.outbox() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("backlog not drained after 2 h")
		}
		<-tick.C
		if rss := procKiB(cmd.Process.Pid, "VmRSS"); rss > 0 {
			peakRSS, sumRSS, samples = max(peakRSS, rss), sumRSS+rss, samples+1
		}
	}
	took := time.Since(t0)
	hwm := procKiB(cmd.Process.Pid, "VmHWM")
	fmt.Printf("drain: %d changes in %v = %.1f changes/s (agent process started to Lanyard's outbox empty)\n",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	if samples > 0 {
		fmt.Printf("agent memory while draining: RSS mean %.1f MiB, peak %.1f MiB (VmHWM %.1f MiB)\n",
			float64(sumRSS/samples)/1024, float64(peakRSS)/1024, float64(hwm)/1024)
	}
	bad := 0
	for _, u := range users {
		if err := x.dc.Bind(u.ad, last[u.id]); err != nil {
			bad++
		}
	}
	fmt.Printf("check: %d of %d users bind in AD with their last backlog password\n", len(users)-bad, len(users))
	return nil
}

func (x *bench) outbox() int {
	evs, err := x.srv.Directory.SealedPasswordEvents(context.Background(), x.orgID, 0, 1)
	if err != nil {
		return -1
	}
	return len(evs)
}

func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %v", d)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

func report(what string, ds []time.Duration) {
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	fmt.Printf("%s, %d changes: p50 %v, p99 %v, max %v\n", what, len(ds),
		q(0.50).Round(time.Millisecond), q(0.99).Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
}

// procKiB reads a "Vm…: N kB" line of /proc/PID/status.
func procKiB(pid int, key string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func printMachine() {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	var mem int64
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		fmt.Sscanf(string(b), "MemTotal: %d kB", &mem)
	}
	var uts syscall.Utsname
	syscall.Uname(&uts)
	rel := make([]byte, 0, 65)
	for _, c := range uts.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	sv, _ := exec.Command("samba", "--version").Output()
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("machine: %s, %d CPUs, %.1f GiB, Linux %s, %s, %s, load %s\n", model, runtime.NumCPU(),
		float64(mem)/(1<<20), rel, runtime.Version(), strings.TrimSpace(string(sv)), strings.Join(strings.Fields(string(load))[:3], " "))
}
