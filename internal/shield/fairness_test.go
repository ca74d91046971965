package shield

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
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

// TestQueuedRequestRecheckedWhenModeRises: a request that waited for the
// origin while the mode rose gets what a request arriving now gets (here
// the elevated mode's cookie check), not the origin.
func TestQueuedRequestRecheckedWhenModeRises(t *testing.T) {
	hold := make(chan struct{})
	origin := newOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		cc := "public, max-age=60"
		if r.URL.Path == "/slow" {
			<-hold
			cc = "no-store"
		}
		w.Header().Set("Cache-Control", cc)
		fmt.Fprintf(w, "origin %s", r.URL.Path)
	})
	s := startShield(t, testConfig(t, origin.URL, `
mode: normal
admission: {initial_limit: 1, min_limit: 1, max_limit: 1}
`))
	base := s.Addrs()[0]
	first := make(chan int, 1)
	go func() {
		code, _, _ := get(t, clientFrom("127.0.40.1"), base+"/slow")
		first <- code
	}()
	waitFor(t, "the first request at the origin", 5*time.Second, func() bool { return origin.hits.Load() == 1 })
	second := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/page", nil)
		req.Header.Set("User-Agent", "Go-http-client/1.1")
		resp, err := clientFrom("127.0.41.1").Do(req)
		if err != nil {
			t.Errorf("queued request: %v", err)
			second <- nil
			return
		}
		resp.Body.Close()
		second <- resp
	}()
	waitFor(t, "the second request queued", 5*time.Second, func() bool {
		st := s.admission.Stats()
		return st.Queued[0]+st.Queued[1]+st.Queued[2] == 1
	})
	s.SetMode(verdict.ModeElevated)
	close(hold)
	if code := <-first; code != 200 {
		t.Fatalf("first request: %d", code)
	}
	resp := <-second
	if resp == nil {
		t.FailNow()
	}
	if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Rampart-Mitigated") != "cookie-check" {
		t.Fatalf("queued request after the mode rose: %d %q", resp.StatusCode, resp.Header.Get("Rampart-Mitigated"))
	}
	if n := origin.hits.Load(); n != 1 {
		t.Fatalf("the origin saw %d requests, want only the first", n)
	}
	if st := s.admission.Stats(); st.InFlight != 0 {
		t.Fatalf("slot not handed back: %d in flight", st.InFlight)
	}
	// The check answered the queued client, not the page: the cache must
	// not take it for the page's answer and stop storing the page, so a
	// visitor that keeps cookies is checked once, then gets the page
	// fetched and stored, then from the cache.
	c := clientFrom("127.0.42.1")
	c.Jar, _ = cookiejar.New(nil)
	var got []string
	for range 3 {
		req, _ := http.NewRequest(http.MethodGet, base+"/page", nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) rampart-test")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got = append(got, fmt.Sprintf("%d %s%s", resp.StatusCode, resp.Header.Get("Rampart-Mitigated"), resp.Header.Get("Rampart-Cache")))
	}
	if want := []string{"307 cookie-check", "200 MISS", "200 HIT"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("a visitor after the recheck: %q, want %q", got, want)
	}
	if n := origin.hits.Load(); n != 2 {
		t.Fatalf("the origin saw %d requests, want 2 (the first and one fetch of /page)", n)
	}
}
