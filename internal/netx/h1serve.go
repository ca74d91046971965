package netx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The HTTP/1.1 fast path.
//
// A plain or TLS HTTP/1 connection is first served by a request loop of
// netx's own (serveFast) rather than net/http's: it takes the ordinary
// request of a reading visitor or a flooding bot (GET or HEAD, HTTP/1.1,
// origin-form target, no body, no Upgrade or Expect) and calls the same
// handler with an http.Request and an http.ResponseWriter that behave as
// net/http's do. What it saves is per-request work that net/http does for
// every request whether it needs it or not: a goroutine and a read system
// call to watch for the client going away, two deadline changes, a header
// map per request copied twice, and a lock per read.
//
// The first request that is not of that kind (a body, chunked framing, an
// upgrade, HTTP/1.0, an absolute-form target, Expect) hands the connection
// to net/http for the rest of its life, with the bytes read but not consumed
// replayed first; net/http then answers it exactly as it always did, bad
// requests included. Every byte passes the head inspector in both cases,
// before either parser sees it.
//
// Differences from net/http, each on purpose:
//   - The client going away is noticed only for requests that have run for
//     watchAfter (250 ms): a sweeper starts a background read for those, so
//     that their context is cancelled (a request queued in admission, a
//     tarpit); shorter requests run to completion. net/http pays for the
//     watch on every request.
//   - The idle deadline between requests is moved at most once a second,
//     so a keep-alive connection is closed between IdleTimeout-1s and
//     IdleTimeout after its last request.
//   - A request's context is the connection's: it ends when the
//     connection closes or the client is seen going away, not when
//     ServeHTTP returns (a handler that leaves work behind must stop it
//     itself, as with context.AfterFunc's stop).
//   - Response header fields are written in map order, not sorted.

// fastState values of fastConn.state, besides a handler's start time.
const (
	fastIdle     int64 = 0
	fastWatching int64 = -1
)

// watchAfter is how long a handler runs before its connection is watched for
// the client going away.
const watchAfter = 250 * time.Millisecond

// fastReadBuf is the initial read buffer of a connection; it grows for
// larger heads up to Options.MaxHeaderBytes plus fastHeadSlack.
const (
	fastReadBuf   = 4 << 10
	fastHeadSlack = 1 << 10
	// fastPending is how much body a handler may write before it sets a
	// Content-Length or flushes, and still get one computed for it.
	fastPending = 4 << 10
)

// epoch is the origin of the monotonic handler start times in fastState.
var epoch = time.Now()

// aLongTimeAgo is a read deadline that makes a blocked read return at once.
var aLongTimeAgo = time.Unix(1, 0)

var crlfcrlf = []byte("\r\n\r\n")

// errWriteAfterHandler is returned to a handler that writes to its
// response after ServeHTTP returned (the response is sent by then).
var errWriteAfterHandler = errors.New("netx: response written after the handler returned")

var readBufs = sync.Pool{New: func() any { b := make([]byte, fastReadBuf); return &b }}

// outBufs are the per-response write buffers: a bufio.Writer for the
// connection and room for the body written before the head can be sent.
type outBuf struct {
	bw   *bufio.Writer
	pend []byte
}

var outBufs = sync.Pool{New: func() any {
	return &outBuf{bw: bufio.NewWriterSize(nil, 4<<10), pend: make([]byte, 0, fastPending)}
}}

// fastConn is one HTTP/1 connection served by the fast path. Its fields are
// owned by the connection's goroutine, except state (atomic) and the watch
// fields, which the sweeper and the watch goroutine touch as documented.
type fastConn struct {
	s      *Server
	g      *gen
	hc     *h1Conn
	nc     net.Conn // hc, or h1TLSConn{hc}
	ci     *ConnInfo
	base   context.Context
	remote string

	buf  []byte // read buffer; buf[r:w] is read and not yet consumed
	bufp *[]byte
	r, w int

	dl     int64 // read deadline last set (unix ns)
	dlFor  uint8 // what dl bounds: dlNone, dlHead (the head being read), dlIdle
	served bool  // a request was answered: waits are idle waits

	// state is fastIdle between requests, the handler's start (ns since
	// epoch, > 0) while a handler runs, and fastWatching once the sweeper
	// has started a watch. The connection's goroutine stores the start
	// and swaps back to fastIdle; the sweeper moves a start older than
	// watchAfter to fastWatching (CAS) and then runs watch.
	state atomic.Int64
	// cancel ends base, the context of the connection's requests.
	cancel  context.CancelFunc
	watchWG sync.WaitGroup
	// gone: the watch saw the client close or reset the connection.
	gone atomic.Bool

	// mu orders the read deadline changes of the watch, its stop and
	// Shutdown's kick.
	mu       sync.Mutex
	aborted  bool // the handler ended: the watch must not start reading
	kicked   bool // Shutdown: close when idle
	watchGot bool // the watch read a byte of the next request
	watchB   byte
}

// serveFast serves requests on the connection until one needs net/http,
// then returns true with the unconsumed bytes queued for replay; it returns
// false when the connection was closed or hijacked.
func (s *Server) serveFast(hc *h1Conn, nc net.Conn, rc *rawConn, ci *ConnInfo, g *gen) bool {
	fc := &fastConn{s: s, g: g, hc: hc, nc: nc, ci: ci, remote: rc.RemoteAddr().String()}
	ctx := context.WithValue(context.Background(), http.ServerContextKey, g.h1)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, rc.LocalAddr())
	// One context for the connection's requests: it ends when the
	// connection does (or the watch sees the client go away), so a
	// request costs no context of its own.
	fc.base, fc.cancel = context.WithCancel(context.WithValue(ctx, connInfoKey{}, ci))
	defer fc.cancel()
	fc.bufp = readBufs.Get().(*[]byte)
	fc.buf = *fc.bufp
	rc.fast.Store(fc)
	s.startSweeper()
	defer func() {
		rc.fast.Store(nil)
		fc.releaseBuf()
	}()

	// The first head is due ReadHeaderTimeout after the connection was
	// set up (for plain connections the h2c sniffing already started
	// that clock; TLS cleared its deadline after the handshake).
	fc.setReadDeadline(time.Now().Add(g.o.ReadHeaderTimeout), dlHead)
	for {
		end, ok, err := fc.readHead()
		if err != nil {
			nc.Close()
			return false
		}
		if !ok {
			fc.handoff()
			return true
		}
		req, w, ok := fc.parse(fc.buf[fc.r:end])
		if !ok {
			fc.handoff()
			return true
		}
		fc.r = end
		if fc.r == fc.w {
			fc.r, fc.w = 0, 0
		}
		fc.served = true
		if fc.dlFor == dlHead {
			fc.dlFor = dlNone // that head's deadline; the next one gets its own
		}
		switch fc.serve(req, w) {
		case fastHijacked:
			return false
		case fastClose:
			nc.Close()
			return false
		}
	}
}

// releaseBuf returns the pooled read buffer, if fc still holds it (a grown
// buffer is not pooled).
func (fc *fastConn) releaseBuf() {
	if fc.bufp != nil {
		readBufs.Put(fc.bufp)
		fc.bufp = nil
	}
}

// handoff queues the unconsumed bytes for net/http to read first.
func (fc *fastConn) handoff() {
	if fc.r < fc.w {
		fc.hc.back = append([]byte(nil), fc.buf[fc.r:fc.w]...)
	}
	fc.r, fc.w = 0, 0
}

// What fastConn.dl bounds.
const (
	dlNone uint8 = iota
	dlHead
	dlIdle
)

// setReadDeadline sets the read deadline unless Shutdown kicked the
// connection; it reports false when it did.
func (fc *fastConn) setReadDeadline(t time.Time, what uint8) bool {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.kicked {
		return false
	}
	fc.nc.SetReadDeadline(t)
	fc.dl, fc.dlFor = t.UnixNano(), what
	return true
}

// readHead reads until buf[r:end] holds a whole head. ok is false when the
// head outgrew the buffer's limit (net/http then answers it).
func (fc *fastConn) readHead() (end int, ok bool, err error) {
	scan := fc.r
	for {
		if i := bytes.Index(fc.buf[scan:fc.w], crlfcrlf); i >= 0 {
			return scan + i + 4, true, nil
		}
		if fc.w-fc.r >= 3 {
			scan = fc.w - 3
		}
		if fc.w == len(fc.buf) {
			switch {
			case fc.r > 0:
				n := copy(fc.buf, fc.buf[fc.r:fc.w])
				scan -= fc.r
				fc.r, fc.w = 0, n
			case len(fc.buf) < fc.g.o.MaxHeaderBytes+fastHeadSlack:
				nb := make([]byte, min(2*len(fc.buf), fc.g.o.MaxHeaderBytes+fastHeadSlack))
				copy(nb, fc.buf[:fc.w])
				fc.releaseBuf()
				fc.buf = nb
			default:
				return 0, false, nil
			}
		}
		if err := fc.armRead(); err != nil {
			return 0, false, err
		}
		n, err := fc.nc.Read(fc.buf[fc.w:])
		fc.w += n
		if err != nil && n == 0 {
			return 0, false, err
		}
	}
}

// armRead sets the deadline for a read that may block. While part of a head
// is read, the head is due ReadHeaderTimeout after its first bytes were
// seen (the first head: after the connection was set up). Between
// requests the connection may stay idle for IdleTimeout; that deadline is
// moved only when it is more than a slack (1 s, or an eighth of
// IdleTimeout) behind, so a busy connection does not change a timer per
// request.
func (fc *fastConn) armRead() error {
	o := &fc.g.o
	if fc.r < fc.w || !fc.served {
		if fc.dlFor != dlHead && !fc.setReadDeadline(time.Now().Add(o.ReadHeaderTimeout), dlHead) {
			return net.ErrClosed
		}
		return nil
	}
	if fc.s.shutting.Load() {
		return net.ErrClosed
	}
	now := time.Now()
	slack := min(time.Second, o.IdleTimeout/8)
	if fc.dlFor != dlIdle || fc.dl-now.UnixNano() < int64(o.IdleTimeout-slack) {
		if !fc.setReadDeadline(now.Add(o.IdleTimeout), dlIdle) {
			return net.ErrClosed
		}
	}
	return nil
}

// kick makes an idle connection close (Shutdown); a connection in a
// handler closes after its response.
func (fc *fastConn) kick() {
	fc.mu.Lock()
	fc.kicked = true
	if fc.state.Load() == fastIdle {
		fc.nc.SetReadDeadline(aLongTimeAgo)
	}
	fc.mu.Unlock()
}

// parse builds the request for a head, or reports false for a head the
// fast path leaves to net/http. Every string of the request is a substring
// of one copy of the head.
func (fc *fastConn) parse(head []byte) (*http.Request, *h1Writer, bool) {
	hs := string(head)
	eol := strings.Index(hs, "\r\n")
	line := hs[:eol]
	sp1 := strings.IndexByte(line, ' ')
	sp2 := strings.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1 || line[sp2+1:] != "HTTP/1.1" {
		return nil, nil, false
	}
	var method string
	switch line[:sp1] {
	case http.MethodGet:
		method = http.MethodGet
	case http.MethodHead:
		method = http.MethodHead
	default:
		return nil, nil, false
	}
	target := line[sp1+1 : sp2]
	x := new(fastReq) // the URL and the response writer, in one allocation
	if !parseTarget(target, &x.url) {
		return nil, nil, false
	}

	fields := hs[eol+2 : len(hs)-2] // without the request line and the final CRLF
	n := strings.Count(fields, "\r\n")
	h := make(http.Header, n)
	vals := make([]string, n)
	var host string
	closeReq := false
	k := 0
	for len(fields) > 0 {
		e := strings.Index(fields, "\r\n")
		fl := fields[:e]
		fields = fields[e+2:]
		colon := strings.IndexByte(fl, ':')
		if colon <= 0 {
			return nil, nil, false
		}
		key := canonicalKey(fl[:colon])
		v := textproto.TrimString(fl[colon+1:])
		switch key {
		case "Host":
			host = v
			continue
		case "Content-Length":
			if v != "0" {
				return nil, nil, false
			}
		case "Transfer-Encoding", "Upgrade", "Expect":
			return nil, nil, false
		case "Connection":
			closeReq = closeReq || hasToken(v, "close")
		}
		vals[k] = v
		if prev, ok := h[key]; ok {
			h[key] = append(prev, v)
		} else {
			h[key] = vals[k : k+1 : k+1]
		}
		k++
	}
	if pr := h["Pragma"]; len(pr) > 0 && pr[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	r := http.Request{
		Method:     method,
		URL:        &x.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Close:      closeReq,
		Host:       host,
		RemoteAddr: fc.remote,
		RequestURI: target,
		TLS:        fc.ci.TLS,
	}
	return r.WithContext(fc.base), &x.w, true
}

// fastReq holds what a request needs beside its http.Request.
type fastReq struct {
	url url.URL
	w   h1Writer
}

// parseTarget parses an origin-form request target into u as
// url.ParseRequestURI does, without its allocations for the common path of
// letters, digits and the characters a path never escapes.
func parseTarget(target string, u *url.URL) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	path, query, hasQuery := strings.Cut(target, "?")
	for i := 0; i < len(path); i++ {
		if !plainPathByte[path[i]] {
			pu, err := url.ParseRequestURI(target)
			if err != nil {
				return false
			}
			*u = *pu
			return true
		}
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
	return true
}

// plainPathByte marks the bytes a path may hold and still be its own
// unescaped form, so that url.URL.Path is the target's path and RawPath
// stays empty: letters, digits, "-._~" and the sub-delimiters and ":@/"
// that url.PathEscape leaves alone in a path.
var plainPathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~$&+,/:;=@" {
		t[c] = true
	}
	return
}()

// canonicalKey returns the canonical form of a header name (a token, as the
// inspector checked): the name itself when it already is canonical, a
// constant for common names written otherwise, or a new string.
func canonicalKey(name string) string {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return textproto.CanonicalMIMEHeaderKey(name)
		}
		upper = c == '-'
	}
	return name
}

// hasToken reports whether the comma-separated list v holds token
// (ASCII case-insensitive).
func hasToken(v, token string) bool {
	for part := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(textproto.TrimString(part), token) {
			return true
		}
	}
	return false
}

// Outcomes of serving one request.
const (
	fastKeep = iota
	fastClose
	fastHijacked
)

// serve runs the handler for req and finishes the response.
func (fc *fastConn) serve(req *http.Request, w *h1Writer) int {
	ob := outBufs.Get().(*outBuf)
	ob.bw.Reset(fc.nc)
	*w = h1Writer{fc: fc, req: req, ob: ob, clen: -1, isHead: req.Method == http.MethodHead}
	fc.state.Store(int64(time.Since(epoch)) + 1)
	panicked := fc.run(w, req)
	if fc.state.Swap(fastIdle) == fastWatching {
		fc.stopWatch()
	}
	defer func() {
		w.done.Store(true)
		ob.bw.Reset(nil)
		ob.pend = ob.pend[:0]
		outBufs.Put(ob)
	}()
	if w.hijacked {
		return fastHijacked
	}
	if panicked {
		return fastClose
	}
	w.finish()
	if w.closeAfter || w.werr != nil || fc.gone.Load() || fc.s.shutting.Load() {
		return fastClose
	}
	return fastKeep
}

// run calls the handler, recovering a panic as net/http does: logged
// (except http.ErrAbortHandler) and the connection closed.
func (fc *fastConn) run(w *h1Writer, req *http.Request) (panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			panicked = true
			if p != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				fc.g.o.Logger.Error("netx: panic serving request", "remote", fc.remote, "panic", fmt.Sprint(p), "stack", string(buf))
			}
		}
	}()
	fc.s.hf.ServeHTTP(w, req)
	return false
}

// watch runs for a handler that has run past watchAfter: it reads from the
// connection so that a client going away cancels the request's context. A
// byte that arrives meanwhile (the next pipelined request) is kept for the
// connection's goroutine.
func (fc *fastConn) watch() {
	defer fc.watchWG.Done()
	fc.mu.Lock()
	if fc.aborted {
		fc.mu.Unlock()
		return
	}
	fc.nc.SetReadDeadline(time.Time{})
	fc.mu.Unlock()
	var b [1]byte
	n, err := fc.nc.Read(b[:])
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if n == 1 {
		fc.watchGot, fc.watchB = true, b[0]
		return
	}
	if err != nil && !fc.aborted {
		fc.gone.Store(true)
		fc.cancel()
	}
}

// stopWatch ends a running watch and takes what it read.
func (fc *fastConn) stopWatch() {
	fc.mu.Lock()
	fc.aborted = true
	fc.nc.SetReadDeadline(aLongTimeAgo)
	fc.mu.Unlock()
	fc.watchWG.Wait()
	fc.mu.Lock()
	fc.aborted = false
	fc.dl, fc.dlFor = 0, dlNone // re-armed before the next read
	got, b := fc.watchGot, fc.watchB
	fc.watchGot = false
	kicked := fc.kicked
	fc.mu.Unlock()
	if kicked {
		fc.nc.SetReadDeadline(aLongTimeAgo)
	}
	if got {
		if fc.w == len(fc.buf) {
			nb := append(fc.buf, b)
			fc.releaseBuf()
			fc.buf = nb[:cap(nb)]
			fc.w++
		} else {
			fc.buf[fc.w] = b
			fc.w++
		}
	}
}

// startSweeper starts the goroutine that watches long-running requests of
// fast-path connections, once per Server; it ends at Shutdown.
func (s *Server) startSweeper() {
	s.sweepOnce.Do(func() {
		stop := make(chan struct{})
		s.mu.Lock()
		s.sweepStop = stop
		s.mu.Unlock()
		go s.sweep(stop)
	})
}

// stopSweeper ends the sweeper (Shutdown).
func (s *Server) stopSweeper() {
	s.sweepOnce.Do(func() {}) // no sweeper may start after this
	s.mu.Lock()
	if s.sweepStop != nil {
		close(s.sweepStop)
		s.sweepStop = nil
	}
	s.mu.Unlock()
}

func (s *Server) sweep(stop chan struct{}) {
	t := time.NewTicker(watchAfter)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := int64(time.Since(epoch))
		s.mu.Lock()
		for rc := range s.conns {
			fc := rc.fast.Load()
			if fc == nil {
				continue
			}
			if st := fc.state.Load(); st > 0 && now-st >= int64(watchAfter) {
				fc.watchWG.Add(1)
				if fc.state.CompareAndSwap(st, fastWatching) {
					go fc.watch()
				} else {
					fc.watchWG.Done()
				}
			}
		}
		s.mu.Unlock()
	}
}

// h1Writer is the fast path's http.ResponseWriter. It follows net/http's
// response rules: the status line and header are written when the first
// body bytes go out, a Content-Length is computed when the handler returns
// having written at most fastPending bytes without one, chunked framing is
// used otherwise, Date and a sniffed Content-Type are added when absent,
// HEAD, 1xx, 204 and 304 answers carry no body, and Connection: close ends
// the connection. It implements http.Flusher, http.Hijacker and the
// deadline methods of http.ResponseController.
type h1Writer struct {
	fc     *fastConn
	req    *http.Request
	ob     *outBuf
	header http.Header // the handler's
	snap   http.Header // the header as of WriteHeader, when sent later
	status int
	clen   int64 // declared or computed Content-Length, -1 none
	// written counts body bytes accepted from the handler.
	written int64
	werr    error

	// done is set when the response is complete (see finish).
	done atomic.Bool

	isHead, wroteHeader, headSent, handlerDone bool
	chunking, closeAfter, hijacked             bool
	trailers                                   []string // declared trailer names
}

var (
	_ io.StringWriter     = (*h1Writer)(nil)
	_ http.ResponseWriter = (*h1Writer)(nil)
	_ http.Flusher        = (*h1Writer)(nil)
	_ http.Hijacker       = (*h1Writer)(nil)
)

func (w *h1Writer) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func bodyAllowedForStatus(status int) bool {
	return !(status >= 100 && status <= 199 || status == 204 || status == 304)
}

func (w *h1Writer) WriteHeader(code int) {
	if w.hijacked || w.wroteHeader || w.done.Load() {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// Informational: sent at once; the final status follows.
		bw := w.ob.bw
		writeStatusLine(bw, code)
		for k, vv := range w.header {
			if k == "Content-Length" || k == "Transfer-Encoding" {
				continue
			}
			writeField(bw, k, vv)
		}
		bw.WriteString("\r\n")
		w.noteErr(bw.Flush())
		return
	}
	w.wroteHeader = true
	w.status = code
	h := w.header
	badCL := false
	if cl := h.Get("Content-Length"); cl != "" {
		if v, ok := parseDigits(cl); ok {
			w.clen = v
		} else {
			badCL = true
			w.fc.g.o.Logger.Debug("netx: invalid Content-Length from handler", "value", cl)
		}
	}
	if !bodyAllowedForStatus(code) ||
		w.clen >= 0 && (len(h["Content-Type"]) > 0 || h.Get("Content-Encoding") != "" || h.Get("Transfer-Encoding") != "") {
		// Nothing the body could change: send the head now.
		w.sendHead(nil, 0)
	} else if h != nil {
		// As net/http: the head sent later is the header as of now (an
		// invalid Content-Length included; the handler's copy loses it).
		w.snap = h.Clone()
	}
	if badCL {
		h.Del("Content-Length")
	}
}

func (w *h1Writer) noteErr(err error) {
	if err != nil && w.werr == nil {
		w.werr = err
	}
}

func (w *h1Writer) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.done.Load() {
		return 0, errWriteAfterHandler
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowedForStatus(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.clen != -1 && w.written > w.clen {
		return 0, http.ErrContentLength
	}
	if !w.headSent {
		if len(w.ob.pend)+len(p) <= cap(w.ob.pend) {
			w.ob.pend = append(w.ob.pend, p...)
			return len(p), nil
		}
		w.sendPending(p)
	}
	w.body(p)
	if w.werr != nil {
		return 0, w.werr
	}
	return len(p), nil
}

// WriteString is Write for a string, without converting it first when the
// head is sent already and the body goes straight to the buffer.
func (w *h1Writer) WriteString(s string) (int, error) {
	if w.done.Load() || !w.headSent || w.chunking || w.isHead || w.hijacked || !bodyAllowedForStatus(w.status) ||
		w.clen != -1 && w.written+int64(len(s)) > w.clen {
		return w.Write([]byte(s))
	}
	w.written += int64(len(s))
	_, err := w.ob.bw.WriteString(s)
	w.noteErr(err)
	if w.werr != nil {
		return 0, w.werr
	}
	return len(s), nil
}

// sendPending sends the head with the body written so far; next is the
// write that did not fit, whose first bytes count for sniffing the
// Content-Type as they would have in net/http's buffer.
func (w *h1Writer) sendPending(next []byte) {
	pend := w.ob.pend
	sniff := pend
	if len(pend) < sniffLen && len(next) > 0 {
		var b [sniffLen]byte
		n := copy(b[:], pend)
		n += copy(b[n:], next)
		sniff = b[:n]
	}
	w.sendHead(sniff, len(pend))
	w.body(pend)
	w.ob.pend = pend[:0]
}

// sniffLen is what http.DetectContentType looks at.
const sniffLen = 512

// body writes response body bytes with the framing chosen.
func (w *h1Writer) body(p []byte) {
	if w.isHead || len(p) == 0 {
		return
	}
	bw := w.ob.bw
	if w.chunking {
		var hex [16]byte
		b := strconv.AppendUint(hex[:0], uint64(len(p)), 16)
		bw.Write(b)
		bw.WriteString("\r\n")
		bw.Write(p)
		_, err := bw.WriteString("\r\n")
		w.noteErr(err)
		return
	}
	_, err := bw.Write(p)
	w.noteErr(err)
}

// Flush sends the head and what is buffered to the client.
func (w *h1Writer) Flush() { w.FlushError() }

// FlushError is what http.ResponseController.Flush calls.
func (w *h1Writer) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if w.done.Load() {
		return errWriteAfterHandler
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendPending(nil)
	}
	w.noteErr(w.ob.bw.Flush())
	return w.werr
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *h1Writer) SetReadDeadline(t time.Time) error  { return w.fc.nc.SetReadDeadline(t) }
func (w *h1Writer) SetWriteDeadline(t time.Time) error { return w.fc.nc.SetWriteDeadline(t) }

// EnableFullDuplex serves http.ResponseController; requests on the fast
// path have no body, so there is nothing to do.
func (w *h1Writer) EnableFullDuplex() error { return nil }

// Hijack hands the connection to the caller: the head already sent is
// flushed, deadlines are cleared and the bytes read past this request come
// first from the returned reader.
func (w *h1Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked || w.done.Load() {
		return nil, nil, http.ErrHijacked
	}
	fc := w.fc
	if fc.state.Swap(fastIdle) == fastWatching {
		fc.stopWatch()
	}
	if w.headSent {
		if err := w.ob.bw.Flush(); err != nil {
			return nil, nil, err
		}
	}
	w.hijacked = true
	fc.nc.SetDeadline(time.Time{})
	var rest io.Reader = fc.nc
	if fc.r < fc.w {
		rest = io.MultiReader(bytes.NewReader(append([]byte(nil), fc.buf[fc.r:fc.w]...)), fc.nc)
	}
	fc.r, fc.w = 0, 0
	rw := bufio.NewReadWriter(bufio.NewReader(rest), bufio.NewWriter(fc.nc))
	return fc.nc, rw, nil
}

// finish completes the response after the handler returned.
func (w *h1Writer) finish() {
	w.handlerDone = true
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		w.sendPending(nil)
	}
	bw := w.ob.bw
	if w.chunking {
		bw.WriteString("0\r\n")
		w.writeTrailers()
		bw.WriteString("\r\n")
	}
	if !w.isHead && w.clen != -1 && bodyAllowedForStatus(w.status) && w.written != w.clen {
		w.closeAfter = true // the body fell short of its Content-Length
	}
	// Done before the last flush: a handler that kept the writer and
	// writes once its client has the answer gets an error, not a share of
	// the pooled buffers of another response.
	w.done.Store(true)
	w.noteErr(bw.Flush())
}

// writeTrailers writes the declared trailers and the http.TrailerPrefix
// fields the handler set.
func (w *h1Writer) writeTrailers() {
	bw := w.ob.bw
	for _, k := range w.trailers {
		if vv := w.header[k]; len(vv) > 0 {
			writeField(bw, k, vv)
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && name != "" {
			writeField(bw, name, vv)
		}
	}
}

// sendHead writes the status line and header, deciding the framing as
// net/http's chunkWriter.writeHeader does: p is what the Content-Type is
// sniffed from and n the body bytes written so far (the Content-Length
// when the handler is done).
func (w *h1Writer) sendHead(p []byte, n int) {
	w.headSent = true
	h := w.snap
	if h == nil {
		h = w.header
	}
	status := w.status
	bodyOK := bodyAllowedForStatus(status)
	hasTrailers := len(h["Trailer"]) > 0
	te := h.Get("Transfer-Encoding")
	hasTE := te != ""
	var autoCL bool
	if w.handlerDone && !hasTE && bodyOK && len(h["Content-Length"]) == 0 && (!w.isHead || n > 0) && !hasTrailers && !prefixTrailers(h) {
		w.clen = int64(n)
		autoCL = true
	}
	hasCL := w.clen != -1
	if w.req.Close || h.Get("Connection") == "close" || w.fc.s.shutting.Load() {
		w.closeAfter = true
	}
	var exclCL, exclTE, exclCT, exclConn bool
	var contentType string
	if bodyOK {
		_, haveType := h["Content-Type"]
		if !haveType && !hasTE && h.Get("Content-Encoding") == "" && len(p) > 0 {
			contentType = http.DetectContentType(p)
		}
	} else {
		exclCL, exclTE = true, true
		exclCT = status == http.StatusNotModified
	}
	_, haveDate := h["Date"]
	if hasCL && hasTE && te != "identity" {
		// As net/http: the length is not sent, but a body that falls
		// short of it still ends the connection.
		exclCL, hasCL, autoCL = true, false, false
	}
	setChunked := false
	switch {
	case w.isHead || !bodyOK:
		exclTE = true
	case hasCL:
		exclTE = true
	case hasTE && te == "identity":
		w.closeAfter = true
		exclTE = true
	default:
		w.chunking, setChunked = true, true
		if te == "chunked" {
			exclTE = true
		}
	}
	if w.chunking {
		exclCL = true
		if hasTrailers {
			for _, v := range h["Trailer"] {
				for name := range strings.SplitSeq(v, ",") {
					if name = textproto.TrimString(name); name != "" {
						w.trailers = append(w.trailers, http.CanonicalHeaderKey(name))
					}
				}
			}
		}
	}
	setClose := false
	if w.closeAfter && !hasToken(h.Get("Connection"), "close") {
		exclConn, setClose = true, true
	}

	bw := w.ob.bw
	writeStatusLine(bw, status)
	for k, vv := range h {
		switch k {
		case "Content-Length":
			if exclCL {
				continue
			}
		case "Transfer-Encoding":
			if exclTE {
				continue
			}
		case "Content-Type":
			if exclCT {
				continue
			}
		case "Connection":
			if exclConn {
				continue
			}
		default:
			if strings.HasPrefix(k, http.TrailerPrefix) {
				continue
			}
		}
		writeField(bw, k, vv)
	}
	if contentType != "" {
		bw.WriteString("Content-Type: ")
		bw.WriteString(contentType)
		bw.WriteString("\r\n")
	}
	if setClose {
		bw.WriteString("Connection: close\r\n")
	}
	if setChunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if !haveDate {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	if autoCL {
		var num [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(num[:0], w.clen, 10))
		bw.WriteString("\r\n")
	}
	_, err := bw.WriteString("\r\n")
	w.noteErr(err)
}

// prefixTrailers reports whether h holds http.TrailerPrefix fields.
func prefixTrailers(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// statusLines holds the status lines of the codes net/http knows.
var statusLines = func() (m [600]string) {
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			m[code] = fmt.Sprintf("HTTP/1.1 %03d %s\r\n", code, text)
		}
	}
	return
}()

func writeStatusLine(bw *bufio.Writer, code int) {
	if code < len(statusLines) && statusLines[code] != "" {
		bw.WriteString(statusLines[code])
		return
	}
	fmt.Fprintf(bw, "HTTP/1.1 %03d status code %d\r\n", code, code)
}

// writeField writes one header field as net/http does: invalid names are
// dropped, CR and LF in values become spaces, values are trimmed.
func writeField(bw *bufio.Writer, k string, vv []string) {
	if !validFieldName(k) {
		return
	}
	for _, v := range vv {
		bw.WriteString(k)
		bw.WriteString(": ")
		if needsClean(v) {
			v = textproto.TrimString(newlineToSpace.Replace(v))
		}
		bw.WriteString(v)
		bw.WriteString("\r\n")
	}
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isToken[k[i]] {
			return false
		}
	}
	return true
}

func needsClean(v string) bool {
	if v == "" {
		return false
	}
	if c := v[0]; c == ' ' || c == '\t' {
		return true
	}
	if c := v[len(v)-1]; c == ' ' || c == '\t' {
		return true
	}
	return strings.IndexByte(v, '\n') >= 0 || strings.IndexByte(v, '\r') >= 0
}

// The Date header value, formatted once a second.
var dateCache struct {
	sec  atomic.Int64
	text atomic.Pointer[string]
}

func httpDate() string {
	now := time.Now()
	sec := now.Unix()
	if dateCache.sec.Load() == sec {
		if p := dateCache.text.Load(); p != nil {
			return *p
		}
	}
	s := now.UTC().Format(http.TimeFormat)
	dateCache.text.Store(&s)
	dateCache.sec.Store(sec)
	return s
}
