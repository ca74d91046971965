package upstream

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"
)

// Pool is a reverse proxy to a pool of origins. It is an http.Handler and
// is safe for concurrent use. Build it with New, call Start to run the
// active health checks, and Close when done.
type Pool struct {
	ups       []*upstream
	sched     []uint16 // smooth weighted round-robin period
	leastConn bool
	next      atomic.Uint64
	nOpen     atomic.Int32 // origins whose breaker is open or half-open

	proxy      *httputil.ReverseProxy
	replayer   *httputil.ReverseProxy // the direct path's unusual answers
	direct     bool                   // every origin has the HTTP/1.1 fast path
	replays    atomic.Uint64          // direct-path answers read by net/http's parser
	passive    PassiveOptions
	health     HealthCheckOptions
	retries    int
	host       string
	client     func(*http.Request) ClientInfo
	classify   func(error) (int, string, bool)
	onResponse func(*http.Request, int, time.Duration)
	now        func() time.Time
	log        *slog.Logger
	errLog     logLimiter

	protoHTTP, protoHTTPS    []string
	via10, via11, via2, via3 []string

	writers sync.Pool // *statusWriter, only with OnResponse

	mu      sync.Mutex // guards started, closed, cancel
	started bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var _ http.Handler = (*Pool)(nil)

// New validates o, applies defaults and builds the pool: one transport per
// origin, the round-robin schedule and the single ReverseProxy. Origins
// start healthy with closed breakers. Every validation error wraps
// ErrInvalidOptions.
func New(o Options) (*Pool, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Pool{
		leastConn:  o.Balance == BalanceLeastConn,
		passive:    o.Passive,
		health:     o.HealthCheck,
		retries:    o.Retries,
		host:       o.Host,
		client:     o.Client,
		classify:   o.ClassifyError,
		onResponse: o.OnResponse,
		now:        o.Now,
		log:        o.Logger,
		errLog:     logLimiter{perSecond: 10},
		protoHTTP:  []string{"http"},
		protoHTTPS: []string{"https"},
		via10:      []string{"1.0 " + o.Via},
		via11:      []string{"1.1 " + o.Via},
		via2:       []string{"2 " + o.Via},
		via3:       []string{"3 " + o.Via},
	}
	weights := make([]int64, len(o.Targets))
	for i, t := range o.Targets {
		kind, host, _ := parseTarget(t.URL) // validated above
		u := newUpstream(t, kind, host, o.Passive.MaxFails)
		u.idx = i
		tr := newTransport(&o, kind)
		u.rt, u.idle = tr, tr
		if (kind == "http" || kind == "https") && !o.DisableFastPath {
			h1 := newH1Transport(&o, kind, host, tr)
			u.rt, u.idle, u.h1 = h1, h1, h1
		}
		u.check, err = healthRequest(u, &o)
		if err != nil {
			return nil, fmt.Errorf("upstream: building health check for %s: %w", u.name, err)
		}
		p.ups = append(p.ups, u)
		weights[i] = u.weight
	}
	p.sched = smoothSchedule(weights)
	p.proxy = &httputil.ReverseProxy{
		Rewrite:      p.rewrite,
		Transport:    poolTransport{p},
		BufferPool:   sharedBuffers,
		ErrorHandler: p.handleError,
		ErrorLog:     log.New(logWriter{p}, "", 0),
	}
	p.replayer = newReplayer(p)
	p.direct = true
	for _, u := range p.ups {
		p.direct = p.direct && u.h1 != nil
	}
	p.writers.New = func() any { return new(statusWriter) }
	return p, nil
}

// ServeHTTP proxies r to an origin chosen by the balancer. When no origin
// can answer it writes the shield's own 502 or 504 page at once.
//
// GET and HEAD requests without a body or Upgrade, to a pool whose origins
// all speak HTTP/1.1 with the fast path on, take the direct path (see
// direct.go): the request is written from r into the connection's buffer
// and an ordinary answer (known length, no 1xx, trailers or stream) is
// parsed in place and copied to w. Its allocations per request are seven
// (the answer's head as one string, the header values' backing array, the
// header map growing, the cancellation hook); BenchmarkDirectSmallPage
// measures them. Everything else goes through one httputil.ReverseProxy.
// With OnResponse set, the ReverseProxy path's status-recording writer
// comes from a sync.Pool.
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.canUseDirect(r) {
		p.serveDirect(w, r)
		return
	}
	if p.onResponse == nil {
		p.proxy.ServeHTTP(w, r)
		return
	}
	start := p.now()
	sw := p.writers.Get().(*statusWriter)
	sw.ResponseWriter, sw.status = w, 0
	defer func() {
		status := sw.status
		if status == 0 {
			status = statusClientClosed
		}
		sw.ResponseWriter = nil
		p.writers.Put(sw)
		p.onResponse(r, status, p.now().Sub(start))
	}()
	p.proxy.ServeHTTP(sw, r)
}

// Start runs the active health checks, one goroutine per origin, until ctx
// ends or Close is called. It returns at once. Calling it again, or after
// Close, or with health checks disabled, does nothing.
func (p *Pool) Start(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started || p.closed || p.health.Disabled {
		return
	}
	p.started = true
	ctx, p.cancel = context.WithCancel(ctx)
	for _, u := range p.ups {
		p.wg.Add(1)
		go p.checkLoop(ctx, u)
	}
}

// Close stops the health checks, waits for them to return and closes idle
// connections to the origins. Requests in flight are not interrupted; the
// pool still serves requests after Close, without health checks.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	if p.cancel != nil {
		p.cancel()
	}
	p.mu.Unlock()
	p.wg.Wait()
	for _, u := range p.ups {
		u.idle.CloseIdleConnections()
	}
}

// UpstreamStatus is a snapshot of one origin for the admin API and metrics.
type UpstreamStatus struct {
	// URL is the origin as configured (scheme and host).
	URL string
	// Weight is the origin's balancing weight.
	Weight int
	// Healthy is the verdict of the active health checks (true when they
	// are disabled).
	Healthy bool
	// Available reports whether the origin would take a request now
	// (healthy and breaker closed, or half-open with the probe slot free).
	Available bool
	// Breaker is the circuit breaker's state.
	Breaker BreakerState
	// EjectedUntil is when an open breaker turns half-open; zero when the
	// breaker is closed.
	EjectedUntil time.Time
	// Ejections counts the times the breaker opened.
	Ejections uint64
	// InFlight is the number of requests being answered by the origin,
	// response bodies and WebSocket sessions included.
	InFlight int64
	// Requests counts attempts sent to the origin (retries included).
	Requests uint64
	// Failures counts failed attempts (passive failures only).
	Failures uint64
	// LastError is the last failure (passive or active), "" if none.
	LastError string
	// LastErrorAt is when LastError happened.
	LastErrorAt time.Time
	// Latency is the EWMA (alpha 1/8) of the time to response headers.
	Latency time.Duration
}

// Health returns a snapshot of every origin, in configuration order. It
// takes each origin's failure lock briefly and allocates the slice.
func (p *Pool) Health() []UpstreamStatus {
	now := p.nowNanos()
	out := make([]UpstreamStatus, 0, len(p.ups))
	for _, u := range p.ups {
		st := UpstreamStatus{
			URL:       u.name,
			Weight:    int(u.weight),
			Healthy:   !u.down.Load(),
			Breaker:   u.breakerState(now),
			Ejections: u.ejections.Load(),
			InFlight:  u.inflight.Load(),
			Requests:  u.requests.Load(),
			Failures:  u.failures.Load(),
			Latency:   time.Duration(u.latency.Load()),
		}
		st.Available = p.available(u, now)
		if u.open.Load() {
			st.EjectedUntil = time.Unix(0, u.openUntil.Load())
		}
		u.mu.Lock()
		st.LastError = u.lastErr
		if u.lastErrAt != 0 {
			st.LastErrorAt = time.Unix(0, u.lastErrAt)
		}
		u.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// Healthy reports whether any origin can take a request now: healthy with
// a closed breaker, or half-open with its probe slot free.
func (p *Pool) Healthy() bool {
	now := p.nowNanos()
	for _, u := range p.ups {
		if p.available(u, now) {
			return true
		}
	}
	return false
}

func (p *Pool) available(u *upstream, now int64) bool {
	if u.down.Load() {
		return false
	}
	if !u.open.Load() {
		return true
	}
	return !u.probing.Load() && now >= u.openUntil.Load()
}

func (p *Pool) nowNanos() int64 { return p.now().UnixNano() }

// statusWriter remembers the status sent, for Options.OnResponse. It
// exposes the wrapped writer through Unwrap so that ReverseProxy's
// http.ResponseController can still flush and hijack.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 || w.status < 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack records a protocol switch (ReverseProxy hijacks only to complete
// a 101 Switching Protocols) and hands the connection over.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// logLimiter lets at most perSecond log lines through per wall second, so
// a flood of failures cannot make logging the bottleneck.
type logLimiter struct {
	perSecond int64
	sec       atomic.Int64
	n         atomic.Int64
}

func (l *logLimiter) allow(now int64) bool {
	s := now / int64(time.Second)
	if old := l.sec.Load(); old != s && l.sec.CompareAndSwap(old, s) {
		l.n.Store(0)
	}
	return l.n.Add(1) <= l.perSecond
}

// logWriter carries ReverseProxy's own log lines (such as a read error
// while copying a body) into the pool's logger, sampled.
type logWriter struct{ p *Pool }

func (w logWriter) Write(b []byte) (int, error) {
	if w.p.errLog.allow(w.p.nowNanos()) {
		w.p.log.Warn("reverse proxy", slog.String("msg", string(trimNL(b))))
	}
	return len(b), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
