// Package oidc is Lanyard's OpenID Connect provider: the zitadel/oidc op
// package serves the protocol, and this package supplies its storage
// (clients and refresh tokens from the directory; auth requests, codes and
// access tokens in the ephemeral store), the signing keys with rotation,
// the claims, and the glue to the login ceremony and SSO session in authn.
package oidc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/lanyard/lanyard/authn"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
	"github.com/lanyard/lanyard/directory/seal"
	"github.com/lanyard/lanyard/templates"
)

const loginPath = "/login/oidc"

// Sessions is what the provider needs of authn.
type Sessions interface {
	Current(r *http.Request) (authn.Session, bool, error)
	SessionID(r *http.Request) string
	StartLogin(w http.ResponseWriter, r *http.Request, opt authn.LoginOptions)
	EndSession(ctx context.Context, id string) (authn.Session, bool, error)
	OnSessionEnd(h authn.EndedHook)
	FrontChannelLogout(ctx context.Context, s authn.Session, next string) string
	Fail(w http.ResponseWriter, r *http.Request, status int, title, message string)
	ConfirmLogout(w http.ResponseWriter, r *http.Request, sess authn.Session, action string, hidden []templates.Hidden, clientName string)
}

// Lifetimes of what the provider issues.
type Lifetimes struct {
	AuthRequest  time.Duration
	Code         time.Duration
	AccessToken  time.Duration
	IDToken      time.Duration
	RefreshToken time.Duration
}

// DefaultLifetimes are Lanyard's defaults.
var DefaultLifetimes = Lifetimes{
	AuthRequest:  30 * time.Minute,
	Code:         time.Minute,
	AccessToken:  15 * time.Minute,
	IDToken:      15 * time.Minute,
	RefreshToken: 12 * time.Hour,
}

// Config configures the provider.
type Config struct {
	Issuer    string
	Lifetimes Lifetimes
	Keys      KeyPolicy
}

// Provider is the OpenID Connect provider.
type Provider struct {
	op       *op.Provider
	storage  *storage
	sessions Sessions
	issuer   string
	now      func() time.Time
	log      *slog.Logger
	handler  http.Handler
}

type ctxKey int

const sessionIDKey ctxKey = 0

func sessionIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(sessionIDKey).(string)
	return id
}

// New builds the provider. master derives the key that protects opaque
// access tokens, the same on every instance sharing the master key file.
func New(cfg Config, dir directory.Store, eph ephemeral.Store, master *seal.Keyring, sessions Sessions, now func() time.Time, log *slog.Logger) (*Provider, error) {
	if cfg.Lifetimes == (Lifetimes{}) {
		cfg.Lifetimes = DefaultLifetimes
	}
	if cfg.Keys.Retain < cfg.Lifetimes.IDToken {
		cfg.Keys.Retain = cfg.Lifetimes.IDToken
	}
	keys := &keyManager{store: dir, keys: master, policy: cfg.Keys, now: now, log: log}
	st := &storage{dir: dir, eph: eph, keys: keys, sessions: sessions, lt: cfg.Lifetimes, now: now, log: log}
	var cryptoKey [32]byte
	copy(cryptoKey[:], master.Derive("oidc-token", 32)[0])
	opCfg := &op.Config{
		CryptoKey:                cryptoKey,
		CryptoKeyId:              master.CurrentKeyID(),
		DefaultLogoutRedirectURI: "/logged-out",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.BritishEnglish},
		SupportedScopes: []string{zoidc.ScopeOpenID, zoidc.ScopeProfile, zoidc.ScopeEmail,
			zoidc.ScopeOfflineAccess, ScopeOrg},
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "azp",
			"email", "email_verified", "name", "given_name", "family_name", "org", "orgs", "roles"},
	}
	opts := []op.Option{
		op.WithLogger(log),
		op.WithHttpInterceptors(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx := context.WithValue(r.Context(), clientMemoKey, new(clientMemo))
				if id := sessions.SessionID(r); id != "" {
					ctx = context.WithValue(ctx, sessionIDKey, id)
				}
				next.ServeHTTP(w, r.WithContext(ctx))
			})
		}),
	}
	if strings.HasPrefix(cfg.Issuer, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	p, err := op.NewProvider(opCfg, st, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidc provider: %w", err)
	}
	pr := &Provider{op: p, storage: st, sessions: sessions, issuer: cfg.Issuer, now: now, log: log}
	sessions.OnSessionEnd(func(ctx context.Context, s authn.Session) { st.sessionEnded(ctx, s) })
	mux := http.NewServeMux()
	mux.Handle("GET "+loginPath, authn.SecurityHeaders(http.HandlerFunc(pr.login)))
	mux.Handle(authorizePath, pr.errorPage(p, "authorize request refused", "There is a problem with this sign-in link",
		"The application sent a sign-in request that Lanyard cannot accept, so you have not been signed in. "+
			"Go back to the application and try again. If this keeps happening, tell the application’s support team "+
			"and give them the reference below."))
	mux.Handle(endSessionPath, pr.errorPage(pr.confirmLogout(p), "end session request refused", "There is a problem with this sign-out link",
		"The application asked Lanyard to sign you out in a way it cannot accept, so you have not been signed out. "+
			"To sign out of every application, use the sign out page at /logout. If this keeps happening, tell the "+
			"application’s support team and give them the reference below."))
	mux.Handle("POST "+tokenPath, awaitCommit(p, log))
	mux.Handle("/", p)
	pr.handler = mux
	return pr, nil
}

// The browser-facing endpoints of zitadel's router (its default paths).
const (
	authorizePath  = "/authorize"
	endSessionPath = "/end_session"
	tokenPath      = "/oauth/token"
)

// errorPage answers, with Lanyard's own error page, the requests to a
// browser-facing endpoint that zitadel refuses without redirecting (an
// unknown client, a redirect_uri or post_logout_redirect_uri not
// registered, a malformed request), which it writes as plain text or JSON.
// The page does not repeat the refusal's wording, which can carry parts of
// the request, so that no one can put words on Lanyard's page through a
// link; the wording goes to the log, under the request ID the page shows.
// Refusals that go back to the application (a redirect with error=) pass
// through untouched.
func (p *Provider) errorPage(next http.Handler, logMsg, title, message string) http.Handler {
	return authn.SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &errorCatcher{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		if cw.status == 0 {
			return
		}
		p.log.InfoContext(r.Context(), logMsg, "status", cw.status,
			"reason", strings.TrimSpace(cw.body.String()), "client_id", r.FormValue("client_id"))
		p.sessions.Fail(w, r, cw.status, title, message)
	}))
}

// confirmLogout asks the user before an RP-initiated logout that carries
// no id_token_hint ends their session: without the hint nothing shows that
// the request comes from an application they signed in to, and a link or
// an image on any page could otherwise sign them out of everything
// (OpenID Connect RP-Initiated Logout 1.0, section 6). The confirmation
// posts the request back with the session's CSRF token. A request with a
// hint goes to zitadel, which checks it; so does one without a session,
// which has nothing to end.
func (p *Provider) confirmLogout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, authn.MaxFormBytes)
		if err := r.ParseForm(); err != nil {
			p.sessions.Fail(w, r, http.StatusBadRequest, "There is a problem with this sign-out link",
				"Go back to the application you were using and try again.")
			return
		}
		if r.Form.Get("id_token_hint") != "" {
			next.ServeHTTP(w, r)
			return
		}
		sess, ok, err := p.sessions.Current(r)
		if err != nil {
			p.unavailable(w, r, err)
			return
		}
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodPost {
			if sess.ValidCSRF(r) {
				next.ServeHTTP(w, r)
				return
			}
			p.sessions.Fail(w, r, http.StatusForbidden, "This form has expired", "Go back, reload the page and try again.")
			return
		}
		var hidden []templates.Hidden
		for _, k := range []string{"client_id", "post_logout_redirect_uri", "state", "ui_locales", "logout_hint"} {
			if v := r.Form.Get(k); v != "" {
				hidden = append(hidden, templates.Hidden{Name: k, Value: v})
			}
		}
		name := ""
		if id := r.Form.Get("client_id"); id != "" {
			if c, err := p.storage.dir.Client(r.Context(), id); err == nil {
				name = c.Name
			}
		}
		p.sessions.ConfirmLogout(w, r, sess, endSessionPath, hidden, name)
	})
}

// errorCatcher holds back a 4xx response so that a page can replace it;
// anything else is written through.
type errorCatcher struct {
	http.ResponseWriter
	decided bool
	status  int // the 4xx held back; 0 when none was
	body    bytes.Buffer
}

func (c *errorCatcher) WriteHeader(status int) {
	if c.decided {
		return
	}
	c.decided = true
	if status >= 400 && status < 500 {
		c.status = status
		for _, h := range []string{"Content-Type", "X-Content-Type-Options", "Content-Length"} {
			c.Header().Del(h)
		}
		return
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *errorCatcher) Write(b []byte) (int, error) {
	if !c.decided {
		c.WriteHeader(http.StatusOK)
	}
	if c.status != 0 {
		if c.body.Len() < 4096 {
			c.body.Write(b[:min(len(b), 4096-c.body.Len())])
		}
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

func (c *errorCatcher) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// Handler serves discovery, the protocol endpoints and the login glue.
func (p *Provider) Handler() http.Handler { return p.handler }

// Warm makes sure a signing key exists, so the first token request does
// not pay for key generation.
func (p *Provider) Warm(ctx context.Context) error {
	_, err := p.storage.keys.SigningKey(ctx)
	return err
}

// login is where the provider sends the browser for an auth request. A
// live session that satisfies the request (prompt, max_age, the hinted
// user) completes it at once (SSO); prompt=none without one answers
// login_required; otherwise the login ceremony runs and comes back here.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.URL.Query().Get("id")
	ar, err := p.storage.authRequest(ctx, id)
	if _, ok := err.(errNotFound); ok {
		p.sessions.Fail(w, r, http.StatusBadRequest, "This sign-in link has expired",
			"Go back to the application you were using and sign in again.")
		return
	} else if err != nil {
		p.unavailable(w, r, err)
		return
	}
	sess, ok, err := p.sessions.Current(r)
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
	wantsMFA := slices.Contains(ar.ACRValues, authn.ACRMFA)
	if ok && p.satisfies(sess, ar) && wantsMFA && sess.ACR != authn.ACRMFA {
		// Signed in with a password only, and the application asks for
		// more: step up with a second factor rather than refuse.
		if r.URL.Query().Get("after") != "" {
			p.sessions.Fail(w, r, http.StatusForbidden, "You could not be signed in",
				"This application needs a second way to confirm it’s you. Go back and sign in again.")
			return
		}
		p.sessions.StartLogin(w, r, authn.LoginOptions{Return: loginPath + "?id=" + ar.ID + "&after=1", StepUp: &sess})
		return
	}
	if ok && p.satisfies(sess, ar) {
		ar.UserID, ar.SessionID, ar.AuthTime, ar.AMR, ar.ACR, ar.IsDone = sess.UserID, sess.SID, sess.AuthTime, sess.AMR, sess.ACR, true
		if err := p.storage.saveAuthRequest(ctx, ar); err != nil {
			p.unavailable(w, r, err)
			return
		}
		p.storage.audit(ctx, "oidc.authorize", sess.UserID, sess.UserID, directory.OutcomeSuccess, map[string]string{"client_id": ar.ClientID})
		http.Redirect(w, r, op.AuthCallbackURL(p.op)(op.ContextWithIssuer(ctx, p.issuer), ar.ID), http.StatusFound)
		return
	}
	if slices.Contains(ar.Prompt, zoidc.PromptNone) {
		op.AuthRequestError(w, r, ar, zoidc.ErrLoginRequired(), p.op)
		return
	}
	if r.URL.Query().Get("after") != "" {
		// The ceremony ran and still no satisfying session: do not loop.
		p.sessions.Fail(w, r, http.StatusBadRequest, "You could not be signed in",
			"Go back to the application you were using and sign in again.")
		return
	}
	name := ""
	if c, err := p.storage.dir.Client(ctx, ar.ClientID); err == nil {
		name = c.Name
	}
	p.sessions.StartLogin(w, r, authn.LoginOptions{Return: loginPath + "?id=" + ar.ID + "&after=1", ClientName: name, RequireMFA: wantsMFA})
}

// satisfies reports whether sess may complete ar without a new sign-in.
func (p *Provider) satisfies(sess authn.Session, ar *authRequest) bool {
	if ar.HintUserID != "" && ar.HintUserID != sess.UserID {
		return false
	}
	if !sess.AuthTime.Before(ar.CreatedAt) {
		return true // signed in during this request: fresh enough for any prompt or max_age
	}
	if slices.Contains(ar.Prompt, zoidc.PromptLogin) {
		return false
	}
	// The provider turns prompt=login into max_age=0 as well.
	return ar.MaxAge == nil || p.now().Sub(sess.AuthTime) <= time.Duration(*ar.MaxAge)*time.Second
}

func (p *Provider) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	p.log.ErrorContext(r.Context(), "oidc login: store unavailable", "reason", err.Error())
	w.Header().Set("Retry-After", "30")
	p.sessions.Fail(w, r, http.StatusServiceUnavailable, "Sorry, there is a problem with the service",
		"Signing in is not working at the moment. Try again in a few minutes.")
}
