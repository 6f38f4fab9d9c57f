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
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
)

// BudgetState is what the gateway's shared counters say about one team, for the windows that
// contain now. Amounts are micro-dollars.
type BudgetState struct {
	// Spent is the settled spend of the current window, for each window whose figures are
	// known: the Redis reader reports all four, and a window left out shows no figures.
	Spent map[v1alpha1.Window]int64
	// Reserved is what calls in flight hold, by window.
	Reserved map[v1alpha1.Window]int64
	// RunawayTripped reports that the spend-velocity breaker holds the team now.
	RunawayTripped bool
	// LastTrip is the breaker's last trip (the gateway keeps it a day past its cooldown), or nil.
	LastTrip *RunawayTrip
}

// RunawayTrip is one trip of the spend-velocity breaker.
type RunawayTrip struct {
	At, Until time.Time
	// RateMicros is the spend in the minute that tripped the breaker, ThresholdMicros the
	// budget's spendPerMinute then.
	RateMicros, ThresholdMicros int64
}

// BudgetStateReader reads a team's counters (RedisBudgetState reads the gateway's Redis).
// Without one, TeamBudget status shows limits, window resets and the phase known from the
// spec, and no spend figures.
type BudgetStateReader interface {
	BudgetState(ctx context.Context, team string, now time.Time) (BudgetState, error)
}

// DefaultBudgetRefresh is how often the status of each TeamBudget re-reads its counters when
// a reader is configured, so that spend, a Soft limit crossed or a runaway trip show without
// a spec change.
const DefaultBudgetRefresh = 10 * time.Second

// teamBudgetStatus fills the TeamBudget-specific status and conditions, and returns when to
// look again and the events the conditions' transitions make.
func (o *Operator) teamBudgetStatus(ctx context.Context, b *v1alpha1.TeamBudget, res compile.Result) (time.Duration, []statusEvent, error) {
	now := o.now().UTC()
	counters := o.budgetState != nil && res.Included && b.Spec.Team != ""
	var (
		state   *BudgetState
		readErr error
	)
	if counters {
		s, err := o.budgetState.BudgetState(ctx, b.Spec.Team, now)
		recordStoreRead(err)
		if err != nil {
			readErr = err
		} else {
			state = &s
		}
	}
	var v budgetView
	if readErr != nil {
		// Keep what the last successful read showed; do not guess the rest.
		v = budgetStatus(&b.Spec, lastKnown(&b.Status, now), now)
		v.phase = keptPhase(&b.Spec, b.Status.Phase)
	} else {
		v = budgetStatus(&b.Spec, state, now)
	}
	b.Status.Windows, b.Status.Phase, b.Status.Spent, b.Status.Limit = v.windows, v.phase, v.spent, v.limit

	key := client.ObjectKeyFromObject(b)
	var events []statusEvent
	if res.Included {
		conds := budgetConditions(&b.Spec, v, state, counters, readErr, now)
		events = setBudgetConditions(&b.Status.Conditions, conds, b.Generation, counters)
		logStoreTransitions(ctrl.LoggerFrom(ctx), b.Spec.Team, events, readErr)
		budgetPhases.set(key, b.Spec.Team, v.phase)
	} else {
		removeBudgetConditions(&b.Status.Conditions)
		budgetPhases.drop(key)
	}

	after := v.nextReset.Sub(now)
	if o.budgetState != nil {
		after = min(after, o.budgetRefresh)
	}
	if state != nil && state.RunawayTripped && state.LastTrip != nil && state.LastTrip.Until.After(now) {
		after = min(after, state.LastTrip.Until.Sub(now)) // clear the trip when its cooldown ends
	}
	return after, events, nil
}

// lastKnown returns the counters status showed after its last successful read, for the
// windows that have not reset since (a window that has reset is left out: its spend is
// unknown), or nil when status shows no figures.
func lastKnown(st *v1alpha1.TeamBudgetStatus, now time.Time) *BudgetState {
	var known *BudgetState
	for _, w := range st.Windows {
		if w.Spent == "" || w.ResetsAt == nil || !w.ResetsAt.Time.Equal(nextReset(w.Window, now)) {
			continue
		}
		spent, err := v1alpha1.ParseMicros(w.Spent)
		if err != nil {
			continue
		}
		reserved, err := v1alpha1.ParseMicros(w.Reserved)
		if err != nil {
			reserved = 0
		}
		if known == nil {
			known = &BudgetState{Spent: map[v1alpha1.Window]int64{}, Reserved: map[v1alpha1.Window]int64{}}
		}
		known.Spent[w.Window], known.Reserved[w.Window] = spent, reserved
	}
	return known
}

// keptPhase is the phase while the counters cannot be read: the kill switch is known from the
// spec; otherwise the last known phase stays, unless it was the kill switch, now off, and then
// the phase is unknown ("").
func keptPhase(spec *v1alpha1.TeamBudgetSpec, last v1alpha1.BudgetPhase) v1alpha1.BudgetPhase {
	switch {
	case spec.Suspended:
		return v1alpha1.PhaseSuspended
	case last == v1alpha1.PhaseSuspended:
		return ""
	}
	return last
}

type budgetView struct {
	windows   []v1alpha1.WindowStatus
	phase     v1alpha1.BudgetPhase
	spent     string // of the tightest Hard window; "" when spend is unknown
	limit     string
	nextReset time.Time
	// hardReached and softReached are the windows whose spend reached their limit.
	hardReached, softReached []reachedLimit
}

// reachedLimit is a window whose spend reached its limit.
type reachedLimit struct {
	window       v1alpha1.Window
	spent, limit int64
	resetsAt     time.Time
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
		known            bool
	}
	var tightest *hardWindow
	// The phase is the ledger's, from the same figures as the gateway's (ledger.Phase).
	var (
		lim         ledger.Limits
		windowSpent [ledger.NumWindows]int64
	)
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
		lim.Set(string(l.Window), enf == v1alpha1.EnforcementHard, limit)
		reset := nextReset(l.Window, now)
		if v.nextReset.IsZero() || reset.Before(v.nextReset) {
			v.nextReset = reset
		}
		ws := v1alpha1.WindowStatus{Window: l.Window, Enforcement: enf, Limit: v1alpha1.FormatMicros(limit), ResetsAt: &metav1.Time{Time: reset}}
		remaining, spent := limit, int64(0)
		known := false
		if state != nil {
			spent, known = state.Spent[l.Window]
		}
		if known {
			if i := ledger.WindowIndex(string(l.Window)); i >= 0 {
				windowSpent[i] = spent
			}
			reserved := state.Reserved[l.Window]
			remaining = ledger.Remaining(limit, spent, reserved)
			ws.Spent, ws.Reserved, ws.Remaining = v1alpha1.FormatMicros(spent), v1alpha1.FormatMicros(reserved), v1alpha1.FormatMicros(remaining)
			if ledger.Reached(spent, limit) {
				r := reachedLimit{window: l.Window, spent: spent, limit: limit, resetsAt: reset}
				if enf == v1alpha1.EnforcementHard {
					v.hardReached = append(v.hardReached, r)
				} else {
					v.softReached = append(v.softReached, r)
				}
			}
		}
		if enf == v1alpha1.EnforcementHard {
			hw := &hardWindow{rank: windowRank[l.Window], limit: limit, remaining: remaining, spent: spent, known: known}
			if tightest == nil || hw.remaining < tightest.remaining || (hw.remaining == tightest.remaining && hw.rank < tightest.rank) {
				tightest = hw
			}
		}
		v.windows = append(v.windows, ws)
	}
	if tightest != nil {
		v.limit = v1alpha1.FormatMicros(tightest.limit)
		if tightest.known {
			v.spent = v1alpha1.FormatMicros(tightest.spent)
		}
	}
	v.phase = v1alpha1.BudgetPhase(ledger.Phase(spec.Suspended, state != nil && state.RunawayTripped, windowSpent, lim))
	return v
}

// nextReset returns the start of the window after the one containing now: the end of the
// ledger's bucket, as the gateway computes it (UTC calendar windows; weeks start on Monday).
func nextReset(w v1alpha1.Window, now time.Time) time.Time {
	return ledger.BucketOf(string(w), now).End
}
