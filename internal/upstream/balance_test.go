package upstream

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRoundRobinDistribution(t *testing.T) {
	a, b, c := newOrigin(t, "a"), newOrigin(t, "b"), newOrigin(t, "c")
	cases := []struct {
		name    string
		weights []int
		n       int
		want    map[string]int
	}{
		{"equal weights", []int{0, 1, 1}, 30, map[string]int{"a": 10, "b": 10, "c": 10}},
		{"weighted 1:2:3", []int{1, 2, 3}, 60, map[string]int{"a": 10, "b": 20, "c": 30}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := targets(t, a, b, c)
			for i := range ts {
				ts[i].Weight = tc.weights[i]
			}
			p := newPool(t, Options{Targets: ts, HealthCheck: HealthCheckOptions{Disabled: true}})
			fe, cl := frontend(t, p)
			got := map[string]int{}
			for i := 0; i < tc.n; i++ {
				res, _ := get(t, cl, fe.URL+"/")
				got[res.Header.Get("Origin")]++
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("distribution (-want +got):\n%s", d)
			}
		})
	}
}

func TestRoundRobinSkipsUnusable(t *testing.T) {
	a, b := newOrigin(t, "a"), newOrigin(t, "b")
	p := newPool(t, Options{Targets: targets(t, a, b), HealthCheck: HealthCheckOptions{Disabled: true}})
	p.ups[0].down.Store(true)
	fe, cl := frontend(t, p)
	for i := 0; i < 6; i++ {
		res, _ := get(t, cl, fe.URL+"/")
		if o := res.Header.Get("Origin"); o != "b" {
			t.Fatalf("request %d went to %q while a is down", i, o)
		}
	}
}

// holdOrigin answers "/hold" only when release is closed, anything else
// at once; it names itself in the Origin header.
func holdOrigin(t testing.TB, name string, release chan struct{}) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Origin", name)
		if r.URL.Path == "/hold" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestLeastConnPrefersIdleOrigin(t *testing.T) {
	relA, relB := make(chan struct{}), make(chan struct{})
	a, b := holdOrigin(t, "a", relA), holdOrigin(t, "b", relB)
	p := newPool(t, Options{Targets: targets(t, a, b), Balance: BalanceLeastConn, HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, cl := frontend(t, p)
	inflight := func() [2]int64 { return [2]int64{p.ups[0].inflight.Load(), p.ups[1].inflight.Load()} }

	// Park four held requests one at a time: least-conn keeps the two
	// origins level.
	var wg sync.WaitGroup
	for i := 1; i <= 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := cl.Get(fe.URL + "/hold")
			if err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}()
		waitFor(t, "held request to land", 5*time.Second, func() bool { f := inflight(); return f[0]+f[1] == int64(i) })
		if f := inflight(); f[0]-f[1] > 1 || f[1]-f[0] > 1 {
			t.Fatalf("after %d held requests in flight = %v, want level", i, f)
		}
	}
	close(relB)
	waitFor(t, "b to drain", 5*time.Second, func() bool { return inflight() == [2]int64{2, 0} })
	for i := 0; i < 10; i++ {
		res, _ := get(t, cl, fe.URL+"/")
		if o := res.Header.Get("Origin"); o != "b" {
			t.Fatalf("request %d went to %q while a has 2 in flight and b none", i, o)
		}
	}
	close(relA)
	wg.Wait()
	waitFor(t, "a to drain", 5*time.Second, func() bool { return inflight() == [2]int64{0, 0} })
}

func TestLeastConnWeighted(t *testing.T) {
	p := newPool(t, Options{
		Targets: []Target{
			{URL: mustURL(t, "http://127.0.0.1:1"), Weight: 1},
			{URL: mustURL(t, "http://127.0.0.1:2"), Weight: 4},
		},
		Balance: BalanceLeastConn, HealthCheck: HealthCheckOptions{Disabled: true},
	})
	cases := []struct {
		name     string
		in0, in1 int64
		want     int
	}{
		{"both idle: either, not busy", 0, 0, -1},
		{"light has 1, heavy 3: heavy (3/4 < 1/1)", 1, 3, 1},
		{"light has 1, heavy 4: tie keeps rotating", 1, 4, -1},
		{"light has 1, heavy 5: light (1/1 < 5/4)", 1, 5, 0},
		{"light idle, heavy 1: light", 0, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.ups[0].inflight.Store(tc.in0)
			p.ups[1].inflight.Store(tc.in1)
			for i := 0; i < 4; i++ {
				u := p.leastConnPick(nil)
				if tc.want >= 0 && u != p.ups[tc.want] {
					t.Fatalf("picked %s, want %s", u.name, p.ups[tc.want].name)
				}
				if u == nil {
					t.Fatal("no pick")
				}
			}
		})
	}
}
