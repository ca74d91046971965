package shield

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rampart-shield/rampart/internal/config"
)

// accessLog writes sampled, rate-limited access log lines, so that a flood
// cannot make logging the bottleneck: a line is written for a sample of the
// requests, and never more than a cap per second (the rest are counted as
// suppressed and reported in the next line that is written).
type accessLog struct {
	logger     *slog.Logger
	on         atomic.Bool
	sample     atomic.Uint64 // fraction * 2^32
	maxPerSec  atomic.Int64
	second     atomic.Int64
	thisSecond atomic.Int64
	suppressed atomic.Uint64
}

func newAccessLog(log *slog.Logger, c config.Log) *accessLog {
	a := &accessLog{logger: log}
	a.configure(c)
	return a
}

func (a *accessLog) configure(c config.Log) {
	a.on.Store(c.Access)
	a.sample.Store(uint64(c.AccessSample * (1 << 32)))
	a.maxPerSec.Store(int64(c.AccessMaxPerSecond))
}

func (a *accessLog) log(r *http.Request, rq *request, status int, cacheStatus string, d time.Duration) {
	if !a.on.Load() {
		return
	}
	if uint64(rand.Uint32()) >= a.sample.Load() {
		return
	}
	now := time.Now().Unix()
	if a.second.Load() != now {
		a.second.Store(now)
		a.thisSecond.Store(0)
	}
	if a.thisSecond.Add(1) > a.maxPerSec.Load() {
		a.suppressed.Add(1)
		return
	}
	attrs := []slog.Attr{
		slog.String("ip", rq.facts.IP.String()),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.String("action", rq.decision.Action.String()),
		slog.Duration("duration", d),
	}
	if rq.decision.Reason != "" {
		attrs = append(attrs, slog.String("reason", rq.decision.Reason))
	}
	if cacheStatus != "" {
		attrs = append(attrs, slog.String("cache", cacheStatus))
	}
	if n := a.suppressed.Swap(0); n > 0 {
		attrs = append(attrs, slog.Uint64("suppressed_before", n))
	}
	a.logger.LogAttrs(r.Context(), slog.LevelInfo, "access", attrs...)
}
