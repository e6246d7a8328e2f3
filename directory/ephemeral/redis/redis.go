// Package redis is the ephemeral.Store on Redis, shared by every idp
// instance so that a login started on one can finish on another. It needs
// Redis 6.2 or later (GETDEL, KEEPTTL) and works through any
// goredis.UniversalClient, cluster included, since each operation touches one
// key.
//
// Every key is stored as prefix+key. Because stores never read the clock, each
// value carries its own expiry: 8 bytes of big-endian Unix microseconds, then
// the value. Reads compare that expiry with the caller's now, and the scripts
// that write conditionally (Create, Incr) compare it inside Redis, so expiry
// behaves as in ephemeral/mem, resolved to the microsecond. Redis TTLs, set to
// the remaining lifetime plus ttlMargin (a minute), only collect garbage.
//
// Items and counters share the key space: a counter is an item whose value is
// the decimal text of its total (exact up to 2^53, as Redis scripts compute in
// floating point), so Get returns a counter's total as text and Incr or Count
// on a key holding another value returns an error.
package redis

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/url"
	"runtime"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/lanyard/lanyard/directory/ephemeral"
)

// Connection defaults, used when the URL does not set them (go-redis reads
// dial_timeout, read_timeout, write_timeout and pool_size from its query).
// Short timeouts make an unreachable Redis fail a request, and /readyz, within
// seconds instead of hanging it.
const (
	defaultTimeout = 2 * time.Second
	// dialAttempts bounds the dials per connection; go-redis's default of 5
	// with back-off would multiply every failure's latency during an outage.
	dialAttempts = 2
)

// ttlMargin is added to every Redis TTL beyond the item's expiry, so that an
// instance whose clock lags still finds an item it considers live.
const ttlMargin = time.Minute

// expiryLen is the length of the expiry prefix of every stored value.
const expiryLen = 8

var _ ephemeral.Store = (*Store)(nil)

// Store is an ephemeral.Store on Redis. Errors that mean Redis cannot be
// reached or cannot serve (network, timeouts, closed client, LOADING,
// READONLY and the like) wrap ephemeral.ErrUnavailable. A Store is safe for
// concurrent use; Take, Create and Incr are each one atomic Redis command
// or script.
type Store struct {
	c      goredis.UniversalClient
	prefix string
}

// New connects to the Redis at redisURL (redis://, rediss:// or unix://, in
// the form goredis.ParseURL accepts) and pings it once. Every key is stored
// under prefix. If Redis cannot be reached, New returns an error wrapping
// ephemeral.ErrUnavailable. Errors never contain the URL, which may hold a
// password.
func New(ctx context.Context, redisURL, prefix string) (*Store, error) {
	opt, err := goredis.ParseURL(redisURL)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // url.Error's message repeats the URL
		}
		return nil, fmt.Errorf("ephemeral/redis: parse URL: %w", err)
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = defaultTimeout
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = defaultTimeout
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = defaultTimeout
	}
	if opt.PoolSize == 0 {
		// Each request holds a connection only for one round trip.
		opt.PoolSize = 10 * runtime.GOMAXPROCS(0)
	}
	opt.DialerRetries = dialAttempts
	opt.ContextTimeoutEnabled = true
	s := NewFromClient(goredis.NewClient(opt), prefix)
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// NewFromClient returns a Store on c, which it owns: Close closes c. Every key
// is stored under prefix. Unlike New it does not contact Redis.
func NewFromClient(c goredis.UniversalClient, prefix string) *Store {
	return &Store{c: c, prefix: prefix}
}

// Put stores value under key until expires, replacing any item. A value over
// ephemeral.MaxValueSize is refused and nothing changes.
func (s *Store) Put(ctx context.Context, key string, value []byte, expires, now time.Time) error {
	if err := checkSize("put", value); err != nil {
		return err
	}
	err := s.c.Set(ctx, s.prefix+key, encode(expires, value), ttl(expires, now)).Err()
	if err != nil {
		return fail("put", err)
	}
	return nil
}

// createScript stores ARGV[2] under KEYS[1] with a TTL of ARGV[3] ms unless
// the value there has an expiry after ARGV[1]. It returns 1 if it stored.
var createScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and struct.unpack('>i8', v) > tonumber(ARGV[1]) then
	return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`)

// Create stores value under key until expires unless a live item is there, in
// which case it returns ephemeral.ErrExists.
func (s *Store) Create(ctx context.Context, key string, value []byte, expires, now time.Time) error {
	if err := checkSize("create", value); err != nil {
		return err
	}
	created, err := createScript.Run(ctx, s.c, []string{s.prefix + key},
		now.UnixMicro(), encode(expires, value), ttl(expires, now).Milliseconds()).Int()
	if err != nil {
		return fail("create", err)
	}
	if created == 0 {
		return ephemeral.ErrExists
	}
	return nil
}

// Get returns the live value under key, or ephemeral.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string, now time.Time) ([]byte, error) {
	b, err := s.c.Get(ctx, s.prefix+key).Bytes()
	if err != nil {
		return nil, fail("get", err)
	}
	return live("get", b, now)
}

// Take removes the value under key and returns it if it was live, or returns
// ephemeral.ErrNotFound. It is one GETDEL, so of concurrent Takes of one key
// exactly one gets the value.
func (s *Store) Take(ctx context.Context, key string, now time.Time) ([]byte, error) {
	b, err := s.c.GetDel(ctx, s.prefix+key).Bytes()
	if err != nil {
		return nil, fail("take", err)
	}
	return live("take", b, now)
}

// Delete removes key; deleting an absent key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.c.Del(ctx, s.prefix+key).Err(); err != nil {
		return fail("delete", err)
	}
	return nil
}

// incrScript adds ARGV[3] to the counter under KEYS[1] if its expiry is after
// ARGV[1], keeping expiry and TTL; otherwise it starts a counter at ARGV[3]
// with the expiry prefix ARGV[2] and a TTL of ARGV[4] ms. It returns the total.
var incrScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and struct.unpack('>i8', v) > tonumber(ARGV[1]) then
	local n = tonumber(string.sub(v, 9))
	if not n then
		return redis.error_reply('ephemeral: key holds an item, not a counter')
	end
	n = n + tonumber(ARGV[3])
	redis.call('SET', KEYS[1], string.sub(v, 1, 8) .. string.format('%d', n), 'KEEPTTL')
	return n
end
redis.call('SET', KEYS[1], ARGV[2] .. ARGV[3], 'PX', ARGV[4])
return tonumber(ARGV[3])
`)

// Incr adds delta to the counter under key and returns the new total. An
// absent or expired counter starts from zero and expires at expires; a live
// one keeps its expiry.
func (s *Store) Incr(ctx context.Context, key string, delta int64, expires, now time.Time) (int64, error) {
	n, err := incrScript.Run(ctx, s.c, []string{s.prefix + key},
		now.UnixMicro(), encode(expires, nil), delta, ttl(expires, now).Milliseconds()).Int64()
	if err != nil {
		return 0, fail("incr", err)
	}
	return n, nil
}

// Count returns the live counter under key, or 0 when it is absent or expired.
func (s *Store) Count(ctx context.Context, key string, now time.Time) (int64, error) {
	b, err := s.c.Get(ctx, s.prefix+key).Bytes()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fail("count", err)
	}
	v, err := live("count", b, now)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, errors.New("ephemeral/redis: count: key holds an item, not a counter")
	}
	return n, nil
}

// Ping reports whether Redis answers, wrapping ephemeral.ErrUnavailable if not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fail("ping", err)
	}
	return nil
}

// Close closes the client. Afterwards every method returns an error wrapping
// ephemeral.ErrUnavailable.
func (s *Store) Close() error {
	return s.c.Close()
}

// encode returns the stored form of value: its expiry, then value.
func encode(expires time.Time, value []byte) []byte {
	b := make([]byte, expiryLen+len(value))
	binary.BigEndian.PutUint64(b, uint64(expires.UnixMicro()))
	copy(b[expiryLen:], value)
	return b
}

// live decodes a stored value and returns it if it expires after now, or
// ephemeral.ErrNotFound.
func live(op string, b []byte, now time.Time) ([]byte, error) {
	if len(b) < expiryLen {
		return nil, fmt.Errorf("ephemeral/redis: %s: stored value of %d bytes has no expiry prefix", op, len(b))
	}
	if int64(binary.BigEndian.Uint64(b)) <= now.UnixMicro() {
		return nil, ephemeral.ErrNotFound
	}
	return b[expiryLen:], nil
}

// ttl returns the Redis TTL for an item expiring at expires: its remaining
// lifetime at now plus ttlMargin, so at least ttlMargin.
func ttl(expires, now time.Time) time.Duration {
	d := max(expires.Sub(now), 0) // Sub saturates rather than overflows
	if d > math.MaxInt64-ttlMargin {
		return time.Duration(math.MaxInt64)
	}
	return d + ttlMargin
}

func checkSize(op string, value []byte) error {
	if len(value) > ephemeral.MaxValueSize {
		return fmt.Errorf("ephemeral/redis: %s: value of %d bytes exceeds the limit of %d (ephemeral.MaxValueSize)",
			op, len(value), ephemeral.MaxValueSize)
	}
	return nil
}

// fail translates a go-redis error for op: goredis.Nil becomes
// ephemeral.ErrNotFound; an error Redis replied with stays as it is, unless it
// means the server cannot serve now; anything else (network, timeout, closed
// client, cancelled context) wraps ephemeral.ErrUnavailable as well as the
// cause. Keys are left out of messages: some are secrets, such as codes.
func fail(op string, err error) error {
	if errors.Is(err, goredis.Nil) {
		return ephemeral.ErrNotFound
	}
	_, reply := errors.AsType[goredis.Error](err)
	if reply && !serverUnavailable(err) {
		return fmt.Errorf("ephemeral/redis: %s: %w", op, err)
	}
	return fmt.Errorf("ephemeral/redis: %s: %w: %w", op, ephemeral.ErrUnavailable, err)
}

// serverUnavailable reports whether Redis replied that it cannot serve the
// command for now, as opposed to refusing the command itself.
func serverUnavailable(err error) bool {
	return goredis.IsLoadingError(err) || goredis.IsReadOnlyError(err) ||
		goredis.IsMasterDownError(err) || goredis.IsClusterDownError(err) ||
		goredis.IsTryAgainError(err) || goredis.IsMaxClientsError(err)
}
