package limiter

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// TableOptions configures a Table. Zero fields take the documented defaults.
type TableOptions struct {
	// Capacity is the number of keys the table can hold, at 16 bytes
	// each. It is rounded up so that Capacity/Ways is a power of two.
	// Default DefaultCapacity (1<<20, 16 MiB); at most MaxCapacity.
	// A key can only live in 2*Ways slots, so live evictions begin before
	// every slot is used. Measured with uniform keys, all live: the first
	// at 70% of slots, 0.04% of keys lost at 81%, 0.2% at 86%, 2% at 95%
	// (1e6 keys in 1<<20 slots keep 97.9%). Size Capacity at 1.25 times
	// the number of keys expected to be limited at once; Pressure warns
	// early, at the first live eviction.
	Capacity int
	// Shards is the number of lock shards, rounded up to a power of two
	// and down to the bucket count. Default DefaultShards (256), enough
	// that concurrent callers rarely meet on a lock.
	Shards int
	// OnPressure, if set, is called when the table evicts an entry that
	// still held limiting state, at most once per second of the injected
	// clock. It runs synchronously on the goroutine of the Allow or Charge
	// that evicted, after the shard lock is released, so it may call Stats;
	// it must return quickly. Use it to log a warning.
	OnPressure func()
	// Now is the clock Stats uses to judge Pressure; it must agree with
	// the times passed to Allow and Charge. Default time.Now.
	Now func() time.Time
}

// Table holds GCRA state for up to Capacity keys: for each key only its
// theoretical arrival time (TAT), 8 bytes, beside the 8-byte key. No strings,
// no pointers, one allocation at construction, none afterwards.
//
// The table is set-associative: a key hashes (with a random per-table seed)
// to two buckets of Ways slots (two cache lines each) under one lock, which
// a lookup scans. A new key takes an empty slot, else a slot whose entry has
// expired (TAT <= now: an expired key and an absent key behave the same, so
// nothing is lost), else it evicts the entry with the smallest TAT, the one
// nearest to expiry, and counts a live eviction (see TableStats and
// TableOptions.OnPressure). New keys go to the bucket with more free slots,
// which keeps buckets balanced (see TableOptions.Capacity for the measured
// occupancy). Rejected requests never insert a key, so a flood of
// over-limit requests cannot churn the table.
//
// Key 0 is reserved for empty slots and is silently mapped to another fixed
// key; keys from KeyBuilder are never 0.
//
// A Table is safe for concurrent use. Buckets are grouped into lock shards,
// each a sync.Mutex on its own cache line; Allow, Peek and Charge take one
// shard lock for a few nanoseconds and do not allocate. One Table can serve
// every rule at once when keys carry the rule in their namespace.
type Table struct {
	geo      geometry
	buckets  []tableBucket
	shards   []tableShard
	pressure pressure
	now      func() time.Time
}

// absentTAT stands for the TAT of a key the table does not hold: any value
// at or before now behaves the same.
const absentTAT = math.MinInt64

type tableSlot struct {
	key uint64 // 0 marks an empty slot
	tat int64  // theoretical arrival time, Unix ns
}

type tableBucket [Ways]tableSlot

type tableShard struct {
	mu sync.Mutex
	shardCounters
	_ [64 - 8 - 32]byte // keep each shard on its own cache line
}

// NewTable allocates a table; see TableOptions for the defaults. It fails
// on a negative or too large Capacity or Shards.
func NewTable(o TableOptions) (*Table, error) {
	geo, err := newGeometry(o.Capacity, o.Shards)
	if err != nil {
		return nil, fmt.Errorf("limiter: new table: %w", err)
	}
	t := &Table{
		geo:     geo,
		buckets: make([]tableBucket, geo.buckets),
		shards:  make([]tableShard, geo.shards),
		now:     o.Now,
	}
	if t.now == nil {
		t.now = time.Now
	}
	t.pressure.init(o.OnPressure)
	return t, nil
}

// Allow reports whether a request of cost cells for key conforms to p at
// now (Unix nanoseconds) and, if it does, charges it. A cost below 1 counts
// as 1. When the request does not conform, nothing is charged and retryAfter
// is the exact wait until the same request would conform (see Params). A
// cost above p.Burst() can never conform: Allow returns false with
// retryAfter = Burst/Rate, so the client backs off instead of retrying at
// once. The zero Params always conforms. Allow does not allocate.
func (t *Table) Allow(key uint64, p Params, cost int64, now int64) (ok bool, retryAfter time.Duration) {
	if p.interval == 0 {
		return true, 0
	}
	if cost < 1 {
		cost = 1
	}
	if cost > int64(p.burst) {
		return false, time.Duration(p.limit)
	}
	sh, slot, free := t.lock(key, now)
	tat := int64(absentTAT)
	if slot != nil {
		tat = slot.tat
	}
	newTAT, ok, retry := p.conform(tat, cost, now)
	if !ok {
		sh.mu.Unlock()
		return false, time.Duration(retry)
	}
	if slot != nil {
		slot.tat = newTAT
		sh.mu.Unlock()
		return true, 0
	}
	live := insert(free, fixKey(key), newTAT, now, &sh.shardCounters)
	sh.mu.Unlock()
	if live {
		t.pressure.note(now)
	}
	return true, 0
}

// Peek reports whether a cost-1 request for key would conform to p at now,
// and the wait until it would if not, without charging anything or
// inserting the key. It does not allocate.
func (t *Table) Peek(key uint64, p Params, now int64) (ok bool, retryAfter time.Duration) {
	if p.interval == 0 {
		return true, 0
	}
	sh, slot, _ := t.lock(key, now)
	tat := int64(absentTAT)
	if slot != nil {
		tat = slot.tat
	}
	sh.mu.Unlock()
	_, ok, retry := p.conform(tat, 1, now)
	return ok, time.Duration(retry)
}

// Charge adds cost cells to key unconditionally: response-based counting,
// such as charging a client for each 4xx answer or for a cost the origin
// reported after the fact. The key's TAT is capped at
// now + Burst*T - T + p.MaxLockout(), so however large the cost, a cost-1
// request conforms again within MaxLockout (by default Burst/Rate). A cost
// below 1, or the zero Params, does nothing. Charge does not allocate.
func (t *Table) Charge(key uint64, p Params, cost int64, now int64) {
	if p.interval == 0 || cost < 1 {
		return
	}
	sh, slot, free := t.lock(key, now)
	if slot != nil {
		slot.tat = p.charge(slot.tat, cost, now)
		sh.mu.Unlock()
		return
	}
	live := insert(free, fixKey(key), p.charge(absentTAT, cost, now), now, &sh.shardCounters)
	sh.mu.Unlock()
	if live {
		t.pressure.note(now)
	}
}

// Forget removes key from the table, as if it had never been seen: an
// operator's "unblock". It reports whether the key held unexpired state at
// now.
func (t *Table) Forget(key uint64, now int64) bool {
	sh, slot, _ := t.lock(key, now)
	defer sh.mu.Unlock()
	if slot == nil {
		return false
	}
	live := slot.tat > now
	*slot = tableSlot{}
	sh.used--
	return live
}

// lock locks key's shard and returns it with the slot holding key, or with
// nil and the slot a new key should take (see candidate). The caller
// unlocks sh.
func (t *Table) lock(key uint64, now int64) (sh *tableShard, slot, free *tableSlot) {
	key = fixKey(key)
	b1, b2 := t.geo.pair(key)
	sh = &t.shards[b1&t.geo.shardMask]
	sh.mu.Lock()
	var c candidate
	if slot = t.buckets[b1].find(key, now, &c); slot != nil {
		return sh, slot, nil
	}
	if b2 != b1 {
		if slot = t.buckets[b2].find(key, now, &c); slot != nil {
			return sh, slot, nil
		}
	}
	return sh, nil, c.slot()
}

// candidate is the best slot found so far for a new key: a free slot
// (empty or expired, whose reuse loses nothing) in the bucket with the most
// free slots, which keeps the two buckets of every key balanced; else, if no
// slot is free, the live slot with the smallest TAT.
type candidate struct {
	free   *tableSlot
	nfree  int
	victim *tableSlot
	tat    int64 // of victim
}

func (c *candidate) slot() *tableSlot {
	if c.free != nil {
		return c.free
	}
	return c.victim
}

// find returns the slot holding key, or nil after updating c with the best
// slot of b for a new key.
func (b *tableBucket) find(key uint64, now int64, c *candidate) *tableSlot {
	var free *tableSlot
	nfree := 0
	for i := range b {
		s := &b[i]
		switch {
		case s.key == key:
			return s
		case s.key == 0 || s.tat <= now:
			if free == nil || (free.key != 0 && s.key == 0) {
				free = s // prefer empty over expired within a bucket
			}
			nfree++
		case c.victim == nil || s.tat < c.tat:
			c.victim, c.tat = s, s.tat
		}
	}
	if nfree > c.nfree {
		c.free, c.nfree = free, nfree
	}
	return nil
}

// insert puts key into slot s (chosen by lock), updates the shard counters
// and reports whether a live entry was evicted.
func insert(s *tableSlot, key uint64, tat, now int64, c *shardCounters) (live bool) {
	switch {
	case s.key == 0:
		c.used++
	case s.tat <= now:
		c.reclaims++
	default:
		c.evictions++
		c.live++
		live = true
	}
	s.key, s.tat = key, tat
	return live
}

// Stats returns the table's size and health counters. It takes each shard
// lock briefly (O(shards)); Pressure is judged against TableOptions.Now.
func (t *Table) Stats() TableStats {
	st := TableStats{Capacity: len(t.buckets) * Ways}
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		st.Len += sh.used
		st.Evictions += sh.evictions
		st.LiveEvictions += sh.live
		st.Reclaims += sh.reclaims
		sh.mu.Unlock()
	}
	st.Pressure = t.pressure.active(t.now().UnixNano())
	st.LastLiveEviction = t.pressure.lastTime()
	return st
}

// Live counts the keys whose state has not expired at now: the keys that
// are currently limited to less than a full burst. It scans every slot
// (O(Capacity), a few milliseconds for a million slots), so call it for
// diagnostics, not per request.
func (t *Table) Live(now int64) int {
	n := 0
	for bi := range t.buckets {
		sh := &t.shards[uint64(bi)&t.geo.shardMask]
		b := &t.buckets[bi]
		sh.mu.Lock()
		for i := range b {
			if b[i].key != 0 && b[i].tat > now {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}
