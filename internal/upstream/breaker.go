package upstream

import (
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// BreakerState is the state of an origin's circuit breaker.
type BreakerState uint8

const (
	// BreakerClosed lets requests through; failures are being counted.
	BreakerClosed BreakerState = iota
	// BreakerOpen sends nothing to the origin until the ejection ends.
	BreakerOpen
	// BreakerHalfOpen lets one probe request through; its outcome closes
	// or reopens the breaker.
	BreakerHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "unknown"
}

// upstream is one origin and its live state. The fields read on the request
// path are atomics; mu guards only the failure bookkeeping.
type upstream struct {
	idx    int    // position in Pool.ups
	name   string // URL as configured, for reports and logs
	scheme string // "http" or "https": what the transport speaks
	host   string // host[:port] dialled
	weight int64
	rt     http.RoundTripper // the fast path, or the http.Transport
	h1     *h1Transport      // the fast path; nil for HTTP/2 origins or when disabled
	idle   interface{ CloseIdleConnections() }
	check  *http.Request // health check template

	inflight  atomic.Int64
	requests  atomic.Uint64
	failures  atomic.Uint64
	ejections atomic.Uint64
	latency   atomic.Int64 // EWMA of time to response headers, ns
	down      atomic.Bool  // marked down by active health checks
	open      atomic.Bool  // breaker open or half-open
	openUntil atomic.Int64 // unix ns when an open breaker turns half-open
	probing   atomic.Bool  // the half-open probe slot is taken
	lastFail  atomic.Int64 // unix ns of the last failure, passive or active
	lastProbe atomic.Int64 // unix ns of the last probe started

	mu          sync.Mutex
	ring        []int64 // unix ns of the last MaxFails failures
	ringNext    int
	ringLen     int
	streak      int   // ejections since the doubling last started over
	recoveredAt int64 // unix ns the breaker last closed
	lastErr     string
	lastErrAt   int64

	// Owned by the health check goroutine of this origin.
	hcOK, hcFail int
}

func newUpstream(t Target, kind, host string, maxFails int) *upstream {
	u := &upstream{
		name:   (&url.URL{Scheme: kind, Host: t.URL.Host}).String(),
		host:   host,
		weight: int64(max(t.Weight, 1)),
		ring:   make([]int64, maxFails),
	}
	switch kind {
	case "http", "h2c":
		u.scheme = "http"
	default:
		u.scheme = "https"
	}
	return u
}

// usable reports whether the origin takes ordinary requests now.
func (u *upstream) usable() bool { return !u.down.Load() && !u.open.Load() }

// observeLatency folds d into the EWMA (alpha 1/8) without locks.
func (u *upstream) observeLatency(d time.Duration) {
	s := int64(d)
	for {
		old := u.latency.Load()
		n := s
		if old != 0 {
			n = old + (s-old)/8
		}
		if n == 0 {
			n = 1
		}
		if u.latency.CompareAndSwap(old, n) {
			return
		}
	}
}

// tryHalfOpen takes u's probe slot if its breaker is open and the
// ejection is over. It reports whether the caller now holds the probe.
func (u *upstream) tryHalfOpen(now int64) bool {
	if !u.open.Load() || u.down.Load() || now < u.openUntil.Load() {
		return false
	}
	if !u.probing.CompareAndSwap(false, true) {
		return false
	}
	if !u.open.Load() { // closed meanwhile: an ordinary origin again
		u.probing.Store(false)
		return false
	}
	u.lastProbe.Store(now)
	return true
}

// recordFailure counts a failure of u and ejects it when the passive rule
// says so. probe reports whether the request held u's probe slot.
func (p *Pool) recordFailure(u *upstream, probe bool, err error) {
	now := p.nowNanos()
	u.failures.Add(1)
	u.lastFail.Store(now)
	msg := "unknown error"
	if err != nil {
		msg = err.Error()
	}
	var ejected time.Duration
	u.mu.Lock()
	u.lastErr, u.lastErrAt = msg, now
	if !p.passive.Disabled {
		switch {
		case probe:
			ejected = p.ejectLocked(u, now)
		case !u.open.Load():
			u.ring[u.ringNext] = now
			u.ringNext = (u.ringNext + 1) % len(u.ring)
			u.ringLen = min(u.ringLen+1, len(u.ring))
			// Full ring: the slot to be written next holds the oldest.
			if u.ringLen == len(u.ring) && now-u.ring[u.ringNext] <= int64(p.passive.Window) {
				ejected = p.ejectLocked(u, now)
			}
		}
	}
	if probe {
		u.probing.Store(false)
	}
	u.mu.Unlock()
	if ejected > 0 {
		p.log.Warn("upstream ejected", slog.String("upstream", u.name),
			slog.Duration("for", ejected), slog.Bool("probe_failed", probe), slog.String("error", msg))
	} else if p.errLog.allow(now) {
		p.log.Debug("upstream request failed", slog.String("upstream", u.name), slog.String("error", msg))
	}
}

// ejectLocked opens u's breaker for EjectFor doubled per repeated ejection,
// capped at MaxEjectFor. u.mu is held.
func (p *Pool) ejectLocked(u *upstream, now int64) time.Duration {
	if !u.open.Load() && now-u.recoveredAt >= int64(p.passive.MaxEjectFor) {
		u.streak = 0
	}
	u.streak = min(u.streak+1, 32)
	d := p.passive.EjectFor
	for i := 1; i < u.streak && d < p.passive.MaxEjectFor; i++ {
		d *= 2
	}
	d = min(d, p.passive.MaxEjectFor)
	u.openUntil.Store(now + int64(d))
	if !u.open.Load() {
		u.open.Store(true)
		p.nOpen.Add(1)
	}
	u.ejections.Add(1)
	u.ringLen, u.ringNext = 0, 0
	return d
}

// recordSuccess notes a good answer from u; a successful probe closes the
// breaker. Ordinary successes cost nothing.
func (p *Pool) recordSuccess(u *upstream, probe bool) {
	if !probe {
		return
	}
	now := p.nowNanos()
	closed := false
	u.mu.Lock()
	if u.open.Load() {
		u.open.Store(false)
		p.nOpen.Add(-1)
		u.recoveredAt = now
		u.ringLen, u.ringNext = 0, 0
		closed = true
	}
	u.probing.Store(false)
	u.mu.Unlock()
	if closed {
		p.log.Info("upstream recovered", slog.String("upstream", u.name))
	}
}

// releaseProbe gives back a probe slot whose request said nothing about
// the origin (the client went away, or its body failed).
func releaseProbe(u *upstream, probe bool) {
	if probe {
		u.probing.Store(false)
	}
}

// shortenEjection makes an open breaker half-open now, because an active
// check just passed.
func (p *Pool) shortenEjection(u *upstream) {
	now := p.nowNanos()
	u.mu.Lock()
	if u.open.Load() && u.openUntil.Load() > now {
		u.openUntil.Store(now)
	}
	u.mu.Unlock()
}

// breakerState derives the reported state of u at now.
func (u *upstream) breakerState(now int64) BreakerState {
	switch {
	case !u.open.Load():
		return BreakerClosed
	case u.probing.Load() || now >= u.openUntil.Load():
		return BreakerHalfOpen
	default:
		return BreakerOpen
	}
}
