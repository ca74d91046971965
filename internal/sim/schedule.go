package sim

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// schedule is when an attack component is active, as offsets from the start
// of the run (see Attack.Start): nothing before start; from start, on of
// activity then off of silence, over and over (always active unless both
// are set); the level rises linearly from 0 to 1 over the first ramp after
// start, in wall-clock time (a pause during the ramp does not stop it). The
// zero schedule is active at full level from the first instant.
type schedule struct {
	start, ramp, on, off time.Duration
}

func (a Attack) schedule() schedule {
	return schedule{start: max(a.Start, 0), ramp: max(a.Ramp, 0), on: max(a.On, 0), off: max(a.Off, 0)}
}

func (s schedule) isZero() bool { return s == schedule{} }

func (s schedule) waves() bool { return s.on > 0 && s.off > 0 }

// level returns the share of the full rate (0 to 1) at offset t, and the
// wave t falls in (0 for the first; without waves always 0). Before start
// the wave is 0 and the level 0.
func (s schedule) level(t time.Duration) (float64, int) {
	u := t - s.start
	if u < 0 {
		return 0, 0
	}
	wave := 0
	if s.waves() {
		p := s.on + s.off
		wave = int(u / p)
		if u%p >= s.on {
			return 0, wave
		}
	}
	if s.ramp > 0 && u < s.ramp {
		return float64(u) / float64(s.ramp), wave
	}
	return 1, wave
}

// rampWork is the integral of the ramp alone over [0, x] after start, in
// seconds at full level.
func (s schedule) rampWork(x time.Duration) float64 {
	if x <= 0 {
		return 0
	}
	if s.ramp <= 0 || x >= s.ramp {
		return (x - s.ramp/2).Seconds()
	}
	r := s.ramp.Seconds()
	xs := x.Seconds()
	return xs * xs / (2 * r)
}

// work returns the integral of level over [0, t] in seconds: a source at
// rate per second is due rate·work(t) requests by t.
func (s schedule) work(t time.Duration) float64 {
	u := t - s.start
	if u <= 0 {
		return 0
	}
	if !s.waves() {
		return s.rampWork(u)
	}
	p := s.on + s.off
	n := int64(u / p) // whole periods before u
	var w float64
	k := int64(0)
	// Periods that overlap the ramp are integrated one by one (there are
	// ramp/(on+off)+1 of them, a preset's constant); the rest are whole
	// waves at full level.
	for ; k < n && time.Duration(k)*p < s.ramp; k++ {
		w += s.rampWork(time.Duration(k)*p+s.on) - s.rampWork(time.Duration(k)*p)
	}
	w += float64(n-k) * s.on.Seconds()
	from := time.Duration(n) * p
	return w + s.rampWork(from+min(u-from, s.on)) - s.rampWork(from)
}

// at returns the earliest offset at which work reaches w (w > 0): when a
// source's request number w·rate is due.
func (s schedule) at(w float64) time.Duration {
	if w <= 0 {
		return s.start
	}
	lo, hi := s.start, s.start+time.Second
	for s.work(hi) < w {
		lo, hi = hi, s.start+2*(hi-s.start)
		if hi-s.start > 1<<60 {
			return hi
		}
	}
	for hi-lo > time.Microsecond {
		mid := lo + (hi-lo)/2
		if s.work(mid) >= w {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// window returns the next stretch of time, from an offset at or after t,
// in which the component is active at a level of at least threshold (0 to
// 1): when a connection of a slow attack whose share of the component is
// threshold is open. until is the end of the wave, or a time past any run
// without waves.
func (s schedule) window(t time.Duration, threshold float64) (from, until time.Duration) {
	const forever = time.Duration(math.MaxInt64)
	from = max(t, s.start)
	// Each step moves from forward: to the next wave, or (once) to where
	// the ramp reaches threshold.
	for {
		u := from - s.start
		if s.waves() {
			p := s.on + s.off
			if u%p >= s.on {
				from += p - u%p
				continue
			}
		}
		if need := time.Duration(threshold * float64(s.ramp)); u < need {
			from = s.start + need
			continue
		}
		break
	}
	if !s.waves() {
		return from, forever
	}
	p := s.on + s.off
	u := from - s.start
	return from, from - u%p + s.on
}

// clock is the time source of the scheduled pacers: tests drive a fake
// one, never sleeping.
type clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends; it reports whether d passed.
	Sleep(ctx context.Context, d time.Duration) bool
}

type realClock struct{}

func (realClock) Now() time.Time                                  { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) bool { return wait(ctx, d) }

// paceSchedule calls send with the current wave each time a source at rate
// requests per second is due under s, measured from start, until ctx ends
// or send returns false. phase (0 to 1) shifts the source's slots by that
// share of a slot, so sources do not fire together. Like pace, a send that
// overruns delays the next one, and the source never bursts to catch up by
// more than one slot.
func paceSchedule(ctx context.Context, clk clock, start time.Time, s schedule, rate, phase float64, send func(wave int) bool) {
	if rate <= 0 {
		return
	}
	for k := 0.0; ; k++ {
		t := s.at((k + phase) / rate)
		if !clk.Sleep(ctx, start.Add(t).Sub(clk.Now())) {
			return
		}
		_, wave := s.level(t)
		if !send(wave) || ctx.Err() != nil {
			return
		}
		// Skip the slots that passed while sending, but the last one.
		if due := s.work(clk.Now().Sub(start))*rate - phase; due > k+2 {
			k = math.Floor(due) - 1
		}
	}
}

// slots returns the offsets paceSchedule sends at before until, when every
// send is instant: the computed schedule, for tests and for reasoning.
func (s schedule) slots(rate, phase float64, until time.Duration) []time.Duration {
	var out []time.Duration
	for k := 0.0; rate > 0; k++ {
		t := s.at((k + phase) / rate)
		if t >= until {
			break
		}
		out = append(out, t)
	}
	return out
}

// paceAttack paces one source of a: by pace at a.Rate when a has no
// schedule (so presets without one run as they always did), by
// paceSchedule from the run's start otherwise. rate overrides a.Rate when
// positive.
func (r *runner) paceAttack(ctx context.Context, a Attack, rate float64, rng *rand.Rand, send func(wave int) bool) {
	if rate <= 0 {
		rate = a.Rate
	}
	s := a.schedule()
	if s.isZero() {
		pace(ctx, rate, rng, func() bool { return send(0) })
		return
	}
	paceSchedule(ctx, realClock{}, r.start, s, rate, rng.Float64(), send)
}
