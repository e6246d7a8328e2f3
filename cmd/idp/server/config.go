package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/lanyard/lanyard/authn"
	"github.com/lanyard/lanyard/authn/password"
)

// Config is Lanyard's one configuration struct. Sources apply in order:
// Defaults, a YAML file (LoadYAML), LANYARD_* environment variables
// (ApplyEnv), then command-line flags (set by cmd/idp). Validate checks the
// result and reports every problem at once.
type Config struct {
	// Addr is the listen address.
	Addr string `yaml:"addr"`
	// Issuer is the public base URL; empty means http://<addr>.
	Issuer string `yaml:"issuer"`
	// Data is the folder for the embedded default (SQLite file, master key,
	// outbox of messages).
	Data string `yaml:"data"`
	// Database is "sqlite:PATH" or a postgres:// URL; empty means
	// sqlite:<data>/lanyard.db.
	Database string `yaml:"database"`
	// Redis is empty for in-process ephemeral state, or a redis:// URL.
	Redis string `yaml:"redis"`
	// MasterKeyFile is the master key file; empty means <data>/master.key,
	// created on first start.
	MasterKeyFile string `yaml:"master_key_file"`
	// TrustedProxies are CIDRs whose X-Forwarded-For is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// GeoIPDB is an optional MaxMind-format database for the risk engine.
	GeoIPDB string `yaml:"geoip_db"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`

	HTTP      HTTPConfig      `yaml:"http"`
	Session   SessionConfig   `yaml:"session"`
	WebAuthn  WebAuthnConfig  `yaml:"webauthn"`
	OIDC      OIDCConfig      `yaml:"oidc"`
	SAML      SAMLConfig      `yaml:"saml"`
	Password  PasswordConfig  `yaml:"password"`
	Ephemeral EphemeralConfig `yaml:"ephemeral"`
	SMTP      SMTPConfig      `yaml:"smtp"`
	Risk      RiskConfig      `yaml:"risk"`
	ADSync    ADSyncConfig    `yaml:"adsync"`
}

// ADSyncConfig configures the Active Directory password sync's server side.
type ADSyncConfig struct {
	// SilentAfter is how long an agent may go without contacting Lanyard
	// before it is reported silent (log warning, metric, agent list).
	SilentAfter time.Duration `yaml:"silent_after"`
}

// HTTPConfig holds the server's limits.
type HTTPConfig struct {
	ReadTimeout     time.Duration `yaml:"read_timeout"`
	WriteTimeout    time.Duration `yaml:"write_timeout"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	MaxBodyBytes    int64         `yaml:"max_body_bytes"`
}

// SessionConfig bounds login sessions and ceremonies.
type SessionConfig struct {
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
	LoginTimeout    time.Duration `yaml:"login_timeout"`
}

// WebAuthnConfig configures security keys and passkeys.
type WebAuthnConfig struct {
	// Attestation is none (default), indirect, direct or enterprise.
	Attestation string `yaml:"attestation"`
}

// OIDCConfig holds token lifetimes and signing-key rotation.
type OIDCConfig struct {
	CodeLifetime         time.Duration `yaml:"code_lifetime"`
	AccessTokenLifetime  time.Duration `yaml:"access_token_lifetime"`
	IDTokenLifetime      time.Duration `yaml:"id_token_lifetime"`
	RefreshTokenLifetime time.Duration `yaml:"refresh_token_lifetime"`
	SigningKeyPeriod     time.Duration `yaml:"signing_key_period"`
	SigningKeyLead       time.Duration `yaml:"signing_key_lead"`
}

// SAMLConfig holds the SAML identity provider's checks of requests.
type SAMLConfig struct {
	// ClockSkew is how far a request's IssueInstant may be from the time it
	// arrives, either way (clock difference and the browser's journey).
	ClockSkew time.Duration `yaml:"clock_skew"`
	// RequireSignedRequests refuses unsigned AuthnRequests and
	// LogoutRequests from every SP (metadata says WantAuthnRequestsSigned);
	// otherwise only SPs whose metadata says AuthnRequestsSigned must sign.
	RequireSignedRequests bool `yaml:"require_signed_requests"`
}

// PasswordConfig holds the argon2id parameters for new hashes; stored
// hashes with other parameters are rehashed at the next successful login.
type PasswordConfig struct {
	MemoryKiB   uint32 `yaml:"memory_kib"`
	Iterations  uint32 `yaml:"iterations"`
	Parallelism uint8  `yaml:"parallelism"`
	// MaxAge is how long a password lasts (0: never expires; at most
	// 365 days, the national limit).
	MaxAge time.Duration `yaml:"max_age"`
	// BreachedIndex is the file `idp admin breached import` builds; empty
	// means <data>/breached.idx, used when it exists.
	BreachedIndex string `yaml:"breached_index"`
	// CommonList is an optional file of more common passwords, one a line
	// (such as NCSC's top 100,000), refused as well as the built-in list.
	CommonList string `yaml:"common_list"`
}

// EphemeralConfig bounds the in-process ephemeral store.
type EphemeralConfig struct {
	MaxItems int `yaml:"max_items"`
}

// SMTPConfig is where mail goes; an empty host writes messages to the log
// and to <data>/outbox/.
type SMTPConfig struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	From string `yaml:"from"`
	// PasswordFile holds the SMTP password; secrets come from files only.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// TLS is starttls (default), tls (implicit, port 465) or none (a relay
	// on loopback only).
	TLS string `yaml:"tls"`
}

// Defaults returns the configuration before any source is applied.
func Defaults() Config {
	return Config{
		Addr:     "127.0.0.1:8080",
		Data:     "data",
		LogLevel: "info",
		HTTP: HTTPConfig{
			ReadTimeout:     15 * time.Second,
			WriteTimeout:    30 * time.Second,
			IdleTimeout:     120 * time.Second,
			ShutdownTimeout: 15 * time.Second,
			MaxBodyBytes:    1 << 20,
		},
		WebAuthn: WebAuthnConfig{Attestation: "none"},
		Session:  SessionConfig{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 10 * time.Hour, LoginTimeout: 30 * time.Minute},
		OIDC: OIDCConfig{
			CodeLifetime: time.Minute, AccessTokenLifetime: 15 * time.Minute, IDTokenLifetime: 15 * time.Minute,
			RefreshTokenLifetime: 12 * time.Hour, SigningKeyPeriod: 30 * 24 * time.Hour, SigningKeyLead: 24 * time.Hour,
		},
		SAML: SAMLConfig{ClockSkew: 3 * time.Minute},
		Password: PasswordConfig{
			MemoryKiB:   password.DefaultParams.MemoryKiB,
			Iterations:  password.DefaultParams.Iterations,
			Parallelism: password.DefaultParams.Parallelism,
			MaxAge:      365 * 24 * time.Hour,
		},
		Ephemeral: EphemeralConfig{MaxItems: 1_000_000},
		SMTP:      SMTPConfig{Port: 587, TLS: "starttls"},
		Risk:      DefaultRisk(),
		ADSync:    ADSyncConfig{SilentAfter: 15 * time.Minute},
	}
}

// MaxConfigSize bounds a configuration file.
const MaxConfigSize = 1 << 20

// LoadYAML decodes a YAML document over c. Unknown keys are errors, naming
// the key, so a typo is never silently ignored.
func (c *Config) LoadYAML(r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxConfigSize+1))
	if err != nil {
		return err
	}
	if len(data) > MaxConfigSize {
		return fmt.Errorf("config file larger than %d bytes", MaxConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = dec.Decode(c)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("config file: %w", err)
	}
	// yaml reports type errors by line; name the setting too.
	var root yaml.Node
	yaml.Unmarshal(data, &root)
	paths := map[int]string{}
	keyPaths(&root, "", paths)
	errs := make([]error, len(te.Errors))
	for i, msg := range te.Errors {
		if m := lineMsg.FindStringSubmatch(msg); m != nil {
			if n, _ := strconv.Atoi(m[1]); paths[n] != "" {
				msg = fmt.Sprintf("%s (line %s): %s", paths[n], m[1], m[2])
			}
		}
		errs[i] = fmt.Errorf("config file: %s", msg)
	}
	return errors.Join(errs...)
}

var lineMsg = regexp.MustCompile(`^line (\d+): (.*)$`)

// keyPaths records, for each line holding a mapping key, its dotted path.
func keyPaths(n *yaml.Node, prefix string, out map[int]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			keyPaths(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			if _, seen := out[k.Line]; !seen {
				out[k.Line] = p
			}
			keyPaths(v, p, out)
		}
	}
}

// EnvPrefix starts every environment variable Lanyard reads. Variables
// starting LANYARD_TEST_ belong to the test command and are ignored.
const EnvPrefix = "LANYARD_"

// ApplyEnv sets fields from LANYARD_* variables in environ ("KEY=value"
// strings as os.Environ returns). The name of a field is its YAML path in
// upper case joined by "_": LANYARD_HTTP_MAX_BODY_BYTES. Lists are
// comma-separated. An unknown LANYARD_ variable or a value that does not
// parse is an error naming the variable; every such problem is reported.
func (c *Config) ApplyEnv(environ []string) error {
	fields := map[string]reflect.Value{}
	collectFields(reflect.ValueOf(c).Elem(), EnvPrefix, fields)
	var errs []error
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, EnvPrefix) || strings.HasPrefix(k, EnvPrefix+"TEST_") {
			continue
		}
		f, ok := fields[k]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown setting", k))
			continue
		}
		if err := setField(f, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", k, err))
		}
	}
	return errors.Join(errs...)
}

func collectFields(v reflect.Value, prefix string, out map[string]reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		key := prefix + strings.ToUpper(name)
		if f := v.Field(i); f.Kind() == reflect.Struct {
			collectFields(f, key+"_", out)
		} else {
			out[key] = f
		}
	}
}

func setField(f reflect.Value, s string) error {
	if f.Type() == reflect.TypeFor[time.Duration]() {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration such as 30s, got %q", s)
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("want a whole number, got %q", s)
		}
		f.SetInt(n)
	case reflect.Uint8, reflect.Uint32:
		n, err := strconv.ParseUint(s, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("want a whole number from 0 to %d, got %q", uint64(1)<<f.Type().Bits()-1, s)
		}
		f.SetUint(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		f.SetFloat(x)
	case reflect.Slice:
		var items []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// Resolve fills the settings derived from others (issuer from addr,
// database and master key file from data). Call it after all sources and
// before Validate.
func (c *Config) Resolve() {
	if c.Issuer == "" && c.Addr != "" {
		c.Issuer = "http://" + c.Addr
	}
	if c.Database == "" && c.Data != "" {
		c.Database = "sqlite:" + filepath.Join(c.Data, "lanyard.db")
	}
	if c.Password.BreachedIndex == "" && c.Data != "" {
		c.Password.BreachedIndex = filepath.Join(c.Data, "breached.idx")
	}
	if c.MasterKeyFile == "" && c.Data != "" {
		c.MasterKeyFile = filepath.Join(c.Data, "master.key")
	}
}

// Validate checks every setting and returns all problems joined, each as
// "key: rule, got value". Secrets are never echoed.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, rule string, got any) {
		errs = append(errs, fmt.Errorf("%s: %s, got %q", key, rule, fmt.Sprint(got)))
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		bad("addr", "must be host:port such as 127.0.0.1:8080", c.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("addr", "port must be 0 to 65535", c.Addr)
	}
	if u, err := url.Parse(c.Issuer); err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
		(u.Scheme != "https" && u.Scheme != "http") {
		bad("issuer", "must be an absolute http(s) URL with no query, fragment or user", c.Issuer)
	} else if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		bad("issuer", "must be https unless the host is loopback", c.Issuer)
	}
	if c.Data == "" {
		bad("data", "must not be empty", c.Data)
	}
	switch {
	case strings.HasPrefix(c.Database, "sqlite:") && len(c.Database) > len("sqlite:"):
	case strings.HasPrefix(c.Database, "postgres://"), strings.HasPrefix(c.Database, "postgresql://"):
		if _, err := url.Parse(c.Database); err != nil {
			bad("database", "must be a valid postgres:// URL", redactURL(c.Database))
		}
	default:
		bad("database", "must be sqlite:PATH or a postgres:// URL", redactURL(c.Database))
	}
	if c.Redis != "" {
		if u, err := url.Parse(c.Redis); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			bad("redis", "must be empty (in-process) or a redis:// or rediss:// URL", redactURL(c.Redis))
		}
	}
	for i, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("trusted_proxies[%d]", i), "must be a CIDR such as 10.0.0.0/8", p)
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("log_level", "must be one of debug, info, warn, error", c.LogLevel)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"http.read_timeout", c.HTTP.ReadTimeout},
		{"http.write_timeout", c.HTTP.WriteTimeout},
		{"http.idle_timeout", c.HTTP.IdleTimeout},
		{"http.shutdown_timeout", c.HTTP.ShutdownTimeout},
	} {
		if d.v < time.Second || d.v > 10*time.Minute {
			bad(d.key, "must be from 1s to 10m", d.v)
		}
	}
	for _, d := range []struct {
		key       string
		v, lo, hi time.Duration
	}{
		{"session.idle_timeout", c.Session.IdleTimeout, time.Minute, 24 * time.Hour},
		{"session.absolute_timeout", c.Session.AbsoluteTimeout, time.Minute, 30 * 24 * time.Hour},
		{"session.login_timeout", c.Session.LoginTimeout, time.Minute, 24 * time.Hour},
		{"oidc.code_lifetime", c.OIDC.CodeLifetime, 10 * time.Second, 10 * time.Minute},
		{"oidc.access_token_lifetime", c.OIDC.AccessTokenLifetime, time.Minute, 24 * time.Hour},
		{"oidc.id_token_lifetime", c.OIDC.IDTokenLifetime, time.Minute, 24 * time.Hour},
		{"oidc.refresh_token_lifetime", c.OIDC.RefreshTokenLifetime, time.Minute, 90 * 24 * time.Hour},
		{"oidc.signing_key_period", c.OIDC.SigningKeyPeriod, time.Hour, 365 * 24 * time.Hour},
		{"oidc.signing_key_lead", c.OIDC.SigningKeyLead, time.Minute, 30 * 24 * time.Hour},
	} {
		if d.v < d.lo || d.v > d.hi {
			bad(d.key, fmt.Sprintf("must be from %s to %s", d.lo, d.hi), d.v)
		}
	}
	if c.ADSync.SilentAfter < time.Minute || c.ADSync.SilentAfter > 30*24*time.Hour {
		bad("adsync.silent_after", "must be from 1m to 720h", c.ADSync.SilentAfter)
	}
	if c.SAML.ClockSkew < 0 || c.SAML.ClockSkew > 15*time.Minute {
		bad("saml.clock_skew", "must be from 0s to 15m", c.SAML.ClockSkew)
	}
	errs = append(errs, c.Risk.validate(c.GeoIPDB)...)
	if !slices.Contains(authn.AttestationPreferences, c.WebAuthn.Attestation) {
		bad("webauthn.attestation", "must be one of "+strings.Join(authn.AttestationPreferences, ", "), c.WebAuthn.Attestation)
	}
	if c.Session.AbsoluteTimeout < c.Session.IdleTimeout {
		bad("session.absolute_timeout", "must be at least session.idle_timeout", c.Session.AbsoluteTimeout)
	}
	if c.OIDC.SigningKeyLead >= c.OIDC.SigningKeyPeriod {
		bad("oidc.signing_key_lead", "must be shorter than oidc.signing_key_period", c.OIDC.SigningKeyLead)
	}
	if c.HTTP.MaxBodyBytes < 1<<10 || c.HTTP.MaxBodyBytes > 64<<20 {
		bad("http.max_body_bytes", "must be from 1024 to 67108864", c.HTTP.MaxBodyBytes)
	}
	// OWASP's argon2id configurations trade memory for iterations, from
	// m=47104,t=1 to m=7168,t=5; each spends at least 7168 KiB x 5 passes.
	if m := c.Password.MemoryKiB; m < 7168 || m > 1<<21 {
		bad("password.memory_kib", "must be from 7168 (OWASP minimum) to 2097152", m)
	}
	if t := c.Password.Iterations; t < 1 || t > 64 {
		bad("password.iterations", "must be from 1 to 64", t)
	} else if uint64(c.Password.MemoryKiB)*uint64(t) < 7168*5 {
		bad("password.iterations", "memory_kib x iterations must be at least 35840 (OWASP minimum)", t)
	}
	if a := c.Password.MaxAge; a < 0 || a > 365*24*time.Hour {
		bad("password.max_age", "must be from 0 (never expires) to 8760h (365 days)", a)
	}
	if p := c.Password.Parallelism; p < 1 || p > 16 {
		bad("password.parallelism", "must be from 1 to 16", p)
	}
	if n := c.Ephemeral.MaxItems; n < 1000 || n > 100_000_000 {
		bad("ephemeral.max_items", "must be from 1000 to 100000000", n)
	}
	if c.SMTP.Host != "" {
		if c.SMTP.Port < 1 || c.SMTP.Port > 65535 {
			bad("smtp.port", "must be 1 to 65535", c.SMTP.Port)
		}
		if c.SMTP.From == "" {
			bad("smtp.from", "must be set when smtp.host is", c.SMTP.From)
		}
		switch c.SMTP.TLS {
		case "starttls", "tls":
		case "none":
			if !isLoopback(c.SMTP.Host) {
				bad("smtp.tls", "none is allowed only for a relay on a loopback address", c.SMTP.TLS)
			}
		default:
			bad("smtp.tls", "must be starttls, tls or none", c.SMTP.TLS)
		}
	}
	return errors.Join(errs...)
}

// PasswordParams returns the argon2id parameters for new hashes.
func (c *Config) PasswordParams() password.Params {
	return password.Params{MemoryKiB: c.Password.MemoryKiB, Iterations: c.Password.Iterations, Parallelism: c.Password.Parallelism}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// redactURL hides a URL's password so it can appear in messages and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if err != nil && strings.Contains(s, "@") {
			return "(unparsable URL with credentials)"
		}
		return s
	}
	return u.Redacted()
}
