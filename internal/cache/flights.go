package cache

import (
	"sync"
	"sync/atomic"
)

// flightShards spreads the in-flight table over locks.
const flightShards = 32

// flight is one origin request made on behalf of every concurrent miss of a
// key. The leader fills res and closes done; followers wait on done.
type flight struct {
	key  string
	done chan struct{}
	res  flightResult
}

// flightResult is what followers get.
type flightResult struct {
	// e is the response to serve (stored, stale, revalidated, or a shared
	// 5xx that was not stored); nil means go to the origin on your own.
	e     *entry
	label []string // Rampart-Cache value for followers
	stale bool     // e is a stale copy standing in for a failure
}

// flightOverhead is what a flight costs beyond its key: the flight, its
// channel and its map slot, rounded up.
const flightOverhead = 256

// byteBudget bounds bytes reserved by many goroutines: the in-flight
// memory (Options.InflightBytes). It is safe for concurrent use.
type byteBudget struct {
	max     int64
	used    atomic.Int64
	refused atomic.Uint64
}

// take reserves n bytes if they fit.
func (b *byteBudget) take(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		b.refused.Add(1)
		return false
	}
	return true
}

// give returns n reserved bytes.
func (b *byteBudget) give(n int64) { b.used.Add(-n) }

// flights is the table of keys being fetched: a sharded map with a fixed
// capacity (MaxFlights), whose flights take their memory from the in-flight
// budget. When either is exhausted, misses are not coalesced.
type flights struct {
	max    int64
	budget *byteBudget
	n      atomic.Int64
	shards [flightShards]struct {
		mu sync.Mutex
		m  map[uint64]*flight
		_  [40]byte
	}
}

func newFlights(max int, budget *byteBudget) *flights {
	f := &flights{max: int64(max), budget: budget}
	for i := range f.shards {
		f.shards[i].m = make(map[uint64]*flight)
	}
	return f
}

func (fs *flights) size() int { return int(fs.n.Load()) }

// join returns the flight of key, creating it if there is none: then leader
// is true. A nil flight with leader true means the request may not coalesce
// (table full, or a hash collision with another key): it fetches alone.
func (fs *flights) join(h uint64, key string) (f *flight, leader bool) {
	sh := &fs.shards[h%flightShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if f = sh.m[h]; f != nil {
		if f.key == key {
			return f, false
		}
		return nil, true
	}
	if fs.n.Load() >= fs.max || !fs.budget.take(flightOverhead+int64(len(key))) {
		return nil, true
	}
	f = &flight{key: key, done: make(chan struct{})}
	sh.m[h] = f
	fs.n.Add(1)
	return f, true
}

// complete publishes res to the followers and removes the flight, so that
// later requests look the key up again.
func (fs *flights) complete(h uint64, f *flight, res flightResult) {
	if f == nil {
		return
	}
	sh := &fs.shards[h%flightShards]
	sh.mu.Lock()
	if sh.m[h] == f {
		delete(sh.m, h)
		fs.n.Add(-1)
		fs.budget.give(flightOverhead + int64(len(f.key)))
	}
	sh.mu.Unlock()
	f.res = res
	close(f.done)
}
