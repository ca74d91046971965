package upstream

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flakyOrigin answers 503 while fail is set, else 200, naming itself.
func flakyOrigin(t testing.TB, name string, fail *atomic.Bool) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Origin", name)
		if fail.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "origin maintenance")
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func TestPassiveWindow(t *testing.T) {
	cases := []struct {
		name    string
		steps   []time.Duration // clock advance before each failure
		ejected []bool          // breaker open after each failure
	}{
		{"three quick failures eject", []time.Duration{0, time.Second, time.Second}, []bool{false, false, true}},
		{"spread beyond the window", []time.Duration{0, 6 * time.Second, 6 * time.Second}, []bool{false, false, false}},
		{"window slides", []time.Duration{0, 6 * time.Second, 6 * time.Second, 0}, []bool{false, false, false, true}},
		{"exactly the window still counts", []time.Duration{0, 5 * time.Second, 5 * time.Second}, []bool{false, false, true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			p := newPool(t, Options{
				Targets: []Target{{URL: mustURL(t, "http://127.0.0.1:1")}},
				Passive: PassiveOptions{MaxFails: 3, Window: 10 * time.Second},
				Now:     clock.Now, HealthCheck: HealthCheckOptions{Disabled: true},
			})
			u := p.ups[0]
			for i, d := range tc.steps {
				clock.Advance(d)
				p.recordFailure(u, false, errors.New("boom"))
				if got := u.open.Load(); got != tc.ejected[i] {
					t.Fatalf("after failure %d open = %v, want %v", i, got, tc.ejected[i])
				}
			}
		})
	}
}

func TestEjectionDoubling(t *testing.T) {
	clock := newFakeClock()
	p := newPool(t, Options{
		Targets: []Target{{URL: mustURL(t, "http://127.0.0.1:1")}},
		Passive: PassiveOptions{MaxFails: 1, EjectFor: 30 * time.Second, MaxEjectFor: 200 * time.Second},
		Now:     clock.Now, HealthCheck: HealthCheckOptions{Disabled: true},
	})
	u := p.ups[0]
	ejectedFor := func() time.Duration {
		return time.Duration(u.openUntil.Load() - p.nowNanos())
	}
	p.recordFailure(u, false, errors.New("down"))
	want := []time.Duration{30 * time.Second, 60 * time.Second, 120 * time.Second, 200 * time.Second, 200 * time.Second}
	for i, w := range want {
		if got := ejectedFor(); got != w {
			t.Fatalf("ejection %d lasts %v, want %v", i, got, w)
		}
		clock.Advance(w)
		if !u.tryHalfOpen(p.nowNanos()) {
			t.Fatalf("ejection %d: no half-open probe after %v", i, w)
		}
		if i < len(want)-1 {
			p.recordFailure(u, true, errors.New("still down"))
		}
	}
	p.recordSuccess(u, true)
	if u.open.Load() || p.nOpen.Load() != 0 {
		t.Fatal("successful probe did not close the breaker")
	}
	// Failing again soon after recovering continues the doubling...
	clock.Advance(time.Minute)
	p.recordFailure(u, false, errors.New("again"))
	if got := ejectedFor(); got != 200*time.Second {
		t.Fatalf("re-ejection soon after recovery lasts %v, want 200s", got)
	}
	clock.Advance(200 * time.Second)
	u.tryHalfOpen(p.nowNanos())
	p.recordSuccess(u, true)
	// ...a quiet MaxEjectFor starts it over.
	clock.Advance(200 * time.Second)
	p.recordFailure(u, false, errors.New("much later"))
	if got := ejectedFor(); got != 30*time.Second {
		t.Fatalf("ejection after a quiet spell lasts %v, want 30s", got)
	}
	if n := p.Health()[0].Ejections; n != 7 {
		t.Fatalf("ejections = %d, want 7", n)
	}
}

func TestPassiveEjectionAndHalfOpenProbe(t *testing.T) {
	var failA atomic.Bool
	a, b := flakyOrigin(t, "a", &failA), newOrigin(t, "b")
	clock := newFakeClock()
	p := newPool(t, Options{Targets: targets(t, a, b), Now: clock.Now, HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, cl := frontend(t, p)

	failA.Store(true)
	sawA := 0
	for i := 0; i < 10; i++ {
		res, body := get(t, cl, fe.URL+"/")
		if res.Header.Get("Origin") == "a" {
			sawA++
			// The origin's own 503 reaches the client untouched.
			if res.StatusCode != 503 || body != "origin maintenance" || res.Header.Get(HeaderMitigated) != "" {
				t.Fatalf("origin 503 altered: %d %q %q", res.StatusCode, body, res.Header.Get(HeaderMitigated))
			}
		}
	}
	if sawA != 5 {
		t.Fatalf("a answered %d of 10, want 5 (then ejected)", sawA)
	}
	st := status(p, a.URL)
	if st.Breaker != BreakerOpen || st.Failures != 5 || !st.EjectedUntil.Equal(clock.Now().Add(30*time.Second)) {
		t.Fatalf("after 5 failures: %+v", st)
	}
	for i := 0; i < 10; i++ {
		if res, _ := get(t, cl, fe.URL+"/"); res.Header.Get("Origin") != "b" {
			t.Fatalf("request %d reached a while ejected", i)
		}
	}

	// Ejection over: the next request is the single probe; a still fails.
	clock.Advance(30 * time.Second)
	if st := status(p, a.URL); st.Breaker != BreakerHalfOpen || !st.Available {
		t.Fatalf("after 30s: %+v", st)
	}
	if res, _ := get(t, cl, fe.URL+"/"); res.Header.Get("Origin") != "a" {
		t.Fatal("half-open a was not probed first")
	}
	if st := status(p, a.URL); st.Breaker != BreakerOpen || !st.EjectedUntil.Equal(clock.Now().Add(60*time.Second)) {
		t.Fatalf("failed probe: %+v, want open for 60s", st)
	}

	// a recovers; after the doubled ejection the probe closes the breaker.
	failA.Store(false)
	clock.Advance(60 * time.Second)
	if res, _ := get(t, cl, fe.URL+"/"); res.Header.Get("Origin") != "a" || res.StatusCode != 200 {
		t.Fatal("probe did not reach the recovered a")
	}
	if st := status(p, a.URL); st.Breaker != BreakerClosed {
		t.Fatalf("after a good probe: %+v", st)
	}
	got := map[string]int{}
	for i := 0; i < 10; i++ {
		res, _ := get(t, cl, fe.URL+"/")
		got[res.Header.Get("Origin")]++
	}
	if got["a"] != 5 || got["b"] != 5 {
		t.Fatalf("after recovery distribution %v, want 5/5", got)
	}
}

func TestSingleProbeInFlight(t *testing.T) {
	release := make(chan struct{})
	var aHits atomic.Int32
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		aHits.Add(1)
		w.Header().Set("Origin", "a")
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(a.Close)
	b := newOrigin(t, "b")
	clock := newFakeClock()
	p := newPool(t, Options{Targets: targets(t, a, b), Now: clock.Now, HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, cl := frontend(t, p)
	u := p.ups[0]
	u.mu.Lock()
	p.ejectLocked(u, p.nowNanos())
	u.mu.Unlock()
	clock.Advance(DefaultPassiveEjectFor)

	probeDone := make(chan int, 1)
	go func() {
		res, err := cl.Get(fe.URL + "/")
		if err != nil {
			probeDone <- 0
			return
		}
		res.Body.Close()
		probeDone <- res.StatusCode
	}()
	waitFor(t, "probe to reach a", 5*time.Second, func() bool { return aHits.Load() == 1 })
	if st := status(p, a.URL); st.Breaker != BreakerHalfOpen || st.Available {
		t.Fatalf("while probing: %+v", st)
	}
	for i := 0; i < 10; i++ {
		if res, _ := get(t, cl, fe.URL+"/"); res.Header.Get("Origin") != "b" {
			t.Fatalf("request %d joined the probe on a", i)
		}
	}
	if n := aHits.Load(); n != 1 {
		t.Fatalf("a got %d requests while half-open, want 1", n)
	}
	close(release)
	if code := <-probeDone; code != 200 {
		t.Fatalf("probe status %d", code)
	}
	if st := status(p, a.URL); st.Breaker != BreakerClosed {
		t.Fatalf("after the probe: %+v", st)
	}
}

// restartableOrigin serves on a fixed loopback address that can be shut
// down and brought back.
type restartableOrigin struct {
	t    testing.TB
	addr string
	srv  *http.Server
}

func (o *restartableOrigin) start() {
	l, err := net.Listen("tcp", o.addr)
	if err != nil {
		o.t.Fatalf("relisten on %s: %v", o.addr, err)
	}
	o.addr = l.Addr().String()
	o.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "alive")
	})}
	go func() { _ = o.srv.Serve(l) }()
}

func (o *restartableOrigin) stop() { _ = o.srv.Close() }

func TestOriginStoppedThenRestarted(t *testing.T) {
	o := &restartableOrigin{t: t, addr: "127.0.0.1:0"}
	o.start()
	t.Cleanup(o.stop)
	clock := newFakeClock()
	p := newPool(t, Options{
		Targets: []Target{{URL: mustURL(t, "http://"+o.addr)}},
		Now:     clock.Now, HealthCheck: HealthCheckOptions{Disabled: true},
	})
	fe, cl := frontend(t, p)
	if res, body := get(t, cl, fe.URL+"/"); res.StatusCode != 200 || body != "alive" {
		t.Fatalf("before stop: %d %q", res.StatusCode, body)
	}

	o.stop()
	cl.CloseIdleConnections()
	p.ups[0].idle.CloseIdleConnections()
	for i := 0; i < DefaultPassiveMaxFails; i++ {
		res, _ := get(t, cl, fe.URL+"/")
		if res.StatusCode != http.StatusBadGateway || res.Header.Get(HeaderMitigated) != ReasonUpstreamError {
			t.Fatalf("request %d to a stopped origin: %d %q", i, res.StatusCode, res.Header.Get(HeaderMitigated))
		}
	}
	st := status(p, o.addr)
	if st.Breaker != BreakerOpen || !strings.Contains(st.LastError, "refused") {
		t.Fatalf("after %d refusals: %+v", DefaultPassiveMaxFails, st)
	}

	// Every origin is down: answered at once, the origin is not dialled.
	before := st.Requests
	for i := 0; i < 20; i++ {
		if res, _ := get(t, cl, fe.URL+"/"); res.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d while all down", res.StatusCode)
		}
	}
	if got := status(p, o.addr).Requests; got != before {
		t.Fatalf("origin dialled %d times while ejected and no probe due", got-before)
	}
	if p.Healthy() {
		t.Fatal("Healthy() with the only origin ejected")
	}

	// A probe is due after ProbeInterval; the origin is still down.
	clock.Advance(DefaultPassiveProbeInterval)
	get(t, cl, fe.URL+"/")
	if got := status(p, o.addr).Requests; got != before+1 {
		t.Fatalf("%d requests reached the origin as the fallback probe, want 1", got-before)
	}

	// The origin comes back; the next due probe closes the breaker.
	o.start()
	clock.Advance(DefaultPassiveProbeInterval)
	if res, body := get(t, cl, fe.URL+"/"); res.StatusCode != 200 || body != "alive" {
		t.Fatalf("probe after restart: %d %q", res.StatusCode, body)
	}
	for i := 0; i < 5; i++ {
		if res, _ := get(t, cl, fe.URL+"/"); res.StatusCode != 200 {
			t.Fatalf("request %d after recovery: %d", i, res.StatusCode)
		}
	}
	if st := status(p, o.addr); st.Breaker != BreakerClosed || !p.Healthy() {
		t.Fatalf("after recovery: %+v", st)
	}
}

func TestRetryOnConnectionFailure(t *testing.T) {
	live := newOrigin(t, "live")
	dead := "http://" + deadAddr(t)
	cases := []struct {
		name    string
		method  string
		body    string
		retries int
		want    map[int]int // status → count of 4 requests
	}{
		{"GET retried on the live origin", http.MethodGet, "", 0, map[int]int{200: 4}},
		{"POST with untouched body retried", http.MethodPost, "data", 0, map[int]int{200: 4}},
		{"retries disabled", http.MethodGet, "", -1, map[int]int{200: 2, 502: 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, Options{
				Targets: []Target{{URL: mustURL(t, dead)}, {URL: mustURL(t, live.URL)}},
				Retries: tc.retries, HealthCheck: HealthCheckOptions{Disabled: true},
			})
			fe, cl := frontend(t, p)
			got := map[int]int{}
			for i := 0; i < 4; i++ {
				req, _ := http.NewRequest(tc.method, fe.URL+"/", strings.NewReader(tc.body))
				if tc.body == "" {
					req.Body = nil
				}
				res, err := cl.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				got[res.StatusCode]++
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("statuses %v, want %v", got, tc.want)
				}
			}
			if f := status(p, dead).Failures; f != 2 {
				t.Fatalf("dead origin failures = %d, want 2", f)
			}
		})
	}
}

func TestPassiveDisabled(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	a := flakyOrigin(t, "a", &fail)
	p := newPool(t, Options{Targets: targets(t, a), Passive: PassiveOptions{Disabled: true}, HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, cl := frontend(t, p)
	for i := 0; i < 20; i++ {
		if res, _ := get(t, cl, fe.URL+"/"); res.StatusCode != 503 {
			t.Fatalf("request %d: %d, want the origin's 503", i, res.StatusCode)
		}
	}
	if st := status(p, a.URL); st.Breaker != BreakerClosed || st.Failures != 20 {
		t.Fatalf("passive disabled: %+v", st)
	}
}
