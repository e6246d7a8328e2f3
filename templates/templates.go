// Package templates renders Lanyard's HTML pages (the login ceremony, sign-out and the account placeholder)
// with html/template and the NHS.UK design system, and serves the static assets they use.
//
// The pages and assets are embedded in the binary. [New] parses every page once, at startup, and fails if any
// does not parse. Pages load nothing from other hosts and use no script, inline style or inline event handler,
// so they run under a strict Content-Security-Policy (default-src 'self'; style-src 'self'; img-src 'self'
// data:; script-src 'self'; frame-ancestors 'none').
//
// Each page has a typed data struct. Every field is plain text and is escaped by html/template for where it
// appears; URL fields with an unsafe scheme (javascript: and the like) are replaced by "#ZgotmplZ".
package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// FrontendVersion is the version of the vendored npm package nhsuk-frontend (see static/README.md).
const FrontendVersion = "10.6.1"

// StaticPrefix is the URL path under which [Static] must be mounted, with its trailing slash:
//
//	mux.Handle("GET "+templates.StaticPrefix, templates.Static())
const StaticPrefix = "/static/"

// assetDir is the folder of the vendored assets, relative to StaticPrefix. Its name carries the version so
// that a new version never reuses a path that browsers may have cached.
const assetDir = "nhsuk-frontend-" + FrontendVersion

// CSSPath is the URL path of the stylesheet every page links to.
const CSSPath = StaticPrefix + assetDir + "/nhsuk-frontend.min.css"

//go:embed html/*.html
var htmlFS embed.FS

//go:embed static/nhsuk-frontend-10.6.1 static/lanyard
var staticFS embed.FS

// FieldError is one problem with what the user submitted. Field is the id of the input it concerns ("email",
// "password"); the error summary links to it, and the input shows Message next to it. An empty Field puts the
// message in the summary alone, for problems that belong to no single input.
type FieldError struct {
	Field   string
	Message string
}

// Hidden is one hidden form field carried through a page unchanged.
type Hidden struct {
	Name  string
	Value string
}

// Link is a hyperlink. A Link with an empty URL is not shown.
type Link struct {
	Text string
	URL  string
}

// Page is the data of one page: one of [LoginIdentify], [LoginPassword], [Error], [LoggedOut],
// [LogoutConfirm], [Account], [SetPassword], [ForgotPassword] and [Notice]. Other packages cannot add
// pages.
type Page interface {
	templateName() string
}

// LoginIdentify is step 1 of the login ceremony: the user gives their email address. The form posts the
// fields csrf_token, ceremony and email to Action.
type LoginIdentify struct {
	Action     string // URL the form posts to
	CSRFToken  string // posted as csrf_token
	Ceremony   string // ID of the login ceremony (authorization request), posted as ceremony
	Email      string // prefilled into the email input
	ClientName string // when not empty, the page says "to continue to ClientName"
	Errors     []FieldError
}

// LoginPassword is step 2 of the login ceremony: the user gives their password. The form posts csrf_token,
// ceremony, email and password to Action. The email field is hidden and read-only; it exists so that
// password managers save and fill the right account. Handlers must take the identity from the ceremony,
// never from the posted email.
type LoginPassword struct {
	Action            string
	CSRFToken         string
	Ceremony          string
	Email             string // the identity given in step 1, shown to the user
	ClientName        string
	NotYouURL         string // "Not you?" link back to step 1; empty omits it
	ForgotPasswordURL string // "Forgotten your password?" link; empty omits it
	Errors            []FieldError
}

// Error is a page that explains why something cannot go on, such as an unregistered redirect URI or a store
// that is down. Message is plain text for the user; it must never carry an error's own text. RequestID is
// shown as a reference for support.
type Error struct {
	Title     string
	Message   string
	RequestID string
	Back      Link // optional; Text defaults to "Go back"
}

// LoggedOut tells the user they have signed out.
type LoggedOut struct {
	SignInURL string // optional "Sign in again" link
}

// LogoutConfirm asks the user whether to sign out (an RP-initiated logout without a valid id_token_hint).
// The form posts csrf_token and each of Hidden (id_token_hint, post_logout_redirect_uri, state, client_id…)
// to Action.
type LogoutConfirm struct {
	Action     string
	CSRFToken  string
	Hidden     []Hidden
	ClientName string // when not empty, names the application that asked
}

// Account is the signed-in placeholder page: the user's name and email and a sign-out button that posts
// csrf_token to SignOutAction.
type Account struct {
	Name          string
	Email         string
	SignOutAction string
	CSRFToken     string
	// PasswordExpires is the date the password expires ("23 November 2027"); empty when it never does.
	PasswordExpires string
	// PasswordWarning marks an expiry close enough to warn about.
	PasswordWarning   bool
	ChangePasswordURL string
	// RecentLogins are the user's sign-ins of the last days, newest first.
	RecentLogins []LoginRecord
}

// LoginRecord is one sign-in attempt shown to the user.
type LoginRecord struct {
	Time    string
	IP      string
	Place   string
	Device  string
	Outcome string
}

// SetPassword is the form for choosing a new password: when it has
// expired at sign-in, on the account page (AskCurrent), and from a reset
// link. The form posts csrf_token, each of Hidden, current_password (with
// AskCurrent), new_password and confirm_password to Action.
type SetPassword struct {
	Action     string
	CSRFToken  string
	Hidden     []Hidden
	Heading    string
	Intro      []string // paragraphs above the form
	Email      string   // the account, for password managers
	AskCurrent bool
	Hint       string // shown under "New password", such as the policy in brief
	Button     string
	Errors     []FieldError
}

// ForgotPassword asks for the email address to send a reset link to. The
// form posts csrf_token and email to Action.
type ForgotPassword struct {
	Action    string
	CSRFToken string
	Email     string
	Errors    []FieldError
}

// Notice is a page that tells the user something: "check your email",
// "your password has been changed".
type Notice struct {
	Title      string
	Paragraphs []string
	Link       Link
}

// MFA asks for the second factor at sign-in: a code from the
// authenticator app, or a recovery code (RecoveryCode true). The form
// posts csrf_token, ceremony and code to Action. With WebAuthn, the page
// also offers the user's security keys and passkeys (see webauthn.js).
type MFA struct {
	Action        string
	CSRFToken     string
	Ceremony      string
	RecoveryCode  bool   // ask for a recovery code instead of an app code
	OtherURL      string // link to the other kind of code
	HasTOTP       bool
	WebAuthn      bool // the user has security keys or passkeys
	WebAuthnBegin string
	Errors        []FieldError
}

// EnrolTOTP sets up an authenticator app: QR code (a data: URL of a PNG)
// and the secret as text, confirmed by a first code. The form posts
// csrf_token, ceremony (if any) and code to Action. With WebAuthnBegin set
// the page also offers to register a security key instead.
type EnrolTOTP struct {
	Action        string
	CSRFToken     string
	Ceremony      string
	Required      bool // MFA is required before going on
	QRCode        template.URL
	Secret        string // grouped in fours for reading
	WebAuthnBegin string
	Errors        []FieldError
}

// RecoveryCodes shows newly made recovery codes, once. Continue is a form
// that posts csrf_token and ceremony (if any) to ContinueAction.
type RecoveryCodes struct {
	Codes          []string
	ContinueAction string
	CSRFToken      string
	Ceremony       string
}

// passwordFieldData is one password input for the passwordField template.
type passwordFieldData struct {
	ID, Label, Autocomplete, Hint, Error string
}

func (LoginIdentify) templateName() string  { return "login_identify.html" }
func (SetPassword) templateName() string    { return "set_password.html" }
func (ForgotPassword) templateName() string { return "forgot_password.html" }
func (Notice) templateName() string         { return "notice.html" }
func (MFA) templateName() string            { return "mfa.html" }
func (EnrolTOTP) templateName() string      { return "enrol_totp.html" }
func (RecoveryCodes) templateName() string  { return "recovery_codes.html" }
func (LoginPassword) templateName() string  { return "login_password.html" }
func (Error) templateName() string          { return "error.html" }
func (LoggedOut) templateName() string      { return "logged_out.html" }
func (LogoutConfirm) templateName() string  { return "logout_confirm.html" }
func (Account) templateName() string        { return "account.html" }

// allPages lists one value of every page type, so that New can check each has a template.
var allPages = append([]Page{LoginIdentify{}, LoginPassword{}, Error{}, LoggedOut{}, LogoutConfirm{}, Account{},
	SetPassword{}, ForgotPassword{}, Notice{}, MFA{}, EnrolTOTP{}, RecoveryCodes{}}, append(webauthnPages, riskPages...)...)

// Pages holds the parsed templates. It is safe for concurrent use.
type Pages struct {
	byName map[string]*template.Template
}

var funcs = template.FuncMap{
	// asset returns the URL path of a vendored asset, relative to the versioned asset folder.
	"asset": func(name string) string { return StaticPrefix + assetDir + "/" + name },
	// script returns the URL path of one of Lanyard's own scripts, with a
	// hash of its content so that the year-long cache never serves an old one.
	"script": func(name string) (string, error) {
		b, err := staticFS.ReadFile("static/lanyard/" + name)
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(b)
		return StaticPrefix + "lanyard/" + name + "?v=" + hex.EncodeToString(sum[:6]), nil
	},
	// field gathers one password input's data, with its error from errs.
	"field": func(errs []FieldError, id, label, autocomplete, hint string) passwordFieldData {
		d := passwordFieldData{ID: id, Label: label, Autocomplete: autocomplete, Hint: hint}
		for _, e := range errs {
			if e.Field == id {
				d.Error = e.Message
				break
			}
		}
		return d
	},
	// fieldError returns the message of the first error for the field with the given id, or "".
	"fieldError": func(errs []FieldError, field string) string {
		for _, e := range errs {
			if e.Field == field {
				return e.Message
			}
		}
		return ""
	},
}

// New parses every page template. It returns an error if any template does not parse or if a page type has
// no template, so a broken build fails at startup and not on the first request.
func New() (*Pages, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(htmlFS, "html/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	p := &Pages{byName: make(map[string]*template.Template)}
	for _, pg := range allPages {
		name := pg.templateName()
		t, err := layout.Clone()
		if err != nil {
			return nil, fmt.Errorf("clone layout for %s: %w", name, err)
		}
		if _, err := t.ParseFS(htmlFS, "html/"+name); err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		if t.Lookup("content") == nil || t.Lookup("title") == nil {
			return nil, fmt.Errorf("parse %s: must define \"title\" and \"content\"", name)
		}
		p.byName[name] = t
	}
	return p, nil
}

// Render writes page as a complete HTML response with the given status. It renders into a buffer first, so
// a template error never sends half a page: then it answers 500 with a plain-text body and returns the
// error for the caller to log. It sets Content-Type, and Cache-Control: no-store unless the caller set a
// Cache-Control already (login forms carry CSRF tokens and must not be cached).
func (p *Pages) Render(w http.ResponseWriter, status int, page Page) error {
	var buf bytes.Buffer
	if err := p.execute(&buf, page); err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

func (p *Pages) execute(buf *bytes.Buffer, page Page) error {
	if page == nil {
		return fmt.Errorf("render: nil page")
	}
	name := page.templateName()
	t, ok := p.byName[name]
	if !ok {
		return fmt.Errorf("render %s: no such template", name)
	}
	if err := t.ExecuteTemplate(buf, "layout", page); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	return nil
}

// Static returns a handler for the embedded assets, to be mounted at [StaticPrefix] without stripping the
// prefix. Asset paths carry the nhsuk-frontend version, so responses are cacheable for a year. Folders are
// not listed: any path that is not a file answers 404.
func Static() http.Handler {
	files := http.FileServerFS(staticFS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/")
		if !ok || !strings.HasPrefix(r.URL.Path, StaticPrefix) || name != path.Clean(name) || !fs.ValidPath(name) {
			http.NotFound(w, r)
			return
		}
		if fi, err := fs.Stat(staticFS, name); err != nil || !fi.Mode().IsRegular() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	})
}
