package ledger

import (
	"time"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Phases of a team budget, as in TeamBudget.status.phase and the gateway's /admin/teams.
const (
	PhaseActive           = "Active"
	PhaseSoftLimitReached = "SoftLimitReached"
	PhaseExhausted        = "Exhausted"
	PhaseSuspended        = "Suspended"
	PhaseRunawayTripped   = "RunawayTripped"
)

// Limits are a budget's spend limits by window (index as in Windows), in micro-dollars; 0 is
// no limit. A budget has at most one Hard and one Soft limit per window.
type Limits struct{ Hard, Soft [NumWindows]int64 }

// Set records a limit of window w (ignored when w is unknown or micros <= 0).
func (l *Limits) Set(w string, hard bool, micros int64) {
	i := WindowIndex(w)
	if i < 0 || micros <= 0 {
		return
	}
	if hard {
		l.Hard[i] = micros
	} else {
		l.Soft[i] = micros
	}
}

// LimitsOf returns the spend limits of a snapshot budget.
func LimitsOf(b *snapshot.Budget) Limits {
	var l Limits
	for _, x := range b.Limits {
		l.Set(x.Window, x.Enforcement != snapshot.EnforceSoft, x.LimitMicros)
	}
	return l
}

// Reached reports whether spend reached a limit (limit 0: no limit, never reached).
func Reached(spent, limit int64) bool { return limit > 0 && spent >= limit }

// Remaining is what a limit leaves: limit - spent - reserved, never below 0. The holds of
// calls in flight (reserved) count against every window.
func Remaining(limit, spent, reserved int64) int64 { return max(limit-spent-reserved, 0) }

// Phase is the phase of a budget, most severe first: the kill switch (Suspended), the runaway
// breaker holding the team (RunawayTripped), a Hard window's spend reached its limit
// (Exhausted), a Soft window's did (SoftLimitReached), else Active. spent[i] is the settled
// spend of the current bucket of Windows[i] (0 when unknown).
func Phase(suspended, runawayTripped bool, spent [NumWindows]int64, l Limits) string {
	switch {
	case suspended:
		return PhaseSuspended
	case runawayTripped:
		return PhaseRunawayTripped
	}
	for i := range spent {
		if Reached(spent[i], l.Hard[i]) {
			return PhaseExhausted
		}
	}
	for i := range spent {
		if Reached(spent[i], l.Soft[i]) {
			return PhaseSoftLimitReached
		}
	}
	return PhaseActive
}

// Trip is a runaway trip as recorded in the Trip key.
type Trip struct {
	// Until is when the suspension ends; At is when the breaker tripped.
	Until, At time.Time
	// RateMicros is the spend in the sliding minute that tripped it, ThresholdMicros the
	// budget's spendPerMinute then.
	RateMicros, ThresholdMicros int64
}

// TripFields are the fields of the Trip hash, in the order ParseTrip reads them (HMGET). The
// settlement script writes them: until and at in unix ms, rate and threshold in micro-dollars.
var TripFields = []string{"until", "at", "rate", "threshold"}

// ParseTrip reads the reply of HMGET Trip TripFields...; false when there is no trip.
func ParseTrip(v []any) (Trip, bool) {
	n := func(i int) int64 {
		if i >= len(v) {
			return 0
		}
		s, _ := v[i].(string)
		x, _ := parseInt(s)
		return x
	}
	if n(0) == 0 {
		return Trip{}, false
	}
	return Trip{Until: time.UnixMilli(n(0)).UTC(), At: time.UnixMilli(n(1)).UTC(), RateMicros: n(2), ThresholdMicros: n(3)}, true
}
