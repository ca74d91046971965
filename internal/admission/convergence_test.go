package admission

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/demo"
	"github.com/rampart-shield/rampart/internal/verdict"
)

type classStats struct {
	ok, refused atomic.Int64
	latency     atomic.Int64 // sum of ns over ok responses
}

// TestConvergesInFrontOfFixedCapacityOrigin runs the whole gate in real time
// on loopback: a reverse proxy behind the admission middleware in front of
// the demo origin with a capacity of C=8 workers and a page cost of D=25ms
// (requests beyond C wait in the origin's own line), flooded by 48
// closed-loop clients (6 priority, 30 normal, 12 suspicious): six times its
// capacity. Within 3 s the limit settles within [C/2, 2.5·C] (design point
// 1.25·C), the origin's median latency over the last second stays under
// 2.5·D (without the gate it would be 6·D), and priority visitors are served
// first: their mean latency is below that of normal visitors, and suspicious
// ones are served least. The ranges are wide because the machine is small
// and shared.
func TestConvergesInFrontOfFixedCapacityOrigin(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	const c, d = 8, 25 * time.Millisecond
	origin, err := demo.New(demo.Options{Workers: c, Queue: 1024, PageCost: d})
	if err != nil {
		t.Fatal(err)
	}
	osrv := httptest.NewServer(origin.Handler())
	defer osrv.Close()
	target, _ := url.Parse(osrv.URL)
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 100}
	proxy.ErrorLog = log.New(io.Discard, "", 0) // cancelled clients at the end

	l := mustNew(t, Options{})
	classOf := func(r *http.Request) (verdict.Class, uint64) {
		switch r.Header.Get("X-Test-Class") {
		case "priority":
			return verdict.ClassPriority, 0
		case "suspicious":
			return verdict.ClassSuspicious, 0
		}
		return verdict.ClassNormal, 0
	}
	fsrv := httptest.NewServer(l.Middleware(proxy, Hooks{ClassOf: classOf}))
	defer fsrv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}, Timeout: 10 * time.Second}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var stats [verdict.NumClasses]classStats
	var wg sync.WaitGroup
	clients := []struct {
		class verdict.Class
		name  string
		n     int
	}{{verdict.ClassPriority, "priority", 6}, {verdict.ClassNormal, "normal", 30}, {verdict.ClassSuspicious, "suspicious", 12}}
	for _, cl := range clients {
		for range cl.n {
			wg.Go(func() {
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, "GET", fsrv.URL+"/news/1", nil)
					req.Header.Set("X-Test-Class", cl.name)
					start := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					st := &stats[cl.class]
					if resp.StatusCode == http.StatusOK {
						st.ok.Add(1)
						st.latency.Add(int64(time.Since(start)))
					} else {
						st.refused.Add(1)
					}
				}
			})
		}
	}
	// Sample the limit during the last second, and the origin's latency
	// from then on.
	var limits []int
	tick := time.NewTicker(50 * time.Millisecond)
	lastSecond := time.Now().Add(2 * time.Second)
	reset := false
	for ctx.Err() == nil {
		select {
		case now := <-tick.C:
			if now.After(lastSecond) {
				if !reset {
					origin.Reset()
					reset = true
				}
				limits = append(limits, l.Stats().Limit)
			}
		case <-ctx.Done():
		}
	}
	tick.Stop()
	ost := origin.Stats()
	wg.Wait()

	meanLimit := 0.0
	for _, v := range limits {
		meanLimit += float64(v)
	}
	meanLimit /= float64(max(1, len(limits)))
	originP50 := time.Duration(ost.Latency.P50ms * float64(time.Millisecond))
	s := l.Stats()
	t.Logf("limit over the last second: mean %.1f (samples %v); minRTT %v; origin p50 %v (histogram bucket bound, up to 19%% high) over %d requests, peak origin queue %d",
		meanLimit, limits, s.MinRTT, originP50, ost.Latency.Count, ost.PeakQueueDepth)
	var meanLat [verdict.NumClasses]time.Duration
	for i := range stats {
		ok := stats[i].ok.Load()
		if ok > 0 {
			meanLat[i] = time.Duration(stats[i].latency.Load() / ok)
		}
		t.Logf("%-10v ok %5d refused %4d mean latency %v", verdict.Class(i), ok, stats[i].refused.Load(), meanLat[i])
	}
	if meanLimit < c/2 || meanLimit > 2.5*c {
		t.Errorf("limit %.1f, want within [%d, %.0f]", meanLimit, c/2, 2.5*c)
	}
	if ost.Latency.Count == 0 || originP50 > 5*d/2 {
		t.Errorf("origin median latency %v over the last second, want at most 2.5·D = %v", originP50, 5*d/2)
	}
	p, nm, sus := &stats[verdict.ClassPriority], &stats[verdict.ClassNormal], &stats[verdict.ClassSuspicious]
	if p.ok.Load() == 0 || meanLat[verdict.ClassPriority] >= meanLat[verdict.ClassNormal] {
		t.Errorf("priority mean latency %v not below normal %v", meanLat[verdict.ClassPriority], meanLat[verdict.ClassNormal])
	}
	perClient := func(st *classStats, n int) float64 { return float64(st.ok.Load()) / float64(n) }
	if !(perClient(p, 6) > perClient(nm, 30) && perClient(nm, 30) > perClient(sus, 12)) {
		t.Errorf("served per client: priority %.1f, normal %.1f, suspicious %.1f; want strictly decreasing",
			perClient(p, 6), perClient(nm, 30), perClient(sus, 12))
	}
}
