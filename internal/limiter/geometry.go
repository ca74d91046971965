package limiter

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	// Ways is the number of slots in one bucket of a set-associative table.
	// A key can live only in the 2*Ways slots of the two buckets its hash
	// selects.
	Ways = 8

	// DefaultCapacity is the default number of slots of a Table: 1<<20
	// keys in 16 MiB.
	DefaultCapacity = 1 << 20

	// MaxCapacity is the largest capacity a table accepts (1<<28 slots,
	// 4 GiB for a Table).
	MaxCapacity = 1 << 28

	// DefaultShards is the default number of lock shards of a table.
	DefaultShards = 256

	// PressureWindow is how long a table reports Pressure after its last
	// live eviction.
	PressureWindow = 10 * time.Second

	// pressureHookInterval is the least time between two OnPressure calls.
	pressureHookInterval = int64(time.Second)

	// zeroKey replaces key 0, which marks an empty slot.
	zeroKey = 0x9e3779b97f4a7c15
)

// geometry is the shape shared by Table and Escalator: a power-of-two number
// of buckets of Ways slots, guarded by a power-of-two number of lock shards
// (bucket i belongs to shard i & shardMask), two candidate buckets per key
// (see pair), and a per-table random seed
// mixed into the bucket hash so that callers who pass raw, guessable keys
// cannot aim many keys at one bucket.
type geometry struct {
	buckets    int
	bucketMask uint64
	shards     int
	shardMask  uint64
	seed       uint64
}

func newGeometry(capacity, shards int) (geometry, error) {
	if capacity < 0 || capacity > MaxCapacity {
		return geometry{}, fmt.Errorf("capacity %d out of range [0, %d] (0 means the default)", capacity, MaxCapacity)
	}
	if shards < 0 || shards > 1<<16 {
		return geometry{}, fmt.Errorf("shards %d out of range [0, 65536] (0 means the default)", shards)
	}
	if capacity == 0 {
		capacity = DefaultCapacity
	}
	if shards == 0 {
		shards = DefaultShards
	}
	nb := ceilPow2((capacity + Ways - 1) / Ways)
	ns := ceilPow2(shards)
	if ns > nb {
		ns = nb
	}
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return geometry{}, fmt.Errorf("seeding the bucket hash: %w", err)
	}
	return geometry{
		buckets:    nb,
		bucketMask: uint64(nb - 1),
		shards:     ns,
		shardMask:  uint64(ns - 1),
		seed:       binary.LittleEndian.Uint64(seed[:]),
	}, nil
}

func ceilPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// pair returns the two buckets a (non-zero) key may live in. Both belong to
// the same shard (they differ only in bits above the shard bits), so one
// lock guards a key. On tables with as many shards as buckets, b2 == b1.
// Two choices let a table fill much further before it must evict: a new key
// evicts only when all 2*Ways slots open to it are live.
func (g *geometry) pair(key uint64) (b1, b2 uint64) {
	h := mix64(key ^ g.seed)
	b1 = h & g.bucketMask
	b2 = (b1 ^ (h>>32)&^g.shardMask) & g.bucketMask
	return b1, b2
}

// fixKey maps the reserved key 0 to zeroKey.
func fixKey(key uint64) uint64 {
	if key == 0 {
		return zeroKey
	}
	return key
}

// mix64 is the 64-bit finaliser of MurmurHash3: a bijection whose output
// bits each depend on every input bit.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// pressure is the loud signal of a table that evicts live entries: the time
// of the last live eviction and a rate-limited hook. Times are the injected
// Unix nanoseconds of the calls that evicted.
type pressure struct {
	last     atomic.Int64 // time of the last live eviction; math.MinInt64 if none
	nextHook atomic.Int64 // earliest time the hook may run again
	hook     func()
}

func (p *pressure) init(hook func()) {
	p.last.Store(math.MinInt64)
	p.nextHook.Store(math.MinInt64)
	p.hook = hook
}

// note records a live eviction at now. Under sustained pressure it costs two
// atomic loads; it stores only when time moved on.
func (p *pressure) note(now int64) {
	if last := p.last.Load(); last < now {
		p.last.CompareAndSwap(last, now)
	}
	if p.hook == nil {
		return
	}
	if next := p.nextHook.Load(); now >= next && p.nextHook.CompareAndSwap(next, now+pressureHookInterval) {
		p.hook()
	}
}

// active reports whether a live eviction happened within PressureWindow of
// now (or after now, should clocks disagree).
func (p *pressure) active(now int64) bool {
	last := p.last.Load()
	return last != math.MinInt64 && now-last < int64(PressureWindow)
}

func (p *pressure) lastTime() time.Time {
	last := p.last.Load()
	if last == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, last)
}

// shardCounters are the per-shard statistics, written under the shard lock.
type shardCounters struct {
	used      int    // slots holding a key
	evictions uint64 // slots taken from a key whose entry had not expired
	live      uint64 // of those, entries whose loss loses limiting state
	reclaims  uint64 // slots taken from a key whose entry had expired
}

// TableStats is a snapshot of a Table's or an Escalator's size and health,
// meant for metrics.
type TableStats struct {
	// Len is the number of slots holding a key. Entries that expired stay
	// counted until their slot is reused, so Len can read near Capacity
	// on a healthy table; Pressure is the signal to alert on.
	Len int
	// Capacity is the number of slots: the requested capacity rounded up
	// to a power-of-two number of buckets of Ways slots.
	Capacity int
	// Reclaims counts slots reused from a key whose entry had expired.
	// This loses nothing (an expired entry behaves as an absent one) and
	// is not an eviction.
	Reclaims uint64
	// Evictions counts entries thrown out before they expired to make
	// room for another key.
	Evictions uint64
	// LiveEvictions counts the evictions that lost limiting state. In a
	// Table every eviction does (an unexpired TAT is state), so it equals
	// Evictions; in an Escalator it counts only keys that had an offence
	// level or a running block, not keys that had merely some strikes.
	LiveEvictions uint64
	// Pressure is true while a live eviction happened within the last
	// PressureWindow: the table is too small for the traffic and limits
	// keyed in it are leaking. Raise Capacity.
	Pressure bool
	// LastLiveEviction is the time of the most recent live eviction, or
	// the zero time if there never was one.
	LastLiveEviction time.Time
}
