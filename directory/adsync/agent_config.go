package adsync

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Policy modes of AgentConfig.Policy.Unreachable: what `idp agent capture`
// does with a password when Lanyard's policy check cannot be reached in
// time.
const (
	// FailOpen checks the password against the offline policy (the cached
	// copy, or the national defaults when there is none or it is older
	// than policy.max_cache_age) and accepts it when that passes.
	FailOpen = "fail-open"
	// FailClosed checks against the cached offline policy while it is no
	// older than policy.max_cache_age, and refuses every password
	// otherwise (AD keeps the old one; the user tries again later).
	FailClosed = "fail-closed"
)

// AgentConfig is agent.yaml, the configuration of `idp agent` and `idp
// agent capture`. Paths are taken relative to the file's folder.
type AgentConfig struct {
	Lanyard struct {
		// URL is Lanyard's base URL, https://host[/prefix].
		URL string `yaml:"url"`
		// CAFile, if set, is a PEM bundle trusted for Lanyard's TLS
		// certificate instead of the system roots.
		CAFile string `yaml:"ca_file"`
	} `yaml:"lanyard"`
	// KeyFile holds the agent's private keys (`idp agent keygen`).
	KeyFile string `yaml:"key_file"`
	AD      struct {
		// URL is the domain controller, ldaps://host[:port].
		URL string `yaml:"url"`
		// CAFile is a PEM bundle trusted for the DC's certificate; the
		// system roots when empty.
		CAFile string `yaml:"ca_file"`
		// BindDN is the account the agent binds as: it needs to read
		// users and reset their passwords.
		BindDN string `yaml:"bind_dn"`
		// BindPasswordFile holds that account's password (one line).
		BindPasswordFile string `yaml:"bind_password_file"`
		// BaseDN is where users are searched, e.g. DC=example,DC=org.
		BaseDN string `yaml:"base_dn"`
		// Timeout bounds each LDAP operation.
		Timeout time.Duration `yaml:"timeout"`
	} `yaml:"ad"`
	// StateDir holds the spool, the outbox, the journal and the cached
	// policy. `idp agent capture` writes to it too.
	StateDir string `yaml:"state_dir"`
	Policy   struct {
		// Unreachable is FailOpen or FailClosed.
		Unreachable string `yaml:"unreachable"`
		// CheckTimeout bounds the policy check while the DC waits; the DC
		// kills the hook after 10 s and, with one process, is blocked
		// meanwhile.
		CheckTimeout time.Duration `yaml:"check_timeout"`
		// MaxCacheAge is how old the cached offline policy may be.
		MaxCacheAge time.Duration `yaml:"max_cache_age"`
	} `yaml:"policy"`
	Poll struct {
		// Changes is the long-poll wait for Lanyard's changes (at most 30 s).
		Changes time.Duration `yaml:"changes"`
		// Candidates is how often captured candidates are checked against AD.
		Candidates time.Duration `yaml:"candidates"`
		// Policy is how often the offline policy is refreshed.
		Policy time.Duration `yaml:"policy"`
		// Accounts is how often AD's accounts are reported for linking.
		Accounts time.Duration `yaml:"accounts"`
	} `yaml:"poll"`
	// CandidateTTL is how long a captured password waits for AD to commit
	// it before it is dropped as refused.
	CandidateTTL time.Duration `yaml:"candidate_ttl"`
	Backoff      struct {
		// Min and Max bound the exponential backoff (with jitter) while
		// Lanyard or AD is unreachable.
		Min time.Duration `yaml:"min"`
		Max time.Duration `yaml:"max"`
	} `yaml:"backoff"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
}

// MaxAgentConfigSize bounds agent.yaml.
const MaxAgentConfigSize = 64 << 10

// ErrAgentConfig is an agent.yaml that cannot be used; the error lists
// every problem.
var ErrAgentConfig = errors.New("agent configuration")

// DefaultAgentConfig returns the defaults that ParseAgentConfig starts from.
func DefaultAgentConfig() AgentConfig {
	var c AgentConfig
	c.AD.Timeout = 10 * time.Second
	c.Policy.Unreachable = FailOpen
	c.Policy.CheckTimeout = 2 * time.Second
	c.Policy.MaxCacheAge = 7 * 24 * time.Hour
	c.Poll.Changes = 25 * time.Second
	c.Poll.Candidates = 250 * time.Millisecond
	c.Poll.Policy = 10 * time.Minute
	c.Poll.Accounts = time.Hour
	c.CandidateTTL = 10 * time.Minute
	c.Backoff.Min = 500 * time.Millisecond
	c.Backoff.Max = time.Minute
	c.LogLevel = "info"
	return c
}

// LoadAgentConfig reads, parses and validates the agent.yaml at path.
func LoadAgentConfig(path string) (AgentConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return AgentConfig{}, fmt.Errorf("%w: %v", ErrAgentConfig, err)
	}
	c, err := ParseAgentConfig(data, filepath.Dir(path))
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseAgentConfig decodes agent.yaml over the defaults, makes relative
// paths relative to dir, and validates the result. Unknown keys are
// errors. Every problem is reported, joined, each matching ErrAgentConfig.
func ParseAgentConfig(data []byte, dir string) (AgentConfig, error) {
	c := DefaultAgentConfig()
	if len(data) > MaxAgentConfigSize {
		return c, fmt.Errorf("%w: file is larger than %d bytes", ErrAgentConfig, MaxAgentConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("%w: %v", ErrAgentConfig, err)
	}
	for _, p := range []*string{&c.Lanyard.CAFile, &c.KeyFile, &c.AD.CAFile, &c.AD.BindPasswordFile, &c.StateDir} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return c, c.Validate()
}

// Validate reports every problem of c, joined, each as "key: rule, got
// value" and matching ErrAgentConfig. It does not touch the files named.
func (c AgentConfig) Validate() error {
	var errs []error
	bad := func(key, rule string, got any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s, got %q", ErrAgentConfig, key, rule, fmt.Sprint(got)))
	}
	if u, err := url.Parse(c.Lanyard.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		bad("lanyard.url", "must be https://host[/prefix]", c.Lanyard.URL)
	}
	if c.KeyFile == "" {
		bad("key_file", "must name the agent's key file (idp agent keygen)", c.KeyFile)
	}
	if u, err := url.Parse(c.AD.URL); err != nil || u.Scheme != "ldaps" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		bad("ad.url", "must be ldaps://host[:port] (passwords are only set over TLS)", c.AD.URL)
	}
	if c.AD.BindDN == "" {
		bad("ad.bind_dn", "must be set", c.AD.BindDN)
	}
	if c.AD.BindPasswordFile == "" {
		bad("ad.bind_password_file", "must name the file holding the bind password", c.AD.BindPasswordFile)
	}
	if !strings.Contains(strings.ToUpper(c.AD.BaseDN), "DC=") {
		bad("ad.base_dn", "must be a DN such as DC=example,DC=org", c.AD.BaseDN)
	}
	if c.StateDir == "" {
		bad("state_dir", "must be set", c.StateDir)
	}
	if c.Policy.Unreachable != FailOpen && c.Policy.Unreachable != FailClosed {
		bad("policy.unreachable", "must be "+FailOpen+" or "+FailClosed, c.Policy.Unreachable)
	}
	between := func(key string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			bad(key, fmt.Sprintf("must be between %v and %v", lo, hi), d)
		}
	}
	between("ad.timeout", c.AD.Timeout, time.Second, 5*time.Minute)
	between("policy.check_timeout", c.Policy.CheckTimeout, 100*time.Millisecond, 8*time.Second)
	between("policy.max_cache_age", c.Policy.MaxCacheAge, time.Minute, 365*24*time.Hour)
	between("poll.changes", c.Poll.Changes, time.Second, MaxWait)
	between("poll.candidates", c.Poll.Candidates, 10*time.Millisecond, time.Minute)
	between("poll.policy", c.Poll.Policy, time.Second, 24*time.Hour)
	between("poll.accounts", c.Poll.Accounts, time.Second, 7*24*time.Hour)
	between("candidate_ttl", c.CandidateTTL, time.Minute, 24*time.Hour)
	between("backoff.min", c.Backoff.Min, time.Millisecond, time.Minute)
	between("backoff.max", c.Backoff.Max, c.Backoff.Min, time.Hour)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "must be debug, info, warn or error", c.LogLevel)
	}
	return errors.Join(errs...)
}
