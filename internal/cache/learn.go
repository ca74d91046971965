package cache

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds and thresholds of the learned-parameters table.
const (
	learnShards      = 16
	maxLearnSlots    = 16  // names tracked per path group
	maxLearnPath     = 256 // longer paths are not learned
	maxLearnName     = 64  // longer names are not learned
	maxObserveParams = 16  // distinct names of one query looked at
	learnSamples     = 4   // recent fetches remembered per name
	learnEvictSample = 8   // groups sampled for eviction
	// compareWindow is how far apart (seconds) two fetches may be and
	// still be compared: further apart, the page may have been edited.
	compareWindow = 60
	// A name is a cache-buster when different values of it gave identical
	// bodies at least bustMinSame times and more than bustRatio times as
	// often as they gave different bodies. Counts are halved once their
	// sum reaches countHalve, so that old evidence fades.
	bustMinSame = 2
	bustRatio   = 4
	countHalve  = 64
)

// LearnGroupBytes is the most memory one path group of the learning table
// takes (its path, 16 names of 64 bytes with their evidence, the map slot),
// rounded up; TestLearnGroupBytes measures it. LearnCapacity times this is
// reserved out of Options.MaxBytes.
const LearnGroupBytes = 3584

// Slot states.
const (
	slotYoung  uint8 = iota // seen for less than LearnAfter: dropped
	slotKept                // kept in keys from NormaliseIn up
	slotBuster              // proven a cache-buster: dropped
)

// learnTable holds, per path group, the query parameter names seen in
// normal traffic and the evidence about each: when it was first and last
// seen, and how often different values of it gave identical or different
// bodies. It is sharded; each shard is a map under a lock with a fixed
// capacity. Readers get immutable snapshots of a group's kept and buster
// names.
type learnTable struct {
	seed       maphash.Seed
	perShard   int
	learnAfter uint32       // seconds
	epoch      int64        // Unix nanoseconds
	groups     atomic.Int64 // groups held
	slots      atomic.Int64 // names tracked, in all groups
	kept       atomic.Int64 // names kept, in all groups
	busters    atomic.Int64 // names proven cache-busters, in all groups
	shards     [learnShards]learnShard
}

type learnShard struct {
	mu     sync.RWMutex
	groups map[string]*learnGroup
	tick   uint64 // logical clock for recency
	_      [24]byte
}

// learnGroup is what is known about one path group.
type learnGroup struct {
	slots []nameSlot
	// kept and busters are copy-on-write snapshots: readers keep the
	// slices they were given, writers replace them.
	kept    []string
	busters []string
	touched uint64
}

// nameSlot is the evidence about one parameter name on a group.
type nameSlot struct {
	name        string
	first, last uint32 // seconds since the table's epoch (+1); normal traffic only
	seen        uint8  // sightings, saturating
	same, diff  uint8  // comparisons: identical and different bodies
	state       uint8
	next        uint8 // next sample to overwrite
	samples     [learnSamples]sample
}

// sample is one fetch seen with the name: hashes of its context (exact
// path, Vary variant and the other parameters, cache-busters left out), of
// the name's value, and of the body, and when it was fetched.
type sample struct{ ctx, val, digest, at uint32 }

func newLearnTable(capacity int, learnAfter time.Duration, seed maphash.Seed, now time.Time) *learnTable {
	t := &learnTable{
		seed:       seed,
		perShard:   max(1, (capacity+learnShards-1)/learnShards),
		learnAfter: uint32(learnAfter / time.Second),
		epoch:      now.UnixNano(),
	}
	for i := range t.shards {
		t.shards[i].groups = make(map[string]*learnGroup)
	}
	return t
}

// sec converts Unix nanoseconds to the table's clock: whole seconds since
// its epoch, plus one so that zero means never.
func (t *learnTable) sec(now int64) uint32 {
	d := now - t.epoch
	if d < 0 {
		return 1
	}
	return uint32(min(d/int64(time.Second), 1<<32-2)) + 1
}

func (t *learnTable) shardOf(shape []byte) *learnShard {
	return &t.shards[maphash.Bytes(t.seed, shape)%learnShards]
}

// snapshot returns the kept and buster names of the group of path (nil if
// none). The slices must not be modified. It does not allocate.
func (t *learnTable) snapshot(path string) (kept, busters []string) {
	if len(path) > maxLearnPath {
		return nil, nil
	}
	var buf [maxLearnPath]byte
	shape := appendShape(buf[:0], path)
	sh := t.shardOf(shape)
	sh.mu.RLock()
	if g := sh.groups[string(shape)]; g != nil {
		kept, busters = g.kept, g.busters
	}
	sh.mu.RUnlock()
	return kept, busters
}

// observation is one request answered 2xx below NormaliseIn.
type observation struct {
	path    string // the exact path
	query   string // the raw query
	variant string // the key's Vary suffix, for a fetched body
	// digest is a hash of the body the origin sent; hasDigest is false for
	// hits (nothing new was fetched) and for bodies that were not kept.
	digest    uint64
	hasDigest bool
	now       int64 // Unix nanoseconds
}

// param is one distinct name of a query and the sum of the hashes of its
// name=value parts.
type param struct {
	name string
	val  uint64
	slot int // index in the group's slots, -1 if not tracked
}

// observe records the parameters of o's query on its path group: every name
// that is neither configured (cfg) nor ignored gets a slot, and with a
// digest, each name is compared with its recent fetches in the same
// context. It allocates only for new groups and names.
func (t *learnTable) observe(o *observation, cfg *paramSet, ignore *nameMatcher) {
	if o.query == "" || len(o.path) > maxLearnPath {
		return
	}
	var ps [maxObserveParams]param
	n := 0
	extra := uint64(0) // parts beyond maxObserveParams names: context only
	tracked := 0
	for rest := o.query; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		if part == "" {
			continue
		}
		name, _, _ := strings.Cut(part, "=")
		if ignore.matchName(name) && !cfg.has(name) {
			continue // never matters: neither tracked nor context
		}
		var h uint64
		if o.hasDigest { // contexts and values matter only for comparisons
			h = maphash.String(t.seed, part)
		}
		i := 0
		for i < n && ps[i].name != name {
			i++
		}
		switch {
		case i < n:
			ps[i].val += h
		case n < len(ps):
			ps[n] = param{name: name, val: h, slot: -1}
			n++
			if name != "" && len(name) <= maxLearnName && !cfg.has(name) {
				tracked++
			}
		default:
			extra += h
		}
	}
	if tracked == 0 {
		return
	}
	var buf [maxLearnPath]byte
	shape := appendShape(buf[:0], o.path)
	now := t.sec(o.now)
	sh := t.shardOf(shape)
	if !o.hasDigest && t.fresh(sh, shape, ps[:n], cfg, now) {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	g := sh.groups[string(shape)]
	if g == nil {
		if len(sh.groups) >= t.perShard {
			t.evictLocked(sh)
		}
		g = &learnGroup{}
		sh.groups[string(shape)] = g
		t.groups.Add(1)
	}
	sh.tick++
	g.touched = sh.tick

	// Find the slots of the tracked names, then make the missing ones
	// (which may evict a name, never one of this query's).
	for i := range ps[:n] {
		if p := &ps[i]; p.name != "" && len(p.name) <= maxLearnName && !cfg.has(p.name) {
			p.slot = g.find(p.name)
		}
	}
	for i := range ps[:n] {
		if p := &ps[i]; p.slot < 0 && p.name != "" && len(p.name) <= maxLearnName && !cfg.has(p.name) {
			p.slot = t.addSlot(g, p.name, ps[:n], now)
		}
	}
	// The context of a name: the exact path, the variant and every other
	// parameter that is not a proven cache-buster.
	base := maphash.String(t.seed, o.path) + 3*maphash.String(t.seed, o.variant) + extra
	total := base
	for _, p := range ps[:n] {
		if p.slot < 0 || g.slots[p.slot].state != slotBuster {
			total += p.val
		}
	}
	digest := uint32(o.digest) ^ uint32(o.digest>>32)
	changed := false
	for _, p := range ps[:n] {
		if p.slot < 0 {
			continue
		}
		s := &g.slots[p.slot]
		s.last = now
		if s.seen < 255 {
			s.seen++
		}
		if o.hasDigest {
			ctx := total
			if s.state != slotBuster {
				ctx -= p.val
			}
			s.compare(uint32(ctx)^uint32(ctx>>32), uint32(p.val)^uint32(p.val>>32), digest, now)
		}
		if st := t.judge(s, now); st != s.state {
			t.count(s.state, -1)
			t.count(st, 1)
			s.state = st
			changed = true
		}
	}
	if changed {
		g.publish()
	}
}

// fresh reports, under the read lock, whether o (without a digest) would
// change nothing that matters: every tracked name exists, was already seen
// this second and keeps its state. Hits in normal traffic then cost a read
// lock.
func (t *learnTable) fresh(sh *learnShard, shape []byte, ps []param, cfg *paramSet, now uint32) bool {
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	g := sh.groups[string(shape)]
	if g == nil {
		return false
	}
	for _, p := range ps {
		if p.name == "" || len(p.name) > maxLearnName || cfg.has(p.name) {
			continue
		}
		i := g.find(p.name)
		if i < 0 || g.slots[i].last != now {
			return false
		}
	}
	return true
}

func (g *learnGroup) find(name string) int {
	for i := range g.slots {
		if g.slots[i].name == name {
			return i
		}
	}
	return -1
}

// addSlot adds a slot for name and returns its index, or -1 if the group
// is full of names it will not give up: kept names, and the other names of
// the query being observed. Otherwise, of the names not kept, the one seen
// least often, then least recently, makes way.
func (t *learnTable) addSlot(g *learnGroup, name string, current []param, now uint32) int {
	s := nameSlot{name: strings.Clone(name), first: now, last: now}
	if len(g.slots) < maxLearnSlots {
		g.slots = append(g.slots, s)
		t.slots.Add(1)
		return len(g.slots) - 1
	}
	victim := -1
	for i := range g.slots {
		v := &g.slots[i]
		if v.state == slotKept || inParams(current, i) {
			continue
		}
		if victim < 0 || v.seen < g.slots[victim].seen || v.seen == g.slots[victim].seen && v.last < g.slots[victim].last {
			victim = i
		}
	}
	if victim < 0 {
		return -1
	}
	if g.slots[victim].state == slotBuster {
		t.busters.Add(-1)
		defer g.publish()
	}
	g.slots[victim] = s
	return victim
}

func inParams(ps []param, slot int) bool {
	for _, p := range ps {
		if p.slot == slot {
			return true
		}
	}
	return false
}

// compare weighs a fetch of the name against the most recent one in the
// same context within compareWindow: a different value with an identical
// body counts as same, with a different body as diff. The fetch is then
// remembered.
func (s *nameSlot) compare(ctx, val, digest, now uint32) {
	best := -1
	for i := range s.samples {
		x := &s.samples[i]
		if x.at == 0 || x.ctx != ctx || now-x.at > compareWindow || x.at > now {
			continue
		}
		if best < 0 || x.at >= s.samples[best].at {
			best = i
		}
	}
	if best >= 0 && s.samples[best].val != val {
		if s.samples[best].digest == digest {
			s.same++
		} else {
			s.diff++
		}
		if int(s.same)+int(s.diff) >= countHalve {
			s.same /= 2
			s.diff /= 2
		}
	}
	s.samples[s.next] = sample{ctx: ctx, val: val, digest: digest, at: now}
	s.next = (s.next + 1) % learnSamples
}

// judge decides a name's state from its evidence.
func (t *learnTable) judge(s *nameSlot, now uint32) uint8 {
	switch {
	case s.same >= bustMinSame && int(s.same) > bustRatio*int(s.diff):
		return slotBuster
	case s.last >= s.first && s.last-s.first >= t.learnAfter:
		return slotKept
	default:
		return slotYoung
	}
}

func (t *learnTable) count(state uint8, d int64) {
	switch state {
	case slotKept:
		t.kept.Add(d)
	case slotBuster:
		t.busters.Add(d)
	}
}

// publish replaces the group's snapshots after a state changed.
func (g *learnGroup) publish() {
	var kept, busters []string
	for i := range g.slots {
		switch g.slots[i].state {
		case slotKept:
			kept = append(kept, g.slots[i].name)
		case slotBuster:
			busters = append(busters, g.slots[i].name)
		}
	}
	g.kept, g.busters = kept, busters
}

// evictLocked drops, of a few sampled groups (Go's map iteration order is
// the sample), the one with the fewest kept names, then the least recently
// seen.
func (t *learnTable) evictLocked(sh *learnShard) {
	var victim string
	var vg *learnGroup
	n := 0
	for p, g := range sh.groups {
		if vg == nil || len(g.kept) < len(vg.kept) || len(g.kept) == len(vg.kept) && g.touched < vg.touched {
			victim, vg = p, g
		}
		if n++; n == learnEvictSample {
			break
		}
	}
	if vg == nil {
		return
	}
	for i := range vg.slots {
		t.count(vg.slots[i].state, -1)
	}
	t.slots.Add(-int64(len(vg.slots)))
	delete(sh.groups, victim)
	t.groups.Add(-1)
}

// appendShape appends the group of path to b: the path with every segment
// that looks like an identifier replaced by "#" (see idSegment), so that
// /news/123 and /news/124?page=2 teach each other. It does not allocate
// when b has room.
func appendShape(b []byte, path string) []byte {
	start := 0
	for i := 0; i <= len(path); i++ {
		if i < len(path) && path[i] != '/' {
			continue
		}
		if seg := path[start:i]; idSegment(seg) {
			b = append(b, '#')
		} else {
			b = append(b, seg...)
		}
		if i < len(path) {
			b = append(b, '/')
		}
		start = i + 1
	}
	return b
}

// idSegment reports whether a path segment looks like an identifier rather
// than a name: all digits ("123", "2026"); a hash or UUID (8 or more hex
// digits and dashes with at least one digit); or a slug that starts or ends
// with a number of two or more digits ("123-budget-vote",
// "budget-vote-123", "2026-11-25"). A short extension (".html") is ignored.
// Words with a digit or two ("covid19", "h2", "v1") stay names.
func idSegment(s string) bool {
	if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i <= 6 {
		s = s[:i]
	}
	if s == "" {
		return false
	}
	digits, hex := 0, true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			digits++
		case 'a' <= c && c <= 'f', 'A' <= c && c <= 'F', c == '-':
		default:
			hex = false
		}
	}
	if digits == len(s) || hex && digits > 0 && len(s) >= 8 {
		return true
	}
	lead := 0
	for lead < len(s) && '0' <= s[lead] && s[lead] <= '9' {
		lead++
	}
	if lead >= 2 && (s[lead] == '-' || s[lead] == '_') {
		return true
	}
	trail := 0
	for trail < len(s) && '0' <= s[len(s)-1-trail] && s[len(s)-1-trail] <= '9' {
		trail++
	}
	return trail >= 2 && (s[len(s)-1-trail] == '-' || s[len(s)-1-trail] == '_')
}
