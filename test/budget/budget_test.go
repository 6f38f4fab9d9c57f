// Package budget_test holds the cross-package and process-level tests of the spending controls:
// several budget Managers (pods) on one redis-server, and gateway processes behind one snapshot.
// (The operator's status path is checked against the Managers in controllers, where the
// status computation lives: TestStatusAgreesWithGatewayLedger.)
package budget_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
	"github.com/posthog/llm-gateway/test/redistest"
)

var t0 = time.Date(2025, 1, 29, 10, 20, 30, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// pods starts n Managers (gateway pods) on the Redis at url, sharing clock.
func pods(t *testing.T, url string, n int, clk clock.Clock) []*budget.Manager {
	t.Helper()
	var ms []*budget.Manager
	for i := range n {
		s, err := budget.NewRedisStore(url)
		require.NoError(t, err)
		m := budget.NewManager(s, budget.Options{Clock: clk, Logger: quiet(), StoreTimeout: 5 * time.Second,
			PodID: "pod-" + string(rune('a'+i))})
		t.Cleanup(func() { _ = m.Close() })
		ms = append(ms, m)
	}
	return ms
}

func hardBudget(limits ...snapshot.SpendLimit) *snapshot.Budget {
	return &snapshot.Budget{Source: "ns/b", Limits: limits, OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject}
}

// TestConcurrentPodsNeverExceedHardLimit runs hundreds of concurrent calls through three pods
// against a small Hard budget, with a fake provider whose cost is known. When every call costs
// at most its estimate, committed spend never exceeds the limit; when some calls cost more than
// their estimate (an under-estimated input), the overshoot is at most the sum of those excesses.
func TestConcurrentPodsNeverExceedHardLimit(t *testing.T) {
	const limit = 20_000_000 // $20
	cases := []struct {
		name   string
		actual func(i int, estimate int64) int64
	}{
		{"actual at most the estimate", func(i int, est int64) int64 { return est - int64(i%3)*100_000 }},
		{"some calls above their estimate", func(i int, est int64) int64 {
			if i%4 == 0 {
				return est + 150_000
			}
			return est
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			clk := clock.NewFake(t0)
			ms := pods(t, srv.URL(), 3, clk)
			b := hardBudget(snapshot.SpendLimit{Window: snapshot.WindowDay, LimitMicros: limit, Enforcement: snapshot.EnforceHard})

			var (
				providerCalls, rejected atomic.Int64
				mu                      sync.Mutex
				overshoot, charged      int64
				wg                      sync.WaitGroup
				badErrs                 []error
			)
			for i := range 300 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := ms[i%3]
					est := int64(400_000 + (i%5)*100_000) // $0.40 - $0.80
					res, err := m.Admit(context.Background(), budget.Request{Team: "t", Budget: b, RequestID: uuid.NewString(),
						EstimateMicros: est, Priced: true, EstimateTokens: 1000})
					if err != nil {
						var le *budget.LimitError
						mu.Lock()
						defer mu.Unlock()
						if !errors.As(err, &le) || le.Limit != "spend:Day" || le.Message == "" {
							badErrs = append(badErrs, err)
						}
						rejected.Add(1)
						return
					}
					providerCalls.Add(1) // the provider is called only after admission
					actual := tc.actual(i, est)
					err = m.Settle(context.Background(), res, actual, 900)
					mu.Lock()
					if err != nil {
						badErrs = append(badErrs, err)
					}
					charged += actual
					overshoot += max(actual-est, 0)
					mu.Unlock()
				}()
			}
			wg.Wait()
			require.Empty(t, badErrs, "every rejection is a spend:Day LimitError and every settle succeeds")
			require.Positive(t, rejected.Load(), "the budget is small enough to reject calls")
			require.Equal(t, int64(300), providerCalls.Load()+rejected.Load())

			st, err := ms[0].TeamState(context.Background(), "t", b)
			require.NoError(t, err)
			spent := st.Windows[1].SpentMicros
			require.Equal(t, charged, spent, "every settlement counted once")
			require.Zero(t, st.ReservedMicros, "every hold released")
			require.LessOrEqual(t, spent, int64(limit)+overshoot, "the bound: limit + sum of (actual - estimate) overshoots")
			if overshoot == 0 {
				require.LessOrEqual(t, spent, int64(limit))
			}
		})
	}
}
