package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/lanyard/lanyard/cmd/idp/server"
	"github.com/lanyard/lanyard/directory/admin"
)

const (
	redirectURI  = "http://127.0.0.1:9999/callback"
	userEmail    = "jane.smith@nhs.net"
	userPassword = "correct horse battery staple"
)

// target is a server under load and what the load generator knows of it.
type target struct {
	name    string
	srv     *server.Server
	issuer  string
	oauth   oauth2.Config
	client  *http.Client // no cookies, no redirects: token endpoint and discovery
	tr      *http.Transport
	cleanup []func()
}

func (t *target) close() {
	for i := len(t.cleanup) - 1; i >= 0; i-- {
		t.cleanup[i]()
	}
}

// startTarget opens a server on a fresh data folder (and, for postgres, a
// fresh schema and Redis prefix), serves it on a loopback port and
// registers the organisation, user and client the load uses.
func startTarget(ctx context.Context, o options, log *slog.Logger) (_ *target, err error) {
	t := &target{name: "SQLite + in-process ephemeral store"}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	dir, err := os.MkdirTemp("", "oidcload-")
	if err != nil {
		return nil, err
	}
	t.cleanup = append(t.cleanup, func() { os.RemoveAll(dir) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cfg := server.Defaults()
	cfg.Data = dir
	cfg.Addr = ln.Addr().String()
	cfg.Issuer = "http://" + cfg.Addr
	cfg.LogLevel = "warn"
	var opt server.Options
	if o.backend == "postgres" {
		t.name = "PostgreSQL + Redis"
		if cfg.Database, err = freshSchema(ctx, o.postgresURL, t); err != nil {
			ln.Close()
			return nil, err
		}
		cfg.Redis = o.redisURL
		if opt.RedisPrefix, err = freshPrefix(ctx, o.redisURL, t); err != nil {
			ln.Close()
			return nil, err
		}
	}
	cfg.Resolve()
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("config: %w", err)
	}
	t.srv, err = server.Open(ctx, cfg, log, opt)
	if err != nil {
		ln.Close()
		return nil, err
	}
	t.cleanup = append(t.cleanup, func() { t.srv.Close() })
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := t.srv.Serve(sctx, ln); err != nil {
			log.Error("serve", "reason", err.Error())
		}
	}()
	t.cleanup = append(t.cleanup, func() { stop(); <-done })
	t.issuer = cfg.Issuer

	t.tr = &http.Transport{
		Proxy: nil, MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	t.cleanup = append(t.cleanup, t.tr.CloseIdleConnections)
	t.client = &http.Client{
		Transport: t.tr, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	by := admin.Actor{ID: "bench"}
	if _, err := t.srv.Admin.CreateOrganisation(ctx, by, "RRK", "Leeds Teaching Hospitals"); err != nil {
		return nil, err
	}
	// Staff without an administrative role sign in with a password alone;
	// administrators must also use a second factor.
	if _, err := t.srv.Admin.CreateUser(ctx, by, admin.NewUser{OrgODS: "RRK", Email: userEmail, Name: "Jane Smith",
		Password: userPassword}); err != nil {
		return nil, err
	}
	c, secret, err := t.srv.Admin.CreateClient(ctx, by, admin.NewClient{OrgODS: "RRK", Name: "Rostering", RedirectURIs: []string{redirectURI}})
	if err != nil {
		return nil, err
	}
	ep, err := t.discover(ctx)
	if err != nil {
		return nil, err
	}
	t.oauth = oauth2.Config{
		ClientID: c.ID, ClientSecret: secret, Endpoint: ep, RedirectURL: redirectURI,
		Scopes: []string{"openid", "profile", "email", "offline_access"},
	}
	// One login checks the whole flow before anything is timed.
	if _, err := t.login(ctx); err != nil {
		return nil, fmt.Errorf("first login: %w", err)
	}
	return t, nil
}

// discover reads the endpoints from the discovery document, as a relying
// party would.
func (t *target) discover(ctx context.Context) (oauth2.Endpoint, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return oauth2.Endpoint{}, err
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return oauth2.Endpoint{}, err
	}
	defer resp.Body.Close()
	var d struct {
		Issuer      string   `json:"issuer"`
		Authorize   string   `json:"authorization_endpoint"`
		Token       string   `json:"token_endpoint"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if resp.StatusCode != http.StatusOK {
		return oauth2.Endpoint{}, fmt.Errorf("discovery: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return oauth2.Endpoint{}, fmt.Errorf("discovery: %w", err)
	}
	if d.Issuer != t.issuer || !strings.HasPrefix(d.Authorize, t.issuer) || !strings.HasPrefix(d.Token, t.issuer) {
		return oauth2.Endpoint{}, fmt.Errorf("discovery: issuer %q, endpoints %q and %q, want them under %q", d.Issuer, d.Authorize, d.Token, t.issuer)
	}
	// The client is registered for client_secret_basic; saying so spares
	// x/oauth2 its trial of both styles.
	return oauth2.Endpoint{AuthURL: d.Authorize, TokenURL: d.Token, AuthStyle: oauth2.AuthStyleInHeader}, nil
}

// loginOp is one full login in a new browser, so that no SSO session
// spares the password check.
func (t *target) loginOp(ctx context.Context, _ int) error {
	_, err := t.login(ctx)
	return err
}

// refreshOp logs each of c workers in once and returns an operation that
// makes one refresh-token grant, presenting the token the worker's
// previous grant returned (each grant rotates it).
func (t *target) refreshOp(ctx context.Context, c int) (opFunc, error) {
	tokens := make([]string, c)
	for w := range c {
		tok, err := t.login(ctx)
		if err != nil {
			return nil, err
		}
		tokens[w] = tok.RefreshToken
	}
	rctx := context.WithValue(ctx, oauth2.HTTPClient, t.client)
	return func(_ context.Context, w int) error {
		tok, err := t.oauth.TokenSource(rctx, &oauth2.Token{RefreshToken: tokens[w]}).Token()
		if err != nil {
			return err
		}
		if tok.RefreshToken == "" || tok.RefreshToken == tokens[w] {
			return errors.New("refresh token not rotated")
		}
		if s, _ := tok.Extra("id_token").(string); s == "" {
			return errors.New("no ID token in the refresh response")
		}
		tokens[w] = tok.RefreshToken
		return nil
	}, nil
}

// login runs authorize → email page → password page → code → token
// exchange in a new browser and returns the tokens.
func (t *target) login(ctx context.Context) (*oauth2.Token, error) {
	b, err := newBrowser(t.tr)
	if err != nil {
		return nil, err
	}
	state, verifier := rand.Text(), oauth2.GenerateVerifier()
	authURL := t.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", rand.Text()))

	p, err := b.get(ctx, authURL)
	if err != nil {
		return nil, err
	}
	if p, _, err = b.follow(ctx, p, t.issuer); err != nil {
		return nil, err
	}
	if p, err = b.submit(ctx, p, `name="email"`, url.Values{"email": {userEmail}}); err != nil {
		return nil, err
	}
	if p, _, err = b.follow(ctx, p, t.issuer); err != nil {
		return nil, err
	}
	if p, err = b.submit(ctx, p, `name="password"`, url.Values{"password": {userPassword}}); err != nil {
		return nil, err
	}
	p, loc, err := b.follow(ctx, p, t.issuer)
	if err != nil {
		return nil, err
	}
	if loc == nil {
		return nil, fmt.Errorf("sign-in did not return to the client: status %d at %s: %.500s", p.status, p.url, p.body)
	}
	q := loc.Query()
	switch {
	case q.Get("error") != "":
		return nil, fmt.Errorf("authorization error %s: %s", q.Get("error"), q.Get("error_description"))
	case q.Get("state") != state:
		return nil, fmt.Errorf("callback state %q, want %q", q.Get("state"), state)
	case q.Get("code") == "":
		return nil, fmt.Errorf("no code in the callback")
	}
	tok, err := t.oauth.Exchange(context.WithValue(ctx, oauth2.HTTPClient, t.client), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	if s, _ := tok.Extra("id_token").(string); s == "" || tok.RefreshToken == "" {
		return nil, errors.New("token response lacks an ID token or a refresh token")
	}
	return tok, nil
}

// freshSchema creates an empty schema in the PostgreSQL database at base,
// registers its removal, and returns a URL whose search_path is it.
func freshSchema(ctx context.Context, base string, t *target) (string, error) {
	db, err := sql.Open("pgx", base)
	if err != nil {
		return "", fmt.Errorf("LANYARD_TEST_POSTGRES: %w", err)
	}
	schema := "bench_" + strings.ToLower(rand.Text())
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(cctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		return "", fmt.Errorf("PostgreSQL at LANYARD_TEST_POSTGRES: %w", err)
	}
	t.cleanup = append(t.cleanup, func() {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "oidcload: drop schema %s: %v\n", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("LANYARD_TEST_POSTGRES: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// freshPrefix returns a new Redis key prefix and registers the deletion
// of its keys.
func freshPrefix(ctx context.Context, redisURL string, t *target) (string, error) {
	opt, err := goredis.ParseURL(redisURL)
	if err != nil {
		return "", fmt.Errorf("LANYARD_TEST_REDIS: %w", err)
	}
	c := goredis.NewClient(opt)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(cctx).Err(); err != nil {
		c.Close()
		return "", fmt.Errorf("Redis at LANYARD_TEST_REDIS: %w", err)
	}
	prefix := "bench:" + strings.ToLower(rand.Text()) + ":"
	t.cleanup = append(t.cleanup, func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return prefix, nil
}
