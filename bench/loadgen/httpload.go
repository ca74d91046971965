package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rampart-shield/rampart/internal/sim"
)

// httpConfig is one run of the http mode.
type httpConfig struct {
	target   sim.Target
	conns    int
	rate     float64 // requests per second in all; 0 means as fast as possible
	duration time.Duration
	count    int64 // 0: no cap but the duration
	source   netip.Addr
	method   string
	headers  []string
	timeout  time.Duration
	json     bool
}

// headerList is a repeatable --header flag.
type headerList []string

func (h *headerList) String() string { return strings.Join(*h, ", ") }

func (h *headerList) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(v, "\r\n") || strings.ContainsAny(name, " \t") {
		return fmt.Errorf("header %q: want 'Name: value' on one line", v)
	}
	*h = append(*h, strings.TrimSpace(name)+": "+strings.TrimSpace(value))
	return nil
}

func parseHTTPFlags(args []string, stderr io.Writer) (httpConfig, error) {
	fs := flag.NewFlagSet("loadgen http", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c httpConfig
	var rawURL, source string
	var hdrs headerList
	fs.StringVar(&rawURL, "url", "", "target URL, http://127.x.y.z:port/path or http://[::1]:port/path (loopback only)")
	fs.IntVar(&c.conns, "conns", 64, "keep-alive connections (also the most requests outstanding)")
	fs.Float64Var(&c.rate, "rate", 0, "requests per second in all, on a fixed schedule (0: as fast as the connections go)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to send (at most 10m)")
	fs.Int64Var(&c.count, "count", 0, "stop after this many requests (0: only the duration bounds the run)")
	fs.StringVar(&source, "source", "", "bind connections to this loopback source address")
	fs.StringVar(&c.method, "method", "GET", "request method (GET or HEAD: the generator sends no bodies)")
	fs.Var(&hdrs, "header", "extra request header 'Name: value' (repeatable)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "per-request deadline (dial, write, read)")
	fs.BoolVar(&c.json, "json", false, "print one JSON object instead of key=value pairs")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if rawURL == "" {
		return c, errors.New("--url is required")
	}
	var err error
	if c.target, err = parseTarget(rawURL); err != nil {
		return c, err
	}
	if source != "" {
		if c.source, err = loopbackSource(source); err != nil {
			return c, err
		}
		if c.source.Is4() != c.target.AddrPort.Addr().Is4() {
			return c, fmt.Errorf("--source %s and the target %s are of different address families", c.source, c.target.AddrPort.Addr())
		}
	}
	if err := checkBounds(c.duration, c.count); err != nil {
		return c, err
	}
	switch {
	case c.conns < 1 || c.conns > maxConns:
		return c, fmt.Errorf("--conns %d out of range [1, %d]", c.conns, maxConns)
	case math.IsNaN(c.rate) || c.rate < 0 || c.rate > 10_000_000:
		return c, fmt.Errorf("--rate %v out of range [0, 1e7]", c.rate)
	case c.method != "GET" && c.method != "HEAD":
		return c, fmt.Errorf("--method %q: only GET and HEAD", c.method)
	case c.timeout <= 0 || c.timeout > time.Minute:
		return c, fmt.Errorf("--timeout %v out of range (0, 1m]", c.timeout)
	}
	c.headers = hdrs
	return c, nil
}

// requestBytes renders the one request the run repeats.
func (c httpConfig) requestBytes() []byte {
	var b strings.Builder
	path := c.target.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	if c.target.URL.RawQuery != "" {
		path += "?" + c.target.URL.RawQuery
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rampart-loadgen\r\nAccept: */*\r\n", c.method, path, c.target.HostHeader)
	for _, h := range c.headers {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// httpResult is the outcome of an http run.
type httpResult struct {
	Mode      string  `json:"mode"`
	URL       string  `json:"url"`
	Conns     int     `json:"conns"`
	Rate      float64 `json:"rate"`
	DurationS float64 `json:"duration_s"`
	// Requests counts answered requests (any status); RPS is Requests over
	// DurationS.
	Requests int64   `json:"requests"`
	RPS      float64 `json:"rps"`
	// Errors counts requests without an answer, by kind in ErrorKinds.
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds"`
	// Missed counts scheduled requests (fixed rate only) dropped because
	// every connection was busy and the backlog was full.
	Missed   int64            `json:"missed"`
	Statuses map[string]int64 `json:"statuses"`
	// Latencies of answered requests, in ms: from the scheduled send time
	// at a fixed rate (so a stalled server is charged for the wait), from
	// the actual send otherwise.
	P50ms  float64 `json:"p50_ms"`
	P90ms  float64 `json:"p90_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func (r httpResult) write(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mode=http conns=%d rate=%g duration_s=%.3f requests=%d rps=%.1f errors=%d missed=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f",
		r.Conns, r.Rate, r.DurationS, r.Requests, r.RPS, r.Errors, r.Missed, r.P50ms, r.P90ms, r.P99ms, r.P999ms, r.MaxMs)
	writeCounts(&b, "status_", r.Statuses)
	writeCounts(&b, "error_", r.ErrorKinds)
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeCounts appends " prefixKEY=N" for each key, sorted.
func writeCounts(b *strings.Builder, prefix string, m map[string]int64) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(b, " %s%s=%d", prefix, k, m[k])
	}
}

// httpWorker owns one keep-alive connection and its counters.
type httpWorker struct {
	cfg      *httpConfig
	req      []byte
	dialer   *net.Dialer
	conn     net.Conn
	br       *bufio.Reader
	hist     hist
	statuses [600]int64
	errs     map[string]int64
	answered int64
}

func newHTTPWorker(cfg *httpConfig, req []byte) *httpWorker {
	d := &net.Dialer{Timeout: cfg.timeout, KeepAlive: -1}
	if cfg.source.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: cfg.source.AsSlice()}
	}
	return &httpWorker{cfg: cfg, req: req, dialer: d, errs: map[string]int64{}}
}

// do sends the request once and reads the answer, dialling first if the
// connection is closed. It returns false on failure (counted).
func (w *httpWorker) do(ctx context.Context) bool {
	if w.conn == nil {
		c, err := w.dialer.DialContext(ctx, "tcp", w.cfg.target.AddrPort.String())
		if err != nil {
			w.fail("connect", err)
			return false
		}
		w.conn = c
		if w.br == nil {
			w.br = bufio.NewReaderSize(c, 16<<10)
		} else {
			w.br.Reset(c)
		}
	}
	w.conn.SetDeadline(time.Now().Add(w.cfg.timeout))
	if _, err := w.conn.Write(w.req); err != nil {
		w.fail("write", err)
		return false
	}
	ri, err := readResponse(w.br, w.cfg.method == "HEAD")
	if err != nil {
		w.fail("read", err)
		return false
	}
	if ri.status >= 0 && ri.status < len(w.statuses) {
		w.statuses[ri.status]++
	}
	w.answered++
	if ri.close {
		w.closeConn()
	}
	return true
}

func (w *httpWorker) closeConn() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// fail counts a failure by kind and drops the connection.
func (w *httpWorker) fail(stage string, err error) {
	w.closeConn()
	w.errs[errKind(stage, err)]++
}

// errKind labels a failure for the report.
func errKind(stage string, err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errMalformed):
		return "malformed"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return stage + "_timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return stage + "_reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return stage + "_closed"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return "no_source_port"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return stage + "_other"
}

// runHTTP runs the http mode: cfg.conns workers, each with one keep-alive
// connection, either as fast as each can go (rate 0) or taking send times
// from a schedule at cfg.rate per second. It stops at the duration, the
// count or when ctx ends, whichever comes first.
func runHTTP(ctx context.Context, cfg httpConfig) (httpResult, error) {
	req := cfg.requestBytes()
	ctx, cancel := context.WithTimeout(ctx, cfg.duration+cfg.timeout)
	defer cancel()
	workers := make([]*httpWorker, cfg.conns)
	for i := range workers {
		workers[i] = newHTTPWorker(&cfg, req)
	}
	start := time.Now()
	end := start.Add(cfg.duration)
	var missed atomic.Int64
	var wg sync.WaitGroup
	if cfg.rate == 0 {
		var issued atomic.Int64
		for _, w := range workers {
			wg.Go(func() {
				defer w.closeConn()
				for ctx.Err() == nil {
					t0 := time.Now()
					if !t0.Before(end) {
						return
					}
					if cfg.count > 0 && issued.Add(1) > cfg.count {
						return
					}
					if w.do(ctx) {
						w.hist.add(time.Since(t0))
					}
				}
			})
		}
	} else {
		// The schedule: the i-th request is due at start + i/rate. A
		// request waiting in the backlog is charged from its due time.
		tokens := make(chan time.Time, cfg.conns*64)
		for _, w := range workers {
			wg.Go(func() {
				defer w.closeConn()
				for due := range tokens {
					if ctx.Err() != nil {
						continue // drain
					}
					if w.do(ctx) {
						w.hist.add(time.Since(due))
					}
				}
			})
		}
		interval := time.Duration(float64(time.Second) / cfg.rate)
		var n int64
	schedule:
		for {
			now := time.Now()
			for due := start.Add(time.Duration(n) * interval); !due.After(now); due = start.Add(time.Duration(n) * interval) {
				if !due.Before(end) || (cfg.count > 0 && n >= cfg.count) {
					break schedule
				}
				select {
				case tokens <- due:
				default:
					missed.Add(1)
				}
				n++
			}
			next := start.Add(time.Duration(n) * interval)
			select {
			case <-ctx.Done():
				break schedule
			case <-time.After(min(time.Until(next), time.Millisecond)):
			}
		}
		close(tokens)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if elapsed > cfg.duration {
		elapsed = min(elapsed, cfg.duration+cfg.timeout)
	}

	res := httpResult{Mode: "http", URL: cfg.target.URL.String(), Conns: cfg.conns, Rate: cfg.rate,
		DurationS: math.Round(elapsed.Seconds()*1000) / 1000, Missed: missed.Load(),
		Statuses: map[string]int64{}, ErrorKinds: map[string]int64{}}
	var all hist
	for _, w := range workers {
		all.merge(&w.hist)
		res.Requests += w.answered
		for code, n := range w.statuses {
			if n > 0 {
				res.Statuses[strconv.Itoa(code)] += n
			}
		}
		for k, n := range w.errs {
			res.ErrorKinds[k] += n
			res.Errors += n
		}
	}
	if s := elapsed.Seconds(); s > 0 {
		res.RPS = math.Round(float64(res.Requests)/s*10) / 10
	}
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	res.P50ms, res.P90ms, res.P99ms, res.P999ms = ms(all.quantile(50)), ms(all.quantile(90)), ms(all.quantile(99)), ms(all.quantile(99.9))
	res.MaxMs = ms(all.max)
	return res, nil
}
