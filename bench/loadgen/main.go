// Command loadgen is the loopback-only load generator of rampart's bench/
// scripts: keep-alive HTTP/1.1 at a fixed rate or as fast as it can, with
// latency percentiles free of coordinated omission, and a connection
// churner that counts how many connections a server closes without an
// answer (the measure of dropping at accept). It also reads the CPU time
// and resident memory of a process tree, for the side-by-side tables.
//
// Every target and source address must be a literal loopback address
// (127.0.0.0/8 or ::1, or "localhost"); anything else is refused before a
// packet is sent (the check is internal/sim's ParseTarget). Every run is
// bounded by a duration (at most 10 minutes) and a request or connection
// count (at most 100,000,000).
//
// Usage:
//
//	loadgen http --url URL [--conns 64] [--rate R] [--duration 10s] [--count N]
//	             [--source ADDR] [--header 'Name: value'] [--method GET] [--timeout 5s]
//	loadgen connect --addr HOST:PORT [--workers 32] [--duration 5s] [--count N]
//	                [--sources 127.0.77.1-127.0.77.16] [--send=true] [--timeout 2s]
//	loadgen proc --pid PID
//
// Each prints one line of key=value pairs on stdout (bench scripts read it
// without jq) and, with --json, one JSON object instead.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Hard bounds on every run, whatever the flags say.
const (
	maxDuration = 10 * time.Minute
	maxCount    = 100_000_000
	maxConns    = 10_000
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  loadgen http --url URL [--conns N] [--rate R] [--duration D] [--count N] [flags]
  loadgen connect --addr HOST:PORT [--workers N] [--duration D] [--count N] [flags]
  loadgen proc --pid PID
Targets and sources must be loopback addresses. "loadgen MODE -h" lists the flags.`

// run parses args (the mode first) and runs the mode until it is done or
// ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no mode given")
	}
	switch args[0] {
	case "http":
		cfg, err := parseHTTPFlags(args[1:], stderr)
		if err != nil {
			return err
		}
		res, err := runHTTP(ctx, cfg)
		if err != nil {
			return err
		}
		return res.write(stdout, cfg.json)
	case "connect":
		cfg, err := parseConnectFlags(args[1:], stderr)
		if err != nil {
			return err
		}
		res, err := runConnect(ctx, cfg)
		if err != nil {
			return err
		}
		return res.write(stdout, cfg.json)
	case "proc":
		return runProc(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stderr, usage)
		return flag.ErrHelp
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("unknown mode %q", args[0])
}

// checkBounds validates the duration and count every mode shares.
func checkBounds(d time.Duration, count int64) error {
	if d <= 0 || d > maxDuration {
		return fmt.Errorf("--duration %v out of range (0, %v]", d, maxDuration)
	}
	if count < 0 || count > maxCount {
		return fmt.Errorf("--count %d out of range [0, %d] (0: no cap but the duration)", count, maxCount)
	}
	return nil
}
