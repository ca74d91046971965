package admission

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is an injected clock that moves only when a test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// mustNew builds a Limiter or fails the test.
func mustNew(t testing.TB, o Options) *Limiter {
	t.Helper()
	l, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

// finishProbe completes the start-up probe with samples of rtt, so that the
// limit is InitialLimit and minRTT is rtt.
func finishProbe(t testing.TB, l *Limiter, clk *fakeClock, rtt time.Duration) {
	t.Helper()
	for l.Stats().Probing {
		tk, err := l.Acquire(t.Context(), 1, 0)
		if err != nil {
			t.Fatalf("probe acquire: %v", err)
		}
		clk.Advance(rtt)
		tk.Release(rtt, Success)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
