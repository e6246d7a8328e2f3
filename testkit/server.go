package testkit

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanyard/lanyard/cmd/idp/server"
)

// Options choose a test server's backends and settings.
type Options struct {
	// Postgres puts the directory on a fresh PostgreSQL schema instead of
	// an SQLite file.
	Postgres bool
	// Redis keeps ephemeral state in Redis under a fresh prefix instead of
	// in process.
	Redis bool
	// RedisProxy, with Redis, reaches Redis through a Proxy the test can cut.
	RedisProxy bool
	// Now is the server's clock; nil means time.Now.
	Now func() time.Time
	// Share makes this server a second instance of another: the same
	// database, Redis prefix, master key and issuer, as behind a load
	// balancer.
	Share *Server
	// Configure, if set, changes the configuration before the server opens.
	Configure func(*server.Config)
}

// Server is a full Lanyard on a loopback TLS listener, serving the handler
// cmd/idp builds.
type Server struct {
	*server.Server
	// URL is the issuer: https://127.0.0.1:PORT.
	URL  string
	HTTP *httptest.Server
	// RedisProxy stands between the server and Redis when Options.RedisProxy.
	RedisProxy *Proxy
	// Base is this instance's own address (https://127.0.0.1:PORT); it
	// equals URL, the issuer, except for a Share instance.
	Base        string
	redisPrefix string
}

// NewServer starts a server for the test with the chosen backends and
// stops it when the test ends.
func NewServer(t testing.TB, opt Options) *Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	cfg := server.Defaults()
	cfg.Data = t.TempDir()
	cfg.Addr = ts.Listener.Addr().String()
	cfg.Issuer = "https://" + cfg.Addr
	cfg.LogLevel = "debug"
	var prefix string
	var proxy *Proxy
	if opt.Postgres {
		cfg.Database = Postgres(t)
	}
	if opt.Redis {
		cfg.Redis, prefix = Redis(t)
		if opt.RedisProxy {
			u, err := url.Parse(cfg.Redis)
			if err != nil {
				t.Fatal(err)
			}
			proxy = NewProxy(t, u.Host)
			u.Host = proxy.Addr()
			cfg.Redis = u.String()
		}
	}
	if sh := opt.Share; sh != nil {
		cfg.Database, cfg.Redis, prefix = sh.Config.Database, sh.Config.Redis, sh.redisPrefix
		cfg.MasterKeyFile, cfg.Issuer = sh.Config.MasterKeyFile, sh.URL
	}
	if opt.Configure != nil {
		opt.Configure(&cfg)
	}
	cfg.Resolve()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test server config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := server.Open(t.Context(), cfg, log, server.Options{Now: opt.Now, RedisPrefix: prefix})
	if err != nil {
		ts.Close()
		t.Fatalf("open test server: %v", err)
	}
	ts.Config.Handler = s.Handler()
	ts.StartTLS()
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return &Server{Server: s, URL: cfg.Issuer, Base: ts.URL, HTTP: ts, RedisProxy: proxy, redisPrefix: prefix}
}

// Client returns an HTTP client that trusts the server's certificate, keeps
// cookies, and does not follow redirects (tests look at each hop).
func (s *Server) Client(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := s.HTTP.Client()
	tr := c.Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs}
	return &http.Client{
		Transport:     tr,
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// DataFile returns the path of name in the server's data folder.
func (s *Server) DataFile(name string) string { return filepath.Join(s.Config.Data, name) }
