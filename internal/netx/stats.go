package netx

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// maxConnsFor is the default global cap for a descriptor limit nofile.
func maxConnsFor(nofile uint64) int {
	if nofile <= 512+128 {
		return 64
	}
	n := (nofile - 512) / 2
	if n > DefaultMaxConnsCeiling {
		return DefaultMaxConnsCeiling
	}
	if n < 64 {
		return 64
	}
	return int(n)
}

// Reasons, as used in Stats, events, logs and the Rampart-Mitigated header.
const (
	ReasonDenied        = "denied"
	ReasonPerIPCap      = "per-ip-cap"
	ReasonGlobalCap     = "global-cap"
	ReasonProxyHeader   = "proxy-header"
	ReasonHeaderTimeout = "header-timeout"
	ReasonIdle          = "idle"
	ReasonBodyTooSlow   = "body-too-slow"
	ReasonBodyTooLarge  = "body-too-large"
	ReasonWriteTimeout  = "write-timeout"
	ReasonH2Glitches    = "h2-glitches"
	ReasonH2Resets      = "h2-rapid-reset"
	ReasonTLSHandshake  = "tls-handshake"
	ReasonBadRequest    = "bad-request"
)

// Stats is a snapshot of the server's counters. Counters only grow, except
// Open and TrackedIPs, which are gauges.
type Stats struct {
	// Open is the number of open connections (gauge).
	Open int64
	// TrackedIPs is the size of the per-client connection table (gauge);
	// it never exceeds Open.
	TrackedIPs int
	// Accepted counts connections accepted from listeners (before the gate).
	Accepted uint64
	// Rejected counts connections closed at accept, by reason:
	// denied, per-ip-cap, global-cap, proxy-header (missing or malformed
	// PROXY header from a trusted peer).
	RejectedDenied, RejectedPerIPCap, RejectedGlobalCap, RejectedProxyHeader uint64
	// Closed counts connections closed by a hardening rule, by rule.
	ClosedHeaderTimeout, ClosedIdle, ClosedBodyTooSlow, ClosedWriteTimeout uint64
	ClosedH2Glitches, ClosedH2Resets, ClosedTLSHandshake                   uint64
	// BodyTooLarge counts requests answered (or cut) with 413.
	BodyTooLarge uint64
	// BadRequests counts requests refused with 400/431 by kind (see
	// BadRequestKinds).
	BadRequests map[string]uint64
	// H2GoAways counts GOAWAY frames sent (by the glitch guard, graceful
	// shutdown and idle timeouts).
	H2GoAways uint64
	// TLSHandshakes counts TLS handshakes started.
	TLSHandshakes uint64
	// H2Conns and H1Conns count connections served by each protocol.
	H1Conns, H2Conns uint64
}

type counters struct {
	accepted, rejDenied, rejPerIP, rejGlobal, rejProxy           atomic.Uint64
	headerTimeout, idle, bodySlow, writeTimeout, h2Glitch, h2Rst atomic.Uint64
	tlsFail, bodyLarge, goaways, handshakes, h1, h2              atomic.Uint64
	bad                                                          [numBadKinds]atomic.Uint64
}

// event reports one rejection or closure: counter, hook and rate-limited log.
func (s *Server) event(kind verdict.EventKind, ip netip.Addr, reason string, g *gen) {
	switch reason {
	case ReasonDenied:
		s.c.rejDenied.Add(1)
	case ReasonPerIPCap:
		s.c.rejPerIP.Add(1)
	case ReasonGlobalCap:
		s.c.rejGlobal.Add(1)
	case ReasonProxyHeader:
		s.c.rejProxy.Add(1)
	case ReasonHeaderTimeout:
		s.c.headerTimeout.Add(1)
	case ReasonIdle:
		s.c.idle.Add(1)
	case ReasonBodyTooSlow:
		s.c.bodySlow.Add(1)
	case ReasonWriteTimeout:
		s.c.writeTimeout.Add(1)
	case ReasonH2Glitches:
		s.c.h2Glitch.Add(1)
	case ReasonH2Resets:
		s.c.h2Rst.Add(1)
	case ReasonTLSHandshake:
		s.c.tlsFail.Add(1)
	case ReasonBodyTooLarge:
		s.c.bodyLarge.Add(1)
	}
	if g == nil {
		g = s.gen.Load()
	}
	if g.o.OnEvent != nil {
		g.o.OnEvent(verdict.Event{Kind: kind, Time: g.o.Now(), IP: ip, Action: verdict.Drop, Reason: reason})
	}
	if n, ok := s.logLim.allow(g.o.Now()); ok {
		msg := "netx: connection closed"
		if kind == verdict.EventConnRejected {
			msg = "netx: connection rejected at accept"
		}
		g.o.Logger.LogAttrs(context.Background(), slog.LevelInfo, msg, slog.String("reason", reason),
			slog.String("ip", ip.String()), slog.Uint64("suppressed", n))
	}
}

// Stats returns a snapshot of the counters. It is safe for concurrent use and
// allocates only the BadRequests map.
func (s *Server) Stats() Stats {
	st := Stats{
		Open:                s.gate.open.Load(),
		TrackedIPs:          s.gate.size(),
		Accepted:            s.c.accepted.Load(),
		RejectedDenied:      s.c.rejDenied.Load(),
		RejectedPerIPCap:    s.c.rejPerIP.Load(),
		RejectedGlobalCap:   s.c.rejGlobal.Load(),
		RejectedProxyHeader: s.c.rejProxy.Load(),
		ClosedHeaderTimeout: s.c.headerTimeout.Load(),
		ClosedIdle:          s.c.idle.Load(),
		ClosedBodyTooSlow:   s.c.bodySlow.Load(),
		ClosedWriteTimeout:  s.c.writeTimeout.Load(),
		ClosedH2Glitches:    s.c.h2Glitch.Load(),
		ClosedH2Resets:      s.c.h2Rst.Load(),
		ClosedTLSHandshake:  s.c.tlsFail.Load(),
		BodyTooLarge:        s.c.bodyLarge.Load(),
		H2GoAways:           s.c.goaways.Load(),
		TLSHandshakes:       s.c.handshakes.Load(),
		H1Conns:             s.c.h1.Load(),
		H2Conns:             s.c.h2.Load(),
		BadRequests:         make(map[string]uint64, numBadKinds),
	}
	for k := badKind(1); k < numBadKinds; k++ {
		st.BadRequests[k.String()] = s.c.bad[k].Load()
	}
	return st
}

// logLimiter lets through at most logBurst lines and then one per
// logInterval, counting what it suppressed in between.
type logLimiter struct {
	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed uint64
}

const (
	logBurst    = 20
	logInterval = 100 * time.Millisecond
)

func (l *logLimiter) allow(now time.Time) (suppressed uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = logBurst
	} else {
		l.tokens += float64(now.Sub(l.last)) / float64(logInterval)
		if l.tokens > logBurst {
			l.tokens = logBurst
		}
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return 0, false
	}
	l.tokens--
	n := l.suppressed
	l.suppressed = 0
	return n, true
}
