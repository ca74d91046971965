package sim

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const sec = time.Second

func TestScheduleLevel(t *testing.T) {
	carpet := schedule{start: 2 * sec, ramp: 4 * sec, on: 8 * sec, off: 4 * sec}
	tests := []struct {
		name  string
		s     schedule
		t     time.Duration
		level float64
		wave  int
	}{
		{"zero at 0", schedule{}, 0, 1, 0},
		{"zero later", schedule{}, time.Hour, 1, 0},
		{"before start", carpet, sec, 0, 0},
		{"at start", carpet, 2 * sec, 0, 0},
		{"quarter ramp", carpet, 3 * sec, 0.25, 0},
		{"ramp done", carpet, 6 * sec, 1, 0},
		{"end of first wave", carpet, 10*sec - 1, 1, 0},
		{"first pause", carpet, 10 * sec, 0, 0},
		{"second wave", carpet, 14 * sec, 1, 1},
		{"third wave", carpet, 26 * sec, 1, 2},
		{"on without off is no wave", schedule{on: sec}, 5 * sec, 1, 0},
		{"ramp only", schedule{ramp: 10 * sec}, 5 * sec, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			level, wave := tt.s.level(tt.t)
			if math.Abs(level-tt.level) > 1e-9 || wave != tt.wave {
				t.Errorf("level(%v) = %v, wave %d; want %v, wave %d", tt.t, level, wave, tt.level, tt.wave)
			}
		})
	}
}

// TestScheduleWork checks the closed form of work against a Riemann sum of
// level, for presets' schedules and random ones.
func TestScheduleWork(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	scheds := []schedule{
		{},
		{start: 2 * sec, ramp: 4 * sec, on: 8 * sec, off: 4 * sec},
		{ramp: 20 * sec, on: 3 * sec, off: 2 * sec}, // the ramp spans several waves
		{start: 10 * sec, on: 10 * sec, off: 20 * sec},
	}
	for range 20 {
		scheds = append(scheds, schedule{
			start: time.Duration(rng.Int64N(int64(5 * sec))), ramp: time.Duration(rng.Int64N(int64(10 * sec))),
			on: time.Duration(rng.Int64N(int64(5 * sec))), off: time.Duration(rng.Int64N(int64(5 * sec))),
		})
	}
	const step = time.Millisecond
	for _, s := range scheds {
		var sum float64
		for x := time.Duration(0); x <= 40*sec; x += step {
			if x%(sec) == 0 {
				if got := s.work(x); math.Abs(got-sum) > 0.01 {
					t.Fatalf("%+v: work(%v) = %v, Riemann sum %v", s, x, got, sum)
				}
			}
			l, _ := s.level(x)
			sum += l * step.Seconds()
		}
	}
	if got := (schedule{}).work(3 * sec); got != 3 {
		t.Errorf("zero schedule: work(3s) = %v", got)
	}
	if got := (schedule{ramp: 4 * sec}).work(4 * sec); got != 2 {
		t.Errorf("ramp of 4s: work(4s) = %v, want 2 (half the ramp)", got)
	}
}

// count returns how many of slots fall in [from, to).
func count(slots []time.Duration, from, to time.Duration) int {
	n := 0
	for _, s := range slots {
		if s >= from && s < to {
			n++
		}
	}
	return n
}

// TestScheduleSlots checks the computed schedule of one source: nothing
// before the start or between waves, the full rate in a wave, a ramp that
// sends a quarter of its requests in its first half.
func TestScheduleSlots(t *testing.T) {
	s := schedule{start: 2 * sec, ramp: 4 * sec, on: 8 * sec, off: 4 * sec}
	const rate = 10.0
	slots := s.slots(rate, 0.5, 30*sec)
	if n := count(slots, 0, 2*sec); n != 0 {
		t.Errorf("%d requests before the start", n)
	}
	// The ramp: 4 s rising to 10/s is 20 requests, 5 of them in its first
	// half (the area under a line grows with the square of time).
	if n := count(slots, 2*sec, 4*sec); n != 5 {
		t.Errorf("first half of the ramp: %d requests, want 5", n)
	}
	if n := count(slots, 4*sec, 6*sec); n != 15 {
		t.Errorf("second half of the ramp: %d requests, want 15", n)
	}
	if n := count(slots, 6*sec, 10*sec); n != 40 {
		t.Errorf("rest of the first wave: %d requests, want 40", n)
	}
	for _, pause := range [][2]time.Duration{{10 * sec, 14 * sec}, {22 * sec, 26 * sec}} {
		if n := count(slots, pause[0], pause[1]); n != 0 {
			t.Errorf("%d requests in the pause %v-%v", n, pause[0], pause[1])
		}
	}
	if n := count(slots, 14*sec, 22*sec); n != 80 {
		t.Errorf("second wave: %d requests, want 80", n)
	}
	for _, at := range slots {
		if l, _ := s.level(at); l == 0 && at != s.start {
			t.Errorf("a request at %v, where the level is 0", at)
		}
	}
	for i := 1; i < len(slots); i++ {
		if slots[i] < slots[i-1] {
			t.Fatalf("slots out of order at %d: %v then %v", i, slots[i-1], slots[i])
		}
	}

	// Without a schedule the slots are the plain grid that pace keeps.
	grid := (schedule{}).slots(4, 0.25, 2*sec)
	want := []time.Duration{62500 * time.Microsecond, 312500 * time.Microsecond, 562500 * time.Microsecond, 812500 * time.Microsecond,
		1062500 * time.Microsecond, 1312500 * time.Microsecond, 1562500 * time.Microsecond, 1812500 * time.Microsecond}
	if d := cmp.Diff(want, grid, cmpDur(time.Microsecond)); d != "" {
		t.Errorf("unscheduled slots (-want +got):\n%s", d)
	}
}

// cmpDur compares durations to within tol.
func cmpDur(tol time.Duration) cmp.Option {
	return cmp.Comparer(func(a, b time.Duration) bool { return (a - b).Abs() <= tol })
}

func TestScheduleWindow(t *testing.T) {
	forever := time.Duration(math.MaxInt64)
	s := schedule{start: 2 * sec, ramp: 4 * sec, on: 8 * sec, off: 4 * sec}
	tests := []struct {
		name      string
		s         schedule
		t         time.Duration
		threshold float64
		from      time.Duration
		until     time.Duration
	}{
		{"zero", schedule{}, 3 * sec, 0.5, 3 * sec, forever},
		{"before the start", s, 0, 0, 2 * sec, 10 * sec},
		{"half way up the ramp", s, 0, 0.5, 4 * sec, 10 * sec},
		{"in the pause", s, 11 * sec, 0.5, 14 * sec, 22 * sec},
		{"in a wave", s, 15 * sec, 0.9, 15 * sec, 22 * sec},
		{"ramp without waves", schedule{ramp: 10 * sec}, 0, 0.3, 3 * sec, forever},
		{"ramp in a wave", schedule{ramp: 10 * sec, on: 2 * sec, off: 2 * sec}, 0, 0.5, 5 * sec, 6 * sec},
		{"ramp in a pause", schedule{ramp: 10 * sec, on: 2 * sec, off: 2 * sec}, 0, 0.7, 8 * sec, 10 * sec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, until := tt.s.window(tt.t, tt.threshold)
			if from != tt.from || until != tt.until {
				t.Errorf("window(%v, %v) = %v, %v; want %v, %v", tt.t, tt.threshold, from, until, tt.from, tt.until)
			}
		})
	}
}

// fakeClock advances only when slept on (or told to).
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	if d > 0 {
		c.now = c.now.Add(d)
	}
	return true
}

// TestPaceScheduleFakeClock runs the pacer on a fake clock: it sends at the
// computed slots with their waves, and after a send that overran by many
// slots it sends once at once and then keeps to the grid.
func TestPaceScheduleFakeClock(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := schedule{start: 2 * sec, ramp: 4 * sec, on: 8 * sec, off: 4 * sec}
	const rate, phase, until = 2.0, 0.3, 30 * sec

	clk := &fakeClock{now: start}
	var got []time.Duration
	var waves []int
	paceSchedule(context.Background(), clk, start, s, rate, phase, func(wave int) bool {
		at := clk.Now().Sub(start)
		if at >= until {
			return false
		}
		got, waves = append(got, at), append(waves, wave)
		return true
	})
	want := s.slots(rate, phase, until)
	if d := cmp.Diff(want, got, cmpDur(time.Microsecond)); d != "" {
		t.Errorf("send times (-want +got):\n%s", d)
	}
	for i, at := range got {
		if _, w := s.level(at); waves[i] != w || w != int((at-s.start)/(s.on+s.off)) {
			t.Errorf("send at %v: wave %d, want %d", at, waves[i], w)
		}
	}
	if waves[len(waves)-1] != 2 {
		t.Errorf("last wave %d, want 2 (three waves in 30 s)", waves[len(waves)-1])
	}

	// Overrun: the 5th send takes 3 s (6 slots at 2/s).
	clk = &fakeClock{now: start}
	got = nil
	n := 0
	paceSchedule(context.Background(), clk, start, schedule{}, rate, 0, func(int) bool {
		at := clk.Now().Sub(start)
		if at >= 6*sec {
			return false
		}
		got = append(got, at)
		if n++; n == 5 {
			clk.now = clk.now.Add(3 * sec)
		}
		return true
	})
	want = []time.Duration{0, 500 * time.Millisecond, sec, 1500 * time.Millisecond, 2 * sec,
		5 * sec, // one catch-up send at once, for the last slot that passed
		5500 * time.Millisecond}
	if d := cmp.Diff(want, got, cmpDur(time.Microsecond)); d != "" {
		t.Errorf("send times around an overrun (-want +got):\n%s", d)
	}
}

func TestPresetStretched(t *testing.T) {
	p, err := LookupPreset("multi-vector", 1)
	if err != nil {
		t.Fatal(err)
	}
	short := p.stretched(3 * sec)
	if short.Duration != 3*sec {
		t.Errorf("duration %v", short.Duration)
	}
	for i, a := range short.Attacks {
		o := p.Attacks[i]
		if a.Start != o.Start/10 || a.On != o.On/10 || a.Off != o.Off/10 || a.Interval != o.Interval || a.Rate != o.Rate {
			t.Errorf("component %d stretched to 3s: %+v from %+v", i, a, o)
		}
	}
	// Each third of the run has its own techniques.
	active := func(a Attack, at time.Duration) bool { l, _ := a.schedule().level(at); return l > 0 }
	for _, tc := range []struct {
		at   time.Duration
		want []Kind
	}{
		{500 * time.Millisecond, []Kind{KindDDoSia}},
		{1500 * time.Millisecond, []Kind{KindCarpet, KindCacheBust}},
		{2500 * time.Millisecond, []Kind{KindSlowloris, KindHeaderRandom}},
	} {
		var kinds []Kind
		for _, a := range short.Attacks {
			if active(a, tc.at) {
				kinds = append(kinds, a.Kind)
			}
		}
		if d := cmp.Diff(tc.want, kinds); d != "" {
			t.Errorf("at %v (-want +got):\n%s", tc.at, d)
		}
	}
	if same := p.stretched(p.Duration); same.Attacks[1].Start != p.Attacks[1].Start {
		t.Error("stretching to the preset's own duration changed it")
	}
	g, _ := LookupPreset("get-flood", 1)
	if a := g.stretched(time.Minute).Attacks[0]; !a.schedule().isZero() {
		t.Errorf("a preset without a schedule gained one: %+v", a)
	}
}
