package cache

import (
	"hash/maphash"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Bounds of the learned-parameters table.
const (
	learnShards      = 16
	learnRing        = 32  // recent name=value hashes remembered per path
	maxLearnedParams = 16  // names learned per path
	maxLearnPath     = 256 // longer paths are not learned
	maxLearnName     = 64  // longer names are not learned
	learnEvictSample = 8
)

// paramSet is the configured parameters of a path.
type paramSet struct {
	all   bool
	names []string // sorted
}

func (s paramSet) has(name string) bool {
	if s.all {
		return true
	}
	_, ok := slices.BinarySearch(s.names, name)
	return ok
}

type prefixParams struct {
	prefix string
	set    paramSet
}

// params knows which query parameters matter on which path: configured
// (exact paths and prefixes) and learned.
type params struct {
	exact    map[string]paramSet
	prefixes []prefixParams // longest first
	learned  *learnTable    // nil when learning is off
}

func newParams(known map[string][]string, learn bool, capacity int, seed maphash.Seed) *params {
	p := &params{exact: make(map[string]paramSet)}
	for path, names := range known {
		set := paramSet{}
		for _, n := range names {
			if n == "*" {
				set.all = true
				continue
			}
			set.names = append(set.names, n)
		}
		slices.Sort(set.names)
		set.names = slices.Compact(set.names)
		if pre, ok := strings.CutSuffix(path, "*"); ok {
			p.prefixes = append(p.prefixes, prefixParams{prefix: pre, set: set})
		} else {
			p.exact[path] = set
		}
	}
	sort.Slice(p.prefixes, func(i, j int) bool { return len(p.prefixes[i].prefix) > len(p.prefixes[j].prefix) })
	if learn && capacity > 0 {
		p.learned = newLearnTable(capacity, seed)
	}
	return p
}

// paramFilter decides which parameters a key keeps on one path.
type paramFilter struct {
	cfg     paramSet
	learned []string // immutable snapshot
}

func (f *paramFilter) keeps(name string) bool {
	return f.cfg.has(name) || slices.Contains(f.learned, name)
}

// filterFor fills f with the parameters path is known to use.
func (p *params) filterFor(path string, f *paramFilter) {
	if set, ok := p.exact[path]; ok {
		f.cfg = set
	} else {
		for _, pp := range p.prefixes {
			if strings.HasPrefix(path, pp.prefix) {
				f.cfg = pp.set
				break
			}
		}
	}
	if p.learned != nil {
		f.learned = p.learned.names(path)
	}
}

// learnTable holds, per path, the parameter names learned and a ring of
// recently seen name=value hashes. It is sharded; each shard is a map under a
// mutex with a fixed capacity, evicting the least recently seen of a few
// sampled paths (Go's map iteration order is the sample).
type learnTable struct {
	seed     maphash.Seed
	perShard int
	size     atomic.Int64
	shards   [learnShards]learnShard
}

type learnShard struct {
	mu    sync.Mutex
	paths map[string]*learnedPath
	tick  uint64 // logical clock for recency
	_     [32]byte
}

type learnedPath struct {
	names   []string // copy-on-write: readers keep old slices
	ring    [learnRing]uint64
	next    int
	touched uint64
}

func newLearnTable(capacity int, seed maphash.Seed) *learnTable {
	t := &learnTable{seed: seed, perShard: max(1, (capacity+learnShards-1)/learnShards)}
	for i := range t.shards {
		t.shards[i].paths = make(map[string]*learnedPath)
	}
	return t
}

func (t *learnTable) shard(path string) *learnShard {
	return &t.shards[maphash.String(t.seed, path)%learnShards]
}

// names returns the learned names of path (nil if none). The slice must not
// be modified.
func (t *learnTable) names(path string) []string {
	sh := t.shard(path)
	sh.mu.Lock()
	var n []string
	if lp := sh.paths[path]; lp != nil {
		n = lp.names
	}
	sh.mu.Unlock()
	return n
}

// observe records the parameters of a query the origin answered 2xx on path.
// A name is learned the second time the same name=value is seen on the path:
// real parameters repeat (many readers open the same article), cache-busting
// values never do.
func (t *learnTable) observe(path, rawQuery string) {
	if rawQuery == "" || len(path) > maxLearnPath {
		return
	}
	sh := t.shard(path)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	lp := sh.paths[path]
	if lp == nil {
		if len(sh.paths) >= t.perShard {
			t.evictLocked(sh)
		}
		lp = &learnedPath{}
		sh.paths[strings.Clone(path)] = lp
		t.size.Add(1)
	}
	sh.tick++
	lp.touched = sh.tick
	for rest := rawQuery; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		name, _, _ := strings.Cut(part, "=")
		if name == "" || len(name) > maxLearnName || slices.Contains(lp.names, name) {
			continue
		}
		h := maphash.String(t.seed, part)
		if !slices.Contains(lp.ring[:], h) {
			lp.ring[lp.next] = h
			lp.next = (lp.next + 1) % learnRing
			continue
		}
		if len(lp.names) >= maxLearnedParams {
			continue
		}
		names := make([]string, len(lp.names), len(lp.names)+1)
		copy(names, lp.names)
		names = append(names, strings.Clone(name))
		lp.names = names
	}
}

func (t *learnTable) evictLocked(sh *learnShard) {
	var victim string
	oldest := ^uint64(0)
	n := 0
	for p, lp := range sh.paths {
		if lp.touched < oldest {
			victim, oldest = p, lp.touched
		}
		if n++; n == learnEvictSample {
			break
		}
	}
	delete(sh.paths, victim)
	t.size.Add(-1)
}

// UnknownParams reports whether rawQuery carries a parameter that path is
// neither configured (KnownParams) nor learned to use. The policy's rules
// with query: {unknown: true} ask it, to single out cache-busting queries.
// It does not allocate; it is safe for concurrent use.
func (c *Cache) UnknownParams(path, rawQuery string) bool {
	if rawQuery == "" {
		return false
	}
	var f paramFilter
	c.params.filterFor(path, &f)
	for rest := rawQuery; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		if part == "" {
			continue
		}
		name, _, _ := strings.Cut(part, "=")
		if !f.keeps(name) {
			return true
		}
	}
	return false
}
