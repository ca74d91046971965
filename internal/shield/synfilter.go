package shield

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/rampart-shield/rampart/internal/config"
	"github.com/rampart-shield/rampart/internal/iplist"
)

// synFilter keeps the listeners' kernel SYN filter (netx.Server.SetSYNDeny)
// in step with the deny lists and blocks. syncSYNFilter runs at start,
// every second, soon after a block is added and at once on an admin block
// or unblock; it rebuilds the filter only when something changed.
type synFilter struct {
	mu        sync.Mutex
	blocksVer uint64
	deny      *iplist.Set
	allow     *iplist.Set
	cfg       *config.Config
	last      time.Time // last rebuild
	held      int       // prefixes in the filter
	wanted    int       // prefixes that should be in it
	failed    bool
	full      bool // some networks did not fit
}

// synMinInterval spaces rebuilds of the SYN filter while blocks pour in
// (a rebuild lists every block and assembles up to 4,000 instructions).
const synMinInterval = 200 * time.Millisecond

// syncSYNFilter rebuilds the SYN filter if the deny set, the blocks, the
// allow set or the configuration changed (or force).
func (s *Shield) syncSYNFilter(force bool) {
	f := &s.syn
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg := s.cfg.Load()
	ver, deny, allow := s.blocks.Version(), s.lists.deny.Load(), s.lists.allow.Load()
	if !force && f.cfg == cfg && f.blocksVer == ver && f.deny == deny && f.allow == allow {
		return
	}
	now := time.Now()
	if !force && now.Sub(f.last) < synMinInterval {
		return // blocks are pouring in: the next second's sync takes them
	}
	f.last = now
	f.cfg, f.blocksVer, f.deny, f.allow = cfg, ver, deny, allow
	s.mu.Lock()
	servers := append(s.servers[:0:0], s.servers...)
	s.mu.Unlock()

	var want []netip.Prefix
	if cfg.Lists.SYNFilter {
		want = synCandidates(cfg, deny, allow, s.blocks.List())
	} else if f.wanted == 0 {
		return
	}
	held, failed := 0, false
	for _, srv := range servers {
		n, err := srv.SetSYNDeny(want)
		if err != nil {
			failed = true
			if !f.failed {
				s.log.Warn("SYN filter not installed; denied and blocked networks are closed at accept instead", "err", err.Error())
			}
			continue
		}
		held = n
	}
	f.failed = failed
	// Warn once when the filter fills up (not at every rebuild while
	// blocks pour in), and say when it has room again.
	full := held < len(want) && !failed
	switch {
	case full && !f.full:
		s.log.Warn("SYN filter full: the rest of the denied and blocked networks are closed at accept", "in_filter", held, "denied_or_blocked", len(want))
	case !full && f.full:
		s.log.Info("SYN filter holds every denied and blocked network again", "in_filter", held)
	}
	f.full = full
	f.held, f.wanted = held, len(want)
}

// synCandidates lists what the SYN filter should drop, most important
// first: the deny lists, then blocks, newest first. Networks that overlap
// an allow list or a trusted proxy are left to the accept check, which
// knows the exceptions.
func synCandidates(cfg *config.Config, deny, allow *iplist.Set, blocks []iplist.Block) []netip.Prefix {
	keep := allow.Prefixes()
	for _, c := range cfg.Client.TrustedProxies {
		keep = append(keep, c.Prefix())
	}
	ok := func(p netip.Prefix) bool {
		for _, k := range keep {
			if p.Overlaps(k) {
				return false
			}
		}
		return true
	}
	var out []netip.Prefix
	for _, p := range deny.Prefixes() {
		if ok(p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(blocks, func(a, b iplist.Block) int { return b.Added.Compare(a.Added) })
	for _, b := range blocks {
		if ok(b.Prefix) {
			out = append(out, b.Prefix)
		}
	}
	return out
}

// SYNFilterHeld reports how many networks the kernel SYN filter holds and
// how many it should hold.
func (s *Shield) SYNFilterHeld() (held, wanted int) {
	s.syn.mu.Lock()
	defer s.syn.mu.Unlock()
	return s.syn.held, s.syn.wanted
}
