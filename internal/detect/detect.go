// Package detect decides the shield's mode by itself. Once a second it is
// given a Sample of the shield's counters and compares the traffic with its
// own baseline and the origin's health: a surge of requests or of cache
// misses raises the mode to elevated (micro-caching, cache keys without
// unknown query parameters); an origin that stays in distress while elevated
// raises it to under_attack (every request without a clearance is
// challenged), and so does an extreme, sustained surge that reaches the
// origin (a flood that gets past the cache and elevated mode's checks);
// Trip raises it to elevated within a fraction of a second at the onset of
// a flood well past the threshold; when the signals have been quiet for a while
// the mode steps back down, one level at a time. It only decides: the shield applies the
// mode, and nothing here is on the request path.
package detect

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// Sample is a reading of the shield's cumulative counters and gauges.
type Sample struct {
	// Time of the reading.
	Time time.Time
	// Requests answered in all (cumulative).
	Requests uint64
	// OriginRequests sent to the origin (cumulative): cache misses and
	// uncacheable requests.
	OriginRequests uint64
	// OriginFailures are requests the origin failed (connection errors,
	// timeouts, 502/503/504; cumulative).
	OriginFailures uint64
	// Shed are requests admission control turned away or timed out in its
	// queue (cumulative).
	Shed uint64
	// Queued is the number of requests waiting for the origin now.
	Queued int
	// OriginDown reports that no origin target can take requests.
	OriginDown bool
}

// Options tunes the detector. Zero fields take the defaults below.
type Options struct {
	// SurgeFactor: a request (or origin request) rate this many times its
	// baseline is a surge. Default 3: elevated mode is cheap (micro-caching
	// for anonymous visitors), so it may come early.
	SurgeFactor float64
	// MinRate is the request rate below which there is never a surge, so
	// a small site's quiet night does not turn ten visitors into an
	// attack. Default 50/s.
	MinRate float64
	// MinOriginRate is the same floor for requests to the origin. Default 25/s.
	MinOriginRate float64
	// ExtremeFactor and ExtremeMinRate: a request rate this many times the
	// baseline and above this floor, for ExtremeAfter seconds in a row,
	// while the origin requests surge too, is an attack even if the origin
	// copes (a flood that gets past the cache and elevated mode's checks
	// will wear it down; one they absorb does not call for challenging
	// every visitor). Defaults 10, 500/s and 10.
	ExtremeFactor  float64
	ExtremeMinRate float64
	ExtremeAfter   int
	// FailureShare of origin requests failing is distress. Default 0.1.
	FailureShare float64
	// QueueDepth is the number of requests waiting for the origin that is
	// distress; a shorter queue is an ordinary burst. Default 32.
	QueueDepth int
	// ElevateAfter is how many consecutive seconds of surge or distress
	// raise the mode to elevated. Default 1: elevated mode costs readers
	// little (cached pages stay free), and every second of delay lets a
	// flood through to the origin.
	ElevateAfter int
	// AttackAfter is how many consecutive seconds of origin distress while
	// elevated raise it to under_attack. Default 5.
	AttackAfter int
	// StandDown is how long every signal must stay quiet before the mode
	// steps down one level. Default 60s.
	StandDown time.Duration
	// WarmUp is how long after start a surge does not count (origin
	// distress always counts). Default none: the baseline starts at zero, so
	// a busy site that restarts begins in elevated mode (harmless) and
	// steps down once the baseline has learned its traffic.
	WarmUp time.Duration
	// LearnFor is how long the baseline is young: until it has learned
	// from this much calm traffic in normal mode (or was restored with
	// SetBaseline, or brought the mode down from elevated), a surge
	// must also be ExtremeFactor times the floors (MinRate,
	// MinOriginRate), in normal mode without a warm-up whatever the
	// baseline (see thresholds), and there is no extreme surge (only
	// origin distress leads to under_attack). In normal mode a young baseline is the plain
	// mean of the calm seconds it has seen; in elevated mode it learns at
	// the slow pace. So a first start in front of a busy site does not
	// read its ordinary traffic as an attack, or comes down within minutes
	// if it is very busy, while a flood that is already running (hundreds
	// of requests a second) still raises the mode and is not learned as
	// normal within seconds. Default 1m.
	LearnFor time.Duration
	// BaselineHalfLife is how fast the baseline follows normal traffic.
	// Default 10m; it only learns while the mode is normal and no signal
	// is up, so an attack does not become the new normal.
	BaselineHalfLife time.Duration
}

func (o *Options) fill() error {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.SurgeFactor, 3)
	def(&o.MinRate, 50)
	def(&o.MinOriginRate, 25)
	def(&o.ExtremeFactor, 10)
	def(&o.ExtremeMinRate, 500)
	if o.ExtremeAfter == 0 {
		o.ExtremeAfter = 10
	}
	def(&o.FailureShare, 0.1)
	if o.QueueDepth == 0 {
		o.QueueDepth = 32
	}
	if o.ElevateAfter == 0 {
		o.ElevateAfter = 1
	}
	if o.AttackAfter == 0 {
		o.AttackAfter = 3
	}
	if o.StandDown == 0 {
		o.StandDown = 60 * time.Second
	}
	if o.WarmUp < 0 {
		o.WarmUp = 0
	}
	if o.LearnFor == 0 {
		o.LearnFor = time.Minute
	}
	if o.BaselineHalfLife == 0 {
		o.BaselineHalfLife = 10 * time.Minute
	}
	switch {
	case o.SurgeFactor <= 1 || o.ExtremeFactor <= 1:
		return errors.New("detect: SurgeFactor and ExtremeFactor must be above 1")
	case o.ExtremeAfter < 1:
		return errors.New("detect: ExtremeAfter must be at least 1")
	case o.MinRate < 0 || o.MinOriginRate < 0:
		return errors.New("detect: rates must not be negative")
	case o.FailureShare <= 0 || o.FailureShare > 1:
		return errors.New("detect: FailureShare must be in (0, 1]")
	case o.ElevateAfter < 1 || o.AttackAfter < 1:
		return errors.New("detect: ElevateAfter and AttackAfter must be at least 1")
	case o.StandDown < 0 || o.LearnFor < 0 || o.BaselineHalfLife < time.Second:
		return errors.New("detect: bad duration")
	}
	return nil
}

// Detector holds the baseline and the mode. It is not safe for concurrent
// use: the shield calls Observe from one goroutine.
type Detector struct {
	o     Options
	mode  verdict.Mode
	start time.Time
	last  Sample
	have  bool

	baseReq, baseOrigin float64 // requests per second
	seeded              bool
	learned             time.Duration // calm traffic learned from
	surgeRun, distress  int
	extremeRun          int
	tripQueue           int // Trip readings in a row with a long queue
	quietSince          time.Time
	reason              string
}

// New returns a detector in normal mode.
func New(o Options) (*Detector, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	return &Detector{o: o}, nil
}

// Mode returns the current mode.
func (d *Detector) Mode() verdict.Mode { return d.mode }

// Reason says why the mode is what it is, for logs and the status API.
func (d *Detector) Reason() string { return d.reason }

// Baseline returns the learned request and origin-request rates.
func (d *Detector) Baseline() (requests, origin float64) { return d.baseReq, d.baseOrigin }

// Learned reports whether the baseline has learned from traffic (or was
// set with SetBaseline).
func (d *Detector) Learned() bool { return d.seeded }

// SetBaseline starts the baseline from rates learned earlier (a previous
// run's, kept in the state directory) instead of zero, so a restart does
// not mistake ordinary traffic for a surge.
func (d *Detector) SetBaseline(requests, origin float64) {
	d.baseReq, d.baseOrigin, d.seeded = max(0, requests), max(0, origin), true
	d.learned = max(d.learned, d.o.LearnFor)
}

// Observe takes a new reading and returns the mode and whether it changed.
func (d *Detector) Observe(s Sample) (verdict.Mode, bool) {
	if !d.have {
		d.last, d.have, d.start = s, true, s.Time
		d.quietSince = s.Time
		d.reason = "starting"
		return d.mode, false
	}
	dt := s.Time.Sub(d.last.Time).Seconds()
	if dt <= 0 {
		return d.mode, false
	}
	rate := float64(s.Requests-d.last.Requests) / dt
	origin := float64(s.OriginRequests-d.last.OriginRequests) / dt
	failed := float64(s.OriginFailures-d.last.OriginFailures) / dt
	shed := s.Shed - d.last.Shed
	d.last = s

	warm := s.Time.Sub(d.start) >= d.o.WarmUp
	young := d.learned < d.o.LearnFor
	reqLimit, originLimit := d.thresholds()
	surge := ""
	if warm {
		switch {
		case rate > reqLimit:
			surge = fmt.Sprintf("request surge: %.0f/s against a baseline of %.0f/s", rate, d.baseReq)
		case origin > originLimit:
			surge = fmt.Sprintf("cache-miss surge: %.0f/s to the origin against a baseline of %.0f/s", origin, d.baseOrigin)
		}
	}
	distressed := ""
	switch {
	case s.OriginDown:
		distressed = "the origin is down"
	case shed > 0:
		distressed = fmt.Sprintf("admission control turned %d requests away", shed)
	case s.Queued >= d.o.QueueDepth:
		distressed = fmt.Sprintf("%d requests queued for the origin", s.Queued)
	case origin > 1 && failed > 1 && failed >= d.o.FailureShare*origin:
		distressed = fmt.Sprintf("the origin fails %.0f of %.0f requests a second", failed, origin)
	}

	if surge != "" || distressed != "" {
		d.surgeRun++
		d.quietSince = s.Time
	} else {
		d.surgeRun = 0
	}
	if distressed != "" {
		d.distress++
	} else {
		d.distress = 0
	}
	// An extreme surge must also be reaching the origin (a surge of
	// origin requests): a flood the cache and elevated mode's checks
	// absorb gains nothing from challenging every visitor.
	extreme := ""
	originSurge := origin > originLimit
	if warm && !young && originSurge && rate > d.o.ExtremeMinRate && rate > d.o.ExtremeFactor*d.baseReq {
		d.extremeRun++
		extreme = fmt.Sprintf("extreme surge: %.0f/s against a baseline of %.0f/s, %.0f/s of it to the origin", rate, d.baseReq, origin)
	} else {
		d.extremeRun = 0
	}

	// Learn the baseline from calm traffic: in normal mode without a
	// surge, and in elevated mode while the origin copes (an absorbed flood
	// slowly becomes normal, so the mode can come down; if the flood then
	// hurts the origin, distress raises it again). Never under attack. A
	// young baseline takes the plain mean of calm seconds in normal mode;
	// in elevated mode it learns at the slow pace too, or a flood running
	// at start would become normal within seconds.
	if distressed == "" && (d.mode == verdict.ModeNormal && surge == "" || d.mode == verdict.ModeElevated) {
		alpha := 1 - math.Exp(-dt*math.Ln2/d.o.BaselineHalfLife.Seconds())
		if young && d.mode == verdict.ModeNormal {
			d.learned += time.Duration(dt * float64(time.Second))
			alpha = math.Min(1, dt/math.Max(d.learned.Seconds(), dt))
		}
		d.baseReq += alpha * (rate - d.baseReq)
		d.baseOrigin += alpha * (origin - d.baseOrigin)
		d.seeded = true
	}

	prev := d.mode
	switch {
	case d.mode < verdict.ModeElevated && d.surgeRun >= d.o.ElevateAfter:
		d.mode = verdict.ModeElevated
		d.reason = firstOf(surge, distressed)
		d.distress = 0 // under_attack needs distress that outlasts elevated mode
	case d.mode == verdict.ModeElevated && d.distress >= d.o.AttackAfter:
		d.mode = verdict.ModeUnderAttack
		d.reason = distressed + " while elevated"
	case d.mode < verdict.ModeUnderAttack && d.extremeRun >= d.o.ExtremeAfter:
		d.mode = verdict.ModeUnderAttack
		d.reason = extreme
	case d.mode > verdict.ModeNormal && s.Time.Sub(d.quietSince) >= d.o.StandDown:
		d.mode--
		d.quietSince = s.Time
		d.reason = fmt.Sprintf("quiet for %v", d.o.StandDown)
		if d.mode == verdict.ModeNormal && d.seeded {
			// The baseline learned enough to bring the mode down: it
			// is no longer young (or normal mode's young threshold
			// would raise it again at once).
			d.learned = max(d.learned, d.o.LearnFor)
		}
	}
	return d.mode, d.mode != prev
}

// thresholds returns the request and origin-request rates above which a
// reading is a surge: SurgeFactor times the baseline, and at least the
// floors (MinRate, MinOriginRate). While the baseline is young the floors
// are ExtremeFactor times higher, and in normal mode without a warm-up the
// young baseline does not count at all: its plain mean would learn the
// first seconds of a flood that ramps up over a few seconds and lift the
// threshold out of the flood's reach. In elevated mode it counts, so that a
// busy site's first start comes down as the baseline learns its traffic;
// after a warm-up it counts, since learning first is what the warm-up is for.
func (d *Detector) thresholds() (requests, origin float64) {
	requests, origin = d.o.MinRate, d.o.MinOriginRate
	if d.learned < d.o.LearnFor {
		requests *= d.o.ExtremeFactor
		origin *= d.o.ExtremeFactor
		if d.mode == verdict.ModeNormal && d.o.WarmUp == 0 {
			return requests, origin
		}
	}
	return max(requests, d.o.SurgeFactor*d.baseReq), max(origin, d.o.SurgeFactor*d.baseOrigin)
}

// TripFactor is how far above the surge threshold a rate read over a short
// window (Trip) must be to raise the mode at once: short windows are
// noisy, so only the onset of a flood well past the threshold trips.
const TripFactor = 1.5

// TripQueueReadings is how many readings of Trip in a row must see
// QueueDepth or more requests queued for the origin to raise the mode: one
// reading could be the instant of an ordinary burst.
const TripQueueReadings = 2

// Trip is the fast path of Observe for the onset of a flood: rate and
// origin are the request and origin-request rates over the last fraction
// of a second, queued the requests waiting for the origin now. When the
// mode is normal and either rate is TripFactor times its surge threshold
// (as Observe computes it, young baseline included, and not during the
// warm-up), or the queue was QueueDepth long at TripQueueReadings readings
// in a row (origin distress, which the warm-up does not hide), the mode
// becomes elevated at once, instead of after the next one-second reading:
// every second of delay is a second of flood at the origin. It returns the
// mode and whether it changed.
func (d *Detector) Trip(now time.Time, rate, origin float64, queued int) (verdict.Mode, bool) {
	if d.mode != verdict.ModeNormal || !d.have {
		d.tripQueue = 0
		return d.mode, false
	}
	if queued >= d.o.QueueDepth {
		d.tripQueue++
	} else {
		d.tripQueue = 0
	}
	warm := now.Sub(d.start) >= d.o.WarmUp
	reqLimit, originLimit := d.thresholds()
	reqLimit, originLimit = TripFactor*reqLimit, TripFactor*originLimit
	switch {
	case warm && rate > reqLimit:
		d.reason = fmt.Sprintf("request surge: %.0f/s against a baseline of %.0f/s (fast trip)", rate, d.baseReq)
	case warm && origin > originLimit:
		d.reason = fmt.Sprintf("cache-miss surge: %.0f/s to the origin against a baseline of %.0f/s (fast trip)", origin, d.baseOrigin)
	case d.tripQueue >= TripQueueReadings:
		d.reason = fmt.Sprintf("%d requests queued for the origin (fast trip)", queued)
	default:
		return d.mode, false
	}
	d.mode = verdict.ModeElevated
	d.distress = 0
	d.quietSince = now
	return d.mode, true
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
