package sim

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/config"
	"github.com/rampart-shield/rampart/internal/demo"
	"github.com/rampart-shield/rampart/internal/shield"
)

// e2eConfig is the shield configuration of the end-to-end runs: the
// embedded defaults with the built-in rules replaced by rules of the same
// shape whose rates suit a run of two seconds at a fiftieth of a preset's
// scale (the built-in 10/s with a burst of 50 never fires that soon), a
// rule for the expensive search page like the one in examples/, and
// hardening timeouts short enough for the slow attacks to meet them within
// the run. Challenges are easy, so that solving them under -race is quick.
const e2eConfig = `
default_rules: false
rules:
  - name: e2e-writes-per-ip
    match: {methods: [POST, PUT, PATCH, DELETE]}
    limit: {rate: 1/s, burst: 3, by: [ip]}
    action: limit
  - name: e2e-static-per-ip
    match: {static: true}
    limit: {rate: 20/s, burst: 20, by: [ip]}
    action: limit
  - name: e2e-search-per-ip
    match: {paths: ["/search*"]}
    limit: {rate: 1/s, burst: 2, by: [ip]}
    action: limit
  - name: e2e-pages-per-ip
    match: {static: false}
    limit: {rate: 4/s, burst: 6, by: [ip]}
    action: limit
  - name: e2e-misses-per-ip
    limit: {rate: 2/s, burst: 4, by: [ip], count: misses}
    action: limit
hardening:
  read_header_timeout: 1s
  body_rate_grace: 500ms
  min_body_rate: 1KiB
  write_timeout: 1s
  h2: {reset_budget: 50, budget_refill: 1}
challenge:
  difficulty: {normal: 6, elevated: 6, under_attack: 6}
log:
  level: error
`

// startE2EShield starts a real shield in process on loopback ports chosen
// by the kernel, in front of origin, and stops it when the test ends.
func startE2EShield(t *testing.T, origin, mode string, edit func(*config.Config)) *shield.Shield {
	t.Helper()
	cfg, err := config.Parse([]byte(e2eConfig), "e2e.yaml")
	if err != nil {
		t.Fatalf("parsing the test config: %v", err)
	}
	cfg.Listeners = []config.Listener{{Address: "127.0.0.1:0"}}
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Upstream.Targets = []string{origin}
	cfg.Upstream.HealthCheck.Path = "/healthz"
	cfg.StateDir = t.TempDir()
	cfg.Mode = mode
	if edit != nil {
		edit(cfg)
	}
	s, err := shield.New(cfg, shield.Options{Version: "e2e", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("shield.New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("shield Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shield Shutdown: %v", err)
		}
	})
	return s
}

// scrape reads the shield's Prometheus metrics: series (name with its
// labels, as exposed) to value.
func scrape(t *testing.T, adminURL string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatalf("scraping metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping metrics: status %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading metrics: %v", err)
	}
	return out
}

// sumPrefix sums the series whose name and labels start with prefix.
func sumPrefix(m map[string]float64, prefix string) float64 {
	var s float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			s += v
		}
	}
	return s
}

// shieldRefusals counts the attack requests the shield answered itself or
// cut off: any decision but "allow" and "origin-error", and requests the
// shield closed or reset (an address blocked as a repeat offender is
// closed at accept).
func shieldRefusals(rep Report) int64 {
	var n int64
	for d, c := range rep.Decisions["attack"] {
		if d != "allow" && d != "origin-error" {
			n += c
		}
	}
	for s, c := range rep.Statuses["attack"] {
		if s == "error:closed" || s == "error:reset" || s == "closed" {
			n += c
		}
	}
	return n
}

// TestRampartE2E runs every preset for a second or two at a small scale
// against a live rampart in front of a live demo origin, and checks what
// could break between the simulator and the shield: the run completes,
// legitimate visitors get their pages (solving challenges where the mode
// asks for them), the attack is counted, and each attack meets the defence
// meant for it.
func TestRampartE2E(t *testing.T) {
	type check func(t *testing.T, rep Report, before, after map[string]float64)
	delta := func(before, after map[string]float64, series string) float64 { return after[series] - before[series] }
	// keptFromOrigin checks that at least min of the attack never reached
	// the origin, and that the shield answered some of it itself (refused,
	// closed, or served from its cache).
	keptFromOrigin := func(min float64) check {
		return func(t *testing.T, rep Report, _, _ map[string]float64) {
			kept := rep.AttackSent - *rep.AttackReachedOrigin
			if float64(kept) < min*float64(rep.AttackSent) {
				t.Errorf("%d of %d attack requests reached the origin, want at most %.0f%%: decisions %v, cache %v, statuses %v",
					*rep.AttackReachedOrigin, rep.AttackSent, 100*(1-min), rep.Decisions["attack"], rep.Cache["attack"], rep.Statuses["attack"])
			}
			if n := shieldRefusals(rep) + rep.Cache["attack"]["HIT"] + rep.Cache["attack"]["STALE"]; n == 0 {
				t.Errorf("the shield answered no attack request itself: decisions %v, cache %v, statuses %v",
					rep.Decisions["attack"], rep.Cache["attack"], rep.Statuses["attack"])
			}
		}
	}
	// answered checks that the shield let some of the attack through to
	// the origin or answered it itself: the simulator's requests are valid
	// HTTP that it can parse and decide on.
	answered := func(t *testing.T, rep Report, _, _ map[string]float64) {
		var n int64
		for s, c := range rep.Statuses["attack"] {
			if !strings.HasPrefix(s, "error:") {
				n += c
			}
		}
		if n == 0 {
			t.Errorf("no attack request was answered: statuses %v", rep.Statuses["attack"])
		}
	}
	tests := []struct {
		preset   string
		mode     string
		scale    float64
		duration time.Duration
		edit     func(*config.Config)
		check    check
	}{
		{preset: "none", check: func(t *testing.T, rep Report, _, _ map[string]float64) {
			if rep.AttackSent != 0 || *rep.AttackReachedOrigin != 0 {
				t.Errorf("none: %d attack requests sent, %d reached the origin", rep.AttackSent, *rep.AttackReachedOrigin)
			}
		}},
		{preset: "get-flood", check: keptFromOrigin(0.5)},
		// Random query strings make every request a cache miss; under
		// attack every navigation without a clearance is challenged.
		{preset: "cache-bust", mode: "under_attack", scale: 0.05, check: func(t *testing.T, rep Report, b, a map[string]float64) {
			keptFromOrigin(0.9)(t, rep, b, a)
			if rep.Decisions["attack"]["challenge"] == 0 {
				t.Errorf("no attack request was challenged: %v", rep.Decisions["attack"])
			}
		}},
		{preset: "search-flood", check: keptFromOrigin(0.3)},
		{preset: "post-flood", check: func(t *testing.T, rep Report, b, a map[string]float64) {
			keptFromOrigin(0.2)(t, rep, b, a)
			if rep.Statuses["attack"]["429"] == 0 {
				t.Errorf("no POST was limited with 429: %v", rep.Statuses["attack"])
			}
		}},
		// The first connections are spread over the 5 s interval between
		// header lines; 30 connections and 2.5 s make it all but certain
		// that several meet the 1 s header timeout within the run.
		{preset: "slowloris", scale: 0.05, duration: 2500 * time.Millisecond, check: func(t *testing.T, rep Report, b, a map[string]float64) {
			if n := delta(b, a, `rampart_connections_closed_total{rule="header-timeout"}`); n == 0 {
				t.Errorf("the shield closed no connection for its header timeout; attack statuses %v", rep.Statuses["attack"])
			}
			if *rep.AttackReachedOrigin != 0 {
				t.Errorf("%d slowloris requests reached the origin", *rep.AttackReachedOrigin)
			}
		}},
		{preset: "slow-post", scale: 0.05, duration: 2500 * time.Millisecond, check: func(t *testing.T, rep Report, b, a map[string]float64) {
			cut := delta(b, a, `rampart_connections_closed_total{rule="body-too-slow"}`)
			if cut == 0 && rep.Statuses["attack"]["408"] == 0 {
				t.Errorf("no slow body was cut (408 or body-too-slow close); attack statuses %v", rep.Statuses["attack"])
			}
		}},
		// The slow reader pipelines 16 article requests through a tiny
		// window. On loopback the kernel's socket buffers take all 16
		// answers (about 80 KiB), so the shield's writes never stall and
		// its write timeout is not what stops it here; what must hold is
		// that the per-address limits apply to pipelined requests too.
		{preset: "slow-read", scale: 0.05, duration: 2 * time.Second, check: func(t *testing.T, rep Report, b, a map[string]float64) {
			if limited := sumPrefix(a, `rampart_decisions_total{action="limit"`) - sumPrefix(b, `rampart_decisions_total{action="limit"`); limited == 0 {
				t.Error("the shield limited none of the pipelined requests")
			}
			if 2**rep.AttackReachedOrigin > rep.AttackSent {
				t.Errorf("%d of %d pipelined requests reached the origin", *rep.AttackReachedOrigin, rep.AttackSent)
			}
			if n := rep.Statuses["attack"]["held"] + rep.Statuses["attack"]["closed"]; n == 0 {
				t.Errorf("no slow-read connection was held or closed: %v", rep.Statuses["attack"])
			}
		}},
		{preset: "h2-rapid-reset", check: func(t *testing.T, rep Report, b, a map[string]float64) {
			goaways := delta(b, a, "rampart_h2_goaways_total")
			closed := delta(b, a, `rampart_connections_closed_total{rule="h2-resets"}`)
			if goaways == 0 && closed == 0 {
				t.Errorf("%d streams reset and the shield sent no GOAWAY and closed nothing for resets", rep.AttackSent)
			}
			if *rep.AttackReachedOrigin >= rep.AttackSent {
				t.Errorf("every reset stream reached the origin (%d of %d)", *rep.AttackReachedOrigin, rep.AttackSent)
			}
		}},
		// Bots in browsers solve the challenge, as the JS-capable visitors
		// do; visitors without JavaScript cannot.
		{preset: "browser-botnet", mode: "under_attack", scale: 0.1, check: func(t *testing.T, rep Report, b, a map[string]float64) {
			if rep.AttackerSolves == 0 || rep.AttackerSolveCPUs <= 0 {
				t.Errorf("the botnet solved %d challenges for %v CPU seconds", rep.AttackerSolves, rep.AttackerSolveCPUs)
			}
			if rep.LegitJS.ChallengesSolved == 0 {
				t.Errorf("no JS-capable visitor solved a challenge: %+v", rep.LegitJS)
			}
			if rep.LegitNoJS.Challenged == 0 {
				t.Errorf("visitors without JavaScript were never challenged: %+v", rep.LegitNoJS)
			}
			if n := delta(b, a, `rampart_challenge_events_total{event="solved"}`); n < float64(rep.AttackerSolves+rep.LegitJS.ChallengesSolved) {
				t.Errorf("the shield counted %v solved challenges, the simulator %d", n, rep.AttackerSolves+rep.LegitJS.ChallengesSolved)
			}
		}},
		{preset: "mixed", scale: 0.05, duration: 2 * time.Second, check: keptFromOrigin(0.2)},
		// The campaign techniques. What each must meet is the shield's
		// business; here the run must work end to end through it.
		{preset: "ddosia", check: answered},
		{preset: "random-404", check: answered},
		{preset: "header-random", check: answered},
		{preset: "login-flood", check: answered},
		{preset: "pingback", check: answered},
		{preset: "head-flood", check: answered},
		{preset: "carpet", scale: 0.05, check: answered},
		// Each third is a second long.
		{preset: "multi-vector", scale: 0.05, duration: 3 * time.Second, check: answered},
	}
	if len(tests) != len(Presets()) {
		t.Fatalf("%d cases for %d presets: every preset needs a case", len(tests), len(Presets()))
	}
	for _, tt := range tests {
		t.Run(tt.preset, func(t *testing.T) {
			o, originURL := startOrigin(t, demo.Options{})
			s := startE2EShield(t, originURL, cmp.Or(tt.mode, "normal"), tt.edit)
			target, admin := s.Addrs()[0], s.AdminURL()
			cfg := shortRun(target+"/", tt.preset)
			cfg.Scale = cmp.Or(tt.scale, 0.02)
			cfg.Duration = cmp.Or(tt.duration, 1500*time.Millisecond)
			// Visitors read for a while between pages, within the test's
			// 4 pages/s and 2 misses/s per address.
			cfg.ThinkMin, cfg.ThinkMax = 500*time.Millisecond, time.Second
			cfg.Origin = o
			cfg.Solver = ChallengeSolver
			before := scrape(t, admin)
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			after := scrape(t, admin)
			js, _ := json.Marshal(rep)
			t.Logf("%s%s", rep.Summary(), js)

			if rep.StoppedBy != "duration" {
				t.Errorf("the run stopped by %s", rep.StoppedBy)
			}
			if rep.LegitRequests < 5 || rep.LegitJS.Succeeded == 0 {
				t.Errorf("legitimate visitors: %d requests, JS-capable ones %+v", rep.LegitRequests, rep.LegitJS)
			}
			if rep.LegitJS.SuccessRatio < 0.9 {
				t.Errorf("JS-capable visitors succeeded %.1f%% of the time, want at least 90%%: legit statuses %v, decisions %v",
					100*rep.LegitJS.SuccessRatio, rep.Statuses["legit"], rep.Decisions["legit"])
			}
			if rep.AttackReachedOrigin == nil || rep.Origin == nil {
				t.Fatal("the origin's counters are missing")
			}
			if tt.preset != "none" && rep.AttackSent == 0 {
				t.Fatal("no attack was sent")
			}
			if *rep.AttackReachedOrigin > rep.AttackSent {
				t.Errorf("more attack requests reached the origin (%d) than were sent (%d)", *rep.AttackReachedOrigin, rep.AttackSent)
			}
			if n := rep.Origin.Unknown.Requests; n > 2 {
				// Only the shield's health checks go unlabelled, and they
				// use /healthz, which the origin does not count.
				t.Errorf("%d requests reached the origin without the simulator's role header", n)
			}
			if a := after["rampart_connections_accepted_total"] - before["rampart_connections_accepted_total"]; a == 0 {
				t.Error("the shield accepted no connection: did the run reach it at all?")
			}
			tt.check(t, rep, before, after)
		})
	}
}
