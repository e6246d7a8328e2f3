package authn

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
)

const keyCeremony = "authn:ceremony:" // + ceremony ID

// Steps of the login ceremony. Later steps (risk assessment before the
// password, MFA after it, forced password change) slot into next().
const (
	stepIdentify = "identify"
	stepPassword = "password"
	stepDone     = ""
)

// ceremony is one sign-in under way. It is bound to the browser that
// started it by a cookie whose hash it keeps, and its forms carry CSRF.
type ceremony struct {
	ID         string   `json:"id"`
	Binding    string   `json:"binding"` // HashToken of the browser's ceremony cookie
	CSRF       string   `json:"csrf"`
	Return     string   `json:"return"` // local path to go to when done
	ClientName string   `json:"client_name,omitempty"`
	Step       string   `json:"step"`
	Email      string   `json:"email,omitempty"`
	UserID     string   `json:"user_id,omitempty"` // set once the password is verified
	AMR        []string `json:"amr,omitempty"`
	Failures   int      `json:"failures"`
	// RequireMFA: the application asked for a second factor (acr_values).
	RequireMFA bool `json:"require_mfa,omitempty"`
	// PasswordFresh: the password was changed in this ceremony.
	PasswordFresh bool `json:"password_fresh,omitempty"`
	// PendingTOTP is a TOTP seed being enrolled, sealed.
	PendingTOTP string `json:"pending_totp,omitempty"`
	// Risk is the risk engine's verdict on the password attempt.
	Risk      *ceremonyRisk `json:"risk,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
}

// next returns the step after the current one.
func (c *ceremony) next() string {
	switch c.Step {
	case stepIdentify:
		return stepPassword
	default:
		return stepDone
	}
}

// LoginOptions describe a sign-in a protocol asks for.
type LoginOptions struct {
	// Return is the local path ("/login/oidc?id=…") the browser goes to
	// once signed in. Anything but a path on this server is refused.
	Return string
	// ClientName names the application, shown on the pages.
	ClientName string
	// LoginHint prefills the email.
	LoginHint string
	// RequireMFA asks for a second factor whatever the user's policy.
	RequireMFA bool
	// StepUp, when set, is the live session to raise to MFA: the ceremony
	// starts at the second factor for its user.
	StepUp *Session
}

// localPath reports whether p is a path on this server (not "//host" or a
// URL with a scheme), so Return can never become an open redirect. Paths
// Lanyard builds are percent-encoded, so any backslash, space or control
// character (which browsers drop or turn into "/") is refused outright.
func localPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == '\\' || c == 0x7f {
			return false
		}
	}
	return true
}

func (a *Authenticator) bindingCookieName() string {
	if a.secure {
		return "__Host-lanyard-login"
	}
	return "lanyard-login"
}

// StartLogin begins a ceremony and shows its first page: in the response
// to a GET, and after a redirect to /login for anything else.
func (a *Authenticator) StartLogin(w http.ResponseWriter, r *http.Request, opt LoginOptions) {
	if !localPath(opt.Return) {
		a.Fail(w, r, http.StatusBadRequest, "Sign-in link not valid", "Go back to the application and try again.")
		return
	}
	binding := rand.Text()
	c := &ceremony{
		ID: rand.Text(), Binding: directory.HashToken(binding), CSRF: rand.Text(), Return: opt.Return,
		ClientName: opt.ClientName, Step: stepIdentify, CreatedAt: a.now(),
	}
	if e, err := directory.NormaliseEmail(opt.LoginHint); err == nil {
		c.Email = e
	}
	c.RequireMFA = opt.RequireMFA || opt.StepUp != nil
	if s := opt.StepUp; s != nil {
		u, err := a.dir.User(r.Context(), s.UserID)
		if err != nil {
			a.unavailable(w, r, err)
			return
		}
		c.UserID, c.Email, c.AMR = u.ID, u.Email, s.AMR
		if c.Step, err = a.mfaStep(r.Context(), c); err != nil {
			a.unavailable(w, r, err)
			return
		}
	}
	if err := a.saveCeremony(r.Context(), c); err != nil {
		a.unavailable(w, r, err)
		return
	}
	a.deviceID(w, r)
	a.setDevice(w, r) // after deviceID: its signed cookie wins
	http.SetCookie(w, &http.Cookie{
		Name: a.bindingCookieName(), Value: binding, Path: "/", HttpOnly: true, Secure: a.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(a.cfg.CeremonyTTL.Seconds()),
	})
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		// The first page answers the request that started the ceremony
		// (an application's /authorize landing on /login/oidc, a SAML
		// redirect binding): a redirect to /login would cost the browser a
		// round trip for nothing. Reloading it starts a new ceremony. The
		// page is never framed or cached, whichever handler started it.
		setPageHeaders(w.Header(), true)
		a.showStep(w, r, c, http.StatusOK, nil)
		return
	}
	// A form post (SAML's POST binding, an account action needing a fresh
	// sign-in) is answered with a redirect, so that reloading the page does
	// not post the form again.
	http.Redirect(w, r, "/login?c="+c.ID, http.StatusSeeOther)
}

func (a *Authenticator) saveCeremony(ctx context.Context, c *ceremony) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return a.eph.Put(ctx, keyCeremony+c.ID, b, c.CreatedAt.Add(a.cfg.CeremonyTTL), a.now())
}

var errCeremonyGone = errors.New("ceremony expired or not this browser's")

// loadCeremony returns the ceremony named in the request if it belongs to
// this browser.
func (a *Authenticator) loadCeremony(r *http.Request, id string) (*ceremony, error) {
	if id == "" || len(id) > 64 {
		return nil, errCeremonyGone
	}
	b, err := a.eph.Get(r.Context(), keyCeremony+id, a.now())
	if errors.Is(err, ephemeral.ErrNotFound) {
		return nil, errCeremonyGone
	} else if err != nil {
		return nil, err
	}
	var c ceremony
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	ck, err := r.Cookie(a.bindingCookieName())
	if err != nil || subtle.ConstantTimeCompare([]byte(directory.HashToken(ck.Value)), []byte(c.Binding)) != 1 {
		return nil, errCeremonyGone
	}
	return &c, nil
}

func validCSRF(c *ceremony, r *http.Request) bool { return formToken(r, c.CSRF) }

// formToken reports whether the form posted in r (parsed) carries the
// CSRF token want.
func formToken(r *http.Request, want string) bool {
	got := r.PostForm.Get("csrf_token")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
