package shield

import (
	"errors"
	"net/netip"
	"time"

	"github.com/rampart-shield/rampart/internal/admin"
	"github.com/rampart-shield/rampart/internal/netx"
)

// backend is the Shield as the admin API sees it.
type backend Shield

var _ admin.Backend = (*backend)(nil)

// Status is the document of GET /api/v1/status.
type Status struct {
	Version        string           `json:"version"`
	Mode           string           `json:"mode"`
	ModeAuto       bool             `json:"mode_auto"`
	ModeReason     string           `json:"mode_reason"`
	UptimeS        float64          `json:"uptime_s"`
	Connections    int64            `json:"connections"`
	RequestsPerS   float64          `json:"requests_per_s"`
	Upstreams      []UpstreamHealth `json:"upstreams"`
	UpstreamHealth string           `json:"upstream_health"`
	Tables         map[string]Table `json:"tables"`
	Warnings       []string         `json:"warnings"`
	Blocks         int              `json:"blocks"`
	Admission      *AdmissionStatus `json:"admission,omitempty"`
	Cache          *CacheStatus     `json:"cache,omitempty"`
}

// UpstreamHealth is one origin target's state.
type UpstreamHealth struct {
	URL       string  `json:"url"`
	Healthy   bool    `json:"healthy"`
	Available bool    `json:"available"`
	Breaker   string  `json:"breaker"`
	InFlight  int64   `json:"in_flight"`
	Requests  uint64  `json:"requests"`
	Failures  uint64  `json:"failures"`
	LatencyMS float64 `json:"latency_ms"`
	LastError string  `json:"last_error,omitempty"`
}

// Table is a bounded table's size and health.
type Table struct {
	Len           int    `json:"len"`
	Capacity      int    `json:"capacity"`
	LiveEvictions uint64 `json:"live_evictions"`
	Pressure      bool   `json:"pressure"`
}

// AdmissionStatus summarises admission control.
type AdmissionStatus struct {
	Limit    int    `json:"limit"`
	InFlight int    `json:"in_flight"`
	Queued   int    `json:"queued"`
	Breaker  string `json:"breaker"`
}

// CacheStatus summarises the cache.
type CacheStatus struct {
	Entries int    `json:"entries"`
	Bytes   uint64 `json:"bytes"`
	Hits    uint64 `json:"hits"`
	Misses  uint64 `json:"misses"`
	Stale   uint64 `json:"stale"`
}

func (b *backend) Status() any { return (*Shield)(b).Status() }

// Status returns the status document.
func (s *Shield) Status() Status {
	st := Status{
		Version:      s.opt.Version,
		Mode:         s.Mode().String(),
		ModeAuto:     s.auto.Load(),
		ModeReason:   s.ModeReason(),
		UptimeS:      s.now().Sub(s.started).Seconds(),
		Connections:  s.edgeStats().Open,
		RequestsPerS: s.metrics.requestsPerSecond(),
		Tables:       map[string]Table{},
		Warnings:     []string{},
		Blocks:       s.blocks.Len(),
	}
	healthy := 0
	for _, u := range s.pool.Health() {
		st.Upstreams = append(st.Upstreams, UpstreamHealth{
			URL: u.URL, Healthy: u.Healthy, Available: u.Available, Breaker: u.Breaker.String(),
			InFlight: u.InFlight, Requests: u.Requests, Failures: u.Failures,
			LatencyMS: float64(u.Latency) / float64(time.Millisecond), LastError: u.LastError,
		})
		if u.Available {
			healthy++
		}
	}
	switch {
	case healthy == len(st.Upstreams):
		st.UpstreamHealth = "ok"
	case healthy == 0:
		st.UpstreamHealth = "down"
		st.Warnings = append(st.Warnings, "no upstream target is available: answers come from the cache (stale) or are 502/503")
	default:
		st.UpstreamHealth = "degraded"
	}
	ts, es, bs := s.engine.TableStats(), s.engine.EscalatorStats(), s.blocks.Stats()
	st.Tables["ratelimit"] = Table{ts.Len, ts.Capacity, ts.LiveEvictions, ts.Pressure}
	st.Tables["offenders"] = Table{es.Len, es.Capacity, es.LiveEvictions, es.Pressure}
	st.Tables["blocks"] = Table{bs.Len, bs.Capacity, bs.Evictions, false}
	if ts.Pressure {
		st.Warnings = append(st.Warnings, "the rate-limit table is full and evicting live keys: limits are leaking; raise limits.table_capacity")
	}
	if es.Pressure {
		st.Warnings = append(st.Warnings, "the repeat-offender table is full and forgetting offenders")
	}
	if s.admission != nil {
		as := s.admission.Stats()
		q := 0
		for _, n := range as.Queued {
			q += n
		}
		st.Admission = &AdmissionStatus{Limit: as.Limit, InFlight: as.InFlight, Queued: q, Breaker: as.Breaker}
	}
	if s.cache != nil {
		cs := s.cache.Stats()
		st.Cache = &CacheStatus{Entries: cs.Entries, Bytes: cs.Bytes, Hits: cs.Hits, Misses: cs.Misses, Stale: cs.Stale}
	}
	return st
}

// edgeStats sums the statistics of every listener.
func (s *Shield) edgeStats() netx.Stats {
	s.mu.Lock()
	servers := append([]*netx.Server(nil), s.servers...)
	s.mu.Unlock()
	var t netx.Stats
	t.BadRequests = map[string]uint64{}
	for _, srv := range servers {
		x := srv.Stats()
		t.Open += x.Open
		t.TrackedIPs += x.TrackedIPs
		t.Accepted += x.Accepted
		t.RejectedDenied += x.RejectedDenied
		t.RejectedPerIPCap += x.RejectedPerIPCap
		t.RejectedGlobalCap += x.RejectedGlobalCap
		t.RejectedProxyHeader += x.RejectedProxyHeader
		t.ClosedHeaderTimeout += x.ClosedHeaderTimeout
		t.ClosedIdle += x.ClosedIdle
		t.ClosedBodyTooSlow += x.ClosedBodyTooSlow
		t.ClosedWriteTimeout += x.ClosedWriteTimeout
		t.ClosedH2Glitches += x.ClosedH2Glitches
		t.ClosedH2Resets += x.ClosedH2Resets
		t.ClosedTLSHandshake += x.ClosedTLSHandshake
		t.BodyTooLarge += x.BodyTooLarge
		t.H2GoAways += x.H2GoAways
		t.TLSHandshakes += x.TLSHandshakes
		t.H1Conns += x.H1Conns
		t.H2Conns += x.H2Conns
		for k, v := range x.BadRequests {
			t.BadRequests[k] += v
		}
	}
	return t
}

func (b *backend) Blocks() []admin.Block {
	list := b.blocks.List()
	out := make([]admin.Block, len(list))
	for i, x := range list {
		out[i] = admin.Block{CIDR: x.Prefix.String(), Reason: x.Reason, Added: x.Added, Expires: x.Expires}
	}
	return out
}

func (b *backend) Block(p netip.Prefix, ttl time.Duration, reason string) (admin.Block, error) {
	x, err := b.blocks.Add(p, ttl, reason)
	if err != nil {
		return admin.Block{}, err
	}
	b.metrics.blocksAdded.WithLabelValues("admin").Inc()
	(*Shield)(b).syncSYNFilter(true)
	return admin.Block{CIDR: x.Prefix.String(), Reason: x.Reason, Added: x.Added, Expires: x.Expires}, nil
}

func (b *backend) Unblock(p netip.Prefix) bool {
	ok := b.blocks.Remove(p)
	(*Shield)(b).syncSYNFilter(true) // the network may connect again at once
	return ok
}

func (b *backend) PurgeCache(prefix string) (int, error) {
	if b.cache == nil {
		return 0, errors.New("the cache is disabled")
	}
	return b.cache.Purge(prefix), nil
}

func (b *backend) RotateKeys() error { return b.challenge.Rotate() }

func (b *backend) RevokeAll() error { return b.challenge.RevokeAll() }

func (b *backend) RevokePrefix(p netip.Prefix) error {
	b.challenge.RevokePrefix(p)
	return nil
}
