package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/lanyard/lanyard/testkit"
)

// each runs fn against every combination of directory and ephemeral engine.
func each(t *testing.T, fn func(t *testing.T, opt testkit.Options)) {
	for _, b := range []struct {
		name string
		opt  testkit.Options
	}{
		{"sqlite+mem", testkit.Options{}},
		{"postgres+redis", testkit.Options{Postgres: true, Redis: true}},
	} {
		t.Run(b.name, func(t *testing.T) { fn(t, b.opt) })
	}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestOperationsEndpoints(t *testing.T) {
	each(t, func(t *testing.T, opt testkit.Options) {
		s := testkit.NewServer(t, opt)
		c := s.Client(t)
		if code, body := get(t, c, s.URL+"/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
			t.Errorf("/healthz = %d %q", code, body)
		}
		code, body := get(t, c, s.URL+"/readyz")
		var ready map[string]string
		json.Unmarshal([]byte(body), &ready)
		if code != 200 || ready["directory"] != "ok" || ready["ephemeral"] != "ok" {
			t.Errorf("/readyz = %d %q", code, body)
		}
		if code, _ := get(t, c, s.URL+"/no/such/page"); code != 404 {
			t.Errorf("unknown path = %d, want 404", code)
		}
		code, body = get(t, c, s.URL+"/metrics")
		if code != 200 || !strings.Contains(body, `lanyard_http_requests_total{code="200",method="GET",route="GET /healthz"} 1`) ||
			!strings.Contains(body, "go_goroutines") {
			t.Errorf("/metrics = %d, lacks request counter or Go metrics:\n%.2000s", code, body)
		}
	})
}

func TestOversizedBodyIs413(t *testing.T) {
	s := testkit.NewServer(t, testkit.Options{})
	c := s.Client(t)
	big := strings.Repeat("x", int(s.Config.HTTP.MaxBodyBytes)+1)
	resp, err := c.Post(s.URL+"/login", "application/x-www-form-urlencoded", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("POST %d bytes = %d, want 413", len(big), resp.StatusCode)
	}
	// A body within the limit reaches the router (which has no such route).
	resp, err = c.Post(s.URL+"/no/such/path", "application/x-www-form-urlencoded", strings.NewReader("a=b"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("small POST = %d, want 404", resp.StatusCode)
	}
}

// TestReadyzReportsOutage closes each store under a running server: /readyz
// must turn 503 and name the store, while /healthz stays 200.
func TestReadyzReportsOutage(t *testing.T) {
	each(t, func(t *testing.T, opt testkit.Options) {
		for _, which := range []string{"ephemeral", "directory"} {
			t.Run(which, func(t *testing.T) {
				s := testkit.NewServer(t, opt)
				c := s.Client(t)
				if which == "ephemeral" {
					s.Ephemeral.Close()
				} else {
					s.Directory.Close()
				}
				code, body := get(t, c, s.URL+"/readyz")
				if code != http.StatusServiceUnavailable || !strings.Contains(body, `"`+which+`":"unavailable"`) {
					t.Errorf("/readyz after closing %s = %d %q, want 503 naming it", which, code, body)
				}
				if code, _ := get(t, c, s.URL+"/healthz"); code != 200 {
					t.Errorf("/healthz = %d, want 200", code)
				}
			})
		}
	})
}
