package netx

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fastBehaviours is the handler of the differential tests: what it does is
// chosen by the path, and /echo describes the request it got.
func fastBehaviours() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimSuffix(r.URL.Path, "/") {
		case "/cl":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/cl-nosniff": // a declared length without a type: sniffed
			w.Header().Set("Content-Length", "14")
			io.WriteString(w, "<html>hi</html")
		case "/small":
			io.WriteString(w, "<!DOCTYPE html><p>small page</p>")
		case "/big":
			w.Header().Set("X-Big", "1")
			for i := 0; i < 40; i++ {
				io.WriteString(w, strings.Repeat(string(rune('a'+i%26)), 333))
			}
		case "/one-big-write":
			w.Write(bytes.Repeat([]byte("<p>x</p>"), 2000))
		case "/flush":
			io.WriteString(w, "part one;")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part two")
		case "/empty":
		case "/status204":
			w.WriteHeader(http.StatusNoContent)
			_, err := io.WriteString(w, "nope")
			w.Header().Set("X-Late", "set after the head") // ignored by both
			if !errors.Is(err, http.ErrBodyNotAllowed) {
				panic("write after 204 succeeded")
			}
		case "/status304":
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", "10")
			w.Header().Set("ETag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		case "/status404":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "not here\n")
		case "/odd-status":
			w.WriteHeader(599)
			io.WriteString(w, "odd")
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/short":
			w.Header().Set("Content-Length", "10")
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "12345")
		case "/long":
			w.Header().Set("Content-Length", "5")
			w.Header().Set("Content-Type", "text/plain")
			_, err := io.WriteString(w, "123456789")
			if !errors.Is(err, http.ErrContentLength) {
				panic("long write succeeded")
			}
			io.WriteString(w, "12345")
		case "/bad-cl":
			w.Header().Set("Content-Length", "12x")
			io.WriteString(w, "bad length")
		case "/early-hints":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "after hints")
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum, x-other")
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "body with trailers")
			w.Header().Set("X-Sum", "42")
			w.Header().Set("X-Other", "7")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		case "/identity":
			w.Header().Set("Transfer-Encoding", "identity")
			io.WriteString(w, "until close")
		case "/te-chunked":
			w.Header().Set("Transfer-Encoding", "chunked")
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "chunked anyway")
		case "/header-after":
			w.Header().Set("X-Before", "1")
			w.WriteHeader(http.StatusAccepted)
			w.Header().Set("X-After", "1")
			io.WriteString(w, "accepted")
		case "/bad-header":
			w.Header()["X-Split"] = []string{"a\r\nInjected: yes", "  padded  "}
			w.Header()["Bad Name"] = []string{"dropped"}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "sanitised")
		case "/no-date":
			w.Header()["Date"] = nil
			w.Header()["Content-Type"] = nil
			io.WriteString(w, "<html>no date, no type</html>")
		case "/encoded":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write([]byte{0x1f, 0x8b, 0, 0})
		default: // "/echo" and anything else
			var b strings.Builder
			fmt.Fprintf(&b, "method=%s\nuri=%s\npath=%q\nrawpath=%q\nquery=%q\nforce=%v\nhost=%s\nproto=%s %d.%d\nclose=%v\nclen=%d\ntls=%v\n",
				r.Method, r.RequestURI, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, r.URL.ForceQuery, r.Host,
				r.Proto, r.ProtoMajor, r.ProtoMinor, r.Close, r.ContentLength, r.TLS != nil)
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			fmt.Fprintf(&b, "remote=%s\nbody-nil=%v\n", host, r.Body == nil)
			keys := make([]string, 0, len(r.Header))
			for k := range r.Header {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "%s=%q\n", k, r.Header[k])
			}
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(&b, "body=%q\n", body)
			if v := r.Context().Value(http.LocalAddrContextKey); v == nil {
				b.WriteString("no local addr in context\n")
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, b.String())
		}
	})
}

// exchange is what a client saw for one request on a connection.
type exchange struct {
	Status        int
	Header        http.Header
	Body          string
	Trailer       http.Header
	ContentLength int64
	Chunked       bool
	Closed        bool // the server closed the connection after the response
	Err           string
}

// roundTrip sends raw on a fresh connection to addr and reads one
// response, then checks whether the server keeps the connection open.
func roundTrip(t *testing.T, addr, raw, method string) exchange {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return exchange{Err: err.Error()}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	ex := exchange{Status: resp.StatusCode, Header: resp.Header, Body: string(body), Trailer: resp.Trailer,
		ContentLength: resp.ContentLength, Chunked: slices.Contains(resp.TransferEncoding, "chunked")}
	if err != nil {
		ex.Err = "body: " + err.Error()
	}
	ex.Header.Del("Date")
	if len(ex.Trailer) == 0 {
		ex.Trailer = nil
	}
	// A second request on the same connection: answered, or closed.
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET /cl HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		ex.Closed = true
		return ex
	}
	if _, err := http.ReadResponse(br, &http.Request{Method: "GET"}); err != nil {
		ex.Closed = true
	}
	return ex
}

// TestFastPathMatchesNetHTTP sends the same requests to the fast path and
// to net/http's own server running the same handler, and compares what a
// client sees: status, header (but Date), body, framing, trailers and
// whether the connection stays open.
func TestFastPathMatchesNetHTTP(t *testing.T) {
	h := fastBehaviours()
	ref := httptest.NewUnstartedServer(h)
	ref.Config.DisableGeneralOptionsHandler = true // as netx's own net/http server
	ref.Start()
	t.Cleanup(ref.Close)
	fast := startServer(t, Options{}, h)
	refAddr := strings.TrimPrefix(ref.URL, "http://")

	paths := []string{"/cl", "/cl-nosniff", "/small", "/big", "/one-big-write", "/flush", "/empty", "/status204",
		"/status304", "/status404", "/odd-status", "/close", "/short", "/long", "/bad-cl", "/early-hints",
		"/trailer", "/identity", "/te-chunked", "/header-after", "/bad-header", "/no-date", "/encoded", "/echo"}
	var reqs []string
	for _, p := range paths {
		for _, m := range []string{"GET", "HEAD"} {
			reqs = append(reqs, m+" "+p+" HTTP/1.1\r\nHost: example.org\r\nUser-Agent: t\r\n\r\n")
		}
	}
	// Requests that only /echo tells apart.
	for _, head := range []string{
		"GET /echo HTTP/1.1\r\nHost: example.org\r\n\r\n",
		"GET /echo?q=1&r=%20x HTTP/1.1\r\nHost: example.org:8080\r\nAccept: a\r\nAccept: b\r\n\r\n",
		"GET /echo? HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /echo?? HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /echo/a%20b/c%2Fd HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /echo/caf%C3%A9!*'() HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /echo/$&+,:;=@-._~ HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /echo/a%zz HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET //echo//x/../y HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /echo HTTP/1.1\r\nhost: lower.example\r\nuser-agent: lower\r\nx-forwarded-for: 1.2.3.4\r\nCONTENT-TYPE: text/plain\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: h\r\nX_Under_Score: 1\r\nx-a-b-c: 2\r\nWWW-Authenticate: 3\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\nCache-Control: max-age=0\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nCookie: b=2\r\nX-Empty:\r\nX-Spaces:   v   \r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: \r\n\r\n",
		"HEAD /echo HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: h\r\nCookie: " + strings.Repeat("c", 10<<10) + "\r\n\r\n", // grows the read buffer
		// Left to net/http by the fast path:
		"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
		"POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
		"GET /echo HTTP/1.0\r\n\r\n",
		"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET http://other.example/echo?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		"DELETE /echo HTTP/1.1\r\nHost: h\r\n\r\n",
		"get /echo HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /echo HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\n\r\n",
	} {
		reqs = append(reqs, head)
	}
	for _, raw := range reqs {
		method, _, _ := strings.Cut(raw, " ")
		want := roundTrip(t, refAddr, raw, method)
		got := roundTrip(t, fast.addr, raw, method)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q: fast path differs from net/http (-net/http +fast):\n%s", raw, diff)
		}
	}
}

// TestFastPathPipelinedHandoff pipelines requests the fast path serves and
// requests it leaves to net/http on one connection: all are answered, in
// order.
func TestFastPathPipelinedHandoff(t *testing.T) {
	ts := startServer(t, Options{}, fastBehaviours())
	c := dialFrom(t, "127.0.0.1", ts.addr)
	reqs := "GET /echo?n=1 HTTP/1.1\r\nHost: h\r\n\r\n" +
		"HEAD /echo?n=2 HTTP/1.1\r\nHost: h\r\n\r\n" +
		"POST /echo?n=3 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" +
		"GET /echo?n=4 HTTP/1.1\r\nHost: h\r\n\r\n"
	if _, err := io.WriteString(c, reqs); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i, method := range []string{"GET", "HEAD", "POST", "GET"} {
		resp := readResponse(t, br, method)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("response %d: status %d", i+1, resp.StatusCode)
		}
		if method == "HEAD" {
			continue
		}
		if want := fmt.Sprintf("query=\"n=%d\"", i+1); !strings.Contains(string(body), want) {
			t.Fatalf("response %d is not for request %d:\n%s", i+1, i+1, body)
		}
		if i == 2 && !strings.Contains(string(body), `body="abc"`) {
			t.Fatalf("POST body lost:\n%s", body)
		}
	}
}

// TestFastPathClientGone: a client that sends a request and goes away has
// the request's context cancelled once the handler has run a while (the
// sweeper's watch), so that queued work for it is dropped.
func TestFastPathClientGone(t *testing.T) {
	canceled := make(chan time.Duration, 1)
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		select {
		case <-r.Context().Done():
			canceled <- time.Since(start)
		case <-time.After(10 * time.Second):
			canceled <- -1
		}
	}))
	c := dialFrom(t, "127.0.0.1", ts.addr)
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the request reaches the handler before the close
	c.Close()
	select {
	case d := <-canceled:
		if d < 0 || d > 3*watchAfter {
			t.Fatalf("context cancelled after %v, want within %v", d, 3*watchAfter)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("handler did not return")
	}
}

// TestFastPathSlowHandlerPipelined: a request that arrives while a slow
// handler runs (and the watch reads the connection) is kept and answered
// after it; a client that stays is never cancelled.
func TestFastPathSlowHandlerPipelined(t *testing.T) {
	var canceled atomic.Int32
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(4 * watchAfter):
			case <-r.Context().Done():
				canceled.Add(1)
			}
		}
		io.WriteString(w, r.URL.Path)
	}))
	c := dialFrom(t, "127.0.0.1", ts.addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	time.Sleep(2 * watchAfter) // the watch is reading now
	io.WriteString(c, "GET /second HTTP/1.1\r\nHost: h\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"/slow", "/second"} {
		resp := readResponse(t, br, "GET")
		body, _ := io.ReadAll(resp.Body)
		if string(body) != want {
			t.Fatalf("body %q, want %q", body, want)
		}
	}
	if n := canceled.Load(); n != 0 {
		t.Fatalf("%d requests of a client that stayed were cancelled", n)
	}
}

// TestFastPathHijackDrop: a handler that hijacks the connection owns it
// (the fast path neither answers nor closes it), and SetLinger reaches the
// TCP connection so that a drop resets it.
func TestFastPathHijackDrop(t *testing.T) {
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		if r.URL.Path == "/raw" {
			rest, _ := brw.Reader.Peek(brw.Reader.Buffered())
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(rest), rest)
			conn.Close()
			return
		}
		l, ok := conn.(interface{ SetLinger(int) error })
		if !ok {
			t.Errorf("hijacked %T has no SetLinger", conn)
		} else {
			l.SetLinger(0)
		}
		conn.Close()
	}))
	// Pipelined bytes after the hijacked request go to the hijacker.
	c := dialFrom(t, "127.0.0.1", ts.addr)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /raw HTTP/1.1\r\nHost: h\r\n\r\nEXTRA")
	time.Sleep(20 * time.Millisecond)
	resp := readResponse(t, bufio.NewReader(c), "GET")
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || !strings.HasPrefix("EXTRA", string(body)) {
		t.Fatalf("hijacked answer: %d %q", resp.StatusCode, body)
	}
	d := dialFrom(t, "127.0.0.1", ts.addr)
	d.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(d, "GET /drop HTTP/1.1\r\nHost: h\r\n\r\n")
	_, err := d.Read(make([]byte, 1))
	if !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("dropped connection read: %v", err)
	}
	if !isReset(err) {
		t.Fatalf("dropped connection ended with %v, want a reset", err)
	}
}

// syncBuffer is a bytes.Buffer for a logger written from other goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestFastPathPanic: a panicking handler closes the connection without an
// answer; http.ErrAbortHandler is not logged, other panics are.
func TestFastPathPanic(t *testing.T) {
	var logged syncBuffer
	o := Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	ts := startServer(t, o, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	}))
	for _, p := range []string{"/abort", "/boom"} {
		c := dialFrom(t, "127.0.0.1", ts.addr)
		io.WriteString(c, "GET "+p+" HTTP/1.1\r\nHost: h\r\n\r\n")
		if !closedByPeer(c, 3*time.Second) {
			t.Fatalf("%s: connection not closed", p)
		}
	}
	waitFor(t, "panic logged", 3*time.Second, func() bool { return strings.Contains(logged.String(), "boom") })
	if strings.Contains(logged.String(), "abort") {
		t.Fatalf("ErrAbortHandler logged: %s", logged.String())
	}
}

// TestFastPathShutdown: at Shutdown an idle keep-alive connection is
// closed at once and a request in flight is finished with Connection:
// close.
func TestFastPathShutdown(t *testing.T) {
	release := make(chan struct{})
	s, err := NewServer(Options{Logger: quietLogger()}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		io.WriteString(w, "done")
	}))
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	addr := l.Addr().String()

	idle := dialFrom(t, "127.0.0.1", addr)
	idle.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(idle, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
	ibr := bufio.NewReader(idle)
	readResponse(t, ibr, "GET")

	busy := dialFrom(t, "127.0.0.1", addr)
	busy.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(busy, "GET /hold HTTP/1.1\r\nHost: h\r\n\r\n")
	waitFor(t, "held request in the handler", 3*time.Second, func() bool { return s.Stats().Open == 2 })

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	start := time.Now()
	if _, err := ibr.ReadByte(); err == nil {
		t.Fatal("idle connection got bytes at shutdown")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("idle connection closed after %v", d)
	}
	close(release)
	resp := readResponse(t, bufio.NewReader(busy), "GET")
	if body, _ := io.ReadAll(resp.Body); string(body) != "done" || !resp.Close {
		t.Fatalf("in-flight request at shutdown: %q, close=%v", body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
}

// FuzzFastParse checks the fast path's head parser against
// http.ReadRequest: every head the inspector passes and the fast path
// takes must give the same request.
func FuzzFastParse(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a/b?c=d&e HTTP/1.1\r\nHost: example.org:80\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n",
		"HEAD /%41%zz? HTTP/1.1\r\nhost: h\r\naccept: a\r\nAccept: b\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\nConnection: Close\r\n\r\n",
		"GET /é?ü HTTP/1.1\r\nHost: h\r\nX:  \t y \t\r\n\r\n",
		"GET /;a=b/@:$ HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add(s)
	}
	fc := &fastConn{base: context.Background(), remote: "192.0.2.1:1234", ci: &ConnInfo{}}
	f.Fuzz(func(t *testing.T, raw string) {
		var in h1Inspector
		in.init(DefaultMaxHeaderBytes, DefaultMaxHeaderCount)
		end := strings.Index(raw, "\r\n\r\n")
		if end < 0 {
			return
		}
		head := []byte(raw[:end+4])
		if rel, sub := in.feed(head); sub != nil || rel != len(head) || in.violation.Load() != 0 {
			return
		}
		got, _, ok := fc.parse(head)
		if !ok {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("fast path took %q, which net/http refuses: %v", head, err)
		}
		if want.Header.Get("Content-Length") == "" {
			want.ContentLength = 0
		}
		type view struct {
			Method, Proto, Host, RequestURI string
			URL                             url.URL
			Header                          http.Header
			Close                           bool
			ContentLength                   int64
		}
		v := func(r *http.Request) view {
			return view{r.Method, r.Proto, r.Host, r.RequestURI, *r.URL, r.Header, r.Close, r.ContentLength}
		}
		if diff := cmp.Diff(v(want), v(got)); diff != "" {
			t.Fatalf("%q (-net/http +fast):\n%s", head, diff)
		}
	})
}

// FuzzFastServe sends arbitrary bytes to a server on the fast path: it
// must never panic or hang, and whatever it answers must parse as HTTP.
func FuzzFastServe(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /echo HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /small HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx",
		"HEAD /big HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGARBAGE\r\n\r\n",
		"GET /flush HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	} {
		f.Add(s)
	}
	ts := startServer(f, Options{ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}, fastBehaviours())
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := net.DialTimeout("tcp", ts.addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(c, raw)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		br := bufio.NewReader(c)
		for {
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil {
				if errors.Is(err, io.EOF) || isReset(err) {
					return
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("server hung on %q", raw)
				}
				return // a HEAD answer read as GET, or a cut: not the server's fault
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// TestFastPathHeadTimeoutPerHead: each head is due ReadHeaderTimeout after
// its own first bytes were awaited, also when they arrived pipelined
// behind a request whose handler took a while.
func TestFastPathHeadTimeoutPerHead(t *testing.T) {
	const rht = 300 * time.Millisecond // the handler's 200 ms stay under watchAfter
	ts := startServer(t, Options{ReadHeaderTimeout: rht, IdleTimeout: 5 * time.Second}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(rht * 2 / 3)
		}
		io.WriteString(w, r.URL.Path)
	}))
	c := dialFrom(t, "127.0.0.1", ts.addr)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\n")
	br := bufio.NewReader(c)
	if resp := readResponse(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	time.Sleep(rht / 2) // past the first head's deadline, within the second's
	io.WriteString(c, "Host: h\r\n\r\n")
	resp := readResponse(t, br, "GET")
	if body, _ := io.ReadAll(resp.Body); string(body) != "/next" {
		t.Fatalf("second: %d %q", resp.StatusCode, body)
	}
}

// TestFastPathOversizedHead: a head over MaxHeaderBytes is refused with 431
// by the inspector's verdict, on the fast path too.
func TestFastPathOversizedHead(t *testing.T) {
	ts := startServer(t, Options{}, fastBehaviours())
	c := dialFrom(t, "127.0.0.1", ts.addr)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: h\r\nCookie: "+strings.Repeat("c", DefaultMaxHeaderBytes)+"\r\n\r\n")
	resp := readResponse(t, bufio.NewReader(c), "GET")
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || resp.Header.Get(MitigatedHeader) == "" || !resp.Close {
		t.Fatalf("got %d %v close=%v", resp.StatusCode, resp.Header, resp.Close)
	}
}

// TestFastPathWriteAfterHandler: a handler that keeps its ResponseWriter
// and writes after returning gets an error; the connection's next answer
// is not touched.
func TestFastPathWriteAfterHandler(t *testing.T) {
	late := make(chan error, 1)
	var kept http.ResponseWriter
	ready := make(chan struct{})
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/keep" {
			kept = w
			close(ready)
		}
		io.WriteString(w, "answer "+r.URL.Path)
	}))
	c := dialFrom(t, "127.0.0.1", ts.addr)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /keep HTTP/1.1\r\nHost: h\r\n\r\n")
	readResponse(t, br, "GET")
	<-ready
	_, err := kept.Write([]byte("INJECTED"))
	late <- err
	io.WriteString(c, "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
	resp := readResponse(t, br, "GET")
	body, _ := io.ReadAll(resp.Body)
	if err := <-late; err == nil {
		t.Fatal("a write after the handler returned succeeded")
	}
	if string(body) != "answer /next" {
		t.Fatalf("next answer %q", body)
	}
}
