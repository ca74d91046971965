package iplist

import (
	"net/netip"

	"github.com/gaissmai/bart"
)

// Set is an immutable set of prefixes answering "is this address in any of
// them?", for the allow, deny and good-bot lists. It is a gaissmai/bart Lite
// trie (multibit, popcount-compressed, 8 bits a level): a lookup visits at
// most 4 nodes for IPv4 and 16 for IPv6 and does not allocate. It was chosen
// over sorted merged ranges with binary search by measurement: 20 ns against
// 52 ns at 10,000 prefixes and 30 ns against 82 ns at 100,000, at 29-37
// bytes a prefix against 44-48.
//
// The zero Set and the nil *Set are empty. A Set is never modified after
// NewSet, so it is safe for concurrent use; to change a list, build a new
// Set and swap it in whole (an atomic.Pointer).
type Set struct {
	lite *bart.Lite
}

// NewSet builds a set from any number of prefix lists. Invalid prefixes are
// skipped; the others are normalised as ParsePrefix does (host bits masked,
// IPv4-mapped prefixes of length 96 or more unmapped, zones dropped), and
// duplicates are kept once.
func NewSet(lists ...[]netip.Prefix) *Set {
	l := new(bart.Lite)
	for _, list := range lists {
		for _, p := range list {
			if p, ok := normalise(p); ok {
				l.Insert(p)
			}
		}
	}
	return &Set{lite: l}
}

// normalise masks p, drops a zone and unmaps an IPv4-mapped prefix of
// length >= 96.
func normalise(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	a, bits := p.Addr().WithZone(""), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	q, err := a.Prefix(bits)
	return q, err == nil
}

// Contains reports whether ip lies in any prefix of the set. An
// IPv4-mapped IPv6 address is looked up as its IPv4 address; a zone is
// ignored; the invalid Addr is in no set. It does not allocate.
func (s *Set) Contains(ip netip.Addr) bool {
	if s == nil || s.lite == nil {
		return false
	}
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	return s.lite.Contains(ip)
}

// Len returns the number of distinct prefixes in the set (after
// normalisation; a prefix covered by another still counts).
func (s *Set) Len() int {
	if s == nil || s.lite == nil {
		return 0
	}
	return s.lite.Size()
}

// Prefixes returns the set's distinct prefixes, normalised and sorted: IPv4
// before IPv6, then by address, a covering prefix before those it covers.
// It allocates a new slice on each call.
func (s *Set) Prefixes() []netip.Prefix {
	if s == nil || s.lite == nil {
		return nil
	}
	out := make([]netip.Prefix, 0, s.lite.Size())
	for p := range s.lite.AllSorted() {
		out = append(out, p)
	}
	return out
}
