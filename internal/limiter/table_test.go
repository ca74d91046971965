package limiter

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// fakeClock is a settable clock for Stats; the request methods take now
// directly.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Set(d time.Duration) { c.ns.Store(int64(d)) }
func (c *fakeClock) At() int64           { return c.ns.Load() }
func newTestTable(t testing.TB, o TableOptions) *Table {
	t.Helper()
	tb, err := NewTable(o)
	if err != nil {
		t.Fatalf("NewTable(%+v): %v", o, err)
	}
	return tb
}

func TestShardLayout(t *testing.T) {
	if s := unsafe.Sizeof(tableShard{}); s != 64 {
		t.Errorf("tableShard is %d bytes, want one 64-byte cache line", s)
	}
	if s := unsafe.Sizeof(escShard{}); s != 64 {
		t.Errorf("escShard is %d bytes, want one 64-byte cache line", s)
	}
	if s := unsafe.Sizeof(tableSlot{}); s != 16 {
		t.Errorf("tableSlot is %d bytes, want 16", s)
	}
	if s := unsafe.Sizeof(escSlot{}); s != 32 {
		t.Errorf("escSlot is %d bytes, want 32", s)
	}
}

func TestNewTable(t *testing.T) {
	tests := []struct {
		name         string
		o            TableOptions
		wantErr      bool
		wantCapacity int
	}{
		{name: "defaults", o: TableOptions{}, wantCapacity: DefaultCapacity},
		{name: "rounded up", o: TableOptions{Capacity: 1000}, wantCapacity: 1024},
		{name: "tiny", o: TableOptions{Capacity: 1}, wantCapacity: Ways},
		{name: "more shards than buckets", o: TableOptions{Capacity: 64, Shards: 1000}, wantCapacity: 64},
		{name: "negative capacity", o: TableOptions{Capacity: -1}, wantErr: true},
		{name: "huge capacity", o: TableOptions{Capacity: MaxCapacity + 1}, wantErr: true},
		{name: "negative shards", o: TableOptions{Shards: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, err := NewTable(tt.o)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st := tb.Stats()
			if st.Capacity != tt.wantCapacity || st.Len != 0 {
				t.Errorf("Stats() = %+v, want Capacity %d and Len 0", st, tt.wantCapacity)
			}
			if len(tb.shards) > len(tb.buckets) {
				t.Errorf("%d shards for %d buckets", len(tb.shards), len(tb.buckets))
			}
		})
	}
}

type step struct {
	at    time.Duration // fake time since 0
	cost  int64
	ok    bool
	retry time.Duration
}

func TestAllowGCRA(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
		steps []step
	}{
		{
			name: "burst then steady rate", rate: 10, burst: 3,
			steps: []step{
				{0, 1, true, 0},
				{0, 1, true, 0},
				{0, 1, true, 0},
				{0, 1, false, 100 * time.Millisecond},
				{100 * time.Millisecond, 1, true, 0},
				{100 * time.Millisecond, 1, false, 100 * time.Millisecond},
				{150 * time.Millisecond, 1, false, 50 * time.Millisecond},
				{200 * time.Millisecond, 1, true, 0},
			},
		},
		{
			name: "burst of one", rate: 2, burst: 1,
			steps: []step{
				{0, 1, true, 0},
				{0, 1, false, 500 * time.Millisecond},
				{499 * time.Millisecond, 1, false, time.Millisecond},
				{500 * time.Millisecond, 1, true, 0},
				{time.Second - 1, 1, false, 1},
			},
		},
		{
			name: "cost above one", rate: 1, burst: 5,
			steps: []step{
				{0, 3, true, 0},
				{0, 3, false, time.Second},
				{0, 2, true, 0},
				{0, 1, false, time.Second},
				{2 * time.Second, 2, true, 0},
				{2 * time.Second, 1, false, time.Second},
			},
		},
		{
			name: "cost above burst never conforms", rate: 1, burst: 5,
			steps: []step{
				{0, 6, false, 5 * time.Second},
				{0, 5, true, 0},
				{time.Hour, 6, false, 5 * time.Second},
			},
		},
		{
			name: "cost below one counts as one", rate: 1, burst: 2,
			steps: []step{
				{0, 0, true, 0},
				{0, -7, true, 0},
				{0, 0, false, time.Second},
			},
		},
		{
			name: "idle key gets its full burst back", rate: 4, burst: 2,
			steps: []step{
				{0, 2, true, 0},
				{0, 1, false, 250 * time.Millisecond},
				{time.Hour, 1, true, 0},
				{time.Hour, 1, true, 0},
				{time.Hour, 1, false, 250 * time.Millisecond},
			},
		},
		{
			name: "fractional rate", rate: 0.5, burst: 2,
			steps: []step{
				{0, 1, true, 0},
				{0, 1, true, 0},
				{time.Second, 1, false, time.Second},
				{2 * time.Second, 1, true, 0},
			},
		},
		{
			name: "clock going backwards does not refill", rate: 1, burst: 1,
			steps: []step{
				{10 * time.Second, 1, true, 0},
				{5 * time.Second, 1, false, 6 * time.Second},
				{11 * time.Second, 1, true, 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTestTable(t, TableOptions{Capacity: 64})
			p := mustParams(t, tt.rate, tt.burst)
			const base = int64(1_700_000_000) * 1e9 // a realistic Unix time
			for i, s := range tt.steps {
				ok, retry := tb.Allow(42, p, s.cost, base+int64(s.at))
				if ok != s.ok || retry != s.retry {
					t.Fatalf("step %d (at %v, cost %d): Allow = %v, %v; want %v, %v",
						i, s.at, s.cost, ok, retry, s.ok, s.retry)
				}
			}
		})
	}
}

func TestZeroParamsAllowsEverything(t *testing.T) {
	tb := newTestTable(t, TableOptions{Capacity: 8})
	for i := range 100 {
		if ok, _ := tb.Allow(1, Params{}, 1000, 0); !ok {
			t.Fatalf("request %d refused under the zero Params", i)
		}
	}
	tb.Charge(1, Params{}, 1000, 0)
	if ok, _ := tb.Peek(1, Params{}, 0); !ok {
		t.Fatal("Peek refused under the zero Params")
	}
	if st := tb.Stats(); st.Len != 0 {
		t.Errorf("zero Params stored state: Len %d", st.Len)
	}
}

func TestRejectionDoesNotInsert(t *testing.T) {
	tb := newTestTable(t, TableOptions{Capacity: 8})
	p := mustParams(t, 1, 2)
	for k := uint64(1); k <= 100; k++ {
		if ok, _ := tb.Allow(k, p, 3, 0); ok {
			t.Fatal("cost above burst conformed")
		}
	}
	if st := tb.Stats(); st.Len != 0 || st.Evictions != 0 {
		t.Errorf("rejected requests changed the table: %+v", st)
	}
}

func TestPeekDoesNotCharge(t *testing.T) {
	tb := newTestTable(t, TableOptions{Capacity: 64})
	p := mustParams(t, 10, 3)
	for range 100 {
		if ok, retry := tb.Peek(7, p, 0); !ok || retry != 0 {
			t.Fatalf("Peek on a rested key = %v, %v", ok, retry)
		}
	}
	if st := tb.Stats(); st.Len != 0 {
		t.Errorf("Peek inserted a key: Len %d", st.Len)
	}
	for i := range 3 {
		if ok, _ := tb.Allow(7, p, 1, 0); !ok {
			t.Fatalf("Allow %d after Peeks refused: Peek charged", i)
		}
	}
	for range 10 {
		ok, retry := tb.Peek(7, p, 0)
		if ok || retry != 100*time.Millisecond {
			t.Fatalf("Peek on a spent key = %v, %v; want false, 100ms", ok, retry)
		}
	}
	if ok, _ := tb.Allow(7, p, 1, int64(100*time.Millisecond)); !ok {
		t.Fatal("Allow after the interval refused: Peek charged")
	}
}

func TestCharge(t *testing.T) {
	const s = int64(time.Second)
	p := mustParams(t, 1, 2) // T = 1s, L = 2s, MaxLockout 2s
	long, err := p.WithMaxLockout(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		p         Params
		costs     []int64 // charged at time 0, in order
		wantRetry time.Duration
	}{
		{name: "one cell leaves one", p: p, costs: []int64{1}, wantRetry: 0},
		{name: "two cells spend the burst", p: p, costs: []int64{2}, wantRetry: time.Second},
		{name: "capped at max lockout", p: p, costs: []int64{1000}, wantRetry: 2 * time.Second},
		{name: "repeated charges stay capped", p: p, costs: []int64{3, 3, 3, 3}, wantRetry: 2 * time.Second},
		{name: "huge cost does not overflow", p: p, costs: []int64{math.MaxInt64}, wantRetry: 2 * time.Second},
		{name: "longer lockout", p: long, costs: []int64{math.MaxInt64}, wantRetry: 10 * time.Second},
		{name: "below cap is exact", p: long, costs: []int64{5}, wantRetry: 4 * time.Second},
		{name: "zero cost is a no-op", p: p, costs: []int64{0, -3}, wantRetry: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newTestTable(t, TableOptions{Capacity: 64})
			for _, c := range tt.costs {
				tb.Charge(9, tt.p, c, 0)
			}
			ok, retry := tb.Peek(9, tt.p, 0)
			if ok != (tt.wantRetry == 0) || retry != tt.wantRetry {
				t.Fatalf("Peek after Charge = %v, %v; want retry %v", ok, retry, tt.wantRetry)
			}
			if tt.wantRetry > 0 {
				if ok, _ := tb.Peek(9, tt.p, int64(tt.wantRetry)); !ok {
					t.Errorf("still locked out after %v", tt.wantRetry)
				}
			}
		})
	}
	// Charge composes with Allow: after charging one cell of a burst of
	// two, exactly one request conforms.
	tb := newTestTable(t, TableOptions{Capacity: 64})
	tb.Charge(3, p, 1, 5*s)
	if ok, _ := tb.Allow(3, p, 1, 5*s); !ok {
		t.Fatal("first Allow after Charge(1) refused")
	}
	if ok, retry := tb.Allow(3, p, 1, 5*s); ok || retry != time.Second {
		t.Fatalf("second Allow after Charge(1) = %v, %v; want false, 1s", ok, retry)
	}
}

// fillOneBucket gives keys 1..8 TATs of 1s..8s in a one-bucket table.
func fillOneBucket(t *testing.T, tb *Table, p Params) {
	t.Helper()
	for k := uint64(1); k <= Ways; k++ {
		// Charge cost k at time 0 with T = 1s sets TAT = k seconds.
		tb.Charge(k, p, int64(k), 0)
	}
	if st := tb.Stats(); st.Len != Ways || st.Evictions != 0 {
		t.Fatalf("after filling: %+v", st)
	}
}

func TestEvictionPrefersExpired(t *testing.T) {
	const s = int64(time.Second)
	clk := &fakeClock{}
	tb := newTestTable(t, TableOptions{Capacity: Ways, Now: clk.Now})
	p := mustParams(t, 1, 1)
	p, _ = p.WithMaxLockout(time.Hour)
	fillOneBucket(t, tb, p)

	// At 3.5s keys 1..3 have expired; three new keys reuse their slots.
	now := 3*s + s/2
	clk.Set(time.Duration(now))
	for k := uint64(101); k <= 103; k++ {
		if ok, _ := tb.Allow(k, p, 1, now); !ok {
			t.Fatalf("new key %d refused", k)
		}
	}
	st := tb.Stats()
	if st.Reclaims != 3 || st.Evictions != 0 || st.LiveEvictions != 0 || st.Pressure {
		t.Fatalf("reusing expired slots: %+v; want 3 reclaims, no evictions, no pressure", st)
	}
	for k := uint64(4); k <= Ways; k++ {
		if ok, _ := tb.Peek(k, p, now); ok {
			t.Errorf("live key %d lost when expired slots were free", k)
		}
	}
	if got := tb.Live(now); got != Ways {
		t.Errorf("Live = %d, want %d", got, Ways)
	}
}

func TestLiveEvictionPressure(t *testing.T) {
	const s = int64(time.Second)
	clk := &fakeClock{}
	var hooks atomic.Int32
	tb := newTestTable(t, TableOptions{Capacity: Ways, Now: clk.Now, OnPressure: func() { hooks.Add(1) }})
	p := mustParams(t, 1, 1)
	p, _ = p.WithMaxLockout(time.Hour)
	fillOneBucket(t, tb, p)

	// At 0.5s nothing has expired: a new key evicts key 1 (TAT 1s, the
	// nearest to expiry).
	now := s / 2
	clk.Set(time.Duration(now))
	if ok, _ := tb.Allow(200, p, 1, now); !ok {
		t.Fatal("new key refused")
	}
	st := tb.Stats()
	if st.Evictions != 1 || st.LiveEvictions != 1 || !st.Pressure || st.Len != Ways {
		t.Fatalf("after a live eviction: %+v", st)
	}
	if !st.LastLiveEviction.Equal(time.Unix(0, now)) {
		t.Errorf("LastLiveEviction = %v, want %v", st.LastLiveEviction, time.Unix(0, now))
	}
	if ok, _ := tb.Peek(1, p, now); !ok {
		t.Error("key 1 (smallest TAT) still limited: wrong victim")
	}
	for k := uint64(2); k <= Ways; k++ {
		if ok, _ := tb.Peek(k, p, now); ok {
			t.Errorf("key %d evicted instead of key 1", k)
		}
	}
	if hooks.Load() != 1 {
		t.Fatalf("OnPressure called %d times, want 1", hooks.Load())
	}

	// More live evictions within the same second do not call the hook.
	for k := uint64(300); k < 310; k++ {
		tb.Charge(k, p, 1, now+int64(k))
	}
	if hooks.Load() != 1 {
		t.Fatalf("OnPressure called %d times within one second, want 1", hooks.Load())
	}
	// A second later it is called again.
	tb.Charge(400, p, 1, now+s)
	if hooks.Load() != 2 {
		t.Fatalf("OnPressure called %d times after a second, want 2", hooks.Load())
	}

	// The flag stays up for PressureWindow after the last live eviction,
	// then drops.
	last := now + s
	clk.Set(time.Duration(last + int64(PressureWindow) - 1))
	if !tb.Stats().Pressure {
		t.Error("Pressure dropped before PressureWindow")
	}
	clk.Set(time.Duration(last + int64(PressureWindow)))
	if st := tb.Stats(); st.Pressure {
		t.Errorf("Pressure still up after PressureWindow: %+v", st)
	}
}

func TestForget(t *testing.T) {
	tb := newTestTable(t, TableOptions{Capacity: 64})
	p := mustParams(t, 1, 1)
	tb.Allow(5, p, 1, 0)
	if ok, _ := tb.Allow(5, p, 1, 0); ok {
		t.Fatal("second request conformed")
	}
	if !tb.Forget(5, 0) {
		t.Error("Forget of a limited key reported false")
	}
	if tb.Forget(5, 0) {
		t.Error("Forget of an absent key reported true")
	}
	if ok, _ := tb.Allow(5, p, 1, 0); !ok {
		t.Error("forgotten key still limited")
	}
	if st := tb.Stats(); st.Len != 1 {
		t.Errorf("Len = %d, want 1", st.Len)
	}
}

func TestKeyZeroIsUsable(t *testing.T) {
	tb := newTestTable(t, TableOptions{Capacity: 64})
	p := mustParams(t, 1, 1)
	if ok, _ := tb.Allow(0, p, 1, 0); !ok {
		t.Fatal("key 0 refused on first use")
	}
	if ok, _ := tb.Allow(0, p, 1, 0); ok {
		t.Fatal("key 0 not limited: its state was lost")
	}
	if st := tb.Stats(); st.Len != 1 {
		t.Errorf("Len = %d, want 1", st.Len)
	}
}

// TestConcurrentAllow checks that no request is double-counted or lost:
// with the clock stopped, every key admits exactly its burst however many
// goroutines race for it.
func TestConcurrentAllow(t *testing.T) {
	const (
		goroutines = 8
		keys       = 64
		burst      = 50
		perG       = 2000
	)
	tb := newTestTable(t, TableOptions{Capacity: 1024, Shards: 4})
	p := mustParams(t, 1, burst)
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perG {
				k := uint64((i*7 + g) % keys)
				if ok, _ := tb.Allow(k+1, p, 1, 0); ok {
					allowed[k].Add(1)
				}
				if i%100 == 0 {
					tb.Peek(k+1, p, 0)
					tb.Stats()
				}
			}
		}()
	}
	wg.Wait()
	for k := range allowed {
		if got := allowed[k].Load(); got != burst {
			t.Errorf("key %d: %d requests allowed, want exactly %d", k+1, got, burst)
		}
	}
	if st := tb.Stats(); st.Len != keys || st.Evictions != 0 {
		t.Errorf("Stats = %+v; want %d keys, no evictions", st, keys)
	}
}

func TestAllowDoesNotAllocate(t *testing.T) {
	tb := newTestTable(t, TableOptions{Capacity: 1 << 10})
	p := mustParams(t, 1e6, 100)
	now := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		now += 1000
		tb.Allow(uint64(now%500)+1, p, 1, now)
		tb.Peek(12345, p, now)
		tb.Charge(99, p, 1, now)
	})
	if allocs != 0 {
		t.Errorf("Allow+Peek+Charge allocate %v times per run, want 0", allocs)
	}
}

func TestPairSharesShard(t *testing.T) {
	g, err := newGeometry(1<<16, 64)
	if err != nil {
		t.Fatal(err)
	}
	differ := 0
	for k := uint64(1); k <= 10000; k++ {
		b1, b2 := g.pair(k)
		if b1&g.shardMask != b2&g.shardMask {
			t.Fatalf("key %d: buckets %d and %d are in different shards", k, b1, b2)
		}
		if b1 > g.bucketMask || b2 > g.bucketMask {
			t.Fatalf("key %d: bucket out of range", k)
		}
		if b1 != b2 {
			differ++
		}
	}
	// 128 buckets per shard: b2 == b1 for about 1 key in 128.
	if differ < 9800 {
		t.Errorf("only %d of 10000 keys have two distinct buckets", differ)
	}
}

// TestTwoChoiceBalances fills half the slots with live keys. With one bucket
// per key, about 2% of 8-slot buckets would receive more than 8 of them and
// evict; with the emptier of two buckets chosen, none should.
func TestTwoChoiceBalances(t *testing.T) {
	tb := newTestTable(t, TableOptions{Capacity: 1 << 12, Shards: 8})
	p := mustParams(t, 1, 1)
	var kb KeyBuilder
	for i := range uint64(1 << 11) {
		kb.Reset("fill")
		kb.AddUint64(i)
		tb.Allow(kb.Sum(), p, 1, 0)
	}
	if st := tb.Stats(); st.Evictions != 0 || st.Len != 1<<11 {
		t.Errorf("half-full table: %+v; want no evictions", st)
	}
}

// TestNegativeClock checks that an absent key is rested whatever the clock
// reads, even before the Unix epoch (fake clocks).
func TestNegativeClock(t *testing.T) {
	tb := newTestTable(t, TableOptions{Capacity: 64})
	p := mustParams(t, 1, 1)
	now := -int64(10 * time.Second)
	if ok, retry := tb.Peek(1, p, now); !ok {
		t.Fatalf("Peek on an absent key at a negative time = false, %v", retry)
	}
	if ok, retry := tb.Allow(1, p, 1, now); !ok {
		t.Fatalf("Allow on an absent key at a negative time = false, %v", retry)
	}
	if ok, retry := tb.Allow(1, p, 1, now); ok || retry != time.Second {
		t.Fatalf("second Allow = %v, %v; want false, 1s", ok, retry)
	}
	tb.Charge(2, p, 1, now)
	if ok, retry := tb.Peek(2, p, now); ok || retry != time.Second {
		t.Fatalf("Peek after Charge(1) = %v, %v; want false, 1s", ok, retry)
	}
}
