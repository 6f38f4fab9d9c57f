package budget_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

// TestProcessesConcurrentCallsAgainstSmallHardBudget: 200 concurrent calls through three
// gateway processes on one Redis against a $0.05 Hard budget, the fake provider reporting a
// known usage (every call costs $0.00153, below its estimate). Committed spend never exceeds
// the limit; every rejected call got a well-formed 429 and never reached the provider.
func TestProcessesConcurrentCallsAgainstSmallHardBudget(t *testing.T) {
	const limit = 50_000
	c := newCluster(t, team("small", snapshot.Budget{Limits: dayLimit(limit)}))
	est, _ := estimate(requestBody)
	require.Greater(t, est, int64(callCost), "the estimate is a true worst case here")

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		resps []response
		errs  []error
	)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.post(context.Background(), i%3, "small", requestBody)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			resps = append(resps, r)
		}()
	}
	wg.Wait()
	require.Empty(t, errs)

	ok := 0
	for _, r := range resps {
		switch r.status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			typ, msg := anthropicError(t, r)
			require.Equal(t, "rate_limit_error", typ)
			require.Contains(t, msg, "daily $0.05 limit")
			require.NotEmpty(t, r.header.Get("x-should-retry"), "429s say whether a retry helps")
		default:
			t.Fatalf("unexpected status %d: %s", r.status, r.body)
		}
	}
	require.Positive(t, ok)
	require.Less(t, ok, 200)
	require.Equal(t, int64(ok), c.fake.Count("/v1/messages"), "rejected calls never reached the provider")

	require.Eventually(t, func() bool { return c.state("small").ReservedMicros == 0 }, 10*time.Second, 50*time.Millisecond)
	spent := daySpent(c.state("small"))
	require.Equal(t, int64(ok)*callCost, spent, "each call charged once, at its real cost")
	require.LessOrEqual(t, spent, int64(limit), "committed spend never exceeds a Hard limit")
}

// TestProcessesStreamCutByClient: a stream the client abandons half-way is charged for what the
// provider reported (input and the output streamed so far), and its hold is released.
func TestProcessesStreamCutByClient(t *testing.T) {
	c := newCluster(t, team("cut", snapshot.Budget{Limits: dayLimit(10_000_000)}))
	c.fake.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Chunks: 40, ChunkIntervalMs: 100,
		Usage: &cost.Usage{InputTokens: usageIn, OutputTokens: usageOut}})
	s := c.stream(0, "cut")
	for range 5 {
		_, ok := s.next()
		require.True(t, ok)
	}
	require.Equal(t, int64(1), c.state("cut").InFlight)
	s.close()

	est, _ := estimate(streamBody)
	require.Eventually(t, func() bool {
		st := c.state("cut")
		return st.InFlight == 0 && st.ReservedMicros == 0 && daySpent(st) > 0
	}, 10*time.Second, 50*time.Millisecond, "the cut stream is settled and its hold released")
	spent := daySpent(c.state("cut"))
	require.Less(t, spent, est, "charged for what was streamed, not the worst case")
}

// TestProcessesRateLimitsAcrossReplicas: RPM, TPM and concurrency caps hold across gateways.
func TestProcessesRateLimitsAcrossReplicas(t *testing.T) {
	_, tokens := estimate(requestBody)
	// Three calls' worth of worst-case tokens; settlement returns the unused part (usage is
	// 110 tokens against the estimate), so the limit trips on the fourth call.
	tpm := 3*tokens + 5
	c := newCluster(t,
		team("rpm", snapshot.Budget{Limits: dayLimit(10_000_000), RequestsPerMinute: 5}),
		team("tpm", snapshot.Budget{Limits: dayLimit(10_000_000), TokensPerMinute: tpm}),
		team("conc", snapshot.Budget{Limits: dayLimit(10_000_000), MaxConcurrent: 2}),
	)

	t.Run("requests per minute", func(t *testing.T) {
		var statuses []int
		for i := range 8 {
			r := c.call(i%3, "rpm")
			statuses = append(statuses, r.status)
			if r.status == http.StatusTooManyRequests {
				_, msg := anthropicError(t, r)
				require.Contains(t, msg, "5 requests per minute")
				require.Equal(t, "true", r.header.Get("x-should-retry"))
				ra, err := strconv.Atoi(r.header.Get("retry-after"))
				require.NoError(t, err)
				require.Positive(t, ra)
			}
		}
		require.Equal(t, []int{200, 200, 200, 200, 200, 429, 429, 429}, statuses)
	})

	t.Run("tokens per minute", func(t *testing.T) {
		var statuses []int
		for i := range 5 {
			statuses = append(statuses, c.call(i%3, "tpm").status)
		}
		require.Equal(t, []int{200, 200, 200, 429, 429}, statuses)
		require.Equal(t, 3*(usageIn+usageOut), int(c.state("tpm").TokensLastMinute), "reserved tokens corrected to actual usage")
	})

	t.Run("concurrent requests", func(t *testing.T) {
		c.fake.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Chunks: 50, ChunkIntervalMs: 100})
		a := c.stream(0, "conc")
		b := c.stream(1, "conc")
		r := c.call(2, "conc")
		require.Equal(t, http.StatusTooManyRequests, r.status)
		_, msg := anthropicError(t, r)
		require.Contains(t, msg, "concurrent requests is 2")
		a.close()
		b.close()
		c.fake.SetDefaultFor(fakeprovider.Anthropic, nil)
		require.Eventually(t, func() bool { return c.state("conc").InFlight == 0 }, 10*time.Second, 50*time.Millisecond)
		require.Equal(t, http.StatusOK, c.call(2, "conc").status)
	})
}

// TestProcessesKillSwitch: suspended: true in the team's budget rejects new calls with 429 and
// ends its open streams with a terminal Anthropic error event, on every replica.
func TestProcessesKillSwitch(t *testing.T) {
	c := newCluster(t, team("kill", snapshot.Budget{Limits: dayLimit(10_000_000)}), team("other", snapshot.Budget{Limits: dayLimit(10_000_000)}))
	c.fake.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Chunks: 200, ChunkIntervalMs: 100})
	streams := []*sseStream{c.stream(0, "kill"), c.stream(1, "kill"), c.stream(2, "kill")}
	bystander := c.stream(0, "other")

	c.budgetOf("kill").Suspended = true
	c.writeSnapshot()
	for _, s := range streams {
		ev := s.last()
		require.Equal(t, "error", ev.name, "the stream ends with a terminal error event")
		require.Contains(t, ev.data, `"type":"error"`)
		require.Contains(t, strings.ToLower(ev.data), "suspended")
	}
	c.fake.SetDefaultFor(fakeprovider.Anthropic, nil)
	for gw := range 3 {
		r := c.call(gw, "kill")
		require.Equal(t, http.StatusTooManyRequests, r.status)
		_, msg := anthropicError(t, r)
		require.Contains(t, msg, "kill switch")
		require.Equal(t, "false", r.header.Get("x-should-retry"))
		tm := c.adminTeam(gw, "kill")
		require.Equal(t, true, tm["suspended"])
		require.Equal(t, "Suspended", tm["budget"].(map[string]any)["phase"])
	}
	ev, ok := bystander.next()
	require.True(t, ok)
	require.NotEqual(t, "error", ev.name, "other teams' streams go on")
	require.Equal(t, http.StatusOK, c.call(1, "other").status)
}

// TestProcessesRunawayBreaker: spend per minute above the threshold on one replica suspends the
// team for the cooldown on every replica: open streams end with an error event, new calls 429.
func TestProcessesRunawayBreaker(t *testing.T) {
	c := newCluster(t, team("loop", snapshot.Budget{Limits: dayLimit(10_000_000),
		Runaway: &snapshot.Runaway{SpendPerMinuteMicros: 3_000, CooldownSeconds: 120}}))
	c.fake.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Chunks: 200, ChunkIntervalMs: 100})
	open := c.stream(1, "loop")
	c.fake.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Usage: &cost.Usage{InputTokens: usageIn, OutputTokens: usageOut}})

	require.Equal(t, http.StatusOK, c.call(0, "loop").status)
	require.Equal(t, http.StatusOK, c.call(0, "loop").status) // $0.00306 in a minute: tripped
	r := c.call(2, "loop")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	_, msg := anthropicError(t, r)
	require.Contains(t, msg, "runaway")
	require.Equal(t, "false", r.header.Get("x-should-retry"))

	ev := open.last()
	require.Equal(t, "error", ev.name, "the open stream on another replica is ended")
	require.Contains(t, ev.data, "runaway")
	require.Equal(t, "RunawayTripped", c.adminTeam(2, "loop")["budget"].(map[string]any)["phase"])
}

// TestProcessesRedisStoppedMidRun: with Redis down, a FailClosed team gets 503 and a FailOpen
// team is admitted against each pod's allowance, then 429; when Redis is back, counting resumes
// and the fail-open spend is replayed into it.
func TestProcessesRedisStoppedMidRun(t *testing.T) {
	est, _ := estimate(requestBody)
	c := newCluster(t,
		team("closed", snapshot.Budget{Limits: dayLimit(10_000_000)}),
		team("open", snapshot.Budget{Limits: dayLimit(10_000_000), OnStoreUnavailable: snapshot.FailOpen,
			FailOpenAllowanceMicros: 3*est + est/2}),
	)
	require.Equal(t, http.StatusOK, c.call(0, "closed").status)
	require.Equal(t, http.StatusOK, c.call(0, "open").status)

	c.redis.Stop()
	r := c.call(1, "closed")
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	_, msg := anthropicError(t, r)
	require.Contains(t, msg, "budget store is unreachable")

	var statuses []int
	for range 5 {
		statuses = append(statuses, c.call(2, "open").status)
	}
	require.Equal(t, []int{200, 200, 200, 429, 429}, statuses, "three calls fit the pod's allowance")
	require.Equal(t, http.StatusOK, c.call(1, "open").status, "each pod has its own allowance")

	c.redis.Restart() // empty: persistence is off
	require.Eventually(t, func() bool { return c.call(1, "closed").status == http.StatusOK }, 15*time.Second, 200*time.Millisecond,
		"counting resumes when Redis is back")
	require.Eventually(t, func() bool { return daySpent(c.state("open")) == 4*callCost }, 15*time.Second, 100*time.Millisecond,
		"the spend admitted while Redis was down is replayed into it")
	require.Equal(t, http.StatusOK, c.call(2, "open").status)
}

// TestProcessesUpstreamErrorsChargeOnlyWhatWasBilled: an upstream error before any output is
// charged nothing; a stream that the provider ends with an error event half-way is charged
// what the provider reported. Either way the hold is released.
func TestProcessesUpstreamErrorsChargeOnlyWhatWasBilled(t *testing.T) {
	c := newCluster(t, team("errs", snapshot.Budget{Limits: dayLimit(10_000_000)}))
	c.fake.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Status: http.StatusInternalServerError})
	r := c.call(0, "errs")
	require.GreaterOrEqual(t, r.status, 500)
	require.Eventually(t, func() bool { return c.state("errs").InFlight == 0 }, 10*time.Second, 50*time.Millisecond)
	st := c.state("errs")
	require.Zero(t, daySpent(st), "a call the provider did not bill costs nothing")
	require.Zero(t, st.ReservedMicros)

	c.fake.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Chunks: 10, Fault: fakeprovider.FaultError, FaultAfter: 5,
		ErrorType: "overloaded_error", Usage: &cost.Usage{InputTokens: usageIn, OutputTokens: usageOut}})
	s := c.stream(1, "errs")
	require.Equal(t, "error", s.last().name)
	est, _ := estimate(streamBody)
	require.Eventually(t, func() bool {
		st := c.state("errs")
		return st.InFlight == 0 && st.ReservedMicros == 0 && daySpent(st) > 0
	}, 10*time.Second, 50*time.Millisecond)
	require.Less(t, daySpent(c.state("errs")), est)
}
