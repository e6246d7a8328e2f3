package authn

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/templates"
)

// Authentication methods (RFC 8176) for second factors.
const (
	AMROTP  = "otp"  // a one-time code: TOTP or a recovery code
	AMRHWK  = "hwk"  // a hardware-bound key: a security key
	AMRSWK  = "swk"  // a software-bound key: a platform or synced passkey
	AMRUser = "user" // user verification (PIN or biometric) on the authenticator
	AMRMFA  = "mfa"  // more than one factor
)

// Ceremony steps for the second factor.
const (
	stepMFA      = "mfa"       // prove a second factor the user has
	stepMFAEnrol = "mfa-enrol" // enrol one first: MFA is required and the user has none
)

// secondFactors returns the user's second-factor credentials (TOTP and
// WebAuthn), not recovery codes.
func (a *Authenticator) secondFactors(ctx context.Context, userID string) ([]directory.Credential, error) {
	creds, err := a.dir.Credentials(ctx, userID, "")
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(creds, func(c directory.Credential) bool {
		return c.Type != directory.CredentialTOTP && c.Type != directory.CredentialWebAuthn
	}), nil
}

// hasMFA reports whether the AMR list shows more than one factor.
func hasMFA(amr []string) bool { return slices.Contains(amr, AMRMFA) }

// completeSecondFactor records a proven second factor (amr, such as
// {"otp"} or {"hwk", "user"}) on the ceremony and moves it on. WebAuthn
// and TOTP handlers call it once they have verified the factor for
// c.UserID.
func (a *Authenticator) completeSecondFactor(w http.ResponseWriter, r *http.Request, c *ceremony, amr ...string) {
	for _, m := range append(amr, AMRMFA) {
		if !slices.Contains(c.AMR, m) {
			c.AMR = append(c.AMR, m)
		}
	}
	if c.Step == stepMFAEnrol {
		// A first factor was just enrolled: give recovery codes too, so
		// that losing it does not lock the user out.
		a.showNewCodes(w, r, c)
		return
	}
	a.advance(w, r, c)
}

// showNewCodes makes recovery codes after an enrolment during sign-in and
// shows them once; the ceremony goes on when the user confirms.
func (a *Authenticator) showNewCodes(w http.ResponseWriter, r *http.Request, c *ceremony) {
	codes, err := a.NewRecoveryCodes(r.Context(), c.UserID)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	c.PendingTOTP, c.Step = "", stepMFACodes
	if err := a.saveCeremony(r.Context(), c); err != nil {
		a.unavailable(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, templates.RecoveryCodes{Codes: codes, ContinueAction: "/login", CSRFToken: c.CSRF, Ceremony: c.ID})
}

// completePasskey finishes a ceremony in which a discoverable credential
// (a passkey) identified and authenticated userID on its own; amr is what
// it proved ({"hwk" or "swk", "user"} with user verification). With user
// verification it counts as multi-factor.
func (a *Authenticator) completePasskey(w http.ResponseWriter, r *http.Request, c *ceremony, userID string, amr ...string) {
	u, err := a.dir.User(r.Context(), userID)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if u.Status != directory.UserActive {
		a.Fail(w, r, http.StatusForbidden, "Your account has been disabled", "Contact your organisation's administrator.")
		return
	}
	c.UserID, c.Email, c.AMR = u.ID, u.Email, nil
	if slices.Contains(amr, AMRUser) {
		amr = append(amr, AMRMFA)
	}
	c.AMR = amr
	a.advance(w, r, c)
}

// stepMFACodes shows new recovery codes once, after enrolment.
const stepMFACodes = "mfa-codes"

// mfaRequired reports whether the ceremony's user must use a second
// factor: the application asked for one, the user is an administrator
// (local or national), or one of their organisations requires it.
func (a *Authenticator) mfaRequired(ctx context.Context, c *ceremony) (bool, error) {
	if c.RequireMFA {
		return true, nil
	}
	ms, err := a.dir.Memberships(ctx, c.UserID)
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if slices.Contains(m.Roles, directory.RoleOrgAdmin) || slices.Contains(m.Roles, directory.RoleNationalAdmin) {
			return true, nil
		}
		p, err := a.dir.OrgPolicy(ctx, m.OrgID)
		if err != nil {
			return false, err
		}
		if p.RequireMFA {
			return true, nil
		}
	}
	return false, nil
}

// mfaStep returns the step a ceremony whose user is known goes to next for
// the second factor: mfa when they have one, mfa-enrol when they need one
// and have none, "" when none is needed.
func (a *Authenticator) mfaStep(ctx context.Context, c *ceremony) (string, error) {
	if hasMFA(c.AMR) {
		return "", nil
	}
	factors, err := a.secondFactors(ctx, c.UserID)
	if err != nil {
		return "", err
	}
	if len(factors) > 0 {
		return stepMFA, nil // enrolled users always use their factor
	}
	required, err := a.mfaRequired(ctx, c)
	if err != nil || !required {
		return "", err
	}
	return stepMFAEnrol, nil
}

// advance moves a ceremony whose user is known to its next step: the
// second factor, then a new password if it expired, then done. This is
// where further steps (risk assessment) plug in.
func (a *Authenticator) advance(w http.ResponseWriter, r *http.Request, c *ceremony) {
	ctx := r.Context()
	next, err := a.mfaStep(ctx, c)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if next == "" && slices.Contains(c.AMR, AMRPassword) && !c.PasswordFresh {
		expired, err := a.passwordExpired(ctx, c.UserID)
		if err != nil {
			a.unavailable(w, r, err)
			return
		}
		if expired {
			// The application gets its code only after a new password is chosen.
			next = stepNewPassword
			a.audit(ctx, r, "login.password_expired", c.UserID, directory.OutcomeDenied, nil)
		}
	}
	if next == "" {
		a.finish(w, r, c)
		return
	}
	c.Step = next
	if err := a.saveCeremony(ctx, c); err != nil {
		a.unavailable(w, r, err)
		return
	}
	http.Redirect(w, r, "/login?c="+c.ID, http.StatusSeeOther)
}

// showMFA renders the second-factor step: the code form (and WebAuthn)
// for an enrolled user, the enrolment page otherwise.
func (a *Authenticator) showMFA(w http.ResponseWriter, r *http.Request, c *ceremony, status int, errs []templates.FieldError) {
	ctx := r.Context()
	if c.Step == stepMFAEnrol {
		u, err := a.dir.User(ctx, c.UserID)
		if err != nil {
			a.unavailable(w, r, err)
			return
		}
		if c.PendingTOTP == "" {
			if c.PendingTOTP, err = a.newPendingTOTP(u); err == nil {
				err = a.saveCeremony(ctx, c)
			}
			if err != nil {
				a.unavailable(w, r, err)
				return
			}
		}
		secret, qr, err := a.openPending(u, c.PendingTOTP)
		if err != nil {
			a.unavailable(w, r, err)
			return
		}
		page := templates.EnrolTOTP{Action: "/login", CSRFToken: c.CSRF, Ceremony: c.ID, Required: true,
			QRCode: template.URL(qr), Secret: groupSecret(secret), Errors: errs}
		if a.WebAuthnAvailable() { // not on an IP-address issuer
			page.WebAuthnBegin = "/login/webauthn/enrol/begin"
		}
		a.render(w, r, status, page)
		return
	}
	factors, err := a.secondFactors(ctx, c.UserID)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	page := templates.MFA{Action: "/login", CSRFToken: c.CSRF, Ceremony: c.ID, WebAuthnBegin: "/login/webauthn/mfa/begin", Errors: errs,
		RecoveryCode: r.URL.Query().Get("recovery") == "1" || r.PostForm.Get("kind") == "recovery"}
	for _, f := range factors {
		page.HasTOTP = page.HasTOTP || f.Type == directory.CredentialTOTP
		page.WebAuthn = page.WebAuthn || (f.Type == directory.CredentialWebAuthn && a.WebAuthnAvailable())
	}
	if page.RecoveryCode {
		page.OtherURL = "/login?c=" + c.ID
	} else {
		page.OtherURL = "/login?c=" + c.ID + "&recovery=1"
	}
	a.render(w, r, status, page)
}

// submitMFA takes a code: the first code of a TOTP enrolment, a TOTP code,
// or a recovery code.
func (a *Authenticator) submitMFA(w http.ResponseWriter, r *http.Request, c *ceremony) {
	ctx := r.Context()
	code := r.PostForm.Get("code")
	if err := a.checkCodeBudget(ctx, c.UserID); errors.Is(err, ErrTooManyCodes) {
		a.audit(ctx, r, "login.mfa", c.UserID, directory.OutcomeDenied, map[string]string{"reason": "too_many_codes"})
		a.showMFA(w, r, c, http.StatusTooManyRequests, []templates.FieldError{{Field: "code", Message: "You have entered too many wrong codes. Wait 15 minutes and try again."}})
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if c.Step == stepMFAEnrol {
		a.enrolTOTP(w, r, c, code)
		return
	}
	var ok bool
	var err error
	method := AMROTP
	if r.PostForm.Get("kind") == "recovery" {
		ok, err = a.useRecoveryCode(ctx, c.UserID, code)
	} else {
		ok, err = a.verifyTOTP(ctx, c.UserID, code)
	}
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if !ok {
		if err := a.codeFailed(ctx, c.UserID); err != nil {
			a.unavailable(w, r, err)
			return
		}
		a.audit(ctx, r, "login.mfa", c.UserID, directory.OutcomeFailure, map[string]string{"reason": "wrong_code"})
		a.showMFA(w, r, c, http.StatusUnprocessableEntity, []templates.FieldError{{Field: "code", Message: "The code is not right. Check it and try again; each code works once."}})
		return
	}
	detail := map[string]string{"method": "totp"}
	if r.PostForm.Get("kind") == "recovery" {
		detail["method"] = "recovery_code"
	}
	a.audit(ctx, r, "login.mfa", c.UserID, directory.OutcomeSuccess, detail)
	a.completeSecondFactor(w, r, c, method)
}

// enrolTOTP confirms a pending TOTP seed with its first code, stores it,
// tells the user, and shows new recovery codes.
func (a *Authenticator) enrolTOTP(w http.ResponseWriter, r *http.Request, c *ceremony, code string) {
	ctx := r.Context()
	u, err := a.dir.User(ctx, c.UserID)
	if err != nil || c.PendingTOTP == "" {
		a.expired(w, r)
		return
	}
	secret, _, err := a.openPending(u, c.PendingTOTP)
	if err != nil {
		a.expired(w, r)
		return
	}
	if !a.checkPendingCode(secret, code) {
		a.codeFailed(ctx, c.UserID)
		a.showMFA(w, r, c, http.StatusUnprocessableEntity, []templates.FieldError{{Field: "code", Message: "The code is not right. Enter the 6-digit code your app shows now."}})
		return
	}
	cred, err := a.NewTOTPCredential(u.ID, "Authenticator app", secret)
	if err == nil {
		err = a.dir.PutCredential(ctx, cred)
	}
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	// The first code must not work again as a sign-in code.
	step := a.now().Unix() / 30
	for _, s := range []int64{step - 1, step, step + 1} {
		a.eph.Create(ctx, keyTOTPUsed+cred.ID+":"+strconv.FormatInt(s, 10), nil, a.now().Add(2*time.Minute), a.now())
	}
	a.audit(ctx, r, "mfa.enrol", u.ID, directory.OutcomeSuccess, map[string]string{"method": "totp"})
	a.notify(ctx, u, "An authenticator app was added to your NHS directory account",
		"Hello "+u.Name()+",\n\nAn authenticator app was set up as a second way to confirm it's you when you sign in.\n\n"+
			"If you did not do this, tell your organisation's administrator straight away.\n")
	a.completeSecondFactor(w, r, c, AMROTP)
}

// newRecoveryCodes is POST /account/recovery-codes: a user signed in within
// the last ten minutes replaces their recovery codes and sees the new ones
// once; an older session signs in again first.
func (a *Authenticator) newRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		a.Fail(w, r, http.StatusBadRequest, "Form not valid", "Go back and try again.")
		return
	}
	sess, u, ok := a.signedIn(w, r, "/account")
	if !ok {
		return
	}
	if !sess.ValidCSRF(r) {
		a.Fail(w, r, http.StatusForbidden, "This form has expired", "Go back, reload the page and try again.")
		return
	}
	if a.now().Sub(sess.AuthTime) > freshAuth {
		a.StartLogin(w, r, LoginOptions{Return: "/account", LoginHint: u.Email})
		return
	}
	codes, err := a.NewRecoveryCodes(r.Context(), u.ID)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	a.audit(r.Context(), r, "mfa.recovery_codes", u.ID, directory.OutcomeSuccess, nil)
	a.notify(r.Context(), u, "New recovery codes for your NHS directory account",
		"Hello "+u.Name()+",\n\nNew recovery codes were made for your account; the old ones no longer work.\n\n"+
			"If you did not do this, tell your organisation's administrator straight away.\n")
	a.render(w, r, http.StatusOK, templates.RecoveryCodes{Codes: codes, ContinueAction: "/account/recovery-codes/saved", CSRFToken: sess.CSRF})
}
