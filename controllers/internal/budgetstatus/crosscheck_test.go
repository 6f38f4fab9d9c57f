package budgetstatus_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/controllers/internal/budgetstatus"
	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
	"github.com/posthog/llm-gateway/test/redistest"
)

// This file is the other side of the key-schema contract: it is a test, so importing
// dataplane/budget here does not make the operator depend on the data plane.

var t0 = time.Date(2025, 1, 29, 10, 20, 30, 0, time.UTC)

func pods(t *testing.T, url string, n int, clk clock.Clock) []*budget.Manager {
	t.Helper()
	var ms []*budget.Manager
	for range n {
		s, err := budget.NewRedisStore(url)
		require.NoError(t, err)
		m := budget.NewManager(s, budget.Options{Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			StoreTimeout: 5 * time.Second, RefreshInterval: time.Hour, PollInterval: time.Hour})
		t.Cleanup(func() { _ = m.Close() })
		ms = append(ms, m)
	}
	return ms
}

func hardBudget(limits ...snapshot.SpendLimit) *snapshot.Budget {
	return &snapshot.Budget{Source: "ns/b", Limits: limits, OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject}
}

// TestStatusReaderSeesWhatManagersWrote: the operator's reader reads the keys the budget
// Managers write, and agrees with Manager.TeamState.
func TestStatusReaderSeesWhatManagersWrote(t *testing.T) {
	srv := redistest.Start(t)
	clk := clock.NewFake(t0)
	ms := pods(t, srv.URL(), 2, clk)
	reader, err := budgetstatus.New(srv.URL())
	require.NoError(t, err)
	defer reader.Close()
	ctx := context.Background()

	b := hardBudget(
		snapshot.SpendLimit{Window: snapshot.WindowHour, LimitMicros: 2_000_000, Enforcement: snapshot.EnforceSoft},
		snapshot.SpendLimit{Window: snapshot.WindowDay, LimitMicros: 5_000_000, Enforcement: snapshot.EnforceHard},
		snapshot.SpendLimit{Window: snapshot.WindowWeek, LimitMicros: 20_000_000, Enforcement: snapshot.EnforceHard},
		snapshot.SpendLimit{Window: snapshot.WindowMonth, LimitMicros: 50_000_000, Enforcement: snapshot.EnforceHard},
	)
	b.Runaway = &snapshot.Runaway{SpendPerMinuteMicros: 4_000_000, CooldownSeconds: 120}
	team := "team-{odd}%name" // braces and percent survive the hash tag on both sides

	admit := func(m *budget.Manager, est int64) *budget.Reservation {
		r, err := m.Admit(ctx, budget.Request{Team: team, Budget: b, RequestID: uuid.NewString(), EstimateMicros: est, Priced: true, EstimateTokens: 10})
		require.NoError(t, err)
		return r
	}
	compare := func(wantPhase string) {
		t.Helper()
		got, err := reader.Read(ctx, team, b, clk.Now())
		require.NoError(t, err)
		want, err := ms[0].TeamState(ctx, team, b)
		require.NoError(t, err)
		require.Equal(t, wantPhase, got.Phase)
		require.Equal(t, want.Phase, got.Phase)
		require.Equal(t, want.ReservedMicros, got.ReservedMicros)
		require.Equal(t, want.InFlight, got.InFlight)
		for i, w := range got.Windows {
			require.Equal(t, want.Windows[i].Window, w.Window)
			require.Equal(t, want.Windows[i].SpentMicros, w.SpentMicros, w.Window)
			require.Equal(t, want.Windows[i].ResetAt, w.ResetsAt, w.Window)
			if w.Enforcement == snapshot.EnforceHard {
				require.Equal(t, want.Windows[i].RemainingMicros, w.RemainingMicros, w.Window)
			}
		}
	}

	compare(budgetstatus.PhaseActive)
	require.NoError(t, ms[0].Settle(ctx, admit(ms[0], 1_500_000), 1_200_000, 10))
	open := admit(ms[1], 700_000)
	compare(budgetstatus.PhaseActive)

	require.NoError(t, ms[1].Settle(ctx, admit(ms[1], 1_000_000), 900_000, 10)) // hour: $2.10 > soft $2
	compare(budgetstatus.PhaseSoftLimitReached)

	clk.Advance(10 * time.Second)
	require.NoError(t, ms[0].Settle(ctx, admit(ms[0], 2_000_000), 2_000_000, 10)) // $4.10 in a minute: runaway
	compare(budgetstatus.PhaseRunawayTripped)
	got, err := reader.Read(ctx, team, b, clk.Now())
	require.NoError(t, err)
	require.Equal(t, clk.Now().Add(120*time.Second), got.LastTrip.Until)
	require.Equal(t, int64(4_100_000), got.LastTrip.RateMicros)

	clk.Advance(121 * time.Second) // cooldown over; the open hold has expired too (60s TTL, no refresh in this test's time)
	compare(budgetstatus.PhaseSoftLimitReached)
	require.NoError(t, ms[1].Settle(ctx, open, 700_000, 10))
	require.NoError(t, ms[1].Settle(ctx, admit(ms[1], 100_000), 300_000, 10)) // day: $5.10 >= $5 Hard (actual above estimate)
	got, err = reader.Read(ctx, team, b, clk.Now())
	require.NoError(t, err)
	require.Equal(t, int64(1_200_000+900_000+2_000_000+700_000+300_000), got.Windows[1].SpentMicros)
	compare(budgetstatus.PhaseExhausted)
	require.Equal(t, 1, got.Tightest)

	b.Suspended = true
	compare(budgetstatus.PhaseSuspended)
}
