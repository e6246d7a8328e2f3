package authn

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// browser is one device: it keeps its device cookie across ceremonies.
type browser struct {
	a      *Authenticator
	ip     string
	device *http.Cookie
}

// signIn runs a whole ceremony and returns the password step's response.
func (b *browser) signIn(t *testing.T, email, pw string) *httptest.ResponseRecorder {
	t.Helper()
	var extra []*http.Cookie
	if b.device != nil {
		extra = append(extra, b.device)
	}
	cookies, id, csrf := start(t, b.a, extra...)
	for _, c := range cookies {
		if c.Name == b.a.deviceCookieName() {
			b.device = c
		}
	}
	base := "ceremony=" + id + "&csrf_token=" + csrf + "&email=" + email
	if w := postFrom(b.a, b.ip, cookies, base); w.Code != http.StatusSeeOther {
		t.Fatalf("identify %s: %d", email, w.Code)
	}
	return postFrom(b.a, b.ip, cookies, base+"&password="+strings.ReplaceAll(pw, " ", "+"))
}

func ok(w *httptest.ResponseRecorder) bool { return w.Code == http.StatusSeeOther }
func locked(w *httptest.ResponseRecorder) bool {
	return w.Code == http.StatusUnprocessableEntity && strings.Contains(w.Body.String(), "too many attempts")
}

const goodPassword = "correct horse battery"

func TestLockoutSparesFamiliarPlaces(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	a := newTestAuthenticatorAt(t, clock.Now)
	home := &browser{a: a, ip: "10.1.1.5"}
	if !ok(home.signIn(t, "jane@nhs.net", goodPassword)) {
		t.Fatal("first sign-in failed")
	}
	attacker := &browser{a: a, ip: "203.0.113.9"}
	for i := range a.cfg.Lockout.Threshold - 1 {
		if w := attacker.signIn(t, "jane@nhs.net", "guess number "+fmt.Sprint(i)); locked(w) || ok(w) {
			t.Fatalf("attempt %d: locked or accepted too early (%d)", i+1, w.Code)
		}
	}
	if !locked(attacker.signIn(t, "jane@nhs.net", "one guess too many")) {
		t.Fatal("threshold reached without a lock")
	}
	if !locked(attacker.signIn(t, "jane@nhs.net", goodPassword)) {
		t.Error("the locked place got in with the right password")
	}
	if !ok(home.signIn(t, "jane@nhs.net", goodPassword)) {
		t.Error("the user's own device was locked out by someone else's guesses")
	}
	colleague := &browser{a: a, ip: "10.1.1.77"} // a new device on the familiar network
	if !ok(colleague.signIn(t, "jane@nhs.net", goodPassword)) {
		t.Error("a new device on the user's familiar network was locked out")
	}

	// The lock expires, and a second lock lasts longer than the first.
	clock.Advance(a.cfg.Lockout.BaseLock + time.Second)
	for range a.cfg.Lockout.Threshold {
		attacker.signIn(t, "jane@nhs.net", "still guessing")
	}
	clock.Advance(a.cfg.Lockout.BaseLock + time.Second)
	if !locked(attacker.signIn(t, "jane@nhs.net", goodPassword)) {
		t.Error("second lock was no longer than the first")
	}

	// An administrator's unlock (or a password reset) lifts it.
	if err := a.Unlock(t.Context(), "JANE@nhs.net"); err != nil {
		t.Fatal(err)
	}
	if !ok(attacker.signIn(t, "jane@nhs.net", goodPassword)) {
		t.Error("still locked after Unlock")
	}

	// So does an unlock recorded in the directory by another process (idp
	// admin user unlock), though this server's lockout state is in its own
	// memory.
	for range a.cfg.Lockout.Threshold {
		attacker.signIn(t, "jane@nhs.net", "guessing again")
	}
	if !locked(attacker.signIn(t, "jane@nhs.net", goodPassword)) {
		t.Fatal("not locked again")
	}
	a.dir.(*fakeDir).unlockedAt = clock.Now()
	if !ok(attacker.signIn(t, "jane@nhs.net", goodPassword)) {
		t.Error("still locked after an unlock recorded in the directory")
	}
}

func TestLockoutTreatsUnknownAccountsAlike(t *testing.T) {
	a := newTestAuthenticator(t)
	b := &browser{a: a, ip: "203.0.113.9"}
	for range a.cfg.Lockout.Threshold - 1 {
		b.signIn(t, "nobody@nhs.net", "guess")
	}
	if !locked(b.signIn(t, "nobody@nhs.net", "guess")) {
		t.Error("an unknown account does not lock like a known one: that would reveal which accounts exist")
	}
}

func TestSprayFromOneAddressIsThrottled(t *testing.T) {
	a := newTestAuthenticator(t)
	sprayer := &browser{a: a, ip: "198.51.100.7"}
	for i := range a.cfg.Lockout.SprayAccounts {
		sprayer.signIn(t, fmt.Sprintf("user%d@nhs.net", i), "Winter2026!")
	}
	if w := sprayer.signIn(t, "jane@nhs.net", goodPassword); ok(w) || !locked(w) {
		t.Errorf("after spraying %d accounts, an unfamiliar attempt from the address: %d, want throttled", a.cfg.Lockout.SprayAccounts, w.Code)
	}
	other := &browser{a: a, ip: "198.51.101.7"}
	if !ok(other.signIn(t, "jane@nhs.net", goodPassword)) {
		t.Error("another address was throttled too")
	}
}
