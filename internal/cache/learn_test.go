package cache

import (
	"fmt"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

var shapeTests = []struct {
	name, path, want string
}{
	{"root", "/", "/"},
	{"empty", "", ""},
	{"plain", "/search", "/search"},
	{"numeric id", "/news/123", "/news/#"},
	{"trailing slash", "/news/123/", "/news/#/"},
	{"date", "/2026/11/25/budget-vote", "/#/#/#/budget-vote"},
	{"iso date", "/events/2026-11-25", "/events/#"},
	{"slug with leading number", "/news/123-budget-vote", "/news/#"},
	{"slug with trailing number", "/news/budget-vote-4567.html", "/news/#"},
	{"uuid", "/doc/3f2b8c1e-9d4a-4e2b-8f1a-0c9e7d6b5a43", "/doc/#"},
	{"hash", "/static/app.9f86d081.js", "/static/app.9f86d081.js"},
	{"hex hash segment", "/c/9f86d0818884", "/c/#"},
	{"word with a digit", "/topics/covid19", "/topics/covid19"},
	{"version", "/api/v1/items", "/api/v1/items"},
	{"single digit slug", "/page-2", "/page-2"},
	{"numeric file", "/img/42.jpg", "/img/#"},
	{"hexlike word", "/deadbeef", "/deadbeef"},
	{"double slash", "/a//7", "/a//#"},
}

func TestShape(t *testing.T) {
	for _, tt := range shapeTests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendShape(nil, tt.path)); got != tt.want {
				t.Errorf("shape(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func FuzzShape(f *testing.F) {
	for _, tt := range shapeTests {
		f.Add(tt.path)
	}
	f.Fuzz(func(t *testing.T, path string) {
		s := string(appendShape(nil, path))
		if strings.Count(s, "/") != strings.Count(path, "/") {
			t.Fatalf("shape(%q) = %q: segments differ", path, s)
		}
		if len(s) > len(path) {
			t.Fatalf("shape(%q) = %q: longer", path, s)
		}
		if again := string(appendShape(nil, s)); again != s {
			t.Fatalf("shape not idempotent: %q then %q", s, again)
		}
	})
}

// TestParamsLookupDoesNotAllocate: what a request under normalisation asks
// of the learning table, and a hit in normal traffic tells it, allocate
// nothing once the group exists.
func TestParamsLookupDoesNotAllocate(t *testing.T) {
	c := mustNew(t, Options{LearnParams: true, LearnAfter: -1})
	none := paramSet{}
	o := observation{path: "/news/2026/11/25/budget-vote-123", query: "page=2&q=x", now: time.Now().UnixNano(), digest: 1, hasDigest: true}
	c.params.learned.observe(&o, &none, &c.params.ignore)
	o.hasDigest = false
	var f paramFilter
	if n := testing.AllocsPerRun(100, func() {
		c.params.filterFor("/news/2026/11/26/other-456", &f)
		c.params.learned.observe(&o, &none, &c.params.ignore)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
	if !slices.Contains(f.learned, "page") {
		t.Errorf("learned %q", f.learned)
	}
}

// learnSite is an origin that tells its parameters apart the way real
// sites do: /search depends on q and page; /news/<id> on page; /echo on every
// parameter; / on p; /volatile on nothing but changes on every request.
// Nothing carries cache headers, as most CMS pages.
type learnSite struct {
	hits     atomic.Int64
	volatile atomic.Int64
}

func (s *learnSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	q := r.URL.Query()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch {
	case r.URL.Path == "/search":
		fmt.Fprintf(w, "<h1>Results for %q</h1><p>page %s</p>", q.Get("q"), q.Get("page"))
	case strings.HasPrefix(r.URL.Path, "/news/"):
		fmt.Fprintf(w, "<h1>Article %s</h1><p>page %s</p>", r.URL.Path, q.Get("page"))
	case r.URL.Path == "/echo":
		fmt.Fprintf(w, "echo %s", r.URL.RawQuery)
	case r.URL.Path == "/volatile":
		fmt.Fprintf(w, "now %d", s.volatile.Add(1))
	case r.URL.Path == "/":
		fmt.Fprintf(w, "front page, post %q", q.Get("p"))
	default:
		http.NotFound(w, r)
	}
}

func kept(c *Cache, path string) []string    { k, _ := c.params.learned.snapshot(path); return k }
func busters(c *Cache, path string) []string { _, b := c.params.learned.snapshot(path); return b }

// TestLearnRules drives normal traffic through the cache for three
// simulated minutes and checks what each rule learned.
func TestLearnRules(t *testing.T) {
	clk := newFakeClock()
	var m modeVar
	site := &learnSite{}
	// As the shield configures it: micro-caching and normalised keys from
	// elevated up.
	c := mustNew(t, Options{Mode: m.get, Now: clk.Now, LearnParams: true, ExplicitModes: true,
		MicroCacheIn: verdict.ModeElevated, NormaliseIn: verdict.ModeElevated,
		KnownParams: map[string][]string{"/": {"p"}}})
	h := c.Middleware(site)
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"budget", "tram", "library", "flood", "election"}
	for round := range 36 { // 36 rounds 5 s apart: 3 minutes
		do(h, "GET", fmt.Sprintf("http://e.org/search?q=%s", words[round%len(words)]))
		do(h, "GET", fmt.Sprintf("http://e.org/search?q=unique-%d&page=%d", rng.Uint64(), 1+round%2))
		do(h, "GET", fmt.Sprintf("http://e.org/search?q=tram&cb=%d", rng.Uint64()))
		do(h, "GET", fmt.Sprintf("http://e.org/search?q=tram&cb=%d&_=%d", rng.Uint64(), rng.Uint64()))
		do(h, "GET", fmt.Sprintf("http://e.org/news/%d?page=%d", 100+round%7, 1+round%3))
		do(h, "GET", fmt.Sprintf("http://e.org/news/%d?page=%d&fbclid=%x", 100+round%7, 2+round%3, rng.Uint64()))
		do(h, "GET", fmt.Sprintf("http://e.org/volatile?t=%d", rng.Uint64()))
		do(h, "GET", fmt.Sprintf("http://e.org/?p=%d&ref=%d", round%3, rng.Uint64()))
		clk.Advance(5 * time.Second)
	}
	// The first seconds of an attack, still in normal mode: a new name.
	for range 20 {
		do(h, "GET", fmt.Sprintf("http://e.org/echo?zz=%d", rng.Uint64()))
		do(h, "GET", fmt.Sprintf("http://e.org/search?q=tram&zz=%d", rng.Uint64()))
		clk.Advance(100 * time.Millisecond)
	}

	tests := []struct {
		name, path, param string
		kept, buster      bool
	}{
		{"search term changes the page", "/search", "q", true, false},
		{"cache-buster on search", "/search", "cb", false, true},
		{"jQuery's _ is ignored", "/search", "_", false, false},
		{"page on any article", "/news/999", "page", true, false},
		{"click id is ignored", "/news/100", "fbclid", false, false},
		{"volatile page: no proof either way", "/volatile", "t", true, false},
		{"configured names are not tracked", "/", "p", false, false},
		{"tracking ref on the front page", "/", "ref", false, true},
		{"seen for two seconds only", "/echo", "zz", false, false},
		{"seen for two seconds only, and busting", "/search", "zz", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slices.Contains(kept(c, tt.path), tt.param); got != tt.kept {
				t.Errorf("%s kept on %s: %v, want %v (kept %q)", tt.param, tt.path, got, tt.kept, kept(c, tt.path))
			}
			if got := slices.Contains(busters(c, tt.path), tt.param); got != tt.buster {
				t.Errorf("%s a buster on %s: %v, want %v (busters %q)", tt.param, tt.path, got, tt.buster, busters(c, tt.path))
			}
		})
	}
	s := c.Stats()
	t.Logf("stats: paths %d names %d kept %d busters %d", s.LearnedPaths, s.LearnedNames, s.LearnedKept, s.LearnedBusters)
	if s.LearnedKept < 3 || s.LearnedBusters < 2 {
		t.Errorf("stats kept %d busters %d", s.LearnedKept, s.LearnedBusters)
	}

	// UnknownParams agrees: kept and ignored names are known, busters and
	// young names are not.
	unknown := []struct {
		path, query string
		want        bool
	}{
		{"/search", "q=x&page=2", false},
		{"/search", "q=x&sort=date", true},
		{"/search", "q=x&utm_source=y&_=1", false},
		{"/search", "q=x&cb=1", true},
		{"/echo", "zz=1", true},
		{"/", "p=1", false},
	}
	for _, u := range unknown {
		if got := c.UnknownParams(u.path, u.query); got != u.want {
			t.Errorf("UnknownParams(%s, %s) = %v, want %v", u.path, u.query, got, u.want)
		}
	}

	// Elevated: each search has its own entry; busters collapse.
	m.set(verdict.ModeElevated)
	steps := []struct{ url, cache, body string }{
		{"http://e.org/search?q=budget&cb=1", "MISS", `<h1>Results for "budget"</h1><p>page </p>`},
		{"http://e.org/search?cb=2&q=budget&_=3", "HIT", `<h1>Results for "budget"</h1><p>page </p>`},
		{"http://e.org/search?q=never-seen-before&cb=4", "MISS", `<h1>Results for "never-seen-before"</h1><p>page </p>`},
		{"http://e.org/search?q=budget&page=2", "MISS", `<h1>Results for "budget"</h1><p>page 2</p>`},
		{"http://e.org/news/5?page=3&fbclid=x", "MISS", `<h1>Article /news/5</h1><p>page 3</p>`},
		{"http://e.org/news/5?page=3&fbclid=y", "HIT", `<h1>Article /news/5</h1><p>page 3</p>`},
		{"http://e.org/echo?zz=1", "MISS", `echo `},
		{"http://e.org/echo?zz=2", "HIT", `echo `},
	}
	for _, st := range steps {
		w := do(h, "GET", st.url)
		if got := w.Header().Get("Rampart-Cache"); got != st.cache || w.Body.String() != st.body {
			t.Errorf("%s: %s %q, want %s %q", st.url, got, w.Body.String(), st.cache, st.body)
		}
	}
}

// TestLearnTableBounded: the table keeps its capacity of groups and of
// names per group, and a flood of new paths or names does not push out what
// was learned.
func TestLearnTableBounded(t *testing.T) {
	clk := newFakeClock()
	tab := newLearnTable(256, time.Minute, maphash.MakeSeed(), clk.Now())
	none, ign := paramSet{}, newNameMatcher(nil)
	see := func(path, query string, digest uint64) {
		o := observation{path: path, query: query, now: clk.Now().UnixNano(), digest: digest, hasDigest: digest != 0}
		tab.observe(&o, &none, &ign)
	}
	// Learn q on 16 search-like paths over two minutes.
	for i := range 5 {
		for p := range 16 {
			see(fmt.Sprintf("/s%c", 'a'+p), fmt.Sprintf("q=w%d", i), uint64(1000+i))
		}
		clk.Advance(30 * time.Second)
	}
	for p := range 16 {
		if !slices.Contains(kept2(tab, fmt.Sprintf("/s%c", 'a'+p)), "q") {
			t.Fatalf("/s%c did not learn q", 'a'+p)
		}
	}
	// A flood of new paths and of new names.
	for i := range 20000 {
		see(fmt.Sprintf("/junk%x", i), fmt.Sprintf("n%d=1", i), 0)
		see("/sa", fmt.Sprintf("q=x&r%d=%d", i, i), uint64(i)+1)
	}
	if n := tab.groups.Load(); n > 256 {
		t.Errorf("%d groups, capacity 256", n)
	}
	for p := range 16 {
		if !slices.Contains(kept2(tab, fmt.Sprintf("/s%c", 'a'+p)), "q") {
			t.Errorf("the flood pushed out /s%c's q", 'a'+p)
		}
	}
	var slots int
	for i := range tab.shards {
		for _, g := range tab.shards[i].groups {
			if len(g.slots) > maxLearnSlots {
				t.Errorf("a group tracks %d names", len(g.slots))
			}
			slots += len(g.slots)
		}
	}
	if int64(slots) != tab.slots.Load() {
		t.Errorf("slots counted %d, held %d", tab.slots.Load(), slots)
	}
	// A group full of kept names takes no more.
	for range 2 {
		for i := range maxLearnSlots {
			see("/wide", fmt.Sprintf("k%d=1", i), 0)
		}
		clk.Advance(2 * time.Minute)
	}
	for i := range 4 {
		see("/wide", fmt.Sprintf("extra%d=1", i), 0)
	}
	if k := kept2(tab, "/wide"); len(k) != maxLearnSlots || slices.Contains(k, "extra0") {
		t.Errorf("/wide keeps %q, want k0..k%d", k, maxLearnSlots-1)
	}
}

func kept2(t *learnTable, path string) []string { k, _ := t.snapshot(path); return k }

// TestLearnGroupBytes measures the heap a full group takes in the worst
// case (longest path, 16 names of the longest length) against the
// LearnGroupBytes that is reserved for it.
func TestLearnGroupBytes(t *testing.T) {
	const groups = 2000
	clk := newFakeClock()
	none, ign := paramSet{}, newNameMatcher(nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab := newLearnTable(2*groups, time.Minute, maphash.MakeSeed(), clk.Now())
	long := strings.Repeat("n", maxLearnName-3)
	var q strings.Builder
	for i := range maxLearnSlots {
		fmt.Fprintf(&q, "%s%03d=v&", long, i)
	}
	query := q.String()
	pathOf := func(g int) string { return "/" + strings.Repeat("p", maxLearnPath-10) + fmt.Sprintf("/x%07d", g) }
	for g := range groups {
		o := observation{path: pathOf(g), query: query, now: clk.Now().UnixNano(), digest: uint64(g) + 1, hasDigest: true}
		tab.observe(&o, &none, &ign)
	}
	clk.Advance(2 * time.Minute)
	for g := range groups { // every name kept: the snapshots are full too
		o := observation{path: pathOf(g), query: query, now: clk.Now().UnixNano()}
		tab.observe(&o, &none, &ign)
	}
	if len(pathOf(0)) != maxLearnPath {
		t.Fatalf("path of %d bytes", len(pathOf(0)))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := tab.groups.Load(); n != groups || tab.kept.Load() != groups*maxLearnSlots {
		t.Fatalf("groups %d kept %d", n, tab.kept.Load())
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / groups
	t.Logf("a full group takes %.0f bytes (reserved %d)", per, LearnGroupBytes)
	if per > LearnGroupBytes {
		t.Errorf("a full group takes %.0f bytes, more than LearnGroupBytes %d", per, LearnGroupBytes)
	}
	runtime.KeepAlive(tab)
}

// FuzzObserve feeds arbitrary paths and queries, with and without digests,
// to a small table: it must not panic, must keep its bounds, and may keep
// only names that were in a query.
func FuzzObserve(f *testing.F) {
	f.Add("/search", "q=budget&cb=1", uint64(7), int64(0))
	f.Add("/news/123", "page=2&page=3&&=x&fbclid=1", uint64(0), int64(61e9))
	f.Add("/", "a&b=&=c&"+strings.Repeat("x=1&", 20), uint64(9), int64(-5e9))
	f.Add(strings.Repeat("/a", 200), "q=1", uint64(1), int64(1e9))
	f.Fuzz(func(t *testing.T, path, query string, digest uint64, advance int64) {
		clk := newFakeClock()
		tab := newLearnTable(4, time.Minute, maphash.MakeSeed(), clk.Now())
		cfg := paramSet{names: []string{"id"}}
		ign := newNameMatcher(DefaultIgnoreParams)
		for i := range 4 {
			o := observation{path: path, query: query, now: clk.Now().UnixNano(), digest: digest + uint64(i%2), hasDigest: digest != 0}
			tab.observe(&o, &cfg, &ign)
			clk.Advance(time.Duration(advance))
		}
		k, b := tab.snapshot(path)
		for _, n := range append(slices.Clone(k), b...) {
			if !strings.Contains("&"+query, "&"+n) || n == "id" || ign.matchName(n) || n == "" {
				t.Fatalf("learned %q from %q", n, query)
			}
		}
		if tab.groups.Load() > 4+learnShards || tab.slots.Load() > (4+learnShards)*maxLearnSlots {
			t.Fatalf("bounds: %d groups %d slots", tab.groups.Load(), tab.slots.Load())
		}
	})
}

// BenchmarkLearnObserve is what a miss in normal traffic adds: the
// observation of a fetched body on a learned group.
func BenchmarkLearnObserve(b *testing.B) {
	clk := newFakeClock()
	tab := newLearnTable(4096, time.Minute, maphash.MakeSeed(), clk.Now())
	none, ign := paramSet{}, newNameMatcher(DefaultIgnoreParams)
	queries := make([]string, 1024)
	for i := range queries {
		queries[i] = fmt.Sprintf("q=word%d&page=%d&utm_source=x", i, i%5)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		o := observation{path: "/search", query: queries[i%len(queries)], now: clk.t.UnixNano(), digest: uint64(i) + 1, hasDigest: true}
		tab.observe(&o, &none, &ign)
		i++
	}
}

var _ = io.Discard
