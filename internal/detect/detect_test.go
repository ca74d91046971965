package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// feed drives a detector with a synthetic second-by-second traffic shape.
type feed struct {
	t *testing.T
	d *Detector
	s Sample
}

func newFeed(t *testing.T, o Options) *feed {
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	f := &feed{t: t, d: d, s: Sample{Time: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}}
	d.Observe(f.s)
	return f
}

// second advances one second with rate requests, of which origin went to
// the origin, and applies mutate to the gauges; it returns the mode.
func (f *feed) second(rate, origin uint64, mutate func(*Sample)) verdict.Mode {
	f.s.Time = f.s.Time.Add(time.Second)
	f.s.Requests += rate
	f.s.OriginRequests += origin
	f.s.Queued, f.s.OriginDown = 0, false
	if mutate != nil {
		mutate(&f.s)
	}
	m, _ := f.d.Observe(f.s)
	return m
}

func (f *feed) run(n int, rate, origin uint64, mutate func(*Sample)) verdict.Mode {
	var m verdict.Mode
	for range n {
		m = f.second(rate, origin, mutate)
	}
	return m
}

func TestSurgeElevatesThenStandsDown(t *testing.T) {
	f := newFeed(t, Options{ElevateAfter: 2})
	// The baseline starts at zero, young: a busy site's ordinary traffic
	// (200/s, under ten times the floor) is not a surge; the baseline
	// learns it as a plain mean.
	if m := f.run(70, 200, 40, nil); m != verdict.ModeNormal {
		t.Fatalf("busy start: %v", m)
	}
	if b, _ := f.d.Baseline(); b < 190 || b > 210 {
		t.Fatalf("baseline %v, want about 200", b)
	}
	if m := f.second(1500, 40, nil); m != verdict.ModeNormal {
		t.Fatalf("one second of surge is not yet an attack: %v", m)
	}
	if m := f.second(1500, 40, nil); m != verdict.ModeElevated {
		t.Fatalf("two seconds of surge: %v", m)
	}
	if !strings.Contains(f.d.Reason(), "request surge") {
		t.Errorf("reason %q", f.d.Reason())
	}
	// The surge goes on for a minute (7.5x, short of extreme): elevated
	// mode absorbs it; the baseline creeps up only slowly.
	f.run(60, 1500, 40, nil)
	if b, _ := f.d.Baseline(); b > 400 {
		t.Fatalf("the attack became the baseline within a minute: %v", b)
	}
	if m := f.d.Mode(); m != verdict.ModeElevated {
		t.Fatalf("a surge without origin distress stays elevated: %v", m)
	}
	// Quiet: one level down after StandDown.
	if m := f.run(59, 200, 40, nil); m != verdict.ModeElevated {
		t.Fatalf("stood down too early: %v", m)
	}
	if m := f.second(200, 40, nil); m != verdict.ModeNormal {
		t.Fatalf("after 60 quiet seconds: %v", m)
	}
}

func TestDistressEscalatesToUnderAttack(t *testing.T) {
	f := newFeed(t, Options{ElevateAfter: 2})
	f.run(100, 100, 30, nil)
	if m := f.d.Mode(); m != verdict.ModeNormal {
		t.Fatalf("calm: %v", m)
	}
	queued := func(s *Sample) { s.Queued = 40 }
	if m := f.run(2, 600, 500, queued); m != verdict.ModeElevated {
		t.Fatalf("surge with a queue: %v", m)
	}
	if m := f.run(2, 600, 500, queued); m != verdict.ModeElevated {
		t.Fatalf("escalated before AttackAfter: %v", m)
	}
	if m := f.second(600, 500, queued); m != verdict.ModeUnderAttack {
		t.Fatalf("3 s of distress while elevated: %v", m)
	}
	// The challenge works: traffic still high, but the origin is fine.
	if m := f.run(59, 600, 10, nil); m != verdict.ModeUnderAttack {
		t.Fatalf("stood down while the surge goes on: %v", m)
	}
	// Traffic back to normal: two steps down, a minute each.
	f.run(61, 100, 30, nil)
	if m := f.d.Mode(); m != verdict.ModeElevated {
		t.Fatalf("first step down: %v", m)
	}
	if m := f.run(61, 100, 30, nil); m != verdict.ModeNormal {
		t.Fatalf("second step down: %v", m)
	}
}

func TestOriginDistressCountsDuringWarmUp(t *testing.T) {
	f := newFeed(t, Options{})
	down := func(s *Sample) { s.OriginDown = true }
	if m := f.run(2, 10, 0, down); m != verdict.ModeElevated || !strings.Contains(f.d.Reason(), "down") {
		t.Fatalf("origin down at start: %v %q", f.d.Mode(), f.d.Reason())
	}
	failing := func(s *Sample) { s.OriginFailures += 30 }
	f2 := newFeed(t, Options{})
	if m := f2.run(2, 200, 100, failing); m != verdict.ModeElevated {
		t.Fatalf("30%% origin failures: %v", m)
	}
	shed := func(s *Sample) { s.Shed += 5 }
	f3 := newFeed(t, Options{})
	if m := f3.run(2, 200, 100, shed); m != verdict.ModeElevated {
		t.Fatalf("admission shedding: %v", m)
	}
}

func TestShortQueueIsNotDistress(t *testing.T) {
	f := newFeed(t, Options{})
	if m := f.run(10, 20, 10, func(s *Sample) { s.Queued = 5 }); m != verdict.ModeNormal {
		t.Fatalf("a short queue raised the mode: %v", m)
	}
}

func TestSmallSitesAndWarmUp(t *testing.T) {
	f := newFeed(t, Options{})
	f.run(60, 5, 2, nil)
	// Ten times the usual, but still a trickle: no attack.
	if m := f.run(10, 50, 20, nil); m != verdict.ModeNormal {
		t.Fatalf("a trickle became an attack: %v", m)
	}
	// With a warm-up, a busy site starting up is not a surge.
	g := newFeed(t, Options{WarmUp: 30 * time.Second})
	if m := g.run(29, 2000, 300, nil); m != verdict.ModeNormal {
		t.Fatalf("a busy site's first seconds: %v", m)
	}
	if m := g.run(30, 2000, 300, nil); m != verdict.ModeNormal {
		t.Fatalf("steady busy traffic after warm-up: %v", m)
	}
	// A cache-miss surge with steady request rate still elevates.
	if m := g.run(2, 2000, 1900, nil); m != verdict.ModeElevated || !strings.Contains(g.d.Reason(), "cache-miss") {
		t.Fatalf("miss surge: %v %q", g.d.Mode(), g.d.Reason())
	}
}

// TestExtremeSurge: a flood the origin copes with but that reaches it (cheap
// POSTs from clients that pass the checks) at ten times the baseline for
// ten seconds is an attack; the same flood absorbed before the origin (the
// cache, the checks) is not.
func TestExtremeSurge(t *testing.T) {
	f := newFeed(t, Options{})
	f.run(100, 60, 20, nil)
	if m := f.run(9, 1200, 200, nil); m != verdict.ModeElevated {
		t.Fatalf("9 s of 20x: %v", m)
	}
	if m := f.second(1200, 200, nil); m != verdict.ModeUnderAttack || !strings.Contains(f.d.Reason(), "extreme") {
		t.Fatalf("10 s of 20x: %v %q", m, f.d.Reason())
	}
	absorbed := newFeed(t, Options{})
	absorbed.run(100, 60, 20, nil)
	if m := absorbed.run(30, 1200, 20, nil); m != verdict.ModeElevated {
		t.Fatalf("30 s of 20x that never reaches the origin: %v %q", m, absorbed.d.Reason())
	}
	// Below the absolute floor, ten times is not extreme.
	g := newFeed(t, Options{})
	g.run(100, 20, 5, nil)
	if m := g.run(20, 300, 100, nil); m != verdict.ModeElevated {
		t.Fatalf("15x of a small site: %v", m)
	}
}

func TestOptionsValidated(t *testing.T) {
	for _, o := range []Options{{SurgeFactor: 0.5}, {FailureShare: 2}, {MinRate: -1}, {BaselineHalfLife: time.Millisecond}} {
		if _, err := New(o); err == nil {
			t.Errorf("accepted %+v", o)
		}
	}
}

// By default one second of surge is enough to elevate.
func TestDefaultElevatesAfterOneSecond(t *testing.T) {
	f := newFeed(t, Options{})
	f.run(100, 200, 40, nil)
	if m := f.second(1500, 40, nil); m != verdict.ModeElevated {
		t.Fatalf("one second of surge with the defaults: %v", m)
	}
}

// A flood already running at a first start (no baseline yet) is a surge
// when it is ten times the floor; with a restored baseline, the ordinary
// floor applies at once.
func TestYoungBaseline(t *testing.T) {
	f := newFeed(t, Options{})
	if m := f.run(3, 400, 40, nil); m != verdict.ModeNormal {
		t.Fatalf("400/s at a first start: %v", m)
	}
	g := newFeed(t, Options{})
	if m := g.run(2, 1500, 40, nil); m != verdict.ModeElevated {
		t.Fatalf("a 1500/s flood at a first start: %v", m)
	}
	// The young baseline does not learn the flood within minutes: the
	// mode stays elevated (and only distress would raise it further).
	if m := g.run(120, 1500, 40, nil); m != verdict.ModeElevated {
		t.Fatalf("two minutes into the flood: %v", m)
	}
	if b, _ := g.d.Baseline(); b > 300 {
		t.Fatalf("the young baseline learned the flood: %v", b)
	}
	// A busy site (1000/s) at a first start is elevated, and its baseline
	// still learns in elevated mode while the origin copes, so the mode
	// comes down within minutes.
	k := newFeed(t, Options{})
	if m := k.run(3, 1000, 40, nil); m != verdict.ModeElevated {
		t.Fatalf("1000/s at a first start: %v", m)
	}
	if m := k.run(15*60, 1000, 40, nil); m != verdict.ModeNormal {
		b, _ := k.d.Baseline()
		t.Fatalf("a busy site's first start never stood down: %v (baseline %.0f)", m, b)
	}
	h := newFeed(t, Options{})
	h.d.SetBaseline(20, 5)
	if !h.d.Learned() {
		t.Fatal("restored baseline not learned")
	}
	if m := h.run(2, 200, 5, nil); m != verdict.ModeElevated {
		t.Fatalf("10x a restored baseline: %v", m)
	}
}

// TestTrip: a short-window rate twice over the surge threshold raises the
// mode at once (the young baseline's threshold included); one under it, or
// any rate when the mode is already up, does nothing; the usual stand-down
// follows.
func TestTrip(t *testing.T) {
	f := newFeed(t, Options{StandDown: 10 * time.Second})
	now := f.s.Time.Add(100 * time.Millisecond)
	// Young baseline: threshold 10 x 50/s = 500/s, so a trip needs 750/s.
	if m, changed := f.d.Trip(now, 700, 0, 0); changed || m != verdict.ModeNormal {
		t.Fatalf("under the trip rate: %v %v", m, changed)
	}
	if m, changed := f.d.Trip(now, 0, 360, 0); changed || m != verdict.ModeNormal {
		t.Fatalf("origin under the trip rate (1.5 x 250/s): %v %v", m, changed)
	}
	m, changed := f.d.Trip(now, 800, 0, 0)
	if !changed || m != verdict.ModeElevated || !strings.Contains(f.d.Reason(), "fast trip") {
		t.Fatalf("over the trip rate: %v %v %q", m, changed, f.d.Reason())
	}
	if _, changed := f.d.Trip(now, 1e6, 1e6, 0); changed {
		t.Fatal("trip changed a raised mode")
	}
	// Quiet from now on: the mode comes down after StandDown.
	if m := f.run(12, 5, 1, nil); m != verdict.ModeNormal {
		t.Fatalf("after the quiet: %v", m)
	}

	// A learned baseline of 400/s: the threshold is 3 x 400, so a trip
	// needs more than 1800/s.
	g := newFeed(t, Options{})
	g.d.SetBaseline(400, 50)
	if _, changed := g.d.Trip(g.s.Time.Add(time.Second), 1700, 0, 0); changed {
		t.Fatal("tripped under 1.5 x 3 x the baseline")
	}
	if _, changed := g.d.Trip(g.s.Time.Add(time.Second), 1900, 0, 0); !changed {
		t.Fatal("no trip over 1.5 x 3 x the baseline")
	}
}

// TestRampAtFirstStart: a flood that ramps up over a few seconds at a first
// start is not learned as the site's traffic by the young baseline: it
// raises the mode when it passes the young floor (500/s), both in the
// one-second readings and on the trip's short window. A busy site that
// first started elevated and came down keeps its learned baseline.
func TestRampAtFirstStart(t *testing.T) {
	f := newFeed(t, Options{})
	for i, rate := range []uint64{175, 425} {
		if m := f.second(rate, rate/2, nil); m != verdict.ModeNormal {
			t.Fatalf("second %d of the ramp (%d/s): %v", i+1, rate, m)
		}
	}
	if m := f.second(675, 300, nil); m != verdict.ModeElevated {
		b, _ := f.d.Baseline()
		t.Fatalf("675/s after a ramp (baseline %.0f): %v", b, m)
	}

	g := newFeed(t, Options{})
	g.run(2, 400, 200, nil)
	if _, changed := g.d.Trip(g.s.Time.Add(300*time.Millisecond), 800, 0, 0); !changed {
		t.Fatal("a ramp past 1.5 x the young floor did not trip")
	}

	// A busy site's first start: elevated, then down once the baseline
	// has learned; back in normal mode its own traffic is no surge.
	k := newFeed(t, Options{StandDown: 10 * time.Second})
	k.run(3, 1000, 40, nil)
	for range 20 * 60 {
		if k.second(1000, 40, nil) == verdict.ModeNormal {
			break
		}
	}
	if m := k.run(120, 1000, 40, nil); m != verdict.ModeNormal {
		b, _ := k.d.Baseline()
		t.Fatalf("a busy site's traffic after it stood down: %v (baseline %.0f)", m, b)
	}
}

// TestTripOnQueue: a queue at the origin of QueueDepth or more for two
// tripwire readings in a row raises the mode at once, also during a
// warm-up (origin distress is never hidden); one reading, or two apart, is
// an ordinary burst.
func TestTripOnQueue(t *testing.T) {
	f := newFeed(t, Options{WarmUp: time.Minute})
	now := f.s.Time
	step := func(queued int) bool {
		now = now.Add(100 * time.Millisecond)
		_, changed := f.d.Trip(now, 0, 0, queued)
		return changed
	}
	for i, q := range []int{40, 0, 40, 31} {
		if step(q) {
			t.Fatalf("reading %d (queue %d) raised the mode", i, q)
		}
	}
	if step(32) {
		t.Fatal("one reading of 32 raised the mode")
	}
	if !step(32) || f.d.Mode() != verdict.ModeElevated || !strings.Contains(f.d.Reason(), "queued for the origin (fast trip)") {
		t.Fatalf("two readings of 32: %v %q", f.d.Mode(), f.d.Reason())
	}
}
