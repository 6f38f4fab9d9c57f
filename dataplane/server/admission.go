package server

import (
	"context"
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/record"
)

// Budget is the admission and settlement API of dataplane/budget (*budget.Manager).
type Budget interface {
	Admit(ctx context.Context, r budget.Request) (*budget.Reservation, error)
	Settle(ctx context.Context, res *budget.Reservation, actualMicros, actualTokens int64) error
	Suspended(team string) (reason string, until time.Time, ok bool)
}

// defaultOutputEstimate is the output assumed at admission for a request that names no output
// limit, on a route with no default, for a model whose catalog entry has no maximum.
const defaultOutputEstimate = 4096

// admit reserves the call's worst-case cost. It reports false when it answered the client.
//
// The estimate uses the route's most expensive target (failover may land there): the input
// estimate from the body plus the output limit (after the route's default and clamp) times
// the number of choices (n), at cache-write rates when the request asks for caching.
func (c *call) admit() bool {
	bm := c.g.opts.Budget
	if bm == nil || c.op == provider.OpCountTokens {
		return true
	}
	input := budget.EstimateInputTokens(string(c.op), c.body)
	var estimate, output int64
	priced := false
	for i, t := range c.rt.targets[c.route.Name] {
		p, _ := c.rt.catalog.BackendPrice(t.be.b, c.rec.CanonicalModel, t.be.adapter.UpstreamModel(c.rec.CanonicalModel, c.info.Model))
		if i == 0 {
			priced = p.Priced
		}
		out := c.info.MaxTokens
		if out <= 0 {
			out = p.MaxOutputTokens
		}
		if out <= 0 {
			out = defaultOutputEstimate
		}
		out = satMul(out, c.info.N) // every choice is generated and billed
		output = max(output, out)
		estimate = max(estimate, cost.Estimate(p, input, out, c.info.CacheWrite, c.info.CacheWrite1h))
	}
	res, err := bm.Admit(c.r.Context(), budget.Request{
		Team: c.team.Name, Budget: c.rt.Snapshot.EffectiveBudget(c.team), RequestID: c.rec.RequestID,
		EstimateMicros: estimate, Priced: priced, EstimateTokens: satAdd(input, output),
	})
	if err == nil {
		c.reservation = res
		return true
	}
	var le *budget.LimitError
	var ue *budget.UnavailableError
	switch {
	case errors.As(err, &le):
		c.rec.Rejection = &record.Rejection{Limit: le.Limit}
		c.rec.Error = &record.Error{Type: "budget_exceeded", Message: le.Message}
		retryAfter := le.RetryAfter
		if le.Retryable {
			retryAfter = max(retryAfter, time.Second)
		}
		// A window that resets later still says when (retry-after), but only waits that
		// help an automatic retry let SDKs retry (x-should-retry).
		c.failHint(gatewayErr(http.StatusTooManyRequests, provider.AnthropicRateLimit, provider.OpenAIRateLimit, limitCode(le.Limit), "", le.Message),
			retryAfter, le.Retryable)
	case errors.As(err, &ue):
		c.rec.Rejection = &record.Rejection{Limit: "store_unavailable"}
		c.fail(errUpstream(http.StatusServiceUnavailable, "budget_unavailable",
			"the budget store is unreachable and team "+c.team.Name+"'s budget fails closed"), time.Second)
	case c.r.Context().Err() != nil:
		c.clientGone()
	default:
		c.g.log.Error("budget admission failed", "request_id", c.rec.RequestID, "team", c.team.Name, "error", err)
		c.fail(gatewayErr(http.StatusInternalServerError, provider.AnthropicAPIError, provider.OpenAIServerError, "internal_error", "",
			"budget admission failed (request id "+c.rec.RequestID+")"), 0)
	}
	return false
}

// satMul is a*b for non-negative a, b (n <= 0 counts as 1), saturating at MaxInt64.
func satMul(a, n int64) int64 {
	if n <= 1 || a <= 0 {
		return a
	}
	if a > math.MaxInt64/n {
		return math.MaxInt64
	}
	return a * n
}

// satAdd is a+b for non-negative a, b, saturating at MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// limitCode is the OpenAI error.code of a budget rejection.
func limitCode(limit string) string {
	switch limit {
	case "requests_per_minute", "tokens_per_minute", "concurrent_requests":
		return "rate_limit_exceeded"
	case "suspended", "runaway":
		return "team_suspended"
	case "unpriced_model":
		return "unpriced_model"
	}
	return "budget_exceeded"
}

// settle charges the call's actual cost (zero when nothing was billed) and releases its hold.
func (c *call) settle() {
	if c.reservation == nil {
		return
	}
	var tokens int64
	if c.result != nil {
		tokens = c.rec.Usage.TotalTokens()
	}
	ctx := context.WithoutCancel(c.r.Context())
	if err := c.g.opts.Budget.Settle(ctx, c.reservation, c.rec.Cost.TotalMicros, tokens); err != nil && !errors.Is(err, budget.ErrSettleQueued) {
		c.g.log.Error("settle budget reservation", "request_id", c.rec.RequestID, "team", c.rec.Team, "error", err)
	}
}

// WatchSuspensions ends the open streams of teams the budget's runaway breaker suspended,
// checking every interval until ctx ends.
func (g *Gateway) WatchSuspensions(ctx context.Context, every time.Duration) {
	bm := g.opts.Budget
	if bm == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, team := range g.streams.Teams() {
			reason, _, ok := bm.Suspended(team)
			if !ok {
				continue
			}
			if n := g.streams.KillTeam(team, suspendedError{reason}); n > 0 {
				g.metrics.StreamsKilled.WithLabelValues("runaway").Add(float64(n))
				g.log.Warn("ended open streams of a team the runaway breaker suspended", "team", team, "streams", n, "reason", reason)
			}
		}
	}
}

// suspendedError is ErrSuspended with the budget's reason.
type suspendedError struct{ reason string }

func (e suspendedError) Error() string {
	if e.reason == "" {
		return ErrSuspended.Error()
	}
	return ErrSuspended.Error() + ": " + e.reason
}
func (e suspendedError) Is(target error) bool { return target == ErrSuspended }
