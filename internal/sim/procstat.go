package sim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports (the kernel converts to it
// whatever its internal HZ).
const clockTicks = 100

// ProcSample is a reading of one process's resource use.
type ProcSample struct {
	// CPU is user plus system time consumed since the process started.
	CPU time.Duration
	// RSS is the resident set size now; PeakRSS its high-water mark.
	RSS, PeakRSS int64
}

// ReadProc reads /proc/PID/stat and /proc/PID/status.
func ReadProc(pid int) (ProcSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("reading process %d stat: %w", pid, err)
	}
	cpu, err := ParseProcStat(stat)
	if err != nil {
		return ProcSample{}, fmt.Errorf("process %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcSample{}, fmt.Errorf("reading process %d status: %w", pid, err)
	}
	rss, peak, err := ParseProcStatus(status)
	if err != nil {
		return ProcSample{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return ProcSample{CPU: cpu, RSS: rss, PeakRSS: peak}, nil
}

// ParseProcStat returns utime+stime from the contents of /proc/PID/stat.
// The command name (field 2) may hold spaces and parentheses, so fields
// are counted after the last ')': utime and stime are fields 14 and 15.
func ParseProcStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	// f[0] is field 3 (state): utime is f[11], stime f[12].
	ut, err1 := strconv.ParseUint(f[11], 10, 63)
	st, err2 := strconv.ParseUint(f[12], 10, 63)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("stat: utime/stime: %w", err)
	}
	ticks := ut + st
	if ticks > uint64(1<<62)/uint64(time.Second) {
		return 0, errors.New("stat: CPU time out of range")
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// ParseProcStatus returns VmRSS and VmHWM, in bytes, from the contents of
// /proc/PID/status. A missing line (a kernel thread) is an error.
func ParseProcStatus(b []byte) (rss, peak int64, err error) {
	var haveRSS, havePeak bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("status: malformed %s line %q", name, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, 0, fmt.Errorf("status: malformed %s value %q", name, f[0])
		}
		if name == "VmRSS" {
			rss, haveRSS = kb*1024, true
		} else {
			peak, havePeak = kb*1024, true
		}
	}
	if !haveRSS || !havePeak {
		return 0, 0, errors.New("status: no VmRSS/VmHWM (not a user process?)")
	}
	return rss, peak, nil
}
