package cache

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/admission"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// proxyTo is a reverse proxy to the origin at addr, as the upstream package
// will be, with a response header timeout.
func proxyTo(addr string, headerTimeout time.Duration) *httputil.ReverseProxy {
	target := &url.URL{Scheme: "http", Host: addr}
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = pr.In.Host },
		Transport: &http.Transport{ResponseHeaderTimeout: headerTimeout, MaxIdleConnsPerHost: 64},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
}

// TestOriginStoppedServesStaleThenFresh: the full chain, cache → admission →
// proxy → origin, on loopback. The origin stops: the cached page keeps being
// served, marked STALE, first in place of the proxy's 502s, then in place of
// the admission breaker's 503s. The origin comes back on the same address:
// the breaker's trial notices and fresh pages return.
func TestOriginStoppedServesStaleThenFresh(t *testing.T) {
	clk := newFakeClock()
	version := atomic.Int64{}
	version.Store(1)
	var originHits atomic.Int64
	originHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originHits.Add(1)
		w.Header().Set("Cache-Control", "max-age=1")
		fmt.Fprintf(w, "front page v%d", version.Load())
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	osrv := &http.Server{Handler: originHandler}
	go osrv.Serve(ln)

	c := mustNew(t, Options{Now: clk.Now})
	lim, err := admission.New(admission.Options{Now: clk.Now, BreakerFailures: 3, BreakerOpen: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(c.Middleware(lim.Middleware(proxyTo(addr, 2*time.Second), admission.Hooks{})))
	defer front.Close()
	client := front.Client()

	resp, body := get(t, client, front.URL+"/")
	if resp.StatusCode != 200 || body != "front page v1" || resp.Header.Get("Rampart-Cache") != "MISS" {
		t.Fatalf("first: %d %q %s", resp.StatusCode, body, resp.Header.Get("Rampart-Cache"))
	}

	// The origin stops.
	osrv.Close()
	clk.Advance(2 * time.Second)
	for i := range 10 {
		resp, body := get(t, client, front.URL+"/")
		if resp.StatusCode != 200 || body != "front page v1" || resp.Header.Get("Rampart-Cache") != "STALE" {
			t.Fatalf("origin down, request %d: %d %q %s", i, resp.StatusCode, body, resp.Header.Get("Rampart-Cache"))
		}
		if resp.Header.Get("Age") == "" {
			t.Errorf("stale copy without Age")
		}
	}
	if s := lim.Stats(); s.Breaker != "open" {
		t.Errorf("breaker %q after the origin died, want open", s.Breaker)
	}
	// A page never cached gets the admission's 503.
	resp, _ = get(t, client, front.URL+"/never-seen")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Rampart-Mitigated") != "origin-down" {
		t.Errorf("uncached page while down: %d %q", resp.StatusCode, resp.Header.Get("Rampart-Mitigated"))
	}

	// The origin comes back on the same address with a new version.
	version.Store(2)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("relisten on %s: %v", addr, err)
	}
	osrv2 := &http.Server{Handler: originHandler}
	go osrv2.Serve(ln2)
	defer osrv2.Close()

	// While the breaker is still open, stale copies.
	resp, body = get(t, client, front.URL+"/")
	if body != "front page v1" || resp.Header.Get("Rampart-Cache") != "STALE" {
		t.Fatalf("breaker open: %q %s", body, resp.Header.Get("Rampart-Cache"))
	}
	clk.Advance(5 * time.Second)
	resp, body = get(t, client, front.URL+"/")
	if resp.StatusCode != 200 || body != "front page v2" || resp.Header.Get("Rampart-Cache") != "MISS" {
		t.Fatalf("origin back: %d %q %s", resp.StatusCode, body, resp.Header.Get("Rampart-Cache"))
	}
	resp, body = get(t, client, front.URL+"/")
	if body != "front page v2" || resp.Header.Get("Rampart-Cache") != "HIT" {
		t.Fatalf("after: %q %s", body, resp.Header.Get("Rampart-Cache"))
	}
	s := c.Stats()
	t.Logf("cache %+v", s)
	if s.Stale < 11 {
		t.Errorf("stale serves %d, want at least 11", s.Stale)
	}
}

// TestThousandConcurrentMissesOneOriginRequest: 1,000 concurrent requests
// for one uncached page over loopback reach the origin once.
func TestThousandConcurrentMissesOneOriginRequest(t *testing.T) {
	const n = 1000
	release := make(chan struct{})
	var originHits atomic.Int64
	osrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originHits.Add(1)
		<-release
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, strings.Repeat("x", 2048))
	}))
	defer osrv.Close()
	c := mustNew(t, Options{CoalesceWait: time.Minute})
	front := httptest.NewServer(c.Middleware(proxyTo(osrv.Listener.Addr().String(), time.Minute)))
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}, Timeout: 60 * time.Second}
	defer client.CloseIdleConnections()
	released := false
	defer func() {
		if !released {
			close(release) // let the servers close if the test fails early
		}
	}()

	var wg sync.WaitGroup
	var ok, bad atomic.Int64
	labels := sync.Map{}
	for range n {
		wg.Go(func() {
			resp, err := client.Get(front.URL + "/article")
			if err != nil {
				bad.Add(1)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && len(b) == 2048 {
				ok.Add(1)
			} else {
				bad.Add(1)
			}
			v, _ := labels.LoadOrStore(resp.Header.Get("Rampart-Cache"), new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		})
	}
	eventuallyWithin(t, 45*time.Second, "all requests to wait for the leader", func() bool { return c.Stats().Waiting == n-1 })
	close(release)
	released = true
	wg.Wait()
	labels.Range(func(k, v any) bool { t.Logf("Rampart-Cache %q: %d", k, v.(*atomic.Int64).Load()); return true })
	if ok.Load() != n {
		t.Errorf("%d good answers, %d bad, want %d good", ok.Load(), bad.Load(), n)
	}
	if got := originHits.Load(); got != 1 {
		t.Errorf("the origin saw %d requests, want 1", got)
	}
	s := c.Stats()
	if s.Misses != 1 || s.Coalesced != n-1 {
		t.Errorf("misses %d coalesced %d, want 1 and %d", s.Misses, s.Coalesced, n-1)
	}
}

// TestCacheBustingFloodUnderAttack: random query strings from thousands of
// loopback addresses, under_attack mode: every request maps to the one
// entry of the page, so the origin sees a handful of requests a second
// (one per micro-cache TTL plus background refreshes).
func TestCacheBustingFloodUnderAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time flood")
	}
	var originHits atomic.Int64
	osrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originHits.Add(1)
		// A dynamic page without cache headers, as most CMS front pages.
		io.WriteString(w, "<html>front page</html>")
	}))
	defer osrv.Close()
	var m modeVar
	m.set(verdict.ModeUnderAttack)
	c := mustNew(t, Options{Mode: m.get, MicroTTL: time.Second})
	front := httptest.NewServer(c.Middleware(proxyTo(osrv.Listener.Addr().String(), 2*time.Second)))
	defer front.Close()

	// Each request from its own address in 127.0.0.0/8 (no keep-alive).
	var next atomic.Uint32
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		i := next.Add(1)
		src := net.IPv4(127, byte(1+i>>16%250), byte(i>>8), byte(i))
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
		return d.DialContext(ctx, network, addr)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer, DisableKeepAlives: true}, Timeout: 5 * time.Second}

	const workers, perWorker = 40, 50 // 2,000 requests, at most 20 s
	deadline := time.Now().Add(20 * time.Second)
	start := time.Now()
	var wg sync.WaitGroup
	var sent, okCount atomic.Int64
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range perWorker {
				if time.Now().After(deadline) {
					return
				}
				u := fmt.Sprintf("%s/?%x=%x&_=%d", front.URL, rng.Uint32(), rng.Uint64(), rng.Int64())
				resp, err := client.Get(u)
				sent.Add(1)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					okCount.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	perSecond := float64(originHits.Load()) / elapsed.Seconds()
	t.Logf("%d requests from %d addresses in %v, %d answered 200; origin saw %d (%.1f/s); cache %+v",
		sent.Load(), next.Load(), elapsed.Round(time.Millisecond), okCount.Load(), originHits.Load(), perSecond, c.Stats())
	if okCount.Load() < sent.Load()*9/10 {
		t.Errorf("only %d of %d requests answered 200", okCount.Load(), sent.Load())
	}
	if next.Load() < 1000 {
		t.Errorf("only %d source addresses used", next.Load())
	}
	if perSecond > 5 {
		t.Errorf("origin saw %.1f requests/s, want at most a handful (5)", perSecond)
	}
}
