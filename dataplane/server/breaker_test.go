package server

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
)

func TestBreakerOpensAfterConsecutiveFailures(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	b := NewBreaker(snapshot.CircuitBreaker{ConsecutiveFailures: 3, CooldownMs: 10_000}, clk, nil)

	b.Failure(false, 0)
	b.Failure(false, 0)
	b.Success() // a success resets the count
	b.Failure(false, 0)
	b.Failure(false, 0)
	require.True(t, b.Allow())
	require.Equal(t, "closed", b.State().State)
	b.Failure(false, 0)
	require.Equal(t, "open", b.State().State)
	require.False(t, b.Allow())

	clk.Advance(10 * time.Second)
	require.True(t, b.Allow(), "one probe after the cooldown")
	require.False(t, b.Allow(), "only one probe at a time")
	require.Equal(t, "half-open", b.State().State)
	b.Failure(false, 0)
	require.Equal(t, "open", b.State().State, "a failed probe opens it again")
	require.False(t, b.Allow())

	clk.Advance(10 * time.Second)
	require.True(t, b.Allow())
	b.Success()
	require.Equal(t, "closed", b.State().State)
	require.True(t, b.Allow())
	require.True(t, b.Allow())
}

func TestBreakerRateLimitTripsForRetryAfter(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	b := NewBreaker(snapshot.CircuitBreaker{ConsecutiveFailures: 5, CooldownMs: 1000}, clk, nil)
	b.Failure(true, 20*time.Second)
	require.False(t, b.Allow())
	clk.Advance(19 * time.Second)
	require.False(t, b.Allow(), "retry-after longer than the cooldown wins")
	clk.Advance(time.Second)
	require.True(t, b.Allow())
}

func TestBreakerReleaseFreesTheProbe(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	b := NewBreaker(snapshot.CircuitBreaker{ConsecutiveFailures: 1, CooldownMs: 1000}, clk, nil)
	b.Failure(false, 0)
	clk.Advance(time.Second)
	require.True(t, b.Allow())
	b.Release()
	require.True(t, b.Allow(), "a cancelled probe lets the next request probe")
}

func TestBreakerDefaults(t *testing.T) {
	clk := clock.NewFake(time.Unix(1000, 0))
	b := NewBreaker(snapshot.CircuitBreaker{}, clk, nil)
	for range snapshot.DefaultBreakerFailures - 1 {
		b.Failure(false, 0)
	}
	require.True(t, b.Allow())
	b.Failure(false, 0)
	require.False(t, b.Allow())
	clk.Advance(snapshot.DefaultBreakerCooldown)
	require.True(t, b.Allow())
}

// An upstream retry-after holds a circuit open for at most MaxRetryAfter.
func TestBreakerCapsRetryAfter(t *testing.T) {
	for _, retryAfter := range []time.Duration{48 * time.Hour, time.Duration(1<<63 - 1)} {
		clk := clock.NewFake(time.Unix(1000, 0))
		b := NewBreaker(snapshot.CircuitBreaker{ConsecutiveFailures: 5, CooldownMs: 1000}, clk, nil)
		b.Failure(true, retryAfter)
		require.Equal(t, clk.Now().Add(MaxRetryAfter), b.State().CooldownUntil)
		clk.Advance(MaxRetryAfter - time.Second)
		require.False(t, b.Allow())
		clk.Advance(time.Second)
		require.True(t, b.Allow(), "retry-after %s is capped", retryAfter)
	}
	// A negative one (an overflowed parse) is no wait at all: the cooldown applies.
	clk := clock.NewFake(time.Unix(1000, 0))
	b := NewBreaker(snapshot.CircuitBreaker{ConsecutiveFailures: 1, CooldownMs: 1000}, clk, nil)
	b.Failure(true, -time.Hour)
	require.Equal(t, clk.Now().Add(time.Second), b.State().CooldownUntil)
}
