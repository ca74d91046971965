package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-shield/rampart/internal/sim"
)

// report builds a rampart-sim report with the figures the table reads.
func report(preset string, success, jsSuccess, p99 float64, sent, reached int64) sim.Report {
	r := sim.Report{Preset: preset, LegitSuccessRatio: success, LegitP99ms: p99, AttackSent: sent}
	r.LegitJS.SuccessRatio = jsSuccess
	ratio := sim.Ratio(reached, sent)
	r.AttackReachedOrigin, r.AttackReachedRatio = &reached, &ratio
	return r
}

func writeResult(t *testing.T, dir, scenario, system string, rep sim.Report, proc string) {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, scenario+"."+system)
	if err := os.WriteFile(base+".json", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if proc != "" {
		if err := os.WriteFile(base+".proc", []byte(proc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerdicts(t *testing.T) {
	tests := []struct {
		name       string
		rampart    sim.Report
		nginx      sim.Report
		haproxy    sim.Report
		wantInRow  []string
		wantAllMet bool
	}{
		{
			name:       "all met",
			rampart:    report("get-flood", 0.995, 1, 120, 10000, 50),
			nginx:      report("get-flood", 0.9, 0.9, 300, 10000, 900),
			haproxy:    report("get-flood", 0.95, 0.95, 200, 10000, 400),
			wantInRow:  []string{"yes (99.5%)", "yes (120 ms)", "yes (0.5%)", "not worse", "**yes**"},
			wantAllMet: true,
		},
		{
			name:      "success below target",
			rampart:   report("get-flood", 0.97, 1, 120, 10000, 50),
			nginx:     report("get-flood", 0.9, 0.9, 300, 10000, 900),
			haproxy:   report("get-flood", 0.9, 0.9, 300, 10000, 900),
			wantInRow: []string{"no (97.0%)", "**no**"},
		},
		{
			name:      "more attack through than nginx",
			rampart:   report("get-flood", 1, 1, 50, 10000, 80),
			nginx:     report("get-flood", 1, 1, 50, 10000, 10),
			haproxy:   report("get-flood", 1, 1, 50, 10000, 5000),
			wantInRow: []string{"yes (0.8%)", "worse: attack 0.8% > 0.1%", "**no**"},
		},
		{
			name:       "differences within the noise are ties",
			rampart:    report("get-flood", 0.998, 1, 58, 10000, 20),
			nginx:      report("get-flood", 1, 1, 52, 10000, 15),
			haproxy:    report("get-flood", 1, 1, 52, 10000, 15),
			wantInRow:  []string{"not worse | not worse", "**yes**"},
			wantAllMet: true,
		},
		{
			name:      "p99 worse beyond the noise",
			rampart:   report("get-flood", 1, 1, 400, 10000, 0),
			nginx:     report("get-flood", 1, 1, 100, 10000, 0),
			haproxy:   report("get-flood", 1, 1, 390, 10000, 0),
			wantInRow: []string{"worse: p99 400 > 100 ms", "not worse", "**no**"},
		},
		{
			name:       "no attack",
			rampart:    report("none", 1, 1, 50, 0, 0),
			nginx:      report("none", 1, 1, 50, 0, 0),
			haproxy:    report("none", 1, 1, 50, 0, 0),
			wantInRow:  []string{"n/a (no attack)", "**yes**"},
			wantAllMet: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sc := tt.rampart.Preset
			writeResult(t, dir, sc, "rampart", tt.rampart, "cpu_s=1.5 peak_rss_bytes=104857600")
			writeResult(t, dir, sc, "nginx", tt.nginx, "cpu_s=2 peak_rss_bytes=52428800")
			writeResult(t, dir, sc, "haproxy", tt.haproxy, "")
			var out bytes.Buffer
			if err := run([]string{"--dir", dir, "--scenarios", sc, "--systems", "nginx haproxy rampart"}, &out, &out); err != nil {
				t.Fatal(err)
			}
			var row string
			for l := range strings.SplitSeq(out.String(), "\n") {
				if strings.HasPrefix(l, "| "+sc+" | ") && strings.Contains(l, "**") {
					row = l
				}
			}
			if row == "" {
				t.Fatalf("no verdict row in\n%s", out.String())
			}
			for _, w := range tt.wantInRow {
				if !strings.Contains(row, w) {
					t.Errorf("verdict row %q lacks %q", row, w)
				}
			}
			if got := strings.HasSuffix(row, "**yes** |"); got != tt.wantAllMet {
				t.Errorf("all met %v, want %v: %s", got, tt.wantAllMet, row)
			}
			if !strings.Contains(out.String(), "| "+sc+" | rampart | ") || !strings.Contains(out.String(), "| 1.5 | 100 |") {
				t.Errorf("rampart's figures row missing or wrong:\n%s", out.String())
			}
			if !strings.Contains(out.String(), "| n/a | n/a |") {
				t.Errorf("haproxy's missing proc figures should read n/a:\n%s", out.String())
			}
		})
	}
}

func TestMissingResult(t *testing.T) {
	dir := t.TempDir()
	writeResult(t, dir, "slowloris", "nginx", report("slowloris", 1, 1, 10, 100, 0), "")
	if err := os.WriteFile(filepath.Join(dir, "slowloris.haproxy.json"), []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"--dir", dir, "--scenarios", "slowloris", "--systems", "nginx haproxy rampart"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"| slowloris | haproxy | run failed:", "| slowloris | rampart | run failed:", "| slowloris | run failed | | | | | **no** |"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

var procTests = []struct {
	in       string
	wantCPU  float64
	wantPeak int64
}{
	{"cpu_s=1.250 peak_rss_bytes=1024", 1.25, 1024},
	{"peak_rss_bytes=7 cpu_s=0 other=x", 0, 7},
	{"cpu_s=-1 peak_rss_bytes=-1 exited=1", -1, -1},
	{"cpu_s=abc", -1, -1},
	{"", -1, -1},
}

func TestParseProc(t *testing.T) {
	for _, tt := range procTests {
		t.Run(tt.in, func(t *testing.T) {
			cpu, peak := parseProc(tt.in)
			if cpu != tt.wantCPU || peak != tt.wantPeak {
				t.Errorf("got %v %v, want %v %v", cpu, peak, tt.wantCPU, tt.wantPeak)
			}
		})
	}
}

func FuzzParseProc(f *testing.F) {
	for _, tt := range procTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpu, peak := parseProc(s)
		if (cpu < 0 && cpu != -1) || (peak < 0 && peak != -1) {
			t.Fatalf("negative figures other than -1: %v %v", cpu, peak)
		}
	})
}

func TestFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"--scenarios", "none"}, &out, &out); err == nil {
		t.Error("no --dir accepted")
	}
	if err := run([]string{"--dir", t.TempDir()}, &out, &out); err == nil {
		t.Error("no --scenarios accepted")
	}
}
