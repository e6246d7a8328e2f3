package authn

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/lanyard/lanyard/authn/mail"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
	"github.com/lanyard/lanyard/templates"
)

const (
	keyReset        = "authn:reset:" // + HashToken(token) -> resetGrant
	stepNewPassword = "new-password" // the password expired: choose a new one before going on
)

const passwordHint = "Use at least 10 characters. Three random words work well, like ‘river lamp orchard’."

// newPasswordErrors checks the two new-password fields and, through the
// policy, the password; field errors are for the form.
func newPasswordErrors(pw, confirm string, refused error) []templates.FieldError {
	var errs []templates.FieldError
	var pe *PolicyError
	switch {
	case pw == "":
		errs = append(errs, templates.FieldError{Field: "new_password", Message: "Enter a new password"})
	case errors.As(refused, &pe):
		for _, v := range pe.Violations {
			errs = append(errs, templates.FieldError{Field: "new_password", Message: v.Message})
		}
	}
	if pw != "" && pw != confirm {
		errs = append(errs, templates.FieldError{Field: "confirm_password", Message: "The passwords do not match. Type your new password again"})
	}
	return errs
}

// setPasswordFromForm sets the user's password from the new_password and
// confirm_password fields. It returns field errors for the user, or err
// when a store failed.
func (a *Authenticator) setPasswordFromForm(r *http.Request, u directory.User, source string) ([]templates.FieldError, error) {
	pw, confirm := r.PostForm.Get("new_password"), r.PostForm.Get("confirm_password")
	if errs := newPasswordErrors(pw, confirm, nil); errs != nil {
		return errs, nil
	}
	err := a.passwords.Set(r.Context(), u, pw, source, directory.AuditEvent{Actor: u.ID, IP: clientIP(r)})
	var pe *PolicyError
	if errors.As(err, &pe) {
		return newPasswordErrors(pw, confirm, err), nil
	}
	if err != nil {
		return nil, err
	}
	a.notify(r.Context(), u, "Your NHS directory password has been changed",
		fmt.Sprintf("Hello %s,\n\nThe password for your NHS directory account (%s) was changed on %s from the address %s.\n\n"+
			"If you did not do this, reset your password straight away at %s/password/forgot and tell your organisation's administrator.\n",
			u.Name(), u.Email, a.now().UTC().Format("2 January 2006 at 15:04 MST"), clientIP(r), a.cfg.Issuer))
	return nil, nil
}

// notify emails the user; a failure is logged, never shown.
func (a *Authenticator) notify(ctx context.Context, u directory.User, subject, body string) {
	if a.mail == nil {
		return
	}
	if err := a.mail.Send(ctx, mail.Message{To: u.Email, Subject: subject, Body: body}); err != nil {
		a.log.ErrorContext(ctx, "queue mail", "user_id", u.ID, "reason", err.Error())
	}
}

// showNewPassword is the ceremony step for an expired password.
func (a *Authenticator) showNewPassword(w http.ResponseWriter, r *http.Request, c *ceremony, status int, errs []templates.FieldError) {
	a.render(w, r, status, templates.SetPassword{
		Action: "/login", CSRFToken: c.CSRF, Hidden: []templates.Hidden{{Name: "ceremony", Value: c.ID}},
		Heading: "Your password has expired", Intro: []string{"Choose a new password to carry on signing in."},
		Email: c.Email, Hint: passwordHint, Button: "Save and continue", Errors: errs,
	})
}

// expired reports whether the user's password has expired.
func (a *Authenticator) passwordExpired(ctx context.Context, userID string) (bool, error) {
	if a.passwords == nil {
		return false, nil
	}
	u, err := a.dir.User(ctx, userID)
	if err != nil {
		return false, err
	}
	st, err := a.passwords.Status(ctx, u)
	return st.Expired, err
}

// submitNewPassword handles the expired-password step.
func (a *Authenticator) submitNewPassword(w http.ResponseWriter, r *http.Request, c *ceremony) {
	u, err := a.dir.User(r.Context(), c.UserID)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	errs, err := a.setPasswordFromForm(r, u, directory.PasswordSourceSelf)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if errs != nil {
		a.showNewPassword(w, r, c, http.StatusUnprocessableEntity, errs)
		return
	}
	c.PasswordFresh = true
	a.advance(w, r, c)
}

// showChangePassword is /account/password: a signed-in user changes their
// password, giving the current one.
func (a *Authenticator) showChangePassword(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := a.signedIn(w, r, "/account/password")
	if !ok {
		return
	}
	a.renderChange(w, r, sess, u, http.StatusOK, nil)
}

func (a *Authenticator) renderChange(w http.ResponseWriter, r *http.Request, sess Session, u directory.User, status int, errs []templates.FieldError) {
	a.render(w, r, status, templates.SetPassword{
		Action: "/account/password", CSRFToken: sess.CSRF, Heading: "Change your password", Email: u.Email,
		AskCurrent: true, Hint: passwordHint, Button: "Change password", Errors: errs,
	})
}

func (a *Authenticator) submitChangePassword(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		a.Fail(w, r, http.StatusBadRequest, "Form not valid", "Go back and try again.")
		return
	}
	sess, u, ok := a.signedIn(w, r, "/account/password")
	if !ok {
		return
	}
	if !sess.ValidCSRF(r) {
		a.Fail(w, r, http.StatusForbidden, "This form has expired", "Go back, reload the page and try again.")
		return
	}
	good, _, err := a.verify(r.Context(), u, r.PostForm.Get("current_password"))
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if !good {
		a.audit(r.Context(), r, "password.change", u.ID, directory.OutcomeFailure, map[string]string{"reason": "wrong_current_password"})
		a.renderChange(w, r, sess, u, http.StatusUnprocessableEntity, []templates.FieldError{{Field: "current_password", Message: "Your current password is not right"}})
		return
	}
	errs, err := a.setPasswordFromForm(r, u, directory.PasswordSourceSelf)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if errs != nil {
		a.renderChange(w, r, sess, u, http.StatusUnprocessableEntity, errs)
		return
	}
	// Signed in elsewhere with the old password: signed out there.
	if err := a.EndUserSessions(r.Context(), r, u.ID, sess); err != nil {
		a.log.ErrorContext(r.Context(), "end other sessions after a password change", "user_id", u.ID, "reason", err.Error())
	}
	a.render(w, r, http.StatusOK, templates.Notice{Title: "Your password has been changed",
		Paragraphs: []string{"Use your new password the next time you sign in. We have sent an email to " + u.Email + " to confirm the change."},
		Link:       templates.Link{Text: "Back to your account", URL: "/account"}})
}

// signedIn returns the live session and its user, or starts a sign-in
// returning to back (and reports false).
func (a *Authenticator) signedIn(w http.ResponseWriter, r *http.Request, back string) (Session, directory.User, bool) {
	sess, ok, err := a.Current(r)
	if err != nil {
		a.unavailable(w, r, err)
		return Session{}, directory.User{}, false
	}
	if !ok {
		a.StartLogin(w, r, LoginOptions{Return: back})
		return Session{}, directory.User{}, false
	}
	u, err := a.dir.User(r.Context(), sess.UserID)
	if err != nil {
		a.unavailable(w, r, err)
		return Session{}, directory.User{}, false
	}
	return sess, u, true
}

// Forgotten passwords. The form is protected by a double-submit cookie,
// as there is no session yet.

func (a *Authenticator) csrfCookieName() string {
	if a.secure {
		return "__Host-lanyard-csrf"
	}
	return "lanyard-csrf"
}

func (a *Authenticator) anonCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(a.csrfCookieName()); err == nil && len(c.Value) == 26 {
		return c.Value
	}
	tok := rand.Text()
	http.SetCookie(w, &http.Cookie{Name: a.csrfCookieName(), Value: tok, Path: "/", HttpOnly: true, Secure: a.secure, SameSite: http.SameSiteStrictMode})
	return tok
}

func (a *Authenticator) anonCSRFValid(r *http.Request) bool {
	c, err := r.Cookie(a.csrfCookieName())
	got := r.PostForm.Get("csrf_token")
	return err == nil && got != "" && subtle.ConstantTimeCompare([]byte(c.Value), []byte(got)) == 1
}

func (a *Authenticator) showForgot(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, templates.ForgotPassword{Action: "/password/forgot", CSRFToken: a.anonCSRF(w, r)})
}

// resetGrant is what a reset link's token stands for.
type resetGrant struct {
	UserID   string    `json:"user_id"`
	EmailKey string    `json:"email_key"`
	Expires  time.Time `json:"expires"`
}

// submitForgot sends a reset link if the address belongs to an active
// account, and says the same thing whether or not it does.
func (a *Authenticator) submitForgot(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil || !a.anonCSRFValid(r) {
		a.Fail(w, r, http.StatusForbidden, "This form has expired", "Go back, reload the page and try again.")
		return
	}
	email, err := directory.NormaliseEmail(r.PostForm.Get("email"))
	if err != nil {
		a.render(w, r, http.StatusUnprocessableEntity, templates.ForgotPassword{Action: "/password/forgot", CSRFToken: a.anonCSRF(w, r),
			Email: r.PostForm.Get("email"), Errors: []templates.FieldError{{Field: "email", Message: "Enter an email address in the correct format, like name@example.nhs.uk"}}})
		return
	}
	ctx := r.Context()
	u, err := a.dir.UserByEmail(ctx, email)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		a.audit(ctx, r, "password.reset_request", "", directory.OutcomeFailure, map[string]string{"reason": "unknown_user"})
	case err != nil:
		a.unavailable(w, r, err)
		return
	case u.Status != directory.UserActive:
		a.audit(ctx, r, "password.reset_request", u.ID, directory.OutcomeDenied, map[string]string{"reason": "disabled"})
	default:
		token := rand.Text() + rand.Text()
		g := resetGrant{UserID: u.ID, EmailKey: directory.EmailKey(u.Email), Expires: a.now().Add(a.cfg.ResetTTL)}
		b, _ := json.Marshal(g)
		if err := a.eph.Put(ctx, keyReset+directory.HashToken(token), b, g.Expires, a.now()); err != nil {
			a.unavailable(w, r, err)
			return
		}
		link := a.cfg.Issuer + "/password/reset?" + url.Values{"token": {token}}.Encode()
		a.notify(ctx, u, "Reset your NHS directory password",
			fmt.Sprintf("Hello %s,\n\nSomeone asked to reset the password for your NHS directory account (%s). To choose a new password, open this link within %d minutes:\n\n%s\n\n"+
				"The link works once. If you did not ask for this, ignore this email: your password has not changed.\n",
				u.Name(), u.Email, int(a.cfg.ResetTTL.Minutes()), link))
		a.audit(ctx, r, "password.reset_request", u.ID, directory.OutcomeSuccess, nil)
	}
	a.render(w, r, http.StatusOK, templates.Notice{Title: "Check your email",
		Paragraphs: []string{"If " + email + " belongs to an account, we have sent it a link to reset the password. The link works once, for " +
			fmt.Sprint(int(a.cfg.ResetTTL.Minutes())) + " minutes.", "If no email arrives, check the address and your junk folder, or ask your organisation's administrator."},
		Link: templates.Link{Text: "Back to sign in", URL: "/account"}})
}

func (a *Authenticator) resetLinkGone(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusBadRequest, templates.Notice{Title: "This link has expired or has already been used",
		Paragraphs: []string{"Reset links work once, for " + fmt.Sprint(int(a.cfg.ResetTTL.Minutes())) + " minutes. Ask for a new one."},
		Link:       templates.Link{Text: "Reset your password", URL: "/password/forgot"}})
}

func (a *Authenticator) loadReset(ctx context.Context, token string) (resetGrant, directory.User, error) {
	if token == "" || len(token) > 128 {
		return resetGrant{}, directory.User{}, ephemeral.ErrNotFound
	}
	b, err := a.eph.Get(ctx, keyReset+directory.HashToken(token), a.now())
	if err != nil {
		return resetGrant{}, directory.User{}, err
	}
	var g resetGrant
	if err := json.Unmarshal(b, &g); err != nil {
		return resetGrant{}, directory.User{}, err
	}
	u, err := a.dir.User(ctx, g.UserID)
	if errors.Is(err, directory.ErrNotFound) || (err == nil && (directory.EmailKey(u.Email) != g.EmailKey || u.Status != directory.UserActive)) {
		return resetGrant{}, directory.User{}, ephemeral.ErrNotFound // the account changed since the link was sent
	}
	return g, u, err
}

func (a *Authenticator) renderReset(w http.ResponseWriter, r *http.Request, token string, u directory.User, status int, errs []templates.FieldError) {
	a.render(w, r, status, templates.SetPassword{
		Action: "/password/reset", CSRFToken: a.anonCSRF(w, r), Hidden: []templates.Hidden{{Name: "token", Value: token}},
		Heading: "Choose a new password", Email: u.Email, Hint: passwordHint, Button: "Reset password", Errors: errs,
	})
}

func (a *Authenticator) showReset(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	_, u, err := a.loadReset(r.Context(), token)
	if errors.Is(err, ephemeral.ErrNotFound) {
		a.resetLinkGone(w, r)
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	w.Header().Set("Referrer-Policy", "no-referrer")
	a.renderReset(w, r, token, u, http.StatusOK, nil)
}

// submitReset takes the link's token (once, atomically), sets the new
// password, lifts any lockout and tells the user by email. A refused
// password puts the token back so the user can try another.
func (a *Authenticator) submitReset(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil || !a.anonCSRFValid(r) {
		a.Fail(w, r, http.StatusForbidden, "This form has expired", "Go back, reload the page and try again.")
		return
	}
	ctx, token := r.Context(), r.PostForm.Get("token")
	g, u, err := a.loadReset(ctx, token)
	if errors.Is(err, ephemeral.ErrNotFound) {
		a.resetLinkGone(w, r)
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	pw, confirm := r.PostForm.Get("new_password"), r.PostForm.Get("confirm_password")
	if errs := newPasswordErrors(pw, confirm, nil); errs != nil {
		a.renderReset(w, r, token, u, http.StatusUnprocessableEntity, errs)
		return
	}
	raw, err := a.eph.Take(ctx, keyReset+directory.HashToken(token), a.now())
	if errors.Is(err, ephemeral.ErrNotFound) {
		a.resetLinkGone(w, r) // used meanwhile
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	err = a.passwords.Set(ctx, u, pw, directory.PasswordSourceReset, directory.AuditEvent{Actor: u.ID, IP: clientIP(r)})
	var pe *PolicyError
	if errors.As(err, &pe) {
		if err := a.eph.Put(ctx, keyReset+directory.HashToken(token), raw, g.Expires, a.now()); err != nil {
			a.unavailable(w, r, err)
			return
		}
		a.renderReset(w, r, token, u, http.StatusUnprocessableEntity, newPasswordErrors(pw, confirm, err))
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if err := a.Unlock(ctx, u.Email); err != nil {
		a.log.ErrorContext(ctx, "unlock after reset", "user_id", u.ID, "reason", err.Error())
	}
	// Whoever knew the old password is signed out everywhere.
	if err := a.EndUserSessions(ctx, r, u.ID, Session{}); err != nil {
		a.log.ErrorContext(ctx, "end sessions after reset", "user_id", u.ID, "reason", err.Error())
	}
	a.notify(ctx, u, "Your NHS directory password has been reset",
		fmt.Sprintf("Hello %s,\n\nThe password for your NHS directory account (%s) was reset on %s using a link sent to this address.\n\n"+
			"If you did not do this, tell your organisation's administrator straight away.\n",
			u.Name(), u.Email, a.now().UTC().Format("2 January 2006 at 15:04 MST")))
	a.render(w, r, http.StatusOK, templates.Notice{Title: "Your password has been reset",
		Paragraphs: []string{"You can now sign in with your new password."},
		Link:       templates.Link{Text: "Sign in", URL: "/account"}})
}
