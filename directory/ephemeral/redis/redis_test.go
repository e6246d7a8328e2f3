package redis_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lanyard/lanyard/directory/ephemeral"
	"github.com/lanyard/lanyard/directory/ephemeral/conformance"
	"github.com/lanyard/lanyard/directory/ephemeral/redis"
	"github.com/lanyard/lanyard/testkit"
)

var base = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

// open returns a Store on the test Redis under a prefix of the test's own,
// closed when the test ends, and a raw client on the same Redis.
func open(t testing.TB) (*redis.Store, goredis.UniversalClient, string) {
	t.Helper()
	u, prefix := testkit.Redis(t)
	s, err := redis.New(t.Context(), u, prefix)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	opt, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	raw := goredis.NewClient(opt)
	t.Cleanup(func() { raw.Close() })
	return s, raw, prefix
}

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) ephemeral.Store {
		s, _, _ := open(t)
		return s
	})
}

func TestNewErrors(t *testing.T) {
	for _, c := range []struct {
		name, url   string
		unavailable bool
	}{
		{"nothing listens", "redis://127.0.0.1:1/0", true},
		{"nothing listens, password", "redis://user:s3cret@127.0.0.1:1/0", true},
		{"bad port, password", "redis://user:s3cret@127.0.0.1:port/0", false},
		{"bad scheme", "http://127.0.0.1:6379/0", false},
		{"bad database", "redis://127.0.0.1:6379/zero", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			s, err := redis.New(ctx, c.url, "t:")
			if err == nil {
				s.Close()
				t.Fatalf("New(%q) = nil error, want one", c.url)
			}
			if got := errors.Is(err, ephemeral.ErrUnavailable); got != c.unavailable {
				t.Errorf("New(%q) = %v; wraps ErrUnavailable: %v, want %v", c.url, err, got, c.unavailable)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("New(%q) error reveals the password: %v", c.url, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("New(%q) took %v to fail, want under 5s", c.url, d)
			}
		})
	}
}

// ops calls every Store method once and returns their errors by name.
func ops(ctx context.Context, s *redis.Store) map[string]error {
	errs := make(map[string]error)
	exp := base.Add(time.Minute)
	errs["Put"] = s.Put(ctx, "k", []byte("v"), exp, base)
	errs["Create"] = s.Create(ctx, "k2", []byte("v"), exp, base)
	_, errs["Get"] = s.Get(ctx, "k", base)
	_, errs["Take"] = s.Take(ctx, "k", base)
	errs["Delete"] = s.Delete(ctx, "k")
	_, errs["Incr"] = s.Incr(ctx, "n", 1, exp, base)
	_, errs["Count"] = s.Count(ctx, "n", base)
	errs["Ping"] = s.Ping(ctx)
	return errs
}

func TestServerGone(t *testing.T) {
	u, prefix := testkit.Redis(t)
	opt, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	p := testkit.NewProxy(t, opt.Addr)
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	pu.Host = p.Addr()
	s, err := redis.New(t.Context(), pu.String(), prefix)
	if err != nil {
		t.Fatalf("New through proxy: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	for name, err := range ops(t.Context(), s) {
		if err != nil {
			t.Fatalf("%s while Redis is up: %v", name, err)
		}
	}

	p.Cut()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for name, err := range ops(ctx, s) {
		if !errors.Is(err, ephemeral.ErrUnavailable) {
			t.Errorf("%s after Redis went away = %v, want ErrUnavailable", name, err)
		}
	}
}

func TestClosedClient(t *testing.T) {
	opt, err := goredis.ParseURL("redis://127.0.0.1:1/0")
	if err != nil {
		t.Fatalf("ParseURL: %v", err)
	}
	s := redis.NewFromClient(goredis.NewClient(opt), "t:")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, err := range ops(t.Context(), s) {
		if !errors.Is(err, ephemeral.ErrUnavailable) {
			t.Errorf("%s after Close = %v, want ErrUnavailable", name, err)
		}
	}
}

// TestReplyErrors checks that Redis refusing a command is not mistaken for
// Redis being unavailable.
func TestReplyErrors(t *testing.T) {
	ctx := t.Context()
	s, raw, prefix := open(t)
	if err := raw.RPush(ctx, prefix+"list", "x").Err(); err != nil {
		t.Fatalf("RPUSH: %v", err)
	}
	if err := s.Put(ctx, "item", []byte("not a number"), base.Add(time.Hour), base); err != nil {
		t.Fatalf("Put: %v", err)
	}
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"Get on a list", func() error { _, err := s.Get(ctx, "list", base); return err }},
		{"Create on a list", func() error { return s.Create(ctx, "list", nil, base.Add(time.Hour), base) }},
		{"Incr on an item", func() error { _, err := s.Incr(ctx, "item", 1, base.Add(time.Hour), base); return err }},
		{"Count on an item", func() error { _, err := s.Count(ctx, "item", base); return err }},
	} {
		err := c.call()
		if err == nil || errors.Is(err, ephemeral.ErrUnavailable) || errors.Is(err, ephemeral.ErrNotFound) {
			t.Errorf("%s = %v, want an error that is neither ErrUnavailable nor ErrNotFound", c.name, err)
		}
	}
}

// TestTTL checks the Redis TTLs that collect garbage: the remaining lifetime
// plus a margin, kept by Incr on a live counter.
func TestTTL(t *testing.T) {
	ctx := t.Context()
	s, raw, prefix := open(t)
	exp := base.Add(10 * time.Minute)
	if err := s.Put(ctx, "item", []byte("v"), exp, base); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := s.Create(ctx, "created", []byte("v"), exp, base); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := s.Incr(ctx, "counter", 1, exp, base); err != nil {
		t.Fatalf("Incr: %v", err)
	}
	// Five minutes on, with a later expiry offered, the counter keeps its TTL.
	if _, err := s.Incr(ctx, "counter", 1, base.Add(time.Hour), base.Add(5*time.Minute)); err != nil {
		t.Fatalf("Incr: %v", err)
	}
	if err := s.Put(ctx, "dead", []byte("v"), base, base); err != nil {
		t.Fatalf("Put: %v", err)
	}
	for _, c := range []struct {
		key      string
		min, max time.Duration
	}{
		{"item", 10 * time.Minute, 11 * time.Minute},
		{"created", 10 * time.Minute, 11 * time.Minute},
		{"counter", 10 * time.Minute, 11 * time.Minute},
		{"dead", time.Second, time.Minute},
	} {
		got, err := raw.PTTL(ctx, prefix+c.key).Result()
		if err != nil {
			t.Fatalf("PTTL: %v", err)
		}
		if got < c.min || got > c.max {
			t.Errorf("PTTL(%s) = %v, want between %v and %v", c.key, got, c.min, c.max)
		}
	}
}

func BenchmarkTake(b *testing.B) {
	s, _, _ := open(b)
	conformance.BenchmarkTake(b, s)
}

func BenchmarkTakeParallel(b *testing.B) {
	s, _, _ := open(b)
	// A network store is bound by round trips, not CPUs: serve has many
	// requests in flight per CPU.
	b.SetParallelism(8)
	conformance.BenchmarkTakeParallel(b, s)
}
