package challenge_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/verdict"
)

const benchUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// clearedRequest returns a request carrying a valid clearance for ip,
// obtained through the real endpoints.
func clearedRequest(tb testing.TB, svc *challenge.Service, ip netip.Addr) *http.Request {
	tb.Helper()
	cookie := obtainCookie(tb, svc, ip, benchUA)
	r := httptest.NewRequest(http.MethodGet, "/news/today", nil)
	r.Header.Set("User-Agent", benchUA)
	r.Header.Set("Accept", "text/html")
	r.Header.Set("Cookie", "_ga=GA1.2.3; lang=fr; "+challenge.CookieName+"="+cookie+"; theme=dark")
	return r
}

// obtainCookie solves a challenge for ip and ua through Challenge and
// Serve and returns the clearance cookie value.
func obtainCookie(tb testing.TB, svc *challenge.Service, ip netip.Addr, ua string, extra ...*http.Cookie) string {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, "/page", nil)
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	svc.Challenge(rec, req, ip, verdict.ModeNormal)
	p, err := challenge.ParseChallenge(rec.Body.Bytes())
	if err != nil {
		tb.Fatalf("ParseChallenge: %v", err)
	}
	sol, err := challenge.Solve(context.Background(), p)
	if err != nil {
		tb.Fatal(err)
	}
	rec = verifyPost(svc, ip, ua, p.Form(sol), extra...)
	for _, c := range rec.Result().Cookies() {
		if c.Name == challenge.CookieName {
			return c.Value
		}
	}
	tb.Fatalf("verify set no cookie: %d %s", rec.Code, rec.Body)
	return ""
}

func verifyPost(svc *challenge.Service, ip netip.Addr, ua string, form url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, challenge.PathPrefix+"verify", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", ua)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	svc.Serve(rec, req, ip)
	return rec
}

func BenchmarkCheckValid(b *testing.B) {
	svc := newService(b, newClock())
	ip := netip.MustParseAddr("203.0.113.7")
	r := clearedRequest(b, svc, ip)
	if c, res := svc.Check(r, ip); !c.Valid {
		b.Fatalf("Check = %v", res)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if c, _ := svc.Check(r, ip); !c.Valid {
				b.Fatal("invalid")
			}
		}
	})
}

func BenchmarkCheckInvalid(b *testing.B) {
	svc := newService(b, newClock())
	ip := netip.MustParseAddr("203.0.113.7")
	r := clearedRequest(b, svc, ip)
	// Flip one character of the token: the HMAC fails.
	cookie := r.Header.Get("Cookie")
	i := strings.Index(cookie, challenge.CookieName+"=") + len(challenge.CookieName) + 5
	bad := []byte(cookie)
	bad[i] ^= 1
	r.Header.Set("Cookie", string(bad))
	absent := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, tc := range []struct {
		name string
		r    *http.Request
		want challenge.CheckResult
	}{{"forged", r, challenge.CheckBadSignature}, {"absent", absent, challenge.CheckAbsent}} {
		b.Run(tc.name, func(b *testing.B) {
			if _, res := svc.Check(tc.r, ip); res != tc.want {
				b.Fatalf("Check = %v, want %v", res, tc.want)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					svc.Check(tc.r, ip)
				}
			})
		})
	}
}

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark
// measures the service.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func BenchmarkChallengePage(b *testing.B) {
	svc := newService(b, newClock(), func(o *challenge.Options) { o.Rand = nil }) // crypto/rand, as in production
	ip := netip.MustParseAddr("203.0.113.7")
	for _, tc := range []struct{ name, accept string }{
		{"html", "text/html,application/xhtml+xml"},
		{"json", "application/json"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/news/today?page=2", nil)
			r.Header.Set("User-Agent", benchUA)
			r.Header.Set("Accept", tc.accept)
			r.Header.Set("Accept-Language", "fr-CH, fr;q=0.9, en;q=0.8")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					svc.Challenge(w, r, ip, verdict.ModeUnderAttack)
				}
			})
		})
	}
}

// BenchmarkOriginPage is the yardstick for BenchmarkChallengePage: a small
// origin page written by a handler, the cheapest thing an origin can do.
func BenchmarkOriginPage(b *testing.B) {
	h := origin()
	r := httptest.NewRequest(http.MethodGet, "/news/today?page=2", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h.ServeHTTP(w, r)
		}
	})
}

func BenchmarkVerifySolution(b *testing.B) {
	svc := newService(b, newClock(), func(o *challenge.Options) { o.ReplayFilterSize = 1 << 22 })
	ip := netip.MustParseAddr("203.0.113.7")
	// Pre-solve b.N challenges outside the timer: each redeems once.
	forms := make([]url.Values, b.N)
	for i := range forms {
		req := httptest.NewRequest(http.MethodGet, "/page", nil)
		req.Header.Set("User-Agent", benchUA)
		req.Header.Set("Accept", "application/json")
		rec := httptest.NewRecorder()
		svc.Challenge(rec, req, ip, verdict.ModeNormal)
		p, err := challenge.ParseChallenge(rec.Body.Bytes())
		if err != nil {
			b.Fatal(err)
		}
		sol, _ := challenge.Solve(context.Background(), p)
		forms[i] = p.Form(sol)
	}
	bodies := make([]string, b.N)
	for i, f := range forms {
		bodies[i] = f.Encode()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, challenge.PathPrefix+"verify", strings.NewReader(bodies[i]))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", benchUA)
		w := &discardWriter{h: http.Header{}}
		svc.Serve(w, req, ip)
	}
	b.StopTimer()
	if st := svc.Stats(); st.Solved != uint64(b.N) {
		b.Fatalf("solved %d of %d", st.Solved, b.N)
	}
}

// BenchmarkSolveGo is the in-process solver's cost per solution at each
// default difficulty (what a simulated visitor, or a bot, pays in Go).
func BenchmarkSolveGo(b *testing.B) {
	for m := range challenge.NumModes {
		d := challenge.DefaultDifficulty[m]
		b.Run(verdict.Mode(m).String(), func(b *testing.B) {
			var hashes uint64
			for i := range b.N {
				p := challenge.Puzzle{Version: 1, Challenge: "x", Seed: "seed" + strings.Repeat("A", 14) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + "Q", Difficulty: d, Verify: "/v"}
				sol, err := challenge.Solve(context.Background(), p)
				if err != nil {
					b.Fatal(err)
				}
				hashes += sol.Hashes
			}
			b.ReportMetric(float64(hashes)/float64(b.N), "hashes/op")
		})
	}
}

var _ io.Writer = (*discardWriter)(nil)

// benchHTTP GETs path from srv over loopback HTTP/1.1 with keep-alive from
// parallel clients and reports requests per second.
func benchHTTP(b *testing.B, srv *httptest.Server, path string, hdr map[string]string, wantStatus int) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != wantStatus {
				b.Fatalf("status %d, want %d", resp.StatusCode, wantStatus)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkHTTPChallengePage serves the interstitial over loopback HTTP
// (the test shield: Check, then Challenge); BenchmarkHTTPOriginPage serves
// the small origin page from the same kind of server. Both share the two
// cores with their clients.
func BenchmarkHTTPChallengePage(b *testing.B) {
	svc := newService(b, newClock(), func(o *challenge.Options) { o.Rand = nil })
	sh := &shield{svc: svc, origin: origin(), mode: verdict.ModeUnderAttack}
	srv := httptest.NewServer(sh)
	defer srv.Close()
	benchHTTP(b, srv, "/news/today?page=2", map[string]string{
		"User-Agent": benchUA, "Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Accept-Language": "fr-CH, fr;q=0.9",
	}, http.StatusForbidden)
}

func BenchmarkHTTPOriginPage(b *testing.B) {
	srv := httptest.NewServer(origin())
	defer srv.Close()
	benchHTTP(b, srv, "/news/today?page=2", map[string]string{"User-Agent": benchUA, "Accept": "text/html"}, http.StatusOK)
}
