package bench

import (
	"fmt"
	"math"
)

// The buckets of every round-trip histogram: histPerDecade to a factor of
// ten, from histMinNS up, histBuckets of them (10 ns to 1 s). The Python
// baselines are told the same (see [pyBackend.measure]).
const (
	histMinNS     = 10
	histPerDecade = 10
	histBuckets   = 80
)

// A Histogram counts round-trip times in log-spaced buckets: bucket i holds
// the times t, in nanoseconds, with
//
//	MinNS * 10^(i/PerDecade) <= t < MinNS * 10^((i+1)/PerDecade),
//
// except that the first bucket also holds the shorter times and the last
// the longer ones.
type Histogram struct {
	MinNS     float64 `json:"min_ns"`
	PerDecade int     `json:"per_decade"`
	Counts    []int64 `json:"counts"`
}

// newHistogram returns an empty histogram with the harness's buckets.
func newHistogram() *Histogram {
	return &Histogram{MinNS: histMinNS, PerDecade: histPerDecade, Counts: make([]int64, histBuckets)}
}

// bucket returns the bucket of a time of ns nanoseconds.
func (h *Histogram) bucket(ns float64) int {
	if ns < h.MinNS {
		return 0
	}
	i := int(math.Floor(math.Log10(ns/h.MinNS) * float64(h.PerDecade)))
	return min(max(i, 0), len(h.Counts)-1)
}

// add counts a time of ns nanoseconds.
func (h *Histogram) add(ns float64) { h.Counts[h.bucket(ns)]++ }

// merge adds the counts of o to h, which must have the same buckets.
func (h *Histogram) merge(o *Histogram) error {
	if o.MinNS != h.MinNS || o.PerDecade != h.PerDecade || len(o.Counts) != len(h.Counts) {
		return fmt.Errorf("histogram with %d buckets, %d a decade from %g ns; want %d, %d from %g ns",
			len(o.Counts), o.PerDecade, o.MinNS, len(h.Counts), h.PerDecade, h.MinNS)
	}
	for i, n := range o.Counts {
		h.Counts[i] += n
	}
	return nil
}

// Bounds returns the bounds of bucket i in nanoseconds: it holds the times
// from lo up to, not including, hi.
func (h *Histogram) Bounds(i int) (lo, hi float64) {
	at := func(i int) float64 { return h.MinNS * math.Pow(10, float64(i)/float64(h.PerDecade)) }
	return at(i), at(i + 1)
}

// Total returns the number of times counted.
func (h *Histogram) Total() int64 {
	var n int64
	for _, c := range h.Counts {
		n += c
	}
	return n
}
