package iplist

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestSetContains(t *testing.T) {
	s := NewSet(prefixes("10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32", "2001:db8:ffff::1/128"),
		prefixes("198.51.100.0/24"))
	tests := []struct {
		ip   string
		want bool
	}{
		{"10.0.0.0", true},
		{"10.255.255.255", true},
		{"9.255.255.255", false},
		{"11.0.0.0", false},
		{"192.0.2.1", true},
		{"192.0.2.0", false},
		{"192.0.2.2", false},
		{"198.51.100.200", true},
		{"::ffff:10.1.2.3", true},                        // 4in6 is unmapped
		{"::ffff:192.0.2.2", false},                      // still a miss
		{"::a00:1", false},                               // IPv4-compatible, not mapped: IPv6
		{"2001:db8::", true},                             // first address
		{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true}, // last address
		{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false},
		{"2001:db9::", false},
		{"2001:db8::1%eth0", true}, // zone ignored
		{"fe80::1", false},
	}
	for _, tt := range tests {
		if got := s.Contains(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
	if s.Contains(netip.Addr{}) {
		t.Error("the invalid Addr is in the set")
	}
}

func TestSetDefaultRoutes(t *testing.T) {
	v4 := NewSet(prefixes("0.0.0.0/0"))
	v6 := NewSet(prefixes("::/0"))
	a4, a6, m4 := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("2001:db8::9"), netip.MustParseAddr("::ffff:203.0.113.9")
	if !v4.Contains(a4) || !v4.Contains(m4) || v4.Contains(a6) {
		t.Error("0.0.0.0/0 must hold every IPv4 address (mapped or not) and no IPv6 one")
	}
	if !v6.Contains(a6) || v6.Contains(a4) || v6.Contains(m4) {
		t.Error("::/0 must hold every IPv6 address and no IPv4 one, mapped or not")
	}
	mapped := NewSet(prefixes("::ffff:0:0/96"))
	if !mapped.Contains(a4) || mapped.Contains(a6) {
		t.Error("::ffff:0:0/96 must be read as 0.0.0.0/0")
	}
}

func TestSetEmpty(t *testing.T) {
	var zero Set
	var nilSet *Set
	ip := netip.MustParseAddr("10.0.0.1")
	for name, s := range map[string]*Set{"zero": &zero, "nil": nilSet, "no lists": NewSet(), "empty list": NewSet(nil)} {
		if s.Contains(ip) || s.Len() != 0 || len(s.Prefixes()) != 0 {
			t.Errorf("%s set is not empty", name)
		}
	}
}

func TestSetNormalises(t *testing.T) {
	s := NewSet(
		prefixes("192.0.2.77/24", "192.0.2.0/24", "::ffff:192.0.2.0/120", "10.0.0.0/8", "2001:db8::/32", "10.1.0.0/16"),
		[]netip.Prefix{{}}, // invalid: skipped
		[]netip.Prefix{netip.PrefixFrom(netip.MustParseAddr("fe80::1%eth0"), 64)},
	)
	want := []string{"10.0.0.0/8", "10.1.0.0/16", "192.0.2.0/24", "2001:db8::/32", "fe80::/64"}
	var got []string
	for _, p := range s.Prefixes() {
		got = append(got, p.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Prefixes (-want +got):\n%s", diff)
	}
	if s.Len() != len(want) {
		t.Errorf("Len = %d, want %d", s.Len(), len(want))
	}
}

// TestSetMatchesBruteForce compares Contains with a linear scan over random
// nested and overlapping prefixes.
func TestSetMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	ps := genPrefixes(2000, r)
	s := NewSet(ps)
	for _, ip := range genAddrs(20000, r, ps) {
		want := false
		for _, p := range ps {
			if p.Contains(ip) {
				want = true
				break
			}
		}
		if got := s.Contains(ip); got != want {
			t.Fatalf("Contains(%v) = %v, brute force says %v", ip, got, want)
		}
	}
}

func TestSetContainsDoesNotAllocate(t *testing.T) {
	s := NewSet(prefixes("10.0.0.0/8", "2001:db8::/32"))
	ips := []netip.Addr{netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("::ffff:10.1.1.1"), netip.MustParseAddr("2001:db8::1")}
	if n := testing.AllocsPerRun(100, func() {
		for _, ip := range ips {
			s.Contains(ip)
		}
	}); n != 0 {
		t.Errorf("Contains allocates %v times", n)
	}
}

// genPrefixes makes n random prefixes: 80% IPv4 (/8 to /32, in a few /8s so
// that they nest and overlap), 20% IPv6 under 2001:db8::/32.
func genPrefixes(n int, r *rand.Rand) []netip.Prefix {
	out := make([]netip.Prefix, 0, n)
	for len(out) < n {
		if r.IntN(10) < 8 {
			b := [4]byte{byte(10 + r.IntN(4)), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
			p, _ := netip.AddrFrom4(b).Prefix(8 + r.IntN(25))
			out = append(out, p)
			continue
		}
		var b [16]byte
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
		for i := 4; i < 16; i++ {
			b[i] = byte(r.Uint32())
		}
		p, _ := netip.AddrFrom16(b).Prefix(32 + r.IntN(97))
		out = append(out, p)
	}
	return out
}

// genAddrs makes n addresses: half inside or at the edges of the given
// prefixes, half random IPv4 and IPv6 in the same regions.
func genAddrs(n int, r *rand.Rand, from []netip.Prefix) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		switch r.IntN(4) {
		case 0:
			out[i] = from[r.IntN(len(from))].Addr() // first address
		case 1:
			out[i] = from[r.IntN(len(from))].Addr().Prev() // just before
		case 2:
			out[i] = netip.AddrFrom4([4]byte{byte(9 + r.IntN(6)), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		default:
			var b [16]byte
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, byte(0xb7+r.IntN(3))
			for j := 4; j < 16; j++ {
				b[j] = byte(r.Uint32())
			}
			out[i] = netip.AddrFrom16(b)
		}
		if !out[i].IsValid() {
			out[i] = netip.MustParseAddr("10.0.0.1")
		}
	}
	return out
}
