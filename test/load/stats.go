package load

import (
	"math"
	"slices"
	"time"
)

// Latency summarizes a set of durations, in milliseconds (microsecond precision).
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50Ms"`
	P90 float64 `json:"p90Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

// Summarize sorts ds in place and returns its percentiles (nearest rank).
func Summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	return Latency{N: len(ds), P50: ms(percentile(ds, 50)), P90: ms(percentile(ds, 90)),
		P99: ms(percentile(ds, 99)), Max: ms(ds[len(ds)-1])}
}

// percentile is the nearest-rank percentile of sorted ds.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

// round3 rounds to three decimals (a microsecond when the unit is milliseconds).
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// Sub is l - o per percentile: the latency one path adds over another.
func (l Latency) Sub(o Latency) Latency {
	return Latency{N: l.N, P50: round3(l.P50 - o.P50), P90: round3(l.P90 - o.P90),
		P99: round3(l.P99 - o.P99), Max: round3(l.Max - o.Max)}
}

// median of vs (the mean of the two middle values for an even count); 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return round3((s[len(s)/2-1] + s[len(s)/2]) / 2)
}

// medianOf is the median of f over xs.
func medianOf[T any](xs []T, f func(T) float64) float64 {
	vs := make([]float64, len(xs))
	for i, x := range xs {
		vs[i] = f(x)
	}
	return median(vs)
}

// MedianLatency is the per-percentile median of several summaries (repeated runs).
func MedianLatency(ls []Latency) Latency {
	return Latency{
		N:   int(medianOf(ls, func(l Latency) float64 { return float64(l.N) })),
		P50: medianOf(ls, func(l Latency) float64 { return l.P50 }),
		P90: medianOf(ls, func(l Latency) float64 { return l.P90 }),
		P99: medianOf(ls, func(l Latency) float64 { return l.P99 }),
		Max: medianOf(ls, func(l Latency) float64 { return l.Max }),
	}
}

// medianBusy is the per-process median of several CoresBusy (repeated runs).
func medianBusy(bs []CoresBusy) CoresBusy {
	return CoresBusy{
		Gateway:   medianOf(bs, func(b CoresBusy) float64 { return b.Gateway }),
		Fake:      medianOf(bs, func(b CoresBusy) float64 { return b.Fake }),
		Generator: medianOf(bs, func(b CoresBusy) float64 { return b.Generator }),
		Redis:     medianOf(bs, func(b CoresBusy) float64 { return b.Redis }),
	}
}

// addBusy is a + w·b, per process.
func addBusy(a, b CoresBusy, w float64) CoresBusy {
	return CoresBusy{
		Gateway:   round3(a.Gateway + w*b.Gateway),
		Fake:      round3(a.Fake + w*b.Fake),
		Generator: round3(a.Generator + w*b.Generator),
		Redis:     round3(a.Redis + w*b.Redis),
	}
}
