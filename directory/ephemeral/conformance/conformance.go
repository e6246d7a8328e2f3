// Package conformance checks an ephemeral.Store against the contract in
// package ephemeral. Every engine runs the same suite from a single
// TestConformance, so the engines cannot drift apart.
//
// The suite never sleeps: it passes a fixed base time as now and moves it
// forward, which works because stores never read the clock.
package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lanyard/lanyard/directory/ephemeral"
)

// base is the suite's "now"; whole seconds, far from the real clock, so a
// store that wrongly reads the clock fails.
var base = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

// racers is how many goroutines the race tests start at once.
const racers = 50

// Run checks an ephemeral.Store against the contract. newStore returns an
// empty store and registers its own cleanup; each subtest gets a fresh one.
func Run(t *testing.T, newStore func(t *testing.T) ephemeral.Store) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, ephemeral.Store)
	}{
		{"PutGet", testPutGet},
		{"PutReplaces", testPutReplaces},
		{"GetMissingIsErrNotFound", testMissing},
		{"ExpiredIsErrNotFound", testExpired},
		{"CreateOnce", testCreateOnce},
		{"TakeOnce", testTakeOnce},
		{"TakeRace", testTakeRace},     // 50 goroutines, 1 winner
		{"CreateRace", testCreateRace}, // 50 goroutines, 1 winner
		{"Delete", testDelete},
		{"IncrWindow", testIncrWindow},
		{"IncrRace", testIncrRace},
		{"Count", testCount},
		{"ValuesAreCopied", testValuesAreCopied},
		{"BinaryValues", testBinaryValues},
		{"OversizedValueRefused", testOversized},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
}

// wantValue checks that Get(key) at now returns want.
func wantValue(t *testing.T, s ephemeral.Store, key string, now time.Time, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key, now)
	if err != nil {
		t.Errorf("Get(%q) at %v: %v, want %q", key, now, err, want)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Get(%q) at %v = %q, want %q", key, now, got, want)
	}
}

// wantAbsent checks that Get(key) at now returns ErrNotFound.
func wantAbsent(t *testing.T, s ephemeral.Store, key string, now time.Time) {
	t.Helper()
	if got, err := s.Get(t.Context(), key, now); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Errorf("Get(%q) at %v = %q, %v; want ErrNotFound", key, now, got, err)
	}
}

// wantCount checks that Count(key) at now returns want.
func wantCount(t *testing.T, s ephemeral.Store, key string, now time.Time, want int64) {
	t.Helper()
	got, err := s.Count(t.Context(), key, now)
	if err != nil || got != want {
		t.Errorf("Count(%q) at %v = %d, %v; want %d, nil", key, now, got, err, want)
	}
}

// mustPut stores value under key, failing the test at once if it cannot.
func mustPut(t *testing.T, s ephemeral.Store, key string, value []byte, expires, now time.Time) {
	t.Helper()
	if err := s.Put(t.Context(), key, value, expires, now); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func testPutGet(t *testing.T, s ephemeral.Store) {
	mustPut(t, s, "sess:a", []byte("alpha"), base.Add(time.Hour), base)
	mustPut(t, s, "sess:b", []byte("beta"), base.Add(time.Hour), base)
	wantValue(t, s, "sess:a", base, []byte("alpha"))
	wantValue(t, s, "sess:b", base.Add(59*time.Minute), []byte("beta"))
}

func testPutReplaces(t *testing.T, s ephemeral.Store) {
	const key = "sess:a"
	mustPut(t, s, key, []byte("old"), base.Add(time.Minute), base)
	mustPut(t, s, key, []byte("new"), base.Add(time.Hour), base.Add(10*time.Second))
	wantValue(t, s, key, base.Add(10*time.Second), []byte("new"))
	// The replacement's expiry applies, later than the original one...
	wantValue(t, s, key, base.Add(2*time.Minute), []byte("new"))
	// ...and earlier too.
	mustPut(t, s, key, []byte("short"), base.Add(3*time.Minute), base.Add(2*time.Minute))
	wantValue(t, s, key, base.Add(2*time.Minute), []byte("short"))
	wantAbsent(t, s, key, base.Add(3*time.Minute))
}

func testMissing(t *testing.T, s ephemeral.Store) {
	ctx := t.Context()
	mustPut(t, s, "code:other", []byte("x"), base.Add(time.Hour), base)
	wantAbsent(t, s, "code:missing", base)
	if got, err := s.Take(ctx, "code:missing", base); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Errorf("Take(missing) = %q, %v; want ErrNotFound", got, err)
	}
	wantCount(t, s, "rate:missing", base, 0)
}

func testExpired(t *testing.T, s ephemeral.Store) {
	ctx := t.Context()
	expires := base.Add(10 * time.Second)
	for _, key := range []string{"code:get", "code:take"} {
		mustPut(t, s, key, []byte("v"), expires, base)
	}
	if _, err := s.Incr(ctx, "rate:a", 1, expires, base); err != nil {
		t.Fatalf("Incr: %v", err)
	}

	before := expires.Add(-time.Millisecond)
	wantValue(t, s, "code:get", before, []byte("v"))
	wantCount(t, s, "rate:a", before, 1)

	// Expiry exactly at now counts as expired, and so does any later time.
	for _, now := range []time.Time{expires, expires.Add(time.Hour)} {
		wantAbsent(t, s, "code:get", now)
		wantCount(t, s, "rate:a", now, 0)
	}
	if got, err := s.Take(ctx, "code:take", expires); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Errorf("Take at expiry = %q, %v; want ErrNotFound", got, err)
	}

	// An item that expires at or before now is never stored.
	for _, exp := range []time.Time{base, base.Add(-time.Minute)} {
		if err := s.Put(ctx, "code:dead", []byte("v"), exp, base); err != nil {
			t.Errorf("Put expiring at %v, now %v: %v", exp, base, err)
		}
		wantAbsent(t, s, "code:dead", base)
	}
}

func testCreateOnce(t *testing.T, s ephemeral.Store) {
	ctx := t.Context()
	const key = "req:1"
	expires := base.Add(time.Minute)
	if err := s.Create(ctx, key, []byte("first"), expires, base); err != nil {
		t.Fatalf("first Create: %v", err)
	}
	if err := s.Create(ctx, key, []byte("second"), base.Add(time.Hour), base.Add(time.Second)); !errors.Is(err, ephemeral.ErrExists) {
		t.Errorf("second Create = %v, want ErrExists", err)
	}
	wantValue(t, s, key, base.Add(time.Second), []byte("first"))

	// Once the first has expired the key is free again.
	if err := s.Create(ctx, key, []byte("third"), expires.Add(time.Minute), expires); err != nil {
		t.Errorf("Create after expiry: %v", err)
	}
	wantValue(t, s, key, expires, []byte("third"))

	// Create over a taken item succeeds too.
	if _, err := s.Take(ctx, key, expires); err != nil {
		t.Fatalf("Take: %v", err)
	}
	if err := s.Create(ctx, key, []byte("fourth"), expires.Add(time.Minute), expires); err != nil {
		t.Errorf("Create after Take: %v", err)
	}
}

func testTakeOnce(t *testing.T, s ephemeral.Store) {
	ctx := t.Context()
	const key = "code:1"
	mustPut(t, s, key, []byte("grant"), base.Add(time.Minute), base)
	got, err := s.Take(ctx, key, base)
	if err != nil || string(got) != "grant" {
		t.Errorf("first Take = %q, %v; want %q, nil", got, err, "grant")
	}
	if got, err := s.Take(ctx, key, base); !errors.Is(err, ephemeral.ErrNotFound) {
		t.Errorf("second Take = %q, %v; want ErrNotFound", got, err)
	}
	wantAbsent(t, s, key, base)
}

// race runs fn in racers goroutines released together and returns their
// errors in goroutine order.
func race(ctx context.Context, fn func(ctx context.Context, i int) error) []error {
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			errs[i] = fn(ctx, i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func testTakeRace(t *testing.T, s ephemeral.Store) {
	for round := range 20 {
		key := fmt.Sprintf("code:%d", round)
		value := []byte("grant " + strconv.Itoa(round))
		mustPut(t, s, key, value, base.Add(time.Minute), base)
		var winners atomic.Int32
		errs := race(t.Context(), func(ctx context.Context, _ int) error {
			got, err := s.Take(ctx, key, base)
			if err != nil {
				return err
			}
			winners.Add(1)
			if !bytes.Equal(got, value) {
				return fmt.Errorf("took %q, want %q", got, value)
			}
			return nil
		})
		for i, err := range errs {
			if err != nil && !errors.Is(err, ephemeral.ErrNotFound) {
				t.Errorf("round %d: Take in goroutine %d: %v", round, i, err)
			}
		}
		if got := winners.Load(); got != 1 {
			t.Errorf("round %d: %d of %d concurrent Takes returned the value, want 1", round, got, racers)
		}
		wantAbsent(t, s, key, base)
	}
}

func testCreateRace(t *testing.T, s ephemeral.Store) {
	for round := range 20 {
		key := fmt.Sprintf("req:%d", round)
		errs := race(t.Context(), func(ctx context.Context, i int) error {
			return s.Create(ctx, key, []byte(strconv.Itoa(i)), base.Add(time.Minute), base)
		})
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: Create succeeded in goroutines %d and %d, want once", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, ephemeral.ErrExists):
				t.Errorf("round %d: Create in goroutine %d: %v, want nil or ErrExists", round, i, err)
			}
		}
		if winner < 0 {
			t.Errorf("round %d: no concurrent Create succeeded, want one", round)
			continue
		}
		wantValue(t, s, key, base, []byte(strconv.Itoa(winner)))
	}
}

func testDelete(t *testing.T, s ephemeral.Store) {
	ctx := t.Context()
	mustPut(t, s, "sess:a", []byte("a"), base.Add(time.Hour), base)
	mustPut(t, s, "sess:b", []byte("b"), base.Add(time.Hour), base)
	if _, err := s.Incr(ctx, "rate:a", 3, base.Add(time.Hour), base); err != nil {
		t.Fatalf("Incr: %v", err)
	}
	for _, key := range []string{"sess:a", "rate:a", "sess:never", "sess:a"} {
		if err := s.Delete(ctx, key); err != nil {
			t.Errorf("Delete(%q) = %v, want nil", key, err)
		}
	}
	wantAbsent(t, s, "sess:a", base)
	wantCount(t, s, "rate:a", base, 0)
	wantValue(t, s, "sess:b", base, []byte("b"))
}

func testIncrWindow(t *testing.T, s ephemeral.Store) {
	const key = "rate:login:alice"
	window := base.Add(time.Minute)
	steps := []struct {
		delta        int64
		expires, now time.Time
	}{
		{1, window, base},
		// A live counter keeps the expiry it started with.
		{2, base.Add(5 * time.Minute), base.Add(10 * time.Second)},
		{4, base.Add(5 * time.Minute), window.Add(-time.Millisecond)},
		// At its expiry the window restarts from zero.
		{1, window.Add(time.Minute), window},
		{10, window.Add(5 * time.Minute), window.Add(59 * time.Second)},
	}
	var got []int64
	for _, st := range steps {
		n, err := s.Incr(t.Context(), key, st.delta, st.expires, st.now)
		if err != nil {
			t.Fatalf("Incr(%d) at %v: %v", st.delta, st.now, err)
		}
		got = append(got, n)
	}
	if diff := cmp.Diff([]int64{1, 3, 7, 1, 11}, got); diff != "" {
		t.Errorf("Incr totals (-want +got):\n%s", diff)
	}
	wantCount(t, s, key, window.Add(59*time.Second), 11)
	wantCount(t, s, key, window.Add(time.Minute), 0)
}

func testIncrRace(t *testing.T, s ephemeral.Store) {
	const key = "rate:ip:192.0.2.1"
	totals := make([]int64, racers)
	errs := race(t.Context(), func(ctx context.Context, i int) error {
		var err error
		totals[i], err = s.Incr(ctx, key, 1, base.Add(time.Minute), base)
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("Incr in goroutine %d: %v", i, err)
		}
	}
	// Each increment saw a distinct total: none was lost or counted twice.
	want := make([]int64, racers)
	for i := range want {
		want[i] = int64(i + 1)
	}
	slices.Sort(totals)
	if diff := cmp.Diff(want, totals); diff != "" {
		t.Errorf("totals returned by concurrent Incr (-want +got):\n%s", diff)
	}
	wantCount(t, s, key, base, racers)
}

func testCount(t *testing.T, s ephemeral.Store) {
	ctx := t.Context()
	const key = "rate:fail:alice"
	wantCount(t, s, key, base, 0)
	for _, delta := range []int64{5, -2} {
		if _, err := s.Incr(ctx, key, delta, base.Add(time.Minute), base); err != nil {
			t.Fatalf("Incr(%d): %v", delta, err)
		}
	}
	// Counting twice reads without changing anything.
	wantCount(t, s, key, base, 3)
	wantCount(t, s, key, base.Add(59*time.Second), 3)
	wantCount(t, s, key, base.Add(time.Minute), 0)
}

func testValuesAreCopied(t *testing.T, s ephemeral.Store) {
	ctx := t.Context()
	in := []byte("original")
	mustPut(t, s, "sess:put", in, base.Add(time.Hour), base)
	if err := s.Create(ctx, "sess:create", in, base.Add(time.Hour), base); err != nil {
		t.Fatalf("Create: %v", err)
	}
	copy(in, "MUTATED!")
	for _, key := range []string{"sess:put", "sess:create"} {
		wantValue(t, s, key, base, []byte("original"))
		got, err := s.Get(ctx, key, base)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		copy(got, "CHANGED!")
		wantValue(t, s, key, base, []byte("original"))
	}
}

func testBinaryValues(t *testing.T, s ephemeral.Store) {
	all := make([]byte, 0, 256)
	for b := range 256 {
		all = append(all, byte(b))
	}
	for _, c := range []struct {
		name  string
		value []byte
	}{
		{"empty", []byte{}},
		{"zeros", make([]byte, 64)},
		{"every byte", all},
		{"leading zero", []byte("\x00lanyard\x00")},
		{"invalid UTF-8", []byte("\xff\xfe\xc3\x28")},
		{"max size", bytes.Repeat([]byte{0, 0xff}, ephemeral.MaxValueSize/2)},
	} {
		key := "bin:" + c.name
		mustPut(t, s, key, c.value, base.Add(time.Minute), base)
		got, err := s.Get(t.Context(), key, base)
		if err != nil {
			t.Errorf("%s: Get: %v", c.name, err)
			continue
		}
		if !bytes.Equal(got, c.value) {
			t.Errorf("%s: Get returned %d bytes, want the %d put: %q...", c.name, len(got), len(c.value), got[:min(len(got), 32)])
		}
		took, err := s.Take(t.Context(), key, base)
		if err != nil || !bytes.Equal(took, c.value) {
			t.Errorf("%s: Take returned %d bytes, %v; want the %d put", c.name, len(took), err, len(c.value))
		}
	}
}

func testOversized(t *testing.T, s ephemeral.Store) {
	ctx := t.Context()
	big := make([]byte, ephemeral.MaxValueSize+1)
	mustPut(t, s, "sess:kept", []byte("small"), base.Add(time.Hour), base)

	if err := s.Put(ctx, "sess:big", big, base.Add(time.Hour), base); err == nil {
		t.Errorf("Put of %d bytes = nil, want an error", len(big))
	}
	if err := s.Create(ctx, "sess:big", big, base.Add(time.Hour), base); err == nil {
		t.Errorf("Create of %d bytes = nil, want an error", len(big))
	}
	wantAbsent(t, s, "sess:big", base)

	// A refused Put leaves the existing item alone.
	if err := s.Put(ctx, "sess:kept", big, base.Add(time.Hour), base); err == nil {
		t.Errorf("Put of %d bytes over an item = nil, want an error", len(big))
	}
	wantValue(t, s, "sess:kept", base, []byte("small"))
}

// BenchmarkTake measures redeeming one-time codes on s: each iteration Puts a
// fresh code and Takes it, so takes/s counts Put+Take pairs.
func BenchmarkTake(b *testing.B, s ephemeral.Store) {
	ctx := b.Context()
	value := []byte("authorization code grant, a few hundred bytes in real use")
	expires := base.Add(10 * time.Minute)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		key := "code:" + strconv.Itoa(i)
		i++
		if err := s.Put(ctx, key, value, expires, base); err != nil {
			b.Fatalf("Put: %v", err)
		}
		if _, err := s.Take(ctx, key, base); err != nil {
			b.Fatalf("Take: %v", err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "takes/s")
}

// BenchmarkTakeParallel is BenchmarkTake from b.RunParallel's goroutines
// (GOMAXPROCS times b.SetParallelism of them), all on one store.
func BenchmarkTakeParallel(b *testing.B, s ephemeral.Store) {
	ctx := b.Context()
	value := []byte("authorization code grant, a few hundred bytes in real use")
	expires := base.Add(10 * time.Minute)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := "code:" + strconv.FormatInt(next.Add(1), 10)
			if err := s.Put(ctx, key, value, expires, base); err != nil {
				b.Errorf("Put: %v", err)
				return
			}
			if _, err := s.Take(ctx, key, base); err != nil {
				b.Errorf("Take: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "takes/s")
}
