package sim

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/demo"
)

// startOrigin serves a demo origin on a loopback port through demo's Serve
// (HTTP/1.1 and h2c, bounded connections).
func startOrigin(t *testing.T, opt demo.Options) (*demo.Origin, string) {
	t.Helper()
	o, err := demo.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- o.Serve(ln) }()
	t.Cleanup(func() {
		o.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("origin Serve: %v", err)
		}
	})
	return o, "http://" + ln.Addr().String()
}

// shortRun is a 1.5 s run sized for tests.
func shortRun(target, preset string) Config {
	return Config{
		Target:   target,
		Preset:   preset,
		Scale:    0.02,
		Duration: 1500 * time.Millisecond,
		Grace:    10 * time.Second,
		Legit:    6,
		ThinkMin: 20 * time.Millisecond, ThinkMax: 80 * time.Millisecond,
	}
}

// TestRunPresetsAgainstOrigin runs every preset for 1.5 s against a live
// demo origin, directly (no shield), reading the origin's counters over
// HTTP.
func TestRunPresetsAgainstOrigin(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end runs take a few seconds each")
	}
	for _, p := range Presets() {
		t.Run(p.Name, func(t *testing.T) {
			_, base := startOrigin(t, demo.Options{})
			cfg := shortRun(base, p.Name)
			cfg.OriginStats = base + "/__demo/stats"
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			js, _ := json.Marshal(rep)
			t.Logf("%s%s", rep.Summary(), js)
			if rep.StoppedBy != "duration" || rep.DurationS < 1.4 || rep.DurationS > 3 {
				t.Errorf("stopped by %s after %vs", rep.StoppedBy, rep.DurationS)
			}
			if rep.LegitRequests < 10 || rep.LegitSuccessRatio != 1 {
				t.Errorf("legit: %d requests, success %v (the bare origin is far from full)", rep.LegitRequests, rep.LegitSuccessRatio)
			}
			if rep.LegitJS.Visitors != 5 || rep.LegitNoJS.Visitors != 1 || rep.LegitNoJS.Requests == 0 {
				t.Errorf("visitor split: JS %+v, no-JS %+v", rep.LegitJS, rep.LegitNoJS)
			}
			if rep.AttackReachedOrigin == nil || rep.LegitReachedOrigin == nil || rep.Origin == nil {
				t.Fatal("origin counters missing")
			}
			if *rep.LegitReachedOrigin < rep.LegitRequests {
				t.Errorf("origin saw %d legit requests, visitors made %d", *rep.LegitReachedOrigin, rep.LegitRequests)
			}
			if n := rep.Origin.Unknown.Requests; n != 0 {
				t.Errorf("%d requests reached the origin without a role", n)
			}
			reached, held := *rep.AttackReachedOrigin, rep.Statuses["attack"]["held"]
			if p.Name == "none" {
				if rep.AttackSent != 0 || reached != 0 {
					t.Errorf("none: attack sent %d, reached %d", rep.AttackSent, reached)
				}
				return
			}
			if rep.AttackSent == 0 {
				t.Fatal("no attack sent")
			}
			switch p.Name {
			case "slowloris":
				if reached != 0 || held == 0 {
					t.Errorf("slowloris: %d reached the origin, %d connections held", reached, held)
				}
			case "slow-post":
				if reached == 0 || held == 0 {
					t.Errorf("slow-post: %d reached the origin, %d connections held", reached, held)
				}
			case "h2-rapid-reset":
				// 200 streams/s for 1.5 s, less whatever a loaded machine
				// loses.
				if rep.AttackSent < 30 || reached == 0 {
					t.Errorf("rapid reset: %d streams sent, %d reached", rep.AttackSent, reached)
				}
			default:
				if reached == 0 || *rep.AttackReachedRatio > 1 {
					t.Errorf("%s: %d of %d reached the origin", p.Name, reached, rep.AttackSent)
				}
			}
			if reached > rep.AttackSent {
				t.Errorf("more attack requests reached the origin (%d) than were sent (%d)", reached, rep.AttackSent)
			}
			if check := originShapes[p.Name]; check != nil {
				cl := rep.Origin.Attack.Classes
				if err := check(cl, rep.Statuses["attack"]); err != "" {
					t.Errorf("%s: %s; origin classes %+v, statuses %v", p.Name, err, cl, rep.Statuses["attack"])
				}
			}
		})
	}
}

// originShapes checks, per campaign preset, what its requests are to the
// bare origin: their classes and answers.
var originShapes = map[string]func(cl demo.ClassCounts, st map[string]int64) string{
	"ddosia": func(cl demo.ClassCounts, st map[string]int64) string {
		if cl.Search == 0 || cl.Page == 0 || cl.Post == 0 || cl.Static+cl.Other != 0 {
			return "want searches, listing pages and posts only"
		}
		if st["201"] == 0 && st["303"] == 0 {
			return "no form or login answered"
		}
		return ""
	},
	"random-404": func(cl demo.ClassCounts, st map[string]int64) string {
		if cl.Other == 0 || cl.Page+cl.Search+cl.Post+cl.Static != 0 || st["404"] == 0 {
			return "want 404s only"
		}
		return ""
	},
	"header-random": func(cl demo.ClassCounts, st map[string]int64) string {
		if cl.Page == 0 || cl.Search+cl.Post+cl.Static+cl.Other != 0 || st["200"] == 0 {
			return "want pages only, served"
		}
		return ""
	},
	"login-flood": func(cl demo.ClassCounts, st map[string]int64) string {
		if cl.Post == 0 || cl.Page+cl.Search+cl.Static+cl.Other != 0 || st["303"] == 0 {
			return "want logins only, answered 303 and not followed"
		}
		return ""
	},
	"pingback": func(cl demo.ClassCounts, st map[string]int64) string {
		if cl.Page == 0 || cl.Search+cl.Post+cl.Static+cl.Other != 0 {
			return "want pages only"
		}
		return ""
	},
	"head-flood": func(cl demo.ClassCounts, st map[string]int64) string {
		if cl.Page == 0 || cl.Search+cl.Post+cl.Static+cl.Other != 0 || st["200"] == 0 {
			return "want pages only, served"
		}
		return ""
	},
	"carpet": func(cl demo.ClassCounts, st map[string]int64) string {
		if cl.Page+cl.Search == 0 || cl.Post+cl.Static+cl.Other != 0 {
			return "want pages and searches only"
		}
		return ""
	},
	// A third of the run each: ddosia's searches and posts, then pages,
	// then slowloris connections held to the end.
	"multi-vector": func(cl demo.ClassCounts, st map[string]int64) string {
		if cl.Search == 0 || cl.Post == 0 || cl.Page == 0 || st["held"] == 0 {
			return "want ddosia's searches and posts, pages, and slowloris connections held"
		}
		return ""
	},
}

// challengeGate is a stand-in for rampart's challenge in front of the demo
// origin: navigations without the clearance cookie get 403 with
// Rampart-Mitigated: challenge; POST /.rampart/challenge/solve sets the
// cookie.
func challengeGate(t *testing.T, originURL string) (*httptest.Server, *atomic.Int64) {
	u, err := url.Parse(originURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.SetXForwarded()
	}, ErrorLog: log.New(io.Discard, "", 0)}
	var issued atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.rampart/challenge/solve" && r.Method == http.MethodPost {
			http.SetCookie(w, &http.Cookie{Name: "rampart_clearance", Value: fmt.Sprint("ok-", issued.Add(1)), Path: "/"})
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if _, err := r.Cookie("rampart_clearance"); err != nil && r.Header.Get("Sec-Fetch-Mode") == "navigate" {
			w.Header().Set("Rampart-Mitigated", "challenge")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "<html>solve me</html>")
			return
		}
		w.Header().Set("Rampart-Cache", "BYPASS")
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &issued
}

// hashSolver burns a little CPU, then redeems the "solution".
var hashSolver = SolverFunc(func(ctx context.Context, c *http.Client, resp *http.Response, body []byte) error {
	if !strings.Contains(string(body), "solve me") {
		return errors.New("not a challenge page")
	}
	sum := sha256.Sum256(body)
	for range 20000 {
		sum = sha256.Sum256(sum[:])
	}
	base := resp.Request.URL.Scheme + "://" + resp.Request.URL.Host
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/.rampart/challenge/solve", strings.NewReader(fmt.Sprintf("%x", sum[:4])))
	if err != nil {
		return err
	}
	r, err := c.Do(req)
	if err != nil {
		return err
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNoContent {
		return fmt.Errorf("solve: status %d", r.StatusCode)
	}
	return nil
})

// TestRunSolvesChallenges checks the solver plumbing: JS-capable visitors
// and the botnet solve the gate's challenge and get through, no-JS visitors
// do not, and the botnet's solving CPU is reported.
func TestRunSolvesChallenges(t *testing.T) {
	o, base := startOrigin(t, demo.Options{})
	gate, issued := challengeGate(t, base)
	cfg := shortRun(gate.URL, "browser-botnet")
	cfg.Scale = 0.1 // 5 bots
	cfg.Origin = o
	cfg.Solver = hashSolver
	cfg.ProxyPID = os.Getpid()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Log(rep.Summary())
	if js := rep.LegitJS; js.ChallengesSolved < 5 || js.SuccessRatio != 1 || js.Challenged < js.ChallengesSolved {
		t.Errorf("JS visitors: %+v", js)
	}
	if nojs := rep.LegitNoJS; nojs.Requests == 0 || nojs.Succeeded != 0 || nojs.Challenged != nojs.Requests {
		t.Errorf("no-JS visitors should fail every navigation: %+v", nojs)
	}
	if rep.AttackerSolves < 5 || rep.AttackerSolveCPUs <= 0 {
		t.Errorf("botnet solved %d challenges for %v CPU seconds", rep.AttackerSolves, rep.AttackerSolveCPUs)
	}
	if got := issued.Load(); got != rep.AttackerSolves+rep.LegitJS.ChallengesSolved {
		t.Errorf("gate issued %d clearances, report counts %d+%d", got, rep.AttackerSolves, rep.LegitJS.ChallengesSolved)
	}
	if rep.Decisions["legit"]["challenge"] == 0 || rep.Cache["legit"]["BYPASS"] == 0 {
		t.Errorf("decisions %v, cache %v", rep.Decisions, rep.Cache)
	}
	if rep.ProxyCPUs == nil || rep.ProxyRSSBytes == nil || *rep.ProxyRSSBytes <= 0 || *rep.ProxyPeakRSSBytes < *rep.ProxyRSSBytes {
		t.Errorf("proxy figures from /proc missing: %v %v", rep.ProxyCPUs, rep.ProxyRSSBytes)
	}
	if *rep.AttackReachedOrigin == 0 {
		t.Error("the botnet never reached the origin after solving")
	}
}

func TestRunWithoutSolverFailsChallenged(t *testing.T) {
	_, base := startOrigin(t, demo.Options{})
	gate, _ := challengeGate(t, base)
	cfg := shortRun(gate.URL, "none")
	cfg.Duration = 500 * time.Millisecond
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.LegitJS.Requests == 0 || rep.LegitJS.Succeeded != 0 || rep.LegitJS.ChallengesSolved != 0 {
		t.Errorf("without a solver JS visitors cannot pass: %+v", rep.LegitJS)
	}
	if len(rep.Notes) == 0 {
		t.Error("no note about the missing solver")
	}
}

func TestRunStopsAtMaxRequests(t *testing.T) {
	o, base := startOrigin(t, demo.Options{})
	cfg := shortRun(base, "get-flood")
	cfg.Scale = 0.05
	cfg.Duration = 20 * time.Second
	cfg.MaxRequests = 40
	cfg.Origin = o
	start := time.Now()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.StoppedBy != "max-requests" || rep.Requests > 40 || rep.Requests < 30 {
		t.Errorf("stopped by %s after %d requests", rep.StoppedBy, rep.Requests)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("run took %v despite the cap", d)
	}
	if st := o.Stats(); st.Served+st.Rejected > 40+6 { // a sign-in redirect is a second origin request
		t.Errorf("origin saw %d requests, cap 40", st.Served+st.Rejected)
	}
}

func TestRunCanceled(t *testing.T) {
	_, base := startOrigin(t, demo.Options{})
	cfg := shortRun(base, "slowloris")
	cfg.Duration = 30 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.StoppedBy != "canceled" {
		t.Errorf("stopped by %s", rep.StoppedBy)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancel took %v", d)
	}
}

// TestRunRefusesBeforeSending checks that a non-loopback target or stats
// URL is refused before a single request reaches anything.
func TestRunRefusesBeforeSending(t *testing.T) {
	o, base := startOrigin(t, demo.Options{})
	tests := []struct {
		name, target, stats string
	}{
		{"public target", "http://198.51.100.7:8080/", base + "/__demo/stats"},
		{"named target", "http://example.org/", base + "/__demo/stats"},
		{"private stats", base, "http://10.1.2.3/__demo/stats"},
		{"named stats", base, "http://stats.example/__demo/stats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := shortRun(tt.target, "get-flood")
			cfg.OriginStats = tt.stats
			_, err := Run(context.Background(), cfg)
			if !errors.Is(err, ErrNotLoopback) {
				t.Fatalf("Run error %v, want ErrNotLoopback", err)
			}
			if st := o.Stats(); st.Served+st.Rejected+st.Canceled != 0 {
				t.Errorf("the origin saw traffic: %+v", st)
			}
		})
	}
}

func TestRunValidation(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no target", func(c *Config) { c.Target = "" }},
		{"unknown preset", func(c *Config) { c.Preset = "teardrop" }},
		{"too long", func(c *Config) { c.Duration = 2 * MaxDuration }},
		{"negative cap", func(c *Config) { c.MaxRequests = -1 }},
		{"think inverted", func(c *Config) { c.ThinkMin, c.ThinkMax = time.Second, time.Millisecond }},
		{"too many clients", func(c *Config) { c.Preset, c.Scale = "cache-bust", 100 }},
		{"no-JS share above 1", func(c *Config) { c.NoJSShare = 1.5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := shortRun("http://127.0.0.1:9/", "none")
			tt.edit(&cfg)
			if _, err := Run(context.Background(), cfg); err == nil {
				t.Error("invalid config accepted")
			}
		})
	}
}

func TestRunClusteredLayoutReachesOrigin(t *testing.T) {
	o, base := startOrigin(t, demo.Options{})
	cfg := shortRun(base, "get-flood")
	cfg.Layout = LayoutClustered
	cfg.Duration = 700 * time.Millisecond
	cfg.Origin = o
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	legitNet, attackNet := "127.10.", "127.66."
	for _, s := range o.Stats().Sources {
		want := legitNet
		if s.LastRole == "attack" {
			want = attackNet
		}
		if !strings.HasPrefix(s.Addr, want) {
			t.Errorf("source %s (%s) outside %s0.0/16", s.Addr, s.LastRole, want)
		}
	}
}
