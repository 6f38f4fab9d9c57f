package budgetstatus

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/leakcheck"
	"github.com/posthog/llm-gateway/test/redistest"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

var now = time.Date(2025, 1, 29, 10, 20, 30, 0, time.UTC) // a Wednesday

func budget(limits ...snapshot.SpendLimit) *snapshot.Budget {
	return &snapshot.Budget{Source: "ns/b", Limits: limits, OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject}
}

// TestReadsDocumentedKeys writes the exact keys of docs/budget.md and reads them back.
func TestReadsDocumentedKeys(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	nowMs := float64(now.UnixMilli())
	require.NoError(t, rdb.MSet(ctx,
		"llmgw:{team-a}:spend:Day:2025-01-29", "700000",
		"llmgw:{team-a}:spend:Month:2025-01", "4000000",
		"llmgw:{team-a}:spend:Hour:2025-01-29T10", "100000",
		"llmgw:{team-a}:held", "350000",
	).Err())
	require.NoError(t, rdb.ZAdd(ctx, "llmgw:{team-a}:res",
		redis.Z{Score: nowMs + 30_000, Member: "live-1"}, redis.Z{Score: nowMs + 10_000, Member: "live-2"},
		redis.Z{Score: nowMs - 1, Member: "expired"}).Err())
	require.NoError(t, rdb.HSet(ctx, "llmgw:{team-a}:resamt", "live-1", "200000", "live-2", "100000", "expired", "50000").Err())

	r := NewFromClient(rdb)
	b := budget(
		snapshot.SpendLimit{Window: snapshot.WindowDay, LimitMicros: 1_000_000, Enforcement: snapshot.EnforceHard},
		snapshot.SpendLimit{Window: snapshot.WindowMonth, LimitMicros: 3_000_000, Enforcement: snapshot.EnforceSoft},
		snapshot.SpendLimit{Window: snapshot.WindowWeek, LimitMicros: 10_000_000, Enforcement: snapshot.EnforceHard},
	)
	st, err := r.Read(ctx, "team-a", b, now)
	require.NoError(t, err)
	require.Equal(t, int64(300_000), st.ReservedMicros, "the expired hold no longer counts")
	require.Equal(t, int64(2), st.InFlight)
	require.Equal(t, []Window{
		{Window: "Day", Enforcement: "Hard", LimitMicros: 1_000_000, SpentMicros: 700_000, ReservedMicros: 300_000, RemainingMicros: 0,
			ResetsAt: time.Date(2025, 1, 30, 0, 0, 0, 0, time.UTC)},
		{Window: "Month", Enforcement: "Soft", LimitMicros: 3_000_000, SpentMicros: 4_000_000, ReservedMicros: 300_000, RemainingMicros: 0,
			ResetsAt: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)},
		{Window: "Week", Enforcement: "Hard", LimitMicros: 10_000_000, SpentMicros: 0, ReservedMicros: 300_000, RemainingMicros: 9_700_000,
			ResetsAt: time.Date(2025, 2, 3, 0, 0, 0, 0, time.UTC)},
	}, st.Windows)
	require.Equal(t, 0, st.Tightest)
	require.Equal(t, PhaseSoftLimitReached, st.Phase)
	require.Nil(t, st.LastTrip)

	c, err := r.Counters(ctx, "team-a", now)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"Hour": 100_000, "Day": 700_000, "Week": 0, "Month": 4_000_000}, c.Spent)
	require.Equal(t, int64(300_000), c.ReservedMicros)
	require.False(t, c.RunawayTripped(now))

	// Runaway trip, then the kill switch, take precedence.
	require.NoError(t, rdb.HSet(ctx, "llmgw:{team-a}:trip", "until", now.Add(time.Minute).UnixMilli(), "at", now.UnixMilli(),
		"rate", "2500000", "threshold", "2000000").Err())
	st, err = r.Read(ctx, "team-a", b, now)
	require.NoError(t, err)
	require.Equal(t, PhaseRunawayTripped, st.Phase)
	require.Equal(t, &Trip{At: now, Until: now.Add(time.Minute), RateMicros: 2_500_000, ThresholdMicros: 2_000_000}, st.LastTrip)
	st, err = r.Read(ctx, "team-a", b, now.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, PhaseSoftLimitReached, st.Phase, "the trip is over")
	b.Suspended = true
	st, err = r.Read(ctx, "team-a", b, now)
	require.NoError(t, err)
	require.Equal(t, PhaseSuspended, st.Phase)

	require.NoError(t, rdb.Set(ctx, "llmgw:{team-a}:spend:Day:2025-01-29", "1000000", 0).Err())
	b.Suspended = false
	st, err = r.Read(ctx, "team-a", b, now.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, PhaseExhausted, st.Phase)

	// A team with no counters yet is Active with nothing spent.
	st, err = r.Read(ctx, "team-b", b, now)
	require.NoError(t, err)
	require.Equal(t, PhaseActive, st.Phase)
	require.Zero(t, st.Windows[0].SpentMicros)
}

func TestBucketIDAndWindowEnd(t *testing.T) {
	cases := []struct {
		window string
		at     time.Time
		id     string
		end    time.Time
	}{
		{"Hour", time.Date(2025, 12, 31, 23, 59, 0, 0, time.UTC), "2025-12-31T23", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"Day", time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC), "2024-02-29", time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"Week", time.Date(2024, 12, 31, 12, 0, 0, 0, time.UTC), "2025-W01", time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)},
		{"Week", time.Date(2025, 2, 2, 23, 0, 0, 0, time.UTC), "2025-W05", time.Date(2025, 2, 3, 0, 0, 0, 0, time.UTC)},
		{"Month", time.Date(2025, 12, 5, 0, 0, 0, 0, time.UTC), "2025-12", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		require.Equal(t, tc.id, BucketID(tc.window, tc.at), tc.window)
		require.Equal(t, tc.end, windowEnd(tc.window, tc.at), tc.window)
	}
	require.Equal(t, "llmgw:{a%7Bb%7D%25c}:held", keysFor("a{b}%c").held())
}

func TestUnreachable(t *testing.T) {
	srv := redistest.Start(t)
	r, err := New(srv.URL())
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, r.Ping(context.Background()))
	srv.Stop()
	require.Error(t, r.Ping(context.Background()))
	_, err = r.Read(context.Background(), "a", budget(), now)
	require.Error(t, err)
}
