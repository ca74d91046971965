package admission

import (
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// Stats is a snapshot of a Limiter for metrics. Arrays are indexed by
// verdict.Class; counters only grow.
type Stats struct {
	// Limit is the number of requests the origin may have in flight now
	// (MinLimit during a probe). Estimate is the adaptive limit itself.
	Limit    int
	Estimate float64
	// InFlight is the number of admitted requests not yet released.
	InFlight int
	// Queued is the number of requests waiting, per class.
	Queued [verdict.NumClasses]int
	// Admitted counts requests let through, per class.
	Admitted [verdict.NumClasses]uint64
	// Rejected counts requests refused: queue full, shed for a higher
	// class, circuit open, or a class that may not wait.
	Rejected [verdict.NumClasses]uint64
	// Shed counts waiters pushed out of a full queue by a higher class
	// (also counted in Rejected).
	Shed [verdict.NumClasses]uint64
	// TimedOut counts waiters whose class deadline passed.
	TimedOut [verdict.NumClasses]uint64
	// Canceled counts waiters whose context ended (the client left).
	Canceled [verdict.NumClasses]uint64
	// Dropped counts overload outcomes reported by Release.
	Dropped uint64
	// MinRTT is the origin's unloaded latency as last probed; SampleRTT is
	// the median latency of the last window.
	MinRTT, SampleRTT time.Duration
	// Probing reports whether a minRTT probe is running.
	Probing bool
	// Breaker is "closed", "open" or "half-open"; BreakerOpens counts the
	// times it opened.
	Breaker      string
	BreakerOpens uint64
}

// Stats returns a snapshot. It takes the Limiter's lock briefly.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{
		Limit:        l.alg.effective(),
		Estimate:     l.alg.limit,
		InFlight:     l.inFlight,
		Dropped:      l.drops,
		MinRTT:       l.alg.minRTT,
		SampleRTT:    l.alg.lastRTT,
		Probing:      l.alg.probing,
		Breaker:      l.br.state.String(),
		BreakerOpens: l.br.opens,
	}
	for c := range l.queues {
		s.Queued[c] = l.queues[c].n
		cc := l.counters[c]
		s.Admitted[c] = cc.admitted
		s.Rejected[c] = cc.rejected
		s.Shed[c] = cc.shed
		s.TimedOut[c] = cc.timedOut
		s.Canceled[c] = cc.canceled
	}
	return s
}
