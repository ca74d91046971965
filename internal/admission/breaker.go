package admission

import "time"

type breakerState uint8

const (
	breakerClosed breakerState = iota
	breakerOpen
	breakerHalfOpen
)

var breakerNames = [...]string{"closed", "open", "half-open"}

func (s breakerState) String() string { return breakerNames[s] }

// breaker is the pool-wide circuit breaker: BreakerFailures overload
// outcomes in a row open it for openFor; then one trial request is let
// through (half-open); its success closes the breaker, its failure opens it
// again for twice as long, up to BreakerMaxOpen. Any success closes it. It is
// not safe for concurrent use: Limiter.mu guards it.
type breaker struct {
	o         *Options
	state     breakerState
	failures  int
	openUntil time.Time
	openFor   time.Duration
	trialOut  bool
	opens     uint64
}

func (b *breaker) init(o *Options) {
	b.o = o
	b.openFor = o.BreakerOpen
}

func (b *breaker) enabled() bool { return b.o.BreakerFailures > 0 }

func (b *breaker) closed() bool { return b.state == breakerClosed }

// admit says whether a request may go to the origin now, and whether it is
// the half-open trial.
func (b *breaker) admit(now time.Time) (trial bool, err error) {
	switch b.state {
	case breakerOpen:
		if now.Before(b.openUntil) {
			return false, ErrCircuitOpen
		}
		b.state = breakerHalfOpen
		fallthrough
	case breakerHalfOpen:
		if b.trialOut {
			return false, ErrCircuitOpen
		}
		b.trialOut = true
		return true, nil
	}
	return false, nil
}

// transition reports what a release did to the breaker.
type transition uint8

const (
	noTransition transition = iota
	opened
	closedAgain
)

func (b *breaker) onRelease(trial bool, out Outcome, now time.Time) transition {
	if !b.enabled() {
		return noTransition
	}
	switch out {
	case Success:
		b.failures = 0
		if b.state != breakerClosed {
			b.state = breakerClosed
			b.trialOut = false
			b.openFor = b.o.BreakerOpen
			return closedAgain
		}
		b.openFor = b.o.BreakerOpen
	case Dropped:
		switch {
		case trial:
			b.trialOut = false
			b.openFor = min(2*b.openFor, b.o.BreakerMaxOpen)
			b.open(now)
			return opened
		case b.state == breakerClosed:
			b.failures++
			if b.failures >= b.o.BreakerFailures {
				b.open(now)
				return opened
			}
		}
	case Ignore:
		if trial {
			b.trialOut = false
		}
	}
	return noTransition
}

func (b *breaker) open(now time.Time) {
	b.state = breakerOpen
	b.openUntil = now.Add(b.openFor)
	b.opens++
}
