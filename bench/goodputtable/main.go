// Command goodputtable turns the results of bench/goodput.sh into the
// Markdown table of docs/benchmarks.md: for every scenario and system, the
// legitimate visitors' success (all of them, and the JS-capable ones
// alone), their p99 latency, the share of attack requests that reached the
// origin, and the proxy's CPU time and peak memory; then, per scenario,
// whether rampart met the targets of issue 6.
//
// It reads DIR/SCENARIO.SYSTEM.json (rampart-sim --json) and
// DIR/SCENARIO.SYSTEM.proc (loadgen proc deltas: "cpu_s=X peak_rss_bytes=Y")
// and writes the Markdown to stdout. A missing or unreadable result is
// shown as such, never skipped.
//
// Usage:
//
//	goodputtable --dir DIR --scenarios "get-flood cache-bust" --systems "direct nginx haproxy rampart"
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rampart-shield/rampart/internal/sim"
)

// The targets of issue 6 for rampart with its defaults, every scenario.
const (
	targetSuccess = 0.99  // legit success ratio at least
	targetP99ms   = 500.0 // legit p99 below
	targetAttack  = 0.01  // attack share reaching the origin at most
)

// Noise margins for "not worse than a peer": figures of one short run on a
// shared machine move by this much between identical runs, so a difference
// within them is a tie, not a loss.
const (
	tieSuccess = 0.005 // 0.5 percentage points of legit success
	tieP99Rel  = 0.10  // 10% of the peer's p99 ...
	tieP99Abs  = 10.0  // ... plus 10 ms
	tieAttack  = 0.001 // 0.1 percentage points of attack share
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "goodputtable:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("goodputtable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory of SCENARIO.SYSTEM.json and .proc files")
	scenarios := fs.String("scenarios", "", "scenarios, in table order, space-separated")
	systems := fs.String("systems", "direct nginx haproxy rampart", "systems, in table order, space-separated")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *scenarios == "" {
		return errors.New("--dir and --scenarios are required")
	}
	res := load(*dir, strings.Fields(*scenarios), strings.Fields(*systems))
	_, err := io.WriteString(stdout, render(res))
	return err
}

// result is one scenario against one system.
type result struct {
	scenario, system string
	rep              *sim.Report
	err              error
	cpuS             float64 // proxy CPU seconds during the run; <0 unknown
	peakRSS          int64   // proxy peak RSS bytes; <0 unknown
}

// results holds every result in table order.
type results struct {
	scenarios, systems []string
	by                 map[[2]string]*result
}

func load(dir string, scenarios, systems []string) results {
	rs := results{scenarios: scenarios, systems: systems, by: map[[2]string]*result{}}
	for _, sc := range scenarios {
		for _, sy := range systems {
			r := &result{scenario: sc, system: sy, cpuS: -1, peakRSS: -1}
			base := filepath.Join(dir, sc+"."+sy)
			r.rep, r.err = readReport(base + ".json")
			if b, err := os.ReadFile(base + ".proc"); err == nil {
				r.cpuS, r.peakRSS = parseProc(string(b))
			}
			rs.by[[2]string{sc, sy}] = r
		}
	}
	return rs
}

func readReport(path string) (*sim.Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep sim.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if rep.Preset == "" {
		return nil, fmt.Errorf("%s: not a rampart-sim report", path)
	}
	return &rep, nil
}

// parseProc reads "cpu_s=X peak_rss_bytes=Y" (other keys ignored); a
// missing or bad value is -1.
func parseProc(s string) (cpu float64, peak int64) {
	cpu, peak = -1, -1
	for f := range strings.FieldsSeq(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "cpu_s":
			if x, err := strconv.ParseFloat(v, 64); err == nil && x >= 0 {
				cpu = x
			}
		case "peak_rss_bytes":
			if x, err := strconv.ParseInt(v, 10, 64); err == nil && x >= 0 {
				peak = x
			}
		}
	}
	return cpu, peak
}

// attackShare is the share of attack requests that reached the origin, or
// -1 when there was no attack or the origin was not observed.
func (r *result) attackShare() float64 {
	if r.rep == nil || r.rep.AttackSent == 0 || r.rep.AttackReachedRatio == nil {
		return -1
	}
	return *r.rep.AttackReachedRatio
}

func pct(x float64) string {
	if x < 0 {
		return "n/a"
	}
	return strconv.FormatFloat(100*x, 'f', 1, 64)
}

func render(rs results) string {
	var b strings.Builder
	b.WriteString("| scenario | system | legit success % | JS-capable success % | legit p99 ms | attack reaching origin % | attack sent | proxy CPU s | proxy peak RSS MiB |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, sc := range rs.scenarios {
		for _, sy := range rs.systems {
			r := rs.by[[2]string{sc, sy}]
			if r.rep == nil {
				fmt.Fprintf(&b, "| %s | %s | run failed: %s | | | | | | |\n", sc, sy, oneLine(r.err))
				continue
			}
			cpu, rss := "n/a", "n/a"
			if r.cpuS >= 0 {
				cpu = strconv.FormatFloat(r.cpuS, 'f', 1, 64)
			}
			if r.peakRSS >= 0 {
				rss = strconv.FormatFloat(float64(r.peakRSS)/(1<<20), 'f', 0, 64)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %.0f | %s | %d | %s | %s |\n", sc, sy,
				pct(r.rep.LegitSuccessRatio), pct(r.rep.LegitJS.SuccessRatio), r.rep.LegitP99ms,
				pct(r.attackShare()), r.rep.AttackSent, cpu, rss)
		}
	}
	if _, ok := indexOf(rs.systems, "rampart"); ok {
		b.WriteString("\n**Targets for rampart** (legit success >= 99% of all visitors, no-JS ones included; legit p99 < 500 ms; <= 1% of attack requests reaching the origin; not worse than nginx and HAProxy on each of the three, differences within the noise of one short run counting as ties: 0.5 points of success, 10% + 10 ms of p99, 0.1 points of attack share):\n\n")
		b.WriteString("| scenario | success >= 99% | p99 < 500 ms | attack <= 1% | vs nginx | vs HAProxy | all met |\n")
		b.WriteString("|---|---|---|---|---|---|---|\n")
		for _, sc := range rs.scenarios {
			b.WriteString(verdictRow(rs, sc))
		}
	}
	return b.String()
}

// verdictRow judges rampart on scenario sc.
func verdictRow(rs results, sc string) string {
	r := rs.by[[2]string{sc, "rampart"}]
	if r == nil || r.rep == nil {
		return fmt.Sprintf("| %s | run failed | | | | | **no** |\n", sc)
	}
	okSucc := r.rep.LegitSuccessRatio >= targetSuccess
	okP99 := r.rep.LegitP99ms < targetP99ms
	share := r.attackShare()
	okAttack := share <= targetAttack // no attack (-1) passes
	cells := []string{yesNo(okSucc, pct(r.rep.LegitSuccessRatio)+"%"), yesNo(okP99, fmt.Sprintf("%.0f ms", r.rep.LegitP99ms))}
	if share < 0 {
		cells = append(cells, "n/a (no attack)")
	} else {
		cells = append(cells, yesNo(okAttack, pct(share)+"%"))
	}
	all := okSucc && okP99 && okAttack
	for _, peer := range []string{"nginx", "haproxy"} {
		if _, ok := indexOf(rs.systems, peer); !ok {
			cells = append(cells, "not run")
			continue
		}
		c, ok := compare(r, rs.by[[2]string{sc, peer}])
		cells = append(cells, c)
		all = all && ok
	}
	return fmt.Sprintf("| %s | %s | %s |\n", sc, strings.Join(cells, " | "), boldYesNo(all))
}

// compare says whether rampart (r) is not worse than peer p on legit
// success, legit p99 and attack share beyond the noise margins, naming the
// figures where it is.
func compare(r, p *result) (string, bool) {
	if p == nil || p.rep == nil {
		return "peer run failed", true
	}
	var worse []string
	if r.rep.LegitSuccessRatio < p.rep.LegitSuccessRatio-tieSuccess {
		worse = append(worse, fmt.Sprintf("success %s%% < %s%%", pct(r.rep.LegitSuccessRatio), pct(p.rep.LegitSuccessRatio)))
	}
	if r.rep.LegitP99ms > p.rep.LegitP99ms*(1+tieP99Rel)+tieP99Abs {
		worse = append(worse, fmt.Sprintf("p99 %.0f > %.0f ms", r.rep.LegitP99ms, p.rep.LegitP99ms))
	}
	if rs, ps := r.attackShare(), p.attackShare(); rs >= 0 && ps >= 0 && rs > ps+tieAttack {
		worse = append(worse, fmt.Sprintf("attack %s%% > %s%%", pct(rs), pct(ps)))
	}
	if len(worse) == 0 {
		return "not worse", true
	}
	return "worse: " + strings.Join(worse, "; "), false
}

func yesNo(ok bool, detail string) string {
	if ok {
		return "yes (" + detail + ")"
	}
	return "no (" + detail + ")"
}

func boldYesNo(ok bool) string {
	if ok {
		return "**yes**"
	}
	return "**no**"
}

func indexOf(ss []string, s string) (int, bool) {
	for i, x := range ss {
		if x == s {
			return i, true
		}
	}
	return -1, false
}

func oneLine(err error) string {
	if err == nil {
		return "no result"
	}
	s := strings.ReplaceAll(err.Error(), "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}
