package cost

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/catalog"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

func price(t testing.TB, provider snapshot.Provider, model string) catalog.Price {
	t.Helper()
	p, ok := catalog.Default().Price(provider, model, "")
	require.True(t, ok, model)
	return p
}

func TestComputeOpenAIShape(t *testing.T) {
	// gpt-4o: $2.50 input, $1.25 cached input, $10 output per MTok.
	p := price(t, snapshot.ProviderOpenAI, "gpt-4o")
	// prompt_tokens 1000 of which cached_tokens 800; completion_tokens 500 of which 200 reasoning.
	u := FromOpenAI(1000, 800, 0, 500, 200)
	require.Equal(t, Usage{InputTokens: 200, CacheReadTokens: 800, OutputTokens: 500, ReasoningTokens: 200}, u)
	b := Compute(p, u)
	// uncached: 200 x $2.50/M  = $0.000500 = 500 micro-dollars
	// cached:   800 x $1.25/M  = $0.001000 = 1000
	// output:   500 x $10/M    = $0.005000 = 5000 (reasoning is inside the 500, not added)
	require.Equal(t, Breakdown{InputMicros: 500, CacheReadMicros: 1000, OutputMicros: 5000, TotalMicros: 6500, Priced: true}, b)
	require.InDelta(t, 0.0065, USD(b.TotalMicros), 1e-12)
}

func TestComputeOpenAICacheWrite(t *testing.T) {
	// gpt-5.6 bills cache writes at $6.25/M (input $5, cached $0.50, output per the seed).
	p := price(t, snapshot.ProviderOpenAI, "gpt-5.6")
	require.Equal(t, int64(6_250_000), p.CacheWrite5mPerMTok)
	// prompt 10,000 = 6,000 cached + 3,000 written + 1,000 uncached.
	u := FromOpenAI(10_000, 6_000, 3_000, 0, 0)
	b := Compute(p, u)
	require.Equal(t, int64(1_000*p.InputPerMTok/1_000_000), b.InputMicros)
	require.Equal(t, int64(6_000*p.CacheReadPerMTok/1_000_000), b.CacheReadMicros)
	// 3,000 x $6.25/M = $0.01875 = 18,750 micro-dollars.
	require.Equal(t, int64(18_750), b.CacheWriteMicros)
}

func TestComputeAnthropicShape(t *testing.T) {
	// claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 5m write, $6 1h write, $15 output.
	p := price(t, snapshot.ProviderAnthropic, "claude-sonnet-4-5")
	// input_tokens 100 (uncached), cache_read 5000, cache_creation 2000 = 1500 (5m) + 500 (1h), output 300.
	u := FromAnthropic(100, 5_000, 2_000, 1_500, 500, 300)
	require.Equal(t, Usage{InputTokens: 100, CacheReadTokens: 5_000, CacheWrite5mTokens: 1_500, CacheWrite1hTokens: 500, OutputTokens: 300}, u)
	b := Compute(p, u)
	// uncached:   100 x $3/M    = 300 micro-dollars
	// cache read: 5000 x $0.30/M = 1500
	// writes:     1500 x $3.75/M = 5625, plus 500 x $6/M (1h) = 3000 -> 8625
	// output:     300 x $15/M   = 4500
	// total 300 + 1500 + 8625 + 4500 = 14925 ($0.014925)
	require.Equal(t, Breakdown{InputMicros: 300, CacheReadMicros: 1_500, CacheWriteMicros: 8_625, OutputMicros: 4_500, TotalMicros: 14_925, Priced: true}, b)

	// Without the TTL split every write is a 5-minute write: 2000 x $3.75/M = 7500.
	b = Compute(p, FromAnthropic(100, 5_000, 2_000, 0, 0, 300))
	require.Equal(t, int64(7_500), b.CacheWriteMicros)
	require.Equal(t, int64(300+1_500+7_500+4_500), b.TotalMicros)
}

func TestComputeBedrockProfile(t *testing.T) {
	// The us. profile carries AWS's 10% regional uplift: $3.30 input, $16.50 output.
	p, ok := catalog.Default().Price(snapshot.ProviderBedrock, "claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
	require.True(t, ok)
	b := Compute(p, FromAnthropic(1_000, 0, 0, 0, 0, 1_000))
	// 1000 x $3.30/M = 3300; 1000 x $16.50/M = 16500.
	require.Equal(t, Breakdown{InputMicros: 3_300, OutputMicros: 16_500, TotalMicros: 19_800, Priced: true}, b)
}

func TestComputeRounding(t *testing.T) {
	p := catalog.Price{Priced: true, Rates: catalog.Rates{
		InputPerMTok: 500_000, OutputPerMTok: 1_500_000, CacheReadPerMTok: 150_000, CacheWrite5mPerMTok: 250_000, CacheWrite1hPerMTok: 250_000,
	}}
	for _, tc := range []struct {
		name string
		u    Usage
		want Breakdown
	}{
		// 1 x 0.5 = 0.5 -> 1 (half-up); 1 x 1.5 = 1.5 -> 2. Total is the sum of the rounded
		// parts (3), not the rounded exact sum (2).
		{"half rounds up", Usage{InputTokens: 1, OutputTokens: 1}, Breakdown{InputMicros: 1, OutputMicros: 2, TotalMicros: 3, Priced: true}},
		// 3 x 0.15 = 0.45 -> 0; 4 x 0.15 = 0.6 -> 1.
		{"below half rounds down", Usage{CacheReadTokens: 3}, Breakdown{Priced: true}},
		{"above half rounds up", Usage{CacheReadTokens: 4}, Breakdown{CacheReadMicros: 1, TotalMicros: 1, Priced: true}},
		// Writes are one component: 1 x 0.25 + 1 x 0.25 = 0.5 -> 1 (separately each would be 0).
		{"cache writes rounded together", Usage{CacheWrite5mTokens: 1, CacheWrite1hTokens: 1}, Breakdown{CacheWriteMicros: 1, TotalMicros: 1, Priced: true}},
		{"zero usage", Usage{}, Breakdown{Priced: true}},
		{"negative counts are zero", Usage{InputTokens: -5, OutputTokens: -1, CacheReadTokens: -3}, Breakdown{Priced: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Compute(p, tc.u))
		})
	}
}

func TestComputeLongContext(t *testing.T) {
	p := price(t, snapshot.ProviderAnthropic, "claude-sonnet-4-5")
	// Exactly 200,000 prompt tokens is not above the threshold: base rates.
	b := Compute(p, Usage{InputTokens: 150_000, CacheReadTokens: 50_000, OutputTokens: 1_000})
	require.False(t, b.LongContext)
	// 150000 x $3/M = 450000; 50000 x $0.30/M = 15000; 1000 x $15/M = 15000.
	require.Equal(t, int64(450_000+15_000+15_000), b.TotalMicros)

	// 200,001 (counting cache reads) is above: every component at the tier's rates.
	b = Compute(p, Usage{InputTokens: 150_001, CacheReadTokens: 50_000, OutputTokens: 1_000})
	require.True(t, b.LongContext)
	// 150001 x $6/M = 900006; 50000 x $0.60/M = 30000; 1000 x $22.50/M = 22500.
	require.Equal(t, Breakdown{InputMicros: 900_006, CacheReadMicros: 30_000, OutputMicros: 22_500, TotalMicros: 952_506, LongContext: true, Priced: true}, b)
}

func TestComputeUnpriced(t *testing.T) {
	_, ok := catalog.Default().Price(snapshot.ProviderOpenAI, "some-unknown-model", "")
	require.False(t, ok)
	b := Compute(catalog.Price{}, Usage{InputTokens: 1_000, OutputTokens: 1_000})
	require.Equal(t, Breakdown{}, b)
	require.False(t, b.Priced, "unknown, not $0")
	require.Zero(t, Estimate(catalog.Price{}, 1_000, 1_000, true, true))
}

func TestComputeOverflow(t *testing.T) {
	big := catalog.Price{Priced: true, Rates: catalog.Rates{
		InputPerMTok: math.MaxInt64, OutputPerMTok: math.MaxInt64, CacheReadPerMTok: math.MaxInt64,
		CacheWrite5mPerMTok: math.MaxInt64, CacheWrite1hPerMTok: math.MaxInt64,
	}}
	u := Usage{InputTokens: math.MaxInt64, CacheReadTokens: math.MaxInt64, CacheWrite5mTokens: math.MaxInt64,
		CacheWrite1hTokens: math.MaxInt64, OutputTokens: math.MaxInt64}
	b := Compute(big, u)
	require.Equal(t, int64(math.MaxInt64), b.InputMicros)
	require.Equal(t, int64(math.MaxInt64), b.CacheWriteMicros)
	require.Equal(t, int64(math.MaxInt64), b.TotalMicros, "saturates instead of wrapping")
	require.Equal(t, int64(math.MaxInt64), Estimate(big, math.MaxInt64, math.MaxInt64, true, true))

	// The product overflows 64 bits but the quotient fits: 3e12 tokens x 3.07e12 = 9.21e24,
	// / 1e6 = 9.21e18 < MaxInt64 (9.22e18). Exact, compared with math/big.
	p := catalog.Price{Priced: true, Rates: catalog.Rates{InputPerMTok: 3_070_000_000_000}}
	b = Compute(p, Usage{InputTokens: 3_000_000_000_000})
	require.Equal(t, bigRound(3_000_000_000_000, 3_070_000_000_000), b.InputMicros)
	require.Equal(t, int64(9_210_000_000_000_000_000), b.InputMicros)
}

// bigRound is the reference: round-half-up(t x r / 1e6) with math/big.
func bigRound(t, r int64) int64 {
	n := new(big.Int).Mul(big.NewInt(t), big.NewInt(r))
	n.Add(n, big.NewInt(500_000))
	n.Quo(n, big.NewInt(1_000_000))
	if !n.IsInt64() {
		return math.MaxInt64
	}
	return n.Int64()
}

func TestMulDivRoundMatchesBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		tok := rng.Int64N(math.MaxInt64)
		rate := rng.Int64N(math.MaxInt64)
		switch rng.IntN(3) { // mix magnitudes: realistic, large, huge
		case 0:
			tok, rate = rng.Int64N(10_000_000), rng.Int64N(1_000_000_000)
		case 1:
			tok, rate = rng.Int64N(1<<40), rng.Int64N(1<<40)
		}
		require.Equal(t, bigRound(tok, rate), mulDivRound(tok, rate), "%d x %d", tok, rate)
	}
}

func TestEstimate(t *testing.T) {
	sonnet := price(t, snapshot.ProviderAnthropic, "claude-sonnet-4-5")
	// 10,000 input x $3/M = 30,000; 1,000 max output x $15/M = 15,000; + 2 rounding margin.
	require.Equal(t, int64(30_000+15_000+2), Estimate(sonnet, 10_000, 1_000, false, false))
	// Caching asked: the input at the 5m write rate, $3.75/M = 37,500.
	require.Equal(t, int64(37_500+15_000+2), Estimate(sonnet, 10_000, 1_000, true, false))
	// 1h caching asked: $6/M = 60,000.
	require.Equal(t, int64(60_000+15_000+2), Estimate(sonnet, 10_000, 1_000, true, true))
	require.Equal(t, int64(60_000+15_000+2), Estimate(sonnet, 10_000, 1_000, false, true))
	// Above 200k: tier rates, 250,000 x $12/M (1h write above 200k) + 1,000 x $22.50/M.
	require.Equal(t, int64(3_000_000+22_500+2), Estimate(sonnet, 250_000, 1_000, false, true))
	// Rounds up: 1 token x $3/M = 3 exactly; 1 token x $0.15/M (gpt-4o-mini) = 0.15 -> 1.
	mini := price(t, snapshot.ProviderOpenAI, "gpt-4o-mini")
	require.Equal(t, int64(1+0+2), Estimate(mini, 1, 0, false, false))
	// Negative counts are zero.
	require.Equal(t, int64(2), Estimate(sonnet, -1, -1, false, false))

	// OpenAI caches without being asked; gpt-5.6 charges 1.25x input for writes, so admission
	// uses the write rate even without the flags: 1,000 x $6.25/M = 6,250.
	g56 := price(t, snapshot.ProviderOpenAI, "gpt-5.6")
	require.Equal(t, int64(6_250+2), Estimate(g56, 1_000, 0, false, false))
}

// For the same token counts, Estimate is never below Compute, however the prompt splits into
// uncached, cache read and cache writes (as far as the request allows writes), and however
// much of the output limit is used.
func TestEstimateNeverUnderCompute(t *testing.T) {
	c := catalog.Default()
	var prices []catalog.Price
	for _, m := range []struct {
		p snapshot.Provider
		m string
	}{
		{snapshot.ProviderAnthropic, "claude-sonnet-4-5"}, {snapshot.ProviderAnthropic, "claude-3-haiku-20240307"},
		{snapshot.ProviderOpenAI, "gpt-4o-mini"}, {snapshot.ProviderOpenAI, "gpt-5.6"}, {snapshot.ProviderOpenAI, "gpt-5.4"},
		{snapshot.ProviderBedrock, "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
	} {
		p, ok := c.Price(m.p, "", m.m)
		require.True(t, ok, m.m)
		prices = append(prices, p)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 50_000 {
		p := prices[rng.IntN(len(prices))]
		if rng.IntN(4) == 0 { // odd synthetic prices, including tiny ones where rounding dominates
			p = catalog.Price{Priced: true, ImplicitCacheWrite: rng.IntN(2) == 0, Rates: catalog.Rates{
				InputPerMTok: rng.Int64N(3_000_000), OutputPerMTok: rng.Int64N(3_000_000), CacheReadPerMTok: rng.Int64N(3_000_000),
				CacheWrite5mPerMTok: rng.Int64N(3_000_000), CacheWrite1hPerMTok: rng.Int64N(3_000_000),
			}}
		}
		cw, cw1h := rng.IntN(2) == 0, rng.IntN(2) == 0
		u, prompt, maxOut := randomUsage(rng, p, cw, cw1h)
		est := Estimate(p, prompt, maxOut, cw, cw1h)
		got := Compute(p, u)
		require.GreaterOrEqual(t, est, got.TotalMicros, "price %+v usage %+v cw=%v cw1h=%v", p, u, cw, cw1h)
	}
}

func randomUsage(rng *rand.Rand, p catalog.Price, cw, cw1h bool) (Usage, int64, int64) {
	var prompt int64
	switch rng.IntN(3) {
	case 0:
		prompt = rng.Int64N(20)
	case 1:
		prompt = rng.Int64N(300_000)
	default:
		prompt = 190_000 + rng.Int64N(100_000) // around the long-context thresholds
	}
	var u Usage
	rest := prompt
	take := func() int64 {
		if rest == 0 {
			return 0
		}
		n := rng.Int64N(rest + 1)
		rest -= n
		return n
	}
	u.CacheReadTokens = take()
	if cw || p.ImplicitCacheWrite {
		u.CacheWrite5mTokens = take()
	}
	if cw1h || p.ImplicitCacheWrite {
		u.CacheWrite1hTokens = take()
	}
	u.InputTokens = rest
	maxOut := rng.Int64N(100_000)
	u.OutputTokens = rng.Int64N(maxOut + 1)
	return u, prompt, maxOut
}

func FuzzComputeTotals(f *testing.F) {
	f.Add(int64(100), int64(5000), int64(1500), int64(500), int64(300), int64(3_000_000), int64(15_000_000), int64(300_000), int64(3_750_000), int64(6_000_000), int64(200_000))
	f.Fuzz(func(t *testing.T, in, read, w5, w1, out, rIn, rOut, rRead, rW5, rW1, above int64) {
		p := catalog.Price{Priced: true, LongContextAbove: above,
			Rates:       catalog.Rates{InputPerMTok: rIn, OutputPerMTok: rOut, CacheReadPerMTok: rRead, CacheWrite5mPerMTok: rW5, CacheWrite1hPerMTok: rW1},
			LongContext: catalog.Rates{InputPerMTok: rIn, OutputPerMTok: rOut, CacheReadPerMTok: rRead, CacheWrite5mPerMTok: rW5, CacheWrite1hPerMTok: rW1},
		}
		b := Compute(p, Usage{InputTokens: in, CacheReadTokens: read, CacheWrite5mTokens: w5, CacheWrite1hTokens: w1, OutputTokens: out})
		for _, v := range []int64{b.InputMicros, b.CacheReadMicros, b.CacheWriteMicros, b.OutputMicros, b.TotalMicros} {
			require.GreaterOrEqual(t, v, int64(0))
		}
		sum := new(big.Int)
		for _, v := range []int64{b.InputMicros, b.CacheReadMicros, b.CacheWriteMicros, b.OutputMicros} {
			sum.Add(sum, big.NewInt(v))
		}
		if sum.IsInt64() {
			require.Equal(t, sum.Int64(), b.TotalMicros, "total is the sum of the components")
		} else {
			require.Equal(t, int64(math.MaxInt64), b.TotalMicros)
		}
	})
}

func BenchmarkCompute(b *testing.B) {
	p := price(b, snapshot.ProviderAnthropic, "claude-sonnet-4-5")
	u := FromAnthropic(100, 5_000, 2_000, 1_500, 500, 300)
	b.ReportAllocs()
	for b.Loop() {
		_ = Compute(p, u)
	}
}

func BenchmarkEstimate(b *testing.B) {
	p := price(b, snapshot.ProviderAnthropic, "claude-sonnet-4-5")
	b.ReportAllocs()
	for b.Loop() {
		_ = Estimate(p, 10_000, 4_096, true, false)
	}
}
