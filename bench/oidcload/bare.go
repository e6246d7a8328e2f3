package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", as directory/sqlstore uses

	"github.com/lanyard/lanyard/authn/password"
	"github.com/lanyard/lanyard/directory"
)

// bare is the least an OpenID Connect provider must do for the two flows
// oidcload measures, with the parts Lanyard uses (the SQLite driver and
// its settings, password.Hasher, go-jose and RS256, net/http) and nothing
// else. It is not a product: one user, one client, state in a map. It
// shows what this machine allows, so that Lanyard's figures can be read
// against what is possible here as well as against the ceilings.
//
// What it still does, because every provider must:
//   - a login is a two-page ceremony (email, then password) bound to the
//     browser by a cookie, each form carrying a CSRF token; the email is
//     looked up in the directory, the password verified with argon2id;
//   - the sign-in's audit event and the password's last use commit, durably
//     (SQLite in WAL mode with its default synchronous=FULL, as Lanyard),
//     before the code is issued;
//   - the code is one-time and PKCE-bound; the client authenticates with a
//     secret compared by hash; the refresh token is stored only as a hash
//     and its rotation commits, durably, before the new token is handed out;
//   - every token response carries an RS256-signed ID token.
//
// What it leaves out, where Lanyard does more: the authorize request's
// validation beyond the redirect URI, sessions and SSO, the risk engine,
// lockout, breached-password and expiry checks, the NHS.UK pages, the
// audit log's hash chain, the user's claims read from the directory, the
// OIDC library's request handling, metrics and logs. And its ceremony has
// the fewest round trips one can have (authorize answers with the email
// page, the email form with the password page, the password form with the
// redirect to the client), where Lanyard redirects after every form
// (post/redirect/get) and between its OIDC and sign-in parts: three
// browser requests a login against Lanyard's seven, and the token request.
type bare struct {
	db       *sql.DB
	hasher   *password.Hasher
	userHash string // the user's password hash
	secret   [32]byte
	signer   jose.Signer
	issuer   string
	inFlight atomic.Int32 // token requests being served

	mu    sync.Mutex
	flows map[string]*bareFlow // by ceremony ID
	codes map[string]*bareFlow // by code
}

// bareFlow is one login: the authorize request and its ceremony.
type bareFlow struct {
	redirectURI, state, challenge, nonce string
	binding, csrf                        string
	userID                               string
	created                              time.Time
}

const (
	bareClientID = "bare-client"
	bareSecret   = "bare-client-secret-0123456789"
	bareUserID   = "01JZ8Q4W6T3N5V7X9B2C4D6F8H"
	bareFlowTTL  = 10 * time.Minute
)

var barePage = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head><body><main>
<form action="/login" method="post" novalidate>
<input type="hidden" name="csrf_token" value="{{.CSRF}}"><input type="hidden" name="ceremony" value="{{.Ceremony}}">
{{if .Password}}<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password">
{{else}}<label for="email">Email address</label><input id="email" name="email" type="email" autocomplete="username">
{{end}}<button type="submit">Continue</button></form></main></body></html>`))

// startBare serves a bare provider on a loopback port, in a fresh data
// folder, and returns it as a target the load generator drives like
// Lanyard.
func startBare(ctx context.Context, tr *http.Transport) (_ *target, err error) {
	t := &target{name: "the bare server (SQLite, state in memory)", tr: tr}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	dir, err := os.MkdirTemp("", "oidcload-bare-")
	if err != nil {
		return nil, err
	}
	t.cleanup = append(t.cleanup, func() { os.RemoveAll(dir) })
	b := &bare{flows: map[string]*bareFlow{}, codes: map[string]*bareFlow{}, secret: sha256.Sum256([]byte(bareSecret))}
	// The settings directory/sqlstore opens SQLite with.
	b.db, err = sql.Open("sqlite", "file:"+filepath.Join(dir, "bare.db")+
		"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	t.cleanup = append(t.cleanup, func() { b.db.Close() })
	for _, q := range []string{
		`CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, last_used INTEGER)`,
		`CREATE TABLE audit (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL)`,
		`CREATE TABLE refresh_tokens (hash TEXT PRIMARY KEY, user_id TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0, expires INTEGER NOT NULL)`,
	} {
		if _, err := b.db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("bare schema: %w", err)
		}
	}
	if _, err := b.db.ExecContext(ctx, `INSERT INTO users (id, email) VALUES (?, ?)`, bareUserID, userEmail); err != nil {
		return nil, err
	}
	if b.hasher, err = password.NewHasher(password.DefaultParams); err != nil {
		return nil, err
	}
	if b.userHash, err = b.hasher.Hash(userPassword); err != nil {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), "bare-key-1")
	if b.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b.issuer = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: b.routes(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.cleanup = append(t.cleanup, func() { srv.Shutdown(context.WithoutCancel(ctx)) })
	t.issuer = b.issuer
	t.client = &http.Client{
		Transport: tr, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	ep, err := t.discover(ctx)
	if err != nil {
		return nil, err
	}
	t.oauth = oauth2.Config{
		ClientID: bareClientID, ClientSecret: bareSecret, Endpoint: ep, RedirectURL: redirectURI,
		Scopes: []string{"openid", "profile", "email", "offline_access"},
	}
	if _, err := t.login(ctx); err != nil {
		return nil, fmt.Errorf("bare server, first login: %w", err)
	}
	return t, nil
}

func (b *bare) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer": b.issuer, "authorization_endpoint": b.issuer + "/authorize", "token_endpoint": b.issuer + "/token",
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		})
	})
	mux.HandleFunc("GET /authorize", b.authorize)
	mux.HandleFunc("POST /login", b.login)
	mux.HandleFunc("POST /token", b.token)
	return http.MaxBytesHandler(mux, 64<<10)
}

// authorize starts a ceremony and answers with its email page.
func (b *bare) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != bareClientID || q.Get("redirect_uri") != redirectURI {
		http.Error(w, "unknown client or redirect URI", http.StatusBadRequest)
		return
	}
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "code flow with PKCE S256 only", http.StatusBadRequest)
		return
	}
	binding, id := rand.Text(), rand.Text()
	f := &bareFlow{redirectURI: redirectURI, state: q.Get("state"), challenge: q.Get("code_challenge"), nonce: q.Get("nonce"),
		binding: directory.HashToken(binding), csrf: rand.Text(), created: time.Now()}
	b.mu.Lock()
	b.flows[id] = f
	b.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "bare-login", Value: binding, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	b.page(w, f, id, false)
}

func (b *bare) page(w http.ResponseWriter, f *bareFlow, id string, pw bool) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	barePage.Execute(w, struct {
		CSRF, Ceremony string
		Password       bool
	}{f.csrf, id, pw})
}

// login takes the email form (answering with the password page) and the
// password form (answering with the redirect to the client, code included).
func (b *bare) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "form not valid", http.StatusBadRequest)
		return
	}
	id := r.PostForm.Get("ceremony")
	b.mu.Lock()
	f := b.flows[id]
	b.mu.Unlock()
	ck, err := r.Cookie("bare-login")
	if f == nil || time.Since(f.created) > bareFlowTTL || err != nil ||
		subtle.ConstantTimeCompare([]byte(directory.HashToken(ck.Value)), []byte(f.binding)) != 1 {
		http.Error(w, "sign-in expired", http.StatusBadRequest)
		return
	}
	if got := r.PostForm.Get("csrf_token"); got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(f.csrf)) != 1 {
		http.Error(w, "form expired", http.StatusForbidden)
		return
	}
	if _, ok := r.PostForm["password"]; !ok {
		var userID string
		err := b.db.QueryRowContext(r.Context(), `SELECT id FROM users WHERE email = ?`, r.PostForm.Get("email")).Scan(&userID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		b.mu.Lock()
		f.userID = userID // empty for an unknown email, which then fails at the password as a wrong one
		b.mu.Unlock()
		b.page(w, f, id, true)
		return
	}
	b.mu.Lock()
	userID := f.userID
	b.mu.Unlock()
	var ok bool
	if userID == "" {
		// An unknown email takes as long as a wrong password.
		b.hasher.VerifyDummy(r.PostForm.Get("password"))
	} else if ok, _, err = b.hasher.Verify(b.userHash, r.PostForm.Get("password")); err != nil {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	if !ok {
		http.Error(w, "email or password not right", http.StatusUnauthorized)
		return
	}
	err = b.inTx(r.Context(), func(tx *sql.Tx) error {
		if err := audit(r.Context(), tx, "login.success", userID); err != nil {
			return err
		}
		_, err := tx.ExecContext(r.Context(), `UPDATE users SET last_used = ? WHERE id = ?`, time.Now().UnixNano(), userID)
		return err
	})
	if err != nil {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	code := rand.Text()
	b.mu.Lock()
	delete(b.flows, id)
	b.codes[code] = f
	b.mu.Unlock()
	http.Redirect(w, r, f.redirectURI+"?"+url.Values{"code": {code}, "state": {f.state}}.Encode(), http.StatusSeeOther)
}

// token serves the code and refresh-token grants.
func (b *bare) token(w http.ResponseWriter, r *http.Request) {
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, _ := r.BasicAuth()
	got := sha256.Sum256([]byte(secret))
	if id != bareClientID || subtle.ConstantTimeCompare(got[:], b.secret[:]) != 1 {
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	ctx := r.Context()
	next := rand.Text()
	var userID, nonce string
	var write func(*sql.Tx) error
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		b.mu.Lock()
		f := b.codes[r.PostForm.Get("code")]
		delete(b.codes, r.PostForm.Get("code"))
		b.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if f == nil || time.Since(f.created) > bareFlowTTL || f.userID == "" ||
			subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(f.challenge)) != 1 {
			tokenError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		userID, nonce = f.userID, f.nonce
		write = func(tx *sql.Tx) error {
			return b.insertRefresh(ctx, tx, next, userID)
		}
	case "refresh_token":
		old := directory.HashToken(r.PostForm.Get("refresh_token"))
		// The rotation reads and writes in one transaction, so two grants
		// presenting the same token cannot both succeed.
		write = func(tx *sql.Tx) error {
			err := tx.QueryRowContext(ctx, `UPDATE refresh_tokens SET used = 1 WHERE hash = ? AND used = 0 AND expires > ? RETURNING user_id`,
				old, time.Now().Unix()).Scan(&userID)
			if err != nil {
				return err
			}
			return b.insertRefresh(ctx, tx, next, userID)
		}
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	// The write commits before the response, beside the signature when a
	// core is free for it (the rule oidc/commit.go follows). A refresh must
	// know the user before it signs, so only the commit overlaps.
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	if err := write(tx); err != nil {
		tx.Rollback()
		if errors.Is(err, sql.ErrNoRows) {
			tokenError(w, http.StatusBadRequest, "invalid_grant")
		} else {
			tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		}
		return
	}
	committed := make(chan error, 1)
	if n <= int32(runtime.GOMAXPROCS(0)/2) {
		go func() { committed <- tx.Commit() }()
	} else {
		committed <- tx.Commit()
	}
	payload, err := json.Marshal(idTokenClaims(b.issuer, userID, bareClientID, nonce, time.Now()))
	var idToken string
	if err == nil {
		var jws *jose.JSONWebSignature
		if jws, err = b.signer.Sign(payload); err == nil {
			idToken, err = jws.CompactSerialize()
		}
	}
	if cerr := <-committed; cerr != nil || err != nil {
		tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 900, "refresh_token": next, "id_token": idToken,
	})
}

func (b *bare) insertRefresh(ctx context.Context, tx *sql.Tx, token, userID string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, user_id, expires) VALUES (?, ?, ?)`,
		directory.HashToken(token), userID, time.Now().Add(30*24*time.Hour).Unix())
	return err
}

func (b *bare) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func audit(ctx context.Context, tx *sql.Tx, kind, actor string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (at, kind, actor, detail) VALUES (?, ?, ?, ?)`,
		time.Now().UnixNano(), kind, actor, `{"client_id":"`+bareClientID+`"}`)
	return err
}

func tokenError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
