package shield

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAdmissionFairAcrossClients: a client flooding a slow endpoint fills
// the admission queue in front of a saturated origin; a reader on another
// address is served in turn, not behind the flood's backlog.
func TestAdmissionFairAcrossClients(t *testing.T) {
	const work = 30 * time.Millisecond
	slots := make(chan struct{}, 4) // the origin serves 4 at a time
	origin := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		slots <- struct{}{}
		time.Sleep(work)
		<-slots
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "result for %s", r.URL.RawQuery)
	})
	s := startShield(t, testConfig(t, origin.URL, `
mode: normal
default_rules: false
admission: {initial_limit: 4, min_limit: 4, max_limit: 4, queue_size: 512, max_wait: {normal: 20s, suspicious: 20s}}
`))
	base := s.Addrs()[0]

	var stop atomic.Bool
	var wg sync.WaitGroup
	flood := clientFrom("127.0.20.1")
	flood.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	var n atomic.Int64
	for range 64 {
		wg.Go(func() {
			for !stop.Load() {
				get(t, flood, fmt.Sprintf("%s/search?q=flood%d", base, n.Add(1)))
			}
		})
	}
	defer func() { stop.Store(true); wg.Wait() }()
	waitFor(t, "the flood's backlog", 10*time.Second, func() bool {
		st := s.admission.Stats()
		return st.Queued[0]+st.Queued[1]+st.Queued[2] >= 40
	})

	reader := clientFrom("127.0.30.1")
	var lat []time.Duration
	for i := range 7 {
		start := time.Now()
		code, _, body := get(t, reader, fmt.Sprintf("%s/search?q=reader%d", base, i))
		lat = append(lat, time.Since(start))
		if code != 200 || !contains(body, "reader") {
			t.Fatalf("reader's request %d: %d %q", i, code, body)
		}
	}
	slices.Sort(lat)
	// In turn, a request waits for a slot or two to free up (a few ms
	// each) and the origin's 30 ms; behind the flood's backlog of 40 or
	// more it would wait 40 x 30 ms / 4 slots = 300 ms at least.
	if med := lat[len(lat)/2]; med > 200*time.Millisecond {
		t.Fatalf("reader's median latency %v behind a flood (all: %v), want it served in turn", med, lat)
	}
}
