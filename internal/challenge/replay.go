package challenge

import (
	"sync"
	"sync/atomic"
)

// replayShards is the number of independently locked parts of the filter.
const replayShards = 16

// replayProbe is how many slots an insertion looks at before it evicts.
const replayProbe = 8

// replayFilter remembers redeemed challenges so that each is redeemed once.
//
// It is a fixed-size set of 64-bit fingerprints of challenge seeds (random,
// chosen by us, so an attacker cannot aim at a slot) in two generations: a
// challenge belongs to the generation floor(expires/span), where span is the
// challenge lifetime, so every unexpired challenge falls in one of two
// consecutive generations. A table whose generation has passed is cleared
// when the next one starts; expired challenges are refused before they reach
// the filter, so forgetting them is safe. Issuing a challenge touches nothing
// here: only a verified solution costs a slot.
//
// When the probe window of a fingerprint is full, the first slot of the
// window is overwritten (counted in evictions): under a flood of valid solutions larger
// than the filter, an evicted solution could be redeemed a second time until
// it expires, which is the graceful failure (the alternative, refusing
// legitimate redemptions, would lock real visitors out). Safe for concurrent
// use.
type replayFilter struct {
	span      int64 // seconds per generation
	mask      uint64
	shards    [replayShards]replayShard
	evictions atomic.Uint64
}

type replayShard struct {
	mu  sync.Mutex
	gen [2]int64
	n   [2]int
	tab [2][]uint64
	_   [64]byte // keep shards on separate cache lines
}

// newReplayFilter makes a filter of at least size fingerprints in total.
func newReplayFilter(size int, span int64) *replayFilter {
	per := 1
	for per*replayShards*2 < size {
		per <<= 1
	}
	f := &replayFilter{span: max(span, 1), mask: uint64(per - 1)}
	for i := range f.shards {
		sh := &f.shards[i]
		for g := range 2 {
			sh.tab[g] = make([]uint64, per)
			sh.gen[g] = -1
		}
	}
	return f
}

// capacity is the number of fingerprints the filter holds.
func (f *replayFilter) capacity() int { return int(f.mask+1) * replayShards * 2 }

// add records fp for a challenge expiring at expires (unix seconds) and
// reports whether it was new. A challenge of a generation already recycled
// is refused (it expired long ago).
func (f *replayFilter) add(fp uint64, expires int64) bool {
	if fp == 0 {
		fp = 1 // 0 marks an empty slot
	}
	g := expires / f.span
	sh := &f.shards[fp>>60&(replayShards-1)]
	i := g & 1
	sh.mu.Lock()
	defer sh.mu.Unlock()
	switch {
	case sh.gen[i] > g:
		return false
	case sh.gen[i] < g:
		clear(sh.tab[i])
		sh.n[i] = 0
		sh.gen[i] = g
	}
	tab := sh.tab[i]
	h := fp * 0x9e3779b97f4a7c15 // spread the low bits too
	for k := range uint64(replayProbe) {
		j := (h + k) & f.mask
		switch tab[j] {
		case fp:
			return false
		case 0:
			tab[j] = fp
			sh.n[i]++
			return true
		}
	}
	tab[h&f.mask] = fp
	f.evictions.Add(1)
	return true
}

// size returns the number of fingerprints held.
func (f *replayFilter) size() int {
	n := 0
	for i := range f.shards {
		sh := &f.shards[i]
		sh.mu.Lock()
		n += sh.n[0] + sh.n[1]
		sh.mu.Unlock()
	}
	return n
}

// contains reports whether fp is recorded for a challenge expiring at
// expires, without recording it.
func (f *replayFilter) contains(fp uint64, expires int64) bool {
	if fp == 0 {
		fp = 1
	}
	g := expires / f.span
	sh := &f.shards[fp>>60&(replayShards-1)]
	i := g & 1
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.gen[i] != g {
		return sh.gen[i] > g
	}
	h := fp * 0x9e3779b97f4a7c15
	for k := range uint64(replayProbe) {
		switch sh.tab[i][(h+k)&f.mask] {
		case fp:
			return true
		case 0:
			return false
		}
	}
	return false
}
