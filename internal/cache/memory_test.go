package cache

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestInflightBudget: two large responses fetched at once, for a budget
// that holds one: the second streams through whole but is not stored, its
// key is not marked hit-for-pass, and once both are done the budget is
// back to zero.
func TestInflightBudget(t *testing.T) {
	const size = 640 << 10
	c := mustNew(t, Options{MaxBytes: 16 << 20, MaxEntryBytes: 1 << 20, InflightBytes: 1 << 20})
	release := make(chan struct{})
	aWritten := make(chan struct{})
	o := &origin{handler: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		body := bytes.Repeat([]byte(r.URL.Path[1:]), size)
		if r.URL.Path == "/a" && r.Header.Get("X-Second") == "" {
			w.Write(body[:size/2])
			close(aWritten)
			<-release
			w.Write(body[size/2:])
			return
		}
		w.Write(body)
	}}
	h := c.Middleware(o)
	var wg sync.WaitGroup
	var a *httptest.ResponseRecorder
	wg.Go(func() { a = do(h, "GET", "http://e.org/a") })
	<-aWritten
	b := do(h, "GET", "http://e.org/b")
	if b.Code != 200 || b.Body.Len() != size || b.Body.Bytes()[size-1] != 'b' {
		t.Fatalf("b while a is in flight: %d, %d bytes", b.Code, b.Body.Len())
	}
	if s := c.Stats(); s.InflightRefused == 0 || s.InflightBytes < size/2 || s.InflightBytes > s.InflightMaxBytes {
		t.Errorf("while a is in flight: refused %d, in flight %d of %d", s.InflightRefused, s.InflightBytes, s.InflightMaxBytes)
	}
	close(release)
	wg.Wait()
	if a.Code != 200 || a.Body.Len() != size {
		t.Fatalf("a: %d, %d bytes", a.Code, a.Body.Len())
	}
	steps := []struct{ url, want string }{
		{"http://e.org/a", "HIT"},  // stored
		{"http://e.org/b", "MISS"}, // not stored, not hit-for-pass
		{"http://e.org/b", "HIT"},  // stored this time
	}
	for _, st := range steps {
		if got := do(h, "GET", st.url, "X-Second", "1").Header().Get("Rampart-Cache"); got != st.want {
			t.Errorf("%s: %s, want %s", st.url, got, st.want)
		}
	}
	if s := c.Stats(); s.InflightBytes != 0 || s.HitForPass != 0 {
		t.Errorf("after: %d bytes in flight, %d hit-for-pass marks", s.InflightBytes, s.HitForPass)
	}
}

// proxiedSite answers like a page fetched through a reverse proxy: every
// header value a fresh heap string (as net/http parses them), bodies of
// 0.5 to 24 KiB, a Vary on a quarter of the paths.
func proxiedSite() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seed, _ := strconv.ParseUint(r.URL.Query().Get("n"), 10, 64)
		rng := rand.New(rand.NewPCG(seed, 1))
		h := w.Header()
		h["Content-Type"] = []string{strings.Clone("text/html; charset=utf-8")}
		h["Cache-Control"] = []string{strings.Clone("public, max-age=600")}
		h["Date"] = []string{time.Now().UTC().Format(http.TimeFormat)}
		h["Etag"] = []string{fmt.Sprintf(`"%x"`, rng.Uint64())}
		h["Last-Modified"] = []string{strings.Clone("Mon, 02 Jan 2026 15:04:05 GMT")}
		h["Server"] = []string{strings.Clone("nginx/1.22.1")}
		h["X-Request-Id"] = []string{fmt.Sprintf("%x-%x", rng.Uint64(), rng.Uint64())}
		if seed%4 == 0 {
			h["Vary"] = []string{strings.Clone("Accept-Encoding")}
		}
		n := 512 + rng.IntN(24<<10)
		h["Content-Length"] = []string{strconv.Itoa(n)}
		w.Write(bytes.Repeat([]byte{'x'}, n))
	})
}

// floodMemory sends n cache-busting requests (distinct paths and queries,
// new parameter names, normal mode so that every one is stored and learned
// from) through h and returns the highest HeapInuse seen.
func floodMemory(h http.Handler, n int) uint64 {
	w := &benchWriter{h: make(http.Header, 16)}
	var ms runtime.MemStats
	var peak uint64
	for i := range n {
		clear(w.h)
		url := fmt.Sprintf("http://www.example.org/news/%s-%d?n=%d&p%d=%d", strings.Repeat("a", i%40), i, i, i%97, i)
		r := httptest.NewRequest("GET", url, nil)
		r.Header.Set("Accept-Encoding", [...]string{"gzip", "br", "gzip, br", ""}[i%4])
		h.ServeHTTP(w, r)
		if i%2000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	return peak
}

// TestMemoryBoundedByMaxBytes: a cache-busting flood three times the size
// of the cache, with proxy-like responses and the learning table churning,
// leaves a live heap (after a collection) within MaxBytes: the weights count
// what entries really hold, and the learning table and in-flight memory are
// reserved out of it.
func TestMemoryBoundedByMaxBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a 16 MiB cache three times")
	}
	const maxBytes = 16 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := mustNew(t, Options{MaxBytes: maxBytes, LearnParams: true})
	h := c.Middleware(proxiedSite())
	floodMemory(h, 5000) // about 3 x 13 MiB of pages
	c.store.CleanUp()
	runtime.GC()
	runtime.ReadMemStats(&after)
	s := c.Stats()
	live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("live heap %.1f MiB for MaxBytes %d MiB (store weight %.1f of %.1f MiB, %d entries, %.0f bytes of heap per unit of weight; learning %d groups %d names of %.1f MiB reserved; evictions %d)",
		float64(live)/(1<<20), maxBytes>>20, float64(s.Bytes)/(1<<20), float64(s.StoreMaxBytes)/(1<<20), s.Entries,
		float64(live)/float64(s.Bytes), s.LearnedPaths, s.LearnedNames, float64(s.LearnReservedBytes)/(1<<20), s.Evictions)
	if s.Evictions == 0 || s.Bytes > uint64(s.StoreMaxBytes) {
		t.Fatalf("the flood did not fill the store: %+v", s)
	}
	if live > maxBytes {
		t.Errorf("live heap %d bytes, more than MaxBytes %d", live, maxBytes)
	}
	runtime.KeepAlive(c)
}

// procStatus reads a field of /proc/self/status in bytes (0 if unknown).
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkFloodMemory fills a 64 MiB cache three times over with a
// cache-busting flood through a real reverse proxy on loopback and reports
// the memory it took against MaxBytes: the live heap after a collection,
// the highest HeapInuse during the flood, and the growth of the process's
// resident set (VmHWM), with the default GOGC. Run it with -benchtime=1x.
func BenchmarkFloodMemory(b *testing.B) {
	const maxBytes = 64 << 20
	osrv := httptest.NewServer(proxiedSite())
	defer osrv.Close()
	proxy := proxyTo(osrv.Listener.Addr().String(), 5*time.Second)
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rss0 := procStatus("VmHWM")
		c := mustNew(b, Options{MaxBytes: maxBytes, LearnParams: true})
		peak := floodMemory(c.Middleware(proxy), 20000)
		rss1 := procStatus("VmHWM")
		c.store.CleanUp()
		runtime.GC()
		runtime.ReadMemStats(&after)
		s := c.Stats()
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/maxBytes, "live/MaxBytes")
		b.ReportMetric(float64(int64(peak)-int64(before.HeapInuse))/maxBytes, "peak-heap/MaxBytes")
		b.ReportMetric(float64(rss1-rss0)/maxBytes, "rss-growth/MaxBytes")
		b.ReportMetric(float64(s.Bytes)/maxBytes, "weight/MaxBytes")
		runtime.KeepAlive(c)
	}
	_ = io.Discard
}
