/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

// This test drives the gateway's own budget code (dataplane/budget Managers on a real
// redis-server) and reads what it wrote through the operator's status path (RedisBudgetState,
// then budgetStatus: what TeamBudget.status shows). It is a test, so importing dataplane/budget
// here does not make the operator depend on the data plane (test/layout checks the operator's
// non-test imports: it may use dataplane/snapshot and dataplane/budget/ledger only).

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
	"github.com/posthog/llm-gateway/test/redistest"
)

// ledgerHarness is two gateway pods and the operator's reader on one redis-server, with a
// model of what the pods should have written.
type ledgerHarness struct {
	t      *testing.T
	ctx    context.Context
	clock  *clock.Fake
	pods   []*budget.Manager
	reader *RedisBudgetState
	team   string
	spec   v1alpha1.TeamBudgetSpec
	b      *snapshot.Budget // spec compiled by the operator's compiler, as the pods get it
	// settled is the model of the spend counters: window -> bucket id -> micro-dollars.
	settled map[string]map[string]int64
	// open are the admitted, unsettled calls.
	open []*budget.Reservation
}

const ledgerTTL = time.Minute // the pods' ReservationTTL (holds are never refreshed here)

func newLedgerHarness(t *testing.T, start time.Time) *ledgerHarness {
	t.Helper()
	srv := redistest.Start(t)
	h := &ledgerHarness{t: t, ctx: context.Background(), clock: clock.NewFake(start),
		team: "team-{odd}%name", settled: map[string]map[string]int64{}}
	for range 2 {
		s, err := budget.NewRedisStore(srv.URL())
		require.NoError(t, err)
		m := budget.NewManager(s, budget.Options{Clock: h.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			StoreTimeout: 10 * time.Second, ReservationTTL: ledgerTTL, RefreshInterval: time.Hour, PollInterval: time.Hour})
		t.Cleanup(func() { _ = m.Close() })
		h.pods = append(h.pods, m)
	}
	r, err := NewRedisBudgetState(srv.URL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	h.reader = r
	h.spec = v1alpha1.TeamBudgetSpec{
		Team: h.team,
		Limits: []v1alpha1.SpendLimit{
			{Window: v1alpha1.WindowHour, Amount: "2.00", Enforcement: v1alpha1.EnforcementSoft},
			{Window: v1alpha1.WindowDay, Amount: "4.00", Enforcement: v1alpha1.EnforcementSoft},
			{Window: v1alpha1.WindowDay, Amount: "5.00", Enforcement: v1alpha1.EnforcementHard},
			{Window: v1alpha1.WindowWeek, Amount: "20.00"}, // Hard by default
			{Window: v1alpha1.WindowMonth, Amount: "50.00", Enforcement: v1alpha1.EnforcementHard},
		},
		Runaway: &v1alpha1.RunawayBreaker{SpendPerMinute: "4.00", Cooldown: metav1.Duration{Duration: 2 * time.Minute}},
	}
	h.compile()
	return h
}

// compile turns the spec into the snapshot budget with the operator's compiler.
func (h *ledgerHarness) compile() {
	h.t.Helper()
	tb := v1alpha1.TeamBudget{Spec: h.spec}
	tb.Name, tb.Namespace = "b", "ns"
	tb.Spec.Team, tb.Spec.ClusterDefault = "", true // the default budget needs no TeamRollout
	out := compile.Compile(compile.Input{Budgets: []v1alpha1.TeamBudget{tb}, Options: compile.DefaultOptions()})
	require.NoError(h.t, out.Err)
	require.Empty(h.t, out.Rejected())
	b := out.Snapshot.DefaultBudget
	require.Equal(h.t, "ns/b", b.Source)
	h.b = &b
}

func (h *ledgerHarness) suspend(on bool) {
	h.spec.Suspended = on
	h.compile()
}

// admit asks a pod for a call of estimate est; nil when a limit rejects it.
func (h *ledgerHarness) admit(pod int, est int64) *budget.Reservation {
	h.t.Helper()
	r, err := h.pods[pod].Admit(h.ctx, budget.Request{Team: h.team, Budget: h.b, RequestID: uuid.NewString(),
		EstimateMicros: est, Priced: true, EstimateTokens: 10})
	if _, ok := err.(*budget.LimitError); ok {
		return nil
	}
	require.NoError(h.t, err)
	h.open = append(h.open, r)
	return r
}

// settle charges open call i on a pod and records the charge in the model: the windows
// current at settlement get it.
func (h *ledgerHarness) settle(pod, i int, actual int64) {
	h.t.Helper()
	r := h.open[i]
	h.open = append(h.open[:i], h.open[i+1:]...)
	require.NoError(h.t, h.pods[pod].Settle(h.ctx, r, actual, 10))
	for w, b := range h.buckets() {
		if h.settled[w] == nil {
			h.settled[w] = map[string]int64{}
		}
		h.settled[w][b.ID] += actual
	}
}

func (h *ledgerHarness) buckets() map[string]ledger.Bucket {
	out := map[string]ledger.Bucket{}
	for i, b := range ledger.BucketsAt(h.clock.Now()) {
		out[ledger.Windows[i]] = b
	}
	return out
}

// agree checks that the operator's view (what TeamBudget.status shows) is what the pods
// wrote (the model) and what a pod reports (Manager.TeamState, /admin/teams), and returns the
// phase.
func (h *ledgerHarness) agree(step string) v1alpha1.BudgetPhase {
	h.t.Helper()
	now := h.clock.Now()
	st, err := h.reader.BudgetState(h.ctx, h.team, now)
	require.NoError(h.t, err, step)
	v := budgetStatus(&h.spec, &st, now)
	gw, err := h.pods[1].TeamState(h.ctx, h.team, h.b)
	require.NoError(h.t, err, step)

	var held int64
	for _, r := range h.open {
		if r.AdmittedAt.Add(ledgerTTL).After(now) {
			held += r.HeldMicros
		}
	}
	require.Equal(h.t, string(v.phase), gw.Phase, "%s: phase", step)
	require.Equal(h.t, st.RunawayTripped, !gw.RunawayUntil.IsZero(), "%s: runaway", step)
	require.Equal(h.t, held, gw.ReservedMicros, "%s: reserved (model)", step)
	require.Len(h.t, v.windows, len(h.spec.Limits), step)
	for _, w := range v.windows {
		g := gw.Windows[ledger.WindowIndex(string(w.Window))]
		msg := []any{"%s: %s %s", step, w.Enforcement, w.Window}
		require.Equal(h.t, v1alpha1.FormatMicros(h.settled[string(w.Window)][g.Bucket]), w.Spent, msg...)
		require.Equal(h.t, v1alpha1.FormatMicros(g.SpentMicros), w.Spent, msg...)
		require.Equal(h.t, v1alpha1.FormatMicros(gw.ReservedMicros), w.Reserved, msg...)
		require.Equal(h.t, g.ResetAt, w.ResetsAt.Time, msg...)
		if w.Enforcement == v1alpha1.EnforcementHard {
			require.Equal(h.t, v1alpha1.FormatMicros(g.HardLimitMicros), w.Limit, msg...)
			require.Equal(h.t, v1alpha1.FormatMicros(g.RemainingMicros), w.Remaining, msg...)
		} else {
			require.Equal(h.t, v1alpha1.FormatMicros(g.SoftLimitMicros), w.Limit, msg...)
		}
	}
	return v.phase
}

// TestStatusAgreesWithGatewayLedger walks one team through every phase and across window
// resets (at the exact boundary instants) and checks after each step that the operator's
// status shows what the gateway pods wrote and what they report themselves.
func TestStatusAgreesWithGatewayLedger(t *testing.T) {
	t0 := time.Date(2025, 1, 29, 10, 20, 30, 0, time.UTC) // a Wednesday
	h := newLedgerHarness(t, t0)
	require.Equal(t, v1alpha1.PhaseActive, h.agree("nothing spent"))

	h.admit(0, 1_500_000)
	h.settle(0, 0, 1_200_000)
	h.admit(1, 700_000) // stays open: reserved against every window
	require.Equal(t, v1alpha1.PhaseActive, h.agree("one settled, one open"))

	h.admit(1, 1_000_000)
	h.settle(1, 1, 900_000) // hour: $2.10 >= Soft $2
	require.Equal(t, v1alpha1.PhaseSoftLimitReached, h.agree("hour soft"))

	h.clock.Advance(10 * time.Second)
	h.admit(0, 2_000_000)
	h.settle(0, 1, 2_000_000) // $4.10 in one minute > $4/min
	require.Equal(t, v1alpha1.PhaseRunawayTripped, h.agree("runaway"))

	h.clock.Advance(2*time.Minute + time.Second) // cooldown over; the open hold has expired
	require.Equal(t, v1alpha1.PhaseSoftLimitReached, h.agree("cooldown over"))

	h.settle(1, 0, 700_000) // the expired hold is still charged
	require.NotNil(t, h.admit(1, 100_000))
	h.settle(1, 0, 300_000) // day: $5.10 >= Hard $5 (actual above the estimate)
	require.Equal(t, v1alpha1.PhaseExhausted, h.agree("day exhausted"))
	require.Nil(t, h.admit(0, 1), "the pods reject what the operator shows exhausted")

	h.clock.Set(time.Date(2025, 1, 29, 11, 0, 0, 0, time.UTC)) // the hour resets, the day does not
	require.Equal(t, v1alpha1.PhaseExhausted, h.agree("next hour"))
	h.clock.Set(time.Date(2025, 1, 29, 23, 59, 59, 999e6, time.UTC))
	require.Equal(t, v1alpha1.PhaseExhausted, h.agree("last instant of the day"))
	h.clock.Set(time.Date(2025, 1, 30, 0, 0, 0, 0, time.UTC))
	require.Equal(t, v1alpha1.PhaseActive, h.agree("first instant of the next day"))

	h.suspend(true)
	require.Equal(t, v1alpha1.PhaseSuspended, h.agree("kill switch"))
	h.suspend(false)

	for _, at := range []time.Time{
		time.Date(2025, 1, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), // the month resets, the week (W05) does not
		time.Date(2025, 2, 2, 23, 59, 59, 0, time.UTC),
		time.Date(2025, 2, 3, 0, 0, 0, 0, time.UTC), // Monday: the week resets
	} {
		h.clock.Set(at)
		h.admit(0, 500_000)
		h.settle(0, len(h.open)-1, 400_000)
		h.agree(at.Format(time.RFC3339))
	}
}

// TestStatusAgreesWithGatewayLedgerRandomWalk: a seeded random walk of calls on both pods,
// clock jumps (seconds to weeks, and exact window boundaries) and the kill switch; after
// every step the operator's status must agree with what the pods wrote and report.
func TestStatusAgreesWithGatewayLedgerRandomWalk(t *testing.T) {
	if testing.Short() {
		t.Skip("redis-server walk")
	}
	rng := rand.New(rand.NewPCG(10, 14))
	h := newLedgerHarness(t, time.Date(2025, 12, 29, 22, 58, 0, 0, time.UTC)) // a Monday, near a year's end
	seen := map[v1alpha1.BudgetPhase]bool{}
	for step := range 300 {
		switch op := rng.IntN(10); {
		case op < 4:
			h.admit(rng.IntN(2), rng.Int64N(1_500_000)+1)
		case op < 7 && len(h.open) > 0:
			h.settle(rng.IntN(2), rng.IntN(len(h.open)), rng.Int64N(3_000_000))
		case op < 9:
			steps := []time.Duration{0, time.Second, 7 * time.Second, 45 * time.Second, 61 * time.Second,
				10 * time.Minute, time.Hour, 13 * time.Hour, 3 * 24 * time.Hour}
			h.clock.Advance(steps[rng.IntN(len(steps))])
			if rng.IntN(4) == 0 { // to the exact end of a current window
				b := ledger.BucketsAt(h.clock.Now())
				h.clock.Set(b[rng.IntN(ledger.NumWindows)].End)
			}
		default:
			h.suspend(!h.spec.Suspended)
		}
		seen[h.agree("step "+strconv.Itoa(step))] = true
	}
	// The walk is seeded: it must keep reaching every phase, or it checks less than it says.
	require.Len(t, seen, 5, "phases reached: %v", seen)
}

// TestPhasesAreTheLedgers: TeamBudget.status.phase takes ledger.Phase's value as is.
func TestPhasesAreTheLedgers(t *testing.T) {
	for ledgerPhase, apiPhase := range map[string]v1alpha1.BudgetPhase{
		ledger.PhaseActive:           v1alpha1.PhaseActive,
		ledger.PhaseSoftLimitReached: v1alpha1.PhaseSoftLimitReached,
		ledger.PhaseExhausted:        v1alpha1.PhaseExhausted,
		ledger.PhaseSuspended:        v1alpha1.PhaseSuspended,
		ledger.PhaseRunawayTripped:   v1alpha1.PhaseRunawayTripped,
	} {
		require.Equal(t, ledgerPhase, string(apiPhase))
	}
}
