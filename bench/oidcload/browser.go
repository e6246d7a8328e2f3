package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// browser is a scripted user agent with its own cookie jar. It follows
// redirects one hop at a time, so it can stop at the relying party, and
// fills in forms as a person would. testkit.Browser does the same for
// tests; this one reports errors instead of failing a test.
type browser struct{ http *http.Client }

func newBrowser(tr http.RoundTripper) (*browser, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	return &browser{&http.Client{
		Transport: tr, Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// page is a response with its body read.
type page struct {
	url    *url.URL
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) (page, error) {
	resp, err := b.http.Do(req)
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return page{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	return page{url: req.URL, status: resp.StatusCode, header: resp.Header, body: string(body)}, nil
}

func (b *browser) get(ctx context.Context, rawURL string) (page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return page{}, err
	}
	return b.do(req)
}

func (b *browser) post(ctx context.Context, rawURL string, form url.Values) (page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		return page{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// follow follows redirects from p until a page that is not a redirect, or
// until the next location is outside base, which is returned unfetched.
func (b *browser) follow(ctx context.Context, p page, base string) (last page, location *url.URL, err error) {
	for range 20 {
		if p.status < 300 || p.status > 399 {
			return p, nil, nil
		}
		loc, err := p.url.Parse(p.header.Get("Location"))
		if err != nil {
			return p, nil, fmt.Errorf("bad Location from %s: %w", p.url.Path, err)
		}
		if !strings.HasPrefix(loc.String(), base+"/") {
			return p, loc, nil
		}
		if p, err = b.get(ctx, loc.String()); err != nil {
			return p, nil, err
		}
	}
	return p, nil, fmt.Errorf("too many redirects from %s", p.url.Path)
}

var (
	formRE  = regexp.MustCompile(`(?s)<form\b[^>]*\baction="([^"]*)"[^>]*>(.*?)</form>`)
	inputRE = regexp.MustCompile(`<input\b[^>]*>`)
	attrRE  = regexp.MustCompile(`\b(name|value)="([^"]*)"`)
)

// submit posts the first form on p containing marker (such as
// `name="password"`), its hidden fields kept and values set over them.
func (b *browser) submit(ctx context.Context, p page, marker string, values url.Values) (page, error) {
	for _, m := range formRE.FindAllStringSubmatch(p.body, -1) {
		if !strings.Contains(m[2], marker) {
			continue
		}
		fields := url.Values{}
		for _, in := range inputRE.FindAllString(m[2], -1) {
			var name, value string
			for _, a := range attrRE.FindAllStringSubmatch(in, -1) {
				if a[1] == "name" {
					name = html.UnescapeString(a[2])
				} else {
					value = html.UnescapeString(a[2])
				}
			}
			if name != "" {
				fields.Set(name, value)
			}
		}
		for k, v := range values {
			fields[k] = v
		}
		action, err := p.url.Parse(html.UnescapeString(m[1]))
		if err != nil {
			return page{}, fmt.Errorf("form action %q: %w", m[1], err)
		}
		return b.post(ctx, action.String(), fields)
	}
	return page{}, fmt.Errorf("no form with %s on %s (status %d): %.500s", marker, p.url.Path, p.status, p.body)
}
