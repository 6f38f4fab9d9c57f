package event

import (
	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
)

// usage is the token and cost policy of a main event (docs/events.md "Tokens", "Cost").
type usage struct {
	u    *cost.Usage
	cost *Cost
	// reported: the provider reported the usage (else, when not zero, the gateway estimated
	// it). known: the token counts are known, or nothing was generated (then they are 0).
	reported, known bool
	// send: the cost set is sent (tokens known, not zero, the model priced).
	send bool
	// counting: count_tokens is free: the counted prompt is not generation input. It is
	// recorded with zero tokens and an explicit zero cost, so ingestion cannot price the
	// count.
	counting bool
}

func usageOf(c *Call) usage {
	u := &c.Usage
	generated := c.TimeToFirstToken > 0 || c.OutputText != ""
	known := c.UsageReported || !u.IsZero() || !generated
	return usage{
		u: u, cost: &c.Cost, reported: c.UsageReported, known: known,
		send:     known && !u.IsZero() && c.Cost.Priced,
		counting: c.Op == provider.OpCountTokens,
	}
}

// writeTokens writes the token counts: zero for a count, the usage when known, else only
// that it is unknown (so ingestion leaves the cost unknown instead of $0); and whether the
// gateway estimated them.
func (x *usage) writeTokens(p *obj) {
	switch {
	case x.counting:
		tokens(p, &cost.Usage{})
		p.int("llm_gateway_counted_input_tokens", x.u.PromptTokens())
	case x.known:
		tokens(p, x.u)
	default:
		p.bool("$ai_cache_reporting_exclusive", true)
		p.bool("llm_gateway_usage_unknown", true)
	}
	if !x.reported && !x.u.IsZero() && !x.counting {
		p.bool("llm_gateway_usage_estimated", true)
	}
}

// writeCost writes the cost set: zero for a count, the call's when it is sent; a model
// without a price that used tokens is flagged instead.
func (x *usage) writeCost(p *obj) {
	switch {
	case x.counting:
		costs(p, &Cost{})
	case x.send:
		costs(p, x.cost)
	case !x.cost.Priced && !x.u.IsZero():
		p.bool("llm_gateway_unpriced", true)
	}
}

// tokens writes the normalized token counts (cost.Usage is disjoint: $ai_input_tokens is the
// uncached input, hence $ai_cache_reporting_exclusive true for every provider).
func tokens(p *obj, u *cost.Usage) {
	p.int("$ai_input_tokens", u.InputTokens)
	p.int("$ai_output_tokens", u.OutputTokens)
	p.int("$ai_total_tokens", u.TotalTokens())
	p.int("$ai_cache_read_input_tokens", u.CacheReadTokens)
	p.int("$ai_cache_creation_input_tokens", u.CacheWriteTokens())
	if u.CacheWriteTokens() > 0 {
		p.int("$ai_cache_creation_5m_input_tokens", u.CacheWrite5mTokens)
		p.int("$ai_cache_creation_1h_input_tokens", u.CacheWrite1hTokens)
	}
	if u.ReasoningTokens > 0 {
		p.int("$ai_reasoning_tokens", u.ReasoningTokens)
	}
	p.bool("$ai_cache_reporting_exclusive", true)
}

// costs writes the gateway's cost set. $ai_input_cost_usd is gross (uncached input + cache
// read + cache write) as ingestion computes it, so input + output = total exactly; the cache
// parts are also given on their own.
func costs(p *obj, k *Cost) {
	p.usd("$ai_input_cost_usd", k.InputMicros+k.CacheReadMicros+k.CacheWriteMicros)
	p.usd("$ai_output_cost_usd", k.OutputMicros)
	p.usd("$ai_cache_read_cost_usd", k.CacheReadMicros)
	p.usd("$ai_cache_creation_cost_usd", k.CacheWriteMicros)
	p.usd("$ai_total_cost_usd", k.TotalMicros)
	p.bool("$ai_cost_passthrough", true)
}
