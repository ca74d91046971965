package limiter

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// maxHorizon bounds every duration the GCRA arithmetic adds to a time
// (Burst/Rate and the lockout cap), about 36 years, so that now plus twice
// the horizon never overflows int64 nanoseconds for any date before 2200.
const maxHorizon = int64(1) << 60

// ErrInvalidParams is wrapped by NewParams and Params.WithMaxLockout when a
// value is out of range.
var ErrInvalidParams = errors.New("limiter: invalid parameters")

// Params are precomputed GCRA parameters for one limit. They are small values,
// meant to be built once per rule (at configuration load) and passed by value
// on every call.
//
// Definitions, all in nanoseconds:
//
//   - T, the emission interval, is 1/Rate rounded to the nearest nanosecond:
//     the time one cell of budget takes to come back.
//   - tau, the burst tolerance, is T*(Burst-1): how far ahead of the steady
//     rate a key may run.
//   - L = T + tau = T*Burst is therefore the largest value TAT-now may take
//     after a conforming request, where TAT is the key's theoretical arrival
//     time (the only state kept per key).
//
// A request of cost n arriving at now conforms if and only if
//
//	max(TAT, now) + n*T - now <= L
//
// and, if it does, TAT becomes max(TAT, now) + n*T. A rested key therefore
// admits Burst cost-1 requests at once and then one every T. When a request
// does not conform, the retry-after value is the exact wait until it would:
// max(TAT, now) + n*T - L - now.
//
// Charge (response-based counting) adds cost unconditionally, but never
// pushes TAT further than now + L - T + MaxLockout, so after any Charge a
// cost-1 request conforms again within MaxLockout. MaxLockout defaults to
// Burst*T, the time a fully spent burst takes to refill.
//
// The zero Params means "no limit": Allow and Peek always conform and Charge
// does nothing.
type Params struct {
	rate       float64
	burst      int
	interval   int64 // T
	limit      int64 // L = T*Burst
	maxLockout int64 // Charge cap on TAT-now is limit - interval + maxLockout
}

// NewParams precomputes the GCRA parameters for a limit of ratePerSecond
// cells per second with room for bursts of burst cells (see Params for the
// exact definitions). ratePerSecond must be finite and positive and at most
// 1e9 (one cell per nanosecond); burst must be at least 1; Burst/Rate must
// not exceed about 36 years. Errors wrap ErrInvalidParams.
func NewParams(ratePerSecond float64, burst int) (Params, error) {
	if math.IsNaN(ratePerSecond) || math.IsInf(ratePerSecond, 0) || ratePerSecond <= 0 {
		return Params{}, fmt.Errorf("%w: rate %v per second must be a positive finite number", ErrInvalidParams, ratePerSecond)
	}
	if burst < 1 {
		return Params{}, fmt.Errorf("%w: burst %d must be at least 1", ErrInvalidParams, burst)
	}
	t := math.Round(1e9 / ratePerSecond)
	if t < 1 {
		return Params{}, fmt.Errorf("%w: rate %v per second is above one per nanosecond", ErrInvalidParams, ratePerSecond)
	}
	if t*float64(burst) > float64(maxHorizon) {
		return Params{}, fmt.Errorf("%w: burst %d at rate %v per second spans more than %v", ErrInvalidParams, burst, ratePerSecond, time.Duration(maxHorizon))
	}
	interval := int64(t)
	limit := interval * int64(burst)
	return Params{
		rate:       ratePerSecond,
		burst:      burst,
		interval:   interval,
		limit:      limit,
		maxLockout: limit,
	}, nil
}

// WithMaxLockout returns a copy of p whose Charge cap lets a cost-1 request
// conform again at most d after any Charge (see Params). d must be at least
// one emission interval and at most about 36 years; errors wrap
// ErrInvalidParams. It is an error on the zero Params.
func (p Params) WithMaxLockout(d time.Duration) (Params, error) {
	if p.interval == 0 {
		return Params{}, fmt.Errorf("%w: max lockout on zero parameters", ErrInvalidParams)
	}
	if int64(d) < p.interval || int64(d) > maxHorizon {
		return Params{}, fmt.Errorf("%w: max lockout %v must lie between the emission interval %v and %v",
			ErrInvalidParams, d, time.Duration(p.interval), time.Duration(maxHorizon))
	}
	p.maxLockout = int64(d)
	return p, nil
}

// Rate returns the sustained rate in cells per second, as given to NewParams.
func (p Params) Rate() float64 { return p.rate }

// Burst returns the burst size in cells, as given to NewParams.
func (p Params) Burst() int { return p.burst }

// Interval returns the emission interval T = 1/Rate, rounded to the
// nanosecond.
func (p Params) Interval() time.Duration { return time.Duration(p.interval) }

// MaxLockout returns the longest a Charge can keep a key from conforming;
// Burst/Rate unless set with WithMaxLockout.
func (p Params) MaxLockout() time.Duration { return time.Duration(p.maxLockout) }

// IsZero reports whether p is the zero Params, which limits nothing.
func (p Params) IsZero() bool { return p.interval == 0 }

// String describes p for logs, such as "10/s burst 20".
func (p Params) String() string {
	if p.interval == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%g/s burst %d", p.rate, p.burst)
}

// conform applies the GCRA test to a key whose stored TAT is tat (or any
// value <= now when absent). It returns the new TAT and true when a request
// of cost n (1 <= n <= burst) conforms, else the retry-after in nanoseconds.
func (p *Params) conform(tat, n, now int64) (newTAT int64, ok bool, retry int64) {
	if tat < now {
		tat = now
	}
	newTAT = tat + n*p.interval
	if over := newTAT - now - p.limit; over > 0 {
		return 0, false, over
	}
	return newTAT, true, 0
}

// charge returns the TAT after adding cost n (n >= 1) unconditionally,
// capped at now + limit - interval + maxLockout, and never below tat.
func (p *Params) charge(tat, n, now int64) int64 {
	base := tat
	if base < now {
		base = now
	}
	capAt := now + p.limit - p.interval + p.maxLockout
	var newTAT int64
	if n > (capAt-base)/p.interval {
		newTAT = capAt
	} else {
		newTAT = base + n*p.interval
	}
	if newTAT > capAt {
		newTAT = capAt
	}
	if newTAT < tat {
		newTAT = tat
	}
	return newTAT
}
