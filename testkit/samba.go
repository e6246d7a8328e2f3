package testkit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"
)

// A Samba AD domain controller for the AD password sync tests.
//
// SambaDC gives every test of a test binary the same DC, started on first
// use from scripts/samba-dc: domain LANYARD.TEST on 127.0.0.1 (LDAPS on
// 636, Kerberos on 88/464), one process, complexity on with no minimum
// age, history or maximum age. The DC runs with its stdin tied to the test
// binary, so it stops when the binary exits, however it exits. One DC can
// run on a machine at a time (fixed ports); test binaries wait for each
// other on a lock file.
//
// Provisioning takes 5-10 s, so a provisioned copy is kept under
// SambaRoot, keyed by the script's hash, and each binary starts from a
// fresh copy of it (about 1 s).
const (
	SambaRealm         = "LANYARD.TEST"
	SambaBaseDN        = "DC=lanyard,DC=test"
	SambaAdminPassword = "Adm1n-Passw0rd!"
	SambaAdmin         = "Administrator@lanyard.test"
	// SambaRoot holds the lock, the provisioned template and the DC.
	SambaRoot = "/tmp/lanyard-samba"
)

// Samba is the running test DC. Its methods act as the domain
// Administrator unless they say otherwise; they are safe for concurrent
// use except Stop and Start.
type Samba struct {
	// Dir is the DC's folder (smb.conf in Dir/etc, log in Dir/log).
	Dir string
	// URL is ldaps://127.0.0.1; CAFile is the CA its certificate chains to.
	URL, CAFile string
	// Roots trusts CAFile.
	Roots *x509.CertPool

	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{}
}

var samba struct {
	once sync.Once
	dc   *Samba
	err  error
	lock *os.File
}

// SambaDC returns the test binary's DC, starting it on first use. When the
// DC cannot run (samba not installed, not root), the test is skipped, but
// under CI=true it fails.
func SambaDC(t testing.TB) *Samba {
	t.Helper()
	samba.once.Do(func() { samba.dc, samba.err = startSamba() })
	if samba.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Samba AD DC: %v (scripts/test installs samba; tests need root)", samba.err)
		}
		t.Skipf("Samba AD DC unavailable: %v (run scripts/test as root)", samba.err)
	}
	s := samba.dc
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if !running {
		// A test that stopped the DC failed before starting it again.
		if err := s.start(); err != nil {
			t.Fatalf("restart Samba AD DC: %v", err)
		}
	}
	return s
}

// repoRoot is the repository's root folder, found from this file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

func startSamba() (*Samba, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the DC needs root")
	}
	if _, err := exec.LookPath("samba"); err != nil {
		return nil, errors.New("samba is not installed")
	}
	script := filepath.Join(repoRoot(), "scripts", "samba-dc")
	body, err := os.ReadFile(script)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(SambaRoot, 0o700); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(SambaRoot, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	// Held until the binary exits: one DC per machine.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	samba.lock = lock
	sum := sha256.Sum256(body)
	dir := filepath.Join(SambaRoot, "dc")
	tmpl := filepath.Join(SambaRoot, "template-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(tmpl, "etc", "smb.conf")); err != nil {
		// Provision at the path the DC runs from (smb.conf holds absolute
		// paths), then keep a copy.
		if out, err := exec.Command(script, "provision", dir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("provision: %v\n%s", err, out)
		}
		os.RemoveAll(tmpl)
		if out, err := exec.Command("cp", "-a", dir, tmpl+".tmp").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("keep template: %v\n%s", err, out)
		}
		if err := os.Rename(tmpl+".tmp", tmpl); err != nil {
			return nil, err
		}
	} else {
		os.RemoveAll(dir)
		if out, err := exec.Command("cp", "-a", tmpl, dir).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("copy template: %v\n%s", err, out)
		}
	}
	ca := filepath.Join(dir, "tls", "ca.pem")
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	s := &Samba{Dir: dir, URL: "ldaps://127.0.0.1", CAFile: ca, Roots: roots}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// start runs the DC and waits until LDAPS answers.
func (s *Samba) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	// Nothing may still hold the ports (a DC of a killed run exits when its
	// stdin closes, which takes a moment).
	deadline := time.Now().Add(15 * time.Second)
	for s.ldapsAnswers() {
		if time.Now().After(deadline) {
			return errors.New("another DC is still answering on 127.0.0.1:636")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd := exec.Command(filepath.Join(repoRoot(), "scripts", "samba-dc"), "run", s.Dir)
	logf, err := os.OpenFile(filepath.Join(s.Dir, "log", "samba.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start samba: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.stdin, s.exited = cmd, in, exited
	deadline = time.Now().Add(60 * time.Second)
	for !s.ldapsAnswers() {
		select {
		case <-exited:
			s.cmd = nil
			tail, _ := os.ReadFile(filepath.Join(s.Dir, "log", "samba.out"))
			return fmt.Errorf("samba exited at start:\n%s", lastLines(tail, 20))
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("samba did not answer LDAPS within 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func lastLines(b []byte, n int) string {
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

// ldapsAnswers reports whether an LDAPS bind as Administrator succeeds.
func (s *Samba) ldapsAnswers() bool {
	c, err := s.dial()
	if err != nil {
		return false
	}
	defer c.Close()
	return c.Bind(SambaAdmin, SambaAdminPassword) == nil
}

func (s *Samba) dial() (*ldap.Conn, error) {
	c, err := ldap.DialURL(s.URL, ldap.DialWithTLSConfig(&tls.Config{RootCAs: s.Roots, ServerName: "127.0.0.1"}))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(15 * time.Second)
	return c, nil
}

// Stop stops the DC (as for an outage) and waits until it is gone.
func (s *Samba) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.stdin.Close() // samba -i exits on EOF
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Start starts the DC again after Stop and waits until LDAPS answers.
func (s *Samba) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("start Samba AD DC: %v", err)
	}
}

// SetHook makes the DC's check password script run the shell command cmd
// (stdin: the new password; SAMBA_CPS_* name the account; a non-zero exit
// refuses the password) until the test ends.
func (s *Samba) SetHook(t testing.TB, cmd string) {
	t.Helper()
	p := filepath.Join(s.Dir, "cps.cmd")
	if err := os.WriteFile(p, []byte(cmd+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
}

// Admin returns an LDAPS connection bound as Administrator, closed when
// the test ends.
func (s *Samba) Admin(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := s.dial()
	if err != nil {
		t.Fatalf("dial %s: %v", s.URL, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(SambaAdmin, SambaAdminPassword); err != nil {
		t.Fatalf("bind as Administrator: %v", err)
	}
	return c
}

// SambaUser is an AD account made by CreateUser.
type SambaUser struct {
	SAM, UPN, Mail, DN string
}

// CreateUser adds an enabled account sam with userPrincipalName
// sam@lanyard.test, the given mail (when not empty) and password. The
// DC's hook runs for its password like for any other.
func (s *Samba) CreateUser(t testing.TB, sam, mail, pw string) SambaUser {
	t.Helper()
	u := SambaUser{SAM: sam, UPN: sam + "@lanyard.test", Mail: mail, DN: "CN=" + ldap.EscapeDN(sam) + ",CN=Users," + SambaBaseDN}
	add := ldap.NewAddRequest(u.DN, nil)
	add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
	add.Attribute("sAMAccountName", []string{sam})
	add.Attribute("userPrincipalName", []string{u.UPN})
	add.Attribute("displayName", []string{sam})
	if mail != "" {
		add.Attribute("mail", []string{mail})
	}
	add.Attribute("unicodePwd", []string{unicodePwd(pw)})
	add.Attribute("userAccountControl", []string{"512"})
	if err := s.Admin(t).Add(add); err != nil {
		t.Fatalf("create AD user %s: %v", sam, err)
	}
	return u
}

func unicodePwd(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return string(b)
}

// ResetPassword sets u's password as the AD administrator (an LDAP
// replace of unicodePwd) and returns AD's answer.
func (s *Samba) ResetPassword(t testing.TB, u SambaUser, pw string) error {
	t.Helper()
	m := ldap.NewModifyRequest(u.DN, nil)
	m.Replace("unicodePwd", []string{unicodePwd(pw)})
	return s.Admin(t).Modify(m)
}

// ChangePassword changes u's password as u, over LDAPS (a delete of the
// old unicodePwd and an add of the new, which AD checks against the old).
func (s *Samba) ChangePassword(u SambaUser, old, pw string) error {
	c, err := s.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Bind(u.UPN, old); err != nil {
		return fmt.Errorf("bind as %s: %w", u.UPN, err)
	}
	m := ldap.NewModifyRequest(u.DN, nil)
	m.Delete("unicodePwd", []string{unicodePwd(old)})
	m.Add("unicodePwd", []string{unicodePwd(pw)})
	return c.Modify(m)
}

// Kpasswd changes u's password as u with MIT kpasswd over Kerberos, the
// protocol Windows' Ctrl-Alt-Del change uses.
func (s *Samba) Kpasswd(u SambaUser, old, pw string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kpasswd", u.SAM+"@"+SambaRealm)
	cmd.Env = append(os.Environ(), "KRB5_CONFIG="+filepath.Join(s.Dir, "krb5.conf"), "KRB5CCNAME=MEMORY:")
	cmd.Stdin = strings.NewReader(old + "\n" + pw + "\n" + pw + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("Password changed")) {
		return fmt.Errorf("kpasswd %s: %v: %s", u.SAM, err, out)
	}
	return nil
}

// Bind tries an LDAPS simple bind as u with pw.
func (s *Samba) Bind(u SambaUser, pw string) error {
	c, err := s.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Bind(u.UPN, pw)
}

// PwdLastSet returns u's raw pwdLastSet.
func (s *Samba) PwdLastSet(t testing.TB, u SambaUser) int64 {
	t.Helper()
	res, err := s.Admin(t).Search(ldap.NewSearchRequest(u.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=user)", []string{"pwdLastSet"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read pwdLastSet of %s: %v", u.SAM, err)
	}
	n, _ := strconv.ParseInt(res.Entries[0].GetAttributeValue("pwdLastSet"), 10, 64)
	return n
}

// SetPasswordHistory sets the domain's password history length until the
// test ends (then back to 0).
func (s *Samba) SetPasswordHistory(t testing.TB, n int) {
	t.Helper()
	set := func(c *ldap.Conn, n int) error {
		m := ldap.NewModifyRequest(SambaBaseDN, nil)
		m.Replace("pwdHistoryLength", []string{strconv.Itoa(n)})
		return c.Modify(m)
	}
	if err := set(s.Admin(t), n); err != nil {
		t.Fatalf("set password history: %v", err)
	}
	t.Cleanup(func() {
		if c, err := s.dial(); err == nil {
			defer c.Close()
			if c.Bind(SambaAdmin, SambaAdminPassword) == nil {
				set(c, 0)
			}
		}
	})
}

var idpBinary struct {
	once sync.Once
	path string
	err  error
}

// IDPBinary builds cmd/idp once per test binary and returns its path
// (for the DC's hook, which runs `idp agent capture`).
func IDPBinary(t testing.TB) string {
	t.Helper()
	idpBinary.once.Do(func() {
		// One folder per test process; those of processes gone are removed.
		bin := filepath.Join(SambaRoot, "bin")
		ents, _ := os.ReadDir(bin)
		for _, e := range ents {
			if pid, err := strconv.Atoi(e.Name()); err == nil && syscall.Kill(pid, 0) != nil {
				os.RemoveAll(filepath.Join(bin, e.Name()))
			}
		}
		dir := filepath.Join(bin, strconv.Itoa(os.Getpid()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			idpBinary.err = err
			return
		}
		idpBinary.path = filepath.Join(dir, "idp")
		cmd := exec.Command("go", "build", "-o", idpBinary.path, "./cmd/idp")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			idpBinary.err = fmt.Errorf("go build ./cmd/idp: %v\n%s", err, out)
		}
	})
	if idpBinary.err != nil {
		t.Fatal(idpBinary.err)
	}
	return idpBinary.path
}
