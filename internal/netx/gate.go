package netx

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

const gateShards = 64

// connGate counts open connections in total and per client key. The per-key
// table is sharded by a hash of the key; an entry exists only while the key
// has an open connection, so the table never holds more keys than there are
// open connections, which MaxConns bounds. Safe for concurrent use.
type connGate struct {
	open   atomic.Int64
	shards [gateShards]gateShard
}

type gateShard struct {
	mu sync.Mutex
	m  map[netip.Addr]int32
	_  [40]byte // keep shards on separate cache lines
}

// gateKey is the key the per-IP cap counts by: the address itself for IPv4,
// its prefix of v6bits for IPv6.
func gateKey(ip netip.Addr, v6bits int) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() && v6bits < 128 {
		if p, err := ip.Prefix(v6bits); err == nil {
			return p.Addr()
		}
	}
	return ip
}

func (g *connGate) shard(k netip.Addr) *gateShard {
	b := k.As16()
	h := uint32(2166136261)
	for _, c := range b[8:] { // the varying half for v4 (mapped) and v6 prefixes
		h = (h ^ uint32(c)) * 16777619
	}
	for _, c := range b[:8] {
		h = (h ^ uint32(c)) * 16777619
	}
	return &g.shards[h%gateShards]
}

// acquireGlobal takes one slot of the global cap.
func (g *connGate) acquireGlobal(max int) bool {
	if g.open.Add(1) > int64(max) {
		g.open.Add(-1)
		return false
	}
	return true
}

func (g *connGate) releaseGlobal() { g.open.Add(-1) }

// acquireKey takes one slot of key k's cap.
func (g *connGate) acquireKey(k netip.Addr, max int) bool {
	s := g.shard(k)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[netip.Addr]int32)
	}
	n := s.m[k]
	if int(n) >= max {
		s.mu.Unlock()
		return false
	}
	s.m[k] = n + 1
	s.mu.Unlock()
	return true
}

func (g *connGate) releaseKey(k netip.Addr) {
	s := g.shard(k)
	s.mu.Lock()
	if n := s.m[k]; n <= 1 {
		delete(s.m, k)
	} else {
		s.m[k] = n - 1
	}
	s.mu.Unlock()
}

// size reports the number of keys with open connections.
func (g *connGate) size() int {
	n := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
