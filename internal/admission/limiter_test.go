package admission

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{name: "zero options take defaults", o: Options{}, ok: true},
		{name: "min above max", o: Options{MinLimit: 10, MaxLimit: 5, InitialLimit: 7}},
		{name: "initial below min", o: Options{MinLimit: 5, InitialLimit: 3}},
		{name: "negative min", o: Options{MinLimit: -1}},
		{name: "negative queue", o: Options{QueueSize: -1}},
		{name: "smoothing above one", o: Options{Smoothing: 1.5}},
		{name: "backoff of one", o: Options{Backoff: 1}},
		{name: "too many samples", o: Options{MinSamples: windowSamples + 1}},
		{name: "negative tolerance", o: Options{Tolerance: -0.1}},
		{name: "breaker max below open", o: Options{BreakerOpen: time.Minute, BreakerMaxOpen: time.Second}},
		{name: "jitter of one", o: Options{ProbeJitter: 1}},
		{name: "breaker off, no periodic probe", o: Options{BreakerFailures: -1, ProbeInterval: -1}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.o)
			if (err == nil) != tt.ok {
				t.Fatalf("New() error = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// limiterAt returns a Limiter whose probe is done and whose limit is n.
func limiterAt(t *testing.T, n int, o Options) (*Limiter, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	o.Now = clk.Now
	o.InitialLimit, o.MinLimit = n, 1
	if o.MaxLimit < n {
		o.MaxLimit = n
	}
	o.ProbeInterval = -1
	l := mustNew(t, o)
	finishProbe(t, l, clk, 10*time.Millisecond)
	if got := l.Stats().Limit; got != n {
		t.Fatalf("limit %d, want %d", got, n)
	}
	return l, clk
}

type acquired struct {
	id  int
	t   Ticket
	err error
}

// TestPriorityOrder: over the limit, priority waiters are admitted first,
// then normal ones, then suspicious ones, FIFO within a class.
func TestPriorityOrder(t *testing.T) {
	l, _ := limiterAt(t, 1, Options{})
	hold, err := l.Acquire(t.Context(), verdict.ClassNormal, 0)
	if err != nil {
		t.Fatal(err)
	}
	order := []verdict.Class{
		verdict.ClassSuspicious, verdict.ClassNormal, verdict.ClassSuspicious,
		verdict.ClassPriority, verdict.ClassNormal, verdict.ClassPriority,
	}
	got := make(chan acquired, len(order))
	for i, c := range order {
		go func() {
			tk, err := l.Acquire(context.Background(), c, 0)
			got <- acquired{id: i, t: tk, err: err}
		}()
		// Enqueue one at a time so FIFO order within a class is defined.
		eventually(t, "waiter queued", func() bool { return sum(l.Stats().Queued) == i+1 })
	}
	want := []int{3, 5, 1, 4, 0, 2}
	hold.Release(10*time.Millisecond, Success)
	for i, w := range want {
		a := <-got
		if a.err != nil {
			t.Fatalf("waiter %d: %v", a.id, a.err)
		}
		if a.id != w {
			t.Errorf("admission %d went to waiter %d (%v), want %d (%v)", i, a.id, order[a.id], w, order[w])
		}
		a.t.Release(10*time.Millisecond, Success)
	}
}

func sum(q [verdict.NumClasses]int) int {
	n := 0
	for _, v := range q {
		n += v
	}
	return n
}

// TestQueueFullShedsLowestClass: a full queue makes room for a higher class
// by shedding the newest waiter of the lowest class; an arrival of the lowest
// class is refused itself.
func TestQueueFullShedsLowestClass(t *testing.T) {
	l, _ := limiterAt(t, 1, Options{QueueSize: 2})
	hold, _ := l.Acquire(t.Context(), verdict.ClassNormal, 0)
	res := make(chan acquired, 4)
	for i := range 2 {
		go func() {
			tk, err := l.Acquire(context.Background(), verdict.ClassSuspicious, 0)
			res <- acquired{id: i, t: tk, err: err}
		}()
		eventually(t, "suspicious queued", func() bool { return l.Stats().Queued[verdict.ClassSuspicious] == i+1 })
	}
	if _, err := l.Acquire(t.Context(), verdict.ClassSuspicious, 0); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("suspicious arrival on a full queue: err %v, want ErrQueueFull", err)
	}
	go func() {
		tk, err := l.Acquire(context.Background(), verdict.ClassNormal, 0)
		res <- acquired{id: 10, t: tk, err: err}
	}()
	shed := <-res
	if shed.id != 1 || !errors.Is(shed.err, ErrQueueFull) {
		t.Fatalf("shed waiter %d with %v, want the newest suspicious (1) with ErrQueueFull", shed.id, shed.err)
	}
	s := l.Stats()
	if s.Queued[verdict.ClassNormal] != 1 && sum(s.Queued) != 2 {
		eventually(t, "normal queued", func() bool { return l.Stats().Queued[verdict.ClassNormal] == 1 })
	}
	if s.Shed[verdict.ClassSuspicious] != 1 {
		t.Errorf("shed counter %d, want 1", s.Shed[verdict.ClassSuspicious])
	}
	hold.Release(time.Millisecond, Success)
	a := <-res
	if a.id != 10 || a.err != nil {
		t.Fatalf("first admitted after release: waiter %d err %v, want the normal one", a.id, a.err)
	}
	a.t.Release(time.Millisecond, Success)
	a = <-res
	if a.id != 0 || a.err != nil {
		t.Fatalf("then: waiter %d err %v, want suspicious 0", a.id, a.err)
	}
	a.t.Release(time.Millisecond, Success)
	if s := l.Stats(); s.InFlight != 0 || sum(s.Queued) != 0 {
		t.Errorf("in flight %d, queued %v after all released", s.InFlight, s.Queued)
	}
}

func TestDeadlineAndNoWait(t *testing.T) {
	var mw [verdict.NumClasses]time.Duration
	mw[verdict.ClassNormal] = 20 * time.Millisecond
	mw[verdict.ClassSuspicious] = -1
	l, _ := limiterAt(t, 1, Options{MaxWait: mw})
	hold, _ := l.Acquire(t.Context(), verdict.ClassPriority, 0)
	defer hold.Release(time.Millisecond, Success)

	if _, err := l.Acquire(t.Context(), verdict.ClassSuspicious, 0); !errors.Is(err, ErrTimeout) {
		t.Errorf("class that may not wait: err %v, want ErrTimeout at once", err)
	}
	if _, err := l.Acquire(t.Context(), verdict.ClassNormal, 0); !errors.Is(err, ErrTimeout) {
		t.Errorf("normal past its deadline: err %v, want ErrTimeout", err)
	}
	s := l.Stats()
	if s.TimedOut[verdict.ClassNormal] != 1 || s.Rejected[verdict.ClassSuspicious] != 1 {
		t.Errorf("timed out %v rejected %v", s.TimedOut, s.Rejected)
	}
	if s.InFlight != 1 || sum(s.Queued) != 0 {
		t.Errorf("in flight %d queued %v, want 1 and none", s.InFlight, s.Queued)
	}
}

// TestCancellationsDoNotLeak hammers the queue with cancellations,
// deadlines, sheddings and releases racing each other, then checks that no
// slot, waiter or goroutine is left behind and the limit was never exceeded.
func TestCancellationsDoNotLeak(t *testing.T) {
	var mw [verdict.NumClasses]time.Duration
	for i := range mw {
		mw[i] = time.Duration(1+i) * time.Millisecond
	}
	const limit = 4
	l, _ := limiterAt(t, limit, Options{QueueSize: 16, MaxWait: mw, BreakerFailures: -1})
	base := runtime.NumGoroutine()
	var inside, maxInside atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 200 {
				ctx, cancel := context.WithCancel(context.Background())
				if rng.IntN(3) == 0 {
					go cancel()
				}
				tk, err := l.Acquire(ctx, verdict.Class(rng.IntN(int(verdict.NumClasses))), 0)
				if err == nil {
					n := inside.Add(1)
					for {
						m := maxInside.Load()
						if n <= m || maxInside.CompareAndSwap(m, n) {
							break
						}
					}
					runtime.Gosched()
					inside.Add(-1)
					tk.Release(time.Millisecond, Success)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	s := l.Stats()
	if s.InFlight != 0 || sum(s.Queued) != 0 {
		t.Fatalf("after the storm: in flight %d, queued %v; want 0 and none", s.InFlight, s.Queued)
	}
	if m := maxInside.Load(); m > limit {
		t.Errorf("%d requests inside at once, limit %d", m, limit)
	}
	var admitted, refused uint64
	for c := range s.Admitted {
		admitted += s.Admitted[c]
		refused += s.Rejected[c] + s.TimedOut[c] + s.Canceled[c]
	}
	t.Logf("admitted %d, refused/timed out/canceled %d", admitted, refused)
	if refused == 0 {
		t.Error("the storm never hit the queue's limits; the test tests nothing")
	}
	eventually(t, "goroutines to return", func() bool { return runtime.NumGoroutine() <= base })
}

// TestBreakerFailsQueue: when the circuit opens, waiters are failed at once
// rather than at their deadline, so the cache can serve stale copies.
func TestBreakerFailsQueue(t *testing.T) {
	l, _ := limiterAt(t, 2, Options{BreakerFailures: 1})
	a, _ := l.Acquire(t.Context(), verdict.ClassNormal, 0)
	b, _ := l.Acquire(t.Context(), verdict.ClassNormal, 0)
	waiter := make(chan error, 1)
	go func() {
		_, err := l.Acquire(context.Background(), verdict.ClassNormal, 0)
		waiter <- err
	}()
	eventually(t, "waiter queued", func() bool { return sum(l.Stats().Queued) == 1 })
	a.Release(time.Millisecond, Dropped)
	if err := <-waiter; !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("queued waiter: %v, want ErrCircuitOpen", err)
	}
	b.Release(time.Millisecond, Ignore)
	if s := l.Stats(); s.InFlight != 0 || sum(s.Queued) != 0 {
		t.Errorf("in flight %d queued %v", s.InFlight, s.Queued)
	}
}

func TestBreaker(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, Options{Now: clk.Now, BreakerFailures: 3, BreakerOpen: 5 * time.Second, BreakerMaxOpen: 8 * time.Second, ProbeInterval: -1})
	finishProbe(t, l, clk, 10*time.Millisecond)

	// Failures interleaved with a success do not open it.
	for _, out := range []Outcome{Dropped, Dropped, Success, Dropped, Dropped} {
		tk, _ := l.Acquire(t.Context(), verdict.ClassNormal, 0)
		tk.Release(time.Millisecond, out)
	}
	if s := l.Stats(); s.Breaker != "closed" {
		t.Fatalf("breaker %q after non-consecutive failures, want closed", s.Breaker)
	}
	tk, _ := l.Acquire(t.Context(), verdict.ClassNormal, 0)
	tk.Release(time.Millisecond, Dropped)
	if s := l.Stats(); s.Breaker != "open" || s.BreakerOpens != 1 {
		t.Fatalf("breaker %q opens %d, want open once", s.Breaker, s.BreakerOpens)
	}
	if _, err := l.Acquire(t.Context(), verdict.ClassPriority, 0); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("acquire while open: %v, want ErrCircuitOpen", err)
	}

	// After the open period, one trial; a failed trial doubles the period
	// (capped at BreakerMaxOpen).
	clk.Advance(5 * time.Second)
	trial, err := l.Acquire(t.Context(), verdict.ClassNormal, 0)
	if err != nil {
		t.Fatalf("trial: %v", err)
	}
	if _, err := l.Acquire(t.Context(), verdict.ClassNormal, 0); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("second request while the trial is out: %v, want ErrCircuitOpen", err)
	}
	trial.Release(time.Millisecond, Dropped)
	clk.Advance(7 * time.Second)
	if _, err := l.Acquire(t.Context(), verdict.ClassNormal, 0); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("7 s after a failed trial: %v, want still open (8 s)", err)
	}
	clk.Advance(time.Second)
	trial, err = l.Acquire(t.Context(), verdict.ClassNormal, 0)
	if err != nil {
		t.Fatalf("second trial: %v", err)
	}
	trial.Release(10*time.Millisecond, Success)
	s := l.Stats()
	if s.Breaker != "closed" {
		t.Fatalf("breaker %q after a good trial, want closed", s.Breaker)
	}
	if !s.Probing {
		t.Error("no probe after the origin came back")
	}
	if s.InFlight != 0 {
		t.Errorf("in flight %d, want 0", s.InFlight)
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Success: "success", Dropped: "dropped", Ignore: "ignore", 9: "outcome(9)"} {
		if got := o.String(); got != want {
			t.Errorf("%d: %q, want %q", o, got, want)
		}
	}
}
