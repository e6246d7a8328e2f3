package authn

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/lanyard/lanyard/authn/mail"
	"github.com/lanyard/lanyard/authn/password"
	"github.com/lanyard/lanyard/authn/policy"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
	"github.com/lanyard/lanyard/directory/seal"
	"github.com/lanyard/lanyard/risk"
	"github.com/lanyard/lanyard/templates"
)

// Directory is what authn needs of the directory.
type Directory interface {
	UserByEmail(ctx context.Context, email string) (directory.User, error)
	User(ctx context.Context, id string) (directory.User, error)
	Credentials(ctx context.Context, userID string, t directory.CredentialType) ([]directory.Credential, error)
	PutCredential(ctx context.Context, c directory.Credential) error
	DeleteCredential(ctx context.Context, userID, id string) error
	Memberships(ctx context.Context, userID string) ([]directory.Membership, error)
	OrgPolicy(ctx context.Context, orgID string) (directory.OrgPolicy, error)
	AppendAudit(ctx context.Context, ev directory.AuditEvent) (directory.AuditEvent, error)
	AuditEventsFor(ctx context.Context, target string, since time.Time, limit int) ([]directory.AuditEvent, error)
	RevokeRefreshTokensByUser(ctx context.Context, userID, exceptSessionID string, now time.Time) (int, error)
	InTx(ctx context.Context, fn func(directory.Store) error) error
	AccountUnlockedAt(ctx context.Context, account string) (time.Time, error)
}

// Config holds authn's settings.
type Config struct {
	// Secure marks cookies Secure and gives them the __Host- prefix; set
	// when the issuer is https.
	Secure      bool
	Sessions    SessionPolicy
	CeremonyTTL time.Duration
	// Lockout limits guessing; the zero value means DefaultLockout.
	Lockout LockoutPolicy
	// RequestID returns the ID the server gave a request, shown on error
	// pages as a reference.
	RequestID func(context.Context) string
	// Issuer is the public base URL, for links in emails.
	Issuer string
	// ResetTTL is how long a password-reset link works.
	ResetTTL time.Duration
	// Keys seals TOTP seeds.
	Keys *seal.Keyring
	// Attestation is the WebAuthn attestation preference; "" means none.
	Attestation string
	// Risk, when set, assesses every password attempt (authn/risk.go);
	// Devices then signs the device cookie it reads, RiskKeys (the
	// current first) sign "it wasn't me" links, and RiskDirectory keeps
	// risk events.
	Risk          *risk.Engine
	Devices       *risk.Devices
	RiskKeys      [][]byte
	RiskDirectory RiskDirectory
	// RiskDigest is the period of administrators' risk digests;
	// 0 means DefaultRiskDigest.
	RiskDigest time.Duration
}

// Authenticator runs the login ceremony and the sessions. It is safe for
// concurrent use and keeps no state of its own: any instance continues any
// ceremony.
type Authenticator struct {
	cfg       Config
	dir       Directory
	passwords *Passwords
	mail      mail.Sender
	eph       ephemeral.Store
	hasher    *password.Hasher
	pages     *templates.Pages
	sessions  *sessionStore
	onEnd     []EndedHook
	secure    bool
	now       func() time.Time
	log       *slog.Logger
}

// New returns an Authenticator. cookieKeys are HMAC keys for the session
// cookie, the current one first (seal.Keyring.Derive). passwords sets
// passwords under the policy; mailer tells users about their account.
func New(cfg Config, dir Directory, eph ephemeral.Store, hasher *password.Hasher, passwords *Passwords, mailer mail.Sender, pages *templates.Pages, cookieKeys [][]byte, now func() time.Time, log *slog.Logger) *Authenticator {
	if cfg.Lockout == (LockoutPolicy{}) {
		cfg.Lockout = DefaultLockout
	}
	if cfg.ResetTTL == 0 {
		cfg.ResetTTL = 30 * time.Minute
	}
	if cfg.RequestID == nil {
		cfg.RequestID = func(context.Context) string { return "" }
	}
	return &Authenticator{
		cfg: cfg, dir: dir, eph: eph, hasher: hasher, passwords: passwords, mail: mailer, pages: pages, secure: cfg.Secure, now: now, log: log,
		sessions: newSessionStore(eph, cookieKeys, cfg.Secure, cfg.Sessions, now),
	}
}

// Handler returns the browser-facing pages: /login, /logout, /logged-out,
// /account and the static assets. Every response carries strict security
// headers, and state-changing requests from other origins are refused.
func (a *Authenticator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.showLogin)
	mux.HandleFunc("POST /login", a.batchWrites(a.submitLogin))
	mux.HandleFunc("GET /logout", a.showLogout)
	mux.HandleFunc("POST /logout", a.submitLogout)
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, r *http.Request) {
		a.render(w, r, http.StatusOK, templates.LoggedOut{SignInURL: "/account"})
	})
	mux.HandleFunc("GET /account", a.showAccount)
	mux.HandleFunc("GET /account/password", a.showChangePassword)
	mux.HandleFunc("POST /account/password", a.submitChangePassword)
	mux.HandleFunc("GET /password/forgot", a.showForgot)
	mux.HandleFunc("POST /password/forgot", a.submitForgot)
	mux.HandleFunc("GET /password/reset", a.showReset)
	mux.HandleFunc("POST /password/reset", a.submitReset)
	mux.HandleFunc("POST /account/recovery-codes", a.newRecoveryCodes)
	mux.HandleFunc("POST /account/recovery-codes/saved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
	})
	a.webauthnRoutes(mux)
	a.riskRoutes(mux)
	mux.Handle("GET "+templates.StaticPrefix, templates.Static())
	return SecurityHeaders(http.NewCrossOriginProtection().Handler(mux))
}

// SecurityHeaders sets the headers every page of Lanyard carries: a CSP
// with no inline script, no framing, no caching of pages, no referrer.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w.Header(), !strings.HasPrefix(r.URL.Path, templates.StaticPrefix))
		next.ServeHTTP(w, r)
	})
}

// setPageHeaders sets what SecurityHeaders sets; noStore forbids caching
// (every page but the static files).
func setPageHeaders(h http.Header, noStore bool) {
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if noStore {
		h.Set("Cache-Control", "no-store")
	}
}

// Current returns the browser's live session. ok is false when there is
// none; err means the session store cannot answer.
func (a *Authenticator) Current(r *http.Request) (Session, bool, error) {
	return a.sessions.current(r.Context(), r)
}

// OnSessionEnd registers h to run when a user signs out on Lanyard's page.
// Call it while wiring, before serving.
func (a *Authenticator) OnSessionEnd(h EndedHook) { a.onEnd = append(a.onEnd, h) }

// SessionID returns the session ID the browser presents, without checking
// it (for logout, which ends it whatever its state).
func (a *Authenticator) SessionID(r *http.Request) string { return a.sessions.id(r) }

// EndSession ends the session whose cookie carries id, on every instance,
// and returns it. ok is false when it had already ended.
func (a *Authenticator) EndSession(ctx context.Context, id string) (sess Session, ok bool, err error) {
	sess, err = a.sessions.end(ctx, id)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return Session{}, false, nil
	}
	return sess, err == nil, err
}

// EndedHook, when set, is called with every session a user ends by signing
// out on Lanyard's own page, so protocols can revoke what it issued.
type EndedHook func(ctx context.Context, s Session)

func (a *Authenticator) render(w http.ResponseWriter, r *http.Request, status int, p templates.Page) {
	if err := a.pages.Render(w, status, p); err != nil { // Render has answered 500
		a.log.ErrorContext(r.Context(), "render page", "request_id", a.cfg.RequestID(r.Context()), "reason", err.Error())
	}
}

// Fail shows an error page. message is for the user; causes go to the log.
func (a *Authenticator) Fail(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	a.render(w, r, status, templates.Error{Title: title, Message: message, RequestID: a.cfg.RequestID(r.Context())})
}

// unavailable answers 503 when a store cannot be reached.
func (a *Authenticator) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	a.log.ErrorContext(r.Context(), "store unavailable", "request_id", a.cfg.RequestID(r.Context()), "reason", err.Error())
	w.Header().Set("Retry-After", "30")
	a.Fail(w, r, http.StatusServiceUnavailable, "Sorry, there is a problem with the service",
		"Signing in is not working at the moment. Try again in a few minutes.")
}

func (a *Authenticator) expired(w http.ResponseWriter, r *http.Request) {
	a.Fail(w, r, http.StatusBadRequest, "This sign-in page has expired",
		"Go back to the application you were using and sign in again.")
}

// clientIP is the address the request came from, for the audit log and
// lockout. The server has already replaced RemoteAddr with the client's
// address when the request came through a trusted proxy.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// place names where an address is, as far as the risk engine's GeoIP
// database knows: "Leeds, GB", or "Unknown".
func (a *Authenticator) place(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil || a.cfg.Risk == nil {
		return "Unknown"
	}
	if p := a.cfg.Risk.Geo().Lookup(addr).String(); p != "" {
		return p
	}
	return "Unknown"
}

func loginOutcome(e directory.AuditEvent) string {
	switch {
	case e.Outcome == directory.OutcomeSuccess:
		return "Signed in"
	case e.Detail["reason"] == "locked":
		return "Refused: too many attempts"
	case e.Detail["reason"] == "disabled":
		return "Refused: account disabled"
	default:
		return "Wrong password"
	}
}

func (a *Authenticator) audit(ctx context.Context, r *http.Request, action, userID, outcome string, detail map[string]string) {
	if strings.HasPrefix(action, "login.") {
		if detail == nil {
			detail = map[string]string{}
		}
		detail["device"] = deviceName(r.UserAgent())
	}
	ev := directory.AuditEvent{
		Time: a.now(), Actor: userID, Action: action, Target: userID, IP: clientIP(r), Outcome: outcome, Detail: detail,
	}
	if lw := writesFrom(ctx); lw != nil {
		lw.audits = append(lw.audits, ev)
		return
	}
	if _, err := a.dir.AppendAudit(ctx, ev); err != nil {
		a.log.ErrorContext(ctx, "audit append failed", "action", action, "reason", err.Error())
	}
}

func (a *Authenticator) showLogin(w http.ResponseWriter, r *http.Request) {
	c, err := a.loadCeremony(r, r.URL.Query().Get("c"))
	if errors.Is(err, errCeremonyGone) {
		a.expired(w, r)
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if r.URL.Query().Get("step") == stepIdentify {
		c.Step = stepIdentify // "Not you?": shown only; the ceremony moves on when the form is sent
	}
	a.showStep(w, r, c, http.StatusOK, nil)
}

func (a *Authenticator) showStep(w http.ResponseWriter, r *http.Request, c *ceremony, status int, errs []templates.FieldError) {
	switch c.Step {
	case stepMFA, stepMFAEnrol:
		a.showMFA(w, r, c, status, errs)
	case stepNewPassword:
		a.showNewPassword(w, r, c, status, errs)
	case stepPassword:
		a.render(w, r, status, templates.LoginPassword{
			Action: "/login", CSRFToken: c.CSRF, Ceremony: c.ID, Email: c.Email, ClientName: c.ClientName,
			NotYouURL: "/login?c=" + c.ID + "&step=identify", ForgotPasswordURL: "/password/forgot", Errors: errs,
		})
	default:
		a.render(w, r, status, templates.LoginIdentify{
			Action: "/login", CSRFToken: c.CSRF, Ceremony: c.ID, Email: c.Email, ClientName: c.ClientName, Errors: errs,
		})
	}
}

// MaxFormBytes bounds a login form.
const MaxFormBytes = 16 << 10

func (a *Authenticator) submitLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			a.Fail(w, r, http.StatusRequestEntityTooLarge, "Form too large", "Go back and try again.")
			return
		}
		a.Fail(w, r, http.StatusBadRequest, "Form not valid", "Go back and try again.")
		return
	}
	c, err := a.loadCeremony(r, r.PostForm.Get("ceremony"))
	if errors.Is(err, errCeremonyGone) {
		a.expired(w, r)
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if !validCSRF(c, r) {
		a.Fail(w, r, http.StatusForbidden, "This form has expired", "Go back, reload the page and try again.")
		return
	}
	if _, ok := r.PostForm["saved_codes"]; ok {
		if c.Step != stepMFACodes || c.UserID == "" {
			a.expired(w, r)
			return
		}
		a.advance(w, r, c)
		return
	}
	if _, ok := r.PostForm["code"]; ok {
		if (c.Step != stepMFA && c.Step != stepMFAEnrol) || c.UserID == "" {
			a.expired(w, r)
			return
		}
		a.submitMFA(w, r, c)
		return
	}
	if _, ok := r.PostForm["new_password"]; ok {
		if c.Step != stepNewPassword || c.UserID == "" {
			a.expired(w, r)
			return
		}
		a.submitNewPassword(w, r, c)
		return
	}
	if _, ok := r.PostForm["password"]; !ok {
		c.Step, c.UserID = stepIdentify, "" // the identify form, also reached by "Not you?"
	}
	var errs []templates.FieldError
	switch c.Step {
	case stepIdentify:
		errs = a.identify(c, r.PostForm.Get("email"))
	case stepNewPassword, stepMFA, stepMFAEnrol, stepMFACodes:
		a.expired(w, r)
		return
	case stepPassword:
		var done bool
		done, errs, err = a.checkPassword(r, c, r.PostForm.Get("password"))
		if err != nil {
			a.unavailable(w, r, err)
			return
		}
		if c.Risk != nil && c.Risk.Blocked {
			a.showRiskBlocked(w, r, c)
			return
		}
		if done {
			a.advance(w, r, c)
			return
		}
	default:
		a.expired(w, r)
		return
	}
	if errs == nil {
		c.Step = c.next()
	}
	if err := a.saveCeremony(r.Context(), c); err != nil {
		a.unavailable(w, r, err)
		return
	}
	if errs != nil {
		a.showStep(w, r, c, http.StatusUnprocessableEntity, errs)
		return
	}
	http.Redirect(w, r, "/login?c="+c.ID, http.StatusSeeOther)
}

// identify takes the email. Whether an account exists is not checked
// here, so the page answers alike for every address.
func (a *Authenticator) identify(c *ceremony, email string) []templates.FieldError {
	e, err := directory.NormaliseEmail(email)
	if err != nil {
		return []templates.FieldError{{Field: "email", Message: "Enter an email address in the correct format, like name@example.nhs.uk"}}
	}
	c.Email = e
	return nil
}

var errBadCredentials = []templates.FieldError{{Field: "password", Message: "Your email address or password is not right. Check them and try again."}}

// checkPassword verifies the password for the ceremony's email. An unknown
// email, a user without a password and a wrong password all fail with the
// same message after the same argon2id work, and count towards the same
// lockout. err is a store failure.
func (a *Authenticator) checkPassword(r *http.Request, c *ceremony, pw string) (bool, []templates.FieldError, error) {
	ctx := r.Context()
	if pw == "" {
		return false, []templates.FieldError{{Field: "password", Message: "Enter your password"}}, nil
	}
	at := attempt{account: accountKey(c.Email), ip: clientIP(r)}
	if ck, err := r.Cookie(a.deviceCookieName()); err == nil {
		at.device = ck.Value
	}
	u, err := a.dir.UserByEmail(ctx, c.Email)
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		return false, nil, err
	}
	class, err := a.class(ctx, u.ID, at)
	if err != nil {
		return false, nil, err
	}
	a.assessRisk(ctx, r, c, u) // before the password is checked
	if until, err := a.lockedUntil(ctx, at, class); err != nil {
		return false, nil, err
	} else if a.now().Before(until) {
		a.audit(ctx, r, "login.password", u.ID, directory.OutcomeDenied, map[string]string{"reason": "locked", "class": classKind(class)})
		return false, []templates.FieldError{{Field: "password", Message: lockedMessage(until, a.now())}}, nil
	}
	ok, reason, err := a.verify(ctx, u, pw)
	if err != nil {
		return false, nil, err
	}
	if !ok {
		a.riskWrongPassword(ctx, r, c, u)
		c.Failures++
		a.audit(ctx, r, "login.password", u.ID, directory.OutcomeFailure, map[string]string{"reason": reason, "class": classKind(class)})
		until, err := a.failed(ctx, at, class)
		if err != nil {
			return false, nil, err
		}
		if !until.IsZero() {
			a.audit(ctx, r, "login.lockout", u.ID, directory.OutcomeDenied, map[string]string{"class": classKind(class), "until": until.Format(time.RFC3339)})
			return false, []templates.FieldError{{Field: "password", Message: lockedMessage(until, a.now())}}, nil
		}
		return false, errBadCredentials, nil
	}
	if u.Status != directory.UserActive {
		a.audit(ctx, r, "login.password", u.ID, directory.OutcomeDenied, map[string]string{"reason": "disabled"})
		return false, []templates.FieldError{{Field: "", Message: "Your account has been disabled. Contact your organisation's administrator."}}, nil
	}
	if err := a.succeeded(ctx, u.ID, at, class); err != nil {
		return false, nil, err
	}
	if err := a.riskRightPassword(ctx, r, c, u); err != nil {
		return false, nil, err
	} else if c.Risk != nil && c.Risk.Blocked {
		return false, nil, nil
	}
	c.UserID, c.AMR = u.ID, append(c.AMR, AMRPassword)
	return true, nil, nil
}

func classKind(class string) string {
	k, _, _ := strings.Cut(class, ":")
	return k
}

// verify checks pw against the user's password, spending one argon2id
// verification whatever the case, and rehashes it when the parameters
// changed. u is the zero User for an unknown email.
func (a *Authenticator) verify(ctx context.Context, u directory.User, pw string) (ok bool, reason string, err error) {
	pw = policy.Normalise(pw) // passwords are hashed in their NFKC form
	if u.ID == "" {
		a.hasher.VerifyDummy(pw)
		return false, "unknown_user", nil
	}
	creds, err := a.dir.Credentials(ctx, u.ID, directory.CredentialPassword)
	if err != nil {
		return false, "", err
	}
	if len(creds) == 0 {
		a.hasher.VerifyDummy(pw)
		return false, "no_password", nil
	}
	cred := creds[len(creds)-1]
	ok, rehash, err := a.hasher.Verify(string(cred.Secret), pw)
	if err != nil {
		a.log.ErrorContext(ctx, "stored password hash unusable", "user_id", u.ID, "reason", err.Error())
	}
	if !ok {
		return false, "wrong_password", nil
	}
	cred.LastUsedAt = a.now()
	if rehash {
		if h, err := a.hasher.Hash(pw); err == nil {
			cred.Secret = []byte(h)
		}
	}
	if lw := writesFrom(ctx); lw != nil {
		lw.cred = &cred
		return true, "", nil
	}
	return true, "", a.dir.PutCredential(ctx, cred)
}

// finish starts the session the ceremony earned and returns to the
// protocol that asked for it.
func (a *Authenticator) finish(w http.ResponseWriter, r *http.Request, c *ceremony) {
	ctx := r.Context()
	acr := ACRPassword
	if hasMFA(c.AMR) {
		acr = ACRMFA
	}
	sess, err := a.sessions.start(ctx, w, r, c.UserID, c.AMR, acr)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	a.eph.Delete(ctx, keyCeremony+c.ID)
	http.SetCookie(w, &http.Cookie{Name: a.bindingCookieName(), Path: "/", MaxAge: -1, Secure: a.secure, HttpOnly: true})
	a.audit(ctx, r, "login.password", sess.UserID, directory.OutcomeSuccess, map[string]string{"amr": strings.Join(sess.AMR, " ")})
	a.riskSignedIn(ctx, r, c)
	http.Redirect(w, r, c.Return, http.StatusSeeOther)
}

func (a *Authenticator) showAccount(w http.ResponseWriter, r *http.Request) {
	sess, ok, err := a.Current(r)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if !ok {
		a.StartLogin(w, r, LoginOptions{Return: "/account"})
		return
	}
	u, err := a.dir.User(r.Context(), sess.UserID)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	page := templates.Account{Name: u.Name(), Email: u.Email, SignOutAction: "/logout", CSRFToken: sess.CSRF, ChangePasswordURL: "/account/password"}
	if a.passwords != nil {
		st, err := a.passwords.Status(r.Context(), u)
		if err != nil {
			a.unavailable(w, r, err)
			return
		}
		if !st.Expires.IsZero() {
			page.PasswordExpires, page.PasswordWarning = st.Expires.UTC().Format("2 January 2006"), st.Warn
		}
	}
	evs, err := a.dir.AuditEventsFor(r.Context(), u.ID, a.now().Add(-7*24*time.Hour), 50)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	for _, e := range evs {
		if e.Action != "login.password" {
			continue
		}
		page.RecentLogins = append(page.RecentLogins, templates.LoginRecord{
			Time: e.Time.UTC().Format("2 Jan 2006 15:04 MST"), IP: e.IP, Place: a.place(e.IP), Device: e.Detail["device"],
			Outcome: loginOutcome(e),
		})
	}
	a.render(w, r, http.StatusOK, page)
}

func (a *Authenticator) showLogout(w http.ResponseWriter, r *http.Request) {
	sess, ok, err := a.Current(r)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if !ok {
		http.Redirect(w, r, "/logged-out", http.StatusSeeOther)
		return
	}
	a.ConfirmLogout(w, r, sess, "/logout", nil, "")
}

// ConfirmLogout shows the "sign out?" page of another endpoint (an
// RP-initiated logout without an id_token_hint): its form posts the
// session's CSRF token and hidden to action. clientName, when not empty,
// names the application that asked.
func (a *Authenticator) ConfirmLogout(w http.ResponseWriter, r *http.Request, sess Session, action string, hidden []templates.Hidden, clientName string) {
	a.render(w, r, http.StatusOK, templates.LogoutConfirm{Action: action, CSRFToken: sess.CSRF, Hidden: hidden, ClientName: clientName})
}

func (a *Authenticator) submitLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	r.ParseForm()
	sess, ok, err := a.Current(r)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if ok {
		if !sess.ValidCSRF(r) {
			a.Fail(w, r, http.StatusForbidden, "This form has expired", "Go back, reload the page and try again.")
			return
		}
		if _, err := a.sessions.end(r.Context(), sess.ID); err != nil && !errors.Is(err, ephemeral.ErrNotFound) {
			a.unavailable(w, r, err)
			return
		}
		for _, h := range a.onEnd {
			h(r.Context(), sess)
		}
		a.audit(r.Context(), r, "session.logout", sess.UserID, directory.OutcomeSuccess, nil)
	}
	a.sessions.clearCookie(w, r)
	next := "/logged-out"
	if ok {
		next = a.FrontChannelLogout(r.Context(), sess, next) // SAML applications hear of it
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}
