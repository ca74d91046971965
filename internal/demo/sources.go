package demo

import (
	"container/heap"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
)

// topSources is a fixed-capacity heavy-hitter table (the Space-Saving
// algorithm of Metwally, Agrawal and El Abbadi): a map from address to entry
// and a min-heap of entries by count. A new address in a full table replaces
// the least counted entry and inherits its count (recorded as overcount), so
// every count is an upper bound and every source with more than N/capacity
// requests is in the table. One mutex guards it; add is O(log capacity).
type topSources struct {
	mu      sync.Mutex
	cap     int
	byAddr  map[netip.Addr]*sourceEntry
	entries sourceHeap
}

type sourceEntry struct {
	addr      netip.Addr
	count     uint64
	overcount uint64
	lastRole  Role
	index     int
}

type sourceHeap []*sourceEntry

func (h sourceHeap) Len() int           { return len(h) }
func (h sourceHeap) Less(i, j int) bool { return h[i].count < h[j].count }
func (h sourceHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *sourceHeap) Push(x any) {
	e := x.(*sourceEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *sourceHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newTopSources(capacity int) *topSources {
	return &topSources{
		cap:     capacity,
		byAddr:  make(map[netip.Addr]*sourceEntry, capacity),
		entries: make(sourceHeap, 0, capacity),
	}
}

func (t *topSources) add(a netip.Addr, r Role) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byAddr[a]; ok {
		e.count++
		e.lastRole = r
		heap.Fix(&t.entries, e.index)
		return
	}
	if len(t.entries) < t.cap {
		e := &sourceEntry{addr: a, count: 1, lastRole: r}
		t.byAddr[a] = e
		heap.Push(&t.entries, e)
		return
	}
	e := t.entries[0]
	delete(t.byAddr, e.addr)
	e.addr, e.overcount, e.lastRole = a, e.count, r
	e.count++
	t.byAddr[a] = e
	heap.Fix(&t.entries, 0)
}

func (t *topSources) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.byAddr)
	t.entries = t.entries[:0]
}

// snapshot returns the entries heaviest first (ties by address).
func (t *topSources) snapshot() []SourceCount {
	t.mu.Lock()
	out := make([]SourceCount, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, SourceCount{Addr: e.addr.String(), Requests: e.count, Overcount: e.overcount, LastRole: e.lastRole.String()})
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Requests != out[j].Requests {
			return out[i].Requests > out[j].Requests
		}
		return out[i].Addr < out[j].Addr
	})
	return out
}

// SourceAddr returns the client address the origin sees for r: the last
// X-Forwarded-For entry when the peer (remoteAddr, "host:port") is a loopback
// address and that entry parses as an IP address, otherwise the peer. It
// returns the zero Addr when neither parses. IPv4-mapped IPv6 addresses are
// unmapped.
func SourceAddr(remoteAddr string, h http.Header) netip.Addr {
	peer := parseHostAddr(remoteAddr)
	if !peer.IsLoopback() {
		return peer
	}
	xff := h.Values("X-Forwarded-For")
	if len(xff) == 0 {
		return peer
	}
	last := xff[len(xff)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	a, err := netip.ParseAddr(strings.TrimSpace(last))
	if err != nil {
		return peer
	}
	return a.Unmap().WithZone("")
}

func parseHostAddr(hostport string) netip.Addr {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}
