package testkit

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Browser is a scripted user agent: it keeps cookies, follows redirects one
// hop at a time so tests can stop at the relying party, and fills in the
// forms of Lanyard's pages as a person would.
type Browser struct {
	t    testing.TB
	HTTP *http.Client
}

// Browser returns a new user agent with an empty cookie jar.
func (s *Server) Browser(t testing.TB) *Browser {
	return &Browser{t: t, HTTP: s.Client(t)}
}

// NewBrowser returns a user agent on hc, which should keep cookies and not
// follow redirects.
func NewBrowser(t testing.TB, hc *http.Client) *Browser { return &Browser{t: t, HTTP: hc} }

// Page is a response with its body read.
type Page struct {
	URL    *url.URL
	Status int
	Header http.Header
	Body   string
}

func (b *Browser) do(req *http.Request) Page {
	b.t.Helper()
	resp, err := b.HTTP.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return Page{URL: req.URL, Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// Get fetches rawURL without following redirects.
func (b *Browser) Get(rawURL string) Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// Post sends a form without following redirects.
func (b *Browser) Post(rawURL string, form url.Values) Page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// Follow follows redirects from p until a page that is not a redirect, or
// until the next location is outside base (the relying party), which is
// returned unfetched as Location.
func (b *Browser) Follow(p Page, base string) (last Page, location *url.URL) {
	b.t.Helper()
	for range 20 {
		if p.Status < 300 || p.Status > 399 {
			return p, nil
		}
		loc, err := p.URL.Parse(p.Header.Get("Location"))
		if err != nil {
			b.t.Fatalf("bad Location %q: %v", p.Header.Get("Location"), err)
		}
		if !strings.HasPrefix(loc.String(), base) {
			return p, loc
		}
		p = b.Get(loc.String())
	}
	b.t.Fatalf("too many redirects from %s", p.URL)
	return p, nil
}

var (
	formRE  = regexp.MustCompile(`(?s)<form\b[^>]*\baction="([^"]*)"[^>]*>(.*?)</form>`)
	inputRE = regexp.MustCompile(`<input\b[^>]*>`)
	attrRE  = regexp.MustCompile(`\b(name|value|type)="([^"]*)"`)
)

// Form returns the action and fields (hidden ones filled) of the first
// form on the page whose body contains marker (such as `name="password"`).
func (p Page) Form(t testing.TB, marker string) (action string, fields url.Values) {
	t.Helper()
	for _, m := range formRE.FindAllStringSubmatch(p.Body, -1) {
		if !strings.Contains(m[2], marker) {
			continue
		}
		fields = url.Values{}
		for _, in := range inputRE.FindAllString(m[2], -1) {
			var name, value string
			for _, a := range attrRE.FindAllStringSubmatch(in, -1) {
				switch a[1] {
				case "name":
					name = html.UnescapeString(a[2])
				case "value":
					value = html.UnescapeString(a[2])
				}
			}
			if name != "" {
				fields.Set(name, value)
			}
		}
		u, err := p.URL.Parse(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatalf("form action %q: %v", m[1], err)
		}
		return u.String(), fields
	}
	t.Fatalf("no form with %s on %s (status %d):\n%.3000s", marker, p.URL, p.Status, p.Body)
	return "", nil
}

// Submit fills the form containing marker with values and posts it.
func (b *Browser) Submit(p Page, marker string, values map[string]string) Page {
	b.t.Helper()
	action, fields := p.Form(b.t, marker)
	for k, v := range values {
		fields.Set(k, v)
	}
	return b.Post(action, fields)
}

// SignIn completes the login ceremony from the first login page: email,
// then password. It returns the page after the password, unfollowed.
func (b *Browser) SignIn(p Page, email, password string) Page {
	b.t.Helper()
	p = b.Submit(p, `name="email"`, map[string]string{"email": email})
	p, _ = b.Follow(p, p.URL.Scheme+"://"+p.URL.Host)
	return b.Submit(p, `name="password"`, map[string]string{"password": password})
}
