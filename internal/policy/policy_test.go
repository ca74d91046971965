package policy

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/config"
	"github.com/rampart-shield/rampart/internal/limiter"
	"github.com/rampart-shield/rampart/internal/verdict"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()

func parseRules(t testing.TB, yaml string) []config.Rule {
	t.Helper()
	c, err := config.Parse([]byte(yaml), "rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c.Rules
}

func newEngine(t testing.TB, yaml string, builtin bool, esc *limiter.EscalatorOptions) *Engine {
	t.Helper()
	e, err := NewEngine(Options{TableCapacity: 1 << 12, Escalation: esc, Now: func() time.Time { return time.Unix(0, t0) }})
	if err != nil {
		t.Fatal(err)
	}
	var b []config.Rule
	if builtin {
		b = config.BuiltinRules()
	}
	rs, err := Compile(parseRules(t, yaml), b, config.Default().Challenge.BypassPaths, 20, 200)
	if err != nil {
		t.Fatal(err)
	}
	e.Swap(rs)
	return e
}

func facts(ip, method, path string) *verdict.Facts {
	a := netip.MustParseAddr(ip)
	p, _ := a.Prefix(24)
	if a.Is6() {
		p, _ = a.Prefix(64)
	}
	return &verdict.Facts{
		IP: a, Prefix: p, Host: "news.example", Method: method, Path: path,
		Header:    http.Header{"Accept": {"text/html"}, "User-Agent": {"Mozilla/5.0"}},
		UserAgent: "Mozilla/5.0",
	}
}

// run asks n times at one instant and returns the actions.
func run(e *Engine, f *verdict.Facts, mode verdict.Mode, n int, now int64) []verdict.Action {
	out := make([]verdict.Action, n)
	for i := range out {
		out[i] = e.Decide(f, mode, now).Action
	}
	return out
}

func count(as []verdict.Action, a verdict.Action) int {
	n := 0
	for _, x := range as {
		if x == a {
			n++
		}
	}
	return n
}

func TestPerIPLimitLeavesNeighboursAlone(t *testing.T) {
	e := newEngine(t, `
rules:
  - name: search
    match: {paths: ["/search*"]}
    limit: {rate: 1/s, burst: 5, by: [ip]}
    action: limit
`, false, nil)
	abusive := facts("203.0.113.7", "GET", "/search")
	got := run(e, abusive, verdict.ModeNormal, 8, t0)
	if count(got, verdict.Allow) != 5 || count(got, verdict.Limit) != 3 {
		t.Fatalf("abusive IP: %v, want 5 allowed then limited", got)
	}
	d := e.Decide(abusive, verdict.ModeNormal, t0)
	if d.Rule != "search" || d.Reason != "rule:search" || d.RetryAfter <= 0 || d.RetryAfter > time.Second {
		t.Errorf("limit decision = %+v", d)
	}
	neighbour := facts("203.0.113.8", "GET", "/search")
	if got := run(e, neighbour, verdict.ModeNormal, 5, t0); count(got, verdict.Allow) != 5 {
		t.Errorf("neighbour limited: %v", got)
	}
	if d := e.Decide(facts("203.0.113.7", "GET", "/news/1"), verdict.ModeNormal, t0); d.Action != verdict.Allow {
		t.Errorf("other path limited: %+v", d)
	}
	// One emission interval later one more request conforms.
	if d := e.Decide(abusive, verdict.ModeNormal, t0+int64(time.Second)); d.Action != verdict.Allow {
		t.Errorf("after 1s: %+v", d)
	}
}

func TestPrefixLimitCatchesSpreadFlood(t *testing.T) {
	e := newEngine(t, "", true, nil)
	// 300 addresses of one /24 each send 2 page requests: every one is far
	// below the per-IP limit, the prefix as a whole is not.
	checked := 0
	for i := range 150 {
		f := facts("198.51.100."+strconv.Itoa(i+1), "GET", "/news/1")
		for range 2 {
			if d := e.Decide(f, verdict.ModeNormal, t0); d.Action == verdict.Check {
				if d.Rule != "default-pages-per-prefix" {
					t.Fatalf("checked by %q", d.Rule)
				}
				checked++
			} else if d.Action != verdict.Allow {
				t.Fatalf("unexpected %+v", d)
			}
		}
	}
	// The prefix burst is 300: exactly 300 requests pass at one instant.
	if checked != 0 {
		t.Fatalf("checked %d of the first 300", checked)
	}
	f := facts("198.51.100.200", "GET", "/news/2")
	if d := e.Decide(f, verdict.ModeNormal, t0); d.Action != verdict.Check {
		t.Fatalf("request 301 from the prefix: %+v, want check", d)
	}
	// A visitor who passed the check is not checked again.
	passed := *f
	passed.Clearance = verdict.Clearance{Checked: true}
	if d := e.Decide(&passed, verdict.ModeNormal, t0); d.Action != verdict.Allow {
		t.Fatalf("checked visitor: %+v", d)
	}
	// A cleared visitor in the same prefix is not checked.
	f.Clearance = verdict.Clearance{Valid: true, ID: 42}
	if d := e.Decide(f, verdict.ModeNormal, t0); d.Action != verdict.Allow || d.Class != verdict.ClassPriority {
		t.Fatalf("cleared visitor: %+v", d)
	}
	// Another prefix is untouched.
	if d := e.Decide(facts("198.51.101.9", "GET", "/news/2"), verdict.ModeNormal, t0); d.Action != verdict.Allow {
		t.Fatalf("other prefix: %+v", d)
	}
}

func TestRuleActionsAndMatches(t *testing.T) {
	e := newEngine(t, `
rules:
  - name: office
    match: {clients: ["192.0.2.0/24"]}
    action: allow
  - name: no-ua
    match: {headers: [{name: user-agent, present: false}]}
    action: drop
  - name: bad-bot
    match: {headers: [{name: User-Agent, value: "/(?i)evilbot/"}]}
    action: block
    block_ttl: 10m
  - name: admin
    match: {paths: ["/admin*"], hosts: ["news.example"], methods: [POST]}
    action: tarpit
  - name: attack-only
    match: {modes: [under_attack], paths: ["/heavy"]}
    action: limit
  - name: busters
    match: {query: {min_params: 4}}
    action: challenge
  - name: api-key
    match: {paths: ["/api/*"]}
    limit: {rate: 1/s, burst: 2, by: ["header:X-Api-Key"]}
    action: limit
`, false, nil)
	tests := []struct {
		name   string
		f      func() *verdict.Facts
		mode   verdict.Mode
		action verdict.Action
		rule   string
	}{
		{"allow rule stops evaluation", func() *verdict.Facts {
			f := facts("192.0.2.5", "POST", "/admin")
			return f
		}, verdict.ModeUnderAttack, verdict.Allow, "office"},
		{"missing header drops", func() *verdict.Facts {
			f := facts("203.0.113.1", "GET", "/")
			f.Header = http.Header{"Accept": {"*/*"}}
			return f
		}, verdict.ModeNormal, verdict.Drop, "no-ua"},
		{"header regexp blocks", func() *verdict.Facts {
			f := facts("203.0.113.1", "GET", "/")
			f.Header.Set("User-Agent", "Mozilla EvilBot/2")
			return f
		}, verdict.ModeNormal, verdict.Block, "bad-bot"},
		{"path host method tarpit", func() *verdict.Facts { return facts("203.0.113.1", "POST", "/admin/login") }, verdict.ModeNormal, verdict.Tarpit, "admin"},
		{"method mismatch passes", func() *verdict.Facts { return facts("203.0.113.1", "GET", "/admin/login") }, verdict.ModeNormal, verdict.Allow, ""},
		{"mode-only rule idle in normal", func() *verdict.Facts { return facts("203.0.113.1", "GET", "/heavy") }, verdict.ModeNormal, verdict.Allow, ""},
		{"mode-only rule fires under attack", func() *verdict.Facts {
			f := facts("203.0.113.1", "GET", "/heavy")
			return f
		}, verdict.ModeUnderAttack, verdict.Limit, "attack-only"},
		{"query shape challenged", func() *verdict.Facts {
			f := facts("203.0.113.1", "GET", "/news")
			f.RawQuery = "a=1&b=2&c=3&d=4"
			return f
		}, verdict.ModeNormal, verdict.Challenge, "busters"},
		{"query shape satisfied by clearance", func() *verdict.Facts {
			f := facts("203.0.113.1", "GET", "/news")
			f.RawQuery = "a=1&b=2&c=3&d=4"
			f.Clearance = verdict.Clearance{Valid: true, ID: 7}
			return f
		}, verdict.ModeNormal, verdict.Allow, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := e.Decide(tc.f(), tc.mode, t0)
			if d.Action != tc.action || d.Rule != tc.rule {
				t.Fatalf("got %v by %q, want %v by %q (%+v)", d.Action, d.Rule, tc.action, tc.rule, d)
			}
			if d.Action == verdict.Block && d.BlockTTL != 10*time.Minute {
				t.Errorf("block TTL %v", d.BlockTTL)
			}
		})
	}
	// The header key: two API keys have separate budgets.
	a, b := facts("203.0.113.1", "GET", "/api/x"), facts("203.0.113.1", "GET", "/api/x")
	a.Header.Set("X-Api-Key", "alpha")
	b.Header.Set("X-Api-Key", "beta")
	if got := run(e, a, verdict.ModeNormal, 3, t0); count(got, verdict.Limit) != 1 {
		t.Errorf("key alpha: %v", got)
	}
	if got := run(e, b, verdict.ModeNormal, 2, t0); count(got, verdict.Allow) != 2 {
		t.Errorf("key beta shares alpha's budget: %v", got)
	}
}

func TestUnderAttackChallengesUncleared(t *testing.T) {
	e := newEngine(t, "", false, nil)
	f := facts("203.0.113.1", "GET", "/news/1")
	if d := e.Decide(f, verdict.ModeUnderAttack, t0); d.Action != verdict.Challenge || d.Reason != ReasonUnderAttack {
		t.Fatalf("uncleared: %+v", d)
	}
	if d := e.Decide(f, verdict.ModeElevated, t0); d.Action != verdict.Allow {
		t.Fatalf("elevated: %+v", d)
	}
	f.Path = "/robots.txt"
	if d := e.Decide(f, verdict.ModeUnderAttack, t0); d.Action != verdict.Allow {
		t.Fatalf("bypass path challenged: %+v", d)
	}
	f.Path = "/news/1"
	f.Clearance = verdict.Clearance{Valid: true, ID: 1}
	if d := e.Decide(f, verdict.ModeUnderAttack, t0); d.Action != verdict.Allow {
		t.Fatalf("cleared: %+v", d)
	}
	g := facts("203.0.113.2", "GET", "/news/1")
	g.Allowlisted = true
	if d := e.Decide(g, verdict.ModeUnderAttack, t0); d.Action != verdict.Allow || d.Reason != ReasonAllowList {
		t.Fatalf("allow-listed: %+v", d)
	}
}

func TestClearanceBudget(t *testing.T) {
	e := newEngine(t, "", false, nil)
	f := facts("203.0.113.1", "GET", "/")
	f.Clearance = verdict.Clearance{Valid: true, ID: 99}
	got := run(e, f, verdict.ModeNormal, 201, t0)
	if count(got, verdict.Allow) != 200 || got[200] != verdict.Limit {
		t.Fatalf("clearance budget: %d allowed, last %v", count(got, verdict.Allow), got[200])
	}
	if d := e.Decide(f, verdict.ModeNormal, t0); d.Reason != ReasonClearanceBudget {
		t.Errorf("reason %q", d.Reason)
	}
	// A second token from the same address has its own budget.
	f.Clearance.ID = 100
	if d := e.Decide(f, verdict.ModeNormal, t0); d.Action != verdict.Allow {
		t.Errorf("second token: %+v", d)
	}
}

func TestDryRun(t *testing.T) {
	e := newEngine(t, `
rules:
  - name: try-me
    match: {paths: ["/x"]}
    action: drop
    dry_run: true
`, false, nil)
	d := e.Decide(facts("203.0.113.1", "GET", "/x"), verdict.ModeNormal, t0)
	if d.Action != verdict.Allow || d.DryRun != "try-me" || d.DryRunAction != verdict.Drop {
		t.Fatalf("dry run: %+v", d)
	}
	if e.DryRuns() != 1 {
		t.Errorf("dry runs counted %d", e.DryRuns())
	}
}

func TestEscalationDoubles(t *testing.T) {
	e := newEngine(t, `
rules:
  - name: tight
    limit: {rate: 1/s, burst: 1}
    action: limit
`, false, &limiter.EscalatorOptions{Strikes: 3, Window: 10 * time.Second, BaseTTL: time.Minute, MaxTTL: 4 * time.Minute, Forget: time.Hour})
	f := facts("203.0.113.9", "GET", "/")
	now := t0
	var ttls []time.Duration
	for round := 0; round < 4; round++ {
		var last verdict.Decision
		for i := 0; i < 5 && last.Action != verdict.Block; i++ {
			last = e.Decide(f, verdict.ModeNormal, now)
		}
		if last.Action != verdict.Block || last.Reason != ReasonRepeatOffender {
			t.Fatalf("round %d: no block: %+v", round, last)
		}
		ttls = append(ttls, last.BlockTTL)
		now += int64(last.BlockTTL) + int64(time.Second)
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute}
	for i := range want {
		if ttls[i] != want[i] {
			t.Fatalf("block TTLs %v, want %v", ttls, want)
		}
	}
}

// An IPv6 client that rotates addresses within its /64 collects strikes
// against the network; IPv4 neighbours are counted one by one.
func TestIPv6StrikesCountPerNetwork(t *testing.T) {
	e := newEngine(t, `
rules:
  - name: tight
    limit: {rate: 1/m, burst: 1, by: [ip]}
    action: limit
`, false, &limiter.EscalatorOptions{Strikes: 3, Window: 10 * time.Second, BaseTTL: time.Minute, MaxTTL: time.Hour, Forget: time.Hour})
	var last verdict.Decision
	for i := 1; i <= 7 && last.Action != verdict.Block; i++ {
		f := facts("2001:db8:1:2::"+strconv.Itoa(i), "GET", "/")
		e.Decide(f, verdict.ModeNormal, t0) // the address's one allowed request
		last = e.Decide(f, verdict.ModeNormal, t0)
	}
	if last.Action != verdict.Block {
		t.Fatalf("rotating IPv6 addresses in one /64 never blocked: %+v", last)
	}
	for i := 1; i <= 7; i++ {
		f := facts("198.51.100."+strconv.Itoa(i), "GET", "/")
		e.Decide(f, verdict.ModeNormal, t0)
		if d := e.Decide(f, verdict.ModeNormal, t0); d.Action == verdict.Block {
			t.Fatalf("IPv4 neighbours share strikes: %+v at .%d", d, i)
		}
	}
}

func TestResponseCountingAndCost(t *testing.T) {
	e := newEngine(t, `
rules:
  - name: scanner
    limit: {rate: 1/m, burst: 3, count: responses, statuses: ["404", "5xx"]}
    action: block
    block_ttl: 5m
  - name: search-cost
    match: {paths: ["/search"]}
    limit: {rate: 10/s, burst: 100, count: responses, cost_header: X-Origin-Cost}
    action: limit
`, false, nil)
	f := facts("203.0.113.3", "GET", "/missing")
	for i := 0; i < 2; i++ {
		if d := e.Decide(f, verdict.ModeNormal, t0); d.Action != verdict.Allow {
			t.Fatalf("before the 404s: %+v", d)
		}
		e.Observe(f, verdict.ModeNormal, 404, http.Header{}, t0)
	}
	e.Observe(f, verdict.ModeNormal, 200, http.Header{}, t0) // not counted
	if d := e.Decide(f, verdict.ModeNormal, t0); d.Action != verdict.Allow {
		t.Fatalf("2 404s within a budget of 3: %+v", d)
	}
	// The third error spends the budget: the next request fires the rule.
	e.Observe(f, verdict.ModeNormal, 503, http.Header{}, t0)
	if d := e.Decide(f, verdict.ModeNormal, t0); d.Action != verdict.Block || d.BlockTTL != 5*time.Minute {
		t.Fatalf("after the 3rd error: %+v", d)
	}

	s := facts("203.0.113.4", "GET", "/search")
	e.Observe(s, verdict.ModeNormal, 200, http.Header{"X-Origin-Cost": {"100"}}, t0)
	if d := e.Decide(s, verdict.ModeNormal, t0); d.Action != verdict.Limit {
		t.Fatalf("cost 100 spends a budget of 100: %+v", d)
	}
	if d := e.Decide(s, verdict.ModeNormal, t0+int64(200*time.Millisecond)); d.Action != verdict.Allow {
		t.Fatalf("200ms later 2 units came back: %+v", d)
	}
	e.Observe(s, verdict.ModeNormal, 200, http.Header{"X-Origin-Cost": {"50"}}, t0)
	if d := e.Decide(s, verdict.ModeNormal, t0); d.Action != verdict.Limit || d.RetryAfter < 4*time.Second {
		t.Fatalf("cost 150: %+v", d)
	}
	if got := e.Rules().CostHeaders(); len(got) != 1 || got[0] != "X-Origin-Cost" {
		t.Errorf("cost headers %v", got)
	}
}

func TestMissRules(t *testing.T) {
	e := newEngine(t, "", true, nil)
	f := facts("203.0.113.5", "GET", "/news/1")
	got := make([]verdict.Action, 25)
	for i := range got {
		got[i] = e.DecideMiss(f, verdict.ModeNormal, t0).Action
	}
	if count(got, verdict.Allow) != 20 || count(got, verdict.Limit) != 5 {
		t.Fatalf("misses per ip: %v", got)
	}
	// Hits (plain Decide) are not charged to the miss rule.
	if d := e.Decide(facts("203.0.113.6", "GET", "/news/1"), verdict.ModeNormal, t0); d.Action != verdict.Allow {
		t.Fatalf("decide: %+v", d)
	}
}

// From elevated mode up, the built-in rules check (cookies) a request that
// would go to the origin, navigation or not, unless the client passed the
// check or holds a clearance; requests the cache answers (plain Decide),
// static assets and bypass paths are not checked, and normal mode checks
// nothing. A cookie-check token does not satisfy a challenge: under attack,
// the request stage challenges every request without a clearance.
func TestUncheckedMissesChecked(t *testing.T) {
	e := newEngine(t, "", true, nil)
	nav := facts("203.0.113.20", "GET", "/search")
	nav.Navigation = true
	if d := e.DecideMiss(nav, verdict.ModeNormal, t0); d.Action != verdict.Allow {
		t.Fatalf("normal mode: %+v", d)
	}
	for _, m := range []verdict.Mode{verdict.ModeElevated, verdict.ModeUnderAttack} {
		d := e.DecideMiss(nav, m, t0)
		if d.Action != verdict.Check || d.Rule != "default-unchecked-misses" {
			t.Fatalf("%v: unchecked page miss: %+v", m, d)
		}
	}
	if d := e.Decide(nav, verdict.ModeElevated, t0); d.Action != verdict.Allow {
		t.Fatalf("elevated request stage (a cache hit) checked: %+v", d)
	}
	checked := *nav
	checked.Clearance = verdict.Clearance{Checked: true}
	if d := e.DecideMiss(&checked, verdict.ModeElevated, t0); d.Action != verdict.Allow {
		t.Fatalf("checked page miss: %+v", d)
	}
	if d := e.Decide(&checked, verdict.ModeUnderAttack, t0); d.Action != verdict.Challenge {
		t.Fatalf("a cookie-check token satisfied the under-attack challenge: %+v", d)
	}
	cleared := *nav
	cleared.Clearance = verdict.Clearance{Valid: true, Checked: true, ID: 7}
	if d := e.DecideMiss(&cleared, verdict.ModeElevated, t0); d.Action != verdict.Allow {
		t.Fatalf("cleared page miss: %+v", d)
	}
	// A script's request is checked as well, a login post too; a static
	// asset the cache lacks is not.
	api := facts("203.0.113.21", "GET", "/search")
	api.Header = http.Header{"User-Agent": {"Go-http-client/1.1"}}
	post := facts("203.0.113.23", "POST", "/login")
	for _, f := range []*verdict.Facts{api, post} {
		if d := e.DecideMiss(f, verdict.ModeElevated, t0); d.Action != verdict.Check {
			t.Fatalf("unchecked %s %s miss: %+v", f.Method, f.Path, d)
		}
	}
	asset := facts("203.0.113.24", "GET", "/static/app.css")
	asset.Static = true
	if d := e.DecideMiss(asset, verdict.ModeElevated, t0); d.Action != verdict.Allow {
		t.Fatalf("static miss checked: %+v", d)
	}
	feed := facts("203.0.113.22", "GET", "/feed/")
	feed.Navigation = true
	if d := e.DecideMiss(feed, verdict.ModeElevated, t0); d.Action != verdict.Allow {
		t.Fatalf("bypass path checked: %+v", d)
	}
}

// A rule with match.miss runs at the miss stage only; miss with a count
// other than misses does not compile.
func TestMatchMiss(t *testing.T) {
	e := newEngine(t, `
rules:
  - name: misses-of-search
    match: {miss: true, paths: ["/search"]}
    limit: {rate: 1/m, burst: 2}
    action: limit
`, false, nil)
	f := facts("203.0.113.30", "GET", "/search")
	for i := 0; i < 5; i++ {
		if d := e.Decide(f, verdict.ModeNormal, t0); d.Action != verdict.Allow {
			t.Fatalf("request stage fired a miss rule: %+v", d)
		}
	}
	got := make([]verdict.Action, 4)
	for i := range got {
		got[i] = e.DecideMiss(f, verdict.ModeNormal, t0).Action
	}
	if count(got, verdict.Allow) != 2 || count(got, verdict.Limit) != 2 {
		t.Fatalf("miss stage: %v", got)
	}
	bad := []config.Rule{{Name: "x", Match: config.Match{Miss: true}, Limit: &config.Limit{Rate: 1, Count: "responses", Statuses: []string{"4xx"}}, Action: "limit"}}
	if _, err := Compile(bad, nil, nil, 1, 1); err == nil {
		t.Error("miss: true with count: responses compiled")
	}
	if _, err := config.Parse([]byte("rules:\n  - name: y\n    match: {miss: true}\n    limit: {rate: 1/s, count: requests}\n    action: limit\n"), "r.yaml"); err == nil || !strings.Contains(err.Error(), "r.yaml:") {
		t.Errorf("config accepted miss: true with count: requests: %v", err)
	}
}

func TestSwapKeepsCounters(t *testing.T) {
	y := `
rules:
  - name: r
    limit: {rate: 1/m, burst: 2}
    action: limit
`
	e := newEngine(t, y, false, nil)
	f := facts("203.0.113.7", "GET", "/")
	run(e, f, verdict.ModeNormal, 2, t0)
	rs, err := Compile(parseRules(t, y), nil, nil, 20, 200)
	if err != nil {
		t.Fatal(err)
	}
	e.Swap(rs)
	if d := e.Decide(f, verdict.ModeNormal, t0); d.Action != verdict.Limit {
		t.Fatalf("reload reset the counter: %+v", d)
	}
	rs2, _ := Compile(nil, nil, nil, 20, 200)
	e.Swap(rs2)
	if d := e.Decide(f, verdict.ModeNormal, t0); d.Action != verdict.Allow {
		t.Fatalf("removed rule still fires: %+v", d)
	}
}

func TestCompileErrors(t *testing.T) {
	dup := []config.Rule{{Name: "default-pages-per-ip", Action: "drop"}}
	if _, err := Compile(dup, config.BuiltinRules(), nil, 1, 1); err == nil {
		t.Error("shadowing a builtin rule name compiled")
	}
	if _, err := Compile([]config.Rule{{Name: "x", Action: "block"}}, nil, nil, 1, 1); err == nil {
		t.Error("block without TTL compiled")
	}
}

// BenchmarkDecide is one full policy decision for an ordinary page request
// with the built-in rules: it must not allocate.
func BenchmarkDecide(b *testing.B) {
	e := newEngine(b, "", true, &limiter.EscalatorOptions{})
	fs := make([]*verdict.Facts, 256)
	for i := range fs {
		fs[i] = facts("203.0."+strconv.Itoa(i/16)+"."+strconv.Itoa(i%250+1), "GET", "/news/2026/11/vote")
	}
	b.ReportAllocs()
	now := t0
	i := 0
	for b.Loop() {
		now += int64(time.Millisecond)
		e.Decide(fs[i&255], verdict.ModeNormal, now)
		i++
	}
}

func BenchmarkDecideParallel(b *testing.B) {
	e := newEngine(b, "", true, &limiter.EscalatorOptions{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		f := facts("203.0.113.1", "GET", "/news/1")
		now := t0
		for pb.Next() {
			now += int64(time.Millisecond)
			e.Decide(f, verdict.ModeNormal, now)
		}
	})
}

// FuzzRules feeds arbitrary rule YAML through the config parser, the
// compiler and a decision: whatever the config accepts must compile, and no
// rule may make Decide panic.
func FuzzRules(f *testing.F) {
	f.Add("rules:\n  - name: a\n    match: {paths: [\"/s*\"], query: {min_params: 2}}\n    limit: {rate: 1/s, by: [ip, \"header:X\", \"cookie:c\", \"query:q\"]}\n    action: tarpit\n", "/s?q=1&b=2")
	f.Add("rules:\n  - name: b\n    match: {headers: [{name: A, value: \"/^x+$/\"}], cleared: false, modes: [under_attack]}\n    action: challenge\n", "/")
	f.Add("rules:\n  - name: c\n    limit: {rate: 2/10s, count: responses, statuses: [4xx], cost_header: X-Cost}\n    action: block\n    block_ttl: 1m\n", "/x")
	f.Fuzz(func(t *testing.T, yaml, target string) {
		c, err := config.Parse([]byte(yaml), "fuzz.yaml")
		if err != nil {
			return
		}
		rs, err := Compile(c.Rules, config.BuiltinRules(), c.Challenge.BypassPaths, 20, 200)
		if err != nil {
			// Only a clash with a built-in rule name may be refused here.
			if !strings.Contains(err.Error(), "used twice") {
				t.Fatalf("config accepted rules the compiler refused: %v", err)
			}
			return
		}
		e, err := NewEngine(Options{TableCapacity: 1024})
		if err != nil {
			t.Fatal(err)
		}
		e.Swap(rs)
		path, query, _ := strings.Cut(target, "?")
		fa := facts("203.0.113.1", "GET", path)
		fa.RawQuery = query
		for m := verdict.ModeNormal; m <= verdict.ModeUnderAttack; m++ {
			e.Decide(fa, m, t0)
			e.DecideMiss(fa, m, t0)
			e.Observe(fa, m, 404, http.Header{"X-Cost": {"7"}}, t0)
		}
	})
}

// The built-in pingback rule drops WordPress pingback verifications that
// carry a query string (reflection floods bust the cache with one), in every
// mode; a WordPress client fetching a page without a query, and browsers
// with queries, pass.
func TestPingbackReflectionDropped(t *testing.T) {
	e := newEngine(t, "", true, nil)
	ua := "WordPress/6.5; https://blog.example; verifying pingback from 127.9.9.9"
	pb := facts("203.0.113.30", "GET", "/")
	pb.RawQuery = "4829104=482910"
	pb.Header = http.Header{"User-Agent": {ua}}
	pb.UserAgent = ua
	for _, m := range []verdict.Mode{verdict.ModeNormal, verdict.ModeElevated, verdict.ModeUnderAttack} {
		if d := e.Decide(pb, m, t0); d.Action != verdict.Drop || d.Rule != "default-pingback-reflection" {
			t.Fatalf("%v: pingback with a query: %+v", m, d)
		}
	}
	feed := *pb
	feed.IP = netip.MustParseAddr("203.0.113.31")
	feed.RawQuery = ""
	if d := e.Decide(&feed, verdict.ModeNormal, t0); d.Action != verdict.Allow {
		t.Fatalf("WordPress without a query: %+v", d)
	}
	browser := facts("203.0.113.32", "GET", "/")
	browser.RawQuery = "page=2"
	if d := e.Decide(browser, verdict.ModeNormal, t0); d.Action != verdict.Allow {
		t.Fatalf("browser with a query: %+v", d)
	}
}
