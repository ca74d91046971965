package upstream

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strings"
	"testing"
	"time"
)

var smallPage = "<!doctype html><title>ok</title>" + strings.Repeat("<p>hello</p>", 80) // ~1 KiB

func benchOrigin(b *testing.B) *httptest.Server {
	b.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/html; charset=utf-8"}
		h["Content-Length"] = []string{fmt.Sprint(len(smallPage))}
		_, _ = io.WriteString(w, smallPage)
	}))
	s.Config.ErrorLog = nil
	b.Cleanup(s.Close)
	return s
}

// discardWriter is a reusable ResponseWriter, so that the benchmark
// measures the proxy and not the recorder.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }
func (w *discardWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

func serveParallel(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req := httptest.NewRequest(http.MethodGet, "http://site.example/page?x=1", nil).WithContext(ctx)
		req.RemoteAddr = "192.0.2.10:4321"
		req.Header.Set("Accept", "text/html")
		req.Header.Set("User-Agent", "bench")
		w := &discardWriter{h: make(http.Header)}
		for pb.Next() {
			clear(w.h)
			w.code, w.n = 0, 0
			h.ServeHTTP(w, req)
			if w.code != 200 || w.n != len(smallPage) {
				b.Fatalf("status %d, %d bytes", w.code, w.n)
			}
		}
	})
}

// bareProxy is the baseline: the standard library's ReverseProxy with the
// same transport tuning and the usual Rewrite.
func bareProxy(b testing.TB, origin string) http.Handler {
	u := mustURL(b, origin)
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	b.Cleanup(tr.CloseIdleConnections)
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		Transport: tr,
	}
}

// BenchmarkProxySmallPage proxies a ~1 KiB keep-alive page from a loopback
// origin. "rampart" and "bare" call ServeHTTP directly (the origin's own
// server cost is in both); the e2e pair adds a real frontend server and
// client on loopback.
func BenchmarkProxySmallPage(b *testing.B) {
	origin := benchOrigin(b)
	pool, err := New(Options{Targets: targets(b, origin), HealthCheck: HealthCheckOptions{Disabled: true}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	bare := bareProxy(b, origin.URL)
	b.Run("rampart", func(b *testing.B) { serveParallel(b, pool) })
	b.Run("bare", func(b *testing.B) { serveParallel(b, bare) })
	observed, err := New(Options{
		Targets: targets(b, origin), HealthCheck: HealthCheckOptions{Disabled: true},
		OnResponse: func(*http.Request, int, time.Duration) {},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(observed.Close)
	b.Run("rampart_observed", func(b *testing.B) { serveParallel(b, observed) })
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"e2e_rampart", pool}, {"e2e_bare", bare}} {
		b.Run(tc.name, func(b *testing.B) {
			fe := httptest.NewServer(tc.h)
			defer fe.Close()
			cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
			defer cl.CloseIdleConnections()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := cl.Get(fe.URL + "/page")
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			})
		})
	}
}

// BenchmarkAllDown is the cost of answering when every origin is ejected:
// the shield's 502 without touching the network.
func BenchmarkAllDown(b *testing.B) {
	clock := newFakeClock()
	p, err := New(Options{
		Targets: []Target{{URL: mustURL(b, "http://127.0.0.1:1")}},
		Now:     clock.Now, HealthCheck: HealthCheckOptions{Disabled: true},
	})
	if err != nil {
		b.Fatal(err)
	}
	u := p.ups[0]
	u.mu.Lock()
	p.ejectLocked(u, p.nowNanos())
	u.mu.Unlock()
	u.lastFail.Store(p.nowNanos())
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		p.ServeHTTP(w, req)
	}
	if w.code != http.StatusBadGateway {
		b.Fatalf("status %d", w.code)
	}
}

// BenchmarkPick measures choosing an origin, in parallel.
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{3, 16} {
		ts := make([]Target, n)
		for i := range ts {
			ts[i] = Target{URL: mustURL(b, fmt.Sprintf("http://127.0.0.1:%d", 10000+i)), Weight: 1 + i%3}
		}
		for _, bal := range []string{BalanceRoundRobin, BalanceLeastConn} {
			for _, open := range []bool{false, true} {
				name := fmt.Sprintf("%s/origins=%d", bal, n)
				if open {
					name += "/one_ejected"
				}
				b.Run(name, func(b *testing.B) {
					p, err := New(Options{Targets: ts, Balance: bal, HealthCheck: HealthCheckOptions{Disabled: true}})
					if err != nil {
						b.Fatal(err)
					}
					defer p.Close()
					if open {
						u := p.ups[0]
						u.mu.Lock()
						p.ejectLocked(u, p.nowNanos())
						u.mu.Unlock()
					}
					b.ReportAllocs()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							u, probe := p.pick(nil)
							if u == nil || probe {
								b.Fatal("no pick")
							}
						}
					})
				})
			}
		}
	}
}

// cannedOrigin answers every request on a connection with the same bytes,
// allocating nothing per request, so that a benchmark sees the proxy's own
// costs.
func cannedOrigin(b *testing.B, answer string) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 8<<10)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						i := strings.Index(string(buf[:n]), "\r\n\r\n")
						if i < 0 {
							break
						}
						if _, err := io.WriteString(c, answer); err != nil {
							return
						}
						n = copy(buf, buf[i+4:n])
					}
				}
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

// BenchmarkDirectSmallPage is one proxied ~1 KiB page on the direct path
// (and, for comparison, through net/http's Transport and ReverseProxy),
// against an origin that costs nothing per request: the allocations are
// the pool's own.
func BenchmarkDirectSmallPage(b *testing.B) {
	answer := fmt.Sprintf("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 25 Nov 2026 09:01:53 GMT\r\n"+
		"Content-Type: text/html\r\nContent-Length: %d\r\nConnection: keep-alive\r\n"+
		"Last-Modified: Wed, 25 Nov 2026 09:01:52 GMT\r\nEtag: \"6b06a400-400\"\r\n"+
		"Cache-Control: no-store\r\nAccept-Ranges: bytes\r\n\r\n%s", len(smallPage), smallPage)
	origin := cannedOrigin(b, answer)
	for _, tc := range []struct {
		name string
		off  bool
	}{{"direct", false}, {"reverseproxy", true}} {
		b.Run(tc.name, func(b *testing.B) {
			pool, err := New(Options{Targets: []Target{{URL: mustURL(b, origin)}}, HealthCheck: HealthCheckOptions{Disabled: true}, DisableFastPath: tc.off})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pool.Close)
			serveParallel(b, pool)
		})
	}
}
