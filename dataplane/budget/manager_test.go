package budget

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
)

func TestHardDayLimitAndRollOver(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		clk := clock.NewFake(t0)
		p := newPod(t, be, clk)
		b := hardDay(1)

		r1 := admit(t, p, call("a", b, 0.5, 100))
		settle(t, p, r1, 0.6, 80)
		r2 := admit(t, p, call("a", b, 0.3, 100))
		settle(t, p, r2, 0.3, 80)

		le := reject(t, p, call("a", b, 0.2, 100))
		midnight := time.Date(2025, 1, 30, 0, 0, 0, 0, time.UTC)
		require.Equal(t, "spend:Day", le.Limit)
		require.Equal(t, midnight, le.ResetAt)
		require.False(t, le.Retryable)
		require.Equal(t, midnight.Sub(t0), le.RetryAfter)
		require.Contains(t, le.Message, "$0.90 of its daily $1.00 limit")
		require.Contains(t, le.Message, "2025-01-30T00:00:00Z")

		st := state(t, p, "a", b)
		require.Equal(t, dollars(0.9), spent(st, snapshot.WindowDay))
		require.Equal(t, dollars(0.9), spent(st, snapshot.WindowMonth), "spend is recorded in every window")
		require.Equal(t, PhaseActive, st.Phase)

		clk.Set(midnight.Add(-time.Second))
		reject(t, p, call("a", b, 0.2, 100))
		clk.Set(midnight)
		r3 := admit(t, p, call("a", b, 0.2, 100))
		settle(t, p, r3, 0.2, 80)
		st = state(t, p, "a", b)
		require.Equal(t, dollars(0.2), spent(st, snapshot.WindowDay))
		require.Equal(t, dollars(1.1), spent(st, snapshot.WindowWeek))
		require.Equal(t, dollars(1.1), spent(st, snapshot.WindowMonth))
	})
}

func TestWindowsOfEveryKind(t *testing.T) {
	cases := []struct {
		window   string
		roll     time.Time // first instant of the next window after t0
		reset    time.Time
		adjectiv string
	}{
		{snapshot.WindowHour, time.Date(2025, 1, 29, 11, 0, 0, 0, time.UTC), time.Date(2025, 1, 29, 11, 0, 0, 0, time.UTC), "hourly"},
		{snapshot.WindowDay, time.Date(2025, 1, 30, 0, 0, 0, 0, time.UTC), time.Date(2025, 1, 30, 0, 0, 0, 0, time.UTC), "daily"},
		{snapshot.WindowWeek, time.Date(2025, 2, 3, 0, 0, 0, 0, time.UTC), time.Date(2025, 2, 3, 0, 0, 0, 0, time.UTC), "weekly"},
		{snapshot.WindowMonth, time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), "monthly"},
	}
	eachStore(t, func(t *testing.T, be backend) {
		for _, tc := range cases {
			t.Run(tc.window, func(t *testing.T) {
				clk := clock.NewFake(t0)
				p := newPod(t, be, clk)
				team := "w-" + tc.window
				b := &snapshot.Budget{Source: "x", OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject,
					Limits: []snapshot.SpendLimit{{Window: tc.window, LimitMicros: dollars(1), Enforcement: snapshot.EnforceHard}}}
				settle(t, p, admit(t, p, call(team, b, 1, 10)), 1, 10)
				le := reject(t, p, call(team, b, 0.01, 10))
				require.Equal(t, SpendLimitName(tc.window), le.Limit)
				require.Equal(t, tc.reset, le.ResetAt)
				require.Contains(t, le.Message, tc.adjectiv)

				clk.Set(tc.roll.Add(-time.Millisecond))
				reject(t, p, call(team, b, 0.01, 10))
				clk.Set(tc.roll)
				admit(t, p, call(team, b, 0.01, 10))
			})
		}
	})
}

func TestSoftLimitContinuesAndReportsOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		p := newPod(t, be, clock.NewFake(t0))
		b := hardDay(10)
		b.Limits = append(b.Limits, snapshot.SpendLimit{Window: snapshot.WindowHour, LimitMicros: dollars(1), Enforcement: snapshot.EnforceSoft})

		r := admit(t, p, call("s", b, 0.8, 10))
		require.Empty(t, r.SoftCrossed)
		settle(t, p, r, 0.8, 10)
		require.Zero(t, testutil.ToFloat64(p.met.softCrossed.WithLabelValues("s", snapshot.WindowHour)))
		settle(t, p, admit(t, p, call("s", b, 0.5, 10)), 0.5, 10)
		require.Equal(t, 1.0, testutil.ToFloat64(p.met.softCrossed.WithLabelValues("s", snapshot.WindowHour)))

		for range 3 {
			r = admit(t, p, call("s", b, 0.5, 10))
			require.Equal(t, []string{"spend:Hour"}, r.SoftCrossed)
			settle(t, p, r, 0.5, 10)
		}
		require.Equal(t, 1.0, testutil.ToFloat64(p.met.softCrossed.WithLabelValues("s", snapshot.WindowHour)), "reported once per window")
		require.Equal(t, PhaseSoftLimitReached, state(t, p, "s", b).Phase)

		// A second pod does not report the same window again.
		p2 := newPod(t, be, p.clock)
		settle(t, p2, admit(t, p2, call("s", b, 0.5, 10)), 0.5, 10)
		require.Zero(t, testutil.ToFloat64(p2.met.softCrossed.WithLabelValues("s", snapshot.WindowHour)))

		// The next hour is a new window.
		p.clock.Advance(time.Hour)
		settle(t, p, admit(t, p, call("s", b, 1.5, 10)), 1.5, 10)
		require.Equal(t, 2.0, testutil.ToFloat64(p.met.softCrossed.WithLabelValues("s", snapshot.WindowHour)))
	})
}

func TestLimitsCheckedWithoutStore(t *testing.T) {
	b := hardDay(10)
	b.MaxRequestCostMicros = dollars(1)
	b.TokensPerMinute = 1000
	cases := []struct {
		name  string
		req   func() Request
		limit string
		text  string
	}{
		{"max request cost", func() Request { return call("n", b, 1.5, 10) }, LimitMaxRequestCost, "per-request limit of $1.00"},
		{"above the whole limit", func() Request {
			c := *b
			c.MaxRequestCostMicros = 0
			return call("n", &c, 11, 10)
		}, "spend:Day", "more than the whole daily spend limit"},
		{"tokens above tpm", func() Request { return call("n", b, 0.1, 1001) }, LimitTokensPerMinute, "above the limit of 1000 tokens per minute"},
		{"unpriced rejected", func() Request {
			r := call("n", b, 0, 10)
			r.Priced = false
			return r
		}, LimitUnpriced, "no known price"},
		{"kill switch", func() Request {
			c := *b
			c.Suspended = true
			return call("n", &c, 0.1, 10)
		}, LimitSuspended, "kill switch"},
	}
	eachStore(t, func(t *testing.T, be backend) {
		p := newPod(t, be, clock.NewFake(t0))
		if be.redis != nil {
			be.redis.Stop() // none of these may touch the store
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				le := reject(t, p, tc.req())
				require.Equal(t, tc.limit, le.Limit)
				require.False(t, le.Retryable)
				require.Contains(t, le.Message, tc.text)
			})
		}
		require.Zero(t, testutil.ToFloat64(p.met.storeErrors.WithLabelValues("admit")))
	})
}

func TestUnpricedAllowed(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		p := newPod(t, be, clock.NewFake(t0))
		b := hardDay(1)
		b.Unpriced = snapshot.UnpricedAllow
		r := call("u", b, 0, 10)
		r.Priced = false
		settle(t, p, admit(t, p, r), 0, 10)
	})
}

func TestRequestsPerMinuteSliding(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		start := time.Date(2025, 1, 29, 10, 20, 0, 0, time.UTC)
		clk := clock.NewFake(start)
		p := newPod(t, be, clk)
		p2 := newPod(t, be, clk) // limits hold across pods
		b := hardDay(100)
		b.RequestsPerMinute = 4
		for i := range 4 {
			pp := p
			if i%2 == 1 {
				pp = p2
			}
			settle(t, pp, admit(t, pp, call("r", b, 0.01, 1)), 0.01, 1)
		}
		le := reject(t, p2, call("r", b, 0.01, 1))
		require.Equal(t, LimitRequestsPerMinute, le.Limit)
		require.True(t, le.Retryable)
		// Next minute, half-way: 4 * 30/60 = 2 still count, so 2 more fit.
		require.Equal(t, 75*time.Second, le.RetryAfter)
		clk.Set(start.Add(90 * time.Second))
		admit(t, p, call("r", b, 0.01, 1))
		admit(t, p2, call("r", b, 0.01, 1))
		le = reject(t, p, call("r", b, 0.01, 1))
		require.Equal(t, LimitRequestsPerMinute, le.Limit)
		clk.Set(start.Add(3 * time.Minute))
		admit(t, p, call("r", b, 0.01, 1))
	})
}

func TestTokensPerMinuteCorrectedAtSettlement(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		clk := clock.NewFake(time.Date(2025, 1, 29, 10, 20, 0, 0, time.UTC))
		p := newPod(t, be, clk)
		b := hardDay(100)
		b.TokensPerMinute = 1000
		r1 := admit(t, p, call("t", b, 0.01, 400))
		admit(t, p, call("t", b, 0.01, 400))
		le := reject(t, p, call("t", b, 0.01, 400))
		require.Equal(t, LimitTokensPerMinute, le.Limit)
		require.True(t, le.Retryable)
		require.Positive(t, le.RetryAfter)
		settle(t, p, r1, 0.01, 100) // 300 tokens returned
		admit(t, p, call("t", b, 0.01, 400))
		require.Equal(t, int64(900), state(t, p, "t", b).TokensLastMinute)
	})
}

func TestConcurrencyCap(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		p := newPod(t, be, clock.NewFake(t0))
		p2 := newPod(t, be, p.clock)
		b := hardDay(100)
		b.MaxConcurrent = 2
		r1 := admit(t, p, call("c", b, 0.01, 1))
		admit(t, p2, call("c", b, 0.01, 1))
		le := reject(t, p, call("c", b, 0.01, 1))
		require.Equal(t, LimitConcurrent, le.Limit)
		require.True(t, le.Retryable)
		require.Equal(t, int64(2), state(t, p, "c", b).InFlight)
		settle(t, p, r1, 0.01, 1)
		admit(t, p2, call("c", b, 0.01, 1))
	})
}

func TestHeldReservationsBlockUntilSettled(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		p := newPod(t, be, clock.NewFake(t0))
		b := hardDay(1)
		r1 := admit(t, p, call("h", b, 0.8, 10))
		le := reject(t, p, call("h", b, 0.5, 10))
		require.Equal(t, "spend:Day", le.Limit)
		require.True(t, le.Retryable, "waiting for calls in flight helps")
		require.Equal(t, time.Second, le.RetryAfter)
		require.Contains(t, le.Message, "calls in flight hold $0.80")
		st := state(t, p, "h", b)
		require.Equal(t, dollars(0.8), st.ReservedMicros)
		require.Equal(t, dollars(0.2), st.Windows[1].RemainingMicros)
		settle(t, p, r1, 0.3, 10)
		admit(t, p, call("h", b, 0.5, 10))
	})
}

func TestLongestBlockingWindowIsReported(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		p := newPod(t, be, clock.NewFake(t0))
		b := hardDay(1)
		b.Limits = append(b.Limits, snapshot.SpendLimit{Window: snapshot.WindowMonth, LimitMicros: dollars(1.5), Enforcement: snapshot.EnforceHard})
		settle(t, p, admit(t, p, call("l", b, 0.9, 10)), 0.9, 10)
		p.clock.Advance(24 * time.Hour)
		settle(t, p, admit(t, p, call("l", b, 0.5, 10)), 0.5, 10)
		le := reject(t, p, call("l", b, 0.6, 10))
		require.Equal(t, "spend:Month", le.Limit, "waiting for the day to end would not help")
		require.Equal(t, time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), le.ResetAt)
		require.Equal(t, PhaseActive, state(t, p, "l", b).Phase)
		settle(t, p, admit(t, p, call("l", b, 0.1, 10)), 0.1, 10)
		require.Equal(t, PhaseExhausted, state(t, p, "l", b).Phase)
	})
}

func TestSettleIsIdempotent(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		p := newPod(t, be, clock.NewFake(t0))
		b := hardDay(10)
		r := admit(t, p, call("i", b, 1, 10))
		settle(t, p, r, 0.7, 10)
		settle(t, p, r, 0.7, 10)
		require.Equal(t, dollars(0.7), spent(state(t, p, "i", b), snapshot.WindowDay))

		// The same reservation id settled by another pod (a retry after a lost reply) is a no-op.
		p2 := newPod(t, be, p.clock)
		dup := *r
		dup.settled = false
		settle(t, p2, &dup, 0.7, 10)
		require.Equal(t, dollars(0.7), spent(state(t, p, "i", b), snapshot.WindowDay))
		require.Equal(t, 1.0, testutil.ToFloat64(p2.met.settles.WithLabelValues("duplicate")))
	})
}

func TestExpiredReservation(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		p := newPod(t, be, clock.NewFake(t0))
		b := hardDay(1)
		crashed := admit(t, p, call("e", b, 0.8, 10)) // its pod "crashes": never refreshed
		reject(t, p, call("e", b, 0.5, 10))

		p.clock.Advance(59 * time.Second)
		reject(t, p, call("e", b, 0.5, 10))
		p.clock.Advance(time.Second)
		r2 := admit(t, p, call("e", b, 0.5, 10))
		require.Equal(t, 1.0, testutil.ToFloat64(p.met.expiries.WithLabelValues("e")))

		// A late settle of the expired hold still charges once and does not release r2's hold.
		settle(t, p, crashed, 0.3, 10)
		st := state(t, p, "e", b)
		require.Equal(t, dollars(0.3), spent(st, snapshot.WindowDay))
		require.Equal(t, dollars(0.5), st.ReservedMicros)
		require.Equal(t, int64(1), st.InFlight)
		require.Equal(t, 1.0, testutil.ToFloat64(p.met.settles.WithLabelValues("expired_hold")))
		settle(t, p, r2, 0.5, 10)
		st = state(t, p, "e", b)
		require.Equal(t, dollars(0.8), spent(st, snapshot.WindowDay))
		require.Zero(t, st.ReservedMicros)
	})
}

func TestRefreshKeepsLongCallsHeld(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		p := newPod(t, be, clock.NewFake(t0))
		b := hardDay(1)
		long := admit(t, p, call("f", b, 0.8, 10))
		for range 10 { // ten minutes of streaming, refreshed every 30s
			p.clock.Advance(30 * time.Second)
			p.refreshHolds()
		}
		reject(t, p, call("f", b, 0.5, 10))
		require.Equal(t, dollars(0.8), state(t, p, "f", b).ReservedMicros)
		settle(t, p, long, 0.8, 10)
		require.Zero(t, state(t, p, "f", b).ReservedMicros)
	})
}

func TestUnsettledReservationIsLetGo(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		p := newPod(t, be, clock.NewFake(t0), func(o *Options) { o.MaxReservationAge = 5 * time.Minute })
		b := hardDay(1)
		admit(t, p, call("g", b, 0.8, 10)) // never settled
		for range 12 {
			p.clock.Advance(30 * time.Second)
			p.refreshHolds()
		}
		admit(t, p, call("g", b, 0.5, 10))
	})
}

func TestRunawayBreaker(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		start := time.Date(2025, 1, 29, 10, 20, 0, 0, time.UTC)
		clk := clock.NewFake(start)
		p := newPod(t, be, clk)
		p2 := newPod(t, be, clk)
		b := hardDay(100)
		b.Runaway = &snapshot.Runaway{SpendPerMinuteMicros: dollars(1), CooldownSeconds: 300}

		open := admit(t, p2, call("x", b, 0.1, 10)) // a stream open on pod 2
		settle(t, p, admit(t, p, call("x", b, 0.6, 10)), 0.6, 10)
		_, _, ok := p.Suspended("x")
		require.False(t, ok)
		clk.Advance(10 * time.Second)
		settle(t, p, admit(t, p, call("x", b, 0.6, 10)), 0.6, 10)

		until := start.Add(10*time.Second + 300*time.Second)
		reason, got, ok := p.Suspended("x")
		require.True(t, ok)
		require.Equal(t, until, got)
		require.Contains(t, reason, "spent $1.20 in one minute, above its runaway threshold of $1.00 per minute")
		require.Equal(t, 1.0, testutil.ToFloat64(p.met.runawayTrips.WithLabelValues("x")))

		le := reject(t, p, call("x", b, 0.1, 10))
		require.Equal(t, LimitRunaway, le.Limit)
		require.False(t, le.Retryable)
		require.Equal(t, 300*time.Second, le.RetryAfter)
		require.Equal(t, until, le.ResetAt)

		// Pod 2 learns of the trip from the store: at admission, and for its open stream by polling.
		_, _, ok = p2.Suspended("x")
		require.False(t, ok)
		p2.pollTrips()
		reason, _, ok = p2.Suspended("x")
		require.True(t, ok)
		require.Contains(t, reason, "above its runaway threshold")
		require.Equal(t, LimitRunaway, reject(t, p2, call("x", b, 0.1, 10)).Limit)
		settle(t, p2, open, 0.05, 10)

		st := state(t, p, "x", b)
		require.Equal(t, PhaseRunawayTripped, st.Phase)
		require.Equal(t, until, st.RunawayUntil)

		clk.Set(until)
		_, _, ok = p.Suspended("x")
		require.False(t, ok)
		settle(t, p, admit(t, p2, call("x", b, 0.1, 10)), 0.1, 10)
		require.Equal(t, PhaseActive, state(t, p, "x", b).Phase)
	})
}

func TestStoreDownFailClosedAndFailOpen(t *testing.T) {
	be := redisBackend(t)
	p := newPod(t, be, clock.NewFake(t0), func(o *Options) { o.StoreTimeout = 200 * time.Millisecond })
	closed := hardDay(100)
	open := hardDay(100)
	open.OnStoreUnavailable = snapshot.FailOpen
	open.FailOpenAllowanceMicros = dollars(1)

	inFlight := admit(t, p, call("open", open, 0.2, 10)) // held in Redis before the outage
	settle(t, p, admit(t, p, call("open", open, 0.5, 10)), 0.5, 10)

	be.redis.Stop()
	_, err := p.Admit(context.Background(), call("closed", closed, 0.1, 10))
	var ue *UnavailableError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, "closed", ue.Team)
	p.checkStore()
	require.False(t, p.StoreHealthy())
	require.Equal(t, 0.0, testutil.ToFloat64(p.met.storeUp))
	_, err = p.Admit(context.Background(), call("closed", closed, 0.1, 10))
	require.ErrorAs(t, err, &ue)

	// FailOpen: the pod's allowance ($1 per window) admits, then rejects.
	a1 := admit(t, p, call("open", open, 0.4, 10))
	a2 := admit(t, p, call("open", open, 0.4, 10))
	require.True(t, a1.FailOpen)
	le := reject(t, p, call("open", open, 0.4, 10))
	require.Equal(t, LimitFailOpenAllowance, le.Limit)
	require.True(t, le.Retryable)
	require.ErrorIs(t, p.Settle(context.Background(), a1, dollars(0.3), 10), ErrSettleQueued)
	admit(t, p, call("open", open, 0.3, 10)) // 0.3 spent + 0.4 held + 0.3 fits in $1
	require.ErrorIs(t, p.Settle(context.Background(), a2, dollars(0.4), 10), ErrSettleQueued)
	require.ErrorIs(t, p.Settle(context.Background(), inFlight, dollars(0.1), 10), ErrSettleQueued)
	require.Equal(t, 2.0+1.0, testutil.ToFloat64(p.met.failOpenAdmits.WithLabelValues("open")))

	be.redis.Restart() // empty: counting starts again from what the pods replay
	p.checkStore()
	require.True(t, p.StoreHealthy())
	st := state(t, p, "open", open)
	require.Zero(t, st.PendingSettles)
	require.Equal(t, dollars(0.3+0.4+0.1), spent(st, snapshot.WindowDay), "queued settlements replayed once")
	require.Equal(t, 3.0, testutil.ToFloat64(p.met.settles.WithLabelValues("replayed")))

	r := admit(t, p, call("closed", closed, 0.1, 10))
	require.False(t, r.FailOpen)
	settle(t, p, r, 0.1, 10)
	require.Equal(t, dollars(0.1), spent(state(t, p, "closed", closed), snapshot.WindowDay))
}

func TestSettleWithoutStoreAfterRedisAdmission(t *testing.T) {
	be := redisBackend(t)
	p := newPod(t, be, clock.NewFake(t0), func(o *Options) { o.StoreTimeout = 200 * time.Millisecond })
	b := hardDay(10)
	r := admit(t, p, call("q", b, 1, 10))
	be.redis.Stop()
	err := p.Settle(context.Background(), r, dollars(0.5), 10)
	require.True(t, errors.Is(err, ErrSettleQueued), "got %v", err)
	be.redis.Restart()
	p.checkStore()
	require.Equal(t, dollars(0.5), spent(state(t, p, "q", b), snapshot.WindowDay))
}

// TestCrashedHoldExpiresAmongRefreshedOnes: a hold that is never refreshed expires on time
// although the holds admitted before it, which were due first, were refreshed meanwhile.
func TestCrashedHoldExpiresAmongRefreshedOnes(t *testing.T) {
	eachStore(t, func(t *testing.T, be backend) {
		clk := clock.NewFake(t0)
		live, crashed := newPod(t, be, clk), newPod(t, be, clk)
		b := hardDay(1)
		for range 3 {
			admit(t, live, call("g", b, 0.1, 10)) // due at t0+60s unless refreshed
		}
		clk.Advance(10 * time.Second)
		admit(t, crashed, call("g", b, 0.5, 10)) // due at t0+70s, never refreshed
		reject(t, live, call("g", b, 0.3, 10))
		for range 4 { // t0+30s ... t0+90s
			clk.Advance(20 * time.Second)
			live.refreshHolds()
		}
		admit(t, live, call("g", b, 0.3, 10))
		require.Equal(t, 1.0, testutil.ToFloat64(live.met.expiries.WithLabelValues("g")), "the crashed hold was purged")
		st := state(t, live, "g", b)
		require.Equal(t, dollars(0.6), st.ReservedMicros, "the refreshed holds are kept")
		require.Equal(t, int64(4), st.InFlight)
	})
}
