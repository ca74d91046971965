package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/rampart-shield/rampart/internal/sim"
)

// procResult is the resource use of a process and its children (nginx's
// master and workers, for instance).
type procResult struct {
	PID       int     `json:"pid"`
	Processes int     `json:"processes"`
	CPUS      float64 `json:"cpu_s"`
	// RSSBytes sums the resident sizes now; PeakRSSBytes sums each
	// process's high-water mark (an upper bound of the tree's peak).
	RSSBytes     int64 `json:"rss_bytes"`
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
}

func (r procResult) write(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	_, err := fmt.Fprintf(w, "mode=proc pid=%d processes=%d cpu_s=%.3f rss_bytes=%d peak_rss_bytes=%d\n",
		r.PID, r.Processes, r.CPUS, r.RSSBytes, r.PeakRSSBytes)
	return err
}

func runProc(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadgen proc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pid := fs.Int("pid", 0, "process id: it and its direct children are read from /proc")
	asJSON := fs.Bool("json", false, "print one JSON object instead of key=value pairs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pid <= 0 {
		return errors.New("--pid is required")
	}
	res, err := readTree(*pid)
	if err != nil {
		return err
	}
	return res.write(stdout, *asJSON)
}

// readTree sums the CPU time and memory of pid and its direct children.
func readTree(pid int) (procResult, error) {
	pids := append([]int{pid}, children(pid)...)
	res := procResult{PID: pid}
	var cpu float64
	for i, p := range pids {
		s, err := sim.ReadProc(p)
		if err != nil {
			if i == 0 {
				return res, err
			}
			continue // a child that exited meanwhile
		}
		res.Processes++
		cpu += s.CPU.Seconds()
		res.RSSBytes += s.RSS
		res.PeakRSSBytes += s.PeakRSS
	}
	res.CPUS = math.Round(cpu*1000) / 1000
	return res, nil
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(b); ok && ppid == pid {
			if p, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// parentOf returns field 4 (ppid) of a /proc/PID/stat line. The command
// name may hold spaces and parentheses, so fields are counted after the
// last ')'.
func parentOf(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	p, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return 0, false
	}
	return p, true
}
