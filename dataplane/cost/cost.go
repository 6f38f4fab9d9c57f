// Package cost is the gateway's only cost function. Budget admission (Estimate), settlement
// and the recorded $ai_generation event (Compute) all price tokens here, from a catalog.Price,
// in integer micro-dollars (USD x 1e6).
package cost

import (
	"math"
	"math/bits"

	"github.com/posthog/llm-gateway/dataplane/catalog"
)

// Breakdown is the cost of one call in micro-dollars. The components are disjoint and
// TotalMicros is exactly their sum, so the parts recorded on the event always add up to the
// total the budget settles.
type Breakdown struct {
	// InputMicros prices the uncached input tokens.
	InputMicros     int64 `json:"input_micros"`
	CacheReadMicros int64 `json:"cache_read_micros"`
	// CacheWriteMicros prices 5-minute and 1-hour cache writes together.
	CacheWriteMicros int64 `json:"cache_write_micros"`
	OutputMicros     int64 `json:"output_micros"`
	TotalMicros      int64 `json:"total_micros"`
	// LongContext is set when the long-context tier applied (prompt above the threshold).
	LongContext bool `json:"long_context,omitempty"`
	// Priced is false when the model has no known price: every amount is then 0 and means
	// "unknown", not free.
	Priced bool `json:"priced"`
}

// Compute prices a call's usage. Each component is computed exactly in 128-bit integers
// (tokens x micro-dollars per million tokens / 1e6) and rounded half-up once; the total is
// the sum of the rounded components. Amounts saturate at math.MaxInt64 instead of
// overflowing. Negative token counts count as zero.
//
// When the price has a long-context tier and the whole prompt (uncached + cache read + cache
// write) exceeds its threshold, every component is billed at the tier's rates, as Anthropic
// and OpenAI bill it.
func Compute(p catalog.Price, u Usage) Breakdown {
	if !p.Priced {
		return Breakdown{}
	}
	r := p.Rates
	b := Breakdown{Priced: true}
	if p.LongContextAbove > 0 && u.PromptTokens() > p.LongContextAbove {
		r = p.LongContext
		b.LongContext = true
	}
	b.InputMicros = mulDivRound(u.InputTokens, r.InputPerMTok)
	b.CacheReadMicros = mulDivRound(u.CacheReadTokens, r.CacheReadPerMTok)
	b.CacheWriteMicros = mulAddDivRound(u.CacheWrite5mTokens, r.CacheWrite5mPerMTok, u.CacheWrite1hTokens, r.CacheWrite1hPerMTok)
	b.OutputMicros = mulDivRound(u.OutputTokens, r.OutputPerMTok)
	b.TotalMicros = satAdd(satAdd(b.InputMicros, b.CacheReadMicros), satAdd(b.CacheWriteMicros, b.OutputMicros))
	return b
}

// estimateSlackMicros covers Compute's rounding: up to three input-side components (uncached,
// cache read, cache write) are each rounded half-up, so their sum may exceed the exact amount
// by at most 1.5 micro-dollars. Estimate rounds up and adds this.
const estimateSlackMicros = 2

// Estimate is the worst-case cost in micro-dollars of a call with inputTokens of prompt and at
// most maxOutputTokens of output, for budget admission: the whole prompt at the highest input
// rate that may apply (uncached input, cache read, and the 5-minute / 1-hour cache-write rate
// when the request asks for caching, or always when the provider caches on its own), plus
// maxOutputTokens at the output rate, each rounded up, plus a 2 micro-dollar rounding margin.
// The long-context tier applies when inputTokens exceeds its threshold, as in Compute.
//
// For the same token counts it is never below Compute (tested). An unpriced Price estimates
// 0: the caller applies the budget's unpriced policy (check p.Priced).
func Estimate(p catalog.Price, inputTokens, maxOutputTokens int64, cacheWrite, cacheWrite1h bool) int64 {
	if !p.Priced {
		return 0
	}
	inputTokens, maxOutputTokens = max(inputTokens, 0), max(maxOutputTokens, 0)
	r := p.Rates
	if p.LongContextAbove > 0 && inputTokens > p.LongContextAbove {
		r = p.LongContext
	}
	rate := max(r.InputPerMTok, r.CacheReadPerMTok)
	if cacheWrite || p.ImplicitCacheWrite {
		rate = max(rate, r.CacheWrite5mPerMTok)
	}
	if cacheWrite1h || p.ImplicitCacheWrite {
		rate = max(rate, r.CacheWrite1hPerMTok)
	}
	in := mulDivCeil(inputTokens, rate)
	out := mulDivCeil(maxOutputTokens, r.OutputPerMTok)
	return satAdd(satAdd(in, out), estimateSlackMicros)
}

// USD converts micro-dollars to US dollars (for event properties).
func USD(micros int64) float64 { return float64(micros) / 1e6 }

const perMillion = 1_000_000

// mulDivRound returns round-half-up(tokens x rate / 1e6), saturating at MaxInt64.
func mulDivRound(tokens, rate int64) int64 {
	return mulAddDivRound(tokens, rate, 0, 0)
}

// mulAddDivRound returns round-half-up((t1 x r1 + t2 x r2) / 1e6) with a 128-bit
// intermediate, saturating at MaxInt64. Negative inputs count as zero.
func mulAddDivRound(t1, r1, t2, r2 int64) int64 {
	hi, lo := mul128(t1, r1)
	hi2, lo2 := mul128(t2, r2)
	hi, lo = add128(hi, lo, hi2, lo2)
	hi, lo = add128(hi, lo, 0, perMillion/2)
	return div128(hi, lo, perMillion)
}

// mulDivCeil returns ceil(tokens x rate / 1e6), saturating at MaxInt64.
func mulDivCeil(tokens, rate int64) int64 {
	hi, lo := mul128(tokens, rate)
	hi, lo = add128(hi, lo, 0, perMillion-1)
	return div128(hi, lo, perMillion)
}

func mul128(a, b int64) (hi, lo uint64) {
	if a <= 0 || b <= 0 {
		return 0, 0
	}
	return bits.Mul64(uint64(a), uint64(b))
}

func add128(hi, lo, hi2, lo2 uint64) (uint64, uint64) {
	lo, carry := bits.Add64(lo, lo2, 0)
	hi, carry = bits.Add64(hi, hi2, carry)
	if carry != 0 {
		return math.MaxUint64, math.MaxUint64
	}
	return hi, lo
}

// div128 returns (hi:lo) / d, saturating at MaxInt64.
func div128(hi, lo, d uint64) int64 {
	if hi >= d { // the quotient would not fit in 64 bits
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, d)
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

func satAdd(a, b int64) int64 {
	s := a + b
	if a > 0 && b > 0 && s < 0 {
		return math.MaxInt64
	}
	return s
}
