//go:build unix

package netx

import (
	"syscall"
	"testing"
	"time"
)

// cpuTimer reports, next to wall-clock ns/op, the CPU time the process
// spent per operation ("cpu-ns/op"), which stays meaningful on a machine
// shared with other work.
func cpuTimer(b *testing.B) func() {
	start := cpuNow()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
