package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/sim"
)

func TestParseTargetAndAddr(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr error // nil: accepted; errAny: any error
	}{
		{"loopback", "http://127.0.0.1:8080/page.html", nil},
		{"other loopback", "http://127.9.8.7:80/", nil},
		{"localhost", "http://localhost:8080/", nil},
		{"ipv6 loopback", "http://[::1]:8080/", nil},
		{"public address", "http://198.51.100.7:8080/", sim.ErrNotLoopback},
		{"private address", "http://10.0.0.1/", sim.ErrNotLoopback},
		{"name", "http://example.org/", sim.ErrNotLoopback},
		{"mapped public", "http://[::ffff:198.51.100.7]:80/", sim.ErrNotLoopback},
		{"https", "https://127.0.0.1:8443/", errAny},
		{"ftp", "ftp://127.0.0.1/", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseTarget(tt.url)
			checkErr(t, err, tt.wantErr)
		})
	}
	addrs := []struct {
		name    string
		addr    string
		wantErr error
	}{
		{"loopback", "127.0.0.1:9", nil},
		{"ipv6", "[::1]:9", nil},
		{"no port", "127.0.0.1", errAny},
		{"public", "203.0.113.1:80", sim.ErrNotLoopback},
		{"empty", "", errAny},
	}
	for _, tt := range addrs {
		t.Run("addr "+tt.name, func(t *testing.T) {
			_, err := parseAddr(tt.addr)
			checkErr(t, err, tt.wantErr)
		})
	}
}

// errAny stands for "some error" in the tables.
var errAny = errors.New("any error")

func checkErr(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != nil && err == nil:
		t.Fatalf("accepted, want an error")
	case want != nil && want != errAny && !errors.Is(err, want):
		t.Fatalf("error %v, want %v", err, want)
	}
}

var sourceTests = []struct {
	name    string
	in      string
	want    int // addresses; -1 for an error
	wantErr error
}{
	{"empty", "", 0, nil},
	{"one", "127.0.77.1", 1, nil},
	{"list", "127.0.77.1, 127.0.77.9", 2, nil},
	{"range", "127.0.77.1-127.0.77.16", 16, nil},
	{"range across a /24", "127.0.76.250-127.0.77.5", 12, nil},
	{"range and one", "127.0.77.1-127.0.77.3,::1", 4, nil},
	{"reversed", "127.0.77.9-127.0.77.1", -1, errAny},
	{"public", "192.0.2.1", -1, errNotLoopback},
	{"public in a range", "127.255.255.255-128.0.0.3", -1, errNotLoopback},
	{"ipv6 range", "::1-::1", -1, errAny},
	{"garbage", "127.0.0.x", -1, errAny},
	{"zone", "fe80::1%eth0", -1, errNotLoopback},
	{"too many", "127.0.0.0-127.1.0.1", -1, errAny},
}

func TestParseSources(t *testing.T) {
	for _, tt := range sourceTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSources(tt.in)
			checkErr(t, err, tt.wantErr)
			if tt.want >= 0 && len(got) != tt.want {
				t.Fatalf("%d addresses, want %d: %v", len(got), tt.want, got)
			}
			for _, a := range got {
				if !a.IsLoopback() {
					t.Errorf("%s is not loopback", a)
				}
			}
		})
	}
}

func FuzzParseSources(f *testing.F) {
	for _, tt := range sourceTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseSources(s)
		if err != nil {
			return
		}
		if len(got) > maxSources {
			t.Fatalf("%d sources, bound %d", len(got), maxSources)
		}
		for _, a := range got {
			if !a.IsLoopback() {
				t.Fatalf("%q gave non-loopback source %s", s, a)
			}
		}
	})
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	if h.quantile(99) != 0 {
		t.Fatal("empty histogram has a p99")
	}
	// 1..1000 µs: nearest-rank percentiles are known exactly.
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{50, 500 * time.Microsecond},
		{90, 900 * time.Microsecond},
		{99, 990 * time.Microsecond},
		{99.9, 999 * time.Microsecond},
		{100, 1000 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.p), func(t *testing.T) {
			got := h.quantile(tt.p)
			// The bucket's upper bound: never below, at most 1/128 above.
			if got < tt.want || float64(got) > float64(tt.want)*(1+1.0/histSub) {
				t.Errorf("p%v = %v, want %v within 0.8%% above", tt.p, got, tt.want)
			}
		})
	}
	var other hist
	other.add(5 * time.Second)
	h.merge(&other)
	if h.n != 1001 || h.max != 5*time.Second || h.quantile(100) != 5*time.Second {
		t.Errorf("after merge: n %d, max %v, p100 %v", h.n, h.max, h.quantile(100))
	}
}

func TestHistBuckets(t *testing.T) {
	// Every value lies in its bucket, buckets are contiguous and ordered.
	rng := rand.New(rand.NewPCG(1, 2))
	vals := []int64{0, 1, 127, 128, 129, 255, 256, 1 << 20, 1<<40 + 12345, 1 << 62}
	for range 1000 {
		vals = append(vals, rng.Int64N(1<<50))
	}
	for _, v := range vals {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("value %d: bucket %d out of range", v, i)
		}
		if hi := bucketHigh(i); hi < v {
			t.Fatalf("value %d above its bucket %d's bound %d", v, i, hi)
		}
		if i > 0 && bucketHigh(i-1) >= v {
			t.Fatalf("value %d also fits bucket %d", v, i-1)
		}
	}
	if bucketOf(-5) != 0 {
		t.Error("negative values are not counted as 0")
	}
}

var responseTests = []struct {
	name       string
	raw        string
	head       bool
	wantStatus int
	wantClose  bool
	wantErr    error
	rest       string // what must be left unread
}{
	{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloNEXT", false, 200, false, nil, "NEXT"},
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\nNEXT", false, 200, false, nil, "NEXT"},
	{"head", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nNEXT", true, 200, false, nil, "NEXT"},
	{"no content", "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\nNEXT", false, 204, false, nil, "NEXT"},
	{"not modified", "HTTP/1.1 304 Not Modified\r\n\r\nNEXT", false, 304, false, nil, "NEXT"},
	{"close", "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 2\r\n\r\nnoNEXT", false, 429, true, nil, "NEXT"},
	{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false, 200, true, nil, ""},
	{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", false, 200, false, nil, ""},
	{"to end of stream", "HTTP/1.1 200 OK\r\n\r\nall of it", false, 200, true, nil, ""},
	{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nokNEXT", false, 200, false, nil, "NEXT"},
	{"status without reason", "HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", false, 503, false, nil, ""},
	{"case-insensitive names", "HTTP/1.1 200 OK\r\ncontent-LENGTH: 1\r\nCONNECTION: Close\r\n\r\nx", false, 200, true, nil, ""},
	{"bad status line", "HTTP/2 200 OK\r\n\r\n", false, 0, false, errMalformed, ""},
	{"bad code", "HTTP/1.1 2x0 OK\r\n\r\n", false, 0, false, errMalformed, ""},
	{"code too long", "HTTP/1.1 2000 OK\r\n\r\n", false, 0, false, errMalformed, ""},
	{"header without colon", "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", false, 0, false, errMalformed, ""},
	{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, 0, false, errMalformed, ""},
	{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", false, 0, false, errMalformed, ""},
	{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, 0, false, errMalformed, ""},
	{"chunk without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n", false, 0, false, errMalformed, ""},
	{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", false, 0, false, io.EOF, ""},
	{"truncated head", "HTTP/1.1 200 OK\r\nContent-Len", false, 0, false, io.ErrUnexpectedEOF, ""},
	{"empty", "", false, 0, false, io.EOF, ""},
	{"huge head", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\r\n", 70) + "\r\n", false, 0, false, errMalformed, ""},
}

func TestReadResponse(t *testing.T) {
	for _, tt := range responseTests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.raw), 16<<10)
			ri, err := readResponse(br, tt.head)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if ri.status != tt.wantStatus || ri.close != tt.wantClose {
				t.Errorf("status %d close %v, want %d %v", ri.status, ri.close, tt.wantStatus, tt.wantClose)
			}
			rest, _ := io.ReadAll(br)
			if string(rest) != tt.rest {
				t.Errorf("left %q unread, want %q", rest, tt.rest)
			}
		})
	}
}

func FuzzReadResponse(f *testing.F) {
	for _, tt := range responseTests {
		f.Add([]byte(tt.raw), tt.head)
	}
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		br := bufio.NewReaderSize(bytes.NewReader(raw), 4<<10)
		ri, err := readResponse(br, head)
		if err == nil && (ri.status < 100 || ri.status > 599) {
			t.Fatalf("accepted status %d", ri.status)
		}
	})
}

func TestReadResponseAllocs(t *testing.T) {
	raw := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\nCache-Control: no-store\r\n\r\nhello")
	r := bytes.NewReader(raw)
	br := bufio.NewReaderSize(r, 16<<10)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(raw)
		br.Reset(r)
		if _, err := readResponse(br, false); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per response, want 0", allocs)
	}
}

// countingServer answers every request with 200 and a small body, after
// setting the status the test asks for, and counts requests.
func countingServer(t *testing.T, status int) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.Header.Get("X-Test") != "yes" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, "<p>hello</p>")
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestHTTPMode(t *testing.T) {
	tests := []struct {
		name   string
		status int
		args   []string
		want   int64
	}{
		{"as fast as possible, count", 200, []string{"--conns", "4", "--count", "300"}, 300},
		{"fixed rate, count", 429, []string{"--conns", "4", "--rate", "2000", "--count", "120"}, 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, served := countingServer(t, tt.status)
			args := append([]string{"--url", srv.URL + "/page?x=1", "--duration", "30s", "--header", "X-Test: yes"}, tt.args...)
			cfg, err := parseHTTPFlags(args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			res, err := runHTTP(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != tt.want || res.Errors != 0 || res.Missed != 0 {
				t.Errorf("answered %d, errors %v, missed %d; want %d answered", res.Requests, res.ErrorKinds, res.Missed, tt.want)
			}
			if got := res.Statuses[fmt.Sprint(tt.status)]; got != tt.want {
				t.Errorf("statuses %v, want %d of %d", res.Statuses, tt.want, tt.status)
			}
			if served.Load() != tt.want {
				t.Errorf("the server saw %d requests, want %d", served.Load(), tt.want)
			}
			if res.P50ms <= 0 || res.P99ms < res.P50ms || res.MaxMs < res.P99ms {
				t.Errorf("percentiles out of order: p50 %v p99 %v max %v", res.P50ms, res.P99ms, res.MaxMs)
			}
			var out bytes.Buffer
			if err := res.write(&out, false); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), fmt.Sprintf(" requests=%d ", tt.want)) || !strings.Contains(out.String(), fmt.Sprintf(" status_%d=%d", tt.status, tt.want)) {
				t.Errorf("key=value line %q", out.String())
			}
		})
	}
}

// TestHTTPModeReconnects checks that a server closing after every answer
// costs a reconnection, not a failure.
func TestHTTPModeReconnects(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	}))
	t.Cleanup(srv.Close)
	cfg, err := parseHTTPFlags([]string{"--url", srv.URL, "--conns", "2", "--count", "50", "--duration", "30s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runHTTP(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 50 || res.Errors != 0 || n.Load() != 50 {
		t.Errorf("answered %d (server %d), errors %v", res.Requests, n.Load(), res.ErrorKinds)
	}
}

func TestHTTPModeCountsFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg, err := parseHTTPFlags([]string{"--url", "http://" + addr + "/", "--conns", "1", "--count", "5", "--duration", "30s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runHTTP(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 0 || res.ErrorKinds["refused"] != 5 {
		t.Errorf("answered %d, errors %v; want 5 refused", res.Requests, res.ErrorKinds)
	}
}

// acceptServer accepts connections and hands each to handle, until the
// test ends.
func acceptServer(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

func TestConnectMode(t *testing.T) {
	closeAtAccept := func(c net.Conn) {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	deny := func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for { // read the request head, then refuse it as nginx's deny does
			l, err := br.ReadString('\n')
			if err != nil || l == "\r\n" {
				break
			}
		}
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name  string
		addr  string
		check func(r connectResult) bool
	}{
		{"closed at accept", acceptServer(t, closeAtAccept), func(r connectResult) bool { return r.Dropped == 40 }},
		{"answered 403", acceptServer(t, deny), func(r connectResult) bool { return r.Answered == 40 && r.Statuses["403"] == 40 }},
		{"refused", refusedAddr, func(r connectResult) bool { return r.Refused == 40 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConnectFlags([]string{"--addr", tt.addr, "--workers", "4", "--count", "40", "--duration", "30s",
				"--sources", "127.0.77.1-127.0.77.4"}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			res, err := runConnect(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Attempts != 40 || !tt.check(res) {
				t.Errorf("result %+v", res)
			}
		})
	}
}

func TestConnectModeUsesSources(t *testing.T) {
	seen := make(chan netip.Addr, 100)
	addr := acceptServer(t, func(c net.Conn) {
		seen <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		c.Close()
	})
	cfg, err := parseConnectFlags([]string{"--addr", addr, "--workers", "1", "--count", "6", "--duration", "30s",
		"--sources", "127.0.77.1-127.0.77.3", "--send=false"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runConnect(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	var got []string
	deadline := time.After(10 * time.Second)
	for len(got) < 6 {
		select {
		case a := <-seen:
			got = append(got, a.String())
		case <-deadline:
			t.Fatalf("the server saw %d connections: %v", len(got), got)
		}
	}
	slices.Sort(got)
	got = slices.Compact(got)
	if want := []string{"127.0.77.1", "127.0.77.2", "127.0.77.3"}; !slices.Equal(got, want) {
		t.Errorf("sources %v, want %v", got, want)
	}
}

func TestClassifyFirstRead(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		err      error
		want     outcome
		wantCode int
	}{
		{"status", "HTTP/1.1 403 Forbidden\r\n", nil, outAnswered, 403},
		{"short answer", "HTTP/1", io.ErrUnexpectedEOF, outAnswered, 0},
		{"not http", "garbage here", nil, outAnswered, 0},
		{"eof", "", io.EOF, outDropped, 0},
		{"reset", "", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, outDropped, 0},
		{"timeout", "", os.ErrDeadlineExceeded, outTimeout, 0},
		{"other", "", errors.New("strange"), outError, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, 64)
			n := copy(buf, tt.data)
			got, code := classifyFirstRead(buf, n, tt.err)
			if got != tt.want || code != tt.wantCode {
				t.Errorf("got %v %d, want %v %d", got, code, tt.want, tt.wantCode)
			}
		})
	}
}

func TestRunRefusesBeforeSending(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"http public", []string{"http", "--url", "http://198.51.100.7:8080/", "--count", "1"}},
		{"http named", []string{"http", "--url", "http://example.org/"}},
		{"http public source", []string{"http", "--url", "http://127.0.0.1:9/", "--source", "192.0.2.1"}},
		{"connect public", []string{"connect", "--addr", "198.51.100.7:80"}},
		{"connect public source", []string{"connect", "--addr", "127.0.0.1:9", "--sources", "10.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, io.Discard, io.Discard)
			if !errors.Is(err, sim.ErrNotLoopback) && !errors.Is(err, errNotLoopback) {
				t.Fatalf("error %v, want a loopback refusal", err)
			}
		})
	}
}

func TestFlagBounds(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no mode", nil},
		{"unknown mode", []string{"flood"}},
		{"duration too long", []string{"http", "--url", "http://127.0.0.1:9/", "--duration", "11m"}},
		{"negative count", []string{"http", "--url", "http://127.0.0.1:9/", "--count", "-1"}},
		{"count too large", []string{"connect", "--addr", "127.0.0.1:9", "--count", "100000001"}},
		{"no conns", []string{"http", "--url", "http://127.0.0.1:9/", "--conns", "0"}},
		{"post", []string{"http", "--url", "http://127.0.0.1:9/", "--method", "POST"}},
		{"header with newline", []string{"http", "--url", "http://127.0.0.1:9/", "--header", "A: b\r\nC: d"}},
		{"header without colon", []string{"http", "--url", "http://127.0.0.1:9/", "--header", "nope"}},
		{"family mismatch", []string{"http", "--url", "http://[::1]:9/", "--source", "127.0.0.2"}},
		{"path with space", []string{"connect", "--addr", "127.0.0.1:9", "--path", "/a b"}},
		{"no pid", []string{"proc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := run(context.Background(), tt.args, io.Discard, io.Discard); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestProc(t *testing.T) {
	res, err := readTree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if res.Processes < 1 || res.CPUS < 0 || res.RSSBytes <= 0 || res.PeakRSSBytes < res.RSSBytes {
		t.Errorf("%+v", res)
	}
	if _, err := readTree(1 << 30); err == nil {
		t.Error("a process that does not exist was read")
	}
}

var parentTests = []struct {
	name string
	stat string
	want int
	ok   bool
}{
	{"plain", "123 (nginx) S 77 123 123 0 -1", 77, true},
	{"spaces and parens", "123 (a) b (c) R 42 1 1", 42, true},
	{"no paren", "123 nginx S 77", 0, false},
	{"short", "123 (x) S", 0, false},
	{"not a number", "123 (x) S pp", 0, false},
}

func TestParentOf(t *testing.T) {
	for _, tt := range parentTests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parentOf([]byte(tt.stat))
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %d %v, want %d %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParentOf(f *testing.F) {
	for _, tt := range parentTests {
		f.Add([]byte(tt.stat))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, ok := parentOf(b); !ok && p != 0 {
			t.Fatalf("failed parse returned %d", p)
		}
	})
}

func BenchmarkReadResponse(b *testing.B) {
	raw := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1024\r\nCache-Control: no-store\r\nDate: Mon, 02 Jan 2026 15:04:05 GMT\r\n\r\n" + strings.Repeat("x", 1024))
	r := bytes.NewReader(raw)
	br := bufio.NewReaderSize(r, 16<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		r.Reset(raw)
		br.Reset(r)
		if _, err := readResponse(br, false); err != nil {
			b.Fatal(err)
		}
	}
}
