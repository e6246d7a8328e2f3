package mem_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lanyard/lanyard/directory/ephemeral"
	"github.com/lanyard/lanyard/directory/ephemeral/conformance"
	"github.com/lanyard/lanyard/directory/ephemeral/mem"
)

func newStore(t *testing.T) ephemeral.Store {
	s := mem.New(0)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	conformance.Run(t, newStore)
}

var base = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

func TestBounded(t *testing.T) {
	ctx := t.Context()
	s := mem.New(10)
	t.Cleanup(func() { s.Close() })
	short, long := base.Add(time.Minute), base.Add(time.Hour)

	// Six items that expire soon and four counters that do not fill it.
	for i := range 6 {
		if err := s.Put(ctx, fmt.Sprintf("code:%d", i), []byte("v"), short, base); err != nil {
			t.Fatalf("Put #%d of 10: %v", i+1, err)
		}
	}
	for i := range 4 {
		if _, err := s.Incr(ctx, fmt.Sprintf("rate:%d", i), 1, long, base); err != nil {
			t.Fatalf("Incr #%d of 10: %v", i+7, err)
		}
	}

	// Full of live entries: no kind of insert gets in, nothing is evicted.
	if err := s.Put(ctx, "code:x", []byte("v"), long, base); !errors.Is(err, ephemeral.ErrFull) {
		t.Errorf("Put #11 = %v, want ErrFull", err)
	}
	if err := s.Create(ctx, "code:x", []byte("v"), long, base); !errors.Is(err, ephemeral.ErrFull) {
		t.Errorf("Create #11 = %v, want ErrFull", err)
	}
	if n, err := s.Incr(ctx, "rate:x", 1, long, base); !errors.Is(err, ephemeral.ErrFull) {
		t.Errorf("Incr #11 = %d, %v; want ErrFull", n, err)
	}
	for i := range 6 {
		if _, err := s.Get(ctx, fmt.Sprintf("code:%d", i), base); err != nil {
			t.Errorf("Get(code:%d) after refused inserts: %v", i, err)
		}
	}

	// Replacing a live entry and counting on a live counter still work.
	if err := s.Put(ctx, "code:0", []byte("w"), short, base); err != nil {
		t.Errorf("Put replacing a live item in a full store: %v", err)
	}
	if n, err := s.Incr(ctx, "rate:0", 1, long, base); err != nil || n != 2 {
		t.Errorf("Incr of a live counter in a full store = %d, %v; want 2, nil", n, err)
	}

	// Once the items expire, an insert makes room by dropping them.
	if err := s.Put(ctx, "code:y", []byte("v"), long, short); err != nil {
		t.Errorf("Put into a store full of expired items: %v", err)
	}
	if got, want := s.Len(), 5; got != want {
		t.Errorf("Len() after the insert collected expired items = %d, want %d", got, want)
	}
	for i := range 5 {
		if err := s.Put(ctx, fmt.Sprintf("sess:%d", i), []byte("v"), long, short); err != nil {
			t.Errorf("Put sess:%d: %v", i, err)
		}
	}
	if err := s.Put(ctx, "sess:x", []byte("v"), long, short); !errors.Is(err, ephemeral.ErrFull) {
		t.Errorf("Put #11 after refilling = %v, want ErrFull", err)
	}
}

func TestGarbageCollect(t *testing.T) {
	ctx := t.Context()
	s := mem.New(0)
	t.Cleanup(func() { s.Close() })
	for i := range 7 {
		expires := base.Add(time.Duration(i+1) * time.Minute)
		if err := s.Put(ctx, fmt.Sprintf("code:%d", i), []byte("v"), expires, base); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	if _, err := s.Incr(ctx, "rate:a", 1, base.Add(2*time.Minute), base); err != nil {
		t.Fatalf("Incr: %v", err)
	}
	for _, c := range []struct {
		now           time.Time
		removed, left int
	}{
		{base, 0, 8},
		{base.Add(time.Minute), 1, 7},     // code:0, at exactly its expiry
		{base.Add(3 * time.Minute), 3, 4}, // code:1, code:2, rate:a
		{base.Add(3 * time.Minute), 0, 4},
		{base.Add(time.Hour), 4, 0},
	} {
		if got := s.GarbageCollect(c.now); got != c.removed {
			t.Errorf("GarbageCollect(base+%v) = %d, want %d", c.now.Sub(base), got, c.removed)
		}
		if got := s.Len(); got != c.left {
			t.Errorf("Len() after GarbageCollect(base+%v) = %d, want %d", c.now.Sub(base), got, c.left)
		}
	}
}

func TestClosed(t *testing.T) {
	ctx := t.Context()
	s := mem.New(0)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, ephemeral.ErrUnavailable) {
		t.Errorf("Ping after Close = %v, want ErrUnavailable", err)
	}
	if _, err := s.Get(ctx, "k", base); !errors.Is(err, ephemeral.ErrUnavailable) {
		t.Errorf("Get after Close = %v, want ErrUnavailable", err)
	}
}

func TestCounterOverItem(t *testing.T) {
	ctx := t.Context()
	s := mem.New(0)
	t.Cleanup(func() { s.Close() })
	if err := s.Put(ctx, "k", []byte("not a number"), base.Add(time.Hour), base); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if n, err := s.Incr(ctx, "k", 1, base.Add(time.Hour), base); err == nil {
		t.Errorf("Incr on an item = %d, nil; want an error", n)
	}
	if n, err := s.Count(ctx, "k", base); err == nil {
		t.Errorf("Count on an item = %d, nil; want an error", n)
	}
}

func BenchmarkTake(b *testing.B) {
	conformance.BenchmarkTake(b, mem.New(0))
}

func BenchmarkTakeParallel(b *testing.B) {
	conformance.BenchmarkTakeParallel(b, mem.New(0))
}
