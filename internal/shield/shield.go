// Package shield wires rampart's request pipeline together: the edge
// (netx), client identification (clientid), the lists (iplist), the policy
// (policy, limiter), the challenge, the cache, admission control and the
// upstream pool, plus the admin API and metrics. It is the one place that
// knows every package; it holds no logic of its own beyond translating the
// configuration into each package's options and handing each request from
// one stage to the next.
package shield

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-shield/rampart/internal/admin"
	"github.com/rampart-shield/rampart/internal/admission"
	"github.com/rampart-shield/rampart/internal/cache"
	"github.com/rampart-shield/rampart/internal/challenge"
	"github.com/rampart-shield/rampart/internal/config"
	"github.com/rampart-shield/rampart/internal/detect"
	"github.com/rampart-shield/rampart/internal/iplist"
	"github.com/rampart-shield/rampart/internal/limiter"
	"github.com/rampart-shield/rampart/internal/netx"
	"github.com/rampart-shield/rampart/internal/policy"
	"github.com/rampart-shield/rampart/internal/upstream"
	"github.com/rampart-shield/rampart/internal/verdict"
)

// Options are the process-level dependencies of a Shield.
type Options struct {
	// Version is reported by the status API and the Via header.
	Version string
	// Stderr receives the JSON log when Logger is nil; default os.Stderr.
	Stderr io.Writer
	// Logger overrides the logger built from the configuration.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Shield is one running rampart: listeners, pipeline, admin API.
type Shield struct {
	opt     Options
	log     *slog.Logger
	level   *slog.LevelVar
	now     func() time.Time
	started time.Time

	cfg atomic.Pointer[config.Config]
	rt  atomic.Pointer[runtime]

	mode atomic.Uint32
	// auto is true while the detector chooses the mode (mode: auto).
	auto      atomic.Bool
	detector  *detect.Detector // guarded by modeMu
	syn       synFilter
	synKick   chan struct{} // a block was added: sync the SYN filter soon
	modeMu    sync.Mutex
	modeWhy   atomic.Pointer[string]
	engine    *policy.Engine
	blocks    *iplist.Blocks
	lists     *listSet
	challenge *challenge.Service
	// bypass recognises good bots (configured networks, published crawler
	// ranges, crawlers verified by reverse DNS); nil when none are set up.
	bypass    atomic.Pointer[challenge.Bypass]
	nojs      *limiter.Table // no-JS pass and cookie-check budgets
	nojsRate  atomic.Pointer[limiter.Params]
	cache     *cache.Cache
	admission *admission.Limiter
	pool      *upstream.Pool
	pipeline  http.Handler
	metrics   *metrics
	access    *accessLog
	tarpitted atomic.Int64
	bodies    bodyBuffer
	dryRunLog logBudget
	// listErrors counts list files that failed to reload.
	listErrors atomic.Uint64

	mu        sync.Mutex
	servers   []*netx.Server
	listeners []net.Listener
	adminSrv  *http.Server
	adminLn   net.Listener
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	stateDir  string
}

// Check builds everything a configuration describes without starting it:
// rules compile, files load, certificates parse. check-config calls it.
func Check(cfg *config.Config) error {
	if _, err := compileRules(cfg); err != nil {
		return err
	}
	if _, err := loadListFiles(cfg); err != nil {
		return err
	}
	if b, err := newBypass(cfg, nil); err != nil {
		return err
	} else if b != nil {
		b.Close()
	}
	if cfg.TLS.CertFile != "" {
		if _, err := netx.NewServer(netx.Options{TLS: &netx.TLSOptions{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile}}, http.NotFoundHandler()); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	if cfg.Admission.OverloadPage != "" {
		if _, err := os.ReadFile(cfg.Admission.OverloadPage); err != nil {
			return fmt.Errorf("admission.overload_page: %w", err)
		}
	}
	return nil
}

// New builds a Shield from a validated configuration. Nothing listens until
// Start.
func New(cfg *config.Config, o Options) (*Shield, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	s := &Shield{opt: o, now: o.Now, started: o.Now(), level: new(slog.LevelVar)}
	s.log = o.Logger
	if s.log == nil {
		s.log = slog.New(slog.NewJSONHandler(o.Stderr, &slog.HandlerOptions{Level: s.level}))
	}
	s.level.Set(logLevel(cfg.Log.Level))
	s.access = newAccessLog(s.log, cfg.Log)
	s.metrics = newMetrics()

	mode, _ := verdict.ParseMode(cfg.Mode) // auto starts in normal
	s.mode.Store(uint32(mode))

	var err error
	s.stateDir, err = stateDir(cfg.StateDir)
	if err != nil {
		return nil, err
	}

	warnPressure := rateLimitedWarn(s.log, "the rate-limit table is full and evicting live keys: limits are leaking; raise limits.table_capacity", s.metrics.tablePressure.Inc)
	var esc *limiter.EscalatorOptions
	if !cfg.Limits.Escalation.Disabled {
		e := cfg.Limits.Escalation
		esc = &limiter.EscalatorOptions{Strikes: e.Strikes, Window: e.Window.D(), BaseTTL: e.BaseTTL.D(), MaxTTL: e.MaxTTL.D(), Forget: e.Forget.D()}
	}
	s.engine, err = policy.NewEngine(policy.Options{
		TableCapacity: cfg.Limits.TableCapacity,
		Escalation:    esc,
		UnknownQuery:  s.unknownQuery,
		OnPressure:    warnPressure,
		Now:           s.now,
	})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	s.synKick = make(chan struct{}, 1)
	s.blocks, err = iplist.NewBlocks(iplist.BlocksOptions{Capacity: cfg.Limits.BlocksCapacity, Now: s.now})
	if err != nil {
		return nil, fmt.Errorf("blocks: %w", err)
	}
	s.nojs, err = limiter.NewTable(limiter.TableOptions{Capacity: 1 << 16, Now: s.now})
	if err != nil {
		return nil, err
	}
	s.lists = newListSet()

	s.challenge, err = challenge.New(challengeOptions(cfg, s))
	if err != nil {
		return nil, fmt.Errorf("challenge: %w", err)
	}
	s.challenge.SetMode(mode)

	if !cfg.Cache.Disabled {
		if s.cache, err = cache.New(cacheOptions(cfg, s)); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	if !cfg.Admission.Disabled {
		ao, err := admissionOptions(cfg, s)
		if err != nil {
			return nil, err
		}
		if s.admission, err = admission.New(ao); err != nil {
			return nil, fmt.Errorf("admission: %w", err)
		}
	}
	if s.pool, err = upstream.New(upstreamOptions(cfg, s)); err != nil {
		return nil, fmt.Errorf("upstream: %w", err)
	}

	// The pipeline after the decision: cache, then the miss rules for what
	// the cache passes through, then admission, then the pool.
	var h http.Handler = s.pool
	if s.admission != nil {
		h = s.admission.Middleware(h, admission.Hooks{ClassOf: s.classOf, Recheck: s.recheck})
	}
	h = s.originGate(h)
	if s.cache != nil {
		h = s.cache.Middleware(h)
	}
	s.pipeline = h

	if err := s.apply(cfg); err != nil {
		return nil, err
	}
	s.metrics.registerComponents(s)
	return s, nil
}

// apply installs the parts of cfg that can change on a running shield:
// rules, lists, the runtime knobs and the mode.
func (s *Shield) apply(cfg *config.Config) error {
	rs, err := compileRules(cfg)
	if err != nil {
		return err
	}
	files, err := loadListFiles(cfg)
	if err != nil {
		return err
	}
	rt, err := newRuntime(cfg)
	if err != nil {
		return err
	}
	p, err := limiter.NewParams(cfg.Challenge.NoJSRate.PerSecond(), 1)
	if err != nil {
		return fmt.Errorf("challenge.nojs_rate: %w", err)
	}
	bp, err := newBypass(cfg, s)
	if err != nil {
		return err
	}
	s.engine.Swap(rs)
	s.lists.install(cfg, files)
	if old := s.bypass.Swap(bp); old != nil {
		old.Close()
	}
	s.nojsRate.Store(&p)
	s.rt.Store(rt)
	s.cfg.Store(cfg)
	s.level.Set(logLevel(cfg.Log.Level))
	s.access.configure(cfg.Log)
	if cfg.Mode == "auto" {
		if err := s.startDetector(cfg); err != nil {
			return err
		}
	} else {
		s.auto.Store(false)
		mode, _ := verdict.ParseMode(cfg.Mode)
		s.setMode(mode, "pinned by the configuration")
	}
	return nil
}

// Start binds every listener and the admin API and starts the background
// work (health checks, list watching, block sweeping).
func (s *Shield) Start() error {
	cfg := s.cfg.Load()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.pool.Start(ctx)
	// TLS listeners first: a plain listener answers the ACME HTTP-01
	// challenges of the TLS listener's automatic certificates.
	servers := make([]*netx.Server, len(cfg.Listeners))
	var acme *netx.Server
	for i, l := range cfg.Listeners {
		if !l.TLS {
			continue
		}
		srv, err := netx.NewServer(netxOptions(cfg, l, s), http.HandlerFunc(s.ServeHTTP))
		if err != nil {
			s.closeAll()
			return fmt.Errorf("listener %s: %w", l.Address, err)
		}
		servers[i] = srv
		if len(cfg.TLS.ACMEDomains) > 0 && acme == nil {
			acme = srv
		}
	}
	for i, l := range cfg.Listeners {
		if l.TLS {
			continue
		}
		var h http.Handler = http.HandlerFunc(s.ServeHTTP)
		if acme != nil {
			h = acme.ACMEHTTPHandler(h)
		}
		srv, err := netx.NewServer(netxOptions(cfg, l, s), h)
		if err != nil {
			s.closeAll()
			return fmt.Errorf("listener %s: %w", l.Address, err)
		}
		servers[i] = srv
	}
	for i, l := range cfg.Listeners {
		srv := servers[i]
		ln, err := netx.Listen(ctx, "tcp", l.Address)
		if err != nil {
			s.closeAll()
			return fmt.Errorf("listener %s: %w", l.Address, err)
		}
		s.mu.Lock()
		s.servers = append(s.servers, srv)
		s.listeners = append(s.listeners, ln)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				s.log.Error("listener stopped", "addr", ln.Addr().String(), "err", err.Error())
			}
		}()
		s.log.Info("listening", "addr", ln.Addr().String(), "tls", l.TLS, "proxy_protocol", l.ProxyProtocol)
	}
	if cfg.Admin.Listen != "" {
		if err := s.startAdmin(cfg); err != nil {
			s.closeAll()
			return err
		}
	}
	s.syncSYNFilter(true)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.background(ctx)
	}()
	return nil
}

func (s *Shield) startAdmin(cfg *config.Config) error {
	token := cfg.Admin.Token
	if cfg.Admin.TokenFile != "" {
		b, err := os.ReadFile(cfg.Admin.TokenFile)
		if err != nil {
			return fmt.Errorf("admin.token_file: %w", err)
		}
		token = string(trimSpace(b))
	}
	if token == "" && !admin.IsLoopback(cfg.Admin.Listen) {
		var err error
		if token, err = admin.EnsureToken(s.stateDir); err != nil {
			return err
		}
		s.log.Warn("the admin API is not on loopback: bearer token required", "token_file", filepath.Join(s.stateDir, admin.TokenFile))
	}
	api, err := admin.New(admin.Options{Listen: cfg.Admin.Listen, Token: token, Metrics: s.metrics.handler(), Backend: (*backend)(s), Logger: s.log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	s.adminLn = ln
	s.adminSrv = &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute, WriteTimeout: time.Minute}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.adminSrv.Serve(ln)
	}()
	s.log.Info("admin API listening", "addr", ln.Addr().String())
	return nil
}

// background runs the periodic housekeeping until ctx ends.
func (s *Shield) background(ctx context.Context) {
	sweep := time.NewTicker(2 * time.Second)
	defer sweep.Stop()
	second := time.NewTicker(time.Second)
	defer second.Stop()
	fast := time.NewTicker(tripEvery)
	defer fast.Stop()
	var trip tripWindow
	s.observe() // the detector's first reading: the tripwire works from now
	save := time.NewTicker(time.Minute)
	defer save.Stop()
	cfg := s.cfg.Load()
	watch := time.NewTicker(cfg.Lists.WatchInterval.D())
	defer watch.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-second.C:
			s.observe()
			s.syncSYNFilter(false)
		case <-fast.C:
			s.trip(&trip)
		case <-s.synKick:
			s.syncSYNFilter(false)
		case <-save.C:
			if s.auto.Load() {
				s.saveBaseline()
			}
		case <-sweep.C:
			s.blocks.Sweep()
			s.metrics.tick(s)
		case <-watch.C:
			s.reloadListFiles()
			if b := s.bypass.Load(); b != nil {
				if err := b.Reload(); err != nil {
					s.log.Error("good-bot range files not reloaded; the previous ranges stay", "err", err.Error())
				}
			}
		}
	}
}

// Addrs returns the base URLs of the public listeners ("http://127.0.0.1:8080").
func (s *Shield) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg.Load()
	out := make([]string, len(s.listeners))
	for i, ln := range s.listeners {
		scheme := "http"
		if cfg.Listeners[i].TLS {
			scheme = "https"
		}
		out[i] = scheme + "://" + ln.Addr().String()
	}
	return out
}

// AdminURL returns the admin API's base URL, or "" when it is off.
func (s *Shield) AdminURL() string {
	if s.adminLn == nil {
		return ""
	}
	return "http://" + s.adminLn.Addr().String()
}

// Logger returns the shield's logger.
func (s *Shield) Logger() *slog.Logger { return s.log }

// Mode returns the current mode.
func (s *Shield) Mode() verdict.Mode { return verdict.Mode(s.mode.Load()) }

// SetMode pins the mode, as mode: normal|elevated|under_attack does.
func (s *Shield) SetMode(m verdict.Mode) {
	s.auto.Store(false)
	s.setMode(m, "pinned")
}

func (s *Shield) setMode(m verdict.Mode, why string) {
	s.modeWhy.Store(&why)
	if old := verdict.Mode(s.mode.Swap(uint32(m))); old != m {
		s.log.Warn("mode changed", "from", old.String(), "to", m.String(), "why", why)
		s.metrics.modeChanges.WithLabelValues(m.String()).Inc()
	}
	s.challenge.SetMode(m)
}

// startDetector (re)starts automatic mode changes with cfg's tuning. A
// detector already running keeps its baseline when only the tuning changed.
func (s *Shield) startDetector(cfg *config.Config) error {
	d := cfg.Detect
	warm := d.WarmUp.D()
	if warm == 0 {
		warm = -1 // the configuration's 0 means no warm-up
	}
	det, err := detect.New(detect.Options{
		SurgeFactor: d.SurgeFactor, MinRate: d.MinRate, MinOriginRate: d.MinOriginRate,
		ElevateAfter: d.ElevateAfter, AttackAfter: d.AttackAfter,
		ExtremeFactor: d.ExtremeFactor, ExtremeMinRate: d.ExtremeMinRate, ExtremeAfter: d.ExtremeAfter,
		StandDown: d.StandDown.D(), WarmUp: warm,
	})
	if err != nil {
		return err
	}
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	if s.detector == nil || !s.auto.Load() {
		why := "auto: starting"
		if b, ok := s.loadBaseline(); ok {
			det.SetBaseline(b.RequestsPerS, b.OriginPerS)
			why = fmt.Sprintf("auto: starting with the baseline saved at %s (%.0f requests/s)", b.Saved.Format(time.RFC3339), b.RequestsPerS)
		}
		s.detector = det
		s.setMode(verdict.ModeNormal, why)
	}
	s.auto.Store(true)
	return nil
}

// observe feeds the detector one reading; the background loop calls it
// every second.
func (s *Shield) observe() {
	if !s.auto.Load() {
		return
	}
	sample := detect.Sample{Time: s.now(), Requests: s.metrics.count.Load(), OriginDown: !s.pool.Healthy()}
	for _, u := range s.pool.Health() {
		sample.OriginRequests += u.Requests
		sample.OriginFailures += u.Failures
	}
	if s.admission != nil {
		as := s.admission.Stats()
		for c := range as.Queued {
			sample.Queued += as.Queued[c]
			sample.Shed += as.Rejected[c] + as.TimedOut[c] + as.Shed[c]
		}
	}
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	if s.detector == nil || !s.auto.Load() {
		return
	}
	if m, changed := s.detector.Observe(sample); changed {
		s.setMode(m, "auto: "+s.detector.Reason())
	}
}

// originRequests is the number of requests sent to the origin so far.
func (s *Shield) originRequests() uint64 {
	var n uint64
	for _, u := range s.pool.Health() {
		n += u.Requests
	}
	return n
}

// tripEvery is how often the flood-onset tripwire reads the request
// counters, and tripWindow's readings how many it looks back over (300
// ms): short enough to catch a flood within a fraction of a second, long
// enough that a page and its assets loading at once is not a flood (see
// detect.Detector.Trip).
const tripEvery = 100 * time.Millisecond

// tripWindow is the tripwire's last readings, a ring.
type tripWindow struct {
	r    [3]tripReading
	next int
}

type tripReading struct {
	t              time.Time
	requests, miss uint64
}

// trip reads the request and cache-miss counters and the admission queue
// and lets the detector raise the mode at once at the onset of a flood well
// past its threshold or of a queue at the origin, without waiting for the
// next one-second reading.
func (s *Shield) trip(w *tripWindow) {
	if !s.auto.Load() || s.Mode() != verdict.ModeNormal {
		*w = tripWindow{}
		return
	}
	now := s.now()
	cur := tripReading{t: now, requests: s.metrics.count.Load(), miss: s.originRequests()}
	old := w.r[w.next] // the oldest reading, once the ring is full
	w.r[w.next] = cur
	w.next = (w.next + 1) % len(w.r)
	var rate, origin float64 // unknown until the ring is full: no surge
	if dt := now.Sub(old.t).Seconds(); !old.t.IsZero() && dt > 0 {
		rate, origin = float64(cur.requests-old.requests)/dt, float64(cur.miss-old.miss)/dt
	}
	queued := 0
	if s.admission != nil {
		as := s.admission.Stats()
		for _, n := range as.Queued {
			queued += n
		}
	}
	s.modeMu.Lock()
	defer s.modeMu.Unlock()
	if s.detector == nil || !s.auto.Load() {
		return
	}
	if m, changed := s.detector.Trip(now, rate, origin, queued); changed {
		s.setMode(m, "auto: "+s.detector.Reason())
	}
}

// ModeReason says why the mode is what it is.
func (s *Shield) ModeReason() string {
	if p := s.modeWhy.Load(); p != nil {
		return *p
	}
	return ""
}

// Reload installs a new configuration. Parts that cannot change on a running
// process (listener and admin addresses, table capacities) are reported and
// keep their old values; everything else changes at once, without dropping
// connections. On error the running configuration stays.
func (s *Shield) Reload(cfg *config.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	old := s.cfg.Load()
	for _, w := range restartOnly(old, cfg) {
		s.log.Warn("this setting changes only on restart; the running value stays", "key", w)
	}
	if err := s.apply(cfg); err != nil {
		return err
	}
	s.mu.Lock()
	for i, srv := range s.servers {
		if i < len(cfg.Listeners) {
			if err := srv.SetOptions(netxOptions(cfg, cfg.Listeners[i], s)); err != nil {
				s.log.Error("listener options not applied", "err", err.Error())
			}
		}
		if err := srv.ReloadCertificates(); err != nil {
			s.log.Error("certificate reload failed; the old certificate stays", "err", err.Error())
		}
	}
	s.mu.Unlock()
	s.log.Info("configuration reloaded", "file", cfg.File(), "rules", len(s.engine.Rules().Names()))
	return nil
}

// Shutdown stops accepting, drains in-flight requests until ctx ends, then
// closes everything.
func (s *Shield) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	servers := append([]*netx.Server(nil), s.servers...)
	s.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	for _, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	if s.adminSrv != nil {
		s.adminSrv.Shutdown(ctx)
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.pool.Close()
	if b := s.bypass.Swap(nil); b != nil {
		b.Close()
	}
	s.wg.Wait()
	if s.auto.Load() {
		s.saveBaseline()
	}
	return errors.Join(errs...)
}

func (s *Shield) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ln := range s.listeners {
		ln.Close()
	}
	if s.cancel != nil {
		s.cancel()
	}
}

// restartOnly lists the settings that differ between old and cfg but only
// take effect on restart.
func restartOnly(old, cfg *config.Config) []string {
	var out []string
	if fmt.Sprint(old.Listeners) != fmt.Sprint(cfg.Listeners) {
		out = append(out, "listeners")
	}
	if old.Admin != cfg.Admin {
		out = append(out, "admin")
	}
	if old.Limits.TableCapacity != cfg.Limits.TableCapacity || old.Limits.BlocksCapacity != cfg.Limits.BlocksCapacity || old.Limits.Escalation != cfg.Limits.Escalation {
		out = append(out, "limits (table capacities, escalation)")
	}
	if fmt.Sprint(old.Upstream) != fmt.Sprint(cfg.Upstream) {
		out = append(out, "upstream")
	}
	if fmt.Sprint(old.Cache) != fmt.Sprint(cfg.Cache) {
		out = append(out, "cache")
	}
	if old.Admission != cfg.Admission {
		out = append(out, "admission")
	}
	if fmt.Sprint(old.Challenge) != fmt.Sprint(cfg.Challenge) && fmt.Sprint(old.Challenge.BypassPaths) == fmt.Sprint(cfg.Challenge.BypassPaths) {
		out = append(out, "challenge (except bypass_paths and good bots)")
	}
	if old.StateDir != cfg.StateDir {
		out = append(out, "state_dir")
	}
	if fmt.Sprint(old.TLS.ACMEDomains) != fmt.Sprint(cfg.TLS.ACMEDomains) || old.TLS.ACMEEmail != cfg.TLS.ACMEEmail ||
		old.TLS.ACMEDirectory != cfg.TLS.ACMEDirectory || old.TLS.ACMECAFile != cfg.TLS.ACMECAFile {
		out = append(out, "tls (acme_*; the certificate files are reloaded)")
	}
	return out
}

// stateDir resolves and creates the state directory.
func stateDir(configured string) (string, error) {
	try := []string{configured}
	if configured == "" {
		try = []string{"/var/lib/rampart"}
		if x := os.Getenv("XDG_STATE_HOME"); x != "" {
			try = append(try, filepath.Join(x, "rampart"))
		}
		if h, err := os.UserHomeDir(); err == nil {
			try = append(try, filepath.Join(h, ".local", "state", "rampart"))
		}
		try = append(try, filepath.Join(os.TempDir(), fmt.Sprintf("rampart-%d", os.Getuid())))
	}
	var lastErr error
	for _, d := range try {
		if err := os.MkdirAll(d, 0o700); err != nil {
			lastErr = err
			continue
		}
		f, err := os.CreateTemp(d, ".probe")
		if err != nil {
			lastErr = err
			continue
		}
		f.Close()
		os.Remove(f.Name())
		return d, nil
	}
	return "", fmt.Errorf("state_dir: no writable directory (%v)", lastErr)
}

func logLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// rateLimitedWarn returns a hook that logs msg at most once a minute and
// calls count every time.
func rateLimitedWarn(log *slog.Logger, msg string, count func()) func() {
	var last atomic.Int64
	return func() {
		count()
		now := time.Now().UnixNano()
		if l := last.Load(); now-l > int64(time.Minute) && last.CompareAndSwap(l, now) {
			log.Warn(msg)
		}
	}
}

var _ = netip.Addr{}

// logBudget lets through at most 10 log lines a second, so that a flood
// cannot make logging the bottleneck.
type logBudget struct {
	second atomic.Int64
	n      atomic.Int64
}

func (b *logBudget) allow(now time.Time) bool {
	sec := now.Unix()
	if b.second.Load() != sec {
		b.second.Store(sec)
		b.n.Store(0)
	}
	return b.n.Add(1) <= 10
}
