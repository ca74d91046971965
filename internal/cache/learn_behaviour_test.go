package cache

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// TestSearchLearnedNeverMixedUnderElevated: the whole path on loopback, a
// real origin behind a reverse proxy behind the cache, configured as the
// shield does (normalised keys and micro-caching from elevated up, nothing
// in KnownParams). Three simulated minutes of normal traffic teach the cache
// that /search depends on q; a cache-buster (cb) and jQuery's _ ride along.
// Then an attack starts with a new parameter (zz) and the mode rises to
// elevated within seconds. From then on every search gets its own results,
// never another's, while the cache-busters and zz collapse to one entry.
func TestSearchLearnedNeverMixedUnderElevated(t *testing.T) {
	site := &learnSite{}
	osrv := httptest.NewServer(site)
	defer osrv.Close()
	clk := newFakeClock()
	var m modeVar
	c := mustNew(t, Options{Mode: m.get, Now: clk.Now, LearnParams: true, ExplicitModes: true,
		MicroCacheIn: verdict.ModeElevated, NormaliseIn: verdict.ModeElevated})
	front := httptest.NewServer(c.Middleware(proxyTo(osrv.Listener.Addr().String(), 5*time.Second)))
	defer front.Close()
	client := front.Client()
	rng := rand.New(rand.NewPCG(3, 4))
	words := []string{"budget", "tram", "library", "flood", "election", "school", "recycling", "housing"}
	fetch := func(url string) (string, string) {
		t.Helper()
		resp, body := get(t, client, front.URL+url)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", url, resp.StatusCode)
		}
		return body, resp.Header.Get("Rampart-Cache")
	}
	results := func(q string) string { return fmt.Sprintf("<h1>Results for %q</h1><p>page </p>", q) }

	// Normal traffic: three minutes, a round every 10 s.
	for round := range 18 {
		for i := range 3 {
			q := words[(round*3+i)%len(words)]
			if body, _ := fetch("/search?q=" + q); body != results(q) {
				t.Fatalf("normal mode, q=%s: %q", q, body)
			}
		}
		fetch(fmt.Sprintf("/search?q=long-tail-%d", rng.Uint32()))
		fetch(fmt.Sprintf("/search?q=tram&cb=%d", rng.Uint64()))
		fetch(fmt.Sprintf("/search?q=flood&_=%d", rng.Uint64()))
		clk.Advance(10 * time.Second)
	}
	// The attack's first seconds, before the mode rises: random searches
	// with a new parameter.
	for range 30 {
		fetch(fmt.Sprintf("/search?q=%x&zz=%x", rng.Uint64(), rng.Uint64()))
		clk.Advance(100 * time.Millisecond)
	}
	if k := kept(c, "/search"); !slices.Contains(k, "q") || slices.Contains(k, "cb") || slices.Contains(k, "zz") || slices.Contains(k, "_") {
		t.Fatalf("kept on /search: %q (busters %q), want q and neither cb, zz nor _", k, busters(c, "/search"))
	}

	m.set(verdict.ModeElevated)

	// Every search its own results: 8 visitors, 12 searches each, with
	// busters and the attack's parameter mixed in.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wrong []string
	for v := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(v), 9))
			for i := range 12 {
				q := fmt.Sprintf("visitor-%d-search-%d-%x", v, i, r.Uint32())
				u := "/search?q=" + q
				switch i % 3 {
				case 1:
					u += fmt.Sprintf("&cb=%d", r.Uint64())
				case 2:
					u = fmt.Sprintf("/search?zz=%d&q=%s&_=%d", r.Uint64(), q, r.Uint64())
				}
				resp, body := get(t, client, front.URL+u)
				if resp.StatusCode != 200 || body != results(q) {
					mu.Lock()
					wrong = append(wrong, fmt.Sprintf("%s: %d %q", u, resp.StatusCode, body))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(wrong) > 0 {
		t.Errorf("%d of 96 searches got another page, first: %s", len(wrong), wrong[0])
	}

	// The busters and the attack's parameter collapse onto one entry each.
	busting := []struct{ name, format, q string }{
		{"cb", "/search?q=budget&cb=%d", "budget"},
		{"jQuery _", "/search?_=%d&q=school", "school"},
		{"attack's zz", "/search?q=housing&zz=%d", "housing"},
		{"all at once", "/search?zz=%[1]d&cb=%[1]d&q=library&_=%[1]d", "library"},
	}
	for _, b := range busting {
		before := site.hits.Load()
		hits := 0
		for range 50 {
			body, label := fetch(fmt.Sprintf(b.format, rng.Uint64()))
			if body != results(b.q) {
				t.Fatalf("%s: %q", b.name, body)
			}
			if label == "HIT" {
				hits++
			}
		}
		if n := site.hits.Load() - before; n > 1 || hits < 49 {
			t.Errorf("%s: 50 requests with random values reached the origin %d times (%d hits), want once", b.name, n, hits)
		}
	}
	s := c.Stats()
	t.Logf("learned: paths %d names %d kept %d busters %d; dropped unknown %d", s.LearnedPaths, s.LearnedNames, s.LearnedKept, s.LearnedBusters, s.DroppedUnknown)
	if !strings.Contains(fmt.Sprint(busters(c, "/search")), "cb") {
		t.Errorf("cb is not a proven buster: %q", busters(c, "/search"))
	}
}

// TestSafetyNet: from NormaliseIn up, a request whose key dropped a
// parameter that may change the page gets a micro-cached copy only while it
// is fresh (at most MicroTTL old): never stale, neither at once in
// under_attack mode nor in place of an origin failure. Requests that
// dropped nothing, or only ignored parameters, still get stale copies, and
// so do pages the origin marked cacheable.
func TestSafetyNet(t *testing.T) {
	clk := newFakeClock()
	var m modeVar
	m.set(verdict.ModeUnderAttack)
	failing := false
	var mu sync.Mutex
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		f := failing
		mu.Unlock()
		if f {
			http.Error(w, "origin broken", http.StatusInternalServerError)
			return
		}
		if r.URL.Path == "/cacheable" {
			w.Header().Set("Cache-Control", "max-age=3") // above MicroTTL: not micro-cached
		}
		fmt.Fprintf(w, "%s version %d", r.URL.Path, clk.Now().Unix())
	}}
	c := mustNew(t, Options{Mode: m.get, Now: clk.Now, MicroTTL: 2 * time.Second})
	h := c.Middleware(o)
	for _, p := range []string{"/page", "/cacheable"} {
		if got := do(h, "GET", "http://e.org"+p).Header().Get("Rampart-Cache"); got != "MISS" {
			t.Fatalf("%s: %s", p, got)
		}
	}
	steps := []struct {
		name, url string
		broken    bool
		want      string
		status    int
	}{
		// A STALE answer starts a background refresh: only the MISS waits
		// for the origin.
		{"nothing dropped: stale at once", "/page", false, "STALE", 200},
		{"only an ignored parameter dropped: stale at once", "/page?utm_source=x&fbclid=y", false, "STALE", 200},
		{"unknown parameter dropped: to the origin", "/page?x=1", false, "MISS", 200},
		{"then fresh for every one", "/page?x=2", false, "HIT", 200},
		{"origin marked it cacheable: stale at once", "/cacheable?x=1", false, "STALE", 200},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.want != "HIT" {
				// Let the last step's background refresh end, then let
				// every copy go stale.
				eventually(t, "background refreshes to end", func() bool { return len(c.refresh) == 0 })
				clk.Advance(5 * time.Second)
			}
			mu.Lock()
			failing = st.broken
			mu.Unlock()
			w := do(h, "GET", "http://e.org"+st.url)
			if got := w.Header().Get("Rampart-Cache"); got != st.want || w.Code != st.status {
				t.Errorf("%s: %d %s, want %d %s", st.url, w.Code, got, st.status, st.want)
			}
		})
	}
	// The origin breaks: a stale copy stands in only for requests that
	// dropped nothing that may matter.
	eventually(t, "background refreshes to end", func() bool { return len(c.refresh) == 0 })
	clk.Advance(5 * time.Second)
	mu.Lock()
	failing = true
	mu.Unlock()
	if w := do(h, "GET", "http://e.org/page?x=3"); w.Code != 500 || w.Body.String() != "origin broken\n" {
		t.Errorf("unknown parameter, origin failing: %d %q, want the origin's 500", w.Code, w.Body.String())
	}
	if w := do(h, "GET", "http://e.org/page"); w.Code != 200 || w.Header().Get("Rampart-Cache") != "STALE" {
		t.Errorf("nothing dropped, origin failing: %d %s, want a stale copy", w.Code, w.Header().Get("Rampart-Cache"))
	}
	// A miss the policy refuses gets 429, not the stale copy (elevated
	// mode: no stale copies at once, the miss limit decides).
	var admit atomic.Bool
	admit.Store(true)
	var m2 modeVar
	m2.set(verdict.ModeElevated)
	c2 := mustNew(t, Options{Mode: m2.get, Now: clk.Now, ExplicitModes: true, MicroCacheIn: verdict.ModeElevated,
		NormaliseIn: verdict.ModeElevated, AdmitMiss: func(*http.Request) bool { return admit.Load() }})
	h2 := c2.Middleware(&origin{handler: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "page") }})
	if w := do(h2, "GET", "http://e.org/p"); w.Header().Get("Rampart-Cache") != "MISS" {
		t.Fatalf("first: %s", w.Header().Get("Rampart-Cache"))
	}
	clk.Advance(5 * time.Second)
	admit.Store(false)
	if w := do(h2, "GET", "http://e.org/p?x=1"); w.Code != http.StatusTooManyRequests {
		t.Errorf("refused miss with an unknown parameter: %d %s, want 429", w.Code, w.Header().Get("Rampart-Cache"))
	}
	if w := do(h2, "GET", "http://e.org/p"); w.Code != 200 || w.Header().Get("Rampart-Cache") != "STALE" {
		t.Errorf("refused miss without parameters: %d %s, want a stale copy", w.Code, w.Header().Get("Rampart-Cache"))
	}
	if s := c.Stats(); s.SafetyNet < 2 || s.DroppedUnknown < 3 {
		t.Errorf("safety net %d, dropped unknown %d", s.SafetyNet, s.DroppedUnknown)
	}
}
