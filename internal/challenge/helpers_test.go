package challenge_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// lockedRand is a deterministic, concurrency-safe io.Reader.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func newRand(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return &lockedRand{r: rand.NewChaCha8(s)}
}

func (l *lockedRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// newService builds a Service with a fake clock, deterministic randomness,
// low difficulty (tests solve in Go) and opts applied.
func newService(t testing.TB, clock *fakeClock, opts ...func(*challenge.Options)) *challenge.Service {
	t.Helper()
	o := challenge.Options{
		Now:        clock.Now,
		Rand:       newRand(1),
		Difficulty: [challenge.NumModes]int{4, 5, 6},
	}
	for _, f := range opts {
		f(&o)
	}
	s, err := challenge.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// testIPHeader lets tests choose the client address the test shield
// resolves (the real shield resolves it from the connection).
const testIPHeader = "X-Test-Client-Ip"

// shield is the minimal stand-in for rampart's shield: route PathPrefix
// to the service, pass cleared requests to the origin, challenge the rest.
type shield struct {
	svc    *challenge.Service
	origin http.Handler
	mode   verdict.Mode

	// stripCookies drops Set-Cookie from every answer, like a proxy that
	// strips cookies.
	stripCookies bool

	mu       sync.Mutex
	results  []challenge.CheckResult
	ids      []uint64
	verified []url.Values // forms posted to the verify endpoint
}

func (sh *shield) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if sh.stripCookies {
		w = &cookieStripper{ResponseWriter: w}
	}
	ip := clientIP(r)
	if strings.HasPrefix(r.URL.Path, challenge.PathPrefix) {
		if r.URL.Path == challenge.PathPrefix+"verify" && r.Method == http.MethodPost {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<10))
			r.Body = io.NopCloser(bytes.NewReader(body))
			if form, err := url.ParseQuery(string(body)); err == nil {
				sh.mu.Lock()
				sh.verified = append(sh.verified, form)
				sh.mu.Unlock()
			}
		}
		sh.svc.Handler().ServeHTTP(w, r.WithContext(challenge.WithClientIP(r.Context(), ip)))
		return
	}
	if strings.HasPrefix(r.URL.Path, "/open/") { // never challenged
		sh.origin.ServeHTTP(w, r)
		return
	}
	c, res := sh.svc.Check(r, ip)
	sh.mu.Lock()
	sh.results = append(sh.results, res)
	if c.Valid {
		sh.ids = append(sh.ids, c.ID)
	}
	sh.mu.Unlock()
	if c.Valid {
		sh.origin.ServeHTTP(w, r)
		return
	}
	sh.svc.Challenge(w, r, ip, sh.mode)
}

func (sh *shield) lastResult() challenge.CheckResult {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.results) == 0 {
		return challenge.CheckAbsent
	}
	return sh.results[len(sh.results)-1]
}

func clientIP(r *http.Request) netip.Addr {
	if v := r.Header.Get(testIPHeader); v != "" {
		return netip.MustParseAddr(v)
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// originPage is the text the origin's page shows.
const originPage = "Welcome to the ministry"

func origin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>Ministry</title><h1>"+originPage+"</h1><p>"+r.Method+" "+r.URL.RequestURI()+"</p>")
	})
}

// lastVerify returns the last form posted to the verify endpoint.
func (sh *shield) lastVerify() url.Values {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.verified) == 0 {
		return url.Values{}
	}
	return sh.verified[len(sh.verified)-1]
}

// cookieStripper removes Set-Cookie before the header is written.
type cookieStripper struct{ http.ResponseWriter }

func (c *cookieStripper) WriteHeader(code int) {
	c.Header().Del("Set-Cookie")
	c.ResponseWriter.WriteHeader(code)
}

func (c *cookieStripper) Write(p []byte) (int, error) {
	c.Header().Del("Set-Cookie")
	return c.ResponseWriter.Write(p)
}
