package sim

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rampart-shield/rampart/internal/demo"
)

// Defaults for the zero fields of Config.
const (
	DefaultLegit         = 50
	DefaultNoJSShare     = 0.1
	DefaultMaxRequests   = 2_000_000
	DefaultGrace         = 15 * time.Second
	DefaultThinkMin      = time.Second
	DefaultThinkMax      = 3 * time.Second
	DefaultLegitTimeout  = 10 * time.Second
	DefaultAttackTimeout = 5 * time.Second
	// MaxDuration bounds a run.
	MaxDuration = time.Hour
	// maxClients bounds the simulated clients (visitors plus attack
	// connections) of one run.
	maxClients = 100_000
)

// Config describes one run. Zero fields take the documented defaults.
type Config struct {
	// Target is the URL to send traffic to: http or https, host localhost
	// or a literal address in 127.0.0.0/8 or ::1 (required).
	Target string
	// Preset names the attack (default "none": legitimate visitors only).
	Preset string
	// Scale multiplies the preset's attacking addresses (default 1; at
	// most 100).
	Scale float64
	// Duration is how long traffic is generated (default: the preset's,
	// 30s; at most MaxDuration).
	Duration time.Duration
	// Grace bounds the wind-down after Duration, when no new request
	// starts but legitimate requests under way run to their outcome (up to
	// LegitTimeout): the run returns at most Duration+Grace after it started
	// (default 15s).
	Grace time.Duration
	// MaxRequests caps the requests (and attack connections and HTTP/2
	// streams) sent in all (default 2,000,000); reaching it ends the run.
	MaxRequests int64
	// Legit is the number of legitimate visitors (default 50; negative
	// means none).
	Legit int
	// NoJSShare is the share of legitimate visitors that do not run
	// JavaScript and so cannot solve challenges (default 0.1; negative
	// means 0).
	NoJSShare float64
	// Layout places the clients' source addresses (default scattered).
	Layout Layout
	// ThinkMin and ThinkMax bound a visitor's pause between pages, drawn
	// uniformly (defaults 1s and 3s).
	ThinkMin, ThinkMax time.Duration
	// LegitTimeout is how long a visitor waits for an answer before giving
	// up (default 10s); AttackTimeout the same for flood requests
	// (default 5s).
	LegitTimeout, AttackTimeout time.Duration
	// OriginStats is the demo origin's /__demo/stats URL (loopback only).
	// When set (or Origin is), the counters are reset before the run and
	// read after it, for attack_reached_origin.
	OriginStats string
	// Origin is an in-process demo origin to reset and read instead of
	// OriginStats.
	Origin *demo.Origin
	// ProxyPID, when not 0, is the shield's process: its CPU time and RSS
	// are read from /proc before and after the run.
	ProxyPID int
	// Solver solves challenges for JS-capable visitors and the
	// browser-botnet preset. Nil: they fail when challenged, as no-JS
	// visitors do.
	Solver Solver
	// Seed seeds the addresses and every random choice (default 1).
	Seed uint64
	// Logger receives progress and errors of the run itself (default:
	// discarded).
	Logger *slog.Logger
}

// Report is the outcome of a run; its JSON form is what --json prints.
type Report struct {
	// Preset, Target, Layout and Scale repeat the configuration.
	Preset string  `json:"preset"`
	Target string  `json:"target"`
	Layout string  `json:"layout"`
	Scale  float64 `json:"scale"`
	// DurationS is how long traffic was generated, in seconds.
	DurationS float64 `json:"duration_s"`
	// StoppedBy is "duration", "max-requests", "canceled" or
	// "hard-deadline" (the wind-down overran Grace).
	StoppedBy string `json:"stopped_by"`
	// Requests counts everything sent: legit and attack requests, attack
	// connections of the slow attacks and HTTP/2 streams.
	Requests int64 `json:"requests"`

	// LegitSuccessRatio, LegitRequests and the percentiles cover every
	// legitimate visitor, JS-capable or not.
	LegitSuccessRatio float64 `json:"legit_success_ratio"`
	LegitRequests     int64   `json:"legit_requests"`
	LegitP50ms        float64 `json:"legit_p50_ms"`
	LegitP95ms        float64 `json:"legit_p95_ms"`
	LegitP99ms        float64 `json:"legit_p99_ms"`
	// LegitJS are the JS-capable visitors (they solve challenges when a
	// Solver is set); LegitNoJS the rest.
	LegitJS   GroupStats `json:"legit_js"`
	LegitNoJS GroupStats `json:"legit_nojs"`
	// LegitReachedOrigin is what the origin counted as legit (null without
	// origin stats).
	LegitReachedOrigin *int64 `json:"legit_reached_origin"`

	// AttackSources is the number of attacking addresses.
	AttackSources int `json:"attack_sources"`
	// AttackSent counts attack requests, connections (slow attacks) and
	// streams (HTTP/2) sent.
	AttackSent int64 `json:"attack_sent"`
	// AttackReachedOrigin is what the origin counted as attack requests:
	// served, rejected 503 and canceled in its queue (null without origin
	// stats); AttackReachedRatio is that over AttackSent.
	AttackReachedOrigin *int64   `json:"attack_reached_origin"`
	AttackReachedRatio  *float64 `json:"attack_reached_ratio"`
	// AttackerSolves counts challenges solved by attackers (browser-botnet)
	// and AttackerSolveCPUs the CPU seconds they spent on them.
	AttackerSolves    int64   `json:"attacker_solves"`
	AttackerSolveCPUs float64 `json:"attacker_solve_cpu_s"`

	// Decisions counts answers by role ("legit", "attack") and by the
	// Rampart-Mitigated header; without it, "allow", or "origin-error" for
	// a 5xx (the origin's own 503 when it drowns).
	Decisions map[string]map[string]int64 `json:"decisions"`
	// Cache counts answers by role and Rampart-Cache value (absent: not
	// counted).
	Cache map[string]map[string]int64 `json:"cache"`
	// Statuses counts answers by role and status code; failures without an
	// answer are "error:<kind>", slow-attack connections "held" (open at
	// the end of the run or of their wave) or "closed" (closed by the
	// server without an answer).
	Statuses map[string]map[string]int64 `json:"statuses"`

	// ProxyCPUs is the CPU seconds the shield process used during the run,
	// ProxyRSSBytes its resident size at the end and ProxyPeakRSSBytes its
	// high-water mark (with ProxyPID only).
	ProxyCPUs         *float64 `json:"proxy_cpu_s,omitempty"`
	ProxyRSSBytes     *int64   `json:"proxy_rss_bytes,omitempty"`
	ProxyPeakRSSBytes *int64   `json:"proxy_peak_rss_bytes,omitempty"`
	// SimCPUs is the CPU seconds the simulator process used during the
	// run (with an in-process origin, the origin's too).
	SimCPUs float64 `json:"sim_cpu_s"`
	// Origin is the demo origin's counters at the end (with origin stats).
	Origin *demo.Stats `json:"origin,omitempty"`
	// Notes are warnings about the run (a missing solver, IPv6 sources).
	Notes []string `json:"notes,omitempty"`
}

// Solver solves a rampart challenge the way a browser would. Solve is given
// the challenge answer (its body already read) and the visitor's HTTP
// client, which carries the visitor's source address and cookie jar; it
// performs the exchange that earns the clearance cookie, after which the
// visitor repeats its request. Implementations must be safe for
// concurrent use and honour ctx.
type Solver interface {
	Solve(ctx context.Context, client *http.Client, challenged *http.Response, body []byte) error
}

// SolverFunc adapts a function to Solver.
type SolverFunc func(ctx context.Context, client *http.Client, challenged *http.Response, body []byte) error

// Solve calls f.
func (f SolverFunc) Solve(ctx context.Context, client *http.Client, challenged *http.Response, body []byte) error {
	return f(ctx, client, challenged, body)
}

const (
	roleLegit  = 0
	roleAttack = 1
)

var roleNames = [2]string{"legit", "attack"}

// runner is the state of one run.
type runner struct {
	cfg    Config
	preset Preset
	target Target
	log    *slog.Logger
	tlsCfg *tls.Config

	loadCtx   context.Context
	hardCtx   context.Context
	stopLoad  context.CancelFunc
	stoppedBy atomic.Pointer[string]

	sent       atomic.Int64
	attackSent atomic.Int64
	solves     atomic.Int64
	solveCPU   atomic.Int64 // nanoseconds

	legitJS, legitNoJS     *latencies
	challenged, solvedJS   atomic.Int64
	challengedNoJS         atomic.Int64
	decisions, cache, stat [2]tally

	wg *sync.WaitGroup

	// start is when the load began, the origin of the attacks' schedules.
	start time.Time
}

func (c *Config) setDefaults() error {
	if c.Preset == "" {
		c.Preset = "none"
	}
	if c.Scale == 0 {
		c.Scale = 1
	}
	switch {
	case c.Duration < 0 || c.Duration > MaxDuration:
		return fmt.Errorf("duration %v out of range (0, %v]", c.Duration, MaxDuration)
	case c.Grace < 0 || c.Grace > 10*time.Minute:
		return fmt.Errorf("grace %v out of range [0, 10m]", c.Grace)
	case c.MaxRequests < 0:
		return fmt.Errorf("negative max requests %d", c.MaxRequests)
	case c.ThinkMin < 0 || c.ThinkMax < 0 || c.LegitTimeout < 0 || c.AttackTimeout < 0:
		return errors.New("think times and timeouts must not be negative")
	case c.NoJSShare > 1:
		return fmt.Errorf("no-JS share %v exceeds 1", c.NoJSShare)
	case c.ProxyPID < 0:
		return fmt.Errorf("negative proxy pid %d", c.ProxyPID)
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.MaxRequests == 0 {
		c.MaxRequests = DefaultMaxRequests
	}
	switch {
	case c.Legit == 0:
		c.Legit = DefaultLegit
	case c.Legit < 0:
		c.Legit = 0
	}
	switch {
	case c.NoJSShare == 0:
		c.NoJSShare = DefaultNoJSShare
	case c.NoJSShare < 0:
		c.NoJSShare = 0
	}
	if c.ThinkMin == 0 && c.ThinkMax == 0 {
		c.ThinkMin, c.ThinkMax = DefaultThinkMin, DefaultThinkMax
	}
	if c.ThinkMax < c.ThinkMin {
		return fmt.Errorf("think max %v below think min %v", c.ThinkMax, c.ThinkMin)
	}
	if c.LegitTimeout == 0 {
		c.LegitTimeout = DefaultLegitTimeout
	}
	if c.AttackTimeout == 0 {
		c.AttackTimeout = DefaultAttackTimeout
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Run validates cfg, refusing any target or stats URL outside the loopback
// range before anything is sent, then generates the traffic of cfg.Preset
// and the legitimate crowd for cfg.Duration and reports what happened. It
// returns within Duration+Grace (sooner when ctx ends or MaxRequests is
// reached), with a report even then. Run may be called from tests; it binds
// source addresses in 127.0.0.0/8, which Linux accepts without any
// configuration.
func Run(ctx context.Context, cfg Config) (Report, error) {
	target, err := ParseTarget(cfg.Target)
	if err != nil {
		return Report{}, err
	}
	var statsTarget Target
	if cfg.OriginStats != "" {
		if statsTarget, err = ParseTarget(cfg.OriginStats); err != nil {
			return Report{}, fmt.Errorf("origin stats: %w", err)
		}
	}
	if err := cfg.setDefaults(); err != nil {
		return Report{}, err
	}
	preset, err := LookupPreset(cfg.Preset, cfg.Scale)
	if err != nil {
		return Report{}, err
	}
	if cfg.Duration == 0 {
		cfg.Duration = preset.Duration
	}
	preset = preset.stretched(cfg.Duration)
	clients := cfg.Legit
	for _, a := range preset.Attacks {
		clients += a.Sources * max(1, a.Conns)
	}
	if clients > maxClients {
		return Report{}, fmt.Errorf("%d simulated clients exceed the limit of %d: lower --scale or --legit", clients, maxClients)
	}

	r := &runner{
		cfg:       cfg,
		preset:    preset,
		target:    target,
		log:       cfg.Logger,
		tlsCfg:    &tls.Config{InsecureSkipVerify: true, ServerName: target.URL.Hostname()}, // loopback only: test certificates
		legitJS:   newLatencies(cfg.Seed),
		legitNoJS: newLatencies(cfg.Seed + 1),
		wg:        new(sync.WaitGroup),
	}
	rep := Report{
		Preset: preset.Name, Target: target.URL.String(), Layout: cfg.Layout.String(), Scale: cfg.Scale,
		AttackSources: preset.Sources(),
	}
	if target.AddrPort.Addr().Is6() {
		rep.Notes = append(rep.Notes, "IPv6 target: every client uses ::1 as its source, so per-address defences see one client")
	}
	if cfg.Solver == nil {
		rep.Notes = append(rep.Notes, "no challenge solver configured: JS-capable visitors and the browser botnet fail when challenged")
	}

	// Everything below may send packets: the target is validated.
	origin := r.originStats(statsTarget)
	if origin != nil {
		if err := origin.reset(ctx); err != nil {
			return Report{}, fmt.Errorf("resetting origin stats: %w", err)
		}
	}
	var proxyBefore ProcSample
	if cfg.ProxyPID != 0 {
		if proxyBefore, err = ReadProc(cfg.ProxyPID); err != nil {
			return Report{}, fmt.Errorf("reading the proxy's resource use: %w", err)
		}
	}
	simBefore := selfCPU()

	// The hard cap holds even when ctx ends: the wind-down still gets its
	// Grace, and no longer.
	hardCtx, cancelHard := context.WithTimeout(context.WithoutCancel(ctx), cfg.Duration+cfg.Grace)
	defer cancelHard()
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	r.loadCtx, r.hardCtx, r.stopLoad = loadCtx, hardCtx, stopLoad

	start := time.Now()
	r.start = start
	var avoid netip.Addr
	if target.AddrPort.Addr().Is4() {
		avoid = target.AddrPort.Addr()
	}
	if err := r.launch(avoid); err != nil {
		return Report{}, err
	}
	wg := r.wg
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	<-loadCtx.Done()
	rep.DurationS = math.Round(time.Since(start).Seconds()*1000) / 1000
	stopped := "duration"
	if p := r.stoppedBy.Load(); p != nil {
		stopped = *p
	} else if ctx.Err() != nil {
		stopped = "canceled"
	}
	select {
	case <-done:
	case <-hardCtx.Done():
		stopped = "hard-deadline"
	}
	rep.StoppedBy = stopped

	rep.Requests = r.sent.Load()
	all := mergeLatencies(r.legitJS, r.legitNoJS, cfg.Seed+2).summary(cfg.Legit)
	rep.LegitRequests, rep.LegitSuccessRatio = all.Requests, all.SuccessRatio
	rep.LegitP50ms, rep.LegitP95ms, rep.LegitP99ms = all.P50ms, all.P95ms, all.P99ms
	nojs := r.noJSCount()
	rep.LegitJS = r.legitJS.summary(cfg.Legit - nojs)
	rep.LegitJS.Challenged, rep.LegitJS.ChallengesSolved = r.challenged.Load(), r.solvedJS.Load()
	rep.LegitNoJS = r.legitNoJS.summary(nojs)
	rep.LegitNoJS.Challenged = r.challengedNoJS.Load()
	rep.AttackSent = r.attackSent.Load()
	rep.AttackerSolves = r.solves.Load()
	rep.AttackerSolveCPUs = math.Round(time.Duration(r.solveCPU.Load()).Seconds()*1000) / 1000
	rep.Decisions, rep.Cache, rep.Statuses = map[string]map[string]int64{}, map[string]map[string]int64{}, map[string]map[string]int64{}
	for role, name := range roleNames {
		rep.Decisions[name] = r.decisions[role].snapshot()
		rep.Cache[name] = r.cache[role].snapshot()
		rep.Statuses[name] = r.stat[role].snapshot()
	}
	rep.SimCPUs = math.Round((selfCPU()-simBefore).Seconds()*1000) / 1000

	// Read what is left with a fresh context: the caller's may be done.
	finCtx, cancelFin := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelFin()
	var errs []error
	if origin != nil {
		st, err := origin.settle(finCtx)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading origin stats: %w", err))
		} else {
			rep.Origin = &st
			reached, legit := int64(st.Attack.Requests), int64(st.Legit.Requests)
			ratio := Ratio(reached, rep.AttackSent)
			rep.AttackReachedOrigin, rep.LegitReachedOrigin, rep.AttackReachedRatio = &reached, &legit, &ratio
		}
	}
	if cfg.ProxyPID != 0 {
		after, err := ReadProc(cfg.ProxyPID)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading the proxy's resource use: %w", err))
		} else {
			cpu := math.Round((after.CPU-proxyBefore.CPU).Seconds()*1000) / 1000
			rep.ProxyCPUs, rep.ProxyRSSBytes, rep.ProxyPeakRSSBytes = &cpu, &after.RSS, &after.PeakRSS
		}
	}
	return rep, errors.Join(errs...)
}

// stop ends the load early, recording why (the first reason wins).
func (r *runner) stop(why string) {
	r.stoppedBy.CompareAndSwap(nil, &why)
	r.stopLoad()
}

// take reserves one request against MaxRequests; false means the cap is
// reached and the load is stopping.
func (r *runner) take() bool { return r.takeN(1) }

// takeN reserves n requests at once.
func (r *runner) takeN(n int64) bool {
	if r.sent.Add(n) > r.cfg.MaxRequests {
		r.sent.Add(-n)
		r.stop("max-requests")
		return false
	}
	return true
}

// dialer returns a dial function that binds src (for IPv4 targets) and
// dials only the target.
func (r *runner) dialer(src netip.Addr, control func(network, address string, c syscall.RawConn) error) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: control, KeepAlive: -1}
	if src.IsValid() && r.target.AddrPort.Addr().Is4() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	want := r.target.AddrPort
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := checkDial(addr, want); err != nil {
			return nil, err
		}
		return d.DialContext(ctx, "tcp", want.String())
	}
}

// transport is an HTTP transport for one client at src, holding at most
// conns connections.
func (r *runner) transport(src netip.Addr, conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         r.dialer(src, nil),
		TLSClientConfig:     r.tlsCfg.Clone(),
		ForceAttemptHTTP2:   r.target.TLS,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		DisableCompression:  true,
	}
}

// sameTargetRedirects refuses redirects that leave the target and stops
// after 10, as browsers do.
func (r *runner) sameTargetRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != r.target.URL.Host || req.URL.Scheme != r.target.URL.Scheme {
		return fmt.Errorf("redirect to %s leaves the target: %w", req.URL.Redacted(), ErrOffTarget)
	}
	return nil
}

// record counts one HTTP answer (or failure) of role.
func (r *runner) record(role int, resp *http.Response, err error) {
	if err != nil {
		r.stat[role].add("error:"+errKind(err), 1)
		return
	}
	r.stat[role].add(statusLabel(resp.StatusCode), 1)
	d := resp.Header.Get("Rampart-Mitigated")
	switch {
	case d != "":
	case resp.StatusCode >= 500:
		d = "origin-error" // let through, but the origin failed (a 503 when it drowns)
	default:
		d = "allow"
	}
	r.decisions[role].add(d, 1)
	if c := resp.Header.Get("Rampart-Cache"); c != "" {
		r.cache[role].add(c, 1)
	}
}

var statusLabels = func() (m [600]string) {
	for i := range m {
		m[i] = fmt.Sprint(i)
	}
	return m
}()

func statusLabel(code int) string {
	if code >= 0 && code < len(statusLabels) {
		return statusLabels[code]
	}
	return fmt.Sprint(code)
}

// errKind labels a request failure.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return "no-source-address"
	case errors.Is(err, ErrOffTarget):
		return "off-target"
	}
	return "other"
}

// wait blocks for d or until ctx ends; it reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// originClient reads and resets the demo origin's counters, in process or
// over HTTP.
type originClient struct {
	local  *demo.Origin
	remote Target
	client *http.Client
}

func (r *runner) originStats(t Target) *originClient {
	if r.cfg.Origin != nil {
		return &originClient{local: r.cfg.Origin}
	}
	if t.URL == nil {
		return nil
	}
	tr := &http.Transport{Proxy: nil, DialContext: (&runner{target: t}).dialer(netip.Addr{}, nil), TLSClientConfig: r.tlsCfg.Clone()}
	return &originClient{remote: t, client: &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (o *originClient) reset(ctx context.Context) error {
	if o.local != nil {
		o.local.Reset()
		return nil
	}
	u := *o.remote.URL
	u.Path, u.RawQuery = "/__demo/reset", ""
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("POST %s: status %d, want 204", u.String(), resp.StatusCode)
	}
	return nil
}

func (o *originClient) get(ctx context.Context) (demo.Stats, error) {
	if o.local != nil {
		return o.local.Stats(), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.remote.URL.String(), nil)
	if err != nil {
		return demo.Stats{}, err
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return demo.Stats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return demo.Stats{}, fmt.Errorf("GET %s: status %d", o.remote.URL.String(), resp.StatusCode)
	}
	var st demo.Stats
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&st); err != nil {
		return demo.Stats{}, fmt.Errorf("decoding %s: %w", o.remote.URL.String(), err)
	}
	return st, nil
}

// settle waits (until ctx ends) for the origin to finish the requests it
// holds, so that they are counted, and returns its counters.
func (o *originClient) settle(ctx context.Context) (demo.Stats, error) {
	for {
		st, err := o.get(ctx)
		if err != nil || (st.InFlight == 0 && st.QueueDepth == 0) {
			return st, err
		}
		if !wait(ctx, 50*time.Millisecond) {
			return st, nil
		}
	}
}
