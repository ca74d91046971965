package challenge

import (
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// MaxRevocations is the number of prefix revocations kept at once. A
// revocation is dropped once no token issued before it can still be valid
// (after the longest ClearanceTTL); past the cap the oldest is dropped and
// the drop is logged. To revoke more at once, use RevokeAll.
const MaxRevocations = 1024

// revocation says: tokens used from, or bound to, an address in prefix and
// issued before at (unix nanoseconds) are refused.
type revocation struct {
	prefix netip.Prefix
	at     int64
}

// revocations is an immutable set of revocations with a longest-prefix
// table whose value for each prefix is the latest revocation time of that
// prefix and of every prefix containing it, so one lookup answers "the
// latest revocation covering this address".
type revocations struct {
	list []revocation // oldest first
	tab  *bart.Table[int64]
}

// with returns a new set holding r's entries newer than cutoff, plus add,
// capped at MaxRevocations (oldest dropped first); dropped counts entries
// removed by the cap.
func (r *revocations) with(add revocation, cutoff int64) (next *revocations, dropped int) {
	var list []revocation
	if r != nil {
		for _, e := range r.list {
			if e.at > cutoff && e.prefix != add.prefix {
				list = append(list, e)
			}
		}
	}
	list = append(list, add)
	if over := len(list) - MaxRevocations; over > 0 {
		list = slices.Delete(list, 0, over)
		dropped = over
	}
	next = &revocations{list: list, tab: new(bart.Table[int64])}
	// Insert shorter prefixes first: the longest-prefix match of an entry
	// then already carries the latest time of all its supernets.
	byLen := slices.Clone(list)
	slices.SortStableFunc(byLen, func(a, b revocation) int { return a.prefix.Bits() - b.prefix.Bits() })
	for _, e := range byLen {
		at := e.at
		if sup, ok := next.tab.LookupPrefix(e.prefix); ok {
			at = max(at, sup)
		}
		next.tab.Insert(e.prefix, at)
	}
	return next, dropped
}

// revokedAt returns the latest revocation time covering a, or 0.
func (r *revocations) revokedAt(a netip.Addr) int64 {
	if r == nil {
		return 0
	}
	at, _ := r.tab.Lookup(a)
	return at
}
