package admission

import (
	"container/heap"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// originSim is a discrete-event model of an origin with C workers, each
// request taking D (±jitter), requests beyond C waiting in the origin's own
// FIFO queue, in front of which a Limiter admits an unbounded backlog of
// clients. It runs on the fake clock, so it is exact and fast.
type originSim struct {
	l       *Limiter
	clk     *fakeClock
	rng     *rand.Rand
	c       int
	d       time.Duration
	jitter  float64
	busy    int
	queue   []job
	running jobHeap
	// latencies of completed requests (origin queue + service) by
	// completion time, for the assertions.
	done []doneJob
	// fail makes the origin answer with an overload outcome.
	fail bool
}

type job struct {
	t        Ticket
	admitted time.Time
	end      time.Time
}

type doneJob struct {
	at      time.Time
	latency time.Duration
	limit   int
}

type jobHeap []job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].end.Before(h[j].end) }
func (h jobHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *jobHeap) Push(x any)        { *h = append(*h, x.(job)) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	*h = old[:len(old)-1]
	return j
}

func (s *originSim) service() time.Duration {
	if s.jitter == 0 {
		return s.d
	}
	f := 1 + s.jitter*(2*s.rng.Float64()-1)
	return time.Duration(float64(s.d) * f)
}

func (s *originSim) startWork(j job, now time.Time) {
	s.busy++
	j.end = now.Add(s.service())
	heap.Push(&s.running, j)
}

// run simulates for d of fake time.
func (s *originSim) run(t *testing.T, d time.Duration) {
	t.Helper()
	end := s.clk.Now().Add(d)
	for s.clk.Now().Before(end) {
		now := s.clk.Now()
		// Infinite demand: admit while the limiter lets us.
		for {
			tk, err := s.l.Acquire(t.Context(), verdict.ClassNormal, 0)
			if errors.Is(err, ErrTimeout) || errors.Is(err, ErrCircuitOpen) {
				break
			}
			if err != nil {
				t.Fatalf("acquire: %v", err)
			}
			j := job{t: tk, admitted: now}
			if s.busy < s.c {
				s.startWork(j, now)
			} else {
				s.queue = append(s.queue, j)
			}
		}
		if s.running.Len() == 0 {
			s.clk.Advance(time.Millisecond)
			continue
		}
		j := heap.Pop(&s.running).(job)
		s.clk.Set(j.end)
		s.busy--
		lat := j.end.Sub(j.admitted)
		out := Success
		if s.fail {
			out = Dropped
		}
		j.t.Release(lat, out)
		s.done = append(s.done, doneJob{at: j.end, latency: lat, limit: s.l.Stats().Limit})
		for len(s.queue) > 0 && s.busy < s.c {
			next := s.queue[0]
			s.queue = s.queue[1:]
			s.startWork(next, j.end)
		}
	}
}

// since summarises completions after t: mean latency and mean limit.
func (s *originSim) since(t time.Time) (mean time.Duration, meanLimit float64, n int) {
	var sumLat time.Duration
	var sum float64
	for _, d := range s.done {
		if d.at.Before(t) {
			continue
		}
		n++
		sumLat += d.latency
		sum += float64(d.limit)
	}
	if n == 0 {
		return 0, 0, 0
	}
	return sumLat / time.Duration(n), sum / float64(n), n
}

func newSim(t *testing.T, c int, d time.Duration, jitter float64, o Options) *originSim {
	clk := newFakeClock()
	o.Now = clk.Now
	o.MaxWait[verdict.ClassNormal] = -1 // the simulation never blocks
	seed := rand.New(rand.NewPCG(1, 2))
	o.Rand = seed.Float64
	return &originSim{l: mustNew(t, o), clk: clk, rng: rand.New(rand.NewPCG(3, 4)), c: c, d: d, jitter: jitter}
}

// TestGradientConvergesOnFixedCapacity checks the fixed point of the
// algorithm: in front of an origin of capacity C and latency D, under
// unbounded demand, the limit settles within [C, 1.6·C] (the design point is
// (1+Tolerance)·C = 1.25·C) and the origin's mean latency within
// [D, 1.6·D], whatever the start.
func TestGradientConvergesOnFixedCapacity(t *testing.T) {
	tests := []struct {
		name    string
		c       int
		d       time.Duration
		jitter  float64
		initial int
	}{
		{name: "small origin, limit starts above", c: 4, d: 20 * time.Millisecond, jitter: 0.1, initial: 20},
		{name: "capacity 10", c: 10, d: 20 * time.Millisecond, jitter: 0.1, initial: 20},
		{name: "capacity 50 starts below", c: 50, d: 50 * time.Millisecond, jitter: 0.2, initial: 5},
		{name: "capacity 200 slow pages", c: 200, d: 200 * time.Millisecond, jitter: 0.2, initial: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, tt.c, tt.d, tt.jitter, Options{InitialLimit: tt.initial})
			s.run(t, 30*time.Second)
			lat, meanLimit, n := s.since(s.clk.Now().Add(-10 * time.Second))
			t.Logf("C=%d D=%v: mean limit %.1f, origin mean latency %v over %d requests; minRTT %v",
				tt.c, tt.d, meanLimit, lat, n, s.l.Stats().MinRTT)
			if meanLimit < float64(tt.c) || meanLimit > 1.6*float64(tt.c) {
				t.Errorf("mean limit %.1f, want within [%d, %.1f]", meanLimit, tt.c, 1.6*float64(tt.c))
			}
			if lat < tt.d*9/10 || lat > tt.d*16/10 {
				t.Errorf("origin mean latency %v, want within [0.9·D, 1.6·D] = [%v, %v]", lat, tt.d*9/10, tt.d*16/10)
			}
		})
	}
}

// TestGradientFollowsCapacityChanges: the origin loses three quarters of its
// capacity (a slow database), then gets it back.
func TestGradientFollowsCapacityChanges(t *testing.T) {
	s := newSim(t, 40, 20*time.Millisecond, 0.1, Options{})
	s.run(t, 10*time.Second)
	_, high, _ := s.since(s.clk.Now().Add(-3 * time.Second))
	s.c = 10
	s.run(t, 10*time.Second)
	p50, low, _ := s.since(s.clk.Now().Add(-3 * time.Second))
	s.c = 40
	s.run(t, 10*time.Second)
	_, back, _ := s.since(s.clk.Now().Add(-3 * time.Second))
	t.Logf("limit at C=40: %.1f, at C=10: %.1f (p50 %v), back at C=40: %.1f", high, low, p50, back)
	if high < 40 || high > 64 {
		t.Errorf("limit at C=40 is %.1f, want [40, 64]", high)
	}
	if low < 10 || low > 16 {
		t.Errorf("limit after capacity fell to 10 is %.1f, want [10, 16]", low)
	}
	if back < 40 || back > 64 {
		t.Errorf("limit after capacity came back is %.1f, want [40, 64]", back)
	}
}

func TestGradientBacksOffOnDrops(t *testing.T) {
	s := newSim(t, 40, 20*time.Millisecond, 0, Options{BreakerFailures: -1})
	s.run(t, 5*time.Second)
	before := s.l.Stats().Estimate
	s.fail = true
	s.run(t, 5*time.Second)
	after := s.l.Stats()
	t.Logf("estimate before failures %.1f, after 5 s of 503s %.1f", before, after.Estimate)
	if after.Estimate > float64(after.Limit)+1 || after.Limit != DefaultMinLimit {
		t.Errorf("after 5 s of overload outcomes the limit is %d (estimate %.1f), want the floor %d", after.Limit, after.Estimate, DefaultMinLimit)
	}
	if after.Dropped == 0 {
		t.Error("no drops counted")
	}
}

// TestGradientAppLimited: a lightly used origin must not see its limit grow
// to MaxLimit in peace time, or the first flood would meet no limit at all.
func TestGradientAppLimited(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, Options{Now: clk.Now})
	finishProbe(t, l, clk, 10*time.Millisecond)
	for range 2000 {
		tk, err := l.Acquire(t.Context(), verdict.ClassNormal, 0)
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(10 * time.Millisecond)
		tk.Release(10*time.Millisecond, Success)
	}
	if got := l.Stats().Limit; got != DefaultInitialLimit {
		t.Errorf("limit after 20 s at concurrency 1 is %d, want it left at %d", got, DefaultInitialLimit)
	}
}

// TestProbeIgnoresEarlierRequests: a probe only counts requests admitted
// during it, so slow requests admitted at high concurrency do not pollute
// minRTT.
func TestProbeIgnoresEarlierRequests(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, Options{Now: clk.Now, ProbeInterval: time.Second, ProbeJitter: -1, ProbeSamples: 3})
	finishProbe(t, l, clk, 10*time.Millisecond)
	var old []Ticket
	for range 5 {
		tk, err := l.Acquire(t.Context(), verdict.ClassNormal, 0)
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, tk)
	}
	clk.Advance(2 * time.Second)
	old[0].Release(500*time.Millisecond, Success) // starts the probe
	if !l.Stats().Probing {
		t.Fatal("probe did not start after the probe interval")
	}
	if got := l.Stats().Limit; got != DefaultMinLimit {
		t.Errorf("limit during probe %d, want %d", got, DefaultMinLimit)
	}
	for _, tk := range old[1:] {
		tk.Release(900*time.Millisecond, Success) // admitted before: ignored
	}
	if !l.Stats().Probing {
		t.Fatal("probe ended on samples from before it")
	}
	finishProbe(t, l, clk, 30*time.Millisecond)
	if got := l.Stats().MinRTT; got != 30*time.Millisecond {
		t.Errorf("minRTT after probe %v, want 30ms", got)
	}
	if got := l.Stats().Limit; got != DefaultInitialLimit {
		t.Errorf("limit after probe %d, want restored %d", got, DefaultInitialLimit)
	}
}
