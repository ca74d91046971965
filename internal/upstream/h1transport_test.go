package upstream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// countingOrigin counts the TCP connections its clients open.
func countingOrigin(t testing.TB, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s, &conns
}

func TestFastPathSelection(t *testing.T) {
	cases := []struct {
		name   string
		method string
		body   io.ReadCloser
		hdr    string
		fast   bool
	}{
		{"GET", "GET", nil, "", true},
		{"HEAD", "HEAD", nil, "", true},
		{"GET NoBody", "GET", http.NoBody, "", true},
		{"POST", "POST", nil, "", false},
		{"GET with body", "GET", io.NopCloser(strings.NewReader("x")), "", false},
		{"upgrade", "GET", nil, "Upgrade", false},
		{"OPTIONS", "OPTIONS", nil, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "/", nil)
			r.Body = tc.body
			if tc.hdr != "" {
				r.Header.Set(tc.hdr, "websocket")
			}
			if got := fastPath(r); got != tc.fast {
				t.Fatalf("fastPath = %v, want %v", got, tc.fast)
			}
		})
	}
}

func TestFastPathReusesConnections(t *testing.T) {
	origin, conns := countingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "part1")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part2")
			w.Header().Set("X-Sum", "42")
		default:
			_, _ = io.WriteString(w, "page")
		}
	})
	p := newPool(t, Options{Targets: targets(t, origin), HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, cl := frontend(t, p)
	for i := 0; i < 3; i++ {
		for _, path := range []string{"/", "/204", "/304", "/chunked"} {
			for _, method := range []string{"GET", "HEAD"} {
				req, _ := http.NewRequest(method, fe.URL+path, nil)
				res, err := cl.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if method == "GET" && path == "/chunked" {
					if string(body) != "part1part2" || res.Trailer.Get("X-Sum") != "42" {
						t.Fatalf("chunked body %q trailer %v", body, res.Trailer)
					}
				}
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("origin saw %d connections for 24 sequential requests, want 1", n)
	}
}

func TestFastPathConnectionClose(t *testing.T) {
	origin, conns := countingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "bye")
	})
	p := newPool(t, Options{Targets: targets(t, origin), HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, cl := frontend(t, p)
	for i := 0; i < 3; i++ {
		if res, body := get(t, cl, fe.URL+"/"); res.StatusCode != 200 || body != "bye" {
			t.Fatalf("%d %q", res.StatusCode, body)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("origin saw %d connections, want 3 (Connection: close honoured)", n)
	}
}

// oneShotOrigin answers one keep-alive request per connection and then
// closes it without saying so, as an origin whose idle timeout expired;
// with say408 it first leaves an unsolicited 408 on the connection.
func oneShotOrigin(t testing.TB, say408 bool) (addr string, closed chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	closed = make(chan struct{}, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { c.Close(); closed <- struct{}{} }()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if say408 {
					_, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
				}
				_ = req
			}()
		}
	}()
	return l.Addr().String(), closed
}

func TestFastPathRetriesStaleConnection(t *testing.T) {
	for _, say408 := range []bool{false, true} {
		t.Run(fmt.Sprintf("unsolicited408=%v", say408), func(t *testing.T) { testStaleConnection(t, say408) })
	}
}

func testStaleConnection(t *testing.T, say408 bool) {
	addr, closed := oneShotOrigin(t, say408)
	p := newPool(t, Options{
		Targets: []Target{{URL: mustURL(t, "http://"+addr)}}, Retries: -1,
		Passive: PassiveOptions{MaxFails: 1}, HealthCheck: HealthCheckOptions{Disabled: true},
	})
	fe, cl := frontend(t, p)
	for i := 0; i < 4; i++ {
		if res, body := get(t, cl, fe.URL+"/"); res.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
		select {
		case <-closed: // the origin dropped the connection the pool keeps idle
		case <-time.After(10 * time.Second):
			t.Fatal("origin did not close")
		}
	}
	if st := p.Health()[0]; st.Failures != 0 || st.Breaker != BreakerClosed {
		t.Fatalf("stale idle connections counted as failures: %+v", st)
	}
}

func TestFastPathEarlyHints(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		_, _ = io.WriteString(w, "page")
	}))
	t.Cleanup(origin.Close)
	p := newPool(t, Options{Targets: targets(t, origin), HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, cl := frontend(t, p)
	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", fe.URL+"/", nil)
	res, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "page" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	if len(hints) != 1 || hints[0] != "103 </app.css>; rel=preload" {
		t.Fatalf("early hints %q", hints)
	}
}

func TestFastPathClientLeavesEndlessBody(t *testing.T) {
	originDone := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(originDone)
		chunk := []byte(strings.Repeat("z", 8<<10))
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if r.Context().Err() != nil {
				return
			}
		}
	}))
	t.Cleanup(origin.Close)
	p := newPool(t, Options{Targets: targets(t, origin), HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, cl := frontend(t, p)
	res, err := cl.Get(fe.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(res.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	cl.CloseIdleConnections()
	select {
	case <-originDone: // the pool closed its connection instead of draining
	case <-time.After(10 * time.Second):
		t.Fatal("origin still streaming after the client left: the pool drains endless bodies")
	}
	waitFor(t, "in flight to drain", 5*time.Second, func() bool { return p.Health()[0].InFlight == 0 })
	if st := p.Health()[0]; st.Failures != 0 {
		t.Fatalf("client leaving counted as a failure: %+v", st)
	}
	h1 := p.ups[0].rt.(*h1Transport)
	waitFor(t, "fast-path connections to close", 5*time.Second, func() bool { return h1.conns.Load() == 0 })
}

func TestFastPathIdleTimeout(t *testing.T) {
	origin, conns := countingOrigin(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	clock := newFakeClock()
	p := newPool(t, Options{Targets: targets(t, origin), IdleConnTimeout: time.Minute, HealthCheck: HealthCheckOptions{Disabled: true}})
	h1 := p.ups[0].rt.(*h1Transport)
	h1.now = clock.Now
	fe, cl := frontend(t, p)
	for i := 0; i < 2; i++ {
		if res, _ := get(t, cl, fe.URL+"/"); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		clock.Advance(59 * time.Second)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("connections %d before the idle timeout, want 1", n)
	}
	clock.Advance(time.Minute)
	get(t, cl, fe.URL+"/")
	if n := conns.Load(); n != 2 {
		t.Fatalf("connections %d after the idle timeout, want 2", n)
	}
	if n := h1.conns.Load(); n != 1 {
		t.Fatalf("fast path holds %d connections, want 1 (the expired one closed)", n)
	}
}

func TestFastPathMalformedResponse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = http.ReadRequest(bufio.NewReader(c))
				_, _ = io.WriteString(c, "HTTP/1.1 abc nonsense\r\n\r\n")
			}()
		}
	}()
	p := newPool(t, Options{Targets: []Target{{URL: mustURL(t, "http://"+l.Addr().String())}}, HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, cl := frontend(t, p)
	res, _ := get(t, cl, fe.URL+"/")
	if res.StatusCode != http.StatusBadGateway || res.Header.Get(HeaderMitigated) != ReasonUpstreamError {
		t.Fatalf("%d %q", res.StatusCode, res.Header.Get(HeaderMitigated))
	}
	if st := p.Health()[0]; st.Failures != 1 {
		t.Fatalf("failures %d, want 1", st.Failures)
	}
}

func TestHostPort(t *testing.T) {
	cases := []struct{ kind, host, want string }{
		{"http", "o:8080", "o:8080"},
		{"http", "o", "o:80"},
		{"https", "o", "o:443"},
		{"https", "[::1]", "[::1]:443"},
		{"http", "[::1]:81", "[::1]:81"},
	}
	for _, tc := range cases {
		if got := hostPort(tc.kind, tc.host); got != tc.want {
			t.Errorf("hostPort(%q, %q) = %q, want %q", tc.kind, tc.host, got, tc.want)
		}
	}
}

var writeRequestCases = []struct {
	name   string
	method string
	target string
	host   string
	hdr    map[string]string
}{
	{"plain", "GET", "/", "site", map[string]string{"Accept": "*/*"}},
	{"query", "GET", "/a/b?x=1&y=%20", "site:8080", nil},
	{"force query", "HEAD", "/a?", "site", nil},
	{"escaped path", "GET", "/a%2Fb/c%20d", "site", nil},
	{"user agent", "GET", "/", "site", map[string]string{"User-Agent": "Mozilla/5.0"}},
	{"empty user agent", "GET", "/", "site", map[string]string{"User-Agent": ""}},
	{"multi", "GET", "/", "[::1]:80", map[string]string{"X-A": "1", "Cookie": "a=b; c=d"}},
}

// TestWriteRequestMatchesNetHTTP checks that the fast path writes what
// req.Write would, as the origin's parser sees it.
func TestWriteRequestMatchesNetHTTP(t *testing.T) {
	for _, tc := range writeRequestCases {
		t.Run(tc.name, func(t *testing.T) {
			fast, std := buildAndParse(t, tc.method, tc.target, tc.host, tc.hdr)
			if fast == nil || std == nil {
				t.Fatalf("unparsable: fast %v, net/http %v", fast, std)
			}
			if fast.Method != std.Method || fast.RequestURI != std.RequestURI || fast.Host != std.Host {
				t.Fatalf("request line: fast %s %s %s, net/http %s %s %s", fast.Method, fast.RequestURI, fast.Host, std.Method, std.RequestURI, std.Host)
			}
			if d := cmp.Diff(std.Header, fast.Header); d != "" {
				t.Fatalf("headers (-net/http +fast):\n%s", d)
			}
		})
	}
}

func buildAndParse(t testing.TB, method, target, host string, hdr map[string]string) (fast, std *http.Request) {
	t.Helper()
	parse := func(write func(*bufio.Writer, *http.Request) error) *http.Request {
		req, err := http.NewRequest(method, "http://"+host+target, nil)
		if err != nil {
			t.Skip("not a request URL")
		}
		for k, v := range hdr {
			req.Header[k] = []string{v}
		}
		if _, ok := hdr["User-Agent"]; !ok {
			req.Header["User-Agent"] = []string{""}
		}
		var buf strings.Builder
		bw := bufio.NewWriter(&buf)
		if err := write(bw, req); err != nil {
			t.Fatal(err)
		}
		_ = bw.Flush()
		out, err := http.ReadRequest(bufio.NewReader(strings.NewReader(buf.String())))
		if err != nil {
			return nil
		}
		return out
	}
	return parse(writeRequest), parse(func(bw *bufio.Writer, r *http.Request) error { return r.Write(bw) })
}

func FuzzWriteRequest(f *testing.F) {
	for _, tc := range writeRequestCases {
		f.Add(tc.target, tc.hdr["User-Agent"], tc.hdr["X-A"])
	}
	f.Fuzz(func(t *testing.T, target, ua, xa string) {
		if !strings.HasPrefix(target, "/") {
			return
		}
		fast, std := buildAndParse(t, "GET", target, "site", map[string]string{"User-Agent": ua, "X-A": xa})
		if std == nil {
			return // net/http writes nothing an origin accepts either (control bytes in values)
		}
		if fast == nil {
			t.Fatalf("fast path wrote an unparsable request for %q %q %q", target, ua, xa)
		}
		if fast.RequestURI != std.RequestURI || fast.Header.Get("X-A") != std.Header.Get("X-A") ||
			fast.Header.Get("User-Agent") != std.Header.Get("User-Agent") {
			t.Fatalf("fast %q %v, net/http %q %v", fast.RequestURI, fast.Header, std.RequestURI, std.Header)
		}
	})
}

// endlessOrigin streams until the connection breaks; done is closed then.
func endlessOrigin(t testing.TB, pause chan struct{}) (*httptest.Server, chan struct{}) {
	t.Helper()
	done := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		chunk := []byte(strings.Repeat("z", 8<<10))
		for i := 0; ; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if pause != nil && i == 0 {
				select { // hold the body open after the first chunk
				case <-pause:
				case <-r.Context().Done():
					return
				}
			}
			if r.Context().Err() != nil {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return s, done
}

func TestFastPathBodyCloseDoesNotDrain(t *testing.T) {
	origin, done := endlessOrigin(t, nil)
	p := newPool(t, Options{Targets: targets(t, origin), HealthCheck: HealthCheckOptions{Disabled: true}})
	h1 := p.ups[0].rt.(*h1Transport)
	req, _ := http.NewRequest("GET", origin.URL+"/", nil) // context never cancelled
	res, err := h1.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(res.Body, make([]byte, 32<<10)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { res.Body.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close of an unfinished body drains it")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("origin connection not closed")
	}
	if n := h1.conns.Load(); n != 0 {
		t.Fatalf("%d connections kept after an early close", n)
	}
}

func TestClientLeavesWhileOriginPausesMidBody(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast=%v", fast), func(t *testing.T) {
			pause := make(chan struct{})
			defer close(pause)
			origin, done := endlessOrigin(t, pause)
			p := newPool(t, Options{
				Targets: targets(t, origin), DisableFastPath: !fast,
				Passive: PassiveOptions{MaxFails: 1}, HealthCheck: HealthCheckOptions{Disabled: true},
			})
			fe, cl := frontend(t, p)
			res, err := cl.Get(fe.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(res.Body, make([]byte, 8<<10)); err != nil {
				t.Fatal(err)
			}
			// The pool is now blocked reading the paused origin body.
			res.Body.Close()
			cl.CloseIdleConnections()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("origin request not cancelled after the client left")
			}
			waitFor(t, "in flight to drain", 5*time.Second, func() bool { return p.Health()[0].InFlight == 0 })
			if st := p.Health()[0]; st.Failures != 0 || st.Breaker != BreakerClosed {
				t.Fatalf("client leaving mid-body counted against the origin: %+v", st)
			}
		})
	}
}

func TestFastPathHugeResponseHeaders(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 40; i++ {
			w.Header().Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("b", 32<<10))
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(origin.Close)
	p := newPool(t, Options{Targets: targets(t, origin), HealthCheck: HealthCheckOptions{Disabled: true}})
	fe, cl := frontend(t, p)
	res, _ := get(t, cl, fe.URL+"/")
	if res.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d for 1.25 MiB of origin headers, want 502", res.StatusCode)
	}
	if st := p.Health()[0]; !strings.Contains(st.LastError, "too large") {
		t.Fatalf("last error %q", st.LastError)
	}
}
