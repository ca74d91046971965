package demo

import (
	"math"
	"sync/atomic"
	"time"
)

// Role is who sent a request, as the simulator declares it in X-Sim-Role.
type Role uint8

const (
	// RoleUnknown is a request without a recognised X-Sim-Role.
	RoleUnknown Role = iota
	// RoleLegit is a simulated legitimate visitor.
	RoleLegit
	// RoleAttack is simulated attack traffic.
	RoleAttack
	numRoles
)

var roleNames = [numRoles]string{"unknown", "legit", "attack"}

// String returns the header spelling of r.
func (r Role) String() string {
	if r < numRoles {
		return roleNames[r]
	}
	return "unknown"
}

// RoleHeader is the request header through which the simulator declares the
// role of a request. Only the demo origin reads it; the shield must ignore it.
const RoleHeader = "X-Sim-Role"

// ParseRole maps an X-Sim-Role value to a Role: "legit" and "attack" (exact,
// lower case); anything else is RoleUnknown.
func ParseRole(s string) Role {
	switch s {
	case "legit":
		return RoleLegit
	case "attack":
		return RoleAttack
	}
	return RoleUnknown
}

// Class is what kind of resource a request asked for.
type Class uint8

const (
	// ClassPage is the front page, an article or the login page.
	ClassPage Class = iota
	// ClassStatic is a static asset under /static/.
	ClassStatic
	// ClassSearch is /search.
	ClassSearch
	// ClassPost is any POST, PUT, PATCH or DELETE.
	ClassPost
	// ClassOther is everything else (404s, /events).
	ClassOther
	numClasses
)

var classNames = [numClasses]string{"page", "static", "search", "post", "other"}

// String returns the name of c as used in the stats JSON.
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "other"
}

// Stats is a snapshot of the origin's counters; its JSON form is what
// GET /__demo/stats answers (documented in the package comment).
type Stats struct {
	// Since is when the counters were last reset (or the origin created).
	Since time.Time `json:"since"`
	// Workers and Queue are the configured capacity.
	Workers int `json:"workers"`
	Queue   int `json:"queue"`
	// Served counts requests answered by a worker.
	Served uint64 `json:"served"`
	// Rejected counts requests answered 503 because workers and queue were
	// full (and /events streams refused over MaxStreams).
	Rejected uint64 `json:"rejected"`
	// Canceled counts requests whose client left while they waited in line.
	Canceled uint64 `json:"canceled"`
	// InFlight is the number of requests holding a worker now.
	InFlight int64 `json:"in_flight"`
	// QueueDepth is the number of requests waiting for a worker now.
	QueueDepth int64 `json:"queue_depth"`
	// PeakQueueDepth is the highest QueueDepth seen since the last reset.
	PeakQueueDepth int64 `json:"peak_queue_depth"`
	// Streams is the number of open /events streams.
	Streams int64 `json:"streams"`
	// Conns is the number of connections open under Serve (0 when the
	// handler is served some other way).
	Conns int64 `json:"conns"`
	// Latency summarises the served requests.
	Latency Latency `json:"latency"`
	// Legit, Attack and Unknown count requests by the role declared in
	// X-Sim-Role.
	Legit   RoleStats `json:"legit"`
	Attack  RoleStats `json:"attack"`
	Unknown RoleStats `json:"unknown"`
	// Sources are the heaviest sources seen since the last reset, heaviest
	// first, at most SourcesCapacity of them.
	Sources []SourceCount `json:"sources"`
	// SourcesCapacity is the fixed size of the source table.
	SourcesCapacity int `json:"sources_capacity"`
}

// Role returns the counters of role r.
func (s *Stats) Role(r Role) RoleStats {
	switch r {
	case RoleLegit:
		return s.Legit
	case RoleAttack:
		return s.Attack
	}
	return s.Unknown
}

// Latency summarises request latencies from arrival at the handler (before
// queueing) to the handler's return, in milliseconds. Percentiles are bucket
// upper bounds of a log-scaled histogram (at most 19% high).
type Latency struct {
	Count uint64  `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// RoleStats counts the requests of one role that reached the origin.
type RoleStats struct {
	// Requests is Served + Rejected + Canceled.
	Requests uint64 `json:"requests"`
	Served   uint64 `json:"served"`
	Rejected uint64 `json:"rejected"`
	Canceled uint64 `json:"canceled"`
	// Classes splits Requests by class.
	Classes ClassCounts `json:"classes"`
}

// ClassCounts counts requests by class.
type ClassCounts struct {
	Page   uint64 `json:"page"`
	Static uint64 `json:"static"`
	Search uint64 `json:"search"`
	Post   uint64 `json:"post"`
	Other  uint64 `json:"other"`
}

// Get returns the count of class c.
func (c ClassCounts) Get(cl Class) uint64 {
	switch cl {
	case ClassPage:
		return c.Page
	case ClassStatic:
		return c.Static
	case ClassSearch:
		return c.Search
	case ClassPost:
		return c.Post
	}
	return c.Other
}

// SourceCount is one entry of the heavy-hitter table of sources.
type SourceCount struct {
	// Addr is the source address.
	Addr string `json:"addr"`
	// Requests is an upper bound of the requests from Addr since the reset.
	Requests uint64 `json:"requests"`
	// Overcount bounds how much Requests may exceed the true count (the
	// count inherited from the entry it replaced).
	Overcount uint64 `json:"overcount"`
	// LastRole is the role of the latest request from Addr.
	LastRole string `json:"last_role"`
}

// outcome is how a counted request ended.
type outcome uint8

const (
	outServed outcome = iota
	outRejected
	outCanceled
	numOutcomes
)

// counters are the lock-free request counters. Reset zeroes each field with
// an atomic store; a request counted concurrently with a reset may land on
// either side of it.
type counters struct {
	byRole    [numRoles][numOutcomes]atomic.Uint64
	byClass   [numRoles][numClasses]atomic.Uint64
	peakQueue atomic.Int64
	hist      histogram
}

func (c *counters) count(r Role, cl Class, o outcome) {
	c.byRole[r][o].Add(1)
	c.byClass[r][cl].Add(1)
}

func (c *counters) reset() {
	for r := range c.byRole {
		for o := range c.byRole[r] {
			c.byRole[r][o].Store(0)
		}
		for cl := range c.byClass[r] {
			c.byClass[r][cl].Store(0)
		}
	}
	c.peakQueue.Store(0)
	c.hist.reset()
}

func (c *counters) role(r Role) RoleStats {
	rs := RoleStats{
		Served:   c.byRole[r][outServed].Load(),
		Rejected: c.byRole[r][outRejected].Load(),
		Canceled: c.byRole[r][outCanceled].Load(),
		Classes: ClassCounts{
			Page:   c.byClass[r][ClassPage].Load(),
			Static: c.byClass[r][ClassStatic].Load(),
			Search: c.byClass[r][ClassSearch].Load(),
			Post:   c.byClass[r][ClassPost].Load(),
			Other:  c.byClass[r][ClassOther].Load(),
		},
	}
	rs.Requests = rs.Served + rs.Rejected + rs.Canceled
	return rs
}

func (c *counters) notePeak(depth int64) {
	for {
		p := c.peakQueue.Load()
		if depth <= p || c.peakQueue.CompareAndSwap(p, depth) {
			return
		}
	}
}

// histogram is a fixed, lock-free, log-scaled latency histogram: bucket i
// holds durations up to histBase·2^(i/4), the last bucket everything longer.
type histogram struct {
	buckets [histBuckets]atomic.Uint64
	max     atomic.Int64
}

const (
	histBuckets = 96
	histBase    = 50 * time.Microsecond // 2^(95/4)·50µs ≈ 3.3 hours
)

// histBounds[i] is the upper bound of bucket i.
var histBounds = func() (b [histBuckets]time.Duration) {
	for i := range b {
		b[i] = time.Duration(float64(histBase) * math.Exp2(float64(i)/4))
	}
	b[histBuckets-1] = math.MaxInt64
	return b
}()

func bucketOf(d time.Duration) int {
	if d <= histBase {
		return 0
	}
	i := int(math.Ceil(4 * math.Log2(float64(d)/float64(histBase))))
	// Guard against floating-point rounding at the bounds.
	for i > 0 && d <= histBounds[i-1] {
		i--
	}
	for i < histBuckets-1 && d > histBounds[i] {
		i++
	}
	return i
}

func (h *histogram) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.buckets[bucketOf(d)].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (h *histogram) reset() {
	for i := range h.buckets {
		h.buckets[i].Store(0)
	}
	h.max.Store(0)
}

// summary computes the count, p50, p99 and max. A percentile is the upper
// bound of the bucket holding the request of rank ceil(p·count), capped by
// the maximum seen.
func (h *histogram) summary() Latency {
	var counts [histBuckets]uint64
	var n uint64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		n += counts[i]
	}
	maxD := time.Duration(h.max.Load())
	l := Latency{Count: n, MaxMs: ms(maxD)}
	if n == 0 {
		return l
	}
	q := func(p float64) float64 {
		rank := uint64(math.Ceil(p * float64(n)))
		if rank < 1 {
			rank = 1
		}
		var cum uint64
		for i, c := range counts {
			cum += c
			if cum >= rank {
				return ms(min(histBounds[i], maxD))
			}
		}
		return ms(maxD)
	}
	l.P50ms = q(0.50)
	l.P99ms = q(0.99)
	return l
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000
}
