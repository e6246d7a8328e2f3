package authn

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
)

// LockoutPolicy limits password guessing without letting a guesser lock
// the real user out. Failures are counted per account and per class of
// place the attempt comes from: each familiar device or network (where the
// account signed in before) has a class of its own, and everywhere else
// shares one "unfamiliar" class. Reaching Threshold locks only that class,
// for BaseLock doubling with each lock up to MaxLock; the user on their
// own computer goes on signing in. One address failing on many accounts
// (password spraying) is throttled for unfamiliar attempts.
type LockoutPolicy struct {
	Threshold int           // failures within Window that lock the class
	Window    time.Duration // how long failures are counted
	BaseLock  time.Duration // the first lock's length
	MaxLock   time.Duration // the longest lock
	// SprayAccounts distinct accounts failing from one address within
	// SprayWindow throttle that address for SprayBlock.
	SprayAccounts int
	SprayWindow   time.Duration
	SprayBlock    time.Duration
	// Familiar is how long a device or network stays familiar after a
	// successful sign-in.
	Familiar time.Duration
}

// DefaultLockout is the national default.
var DefaultLockout = LockoutPolicy{
	Threshold: 5, Window: 15 * time.Minute, BaseLock: time.Minute, MaxLock: time.Hour,
	SprayAccounts: 30, SprayWindow: 10 * time.Minute, SprayBlock: 5 * time.Minute,
	Familiar: 180 * 24 * time.Hour,
}

// Keys in the ephemeral store. Accounts are named by the hash of the email
// as typed, so an unknown address is treated exactly like a known one.
const (
	keyLockGen   = "authn:lockgen:"   // + account: generation, bumped to unlock
	keyFail      = "authn:fail:"      // + account:gen:class
	keyLock      = "authn:lock:"      // + account:gen:class -> until
	keyLockLevel = "authn:locklevel:" // + account:gen:class
	keyFamiliar  = "authn:familiar:"  // + userID:device|net
	keySprayAcct = "authn:spray:acct:"
	keySpray     = "authn:spray:n:"
	keySprayLock = "authn:spray:lock:"
)

func accountKey(email string) string { return directory.HashToken("acct:" + directory.EmailKey(email)) }

// network is the /24 (IPv4) or /48 (IPv6) the address is in.
func network(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "unknown"
	}
	bits := 48
	if a.Is4() || a.Is4In6() {
		a, bits = a.Unmap(), 24
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

func (a *Authenticator) deviceCookieName() string {
	if a.secure {
		return "__Host-lanyard-device"
	}
	return "lanyard-device"
}

// deviceID returns the browser's long-lived device ID, setting one if it
// has none. The ID is random; it proves nothing until an account has
// signed in from it.
func (a *Authenticator) deviceID(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(a.deviceCookieName()); err == nil && len(c.Value) >= 20 && len(c.Value) <= 64 {
		return c.Value
	}
	id := rand.Text()
	http.SetCookie(w, &http.Cookie{
		Name: a.deviceCookieName(), Value: id, Path: "/", HttpOnly: true, Secure: a.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: 400 * 24 * 3600,
	})
	r.AddCookie(&http.Cookie{Name: a.deviceCookieName(), Value: id})
	return id
}

// attempt is where a password attempt comes from.
type attempt struct {
	account string // accountKey of the email typed
	device  string
	ip      string
}

// class is the lockout class of an attempt for a known user: its familiar
// device, else its familiar network, else "unfamiliar".
func (a *Authenticator) class(ctx context.Context, userID string, at attempt) (string, error) {
	if userID != "" {
		for _, c := range []string{"dev:" + directory.HashToken(at.device), "net:" + network(at.ip)} {
			_, err := a.eph.Get(ctx, keyFamiliar+userID+":"+c, a.now())
			if err == nil {
				return c, nil
			} else if !errors.Is(err, ephemeral.ErrNotFound) {
				return "", err
			}
		}
	}
	return "unfamiliar", nil
}

// generation names the account's current lockout generation: its locks
// and failure counts are kept under it, so a new generation lifts them all.
// It moves on with an unlock in the ephemeral store (a password reset, or
// an unlock by this process) and with an administrator's unlock recorded
// in the directory, which reaches every server, even one whose lockout
// state lives in its own memory (idp admin user unlock without Redis).
// A sign-in request reads it once.
func (a *Authenticator) generation(ctx context.Context, account string) (string, error) {
	lw := writesFrom(ctx)
	if g, ok := lw.gen(account); ok {
		return g, nil
	}
	n, err := a.eph.Count(ctx, keyLockGen+account, a.now())
	if err != nil {
		return "", err
	}
	at, err := a.dir.AccountUnlockedAt(ctx, account)
	if err != nil {
		return "", err
	}
	g := strconv.FormatInt(n, 10)
	if !at.IsZero() {
		g += "." + strconv.FormatInt(at.UnixMicro(), 10)
	}
	lw.setGen(account, g)
	return g, nil
}

func (lw *loginWrites) gen(account string) (string, bool) {
	if lw == nil {
		return "", false
	}
	g, ok := lw.gens[account]
	return g, ok
}

func (lw *loginWrites) setGen(account, g string) {
	if lw == nil {
		return
	}
	if lw.gens == nil {
		lw.gens = map[string]string{}
	}
	lw.gens[account] = g
}

// lockedUntil reports whether the attempt's class or address is locked.
func (a *Authenticator) lockedUntil(ctx context.Context, at attempt, class string) (time.Time, error) {
	now := a.now()
	if class == "unfamiliar" {
		if b, err := a.eph.Get(ctx, keySprayLock+at.ip, now); err == nil {
			return parseUntil(b), nil
		} else if !errors.Is(err, ephemeral.ErrNotFound) {
			return time.Time{}, err
		}
	}
	gen, err := a.generation(ctx, at.account)
	if err != nil {
		return time.Time{}, err
	}
	b, err := a.eph.Get(ctx, keyLock+at.account+":"+gen+":"+class, now)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, err
	}
	return parseUntil(b), nil
}

func parseUntil(b []byte) time.Time {
	n, _ := strconv.ParseInt(string(b), 10, 64)
	return time.UnixMicro(n).UTC()
}

// failed counts a failed attempt and locks the class when it reaches the
// threshold; it returns until when the class is now locked (zero if not).
func (a *Authenticator) failed(ctx context.Context, at attempt, class string) (time.Time, error) {
	p, now := a.cfg.Lockout, a.now()
	if class == "unfamiliar" {
		if err := a.countSpray(ctx, at); err != nil {
			return time.Time{}, err
		}
	}
	gen, err := a.generation(ctx, at.account)
	if err != nil {
		return time.Time{}, err
	}
	k := at.account + ":" + gen + ":" + class
	n, err := a.eph.Incr(ctx, keyFail+k, 1, now.Add(p.Window), now)
	if err != nil || n < int64(p.Threshold) {
		return time.Time{}, err
	}
	level, err := a.eph.Incr(ctx, keyLockLevel+k, 1, now.Add(24*time.Hour), now)
	if err != nil {
		return time.Time{}, err
	}
	d := p.BaseLock << min(level-1, 20)
	if d > p.MaxLock || d <= 0 {
		d = p.MaxLock
	}
	until := now.Add(d)
	if err := a.eph.Put(ctx, keyLock+k, []byte(strconv.FormatInt(until.UnixMicro(), 10)), until, now); err != nil {
		return time.Time{}, err
	}
	if err := a.eph.Delete(ctx, keyFail+k); err != nil {
		return time.Time{}, err
	}
	return until, nil
}

// countSpray counts distinct accounts failing from the address and blocks
// unfamiliar attempts from it when there are too many.
func (a *Authenticator) countSpray(ctx context.Context, at attempt) error {
	p, now := a.cfg.Lockout, a.now()
	err := a.eph.Create(ctx, keySprayAcct+at.ip+":"+at.account, nil, now.Add(p.SprayWindow), now)
	if errors.Is(err, ephemeral.ErrExists) {
		return nil // this account already counted
	} else if err != nil {
		return err
	}
	n, err := a.eph.Incr(ctx, keySpray+at.ip, 1, now.Add(p.SprayWindow), now)
	if err != nil || n < int64(p.SprayAccounts) {
		return err
	}
	until := now.Add(p.SprayBlock)
	return a.eph.Put(ctx, keySprayLock+at.ip, []byte(strconv.FormatInt(until.UnixMicro(), 10)), until, now)
}

// succeeded makes the device and network familiar for the user and clears
// the class's failures.
func (a *Authenticator) succeeded(ctx context.Context, userID string, at attempt, class string) error {
	now := a.now()
	for _, c := range []string{"dev:" + directory.HashToken(at.device), "net:" + network(at.ip)} {
		if err := a.eph.Put(ctx, keyFamiliar+userID+":"+c, []byte{1}, now.Add(a.cfg.Lockout.Familiar), now); err != nil {
			return err
		}
	}
	gen, err := a.generation(ctx, at.account)
	if err != nil {
		return err
	}
	return a.eph.Delete(ctx, keyFail+at.account+":"+gen+":"+class)
}

// Unlock lifts every lock on the account with this email, from every
// place, and clears its failure counts: an administrator's unlock, or a
// password reset.
func (a *Authenticator) Unlock(ctx context.Context, email string) error {
	now := a.now()
	if _, err := a.eph.Incr(ctx, keyLockGen+accountKey(email), 1, now.Add(10*365*24*time.Hour), now); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	return nil
}

// UnlockInDirectory is an administrator's unlock from another process
// (the admin command line): recorded in the directory, it lifts the
// account's locks on every server at their next attempt, whether their
// lockout state is in Redis or in their own memory.
func UnlockInDirectory(ctx context.Context, dir interface {
	UnlockAccount(ctx context.Context, account string, at time.Time) error
}, email string, now time.Time) error {
	if err := dir.UnlockAccount(ctx, accountKey(email), now); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	return nil
}

func lockedMessage(until, now time.Time) string {
	m := int(until.Sub(now).Round(time.Minute) / time.Minute)
	if m < 1 {
		m = 1
	}
	unit := "minutes"
	if m == 1 {
		unit = "minute"
	}
	return fmt.Sprintf("There have been too many attempts to sign in. Wait %d %s and try again, or reset your password.", m, unit)
}
