package cache

import (
	"hash/maphash"
	"slices"
	"sort"
	"strings"
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
// (exact paths and prefixes), ignored, and learned.
type params struct {
	exact    map[string]paramSet
	prefixes []prefixParams // longest first
	ignore   nameMatcher
	learned  *learnTable // nil when learning is off
}

func newParams(o *Options, seed maphash.Seed) *params {
	p := &params{exact: make(map[string]paramSet), ignore: newNameMatcher(o.IgnoreParams)}
	for path, names := range o.KnownParams {
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
	if o.LearnParams && o.LearnCapacity > 0 {
		p.learned = newLearnTable(o.LearnCapacity, o.LearnAfter, seed, o.Now())
	}
	return p
}

// paramFilter decides which parameters a key keeps on one path. It is
// filled per request and does not allocate.
type paramFilter struct {
	cfg     paramSet
	learned []string // immutable snapshot
	busters []string // immutable snapshot
	ignore  *nameMatcher
}

// keeps reports whether the key keeps the parameter name.
func (f *paramFilter) keeps(name string) bool {
	return f.cfg.has(name) || slices.Contains(f.learned, name)
}

// irrelevant reports whether a parameter the key drops is known not to
// change the page: ignored, or proven a cache-buster on the path.
func (f *paramFilter) irrelevant(name string) bool {
	return f.ignore != nil && f.ignore.matchName(name) || slices.Contains(f.busters, name)
}

// configured returns the configured parameters of path.
func (p *params) configured(path string) paramSet {
	if set, ok := p.exact[path]; ok {
		return set
	}
	for _, pp := range p.prefixes {
		if strings.HasPrefix(path, pp.prefix) {
			return pp.set
		}
	}
	return paramSet{}
}

// filterFor fills f with the parameters path is known to use.
func (p *params) filterFor(path string, f *paramFilter) {
	f.cfg = p.configured(path)
	f.ignore = &p.ignore
	if p.learned != nil {
		f.learned, f.busters = p.learned.snapshot(path)
	}
}

// UnknownParams reports whether rawQuery carries a parameter that path is
// neither configured (KnownParams) nor learned to use, other than the
// IgnoreParams: the parameters a key drops from NormaliseIn up. Proven
// cache-busters count as unknown. The policy's rules with query: {unknown:
// true} ask it, to single out cache-busting queries. It does not allocate;
// it is safe for concurrent use.
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
		if !f.keeps(name) && !f.ignore.matchName(name) {
			return true
		}
	}
	return false
}
