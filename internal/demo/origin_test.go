package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// newTestOrigin starts o behind a real loopback server.
func newTestOrigin(t *testing.T, opt Options) (*Origin, *httptest.Server) {
	t.Helper()
	o, err := New(opt)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(o.Handler())
	t.Cleanup(func() {
		o.Close()
		srv.Close()
	})
	return o, srv
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func get(t *testing.T, c *http.Client, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return resp, body
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name    string
		opt     Options
		wantErr bool
		check   func(Options) bool
	}{
		{"zero takes defaults", Options{}, false, func(o Options) bool {
			return o.Workers == DefaultWorkers && o.Queue == DefaultQueue && o.SearchCost == DefaultSearchCost &&
				o.PageCost == DefaultPageCost && o.MaxStreams == DefaultMaxStreams && o.TopSources == DefaultTopSources &&
				o.MaxConns == DefaultMaxConns && o.Tick == DefaultTick && o.Articles == DefaultArticles && o.MaxBody == DefaultMaxBody
		}},
		{"negative queue means none", Options{Queue: -1}, false, func(o Options) bool { return o.Queue == 0 }},
		{"negative costs mean none", Options{SearchCost: -1, PageCost: -1}, false, func(o Options) bool { return o.SearchCost == 0 && o.PageCost == 0 }},
		{"negative workers", Options{Workers: -1}, true, nil},
		{"too many workers", Options{Workers: maxWorkers + 1}, true, nil},
		{"negative body", Options{MaxBody: -1}, true, nil},
		{"negative streams", Options{MaxStreams: -1}, true, nil},
		{"negative tick", Options{Tick: -time.Second}, true, nil},
		{"huge source table", Options{TopSources: 1 << 21}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := New(tt.opt)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && !tt.check(o.Options()) {
				t.Errorf("options after defaults: %+v", o.Options())
			}
		})
	}
}

// TestCapacity fills the workers and the queue with held requests, checks
// that the next request is refused at once, then lets them all finish.
func TestCapacity(t *testing.T) {
	const workers, queue = 3, 4
	o, err := New(Options{Workers: workers, Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	o.work = func(ctx context.Context, d time.Duration) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	srv := httptest.NewServer(o.Handler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 32}}
	defer client.CloseIdleConnections()

	var wg sync.WaitGroup
	statuses := make(chan int, workers+queue)
	for range workers + queue {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/search?q=budget", nil)
			req.Header.Set(RoleHeader, "legit")
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("held request: %v", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	waitFor(t, "workers and queue to fill", func() bool {
		s := o.Stats()
		return s.InFlight == workers && s.QueueDepth == queue
	})
	resp, _ := get(t, client, srv.URL+"/news/1", map[string]string{RoleHeader: "attack"})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("request over capacity: status %d, want 503", resp.StatusCode)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	close(gate)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Errorf("held request finished with %d, want 200", s)
		}
	}
	s := o.Stats()
	if s.Served != workers+queue || s.Rejected != 1 || s.PeakQueueDepth != queue {
		t.Errorf("served %d rejected %d peak %d; want %d, 1, %d", s.Served, s.Rejected, s.PeakQueueDepth, workers+queue, queue)
	}
	if s.Legit.Classes.Search != workers+queue || s.Attack.Rejected != 1 || s.Attack.Classes.Page != 1 {
		t.Errorf("role counts: legit %+v attack %+v", s.Legit, s.Attack)
	}
	if s.InFlight != 0 || s.QueueDepth != 0 {
		t.Errorf("gauges after the run: in flight %d, queued %d", s.InFlight, s.QueueDepth)
	}
}

// TestCanceledWhileQueued checks that a client leaving the queue frees its
// place and is counted as canceled.
func TestCanceledWhileQueued(t *testing.T) {
	o, err := New(Options{Workers: 1, Queue: 1})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	o.work = func(ctx context.Context, d time.Duration) error { <-gate; return nil }
	srv := httptest.NewServer(o.Handler())
	defer srv.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(srv.URL + "/")
		if err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "the worker to be busy", func() bool { return o.Stats().InFlight == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/news/2", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the request to queue", func() bool { return o.Stats().QueueDepth == 1 })
	cancel()
	<-errc
	waitFor(t, "the cancellation to count", func() bool { return o.Stats().Canceled == 1 })
	if d := o.Stats().QueueDepth; d != 0 {
		t.Errorf("queue depth %d after cancel", d)
	}
	close(gate)
	<-done
}

func TestPages(t *testing.T) {
	_, srv := newTestOrigin(t, Options{PageCost: -1, SearchCost: time.Millisecond})
	tests := []struct {
		name, method, path, body string
		cookie                   string
		wantStatus               int
		wantCache                string
		wantCost                 string
		wantBody                 string
		wantCookie               bool
	}{
		{name: "home", method: "GET", path: "/", wantStatus: 200, wantCache: "public, max-age=10", wantCost: "0", wantBody: "/news/1\""},
		{name: "home signed in", method: "GET", path: "/", cookie: "reader-7", wantStatus: 200, wantCache: "private, no-store", wantBody: "Signed in as reader-7"},
		{name: "article", method: "GET", path: "/news/3", wantStatus: 200, wantCache: "", wantBody: "/static/style.css"},
		{name: "article out of range", method: "GET", path: "/news/51", wantStatus: 404},
		{name: "article not a number", method: "GET", path: "/news/x", wantStatus: 404},
		{name: "article empty id", method: "GET", path: "/news/", wantStatus: 404},
		{name: "style", method: "GET", path: "/static/style.css", wantStatus: 200, wantCache: "public, max-age=3600", wantCost: "0"},
		{name: "script", method: "GET", path: "/static/app.js", wantStatus: 200, wantCache: "public, max-age=3600"},
		{name: "logo", method: "GET", path: "/static/logo.svg", wantStatus: 200, wantCache: "public, max-age=3600", wantBody: "<svg"},
		{name: "missing asset", method: "GET", path: "/static/nope.css", wantStatus: 404},
		{name: "search", method: "GET", path: "/search?q=%3Cb%3Ebudget", wantStatus: 200, wantCost: "1", wantBody: "&lt;b&gt;budget"},
		{name: "comment", method: "POST", path: "/api/comments", body: "c=hello", wantStatus: 201, wantBody: "\"bytes\":7"},
		{name: "comment too big", method: "POST", path: "/api/comments", body: strings.Repeat("x", DefaultMaxBody+1), wantStatus: 413},
		{name: "comment by GET", method: "GET", path: "/api/comments", wantStatus: 405},
		{name: "login page", method: "GET", path: "/login", wantStatus: 200, wantCookie: true, wantBody: "signed in as reader-"},
		{name: "login post", method: "POST", path: "/login", body: "u=a", wantStatus: 303, wantCookie: true},
		{name: "unknown", method: "GET", path: "/wp-login.php", wantStatus: 404},
		{name: "healthz", method: "GET", path: "/healthz", wantStatus: 200, wantBody: "ok"},
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "session", Value: tt.cookie})
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("Cache-Control"); tt.wantStatus == 200 && got != tt.wantCache && tt.path != "/healthz" {
				t.Errorf("Cache-Control %q, want %q", got, tt.wantCache)
			}
			if tt.wantCost != "" && resp.Header.Get("X-Origin-Cost") != tt.wantCost {
				t.Errorf("X-Origin-Cost %q, want %q", resp.Header.Get("X-Origin-Cost"), tt.wantCost)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("body lacks %q:\n%.300s", tt.wantBody, body)
			}
			if got := len(resp.Cookies()) > 0; got != tt.wantCookie {
				t.Errorf("Set-Cookie present %v, want %v", got, tt.wantCookie)
			}
		})
	}
}

func TestArticleSize(t *testing.T) {
	o, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range o.articles {
		if n := len(a.page); n < 2048 || n > 16384 {
			t.Errorf("article %d is %d bytes, want a few KiB", a.id, n)
		}
	}
}

func TestCounting(t *testing.T) {
	o, srv := newTestOrigin(t, Options{PageCost: -1, SearchCost: -1, TopSources: 4})
	reqs := []struct {
		name, method, path, role, xff string
	}{
		{"legit page", "GET", "/", "legit", "127.9.0.1"},
		{"legit article", "GET", "/news/2", "legit", "127.9.0.1"},
		{"legit css", "GET", "/static/style.css", "legit", "127.9.0.1"},
		{"legit search", "GET", "/search?q=x", "legit", "127.9.0.2"},
		{"attack page", "GET", "/news/1", "attack", "127.66.0.1"},
		{"attack page again", "GET", "/news/1?x=1", "attack", "127.66.0.1"},
		{"attack post", "POST", "/api/comments", "attack", "127.66.0.1"},
		{"attack 404", "GET", "/nope", "attack", "10.1.2.3, 127.66.0.2"},
		{"unknown role", "GET", "/", "Legit", ""},
		{"no role", "GET", "/static/app.js", "", ""},
		{"not counted", "GET", "/healthz", "attack", "127.66.0.1"},
	}
	for _, rq := range reqs {
		req, _ := http.NewRequest(rq.method, srv.URL+rq.path, strings.NewReader("x"))
		if rq.role != "" {
			req.Header.Set(RoleHeader, rq.role)
		}
		if rq.xff != "" {
			req.Header.Set("X-Forwarded-For", rq.xff)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", rq.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	s := o.Stats()
	want := map[string]RoleStats{
		"legit":   {Requests: 4, Served: 4, Classes: ClassCounts{Page: 2, Static: 1, Search: 1}},
		"attack":  {Requests: 4, Served: 4, Classes: ClassCounts{Page: 2, Post: 1, Other: 1}},
		"unknown": {Requests: 2, Served: 2, Classes: ClassCounts{Page: 1, Static: 1}},
	}
	got := map[string]RoleStats{"legit": s.Legit, "attack": s.Attack, "unknown": s.Unknown}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("role counts (-want +got):\n%s", d)
	}
	if s.Served != 10 || s.Latency.Count != 10 {
		t.Errorf("served %d, latency count %d, want 10", s.Served, s.Latency.Count)
	}
	wantSources := []SourceCount{
		// The table is full after 127.66.0.2; the first request without
		// X-Forwarded-For replaces the least counted entry (127.9.0.2, 1)
		// and inherits its count.
		{Addr: "127.0.0.1", Requests: 3, Overcount: 1, LastRole: "unknown"},
		{Addr: "127.66.0.1", Requests: 3, LastRole: "attack"},
		{Addr: "127.9.0.1", Requests: 3, LastRole: "legit"},
		{Addr: "127.66.0.2", Requests: 1, LastRole: "attack"},
	}
	if d := cmp.Diff(wantSources, s.Sources); d != "" {
		t.Errorf("sources (-want +got):\n%s", d)
	}
}

func TestTopSourcesEviction(t *testing.T) {
	ts := newTopSources(2)
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	for range 5 {
		ts.add(a("127.1.1.1"), RoleAttack)
	}
	ts.add(a("127.2.2.2"), RoleLegit)
	ts.add(a("127.3.3.3"), RoleLegit) // replaces 127.2.2.2 (count 1)
	ts.add(a("127.4.4.4"), RoleLegit) // replaces 127.3.3.3 (count 2)
	want := []SourceCount{
		{Addr: "127.1.1.1", Requests: 5, LastRole: "attack"},
		{Addr: "127.4.4.4", Requests: 3, Overcount: 2, LastRole: "legit"},
	}
	if d := cmp.Diff(want, ts.snapshot()); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	ts.reset()
	if n := len(ts.snapshot()); n != 0 {
		t.Errorf("%d entries after reset", n)
	}
}

var sourceAddrTests = []struct {
	name, remote string
	xff          []string
	want         string
}{
	{"peer only", "127.5.6.7:1234", nil, "127.5.6.7"},
	{"loopback peer trusts last xff", "127.0.0.1:1", []string{"1.2.3.4, 127.8.9.10"}, "127.8.9.10"},
	{"last header wins", "127.0.0.1:1", []string{"1.1.1.1", "2.2.2.2"}, "2.2.2.2"},
	{"spaces", "127.0.0.1:1", []string{" 127.3.3.3 "}, "127.3.3.3"},
	{"junk xff falls back to peer", "127.0.0.1:1", []string{"not-an-ip"}, "127.0.0.1"},
	{"empty last entry", "127.0.0.1:1", []string{"1.2.3.4,"}, "127.0.0.1"},
	{"remote peer ignores xff", "192.0.2.1:5", []string{"127.1.1.1"}, "192.0.2.1"},
	{"ipv6 loopback", "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
	{"mapped peer", "[::ffff:127.0.0.9]:80", nil, "127.0.0.9"},
	{"mapped xff", "127.0.0.1:1", []string{"::ffff:127.4.4.4"}, "127.4.4.4"},
	{"bad remote", "garbage", nil, "invalid IP"},
	{"zoned xff", "[::1]:1", []string{"fe80::1%eth0"}, "fe80::1"},
}

func TestSourceAddr(t *testing.T) {
	for _, tt := range sourceAddrTests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.xff {
				h.Add("X-Forwarded-For", v)
			}
			if got := SourceAddr(tt.remote, h).String(); got != tt.want {
				t.Errorf("SourceAddr = %s, want %s", got, tt.want)
			}
		})
	}
}

func FuzzSourceAddr(f *testing.F) {
	for _, tt := range sourceAddrTests {
		f.Add(tt.remote, strings.Join(tt.xff, ","))
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		h := http.Header{}
		h.Set("X-Forwarded-For", xff)
		a := SourceAddr(remote, h)
		if a.IsValid() && (a.Is4In6() || a.Zone() != "") {
			t.Errorf("SourceAddr(%q, %q) = %v: mapped or zoned", remote, xff, a)
		}
		peer := parseHostAddr(remote)
		if !peer.IsLoopback() && a != peer {
			t.Errorf("non-loopback peer %v: got %v", peer, a)
		}
	})
}

func FuzzParseRole(f *testing.F) {
	for _, s := range []string{"legit", "attack", "", "Legit", "attack "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := ParseRole(s)
		if (r != RoleUnknown) != (s == "legit" || s == "attack") {
			t.Errorf("ParseRole(%q) = %v", s, r)
		}
		if r != RoleUnknown && r.String() != s {
			t.Errorf("round trip %q -> %v", s, r)
		}
	})
}

func TestStatsJSONAndReset(t *testing.T) {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(10 * time.Millisecond) // every reading is 10ms later
		return clock
	}
	o, srv := newTestOrigin(t, Options{Now: now, PageCost: -1})
	for range 3 {
		get(t, http.DefaultClient, srv.URL+"/news/1", map[string]string{RoleHeader: "attack"})
	}
	resp, body := get(t, http.DefaultClient, srv.URL+"/__demo/stats", nil)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("stats JSON: %v\n%s", err, body)
	}
	for _, k := range []string{"since", "workers", "queue", "served", "rejected", "canceled", "in_flight", "queue_depth",
		"peak_queue_depth", "streams", "conns", "latency", "legit", "attack", "unknown", "sources", "sources_capacity"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("stats JSON lacks %q", k)
		}
	}
	var s Stats
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	// Each request reads the clock twice, 10ms apart; 10ms falls in the
	// bucket bounded by 50µs·2^(31/4) ≈ 10.77ms.
	wantLat := Latency{Count: 3, P50ms: 10, P99ms: 10, MaxMs: 10}
	if d := cmp.Diff(wantLat, s.Latency); d != "" {
		t.Errorf("latency (-want +got):\n%s", d)
	}
	if s.Attack.Classes.Page != 3 || s.Workers != DefaultWorkers {
		t.Errorf("decoded stats: %+v", s)
	}

	resp, _ = get(t, http.DefaultClient, srv.URL+"/__demo/reset", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET reset: %d, want 405", resp.StatusCode)
	}
	resp, err := http.Post(srv.URL+"/__demo/reset", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("reset status %d", resp.StatusCode)
	}
	s = o.Stats()
	if s.Served != 0 || s.Attack.Requests != 0 || len(s.Sources) != 0 || s.Latency.Count != 0 || !s.Since.After(clock.Add(-time.Second)) {
		t.Errorf("after reset: %+v", s)
	}
}

func TestHistogram(t *testing.T) {
	tests := []struct {
		name string
		obs  []time.Duration
		want Latency
	}{
		{"empty", nil, Latency{}},
		{"one", []time.Duration{3 * time.Millisecond}, Latency{Count: 1, P50ms: 3, P99ms: 3, MaxMs: 3}},
		{"bucket bound", []time.Duration{time.Millisecond, 100 * time.Millisecond},
			// 1ms lies in the bucket bounded by 50µs·2^(18/4) = 1.131ms.
			Latency{Count: 2, P50ms: 1.131, P99ms: 100, MaxMs: 100}},
		{"p99 of 100", append(repeat(time.Millisecond/10, 98), time.Second, 2*time.Second),
			// rank 50: 100µs is the bound 50µs·2^(4/4) exactly; rank 99:
			// 1s lies in the bucket bounded by 50µs·2^(58/4) = 1158.524ms.
			Latency{Count: 100, P50ms: 0.1, P99ms: 1158.524, MaxMs: 2000}},
		// Bucket 0 holds everything up to 50µs; the maximum caps it.
		{"below base", []time.Duration{0, time.Microsecond}, Latency{Count: 2, P50ms: 0.001, P99ms: 0.001, MaxMs: 0.001}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			for _, d := range tt.obs {
				h.observe(d)
			}
			if d := cmp.Diff(tt.want, h.summary()); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestBucketOf(t *testing.T) {
	for i := range histBuckets - 1 {
		b := histBounds[i]
		if got := bucketOf(b); got != i {
			t.Errorf("bucketOf(bound %d = %v) = %d", i, b, got)
		}
		if got := bucketOf(b + 1); got != i+1 {
			t.Errorf("bucketOf(bound %d + 1ns) = %d", i, got)
		}
	}
}

func TestEvents(t *testing.T) {
	o, srv := newTestOrigin(t, Options{Tick: 5 * time.Millisecond, MaxStreams: 1})
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/events?ticks=3", nil)
	req.Header.Set(RoleHeader, "legit")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	waitFor(t, "the stream to count", func() bool { return o.Stats().Streams == 1 })
	// A second stream is over MaxStreams while the first is open.
	resp2, _ := get(t, http.DefaultClient, srv.URL+"/events", nil)
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second stream: %d, want 503", resp2.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	var ids []string
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			ids = append(ids, v)
		}
	}
	if d := cmp.Diff([]string{"1", "2", "3"}, ids); d != "" {
		t.Errorf("event ids (-want +got):\n%s", d)
	}
	s := o.Stats()
	if s.Legit.Classes.Other != 1 || s.Unknown.Rejected != 1 {
		t.Errorf("stream counts: legit %+v unknown %+v", s.Legit, s.Unknown)
	}
	waitFor(t, "the stream gauge to drop", func() bool { return o.Stats().Streams == 0 })
}

func TestEventsEndOnClose(t *testing.T) {
	o, srv := newTestOrigin(t, Options{Tick: time.Hour})
	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitFor(t, "the stream to open", func() bool { return o.Stats().Streams == 1 })
	o.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Errorf("stream did not end cleanly: %v", err)
	}
}

// TestServeMaxConns checks that Serve holds no more than MaxConns
// connections: a silent connection takes the only slot, a request waits until
// it closes.
func TestServeMaxConns(t *testing.T) {
	o, err := New(Options{MaxConns: 1, PageCost: -1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- o.Serve(ln) }()
	defer func() {
		o.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve returned %v", err)
		}
	}()
	url := fmt.Sprintf("http://%s/", ln.Addr())
	hog, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first connection to be accepted", func() bool { return o.acceptedConns() == 1 })
	type result struct {
		status int
		err    error
	}
	res := make(chan result, 1)
	go func() {
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			res <- result{err: err}
			return
		}
		resp.Body.Close()
		res <- result{status: resp.StatusCode}
	}()
	select {
	case r := <-res:
		t.Fatalf("request served while the only slot was taken: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	hog.Close()
	r := <-res
	if r.err != nil || r.status != http.StatusOK {
		t.Fatalf("after the slot freed: %+v", r)
	}
}

func BenchmarkOriginStatic(b *testing.B) {
	o, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	h := o.Handler()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/static/style.css", nil)
		req.Header.Set(RoleHeader, "legit")
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
		}
	})
}
