package limiter

import (
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAllow is one decision on an existing key.
func BenchmarkAllow(b *testing.B) {
	tb := newTestTable(b, TableOptions{})
	p := mustParams(b, 1e6, 1000)
	const keys = 1024
	now := int64(1_700_000_000) * 1e9
	for k := uint64(1); k <= keys; k++ {
		tb.Allow(k, p, 1, now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := uint64(0)
	for b.Loop() {
		now += 1000
		i++
		tb.Allow(i%keys+1, p, 1, now)
	}
}

// BenchmarkAllowParallel is decisions from every P at once on a table of
// 64k live keys.
func BenchmarkAllowParallel(b *testing.B) {
	tb := newTestTable(b, TableOptions{})
	p := mustParams(b, 1e6, 1000)
	const keys = 1 << 16
	start := int64(1_700_000_000) * 1e9
	for k := uint64(1); k <= keys; k++ {
		tb.Allow(k, p, 1, start)
	}
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := seq.Add(1)
		i := g * 7919
		now := start
		for pb.Next() {
			i++
			now += 1000
			tb.Allow(i%keys+1, p, 1, now)
		}
	})
}

// BenchmarkKeyBuilder builds a rule + IP + User-Agent key.
func BenchmarkKeyBuilder(b *testing.B) {
	ip := netip.MustParseAddr("203.0.113.77")
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"
	var sink uint64
	b.ReportAllocs()
	for b.Loop() {
		var kb KeyBuilder
		kb.Reset("login-per-ip")
		kb.AddAddr(ip)
		kb.AddString(ua)
		sink += kb.Sum()
	}
	_ = sink
}

// BenchmarkStrike is one violation reported to the Escalator.
func BenchmarkStrike(b *testing.B) {
	e := newTestEscalator(b, EscalatorOptions{})
	now := int64(1_700_000_000) * 1e9
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		i++
		now += 1000
		e.Strike(i%4096+1, now)
	}
}

// BenchmarkLimiterMillionKeys fills a default-sized table (1<<20 slots)
// with 1,000,000 distinct keys and reports the heap it holds per key, and
// the share of the keys the table still held at the end (keys are all live:
// the clock does not move, so any shortfall is live evictions from buckets
// that received more than Ways keys).
func BenchmarkLimiterMillionKeys(b *testing.B) {
	const n = 1_000_000
	p := mustParams(b, 1, 10)
	var perKey, kept float64
	b.ReportAllocs()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tb, err := NewTable(TableOptions{Capacity: DefaultCapacity})
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now().UnixNano()
		var kb KeyBuilder
		for i := range uint64(n) {
			kb.Reset("bench")
			kb.AddUint64(i)
			tb.Allow(kb.Sum(), p, 1, now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perKey = float64(after.HeapAlloc-before.HeapAlloc) / n
		kept = float64(tb.Live(now)) / n
		runtime.KeepAlive(tb)
	}
	b.ReportMetric(perKey, "bytes/key")
	b.ReportMetric(kept*100, "%kept")
}
