/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"cmp"
	"context"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
)

// BudgetState is what the gateway's shared counters say about one team, for the windows that
// contain now. Amounts are micro-dollars.
type BudgetState struct {
	Spent          map[v1alpha1.Window]int64
	Reserved       map[v1alpha1.Window]int64
	RunawayTripped bool
}

// BudgetStateReader reads a team's counters. The operator has none until it can read the
// gateway's Redis (a later issue); without one, TeamBudget status shows limits, window resets
// and the phase known from the spec, and no spend figures.
type BudgetStateReader interface {
	BudgetState(ctx context.Context, team string, now time.Time) (BudgetState, error)
}

// budgetRefresh bounds how stale spend figures in status may get when a reader is configured.
const budgetRefresh = 30 * time.Second

// teamBudgetStatus fills the TeamBudget-specific status and returns when to look again.
func (o *Operator) teamBudgetStatus(ctx context.Context, b *v1alpha1.TeamBudget, res compile.Result) (time.Duration, error) {
	now := o.now().UTC()
	var state *BudgetState
	if o.budgetState != nil && res.Included && b.Spec.Team != "" {
		s, err := o.budgetState.BudgetState(ctx, b.Spec.Team, now)
		if err != nil {
			// Status still shows limits and resets; the counters are retried at the next refresh.
			ctrl.LoggerFrom(ctx).Error(err, "cannot read the team's spend counters", "team", b.Spec.Team)
		} else {
			state = &s
		}
	}
	bs := budgetStatus(&b.Spec, state, now)
	b.Status.Windows, b.Status.Phase, b.Status.Spent, b.Status.Limit = bs.windows, bs.phase, bs.spent, bs.limit
	after := bs.nextReset.Sub(now)
	if o.budgetState != nil {
		after = min(after, budgetRefresh)
	}
	return after, nil
}

type budgetView struct {
	windows   []v1alpha1.WindowStatus
	phase     v1alpha1.BudgetPhase
	spent     string // of the tightest Hard window; "" when spend is unknown
	limit     string
	nextReset time.Time
}

var windowRank = map[v1alpha1.Window]int{v1alpha1.WindowHour: 0, v1alpha1.WindowDay: 1, v1alpha1.WindowWeek: 2, v1alpha1.WindowMonth: 3}

// budgetStatus computes the status of a budget from its spec and, when known, the counters.
// Phase, most severe first: Suspended (spec), RunawayTripped, Exhausted (a Hard window's spend
// reached its limit), SoftLimitReached (a Soft window's did), Active.
func budgetStatus(spec *v1alpha1.TeamBudgetSpec, state *BudgetState, now time.Time) budgetView {
	var v budgetView
	type hardWindow struct {
		rank             int
		limit, remaining int64
		spent            int64
	}
	var tightest *hardWindow
	exhausted, softReached := false, false
	limits := slices.Clone(spec.Limits)
	slices.SortStableFunc(limits, func(a, b v1alpha1.SpendLimit) int {
		return cmp.Or(cmp.Compare(windowRank[a.Window], windowRank[b.Window]), cmp.Compare(a.Enforcement, b.Enforcement))
	})
	for _, l := range limits {
		limit, err := l.Amount.Micros()
		if err != nil {
			continue // Accepted=False already says why
		}
		enf := l.Enforcement
		if enf == "" {
			enf = v1alpha1.EnforcementHard
		}
		reset := nextReset(l.Window, now)
		if v.nextReset.IsZero() || reset.Before(v.nextReset) {
			v.nextReset = reset
		}
		ws := v1alpha1.WindowStatus{Window: l.Window, Enforcement: enf, Limit: v1alpha1.FormatMicros(limit), ResetsAt: &metav1.Time{Time: reset}}
		remaining, spent := limit, int64(0)
		if state != nil {
			spent = state.Spent[l.Window]
			reserved := state.Reserved[l.Window]
			remaining = max(0, limit-spent-reserved)
			ws.Spent, ws.Reserved, ws.Remaining = v1alpha1.FormatMicros(spent), v1alpha1.FormatMicros(reserved), v1alpha1.FormatMicros(remaining)
			if spent >= limit {
				exhausted = exhausted || enf == v1alpha1.EnforcementHard
				softReached = softReached || enf == v1alpha1.EnforcementSoft
			}
		}
		if enf == v1alpha1.EnforcementHard {
			hw := &hardWindow{rank: windowRank[l.Window], limit: limit, remaining: remaining, spent: spent}
			if tightest == nil || hw.remaining < tightest.remaining || (hw.remaining == tightest.remaining && hw.rank < tightest.rank) {
				tightest = hw
			}
		}
		v.windows = append(v.windows, ws)
	}
	if tightest != nil {
		v.limit = v1alpha1.FormatMicros(tightest.limit)
		if state != nil {
			v.spent = v1alpha1.FormatMicros(tightest.spent)
		}
	}
	switch {
	case spec.Suspended:
		v.phase = v1alpha1.PhaseSuspended
	case state != nil && state.RunawayTripped:
		v.phase = v1alpha1.PhaseRunawayTripped
	case exhausted:
		v.phase = v1alpha1.PhaseExhausted
	case softReached:
		v.phase = v1alpha1.PhaseSoftLimitReached
	default:
		v.phase = v1alpha1.PhaseActive
	}
	return v
}

// nextReset returns the start of the window after the one containing now (UTC calendar
// windows; weeks start on Monday).
func nextReset(w v1alpha1.Window, now time.Time) time.Time {
	now = now.UTC()
	y, m, d := now.Date()
	switch w {
	case v1alpha1.WindowHour:
		return now.Truncate(time.Hour).Add(time.Hour)
	case v1alpha1.WindowDay:
		return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
	case v1alpha1.WindowWeek:
		daysSinceMonday := (int(now.Weekday()) + 6) % 7
		return time.Date(y, m, d-daysSinceMonday+7, 0, 0, 0, 0, time.UTC)
	default:
		return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
	}
}
