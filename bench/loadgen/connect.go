package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// connectConfig is one run of the connect mode.
type connectConfig struct {
	addr     netip.AddrPort
	workers  int
	duration time.Duration
	count    int64
	sources  []netip.Addr
	send     bool
	path     string
	timeout  time.Duration
	json     bool
}

func parseConnectFlags(args []string, stderr io.Writer) (connectConfig, error) {
	fs := flag.NewFlagSet("loadgen connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c connectConfig
	var addr, sources string
	fs.StringVar(&addr, "addr", "", "target host:port (loopback only)")
	fs.IntVar(&c.workers, "workers", 32, "connections opened at once")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "how long to run (at most 10m)")
	fs.Int64Var(&c.count, "count", 0, "stop after this many connections (0: only the duration bounds the run)")
	fs.StringVar(&sources, "sources", "", "loopback source addresses, comma-separated, ranges as A-B; connections rotate over them (default: kernel's choice)")
	fs.BoolVar(&c.send, "send", true, "send a GET request on each connection before reading (false: read only)")
	fs.StringVar(&c.path, "path", "/", "request path when --send")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Second, "deadline for each connection (dial, write, first read)")
	fs.BoolVar(&c.json, "json", false, "print one JSON object instead of key=value pairs")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.addr, err = parseAddr(addr); err != nil {
		return c, err
	}
	if c.sources, err = parseSources(sources); err != nil {
		return c, err
	}
	for _, s := range c.sources {
		if s.Is4() != c.addr.Addr().Is4() {
			return c, fmt.Errorf("source %s and the target %s are of different address families", s, c.addr.Addr())
		}
	}
	if err := checkBounds(c.duration, c.count); err != nil {
		return c, err
	}
	switch {
	case c.workers < 1 || c.workers > maxConns:
		return c, fmt.Errorf("--workers %d out of range [1, %d]", c.workers, maxConns)
	case c.timeout <= 0 || c.timeout > time.Minute:
		return c, fmt.Errorf("--timeout %v out of range (0, 1m]", c.timeout)
	case !strings.HasPrefix(c.path, "/") || strings.ContainsAny(c.path, " \r\n"):
		return c, fmt.Errorf("--path %q: want an absolute path without spaces", c.path)
	}
	return c, nil
}

// connectResult is the outcome of a connect run. Every connection attempt
// ends in exactly one of: Dropped (the server closed or reset it without a
// byte of answer), Answered (an HTTP status line came back; by status in
// Statuses), Refused (the dial was refused), Timeouts (no answer within
// the timeout) or Errors (anything else, by kind).
type connectResult struct {
	Mode       string           `json:"mode"`
	Addr       string           `json:"addr"`
	Workers    int              `json:"workers"`
	Sources    int              `json:"sources"`
	DurationS  float64          `json:"duration_s"`
	Attempts   int64            `json:"attempts"`
	Dropped    int64            `json:"dropped"`
	Answered   int64            `json:"answered"`
	Refused    int64            `json:"refused"`
	Timeouts   int64            `json:"timeouts"`
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds"`
	Statuses   map[string]int64 `json:"statuses"`
	// PerSecond rates over DurationS.
	AttemptsPerS float64 `json:"attempts_per_s"`
	DroppedPerS  float64 `json:"dropped_per_s"`
	AnsweredPerS float64 `json:"answered_per_s"`
}

func (r connectResult) write(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mode=connect workers=%d sources=%d duration_s=%.3f attempts=%d dropped=%d answered=%d refused=%d timeouts=%d errors=%d attempts_per_s=%.1f dropped_per_s=%.1f answered_per_s=%.1f",
		r.Workers, r.Sources, r.DurationS, r.Attempts, r.Dropped, r.Answered, r.Refused, r.Timeouts, r.Errors, r.AttemptsPerS, r.DroppedPerS, r.AnsweredPerS)
	writeCounts(&b, "status_", r.Statuses)
	writeCounts(&b, "error_", r.ErrorKinds)
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// outcome is how one connection attempt ended.
type outcome uint8

const (
	outDropped outcome = iota
	outAnswered
	outRefused
	outTimeout
	outError
)

// connectWorker counts the outcomes of its own attempts.
type connectWorker struct {
	counts   [5]int64
	statuses map[int]int64
	errs     map[string]int64
}

// classifyFirstRead decides how a connection ended from the first read
// after the request: bytes that start an HTTP status line are an answer;
// nothing and EOF or a reset is a drop.
func classifyFirstRead(buf []byte, n int, err error) (outcome, int) {
	if n > 0 {
		b := buf[:n]
		if len(b) >= 12 && bytes.HasPrefix(b, []byte("HTTP/1.")) && b[8] == ' ' {
			if code, cerr := strconv.Atoi(string(b[9:12])); cerr == nil && code >= 100 && code <= 599 {
				return outAnswered, code
			}
		}
		return outAnswered, 0 // bytes that are not HTTP/1: an answer all the same
	}
	switch kind := errKind("read", err); kind {
	case "read_closed", "read_reset":
		return outDropped, 0
	case "read_timeout":
		return outTimeout, 0
	}
	return outError, 0
}

// once opens one connection from src, optionally sends req, and reads the
// first bytes of the answer. The connection is closed with SO_LINGER 0
// (a reset), so that neither side keeps it in TIME_WAIT and a long run does
// not run out of ports.
func (w *connectWorker) once(ctx context.Context, cfg *connectConfig, d *net.Dialer, req, buf []byte) {
	dctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", cfg.addr.String())
	if err != nil {
		if ctx.Err() != nil {
			return // the run ended during the dial: not an outcome
		}
		switch kind := errKind("connect", err); kind {
		case "refused":
			w.counts[outRefused]++
		case "connect_timeout":
			w.counts[outTimeout]++
		case "connect_reset", "connect_closed":
			w.counts[outDropped]++
		default:
			w.counts[outError]++
			w.errs[kind]++
		}
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(cfg.timeout))
	if len(req) > 0 {
		if _, err := c.Write(req); err != nil {
			if k := errKind("read", err); k == "read_reset" || k == "read_closed" {
				w.counts[outDropped]++
				return
			}
		}
	}
	n, err := io.ReadAtLeast(c, buf, 12)
	o, code := classifyFirstRead(buf, n, err)
	w.counts[o]++
	switch o {
	case outAnswered:
		w.statuses[code]++
	case outError:
		w.errs[errKind("read", err)]++
	}
}

// runConnect runs the connect mode: cfg.workers goroutines open connections
// one after another, rotating over the source addresses, until the
// duration, the count or ctx ends.
func runConnect(ctx context.Context, cfg connectConfig) (connectResult, error) {
	var req []byte
	if cfg.send {
		req = fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rampart-loadgen\r\nAccept: */*\r\nConnection: close\r\n\r\n", cfg.path, cfg.addr)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	workers := make([]*connectWorker, cfg.workers)
	var issued atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &connectWorker{statuses: map[int]int64{}, errs: map[string]int64{}}
		workers[i] = w
		wg.Go(func() {
			buf := make([]byte, 64)
			dialers := []*net.Dialer{{KeepAlive: -1}}
			if len(cfg.sources) > 0 {
				dialers = make([]*net.Dialer, len(cfg.sources))
				for k, s := range cfg.sources {
					dialers[k] = &net.Dialer{KeepAlive: -1, LocalAddr: &net.TCPAddr{IP: s.AsSlice()}}
				}
			}
			for k := i; ctx.Err() == nil; k++ {
				if cfg.count > 0 && issued.Add(1) > cfg.count {
					return
				}
				w.once(ctx, &cfg, dialers[k%len(dialers)], req, buf)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := connectResult{Mode: "connect", Addr: cfg.addr.String(), Workers: cfg.workers, Sources: len(cfg.sources),
		DurationS:  math.Round(elapsed.Seconds()*1000) / 1000,
		ErrorKinds: map[string]int64{}, Statuses: map[string]int64{}}
	for _, w := range workers {
		res.Dropped += w.counts[outDropped]
		res.Answered += w.counts[outAnswered]
		res.Refused += w.counts[outRefused]
		res.Timeouts += w.counts[outTimeout]
		res.Errors += w.counts[outError]
		for code, n := range w.statuses {
			res.Statuses[strconv.Itoa(code)] += n
		}
		for k, n := range w.errs {
			res.ErrorKinds[k] += n
		}
	}
	res.Attempts = res.Dropped + res.Answered + res.Refused + res.Timeouts + res.Errors
	if s := elapsed.Seconds(); s > 0 {
		r := func(n int64) float64 { return math.Round(float64(n)/s*10) / 10 }
		res.AttemptsPerS, res.DroppedPerS, res.AnsweredPerS = r(res.Attempts), r(res.Dropped), r(res.Answered)
	}
	return res, nil
}
