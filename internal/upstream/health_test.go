package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// switchOrigin answers health checks with the status held in code and
// everything else with 200 naming itself.
type switchOrigin struct {
	*httptest.Server
	code   atomic.Int32
	checks atomic.Int32
	mu     sync.Mutex
	last   *http.Request
}

func newSwitchOrigin(t testing.TB, name string) *switchOrigin {
	t.Helper()
	o := &switchOrigin{}
	o.code.Store(200)
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") == healthCheckUserAgent {
			o.checks.Add(1)
			o.mu.Lock()
			o.last = r.Clone(context.Background())
			o.mu.Unlock()
			w.WriteHeader(int(o.code.Load()))
			return
		}
		w.Header().Set("Origin", name)
	}))
	t.Cleanup(o.Close)
	return o
}

func TestHealthThresholds(t *testing.T) {
	cases := []struct {
		name  string
		codes []int32
		want  []bool // healthy after each check
	}{
		{"stays up on success", []int32{200, 204, 301}, []bool{true, true, true}},
		{"down after three failures", []int32{500, 500, 500}, []bool{true, true, false}},
		{"failures must be consecutive", []int32{500, 500, 200, 500, 500}, []bool{true, true, true, true, true}},
		{"up after two successes", []int32{500, 500, 500, 200, 200}, []bool{true, true, false, false, true}},
		{"successes must be consecutive", []int32{404, 404, 404, 200, 503, 200, 200}, []bool{true, true, false, false, false, false, true}},
		{"client errors fail", []int32{400, 401, 404}, []bool{true, true, false}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := newSwitchOrigin(t, "a")
			p := newPool(t, Options{Targets: targets(t, o.Server)})
			for i, code := range tc.codes {
				o.code.Store(code)
				p.checkOnce(context.Background(), p.ups[0])
				if got := p.Health()[0].Healthy; got != tc.want[i] {
					t.Fatalf("after check %d (status %d) healthy = %v, want %v", i, code, got, tc.want[i])
				}
			}
		})
	}
}

func TestHealthCheckUnreachableAndTimeout(t *testing.T) {
	stall := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(stall) })
	p := newPool(t, Options{
		Targets:     []Target{{URL: mustURL(t, "http://"+deadAddr(t))}, {URL: mustURL(t, slow.URL)}},
		HealthCheck: HealthCheckOptions{Interval: time.Second, Timeout: 20 * time.Millisecond, UnhealthyThreshold: 1},
	})
	for _, u := range p.ups {
		p.checkOnce(context.Background(), u)
	}
	for _, st := range p.Health() {
		if st.Healthy || st.LastError == "" {
			t.Errorf("%s: healthy %v, last error %q; want down with an error", st.URL, st.Healthy, st.LastError)
		}
	}
}

func TestActiveHealthChecksDriveTraffic(t *testing.T) {
	a, b := newSwitchOrigin(t, "a"), newSwitchOrigin(t, "b")
	p := newPool(t, Options{
		Targets: targets(t, a.Server, b.Server),
		Host:    "site.example",
		HealthCheck: HealthCheckOptions{
			// Short interval, generous timeout: a loaded machine must not
			// fail checks by slowness.
			Path: "/healthz", Interval: 5 * time.Millisecond, Timeout: 5 * time.Second,
			HealthyThreshold: 2, UnhealthyThreshold: 2,
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.Start(ctx)
	p.Start(ctx) // second call is a no-op
	fe, cl := frontend(t, p)

	a.code.Store(503)
	waitFor(t, "a marked down", 5*time.Second, func() bool { return !status(p, a.URL).Healthy })
	for i := 0; i < 6; i++ {
		res, _ := get(t, cl, fe.URL+"/")
		if o := res.Header.Get("Origin"); o != "b" {
			t.Fatalf("request %d went to %q while a is down", i, o)
		}
	}
	if !p.Healthy() {
		t.Fatal("pool unhealthy with b up")
	}
	b.code.Store(500)
	waitFor(t, "b marked down", 5*time.Second, func() bool { return !status(p, b.URL).Healthy })
	if p.Healthy() {
		t.Fatal("pool healthy with every origin down")
	}
	a.code.Store(200)
	waitFor(t, "a marked up", 5*time.Second, func() bool { return status(p, a.URL).Healthy })
	res, _ := get(t, cl, fe.URL+"/")
	if o := res.Header.Get("Origin"); o != "a" {
		t.Fatalf("request went to %q after a recovered", o)
	}

	a.mu.Lock()
	last := a.last
	a.mu.Unlock()
	if last.URL.Path != "/healthz" || last.Host != "site.example" || last.Method != http.MethodGet {
		t.Fatalf("check was %s %s Host %q", last.Method, last.URL.Path, last.Host)
	}

	// Close stops the checks: the count stays put.
	p.Close()
	n := a.checks.Load()
	p.Start(ctx) // after Close: no-op
	// Many check intervals' worth of proxied requests later, at most the
	// check that was on the wire when Close ran has arrived.
	for i := 0; i < 20; i++ {
		get(t, cl, fe.URL+"/")
	}
	if got := a.checks.Load(); got > n+1 {
		t.Fatalf("health checks went on after Close: %d, then %d", n, got)
	}
}

func TestHealthCheckShortensEjection(t *testing.T) {
	a := newSwitchOrigin(t, "a")
	clock := newFakeClock()
	p := newPool(t, Options{Targets: targets(t, a.Server), Now: clock.Now})
	u := p.ups[0]
	u.mu.Lock()
	p.ejectLocked(u, p.nowNanos())
	u.mu.Unlock()
	if st := p.Health()[0].Breaker; st != BreakerOpen {
		t.Fatalf("breaker %v, want open", st)
	}
	p.checkOnce(context.Background(), u)
	if st := p.Health()[0].Breaker; st != BreakerHalfOpen {
		t.Fatalf("after a passing check breaker %v, want half-open", st)
	}
}
