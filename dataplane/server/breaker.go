package server

import (
	"sync"
	"time"

	"github.com/posthog/llm-gateway/dataplane/metrics"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
)

// MaxRetryAfter caps an upstream's retry-after before it holds a circuit open: a provider (or
// anything on the way) answering retry-after: 86400 must not take a backend out for a day.
// The backend's own cooldown is not capped.
const MaxRetryAfter = 10 * time.Minute

// Breaker is a backend's passive health: it opens after ConsecutiveFailures failover-class
// failures (or at once on a provider 429 / quota exhaustion) for the cooldown or the upstream's
// retry-after, whichever is longer, then lets a single probe through (half-open).
type Breaker struct {
	failuresToOpen int
	cooldown       time.Duration
	clock          clock.Clock
	onChange       func(state int)

	mu          sync.Mutex
	failures    int
	openUntil   time.Time // zero: closed
	lastFailure time.Time
	probing     bool
}

// NewBreaker returns a closed breaker for cfg. clk nil is the wall clock; onChange (may be nil)
// gets every state change.
func NewBreaker(cfg snapshot.CircuitBreaker, clk clock.Clock, onChange func(state int)) *Breaker {
	b := &Breaker{
		failuresToOpen: cfg.ConsecutiveFailures, cooldown: time.Duration(cfg.CooldownMs) * time.Millisecond,
		clock: clock.Or(clk), onChange: onChange,
	}
	if b.failuresToOpen <= 0 {
		b.failuresToOpen = snapshot.DefaultBreakerFailures
	}
	if b.cooldown <= 0 {
		b.cooldown = snapshot.DefaultBreakerCooldown
	}
	return b
}

// Allow reports whether a request may go to the backend now. When the cooldown is over it
// admits exactly one probe (half-open) until that probe reports back.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openUntil.IsZero() {
		return true
	}
	if b.probing || b.clock.Now().Before(b.openUntil) {
		return false
	}
	b.probing = true
	b.changed(metrics.CircuitHalfOpen)
	return true
}

// ForceProbe admits a request although the circuit is open: every candidate was open, and
// this backend failed least recently.
func (b *Breaker) ForceProbe() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.openUntil.IsZero() {
		b.probing = true
		b.changed(metrics.CircuitHalfOpen)
	}
}

// Success records a response from the backend (including client errors: the backend is up).
func (b *Breaker) Success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	wasOpen := !b.openUntil.IsZero()
	b.failures, b.openUntil, b.probing = 0, time.Time{}, false
	if wasOpen {
		b.changed(metrics.CircuitClosed)
	}
}

// Release ends an attempt that says nothing about the backend's health (client cancel).
func (b *Breaker) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.probing {
		b.probing = false
		b.changed(metrics.CircuitOpen)
	}
}

// Failure records a failover-class failure. tripNow opens the circuit whatever the count (a
// provider 429 or exhausted quota); retryAfter, capped at MaxRetryAfter, extends the cooldown
// when it is longer.
func (b *Breaker) Failure(tripNow bool, retryAfter time.Duration) {
	retryAfter = min(max(retryAfter, 0), MaxRetryAfter)
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	b.failures++
	b.lastFailure = now
	if !tripNow && !b.probing && b.failures < b.failuresToOpen {
		return
	}
	b.probing = false
	b.openUntil = now.Add(max(b.cooldown, retryAfter))
	b.changed(metrics.CircuitOpen)
}

func (b *Breaker) changed(state int) {
	if b.onChange != nil {
		b.onChange(state)
	}
}

// BreakerState is a breaker's state for /admin/backends.
type BreakerState struct {
	State               string    `json:"state"`
	ConsecutiveFailures int       `json:"consecutiveFailures"`
	CooldownUntil       time.Time `json:"cooldownUntil,omitzero"`
	LastFailure         time.Time `json:"lastFailure,omitzero"`
}

// State returns the breaker's current state.
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := BreakerState{State: "closed", ConsecutiveFailures: b.failures, CooldownUntil: b.openUntil, LastFailure: b.lastFailure}
	switch {
	case b.openUntil.IsZero():
	case b.probing:
		s.State = "half-open"
	case b.clock.Now().Before(b.openUntil):
		s.State = "open"
	default:
		s.State = "half-open" // cooldown over: the next request probes
	}
	return s
}

// lastFailed returns when the backend last failed (for picking the least-recently-failed
// backend when every circuit is open).
func (b *Breaker) lastFailed() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastFailure
}
