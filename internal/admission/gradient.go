package admission

import (
	"math"
	"slices"
	"time"
)

// windowSamples is how many latency samples a window keeps for its median;
// later samples overwrite the oldest.
const windowSamples = 64

// Bounds of the gradient per window: the limit never falls by more than half
// in one step, and never rises by more than 1+Tolerance (the gradient's own
// ceiling, since minRTT is never above a window's median).
const minGradient = 0.5

// gradient is the adaptive limit: a minRTT anchor measured by probes at
// MinLimit concurrency, and per window the gradient
// ((1+Tolerance)·minRTT + Slack)/median. A gradient at or above 1 (the origin answers
// within tolerance of its unloaded latency) raises the limit at once to
// limit·gradient, at least by 1, provided the window used at least half the
// limit (an idle origin tells nothing about its capacity). A gradient below 1
// lowers it towards limit·gradient with Smoothing. A window holding overload
// outcomes multiplies it by Backoff instead. In front of an origin of fixed
// capacity C and unloaded latency D, latency is D·L/C once the limit L
// exceeds C, so the fixed point is L = (1+Tolerance+Slack/D)·C.
//
// Tickets carry the epoch they were admitted in; a probe only counts samples
// of requests admitted during it, so its median is measured at MinLimit
// concurrency. gradient is not safe for concurrent use: Limiter.mu guards it.
type gradient struct {
	o *Options

	limit      float64
	minRTT     time.Duration
	lastRTT    time.Duration
	probing    bool
	epoch      uint32
	probeEpoch uint32
	savedLimit float64
	nextProbe  time.Time

	wStart  time.Time
	n       int
	samples [windowSamples]time.Duration
	drops   int
	peak    int
}

func (g *gradient) init(o *Options) {
	g.o = o
	g.limit = float64(o.InitialLimit)
	g.epoch = 1
	g.startProbe(time.Time{})
}

// effective is the number of requests the origin may have in flight now.
func (g *gradient) effective() int {
	if g.probing {
		return g.o.MinLimit
	}
	return int(g.limit)
}

func (g *gradient) onAdmit(inFlight int) {
	if inFlight > g.peak {
		g.peak = inFlight
	}
}

func (g *gradient) startProbe(now time.Time) {
	if !g.probing {
		g.savedLimit = g.limit
	}
	g.probing = true
	g.epoch++
	g.probeEpoch = g.epoch
	g.resetWindow(now)
}

func (g *gradient) endProbe(now time.Time) {
	g.probing = false
	g.limit = g.clamp(g.savedLimit)
	g.epoch++
	g.scheduleProbe(now)
	g.resetWindow(now)
}

func (g *gradient) scheduleProbe(now time.Time) {
	if g.o.ProbeInterval < 0 {
		g.nextProbe = time.Time{}
		return
	}
	d := float64(g.o.ProbeInterval)
	if j := g.o.ProbeJitter; j > 0 {
		d *= 1 + j*(2*g.o.Rand()-1)
	}
	g.nextProbe = now.Add(time.Duration(d))
}

func (g *gradient) resetWindow(now time.Time) {
	g.wStart = now
	g.n = 0
	g.drops = 0
	g.peak = 0
}

func (g *gradient) record(rtt time.Duration) {
	if rtt <= 0 {
		rtt = 1
	}
	g.samples[g.n%windowSamples] = rtt
	g.n++
}

func (g *gradient) median() time.Duration {
	var buf [windowSamples]time.Duration
	s := buf[:min(g.n, windowSamples)]
	copy(s, g.samples[:len(s)])
	slices.Sort(s)
	return s[len(s)/2]
}

func (g *gradient) clamp(v float64) float64 {
	return math.Max(float64(g.o.MinLimit), math.Min(float64(g.o.MaxLimit), v))
}

// onRelease takes one sample and reports whether the effective limit or the
// probing state changed.
func (g *gradient) onRelease(epoch uint32, rtt time.Duration, outcome Outcome, now time.Time) bool {
	if outcome == Ignore {
		return false
	}
	if g.wStart.IsZero() {
		g.wStart = now
	}
	if g.probing {
		if epoch != g.probeEpoch {
			return false
		}
		if outcome == Dropped {
			g.drops++
			g.savedLimit = g.clamp(g.savedLimit * g.o.Backoff)
			if g.drops >= g.o.ProbeSamples && g.minRTT > 0 {
				// The origin fails: keep the last anchor rather than wait.
				g.endProbe(now)
				return true
			}
			return false
		}
		g.record(rtt)
		if g.n >= g.o.ProbeSamples {
			g.minRTT = g.median()
			g.lastRTT = g.minRTT
			g.endProbe(now)
			return true
		}
		return false
	}

	if outcome == Dropped {
		g.drops++
	} else {
		g.record(rtt)
	}
	changed := false
	if now.Sub(g.wStart) >= g.o.SampleWindow && (g.n >= g.o.MinSamples || g.drops > 0) {
		before := g.effective()
		g.update()
		g.resetWindow(now)
		changed = g.effective() != before
	}
	if g.o.ProbeInterval >= 0 && !g.nextProbe.IsZero() && !now.Before(g.nextProbe) {
		g.startProbe(now)
		changed = true
	}
	return changed
}

// update moves the limit at the end of a window.
func (g *gradient) update() {
	if g.drops > 0 {
		g.limit = g.clamp(g.limit * g.o.Backoff)
		return
	}
	m := g.median()
	g.lastRTT = m
	if g.minRTT == 0 || m < g.minRTT {
		g.minRTT = m
	}
	grad := ((1+g.o.Tolerance)*float64(g.minRTT) + float64(g.o.Slack)) / float64(m)
	grad = math.Max(minGradient, grad)
	if grad >= 1 {
		if float64(g.peak) < g.limit/2 {
			return // app-limited: an idle origin says nothing about its capacity
		}
		g.limit = g.clamp(math.Max(g.limit*grad, g.limit+1))
		return
	}
	target := g.limit * grad
	g.limit = g.clamp(g.limit + g.o.Smoothing*(target-g.limit))
}
