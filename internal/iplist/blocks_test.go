package iplist

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestBlocks(t testing.TB, capacity int, clk *fakeClock) *Blocks {
	t.Helper()
	b, err := NewBlocks(BlocksOptions{Capacity: capacity, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustAdd(t testing.TB, b *Blocks, p string, ttl time.Duration, reason string) Block {
	t.Helper()
	blk, err := b.Add(netip.MustParsePrefix(p), ttl, reason)
	if err != nil {
		t.Fatalf("Add(%s, %v): %v", p, ttl, err)
	}
	return blk
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestMasks(t *testing.T) {
	a4 := addr4(addr("203.0.113.77"))
	for l := 0; l <= 32; l++ {
		p, _ := addr("203.0.113.77").Prefix(l)
		if got := mask4(a4, l); got != addr4(p.Addr()) {
			t.Errorf("mask4(/%d) = %#x, want %v", l, got, p)
		}
	}
	ip6 := addr("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff")
	for l := 0; l <= 128; l++ {
		p, _ := ip6.Prefix(l)
		if got := mask6(addr6(ip6), l); got != addr6(p.Addr()) {
			t.Errorf("mask6(/%d) = %#x, want %v", l, got, p)
		}
	}
}

func TestNewBlocksValidation(t *testing.T) {
	for _, o := range []BlocksOptions{{Capacity: -1}, {Shards: -1}, {Shards: 1 << 20}} {
		if _, err := NewBlocks(o); err == nil {
			t.Errorf("NewBlocks(%+v) accepted", o)
		}
	}
	b, err := NewBlocks(BlocksOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Capacity != DefaultBlocksCapacity || len(b.shards) != DefaultBlocksShards {
		t.Errorf("defaults not applied: %+v, %d shards", st, len(b.shards))
	}
	for _, tc := range []struct {
		p   netip.Prefix
		ttl time.Duration
	}{{netip.Prefix{}, time.Minute}, {netip.MustParsePrefix("10.0.0.1/32"), 0}, {netip.MustParsePrefix("10.0.0.1/32"), -time.Second}} {
		if _, err := b.Add(tc.p, tc.ttl, "x"); err == nil {
			t.Errorf("Add(%v, %v) accepted", tc.p, tc.ttl)
		}
	}
}

func TestBlocksTTL(t *testing.T) {
	clk := newFakeClock()
	b := newTestBlocks(t, 0, clk)
	start := clk.Now()
	blk := mustAdd(t, b, "203.0.113.7/32", time.Minute, "rate-limit")
	want := Block{Prefix: netip.MustParsePrefix("203.0.113.7/32"), Reason: "rate-limit", Added: start, Expires: start.Add(time.Minute)}
	if !blockEqual(blk, want) {
		t.Fatalf("Add returned %+v, want %+v", blk, want)
	}
	ip := addr("203.0.113.7")
	if !b.Contains(ip) || b.Contains(addr("203.0.113.8")) {
		t.Fatal("Contains wrong right after Add")
	}
	clk.Advance(time.Minute - 1)
	if !b.Contains(ip) {
		t.Fatal("block ended early")
	}
	clk.Advance(1)
	if b.Contains(ip) {
		t.Fatal("block outlived its TTL")
	}
	if _, ok := b.Lookup(ip); ok {
		t.Fatal("Lookup found an expired block")
	}
	if len(b.List()) != 0 {
		t.Fatal("List shows an expired block")
	}
	if b.Len() != 1 {
		t.Fatalf("Len = %d before Sweep, want 1", b.Len())
	}
	if n := b.Sweep(); n != 1 || b.Len() != 0 {
		t.Fatalf("Sweep dropped %d, Len %d; want 1, 0", n, b.Len())
	}
	if st := b.Stats(); st.Expired != 1 || st.Evictions != 0 {
		t.Errorf("Stats = %+v", st)
	}
	if b.lens4.Load() != 0 {
		t.Errorf("length mask %b left behind after the last /32 went", b.lens4.Load())
	}
}

func blockEqual(a, b Block) bool {
	return a.Prefix == b.Prefix && a.Reason == b.Reason && a.Added.Equal(b.Added) && a.Expires.Equal(b.Expires)
}

func TestBlocksReAdd(t *testing.T) {
	clk := newFakeClock()
	b := newTestBlocks(t, 0, clk)
	start := clk.Now()
	mustAdd(t, b, "192.0.2.1/32", 10*time.Minute, "first")
	clk.Advance(time.Minute)

	// A shorter block does not shorten the existing one.
	blk := mustAdd(t, b, "192.0.2.1/32", time.Minute, "second")
	if !blk.Expires.Equal(start.Add(10*time.Minute)) || blk.Reason != "first" || !blk.Added.Equal(start) {
		t.Fatalf("shorter re-add changed the block: %+v", blk)
	}
	// A longer one extends it and takes its reason; Added stays.
	blk = mustAdd(t, b, "::ffff:192.0.2.1/128", time.Hour, "escalated")
	if !blk.Expires.Equal(start.Add(time.Minute+time.Hour)) || blk.Reason != "escalated" || !blk.Added.Equal(start) {
		t.Fatalf("longer re-add: %+v", blk)
	}
	if b.Len() != 1 {
		t.Fatalf("Len = %d, want 1 (the 4in6 form is the same block)", b.Len())
	}
	// Re-adding after expiry (before a sweep) starts a new block.
	clk.Advance(2 * time.Hour)
	now := clk.Now()
	blk = mustAdd(t, b, "192.0.2.1/32", time.Minute, "again")
	if !blk.Added.Equal(now) || !blk.Expires.Equal(now.Add(time.Minute)) || blk.Reason != "again" {
		t.Fatalf("re-add after expiry: %+v", blk)
	}
	if !b.Contains(addr("192.0.2.1")) {
		t.Fatal("re-added block not in force")
	}
}

func TestBlocksLookupLongestPrefix(t *testing.T) {
	clk := newFakeClock()
	b := newTestBlocks(t, 0, clk)
	mustAdd(t, b, "10.0.0.0/8", time.Hour, "wide")
	mustAdd(t, b, "10.1.0.0/16", time.Minute, "mid")
	mustAdd(t, b, "10.1.2.3/32", time.Second, "host")
	mustAdd(t, b, "2001:db8::/32", time.Hour, "v6-wide")
	mustAdd(t, b, "2001:db8:1:2::/64", time.Hour, "v6-64")
	mustAdd(t, b, "2001:db8:1:2::99/128", time.Hour, "v6-host")
	mustAdd(t, b, "::/0", time.Hour, "all-v6")

	tests := []struct {
		ip, want string
	}{
		{"10.1.2.3", "host"},
		{"10.1.2.4", "mid"},
		{"10.2.0.0", "wide"},
		{"::ffff:10.1.2.3", "host"},
		{"2001:db8:1:2::99", "v6-host"},
		{"2001:db8:1:2::98", "v6-64"},
		{"2001:db8:1:3::", "v6-wide"},
		{"2001:db9::1", "all-v6"},
		{"fe80::1%eth0", "all-v6"},
		{"11.0.0.0", ""},
	}
	check := func(when string) {
		for _, tt := range tests {
			blk, ok := b.Lookup(addr(tt.ip))
			if got := blk.Reason; ok != (tt.want != "") || got != tt.want {
				t.Errorf("%s: Lookup(%s) = %q, %v; want %q", when, tt.ip, got, ok, tt.want)
			}
			if b.Contains(addr(tt.ip)) != (tt.want != "") {
				t.Errorf("%s: Contains(%s) disagrees with Lookup", when, tt.ip)
			}
		}
	}
	check("all in force")

	// When the host block expires the next longest takes over.
	clk.Advance(time.Second)
	tests[0].want, tests[3].want = "mid", "mid"
	check("host expired")

	// Removing is exact: removing the /16 leaves the /8.
	if !b.Remove(netip.MustParsePrefix("10.1.0.0/16")) {
		t.Fatal("Remove of a live block reported false")
	}
	if b.Remove(netip.MustParsePrefix("10.1.0.0/16")) {
		t.Fatal("second Remove reported true")
	}
	if b.Remove(netip.MustParsePrefix("10.1.2.3/32")) {
		t.Fatal("Remove of an expired block reported true")
	}
	tests[0].want, tests[1].want, tests[3].want = "wide", "wide", "wide"
	check("after removals")

	if b.Contains(netip.Addr{}) {
		t.Error("the invalid Addr is blocked")
	}
}

func TestBlocksList(t *testing.T) {
	clk := newFakeClock()
	b := newTestBlocks(t, 0, clk)
	mustAdd(t, b, "2001:db8::/32", time.Hour, "c")
	mustAdd(t, b, "192.0.2.0/24", time.Hour, "b")
	mustAdd(t, b, "192.0.2.1/32", time.Second, "gone")
	mustAdd(t, b, "10.0.0.1/32", time.Hour, "a")
	mustAdd(t, b, "192.0.2.0/25", time.Hour, "b2")
	clk.Advance(time.Second)
	var got []string
	for _, blk := range b.List() {
		got = append(got, blk.Prefix.String()+"="+blk.Reason)
	}
	want := "10.0.0.1/32=a 192.0.2.0/24=b 192.0.2.0/25=b2 2001:db8::/32=c"
	if strings.Join(got, " ") != want {
		t.Errorf("List = %v, want %s", got, want)
	}
}

func TestBlocksCapacity(t *testing.T) {
	clk := newFakeClock()
	b := newTestBlocks(t, 3, clk)
	mustAdd(t, b, "10.0.0.1/32", 3*time.Minute, "a")
	mustAdd(t, b, "10.0.0.2/32", 1*time.Minute, "b")
	mustAdd(t, b, "10.0.0.3/32", 2*time.Minute, "c")

	// Full: a block that would expire first is itself left out.
	if _, err := b.Add(netip.MustParsePrefix("10.0.0.4/32"), 30*time.Second, "d"); !errors.Is(err, ErrFull) {
		t.Fatalf("Add of the soonest-expiring block: %v, want ErrFull", err)
	}
	// A later-expiring one evicts the soonest-expiring entry (b).
	mustAdd(t, b, "10.0.0.5/32", 5*time.Minute, "e")
	if b.Contains(addr("10.0.0.2")) || !b.Contains(addr("10.0.0.1")) || !b.Contains(addr("10.0.0.3")) || !b.Contains(addr("10.0.0.5")) {
		t.Fatalf("wrong victim: %v", b.List())
	}
	st := b.Stats()
	if st.Len != 3 || st.Evictions != 1 || st.Refused != 1 {
		t.Fatalf("Stats = %+v", st)
	}
	// Extending an existing block never needs room.
	mustAdd(t, b, "10.0.0.3/32", time.Hour, "c")
	// After 3m, a (3m) has expired; a new block takes its room without
	// an eviction.
	clk.Advance(3 * time.Minute)
	mustAdd(t, b, "10.0.0.6/32", time.Second, "f")
	st = b.Stats()
	if st.Len != 3 || st.Evictions != 1 || st.Expired != 1 {
		t.Fatalf("after reusing an expired entry's room: %+v", st)
	}
	if !b.Contains(addr("10.0.0.6")) || !b.Contains(addr("10.0.0.3")) || !b.Contains(addr("10.0.0.5")) {
		t.Fatalf("lost a live block: %v", b.List())
	}
}

func TestBlocksReasonCapped(t *testing.T) {
	b := newTestBlocks(t, 0, newFakeClock())
	blk := mustAdd(t, b, "10.0.0.1/32", time.Minute, strings.Repeat("r", 1000))
	if len(blk.Reason) != MaxReasonLength {
		t.Errorf("reason kept at %d bytes, want %d", len(blk.Reason), MaxReasonLength)
	}
}

func TestBlocksConcurrent(t *testing.T) {
	clk := newFakeClock()
	b := newTestBlocks(t, 500, clk)
	// A permanent block that readers must always see.
	mustAdd(t, b, "203.0.113.0/24", 1000*time.Hour, "perm")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				p := netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/%d", w, i%256, 24+i%9))
				if _, err := b.Add(p, time.Duration(1+i%50)*time.Second, "w"); err != nil && !errors.Is(err, ErrFull) {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					b.Remove(p)
				}
				if i%100 == 0 {
					clk.Advance(time.Second)
					b.Sweep()
					b.List()
					b.Stats()
				}
			}
		}()
	}
	readers := sync.WaitGroup{}
	for range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if !b.Contains(addr(fmt.Sprintf("203.0.113.%d", i%256))) {
					t.Error("permanent block not seen")
					return
				}
				b.Lookup(addr(fmt.Sprintf("10.%d.%d.1", i%3, i%256)))
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if st := b.Stats(); st.Len > 500 {
		t.Errorf("Len %d over capacity 500", st.Len)
	}
	// The bookkeeping agrees with the maps.
	n := 0
	for i := range b.shards {
		for _, m := range b.shards[i].v4 {
			n += len(m)
		}
		for _, m := range b.shards[i].v6 {
			n += len(m)
		}
	}
	if n != b.Len() {
		t.Errorf("maps hold %d entries, heap %d", n, b.Len())
	}
}

func TestBlocksContainsDoesNotAllocate(t *testing.T) {
	b := newTestBlocks(t, 0, newFakeClock())
	mustAdd(t, b, "10.0.0.1/32", time.Hour, "x")
	mustAdd(t, b, "2001:db8::/48", time.Hour, "y")
	mustAdd(t, b, "192.0.2.0/24", time.Hour, "z")
	ips := []netip.Addr{addr("10.0.0.1"), addr("10.0.0.2"), addr("::ffff:192.0.2.9"), addr("2001:db8::1"), addr("2001:db9::1")}
	if n := testing.AllocsPerRun(100, func() {
		for _, ip := range ips {
			b.Contains(ip)
		}
	}); n != 0 {
		t.Errorf("Contains allocates %v times", n)
	}
}
