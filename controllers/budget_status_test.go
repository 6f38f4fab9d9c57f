/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/test/redistest"
)

func TestNextReset(t *testing.T) {
	at := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return ts
	}
	for _, tc := range []struct {
		window v1alpha1.Window
		now    string
		want   string
	}{
		{v1alpha1.WindowHour, "2026-03-04T10:15:00Z", "2026-03-04T11:00:00Z"},
		{v1alpha1.WindowHour, "2026-03-04T23:59:59Z", "2026-03-05T00:00:00Z"},
		{v1alpha1.WindowDay, "2026-03-04T10:15:00Z", "2026-03-05T00:00:00Z"},
		{v1alpha1.WindowDay, "2026-12-31T23:00:00Z", "2027-01-01T00:00:00Z"},
		{v1alpha1.WindowWeek, "2026-03-04T10:15:00Z", "2026-03-09T00:00:00Z"}, // Wednesday -> Monday
		{v1alpha1.WindowWeek, "2026-03-09T00:00:00Z", "2026-03-16T00:00:00Z"}, // Monday 00:00 -> next Monday
		{v1alpha1.WindowWeek, "2026-03-08T23:59:59Z", "2026-03-09T00:00:00Z"}, // Sunday
		{v1alpha1.WindowMonth, "2026-01-31T12:00:00Z", "2026-02-01T00:00:00Z"},
		{v1alpha1.WindowMonth, "2026-12-15T00:00:00Z", "2027-01-01T00:00:00Z"},
		{v1alpha1.WindowDay, "2026-03-04T23:30:00-02:00", "2026-03-06T00:00:00Z"}, // 01:30 UTC on the 5th
	} {
		require.Equal(t, at(tc.want), nextReset(tc.window, at(tc.now)), "%s at %s", tc.window, tc.now)
	}
}

func TestBudgetStatus(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)
	spec := v1alpha1.TeamBudgetSpec{
		Team: "ai",
		Limits: []v1alpha1.SpendLimit{
			{Window: v1alpha1.WindowMonth, Amount: "1000", Enforcement: v1alpha1.EnforcementHard},
			{Window: v1alpha1.WindowDay, Amount: "100", Enforcement: v1alpha1.EnforcementHard},
			{Window: v1alpha1.WindowHour, Amount: "10", Enforcement: v1alpha1.EnforcementSoft},
		},
	}
	state := func(day, month, hour, reserved int64, runaway bool) *BudgetState {
		return &BudgetState{
			Spent:          map[v1alpha1.Window]int64{v1alpha1.WindowDay: day, v1alpha1.WindowMonth: month, v1alpha1.WindowHour: hour},
			Reserved:       map[v1alpha1.Window]int64{v1alpha1.WindowDay: reserved},
			RunawayTripped: runaway,
		}
	}
	for name, tc := range map[string]struct {
		spec      func(*v1alpha1.TeamBudgetSpec)
		state     *BudgetState
		phase     v1alpha1.BudgetPhase
		spent     string
		limit     string
		remaining string // of the Day window
	}{
		"no counters":                {state: nil, phase: v1alpha1.PhaseActive, spent: "", limit: "100.00"},
		"active":                     {state: state(20e6, 30e6, 1e6, 5e6, false), phase: v1alpha1.PhaseActive, spent: "20.00", limit: "100.00", remaining: "75.00"},
		"soft limit":                 {state: state(20e6, 30e6, 10e6, 0, false), phase: v1alpha1.PhaseSoftLimitReached, spent: "20.00", limit: "100.00", remaining: "80.00"},
		"month is tightest":          {state: state(20e6, 990e6, 0, 0, false), phase: v1alpha1.PhaseActive, spent: "990.00", limit: "1000.00", remaining: "80.00"},
		"exhausted":                  {state: state(100e6, 100e6, 0, 0, false), phase: v1alpha1.PhaseExhausted, spent: "100.00", limit: "100.00", remaining: "0.00"},
		"overshoot clamps":           {state: state(90e6, 90e6, 0, 20e6, false), phase: v1alpha1.PhaseActive, spent: "90.00", limit: "100.00", remaining: "0.00"},
		"runaway":                    {state: state(100e6, 100e6, 0, 0, true), phase: v1alpha1.PhaseRunawayTripped, spent: "100.00", limit: "100.00", remaining: "0.00"},
		"suspended":                  {spec: func(s *v1alpha1.TeamBudgetSpec) { s.Suspended = true }, state: state(100e6, 100e6, 0, 0, true), phase: v1alpha1.PhaseSuspended, spent: "100.00", limit: "100.00", remaining: "0.00"},
		"suspended without counters": {spec: func(s *v1alpha1.TeamBudgetSpec) { s.Suspended = true }, phase: v1alpha1.PhaseSuspended, limit: "100.00"},
	} {
		t.Run(name, func(t *testing.T) {
			s := spec
			s.Limits = append([]v1alpha1.SpendLimit(nil), spec.Limits...)
			if tc.spec != nil {
				tc.spec(&s)
			}
			v := budgetStatus(&s, tc.state, now)
			require.Equal(t, tc.phase, v.phase)
			require.Equal(t, tc.spent, v.spent)
			require.Equal(t, tc.limit, v.limit)
			require.Len(t, v.windows, 3)
			require.Equal(t, []v1alpha1.Window{v1alpha1.WindowHour, v1alpha1.WindowDay, v1alpha1.WindowMonth},
				[]v1alpha1.Window{v.windows[0].Window, v.windows[1].Window, v.windows[2].Window}, "windows shortest first")
			require.Equal(t, tc.remaining, v.windows[1].Remaining)
			require.Equal(t, time.Date(2026, 3, 4, 11, 0, 0, 0, time.UTC), v.nextReset, "the hourly window resets first")
			require.Equal(t, time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC), v.windows[1].ResetsAt.Time)
		})
	}
}

// TestRedisBudgetState reads counters the way the gateway writes them (docs/budget.md) through
// a real redis-server.
func TestRedisBudgetState(t *testing.T) {
	srv := redistest.Start(t)
	r, err := NewRedisBudgetState(srv.URL())
	require.NoError(t, err)
	defer r.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	now := time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)
	require.NoError(t, rdb.MSet(ctx,
		"llmgw:{ai}:spend:Day:"+ledger.BucketOf(snapshot.WindowDay, now).ID, "7000000",
		"llmgw:{ai}:spend:Month:"+ledger.BucketOf(snapshot.WindowMonth, now).ID, "40000000",
		"llmgw:{ai}:held", "500000",
	).Err())
	require.NoError(t, rdb.ZAdd(ctx, "llmgw:{ai}:res", redis.Z{Score: float64(now.Add(time.Minute).UnixMilli()), Member: "r1"}).Err())

	st, err := r.BudgetState(ctx, "ai", now)
	require.NoError(t, err)
	require.Equal(t, int64(7_000_000), st.Spent[v1alpha1.WindowDay])
	require.Equal(t, int64(40_000_000), st.Spent[v1alpha1.WindowMonth])
	require.Zero(t, st.Spent[v1alpha1.WindowHour])
	require.Equal(t, int64(500_000), st.Reserved[v1alpha1.WindowDay], "holds count against every window")
	require.Equal(t, int64(500_000), st.Reserved[v1alpha1.WindowHour])
	require.False(t, st.RunawayTripped)

	srv.Stop()
	_, err = r.BudgetState(ctx, "ai", now)
	require.Error(t, err)
}
