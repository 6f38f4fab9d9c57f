package budget

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Store is the shared counter store: NewRedisStore (across pods) or NewMemoryStore (standalone).
type Store interface {
	Close() error
	store()
}

// Options configure a Manager. Zero values pick the documented defaults.
type Options struct {
	// Clock defaults to SystemClock.
	Clock Clock
	// ReservationTTL is how long a hold lives without a refresh (default 60s).
	ReservationTTL time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the budget metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// PodID names this pod in logs.
	PodID string
}

// Manager admits and settles calls against team budgets. It is safe for concurrent use.
type Manager struct {
	store Store
	opts  Options
}

// NewManager returns a manager over store and starts its background loop (refresh of
// outstanding holds, runaway-trip polling, store health); Close stops it.
func NewManager(store Store, opts Options) *Manager {
	return &Manager{store: store, opts: opts}
}

var errTODO = errors.New("budget: not implemented yet")

// Admit reserves the call's worst-case cost and rate-limit capacity, or rejects it with a
// *LimitError (429) or an *UnavailableError (503, store down and FailClosed).
func (m *Manager) Admit(ctx context.Context, r Request) (*Reservation, error) { return nil, errTODO }

// Settle charges the call's actual cost and token count and releases its hold. It is
// idempotent: settling the same reservation again is a no-op.
func (m *Manager) Settle(ctx context.Context, res *Reservation, actualMicros, actualTokens int64) error {
	return errTODO
}

// Suspended reports whether the runaway breaker holds team suspended (fast, cached).
func (m *Manager) Suspended(team string) (reason string, until time.Time, ok bool) {
	return "", time.Time{}, false
}

// TeamState reads the team's counters for the admin API.
func (m *Manager) TeamState(ctx context.Context, team string, b *snapshot.Budget) (State, error) {
	return State{}, errTODO
}

// Close stops the background loop and closes the store.
func (m *Manager) Close() error { return m.store.Close() }

// EstimateInputTokens estimates a request body's input tokens, conservatively.
func EstimateInputTokens(op string, body []byte) int64 { return int64(len(body))/3 + 1 }
