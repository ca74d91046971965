package upstream

// maxTries bounds the attempts of one request (1 + Options.Retries).
const maxTries = 1 + maxRetries

// pick chooses the origin for one attempt, skipping those in tried. It
// returns nil when no origin may be asked, and probe=true when the caller
// holds the origin's probe slot and must report the outcome.
//
// Order: an open breaker whose ejection is over gets its single half-open
// probe first (otherwise healthy origins would starve it); then the
// balancer among usable origins; then, when every origin is down or
// ejected, the least-recently-failed one as a probe at most once per
// Passive.ProbeInterval. The common case (no breaker open) reads one
// atomic per origin considered and allocates nothing.
func (p *Pool) pick(tried []*upstream) (u *upstream, probe bool) {
	var now int64
	if p.nOpen.Load() > 0 {
		now = p.nowNanos()
		for _, c := range p.ups {
			if !isTried(tried, c) && c.tryHalfOpen(now) {
				return c, true
			}
		}
	}
	if p.leastConn {
		u = p.leastConnPick(tried)
	} else {
		u = p.roundRobinPick(tried)
	}
	if u != nil {
		return u, false
	}
	if now == 0 {
		now = p.nowNanos()
	}
	if u = p.fallbackProbe(tried, now); u != nil {
		return u, true
	}
	return nil, false
}

func isTried(tried []*upstream, u *upstream) bool {
	for _, t := range tried {
		if t == u {
			return true
		}
	}
	return false
}

// roundRobinPick walks the precomputed smooth weighted schedule with one
// atomic counter; if the scheduled origin is not usable, the next usable
// origin in configuration order takes the request.
func (p *Pool) roundRobinPick(tried []*upstream) *upstream {
	n := len(p.ups)
	var i int
	if len(tried) > 0 {
		// A retry continues after the origin that failed and leaves the
		// schedule alone, so retries do not skew the rotation.
		i = (tried[len(tried)-1].idx + 1) % n
	} else {
		c := p.next.Add(1) - 1
		i = int(p.sched[c%uint64(len(p.sched))])
	}
	for k := 0; k < n; k++ {
		u := p.ups[i]
		if u.usable() && !isTried(tried, u) {
			return u
		}
		if i++; i == n {
			i = 0
		}
	}
	return nil
}

// leastConnPick returns the usable origin with the lowest in-flight count
// relative to its weight, scanning from a rotating start so ties spread.
func (p *Pool) leastConnPick(tried []*upstream) *upstream {
	n := len(p.ups)
	i := int(p.next.Add(1) % uint64(n))
	var best *upstream
	var bestLoad int64
	for k := 0; k < n; k++ {
		u := p.ups[i]
		if i++; i == n {
			i = 0
		}
		if !u.usable() || isTried(tried, u) {
			continue
		}
		load := u.inflight.Load()
		if best == nil || load*best.weight < bestLoad*u.weight {
			best, bestLoad = u, load
			if load == 0 {
				break // cannot do better than idle
			}
		}
	}
	return best
}

// fallbackProbe is the last resort when no origin is usable: the origin
// that failed least recently is sent this request as a probe, if nobody
// probed it and it did not fail within ProbeInterval, and no probe of it
// is in flight.
func (p *Pool) fallbackProbe(tried []*upstream, now int64) *upstream {
	var best *upstream
	var bestFail int64
	for _, u := range p.ups {
		if isTried(tried, u) {
			continue
		}
		if f := u.lastFail.Load(); best == nil || f < bestFail {
			best, bestFail = u, f
		}
	}
	if best == nil {
		return nil
	}
	last := best.lastProbe.Load()
	if now-max(last, bestFail) < int64(p.passive.ProbeInterval) {
		return nil
	}
	if !best.probing.CompareAndSwap(false, true) {
		return nil
	}
	if !best.lastProbe.CompareAndSwap(last, now) {
		best.probing.Store(false)
		return nil
	}
	return best
}

// smoothSchedule returns one period of nginx-style smooth weighted
// round-robin over weights: each origin i appears weights[i] times,
// interleaved as evenly as the weights allow.
func smoothSchedule(weights []int64) []uint16 {
	var total int64
	for _, w := range weights {
		total += w
	}
	cur := make([]int64, len(weights))
	out := make([]uint16, 0, total)
	for range total {
		best := 0
		for i, w := range weights {
			cur[i] += w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, uint16(best))
	}
	return out
}
