package cache

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// page2K is a small page: 2 KiB of HTML.
var page2K = strings.Repeat("<p>news</p>", 2048/11+1)[:2048]

// benchWriter is a reusable ResponseWriter, as net/http's is per request.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}
func (w *benchWriter) WriteHeader(code int) { w.status = code }

func pageOrigin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("ETag", `"abc123"`)
		h.Set("Last-Modified", "Mon, 02 Jan 2026 15:04:05 GMT")
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		io.WriteString(w, page2K)
	})
}

func benchHit(b *testing.B, url string, mode verdict.Mode, hdr ...string) {
	var m modeVar
	m.set(mode)
	c := mustNew(b, Options{Mode: m.get, LearnParams: true})
	h := c.Middleware(pageOrigin())
	req := httptest.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if w := do(h, "GET", url, hdr...); w.Header().Get("Rampart-Cache") != "MISS" {
		b.Fatalf("warm-up: %s", w.Header().Get("Rampart-Cache"))
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(page2K)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{h: make(http.Header, 16)}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, req)
			if w.status != 200 || w.n == 0 {
				b.Errorf("status %d", w.status)
				return
			}
			w.n = 0
		}
	})
	b.StopTimer()
	if s := c.Stats(); s.Misses != 1 {
		b.Fatalf("misses %d", s.Misses)
	}
}

// BenchmarkCacheHit serves a 2 KiB page from the cache through the
// middleware, every goroutine with its own reusable response writer.
func BenchmarkCacheHit(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchHit(b, "http://www.example.org/news/42", verdict.ModeNormal) })
	b.Run("query", func(b *testing.B) {
		benchHit(b, "http://www.example.org/search?q=budget&page=2&sort=date", verdict.ModeNormal)
	})
	b.Run("under_attack_query", func(b *testing.B) {
		benchHit(b, "http://www.example.org/search?q=budget&cb=8f9a2", verdict.ModeUnderAttack)
	})
	b.Run("browser_headers", func(b *testing.B) {
		benchHit(b, "http://www.example.org/news/42", verdict.ModeNormal,
			"Accept-Encoding", "gzip, deflate, br", "Cookie", "_ga=GA1.2.3; theme=dark; rampart_clearance=abcdef")
	})
}

// BenchmarkCacheKey builds and hashes the key of a request with a query.
func BenchmarkCacheKey(b *testing.B) {
	c := mustNew(b, Options{KnownParams: map[string][]string{"/search": {"q", "page"}}})
	tests := []struct {
		name string
		url  string
		keep bool
	}{
		{"no_query", "http://www.example.org/news/2026/11/budget-vote", false},
		{"sorted_query", "http://www.example.org/search?sort=date&q=budget&page=2&lang=en", false},
		{"filtered_query", "http://www.example.org/search?sort=date&q=budget&cb=88121&page=2", true},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", tt.url, nil)
			b.ReportAllocs()
			for b.Loop() {
				kb := getKeyBuf()
				var pf paramFilter
				var f *paramFilter
				if tt.keep {
					c.params.filterFor(r.URL.Path, &pf)
					f = &pf
				}
				buildPrimary(kb, r, f)
				c.lookup(kb, r)
				putKeyBuf(kb)
			}
		})
	}
}

// BenchmarkMemoryPerEntry stores b.N distinct 2 KiB pages with typical
// headers and reports the heap they take per entry and the overhead beyond
// the body.
func BenchmarkMemoryPerEntry(b *testing.B) {
	c := mustNew(b, Options{MaxBytes: 8 << 30})
	h := c.Middleware(pageOrigin())
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		reqs[i] = httptest.NewRequest("GET", fmt.Sprintf("http://www.example.org/news/%d", i), nil)
	}
	w := &benchWriter{h: make(http.Header, 16)}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		h.ServeHTTP(w, reqs[i])
	}
	b.StopTimer()
	c.store.CleanUp()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if s := c.Stats(); s.Entries != b.N {
		b.Fatalf("entries %d, want %d", s.Entries, b.N)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / float64(b.N)
	b.ReportMetric(per, "bytes/entry")
	b.ReportMetric(per-float64(len(page2K)), "overhead-bytes/entry")
	b.ReportMetric(float64(c.Stats().Bytes)/float64(b.N), "weight/entry")
	runtime.KeepAlive(reqs)
}
