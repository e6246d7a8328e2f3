// Package password hashes and verifies passwords with argon2id, stored as
// PHC strings ($argon2id$v=19$m=19456,t=2,p=1$salt$hash). Verification is
// constant-time in the hash comparison, and reports when a stored hash was
// made with other parameters than the current ones so the caller can rehash
// it transparently at a successful login.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// MaxLength bounds a password in bytes, so a huge input cannot be used to
// make hashing expensive. Long passphrases (hundreds of characters) fit.
const MaxLength = 4096

// Errors of the package.
var (
	// ErrMalformedHash: the stored string is not an argon2id PHC string this
	// package accepts.
	ErrMalformedHash = errors.New("password: malformed hash")
	// ErrTooLong: the password is longer than MaxLength.
	ErrTooLong = errors.New("password: too long")
)

// Params are argon2id's cost parameters.
type Params struct {
	MemoryKiB   uint32 // m
	Iterations  uint32 // t
	Parallelism uint8  // p
	SaltLen     uint32
	KeyLen      uint32
}

// DefaultParams is the OWASP Password Storage Cheat Sheet's first argon2id
// configuration: 19 MiB, 2 iterations, 1 lane.
var DefaultParams = Params{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// Bounds accepted when parsing a stored hash, so a corrupted row cannot make
// a verification allocate gigabytes or run for minutes.
const (
	maxMemoryKiB  = 1 << 21 // 2 GiB
	maxIterations = 64
	maxKeyLen     = 128
	maxSaltLen    = 64
)

// Hasher hashes with one set of parameters. It is safe for concurrent use.
//
// At most as many hashes run at once as the process has CPUs
// (GOMAXPROCS); the rest wait their turn. Each takes MemoryKiB of memory
// (19 MiB by default), so without the bound a burst of sign-ins, or
// someone posting passwords as fast as they can, would take memory without
// limit (a thousand at once: 19 GB); and more hashes than CPUs finish no
// sooner in total, they only crowd the CPUs' caches and delay every other
// request.
type Hasher struct {
	p     Params
	dummy string
	slots chan struct{}
}

// run runs one argon2id derivation when a slot is free.
func (h *Hasher) run(password, salt []byte, p Params, keyLen uint32) []byte {
	h.slots <- struct{}{}
	defer func() { <-h.slots }()
	return argon2.IDKey(password, salt, p.Iterations, p.MemoryKiB, p.Parallelism, keyLen)
}

// NewHasher returns a Hasher using p; zero SaltLen and KeyLen take the
// defaults.
func NewHasher(p Params) (*Hasher, error) {
	if p.SaltLen == 0 {
		p.SaltLen = DefaultParams.SaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = DefaultParams.KeyLen
	}
	switch {
	case p.MemoryKiB < 8 || p.MemoryKiB > maxMemoryKiB:
		return nil, fmt.Errorf("password: memory %d KiB out of range", p.MemoryKiB)
	case p.Iterations < 1 || p.Iterations > maxIterations:
		return nil, fmt.Errorf("password: iterations %d out of range", p.Iterations)
	case p.Parallelism < 1:
		return nil, fmt.Errorf("password: parallelism must be at least 1")
	case p.SaltLen < 8 || p.SaltLen > maxSaltLen || p.KeyLen < 16 || p.KeyLen > maxKeyLen:
		return nil, fmt.Errorf("password: salt or key length out of range")
	}
	h := &Hasher{p: p, slots: make(chan struct{}, max(runtime.GOMAXPROCS(0), 1))}
	d, err := h.Hash(rand.Text())
	if err != nil {
		return nil, err
	}
	h.dummy = d
	return h, nil
}

// Params returns the hasher's parameters.
func (h *Hasher) Params() Params { return h.p }

// Hash returns the PHC string of password under a fresh random salt.
func (h *Hasher) Hash(password string) (string, error) {
	if len(password) > MaxLength {
		return "", ErrTooLong
	}
	salt := make([]byte, h.p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := h.run([]byte(password), salt, h.p, h.p.KeyLen)
	return encode(h.p, salt, key), nil
}

// Verify reports whether password matches the PHC string encoded, and
// whether encoded should be replaced by a fresh Hash because its parameters
// differ from the hasher's. A malformed hash returns ErrMalformedHash; a
// password over MaxLength does not match.
func (h *Hasher) Verify(encoded, password string) (ok, rehash bool, err error) {
	p, salt, want, err := Decode(encoded)
	if err != nil {
		return false, false, err
	}
	if len(password) > MaxLength {
		// Spend the same time as a real check, then refuse.
		h.run([]byte(password[:MaxLength]), salt, p, uint32(len(want)))
		return false, false, nil
	}
	got := h.run([]byte(password), salt, p, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	rehash = p.MemoryKiB != h.p.MemoryKiB || p.Iterations != h.p.Iterations ||
		p.Parallelism != h.p.Parallelism || uint32(len(salt)) != h.p.SaltLen || uint32(len(want)) != h.p.KeyLen
	return true, rehash, nil
}

// VerifyDummy spends the time of one verification and returns nothing. A
// login for an unknown account calls it so that timing does not reveal
// whether the account exists.
func (h *Hasher) VerifyDummy(password string) {
	h.Verify(h.dummy, password)
}

var b64 = base64.RawStdEncoding

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Decode parses an argon2id PHC string, returning its parameters (SaltLen
// and KeyLen set from the decoded values), salt and key. It accepts only
// version 19, parameters in the order m,t,p, unpadded standard base64, and
// values within bounds; anything else is ErrMalformedHash.
func Decode(encoded string) (Params, []byte, []byte, error) {
	var p Params
	bad := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, why)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("want $argon2id$v=19$m=,t=,p=$salt$hash")
	}
	if parts[1] != "argon2id" {
		return bad("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version")
	}
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return bad("want parameters m,t,p")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		k, v, found := strings.Cut(kv[i], "=")
		if !found || k != name || v == "" || (len(v) > 1 && v[0] == '0') {
			return bad("want parameters m,t,p")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("parameter " + name + " is not a number")
		}
		vals[i] = n
	}
	p.MemoryKiB, p.Iterations = uint32(vals[0]), uint32(vals[1])
	if vals[2] < 1 || vals[2] > 255 || p.Iterations < 1 || p.Iterations > maxIterations ||
		p.MemoryKiB < 8*uint32(vals[2]) || p.MemoryKiB > maxMemoryKiB {
		return bad("parameters out of range")
	}
	p.Parallelism = uint8(vals[2])
	// The decoder skips CR and LF; re-encoding keeps only canonical strings.
	salt, err := b64.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > maxSaltLen || b64.EncodeToString(salt) != parts[4] {
		return bad("salt")
	}
	key, err := b64.Strict().DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > maxKeyLen || b64.EncodeToString(key) != parts[5] {
		return bad("hash")
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
