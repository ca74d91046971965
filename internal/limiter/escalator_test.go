package limiter

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestEscalator(t testing.TB, o EscalatorOptions) *Escalator {
	t.Helper()
	e, err := NewEscalator(o)
	if err != nil {
		t.Fatalf("NewEscalator(%+v): %v", o, err)
	}
	return e
}

func TestNewEscalatorValidation(t *testing.T) {
	tests := []struct {
		name string
		o    EscalatorOptions
		ok   bool
	}{
		{name: "defaults", o: EscalatorOptions{}, ok: true},
		{name: "negative strikes", o: EscalatorOptions{Strikes: -1}},
		{name: "negative window", o: EscalatorOptions{Window: -time.Second}},
		{name: "negative base", o: EscalatorOptions{BaseTTL: -time.Second}},
		{name: "max below base", o: EscalatorOptions{BaseTTL: time.Hour, MaxTTL: time.Minute}},
		{name: "max below default base", o: EscalatorOptions{MaxTTL: time.Second}},
		{name: "forget too long", o: EscalatorOptions{Forget: 400 * 24 * time.Hour}},
		{name: "negative capacity", o: EscalatorOptions{Capacity: -8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := NewEscalator(tt.o)
			if tt.ok != (err == nil) {
				t.Fatalf("NewEscalator(%+v) error = %v, want ok %v", tt.o, err, tt.ok)
			}
			if err != nil {
				return
			}
			if e.strikes != DefaultStrikes || e.window != int64(DefaultStrikeWindow) ||
				e.base != int64(DefaultBaseTTL) || e.max != int64(DefaultMaxTTL) || e.forget != int64(DefaultForget) {
				t.Errorf("defaults not applied: %+v", e)
			}
			if st := e.Stats(); st.Capacity != DefaultEscalatorCapacity {
				t.Errorf("Capacity = %d, want %d", st.Capacity, DefaultEscalatorCapacity)
			}
		})
	}
}

// offend makes key commit one offence at now and returns the block.
func offend(t *testing.T, e *Escalator, key uint64, now int64, strikes int) time.Duration {
	t.Helper()
	for i := 1; i < strikes; i++ {
		if d := e.Strike(key, now); d != 0 {
			t.Fatalf("strike %d of %d at %v blocked for %v", i, strikes, time.Duration(now), d)
		}
	}
	return e.Strike(key, now)
}

func TestEscalatorDoublingAndCap(t *testing.T) {
	e := newTestEscalator(t, EscalatorOptions{Capacity: 64, Strikes: 3, Window: 10 * time.Second,
		BaseTTL: time.Minute, MaxTTL: 5 * time.Minute, Forget: time.Hour})
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	now := int64(0)
	for i, w := range want {
		if got := offend(t, e, 1, now, 3); got != w {
			t.Fatalf("offence %d: block %v, want %v", i+1, got, w)
		}
		lvl, rem := e.Status(1, now)
		if lvl != i+1 || rem != w {
			t.Fatalf("Status after offence %d = %d, %v; want %d, %v", i+1, lvl, rem, i+1, w)
		}
		now += int64(w) // the next offence comes right after the block
	}
}

func TestEscalatorStrikeWindow(t *testing.T) {
	const s = int64(time.Second)
	e := newTestEscalator(t, EscalatorOptions{Capacity: 64, Strikes: 3, Window: 10 * time.Second})
	// Two strikes, then the window lapses: the series restarts.
	e.Strike(1, 0)
	e.Strike(1, 5*s)
	if d := e.Strike(1, 10*s); d != 0 {
		t.Fatalf("strike after the window blocked for %v", d)
	}
	if d := e.Strike(1, 11*s); d != 0 {
		t.Fatalf("second strike of the new series blocked for %v", d)
	}
	if d := e.Strike(1, 19*s); d != DefaultBaseTTL {
		t.Fatalf("third strike within the window blocked for %v, want %v", d, DefaultBaseTTL)
	}
}

func TestEscalatorDuringBlock(t *testing.T) {
	const s = int64(time.Second)
	e := newTestEscalator(t, EscalatorOptions{Capacity: 64, Strikes: 2, BaseTTL: time.Minute})
	if d := offend(t, e, 1, 0, 2); d != time.Minute {
		t.Fatalf("first offence: %v", d)
	}
	// Strikes during the block report the time left and do not escalate.
	for i := range 50 {
		at := int64(i) * s
		if d := e.Strike(1, at); d != time.Minute-time.Duration(at) {
			t.Fatalf("strike at %ds during the block = %v, want %v", i, d, time.Minute-time.Duration(at))
		}
	}
	if lvl, _ := e.Status(1, 50*s); lvl != 1 {
		t.Fatalf("level %d after strikes during a block, want 1", lvl)
	}
	// After the block, the next offence doubles.
	if d := offend(t, e, 1, 60*s, 2); d != 2*time.Minute {
		t.Fatalf("second offence: %v, want 2m", d)
	}
}

func TestEscalatorForget(t *testing.T) {
	const (
		m = int64(time.Minute)
		h = int64(time.Hour)
	)
	e := newTestEscalator(t, EscalatorOptions{Capacity: 64, Strikes: 1, BaseTTL: time.Minute,
		MaxTTL: time.Hour, Forget: time.Hour})
	// Three offences back to back: level 3, last block 4m ending at 7m.
	now := int64(0)
	for _, w := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute} {
		if d := e.Strike(1, now); d != w {
			t.Fatalf("offence at %v: %v, want %v", time.Duration(now), d, w)
		}
		now += int64(w)
	}
	end := 7 * m
	tests := []struct {
		name      string
		at        int64
		wantLevel int
	}{
		{"at the end of the block", end, 3},
		{"just under one forget period", end + h - 1, 3},
		{"one forget period", end + h, 2},
		{"two periods", end + 2*h, 1},
		{"three periods", end + 3*h, 0},
		{"long after", end + 100*h, 0},
	}
	for _, tt := range tests {
		if lvl, _ := e.Status(1, tt.at); lvl != tt.wantLevel {
			t.Errorf("%s: level %d, want %d", tt.name, lvl, tt.wantLevel)
		}
	}
	// After one period an offence is at level 3 again (2+1): 4 minutes.
	if d := e.Strike(1, end+h); d != 4*time.Minute {
		t.Errorf("offence after one forget period: %v, want 4m", d)
	}
	// After full decay, a new offence starts over at BaseTTL.
	e2 := newTestEscalator(t, EscalatorOptions{Capacity: 64, Strikes: 1, Forget: time.Hour})
	e2.Strike(2, 0)
	if d := e2.Strike(2, int64(DefaultBaseTTL)+h); d != DefaultBaseTTL {
		t.Errorf("offence after full decay: %v, want %v", d, DefaultBaseTTL)
	}
}

func TestEscalatorForgive(t *testing.T) {
	e := newTestEscalator(t, EscalatorOptions{Capacity: 64, Strikes: 1})
	e.Strike(1, 0)
	if !e.Forgive(1) || e.Forgive(1) {
		t.Fatal("Forgive should report true once, then false")
	}
	if lvl, rem := e.Status(1, 0); lvl != 0 || rem != 0 {
		t.Errorf("forgiven key: level %d, remaining %v", lvl, rem)
	}
	if d := e.Strike(1, 0); d != DefaultBaseTTL {
		t.Errorf("forgiven key's next offence: %v, want %v", d, DefaultBaseTTL)
	}
}

func TestEscalatorEviction(t *testing.T) {
	const s = int64(time.Second)
	clk := &fakeClock{}
	var hooks atomic.Int32
	e := newTestEscalator(t, EscalatorOptions{Capacity: Ways, Strikes: 2, Window: 10 * time.Second,
		BaseTTL: time.Minute, Forget: time.Hour, Now: clk.Now, OnPressure: func() { hooks.Add(1) }})
	// Fill the bucket: keys 1..4 are offenders, keys 5..8 have one strike.
	for k := uint64(1); k <= 4; k++ {
		offend(t, e, k, int64(k)*s, 2)
	}
	for k := uint64(5); k <= Ways; k++ {
		e.Strike(k, int64(k)*s)
	}
	// At 12s no strike series has lapsed yet: the nearest to expiry is
	// key 5's series (5s+10s), an eviction that loses no level.
	e.Strike(100, 12*s)
	st := e.Stats()
	if st.Evictions != 1 || st.LiveEvictions != 0 || st.Pressure {
		t.Fatalf("evicting a strike series: %+v", st)
	}
	// At 30s the remaining series have lapsed: reclaims, not evictions.
	for k := uint64(101); k <= 103; k++ {
		e.Strike(k, 30*s)
	}
	if st = e.Stats(); st.Reclaims != 3 || st.Evictions != 1 {
		t.Fatalf("reusing lapsed series: %+v", st)
	}
	// Now the bucket holds 4 offenders and 4 fresh series (at 12s and 30s,
	// expiring at 22s... and 40s); at 35s key 100's series has lapsed.
	e.Strike(104, 35*s)
	if st = e.Stats(); st.Reclaims != 4 || st.Evictions != 1 {
		t.Fatalf("reusing key 100's lapsed series: %+v", st)
	}
	// At 36s every slot is live; the soonest to expire are the series of
	// 101..103 (40s), which are not offenders.
	for k := uint64(105); k <= 107; k++ {
		e.Strike(k, 36*s)
	}
	if st = e.Stats(); st.Evictions != 4 || st.LiveEvictions != 0 {
		t.Fatalf("evicting series: %+v", st)
	}
	// New series keep displacing series, never offenders: a series ends
	// within Window, an offender's level lasts hours.
	for k := uint64(200); k < 220; k++ {
		e.Strike(k, 37*s)
	}
	if st = e.Stats(); st.LiveEvictions != 0 || st.Pressure || hooks.Load() != 0 {
		t.Fatalf("series displaced an offender: %+v", st)
	}
	for k := uint64(1); k <= 4; k++ {
		if lvl, _ := e.Status(k, 37*s); lvl != 1 {
			t.Errorf("offender %d lost its level", k)
		}
	}

	// A bucket full of offenders: a new offender evicts the one whose
	// level expires first (key 1, offended first), a live eviction.
	clk.Set(20 * time.Second)
	e2 := newTestEscalator(t, EscalatorOptions{Capacity: Ways, Strikes: 1, Now: clk.Now,
		OnPressure: func() { hooks.Add(1) }})
	for k := uint64(1); k <= Ways; k++ {
		e2.Strike(k, int64(k)*s)
	}
	if d := e2.Strike(100, 20*s); d != DefaultBaseTTL {
		t.Fatalf("new offender blocked for %v", d)
	}
	st = e2.Stats()
	if st.Evictions != 1 || st.LiveEvictions != 1 || !st.Pressure || hooks.Load() != 1 {
		t.Fatalf("evicting an offender: %+v, hook calls %d", st, hooks.Load())
	}
	if lvl, _ := e2.Status(1, 20*s); lvl != 0 {
		t.Errorf("key 1 kept level %d; it should have been the victim", lvl)
	}
	for k := uint64(2); k <= Ways; k++ {
		if lvl, _ := e2.Status(k, 20*s); lvl != 1 {
			t.Errorf("offender %d evicted instead of key 1", k)
		}
	}
}

func TestEscalatorConcurrent(t *testing.T) {
	const goroutines, keys, strikes = 8, 32, 5
	e := newTestEscalator(t, EscalatorOptions{Capacity: 1024, Shards: 4, Strikes: strikes})
	var offences atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys * strikes {
				if d := e.Strike(uint64((i+g)%keys)+1, 0); d == DefaultBaseTTL {
					offences.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	// With the clock stopped every key offends once: the first
	// strikes strikes make the offence, later ones fall in the block and
	// report its time left, which is also DefaultBaseTTL at time 0.
	for k := uint64(1); k <= keys; k++ {
		if lvl, rem := e.Status(k, 0); lvl != 1 || rem != DefaultBaseTTL {
			t.Errorf("key %d: level %d, remaining %v; want 1, %v", k, lvl, rem, DefaultBaseTTL)
		}
	}
	if want := int64(goroutines*keys*strikes - keys*(strikes-1)); offences.Load() != want {
		t.Errorf("%d strikes answered with a block, want %d", offences.Load(), want)
	}
}

func TestStrikeDoesNotAllocate(t *testing.T) {
	e := newTestEscalator(t, EscalatorOptions{Capacity: 1024})
	now := int64(0)
	if allocs := testing.AllocsPerRun(1000, func() {
		now += int64(time.Millisecond)
		e.Strike(uint64(now%300)+1, now)
	}); allocs != 0 {
		t.Errorf("Strike allocates %v times per call", allocs)
	}
}

// TestEscalatorNegativeClock checks that lapsed strike series are reused
// without an eviction whatever the clock reads (fake clocks before 1970).
func TestEscalatorNegativeClock(t *testing.T) {
	const s = int64(time.Second)
	e := newTestEscalator(t, EscalatorOptions{Capacity: Ways, Strikes: 5, Window: 10 * time.Second})
	base := -1000 * s
	for k := uint64(1); k <= Ways; k++ {
		e.Strike(k, base)
	}
	for k := uint64(100); k < 100+Ways; k++ {
		e.Strike(k, base+20*s)
	}
	if st := e.Stats(); st.Evictions != 0 || st.Reclaims != Ways {
		t.Errorf("lapsed series at negative times: %+v; want %d reclaims, no evictions", st, Ways)
	}
}
