/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
	"github.com/posthog/llm-gateway/internal/clock"
)

func conditionSpec() v1alpha1.TeamBudgetSpec {
	return v1alpha1.TeamBudgetSpec{
		Team: "ai",
		Limits: []v1alpha1.SpendLimit{
			{Window: v1alpha1.WindowDay, Amount: "100", Enforcement: v1alpha1.EnforcementHard},
			{Window: v1alpha1.WindowHour, Amount: "10", Enforcement: v1alpha1.EnforcementSoft},
		},
		Runaway: &v1alpha1.RunawayBreaker{SpendPerMinute: "20", Cooldown: metav1.Duration{Duration: 10 * time.Minute}},
	}
}

func TestBudgetConditions(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)
	spent := func(day, hour int64) *BudgetState {
		return &BudgetState{Spent: map[v1alpha1.Window]int64{v1alpha1.WindowDay: day, v1alpha1.WindowHour: hour, v1alpha1.WindowMonth: day}}
	}
	tripped := spent(30e6, 5e6)
	tripped.RunawayTripped = true
	tripped.LastTrip = &RunawayTrip{At: now.Add(-time.Minute), Until: now.Add(9 * time.Minute), RateMicros: 21_500_000, ThresholdMicros: 20_000_000}
	tripEnded := spent(30e6, 5e6)
	tripEnded.LastTrip = &RunawayTrip{At: now.Add(-time.Hour), Until: now.Add(-50 * time.Minute), RateMicros: 21_500_000, ThresholdMicros: 20_000_000}

	type want struct {
		status  metav1.ConditionStatus
		reason  string
		message string // a part of the message
	}
	const T, F = metav1.ConditionTrue, metav1.ConditionFalse
	for name, tc := range map[string]struct {
		spec     func(*v1alpha1.TeamBudgetSpec)
		state    *BudgetState
		counters bool
		readErr  error
		want     map[string]want // by condition type; types not listed must be absent
	}{
		"without counters only the kill switch": {
			want: map[string]want{v1alpha1.ConditionSuspended: {F, v1alpha1.ReasonKillSwitchOff, "spec.suspended is false"}},
		},
		"kill switch": {
			spec:     func(s *v1alpha1.TeamBudgetSpec) { s.Suspended = true },
			state:    spent(0, 0),
			counters: true,
			want: map[string]want{
				v1alpha1.ConditionSuspended:             {T, v1alpha1.ReasonKillSwitch, "new calls are rejected"},
				v1alpha1.ConditionRunawayTripped:        {F, v1alpha1.ReasonWithinSpendRate, "below the breaker's $20.00 per minute"},
				v1alpha1.ConditionExhausted:             {F, v1alpha1.ReasonWithinHardLimits, "below every Hard limit"},
				v1alpha1.ConditionSoftLimitReached:      {F, v1alpha1.ReasonWithinSoftLimits, "below every Soft limit"},
				v1alpha1.ConditionCounterStoreAvailable: {T, v1alpha1.ReasonStoreAvailable, "read from the gateway's Redis"},
			},
		},
		"soft limit reached": {
			state: spent(30e6, 10_500_000), counters: true,
			want: map[string]want{
				v1alpha1.ConditionSuspended:             {F, v1alpha1.ReasonKillSwitchOff, ""},
				v1alpha1.ConditionRunawayTripped:        {F, v1alpha1.ReasonWithinSpendRate, ""},
				v1alpha1.ConditionExhausted:             {F, v1alpha1.ReasonWithinHardLimits, ""},
				v1alpha1.ConditionSoftLimitReached:      {T, v1alpha1.ReasonSoftLimitReached, "Hour: spent $10.50 of the $10.00 Soft limit, calls continue; it resets at 2026-03-04T11:00:00Z"},
				v1alpha1.ConditionCounterStoreAvailable: {T, v1alpha1.ReasonStoreAvailable, ""},
			},
		},
		"hard limit reached": {
			state: spent(100e6, 1e6), counters: true,
			want: map[string]want{
				v1alpha1.ConditionSuspended:             {F, v1alpha1.ReasonKillSwitchOff, ""},
				v1alpha1.ConditionRunawayTripped:        {F, v1alpha1.ReasonWithinSpendRate, ""},
				v1alpha1.ConditionExhausted:             {T, v1alpha1.ReasonHardLimitReached, "Day: spent $100.00 of the $100.00 Hard limit, calls are rejected until it resets at 2026-03-05T00:00:00Z"},
				v1alpha1.ConditionSoftLimitReached:      {F, v1alpha1.ReasonWithinSoftLimits, ""},
				v1alpha1.ConditionCounterStoreAvailable: {T, v1alpha1.ReasonStoreAvailable, ""},
			},
		},
		"two hard windows reached": {
			spec: func(s *v1alpha1.TeamBudgetSpec) {
				s.Limits = append(s.Limits, v1alpha1.SpendLimit{Window: v1alpha1.WindowMonth, Amount: "50", Enforcement: v1alpha1.EnforcementHard})
			},
			state: spent(100e6, 1e6), counters: true,
			want: map[string]want{
				v1alpha1.ConditionSuspended:             {F, v1alpha1.ReasonKillSwitchOff, ""},
				v1alpha1.ConditionRunawayTripped:        {F, v1alpha1.ReasonWithinSpendRate, ""},
				v1alpha1.ConditionExhausted:             {T, v1alpha1.ReasonHardLimitReached, "resets at 2026-03-05T00:00:00Z; Month: spent $100.00 of the $50.00 Hard limit, calls are rejected until it resets at 2026-04-01T00:00:00Z"},
				v1alpha1.ConditionSoftLimitReached:      {F, v1alpha1.ReasonWithinSoftLimits, ""},
				v1alpha1.ConditionCounterStoreAvailable: {T, v1alpha1.ReasonStoreAvailable, ""},
			},
		},
		"runaway trip": {
			state: tripped, counters: true,
			want: map[string]want{
				v1alpha1.ConditionSuspended:             {F, v1alpha1.ReasonKillSwitchOff, ""},
				v1alpha1.ConditionRunawayTripped:        {T, v1alpha1.ReasonRunawayTripped, "spent $21.50 in one minute, above the breaker's $20.00 per minute: calls are rejected until 2026-03-04T10:24:00Z"},
				v1alpha1.ConditionExhausted:             {F, v1alpha1.ReasonWithinHardLimits, ""},
				v1alpha1.ConditionSoftLimitReached:      {F, v1alpha1.ReasonWithinSoftLimits, ""},
				v1alpha1.ConditionCounterStoreAvailable: {T, v1alpha1.ReasonStoreAvailable, ""},
			},
		},
		"runaway trip ended": {
			state: tripEnded, counters: true,
			want: map[string]want{
				v1alpha1.ConditionSuspended:             {F, v1alpha1.ReasonKillSwitchOff, ""},
				v1alpha1.ConditionRunawayTripped:        {F, v1alpha1.ReasonWithinSpendRate, "the last trip ended at 2026-03-04T09:25:00Z"},
				v1alpha1.ConditionExhausted:             {F, v1alpha1.ReasonWithinHardLimits, ""},
				v1alpha1.ConditionSoftLimitReached:      {F, v1alpha1.ReasonWithinSoftLimits, ""},
				v1alpha1.ConditionCounterStoreAvailable: {T, v1alpha1.ReasonStoreAvailable, ""},
			},
		},
		"no breaker, no soft limit": {
			spec: func(s *v1alpha1.TeamBudgetSpec) {
				s.Runaway = nil
				s.Limits = s.Limits[:1]
			},
			state: spent(0, 0), counters: true,
			want: map[string]want{
				v1alpha1.ConditionSuspended:             {F, v1alpha1.ReasonKillSwitchOff, ""},
				v1alpha1.ConditionRunawayTripped:        {F, v1alpha1.ReasonWithinSpendRate, "no runaway breaker is set"},
				v1alpha1.ConditionExhausted:             {F, v1alpha1.ReasonWithinHardLimits, ""},
				v1alpha1.ConditionSoftLimitReached:      {F, v1alpha1.ReasonWithinSoftLimits, "no Soft limit is set"},
				v1alpha1.ConditionCounterStoreAvailable: {T, v1alpha1.ReasonStoreAvailable, ""},
			},
		},
		"store unavailable leaves the counter conditions alone": {
			counters: true, readErr: errors.New("dial tcp 127.0.0.1:6379: connect: connection refused"),
			want: map[string]want{
				v1alpha1.ConditionSuspended:             {F, v1alpha1.ReasonKillSwitchOff, ""},
				v1alpha1.ConditionCounterStoreAvailable: {F, v1alpha1.ReasonStoreUnavailable, "cannot read the team's budget counters: dial tcp 127.0.0.1:6379: connect: connection refused"},
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			spec := conditionSpec()
			if tc.spec != nil {
				tc.spec(&spec)
			}
			v := budgetStatus(&spec, tc.state, now)
			got := budgetConditions(&spec, v, tc.state, tc.counters, tc.readErr, now)
			require.Len(t, got, len(tc.want))
			for _, c := range got {
				w, ok := tc.want[c.Type]
				require.True(t, ok, "unexpected condition %s", c.Type)
				require.Equal(t, w.status, c.Status, c.Type)
				require.Equal(t, w.reason, c.Reason, c.Type)
				require.Contains(t, c.Message, w.message, c.Type)
			}
		})
	}
}

func TestBudgetEvent(t *testing.T) {
	c := func(typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: "m"}
	}
	const T, F = metav1.ConditionTrue, metav1.ConditionFalse
	const none = ""
	for _, tc := range []struct {
		name string
		old  *metav1.Condition
		c    metav1.Condition
		want string // event type, none for no event
	}{
		{"appears healthy", nil, c(v1alpha1.ConditionExhausted, F, v1alpha1.ReasonWithinHardLimits), none},
		{"appears exhausted", nil, c(v1alpha1.ConditionExhausted, T, v1alpha1.ReasonHardLimitReached), corev1.EventTypeWarning},
		{"exhausted again", new(c(v1alpha1.ConditionExhausted, T, v1alpha1.ReasonHardLimitReached)), c(v1alpha1.ConditionExhausted, T, v1alpha1.ReasonHardLimitReached), none},
		{"window reset", new(c(v1alpha1.ConditionExhausted, T, v1alpha1.ReasonHardLimitReached)), c(v1alpha1.ConditionExhausted, F, v1alpha1.ReasonWithinHardLimits), corev1.EventTypeNormal},
		{"soft limit crossed", new(c(v1alpha1.ConditionSoftLimitReached, F, v1alpha1.ReasonWithinSoftLimits)), c(v1alpha1.ConditionSoftLimitReached, T, v1alpha1.ReasonSoftLimitReached), corev1.EventTypeWarning},
		{"runaway trip", new(c(v1alpha1.ConditionRunawayTripped, F, v1alpha1.ReasonWithinSpendRate)), c(v1alpha1.ConditionRunawayTripped, T, v1alpha1.ReasonRunawayTripped), corev1.EventTypeWarning},
		{"cooldown over", new(c(v1alpha1.ConditionRunawayTripped, T, v1alpha1.ReasonRunawayTripped)), c(v1alpha1.ConditionRunawayTripped, F, v1alpha1.ReasonWithinSpendRate), corev1.EventTypeNormal},
		{"kill switch on", new(c(v1alpha1.ConditionSuspended, F, v1alpha1.ReasonKillSwitchOff)), c(v1alpha1.ConditionSuspended, T, v1alpha1.ReasonKillSwitch), corev1.EventTypeWarning},
		{"new budget suspended", nil, c(v1alpha1.ConditionSuspended, T, v1alpha1.ReasonKillSwitch), corev1.EventTypeWarning},
		{"kill switch off", new(c(v1alpha1.ConditionSuspended, T, v1alpha1.ReasonKillSwitch)), c(v1alpha1.ConditionSuspended, F, v1alpha1.ReasonKillSwitchOff), corev1.EventTypeNormal},
		{"store appears available", nil, c(v1alpha1.ConditionCounterStoreAvailable, T, v1alpha1.ReasonStoreAvailable), none},
		{"store appears unavailable", nil, c(v1alpha1.ConditionCounterStoreAvailable, F, v1alpha1.ReasonStoreUnavailable), corev1.EventTypeWarning},
		{"store lost", new(c(v1alpha1.ConditionCounterStoreAvailable, T, v1alpha1.ReasonStoreAvailable)), c(v1alpha1.ConditionCounterStoreAvailable, F, v1alpha1.ReasonStoreUnavailable), corev1.EventTypeWarning},
		{"store still lost, another error", new(c(v1alpha1.ConditionCounterStoreAvailable, F, v1alpha1.ReasonStoreUnavailable)),
			metav1.Condition{Type: v1alpha1.ConditionCounterStoreAvailable, Status: F, Reason: v1alpha1.ReasonStoreUnavailable, Message: "i/o timeout"}, none},
		{"store back", new(c(v1alpha1.ConditionCounterStoreAvailable, F, v1alpha1.ReasonStoreUnavailable)), c(v1alpha1.ConditionCounterStoreAvailable, T, v1alpha1.ReasonStoreAvailable), corev1.EventTypeNormal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := budgetEvent(tc.old, tc.c)
			if tc.want == none {
				require.False(t, ok, "%+v", e)
				return
			}
			require.True(t, ok)
			require.Equal(t, statusEvent{typ: tc.want, reason: tc.c.Reason, action: tc.c.Type, note: tc.c.Message}, e)
		})
	}
}

func TestKeptPhase(t *testing.T) {
	on, off := &v1alpha1.TeamBudgetSpec{Suspended: true}, &v1alpha1.TeamBudgetSpec{}
	require.Equal(t, v1alpha1.PhaseSuspended, keptPhase(on, v1alpha1.PhaseActive), "the kill switch is known from the spec")
	require.Equal(t, v1alpha1.PhaseRunawayTripped, keptPhase(off, v1alpha1.PhaseRunawayTripped), "the last known phase stays")
	require.Equal(t, v1alpha1.PhaseExhausted, keptPhase(off, v1alpha1.PhaseExhausted))
	require.Equal(t, v1alpha1.BudgetPhase(""), keptPhase(off, v1alpha1.PhaseSuspended), "the kill switch is off: the rest is unknown")
	require.Equal(t, v1alpha1.BudgetPhase(""), keptPhase(off, ""))
}

// fakeReader is a BudgetStateReader whose answer the test sets.
type fakeReader struct {
	state BudgetState
	err   error
}

func (f *fakeReader) BudgetState(context.Context, string, time.Time) (BudgetState, error) {
	return f.state, f.err
}

// TestTeamBudgetStatusTransitions drives the status of one budget through the states a team's
// counters go through, with an injected clock, and checks the status, the conditions, the
// events of each transition (and none on a refresh without one) and when it looks again.
func TestTeamBudgetStatusTransitions(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)
	reader := &fakeReader{}
	clk := clock.NewFake(now)
	o := &Operator{budgetState: reader, budgetRefresh: DefaultBudgetRefresh, clock: clk}
	b := &v1alpha1.TeamBudget{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ai", Generation: 3}, Spec: conditionSpec()}
	spend := func(day, hour int64) {
		reader.state = BudgetState{
			Spent:    map[v1alpha1.Window]int64{v1alpha1.WindowHour: hour, v1alpha1.WindowDay: day, v1alpha1.WindowWeek: day, v1alpha1.WindowMonth: day},
			Reserved: map[v1alpha1.Window]int64{v1alpha1.WindowHour: 1e6, v1alpha1.WindowDay: 1e6, v1alpha1.WindowWeek: 1e6, v1alpha1.WindowMonth: 1e6},
		}
		reader.err = nil
	}
	reconcile := func() (time.Duration, []string) {
		t.Helper()
		after, events, err := o.teamBudgetStatus(context.Background(), b, compile.Result{Included: true})
		require.NoError(t, err)
		var got []string
		for _, e := range events {
			got = append(got, e.typ+" "+e.reason)
		}
		return after, got
	}
	cond := func(typ string) metav1.Condition {
		c := meta.FindStatusCondition(b.Status.Conditions, typ)
		require.NotNil(t, c, typ)
		require.Equal(t, int64(3), c.ObservedGeneration)
		return *c
	}
	phase := func(p v1alpha1.BudgetPhase) float64 {
		return testutil.ToFloat64(budgetPhaseGauge.WithLabelValues("ai", string(p)))
	}

	spend(30e6, 2e6)
	after, events := reconcile()
	require.Empty(t, events, "a budget that appears healthy makes no event")
	require.Equal(t, DefaultBudgetRefresh, after, "counters are re-read at the refresh interval")
	require.Equal(t, v1alpha1.PhaseActive, b.Status.Phase)
	require.Len(t, b.Status.Conditions, 5)
	require.Equal(t, 1.0, phase(v1alpha1.PhaseActive))
	require.Equal(t, 0.0, phase(v1alpha1.PhaseSoftLimitReached))

	spend(30e6, 10e6)
	_, events = reconcile()
	require.Equal(t, []string{"Warning SoftLimitReached"}, events)
	require.Equal(t, v1alpha1.PhaseSoftLimitReached, b.Status.Phase)
	require.Equal(t, metav1.ConditionTrue, cond(v1alpha1.ConditionSoftLimitReached).Status)
	require.Equal(t, 1.0, phase(v1alpha1.PhaseSoftLimitReached))
	require.Equal(t, 0.0, phase(v1alpha1.PhaseActive))

	spend(30e6, 11e6)
	_, events = reconcile()
	require.Empty(t, events, "a refresh without a transition makes no event")
	require.Contains(t, cond(v1alpha1.ConditionSoftLimitReached).Message, "spent $11.00", "the message follows the figures")

	spend(100e6, 11e6)
	_, events = reconcile()
	require.Equal(t, []string{"Warning HardLimitReached"}, events)
	require.Equal(t, v1alpha1.PhaseExhausted, b.Status.Phase)

	spend(100e6, 11e6)
	reader.state.RunawayTripped = true
	reader.state.LastTrip = &RunawayTrip{At: now, Until: now.Add(3 * time.Second), RateMicros: 21e6, ThresholdMicros: 20e6}
	after, events = reconcile()
	require.Equal(t, []string{"Warning RunawayTripped"}, events)
	require.Equal(t, 3*time.Second, after, "looks again when the cooldown ends")
	require.Equal(t, v1alpha1.PhaseRunawayTripped, b.Status.Phase)

	now = now.Add(3 * time.Second) // the cooldown is over: the gateway's trip record stays
	clk.Set(now)
	trip := reader.state.LastTrip
	spend(100e6, 11e6)
	reader.state.LastTrip = trip
	_, events = reconcile()
	require.Equal(t, []string{"Normal WithinSpendRate"}, events)
	require.Equal(t, v1alpha1.PhaseExhausted, b.Status.Phase)
	kept := b.Status.DeepCopy()

	// The store goes away: one Warning event, figures and phase kept, the other conditions too.
	reader.err = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	errorsBefore := testutil.ToFloat64(budgetStoreReadErrors)
	after, events = reconcile()
	require.Equal(t, []string{"Warning StoreUnavailable"}, events)
	require.Equal(t, DefaultBudgetRefresh, after, "the store is retried at the refresh interval")
	require.Equal(t, kept.Windows, b.Status.Windows, "figures are kept, not zeroed")
	require.Equal(t, kept.Spent, b.Status.Spent)
	require.Equal(t, kept.Limit, b.Status.Limit)
	require.Equal(t, v1alpha1.PhaseExhausted, b.Status.Phase, "the phase is not recomputed")
	require.Equal(t, *meta.FindStatusCondition(kept.Conditions, v1alpha1.ConditionExhausted), cond(v1alpha1.ConditionExhausted))
	require.Equal(t, metav1.ConditionFalse, cond(v1alpha1.ConditionCounterStoreAvailable).Status)
	require.Contains(t, cond(v1alpha1.ConditionCounterStoreAvailable).Message, "connection refused")
	require.Equal(t, errorsBefore+1, testutil.ToFloat64(budgetStoreReadErrors))
	require.Equal(t, 0.0, testutil.ToFloat64(budgetStoreUp))

	// Still down at the next refresh, and the kill switch is turned on meanwhile.
	b.Spec.Suspended = true
	_, events = reconcile()
	require.Equal(t, []string{"Warning KillSwitch"}, events, "no second StoreUnavailable event")
	require.Equal(t, v1alpha1.PhaseSuspended, b.Status.Phase, "the kill switch is known from the spec")
	b.Spec.Suspended = false
	_, events = reconcile()
	require.Equal(t, []string{"Normal KillSwitchOff"}, events)
	require.Empty(t, b.Status.Phase, "not guessed while the store is down")
	require.Equal(t, 0.0, phase(v1alpha1.PhaseActive)+phase(v1alpha1.PhaseExhausted)+phase(v1alpha1.PhaseSuspended))

	// The store is back.
	spend(100e6, 11e6)
	_, events = reconcile()
	require.Equal(t, []string{"Normal StoreAvailable"}, events)
	require.Equal(t, v1alpha1.PhaseExhausted, b.Status.Phase)
	require.Equal(t, 1.0, testutil.ToFloat64(budgetStoreUp))

	// A new day: the Hard limit has reset.
	now = time.Date(2026, 3, 5, 0, 0, 1, 0, time.UTC)
	clk.Set(now)
	spend(0, 0)
	_, events = reconcile()
	require.Equal(t, []string{"Normal WithinHardLimits", "Normal WithinSoftLimits"}, events)
	require.Equal(t, v1alpha1.PhaseActive, b.Status.Phase)

	// Out of the snapshot (e.g. a newer budget conflicts): no budget conditions, no series.
	_, out, err := o.teamBudgetStatus(context.Background(), b, compile.Result{Included: false})
	require.NoError(t, err)
	require.Empty(t, out)
	require.Empty(t, b.Status.Conditions)
	require.Zero(t, testutil.CollectAndCount(budgetPhaseGauge))
}

func TestLastKnownKeepsCurrentWindowsOnly(t *testing.T) {
	before := time.Date(2026, 3, 4, 23, 59, 0, 0, time.UTC)
	spec := conditionSpec()
	st := budgetStatus(&spec, &BudgetState{
		Spent:    map[v1alpha1.Window]int64{v1alpha1.WindowDay: 40e6, v1alpha1.WindowHour: 3e6},
		Reserved: map[v1alpha1.Window]int64{v1alpha1.WindowDay: 1e6, v1alpha1.WindowHour: 1e6},
	}, before)
	status := &v1alpha1.TeamBudgetStatus{Windows: st.windows}

	same := lastKnown(status, before.Add(30*time.Second))
	require.Equal(t, map[v1alpha1.Window]int64{v1alpha1.WindowDay: 40e6, v1alpha1.WindowHour: 3e6}, same.Spent)
	require.Equal(t, map[v1alpha1.Window]int64{v1alpha1.WindowDay: 1e6, v1alpha1.WindowHour: 1e6}, same.Reserved)

	// Past midnight both windows have reset: their spend is unknown, not zero.
	after := time.Date(2026, 3, 5, 0, 1, 0, 0, time.UTC)
	require.Nil(t, lastKnown(status, after))
	v := budgetStatus(&spec, lastKnown(status, after), after)
	for _, w := range v.windows {
		require.Empty(t, w.Spent, "%s", w.Window)
		require.Empty(t, w.Remaining, "%s", w.Window)
		require.NotEmpty(t, w.Limit)
	}
	require.Empty(t, v.spent)
	require.Equal(t, "100.00", v.limit)
}

func TestPhaseMetricFollowsBudgets(t *testing.T) {
	a := types.NamespacedName{Namespace: "m", Name: "a"}
	b := types.NamespacedName{Namespace: "m", Name: "b"}
	budgetPhases.set(a, "metric-team", v1alpha1.PhaseExhausted)
	require.Equal(t, 1.0, testutil.ToFloat64(budgetPhaseGauge.WithLabelValues("metric-team", "Exhausted")))
	// Budget b replaces a for the team; a leaving must not remove b's series.
	budgetPhases.set(b, "metric-team", v1alpha1.PhaseActive)
	budgetPhases.drop(a)
	require.Equal(t, 1.0, testutil.ToFloat64(budgetPhaseGauge.WithLabelValues("metric-team", "Active")))
	// b moves to another team: the old team's series go.
	budgetPhases.set(b, "metric-team-2", v1alpha1.PhaseActive)
	require.Equal(t, 5, testutil.CollectAndCount(budgetPhaseGauge), "only metric-team-2's series are left")
	budgetPhases.drop(b)
	require.Zero(t, testutil.CollectAndCount(budgetPhaseGauge))
}
