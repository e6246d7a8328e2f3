package testkit

import (
	"sync"
	"time"
)

// Clock is a manual clock for tests: Now returns the set time until Advance
// or Set moves it. Safe for concurrent use. Tests never sleep.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t (UTC, whole microseconds).
func NewClock(t time.Time) *Clock { return &Clock{t: t.UTC().Truncate(time.Microsecond)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
