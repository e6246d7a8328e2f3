// Package server builds a Lanyard server from a Config: it opens the stores,
// loads the master key, applies migrations and assembles the HTTP handler.
// cmd/idp runs it, and testkit serves the very same handler in tests.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lanyard/lanyard/authn"
	"github.com/lanyard/lanyard/authn/mail"
	"github.com/lanyard/lanyard/authn/password"
	"github.com/lanyard/lanyard/authn/policy"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/directory/adsync"
	"github.com/lanyard/lanyard/directory/ephemeral"
	"github.com/lanyard/lanyard/directory/ephemeral/mem"
	eredis "github.com/lanyard/lanyard/directory/ephemeral/redis"
	"github.com/lanyard/lanyard/directory/seal"
	"github.com/lanyard/lanyard/directory/sqlstore"
	"github.com/lanyard/lanyard/oidc"
	"github.com/lanyard/lanyard/risk"
	"github.com/lanyard/lanyard/saml"
	"github.com/lanyard/lanyard/templates"
)

// ErrSetup matches (with errors.Is) every failure to build a server from
// its configuration (unreachable database, unreadable master key): cmd/idp
// exits 2 for it.
var ErrSetup = errors.New("setup")

type setupError struct{ err error }

func (e setupError) Error() string        { return e.err.Error() }
func (e setupError) Unwrap() error        { return e.err }
func (e setupError) Is(target error) bool { return target == ErrSetup }

func setupErr(format string, a ...any) error { return setupError{fmt.Errorf(format, a...)} }

// Options are what tests and tools may set beyond the Config.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RedisPrefix prefixes every Redis key (tests isolate themselves with it).
	RedisPrefix string
}

// Server is an assembled Lanyard. Its fields are for the command line's
// admin commands and for tests; they are set by Open and not changed after.
type Server struct {
	Config    Config
	Log       *slog.Logger
	Directory *sqlstore.Store
	Ephemeral ephemeral.Store
	Keys      *seal.Keyring
	Hasher    *password.Hasher
	Passwords *authn.Passwords
	Breached  *breachedIndex
	Mail      *mail.Queue
	Admin     *admin.Service
	Authn     *authn.Authenticator
	OIDC      *oidc.Provider
	SAML      *saml.IdP
	ADSync    *adsync.Server // /adsync/v1/, the organisations' AD sync agents
	Risk      *risk.Engine   // the behavioural risk engine (risk.go)
	Geo       *risk.GeoIP    // nil without geoip_db
	Now       func() time.Time

	// KeyCreated is true when Open generated the master key file.
	KeyCreated bool

	metrics *prometheus.Registry
	handler http.Handler
	anon    *risk.Anonymisers
	gc      func(now time.Time) int // in-process store's collector, nil for Redis
}

// OpenDirectory opens the directory named by cfg.Database (which must be
// resolved) and applies pending migrations, returning how many. Errors wrap
// ErrSetup.
func OpenDirectory(ctx context.Context, cfg Config) (st *sqlstore.Store, migrations int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if st, err = sqlstore.Open(ctx, cfg.Database); errors.Is(err, directory.ErrInvalid) {
		return nil, 0, setupErr("database %s: %w", redactURL(cfg.Database), err)
	} else if err != nil {
		return nil, 0, setupErr("database %s unreachable: %w", redactURL(cfg.Database), err)
	}
	if migrations, err = st.Migrate(ctx); err != nil {
		st.Close()
		return nil, 0, setupErr("database %s: migrate: %w", redactURL(cfg.Database), err)
	}
	return st, migrations, nil
}

// Open builds a server from a validated cfg: it opens and migrates the
// directory, connects the ephemeral store, and loads (or, when it is the
// default file under data, creates) the master key. Errors wrap ErrSetup.
func Open(ctx context.Context, cfg Config, log *slog.Logger, opt Options) (*Server, error) {
	s := &Server{Config: cfg, Log: log, Now: opt.Now}
	if s.Now == nil {
		s.Now = time.Now
	}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	var err error
	if s.Keys, s.KeyCreated, err = seal.LoadOrCreate(cfg.MasterKeyFile); err != nil {
		return nil, setupErr("master_key_file: %w", err)
	}
	if s.Directory, _, err = OpenDirectory(ctx, cfg); err != nil {
		return nil, err
	}
	if cfg.Redis == "" {
		m := mem.New(cfg.Ephemeral.MaxItems)
		s.Ephemeral, s.gc = m, m.GarbageCollect
	} else {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if s.Ephemeral, err = eredis.New(rctx, cfg.Redis, opt.RedisPrefix); err != nil {
			return nil, setupErr("redis %s: %w", redactURL(cfg.Redis), err)
		}
	}
	if s.Passwords, s.Hasher, s.Breached, err = NewPasswords(cfg, s.Directory, s.Now); err != nil {
		return nil, err
	}
	s.Admin = admin.New(s.Directory, s.Passwords, s.Now)
	if s.Mail, err = NewMail(cfg, log, s.Now); err != nil {
		return nil, err
	}
	if err := s.newRisk(); err != nil {
		return nil, err
	}
	pages, err := templates.New()
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	secure := strings.HasPrefix(cfg.Issuer, "https://")
	s.Authn = authn.New(authn.Config{
		Secure:      secure,
		Sessions:    authn.SessionPolicy{Idle: cfg.Session.IdleTimeout, Absolute: cfg.Session.AbsoluteTimeout},
		CeremonyTTL: cfg.Session.LoginTimeout,
		RequestID:   RequestID,
		Issuer:      cfg.Issuer,
		Keys:        s.Keys,
		Attestation: cfg.WebAuthn.Attestation,
		Risk:        s.Risk, Devices: risk.NewDevices(s.Keys.Derive(risk.DeviceKeyPurpose, 32)),
		RiskKeys: s.Keys.Derive("risk-report-link", 32), RiskDirectory: s.Directory, RiskDigest: cfg.Risk.DigestInterval,
	}, s.Directory, s.Ephemeral, s.Hasher, s.Passwords, s.Mail, pages, s.Keys.Derive("session-cookie", 32), s.Now, log)
	s.OIDC, err = oidc.New(oidc.Config{
		Issuer: cfg.Issuer,
		Lifetimes: oidc.Lifetimes{
			AuthRequest: cfg.Session.LoginTimeout, Code: cfg.OIDC.CodeLifetime, AccessToken: cfg.OIDC.AccessTokenLifetime,
			IDToken: cfg.OIDC.IDTokenLifetime, RefreshToken: cfg.OIDC.RefreshTokenLifetime,
		},
		Keys: oidc.KeyPolicy{Period: cfg.OIDC.SigningKeyPeriod, Lead: cfg.OIDC.SigningKeyLead,
			Retain: max(cfg.OIDC.IDTokenLifetime, cfg.OIDC.AccessTokenLifetime) + time.Hour},
	}, s.Directory, s.Ephemeral, s.Keys, s.Authn, s.Now, log)
	if err != nil {
		return nil, err
	}
	if err := s.OIDC.Warm(ctx); err != nil {
		return nil, setupErr("signing keys: %w", err)
	}
	s.SAML = saml.New(saml.Config{
		BaseURL: cfg.Issuer, NameIDKey: s.Keys.Derive("saml-nameid", 32)[0],
		RequestTTL: cfg.Session.LoginTimeout, SessionLifetime: cfg.Session.AbsoluteTimeout,
		ClockSkew: cfg.SAML.ClockSkew, RequireSignedRequests: cfg.SAML.RequireSignedRequests,
	}, s.Directory, s.Ephemeral, s.Authn, s.OIDC, s.Now, log)
	s.metrics = prometheus.NewRegistry()
	s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.newADSync()
	s.handler = s.routes()
	ok = true
	return s, nil
}

// NewPasswords builds what sets passwords under the policy: the argon2id
// hasher, the common-password list (built in, plus password.common_list)
// and the breached-password index when one has been imported. It is used
// by the server and by the admin commands alike. Errors wrap ErrSetup.
func NewPasswords(cfg Config, dir directory.Store, now func() time.Time) (*authn.Passwords, *password.Hasher, *breachedIndex, error) {
	h, err := password.NewHasher(cfg.PasswordParams())
	if err != nil {
		return nil, nil, nil, setupErr("password: %w", err)
	}
	list := policy.DefaultList()
	if cfg.Password.CommonList != "" {
		f, err := os.Open(cfg.Password.CommonList)
		if err != nil {
			return nil, nil, nil, setupErr("password.common_list: %w", err)
		}
		extra, err := policy.LoadList(f)
		f.Close()
		if err != nil {
			return nil, nil, nil, setupErr("password.common_list %s: %w", cfg.Password.CommonList, err)
		}
		list = list.Union(extra)
	}
	ix := &breachedIndex{path: cfg.Password.BreachedIndex}
	if err := ix.reload(nil); err != nil {
		return nil, nil, nil, setupErr("password.breached_index: %w", err)
	}
	national := policy.National()
	national.MaxAge = cfg.Password.MaxAge
	return authn.NewPasswords(dir, h, policy.NewChecker(list, ix), national, now), h, ix, nil
}

// NewMail returns the mail queue the configuration asks for: SMTP with
// retries, or the outbox folder under data. Close drains it.
func NewMail(cfg Config, log *slog.Logger, now func() time.Time) (*mail.Queue, error) {
	var sender mail.Sender = &mail.Folder{Dir: filepath.Join(cfg.Data, "outbox"), Log: log, Now: now}
	if cfg.SMTP.Host != "" {
		var pw string
		if cfg.SMTP.PasswordFile != "" {
			b, err := os.ReadFile(cfg.SMTP.PasswordFile)
			if err != nil {
				return nil, setupErr("smtp.password_file: %w", err)
			}
			pw = strings.TrimSpace(string(b))
		}
		sender = &mail.SMTP{Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, From: cfg.SMTP.From, Username: cfg.SMTP.Username,
			Password: pw, TLS: cfg.SMTP.TLS, Attempts: 5, Backoff: 2 * time.Second, Timeout: 30 * time.Second}
	}
	return mail.NewQueue(sender, 10000, log), nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close releases the stores. It is safe to call on a partly opened server.
func (s *Server) Close() error {
	var errs []error
	if s.Mail != nil {
		s.Mail.Close()
	}
	if s.Breached != nil {
		errs = append(errs, s.Breached.Close())
	}
	if s.Ephemeral != nil {
		errs = append(errs, s.Ephemeral.Close())
	}
	if s.Directory != nil {
		errs = append(errs, s.Directory.Close())
	}
	errs = append(errs, s.Geo.Close())
	return errors.Join(errs...)
}

// Serve answers on ln until ctx is done, then shuts down gracefully: it
// stops accepting, lets requests in flight finish within
// http.shutdown_timeout, and returns nil. Background work (the in-process
// store's garbage collection) runs while it serves.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadTimeout:       s.Config.HTTP.ReadTimeout,
		ReadHeaderTimeout: min(s.Config.HTTP.ReadTimeout, 10*time.Second),
		WriteTimeout:      s.Config.HTTP.WriteTimeout,
		IdleTimeout:       s.Config.HTTP.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	// Background work stops with ctx; Serve returns only after it has, so
	// that what it saves at shutdown (the risk engine's populations) reaches
	// the stores before the caller closes them.
	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	if s.gc != nil {
		wg.Go(func() { s.collect(bg) })
	}
	wg.Go(func() { s.Breached.watch(bg, 30*time.Second, s.Log) })
	wg.Go(func() { s.adsyncLoop(bg) })
	wg.Go(func() { s.riskLoop(bg) })
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.Log.Info("shutting down", "timeout", s.Config.HTTP.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.Config.HTTP.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func (s *Server) collect(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := s.gc(s.Now()); n > 0 {
				s.Log.Debug("ephemeral garbage collected", "items", n)
			}
		}
	}
}

var _ directory.Store = (*sqlstore.Store)(nil)
