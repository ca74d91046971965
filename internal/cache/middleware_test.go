package cache

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{name: "defaults", ok: true},
		{name: "tiny cache", o: Options{MaxBytes: 1000}},
		{name: "entry larger than a quarter", o: Options{MaxBytes: 4 << 20, MaxEntryBytes: 2 << 20}},
		{name: "negative micro TTL", o: Options{MicroTTL: -time.Second}},
		{name: "bad session pattern", o: Options{SessionCookies: []string{"a*b"}}},
		{name: "lone star", o: Options{SessionCookies: []string{"*"}}},
		{name: "known params path", o: Options{KnownParams: map[string][]string{"search": {"q"}}}},
		{name: "known params name", o: Options{KnownParams: map[string][]string{"/search": {"q=1"}}}},
		{name: "known params inner star", o: Options{KnownParams: map[string][]string{"/a*/b": {"q"}}}},
		{name: "good known params", o: Options{KnownParams: map[string][]string{"/search": {"q", "page"}, "/news/*": {"*"}}}, ok: true},
		{name: "no session cookies", o: Options{SessionCookies: []string{}}, ok: true},
		{name: "in-flight below max entry", o: Options{InflightBytes: 1 << 20}},
		{name: "in-flight above a quarter", o: Options{InflightBytes: 100 << 20}},
		{name: "in-flight ok", o: Options{InflightBytes: 8 << 20}, ok: true},
		{name: "bad ignore pattern", o: Options{IgnoreParams: []string{"a*b"}}},
		{name: "ignore with =", o: Options{IgnoreParams: []string{"a=b"}}},
		{name: "no ignored params", o: Options{IgnoreParams: []string{}}, ok: true},
		{name: "learn table over a quarter", o: Options{LearnParams: true, LearnCapacity: 100000}},
		{name: "learn table small cache default", o: Options{LearnParams: true, MaxBytes: 4 << 20, MaxEntryBytes: 1 << 20}, ok: true},
		{name: "learn at once", o: Options{LearnParams: true, LearnAfter: -1}, ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.o); (err == nil) != tt.ok {
				t.Errorf("New: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestLoggedInUsersBypass(t *testing.T) {
	c := mustNew(t, Options{})
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		io.WriteString(w, "page")
	}}
	h := c.Middleware(o)
	if got := do(h, "GET", "http://e.org/").Header().Get("Rampart-Cache"); got != "MISS" {
		t.Fatalf("anonymous: %s", got)
	}
	tests := []struct {
		name string
		hdr  []string
		want string
	}{
		{"anonymous", nil, "HIT"},
		{"tracking cookie", []string{"Cookie", "_ga=1; theme=dark"}, "HIT"},
		{"session cookie", []string{"Cookie", "theme=dark; PHPSESSID=abc"}, "BYPASS"},
		{"wordpress", []string{"Cookie", "wordpress_logged_in_abc=admin"}, "BYPASS"},
		{"rails suffix", []string{"Cookie", "_shop_session=1"}, "BYPASS"},
		{"authorization", []string{"Authorization", "Bearer x"}, "BYPASS"},
		{"POST", nil, "BYPASS"},
		{"websocket upgrade", []string{"Upgrade", "websocket", "Connection", "Upgrade"}, "BYPASS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := o.n.Load()
			method := "GET"
			if tt.name == "POST" {
				method = "POST"
			}
			w := do(h, method, "http://e.org/", tt.hdr...)
			if got := w.Header().Get("Rampart-Cache"); got != tt.want {
				t.Errorf("Rampart-Cache %q, want %q", got, tt.want)
			}
			if reached := o.n.Load() > before; reached != (tt.want == "BYPASS") {
				t.Errorf("origin reached: %v", reached)
			}
		})
	}
	// A logged-in user's response is never stored, even if it says public.
	do(h, "GET", "http://e.org/private", "Cookie", "sessionid=1")
	if got := do(h, "GET", "http://e.org/private").Header().Get("Rampart-Cache"); got != "MISS" {
		t.Errorf("page first fetched by a logged-in user was stored: %s", got)
	}
}

func TestVary(t *testing.T) {
	var seen sync.Map
	c := mustNew(t, Options{MaxVariants: 3})
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		ae := r.Header.Get("Accept-Encoding")
		seen.Store(ae, true)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Encoding, Accept-Language")
		fmt.Fprintf(w, "ae=%q lang=%q", ae, r.Header.Get("Accept-Language"))
	}}
	h := c.Middleware(o)
	tests := []struct {
		ae, lang, want, body string
	}{
		{"gzip, deflate, br", "en", "MISS", `ae="gzip, br" lang="en"`},
		{"br, gzip", "en", "HIT", `ae="gzip, br" lang="en"`},
		{"gzip;q=1, br;q=0.5, x-random-junk", "en", "HIT", `ae="gzip, br" lang="en"`},
		{"", "en", "MISS", `ae="" lang="en"`},
		{"", "fr", "MISS", `ae="" lang="fr"`},
		{"", "fr", "HIT", `ae="" lang="fr"`},
		{"gzip", "de", "MISS", `ae="gzip" lang="de"`}, // fourth variant: not stored
		{"gzip", "de", "MISS", `ae="gzip" lang="de"`},
	}
	for i, tt := range tests {
		var hdr []string
		if tt.ae != "" {
			hdr = append(hdr, "Accept-Encoding", tt.ae)
		}
		hdr = append(hdr, "Accept-Language", tt.lang)
		w := do(h, "GET", "http://e.org/v", hdr...)
		if got := w.Header().Get("Rampart-Cache"); got != tt.want || w.Body.String() != tt.body {
			t.Errorf("request %d: %s %q, want %s %q", i, got, w.Body.String(), tt.want, tt.body)
		}
	}
	seen.Range(func(k, _ any) bool {
		if s := k.(string); s != "" && s != "gzip" && s != "gzip, br" {
			t.Errorf("origin saw Accept-Encoding %q, not a normal form", s)
		}
		return true
	})
}

func TestHeadConditionalAndRange(t *testing.T) {
	c := mustNew(t, Options{})
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "GET" {
			t.Errorf("origin got %s, want GET", r.Method)
		}
		if r.URL.Path == "/r" && (r.Header.Get("If-None-Match") != "" || r.Header.Get("Range") != "") {
			t.Errorf("client conditionals reached the origin: %v", r.Header)
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2026 15:04:05 GMT")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "0123456789")
	}}
	h := c.Middleware(o)
	tests := []struct {
		name   string
		method string
		hdr    []string
		status int
		body   string
		cache  string
	}{
		{"HEAD miss is a GET upstream", "HEAD", nil, 200, "", "MISS"},
		{"HEAD hit", "HEAD", nil, 200, "", "HIT"},
		{"GET hit", "GET", nil, 200, "0123456789", "HIT"},
		{"If-None-Match", "GET", []string{"If-None-Match", `W/"v0", "v1"`}, 304, "", "HIT"},
		{"If-None-Match other", "GET", []string{"If-None-Match", `"v0"`}, 200, "0123456789", "HIT"},
		{"If-Modified-Since", "GET", []string{"If-Modified-Since", "Tue, 03 Jan 2026 00:00:00 GMT"}, 304, "", "HIT"},
		{"If-Modified-Since older", "GET", []string{"If-Modified-Since", "Sun, 01 Jan 2026 00:00:00 GMT"}, 200, "0123456789", "HIT"},
		{"Range", "GET", []string{"Range", "bytes=2-4"}, 206, "234", "HIT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(h, tt.method, "http://e.org/r", tt.hdr...)
			if w.Code != tt.status || w.Body.String() != tt.body || w.Header().Get("Rampart-Cache") != tt.cache {
				t.Errorf("%d %q %s, want %d %q %s", w.Code, w.Body.String(), w.Header().Get("Rampart-Cache"), tt.status, tt.body, tt.cache)
			}
			if tt.method == "HEAD" && w.Header().Get("Content-Length") != "10" {
				t.Errorf("HEAD Content-Length %q", w.Header().Get("Content-Length"))
			}
		})
	}
	if o.n.Load() != 1 {
		t.Errorf("origin saw %d requests, want 1", o.n.Load())
	}
	// A Range request on a miss passes through untouched below NormaliseIn.
	w := do(h, "GET", "http://e.org/other", "Range", "bytes=0-1")
	if w.Header().Get("Rampart-Cache") != "BYPASS" {
		t.Errorf("Range miss: %s", w.Header().Get("Rampart-Cache"))
	}
}

// TestRevalidation: a stale copy with validators is revalidated; a 304
// refreshes it without a body.
func TestRevalidation(t *testing.T) {
	clk := newFakeClock()
	c := mustNew(t, Options{Now: clk.Now})
	var bodies atomic.Int64
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("ETag", `"abc"`)
		if r.Header.Get("If-None-Match") == `"abc"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		bodies.Add(1)
		io.WriteString(w, "the page")
	}}
	h := c.Middleware(o)
	do(h, "GET", "http://e.org/p")
	clk.Advance(11 * time.Second)
	w := do(h, "GET", "http://e.org/p")
	if w.Code != 200 || w.Body.String() != "the page" || w.Header().Get("Rampart-Cache") != "MISS" {
		t.Fatalf("revalidated: %d %q %s", w.Code, w.Body.String(), w.Header().Get("Rampart-Cache"))
	}
	w = do(h, "GET", "http://e.org/p")
	if w.Header().Get("Rampart-Cache") != "HIT" || w.Body.String() != "the page" {
		t.Fatalf("after revalidation: %s %q", w.Header().Get("Rampart-Cache"), w.Body.String())
	}
	if o.n.Load() != 2 || bodies.Load() != 1 || c.Stats().Revalidated != 1 {
		t.Errorf("origin %d, bodies %d, revalidated %d; want 2, 1, 1", o.n.Load(), bodies.Load(), c.Stats().Revalidated)
	}
}

// TestStaleIfError covers the origin's failures: 5xx, a panic of the proxy
// (truncated upstream), the admission's 503, and the limit past which a copy
// is too old.
func TestStaleIfError(t *testing.T) {
	tests := []struct {
		name  string
		cc    string
		fail  func(w http.ResponseWriter)
		after time.Duration
		opts  Options
		want  string
		code  int
	}{
		{name: "502", fail: func(w http.ResponseWriter) { w.WriteHeader(502) }, after: time.Minute, want: "STALE", code: 200},
		{name: "504", fail: func(w http.ResponseWriter) { w.WriteHeader(504) }, after: time.Minute, want: "STALE", code: 200},
		{name: "admission refusal", fail: func(w http.ResponseWriter) {
			w.Header().Set("Rampart-Mitigated", "overload")
			w.WriteHeader(503)
		}, after: time.Minute, want: "STALE", code: 200},
		{name: "aborted before headers", fail: func(w http.ResponseWriter) { panic(http.ErrAbortHandler) }, after: time.Minute, want: "STALE", code: 200},
		{name: "too old", fail: func(w http.ResponseWriter) { w.WriteHeader(502) }, after: 2 * time.Hour, want: "MISS", code: 502},
		{name: "always online off", opts: Options{StaleIfError: -1}, fail: func(w http.ResponseWriter) { w.WriteHeader(502) }, after: time.Minute, want: "MISS", code: 502},
		{name: "origin's stale-if-error extends", cc: "max-age=1, stale-if-error=3600", opts: Options{StaleIfError: -1}, fail: func(w http.ResponseWriter) { w.WriteHeader(500) }, after: 10 * time.Minute, want: "STALE", code: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			tt.opts.Now = clk.Now
			c := mustNew(t, tt.opts)
			var failing atomic.Bool
			o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
				if failing.Load() {
					tt.fail(w)
					return
				}
				cc := tt.cc
				if cc == "" {
					cc = "max-age=1"
				}
				w.Header().Set("Cache-Control", cc)
				io.WriteString(w, "good")
			}}
			h := c.Middleware(o)
			do(h, "GET", "http://e.org/")
			failing.Store(true)
			clk.Advance(tt.after)
			w := do(h, "GET", "http://e.org/")
			if w.Header().Get("Rampart-Cache") != tt.want || w.Code != tt.code {
				t.Errorf("%d %s, want %d %s", w.Code, w.Header().Get("Rampart-Cache"), tt.code, tt.want)
			}
			if tt.want == "STALE" && w.Body.String() != "good" {
				t.Errorf("stale body %q", w.Body.String())
			}
		})
	}
}

func TestPurge(t *testing.T) {
	c := mustNew(t, Options{})
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		if r.URL.Path == "/news/2" {
			w.Header().Set("Vary", "Accept-Language")
		}
		io.WriteString(w, r.URL.Path)
	}}
	h := c.Middleware(o)
	for _, u := range []string{"http://www.e.org/news/1", "http://www.e.org/news/2", "http://www.e.org/about", "https://www.e.org/news/1?b=2&a=1", "http://other.org/news/1"} {
		do(h, "GET", u)
	}
	do(h, "GET", "http://www.e.org/news/2", "Accept-Language", "fr")
	if n := c.Purge("WWW.E.ORG/news/"); n != 4 {
		t.Errorf("purged %d responses, want 4 (news/1 in both schemes, two variants of news/2)", n)
	}
	for u, want := range map[string]string{
		"http://www.e.org/news/1": "MISS", "http://www.e.org/about": "HIT", "http://other.org/news/1": "HIT",
	} {
		if got := do(h, "GET", u).Header().Get("Rampart-Cache"); got != want {
			t.Errorf("%s after purge: %s, want %s", u, got, want)
		}
	}
	if n := c.Purge(""); n != 3 {
		t.Errorf("purge all removed %d, want 3", n)
	}
	if s := c.Stats(); s.Purged != 7 || s.Entries != 0 {
		t.Errorf("stats after purge: purged %d entries %d", s.Purged, s.Entries)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestSSENotBuffered: an event stream through the cache arrives event by
// event.
func TestSSENotBuffered(t *testing.T) {
	next := make(chan struct{})
	osrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		for i := range 3 {
			fmt.Fprintf(w, "data: %d\n\n", i)
			http.NewResponseController(w).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	}))
	defer osrv.Close()
	c := mustNew(t, Options{})
	front := httptest.NewServer(c.Middleware(proxyTo(osrv.Listener.Addr().String(), 5*time.Second)))
	defer front.Close()
	resp, err := front.Client().Get(front.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Rampart-Cache") != "BYPASS" {
		t.Errorf("Rampart-Cache %q", resp.Header.Get("Rampart-Cache"))
	}
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
		next <- struct{}{} // the origin sends the next event only now
	}
}

// TestLeaderLeavingDoesNotFailFollowers: the client whose request leads the
// fetch goes away; the followers still get the page, and it is stored.
func TestLeaderLeavingDoesNotFailFollowers(t *testing.T) {
	release := make(chan struct{})
	c := mustNew(t, Options{})
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			t.Error("the leader's fetch was cancelled with its client")
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "page")
	}}
	h := c.Middleware(o)
	ctx, cancel := context.WithCancel(context.Background())
	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		r := httptest.NewRequest("GET", "http://e.org/x", nil).WithContext(ctx)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}()
	eventually(t, "leader at the origin", func() bool { return o.n.Load() == 1 })
	var wg sync.WaitGroup
	results := make(chan string, 5)
	for range 5 {
		wg.Go(func() {
			w := do(h, "GET", "http://e.org/x")
			results <- w.Header().Get("Rampart-Cache") + " " + w.Body.String()
		})
	}
	eventually(t, "followers waiting", func() bool { return c.Stats().Waiting == 5 })
	cancel()
	close(release)
	wg.Wait()
	<-leaderDone
	close(results)
	for r := range results {
		if r != "HIT page" {
			t.Errorf("follower got %q", r)
		}
	}
	if got := do(h, "GET", "http://e.org/x").Header().Get("Rampart-Cache"); got != "HIT" {
		t.Errorf("after: %s", got)
	}
}

// TestHitForPassReleasesFollowers: when the response cannot be stored, the
// waiting followers go to the origin on their own, and later requests skip
// coalescing for HitForPass.
func TestHitForPassReleasesFollowers(t *testing.T) {
	release := make(chan struct{})
	c := mustNew(t, Options{})
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Set-Cookie", "visitor=1")
		io.WriteString(w, "personal")
	}}
	h := c.Middleware(o)
	var wg sync.WaitGroup
	labels := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			labels <- do(h, "GET", "http://e.org/me").Header().Get("Rampart-Cache")
		})
	}
	eventually(t, "one at the origin", func() bool { return o.n.Load() == 1 })
	close(release)
	wg.Wait()
	close(labels)
	for l := range labels {
		if l != "BYPASS" {
			t.Errorf("label %q, want BYPASS", l)
		}
	}
	if o.n.Load() != 4 {
		t.Errorf("origin saw %d, want 4 (every follower on its own)", o.n.Load())
	}
	if s := c.Stats(); s.HitForPass != 1 {
		t.Errorf("hit-for-pass marks %d, want 1", s.HitForPass)
	}
}

// TestMitigatedAnswerDoesNotMarkPass: an answer of the shield's own behind
// the cache (Rampart-Mitigated: a check for one client, even with a header
// that would keep it out of the cache) is passed to that client, never
// stored, and does not mark the key uncacheable: the next request fetches
// and stores the page.
func TestMitigatedAnswerDoesNotMarkPass(t *testing.T) {
	c := mustNew(t, Options{})
	var first atomic.Bool
	first.Store(true)
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		if first.Swap(false) {
			w.Header().Set("Rampart-Mitigated", "cookie-check")
			w.Header().Set("Cache-Control", "public, max-age=60")
			w.Header().Set("Location", r.URL.Path)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=60")
		io.WriteString(w, "page")
	}}
	h := c.Middleware(o)
	var got []string
	for range 3 {
		w := do(h, "GET", "http://e.org/p")
		got = append(got, fmt.Sprintf("%d %s %s", w.Code, w.Header().Get("Rampart-Mitigated"), w.Header().Get("Rampart-Cache")))
	}
	if want := []string{"307 cookie-check BYPASS", "200  MISS", "200  HIT"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if s := c.Stats(); s.HitForPass != 0 {
		t.Errorf("hit-for-pass marks %d, want 0", s.HitForPass)
	}
}

func TestAdmitMiss(t *testing.T) {
	clk := newFakeClock()
	var allow atomic.Bool
	c := mustNew(t, Options{Now: clk.Now, AdmitMiss: func(*http.Request) bool { return allow.Load() }})
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=1")
		io.WriteString(w, "page")
	}}
	h := c.Middleware(o)
	w := do(h, "GET", "http://e.org/a")
	if w.Code != 429 || w.Header().Get("Rampart-Mitigated") != "miss-limit" || w.Header().Get("Retry-After") == "" {
		t.Fatalf("refused miss: %d %v", w.Code, w.Header())
	}
	allow.Store(true)
	do(h, "GET", "http://e.org/a")
	allow.Store(false)
	if w := do(h, "GET", "http://e.org/a"); w.Header().Get("Rampart-Cache") != "HIT" {
		t.Errorf("hits are not misses: %s", w.Header().Get("Rampart-Cache"))
	}
	clk.Advance(time.Minute)
	if w := do(h, "GET", "http://e.org/a"); w.Code != 200 || w.Header().Get("Rampart-Cache") != "STALE" {
		t.Errorf("refused miss with a stale copy: %d %s", w.Code, w.Header().Get("Rampart-Cache"))
	}
	if o.n.Load() != 1 || c.Stats().MissLimited != 2 {
		t.Errorf("origin %d, miss-limited %d", o.n.Load(), c.Stats().MissLimited)
	}
}

func TestMaxEntryBytes(t *testing.T) {
	c := mustNew(t, Options{MaxEntryBytes: 1000})
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if r.URL.Path == "/announced" {
			w.Header().Set("Content-Length", "5000")
		}
		for range 5 {
			w.Write([]byte(strings.Repeat("x", 1000)))
		}
	}}
	h := c.Middleware(o)
	for _, p := range []string{"/announced", "/chunked"} {
		w := do(h, "GET", "http://e.org"+p)
		if w.Body.Len() != 5000 {
			t.Errorf("%s: body %d bytes, want 5000 streamed through", p, w.Body.Len())
		}
		if got := do(h, "GET", "http://e.org"+p).Header().Get("Rampart-Cache"); got != "BYPASS" {
			t.Errorf("%s second time: %s, want BYPASS (hit-for-pass)", p, got)
		}
	}
	if s := c.Stats(); s.Stored != 0 {
		t.Errorf("stored %d", s.Stored)
	}
}

// TestBackgroundRefreshIsBounded: stale-while-revalidate starts one refresh
// per key, at most MaxRefreshes at once.
func TestBackgroundRefreshIsBounded(t *testing.T) {
	clk := newFakeClock()
	release := make(chan struct{})
	c := mustNew(t, Options{Now: clk.Now, MaxRefreshes: 2})
	var slow atomic.Bool
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			<-release
		}
		w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=600")
		io.WriteString(w, "v")
	}}
	h := c.Middleware(o)
	for i := range 4 {
		do(h, "GET", fmt.Sprintf("http://e.org/%d", i))
	}
	slow.Store(true)
	clk.Advance(10 * time.Second)
	for range 3 {
		for i := range 4 {
			if got := do(h, "GET", fmt.Sprintf("http://e.org/%d", i)).Header().Get("Rampart-Cache"); got != "STALE" {
				t.Errorf("%d: %s", i, got)
			}
		}
	}
	s := c.Stats()
	if s.Refreshes != 2 || s.RefreshesSkipped == 0 {
		t.Errorf("refreshes %d skipped %d, want 2 and some", s.Refreshes, s.RefreshesSkipped)
	}
	close(release)
	eventually(t, "refreshes to finish", func() bool { return c.Stats().Flights == 0 && o.n.Load() == 6 })
}

// TestFollowersShareOriginError: with no stale copy, the followers of a
// flight get the leader's 5xx (here the admission gate's refusal) rather
// than each asking a failing origin again.
func TestFollowersShareOriginError(t *testing.T) {
	release := make(chan struct{})
	c := mustNew(t, Options{})
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Rampart-Mitigated", "overload")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "busy")
	}}
	h := c.Middleware(o)
	var wg sync.WaitGroup
	got := make(chan string, 5)
	for range 5 {
		wg.Go(func() {
			w := do(h, "GET", "http://e.org/new")
			got <- fmt.Sprintf("%d %s %s %s", w.Code, w.Header().Get("Rampart-Mitigated"), w.Header().Get("Retry-After"), w.Body.String())
		})
	}
	eventually(t, "leader at the origin", func() bool { return o.n.Load() == 1 })
	eventually(t, "followers waiting", func() bool { return c.Stats().Waiting == 4 })
	close(release)
	wg.Wait()
	close(got)
	for g := range got {
		if g != "503 overload 5 busy" {
			t.Errorf("got %q", g)
		}
	}
	if n := o.n.Load(); n != 1 {
		t.Errorf("origin asked %d times, want 1", n)
	}
}
