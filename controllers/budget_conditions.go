/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/posthog/llm-gateway/api/v1alpha1"
)

// counterConditions are the TeamBudget conditions that need the gateway's counters.
var counterConditions = []string{
	v1alpha1.ConditionRunawayTripped, v1alpha1.ConditionExhausted,
	v1alpha1.ConditionSoftLimitReached, v1alpha1.ConditionCounterStoreAvailable,
}

// budgetConditions returns the budget conditions of a TeamBudget in the snapshot. Suspended
// comes from the spec. The others need counters (a reader and a team). After a failed read
// (readErr) only CounterStoreAvailable is returned of those: the others keep what the last
// successful read made them.
func budgetConditions(spec *v1alpha1.TeamBudgetSpec, v budgetView, state *BudgetState, counters bool, readErr error, now time.Time) []metav1.Condition {
	conds := []metav1.Condition{suspendedCondition(spec)}
	switch {
	case !counters:
		return conds
	case readErr != nil:
		return append(conds, condition(v1alpha1.ConditionCounterStoreAvailable, false, v1alpha1.ReasonStoreUnavailable,
			fmt.Sprintf("cannot read the team's budget counters: %v; status keeps the figures of the last read and "+
				"the phase is not recomputed until the store answers", readErr)))
	}
	return append(conds,
		runawayCondition(spec, state, now),
		exhaustedCondition(v.hardReached),
		softLimitCondition(spec, v.softReached),
		condition(v1alpha1.ConditionCounterStoreAvailable, true, v1alpha1.ReasonStoreAvailable,
			"the team's budget counters are read from the gateway's Redis"),
	)
}

func condition(typ string, status bool, reason, message string) metav1.Condition {
	s := metav1.ConditionFalse
	if status {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: message}
}

func suspendedCondition(spec *v1alpha1.TeamBudgetSpec) metav1.Condition {
	if spec.Suspended {
		return condition(v1alpha1.ConditionSuspended, true, v1alpha1.ReasonKillSwitch,
			"spec.suspended is true: new calls are rejected and open streams are ended")
	}
	return condition(v1alpha1.ConditionSuspended, false, v1alpha1.ReasonKillSwitchOff, "spec.suspended is false")
}

func runawayCondition(spec *v1alpha1.TeamBudgetSpec, state *BudgetState, now time.Time) metav1.Condition {
	trip := state.LastTrip
	switch {
	case state.RunawayTripped && trip != nil:
		return condition(v1alpha1.ConditionRunawayTripped, true, v1alpha1.ReasonRunawayTripped,
			fmt.Sprintf("spent %s in one minute, above the breaker's %s per minute: calls are rejected until %s",
				dollars(trip.RateMicros), dollars(trip.ThresholdMicros), timestamp(trip.Until)))
	case state.RunawayTripped:
		return condition(v1alpha1.ConditionRunawayTripped, true, v1alpha1.ReasonRunawayTripped,
			"the spend-velocity breaker holds the team: calls are rejected until its cooldown ends")
	case spec.Runaway == nil:
		return condition(v1alpha1.ConditionRunawayTripped, false, v1alpha1.ReasonWithinSpendRate, "no runaway breaker is set")
	}
	threshold, _ := spec.Runaway.SpendPerMinute.Micros() // Accepted=False when it does not parse
	msg := fmt.Sprintf("spend per minute is below the breaker's %s per minute", dollars(threshold))
	if trip != nil && !trip.Until.After(now) {
		msg += "; the last trip ended at " + timestamp(trip.Until)
	}
	return condition(v1alpha1.ConditionRunawayTripped, false, v1alpha1.ReasonWithinSpendRate, msg)
}

func exhaustedCondition(reached []reachedLimit) metav1.Condition {
	if len(reached) == 0 {
		return condition(v1alpha1.ConditionExhausted, false, v1alpha1.ReasonWithinHardLimits, "spend is below every Hard limit")
	}
	return condition(v1alpha1.ConditionExhausted, true, v1alpha1.ReasonHardLimitReached,
		describeReached(reached, "Hard", "calls are rejected until it resets at"))
}

func softLimitCondition(spec *v1alpha1.TeamBudgetSpec, reached []reachedLimit) metav1.Condition {
	if len(reached) > 0 {
		return condition(v1alpha1.ConditionSoftLimitReached, true, v1alpha1.ReasonSoftLimitReached,
			describeReached(reached, "Soft", "calls continue; it resets at"))
	}
	for _, l := range spec.Limits {
		if l.Enforcement == v1alpha1.EnforcementSoft {
			return condition(v1alpha1.ConditionSoftLimitReached, false, v1alpha1.ReasonWithinSoftLimits, "spend is below every Soft limit")
		}
	}
	return condition(v1alpha1.ConditionSoftLimitReached, false, v1alpha1.ReasonWithinSoftLimits, "no Soft limit is set")
}

// describeReached says which windows reached their limit, by how much, and when they reset:
// "Day: spent $1.10 of the $1.00 Hard limit, calls are rejected until it resets at ...".
func describeReached(reached []reachedLimit, enforcement, then string) string {
	parts := make([]string, 0, len(reached))
	for _, r := range reached {
		parts = append(parts, fmt.Sprintf("%s: spent %s of the %s %s limit, %s %s",
			r.window, dollars(r.spent), dollars(r.limit), enforcement, then, timestamp(r.resetsAt)))
	}
	return strings.Join(parts, "; ")
}

func dollars(micros int64) string { return "$" + v1alpha1.FormatMicros(micros) }

func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// setBudgetConditions writes the budget conditions into conds (at generation gen) and returns
// the events their transitions make. Without counters, the counter conditions are removed.
func setBudgetConditions(conds *[]metav1.Condition, set []metav1.Condition, gen int64, counters bool) []statusEvent {
	if !counters {
		for _, t := range counterConditions {
			meta.RemoveStatusCondition(conds, t)
		}
	}
	var events []statusEvent
	for _, c := range set {
		c.ObservedGeneration = gen
		if e, ok := budgetEvent(meta.FindStatusCondition(*conds, c.Type), c); ok {
			events = append(events, e)
		}
		meta.SetStatusCondition(conds, c)
	}
	return events
}

// removeBudgetConditions removes every budget condition (the budget left the snapshot).
func removeBudgetConditions(conds *[]metav1.Condition) {
	for _, t := range append([]string{v1alpha1.ConditionSuspended}, counterConditions...) {
		meta.RemoveStatusCondition(conds, t)
	}
}

// budgetEvent returns the event a budget condition's change makes, with the condition's
// reason: Warning when it enters the state that needs attention (True, or False for
// CounterStoreAvailable), Normal when it leaves it. A condition that appears in the healthy
// state, or whose message alone changed, makes none.
func budgetEvent(old *metav1.Condition, c metav1.Condition) (statusEvent, bool) {
	alarm := c.Status == metav1.ConditionTrue
	if c.Type == v1alpha1.ConditionCounterStoreAvailable {
		alarm = !alarm
	}
	switch {
	case old == nil && !alarm:
		return statusEvent{}, false
	case old != nil && old.Status == c.Status && old.Reason == c.Reason:
		return statusEvent{}, false
	}
	typ := corev1.EventTypeNormal
	if alarm {
		typ = corev1.EventTypeWarning
	}
	return statusEvent{typ: typ, reason: c.Reason, action: c.Type, note: c.Message}, true
}

// logStoreTransitions writes one log line when the team's counters become unreadable and one
// when they are readable again (not one per refresh).
func logStoreTransitions(log logr.Logger, team string, events []statusEvent, readErr error) {
	for _, e := range events {
		switch e.reason {
		case v1alpha1.ReasonStoreUnavailable:
			log.Error(readErr, "cannot read the team's budget counters; TeamBudget status keeps the last figures", "team", team)
		case v1alpha1.ReasonStoreAvailable:
			log.Info("the team's budget counters are readable again", "team", team)
		}
	}
}
