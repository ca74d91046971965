package limiter

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Escalator defaults; see EscalatorOptions.
const (
	DefaultEscalatorCapacity = 1 << 18
	DefaultStrikes           = 10
	DefaultStrikeWindow      = 10 * time.Second
	DefaultBaseTTL           = time.Minute
	DefaultMaxTTL            = time.Hour
	DefaultForget            = time.Hour

	// maxEscalatorDuration bounds each duration option so that the
	// arithmetic (level * Forget + now) cannot overflow.
	maxEscalatorDuration = 365 * 24 * time.Hour
	// maxLevel bounds the offence level.
	maxLevel = 62
	// maxStrikes bounds EscalatorOptions.Strikes.
	maxStrikes = 1 << 30
)

// EscalatorOptions configures an Escalator. Zero fields take the documented
// defaults; negative values are errors.
type EscalatorOptions struct {
	// Capacity is the number of keys remembered, at 32 bytes each,
	// rounded up like TableOptions.Capacity. Default 1<<18 (8 MiB): only
	// clients that break a limit are recorded, and the block itself lives
	// in the deny set, so losing an entry under pressure costs only the
	// doubling for that key.
	Capacity int
	// Shards is the number of lock shards; default DefaultShards.
	Shards int
	// Strikes is the number of limit violations within Window that make
	// one offence. Default 10: a client that hits a limit now and then is
	// not blocked; one that keeps hammering after its 429s is.
	Strikes int
	// Window is the time, counted from the first strike of a series, in
	// which Strikes violations make an offence; strikes older than that
	// are forgotten. Default 10s.
	Window time.Duration
	// BaseTTL is the block duration of a first offence. Default 1m.
	BaseTTL time.Duration
	// MaxTTL caps the doubling. Default 1h; must be at least BaseTTL.
	MaxTTL time.Duration
	// Forget is how long a key must stay clear (no offence, measured from
	// the end of its last block) for its level to drop by one; the level
	// decays one step per Forget. Default 1h.
	Forget time.Duration
	// OnPressure is called, at most once per second, when an entry that
	// held an offence level or a running block is evicted; see
	// TableOptions.OnPressure.
	OnPressure func()
	// Now is the clock Stats uses to judge Pressure. Default time.Now.
	Now func() time.Time
}

// Escalator turns repeated limit violations into blocks that grow for
// repeat offenders. The caller reports each violation with Strike; Strikes
// violations of one key within Window make an offence, which blocks the key
// for BaseTTL, and each further offence doubles the block, up to MaxTTL. A
// key's level (number of offences remembered) drops by one for every Forget
// it stays clear after its last block ends, so an address that was abused
// once and then reassigned is eventually treated as new.
//
// State is kept in a bounded set-associative table like Table's (32 bytes a
// key, no pointers, one allocation at construction). An entry is reusable
// without loss once its strikes are older than Window, its block has ended
// and its level has decayed to 0; when a bucket holds none, the entry that
// would become reusable soonest is evicted. Evictions of entries with an
// offence level or a running block are live evictions and raise Pressure.
//
// An Escalator is safe for concurrent use; Strike does not allocate.
type Escalator struct {
	geo      geometry
	buckets  []escBucket
	shards   []escShard
	pressure pressure

	strikes uint32
	window  int64
	base    int64
	max     int64
	forget  int64
	now     func() time.Time
}

type escSlot struct {
	key         uint64 // 0 marks an empty slot
	windowStart int64  // time of the first strike of the current series
	lastOffence int64  // time of the last offence (valid when level > 0)
	strikes     uint32 // strikes in the current series
	level       uint32 // offences remembered at lastOffence
}

type escBucket [Ways]escSlot

type escShard struct {
	mu sync.Mutex
	shardCounters
	_ [64 - 8 - 32]byte
}

// NewEscalator validates o, applies the defaults and allocates the table.
func NewEscalator(o EscalatorOptions) (*Escalator, error) {
	if o.Capacity == 0 {
		o.Capacity = DefaultEscalatorCapacity
	}
	geo, err := newGeometry(o.Capacity, o.Shards)
	if err != nil {
		return nil, fmt.Errorf("limiter: new escalator: %w", err)
	}
	if o.Strikes < 0 || o.Strikes > maxStrikes {
		return nil, fmt.Errorf("limiter: new escalator: strikes %d out of range [0, %d] (0 means %d)", o.Strikes, maxStrikes, DefaultStrikes)
	}
	if o.Strikes == 0 {
		o.Strikes = DefaultStrikes
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"window", &o.Window, DefaultStrikeWindow},
		{"base TTL", &o.BaseTTL, DefaultBaseTTL},
		{"max TTL", &o.MaxTTL, DefaultMaxTTL},
		{"forget", &o.Forget, DefaultForget},
	} {
		if *d.v < 0 || *d.v > maxEscalatorDuration {
			return nil, fmt.Errorf("limiter: new escalator: %s %v out of range [0, %v] (0 means %v)", d.name, *d.v, maxEscalatorDuration, d.def)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.MaxTTL < o.BaseTTL {
		return nil, fmt.Errorf("limiter: new escalator: max TTL %v is below base TTL %v", o.MaxTTL, o.BaseTTL)
	}
	e := &Escalator{
		geo:     geo,
		buckets: make([]escBucket, geo.buckets),
		shards:  make([]escShard, geo.shards),
		strikes: uint32(o.Strikes),
		window:  int64(o.Window),
		base:    int64(o.BaseTTL),
		max:     int64(o.MaxTTL),
		forget:  int64(o.Forget),
		now:     o.Now,
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.pressure.init(o.OnPressure)
	return e, nil
}

// ttl returns the block duration of an offence at level (>= 1):
// BaseTTL * 2^(level-1), capped at MaxTTL.
func (e *Escalator) ttl(level uint32) int64 {
	if level == 0 {
		return 0
	}
	shift := level - 1
	if shift >= 62 || e.base > e.max>>shift {
		return e.max
	}
	return e.base << shift
}

// blockEnd returns when the block of s's last offence ends (or ended).
func (e *Escalator) blockEnd(s *escSlot) int64 {
	return s.lastOffence + e.ttl(s.level)
}

// level returns s's offence level at now after decay: one step per full
// Forget since its last block ended.
func (e *Escalator) level(s *escSlot, now int64) uint32 {
	if s.level == 0 {
		return 0
	}
	end := e.blockEnd(s)
	if now <= end {
		return s.level
	}
	steps := (now - end) / e.forget
	if steps >= int64(s.level) {
		return 0
	}
	return s.level - uint32(steps)
}

// expiry returns the time from which s holds nothing worth keeping: its
// strikes are older than Window, its block is over and its level has decayed
// to 0.
func (e *Escalator) expiry(s *escSlot) int64 {
	at := int64(math.MinInt64)
	if s.strikes > 0 {
		at = s.windowStart + e.window
	}
	if s.level > 0 {
		at = max(at, e.levelExpiry(s))
	}
	return at
}

// levelExpiry returns when s's level (> 0) will have decayed to 0.
func (e *Escalator) levelExpiry(s *escSlot) int64 {
	return e.blockEnd(s) + int64(s.level)*e.forget
}

// Strike records one limit violation by key at now (Unix nanoseconds) and
// returns how long to block it:
//   - 0 while the key has not yet made Strikes violations within Window;
//   - on the violation that completes an offence, BaseTTL doubled for each
//     offence the key is still remembered for, capped at MaxTTL;
//   - while the block of the last offence still runs, the time it has left,
//     without counting the violation (a blocked key cannot offend again).
func (e *Escalator) Strike(key uint64, now int64) (blockFor time.Duration) {
	sh, s, free := e.lock(key, now)
	var live bool
	if s == nil {
		s = free
		live = e.take(s, now, &sh.shardCounters)
		*s = escSlot{key: fixKey(key)}
	}
	if s.level > 0 {
		if end := e.blockEnd(s); now < end {
			sh.mu.Unlock()
			if live {
				e.pressure.note(now)
			}
			return time.Duration(end - now)
		}
	}
	if s.strikes == 0 || now-s.windowStart >= e.window || now < s.windowStart {
		s.windowStart, s.strikes = now, 0
	}
	s.strikes++
	if s.strikes >= e.strikes {
		lvl := e.level(s, now)
		if lvl < maxLevel {
			lvl++
		}
		s.level, s.lastOffence, s.strikes = lvl, now, 0
		blockFor = time.Duration(e.ttl(lvl))
	}
	sh.mu.Unlock()
	if live {
		e.pressure.note(now)
	}
	return blockFor
}

// Status reports key's offence level at now (after decay) and the time left
// on its current block (0 if none), without recording anything.
func (e *Escalator) Status(key uint64, now int64) (level int, remaining time.Duration) {
	sh, s, _ := e.lock(key, now)
	defer sh.mu.Unlock()
	if s == nil {
		return 0, 0
	}
	level = int(e.level(s, now))
	if s.level > 0 {
		if end := e.blockEnd(s); now < end {
			remaining = time.Duration(end - now)
		}
	}
	return level, remaining
}

// Forgive removes key: its strikes, level and block are forgotten (an
// operator's unblock of a false positive). It reports whether the key was
// known.
func (e *Escalator) Forgive(key uint64) bool {
	sh, s, _ := e.lock(key, 0)
	defer sh.mu.Unlock()
	if s == nil {
		return false
	}
	*s = escSlot{}
	sh.used--
	return true
}

// lock locks key's shard and returns it with the slot holding key, or with
// nil and the slot a new key should take (see escCandidate). The caller
// unlocks sh.
func (e *Escalator) lock(key uint64, now int64) (sh *escShard, slot, free *escSlot) {
	key = fixKey(key)
	b1, b2 := e.geo.pair(key)
	sh = &e.shards[b1&e.geo.shardMask]
	sh.mu.Lock()
	var c escCandidate
	if slot = e.find(&e.buckets[b1], key, now, &c); slot != nil {
		return sh, slot, nil
	}
	if b2 != b1 {
		if slot = e.find(&e.buckets[b2], key, now, &c); slot != nil {
			return sh, slot, nil
		}
	}
	return sh, nil, c.slot()
}

// escCandidate is the best slot found so far for a new key, chosen as in
// Table: a free slot in the bucket with the most free slots, else the live
// slot that expires soonest.
type escCandidate struct {
	free   *escSlot
	nfree  int
	victim *escSlot
	exp    int64 // expiry of victim
}

func (c *escCandidate) slot() *escSlot {
	if c.free != nil {
		return c.free
	}
	return c.victim
}

// find returns the slot of b holding key, or nil after updating c with the
// best slot of b for a new key.
func (e *Escalator) find(b *escBucket, key uint64, now int64, c *escCandidate) *escSlot {
	var free *escSlot
	nfree := 0
	for i := range b {
		s := &b[i]
		if s.key == key {
			return s
		}
		if s.key == 0 {
			if free == nil || free.key != 0 {
				free = s
			}
			nfree++
			continue
		}
		exp := e.expiry(s)
		switch {
		case exp <= now:
			if free == nil {
				free = s
			}
			nfree++
		case c.victim == nil || exp < c.exp:
			c.victim, c.exp = s, exp
		}
	}
	if nfree > c.nfree {
		c.free, c.nfree = free, nfree
	}
	return nil
}

// take accounts for reusing slot s at now and reports whether that loses an
// offence level or a running block.
func (e *Escalator) take(s *escSlot, now int64, c *shardCounters) (live bool) {
	switch {
	case s.key == 0:
		c.used++
	case e.expiry(s) <= now:
		c.reclaims++
	default:
		c.evictions++
		if s.level > 0 && e.levelExpiry(s) > now {
			c.live++
			live = true
		}
	}
	return live
}

// Stats returns the escalator's size and health counters; see TableStats.
func (e *Escalator) Stats() TableStats {
	st := TableStats{Capacity: len(e.buckets) * Ways}
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		st.Len += sh.used
		st.Evictions += sh.evictions
		st.LiveEvictions += sh.live
		st.Reclaims += sh.reclaims
		sh.mu.Unlock()
	}
	st.Pressure = e.pressure.active(e.now().UnixNano())
	st.LastLiveEviction = e.pressure.lastTime()
	return st
}
