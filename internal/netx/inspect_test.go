package netx

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var oddities = []struct {
	name string
	req  string
	kind string // expected Stats.BadRequests key
}{
	{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", "version"},
	{"HTTP/3.0", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", "version"},
	{"HTTP/0.9 style", "GET /\r\n\r\n", "request-line"},
	{"junk request line", "\x16\x03\x01\x02\x00garbage\r\n\r\n", "request-line"},
	{"space in target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", "request-line"},
	{"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "dup-host"},
	{"oversized Host", "GET / HTTP/1.1\r\nHost: " + strings.Repeat("a", 300) + "\r\n\r\n", "host"},
	{"missing Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "missing-host"},
	{"two identical Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", "dup-content-length"},
	{"two different Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "dup-content-length"},
	{"Content-Length list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", "content-length"},
	{"TE and CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", "te-and-cl"},
	{"CL and TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "te-and-cl"},
	{"TE other than chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "transfer-encoding"},
	{"TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "transfer-encoding"},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n", "obs-fold"},
	{"obs-fold before Host", "GET / HTTP/1.1\r\nX-A: a\r\n\tfolded\r\nHost: x\r\n\r\n", "obs-fold"},
	{"whitespace before colon", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n", "ws-before-colon"},
	{"bare LF", "GET / HTTP/1.1\nHost: x\n\n", "bare-lf"},
	{"control character in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", "header"},
	{"header without colon", "GET / HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n", "header"},
	{"too many ranges", "GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,2-3,4-5,6-7,8-9,10-11,12-13,14-15,16-17\r\n\r\n", "range"},
	{"overlapping ranges", "GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-100,50-150\r\n\r\n", "range"},
	{"open range overlapping", "GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=100-,0-200\r\n\r\n", "range"},
	{"two suffix ranges", "GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=-5,-10\r\n\r\n", "range"},
	{"unparsable range", "GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=abc\r\n\r\n", "range"},
	{"two Range headers", "GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nRange: bytes=5-6\r\n\r\n", "range"},
}

func TestOdditiesRefused(t *testing.T) {
	var calls atomic.Int32
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.WriteString(w, "ok")
	}))
	for _, tc := range oddities {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.s.Stats().BadRequests[tc.kind]
			c := dialFrom(t, "127.0.0.1", ts.addr)
			io.WriteString(c, tc.req)
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			br := bufio.NewReader(c)
			resp := readResponse(t, br, "GET")
			if resp.StatusCode != 400 || resp.Header.Get(MitigatedHeader) != ReasonBadRequest || !resp.Close {
				t.Fatalf("got %d %q close=%v", resp.StatusCode, resp.Header.Get(MitigatedHeader), resp.Close)
			}
			if after := ts.s.Stats().BadRequests[tc.kind]; after != before+1 {
				t.Fatalf("BadRequests[%s] %d -> %d", tc.kind, before, after)
			}
			if !closedByPeer(c, 3*time.Second) {
				t.Fatal("connection kept open after a refused request")
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("handler called %d times for refused requests", n)
	}
}

func TestBadRequestAfterPipelinedGoodOnes(t *testing.T) {
	var calls atomic.Int32
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	c := dialFrom(t, "127.0.0.1", ts.addr)
	// The bad head arrives in pieces, so the held-back path is used.
	parts := []string{
		"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab",
		"cdGET /3 HTTP/1.1\r\nHo", "st: a\r\nRange: bytes=0-1\r\nHo", "st: b\r\n\r\nGET /4 HTTP/1.1\r\nHost: x\r\n\r\n",
	}
	go func() {
		for _, p := range parts {
			io.WriteString(c, p)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	for i, want := range []int{200, 200, 400} {
		resp := readResponse(t, br, "GET")
		if resp.StatusCode != want {
			t.Fatalf("response %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}
	if !closedByPeer(c, 3*time.Second) {
		t.Fatal("connection kept open")
	}
	if calls.Load() != 2 || ts.s.Stats().BadRequests["dup-host"] != 1 {
		t.Fatalf("calls=%d stats=%v", calls.Load(), ts.s.Stats().BadRequests)
	}
}

func TestOrdinaryShapesPass(t *testing.T) {
	ts := startServer(t, Options{}, okHandler())
	tests := []struct{ name, req string }{
		{"ranges", "GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=0-10, 20-30,-5\r\n\r\n"},
		{"open range", "GET / HTTP/1.1\r\nHost: x\r\nRange: bytes=100-\r\n\r\n"},
		{"other range unit", "GET / HTTP/1.1\r\nHost: x\r\nRange: items=0-5,3-9\r\n\r\n"},
		{"absolute target", "GET http://x/a?b=c HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n"},
		{"tab and obs-text in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\xe9\r\n\r\n"},
		{"chunked with trailer", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n4\r\nabcd\r\n0\r\nX-T: 1\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.1", ts.addr)
			io.WriteString(c, tc.req)
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if resp := readResponse(t, bufio.NewReader(c), "GET"); resp.StatusCode != 200 {
				t.Fatalf("status %d (%s)", resp.StatusCode, resp.Header.Get(MitigatedHeader))
			}
		})
	}
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		buf := make([]byte, 9)
		if _, err := io.ReadFull(brw, buf); err != nil {
			return
		}
		conn.Write(buf) // echo frames that would be junk as HTTP
	}))
	c := dialFrom(t, "127.0.0.1", ts.addr)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", err, resp)
	}
	frame := []byte("\x81\x03hi!\r\n\n\x00")
	c.Write(frame)
	got := make([]byte, len(frame))
	if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, frame) {
		t.Fatalf("echo %q %v", got, err)
	}
}

// chunkConn is a net.Conn whose reads return the given chunks, then EOF.
type chunkConn struct {
	net.Conn
	chunks [][]byte
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

// inspectStream runs input, split into chunks, through an h1Conn and
// returns what net/http would read and the recorded violation.
func inspectStream(input []byte, split []int, bufSize int) ([]byte, uint64) {
	var chunks [][]byte
	rest := append([]byte(nil), input...)
	for _, s := range split {
		if s <= 0 || s >= len(rest) {
			break
		}
		chunks = append(chunks, rest[:s])
		rest = rest[s:]
	}
	chunks = append(chunks, rest)
	hc := &h1Conn{Conn: &chunkConn{chunks: chunks}}
	hc.insp.init(1024, 20)
	var out []byte
	p := make([]byte, bufSize)
	for {
		n, err := hc.Read(p)
		out = append(out, p[:n]...)
		if err != nil {
			return out, hc.insp.violation.Load()
		}
	}
}

var inspectorCases = []struct {
	name     string
	in       string
	wantOut  string
	wantReq  uint32
	wantKind badKind
}{
	{"clean pipeline", "GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, badNone},
	{"bad second request", "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/9.9\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + string(subRequest), 2, badVersion},
	{"dup host replaced by end of head", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET /next",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, badDupHost},
	{"fold before host gets a host", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\r\n" + string(subEndHost), 1, badObsFold},
	{"chunked body skipped", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nHost:\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nHost:\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 2, badDupHost},
	{"leading CRLF after POST", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, badNone},
	{"header too large", "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 2000) + "\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1, badHeaderTooLarge},
	{"upgrade stops inspection", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n\x81\x00junk\n\n",
		"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n\x81\x00junk\n\n", 0, badNone},
}

func TestInspector(t *testing.T) {
	for _, tc := range inspectorCases {
		for _, split := range [][]int{nil, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {17, 9, 30}} {
			for _, bufSize := range []int{1, 7, 4096} {
				out, v := inspectStream([]byte(tc.in), split, bufSize)
				if string(out) != tc.wantOut {
					t.Errorf("%s split=%v buf=%d: out\n%q\nwant\n%q", tc.name, split, bufSize, out, tc.wantOut)
				}
				if want := uint64(tc.wantReq)<<8 | uint64(tc.wantKind); v != want {
					t.Errorf("%s split=%v buf=%d: violation %#x, want %#x", tc.name, split, bufSize, v, want)
				}
			}
		}
	}
}

func FuzzInspector(f *testing.F) {
	for _, tc := range inspectorCases {
		f.Add([]byte(tc.in), uint16(7), uint16(13))
	}
	for _, tc := range oddities {
		f.Add([]byte(tc.req), uint16(1), uint16(100))
	}
	f.Fuzz(func(t *testing.T, in []byte, a, b uint16) {
		whole, v1 := inspectStream(in, nil, 4096)
		split, v2 := inspectStream(in, []int{int(a%64) + 1, int(b%64) + 1, int(a%7) + 1}, int(b%50)+1)
		if !bytes.Equal(whole, split) || v1 != v2 {
			t.Fatalf("chunking changed the result:\n%q %#x\n%q %#x", whole, v1, split, v2)
		}
		if v1 == 0 && !bytes.HasPrefix(in, whole) {
			t.Fatalf("output is not a prefix of the input without a violation")
		}
	})
}

func TestValidRange(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"bytes=0-99", true}, {"bytes=0-0,-1", true}, {"bytes=500-", true}, {"bytes=-500", true},
		{"bytes=0-1, 3-4 ,6-7", true}, {"bytes=0-1,,3-4", true}, {"none=1-2", true}, {"BYTES=1-2", true},
		{"bytes=", false}, {"bytes=5-1", false}, {"bytes=-0", false}, {"bytes=-", false}, {"bytes=1", false},
		{"bytes=a-b", false}, {"0-1", false}, {"bytes=0-10,5-6", false}, {"bytes=10-,20-30", false},
		{"bytes=-1,-2", false}, {"bytes=1-2,3-4,5-6,7-8,9-10,11-12,13-14,15-16,17-18", false},
		{"bytes=0-99999999999999999999", false},
	}
	for _, tc := range tests {
		if got := validRange(tc.v, 8); got != tc.want {
			t.Errorf("validRange(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
}

func FuzzValidRange(f *testing.F) {
	f.Add("bytes=0-1,2-3")
	f.Add("bytes=-5,10-")
	f.Fuzz(func(t *testing.T, v string) {
		validRange(v, 8)
	})
}
