package netx

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// proxyV2 builds a v2 header: cmd 1 = PROXY, 0 = LOCAL.
func proxyV2(cmd byte, src, dst netip.AddrPort, tlv []byte) []byte {
	b := append([]byte(nil), proxyV2Sig...)
	b = append(b, 0x20|cmd)
	var addrs []byte
	fam := byte(0x11)
	if src.Addr().Is6() {
		fam = 0x21
		s, d := src.Addr().As16(), dst.Addr().As16()
		addrs = append(append(addrs, s[:]...), d[:]...)
	} else if src.IsValid() {
		s, d := src.Addr().As4(), dst.Addr().As4()
		addrs = append(append(addrs, s[:]...), d[:]...)
	} else {
		fam = 0
	}
	if src.IsValid() {
		addrs = binary.BigEndian.AppendUint16(addrs, src.Port())
		addrs = binary.BigEndian.AppendUint16(addrs, dst.Port())
	}
	addrs = append(addrs, tlv...)
	b = append(b, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)))
	return append(b, addrs...)
}

var (
	ap4a = netip.MustParseAddrPort("203.0.113.7:4321")
	ap4b = netip.MustParseAddrPort("192.0.2.1:443")
	ap6a = netip.MustParseAddrPort("[2001:db8::1]:4321")
	ap6b = netip.MustParseAddrPort("[2001:db8::2]:443")
)

var proxyCases = []struct {
	name    string
	in      []byte
	want    ProxyHeader
	wantN   int // 0: len(in)
	wantErr error
}{
	{"v1 tcp4", []byte("PROXY TCP4 203.0.113.7 192.0.2.1 4321 443\r\nGET"), ProxyHeader{Version: 1, Source: ap4a, Dest: ap4b}, 43, nil},
	{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 4321 443\r\n"), ProxyHeader{Version: 1, Source: ap6a, Dest: ap6b}, 0, nil},
	{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), ProxyHeader{Version: 1, Local: true}, 0, nil},
	{"v1 unknown with addresses", []byte("PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"), ProxyHeader{Version: 1, Local: true}, 0, nil},
	{"v1 incomplete", []byte("PROXY TCP4 203.0.113.7 192.0"), ProxyHeader{}, 0, ErrProxyIncomplete},
	{"v1 prefix only", []byte("PRO"), ProxyHeader{}, 0, ErrProxyIncomplete},
	{"v1 bad family", []byte("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), ProxyHeader{}, 0, ErrProxyInvalid},
	{"v1 v6 address under tcp4", []byte("PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n"), ProxyHeader{}, 0, ErrProxyInvalid},
	{"v1 bad port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n"), ProxyHeader{}, 0, ErrProxyInvalid},
	{"v1 leading zero port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n"), ProxyHeader{}, 0, ErrProxyInvalid},
	{"v1 extra field", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), ProxyHeader{}, 0, ErrProxyInvalid},
	{"v1 bare LF", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), ProxyHeader{}, 0, ErrProxyInvalid},
	{"v1 too long", append([]byte("PROXY TCP4 "), make([]byte, 200)...), ProxyHeader{}, 0, ErrProxyInvalid},
	{"not proxy", []byte("GET / HTTP/1.1\r\n"), ProxyHeader{}, 0, ErrProxyInvalid},
	{"v2 tcp4", proxyV2(1, ap4a, ap4b, nil), ProxyHeader{Version: 2, Source: ap4a, Dest: ap4b}, 0, nil},
	{"v2 tcp6 with tlv", proxyV2(1, ap6a, ap6b, []byte{0x05, 0, 2, 'h', 'i'}), ProxyHeader{Version: 2, Source: ap6a, Dest: ap6b}, 0, nil},
	{"v2 local", proxyV2(0, netip.AddrPort{}, netip.AddrPort{}, nil), ProxyHeader{Version: 2, Local: true}, 0, nil},
	{"v2 incomplete", proxyV2(1, ap4a, ap4b, nil)[:20], ProxyHeader{}, 0, ErrProxyIncomplete},
	{"v2 bad version", append(append([]byte(nil), proxyV2Sig...), 0x31, 0x11, 0, 12), ProxyHeader{}, 0, ErrProxyInvalid},
	{"v2 short address block", append(append([]byte(nil), proxyV2Sig...), 0x21, 0x11, 0, 4, 1, 2, 3, 4), ProxyHeader{}, 0, ErrProxyInvalid},
	{"v2 too long", append(append([]byte(nil), proxyV2Sig...), 0x21, 0x11, 0xff, 0xff), ProxyHeader{}, 0, ErrProxyInvalid},
}

func TestParseProxyHeader(t *testing.T) {
	for _, tc := range proxyCases {
		t.Run(tc.name, func(t *testing.T) {
			h, n, err := ParseProxyHeader(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			want := tc.wantN
			if want == 0 {
				want = len(tc.in)
			}
			if err != nil || h != tc.want || n != want {
				t.Fatalf("got %+v %d %v, want %+v %d", h, n, err, tc.want, want)
			}
		})
	}
}

func FuzzParseProxyHeader(f *testing.F) {
	for _, tc := range proxyCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseProxyHeader(b)
		if err != nil {
			if !errors.Is(err, ErrProxyIncomplete) && !errors.Is(err, ErrProxyInvalid) {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if n <= 0 || n > len(b) || (h.Version != 1 && h.Version != 2) {
			t.Fatalf("bad result %+v n=%d len=%d", h, n, len(b))
		}
		if !h.Local && (!h.Source.IsValid() || !h.Dest.IsValid()) {
			t.Fatalf("non-local header without addresses: %+v", h)
		}
		// A complete header parses the same with trailing bytes.
		h2, n2, err2 := ParseProxyHeader(append(append([]byte(nil), b[:n]...), "GET /"...))
		if err2 != nil || h2 != h || n2 != n {
			t.Fatalf("trailing bytes changed the result: %+v %d %v", h2, n2, err2)
		}
	})
}

func TestProxyProtocolServe(t *testing.T) {
	trusted := netip.MustParseAddr("127.0.0.1")
	deniedClient := netip.MustParseAddr("203.0.113.66")
	o := Options{
		ProxyProtocol: true,
		ProxyTrusted:  func(a netip.Addr) bool { return a == trusted },
		Denied:        func(a netip.Addr) bool { return a == deniedClient },
	}
	ts := startServer(t, o, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ci := ConnInfoFrom(r.Context())
		fmt.Fprintf(w, "%s %v", r.RemoteAddr, ci.Proxied)
	}))
	get := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct {
		name, src string
		send      []byte
		want      string // body, "" = connection refused
		status    int
	}{
		{"v1 from trusted", "127.0.0.1", []byte("PROXY TCP4 203.0.113.7 192.0.2.1 4321 443\r\n" + get), "203.0.113.7:4321 true", 200},
		{"v1 tcp6 from trusted", "127.0.0.1", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 4321 443\r\n" + get), "[2001:db8::1]:4321 true", 200},
		{"v2 from trusted", "127.0.0.1", append(proxyV2(1, ap4a, ap4b, nil), get...), "203.0.113.7:4321 true", 200},
		{"v2 local from trusted", "127.0.0.1", append(proxyV2(0, netip.AddrPort{}, netip.AddrPort{}, nil), get...), "127.0.0.1:", 200},
		{"missing header from trusted", "127.0.0.1", []byte(get), "", 0},
		{"denied client named by header", "127.0.0.1", []byte("PROXY TCP4 203.0.113.66 192.0.2.1 4321 443\r\n" + get), "", 0},
		{"header from untrusted peer is not honoured", "127.0.0.10", []byte("PROXY TCP4 203.0.113.7 192.0.2.1 4321 443\r\n" + get), "", 400},
		{"untrusted peer served directly", "127.0.0.10", []byte(get), "127.0.0.10:", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialFrom(t, tc.src, ts.addr)
			c.Write(tc.send)
			if tc.status == 0 {
				if !closedByPeer(c, 3*time.Second) {
					t.Fatal("connection not refused")
				}
				return
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			resp := readResponse(t, bufio.NewReader(c), "GET")
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || (tc.want != "" && !hasPrefix(string(body), tc.want)) {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.want)
			}
		})
	}
	st := ts.s.Stats()
	if st.RejectedProxyHeader != 1 || st.RejectedDenied != 1 {
		t.Fatalf("proxy-header=%d denied=%d", st.RejectedProxyHeader, st.RejectedDenied)
	}
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
