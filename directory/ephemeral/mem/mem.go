// Package mem is the in-process ephemeral.Store, for a single idp instance
// and for tests. Its state lives and dies with the process, so several
// instances behind a load balancer need ephemeral/redis instead.
//
// Items and counters share one key space: a counter is an item whose value is
// the decimal text of its total, so Get returns a counter's total as text and
// Incr or Count on a key holding another value returns an error. Callers keep
// the two apart with their key prefixes.
package mem

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/lanyard/lanyard/directory/ephemeral"
)

// DefaultMaxItems is the bound New uses when given maxItems <= 0.
const DefaultMaxItems = 1_000_000

var (
	// errClosed is returned by every method after Close.
	errClosed = fmt.Errorf("ephemeral/mem: store closed: %w", ephemeral.ErrUnavailable)
	// errNotCounter is returned by Incr and Count on a key holding an item
	// that is not a counter.
	errNotCounter = errors.New("key holds an item, not a counter")
)

var _ ephemeral.Store = (*Store)(nil)

// Store is an in-process ephemeral.Store holding at most a fixed number of
// live entries (items and counters together). When it is full, an insert first
// drops the entries expired at the now it was given; if none can go it fails
// with ephemeral.ErrFull, because silently evicting live sessions, codes or
// rate counters would weaken security. Values are copied in and out. A Store
// is safe for concurrent use; one mutex serialises all access, so Take and
// Create are atomic.
type Store struct {
	max int

	mu     sync.Mutex
	closed bool
	byKey  map[string]*entry
	byTime expiryHeap // the same entries, soonest expiry first
}

type entry struct {
	key     string
	value   []byte
	expires time.Time
	index   int // position in Store.byTime
}

// New returns an empty Store bounded to maxItems live entries, or to
// DefaultMaxItems if maxItems <= 0.
func New(maxItems int) *Store {
	if maxItems <= 0 {
		maxItems = DefaultMaxItems
	}
	return &Store{max: maxItems, byKey: make(map[string]*entry)}
}

// Put stores a copy of value under key until expires, replacing any item. A
// value over ephemeral.MaxValueSize is refused and nothing changes.
func (s *Store) Put(_ context.Context, key string, value []byte, expires, now time.Time) error {
	if err := checkSize("put", value); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	return s.set(key, value, expires, now)
}

// Create stores a copy of value under key until expires unless a live item is
// there, in which case it returns ephemeral.ErrExists.
func (s *Store) Create(_ context.Context, key string, value []byte, expires, now time.Time) error {
	if err := checkSize("create", value); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if _, ok := s.live(key, now); ok {
		return ephemeral.ErrExists
	}
	return s.set(key, value, expires, now)
}

// Get returns a copy of the live value under key, or ephemeral.ErrNotFound.
func (s *Store) Get(_ context.Context, key string, now time.Time) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	e, ok := s.live(key, now)
	if !ok {
		return nil, ephemeral.ErrNotFound
	}
	return clone(e.value), nil
}

// Take removes the live value under key and returns it, or returns
// ephemeral.ErrNotFound. Of concurrent Takes of one key exactly one succeeds.
func (s *Store) Take(_ context.Context, key string, now time.Time) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	e, ok := s.live(key, now)
	if !ok {
		return nil, ephemeral.ErrNotFound
	}
	s.remove(e)
	return e.value, nil // no longer reachable from the store, so no copy
}

// Delete removes key, live or not; deleting an absent key is not an error.
func (s *Store) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if e, ok := s.byKey[key]; ok {
		s.remove(e)
	}
	return nil
}

// Incr adds delta to the counter under key and returns the new total. An
// absent or expired counter starts from zero and expires at expires; a live
// one keeps its expiry. Incr returns ephemeral.ErrFull when a new counter
// does not fit, and an error when key holds an item that is not a counter.
func (s *Store) Incr(_ context.Context, key string, delta int64, expires, now time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	e, ok := s.live(key, now)
	if !ok {
		if err := s.set(key, strconv.AppendInt(nil, delta, 10), expires, now); err != nil {
			return 0, err
		}
		return delta, nil
	}
	n, err := counter(e.value)
	if err != nil {
		return 0, fmt.Errorf("ephemeral/mem: incr: %w", err)
	}
	n += delta
	e.value = strconv.AppendInt(e.value[:0], n, 10)
	return n, nil
}

// Count returns the live counter under key, or 0 when it is absent or
// expired. It returns an error when key holds an item that is not a counter.
func (s *Store) Count(_ context.Context, key string, now time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	e, ok := s.live(key, now)
	if !ok {
		return 0, nil
	}
	n, err := counter(e.value)
	if err != nil {
		return 0, fmt.Errorf("ephemeral/mem: count: %w", err)
	}
	return n, nil
}

// Ping returns nil until Close, then an error wrapping ephemeral.ErrUnavailable.
func (s *Store) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	return nil
}

// Close drops every entry. Afterwards every method returns an error wrapping
// ephemeral.ErrUnavailable.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.byKey, s.byTime = nil, nil
	return nil
}

// GarbageCollect removes the entries whose expiry is at or before now and
// returns how many it removed. Expired entries are already invisible and an
// insert into a full store collects them itself, so calling GarbageCollect
// only returns their memory sooner: serve calls it every minute or so. It
// costs O(k log n) for k expired of n entries and never scans live ones.
func (s *Store) GarbageCollect(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expire(now)
}

// Len returns the number of entries held, expired ones not yet collected
// included.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byKey)
}

// live returns the entry under key if its expiry is after now. An expired
// entry found on the way is removed. The caller holds s.mu.
func (s *Store) live(key string, now time.Time) (*entry, bool) {
	e, ok := s.byKey[key]
	if !ok {
		return nil, false
	}
	if !e.expires.After(now) {
		s.remove(e)
		return nil, false
	}
	return e, true
}

// set stores a copy of value under key until expires, replacing any entry.
// An item already expired at now is absent by definition, so it only removes
// the old entry. The caller holds s.mu and has checked the size.
func (s *Store) set(key string, value []byte, expires, now time.Time) error {
	e, ok := s.byKey[key]
	if !expires.After(now) {
		if ok {
			s.remove(e)
		}
		return nil
	}
	if ok {
		e.value, e.expires = clone(value), expires
		heap.Fix(&s.byTime, e.index)
		return nil
	}
	if len(s.byKey) >= s.max {
		s.expire(now)
		if len(s.byKey) >= s.max {
			return fmt.Errorf("ephemeral/mem: %d live entries: %w", len(s.byKey), ephemeral.ErrFull)
		}
	}
	e = &entry{key: key, value: clone(value), expires: expires}
	s.byKey[key] = e
	heap.Push(&s.byTime, e)
	return nil
}

// remove deletes e from both indexes. The caller holds s.mu.
func (s *Store) remove(e *entry) {
	delete(s.byKey, e.key)
	heap.Remove(&s.byTime, e.index)
}

// expire removes the entries expired at now and returns how many. The caller
// holds s.mu.
func (s *Store) expire(now time.Time) int {
	n := 0
	for len(s.byTime) > 0 && !s.byTime[0].expires.After(now) {
		s.remove(s.byTime[0])
		n++
	}
	return n
}

func checkSize(op string, value []byte) error {
	if len(value) > ephemeral.MaxValueSize {
		return fmt.Errorf("ephemeral/mem: %s: value of %d bytes exceeds the limit of %d (ephemeral.MaxValueSize)",
			op, len(value), ephemeral.MaxValueSize)
	}
	return nil
}

// clone copies b; unlike bytes.Clone it never returns nil, so an empty value
// reads back as empty rather than absent.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

func counter(value []byte) (int64, error) {
	n, err := strconv.ParseInt(string(value), 10, 64)
	if err != nil {
		return 0, errNotCounter
	}
	return n, nil
}

// expiryHeap is a container/heap of entries ordered by expiry, each entry
// knowing its index so it can be fixed or removed in O(log n).
type expiryHeap []*entry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }

func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *expiryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
