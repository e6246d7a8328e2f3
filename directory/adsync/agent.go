package adsync

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Lanyard is what the agent needs of Lanyard's /adsync/v1/ API; Client
// implements it.
type Lanyard interface {
	Changes(ctx context.Context, after int64, wait time.Duration) (Changes, error)
	Ack(ctx context.Context, acks ...Ack) error
	SendADChange(ctx context.Context, ch ADChange) (ADChangeResult, error)
	Policy(ctx context.Context) (OfflinePolicy, error)
	Accounts(ctx context.Context, a Accounts) (Links, error)
}

// Directory is what the agent needs of AD; LDAP implements it. Errors
// matching ErrADUnavailable are retried; ErrADRefused from SetPassword is
// AD refusing the password.
type Directory interface {
	AccountForChange(ctx context.Context, guid, email string) (ADAccount, bool, error)
	AccountsBySAM(ctx context.Context, sams []string) (map[string]ADAccount, error)
	Account(ctx context.Context, dn string) (ADAccount, error)
	SetPassword(ctx context.Context, dn, pw string) error
	EachAccount(ctx context.Context, fn func([]ADAccount) error) error
}

// Agent is `idp agent`: it applies Lanyard's password changes to AD and
// forwards the changes AD commits to Lanyard, keeping its queues in
// AgentConfig.StateDir so that nothing is lost or applied twice across
// restarts and outages. Run it once per state folder.
type Agent struct {
	cfg     AgentConfig
	keys    PrivateKeys
	lanyard Lanyard
	dir     Directory
	log     *slog.Logger
	now     func() time.Time

	mu      sync.Mutex // guards j
	j       *journal
	pending []Ack // acknowledgements not yet taken by Lanyard

	cands map[string]Candidate // decoded spool files by name (candidate loop only)

	seenMu sync.Mutex
	seen   map[[16]byte]seenMark // by objectGUID: the pwdLastSet last seen

	stats struct {
		adWrites, applied, stale, unmatched, refused atomic.Int64
		forwarded, fwdDuplicate, fwdStale, fwdOther  atomic.Int64
		confirmed, superseded, expired, accounts     atomic.Int64
		lastLanyard, lastAD                          atomic.Int64 // unix nanoseconds
	}
}

// AgentStats are the agent's counters since it started, and the depth of
// its queues.
type AgentStats struct {
	ADWrites  int64 // passwords written into AD (one LDAP modify each)
	Applied   int64 // Lanyard changes acknowledged as applied (after a write, or found applied after a restart)
	Stale     int64 // Lanyard changes not written by the conflict rule
	Unmatched int64 // Lanyard changes without an AD account
	Refused   int64 // Lanyard changes AD refused

	Forwarded    int64 // AD changes Lanyard applied
	FwdDuplicate int64 // AD changes Lanyard had applied before
	FwdStale     int64 // AD changes Lanyard dropped as older
	FwdOther     int64 // AD changes unmatched or refused by Lanyard

	Confirmed  int64 // candidates AD committed
	Superseded int64 // candidates dropped because a later password replaced them
	Expired    int64 // candidates AD never committed (refused after the hook)
	Accounts   int64 // accounts reported in the last linking report

	Spool  int // candidates waiting for AD to commit
	Outbox int // AD changes waiting for Lanyard

	LastLanyard time.Time // last answer from Lanyard
	LastAD      time.Time // last answer from AD
}

// NewAgent returns an agent over the given Lanyard and AD clients. now is
// its clock (time.Now when nil). It opens the journal in cfg.StateDir.
func NewAgent(cfg AgentConfig, keys PrivateKeys, lanyard Lanyard, dir Directory, log *slog.Logger, now func() time.Time) (*Agent, error) {
	if now == nil {
		now = time.Now
	}
	for _, d := range []string{"", spoolDir, outboxDir, ownDir} {
		if err := os.MkdirAll(filepath.Join(cfg.StateDir, d), 0o700); err != nil {
			return nil, fmt.Errorf("agent state: %w", err)
		}
	}
	j, err := openJournal(cfg.StateDir, now())
	if err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, keys: keys, lanyard: lanyard, dir: dir, log: log, now: now, j: j, cands: map[string]Candidate{}, seen: map[[16]byte]seenMark{}}, nil
}

// OpenAgent builds an agent from its configuration: the key file, the bind
// password, the CA files, a Lanyard Client and an LDAP client.
func OpenAgent(cfg AgentConfig, log *slog.Logger) (*Agent, *LDAP, error) {
	keys, err := LoadKeyFile(cfg.KeyFile)
	if err != nil {
		return nil, nil, err
	}
	hc, err := LanyardHTTPClient(cfg, cfg.Poll.Changes+30*time.Second)
	if err != nil {
		return nil, nil, err
	}
	cl, err := NewClient(cfg.Lanyard.URL, keys, hc)
	if err != nil {
		return nil, nil, err
	}
	pw, err := os.ReadFile(cfg.AD.BindPasswordFile)
	if err != nil {
		return nil, nil, fmt.Errorf("ad.bind_password_file: %w", err)
	}
	roots, err := certPool(cfg.AD.CAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("ad.ca_file: %w", err)
	}
	l, err := NewLDAP(LDAPOptions{
		URL: cfg.AD.URL, RootCAs: roots, BindDN: cfg.AD.BindDN, BaseDN: cfg.AD.BaseDN, Timeout: cfg.AD.Timeout,
		Password: strings.TrimRight(string(pw), "\r\n"),
	})
	if err != nil {
		return nil, nil, err
	}
	a, err := NewAgent(cfg, keys, cl, l, log, nil)
	if err != nil {
		return nil, nil, err
	}
	return a, l, nil
}

// LoadKeyFile reads an agent's private keys; the file must not be readable
// by group or others.
func LoadKeyFile(path string) (PrivateKeys, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return PrivateKeys{}, fmt.Errorf("key_file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return PrivateKeys{}, fmt.Errorf("key_file %s: mode %v lets others read it; want 0600", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return PrivateKeys{}, fmt.Errorf("key_file: %w", err)
	}
	k, err := ParsePrivatePEM(data)
	if err != nil {
		return k, fmt.Errorf("key_file %s: %w", path, err)
	}
	return k, nil
}

// WriteKeys generates agent keys into dir: agent.key (the private keys,
// 0600) and agent.pub (for `idp admin agent create --public-key`). It
// refuses to overwrite an existing key file.
func WriteKeys(dir string) (keyPath, pubPath string, id string, err error) {
	k, err := GenerateKeys()
	if err != nil {
		return "", "", "", err
	}
	priv, err := k.MarshalPEM()
	if err != nil {
		return "", "", "", err
	}
	pub, err := k.Public().MarshalPEM()
	if err != nil {
		return "", "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", "", err
	}
	keyPath, pubPath = filepath.Join(dir, "agent.key"), filepath.Join(dir, "agent.pub")
	f, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", "", fmt.Errorf("write key: %w", err)
	}
	_, err = f.Write(priv)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.WriteFile(pubPath, pub, 0o644)
	}
	if err != nil {
		return "", "", "", fmt.Errorf("write key: %w", err)
	}
	return keyPath, pubPath, k.Public().KeyID(), nil
}

// LanyardHTTPClient returns the HTTP client for Lanyard: TLS 1.2 or later,
// trusting lanyard.ca_file when set, with the given overall timeout.
func LanyardHTTPClient(cfg AgentConfig, timeout time.Duration) (*http.Client, error) {
	roots, err := certPool(cfg.Lanyard.CAFile)
	if err != nil {
		return nil, fmt.Errorf("lanyard.ca_file: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// certPool reads a PEM bundle; nil (the system roots) when path is empty.
func certPool(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates", path)
	}
	return p, nil
}

// Run runs the agent until ctx ends: the long poll of Lanyard's changes,
// the watch of captured candidates and the forwarding of AD's changes,
// and the refresh of the offline policy and of account links. It returns
// nil when ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { a.pullLoop(ctx) })
	wg.Go(func() { a.candidateLoop(ctx) })
	wg.Go(func() { a.housekeeping(ctx) })
	wg.Wait()
	a.mu.Lock()
	a.j.close()
	a.mu.Unlock()
	return nil
}

// Stats returns the agent's counters and queue depths.
func (a *Agent) Stats() AgentStats {
	s := &a.stats
	spool, _ := listCandidates(a.cfg.StateDir, spoolDir)
	outbox, _ := listCandidates(a.cfg.StateDir, outboxDir)
	t := func(ns int64) time.Time {
		if ns == 0 {
			return time.Time{}
		}
		return time.Unix(0, ns)
	}
	return AgentStats{
		ADWrites: s.adWrites.Load(), Applied: s.applied.Load(), Stale: s.stale.Load(),
		Unmatched: s.unmatched.Load(), Refused: s.refused.Load(),
		Forwarded: s.forwarded.Load(), FwdDuplicate: s.fwdDuplicate.Load(), FwdStale: s.fwdStale.Load(), FwdOther: s.fwdOther.Load(),
		Confirmed: s.confirmed.Load(), Superseded: s.superseded.Load(), Expired: s.expired.Load(), Accounts: s.accounts.Load(),
		Spool: len(spool), Outbox: len(outbox),
		LastLanyard: t(s.lastLanyard.Load()), LastAD: t(s.lastAD.Load()),
	}
}

func (a *Agent) touchLanyard() { a.stats.lastLanyard.Store(a.now().UnixNano()) }
func (a *Agent) touchAD()      { a.stats.lastAD.Store(a.now().UnixNano()) }

// backoff is exponential backoff with full jitter between min and max.
type backoff struct {
	min, max time.Duration
	n        int
}

func (a *Agent) newBackoff() *backoff {
	return &backoff{min: a.cfg.Backoff.Min, max: a.cfg.Backoff.Max}
}

// next returns the next wait: a random duration in [d/2, d] where d
// doubles from min on each call up to max.
func (b *backoff) next() time.Duration {
	d := b.min << min(b.n, 30)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.n++
	var r [8]byte
	_, _ = rand.Read(r[:])
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + time.Duration(binary.LittleEndian.Uint64(r[:])%uint64(half+1))
}

func (b *backoff) reset() { b.n = 0 }

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryLater reports whether a Lanyard error should be retried: Lanyard
// unreachable, 5xx, 429, and 401 (an agent an administrator may yet
// register or re-enable).
func retryLater(err error) bool {
	var se *StatusError
	return errors.Is(err, ErrRetryLater) || (errors.As(err, &se) && se.Status == http.StatusUnauthorized)
}
