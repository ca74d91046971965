package upstream

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// healthCheckUserAgent identifies active checks in the origin's logs.
const healthCheckUserAgent = "rampart-health-check"

// maxHealthBody is how much of a check's answer is read (and discarded) so
// that the connection can be reused.
const maxHealthBody = 64 << 10

// healthRequest builds the template request of u's checks.
func healthRequest(u *upstream, o *Options) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodGet, u.scheme+"://"+u.host+o.HealthCheck.Path, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case o.HealthCheck.Host != "":
		req.Host = o.HealthCheck.Host
	case o.Host != "":
		req.Host = o.Host
	}
	req.Header.Set("User-Agent", healthCheckUserAgent)
	req.Header.Set("Accept", "*/*")
	return req, nil
}

// checkLoop checks u at once and then every Interval until ctx ends.
func (p *Pool) checkLoop(ctx context.Context, u *upstream) {
	defer p.wg.Done()
	t := time.NewTicker(p.health.Interval)
	defer t.Stop()
	for {
		p.checkOnce(ctx, u)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkOnce runs one check of u and applies the thresholds.
func (p *Pool) checkOnce(ctx context.Context, u *upstream) {
	err := p.probeHealth(ctx, u)
	if ctx.Err() != nil {
		return // shutting down: say nothing about the origin
	}
	if err == nil {
		u.hcFail = 0
		u.hcOK = min(u.hcOK+1, p.health.HealthyThreshold)
		if u.open.Load() {
			p.shortenEjection(u)
		}
		if u.down.Load() && u.hcOK >= p.health.HealthyThreshold {
			u.down.Store(false)
			p.log.Info("upstream healthy", slog.String("upstream", u.name))
		}
		return
	}
	now := p.nowNanos()
	u.lastFail.Store(now)
	u.mu.Lock()
	u.lastErr, u.lastErrAt = "health check: "+err.Error(), now
	u.mu.Unlock()
	u.hcOK = 0
	u.hcFail = min(u.hcFail+1, p.health.UnhealthyThreshold)
	if !u.down.Load() && u.hcFail >= p.health.UnhealthyThreshold {
		u.down.Store(true)
		p.log.Warn("upstream unhealthy", slog.String("upstream", u.name), slog.String("error", err.Error()))
	}
}

// probeHealth sends one check: it passes on a 2xx or 3xx within Timeout.
func (p *Pool) probeHealth(ctx context.Context, u *upstream) error {
	ctx, cancel := context.WithTimeout(ctx, p.health.Timeout)
	defer cancel()
	res, err := u.rt.RoundTrip(u.check.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u.check.URL.Path, err)
	}
	_, _ = io.CopyN(io.Discard, res.Body, maxHealthBody)
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 399 {
		return fmt.Errorf("GET %s: status %d", u.check.URL.Path, res.StatusCode)
	}
	return nil
}
