package budget

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/test/redistest"
)

// benchBudget has every limit kind set, so admission runs every check.
func benchBudget() *snapshot.Budget {
	return &snapshot.Budget{
		Source: "bench", OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject,
		Limits: []snapshot.SpendLimit{
			{Window: snapshot.WindowHour, LimitMicros: 1 << 50, Enforcement: snapshot.EnforceHard},
			{Window: snapshot.WindowDay, LimitMicros: 1 << 50, Enforcement: snapshot.EnforceSoft},
			{Window: snapshot.WindowMonth, LimitMicros: 1 << 50, Enforcement: snapshot.EnforceHard},
		},
		MaxRequestCostMicros: 1 << 40, RequestsPerMinute: 1 << 40, TokensPerMinute: 1 << 50, MaxConcurrent: 1 << 20,
		Runaway: &snapshot.Runaway{SpendPerMinuteMicros: 1 << 50, CooldownSeconds: 60},
	}
}

func benchStores(b *testing.B) map[string]func() Store {
	srv := redistest.Start(b)
	return map[string]func() Store{
		"memory": func() Store { return NewMemoryStore() },
		"redis": func() Store {
			s, err := NewRedisStore(srv.URL())
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
}

// BenchmarkAdmitSettle measures one Admit plus one Settle at concurrency 1 and reports the
// p50 and p99 of the pair in microseconds.
func BenchmarkAdmitSettle(b *testing.B) {
	stores := benchStores(b)
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			m := NewManager(stores[name](), benchOptions())
			defer m.Close()
			bud, ctx := benchBudget(), context.Background()
			lat := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				i++
				start := time.Now()
				res, err := m.Admit(ctx, Request{Team: "bench", Budget: bud, RequestID: "r" + strconv.Itoa(i),
					EstimateMicros: 5000, Priced: true, EstimateTokens: 2000})
				if err != nil {
					b.Fatal(err)
				}
				if err := m.Settle(ctx, res, 3000, 1500); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat)
		})
	}
}

// BenchmarkAdmitSettleParallel measures throughput with 16 callers per CPU over 64 teams.
func BenchmarkAdmitSettleParallel(b *testing.B) {
	stores := benchStores(b)
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			m := NewManager(stores[name](), benchOptions())
			defer m.Close()
			bud, ctx := benchBudget(), context.Background()
			var mu sync.Mutex
			var seq int
			b.SetParallelism(16)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				seq++
				g := seq
				mu.Unlock()
				team := "bench-" + strconv.Itoa(g%64)
				for i := 0; pb.Next(); i++ {
					res, err := m.Admit(ctx, Request{Team: team, Budget: bud, RequestID: strconv.Itoa(g) + "-" + strconv.Itoa(i),
						EstimateMicros: 5000, Priced: true, EstimateTokens: 2000})
					if err != nil {
						b.Error(err)
						return
					}
					if err := m.Settle(ctx, res, 3000, 1500); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
	}
}

// benchOptions measure rather than fail on a loaded machine: a generous store timeout.
func benchOptions() Options {
	return Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StoreTimeout: 5 * time.Second}
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// BenchmarkAdmitSettleWithOpenCalls measures one Admit plus one Settle while the team has
// 10,000 other calls open (long streams), on the memory store: the standalone gateway's
// admission must not scan every open call.
func BenchmarkAdmitSettleWithOpenCalls(b *testing.B) {
	m := NewManager(NewMemoryStore(), benchOptions())
	defer m.Close()
	bud, ctx := benchBudget(), context.Background()
	for i := range 10_000 {
		if _, err := m.Admit(ctx, Request{Team: "bench", Budget: bud, RequestID: "open-" + strconv.Itoa(i),
			EstimateMicros: 5000, Priced: true, EstimateTokens: 2000}); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		i++
		res, err := m.Admit(ctx, Request{Team: "bench", Budget: bud, RequestID: "r" + strconv.Itoa(i),
			EstimateMicros: 5000, Priced: true, EstimateTokens: 2000})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Settle(ctx, res, 3000, 1500); err != nil {
			b.Fatal(err)
		}
	}
}
