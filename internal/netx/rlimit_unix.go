//go:build unix

package netx

import "syscall"

// defaultMaxConns derives the global connection cap from the descriptor
// limit: half of (soft RLIMIT_NOFILE - 512), capped at DefaultMaxConnsCeiling
// and never below 64.
func defaultMaxConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return DefaultMaxConnsCeiling
	}
	return maxConnsFor(rl.Cur)
}
