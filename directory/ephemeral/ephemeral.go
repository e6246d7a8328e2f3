// Package ephemeral is the contract for Lanyard's short-lived state:
// sessions, authorization requests, one-time codes, WebAuthn challenges and
// rate counters. Two engines implement it, ephemeral/mem (one process) and
// ephemeral/redis (shared by every instance), and one suite,
// ephemeral/conformance, checks both.
//
// Stores never read the clock. Every method where expiry matters takes now,
// and an item whose expiry is at or before now is absent. Backend TTLs only
// collect garbage, so expiry behaves alike on every engine and tests need no
// sleeps.
package ephemeral

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors of the contract.
var (
	// ErrNotFound: no live item under the key (never set, taken, deleted or expired).
	ErrNotFound = errors.New("ephemeral: not found")
	// ErrExists: Create found a live item under the key.
	ErrExists = errors.New("ephemeral: already exists")
	// ErrFull: the in-process store is at its memory bound.
	ErrFull = errors.New("ephemeral: store full")
	// ErrUnavailable wraps a backend that cannot be reached.
	ErrUnavailable = errors.New("ephemeral: unavailable")
)

// MaxValueSize bounds one value (sessions and requests are a few KiB).
const MaxValueSize = 1 << 20

// Store holds short-lived items and counters. Keys are opaque strings chosen by
// callers with a kind prefix ("sess:", "code:"); values are at most
// MaxValueSize bytes. Implementations are safe for concurrent use, and Take
// is atomic: of any number of concurrent Takes of one key, exactly one
// returns the value.
type Store interface {
	// Put stores value under key until expires, replacing any item.
	Put(ctx context.Context, key string, value []byte, expires, now time.Time) error
	// Create stores value under key until expires only if no live item is
	// there; otherwise it returns ErrExists. Used to remember a request ID or
	// a used TOTP step exactly once.
	Create(ctx context.Context, key string, value []byte, expires, now time.Time) error
	// Get returns the live value under key or ErrNotFound.
	Get(ctx context.Context, key string, now time.Time) ([]byte, error)
	// Take atomically returns and removes the live value under key, or
	// returns ErrNotFound. Single-use items (codes) are redeemed with it.
	Take(ctx context.Context, key string, now time.Time) ([]byte, error)
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// Incr adds delta to the counter under key and returns the new total. A
	// counter that is absent or expired starts again from zero with expiry
	// expires (a fixed window); a live counter keeps its expiry.
	Incr(ctx context.Context, key string, delta int64, expires, now time.Time) (int64, error)
	// Count returns the live counter under key, or 0 when absent or expired.
	Count(ctx context.Context, key string, now time.Time) (int64, error)
	// Ping reports whether the store is reachable (wrapping ErrUnavailable if not).
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
