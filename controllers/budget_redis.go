/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
)

// RedisBudgetState is the BudgetStateReader over the gateway's Redis: it reads the counters
// the gateway pods write with the budget ledger (dataplane/budget/ledger, key schema in
// docs/budget.md), the same package the pods use.
type RedisBudgetState struct{ rdb *redis.Client }

// NewRedisBudgetState connects to the gateway's Redis (redis://host:port/db, rediss://).
func NewRedisBudgetState(url string) (*RedisBudgetState, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("budget counters: parse redis url: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	opts.DialerRetries = 1 // the reconciler retries; report an outage promptly
	return &RedisBudgetState{rdb: redis.NewClient(opts)}, nil
}

// BudgetState reads the team's spend in the windows containing now. Holds of calls in flight
// count against every window.
func (s *RedisBudgetState) BudgetState(ctx context.Context, team string, now time.Time) (BudgetState, error) {
	c, err := ledger.Read(ctx, s.rdb, team, now)
	if err != nil {
		return BudgetState{}, err
	}
	st := BudgetState{Spent: map[v1alpha1.Window]int64{}, Reserved: map[v1alpha1.Window]int64{}, RunawayTripped: c.RunawayTripped(now)}
	if t := c.LastTrip; t != nil {
		st.LastTrip = &RunawayTrip{At: t.At, Until: t.Until, RateMicros: t.RateMicros, ThresholdMicros: t.ThresholdMicros}
	}
	for i, w := range ledger.Windows {
		st.Spent[v1alpha1.Window(w)] = c.Spent[i]
		st.Reserved[v1alpha1.Window(w)] = c.HeldMicros
	}
	return st, nil
}

// redisLogger sends go-redis's own log lines (a failed dial for every read while Redis is
// down) to the operator's log at debug level: the TeamBudget condition, its event and one
// error line per team already report an outage.
type redisLogger struct{ log logr.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.V(1).Info(fmt.Sprintf(format, v...))
}

// Ping checks that Redis is reachable.
func (s *RedisBudgetState) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping budget store: %w", err)
	}
	return nil
}

// Close closes the Redis client.
func (s *RedisBudgetState) Close() error { return s.rdb.Close() }
