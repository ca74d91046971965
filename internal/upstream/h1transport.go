package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-shield/rampart/internal/sockio"
)

// h1Transport is the fast path to an HTTP/1.1 origin for the requests
// that dominate a flood: GET and HEAD without a body and without an
// Upgrade. It writes the request and reads the response on the calling
// goroutine over a keep-alive connection taken from a LIFO idle stack, so a
// request costs no goroutine hand-offs (http.Transport uses a read and a
// write goroutine per connection and passes every request and response
// between them). Everything else (bodies, upgrades, other methods) goes to
// the fallback http.Transport, which keeps its own connections.
//
// A reused connection that turns out to have been closed by the origin
// (nothing read, or an unsolicited 408 left by its idle timeout) is retried
// once on a fresh connection: both methods are idempotent. Cancelling the request's
// context sets a past deadline on the connection, which is then discarded.
type h1Transport struct {
	addr        string // host:port dialled
	serverName  string // TLS server name; "" for plain HTTP
	tlsConfig   *tls.Config
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	dialTimeout time.Duration
	headerWait  time.Duration // ResponseHeaderTimeout
	idleTimeout time.Duration
	maxIdle     int
	fallback    *http.Transport
	now         func() time.Time // clock of idle bookkeeping (tests replace it)

	mu   sync.Mutex
	idle []*h1Conn // LIFO: the most recently used connection is warmest

	conns atomic.Int64 // open connections owned by the fast path
}

type h1Conn struct {
	t      *h1Transport
	c      net.Conn
	lr     limitReader // between c and br: bounds response headers
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	reused bool

	// cancelled is set by onCancel, the context.AfterFunc hook of the
	// exchange in progress (bound once per connection, so arming it costs
	// no closure).
	cancelled atomic.Bool
	onCancel  func()
	// fields is the direct path's scratch list of parsed response header
	// fields, reused from one exchange to the next.
	fields []headerField
	// rdl is the read deadline set by send (unix ns), 0 when cleared.
	rdl int64
}

var _ http.RoundTripper = (*h1Transport)(nil)

func newH1Transport(o *Options, kind, host string, fallback *http.Transport) *h1Transport {
	t := &h1Transport{
		addr:        hostPort(kind, host),
		dial:        fallback.DialContext,
		dialTimeout: o.DialTimeout,
		headerWait:  o.ResponseHeaderTimeout,
		idleTimeout: o.IdleConnTimeout,
		maxIdle:     o.MaxIdleConnsPerHost,
		fallback:    fallback,
		now:         time.Now,
	}
	if kind == "https" {
		t.tlsConfig = fallback.TLSClientConfig.Clone()
		t.tlsConfig.NextProtos = []string{"http/1.1"}
		h, _, err := net.SplitHostPort(t.addr)
		if err != nil {
			h = t.addr
		}
		t.serverName = h
		if t.tlsConfig.ServerName == "" {
			t.tlsConfig.ServerName = h
		}
	}
	return t
}

// hostPort adds the scheme's default port when host has none.
func hostPort(kind, host string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if kind == "https" || kind == "h2" {
		return net.JoinHostPort(trimBrackets(host), "443")
	}
	return net.JoinHostPort(trimBrackets(host), "80")
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// fastPath reports whether req can take the direct path.
func fastPath(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody {
		return false
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	_, up := req.Header["Upgrade"]
	return !up
}

// RoundTrip implements http.RoundTripper.
func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !fastPath(req) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		pc, err := t.getConn(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		res, err := pc.roundTrip(ctx, req)
		if err == nil {
			return res, nil
		}
		if errors.Is(err, errStaleConn) && attempt == 0 {
			continue
		}
		return nil, err
	}
}

// errStaleConn is a reused connection the origin had closed before our
// request reached it.
var errStaleConn = errors.New("upstream: idle connection closed by the origin")

// getConn returns an idle connection or dials one. fresh skips the idle
// stack.
func (t *h1Transport) getConn(ctx context.Context, fresh bool) (*h1Conn, error) {
	if !fresh {
		now := t.now()
		t.mu.Lock()
		for n := len(t.idle); n > 0; n = len(t.idle) {
			pc := t.idle[n-1]
			t.idle[n-1] = nil
			t.idle = t.idle[:n-1]
			if now.Sub(pc.idleAt) < t.idleTimeout {
				t.mu.Unlock()
				pc.reused = true
				return pc, nil
			}
			t.mu.Unlock()
			pc.close()
			t.mu.Lock()
		}
		t.mu.Unlock()
	}
	dctx, cancel := context.WithTimeout(ctx, t.dialTimeout)
	defer cancel()
	c, err := t.dial(dctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	c = sockio.Wrap(c)
	if t.tlsConfig != nil {
		tc := tls.Client(c, t.tlsConfig)
		if err := tc.HandshakeContext(dctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", t.addr, err)
		}
		c = tc
	}
	t.conns.Add(1)
	pc := &h1Conn{t: t, c: c, bw: bufio.NewWriterSize(c, 4<<10)}
	pc.lr.r = c
	pc.br = bufio.NewReaderSize(&pc.lr, 4<<10)
	pc.onCancel = func() {
		pc.cancelled.Store(true)
		_ = pc.c.SetDeadline(aLongTimeAgo)
	}
	return pc, nil
}

// maxResponseHeaderBytes bounds what an origin may send before its
// response body, as http.Transport.MaxResponseHeaderBytes does.
const maxResponseHeaderBytes = 1 << 20

var errHeadersTooLarge = errors.New("upstream: origin response headers too large")

// limitReader fails once n bytes were read while armed (n >= 0). Only the
// connection's own goroutine uses it.
type limitReader struct {
	r io.Reader
	n int64 // bytes left while reading headers; -1 when unlimited
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errHeadersTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// putIdle returns pc to the idle stack, or closes it when the stack is
// full or the transport closed.
//
// Connections at the bottom of the stack idle for IdleConnTimeout are
// closed here, so a steady low load does not keep a cold tail open.
func (t *h1Transport) putIdle(pc *h1Conn) {
	now := t.now()
	pc.idleAt = now
	var expired *h1Conn
	t.mu.Lock()
	if len(t.idle) >= t.maxIdle {
		t.mu.Unlock()
		pc.close()
		return
	}
	if len(t.idle) > 0 && now.Sub(t.idle[0].idleAt) >= t.idleTimeout {
		expired = t.idle[0]
		copy(t.idle, t.idle[1:])
		t.idle[len(t.idle)-1] = nil
		t.idle = t.idle[:len(t.idle)-1]
	}
	t.idle = append(t.idle, pc)
	t.mu.Unlock()
	if expired != nil {
		expired.close()
	}
}

// CloseIdleConnections closes the idle connections of both paths.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, pc := range idle {
		pc.close()
	}
	t.fallback.CloseIdleConnections()
}

func (pc *h1Conn) close() {
	pc.c.Close()
	pc.t.conns.Add(-1)
}

// aLongTimeAgo is a deadline that has passed: setting it unblocks any I/O.
var aLongTimeAgo = time.Unix(1, 0)

func (pc *h1Conn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	stop := pc.begin(ctx)
	if err := writeRequest(pc.bw, req); err != nil {
		return nil, pc.fail(ctx, stop, err)
	}
	if err := pc.send(); err != nil {
		return nil, pc.fail(ctx, stop, err)
	}
	var got1xx func(int, textproto.MIMEHeader) error
	if trace := httptrace.ContextClientTrace(ctx); trace != nil {
		got1xx = trace.Got1xxResponse
	}
	return pc.readResponse(ctx, req, stop, got1xx)
}

// begin arms the cancellation of one exchange: when ctx ends, a past
// deadline unblocks the connection's I/O and the connection is discarded.
// The returned stop must be called before the connection is reused.
func (pc *h1Conn) begin(ctx context.Context) (stop func() bool) {
	pc.cancelled.Store(false)
	return context.AfterFunc(ctx, pc.onCancel)
}

// fail ends an exchange that went wrong: the connection is closed, and the
// error is ctx's when the exchange was cancelled.
func (pc *h1Conn) fail(ctx context.Context, stop func() bool, err error) error {
	stop()
	pc.close()
	if pc.cancelled.Load() {
		return ctx.Err()
	}
	return err
}

// send flushes the request written to pc.bw, arms the response header
// limit and timeout, and waits for the first byte of the answer. A reused
// connection that fails before any byte of the answer arrived reports
// errStaleConn (the origin closed it while idle).
func (pc *h1Conn) send() error {
	if err := pc.bw.Flush(); err != nil {
		if pc.reused {
			return errStaleConn
		}
		return err
	}
	pc.lr.n = maxResponseHeaderBytes
	if t := pc.t.headerWait; t > 0 {
		// A real deadline, whatever clock idles are kept by; moved only
		// when more than a slack behind, so that a busy connection does
		// not change a timer per request: the head is due within t-slack
		// to t.
		want := time.Now().Add(t).UnixNano()
		if want-pc.rdl > int64(min(time.Second, t/8)) || pc.rdl > want {
			_ = pc.c.SetReadDeadline(time.Unix(0, want))
			pc.rdl = want
		}
	}
	if _, err := pc.br.Peek(1); err != nil {
		if pc.reused && !pc.cancelled.Load() && !isTimeout(err) {
			return errStaleConn
		}
		return timeoutHeaders(err)
	}
	return nil
}

// readResponse reads the origin's answer with net/http's parser, passing
// informational (1xx) answers to got1xx (if set). The final response's
// body returns the connection to the idle stack when read to its end and
// closed.
func (pc *h1Conn) readResponse(ctx context.Context, req *http.Request, stop func() bool, got1xx func(int, textproto.MIMEHeader) error) (*http.Response, error) {
	for informational := 0; ; informational++ {
		res, err := http.ReadResponse(pc.br, req)
		if err != nil {
			return nil, pc.fail(ctx, stop, timeoutHeaders(err))
		}
		if res.StatusCode == http.StatusRequestTimeout && pc.reused && informational == 0 {
			// Servers send an unsolicited 408 on an idle connection they
			// are closing; it does not answer this request.
			return nil, pc.fail(ctx, stop, errStaleConn)
		}
		if res.StatusCode >= 200 || informational >= 5 {
			if res.StatusCode < 200 {
				return nil, pc.fail(ctx, stop, fmt.Errorf("upstream: too many 1xx responses"))
			}
			_ = pc.c.SetReadDeadline(time.Time{})
			pc.rdl = 0
			pc.lr.n = -1
			if res.Body == http.NoBody || res.Body == nil {
				if !stop() || res.Close || pc.br.Buffered() > 0 {
					pc.close()
				} else {
					pc.t.putIdle(pc)
				}
				res.Body = http.NoBody
				return res, nil
			}
			res.Body = &h1Body{rc: res.Body, pc: pc, stop: stop, keep: !res.Close}
			return res, nil
		}
		if res.StatusCode == http.StatusSwitchingProtocols {
			return nil, pc.fail(ctx, stop, errors.New("upstream: 101 Switching Protocols without an Upgrade request"))
		}
		if got1xx != nil {
			if err := got1xx(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
				return nil, pc.fail(ctx, stop, err)
			}
		}
	}
}

// newlineToSpace sanitises header values as Header.Write does.
var newlineToSpace = strings.NewReplacer("\r", " ", "\n", " ")

// excludeOnWrite are the header keys writeRequest writes itself.
var excludeOnWrite = map[string]bool{"User-Agent": true, "Host": true}

// writeRequest writes a bodiless request in origin form, as req.Write
// would, without its formatting allocations: the request line, Host,
// User-Agent only when not empty (ReverseProxy sets it empty to suppress
// Go's default), then the other headers sorted, with newlines in values
// replaced by spaces (Header.WriteSubset). Unusual requests (opaque URLs,
// hosts with control characters) go through req.Write.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if req.URL.Opaque != "" || host == "" || strings.ContainsAny(host, " \t\r\n/\\?#") {
		return req.Write(bw)
	}
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	_, _ = bw.WriteString(req.Method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(path)
	if req.URL.RawQuery != "" || req.URL.ForceQuery {
		_ = bw.WriteByte('?')
		_, _ = bw.WriteString(req.URL.RawQuery)
	}
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(host)
	_, _ = bw.WriteString("\r\n")
	if ua := req.Header["User-Agent"]; len(ua) > 0 && ua[0] != "" {
		_, _ = bw.WriteString("User-Agent: ")
		_, _ = bw.WriteString(newlineToSpace.Replace(ua[0]))
		_, _ = bw.WriteString("\r\n")
	}
	if err := req.Header.WriteSubset(bw, excludeOnWrite); err != nil {
		return err
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// timeoutHeaders turns a read deadline hit while waiting for the response
// headers into the error http.Transport reports, a timeout.
func timeoutHeaders(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	if isTimeout(err) {
		return fmt.Errorf("upstream: timeout awaiting response headers: %w", err)
	}
	return err
}

// h1Body returns the connection to the idle stack once the body was read
// to its end and closed; a body closed early, or broken, closes it.
type h1Body struct {
	rc   io.ReadCloser
	pc   *h1Conn
	stop func() bool
	keep bool
	eof  bool
	done bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, errors.New("upstream: read on closed body")
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof = true
	} else if err != nil {
		b.keep = false
	}
	return n, err
}

// Close never drains: a body closed before its end (the client left in
// the middle of a large or endless response) closes the connection first,
// so that the framing reader's own Close fails fast instead of reading on.
func (b *h1Body) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if b.stop() && b.eof && b.keep && b.pc.br.Buffered() == 0 {
		_ = b.rc.Close() // at EOF: returns at once
		b.pc.t.putIdle(b.pc)
		return nil
	}
	b.pc.close()
	_ = b.rc.Close()
	return nil
}
