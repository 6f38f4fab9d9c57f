package budget

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
	"github.com/posthog/llm-gateway/internal/leakcheck"
	"github.com/posthog/llm-gateway/test/redistest"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

// t0 is a Wednesday, 2025-01-29 10:20:30 UTC.
var t0 = time.Date(2025, 1, 29, 10, 20, 30, 0, time.UTC)

// backend is one store implementation under test. newStore returns a store over the same
// counters each time (a second pod on the same Redis, or the same MemoryStore).
type backend struct {
	name     string
	newStore func(t *testing.T) Store
	redis    *redistest.Server
}

// eachStore runs fn against the memory store and against a real redis-server.
func eachStore(t *testing.T, fn func(t *testing.T, be backend)) {
	t.Run("memory", func(t *testing.T) { fn(t, memoryBackend()) })
	t.Run("redis", func(t *testing.T) { fn(t, redisBackend(t)) })
}

func memoryBackend() backend {
	mem := NewMemoryStore()
	return backend{name: "memory", newStore: func(*testing.T) Store { return mem }}
}

// redisBackend starts a redis-server for the test.
func redisBackend(t *testing.T) backend {
	srv := redistest.Start(t)
	return backend{name: "redis", redis: srv, newStore: func(t *testing.T) Store {
		s, err := NewRedisStore(srv.URL())
		require.NoError(t, err)
		return s
	}}
}

// pod is one Manager with a manual clock and its own metrics registry. Its background loop
// runs on hour-long intervals: tests drive refresh, polling and probing by hand.
type pod struct {
	*Manager
	clock *clock.Fake
	reg   *prometheus.Registry
}

func newPod(t *testing.T, be backend, clk *clock.Fake, tweak ...func(*Options)) *pod {
	t.Helper()
	reg := prometheus.NewRegistry()
	o := Options{
		Clock: clk, Registerer: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		RefreshInterval: time.Hour, PollInterval: time.Hour, StoreTimeout: 2 * time.Second, PodID: t.Name(),
	}
	for _, f := range tweak {
		f(&o)
	}
	m := NewManager(be.newStore(t), o)
	t.Cleanup(func() { _ = m.Close() })
	return &pod{Manager: m, clock: clk, reg: reg}
}

func dollars(d float64) int64 { return int64(d * 1e6) }

func hardDay(limit float64) *snapshot.Budget {
	return &snapshot.Budget{
		Source: "team-a/budget", OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject,
		Limits: []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: dollars(limit), Enforcement: snapshot.EnforceHard}},
	}
}

func call(team string, b *snapshot.Budget, est float64, tokens int64) Request {
	return Request{Team: team, Budget: b, RequestID: uuid.NewString(), EstimateMicros: dollars(est), Priced: true, EstimateTokens: tokens}
}

func admit(t *testing.T, p *pod, r Request) *Reservation {
	t.Helper()
	res, err := p.Admit(context.Background(), r)
	require.NoError(t, err)
	require.NotNil(t, res)
	return res
}

func reject(t *testing.T, p *pod, r Request) *LimitError {
	t.Helper()
	res, err := p.Admit(context.Background(), r)
	require.Nil(t, res)
	var le *LimitError
	require.True(t, errors.As(err, &le), "want a LimitError, got %v", err)
	return le
}

func settle(t *testing.T, p *pod, res *Reservation, actual float64, tokens int64) {
	t.Helper()
	require.NoError(t, p.Settle(context.Background(), res, dollars(actual), tokens))
}

func state(t *testing.T, p *pod, team string, b *snapshot.Budget) State {
	t.Helper()
	st, err := p.TeamState(context.Background(), team, b)
	require.NoError(t, err)
	return st
}

func spent(st State, window string) int64 {
	for _, w := range st.Windows {
		if w.Window == window {
			return w.SpentMicros
		}
	}
	return -1
}
