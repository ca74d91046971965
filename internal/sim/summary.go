package sim

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Summary renders r for people: what was sent, how the legitimate visitors
// fared, how much of the attack reached the origin, what the shield
// decided.
func (r Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rampart-sim: preset %s against %s (%s layout, scale %g), %.1fs, stopped by %s\n",
		r.Preset, r.Target, r.Layout, r.Scale, r.DurationS, r.StoppedBy)
	fmt.Fprintf(&b, "  sent %d requests in all\n", r.Requests)
	fmt.Fprintf(&b, "  legit:     %d requests, %.2f%% succeeded, p50 %.1f ms, p95 %.1f ms, p99 %.1f ms\n",
		r.LegitRequests, 100*r.LegitSuccessRatio, r.LegitP50ms, r.LegitP95ms, r.LegitP99ms)
	group := func(name string, g GroupStats) {
		fmt.Fprintf(&b, "    %-8s %d visitors, %d requests, %.2f%% succeeded, p99 %.1f ms, challenged %d, solved %d\n",
			name, g.Visitors, g.Requests, 100*g.SuccessRatio, g.P99ms, g.Challenged, g.ChallengesSolved)
	}
	group("JS", r.LegitJS)
	group("no-JS", r.LegitNoJS)
	fmt.Fprintf(&b, "  attack:    %d addresses sent %d", r.AttackSources, r.AttackSent)
	if r.AttackReachedOrigin != nil {
		fmt.Fprintf(&b, ", %d reached the origin (%.2f%%)", *r.AttackReachedOrigin, 100**r.AttackReachedRatio)
	} else {
		b.WriteString(", origin not observed (give --origin-stats or --origin)")
	}
	b.WriteString("\n")
	if r.AttackerSolves > 0 {
		fmt.Fprintf(&b, "  attackers solved %d challenges for %.2f CPU seconds\n", r.AttackerSolves, r.AttackerSolveCPUs)
	}
	for _, role := range roleNames {
		fmt.Fprintf(&b, "  %-10s decisions %s\n", role+":", formatCounts(r.Decisions[role]))
		fmt.Fprintf(&b, "  %-10s statuses  %s\n", "", formatCounts(r.Statuses[role]))
		if len(r.Cache[role]) > 0 {
			fmt.Fprintf(&b, "  %-10s cache     %s\n", "", formatCounts(r.Cache[role]))
		}
	}
	if r.Origin != nil {
		o := r.Origin
		fmt.Fprintf(&b, "  origin:    served %d, rejected %d (503), peak queue %d/%d, latency p50 %.1f ms p99 %.1f ms\n",
			o.Served, o.Rejected, o.PeakQueueDepth, o.Queue, o.Latency.P50ms, o.Latency.P99ms)
	}
	if r.ProxyCPUs != nil {
		fmt.Fprintf(&b, "  proxy:     %.2f CPU seconds, RSS %.1f MiB (peak %.1f MiB)\n",
			*r.ProxyCPUs, float64(*r.ProxyRSSBytes)/(1<<20), float64(*r.ProxyPeakRSSBytes)/(1<<20))
	}
	fmt.Fprintf(&b, "  simulator: %.2f CPU seconds\n", r.SimCPUs)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

// formatCounts renders counts largest first ("allow=10 challenge=3").
func formatCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
