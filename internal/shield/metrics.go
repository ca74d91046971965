package shield

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// statusClasses index the per-request counters: 1xx..5xx, and 0 for requests
// that ended without a status (dropped, client gone).
var statusClasses = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

// metrics holds the Prometheus collectors. Per-request counters are
// pre-created children so that counting costs an atomic add; component
// sizes are read from each package's Stats at scrape time.
type metrics struct {
	reg *prometheus.Registry

	requests      [len(statusClasses)][verdict.NumActions]prometheus.Counter // [status class][action]
	decisions     *prometheus.CounterVec
	cacheStatus   *prometheus.CounterVec
	dryRuns       *prometheus.CounterVec
	missRefused   *prometheus.CounterVec
	blocksAdded   *prometheus.CounterVec
	tablePressure prometheus.Counter
	modeChanges   *prometheus.CounterVec
	duration      prometheus.Histogram
	upstream      prometheus.Histogram
	overhead      prometheus.Histogram

	// rate is the request rate over the last few seconds, for the status API.
	count    atomic.Uint64
	lastN    uint64
	lastT    time.Time
	rateBits atomic.Uint64
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_requests_total",
		Help: "Requests answered, by the shield's action and the status class of the answer.",
	}, []string{"action", "status"})
	for i, sc := range statusClasses {
		for _, a := range verdict.Actions() {
			m.requests[i][a] = reqs.WithLabelValues(a.String(), sc)
		}
	}
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_decisions_total",
		Help: "Requests the shield did not simply allow, by action and reason (rule name, deny-list, repeat-offender, under-attack, ...).",
	}, []string{"action", "reason"})
	m.cacheStatus = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_cache_responses_total",
		Help: "Answers by cache status (HIT, MISS, STALE, BYPASS).",
	}, []string{"cache"})
	m.dryRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_dry_run_total",
		Help: "Requests a dry-run rule would have acted on, by rule and action.",
	}, []string{"rule", "action"})
	m.missRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_cache_miss_refused_total",
		Help: "Cache misses refused by a count: misses rule, by reason.",
	}, []string{"reason"})
	m.blocksAdded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_blocks_added_total",
		Help: "Addresses put in the deny set, by reason.",
	}, []string{"reason"})
	m.tablePressure = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "rampart_limiter_pressure_events_total",
		Help: "Times the rate-limit table evicted live keys because it was full (at most one per second counted).",
	})
	m.modeChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rampart_mode_changes_total",
		Help: "Mode changes, by the mode entered (pinned by configuration or chosen by the detector).",
	}, []string{"mode"})
	buckets := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "rampart_request_duration_seconds", Help: "Time from request to the end of the answer, all requests.", Buckets: buckets,
	})
	m.upstream = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "rampart_upstream_duration_seconds", Help: "Time the origin took, for requests that reached it.", Buckets: buckets,
	})
	m.overhead = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "rampart_proxy_overhead_seconds", Help: "Time spent in the shield for requests that reached the origin (total minus origin time).",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05},
	})
	m.reg.MustRegister(reqs, m.decisions, m.cacheStatus, m.dryRuns, m.missRefused, m.blocksAdded, m.tablePressure, m.modeChanges, m.duration, m.upstream, m.overhead)
	m.lastT = time.Now()
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *metrics) request(d verdict.Decision, status int, cacheStatus string, total, upstream time.Duration) {
	sc := 0
	if status >= 100 && status < 600 {
		sc = status / 100
	}
	m.requests[sc][d.Action].Inc()
	if d.Action != verdict.Allow {
		m.decisions.WithLabelValues(d.Action.String(), d.Reason).Inc()
	}
	if cacheStatus != "" {
		m.cacheStatus.WithLabelValues(cacheStatus).Inc()
	}
	m.duration.Observe(total.Seconds())
	if upstream > 0 {
		m.upstream.Observe(upstream.Seconds())
		m.overhead.Observe((total - upstream).Seconds())
	}
	m.count.Add(1)
}

func (m *metrics) dryRun(rule string, a verdict.Action) {
	m.dryRuns.WithLabelValues(rule, a.String()).Inc()
}

func (m *metrics) edgeEvent(e verdict.Event) {}

// tick updates the request rate; the shield calls it every two seconds.
func (m *metrics) tick(*Shield) {
	now := time.Now()
	n := m.count.Load()
	if dt := now.Sub(m.lastT).Seconds(); dt > 0 {
		rate := float64(n-m.lastN) / dt
		m.rateBits.Store(uint64(rate * 1000))
	}
	m.lastN, m.lastT = n, now
}

func (m *metrics) requestsPerSecond() float64 { return float64(m.rateBits.Load()) / 1000 }

// registerComponents adds the scrape-time collector of every component's
// size and health.
func (m *metrics) registerComponents(s *Shield) {
	m.reg.MustRegister(&componentCollector{s: s})
}

type componentCollector struct{ s *Shield }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	dMode        = desc("rampart_mode", "The current mode: 0 normal, 1 elevated, 2 under_attack.")
	dConnsOpen   = desc("rampart_connections_open", "Open client connections.")
	dConnsAcc    = desc("rampart_connections_accepted_total", "Client connections accepted.")
	dConnsRej    = desc("rampart_connections_rejected_total", "Connections closed at accept, before TLS, by reason.", "reason")
	dConnsClosed = desc("rampart_connections_closed_total", "Connections closed by a hardening rule, by rule.", "rule")
	dBadReq      = desc("rampart_bad_requests_total", "Requests refused as malformed, by kind.", "kind")
	dGoAways     = desc("rampart_h2_goaways_total", "HTTP/2 GOAWAY frames sent.")
	dTable       = desc("rampart_table_entries", "Entries in a bounded table.", "table")
	dTableCap    = desc("rampart_table_capacity", "Capacity of a bounded table.", "table")
	dTableEvict  = desc("rampart_table_evictions_total", "Live entries evicted from a full table (limits leaking).", "table")
	dTablePress  = desc("rampart_table_pressure", "1 while a table is full and evicting live entries.", "table")
	dCacheBytes  = desc("rampart_cache_bytes", "Bytes held by the cache.")
	dCacheEvents = desc("rampart_cache_events_total", "Cache events.", "event")
	dAdmLimit    = desc("rampart_admission_limit", "The adaptive concurrency limit in front of the origin.")
	dAdmInFlight = desc("rampart_admission_in_flight", "Requests at the origin now.")
	dAdmQueued   = desc("rampart_admission_queued", "Requests waiting for the origin, by class.", "class")
	dAdmOutcome  = desc("rampart_admission_total", "Admission outcomes by class.", "class", "outcome")
	dUpHealthy   = desc("rampart_upstream_healthy", "1 when the upstream target can take requests.", "target")
	dUpReqs      = desc("rampart_upstream_requests_total", "Requests sent to an upstream target.", "target")
	dUpFails     = desc("rampart_upstream_failures_total", "Failed requests to an upstream target.", "target")
	dChallenge   = desc("rampart_challenge_events_total", "Challenge events: issued, pages, solved, nojs passes, loops, cookie checks issued and refused.", "event")
	dTarpit      = desc("rampart_tarpit_held", "Requests held in the tarpit now.")
	dDryRuns     = desc("rampart_dry_run_hits_total", "Dry-run rule hits (all rules).")
	dBodies      = desc("rampart_request_bodies_streamed_total", "Request bodies streamed to the origin instead of buffered (larger than hardening.buffer_body, or the buffer budget was spent).")
	dBodyBytes   = desc("rampart_request_body_buffer_bytes", "Bytes reserved for buffering request bodies now.")
	dSYNFilter   = desc("rampart_syn_filter_networks", "Denied and blocked networks in the kernel SYN filter (held) and that should be (wanted); the rest are closed at accept.", "state")
	dListErrors  = desc("rampart_list_reload_errors_total", "List files that changed but could not be loaded (the previous contents stay).")
)

func (c *componentCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *componentCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	g := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	cnt := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	g(dMode, float64(s.Mode()))
	held, wanted := s.SYNFilterHeld()
	g(dSYNFilter, float64(held), "held")
	g(dSYNFilter, float64(wanted), "wanted")
	e := s.edgeStats()
	g(dConnsOpen, float64(e.Open))
	cnt(dConnsAcc, float64(e.Accepted))
	cnt(dConnsRej, float64(e.RejectedDenied), "denied")
	cnt(dConnsRej, float64(e.RejectedPerIPCap), "per-ip-cap")
	cnt(dConnsRej, float64(e.RejectedGlobalCap), "global-cap")
	cnt(dConnsRej, float64(e.RejectedProxyHeader), "proxy-header")
	for rule, v := range map[string]uint64{
		"header-timeout": e.ClosedHeaderTimeout, "idle": e.ClosedIdle, "body-too-slow": e.ClosedBodyTooSlow,
		"write-timeout": e.ClosedWriteTimeout, "h2-glitches": e.ClosedH2Glitches, "h2-resets": e.ClosedH2Resets,
		"tls-handshake": e.ClosedTLSHandshake,
	} {
		cnt(dConnsClosed, float64(v), rule)
	}
	for kind, v := range e.BadRequests {
		cnt(dBadReq, float64(v), kind)
	}
	cnt(dGoAways, float64(e.H2GoAways))

	ts, es, bs := s.engine.TableStats(), s.engine.EscalatorStats(), s.blocks.Stats()
	for _, t := range []struct {
		name  string
		n, c  int
		ev    uint64
		press bool
	}{
		{"ratelimit", ts.Len, ts.Capacity, ts.LiveEvictions, ts.Pressure},
		{"offenders", es.Len, es.Capacity, es.LiveEvictions, es.Pressure},
		{"blocks", bs.Len, bs.Capacity, bs.Evictions, false},
	} {
		g(dTable, float64(t.n), t.name)
		g(dTableCap, float64(t.c), t.name)
		cnt(dTableEvict, float64(t.ev), t.name)
		g(dTablePress, b2f(t.press), t.name)
	}
	if s.cache != nil {
		cs := s.cache.Stats()
		g(dTable, float64(cs.Entries), "cache")
		g(dTableCap, float64(cs.MaxBytes), "cache_bytes")
		g(dCacheBytes, float64(cs.Bytes))
		g(dTable, float64(cs.LearnedPaths), "learned_paths")
		g(dTable, float64(cs.LearnedNames), "learned_names")
		for ev, v := range map[string]uint64{
			"hit": cs.Hits, "miss": cs.Misses, "stale": cs.Stale, "coalesced": cs.Coalesced, "bypass": cs.Bypass,
			"stored": cs.Stored, "evicted": cs.Evictions, "expired": cs.Expirations, "purged": cs.Purged,
			"miss_limited": cs.MissLimited, "coalesce_timeout": cs.CoalesceTimeouts, "hit_for_pass": cs.HitForPass,
			"dropped_unknown_param": cs.DroppedUnknown, "safety_net": cs.SafetyNet, "inflight_refused": cs.InflightRefused,
		} {
			cnt(dCacheEvents, float64(v), ev)
		}
	}
	if s.admission != nil {
		as := s.admission.Stats()
		g(dAdmLimit, float64(as.Limit))
		g(dAdmInFlight, float64(as.InFlight))
		for i := verdict.Class(0); i < verdict.NumClasses; i++ {
			cl := i.String()
			g(dAdmQueued, float64(as.Queued[i]), cl)
			cnt(dAdmOutcome, float64(as.Admitted[i]), cl, "admitted")
			cnt(dAdmOutcome, float64(as.Rejected[i]), cl, "rejected")
			cnt(dAdmOutcome, float64(as.Shed[i]), cl, "shed")
			cnt(dAdmOutcome, float64(as.TimedOut[i]), cl, "timed_out")
		}
	}
	for _, u := range s.pool.Health() {
		g(dUpHealthy, b2f(u.Available), u.URL)
		cnt(dUpReqs, float64(u.Requests), u.URL)
		cnt(dUpFails, float64(u.Failures), u.URL)
	}
	chs := s.challenge.Stats()
	loops := uint64(0)
	for _, v := range chs.Loops {
		loops += v
	}
	failed := uint64(0)
	for _, v := range chs.Failed {
		failed += v
	}
	for ev, v := range map[string]uint64{"issued": chs.Issued, "pages": chs.Pages, "solved": chs.Solved, "failed": failed, "nojs_pass": chs.NoJSPasses, "loop": loops, "check_issued": chs.ChecksIssued, "check_refused": chs.ChecksRefused} {
		cnt(dChallenge, float64(v), ev)
	}
	g(dTarpit, float64(s.tarpitted.Load()))
	cnt(dDryRuns, float64(s.engine.DryRuns()))
	cnt(dListErrors, float64(s.listErrors.Load()))
	cnt(dBodies, float64(s.bodies.streamed.Load()))
	g(dBodyBytes, float64(s.bodies.reserved.Load()))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
