package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// load sends n requests with c workers through url and fails the test on
// any transport error or unexpected status.
func load(t testing.TB, cl *http.Client, url string, n, c int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, c)
	per := n / c
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				res, err := cl.Get(url)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					errs <- fmt.Errorf("status %d", res.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		a, b := newOrigin(t, "a"), newOrigin(t, "b")
		origins := []*httptest.Server{a, b}
		p, err := New(Options{
			Targets:     targets(t, a, b),
			Balance:     BalanceLeastConn,
			HealthCheck: HealthCheckOptions{Interval: 10 * time.Millisecond},
			OnResponse:  func(*http.Request, int, time.Duration) {},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		p.Start(ctx)
		fe := httptest.NewServer(p)
		cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
		load(t, cl, fe.URL+"/", 2000, 8)
		for _, st := range p.Health() {
			if st.InFlight != 0 {
				t.Errorf("%s: %d in flight after the load", st.URL, st.InFlight)
			}
		}
		cl.CloseIdleConnections()
		fe.Close()
		cancel()
		p.Close()
		for _, o := range origins {
			o.Close()
		}
	}()
	waitFor(t, "goroutines to settle at "+strconv.Itoa(base), 10*time.Second, func() bool {
		return runtime.NumGoroutine() <= base
	})
}

// TestSoak proxies 20,000 requests (RAMPART_SOAK=1000000 for the long
// soak; bench/proxy.sh soaks the whole binary) and checks that goroutines
// and the heap do not grow.
func TestSoak(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("RAMPART_SOAK"))
	if n <= 0 {
		n = 20000
	}
	origin := newOrigin(t, "a")
	p := newPool(t, Options{Targets: targets(t, origin), HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, _ := frontend(t, p)
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(cl.CloseIdleConnections)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	warm := min(n/10, 20000)
	load(t, cl, fe.URL+"/", warm, 16)
	g0, h0 := runtime.NumGoroutine(), heap()
	start := time.Now()
	load(t, cl, fe.URL+"/", n, 16)
	el := time.Since(start)
	g1, h1 := runtime.NumGoroutine(), heap()
	t.Logf("%d requests in %v (%.0f/s); goroutines %d -> %d; heap in use %d KiB -> %d KiB",
		n, el.Round(time.Millisecond), float64(n)/el.Seconds(), g0, g1, h0>>10, h1>>10)
	if g1 > g0+4 {
		t.Errorf("goroutines grew %d -> %d", g0, g1)
	}
	if h1 > h0+8<<20 {
		t.Errorf("heap grew %d KiB -> %d KiB", h0>>10, h1>>10)
	}
}
