package main

import (
	"math/bits"
	"time"
)

// histSubBits is log2 of the sub-buckets per power of two: 128 sub-buckets
// keep the relative error of a reported percentile under 1/128 (0.8%).
const histSubBits = 7

const (
	histSub     = 1 << histSubBits
	histBuckets = (64 - histSubBits + 1) * histSub
)

// hist is a log-linear latency histogram in the manner of HdrHistogram:
// values below 128 ns have a bucket each; above, every power of two is
// split into 128 equal sub-buckets. Memory is fixed (about 60 KiB) whatever
// the number of samples, so a run bounded by time alone cannot grow it. The
// zero value is ready; it is not safe for concurrent use (each worker keeps
// its own and they are merged at the end).
type hist struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

// bucketOf returns the bucket index of v (negative values count as 0).
func bucketOf(v int64) int {
	if v < histSub {
		return int(max(v, 0))
	}
	u := uint64(v)
	exp := bits.Len64(u) - histSubBits // >= 1
	sub := int(u>>uint(exp-1)) - histSub
	return exp*histSub + sub
}

// bucketHigh is the largest value that falls into bucket i.
func bucketHigh(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	exp, sub := i/histSub, i%histSub
	lo := uint64(histSub+sub) << uint(exp-1)
	return int64(lo + (uint64(1) << uint(exp-1)) - 1)
}

// add records one latency.
func (h *hist) add(d time.Duration) {
	h.counts[bucketOf(int64(d))]++
	h.n++
	h.max = max(h.max, d)
}

// merge adds o's samples to h.
func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the nearest-rank p-th percentile (0 < p <= 100): the
// upper bound of the bucket that holds the ceil(p/100*n)-th smallest sample,
// never more than the largest sample. It returns 0 without samples.
func (h *hist) quantile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(p / 100 * float64(h.n))
	if float64(rank) < p/100*float64(h.n) {
		rank++
	}
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketHigh(i)), h.max)
		}
	}
	return h.max
}
