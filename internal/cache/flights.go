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

// flights is the table of keys being fetched: a sharded map with a fixed
// capacity (MaxFlights). When it is full, misses are not coalesced.
type flights struct {
	max    int64
	n      atomic.Int64
	shards [flightShards]struct {
		mu sync.Mutex
		m  map[uint64]*flight
		_  [40]byte
	}
}

func newFlights(max int) *flights {
	f := &flights{max: int64(max)}
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
	if fs.n.Load() >= fs.max {
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
	}
	sh.mu.Unlock()
	f.res = res
	close(f.done)
}
