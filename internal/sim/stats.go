package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of the
// ascending durations sorted: the smallest value with at least p% of the
// values at or below it, sorted[ceil(p/100·n)-1]. It returns 0 for an empty
// slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Ratio returns num/den, and 0 when den is 0.
func Ratio(num, den int64) float64 {
	if den <= 0 {
		return 0
	}
	return float64(num) / float64(den)
}

// millis converts d to milliseconds rounded to the microsecond.
func millis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// maxSamples bounds the raw latencies kept per group; past it, reservoir
// sampling keeps a uniform sample of that size.
const maxSamples = 1 << 20

// latencies collects request outcomes and latencies of one group of
// visitors. It is safe for concurrent use.
type latencies struct {
	mu      sync.Mutex
	samples []time.Duration
	seen    int64
	ok      int64
	rng     *rand.Rand
	limit   int
}

func newLatencies(seed uint64) *latencies {
	return &latencies{rng: rand.New(rand.NewPCG(seed, 0x5eed)), limit: maxSamples}
}

// add records one request: its latency, and whether it succeeded.
// Latencies of failed requests count too: a visitor waited for them.
func (l *latencies) add(d time.Duration, success bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen++
	if success {
		l.ok++
	}
	if len(l.samples) < l.limit {
		l.samples = append(l.samples, d)
		return
	}
	// Algorithm R: keep the new value with probability limit/seen.
	if j := l.rng.Int64N(l.seen); j < int64(l.limit) {
		l.samples[j] = d
	}
}

// GroupStats summarises one group of visitors.
type GroupStats struct {
	// Visitors is the number of visitors in the group.
	Visitors int `json:"visitors"`
	// Requests counts requests, each followed to its final answer (a
	// redirect and a solved challenge are part of the request they serve).
	Requests int64 `json:"requests"`
	// Succeeded counts requests whose final answer was 2xx or 304.
	Succeeded int64 `json:"succeeded"`
	// SuccessRatio is Succeeded/Requests (0 without requests).
	SuccessRatio float64 `json:"success_ratio"`
	// P50ms, P95ms and P99ms are nearest-rank percentiles of the latency of
	// every request, failed ones included, in milliseconds.
	P50ms float64 `json:"p50_ms"`
	P95ms float64 `json:"p95_ms"`
	P99ms float64 `json:"p99_ms"`
	// ChallengesSolved counts challenges solved by the group; Challenged
	// counts challenge answers received.
	Challenged       int64 `json:"challenged"`
	ChallengesSolved int64 `json:"challenges_solved"`
}

func (l *latencies) summary(visitors int) GroupStats {
	l.mu.Lock()
	s := slices.Clone(l.samples)
	g := GroupStats{Visitors: visitors, Requests: l.seen, Succeeded: l.ok}
	l.mu.Unlock()
	slices.Sort(s)
	g.SuccessRatio = Ratio(g.Succeeded, g.Requests)
	g.P50ms = millis(Percentile(s, 50))
	g.P95ms = millis(Percentile(s, 95))
	g.P99ms = millis(Percentile(s, 99))
	return g
}

// merge returns the summary of a and b taken together.
func mergeLatencies(a, b *latencies, seed uint64) *latencies {
	m := newLatencies(seed)
	for _, l := range []*latencies{a, b} {
		l.mu.Lock()
		m.samples = append(m.samples, l.samples...)
		m.seen += l.seen
		m.ok += l.ok
		l.mu.Unlock()
	}
	return m
}

// maxLabels bounds the distinct labels of a tally: the labels come from
// the target's answers (status codes, header values), and a target must not
// be able to grow the simulator's memory. Labels past the bound are
// counted as "other".
const maxLabels = 256

// tally counts labels, at most maxLabels distinct ones. It is safe for
// concurrent use.
type tally struct {
	mu sync.Mutex
	m  map[string]int64
}

func (t *tally) add(label string, n int64) {
	t.mu.Lock()
	if t.m == nil {
		t.m = make(map[string]int64)
	}
	if _, ok := t.m[label]; !ok && len(t.m) >= maxLabels-1 {
		label = "other"
	}
	t.m[label] += n
	t.mu.Unlock()
}

func (t *tally) snapshot() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int64, len(t.m))
	for k, v := range t.m {
		out[k] = v
	}
	return out
}
