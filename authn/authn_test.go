package authn

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lanyard/lanyard/authn/password"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral/mem"
	"github.com/lanyard/lanyard/templates"
)

// fakeDir knows one user, jane@nhs.net.
type fakeDir struct {
	hash string
	// txs counts InTx calls; failTx makes them fail, as a database that
	// has gone away would.
	txs, appends int
	failTx       bool
	// unlockedAt is an administrator's unlock recorded in the directory.
	unlockedAt time.Time
}

func (f *fakeDir) AccountUnlockedAt(context.Context, string) (time.Time, error) {
	return f.unlockedAt, nil
}

func (f *fakeDir) UserByEmail(_ context.Context, email string) (directory.User, error) {
	if directory.EmailKey(email) != "jane@nhs.net" {
		return directory.User{}, directory.ErrNotFound
	}
	return directory.User{ID: "U1", Email: "jane@nhs.net", GivenName: "Jane", Status: directory.UserActive}, nil
}
func (f *fakeDir) User(ctx context.Context, id string) (directory.User, error) {
	return f.UserByEmail(ctx, "jane@nhs.net")
}
func (f *fakeDir) Credentials(_ context.Context, _ string, t directory.CredentialType) ([]directory.Credential, error) {
	if t != directory.CredentialPassword {
		return nil, nil
	}
	return []directory.Credential{{ID: "C1", UserID: "U1", Type: directory.CredentialPassword, Secret: []byte(f.hash)}}, nil
}
func (f *fakeDir) PutCredential(context.Context, directory.Credential) error { return nil }
func (f *fakeDir) DeleteCredential(context.Context, string, string) error    { return nil }
func (f *fakeDir) Memberships(context.Context, string) ([]directory.Membership, error) {
	return nil, nil
}
func (f *fakeDir) OrgPolicy(context.Context, string) (directory.OrgPolicy, error) {
	return directory.OrgPolicy{}, nil
}
func (f *fakeDir) RevokeRefreshTokensByUser(context.Context, string, string, time.Time) (int, error) {
	return 0, nil
}
func (f *fakeDir) AuditEventsFor(context.Context, string, time.Time, int) ([]directory.AuditEvent, error) {
	return nil, nil
}
func (f *fakeDir) AppendAudit(_ context.Context, ev directory.AuditEvent) (directory.AuditEvent, error) {
	f.appends++
	return ev, nil
}

// InTx runs fn on a store that has only the writes a sign-in gathers;
// anything else it is asked panics.
func (f *fakeDir) InTx(ctx context.Context, fn func(directory.Store) error) error {
	f.txs++
	if f.failTx {
		return errors.New("database is locked")
	}
	return fn(fakeTx{f: f})
}

type fakeTx struct {
	directory.Store
	f *fakeDir
}

func (t fakeTx) PutCredential(ctx context.Context, c directory.Credential) error {
	return t.f.PutCredential(ctx, c)
}
func (t fakeTx) AppendAudit(ctx context.Context, ev directory.AuditEvent) (directory.AuditEvent, error) {
	return t.f.AppendAudit(ctx, ev)
}

func newTestAuthenticator(t testing.TB) *Authenticator { return newTestAuthenticatorAt(t, time.Now) }

func newTestAuthenticatorAt(t testing.TB, now func() time.Time) *Authenticator {
	t.Helper()
	h, err := password.NewHasher(password.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := h.Hash("correct horse battery")
	pages, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	return New(Config{Sessions: SessionPolicy{Idle: time.Hour, Absolute: 8 * time.Hour}, CeremonyTTL: time.Hour},
		&fakeDir{hash: hash}, mem.New(0), h, nil, nil, pages, [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
		now, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

var ceremonyFieldRE = regexp.MustCompile(`name="ceremony" value="([^"]+)"`)

// start begins a ceremony and returns its cookies, ID and CSRF token.
// extra cookies (a device cookie) go with the first request.
func start(t testing.TB, a *Authenticator, extra ...*http.Cookie) ([]*http.Cookie, string, string) {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/login/oidc?id=1", nil)
	for _, c := range extra {
		r.AddCookie(c)
	}
	a.StartLogin(w, r, LoginOptions{Return: "/account"})
	if w.Code != http.StatusOK {
		t.Fatalf("start: status %d, want the first page", w.Code)
	}
	cookies := append(w.Result().Cookies(), extra...)
	m := ceremonyFieldRE.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("start: no ceremony field on the first page: %.500s", w.Body.String())
	}
	id := m[1]
	r = httptest.NewRequest(http.MethodGet, "/login?c="+id, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	c, err := a.loadCeremony(r, id)
	if err != nil {
		t.Fatalf("load ceremony: %v", err)
	}
	return cookies, id, c.CSRF
}

func post(a *Authenticator, cookies []*http.Cookie, body string) *httptest.ResponseRecorder {
	return postFrom(a, "192.0.2.1", cookies, body)
}

func postFrom(a *Authenticator, ip string, cookies []*http.Cookie, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(body))
	r.RemoteAddr = ip + ":40000"
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	a.Handler().ServeHTTP(w, r)
	return w
}

func TestCeremonySteps(t *testing.T) {
	a := newTestAuthenticator(t)
	cookies, id, csrf := start(t, a)
	base := "ceremony=" + id + "&csrf_token=" + csrf
	if w := post(a, cookies, base+"&email=jane%40nhs.net"); w.Code != http.StatusSeeOther {
		t.Fatalf("identify: %d", w.Code)
	}
	if w := post(a, cookies, base+"&email=jane%40nhs.net&password=wrong+password"); w.Code != http.StatusUnprocessableEntity {
		t.Errorf("wrong password: %d, want 422", w.Code)
	}
	w := post(a, cookies, base+"&email=jane%40nhs.net&password=correct+horse+battery")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/account" {
		t.Fatalf("password: %d to %q, want 303 to /account", w.Code, w.Header().Get("Location"))
	}
	if w := post(a, cookies, base+"&email=jane%40nhs.net&password=correct+horse+battery"); w.Code != http.StatusBadRequest {
		t.Errorf("finished ceremony reused: %d, want 400", w.Code)
	}
}

// TestSignInWritesCommitOnce checks that a password sign-in's directory
// writes (its audit events, the password's last use) commit in one
// transaction, and that when that commit fails the browser gets the 503
// page: no redirect onwards and no session cookie.
func TestSignInWritesCommitOnce(t *testing.T) {
	a := newTestAuthenticator(t)
	f := a.dir.(*fakeDir)
	cookies, id, csrf := start(t, a)
	base := "ceremony=" + id + "&csrf_token=" + csrf
	if w := post(a, cookies, base+"&email=jane%40nhs.net"); w.Code != http.StatusSeeOther {
		t.Fatalf("identify: %d", w.Code)
	}
	f.txs, f.appends = 0, 0
	w := post(a, cookies, base+"&email=jane%40nhs.net&password=correct+horse+battery")
	if w.Code != http.StatusSeeOther {
		t.Fatalf("password: %d", w.Code)
	}
	if f.txs != 1 || f.appends == 0 {
		t.Errorf("sign-in made %d transactions with %d audit events, want 1 with at least one", f.txs, f.appends)
	}

	cookies, id, csrf = start(t, a)
	base = "ceremony=" + id + "&csrf_token=" + csrf
	if w := post(a, cookies, base+"&email=jane%40nhs.net"); w.Code != http.StatusSeeOther {
		t.Fatalf("identify: %d", w.Code)
	}
	f.failTx = true
	w = post(a, cookies, base+"&email=jane%40nhs.net&password=correct+horse+battery")
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Location") != "" {
		t.Errorf("commit failed: %d to %q, want 503 and no redirect", w.Code, w.Header().Get("Location"))
	}
	for _, c := range w.Result().Cookies() {
		if strings.Contains(c.Name, "session") && c.MaxAge >= 0 {
			t.Errorf("commit failed, yet session cookie %s set", c.Name)
		}
	}
	if !strings.Contains(w.Body.String(), "Sorry, there is a problem with the service") {
		t.Errorf("commit failed: page %.300s", w.Body.String())
	}
	// A wrong password's audit events are committed too, before the page.
	f.failTx, f.txs = false, 0
	cookies, id, csrf = start(t, a)
	base = "ceremony=" + id + "&csrf_token=" + csrf
	post(a, cookies, base+"&email=jane%40nhs.net")
	if w := post(a, cookies, base+"&email=jane%40nhs.net&password=wrong+password"); w.Code != http.StatusUnprocessableEntity || f.txs != 1 {
		t.Errorf("wrong password: %d with %d transactions, want 422 with 1", w.Code, f.txs)
	}
}

// FuzzLoginForm posts arbitrary bodies to the login form of a live
// ceremony: the handler must answer with a page, never panic or 500.
func FuzzLoginForm(f *testing.F) {
	for _, s := range []string{"email=jane%40nhs.net", "password=x", "email=%zz", "email=a&email=b&password=", "step=identify", strings.Repeat("a=b&", 100)} {
		f.Add(s)
	}
	a := newTestAuthenticator(f)
	f.Fuzz(func(t *testing.T, body string) {
		cookies, id, csrf := start(t, a)
		w := post(a, cookies, "ceremony="+id+"&csrf_token="+csrf+"&"+body)
		switch w.Code {
		case http.StatusOK, http.StatusSeeOther, http.StatusBadRequest, http.StatusForbidden,
			http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("POST /login %q: status %d", body, w.Code)
		}
	})
}

// TestStartLoginFirstPage: a ceremony started by a GET (an application's
// authorize request) answers with its first page, saving the browser a
// round trip; one started by a form post redirects, so that reloading does
// not post again.
func TestStartLoginFirstPage(t *testing.T) {
	a := newTestAuthenticator(t)
	cookies, id, csrf := start(t, a) // fails unless the GET got the identify page
	if id == "" || csrf == "" || len(cookies) == 0 {
		t.Fatalf("start: ceremony %q, CSRF %q, %d cookies", id, csrf, len(cookies))
	}
	if w := post(a, cookies, "ceremony="+id+"&csrf_token="+csrf+"&email=jane%40nhs.net"); w.Code != http.StatusSeeOther {
		t.Errorf("the first page's form: %d, want 303", w.Code)
	}
	// The page carries the headers of every page, even from a handler
	// that does not set them (SecurityHeaders is not in front of this call).
	w := httptest.NewRecorder()
	a.StartLogin(w, httptest.NewRequest(http.MethodGet, "/login/oidc?id=2", nil), LoginOptions{Return: "/account"})
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
		if got := w.Header().Get(h); got != want {
			t.Errorf("first page: %s %q, want %q", h, got, want)
		}
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("first page: CSP %q", csp)
	}

	w = httptest.NewRecorder()
	a.StartLogin(w, httptest.NewRequest(http.MethodPost, "/saml/sso", strings.NewReader("SAMLRequest=x")), LoginOptions{Return: "/account"})
	if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?c=") {
		t.Errorf("started by a POST: %d to %q, want 303 to /login?c=…", w.Code, loc)
	}
	w = httptest.NewRecorder()
	a.StartLogin(w, httptest.NewRequest(http.MethodGet, "/login/oidc?id=1", nil), LoginOptions{Return: "//evil.example"})
	if w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" {
		t.Errorf("non-local return: %d to %q, want 400 and no redirect", w.Code, w.Header().Get("Location"))
	}
}
