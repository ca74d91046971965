package iplist

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// DefaultBlocksCapacity is the default number of entries of a Blocks.
	DefaultBlocksCapacity = 1 << 20
	// DefaultBlocksShards is the default number of lock shards of a Blocks.
	DefaultBlocksShards = 64
	// MaxReasonLength is the longest reason kept with a block, in bytes;
	// longer reasons are cut.
	MaxReasonLength = 256
	// MaxBlockTTL is the longest block Add accepts; longer TTLs are cut to
	// it.
	MaxBlockTTL = 100 * 365 * 24 * time.Hour
)

// ErrFull is returned, wrapped, by Blocks.Add when the set is full and the
// new block would expire no later than every block it holds: the new block
// is then the one that expires soonest, so it is the one left out.
var ErrFull = errors.New("deny set full")

// BlocksOptions configures a Blocks. Zero fields take the defaults.
type BlocksOptions struct {
	// Capacity is the most entries the set holds; default 1<<20. When it
	// is full, Add evicts the entry that expires soonest (see Add). Each
	// entry costs about 200 bytes, allocated as blocks are added.
	Capacity int
	// Shards is the number of lock shards of the lookup maps, rounded up
	// to a power of two; default 64.
	Shards int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Block is one entry of the deny set.
type Block struct {
	// Prefix is the blocked network: host bits masked, IPv4-mapped
	// prefixes unmapped; a single address is a /32 or /128.
	Prefix netip.Prefix
	// Reason is a short label saying why (a rule name, "manual", ...).
	Reason string
	// Added is when the block was first added; Expires when it ends.
	Added, Expires time.Time
}

// BlocksStats is a snapshot of a Blocks' size and health, for metrics.
type BlocksStats struct {
	// Len is the number of entries held, including expired ones that
	// Sweep has not dropped yet.
	Len int
	// Capacity is the most entries the set holds.
	Capacity int
	// Evictions counts unexpired blocks dropped to make room for a new
	// one: the deny set is too small for the attack.
	Evictions uint64
	// Refused counts blocks Add turned away with ErrFull.
	Refused uint64
	// Expired counts entries dropped because they expired (by Sweep, or
	// by Add reusing their room).
	Expired uint64
}

// Blocks is the dynamic deny set: prefixes blocked until a time, each with a
// reason. Contains runs at accept for every connection, so lookups are cheap:
// entries live in sharded maps, one per prefix length, keyed by the masked
// address (uint32 for IPv4); a lookup masks the address to each prefix
// length in use (a bitmask per family, read atomically), longest first, and
// probes that length's map in one shard under a read lock. The usual case,
// only single addresses blocked, is one probe; each further length in use
// adds one. The clock is read only when an entry matches. Lookups do not
// allocate.
//
// The set holds at most Capacity entries. Expired entries stop matching at
// once and are dropped by Sweep (call it every few seconds) or when their
// room is needed. When the set is full of unexpired entries, Add evicts the
// one that expires soonest, and counts it. Entries are ordered by expiry in
// a heap, so Add, Remove and Sweep cost O(log n).
//
// A Blocks is safe for concurrent use: writers (Add, Remove, Sweep)
// serialise on one mutex, readers (Contains, Lookup) take only shard read
// locks and never wait for a writer other than on their own shard.
type Blocks struct {
	now       func() time.Time
	capacity  int
	shards    []blockShard
	shardMask uint64

	// lens4 has bit L set while some IPv4 entry has length L (0..32);
	// lens6 word i bit j while some IPv6 entry has length 64*i+j.
	lens4 atomic.Uint64
	lens6 [3]atomic.Uint64
	// version changes whenever an entry is added, extended or removed.
	version atomic.Uint64

	mu        sync.Mutex // serialises writers; guards everything below
	heap      expiryHeap
	count4    [33]int
	count6    [129]int
	evictions uint64
	refused   uint64
	expired   uint64
}

// blockShard holds, for each prefix length, a map from the masked address
// to the entry: uint32 keys for IPv4 (the runtime's fast 32-bit map path),
// 16-byte keys for IPv6. Maps are made on first use and dropped when empty.
// A shard is over a kilobyte, so shard locks do not share cache lines.
type blockShard struct {
	mu sync.RWMutex
	v4 [33]map[uint32]blockVal
	v6 [129]map[u128]blockVal
}

// u128 is an IPv6 address as two big-endian words.
type u128 struct{ hi, lo uint64 }

func addr6(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func addr4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// mask4 keeps the top l bits of x.
func mask4(x uint32, l int) uint32 {
	if l == 0 {
		return 0
	}
	return x &^ (^uint32(0) >> l)
}

// mask6 keeps the top l bits of x.
func mask6(x u128, l int) u128 {
	switch {
	case l == 0:
		return u128{}
	case l < 64:
		return u128{x.hi &^ (^uint64(0) >> l), 0}
	case l == 64:
		return u128{x.hi, 0}
	case l < 128:
		return u128{x.hi, x.lo &^ (^uint64(0) >> (l - 64))}
	}
	return x
}

func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

// blockVal is a map value: the expiry beside the pointer, so that Contains
// reads it without following the pointer.
type blockVal struct {
	expires int64
	e       *blockEntry
}

// blockEntry is one block. Its fields other than idx never change once it
// is in a map, so readers may use it without a lock; idx belongs to the
// heap and is written under Blocks.mu.
type blockEntry struct {
	prefix  netip.Prefix
	reason  string
	added   int64
	expires int64 // equal to blockVal.expires, for the heap
	idx     int   // index in the heap
}

// NewBlocks validates o and returns an empty deny set.
func NewBlocks(o BlocksOptions) (*Blocks, error) {
	if o.Capacity < 0 {
		return nil, fmt.Errorf("iplist: new blocks: capacity %d is negative (0 means %d)", o.Capacity, DefaultBlocksCapacity)
	}
	if o.Shards < 0 || o.Shards > 1<<16 {
		return nil, fmt.Errorf("iplist: new blocks: shards %d out of range [0, 65536] (0 means %d)", o.Shards, DefaultBlocksShards)
	}
	if o.Capacity == 0 {
		o.Capacity = DefaultBlocksCapacity
	}
	if o.Shards == 0 {
		o.Shards = DefaultBlocksShards
	}
	ns := 1
	for ns < o.Shards {
		ns <<= 1
	}
	b := &Blocks{
		now:       o.Now,
		capacity:  o.Capacity,
		shards:    make([]blockShard, ns),
		shardMask: uint64(ns - 1),
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b, nil
}

func (b *Blocks) shard4(k uint32, l int) *blockShard {
	return &b.shards[mix(uint64(k)<<8|uint64(l))&b.shardMask]
}

func (b *Blocks) shard6(k u128, l int) *blockShard {
	return &b.shards[mix(k.hi*0x9e3779b97f4a7c15^k.lo+uint64(l))&b.shardMask]
}

// get returns the entry for normalised p; the caller holds b.mu (writers
// hold it, so reading needs no shard lock) or the shard's lock.
func (b *Blocks) get(p netip.Prefix) (blockVal, bool) {
	l := p.Bits()
	if p.Addr().Is4() {
		k := addr4(p.Addr())
		v, ok := b.shard4(k, l).v4[l][k]
		return v, ok
	}
	k := addr6(p.Addr())
	v, ok := b.shard6(k, l).v6[l][k]
	return v, ok
}

// set stores (or, with v.e == nil, deletes) the entry for normalised p
// under its shard's write lock; the caller holds b.mu.
func (b *Blocks) set(p netip.Prefix, v blockVal) {
	b.version.Add(1)
	l := p.Bits()
	if p.Addr().Is4() {
		k := addr4(p.Addr())
		sh := b.shard4(k, l)
		sh.mu.Lock()
		switch {
		case v.e == nil:
			delete(sh.v4[l], k)
			if len(sh.v4[l]) == 0 {
				sh.v4[l] = nil
			}
		case sh.v4[l] == nil:
			sh.v4[l] = map[uint32]blockVal{k: v}
		default:
			sh.v4[l][k] = v
		}
		sh.mu.Unlock()
		return
	}
	k := addr6(p.Addr())
	sh := b.shard6(k, l)
	sh.mu.Lock()
	switch {
	case v.e == nil:
		delete(sh.v6[l], k)
		if len(sh.v6[l]) == 0 {
			sh.v6[l] = nil
		}
	case sh.v6[l] == nil:
		sh.v6[l] = map[u128]blockVal{k: v}
	default:
		sh.v6[l][k] = v
	}
	sh.mu.Unlock()
}

// Add blocks prefix p for ttl from now, for reason. p is normalised as
// ParsePrefix does. If p is already blocked, the block is extended to the
// later of its expiry and now+ttl (taking the new reason if it extends), and
// keeps its Added time. When the set is full, an expired entry makes room
// if there is one; else the entry that expires soonest is evicted and
// counted, unless the new block would expire no later than it, in which
// case Add returns an error wrapping ErrFull. An invalid prefix or a ttl
// <= 0 is an error. Add returns the block as it now stands.
func (b *Blocks) Add(p netip.Prefix, ttl time.Duration, reason string) (Block, error) {
	np, ok := normalise(p)
	if !ok {
		return Block{}, fmt.Errorf("iplist: block: %w %v", ErrInvalidPrefix, p)
	}
	p = np
	if ttl <= 0 {
		return Block{}, fmt.Errorf("iplist: block %v: ttl %v must be positive", p, ttl)
	}
	ttl = min(ttl, MaxBlockTTL)
	if len(reason) > MaxReasonLength {
		reason = reason[:MaxReasonLength]
	}
	now := b.now().UnixNano()
	expires := now + int64(ttl)

	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.get(p); ok {
		e := v.e
		if expires <= e.expires {
			return e.block(), nil
		}
		// Entries are immutable once published, so that readers need no
		// lock to read them: an extension publishes a new entry in the
		// old one's place in the map and the heap.
		ne := &blockEntry{prefix: p, reason: reason, added: e.added, expires: expires, idx: e.idx}
		if e.expires <= now { // expired but not yet swept: a new block
			ne.added = now
		}
		b.heap[ne.idx] = ne
		b.set(p, blockVal{expires: expires, e: ne})
		heap.Fix(&b.heap, ne.idx)
		return ne.block(), nil
	}
	if len(b.heap) >= b.capacity {
		first := b.heap[0]
		switch {
		case first.expires <= now:
			b.expired++
		case expires <= first.expires:
			b.refused++
			return Block{}, fmt.Errorf("iplist: block %v: %w (%d entries, none expiring after this one)", p, ErrFull, len(b.heap))
		default:
			b.evictions++
		}
		b.removeLocked(first)
	}
	e := &blockEntry{prefix: p, reason: reason, added: now, expires: expires}
	b.set(p, blockVal{expires: expires, e: e})
	heap.Push(&b.heap, e)
	b.countLocked(p, +1)
	return e.block(), nil
}

// Remove lifts the block on exactly p (normalised as ParsePrefix does;
// narrower or wider blocks are left alone) and reports whether p was
// blocked at the time.
func (b *Blocks) Remove(p netip.Prefix) bool {
	p, ok := normalise(p)
	if !ok {
		return false
	}
	now := b.now().UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.get(p)
	if !ok {
		return false
	}
	b.removeLocked(v.e)
	return v.expires > now
}

// removeLocked drops e from its map, the heap and the length counts.
func (b *Blocks) removeLocked(e *blockEntry) {
	b.set(e.prefix, blockVal{})
	heap.Remove(&b.heap, e.idx)
	b.countLocked(e.prefix, -1)
}

// countLocked keeps the per-length counts and the length bitmasks.
func (b *Blocks) countLocked(p netip.Prefix, delta int) {
	l := p.Bits()
	if p.Addr().Is4() {
		b.count4[l] += delta
		if b.count4[l] == 0 {
			b.lens4.And(^(uint64(1) << l))
		} else if delta > 0 && b.count4[l] == 1 {
			b.lens4.Or(uint64(1) << l)
		}
		return
	}
	w, bit := l/64, uint64(1)<<(l%64)
	b.count6[l] += delta
	if b.count6[l] == 0 {
		b.lens6[w].And(^bit)
	} else if delta > 0 && b.count6[l] == 1 {
		b.lens6[w].Or(bit)
	}
}

// Contains reports whether ip is in an unexpired block. IPv4-mapped IPv6
// addresses are looked up as IPv4; the invalid Addr is never blocked. It
// takes one shard read lock per prefix length in use and does not allocate.
func (b *Blocks) Contains(ip netip.Addr) bool {
	_, ok := b.lookup(ip)
	return ok
}

// Lookup returns the unexpired block that matches ip with the longest
// prefix, if any.
func (b *Blocks) Lookup(ip netip.Addr) (Block, bool) {
	v, ok := b.lookup(ip)
	if !ok {
		return Block{}, false
	}
	return v.e.block(), true
}

// lookup finds the longest unexpired match for ip. It reads the clock only
// when some entry matches, so the common case, an address that is not
// blocked, costs one map probe per prefix length in use and no clock read.
func (b *Blocks) lookup(ip netip.Addr) (blockVal, bool) {
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	var now int64
	clock := false
	if ip.Is4() {
		m := b.lens4.Load()
		if m == 0 {
			return blockVal{}, false
		}
		x := addr4(ip)
		for m != 0 {
			l := 63 - bits.LeadingZeros64(m)
			m &^= 1 << l
			k := mask4(x, l)
			sh := b.shard4(k, l)
			sh.mu.RLock()
			v, ok := sh.v4[l][k]
			sh.mu.RUnlock()
			if !ok {
				continue
			}
			if !clock {
				now, clock = b.now().UnixNano(), true
			}
			if v.expires > now {
				return v, true
			}
		}
		return blockVal{}, false
	}
	if !ip.Is6() {
		return blockVal{}, false
	}
	x := addr6(ip)
	for w := 2; w >= 0; w-- {
		m := b.lens6[w].Load()
		for m != 0 {
			j := 63 - bits.LeadingZeros64(m)
			m &^= 1 << j
			l := 64*w + j
			k := mask6(x, l)
			sh := b.shard6(k, l)
			sh.mu.RLock()
			v, ok := sh.v6[l][k]
			sh.mu.RUnlock()
			if !ok {
				continue
			}
			if !clock {
				now, clock = b.now().UnixNano(), true
			}
			if v.expires > now {
				return v, true
			}
		}
	}
	return blockVal{}, false
}

// List returns the unexpired blocks, sorted by prefix (IPv4 first, then by
// address, wider first).
func (b *Blocks) List() []Block {
	now := b.now().UnixNano()
	b.mu.Lock()
	out := make([]Block, 0, len(b.heap))
	for _, e := range b.heap {
		if e.expires > now {
			out = append(out, e.block())
		}
	}
	b.mu.Unlock()
	slices.SortFunc(out, func(x, y Block) int {
		if c := x.Prefix.Addr().Compare(y.Prefix.Addr()); c != 0 {
			return c
		}
		return x.Prefix.Bits() - y.Prefix.Bits()
	})
	return out
}

// Sweep drops every expired entry and returns how many it dropped. Expired
// entries already do not match; sweeping frees their memory and room. Call
// it every few seconds; it costs O(log n) per dropped entry.
func (b *Blocks) Sweep() int {
	now := b.now().UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for len(b.heap) > 0 && b.heap[0].expires <= now {
		b.removeLocked(b.heap[0])
		n++
	}
	b.expired += uint64(n)
	return n
}

// Version changes whenever a block is added, extended, removed, swept or
// evicted: a reader that copies the set (List) can tell when to copy again.
func (b *Blocks) Version() uint64 { return b.version.Load() }

// Len returns the number of entries held, including expired entries not
// yet swept.
func (b *Blocks) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.heap)
}

// Stats returns the set's size and counters.
func (b *Blocks) Stats() BlocksStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BlocksStats{
		Len:       len(b.heap),
		Capacity:  b.capacity,
		Evictions: b.evictions,
		Refused:   b.refused,
		Expired:   b.expired,
	}
}

func (e *blockEntry) block() Block {
	return Block{Prefix: e.prefix, Reason: e.reason, Added: time.Unix(0, e.added), Expires: time.Unix(0, e.expires)}
}

// expiryHeap is a min-heap of entries by expiry (container/heap).
type expiryHeap []*blockEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires < h[j].expires }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*blockEntry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}
