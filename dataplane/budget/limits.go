package budget

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// heldRetryAfter is the retry-after of a rejection caused only by the holds of calls in
// flight: they are released as those calls finish.
const heldRetryAfter = time.Second

// precheck applies the limits that need no store: the kill switch, the unpriced policy, the
// per-request ceiling, a call larger than a whole limit, and a runaway trip already known.
func (m *Manager) precheck(r Request, hard [4]int64, now time.Time) *LimitError {
	b := r.Budget
	switch {
	case b.Suspended:
		return &LimitError{Limit: LimitSuspended,
			Message: fmt.Sprintf("team %s is suspended by its budget %s (kill switch); calls are rejected until it is lifted", r.Team, b.Source)}
	case !r.Priced && b.Unpriced != snapshot.UnpricedAllow:
		return &LimitError{Limit: LimitUnpriced,
			Message: fmt.Sprintf("the requested model has no known price and the budget of team %s (%s) does not admit unpriced models", r.Team, b.Source)}
	case b.MaxRequestCostMicros > 0 && r.EstimateMicros > b.MaxRequestCostMicros:
		return &LimitError{Limit: LimitMaxRequestCost,
			Message: fmt.Sprintf("this call may cost up to %s, above the per-request limit of %s of team %s; lower max_tokens or shorten the input",
				usd(r.EstimateMicros), usd(b.MaxRequestCostMicros), r.Team)}
	case b.TokensPerMinute > 0 && r.EstimateTokens > b.TokensPerMinute:
		return &LimitError{Limit: LimitTokensPerMinute,
			Message: fmt.Sprintf("this call may use up to %d tokens, above the limit of %d tokens per minute of team %s; lower max_tokens or shorten the input",
				r.EstimateTokens, b.TokensPerMinute, r.Team)}
	}
	for i, w := range ledger.Windows {
		if hard[i] > 0 && r.EstimateMicros > hard[i] {
			return &LimitError{Limit: SpendLimitName(w),
				Message: fmt.Sprintf("this call may cost up to %s, more than the whole %s spend limit of %s of team %s; lower max_tokens or shorten the input",
					usd(r.EstimateMicros), adjective(w), usd(hard[i]), r.Team)}
		}
	}
	if t, ok := m.activeTrip(r.Team, now); ok {
		return runawayError(r.Team, t, t.Until.Sub(now))
	}
	return nil
}

func runawayMessage(team string, t trip) string {
	until := t.Until.UTC().Format(time.RFC3339)
	if t.ThresholdMicros == 0 { // learnt from a rejection; the poll loop fills in the details
		return fmt.Sprintf("team %s is suspended by its runaway breaker (spend per minute above its threshold); new calls are rejected until %s",
			team, until)
	}
	return fmt.Sprintf("team %s spent %s in one minute, above its runaway threshold of %s per minute; new calls are rejected until %s",
		team, usd(t.RateMicros), usd(t.ThresholdMicros), until)
}

// runawayError is not retryable: a runaway loop must not be retried by SDKs automatically,
// even though waiting for the cooldown helps.
func runawayError(team string, t trip, wait time.Duration) *LimitError {
	return &LimitError{Limit: LimitRunaway, Message: runawayMessage(team, t), ResetAt: t.Until, RetryAfter: ceilSecond(wait)}
}

// storeRejection turns an admit script rejection into the LimitError the caller sees.
func (m *Manager) storeRejection(r Request, a *admitArgs, res admitResult) *LimitError {
	b := r.Budget
	switch res.code {
	case rejectRunaway:
		until := time.UnixMilli(res.tripAt).UTC()
		t, ok := m.activeTrip(r.Team, a.now)
		if !ok || !t.Until.Equal(until) {
			t = trip{Until: until}
			m.setTrip(r.Team, t)
		}
		return runawayError(r.Team, t, until.Sub(a.now))
	case rejectConcurrent:
		return &LimitError{Limit: LimitConcurrent, Retryable: true, RetryAfter: heldRetryAfter,
			Message: fmt.Sprintf("team %s has %d calls in flight, its limit of concurrent requests is %d; retry when one finishes",
				r.Team, res.inflight, b.MaxConcurrent)}
	case rejectRPM:
		wait := slidingRetryAfter(res.rpmPrev, res.rpmCur, 1, b.RequestsPerMinute, a.elapsedMs)
		return &LimitError{Limit: LimitRequestsPerMinute, Retryable: true, RetryAfter: wait, ResetAt: a.now.Add(wait),
			Message: fmt.Sprintf("team %s is over its limit of %d requests per minute; retry in %s",
				r.Team, b.RequestsPerMinute, wait)}
	case rejectTPM:
		wait := slidingRetryAfter(res.tpmPrev, res.tpmCur, r.EstimateTokens, b.TokensPerMinute, a.elapsedMs)
		return &LimitError{Limit: LimitTokensPerMinute, Retryable: true, RetryAfter: wait, ResetAt: a.now.Add(wait),
			Message: fmt.Sprintf("team %s is over its limit of %d tokens per minute (this call may use up to %d); retry in %s",
				r.Team, b.TokensPerMinute, r.EstimateTokens, wait)}
	case rejectSpend:
		return spendRejection(r, a, res)
	}
	return &LimitError{Limit: "unknown", Message: fmt.Sprintf("team %s: budget store rejected the call with code %d", r.Team, res.code)}
}

// spendRejection names the Hard window that blocks the call. A window exhausted by committed
// spend wins over one blocked only by the holds of calls in flight, and among those the one
// that resets last: waiting for an earlier reset would not help.
func spendRejection(r Request, a *admitArgs, res admitResult) *LimitError {
	best, committed := -1, false
	for i := range ledger.Windows {
		lim := a.hard[i]
		if lim == 0 || res.spent[i]+res.held+a.micros <= lim {
			continue
		}
		c := res.spent[i]+a.micros > lim
		if best < 0 || (c && !committed) || (c == committed && a.buckets[i].End.After(a.buckets[best].End)) {
			best, committed = i, c
		}
	}
	if best < 0 {
		return &LimitError{Limit: "spend", Message: fmt.Sprintf("team %s: a spend limit would be exceeded", r.Team)}
	}
	w, lim, reset := ledger.Windows[best], a.hard[best], a.buckets[best].End
	le := &LimitError{Limit: SpendLimitName(w), ResetAt: reset}
	if committed {
		le.RetryAfter = ceilSecond(reset.Sub(a.now))
		le.Message = fmt.Sprintf("team %s has spent %s of its %s %s limit; this call may cost up to %s; the limit resets at %s",
			r.Team, usd(res.spent[best]), adjective(w), usd(lim), usd(a.micros), reset.Format(time.RFC3339))
		return le
	}
	le.Retryable, le.RetryAfter = true, heldRetryAfter
	le.Message = fmt.Sprintf("team %s has spent %s of its %s %s limit and calls in flight hold %s more; this call may cost up to %s; retry when they finish (the limit resets at %s)",
		r.Team, usd(res.spent[best]), adjective(w), usd(lim), usd(res.held), usd(a.micros), reset.Format(time.RFC3339))
	return le
}

// usd formats micro-dollars: "$12.50", "$0.0035".
func usd(micros int64) string {
	neg := micros < 0
	if neg {
		micros = -micros
	}
	frac := strings.TrimRight(fmt.Sprintf("%06d", micros%1_000_000), "0")
	if len(frac) < 2 {
		frac += strings.Repeat("0", 2-len(frac))
	}
	s := "$" + strconv.FormatInt(micros/1_000_000, 10) + "." + frac
	if neg {
		s = "-" + s
	}
	return s
}

func adjective(window string) string {
	switch window {
	case snapshot.WindowDay:
		return "daily"
	case snapshot.WindowHour:
		return "hourly"
	case snapshot.WindowWeek:
		return "weekly"
	}
	return "monthly"
}
