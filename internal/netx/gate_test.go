package netx

import (
	"sync"

	"bufio"
	"crypto/tls"
	"github.com/rampart-shield/rampart/internal/verdict"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// holdConn opens a connection from src that the server keeps (a request
// head in progress), and checks it is served.
func holdConn(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	c := dialFrom(t, src, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if resp := readResponse(t, bufio.NewReader(c), "GET"); resp.StatusCode != 200 {
		t.Fatalf("held conn from %s: status %d", src, resp.StatusCode)
	}
	return c
}

func TestPerIPCap(t *testing.T) {
	var events []verdict.Event
	var mu sync.Mutex
	onEvent := func(e verdict.Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
	ts := startServer(t, Options{MaxConnsPerIP: 2, OnEvent: onEvent}, okHandler())
	holdConn(t, "127.0.0.2", ts.addr)
	holdConn(t, "127.0.0.2", ts.addr)
	if !refusedFrom(t, "127.0.0.2", ts.addr) {
		t.Fatal("third connection from 127.0.0.2 not closed")
	}
	holdConn(t, "127.0.0.3", ts.addr) // another address is not affected
	st := ts.s.Stats()
	if st.RejectedPerIPCap != 1 || st.Open != 3 || st.TrackedIPs != 2 {
		t.Fatalf("stats: per-ip=%d open=%d tracked=%d", st.RejectedPerIPCap, st.Open, st.TrackedIPs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0].Kind != verdict.EventConnRejected || events[0].Reason != ReasonPerIPCap ||
		events[0].IP != netip.MustParseAddr("127.0.0.2") {
		t.Fatalf("events = %+v", events)
	}
}

func TestGlobalCap(t *testing.T) {
	ts := startServer(t, Options{MaxConns: 3}, okHandler())
	for _, src := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		holdConn(t, src, ts.addr)
	}
	if !refusedFrom(t, "127.0.0.5", ts.addr) {
		t.Fatal("connection over the global cap not closed")
	}
	if st := ts.s.Stats(); st.RejectedGlobalCap != 1 {
		t.Fatalf("RejectedGlobalCap = %d", st.RejectedGlobalCap)
	}
}

func TestCapsReleaseOnClose(t *testing.T) {
	ts := startServer(t, Options{MaxConnsPerIP: 1}, okHandler())
	c := holdConn(t, "127.0.0.6", ts.addr)
	c.Close()
	waitFor(t, "slot released", 3*time.Second, func() bool { return ts.s.Stats().Open == 0 })
	holdConn(t, "127.0.0.6", ts.addr)
	if st := ts.s.Stats(); st.RejectedPerIPCap != 0 || st.TrackedIPs != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestDeniedBeforeTLS(t *testing.T) {
	topt, _, _ := tlsOptions(t)
	denied := netip.MustParseAddr("127.0.0.7")
	ts := startServer(t, Options{TLS: topt, Denied: func(a netip.Addr) bool { return a == denied }}, okHandler())
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.7")}, Timeout: 3 * time.Second}
	if c, err := d.Dial("tcp", ts.addr); err == nil {
		tc := tls.Client(c, insecureTLS())
		tc.SetDeadline(time.Now().Add(3 * time.Second))
		if err := tc.Handshake(); err == nil {
			t.Fatal("handshake from a denied address succeeded")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("handshake timed out instead of being refused: %v", err)
		}
		c.Close()
	}
	waitFor(t, "denied counted", 3*time.Second, func() bool { return ts.s.Stats().RejectedDenied == 1 })
	st := ts.s.Stats()
	if st.RejectedDenied != 1 || st.TLSHandshakes != 0 {
		t.Fatalf("denied=%d handshakes=%d", st.RejectedDenied, st.TLSHandshakes)
	}
	// An allowed address completes TLS.
	ok := dialFrom(t, "127.0.0.8", ts.addr)
	okc := tls.Client(ok, insecureTLS("http/1.1"))
	okc.SetDeadline(time.Now().Add(3 * time.Second))
	if err := okc.Handshake(); err != nil {
		t.Fatalf("allowed handshake: %v", err)
	}
	if st := ts.s.Stats(); st.TLSHandshakes != 1 {
		t.Fatalf("handshakes = %d", st.TLSHandshakes)
	}
}

func TestSetOptionsLive(t *testing.T) {
	ts := startServer(t, Options{MaxConnsPerIP: 1}, okHandler())
	held := holdConn(t, "127.0.0.9", ts.addr)
	if err := ts.s.SetOptions(Options{MaxConnsPerIP: 2, Logger: quietLogger()}); err != nil {
		t.Fatal(err)
	}
	holdConn(t, "127.0.0.9", ts.addr) // allowed by the new cap
	// The connection from before the reload still works.
	io.WriteString(held, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	held.SetReadDeadline(time.Now().Add(3 * time.Second))
	if resp := readResponse(t, bufio.NewReader(held), "GET"); resp.StatusCode != 200 {
		t.Fatalf("old conn status %d", resp.StatusCode)
	}
	if err := ts.s.SetOptions(Options{ProxyProtocol: true, ProxyTrusted: func(netip.Addr) bool { return true }}); err == nil {
		t.Fatal("SetOptions accepted a PROXY change")
	}
	if err := ts.s.SetOptions(Options{MaxHeaderBytes: 10}); err == nil {
		t.Fatal("SetOptions accepted an invalid value")
	}
}

func TestNewServerValidates(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"negative timeout", Options{ReadHeaderTimeout: -1}},
		{"proxy without trust", Options{ProxyProtocol: true}},
		{"tls without certs", Options{TLS: &TLSOptions{}}},
		{"acme without cache", Options{TLS: &TLSOptions{ACMEDomains: []string{"example.org"}}}},
		{"tls 1.1", Options{TLS: &TLSOptions{ACMEDomains: []string{"a"}, ACMECacheDir: "/tmp/x", MinVersion: tls.VersionTLS11}}},
		{"missing cert file", Options{TLS: &TLSOptions{CertFile: "/nonexistent/c", KeyFile: "/nonexistent/k"}}},
		{"tiny header cap", Options{MaxHeaderBytes: 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewServer(tc.o, okHandler()); err == nil {
				t.Fatal("NewServer accepted invalid options")
			}
		})
	}
	if _, err := NewServer(Options{}, nil); err == nil {
		t.Fatal("NewServer accepted a nil handler")
	}
}

func TestMaxConnsFor(t *testing.T) {
	tests := []struct {
		nofile uint64
		want   int
	}{{256, 64}, {1024, 256}, {20000, 9744}, {1 << 20, DefaultMaxConnsCeiling}}
	for _, tc := range tests {
		if got := maxConnsFor(tc.nofile); got != tc.want {
			t.Errorf("maxConnsFor(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
}

func TestGateKeyIPv6Prefix(t *testing.T) {
	a := gateKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"), 64)
	b := gateKey(netip.MustParseAddr("2001:db8:1:2:bbbb::2"), 64)
	c := gateKey(netip.MustParseAddr("::ffff:192.0.2.1"), 64)
	if a != b || c != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("keys: %v %v %v", a, b, c)
	}
}
