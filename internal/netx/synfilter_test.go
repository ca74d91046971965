package netx

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tryConnect dials addr from src with a short timeout and says what
// happened: "ok", "timeout" (the SYN went unanswered) or the error.
func tryConnect(src, addr string) string {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 500 * time.Millisecond}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout"
		}
		return err.Error()
	}
	c.Close()
	return "ok"
}

func requireLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the SYN filter is Linux only") // never on the CI machine, which is Linux
	}
}

// A SYN from a denied network goes unanswered (no handshake, nothing
// accepted, no accept-time rejection counted), other sources connect, an
// open connection from a network denied afterwards keeps working, and
// removing the filter lets the network back in.
func TestSYNFilterDropsDeniedSYNs(t *testing.T) {
	requireLinux(t)
	ts := startServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	open := dialFrom(t, "127.81.0.9", ts.addr)
	defer open.Close()
	waitAccepted := func(n uint64) {
		deadline := time.Now().Add(2 * time.Second)
		for ts.s.Stats().Accepted < n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitAccepted(1)

	held, err := ts.s.SetSYNDeny([]netip.Prefix{
		netip.MustParsePrefix("127.81.0.0/16"),
		netip.MustParsePrefix("127.82.3.4/32"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("::ffff:127.86.0.0/112"), // an IPv4 network written IPv6-style
	})
	if err != nil || held != 4 {
		t.Fatalf("SetSYNDeny: held %d, %v", held, err)
	}
	before := ts.s.Stats()
	for _, src := range []string{"127.81.0.1", "127.81.200.7", "127.82.3.4", "127.86.9.9"} {
		if got := tryConnect(src, ts.addr); got != "timeout" {
			t.Errorf("denied %s: %s, want an unanswered SYN", src, got)
		}
	}
	for _, src := range []string{"127.82.3.5", "127.83.0.1", "127.0.0.1"} {
		if got := tryConnect(src, ts.addr); got != "ok" {
			t.Errorf("%s: %s, want a connection", src, got)
		}
	}
	waitAccepted(before.Accepted + 3)
	after := ts.s.Stats()
	if after.Accepted != before.Accepted+3 || after.RejectedDenied != before.RejectedDenied {
		t.Errorf("accepted %d -> %d, rejected at accept %d -> %d: the denied SYNs reached user space",
			before.Accepted, after.Accepted, before.RejectedDenied, after.RejectedDenied)
	}

	// The connection opened before the filter still carries requests.
	fmt.Fprintf(open, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	open.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 256)
	n, err := open.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "200 OK") {
		t.Fatalf("open connection after the filter: %q %v", buf[:n], err)
	}

	if _, err := ts.s.SetSYNDeny(nil); err != nil {
		t.Fatal(err)
	}
	if got := tryConnect("127.81.0.1", ts.addr); got != "ok" {
		t.Errorf("after removing the filter: %s", got)
	}
}

// IPv6 sources are matched on their IPv6 address; IPv4 clients of a
// dual-stack listener on theirs.
func TestSYNFilterIPv6(t *testing.T) {
	requireLinux(t)
	l, err := Listen(t.Context(), "tcp", "[::]:0")
	if err != nil {
		t.Skipf("no IPv6 here: %v", err) // the CI machine has ::1
	}
	s, err := NewServer(Options{Logger: quietLogger()}, http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	port := l.Addr().(*net.TCPAddr).Port
	v6 := fmt.Sprintf("[::1]:%d", port)
	v4 := fmt.Sprintf("127.0.0.1:%d", port)
	if _, err := s.SetSYNDeny([]netip.Prefix{netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("127.84.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	if got := tryConnect("::1", v6); got != "ok" {
		t.Errorf("::1 with other networks denied: %s", got)
	}
	// Serve is running (it accepted that one), so its listener has the
	// filter: SetSYNDeny attaches it to the listeners served, Serve to a
	// listener it starts on.
	for deadline := time.Now().Add(2 * time.Second); s.Stats().Accepted == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := tryConnect("127.84.1.1", v4); got != "timeout" {
		t.Errorf("denied IPv4 client of a dual-stack listener: %s", got)
	}
	if _, err := s.SetSYNDeny([]netip.Prefix{netip.MustParsePrefix("::1/128")}); err != nil {
		t.Fatal(err)
	}
	if got := tryConnect("::1", v6); got != "timeout" {
		t.Errorf("denied ::1: %s", got)
	}
	if got := tryConnect("127.0.0.1", v4); got != "ok" {
		t.Errorf("IPv4 with ::1 denied: %s", got)
	}
}

// The program is bounded: prefixes beyond its size are left out (and
// reported), and the kernel accepts the largest program.
func TestSYNFilterBounded(t *testing.T) {
	requireLinux(t)
	var ps []netip.Prefix
	for i := range 5000 {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	prog, n, err := synProgram(ps)
	if err != nil {
		t.Fatal(err)
	}
	if n >= len(ps) || n < 900 || len(prog) > maxSYNProgram {
		t.Fatalf("held %d of %d in %d instructions", n, len(ps), len(prog))
	}
	ts := startServer(t, Options{}, http.NotFoundHandler())
	c := dialFrom(t, "127.0.0.1", ts.addr) // Serve is running: its listener is tracked
	c.Close()
	for deadline := time.Now().Add(2 * time.Second); ts.s.Stats().Accepted == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	held, err := ts.s.SetSYNDeny(ps)
	if err != nil || held != n {
		t.Fatalf("the kernel refused the largest program: held %d, %v", held, err)
	}
	if got := tryConnect("127.0.0.1", ts.addr); got != "ok" {
		t.Errorf("with a full filter: %s", got)
	}
	t.Logf("%d instructions for %d IPv4 prefixes", len(prog), n)
}
