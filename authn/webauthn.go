package authn

// WebAuthn: security keys and passkeys, through go-webauthn.
//
// A key serves three ways: as the second factor after the password (the
// MFA step), as the second factor enrolled during sign-in (mfa-enrol), and,
// when it is a passkey (a discoverable credential), as the whole sign-in
// from the first page, which counts as multi-factor when the authenticator
// verified the user (PIN or biometric). Signed-in users list, add and
// remove their keys at /account/security-keys.
//
// Every ceremony has two requests. Begin (fetched by webauthn.js) answers
// JSON options and keeps the library's SessionData in the ephemeral store
// for five minutes under the challenge, bound to the login ceremony or the
// session; finish is an ordinary form post carrying the browser's JSON,
// which takes that SessionData once, so a challenge never verifies twice.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
	"github.com/lanyard/lanyard/templates"
)

const (
	// keyWebAuthn + purpose + ":" + owner + ":" + challenge holds the
	// SessionData of a ceremony begun and not yet finished. The owner is
	// the login ceremony's ID or the hash of the session ID.
	keyWebAuthn = "authn:webauthn:"
	// webauthnTTL is how long a begun ceremony can be finished.
	webauthnTTL = 5 * time.Minute
	// maxWebAuthnForm bounds a WebAuthn request: an attestation with its
	// certificates, percent-encoded, fits with room to spare.
	maxWebAuthnForm = 64 << 10
	// freshAuth is how recent a sign-in must be to remove a key.
	freshAuth = 10 * time.Minute
	// maxKeyName is the longest name a key can have, in characters.
	maxKeyName = 60
	// rpDisplayName is the relying party's name authenticators show.
	rpDisplayName = "Lanyard (NHS directory)"
)

// Purposes of a WebAuthn ceremony, part of the SessionData's key so that a
// challenge begun for one cannot finish another.
const (
	purposeMFA     = "mfa"
	purposeEnrol   = "enrol"
	purposePasskey = "passkey"
	purposeAccount = "account"
)

// errClonedKey is a key whose signature counter did not go up.
var errClonedKey = errors.New("webauthn: signature counter did not increase: the key may have been cloned")

// webauthnRoutes adds the WebAuthn endpoints to the browser-facing mux.
// Begin endpoints answer JSON to webauthn.js; finish endpoints take a form
// post and answer with a redirect or a page.
func (a *Authenticator) webauthnRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /login/webauthn/mfa/begin", a.beginMFAKey)
	mux.HandleFunc("POST /login/webauthn/mfa/finish", a.finishMFAKey)
	mux.HandleFunc("POST /login/webauthn/enrol/begin", a.beginEnrolKey)
	mux.HandleFunc("POST /login/webauthn/enrol/finish", a.finishEnrolKey)
	mux.HandleFunc("POST /login/webauthn/passkey/begin", a.beginPasskey)
	mux.HandleFunc("POST /login/webauthn/passkey/finish", a.finishPasskey)
	mux.HandleFunc("GET /account/security-keys", a.showSecurityKeys)
	mux.HandleFunc("POST /account/security-keys/begin", a.beginAccountKey)
	mux.HandleFunc("POST /account/security-keys/finish", a.finishAccountKey)
	mux.HandleFunc("POST /account/security-keys/remove", a.removeAccountKey)
	mux.HandleFunc("POST "+authenticatorAppRemovePath, a.removeAuthenticatorApp)
}

// AttestationPreferences are the values Config.Attestation may take, for
// the configuration's validation; "" means none. Attestation asks
// authenticators to prove their make and model; none, the default, asks
// nothing and keeps users' devices private.
var AttestationPreferences = []string{"none", "indirect", "direct", "enterprise"}

// attestationPreference maps Config.Attestation to the library's value.
func attestationPreference(s string) (protocol.ConveyancePreference, error) {
	switch s {
	case "", "none":
		return protocol.PreferNoAttestation, nil
	case "indirect":
		return protocol.PreferIndirectAttestation, nil
	case "direct":
		return protocol.PreferDirectAttestation, nil
	case "enterprise":
		return protocol.PreferEnterpriseAttestation, nil
	}
	return "", fmt.Errorf("webauthn attestation: must be none, indirect, direct or enterprise, got %q", s)
}

// relyingParty returns the WebAuthn relying party for the issuer: its RP
// ID is the issuer's host without the port, its one origin the issuer's.
// It fails when the issuer's host is an IP address, which WebAuthn does
// not allow, or Config.Attestation is not a known preference. Building it
// costs no I/O, so it is built for each request.
func (a *Authenticator) relyingParty() (*webauthn.WebAuthn, error) {
	u, err := url.Parse(a.cfg.Issuer)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("webauthn: issuer %q is not an absolute URL", a.cfg.Issuer)
	}
	pref, err := attestationPreference(a.cfg.Attestation)
	if err != nil {
		return nil, err
	}
	if err := protocol.ValidateRPID(u.Hostname()); err != nil {
		return nil, fmt.Errorf("webauthn: issuer host %q cannot be an RP ID: %w", u.Hostname(), err)
	}
	return webauthn.New(&webauthn.Config{
		RPID:                  u.Hostname(),
		RPDisplayName:         rpDisplayName,
		RPOrigins:             []string{u.Scheme + "://" + u.Host},
		AttestationPreference: pref,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		},
	})
}

// WebAuthnAvailable reports whether security keys and passkeys can work
// with this configuration (the issuer's host is a domain name, not an IP
// address), so that pages offer them only then.
func (a *Authenticator) WebAuthnAvailable() bool {
	_, err := a.relyingParty()
	return err == nil
}

// webauthnUser is a directory user with their keys, as the library wants.
type webauthnUser struct {
	u    directory.User
	keys []storedKey
}

func (w webauthnUser) WebAuthnID() []byte          { return []byte(w.u.ID) }
func (w webauthnUser) WebAuthnName() string        { return w.u.Email }
func (w webauthnUser) WebAuthnDisplayName() string { return w.u.Name() }
func (w webauthnUser) WebAuthnCredentials() []webauthn.Credential {
	creds := make([]webauthn.Credential, len(w.keys))
	for i, k := range w.keys {
		creds[i] = k.cred
	}
	return creds
}

// find returns the stored key whose credential ID is id.
func (w webauthnUser) find(id []byte) (storedKey, bool) {
	for _, k := range w.keys {
		if subtle.ConstantTimeCompare(k.cred.ID, id) == 1 {
			return k, true
		}
	}
	return storedKey{}, false
}

// storedKey is a WebAuthn credential as the directory keeps it (rec, whose
// Secret is the JSON of cred) and as the library reads it.
type storedKey struct {
	rec  directory.Credential
	cred webauthn.Credential
}

// kind is how the key is shown: a passkey when it is discoverable or
// synced, a security key otherwise.
func (k storedKey) kind() string {
	if (k.cred.Extensions.RK != nil && *k.cred.Extensions.RK) || k.cred.Flags.BackupEligible {
		return "Passkey"
	}
	return "Security key"
}

// keysOf loads the user and their WebAuthn keys. A stored record
// that does not decode is logged and left out.
func (a *Authenticator) keysOf(ctx context.Context, userID string) (webauthnUser, error) {
	u, err := a.dir.User(ctx, userID)
	if err != nil {
		return webauthnUser{}, err
	}
	recs, err := a.dir.Credentials(ctx, userID, directory.CredentialWebAuthn)
	if err != nil {
		return webauthnUser{}, err
	}
	wu := webauthnUser{u: u}
	for _, rec := range recs {
		var cred webauthn.Credential
		if err := json.Unmarshal(rec.Secret, &cred); err != nil {
			a.log.ErrorContext(ctx, "stored webauthn credential unusable", "user_id", userID, "reason", err.Error())
			continue
		}
		wu.keys = append(wu.keys, storedKey{rec: rec, cred: cred})
	}
	return wu, nil
}

// ceremonyAMR returns the methods a key proved: hwk for a hardware-bound
// key (a security key), swk for a platform authenticator or a synced
// passkey, and user when the authenticator verified the user.
func ceremonyAMR(attachment protocol.AuthenticatorAttachment, backupEligible, userVerified bool) []string {
	amr := []string{AMRHWK}
	if attachment == protocol.Platform || backupEligible {
		amr[0] = AMRSWK
	}
	if userVerified {
		amr = append(amr, AMRUser)
	}
	return amr
}

// counterRegressed reports whether the signature counter an assertion
// reports (got) failed to pass the stored one: a sign of a cloned key.
// Authenticators without a counter always report 0, which is no sign of
// anything.
func counterRegressed(stored, got uint32) bool {
	return (stored != 0 || got != 0) && got <= stored
}

// challengeKey is where the SessionData of a challenge waits.
func challengeKey(purpose, owner, challenge string) string {
	return keyWebAuthn + purpose + ":" + owner + ":" + challenge
}

func (a *Authenticator) putChallenge(ctx context.Context, purpose, owner string, sd *webauthn.SessionData) error {
	b, err := json.Marshal(sd)
	if err != nil {
		return err
	}
	now := a.now()
	return a.eph.Put(ctx, challengeKey(purpose, owner, sd.Challenge), b, now.Add(webauthnTTL), now)
}

// takeChallenge returns the SessionData of challenge, once. It returns
// ephemeral.ErrNotFound when the challenge was never issued here, has
// expired or was used.
func (a *Authenticator) takeChallenge(ctx context.Context, purpose, owner, challenge string) (webauthn.SessionData, error) {
	if challenge == "" || len(challenge) > 128 {
		return webauthn.SessionData{}, ephemeral.ErrNotFound
	}
	b, err := a.eph.Take(ctx, challengeKey(purpose, owner, challenge), a.now())
	if err != nil {
		return webauthn.SessionData{}, err
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(b, &sd); err != nil {
		return webauthn.SessionData{}, fmt.Errorf("decode webauthn session: %w", err)
	}
	return sd, nil
}

// beginResponse is what begin answers: the options for the browser, and
// where to post the result.
type beginResponse struct {
	Options any    `json:"options"`
	Finish  string `json:"finish"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// jsonFail answers a begin request that cannot go on. message is for the
// user (webauthn.js shows it); causes go to the log.
func jsonFail(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}

func (a *Authenticator) jsonUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	a.log.ErrorContext(r.Context(), "webauthn unavailable", "request_id", a.cfg.RequestID(r.Context()), "reason", err.Error())
	w.Header().Set("Retry-After", "30")
	jsonFail(w, http.StatusServiceUnavailable, "Security keys are not working at the moment. Try again in a few minutes, or use another way to confirm it’s you.")
}

const (
	msgFormExpired = "This page has expired. Reload it and try again."
	msgKeyFailed   = "Your security key or passkey could not be checked."
)

// parseWebAuthnForm reads a WebAuthn request's form, bounded.
func parseWebAuthnForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxWebAuthnForm)
	return r.ParseForm()
}

// beginCeremony loads the login ceremony a begin request names, checks its
// CSRF token and that step accepts it, answering JSON itself when not.
func (a *Authenticator) beginCeremony(w http.ResponseWriter, r *http.Request, step func(*ceremony) bool) (*ceremony, *webauthn.WebAuthn, bool) {
	if err := parseWebAuthnForm(w, r); err != nil {
		jsonFail(w, http.StatusBadRequest, msgFormExpired)
		return nil, nil, false
	}
	c, err := a.loadCeremony(r, r.PostForm.Get("ceremony"))
	if errors.Is(err, errCeremonyGone) {
		jsonFail(w, http.StatusBadRequest, "This sign-in page has expired. Go back to the application you were using and sign in again.")
		return nil, nil, false
	} else if err != nil {
		a.jsonUnavailable(w, r, err)
		return nil, nil, false
	}
	if !validCSRF(c, r) {
		jsonFail(w, http.StatusForbidden, msgFormExpired)
		return nil, nil, false
	}
	if !step(c) {
		jsonFail(w, http.StatusConflict, msgFormExpired)
		return nil, nil, false
	}
	rp, err := a.relyingParty()
	if err != nil {
		a.jsonUnavailable(w, r, err)
		return nil, nil, false
	}
	return c, rp, true
}

// finishCeremony is beginCeremony for a finish request, which is a form
// post and gets error pages.
func (a *Authenticator) finishCeremony(w http.ResponseWriter, r *http.Request, step func(*ceremony) bool) (*ceremony, *webauthn.WebAuthn, bool) {
	if err := parseWebAuthnForm(w, r); err != nil {
		a.Fail(w, r, http.StatusBadRequest, "Form not valid", "Go back and try again.")
		return nil, nil, false
	}
	c, err := a.loadCeremony(r, r.PostForm.Get("ceremony"))
	if errors.Is(err, errCeremonyGone) {
		a.expired(w, r)
		return nil, nil, false
	} else if err != nil {
		a.unavailable(w, r, err)
		return nil, nil, false
	}
	if !validCSRF(c, r) {
		a.Fail(w, r, http.StatusForbidden, "This form has expired", "Go back, reload the page and try again.")
		return nil, nil, false
	}
	if !step(c) {
		a.expired(w, r)
		return nil, nil, false
	}
	rp, err := a.relyingParty()
	if err != nil {
		a.unavailable(w, r, err)
		return nil, nil, false
	}
	return c, rp, true
}

// keyFailed answers a finish whose credential did not verify; the cause
// goes to the log, the user gets a page with a way back.
func (a *Authenticator) keyFailed(w http.ResponseWriter, r *http.Request, userID, back string, err error) {
	a.log.WarnContext(r.Context(), "webauthn verification failed", "request_id", a.cfg.RequestID(r.Context()), "user_id", userID,
		"reason", protocolReason(err))
	a.render(w, r, http.StatusBadRequest, templates.Error{Title: msgKeyFailed,
		Message: "Go back and try again, or use another way to confirm it’s you.", RequestID: a.cfg.RequestID(r.Context()),
		Back: templates.Link{URL: back}})
}

// protocolReason is a go-webauthn error for the log, with the library's
// developer detail.
func protocolReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return strings.TrimSpace(pe.Type + ": " + pe.Details + " " + pe.DevInfo)
	}
	return err.Error()
}

func secondFactorStep(c *ceremony) bool { return c.Step == stepMFA && c.UserID != "" }
func enrolStep(c *ceremony) bool        { return c.Step == stepMFAEnrol && c.UserID != "" }

// passkeyStep: a passkey can replace the email and password while neither
// has been verified.
func passkeyStep(c *ceremony) bool { return c.Step == stepIdentify || c.Step == stepPassword }

// keyAlreadyUsed reports whether the ceremony's first factor was a key (a
// passkey without user verification). The second factor must then be of
// another kind, or one key would count twice.
func keyAlreadyUsed(c *ceremony) bool {
	return slices.Contains(c.AMR, AMRHWK) || slices.Contains(c.AMR, AMRSWK)
}

// beginMFAKey answers the options for proving a key the user has, as the
// second factor.
func (a *Authenticator) beginMFAKey(w http.ResponseWriter, r *http.Request) {
	c, rp, ok := a.beginCeremony(w, r, secondFactorStep)
	if !ok {
		return
	}
	if keyAlreadyUsed(c) {
		jsonFail(w, http.StatusConflict, "You have already used a security key or passkey. Use your authenticator app or a recovery code.")
		return
	}
	ctx := r.Context()
	wu, err := a.keysOf(ctx, c.UserID)
	if err != nil {
		a.jsonUnavailable(w, r, err)
		return
	}
	if len(wu.keys) == 0 {
		jsonFail(w, http.StatusConflict, "You have no security key or passkey. Use another way to confirm it’s you.")
		return
	}
	// A second factor needs possession only; asking for a PIN too would
	// add a step for nothing.
	opts, sd, err := rp.BeginLogin(wu, webauthn.WithUserVerification(protocol.VerificationDiscouraged))
	if err == nil {
		err = a.putChallenge(ctx, purposeMFA, c.ID, sd)
	}
	if err != nil {
		a.jsonUnavailable(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, beginResponse{Options: opts, Finish: "/login/webauthn/mfa/finish"})
}

// finishMFAKey verifies the assertion of the second factor and moves the
// ceremony on.
func (a *Authenticator) finishMFAKey(w http.ResponseWriter, r *http.Request) {
	c, rp, ok := a.finishCeremony(w, r, secondFactorStep)
	if !ok {
		return
	}
	ctx, back := r.Context(), "/login?c="+c.ID
	if keyAlreadyUsed(c) {
		a.expired(w, r)
		return
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(r.PostForm.Get("credential")))
	if err != nil {
		a.keyFailed(w, r, c.UserID, back, err)
		return
	}
	sd, err := a.takeChallenge(ctx, purposeMFA, c.ID, parsed.Response.CollectedClientData.Challenge)
	if errors.Is(err, ephemeral.ErrNotFound) {
		a.keyFailed(w, r, c.UserID, back, errors.New("challenge unknown, expired or used"))
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	wu, err := a.keysOf(ctx, c.UserID)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	cred, err := rp.ValidateLogin(wu, sd, parsed)
	if err != nil {
		a.audit(ctx, r, "login.mfa", c.UserID, directory.OutcomeFailure, map[string]string{"method": "webauthn", "reason": "not_verified"})
		a.keyFailed(w, r, c.UserID, back, err)
		return
	}
	k, err := a.useKey(ctx, r, wu, cred, parsed)
	if errors.Is(err, errClonedKey) {
		a.clonedKey(w, r, back)
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	a.audit(ctx, r, "login.mfa", c.UserID, directory.OutcomeSuccess, map[string]string{"method": "webauthn", "credential": k.rec.ID})
	a.completeSecondFactor(w, r, c, assertionAMR(k, parsed)...)
}

// assertionAMR is ceremonyAMR for an assertion by k.
func assertionAMR(k storedKey, parsed *protocol.ParsedCredentialAssertionData) []string {
	attachment := parsed.AuthenticatorAttachment
	if attachment == "" {
		attachment = k.cred.Authenticator.Attachment
	}
	flags := parsed.Response.AuthenticatorData.Flags
	return ceremonyAMR(attachment, flags.HasBackupEligible(), flags.HasUserVerified())
}

// useKey records a verified assertion on the stored key: its counter,
// flags and last use. A counter that did not go up is refused with
// errClonedKey, audited as webauthn.clone_warning and logged; the stored
// key is left as it was.
func (a *Authenticator) useKey(ctx context.Context, r *http.Request, wu webauthnUser, cred *webauthn.Credential, parsed *protocol.ParsedCredentialAssertionData) (storedKey, error) {
	k, ok := wu.find(cred.ID)
	if !ok {
		return storedKey{}, fmt.Errorf("verified credential of user %q not stored", wu.u.ID)
	}
	stored, got := k.cred.Authenticator.SignCount, parsed.Response.AuthenticatorData.Counter
	if counterRegressed(stored, got) {
		a.log.WarnContext(ctx, "webauthn signature counter went back: possible cloned key", "request_id", a.cfg.RequestID(ctx),
			"user_id", wu.u.ID, "outcome", directory.OutcomeDenied, "reason", "clone_warning")
		a.audit(ctx, r, "webauthn.clone_warning", wu.u.ID, directory.OutcomeDenied, map[string]string{
			"credential": k.rec.ID, "name": k.rec.Name, "stored_count": fmt.Sprint(stored), "count": fmt.Sprint(got)})
		return storedKey{}, errClonedKey
	}
	cred.Authenticator.CloneWarning = false
	b, err := json.Marshal(cred)
	if err != nil {
		return storedKey{}, err
	}
	k.cred, k.rec.Secret, k.rec.LastUsedAt = *cred, b, a.now()
	return k, a.dir.PutCredential(ctx, k.rec)
}

func (a *Authenticator) clonedKey(w http.ResponseWriter, r *http.Request, back string) {
	a.render(w, r, http.StatusForbidden, templates.Error{Title: "This security key cannot be used",
		Message:   "It may have been copied. Use another way to confirm it’s you, and tell your organisation’s administrator.",
		RequestID: a.cfg.RequestID(r.Context()), Back: templates.Link{URL: back}})
}

// registrationOptions are the options for adding a key: discoverable when
// the authenticator can (so it is a passkey), verifying the user when it
// can, and never a key the user already has.
func registrationOptions(wu webauthnUser) []webauthn.RegistrationOption {
	return []webauthn.RegistrationOption{
		webauthn.WithExclusions(webauthn.Credentials(wu.WebAuthnCredentials()).CredentialDescriptors()),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()),
	}
}

// register verifies a new credential for wu and stores it under name (a
// default when empty), then audits it and tells the user by email.
func (a *Authenticator) register(ctx context.Context, r *http.Request, rp *webauthn.WebAuthn, wu webauthnUser, sd webauthn.SessionData,
	parsed *protocol.ParsedCredentialCreationData, name string) (storedKey, error) {
	cred, err := rp.CreateCredential(wu, sd, parsed)
	if err != nil {
		return storedKey{}, err
	}
	if _, dup := wu.find(cred.ID); dup {
		return storedKey{}, protocol.ErrBadRequest.WithDetails("credential already registered")
	}
	b, err := json.Marshal(cred)
	if err != nil {
		return storedKey{}, err
	}
	k := storedKey{cred: *cred, rec: directory.Credential{ID: rand.Text(), UserID: wu.u.ID, Type: directory.CredentialWebAuthn,
		Secret: b, CreatedAt: a.now()}}
	k.rec.Name = keyName(name, k.kind())
	if err := a.dir.PutCredential(ctx, k.rec); err != nil {
		return storedKey{}, fmt.Errorf("store webauthn credential: %w", err)
	}
	a.audit(ctx, r, "mfa.enrol", wu.u.ID, directory.OutcomeSuccess, map[string]string{"method": "webauthn", "credential": k.rec.ID,
		"kind": strings.ToLower(strings.ReplaceAll(k.kind(), " ", "_"))})
	a.notify(ctx, wu.u, "A security key or passkey was added to your NHS directory account",
		fmt.Sprintf("Hello %s,\n\nA %s called “%s” was added to your NHS directory account (%s) on %s from the address %s. "+
			"It can now be used to confirm it's you when you sign in.\n\n"+
			"If you did not do this, remove it at %s/account/security-keys and tell your organisation's administrator straight away.\n",
			wu.u.Name(), strings.ToLower(k.kind()), k.rec.Name, wu.u.Email, a.now().UTC().Format("2 January 2006 at 15:04 MST"), clientIP(r), a.cfg.Issuer))
	return k, nil
}

// keyName trims name to at most maxKeyName characters, or gives the kind
// of key when it is empty.
func keyName(name, kind string) string {
	name = strings.Join(strings.Fields(name), " ")
	if name == "" {
		return kind
	}
	if utf8.RuneCountInString(name) > maxKeyName {
		name = string([]rune(name)[:maxKeyName])
	}
	return name
}

// beginEnrolKey answers the options for registering a key as the second
// factor a user must set up during sign-in.
func (a *Authenticator) beginEnrolKey(w http.ResponseWriter, r *http.Request) {
	c, rp, ok := a.beginCeremony(w, r, enrolStep)
	if !ok {
		return
	}
	ctx := r.Context()
	wu, err := a.keysOf(ctx, c.UserID)
	if err != nil {
		a.jsonUnavailable(w, r, err)
		return
	}
	opts, sd, err := rp.BeginRegistration(wu, registrationOptions(wu)...)
	if err == nil {
		err = a.putChallenge(ctx, purposeEnrol, c.ID, sd)
	}
	if err != nil {
		a.jsonUnavailable(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, beginResponse{Options: opts, Finish: "/login/webauthn/enrol/finish"})
}

// finishEnrolKey stores the key registered during sign-in; making it
// proves it, so the ceremony moves on with it as the second factor.
func (a *Authenticator) finishEnrolKey(w http.ResponseWriter, r *http.Request) {
	c, rp, ok := a.finishCeremony(w, r, enrolStep)
	if !ok {
		return
	}
	ctx, back := r.Context(), "/login?c="+c.ID
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(r.PostForm.Get("credential")))
	if err != nil {
		a.keyFailed(w, r, c.UserID, back, err)
		return
	}
	sd, err := a.takeChallenge(ctx, purposeEnrol, c.ID, parsed.Response.CollectedClientData.Challenge)
	if errors.Is(err, ephemeral.ErrNotFound) {
		a.keyFailed(w, r, c.UserID, back, errors.New("challenge unknown, expired or used"))
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	wu, err := a.keysOf(ctx, c.UserID)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	k, err := a.register(ctx, r, rp, wu, sd, parsed, r.PostForm.Get("name"))
	var pe *protocol.Error
	if errors.As(err, &pe) {
		a.keyFailed(w, r, c.UserID, back, err)
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	flags := parsed.Response.AttestationObject.AuthData.Flags
	a.completeSecondFactor(w, r, c, ceremonyAMR(k.cred.Authenticator.Attachment, flags.HasBackupEligible(), flags.HasUserVerified())...)
}

// beginPasskey answers the options for signing in with a passkey, with no
// user known: for the email field's autofill (mediation=conditional) or
// for the button.
func (a *Authenticator) beginPasskey(w http.ResponseWriter, r *http.Request) {
	c, rp, ok := a.beginCeremony(w, r, passkeyStep)
	if !ok {
		return
	}
	mediation := protocol.MediationDefault
	if r.PostForm.Get("mediation") == string(protocol.MediationConditional) {
		mediation = protocol.MediationConditional
	}
	opts, sd, err := rp.BeginDiscoverableMediatedLogin(mediation, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err == nil {
		err = a.putChallenge(r.Context(), purposePasskey, c.ID, sd)
	}
	if err != nil {
		a.jsonUnavailable(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, beginResponse{Options: opts, Finish: "/login/webauthn/passkey/finish"})
}

// finishPasskey verifies a passkey's assertion; its user handle names the
// user. The ceremony goes on as that user's, multi-factor when the
// authenticator verified the user.
func (a *Authenticator) finishPasskey(w http.ResponseWriter, r *http.Request) {
	c, rp, ok := a.finishCeremony(w, r, passkeyStep)
	if !ok {
		return
	}
	ctx, back := r.Context(), "/login?c="+c.ID+"&step=identify"
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(r.PostForm.Get("credential")))
	if err != nil {
		a.keyFailed(w, r, "", back, err)
		return
	}
	sd, err := a.takeChallenge(ctx, purposePasskey, c.ID, parsed.Response.CollectedClientData.Challenge)
	if errors.Is(err, ephemeral.ErrNotFound) {
		a.keyFailed(w, r, "", back, errors.New("challenge unknown, expired or used"))
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	var wu webauthnUser
	var storeErr error
	_, cred, err := rp.ValidatePasskeyLogin(func(_, userHandle []byte) (webauthn.User, error) {
		if len(userHandle) == 0 || len(userHandle) > 64 {
			return nil, errors.New("no usable user handle")
		}
		wu, storeErr = a.keysOf(ctx, string(userHandle))
		if storeErr != nil {
			return nil, storeErr
		}
		return wu, nil
	}, sd, parsed)
	if storeErr != nil && !errors.Is(storeErr, directory.ErrNotFound) {
		a.unavailable(w, r, storeErr)
		return
	}
	if err != nil {
		if wu.u.ID != "" {
			a.audit(ctx, r, "login.passkey", wu.u.ID, directory.OutcomeFailure, map[string]string{"reason": "not_verified"})
		}
		a.keyFailed(w, r, wu.u.ID, back, err)
		return
	}
	k, err := a.useKey(ctx, r, wu, cred, parsed)
	if errors.Is(err, errClonedKey) {
		a.clonedKey(w, r, back)
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	amr := assertionAMR(k, parsed)
	a.audit(ctx, r, "login.passkey", wu.u.ID, directory.OutcomeSuccess, map[string]string{"credential": k.rec.ID, "amr": strings.Join(amr, " ")})
	a.completePasskey(w, r, c, wu.u.ID, amr...)
}

// Account management.

const securityKeysPath = "/account/security-keys"

// showSecurityKeys lists the signed-in user's keys, with the form to add
// one.
func (a *Authenticator) showSecurityKeys(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := a.signedIn(w, r, securityKeysPath)
	if !ok {
		return
	}
	a.renderSecurityKeys(w, r, sess, u, http.StatusOK, "", nil)
}

func (a *Authenticator) renderSecurityKeys(w http.ResponseWriter, r *http.Request, sess Session, u directory.User, status int, name string, errs []templates.FieldError) {
	wu, err := a.keysOf(r.Context(), u.ID)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	page := templates.SecurityKeys{CSRFToken: sess.CSRF, BeginURL: securityKeysPath + "/begin", AddAction: securityKeysPath + "/finish",
		RemoveAction: securityKeysPath + "/remove", Name: name, BackURL: "/account", Errors: errs}
	apps, err := a.dir.Credentials(r.Context(), u.ID, directory.CredentialTOTP)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if len(apps) > 0 {
		page.App = &templates.AuthenticatorApp{Added: apps[0].CreatedAt.UTC().Format("2 Jan 2006"), RemoveAction: authenticatorAppRemovePath}
	}
	for _, k := range wu.keys {
		used := "Never"
		if !k.rec.LastUsedAt.IsZero() {
			used = k.rec.LastUsedAt.UTC().Format("2 Jan 2006 15:04 MST")
		}
		page.Keys = append(page.Keys, templates.SecurityKey{ID: k.rec.ID, Name: k.rec.Name, Kind: k.kind(),
			Added: k.rec.CreatedAt.UTC().Format("2 Jan 2006"), LastUsed: used})
	}
	a.render(w, r, status, page)
}

// accountSession returns the live session of a POST to the account pages
// with a valid CSRF token. It answers itself and reports false otherwise:
// asJSON for begin.
func (a *Authenticator) accountSession(w http.ResponseWriter, r *http.Request, asJSON bool) (Session, directory.User, bool) {
	if err := parseWebAuthnForm(w, r); err != nil {
		if asJSON {
			jsonFail(w, http.StatusBadRequest, msgFormExpired)
		} else {
			a.Fail(w, r, http.StatusBadRequest, "Form not valid", "Go back and try again.")
		}
		return Session{}, directory.User{}, false
	}
	sess, ok, err := a.Current(r)
	if err == nil && ok {
		var u directory.User
		if u, err = a.dir.User(r.Context(), sess.UserID); err == nil {
			if sess.ValidCSRF(r) {
				return sess, u, true
			}
			ok = false
		}
	}
	switch {
	case err != nil && asJSON:
		a.jsonUnavailable(w, r, err)
	case err != nil:
		a.unavailable(w, r, err)
	case asJSON:
		jsonFail(w, http.StatusForbidden, msgFormExpired)
	default:
		a.Fail(w, r, http.StatusForbidden, "This form has expired", "Go back, reload the page and try again.")
	}
	return Session{}, directory.User{}, false
}

// beginAccountKey answers the options for adding a key on the account
// page.
func (a *Authenticator) beginAccountKey(w http.ResponseWriter, r *http.Request) {
	sess, _, ok := a.accountSession(w, r, true)
	if !ok {
		return
	}
	rp, err := a.relyingParty()
	if err != nil {
		a.jsonUnavailable(w, r, err)
		return
	}
	ctx := r.Context()
	wu, err := a.keysOf(ctx, sess.UserID)
	if err != nil {
		a.jsonUnavailable(w, r, err)
		return
	}
	opts, sd, err := rp.BeginRegistration(wu, registrationOptions(wu)...)
	if err == nil {
		err = a.putChallenge(ctx, purposeAccount, directory.HashToken(sess.ID), sd)
	}
	if err != nil {
		a.jsonUnavailable(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, beginResponse{Options: opts, Finish: securityKeysPath + "/finish"})
}

// finishAccountKey stores the key added on the account page under the
// name the user gave it.
func (a *Authenticator) finishAccountKey(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := a.accountSession(w, r, false)
	if !ok {
		return
	}
	ctx, name := r.Context(), r.PostForm.Get("name")
	raw := r.PostForm.Get("credential")
	if raw == "" {
		a.renderSecurityKeys(w, r, sess, u, http.StatusUnprocessableEntity, name, []templates.FieldError{{
			Message: "Your browser did not register a security key or passkey. Use a recent version of Chrome, Edge, Firefox or Safari, with JavaScript turned on."}})
		return
	}
	rp, err := a.relyingParty()
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(raw))
	if err != nil {
		a.keyFailed(w, r, u.ID, securityKeysPath, err)
		return
	}
	sd, err := a.takeChallenge(ctx, purposeAccount, directory.HashToken(sess.ID), parsed.Response.CollectedClientData.Challenge)
	if errors.Is(err, ephemeral.ErrNotFound) {
		a.keyFailed(w, r, u.ID, securityKeysPath, errors.New("challenge unknown, expired or used"))
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	wu, err := a.keysOf(ctx, u.ID)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	_, err = a.register(ctx, r, rp, wu, sd, parsed, name)
	var pe *protocol.Error
	if errors.As(err, &pe) {
		a.keyFailed(w, r, u.ID, securityKeysPath, err)
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	http.Redirect(w, r, securityKeysPath, http.StatusSeeOther)
}

// freshAccountSession is accountSession for removing a second factor: it
// also needs a sign-in in the last ten minutes, and sends an older one to
// sign in again first (back to the security keys page).
func (a *Authenticator) freshAccountSession(w http.ResponseWriter, r *http.Request) (directory.User, bool) {
	sess, u, ok := a.accountSession(w, r, false)
	if !ok {
		return directory.User{}, false
	}
	if a.now().Sub(sess.AuthTime) > freshAuth {
		a.StartLogin(w, r, LoginOptions{Return: securityKeysPath, LoginHint: u.Email})
		return directory.User{}, false
	}
	return u, true
}

// removeAccountKey removes one of the user's keys. It needs a sign-in in
// the last ten minutes; an older one is sent to sign in again first.
func (a *Authenticator) removeAccountKey(w http.ResponseWriter, r *http.Request) {
	u, ok := a.freshAccountSession(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	wu, err := a.keysOf(ctx, u.ID)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	id := r.PostForm.Get("id")
	i := slices.IndexFunc(wu.keys, func(k storedKey) bool { return k.rec.ID == id })
	if i < 0 {
		http.Redirect(w, r, securityKeysPath, http.StatusSeeOther) // removed already
		return
	}
	k := wu.keys[i]
	if err := a.dir.DeleteCredential(ctx, u.ID, k.rec.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
		a.unavailable(w, r, err)
		return
	}
	a.audit(ctx, r, "mfa.remove", u.ID, directory.OutcomeSuccess, map[string]string{"method": "webauthn", "credential": k.rec.ID})
	a.notify(ctx, u, "A security key or passkey was removed from your NHS directory account",
		fmt.Sprintf("Hello %s,\n\nThe %s called “%s” was removed from your NHS directory account (%s) on %s from the address %s. "+
			"It can no longer be used to sign in.\n\n"+
			"If you did not do this, change your password at %s/account/password and tell your organisation's administrator straight away.\n",
			u.Name(), strings.ToLower(k.kind()), k.rec.Name, u.Email, a.now().UTC().Format("2 January 2006 at 15:04 MST"), clientIP(r), a.cfg.Issuer))
	http.Redirect(w, r, securityKeysPath, http.StatusSeeOther)
}

const authenticatorAppRemovePath = "/account/authenticator-app/remove"

// removeAuthenticatorApp removes the signed-in user's authenticator app,
// after a recent sign-in, as removeAccountKey does a key. Someone whose
// organisation or role needs a second factor is asked to set one up at
// their next sign-in without one.
func (a *Authenticator) removeAuthenticatorApp(w http.ResponseWriter, r *http.Request) {
	u, ok := a.freshAccountSession(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	apps, err := a.dir.Credentials(ctx, u.ID, directory.CredentialTOTP)
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	for _, c := range apps {
		if err := a.dir.DeleteCredential(ctx, u.ID, c.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
			a.unavailable(w, r, err)
			return
		}
	}
	if len(apps) > 0 {
		a.audit(ctx, r, "mfa.remove", u.ID, directory.OutcomeSuccess, map[string]string{"method": "totp"})
		a.notify(ctx, u, "An authenticator app was removed from your NHS directory account",
			fmt.Sprintf("Hello %s,\n\nThe authenticator app was removed from your NHS directory account (%s) on %s from the address %s. "+
				"Its codes can no longer be used to sign in.\n\n"+
				"If you did not do this, change your password at %s/account/password and tell your organisation's administrator straight away.\n",
				u.Name(), u.Email, a.now().UTC().Format("2 January 2006 at 15:04 MST"), clientIP(r), a.cfg.Issuer))
	}
	http.Redirect(w, r, securityKeysPath, http.StatusSeeOther)
}
