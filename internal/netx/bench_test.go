package netx

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

const benchHead = "GET /static/app.js?v=12 HTTP/1.1\r\n" +
	"Host: www.example.org\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: */*\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://www.example.org/\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=abcdef0123456789; rampart_clearance=0123456789abcdef0123456789abcdef\r\n" +
	"Sec-Fetch-Dest: script\r\n" +
	"Sec-Fetch-Mode: no-cors\r\n" +
	"Sec-Fetch-Site: same-origin\r\n" +
	"If-None-Match: \"abc123\"\r\n" +
	"\r\n"

// BenchmarkInspector measures the HTTP/1 head inspector on a typical
// browser request head (about 550 bytes, 12 fields).
func BenchmarkInspector(b *testing.B) {
	var in h1Inspector
	in.init(DefaultMaxHeaderBytes, DefaultMaxHeaderCount)
	head := []byte(benchHead)
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	defer cpuTimer(b)()
	for b.Loop() {
		if r, sub := in.feed(head); r != len(head) || sub != nil {
			b.Fatal("unexpected violation")
		}
	}
}

// loopConn returns the same bytes on every read.
type loopConn struct {
	net.Conn
	b []byte
}

func (c *loopConn) Read(p []byte) (int, error) { return copy(p, c.b), nil }

// BenchmarkH1ConnRead measures a whole read through the inspecting conn.
func BenchmarkH1ConnRead(b *testing.B) {
	hc := &h1Conn{Conn: &loopConn{b: []byte(benchHead)}}
	hc.insp.init(DefaultMaxHeaderBytes, DefaultMaxHeaderCount)
	p := make([]byte, 4096)
	b.SetBytes(int64(len(benchHead)))
	b.ReportAllocs()
	defer cpuTimer(b)()
	for b.Loop() {
		if n, err := hc.Read(p); err != nil || n != len(benchHead) {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkH2GuardInbound measures the frame guard on a stream of HEADERS
// and DATA frames.
func BenchmarkH2GuardInbound(b *testing.B) {
	s, _ := NewServer(Options{Logger: quietLogger()}, okHandler())
	hc := &h2Conn{s: s, g: s.gen.Load()}
	var frames []byte
	for i := 0; i < 10; i++ {
		frames = append(frames, 0, 0, 40, frHeaders, flEndHeaders, 0, 0, 0, byte(2*i+1))
		frames = append(frames, make([]byte, 40)...)
		frames = append(frames, 0, 0x10, 0, frData, flEndStream, 0, 0, 0, byte(2*i+1))
		frames = append(frames, make([]byte, 4096)...)
	}
	b.SetBytes(int64(len(frames)))
	b.ReportAllocs()
	defer cpuTimer(b)()
	for b.Loop() {
		if r := hc.inbound(frames); r != "" {
			b.Fatal(r)
		}
	}
}

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkHardenGET measures the per-request hardening for an ordinary
// HTTP/1 GET: zero allocations.
func BenchmarkHardenGET(b *testing.B) {
	s, _ := NewServer(Options{Logger: quietLogger()}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	rc := &rawConn{s: s, g: s.gen.Load()}
	ci := &ConnInfo{raw: rc}
	ci.h1 = &h1Conn{raw: rc, info: ci}
	ci.h1.insp.init(DefaultMaxHeaderBytes, DefaultMaxHeaderCount)
	r, _ := http.NewRequest("GET", "http://www.example.org/static/app.js", nil)
	r.Header.Set("Range", "bytes=0-1023")
	r = r.WithContext(context.WithValue(context.Background(), connInfoKey{}, ci))
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	defer cpuTimer(b)()
	for b.Loop() {
		s.serveHTTP(w, r)
	}
}

// BenchmarkGate measures the accept-time decision: a denied address, and an
// admitted one (slots taken and released).
func BenchmarkGate(b *testing.B) {
	denied := netip.MustParseAddr("198.51.100.7")
	s, _ := NewServer(Options{Logger: quietLogger(), Denied: func(a netip.Addr) bool { return a == denied }}, okHandler())
	g := s.gen.Load()
	b.Run("denied", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, reason := s.admit(denied, g); reason != ReasonDenied {
				b.Fatal(reason)
			}
		}
	})
	b.Run("admitted", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ip := netip.MustParseAddr("203.0.113.9")
			for pb.Next() {
				key, reason := s.admit(ip, g)
				if reason != "" {
					b.Fatal(reason)
				}
				s.gate.releaseKey(key)
				s.gate.releaseGlobal()
			}
		})
	})
}

// BenchmarkAcceptDenied measures the whole accept+reset path for a denied
// address over loopback: dial, accept, deny, RST, client sees the close.
func BenchmarkAcceptDenied(b *testing.B) {
	ts := startServer(b, Options{Denied: func(netip.Addr) bool { return true }}, okHandler())
	buf := make([]byte, 1)
	b.ReportAllocs()
	defer cpuTimer(b)()
	for b.Loop() {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			continue // reset before connect returned
		}
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Read(buf); err == nil {
			b.Fatal("denied connection served")
		}
		c.Close()
	}
}

// BenchmarkServe compares a small keep-alive request through a netx Server
// with the same through a plain net/http.Server, over loopback.
func BenchmarkServe(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	plain := func(b *testing.B, h2c bool) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		if h2c {
			var p http.Protocols
			p.SetHTTP1(true)
			p.SetUnencryptedHTTP2(true)
			srv.Protocols = &p
		}
		go srv.Serve(l)
		b.Cleanup(func() { srv.Close() })
		return l.Addr().String()
	}
	run := func(b *testing.B, addr string, tr http.RoundTripper) {
		client := &http.Client{Transport: tr}
		url := "http://" + addr + "/"
		b.ReportAllocs()
		defer cpuTimer(b)()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	h1tr := func() *http.Transport { return &http.Transport{MaxIdleConnsPerHost: 64} }
	b.Run("h1/netx", func(b *testing.B) { run(b, startServer(b, Options{}, h).addr, h1tr()) })
	b.Run("h1/nethttp", func(b *testing.B) { run(b, plain(b, false), h1tr()) })
	b.Run("h2c/netx", func(b *testing.B) { run(b, startServer(b, Options{}, h).addr, h2cTransport()) })
	b.Run("h2c/nethttp", func(b *testing.B) { run(b, plain(b, true), h2cTransport()) })
}

// BenchmarkServeRaw measures the server side of a small keep-alive GET with
// a raw client (a fixed request written, the fixed-size answer read), so
// that the client's own cost stays small: the fast path, and net/http's
// server with the same handler. cpu-ns/op is the process's CPU time (both
// sides) per request.
func BenchmarkServeRaw(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	})
	req := []byte("GET /page HTTP/1.1\r\nHost: example.org\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	run := func(b *testing.B, addr string) {
		// Learn the answer's size once; every answer has the same size.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Write(req)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		c.Close()
		b.ReportAllocs()
		defer cpuTimer(b)()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			buf := make([]byte, 4096)
			for pb.Next() {
				if _, err := c.Write(req); err != nil {
					b.Error(err)
					return
				}
				// The answer ends with the body "ok" after the head.
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						b.Error(err)
						return
					}
					n += m
					if n >= 6 && string(buf[n-6:n]) == "\r\n\r\nok" {
						break
					}
				}
			}
		})
	}
	b.Run("fast", func(b *testing.B) { run(b, startServer(b, Options{}, h).addr) })
	b.Run("nethttp", func(b *testing.B) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(l)
		b.Cleanup(func() { srv.Close() })
		run(b, l.Addr().String())
	})
}
