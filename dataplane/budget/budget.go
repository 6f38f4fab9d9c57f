// Package budget enforces a team's spending and rate policy (snapshot.Budget) across every
// gateway pod: admission before the provider is called, settlement with the real cost after it,
// rate limits, the runaway breaker and the kill switch.
//
// Admission reserves the call's worst-case cost against every spend window of the team with
// one atomic store operation (a Lua script on Redis: one round trip). Settlement charges the
// actual cost, releases the reservation and is idempotent per reservation id. Reservations
// expire on their own, so a crashed pod cannot leak holds; a live pod refreshes the holds of
// its open calls in the background. See docs/budget.md for the semantics, the overshoot bound,
// the Redis key schema and the failure modes.
package budget

import (
	"fmt"
	"time"

	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Limit names reported in LimitError.Limit. Spend limits are "spend:" + window.
const (
	LimitMaxRequestCost    = "max_request_cost"
	LimitRequestsPerMinute = "requests_per_minute"
	LimitTokensPerMinute   = "tokens_per_minute"
	LimitConcurrent        = "concurrent_requests"
	LimitSuspended         = "suspended"
	LimitRunaway           = "runaway"
	LimitUnpriced          = "unpriced_model"
	// LimitFailOpenAllowance: the store is unreachable, the budget is FailOpen and this pod's
	// local allowance for the team is used up.
	LimitFailOpenAllowance = "fail_open_allowance"
)

// SpendLimitName returns the Limit name of a spend window, e.g. "spend:Day".
func SpendLimitName(window string) string { return "spend:" + window }

// Request is one call asking for admission.
type Request struct {
	Team string
	// Budget is the team's effective budget (its own or the cluster default). Required.
	Budget *snapshot.Budget
	// RequestID is unique per call; it is the reservation id and the idempotency key of
	// settlement. Empty: the manager generates one.
	RequestID string
	// EstimateMicros is the worst-case cost of the call (cost.Estimate), in micro-dollars.
	EstimateMicros int64
	// Priced is false when the model has no price: Budget.Unpriced decides.
	Priced bool
	// EstimateTokens is the input estimate plus the maximum output tokens, for the TPM limit.
	EstimateTokens int64
}

// Reservation is an admitted call's hold. Its fields are for logs and events; treat them as
// read-only and pass the reservation back to Settle.
type Reservation struct {
	ID         string
	Team       string
	HeldMicros int64
	HeldTokens int64
	// FailOpen is true when the store was unreachable and the call was admitted against this
	// pod's local allowance (Budget.OnStoreUnavailable FailOpen).
	FailOpen bool
	// SoftCrossed lists the Soft spend limits ("spend:Day") the team had already reached at
	// admission. The call continues; the crossing is logged and counted once per window.
	SoftCrossed []string
	AdmittedAt  time.Time

	budget  *snapshot.Budget
	minute  int64 // TPM bucket the tokens were reserved in
	settled bool  // guarded by Manager.mu
}

// LimitError is a rejection by a limit. The proxy renders it as HTTP 429 in the caller's
// error shape, with retry-after when RetryAfter > 0 and x-should-retry: false when !Retryable.
type LimitError struct {
	// Limit is which limit tripped: "spend:Day", "spend:Month", "max_request_cost",
	// "requests_per_minute", "tokens_per_minute", "concurrent_requests", "suspended",
	// "runaway", "unpriced_model", "fail_open_allowance".
	Limit string
	// Message is a human sentence naming the limit and when it resets.
	Message string
	// ResetAt is when the limit resets (zero when it does not, e.g. the kill switch).
	ResetAt time.Time
	// RetryAfter is > 0 when waiting helps.
	RetryAfter time.Duration
	// Retryable is false when an automatic retry cannot help (x-should-retry: false).
	Retryable bool
}

func (e *LimitError) Error() string { return e.Message }

// UnavailableError is returned when the store cannot be reached and the budget is FailClosed.
// The proxy renders it as HTTP 503.
type UnavailableError struct {
	Team string
	Err  error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("budget store unavailable for team %s (onStoreUnavailable: FailClosed): %v", e.Team, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// WindowState is one spend window of a team as the store sees it.
type WindowState struct {
	Window string `json:"window"`
	// Bucket identifies the current window: "2025-01-31T14" (hour), "2025-01-31" (day),
	// "2025-W05" (ISO week), "2025-01" (month).
	Bucket      string    `json:"bucket"`
	SpentMicros int64     `json:"spentMicros"`
	ResetAt     time.Time `json:"resetAt"`
	// HardLimitMicros and SoftLimitMicros are 0 when the budget has no such limit.
	HardLimitMicros int64 `json:"hardLimitMicros,omitempty"`
	SoftLimitMicros int64 `json:"softLimitMicros,omitempty"`
	// RemainingMicros is HardLimit - Spent - Reserved (>= 0), or -1 without a hard limit.
	RemainingMicros int64 `json:"remainingMicros"`
}

// State is a team's budget state, for the admin API.
type State struct {
	Team           string        `json:"team"`
	Source         string        `json:"source"`
	Windows        []WindowState `json:"windows"`
	ReservedMicros int64         `json:"reservedMicros"`
	InFlight       int64         `json:"inFlight"`
	// RequestsLastMinute and TokensLastMinute are the sliding-window counts the rate limits use.
	RequestsLastMinute int64 `json:"requestsLastMinute"`
	TokensLastMinute   int64 `json:"tokensLastMinute"`
	// SpendLastMinuteMicros is what the runaway breaker compares to its threshold.
	SpendLastMinuteMicros int64 `json:"spendLastMinuteMicros"`
	// RunawayUntil is set while the runaway breaker holds the team suspended.
	RunawayUntil time.Time `json:"runawayUntil,omitempty"`
	// Suspended is the kill switch of the budget.
	Suspended bool `json:"suspended"`
	// Phase: Active, SoftLimitReached, Exhausted, Suspended or RunawayTripped.
	Phase string `json:"phase"`
	// StoreHealthy is this pod's view of the shared store.
	StoreHealthy bool `json:"storeHealthy"`
	// PendingSettles are settlements queued on this pod for replay once the store is back.
	PendingSettles int `json:"pendingSettles"`
}

// Phases of a team budget (as in TeamBudget.status.phase): the ledger's, which the operator
// uses too.
const (
	PhaseActive           = ledger.PhaseActive
	PhaseSoftLimitReached = ledger.PhaseSoftLimitReached
	PhaseExhausted        = ledger.PhaseExhausted
	PhaseSuspended        = ledger.PhaseSuspended
	PhaseRunawayTripped   = ledger.PhaseRunawayTripped
)
