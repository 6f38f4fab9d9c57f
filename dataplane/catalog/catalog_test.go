package catalog

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// USD per token -> micro-dollars per million tokens, written out for readability:
// 3e-06 USD/token = $3 / MTok = 3_000_000 micro-dollars / MTok.
const usd = 1_000_000

func TestSeedParses(t *testing.T) {
	c := Default()
	require.Same(t, c, Default(), "parsed once")
	s := c.seed
	// Every kept entry is indexed under its provider.
	var raw map[string]struct {
		Provider string `json:"litellm_provider"`
	}
	require.NoError(t, json.Unmarshal(seedJSON, &raw))
	for key, e := range raw {
		var g *group
		k := key
		switch e.Provider {
		case "anthropic":
			g = &s.anthropic
		case "openai", "text-completion-openai":
			g = &s.openai
		case "azure":
			g, k = &s.azure, strings.TrimPrefix(key, "azure/")
		case "bedrock", "bedrock_converse":
			g = &s.bedrock
		default:
			t.Fatalf("%s: provider %q is outside the seed filter", key, e.Provider)
		}
		if e.Provider == "azure" && k == key && raw["azure/"+key].Provider == "azure" {
			k = "" // a bare duplicate of an azure/ entry: the prefixed one is indexed
		}
		if k != "" {
			require.True(t, g.byKey[k] != nil && g.byKey[k].key == key, "%s (%s) is indexed", key, e.Provider)
		}
	}
	// Azure's dotless names are also reachable in OpenAI spelling; the seed's own entry for
	// that spelling wins.
	require.Equal(t, "azure/gpt-35-turbo-16k", s.azure.byKey["gpt-3.5-turbo-16k"].key)
	require.Equal(t, "azure/gpt-3.5-turbo", s.azure.byKey["gpt-3.5-turbo"].key)

	for _, g := range []*group{&s.anthropic, &s.openai, &s.azure, &s.bedrock} {
		for key, e := range g.byKey {
			p := e.price
			if !p.Priced {
				continue
			}
			for _, r := range []Rates{p.Rates, p.LongContext} {
				require.GreaterOrEqual(t, r.InputPerMTok, int64(0), key)
				require.GreaterOrEqual(t, r.OutputPerMTok, int64(0), key)
			}
			require.Positive(t, p.CacheReadPerMTok+p.CacheWrite5mPerMTok+p.CacheWrite1hPerMTok+1, key)
			if p.InputPerMTok > 0 {
				require.Positive(t, p.CacheReadPerMTok, "%s: cache read filled", key)
				require.Positive(t, p.CacheWrite5mPerMTok, "%s: cache write filled", key)
				require.Positive(t, p.CacheWrite1hPerMTok, "%s: cache write 1h filled", key)
			}
			if p.LongContextAbove > 0 {
				require.GreaterOrEqual(t, p.LongContext.InputPerMTok, p.InputPerMTok, key)
				require.GreaterOrEqual(t, p.LongContext.OutputPerMTok, p.OutputPerMTok, key)
			}
		}
	}
}

func TestPerMTokIsExact(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"3e-06", 3 * usd},
		{"1.25e-07", 125_000},
		{"0.0000005", 500_000},
		{"3.3e-06", 3_300_000}, // 3.3e-06 * 1e12 is 3299999.9999999995 in float64
		{"4.125e-06", 4_125_000},
		{"1.375e-06", 1_375_000},
		{"0.00001", 10 * usd},
		{"5e-13", 1},   // 0.5 micro-dollar per MTok rounds half-up
		{"4.9e-13", 0}, // below half rounds down
		{"0", 0},
		{"", 0},
		{"150", 150_000_000_000_000},
	} {
		got, err := perMTok(json.Number(tc.in))
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"cheap", "-1e-6", "1e30"} {
		_, err := perMTok(json.Number(bad))
		require.Error(t, err, bad)
	}
}

func TestPriceLookup(t *testing.T) {
	c := Default()
	for _, tc := range []struct {
		name                       string
		provider                   snapshot.Provider
		canonical, providerModelID string
		wantKey                    string // "" = not priced
		wantInput, wantOutput      int64
	}{
		{"anthropic exact", snapshot.ProviderAnthropic, "claude-sonnet-4-5", "", "claude-sonnet-4-5", 3 * usd, 15 * usd},
		{"anthropic dated", snapshot.ProviderAnthropic, "claude-sonnet-4-5-20250929", "", "claude-sonnet-4-5-20250929", 3 * usd, 15 * usd},
		{"anthropic served model wins", snapshot.ProviderAnthropic, "claude-haiku-4-5", "claude-haiku-4-5-20251001", "claude-haiku-4-5-20251001", 1 * usd, 5 * usd},
		{"anthropic unknown date strips", snapshot.ProviderAnthropic, "claude-sonnet-4-6-20991231", "", "claude-sonnet-4-6", 3 * usd, 15 * usd},
		{"anthropic -latest newest of family", snapshot.ProviderAnthropic, "claude-3-7-sonnet-latest", "", "claude-3-7-sonnet-20250219", 3 * usd, 15 * usd},
		{"anthropic openrouter name", snapshot.ProviderAnthropic, "anthropic/claude-opus-4.5", "", "claude-opus-4-5", 5 * usd, 25 * usd},
		{"anthropic never prices gpt", snapshot.ProviderAnthropic, "gpt-4o", "", "", 0, 0},

		{"bedrock us profile carries uplift", snapshot.ProviderBedrock, "claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", 3_300_000, 16_500_000},
		{"bedrock global profile", snapshot.ProviderBedrock, "claude-sonnet-4-5", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", 3 * usd, 15 * usd},
		{"bedrock inference profile ARN", snapshot.ProviderBedrock, "", "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6", "us.anthropic.claude-sonnet-4-6", 3_300_000, 16_500_000},
		{"bedrock unknown geo profile falls back to base id", snapshot.ProviderBedrock, "", "jp.anthropic.claude-opus-4-5-20251101-v1:0", "anthropic.claude-opus-4-5-20251101-v1:0", 5 * usd, 25 * usd},
		{"bedrock application profile falls back to canonical base", snapshot.ProviderBedrock, "claude-sonnet-4-5", "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3", "anthropic.claude-sonnet-4-5-20250929-v1:0", 3 * usd, 15 * usd},
		{"bedrock base id from canonical", snapshot.ProviderBedrock, "claude-opus-4-6", "", "anthropic.claude-opus-4-6-v1", 5 * usd, 25 * usd},
		{"bedrock dated canonical of an undated base", snapshot.ProviderBedrock, "claude-opus-4-6-20260205", "", "anthropic.claude-opus-4-6-v1", 5 * usd, 25 * usd},
		{"bedrock placeholder zero price falls through to anthropic", snapshot.ProviderBedrock, "claude-opus-4-7", "anthropic.claude-mythos-preview", "anthropic.claude-opus-4-7", 5 * usd, 25 * usd},
		{"bedrock zero placeholder alone is unpriced", snapshot.ProviderBedrock, "", "anthropic.claude-mythos-preview", "", 0, 0},
		{"bedrock model only at anthropic", snapshot.ProviderBedrock, "claude-opus-4-1", "", "anthropic.claude-opus-4-1-20250805-v1:0", 15 * usd, 75 * usd},

		{"azure served model", snapshot.ProviderAzureOpenAI, "gpt-4o", "gpt-4o-2024-11-20", "azure/gpt-4o-2024-11-20", 2_750_000, 11 * usd},
		{"azure deployment name falls back to canonical", snapshot.ProviderAzureOpenAI, "gpt-4o", "my-prod-deployment", "azure/gpt-4o", 2_500_000, 10 * usd},
		{"azure dotless name", snapshot.ProviderAzureOpenAI, "gpt-35-turbo-16k", "", "azure/gpt-35-turbo-16k", 3 * usd, 4 * usd},
		{"azure dotted name", snapshot.ProviderAzureOpenAI, "gpt-35-turbo", "", "azure/gpt-3.5-turbo", 500_000, 1_500_000},
		{"azure falls back to openai", snapshot.ProviderAzureOpenAI, "gpt-4o-search-preview", "", "gpt-4o-search-preview", 2_500_000, 10 * usd},

		{"openai exact", snapshot.ProviderOpenAI, "gpt-4o", "", "gpt-4o", 2_500_000, 10 * usd},
		{"openai response model", snapshot.ProviderOpenAI, "gpt-4o", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13", 5 * usd, 15 * usd},
		{"openai prefixed", snapshot.ProviderOpenAI, "openai/gpt-4o-mini", "", "gpt-4o-mini", 150_000, 600_000},
		{"openai unknown date strips", snapshot.ProviderOpenAI, "gpt-4o-2099-01-01", "", "gpt-4o", 2_500_000, 10 * usd},
		{"openai legacy completion", snapshot.ProviderOpenAI, "davinci-002", "", "davinci-002", 2 * usd, 2 * usd},
		{"openai never prices claude", snapshot.ProviderOpenAI, "claude-sonnet-4-5", "", "", 0, 0},
		{"unknown model", snapshot.ProviderOpenAI, "llama-3-70b", "", "", 0, 0},
		{"empty", snapshot.ProviderAnthropic, "", "", "", 0, 0},
		{"unknown provider", snapshot.Provider("Gemini"), "gpt-4o", "", "", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := c.Price(tc.provider, tc.canonical, tc.providerModelID)
			require.Equal(t, tc.wantKey != "", ok)
			require.Equal(t, ok, p.Priced)
			if !ok {
				require.Equal(t, Price{}, p, "unpriced is the zero Price, never a $0 price")
				return
			}
			require.Equal(t, tc.wantKey, p.Model)
			require.Equal(t, tc.wantInput, p.InputPerMTok)
			require.Equal(t, tc.wantOutput, p.OutputPerMTok)
		})
	}
}

// The rules for rates the seed leaves out, and the correction of implausible 1h rates.
func TestMissingRateRules(t *testing.T) {
	c := Default()
	get := func(provider snapshot.Provider, model string) Price {
		p, ok := c.Price(provider, model, model)
		require.True(t, ok, model)
		return p
	}

	// Seed rates are used as they are.
	p := get(snapshot.ProviderAnthropic, "claude-sonnet-4-5")
	require.Equal(t, Rates{3 * usd, 15 * usd, 300_000, 3_750_000, 6 * usd}, p.Rates)
	require.False(t, p.ImplicitCacheWrite)

	// claude-4-opus-20250514 has no 1h rate: 2 x input = 2 x $15 = $30.
	p = get(snapshot.ProviderAnthropic, "claude-4-opus-20250514")
	require.Equal(t, int64(30*usd), p.CacheWrite1hPerMTok)
	require.Equal(t, int64(18_750_000), p.CacheWrite5mPerMTok, "seed 5m rate kept")

	// The seed's 1h rate of 6e-06 for claude-3-haiku ($0.25 input) and claude-3-opus ($15
	// input) contradicts Anthropic's 2x multiplier: replaced by 2 x input.
	require.Equal(t, int64(500_000), get(snapshot.ProviderAnthropic, "claude-3-haiku-20240307").CacheWrite1hPerMTok)
	require.Equal(t, int64(30*usd), get(snapshot.ProviderAnthropic, "claude-3-opus-20240229").CacheWrite1hPerMTok)

	// Bedrock claude-instant has no cache rates: 5m = 1.25 x $0.80 = $1.00, 1h = $1.60,
	// read = 0.1 x $0.80 = $0.08.
	p = get(snapshot.ProviderBedrock, "anthropic.claude-instant-v1")
	require.Equal(t, Rates{800_000, 2_400_000, 80_000, 1 * usd, 1_600_000}, p.Rates)

	// OpenAI gpt-4 has no cache read: 0.5 x $30 = $15; writes cost the input rate.
	p = get(snapshot.ProviderOpenAI, "gpt-4")
	require.Equal(t, Rates{30 * usd, 60 * usd, 15 * usd, 30 * usd, 30 * usd}, p.Rates)
	require.True(t, p.ImplicitCacheWrite)

	// gpt-5.6 lists a paid cache write (1.25 x input): kept.
	p = get(snapshot.ProviderOpenAI, "gpt-5.6")
	require.Equal(t, int64(6_250_000), p.CacheWrite5mPerMTok)
	require.Equal(t, int64(6_250_000), p.CacheWrite1hPerMTok)
}

func TestRuleRounding(t *testing.T) {
	r := Rates{InputPerMTok: 3}
	familyAnthropic.fill(&r)
	// 1.25 x 3 = 3.75 -> 4; 0.1 x 3 = 0.3 -> 0 -> stays absent-as-zero is not possible, it is 0.
	require.Equal(t, Rates{InputPerMTok: 3, CacheReadPerMTok: 0, CacheWrite5mPerMTok: 4, CacheWrite1hPerMTok: 6}, r)
	r = Rates{InputPerMTok: 5}
	familyOpenAI.fill(&r)
	require.Equal(t, Rates{InputPerMTok: 5, CacheReadPerMTok: 3, CacheWrite5mPerMTok: 5, CacheWrite1hPerMTok: 5}, r) // 2.5 -> 3
}

func TestLongContextTiers(t *testing.T) {
	c := Default()
	p, ok := c.Price(snapshot.ProviderAnthropic, "claude-sonnet-4-5-20250929", "")
	require.True(t, ok)
	require.Equal(t, int64(200_000), p.LongContextAbove)
	require.Equal(t, Rates{6 * usd, 22_500_000, 600_000, 7_500_000, 12 * usd}, p.LongContext)

	// claude-sonnet-4 has no 1h rate above 200k: 2 x the tier input ($6) = $12.
	p, ok = c.Price(snapshot.ProviderAnthropic, "claude-sonnet-4-20250514", "")
	require.True(t, ok)
	require.Equal(t, Rates{6 * usd, 22_500_000, 600_000, 7_500_000, 12 * usd}, p.LongContext)

	// gpt-5.4 above 272k: input $5, output $22.50, cache read $0.50; write = tier input.
	p, ok = c.Price(snapshot.ProviderOpenAI, "gpt-5.4", "")
	require.True(t, ok)
	require.Equal(t, int64(272_000), p.LongContextAbove)
	require.Equal(t, Rates{5 * usd, 22_500_000, 500_000, 5 * usd, 5 * usd}, p.LongContext)

	p, ok = c.Price(snapshot.ProviderOpenAI, "gpt-4o", "")
	require.True(t, ok)
	require.Zero(t, p.LongContextAbove)
}

func TestBackendPriceAndOverrides(t *testing.T) {
	backends := []snapshot.Backend{
		{Name: "ns/anthropic", Provider: snapshot.ProviderAnthropic, Prices: []snapshot.ModelPrice{
			// Negotiated: $2.40 in / $12 out; cache rates derived from the override's input.
			{Model: "claude-sonnet-4-5", InputPerMTok: 2_400_000, OutputPerMTok: 12 * usd},
			{Model: "internal-model", InputPerMTok: 1 * usd, OutputPerMTok: 2 * usd, CacheReadPerMTok: 50_000, ContextWindow: 32_000},
		}},
		{Name: "ns/anthropic-2", Provider: snapshot.ProviderAnthropic},
		{Name: "ns/azure", Provider: snapshot.ProviderAzureOpenAI, Prices: []snapshot.ModelPrice{
			{Model: "gpt-4o", InputPerMTok: 2 * usd, OutputPerMTok: 8 * usd},
		}},
		{Name: "ns/bedrock-gov", Provider: snapshot.ProviderBedrock, Region: "us-gov-west-1"},
	}
	base := Default()
	c := base.WithOverrides(backends)
	require.Nil(t, base.overrides, "the base catalog is not modified")

	p, ok := c.BackendPrice(&backends[0], "claude-sonnet-4-5", "claude-sonnet-4-5")
	require.True(t, ok)
	require.Equal(t, "override:ns/anthropic", p.Source)
	// 5m = 1.25 x 2.4 = 3.0; 1h = 2 x 2.4 = 4.8; read = 0.1 x 2.4 = 0.24.
	require.Equal(t, Rates{2_400_000, 12 * usd, 240_000, 3 * usd, 4_800_000}, p.Rates)
	require.Equal(t, int64(200_000), p.ContextWindow, "context window from the seed")
	require.Zero(t, p.LongContextAbove, "an override is a flat price")

	// A dated canonical name finds the undated override.
	p, ok = c.BackendPrice(&backends[0], "claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929")
	require.True(t, ok)
	require.Equal(t, "override:ns/anthropic", p.Source)

	// Another backend of the same provider is not affected.
	p, ok = c.BackendPrice(&backends[1], "claude-sonnet-4-5", "")
	require.True(t, ok)
	require.Equal(t, "litellm:anthropic", p.Source)
	require.Equal(t, int64(3*usd), p.InputPerMTok)

	// A model the seed does not know is priced by its override only.
	p, ok = c.BackendPrice(&backends[0], "internal-model", "")
	require.True(t, ok)
	require.Equal(t, Rates{1 * usd, 2 * usd, 50_000, 1_250_000, 2 * usd}, p.Rates)
	_, ok = c.BackendPrice(&backends[1], "internal-model", "")
	require.False(t, ok)

	// OpenAI-family rules for an Azure override: read 0.5 x input, writes at input.
	p, ok = c.BackendPrice(&backends[2], "gpt-4o", "my-deployment")
	require.True(t, ok)
	require.Equal(t, Rates{2 * usd, 8 * usd, 1 * usd, 2 * usd, 2 * usd}, p.Rates)
	require.True(t, p.ImplicitCacheWrite)

	// Bedrock: the backend's region entry first.
	p, ok = c.BackendPrice(&backends[3], "claude-sonnet-4-5", "anthropic.claude-sonnet-4-5-20250929-v1:0")
	require.True(t, ok)
	require.Equal(t, "bedrock/us-gov-west-1/anthropic.claude-sonnet-4-5-20250929-v1:0", p.Model)
	require.Equal(t, int64(3_600_000), p.InputPerMTok)

	_, ok = c.BackendPrice(nil, "gpt-4o", "")
	require.False(t, ok)
}

func TestConcurrentReads(t *testing.T) {
	backends := []snapshot.Backend{{Name: "b", Provider: snapshot.ProviderOpenAI, Prices: []snapshot.ModelPrice{{Model: "gpt-4o", InputPerMTok: 1, OutputPerMTok: 2}}}}
	c := Default().WithOverrides(backends)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				p, ok := c.BackendPrice(&backends[0], "gpt-4o", "")
				if !ok || p.InputPerMTok != 1 {
					t.Errorf("goroutine %d: got %+v", i, p)
					return
				}
				_, _ = c.Describe("claude-sonnet-4-5")
				_, _ = c.Price(snapshot.ProviderBedrock, "claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
			}
		})
	}
	wg.Wait()
}

func TestBedrockModelID(t *testing.T) {
	for _, tc := range []struct {
		canonical, geo, want string
		ok                   bool
	}{
		{"claude-sonnet-4-5-20250929", "", "anthropic.claude-sonnet-4-5-20250929-v1:0", true},
		{"claude-sonnet-4-5-20250929", "us", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", true},
		{"claude-sonnet-4-5", "global.", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", true},
		{"claude-sonnet-4-5-latest", "eu", "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", true},
		{"claude-opus-4-6", "us", "us.anthropic.claude-opus-4-6-v1", true},
		{"claude-sonnet-4-6", "jp", "jp.anthropic.claude-sonnet-4-6", true},
		{"claude-haiku-4-5", "", "anthropic.claude-haiku-4-5-20251001-v1:0", true},
		{"claude-3-5-sonnet", "", "anthropic.claude-3-5-sonnet-20241022-v2:0", true},
		{"claude-3-5-sonnet-20240620", "apac", "apac.anthropic.claude-3-5-sonnet-20240620-v1:0", true},
		{"anthropic/claude-sonnet-4.5", "", "anthropic.claude-sonnet-4-5-20250929-v1:0", true},
		{"claude-nonexistent-9", "us", "", false},
		{"gpt-4o", "", "", false},
	} {
		got, ok := BedrockModelID(tc.canonical, tc.geo)
		require.Equal(t, tc.ok, ok, tc.canonical)
		require.Equal(t, tc.want, got, tc.canonical)
	}
}

func TestKnown(t *testing.T) {
	c := Default()
	require.True(t, c.Known(snapshot.ShapeAnthropic, "claude-sonnet-4-5-20250929"))
	require.True(t, c.Known(snapshot.ShapeAnthropic, "claude-3-5-sonnet-20241022"), "known from Bedrock")
	require.True(t, c.Known(snapshot.ShapeAnthropic, "us.anthropic.claude-sonnet-4-6"))
	require.False(t, c.Known(snapshot.ShapeAnthropic, "claude-3-5-sonnet-latest"))
	require.False(t, c.Known(snapshot.ShapeAnthropic, "gpt-4o"))
	require.True(t, c.Known(snapshot.ShapeOpenAI, "gpt-4o-2024-05-13"))
	require.True(t, c.Known(snapshot.ShapeOpenAI, "gpt-35-turbo"))
	require.False(t, c.Known(snapshot.ShapeOpenAI, "gpt-4o-2099-01-01"))
	require.False(t, c.Known(snapshot.Shape("x"), "gpt-4o"))
}

func TestDescribe(t *testing.T) {
	c := Default().WithOverrides([]snapshot.Backend{{Name: "b", Provider: snapshot.ProviderAnthropic, Prices: []snapshot.ModelPrice{
		{Model: "internal-model", InputPerMTok: 1_500_000, OutputPerMTok: 2 * usd, ContextWindow: 32_000},
	}}})
	info, ok := c.Describe("claude-sonnet-4-5")
	require.True(t, ok)
	all := ModelCapabilities{Streaming: true, Tools: true, Vision: true, StructuredOutputs: true, Reasoning: true, PromptCaching: true}
	require.Equal(t, ModelInfo{ID: "claude-sonnet-4-5", Provider: "anthropic", Mode: "chat", ContextWindow: 200_000, MaxOutputTokens: 64_000,
		Pricing: &ModelPricing{Input: 3, Output: 15, CacheRead: 0.3, CacheWrite5m: 3.75, CacheWrite1h: 6,
			LongContext: &LongContextPricing{AboveTokens: 200_000, Input: 6, Output: 22.5, CacheRead: 0.6, CacheWrite5m: 7.5, CacheWrite1h: 12}},
		Capabilities: all}, info)

	info, ok = c.Describe("gpt-4o")
	require.True(t, ok)
	require.Equal(t, "openai", info.Provider)
	require.Equal(t, int64(128_000), info.ContextWindow)
	require.Equal(t, 2.5, info.Pricing.Input)

	info, ok = c.Describe("claude-3-5-sonnet-20241022") // only on Bedrock in the seed
	require.True(t, ok)
	require.Equal(t, "anthropic", info.Provider)
	require.Equal(t, 3.0, info.Pricing.Input)

	info, ok = c.Describe("internal-model")
	require.True(t, ok)
	require.Equal(t, ModelInfo{ID: "internal-model", Provider: "anthropic", ContextWindow: 32_000,
		Pricing: &ModelPricing{Input: 1.5, Output: 2, CacheRead: 0.15, CacheWrite5m: 1.875, CacheWrite1h: 3}}, info)

	info, ok = c.Describe("my-own-model")
	require.False(t, ok)
	require.Equal(t, ModelInfo{ID: "my-own-model"}, info)

	b, err := json.Marshal(ModelInfo{ID: "m", Provider: "openai", Pricing: &ModelPricing{Input: 1}})
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"m","provider":"openai","pricing":{"input":1,"output":0,"cache_read":0,"cache_write_5m":0,"cache_write_1h":0},
		"capabilities":{"streaming":false,"tools":false,"vision":false,"structured_outputs":false,"reasoning":false,"prompt_caching":false}}`, string(b))
}

func TestParseErrors(t *testing.T) {
	_, err := Parse([]byte(`{`))
	require.ErrorContains(t, err, "decode price map")
	_, err = Parse([]byte(`{"m": {"litellm_provider": "openai", "input_cost_per_token": -1, "output_cost_per_token": 1}}`))
	require.ErrorContains(t, err, `entry "m"`)
	c, err := Parse([]byte(`{"m": {"litellm_provider": "gemini", "input_cost_per_token": 1, "output_cost_per_token": 1}}`))
	require.NoError(t, err)
	_, ok := c.Price(snapshot.ProviderOpenAI, "m", "")
	require.False(t, ok, "providers outside the filter are ignored")
}

func BenchmarkParseSeed(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(seedJSON)))
	for b.Loop() {
		if _, err := parseSeed(seedJSON); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPrice(b *testing.B) {
	c := Default()
	for _, bc := range []struct {
		name                  string
		provider              snapshot.Provider
		canonical, providerID string
	}{
		{"anthropic", snapshot.ProviderAnthropic, "claude-sonnet-4-5", "claude-sonnet-4-5"},
		{"openai-dated", snapshot.ProviderOpenAI, "gpt-4o", "gpt-4o-2024-08-06"},
		{"bedrock-profile", snapshot.ProviderBedrock, "claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{"azure-deployment", snapshot.ProviderAzureOpenAI, "gpt-4o", "prod-gpt4o"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := c.Price(bc.provider, bc.canonical, bc.providerID); !ok {
					b.Fatal("not priced")
				}
			}
		})
	}
}

func BenchmarkWithOverrides(b *testing.B) {
	backends := make([]snapshot.Backend, 20)
	for i := range backends {
		backends[i] = snapshot.Backend{Name: string(rune('a' + i)), Provider: snapshot.ProviderAnthropic, Prices: []snapshot.ModelPrice{
			{Model: "claude-sonnet-4-5", InputPerMTok: 1, OutputPerMTok: 2}, {Model: "claude-opus-4-5", InputPerMTok: 1, OutputPerMTok: 2},
		}}
	}
	c := Default()
	b.ReportAllocs()
	for b.Loop() {
		_ = c.WithOverrides(backends)
	}
}
