package challenge_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// chromiumPath finds Debian's chromium. A missing browser fails the test
// (it is never skipped): scripts/deps.sh, which the test suite runs first,
// installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("RAMPART_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: run scripts/deps.sh (apt-get install -y chromium)")
	return ""
}

// browser starts a headless Chromium with a fresh profile.
func browser(t *testing.T) context.Context {
	path := chromiumPath(t)
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// waitText polls the page until its text contains want or the deadline
// passes; it returns the page text seen last.
func waitText(ctx context.Context, want string, within time.Duration) (string, bool) {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var text string
	for time.Now().Before(deadline) {
		ectx, cancel := context.WithTimeout(ctx, 2*time.Second)
		got, err := chromedp.Run(ectx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		cancel()
		if err == nil {
			text = got
			if strings.Contains(got, want) {
				return got, true
			}
		}
		<-tick.C
	}
	return text, false
}

// solveInBrowser navigates to path (unique per call: the page's loop
// guard remembers URLs) and waits for the origin's page. It returns the
// total time and the solve time the page reported.
func solveInBrowser(t *testing.T, ctx context.Context, svc *challenge.Service, url string) (total, solve time.Duration, hashes uint64) {
	t.Helper()
	before := svc.Stats()
	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
	text, ok := waitText(ctx, originPage, 60*time.Second)
	total = time.Since(start)
	if !ok {
		t.Fatalf("origin page not reached within 60s; page says:\n%s", text)
	}
	after := svc.Stats()
	if n := after.ClientSolves - before.ClientSolves; n == 1 {
		solve = after.ClientSolveTime - before.ClientSolveTime
		hashes = after.ClientHashes - before.ClientHashes
	} else {
		t.Errorf("page reported %d solve times, want 1", n)
	}
	return total, solve, hashes
}

func browserServer(t *testing.T, mode verdict.Mode, opts ...func(*challenge.Options)) (*challenge.Service, *httptest.Server, *shield) {
	o := challenge.Options{}
	for _, f := range opts {
		f(&o)
	}
	svc, err := challenge.New(o)
	if err != nil {
		t.Fatal(err)
	}
	sh := &shield{svc: svc, origin: origin(), mode: mode}
	srv := httptest.NewServer(sh)
	t.Cleanup(srv.Close)
	return svc, srv, sh
}

// TestBrowserPassesChallenge loads a page through the challenge in real
// headless Chromium (WebCrypto, then the pure-JavaScript fallback) and
// waits for the origin's page.
func TestBrowserPassesChallenge(t *testing.T) {
	ctx := browser(t)
	for _, tc := range []struct {
		name string
		opts []func(*challenge.Options)
	}{
		{"webcrypto", nil},
		{"js-fallback", []func(*challenge.Options){challenge.ForceJSFallback}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, srv, sh := browserServer(t, verdict.ModeNormal, tc.opts...)
			total, solve, hashes := solveInBrowser(t, ctx, svc, srv.URL+"/"+tc.name+"?q=1")
			d := challenge.DefaultDifficulty[verdict.ModeNormal]
			engine := sh.lastVerify().Get("e")
			t.Logf("chromium %s: difficulty %d solved in %v (%d hashes, engine/workers %s), origin page after %v",
				tc.name, d, solve, hashes, engine, total)
			if tc.name == "js-fallback" && !strings.HasPrefix(engine, "js/") {
				t.Errorf("forced fallback used engine %q, want js", engine)
			}
			if got := sh.lastResult(); got != challenge.CheckValid {
				t.Errorf("last check = %v, want valid", got)
			}
			st := svc.Stats()
			if st.Solved != 1 || st.Pages != 1 || sumLoops(st) != 0 {
				t.Errorf("stats: solved %d pages %d loops %v, want 1 1 none", st.Solved, st.Pages, st.Loops)
			}
			// A second page is served straight away with the clearance.
			if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/second")); err != nil {
				t.Fatal(err)
			}
			if text, ok := waitText(ctx, originPage, 10*time.Second); !ok {
				t.Fatalf("second page: %s", text)
			}
			if st := svc.Stats(); st.Pages != 1 {
				t.Errorf("second page was challenged again (%d pages)", st.Pages)
			}
		})
	}
}

func sumLoops(st challenge.Stats) (n uint64) {
	for _, l := range st.Loops {
		n += l
	}
	return n
}

// TestBrowserLoopExplained strips the clearance cookie on its way to the
// browser (as a misbehaving proxy would): after solving, Chromium must show
// the explanation, once, instead of a second challenge.
func TestBrowserLoopExplained(t *testing.T) {
	ctx := browser(t)
	svc, srv, sh := browserServer(t, verdict.ModeNormal, func(o *challenge.Options) { o.Difficulty = [challenge.NumModes]int{8, 8, 8} })
	sh.stripCookies = true
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/stripped")); err != nil {
		t.Fatal(err)
	}
	text, ok := waitText(ctx, "did not send back the cookie", 30*time.Second)
	if !ok {
		t.Fatalf("no loop explanation; page says:\n%s", text)
	}
	st := svc.Stats()
	if st.Loops[challenge.LoopNoCookie] != 1 || st.Pages != 1 || st.Solved != 1 {
		t.Errorf("loops %v pages %d solved %d, want one no-cookie loop after one page and one solution", st.Loops, st.Pages, st.Solved)
	}
	// Following "Try again" within the guard's minute goes to the
	// explanation again without solving (the page's sessionStorage guard),
	// not round the puzzle.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/stripped")); err != nil {
		t.Fatal(err)
	}
	if text, ok := waitText(ctx, "did not send back the cookie", 30*time.Second); !ok {
		t.Fatalf("second visit: %s", text)
	}
	if st := svc.Stats(); st.Solved != 1 || st.Loops[challenge.LoopNoCookie] != 2 {
		t.Errorf("second visit: solved %d loops %v, want no new solution and a second counted loop", st.Solved, st.Loops)
	}
}

// TestBrowserWorkerDigests runs the worker's pure-JavaScript SHA-256 in
// Chromium and compares its digests with Go's, including solver-shaped
// inputs and multi-block ones.
func TestBrowserWorkerDigests(t *testing.T) {
	ctx := browser(t)
	svc, srv, _ := browserServer(t, verdict.ModeNormal)
	_ = svc
	inputs := []string{"", "abc", "AAAAAAAAAAAAAAAAAAAAAA0", "q83v7u3hM0G3c2lUuTPxdg9007199254740991",
		strings.Repeat("x", 55), strings.Repeat("y", 56), strings.Repeat("z", 64), strings.Repeat("é", 100)}
	// Any same-origin page will do; the origin's is plain.
	var worker string
	{
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Accept", "text/html")
		svc.Challenge(rec, req, mustAddr("127.0.0.1"), verdict.ModeNormal)
		p, err := challenge.ParseChallenge(rec.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		worker = p.Worker
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/open/digests")); err != nil {
		t.Fatal(err)
	}
	js := fmt.Sprintf(`new Promise(function (ok, fail) {
		var w = new Worker(%q);
		w.onmessage = function (e) { ok(e.data.hex.join(",")); w.terminate(); };
		w.onerror = function (e) { fail(String(e.message)); };
		w.postMessage({hex: %s});
	})`, worker, jsArray(inputs))
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running the worker: %v", err)
	}
	digests := strings.Split(got, ",")
	if len(digests) != len(inputs) {
		t.Fatalf("worker returned %d digests for %d inputs", len(digests), len(inputs))
	}
	for i, in := range inputs {
		sum := sha256.Sum256([]byte(in))
		if want := hex.EncodeToString(sum[:]); digests[i] != want {
			t.Errorf("SHA-256(%q): worker %s, Go %s", in, digests[i], want)
		}
	}
}

func jsArray(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// hashRate runs workers of the page's worker script in Chromium at an
// unreachable difficulty for a while and returns the hashes per second and
// the engine the workers picked.
func hashRate(t *testing.T, ctx context.Context, p challenge.Puzzle, workers int, forceJS bool, d time.Duration) (float64, string) {
	t.Helper()
	expr := fmt.Sprintf(`new Promise(function (ok) {
  var total = 0, eng = {}, ws = [], t0 = performance.now();
  for (var i = 0; i < %d; i++) {
    var w = new Worker(%q); ws.push(w);
    w.onmessage = function (e) { if (e.data.n) total += e.data.n; if (e.data.engine) eng[e.data.engine] = 1; };
    w.postMessage({seed: %q, d: 32, start: i, step: %d, js: %v});
  }
  setTimeout(function () {
    ws.forEach(function (w) { w.terminate(); });
    ok(JSON.stringify({rate: total * 1000 / (performance.now() - t0), engines: Object.keys(eng).join("+")}));
  }, %d);
})`, workers, p.Worker, p.Seed, workers, forceJS, d.Milliseconds())
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("measuring hash rate: %v", err)
	}
	var out struct {
		Rate    float64
		Engines string
	}
	if err := json.Unmarshal([]byte(got), &out); err != nil {
		t.Fatal(err)
	}
	return out.Rate, out.Engines
}

// TestBrowserHashRates measures the worker's hash rate in Chromium per
// engine and worker count, and the expected solve time of each default
// difficulty at that rate (the expected work is 2^d hashes).
func TestBrowserHashRates(t *testing.T) {
	ctx := browser(t)
	svc, srv, _ := browserServer(t, verdict.ModeNormal)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept", "text/html")
	svc.Challenge(rec, req, mustAddr("127.0.0.1"), verdict.ModeNormal)
	p, err := challenge.ParseChallenge(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/open/rate")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		workers int
		forceJS bool
	}{{1, true}, {1, false}, {2, true}, {2, false}} {
		rate, engines := hashRate(t, ctx, p, tc.workers, tc.forceJS, 2*time.Second)
		if rate <= 0 {
			t.Errorf("workers=%d forceJS=%v: no hashes", tc.workers, tc.forceJS)
			continue
		}
		var exp []string
		for m := range challenge.NumModes {
			d := challenge.DefaultDifficulty[m]
			exp = append(exp, fmt.Sprintf("%s(d=%d) %.0f ms", verdict.Mode(m), d, float64(uint64(1)<<d)/rate*1000))
		}
		t.Logf("BrowserHashRate/workers=%d/forceJS=%v\t%.0f hashes/s\tengine %s\texpected: %s",
			tc.workers, tc.forceJS, rate, engines, strings.Join(exp, ", "))
	}
}

// TestBrowserSolveTimes records how long headless Chromium on this machine
// takes at each mode's default difficulty (WebCrypto) and, for normal,
// with the pure-JavaScript fallback. Each run solves a fresh challenge;
// RAMPART_BROWSER_SOLVES sets the runs per case (default 5). The figures
// are logged as benchmark-style lines.
func TestBrowserSolveTimes(t *testing.T) {
	ctx := browser(t)
	runs := 5
	if v, err := strconv.Atoi(os.Getenv("RAMPART_BROWSER_SOLVES")); err == nil && v > 0 {
		runs = v
	}
	type tcase struct {
		name string
		mode verdict.Mode
		opts []func(*challenge.Options)
	}
	cases := []tcase{
		{"normal", verdict.ModeNormal, nil},
		{"elevated", verdict.ModeElevated, nil},
		{"under_attack", verdict.ModeUnderAttack, nil},
		{"normal-js-fallback", verdict.ModeNormal, []func(*challenge.Options){challenge.ForceJSFallback}},
	}
	for _, tc := range cases {
		svc, srv, sh := browserServer(t, tc.mode, tc.opts...)
		var solves, totals []time.Duration
		var hashes uint64
		var solveSum time.Duration
		engines := map[string]int{}
		for i := range runs {
			total, solve, h := solveInBrowser(t, ctx, svc, fmt.Sprintf("%s/%s/%d", srv.URL, tc.name, i))
			solves, totals = append(solves, solve), append(totals, total)
			hashes += h
			solveSum += solve
			engines[sh.lastVerify().Get("e")]++
			if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(solves)
		slices.Sort(totals)
		d := challenge.DefaultDifficulty[tc.mode]
		rate := float64(hashes) / solveSum.Seconds()
		t.Logf("BrowserSolve/%s/difficulty=%d\t%d\t%d ns/op solve (median; min %v max %v)\t%d ns/op to origin page\t%.0f hashes/s\t%.0f ms expected (2^d / rate)\tengines %v",
			tc.name, d, runs, solves[len(solves)/2].Nanoseconds(), solves[0], solves[len(solves)-1], totals[len(totals)/2].Nanoseconds(),
			rate, float64(uint64(1)<<d)/rate*1000, engines)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
