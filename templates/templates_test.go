package templates

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "update the .golden.html files in testdata")

// pageCases is every page with fixed data, including error states. Each has a golden file
// testdata/<name>.golden.html.
var pageCases = []struct {
	name string
	page Page
}{
	{"login_identify", LoginIdentify{
		Action:    "/login/identify",
		CSRFToken: "csrf-token-1",
		Ceremony:  "ceremony-1",
	}},
	{"login_identify_client", LoginIdentify{
		Action:     "/login/identify",
		CSRFToken:  "csrf-token-1",
		Ceremony:   "ceremony-1",
		Email:      "jane.smith@nhs.net",
		ClientName: "Summary Care Record",
	}},
	{"login_identify_error", LoginIdentify{
		Action:     "/login/identify",
		CSRFToken:  "csrf-token-1",
		Ceremony:   "ceremony-1",
		Email:      "jane.smith@",
		ClientName: "Summary Care Record",
		Errors: []FieldError{
			{Field: "email", Message: "Enter an email address in the correct format, like name@example.nhs.uk"},
		},
	}},
	{"login_password", LoginPassword{
		Action:            "/login/password",
		CSRFToken:         "csrf-token-2",
		Ceremony:          "ceremony-1",
		Email:             "jane.smith@nhs.net",
		ClientName:        "Summary Care Record",
		NotYouURL:         "/login?ceremony=ceremony-1",
		ForgotPasswordURL: "/login/reset",
	}},
	{"login_password_error", LoginPassword{
		Action:    "/login/password",
		CSRFToken: "csrf-token-2",
		Ceremony:  "ceremony-1",
		Email:     "jane.smith@nhs.net",
		NotYouURL: "/login?ceremony=ceremony-1",
		Errors: []FieldError{
			{Field: "password", Message: "Enter a correct email address and password"},
			{Message: "Your account will be locked after 2 more failed attempts"},
		},
	}},
	{"error", Error{
		Title:     "Sorry, there is a problem with the service",
		Message:   "Try again later.",
		RequestID: "01J9Z6T3K4",
		Back:      Link{URL: "/account"},
	}},
	{"error_minimal", Error{
		Title:   "The application's address is not registered",
		Message: "The application that sent you here gave an address Lanyard does not know. Contact the application's support team.",
	}},
	{"logged_out", LoggedOut{SignInURL: "/account"}},
	{"logout_confirm", LogoutConfirm{
		Action:     "/oidc/end_session",
		CSRFToken:  "csrf-token-3",
		ClientName: "Summary Care Record",
		Hidden: []Hidden{
			{Name: "client_id", Value: "scr"},
			{Name: "post_logout_redirect_uri", Value: "/after-logout?x=1&y=2"},
			{Name: "state", Value: "af0ifjsldkj"},
		},
	}},
	{"account", Account{
		Name:          "Jane Smith",
		Email:         "jane.smith@nhs.net",
		SignOutAction: "/logout",
		CSRFToken:     "csrf-token-4",
	}},
	{"account_full", Account{
		Name:              "Jane Smith",
		Email:             "jane.smith@nhs.net",
		SignOutAction:     "/logout",
		CSRFToken:         "csrf-token-4",
		PasswordExpires:   "3 December 2026",
		PasswordWarning:   true,
		ChangePasswordURL: "/account/password",
		RecentLogins: []LoginRecord{
			{Time: "23 Nov 2026 09:14", IP: "10.1.1.5", Place: "Leeds, GB", Device: "Firefox on Windows", Outcome: "Signed in"},
			{Time: "22 Nov 2026 23:02", IP: "203.0.113.9", Place: "Unknown", Device: "Chrome on Android", Outcome: "Wrong password"},
		},
	}},
	{"set_password_expired", SetPassword{
		Action:    "/login",
		CSRFToken: "csrf-token-5",
		Hidden:    []Hidden{{Name: "ceremony", Value: "ceremony-1"}},
		Heading:   "Your password has expired",
		Intro:     []string{"Choose a new password to carry on signing in."},
		Email:     "jane.smith@nhs.net",
		Hint:      "Use at least 10 characters. Three random words work well.",
		Button:    "Save and continue",
	}},
	{"set_password_change_error", SetPassword{
		Action:     "/account/password",
		CSRFToken:  "csrf-token-6",
		Heading:    "Change your password",
		Email:      "jane.smith@nhs.net",
		AskCurrent: true,
		Hint:       "Use at least 10 characters. Three random words work well.",
		Button:     "Change password",
		Errors: []FieldError{
			{Field: "current_password", Message: "Your current password is not right"},
			{Field: "new_password", Message: "This is a commonly used password. Choose something harder to guess"},
			{Field: "confirm_password", Message: "The passwords do not match"},
		},
	}},
	{"mfa_totp", MFA{Action: "/login", CSRFToken: "csrf-token-8", Ceremony: "ceremony-1", HasTOTP: true, OtherURL: "/login?c=ceremony-1&recovery=1"}},
	{"mfa_webauthn_error", MFA{Action: "/login", CSRFToken: "csrf-token-8", Ceremony: "ceremony-1", HasTOTP: true, WebAuthn: true,
		WebAuthnBegin: "/login/webauthn/mfa/begin", OtherURL: "/login?c=ceremony-1&recovery=1",
		Errors: []FieldError{{Field: "code", Message: "The code is not right"}}}},
	{"mfa_recovery", MFA{Action: "/login", CSRFToken: "csrf-token-8", Ceremony: "ceremony-1", RecoveryCode: true, OtherURL: "/login?c=ceremony-1"}},
	{"enrol_totp", EnrolTOTP{Action: "/login", CSRFToken: "csrf-token-9", Ceremony: "ceremony-1", Required: true,
		QRCode: "data:image/png;base64,iVBORw0KGgo=", Secret: "JBSW Y3DP EHPK 3PXP", WebAuthnBegin: "/login/webauthn/enrol/begin"}},
	{"recovery_codes", RecoveryCodes{Codes: []string{"ABCD-EFGH-IJKL-MNOP", "QRST-UVWX-YZ23-4567"}, ContinueAction: "/login", CSRFToken: "csrf-token-10", Ceremony: "ceremony-1"}},
	{"forgot_password", ForgotPassword{Action: "/password/forgot", CSRFToken: "csrf-token-7"}},
	{"forgot_password_error", ForgotPassword{Action: "/password/forgot", CSRFToken: "csrf-token-7", Email: "jane@",
		Errors: []FieldError{{Field: "email", Message: "Enter an email address in the correct format, like name@example.nhs.uk"}}}},
	{"notice", Notice{Title: "Check your email", Paragraphs: []string{"If jane.smith@nhs.net belongs to an account, we have sent it a link."},
		Link: Link{Text: "Back to sign in", URL: "/account"}}},
}

func newPages(t *testing.T) *Pages {
	t.Helper()
	p, err := New()
	if err != nil {
		t.Fatalf("New() error: %v", err)
	}
	return p
}

// render renders page with status 200 and returns the body, failing the test unless the response is a
// complete 200 HTML page.
func render(t *testing.T, p *Pages, page Page) string {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := p.Render(rec, http.StatusOK, page); err != nil {
		t.Fatalf("Render(%T) error: %v", page, err)
	}
	if rec.Code != http.StatusOK {
		t.Errorf("Render(%T) status = %d, want %d", page, rec.Code, http.StatusOK)
	}
	if got, want := rec.Header().Get("Content-Type"), "text/html; charset=utf-8"; got != want {
		t.Errorf("Render(%T) Content-Type = %q, want %q", page, got, want)
	}
	return rec.Body.String()
}

func TestGolden(t *testing.T) {
	p := newPages(t)
	for _, c := range pageCases {
		t.Run(c.name, func(t *testing.T) {
			got := render(t, p, c.page)
			file := filepath.Join("testdata", c.name+".golden.html")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./templates -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", file, diff)
			}
		})
	}
}

func TestEveryPageHasACase(t *testing.T) {
	var covered []string
	for _, c := range pageCases {
		covered = append(covered, c.page.templateName())
	}
	for _, pg := range allPages {
		if !slices.Contains(covered, pg.templateName()) {
			t.Errorf("no case in pageCases renders %T", pg)
		}
	}
}

var (
	tagRE      = regexp.MustCompile(`<(input|label|a|form|link|img|button)\b[^>]*>`)
	attrRE     = regexp.MustCompile(`\s([a-z][a-z-]*)(?:="([^"]*)")?`)
	idRE       = regexp.MustCompile(`\sid="([^"]*)"`)
	urlAttrRE  = regexp.MustCompile(`\s(href|src|action|formaction)="([^"]*)"`)
	titleRE    = regexp.MustCompile(`<title>([^<]*)</title>`)
	errorMsgRE = regexp.MustCompile(`<span class="nhsuk-error-message" id="([^"]*)"`)
	summaryRE  = regexp.MustCompile(`(?s)<div class="nhsuk-error-summary"[^>]*>.*?</ul>`)
	externalRE = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]`)
)

type tag struct {
	name  string
	attrs map[string]string
}

func (t tag) has(name string) bool { _, ok := t.attrs[name]; return ok }

func tags(page string) []tag {
	var out []tag
	for _, m := range tagRE.FindAllStringSubmatch(page, -1) {
		tg := tag{name: m[1], attrs: map[string]string{}}
		for _, a := range attrRE.FindAllStringSubmatch(strings.TrimPrefix(m[0], "<"+m[1]), -1) {
			tg.attrs[a[1]] = a[2]
		}
		out = append(out, tg)
	}
	return out
}

// TestStructure checks every rendered page for what the style guide and the CSP require.
func TestStructure(t *testing.T) {
	p := newPages(t)
	for _, c := range pageCases {
		t.Run(c.name, func(t *testing.T) {
			for _, problem := range structureProblems(render(t, p, c.page)) {
				t.Error(problem)
			}
		})
	}
}

// structureProblems returns what is wrong with a rendered page, by the style guide and the CSP.
func structureProblems(page string) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !strings.HasPrefix(page, "<!doctype html>\n<html lang=\"en-GB\">") {
		bad("page does not start with doctype and lang=en-GB:\n%.80s", page)
	}
	if !strings.Contains(page, `<meta charset="utf-8">`) || !strings.Contains(page, `<meta name="viewport"`) {
		bad("page lacks charset or viewport meta")
	}
	if m := titleRE.FindStringSubmatch(page); m == nil || !strings.HasSuffix(m[1], " – Lanyard") || m[1] == " – Lanyard" {
		bad("title = %q, want \"<page> – Lanyard\"", m)
	}
	if !strings.Contains(page, `<link rel="stylesheet" href="`+CSSPath+`">`) {
		bad("page does not link %s", CSSPath)
	}
	for _, f := range []struct {
		re   string
		what string
	}{
		// Only Lanyard's own scripts, by src, with no inline code.
		{`(?i)<script(?:\s+src="/static/lanyard/[a-z]+\.js\?v=[0-9a-f]+"\s+defer></script>)?[^\n]?`, ""},
		{`(?i)<style`, "style element"},
		{`(?i)\sstyle=`, "inline style attribute"},
		{`(?i)\son[a-z]+=`, "inline event handler"},
		{`(?i)javascript:`, "javascript: URL"},
	} {
		if f.what == "" {
			for _, loc := range regexp.MustCompile(f.re).FindAllStringIndex(page, -1) {
				if m := page[loc[0]:loc[1]]; !strings.Contains(m, "</script>") {
					bad("page has a script element other than Lanyard's own by src: %q", page[max(0, loc[0]-40):min(len(page), loc[1]+40)])
				}
			}
			continue
		}
		if loc := regexp.MustCompile(f.re).FindStringIndex(page); loc != nil {
			bad("page has a %s: %q", f.what, page[max(0, loc[0]-40):min(len(page), loc[1]+40)])
		}
	}
	if m := externalRE.FindString(page); m != "" {
		bad("page names another host: %q", m)
	}

	ids := map[string]int{}
	for _, m := range idRE.FindAllStringSubmatch(page, -1) {
		ids[m[1]]++
	}
	for id, n := range ids {
		if n > 1 {
			bad("id %q used %d times", id, n)
		}
	}

	all := tags(page)
	labels := map[string]bool{}
	for _, tg := range all {
		if tg.name == "label" {
			if !tg.has("for") || ids[tg.attrs["for"]] == 0 {
				bad("label for=%q names no element", tg.attrs["for"])
			}
			labels[tg.attrs["for"]] = true
		}
	}
	described := map[string]bool{}
	for _, tg := range all {
		switch tg.name {
		case "input":
			if tg.attrs["type"] == "hidden" {
				continue
			}
			if !tg.has("autocomplete") || tg.attrs["autocomplete"] == "" {
				bad("input %v has no autocomplete", tg.attrs)
			}
			if tg.has("hidden") {
				continue // not shown, so not labelled (the username field for password managers)
			}
			if id := tg.attrs["id"]; id == "" || !labels[id] {
				bad("input %v has no <label for>", tg.attrs)
			}
			for _, ref := range strings.Fields(tg.attrs["aria-describedby"]) {
				if ids[ref] == 0 {
					bad("input %q aria-describedby=%q names no element", tg.attrs["id"], ref)
				}
				described[ref] = true
			}
			// An input in error is described by its error message (a hint may
			// describe any input too).
			if strings.Contains(tg.attrs["class"], "nhsuk-input--error") != strings.Contains(tg.attrs["aria-describedby"], tg.attrs["id"]+"-error") {
				bad("input %q: nhsuk-input--error and aria-describedby of its error message should go together: %v", tg.attrs["id"], tg.attrs)
			}
		case "form":
			if tg.attrs["method"] != "post" || tg.attrs["action"] == "" {
				bad("form %v: want method=post and an action", tg.attrs)
			}
			if !strings.Contains(page, `<input type="hidden" name="csrf_token" value="`) {
				bad("form carries no csrf_token")
			}
		}
	}
	for _, m := range errorMsgRE.FindAllStringSubmatch(page, -1) {
		if !described[m[1]] {
			bad("error message %q is referenced by no aria-describedby", m[1])
		}
	}

	if summary := summaryRE.FindString(page); summary != "" {
		for _, want := range []string{`role="alert"`, `tabindex="-1"`, `There is a problem`} {
			if !strings.Contains(summary, want) {
				bad("error summary lacks %s", want)
			}
		}
		for _, tg := range tags(summary) {
			if tg.name != "a" {
				continue
			}
			href := tg.attrs["href"]
			if !strings.HasPrefix(href, "#") || ids[href[1:]] == 0 {
				bad("error summary link %q points to no element", href)
			}
			if !strings.Contains(page, `class="nhsuk-form-group nhsuk-form-group--error"`) {
				bad("error summary links %q but no form group shows an error", href)
			}
		}
	} else if strings.Contains(page, "nhsuk-error-message") {
		bad("page shows a field error without an error summary")
	}

	for _, m := range urlAttrRE.FindAllStringSubmatch(page, -1) {
		// An image may be a data: PNG (the TOTP QR code; the CSP allows img-src data:).
		if u := m[2]; !strings.HasPrefix(u, "#") && !(m[1] == "src" && strings.HasPrefix(u, "data:image/png;base64,")) &&
			(!strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//")) {
			bad("%s=%q is not a same-origin path", m[1], u)
		}
	}
	return problems
}

func TestAssetsLinkedExist(t *testing.T) {
	p := newPages(t)
	h := Static()
	for _, c := range pageCases {
		for _, tg := range tags(render(t, p, c.page)) {
			u := tg.attrs["href"]
			if tg.name != "link" || !strings.HasPrefix(u, StaticPrefix) {
				continue
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
			if rec.Code != http.StatusOK {
				t.Errorf("%s: GET %s = %d, want 200", c.name, u, rec.Code)
			}
		}
	}
}

const xss = `<script>alert(1)</script>" onmouseover="alert(1)`

func TestEscaping(t *testing.T) {
	p := newPages(t)
	for _, c := range []struct {
		name string
		page Page
		want string // how the input appears once escaped
	}{
		{name: "LoginIdentify", page: LoginIdentify{Action: "/login", Email: xss, ClientName: xss, CSRFToken: xss, Ceremony: xss,
			Errors: []FieldError{{Field: "email", Message: xss}}}},
		{name: "LoginIdentifyBadField", page: LoginIdentify{Action: "/login", Errors: []FieldError{{Field: xss, Message: "m"}}},
			want: `href="#%3cscript%3ealert%281%29%3c%2fscript%3e%22%20onmouseover%3d%22alert%281%29"`},
		{name: "LoginPassword", page: LoginPassword{Action: "/login", Email: xss, ClientName: xss,
			Errors: []FieldError{{Field: "password", Message: xss}}}},
		{name: "Error", page: Error{Title: xss, Message: xss, RequestID: xss, Back: Link{Text: xss, URL: "/x"}}},
		{name: "LogoutConfirm", page: LogoutConfirm{Action: "/logout", ClientName: xss, Hidden: []Hidden{{Name: xss, Value: xss}}}},
		{name: "Account", page: Account{Name: xss, Email: xss, SignOutAction: "/logout"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := render(t, p, c.page)
			for _, raw := range []string{"<script>alert", `" onmouseover`, ` onmouseover="`} {
				if strings.Contains(got, raw) {
					t.Errorf("page contains unescaped %q", raw)
				}
			}
			want := c.want
			if want == "" {
				want = "&lt;script&gt;alert(1)&lt;/script&gt;&#34; onmouseover=&#34;alert(1)"
			}
			if !strings.Contains(got, want) {
				t.Errorf("page does not contain the escaped input %q", want)
			}
		})
	}
}

func TestUnsafeURLsNeutralised(t *testing.T) {
	p := newPages(t)
	got := render(t, p, LoginPassword{
		Action:            "javascript:alert(1)",
		Email:             "a@b.c",
		NotYouURL:         "javascript:alert(2)",
		ForgotPasswordURL: "data:text/html,<b>x</b>",
	})
	if strings.Contains(got, "javascript:") || strings.Contains(got, "data:text") {
		t.Error("page contains an unsafe URL")
	}
	if n := strings.Count(got, "#ZgotmplZ"); n != 3 {
		t.Errorf("page has %d #ZgotmplZ, want 3", n)
	}
}

func TestOptionalParts(t *testing.T) {
	p := newPages(t)
	for _, c := range []struct {
		name    string
		page    Page
		want    []string
		notWant []string
	}{
		{"NoClientName", LoginIdentify{Action: "/l"}, nil, []string{"to continue to"}},
		{"ClientName", LoginIdentify{Action: "/l", ClientName: "SCR"}, []string{"to continue to SCR"}, nil},
		{"NoErrorsTitle", LoginIdentify{Action: "/l"}, []string{"<title>Sign in – Lanyard</title>"}, []string{"There is a problem", "nhsuk-error"}},
		{"ErrorsTitle", LoginIdentify{Action: "/l", Errors: []FieldError{{"email", "Enter"}}}, []string{"<title>Error: Sign in – Lanyard</title>"}, nil},
		{"NoForgotten", LoginPassword{Action: "/l"}, nil, []string{"Forgotten your password?", "Not you?"}},
		{"Forgotten", LoginPassword{Action: "/l", ForgotPasswordURL: "/reset", NotYouURL: "/login"},
			[]string{`<a class="nhsuk-link" href="/reset">Forgotten your password?</a>`, `<a class="nhsuk-link" href="/login">Not you?</a>`}, nil},
		{"PasswordManagerUsername", LoginPassword{Action: "/l", Email: "a@b.c"},
			[]string{`<input id="username" name="email" type="email" value="a@b.c" autocomplete="username" readonly hidden>`}, nil},
		{"ErrorNoBack", Error{Title: "T", Message: "M"}, nil, []string{"Go back", "Reference:"}},
		{"ErrorBackDefaultText", Error{Title: "T", Back: Link{URL: "/b"}}, []string{`href="/b">Go back</a>`}, nil},
		{"ErrorReference", Error{Title: "T", RequestID: "R1"}, []string{"Reference: <span", ">R1</span>"}, nil},
		{"LoggedOutNoLink", LoggedOut{}, []string{"You have signed out"}, []string{"Sign in again"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := render(t, p, c.page)
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(got, w) {
					t.Errorf("page contains %q", w)
				}
			}
		})
	}
}

func TestRenderStatusAndHeaders(t *testing.T) {
	p := newPages(t)
	rec := httptest.NewRecorder()
	if err := p.Render(rec, http.StatusServiceUnavailable, Error{Title: "Down"}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want %d", rec.Code, http.StatusServiceUnavailable)
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}

	rec = httptest.NewRecorder()
	rec.Header().Set("Cache-Control", "private, max-age=60")
	if err := p.Render(rec, http.StatusOK, LoggedOut{}); err != nil {
		t.Fatal(err)
	}
	if got := rec.Header().Get("Cache-Control"); got != "private, max-age=60" {
		t.Errorf("Cache-Control = %q, want the caller's", got)
	}
}

// TestRenderFailureSendsNoPage checks that a failed render sends a plain 500 and no part of the page.
func TestRenderFailureSendsNoPage(t *testing.T) {
	p := newPages(t)
	broken, err := p.byName["error.html"].Clone()
	if err != nil {
		t.Fatal(err)
	}
	// A template that fails half-way through, after the layout has written its head.
	if _, err := broken.Parse(`{{define "content"}}<p>before</p>{{.NoSuchField}}{{end}}`); err != nil {
		t.Fatal(err)
	}
	p.byName["error.html"] = broken

	rec := httptest.NewRecorder()
	if err := p.Render(rec, http.StatusOK, Error{Title: "T"}); err == nil {
		t.Fatal("Render with a failing template returned nil error")
	}
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	if body := rec.Body.String(); strings.Contains(body, "<") {
		t.Errorf("body = %q, want no HTML", body)
	}
	if ct := rec.Header().Get("Content-Type"); strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want not HTML", ct)
	}

	if err := p.Render(httptest.NewRecorder(), http.StatusOK, nil); err == nil {
		t.Error("Render(nil) returned nil error")
	}
}

func TestStatic(t *testing.T) {
	h := Static()
	for _, c := range []struct {
		path       string
		wantStatus int
		wantType   string
	}{
		{CSSPath, http.StatusOK, "text/css; charset=utf-8"},
		{StaticPrefix + assetDir + "/images/favicon.svg", http.StatusOK, "image/svg+xml"},
		{StaticPrefix + assetDir + "/images/nhsuk-icon-cross.svg", http.StatusOK, "image/svg+xml"},
		{StaticPrefix + assetDir + "/nope.css", http.StatusNotFound, ""},
		{StaticPrefix + "nhsuk.css", http.StatusNotFound, ""},
		{StaticPrefix, http.StatusNotFound, ""},
		{StaticPrefix + assetDir, http.StatusNotFound, ""},
		{StaticPrefix + assetDir + "/", http.StatusNotFound, ""},
		{StaticPrefix + assetDir + "/images/", http.StatusNotFound, ""},
		{StaticPrefix + assetDir + "/../README.md", http.StatusNotFound, ""},
		{StaticPrefix + "README.md", http.StatusNotFound, ""},
		{StaticPrefix + "LICENSE", http.StatusNotFound, ""},
		{"/" + assetDir + "/nhsuk-frontend.min.css", http.StatusNotFound, ""},
	} {
		t.Run(c.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
			if rec.Code != c.wantStatus {
				t.Fatalf("GET %s status = %d, want %d", c.path, rec.Code, c.wantStatus)
			}
			if c.wantStatus != http.StatusOK {
				return
			}
			if got := rec.Header().Get("Content-Type"); got != c.wantType {
				t.Errorf("GET %s Content-Type = %q, want %q", c.path, got, c.wantType)
			}
			if got, want := rec.Header().Get("Cache-Control"), "public, max-age=31536000, immutable"; got != want {
				t.Errorf("GET %s Cache-Control = %q, want %q", c.path, got, want)
			}
			if rec.Body.Len() == 0 {
				t.Errorf("GET %s: empty body", c.path)
			}
		})
	}
}

var cssURLRE = regexp.MustCompile(`url\(\s*['"]?([^'")]*)`)

// TestStaticMakesNoOutsideRequests checks that the vendored CSS names no other host, loads no font or image
// from a path outside its folder, and that every url() it uses is embedded.
func TestStaticMakesNoOutsideRequests(t *testing.T) {
	err := fs.WalkDir(staticFS, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(staticFS, name)
		if err != nil {
			return err
		}
		if path.Ext(name) == ".ico" {
			return nil
		}
		// SVG files name their XML namespace, which is an identifier and not a request.
		text := strings.ReplaceAll(string(b), `xmlns="http://www.w3.org/2000/svg"`, "")
		if m := regexp.MustCompile(`(?i)https?://\S{0,60}`).FindString(text); m != "" {
			t.Errorf("%s names another host: %q", name, m)
		}
		if bytes.Contains(b, []byte("@import")) || bytes.Contains(b, []byte("@font-face")) {
			t.Errorf("%s has @import or @font-face", name)
		}
		if bytes.Contains(b, []byte("sourceMappingURL")) {
			t.Errorf("%s names a source map that is not vendored", name)
		}
		if path.Ext(name) != ".css" {
			return nil // url( in a script is code, not a request
		}
		for _, m := range cssURLRE.FindAllStringSubmatch(string(b), -1) {
			u := m[1]
			if strings.HasPrefix(u, "data:") || strings.HasPrefix(u, "#") {
				continue
			}
			if strings.HasPrefix(u, "/") || strings.Contains(u, ":") {
				t.Errorf("%s: url(%s) is not relative", name, u)
				continue
			}
			if _, err := fs.Stat(staticFS, path.Join(path.Dir(name), u)); err != nil {
				t.Errorf("%s: url(%s) is not embedded: %v", name, u, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestStructureProblemsCatches checks that structureProblems is not vacuous: each mutation of a good page is
// reported.
func TestStructureProblemsCatches(t *testing.T) {
	good := render(t, newPages(t), LoginIdentify{
		Action:    "/login",
		CSRFToken: "c",
		Ceremony:  "r",
		Errors:    []FieldError{{Field: "email", Message: "Enter your email address"}},
	})
	if p := structureProblems(good); len(p) != 0 {
		t.Fatalf("structureProblems(good page) = %q, want none", p)
	}
	for _, c := range []struct {
		name, old, new string
	}{
		{"Script", "</body>", "<script src=\"/x.js\"></script></body>"},
		{"InlineScript", "</body>", "<script>alert(1)</script></body>"},
		{"InlineHandler", `<button class`, `<button onclick="x()" class`},
		{"InlineStyle", `<h1 class`, `<h1 style="color:red" class`},
		{"OutsideHost", `href="/static/`, `href="https://cdn.example.com/static/`},
		{"ProtocolRelative", `href="/static/`, `href="//cdn.example.com/static/`},
		{"NoLabel", `<label class="nhsuk-label" for="email">`, `<label class="nhsuk-label">`},
		{"NoAutocomplete", ` autocomplete="username webauthn"`, ``},
		{"ErrorNotDescribed", ` aria-describedby="email-error"`, ``},
		{"SummaryLinkDangles", `<a href="#email">`, `<a href="#e-mail">`},
		{"DuplicateID", `id="maincontent"`, `id="email"`},
		{"NoCSRF", `name="csrf_token"`, `name="token"`},
		{"Lang", `lang="en-GB"`, `lang="en"`},
		{"Title", ` – Lanyard</title>`, `</title>`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(good, c.old) {
				t.Fatalf("page lacks %q", c.old)
			}
			if p := structureProblems(strings.Replace(good, c.old, c.new, 1)); len(p) == 0 {
				t.Errorf("replacing %q with %q: no problem reported", c.old, c.new)
			}
		})
	}
}
