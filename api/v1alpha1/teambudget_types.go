/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Window is a spend window, calendar-aligned in UTC (weeks start Monday 00:00).
// +kubebuilder:validation:Enum=Hour;Day;Week;Month
type Window string

// Windows.
const (
	WindowHour  Window = "Hour"
	WindowDay   Window = "Day"
	WindowWeek  Window = "Week"
	WindowMonth Window = "Month"
)

// Enforcement of a spend limit.
// +kubebuilder:validation:Enum=Hard;Soft
type Enforcement string

// Enforcements.
const (
	// EnforcementHard rejects a call that would exceed the limit, before the provider sees it.
	EnforcementHard Enforcement = "Hard"
	// EnforcementSoft only reports: condition, event and metric.
	EnforcementSoft Enforcement = "Soft"
)

// StoreUnavailablePolicy decides admission while the shared counter store (Redis) is down.
// +kubebuilder:validation:Enum=FailClosed;FailOpen
type StoreUnavailablePolicy string

// Store-unavailable policies.
const (
	FailClosed StoreUnavailablePolicy = "FailClosed"
	FailOpen   StoreUnavailablePolicy = "FailOpen"
)

// UnpricedPolicy decides admission of calls to models with no known price.
// +kubebuilder:validation:Enum=Reject;Allow
type UnpricedPolicy string

// Unpriced policies.
const (
	UnpricedReject UnpricedPolicy = "Reject"
	UnpricedAllow  UnpricedPolicy = "Allow"
)

// BudgetPhase summarises a team's budget state.
// +kubebuilder:validation:Enum=Active;SoftLimitReached;Exhausted;Suspended;RunawayTripped
type BudgetPhase string

// Budget phases, in increasing severity.
const (
	PhaseActive           BudgetPhase = "Active"
	PhaseSoftLimitReached BudgetPhase = "SoftLimitReached"
	PhaseExhausted        BudgetPhase = "Exhausted"
	PhaseRunawayTripped   BudgetPhase = "RunawayTripped"
	PhaseSuspended        BudgetPhase = "Suspended"
)

// Conditions a TeamBudget in the snapshot has besides Accepted, ResolvedRefs and Programmed.
// Suspended comes from the spec; the others need the gateway's counters (the operator's
// --redis-url) and a team (a cluster default budget has no counters of its own). Except for
// CounterStoreAvailable, True is the state that needs attention, as in the phase of the same name.
const (
	// ConditionSuspended: the kill switch (spec.suspended) is on.
	ConditionSuspended = "Suspended"
	// ConditionRunawayTripped: the spend-velocity breaker holds the team until its cooldown ends.
	ConditionRunawayTripped = "RunawayTripped"
	// ConditionExhausted: the spend of a Hard window reached its limit; calls are rejected until
	// the window resets.
	ConditionExhausted = "Exhausted"
	// ConditionSoftLimitReached: the spend of a Soft window reached its limit; calls continue.
	ConditionSoftLimitReached = "SoftLimitReached"
	// ConditionCounterStoreAvailable: the operator can read the team's counters in Redis. While
	// it is False, status keeps the figures of the last successful read and the phase is not
	// recomputed.
	ConditionCounterStoreAvailable = "CounterStoreAvailable"
)

// Reasons of the TeamBudget conditions. Events about a transition use the same reason: Warning
// when a condition enters the state that needs attention, Normal when it leaves it.
const (
	// ReasonKillSwitch: Suspended=True.
	ReasonKillSwitch = "KillSwitch"
	// ReasonKillSwitchOff: Suspended=False.
	ReasonKillSwitchOff = "KillSwitchOff"
	// ReasonRunawayTripped: RunawayTripped=True.
	ReasonRunawayTripped = "RunawayTripped"
	// ReasonWithinSpendRate: RunawayTripped=False (no breaker, no trip, or the cooldown is over).
	ReasonWithinSpendRate = "WithinSpendRate"
	// ReasonHardLimitReached: Exhausted=True.
	ReasonHardLimitReached = "HardLimitReached"
	// ReasonWithinHardLimits: Exhausted=False.
	ReasonWithinHardLimits = "WithinHardLimits"
	// ReasonSoftLimitReached: SoftLimitReached=True.
	ReasonSoftLimitReached = "SoftLimitReached"
	// ReasonWithinSoftLimits: SoftLimitReached=False.
	ReasonWithinSoftLimits = "WithinSoftLimits"
	// ReasonStoreAvailable: CounterStoreAvailable=True.
	ReasonStoreAvailable = "StoreAvailable"
	// ReasonStoreUnavailable: CounterStoreAvailable=False, the counters could not be read.
	ReasonStoreUnavailable = "StoreUnavailable"
)

// TeamBudgetSpec is a team's spending and rate policy, or (clusterDefault: true) the policy of
// every team that has none of its own.
//
// +kubebuilder:validation:XValidation:rule="has(self.team) != (has(self.clusterDefault) && self.clusterDefault)",message="set exactly one of team or clusterDefault: true"
// +kubebuilder:validation:XValidation:rule="self.limits.exists(l, l.enforcement == 'Hard')",message="at least one Hard spend limit is required: no team is unlimited"
type TeamBudgetSpec struct {
	// Team the budget applies to (the team of a TeamRollout).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Team string `json:"team,omitempty"`

	// ClusterDefault makes this the budget of every team without a TeamBudget of its own.
	// With none, the operator's built-in default applies (see its --default-budget-* flags).
	// +optional
	ClusterDefault bool `json:"clusterDefault,omitempty"`

	// Limits on spend per window. One Hard and one Soft limit per window at most.
	// +listType=map
	// +listMapKey=window
	// +listMapKey=enforcement
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Limits []SpendLimit `json:"limits"`

	// MaxRequestCost rejects a single call whose worst-case cost is above it.
	// +optional
	MaxRequestCost Money `json:"maxRequestCost,omitempty"`

	// RateLimits across all gateway pods.
	// +optional
	RateLimits *RateLimits `json:"rateLimits,omitempty"`

	// Runaway is the spend-velocity breaker: spend above spendPerMinute within a minute
	// suspends the team for the cooldown.
	// +optional
	Runaway *RunawayBreaker `json:"runaway,omitempty"`

	// Suspended is the kill switch: new calls are rejected and open streams are ended.
	// +optional
	Suspended bool `json:"suspended,omitempty"`

	// OnStoreUnavailable decides admission while Redis is unreachable.
	// +optional
	// +kubebuilder:default=FailClosed
	OnStoreUnavailable StoreUnavailablePolicy `json:"onStoreUnavailable,omitempty"`

	// FailOpenAllowance is the spend each gateway pod may admit per window for the team while
	// Redis is unreachable under FailOpen. Unset: the gateway derives a conservative one.
	// +optional
	FailOpenAllowance Money `json:"failOpenAllowance,omitempty"`

	// UnpricedModels decides admission of calls to models with no known price.
	// +optional
	// +kubebuilder:default=Reject
	UnpricedModels UnpricedPolicy `json:"unpricedModels,omitempty"`
}

// SpendLimit is a limit on spend in one window.
type SpendLimit struct {
	// Window the limit applies to.
	Window Window `json:"window"`
	// Amount in US dollars.
	Amount Money `json:"amount"`
	// Enforcement: Hard rejects, Soft only reports.
	// +kubebuilder:default=Hard
	Enforcement Enforcement `json:"enforcement"`
}

// RateLimits of a team across all pods. Unset fields mean no limit.
type RateLimits struct {
	// RequestsPerMinute admitted.
	// +optional
	// +kubebuilder:validation:Minimum=1
	RequestsPerMinute int64 `json:"requestsPerMinute,omitempty"`
	// TokensPerMinute (input estimate plus max output) admitted.
	// +optional
	// +kubebuilder:validation:Minimum=1
	TokensPerMinute int64 `json:"tokensPerMinute,omitempty"`
	// ConcurrentRequests in flight.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ConcurrentRequests int64 `json:"concurrentRequests,omitempty"`
}

// RunawayBreaker is the spend-velocity breaker.
type RunawayBreaker struct {
	// SpendPerMinute above which the team is suspended.
	SpendPerMinute Money `json:"spendPerMinute"`
	// Cooldown the team stays suspended for (whole seconds, at least 1s).
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="cooldown must be at least 1s"
	Cooldown metav1.Duration `json:"cooldown"`
}

// WindowStatus is the state of one spend window.
type WindowStatus struct {
	Window      Window      `json:"window"`
	Enforcement Enforcement `json:"enforcement"`
	// Limit in US dollars.
	Limit string `json:"limit"`
	// Spent (settled) in the current window, in US dollars.
	// +optional
	Spent string `json:"spent,omitempty"`
	// Reserved by calls in flight, in US dollars.
	// +optional
	Reserved string `json:"reserved,omitempty"`
	// Remaining = limit - spent - reserved (never below 0), in US dollars.
	// +optional
	Remaining string `json:"remaining,omitempty"`
	// ResetsAt is the start of the next window.
	// +optional
	ResetsAt *metav1.Time `json:"resetsAt,omitempty"`
}

// TeamBudgetStatus is the observed state of a TeamBudget.
type TeamBudgetStatus struct {
	CommonStatus `json:",inline"`
	// Phase summarises the budget state. Empty while unknown: the counter store could not be
	// read and the last known phase was the kill switch, now off.
	// +optional
	Phase BudgetPhase `json:"phase,omitempty"`
	// Windows is the state of each spend limit. Spend figures are present once the operator
	// can read the gateway's counters.
	// +optional
	Windows []WindowStatus `json:"windows,omitempty"`
	// Spent in the tightest Hard window (the one with the least remaining), in US dollars.
	// +optional
	Spent string `json:"spent,omitempty"`
	// Limit of the tightest Hard window, in US dollars.
	// +optional
	Limit string `json:"limit,omitempty"`
}

// TeamBudget limits a team's spend and request rate.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=llmtb,categories=llmgateway
// +kubebuilder:metadata:annotations="argocd.argoproj.io/sync-wave=-1"
// +kubebuilder:printcolumn:name="Team",type=string,JSONPath=`.spec.team`
// +kubebuilder:printcolumn:name="Default",type=boolean,JSONPath=`.spec.clusterDefault`,priority=1
// +kubebuilder:printcolumn:name="Spent",type=string,JSONPath=`.status.spent`
// +kubebuilder:printcolumn:name="Limit",type=string,JSONPath=`.status.limit`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TeamBudget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TeamBudgetSpec   `json:"spec"`
	Status TeamBudgetStatus `json:"status,omitempty"`
}

// GetCommonStatus implements Object.
func (b *TeamBudget) GetCommonStatus() *CommonStatus { return &b.Status.CommonStatus }

// TeamBudgetList is a list of TeamBudgets.
//
// +kubebuilder:object:root=true
type TeamBudgetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TeamBudget `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TeamBudget{}, &TeamBudgetList{})
}
