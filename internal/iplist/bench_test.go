package iplist

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkSetContains looks up addresses (half at prefix edges, half
// random) in sets of 10k and 100k random, nesting prefixes.
func BenchmarkSetContains(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, uint64(n)))
			ps := genPrefixes(n, r)
			before := heapInUse()
			s := NewSet(ps)
			perPrefix := float64(heapInUse()-before) / float64(n)
			addrs := genAddrs(4096, r, ps)
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				s.Contains(addrs[i&4095])
				i++
			}
			b.ReportMetric(perPrefix, "bytes/prefix")
			runtime.KeepAlive(s)
		})
	}
}

// fillBlocks adds n blocks: 90% single IPv4 addresses, 5% IPv4 /24s, 5%
// IPv6 /64s, so that IPv4 lookups probe two prefix lengths. It returns
// 4096 blocked addresses and 4096 random (almost surely unblocked) ones.
func fillBlocks(b *testing.B, n int) (bl *Blocks, hits, misses []netip.Addr) {
	bl, err := NewBlocks(BlocksOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 3))
	rand4 := func() netip.Addr {
		return netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	for i := range n {
		var p netip.Prefix
		switch i % 20 {
		case 0:
			p, _ = rand4().Prefix(24)
		case 1:
			var a [16]byte
			a[0], a[1], a[2], a[3] = 0x20, 0x01, 0x0d, 0xb8
			for j := 4; j < 8; j++ {
				a[j] = byte(r.Uint32())
			}
			p, _ = netip.AddrFrom16(a).Prefix(64)
		default:
			p = netip.PrefixFrom(rand4(), 32)
		}
		if _, err := bl.Add(p, time.Hour, "bench"); err != nil {
			b.Fatal(err)
		}
		if len(hits) < 4096 && i%20 > 1 {
			hits = append(hits, p.Addr())
		}
	}
	for len(misses) < 4096 {
		misses = append(misses, rand4())
	}
	return bl, hits, misses
}

// BenchmarkBlocksContains is the accept-time check against 100k blocks, for
// an address that is not blocked (the usual case: no clock read) and one
// that is (one clock read, which costs ~100 ns on this VM's kvm-clock).
func BenchmarkBlocksContains(b *testing.B) {
	bl, hits, misses := fillBlocks(b, 100_000)
	for _, c := range []struct {
		name  string
		addrs []netip.Addr
	}{{"miss", misses}, {"hit", hits}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bl.Contains(c.addrs[i&4095])
				i++
			}
		})
	}
}

// BenchmarkBlocksContainsParallel is the miss case from every P at once.
func BenchmarkBlocksContainsParallel(b *testing.B) {
	bl, _, misses := fillBlocks(b, 100_000)
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1)) * 1000
		for pb.Next() {
			bl.Contains(misses[i&4095])
			i++
		}
	})
}

// BenchmarkBlocksAdd adds new single-address blocks to a set of 100k, at
// capacity, so each Add also evicts the soonest-expiring entry; it reports
// the heap held per entry.
func BenchmarkBlocksAdd(b *testing.B) {
	const n = 100_000
	clk := newFakeClock()
	before := heapInUse()
	bl, err := NewBlocks(BlocksOptions{Capacity: n, Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		if _, err := bl.Add(p, time.Hour+time.Duration(i), "bench"); err != nil {
			b.Fatal(err)
		}
	}
	perEntry := float64(heapInUse()-before) / n
	b.ReportAllocs()
	b.ResetTimer()
	i := uint32(0)
	for b.Loop() {
		i++
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		if _, err := bl.Add(p, 2*time.Hour+time.Duration(i), "bench"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(perEntry, "bytes/entry")
}
