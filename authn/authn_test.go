package authn

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lanyard/lanyard/authn/password"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral/mem"
	"github.com/lanyard/lanyard/templates"
)

// fakeDir knows one user, jane@nhs.net.
type fakeDir struct{ hash string }

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
	return ev, nil
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
	cookies := append(w.Result().Cookies(), extra...)
	id := strings.TrimPrefix(w.Header().Get("Location"), "/login?c=")
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
