package authn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lanyard/lanyard/authn/mail"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/risk"
	"github.com/lanyard/lanyard/templates"
)

// The risk engine in the login ceremony: every password attempt is
// assessed before the password is checked; the verdict is applied once
// the password is known to be right (a wrong password gets the usual
// answer, so the verdict is no oracle), except that a blocked attempt
// gets the block page either way. A step-up demands a second factor even
// where the organisation does not; a user with none is blocked rather
// than asked to enrol one (which would let an attacker enrol theirs).
// Users are told of every step-up and block, with a signed single-use
// "it wasn't me" link that locks the account and alerts administrators,
// who also get a periodic digest.

// RiskDirectory is what the risk parts of authn need of the directory,
// beyond Directory.
type RiskDirectory interface {
	UpdateUser(ctx context.Context, u directory.User) error
	Organisation(ctx context.Context, id string) (directory.Organisation, error)
	AppendRiskEvent(ctx context.Context, e directory.RiskEvent) error
	RiskEvent(ctx context.Context, id string) (directory.RiskEvent, error)
	RiskEvents(ctx context.Context, orgID string, since, until time.Time, limit int) ([]directory.RiskEvent, error)
	SetRiskEventOutcome(ctx context.Context, id, outcome string) error
	ReportRiskEvent(ctx context.Context, id string, now time.Time) error
	ClaimRiskDigest(ctx context.Context, orgID string, period time.Time) (bool, error)
	UsersWithRole(ctx context.Context, orgID string, role directory.Role) ([]directory.User, error)
}

// ceremonyRisk is the risk engine's verdict on a ceremony.
type ceremonyRisk struct {
	Verdict string   `json:"verdict"`
	Score   float64  `json:"score"`
	Reasons []string `json:"reasons,omitempty"`
	Place   string   `json:"place,omitempty"`
	EventID string   `json:"event_id,omitempty"`
	// OrgID and Role place the user in a population; kept from the
	// assessment so that the later steps need not read them again.
	OrgID string `json:"org_id,omitempty"`
	Role  string `json:"role,omitempty"`
	// Blocked: the ceremony ends on the block page.
	Blocked bool `json:"blocked,omitempty"`
	// NoFactor: stepped up, but the user has no second factor.
	NoFactor bool `json:"no_factor,omitempty"`
}

// ReportTTL is how long an "it wasn't me" link works.
const ReportTTL = 7 * 24 * time.Hour

// setDevice gives the browser a signed device cookie when it has none
// that verifies. The cookie's name and lifetime are those of the lockout's
// device cookie, which it replaces: call it after deviceID, so that its
// Set-Cookie comes last.
func (a *Authenticator) setDevice(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Devices == nil {
		return
	}
	if c, err := r.Cookie(a.deviceCookieName()); err == nil {
		if _, ok := a.cfg.Devices.Parse(c.Value); ok {
			return
		}
	}
	v, _ := a.cfg.Devices.New()
	http.SetCookie(w, &http.Cookie{
		Name: a.deviceCookieName(), Value: v, Path: "/", HttpOnly: true, Secure: a.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: 400 * 24 * 3600,
	})
}

// riskAttempt describes the request's attempt on the account with email,
// whose user is u (the zero User when there is none).
func (a *Authenticator) riskAttempt(ctx context.Context, r *http.Request, email string, u directory.User) risk.Attempt {
	// The account is named with its lockout generation, so that an unlock
	// or a password reset also forgets the risk engine's count of failures.
	acct := accountKey(email)
	if gen, err := a.generation(ctx, acct); err == nil {
		acct += ":" + gen
	}
	at := risk.Attempt{Time: a.now(), UserID: u.ID, Account: acct, UserAgent: r.UserAgent()}
	if ip, err := netip.ParseAddr(clientIP(r)); err == nil {
		at.IP = ip
	}
	if ck, err := r.Cookie(a.deviceCookieName()); err == nil {
		at.Device, _ = a.cfg.Devices.Parse(ck.Value)
	}
	if u.ID != "" {
		if ms, err := a.dir.Memberships(ctx, u.ID); err == nil && len(ms) > 0 {
			at.OrgID, at.Role = ms[0].OrgID, string(directory.RoleStaff)
			if slices.Contains(ms[0].Roles, directory.RoleOrgAdmin) {
				at.Role = string(directory.RoleOrgAdmin)
			}
		}
	}
	return at
}

// ceremonyAttempt is riskAttempt for a ceremony already assessed: the
// user's organisation and role come from the assessment.
func (a *Authenticator) ceremonyAttempt(ctx context.Context, r *http.Request, c *ceremony, u directory.User) risk.Attempt {
	if c.Risk == nil {
		return a.riskAttempt(ctx, r, c.Email, u)
	}
	at := a.riskAttempt(ctx, r, c.Email, directory.User{})
	at.UserID, at.OrgID, at.Role = u.ID, c.Risk.OrgID, c.Risk.Role
	return at
}

// assessRisk runs the engine on a password attempt before the password
// is checked, keeps the verdict on the ceremony and audits it.
func (a *Authenticator) assessRisk(ctx context.Context, r *http.Request, c *ceremony, u directory.User) {
	if a.cfg.Risk == nil {
		return
	}
	at := a.riskAttempt(ctx, r, c.Email, u)
	d := a.cfg.Risk.Assess(ctx, at)
	c.Risk = &ceremonyRisk{Verdict: string(d.Verdict), Score: d.Score, Reasons: d.Reasons, Place: d.Place.String(), OrgID: at.OrgID, Role: at.Role}
	a.audit(ctx, r, "login.risk", u.ID, riskOutcome(d.Verdict), map[string]string{
		"decision": string(d.Verdict), "score": strconv.FormatFloat(d.Score, 'f', 1, 64),
		"reasons": strings.Join(d.Reasons, "; "), "place": c.Risk.Place,
	})
}

func riskOutcome(v risk.Verdict) string {
	if v == risk.Allow {
		return directory.OutcomeSuccess
	}
	return directory.OutcomeDenied
}

// riskWrongPassword tells the engine of a wrong password. A blocked
// attempt still ends on the block page, so that the page says nothing of
// the password; no one is emailed.
func (a *Authenticator) riskWrongPassword(ctx context.Context, r *http.Request, c *ceremony, u directory.User) {
	if c.Risk == nil {
		return
	}
	a.cfg.Risk.Observe(ctx, a.ceremonyAttempt(ctx, r, c, u), risk.PasswordFailed)
	if c.Risk.Verdict == string(risk.Block) {
		c.Risk.Blocked = true
		if u.ID != "" {
			a.recordRisk(ctx, r, c, u, directory.RiskBlock, "wrong password")
		}
	}
}

// riskRightPassword applies the verdict once the password is right.
func (a *Authenticator) riskRightPassword(ctx context.Context, r *http.Request, c *ceremony, u directory.User) error {
	if c.Risk == nil {
		return nil
	}
	switch risk.Verdict(c.Risk.Verdict) {
	case risk.Block:
		c.Risk.Blocked = true
		a.recordRisk(ctx, r, c, u, directory.RiskBlock, "blocked")
		a.cfg.Risk.Observe(ctx, a.ceremonyAttempt(ctx, r, c, u), risk.Refused)
	case risk.StepUp:
		factors, err := a.secondFactors(ctx, u.ID)
		if err != nil {
			return err
		}
		if len(factors) == 0 {
			c.Risk.Blocked, c.Risk.NoFactor = true, true
			c.Risk.Reasons = append(c.Risk.Reasons, "no second factor to confirm it is the user")
			a.recordRisk(ctx, r, c, u, directory.RiskBlock, "blocked")
			a.cfg.Risk.Observe(ctx, a.ceremonyAttempt(ctx, r, c, u), risk.Refused)
			return nil
		}
		c.RequireMFA = true
		a.recordRisk(ctx, r, c, u, directory.RiskStepUp, "")
	}
	return nil
}

// riskSignedIn teaches the engine a sign-in that finished, and closes a
// step-up's event.
func (a *Authenticator) riskSignedIn(ctx context.Context, r *http.Request, c *ceremony) {
	if a.cfg.Risk == nil {
		return
	}
	at := a.ceremonyAttempt(ctx, r, c, directory.User{ID: c.UserID})
	if lw := writesFrom(ctx); lw != nil {
		lw.learn = &at
	} else {
		a.cfg.Risk.Observe(ctx, at, risk.Succeeded)
	}
	if c.Risk != nil && c.Risk.EventID != "" {
		if err := a.cfg.RiskDirectory.SetRiskEventOutcome(ctx, c.Risk.EventID, "passed"); err != nil {
			a.log.ErrorContext(ctx, "risk event outcome", "user_id", c.UserID, "reason", err.Error())
		}
		a.audit(ctx, r, "login.risk_step_up", c.UserID, directory.OutcomeSuccess, map[string]string{"event": c.Risk.EventID})
	}
}

// recordRisk keeps a risk event for the administrators and, when the
// password was right, emails the user.
func (a *Authenticator) recordRisk(ctx context.Context, r *http.Request, c *ceremony, u directory.User, decision, outcome string) {
	e := directory.RiskEvent{
		ID: directory.NewID(), Time: a.now(), UserID: u.ID, Decision: decision, Score: c.Risk.Score,
		Reasons: c.Risk.Reasons, IP: clientIP(r), Place: c.Risk.Place, Outcome: outcome, OrgID: c.Risk.OrgID,
	}
	if err := a.cfg.RiskDirectory.AppendRiskEvent(ctx, e); err != nil {
		a.log.ErrorContext(ctx, "record risk event", "user_id", u.ID, "reason", err.Error())
		return
	}
	c.Risk.EventID = e.ID
	if outcome == "wrong password" {
		return
	}
	what := "We asked for your second factor (such as the code from your authenticator app) because it looked unusual."
	if decision == directory.RiskBlock {
		what = "We stopped it because it looked unusual."
	}
	a.notifyRisk(ctx, u, e, deviceName(r.UserAgent()), what)
}

func (a *Authenticator) notifyRisk(ctx context.Context, u directory.User, e directory.RiskEvent, device, what string) {
	if a.mail == nil {
		return
	}
	if u.Email == "" {
		var err error
		if u, err = a.dir.User(ctx, u.ID); err != nil {
			a.log.ErrorContext(ctx, "risk notification", "user_id", u.ID, "reason", err.Error())
			return
		}
	}
	link := strings.TrimRight(a.cfg.Issuer, "/") + "/login/risk/report?t=" + url.QueryEscape(a.reportToken(e.ID, e.Time.Add(ReportTTL)))
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\nSomeone signed in to your NHS directory account, or tried to:\n\n", u.Name())
	fmt.Fprintf(&b, "  When:   %s\n", localTime(e.Time))
	if e.Place != "" {
		fmt.Fprintf(&b, "  Where:  %s (%s)\n", e.Place, e.IP)
	} else {
		fmt.Fprintf(&b, "  Where:  %s\n", e.IP)
	}
	fmt.Fprintf(&b, "  Device: %s\n\n%s\n\n", device, what)
	fmt.Fprintf(&b, "If this was you, you need do nothing.\n\nIf it wasn't you, lock your account now (this link works once, for 7 days):\n%s\n\n", link)
	b.WriteString("Your organisation's administrators will be told, and will help you back in.\n")
	if err := a.mail.Send(ctx, mail.Message{To: u.Email, Subject: "Was this you? A sign-in to your NHS directory account", Body: b.String()}); err != nil {
		a.log.ErrorContext(ctx, "queue mail", "user_id", u.ID, "reason", err.Error())
	}
}

var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		return time.UTC
	}
	return l
}()

func localTime(t time.Time) string { return t.In(london).Format("Monday 2 January 2006 at 15:04 MST") }

// showRiskBlocked ends a blocked ceremony on the block page; the
// application gets nothing.
func (a *Authenticator) showRiskBlocked(w http.ResponseWriter, r *http.Request, c *ceremony) {
	a.eph.Delete(r.Context(), keyCeremony+c.ID)
	page := templates.Notice{Title: "We have stopped this sign-in", Paragraphs: []string{
		"This sign-in looked unusual for your account, so we have stopped it to keep your account safe.",
		"If it was you, try again from a device and place you usually use, or ask your organisation's administrator for help.",
	}}
	if c.Risk.NoFactor {
		page.Paragraphs = []string{
			"This sign-in looked unusual for your account, and your account has no second way to confirm it is you " +
				"(such as an authenticator app or a security key), so we have stopped it.",
			"Sign in from a device and place you usually use and set one up, or ask your organisation's administrator for help.",
		}
	}
	a.render(w, r, http.StatusForbidden, page)
}

// Report links: "ID.EXPIRY.TAG", the tag an HMAC-SHA256 under the first
// of cfg.RiskKeys (any of them verifies).

func (a *Authenticator) reportTag(key []byte, payload string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("lanyard risk report v1\x00" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

func (a *Authenticator) reportToken(eventID string, expires time.Time) string {
	p := eventID + "." + strconv.FormatInt(expires.Unix(), 10)
	return p + "." + a.reportTag(a.cfg.RiskKeys[0], p)
}

// parseReportToken returns the event ID of a good, unexpired token.
func (a *Authenticator) parseReportToken(tok string) (string, bool) {
	if len(tok) > 128 || len(a.cfg.RiskKeys) == 0 {
		return "", false
	}
	i := strings.LastIndexByte(tok, '.')
	if i < 0 {
		return "", false
	}
	payload, tag := tok[:i], tok[i+1:]
	good := false
	for _, k := range a.cfg.RiskKeys {
		if hmac.Equal([]byte(a.reportTag(k, payload)), []byte(tag)) {
			good = true
		}
	}
	id, exp, ok := strings.Cut(payload, ".")
	n, err := strconv.ParseInt(exp, 10, 64)
	if !good || !ok || err != nil || id == "" || !a.now().Before(time.Unix(n, 0)) {
		return "", false
	}
	return id, true
}

func (a *Authenticator) reportCSRF(tok string) string {
	return a.reportTag(a.cfg.RiskKeys[0], "csrf\x00"+tok)
}

func (a *Authenticator) riskRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /login/risk/report", a.showReport)
	mux.HandleFunc("POST /login/risk/report", a.submitReport)
}

func (a *Authenticator) badReportLink(w http.ResponseWriter, r *http.Request) {
	a.Fail(w, r, http.StatusBadRequest, "This link does not work",
		"It may have expired (links work for 7 days). If you think someone else is using your account, tell your organisation's administrator.")
}

func (a *Authenticator) showReport(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("t")
	id, ok := a.parseReportToken(tok)
	if !ok {
		a.badReportLink(w, r)
		return
	}
	e, err := a.cfg.RiskDirectory.RiskEvent(r.Context(), id)
	if errors.Is(err, directory.ErrNotFound) {
		a.badReportLink(w, r)
		return
	} else if err != nil {
		a.unavailable(w, r, err)
		return
	}
	if !e.ReportedAt.IsZero() {
		a.render(w, r, http.StatusOK, reportedPage())
		return
	}
	details := []string{localTime(e.Time)}
	if e.Place != "" {
		details = append(details, "From "+e.Place+" ("+e.IP+")")
	} else {
		details = append(details, "From "+e.IP)
	}
	a.render(w, r, http.StatusOK, templates.RiskReport{Action: "/login/risk/report", CSRFToken: a.reportCSRF(tok), Token: tok, Details: details})
}

func reportedPage() templates.RiskReport {
	return templates.RiskReport{Done: true, Title: "Your account is locked", Paragraphs: []string{
		"We have locked your account and told your organisation's administrators, who will contact you to help you back in.",
		"Nobody can sign in to it until then, including whoever used it.",
	}}
}

func (a *Authenticator) submitReport(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		a.Fail(w, r, http.StatusBadRequest, "Form not valid", "Go back and try again.")
		return
	}
	tok := r.PostForm.Get("token")
	id, ok := a.parseReportToken(tok)
	if !ok || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf_token")), []byte(a.reportCSRF(tok))) != 1 {
		a.badReportLink(w, r)
		return
	}
	err := a.cfg.RiskDirectory.ReportRiskEvent(ctx, id, a.now())
	switch {
	case errors.Is(err, directory.ErrConflict):
		a.render(w, r, http.StatusOK, reportedPage()) // the link works once
		return
	case errors.Is(err, directory.ErrNotFound):
		a.badReportLink(w, r)
		return
	case err != nil:
		a.unavailable(w, r, err)
		return
	}
	e, err := a.cfg.RiskDirectory.RiskEvent(ctx, id)
	if err == nil {
		err = a.lockForReport(ctx, r, e)
	}
	if err != nil {
		a.unavailable(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, reportedPage())
}

// lockForReport disables the account of the reported event's user and
// alerts the organisation's administrators.
func (a *Authenticator) lockForReport(ctx context.Context, r *http.Request, e directory.RiskEvent) error {
	u, err := a.dir.User(ctx, e.UserID)
	if err != nil {
		return err
	}
	u.Status = directory.UserDisabled
	u.DisabledNote = fmt.Sprintf("Locked by the user: the sign-in of %s from %s was not theirs (risk event %s)",
		e.Time.UTC().Format(time.RFC3339), cmpOr(e.Place, e.IP), e.ID)
	u.UpdatedAt = a.now()
	if err := a.cfg.RiskDirectory.UpdateUser(ctx, u); err != nil {
		return err
	}
	a.audit(ctx, r, "risk.reported", u.ID, directory.OutcomeSuccess, map[string]string{"event": e.ID, "locked": "true"})
	if err := a.EndUserSessions(ctx, r, u.ID, Session{}); err != nil {
		a.log.ErrorContext(ctx, "risk report: end sessions", "user_id", u.ID, "reason", err.Error())
	}
	admins, err := a.orgAdmins(ctx, e.OrgID)
	if err != nil {
		a.log.ErrorContext(ctx, "risk report: administrators", "user_id", u.ID, "reason", err.Error())
	}
	for _, adm := range admins {
		body := fmt.Sprintf("Hello %s,\n\n%s (%s) says a sign-in to their account was not them, and their account is now locked.\n\n"+
			"  When:    %s\n  Where:   %s\n  Why it was flagged: %s\n\nPlease contact them, check what was accessed, and help them back in "+
			"(reset their password and second factor, then enable the account).\n",
			adm.Name(), u.Name(), u.Email, localTime(e.Time), cmpOr(e.Place, e.IP), strings.Join(e.Reasons, "; "))
		if a.mail != nil {
			if err := a.mail.Send(ctx, mail.Message{To: adm.Email, Subject: "Account locked: " + u.Name() + " reported a sign-in that was not them", Body: body}); err != nil {
				a.log.ErrorContext(ctx, "queue mail", "user_id", adm.ID, "reason", err.Error())
			}
		}
	}
	return nil
}

func (a *Authenticator) orgAdmins(ctx context.Context, orgID string) ([]directory.User, error) {
	if orgID == "" {
		return nil, nil
	}
	return a.cfg.RiskDirectory.UsersWithRole(ctx, orgID, directory.RoleOrgAdmin)
}

func cmpOr(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// DefaultRiskDigest is how often administrators get a digest of risk events.
const DefaultRiskDigest = 24 * time.Hour

// SendRiskDigests emails each organisation's administrators the risk
// events of the last whole digest period (periods are aligned to the
// Unix epoch in UTC), once: instances racing to send the same digest
// claim it in the directory and only one sends. It returns how many
// digests it sent. Call it every few minutes.
func (a *Authenticator) SendRiskDigests(ctx context.Context) (int, error) {
	interval := a.cfg.RiskDigest
	if interval <= 0 {
		interval = DefaultRiskDigest
	}
	end := a.now().UTC().Truncate(interval)
	start := end.Add(-interval)
	evs, err := a.cfg.RiskDirectory.RiskEvents(ctx, "", start, end, 100_000)
	if err != nil {
		return 0, err
	}
	byOrg := map[string][]directory.RiskEvent{}
	var orgs []string
	for _, e := range evs {
		if e.OrgID == "" {
			continue
		}
		if byOrg[e.OrgID] == nil {
			orgs = append(orgs, e.OrgID)
		}
		byOrg[e.OrgID] = append(byOrg[e.OrgID], e)
	}
	sent := 0
	var errs []error
	for _, org := range orgs {
		ok, err := a.cfg.RiskDirectory.ClaimRiskDigest(ctx, org, start)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		if err := a.sendDigest(ctx, org, start, end, byOrg[org]); err != nil {
			errs = append(errs, err)
			continue
		}
		sent++
	}
	return sent, errors.Join(errs...)
}

func (a *Authenticator) sendDigest(ctx context.Context, orgID string, start, end time.Time, evs []directory.RiskEvent) error {
	o, err := a.cfg.RiskDirectory.Organisation(ctx, orgID)
	if err != nil {
		return err
	}
	admins, err := a.orgAdmins(ctx, orgID)
	if err != nil {
		return err
	}
	var b strings.Builder
	blocked := 0
	for _, e := range evs {
		if e.Decision == directory.RiskBlock {
			blocked++
		}
	}
	fmt.Fprintf(&b, "Unusual sign-ins at %s (%s) from %s to %s: %d stepped up, %d blocked.\n\n",
		o.Name, o.ODSCode, localTime(start), localTime(end), len(evs)-blocked, blocked)
	for _, e := range evs {
		who := e.UserID
		if u, err := a.dir.User(ctx, e.UserID); err == nil {
			who = u.Name() + " <" + u.Email + ">"
		}
		decision := "asked for a second factor"
		if e.Decision == directory.RiskBlock {
			decision = "blocked"
		}
		fmt.Fprintf(&b, "- %s: %s, %s, from %s (score %.1f)\n", localTime(e.Time), who, decision, cmpOr(e.Place, e.IP), e.Score)
		if len(e.Reasons) > 0 {
			fmt.Fprintf(&b, "    why: %s\n", strings.Join(e.Reasons, "; "))
		}
		switch {
		case !e.ReportedAt.IsZero():
			b.WriteString("    the user said it was NOT them; the account is locked\n")
		case e.Outcome == "passed":
			b.WriteString("    the second factor was proven\n")
		case e.Outcome != "":
			fmt.Fprintf(&b, "    outcome: %s\n", e.Outcome)
		}
	}
	if a.mail == nil {
		return nil
	}
	for _, adm := range admins {
		if err := a.mail.Send(ctx, mail.Message{To: adm.Email, Subject: fmt.Sprintf("Unusual sign-ins at %s: %d", o.Name, len(evs)),
			Body: "Hello " + adm.Name() + ",\n\n" + b.String()}); err != nil {
			return err
		}
	}
	return nil
}
