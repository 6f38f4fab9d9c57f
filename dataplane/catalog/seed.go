package catalog

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// seedJSON is the LiteLLM price map filtered to the providers the gateway talks to (see
// data/README.md). It is parsed once, on first use, into compact structs; the decoded JSON
// map is dropped after parsing.
//
//go:embed data/model_prices.json
var seedJSON []byte

// seedEntry is the part of one LiteLLM entry the gateway reads. Prices are USD per token.
// json.Number keeps the source spelling so the conversion to integers is exact.
type seedEntry struct {
	Provider        string      `json:"litellm_provider"`
	Mode            string      `json:"mode"`
	MaxInputTokens  json.Number `json:"max_input_tokens"`
	MaxOutputTokens json.Number `json:"max_output_tokens"`
	MaxTokens       json.Number `json:"max_tokens"`

	Input        json.Number `json:"input_cost_per_token"`
	Output       json.Number `json:"output_cost_per_token"`
	CacheRead    json.Number `json:"cache_read_input_token_cost"`
	CacheWrite   json.Number `json:"cache_creation_input_token_cost"`
	CacheWrite1h json.Number `json:"cache_creation_input_token_cost_above_1hr"`

	Input200k        json.Number `json:"input_cost_per_token_above_200k_tokens"`
	Output200k       json.Number `json:"output_cost_per_token_above_200k_tokens"`
	CacheRead200k    json.Number `json:"cache_read_input_token_cost_above_200k_tokens"`
	CacheWrite200k   json.Number `json:"cache_creation_input_token_cost_above_200k_tokens"`
	CacheWrite1h200k json.Number `json:"cache_creation_input_token_cost_above_1hr_above_200k_tokens"`

	Input272k      json.Number `json:"input_cost_per_token_above_272k_tokens"`
	Output272k     json.Number `json:"output_cost_per_token_above_272k_tokens"`
	CacheRead272k  json.Number `json:"cache_read_input_token_cost_above_272k_tokens"`
	CacheWrite272k json.Number `json:"cache_creation_input_token_cost_above_272k_tokens"`

	// Capability flags (see capabilities.go). nil: the entry does not say.
	NativeStreaming *bool `json:"supports_native_streaming"`
	FunctionCalling *bool `json:"supports_function_calling"`
	Vision          *bool `json:"supports_vision"`
	ResponseSchema  *bool `json:"supports_response_schema"`
	Reasoning       *bool `json:"supports_reasoning"`
	PromptCaching   *bool `json:"supports_prompt_caching"`
}

// LiteLLM provider names kept by the seed filter, and the price-rule family of each.
var seedProviders = map[string]family{
	"anthropic":              familyAnthropic,
	"bedrock":                familyAnthropic,
	"bedrock_converse":       familyAnthropic,
	"openai":                 familyOpenAI,
	"text-completion-openai": familyOpenAI,
	"azure":                  familyOpenAI,
}

// SeedProviders lists the litellm_provider values the seed keeps (the refresh filter).
func SeedProviders() []string {
	return []string{"openai", "azure", "bedrock", "bedrock_converse", "anthropic", "text-completion-openai"}
}

// parseSeed decodes a LiteLLM price map into the catalog's indexes.
func parseSeed(data []byte) (*seed, error) {
	var raw map[string]seedEntry
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("decode price map: %w", err)
	}
	s := newSeed()
	for key, e := range raw {
		fam, ok := seedProviders[e.Provider]
		if !ok {
			continue // other providers, sample_spec
		}
		p, err := e.price(fam)
		if err != nil {
			return nil, fmt.Errorf("price map entry %q: %w", key, err)
		}
		p.Model = key
		p.Source = "litellm:" + e.Provider
		s.add(key, e.Provider, e.Mode, p)
	}
	s.finish()
	return s, nil
}

// price converts the entry to integer rates and applies the missing-rate rules of fam.
func (e *seedEntry) price(fam family) (Price, error) {
	var p Price
	var err error
	num := func(n json.Number) int64 {
		v, perr := perMTok(n)
		if perr != nil && err == nil {
			err = perr
		}
		return v
	}
	count := func(n json.Number) int64 {
		v, perr := tokens(n)
		if perr != nil && err == nil {
			err = perr
		}
		return v
	}
	p.ContextWindow = count(e.MaxInputTokens)
	p.MaxOutputTokens = count(e.MaxOutputTokens)
	if p.MaxOutputTokens == 0 {
		p.MaxOutputTokens = count(e.MaxTokens)
	}
	p.Mode = e.Mode
	p.Capabilities = e.capabilities()
	p.Rates = Rates{
		InputPerMTok:        num(e.Input),
		OutputPerMTok:       num(e.Output),
		CacheReadPerMTok:    num(e.CacheRead),
		CacheWrite5mPerMTok: num(e.CacheWrite),
		CacheWrite1hPerMTok: num(e.CacheWrite1h),
	}
	// An entry without both token prices (image, audio-per-second models) or with both at zero
	// (placeholders) is not a token price: leave it unpriced.
	p.Priced = e.Input != "" && e.Output != "" && (p.InputPerMTok > 0 || p.OutputPerMTok > 0)
	fam.fill(&p.Rates)

	switch {
	case e.Input200k != "":
		p.LongContextAbove = 200_000
		p.LongContext = Rates{
			InputPerMTok:        num(e.Input200k),
			OutputPerMTok:       num(e.Output200k),
			CacheReadPerMTok:    num(e.CacheRead200k),
			CacheWrite5mPerMTok: num(e.CacheWrite200k),
			CacheWrite1hPerMTok: num(e.CacheWrite1h200k),
		}
	case e.Input272k != "":
		p.LongContextAbove = 272_000
		p.LongContext = Rates{
			InputPerMTok:        num(e.Input272k),
			OutputPerMTok:       num(e.Output272k),
			CacheReadPerMTok:    num(e.CacheRead272k),
			CacheWrite5mPerMTok: num(e.CacheWrite272k),
		}
	}
	if p.LongContextAbove > 0 {
		if p.LongContext.OutputPerMTok == 0 {
			p.LongContext.OutputPerMTok = p.OutputPerMTok
		}
		fam.fill(&p.LongContext)
	}
	p.ImplicitCacheWrite = fam == familyOpenAI
	return p, err
}

var (
	perMTokScale = big.NewRat(1_000_000_000_000, 1) // USD/token -> micro-dollars per million tokens
	ratHalf      = big.NewRat(1, 2)
)

// perMTok converts a USD-per-token number, exactly as spelled in the source, to micro-dollars
// per million tokens (x 1e12), rounded half-up. An absent number is 0.
func perMTok(n json.Number) (int64, error) {
	if n == "" {
		return 0, nil
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return 0, fmt.Errorf("price %q is not a number", n)
	}
	if r.Sign() < 0 {
		return 0, fmt.Errorf("price %q is negative", n)
	}
	r.Mul(r, perMTokScale)
	return roundRat(r)
}

// tokens converts a token count (possibly spelled 1e6) to an int64.
func tokens(n json.Number) (int64, error) {
	if n == "" {
		return 0, nil
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok || r.Sign() < 0 {
		return 0, fmt.Errorf("token count %q is not a non-negative number", n)
	}
	return roundRat(r)
}

func roundRat(r *big.Rat) (int64, error) {
	r.Add(r, ratHalf)
	q := new(big.Int).Quo(r.Num(), r.Denom()) // floor for non-negative values
	if !q.IsInt64() {
		return 0, fmt.Errorf("value %s does not fit in int64", r.FloatString(0))
	}
	return q.Int64(), nil
}

// family selects the rules for rates a price source leaves out.
type family uint8

const (
	familyAnthropic family = iota + 1
	familyOpenAI
)

// fill applies the missing-rate rules. A zero rate counts as absent.
//
// Anthropic (anthropic.com/pricing, "Prompt caching" multipliers, also applied by Bedrock):
// 5-minute cache write = 1.25 x input, 1-hour cache write = 2 x input, cache read = 0.1 x
// input. A 1-hour rate outside [5-minute rate, 2 x input] contradicts those published
// multipliers (the seed carries 6e-06 for claude-3-haiku and claude-3-opus) and is replaced
// by 2 x input.
//
// OpenAI (platform.openai.com/docs/guides/prompt-caching): caching is automatic and writes
// cost the normal input rate; cached input is billed at a discount that PostHog ingestion
// assumes to be 0.5 x input when its table has none
// (docs/events.md "How ingestion reads token counts"). So:
// cache read = 0.5 x input, cache write (5m and 1h) = input.
func (f family) fill(r *Rates) {
	in := r.InputPerMTok
	switch f {
	case familyAnthropic:
		if r.CacheWrite5mPerMTok == 0 {
			r.CacheWrite5mPerMTok = (5*in + 2) / 4 // 1.25x, half-up
		}
		if r.CacheWrite1hPerMTok == 0 || r.CacheWrite1hPerMTok < r.CacheWrite5mPerMTok || r.CacheWrite1hPerMTok > 2*in {
			r.CacheWrite1hPerMTok = 2 * in
		}
		if r.CacheReadPerMTok == 0 {
			r.CacheReadPerMTok = (in + 5) / 10 // 0.1x, half-up
		}
	case familyOpenAI:
		if r.CacheReadPerMTok == 0 {
			r.CacheReadPerMTok = (in + 1) / 2 // 0.5x, half-up
		}
		if r.CacheWrite5mPerMTok == 0 {
			r.CacheWrite5mPerMTok = in
		}
		if r.CacheWrite1hPerMTok == 0 {
			r.CacheWrite1hPerMTok = r.CacheWrite5mPerMTok
		}
	}
}

// seed is the parsed, immutable price map, shared by every Catalog.
type seed struct {
	anthropic group // litellm_provider anthropic, keyed by Anthropic API id
	openai    group // openai + text-completion-openai, keyed by OpenAI API id
	azure     group // azure, keyed without "azure/" ("gpt-4o", "eu/gpt-4o-2024-08-06"), plus OpenAI spellings
	bedrock   group // bedrock + bedrock_converse, keyed by the full key
	// bedrockBase maps an Anthropic API id to the Bedrock base model id of the same model
	// (from the seed's keys), e.g. claude-sonnet-4-5-20250929 ->
	// anthropic.claude-sonnet-4-5-20250929-v1:0.
	bedrockBase map[string]string
	// bedrockNewest maps an undated family name to the base id of its newest dated model.
	bedrockNewest map[string]string
}

// group is one provider's entries.
type group struct {
	byKey map[string]*entry
	// newest maps an undated family name to its newest dated, priced entry, for names like
	// "claude-3-7-sonnet-latest" or "claude-3-7-sonnet" that the seed lists only dated.
	newest map[string]*entry
}

type entry struct {
	key      string
	provider string // litellm_provider
	price    Price
}

func newSeed() *seed {
	mk := func() group { return group{byKey: map[string]*entry{}, newest: map[string]*entry{}} }
	return &seed{anthropic: mk(), openai: mk(), azure: mk(), bedrock: mk(),
		bedrockBase: map[string]string{}, bedrockNewest: map[string]string{}}
}

func (s *seed) add(key, provider, mode string, p Price) {
	e := &entry{key: key, provider: provider, price: p}
	switch provider {
	case "anthropic":
		s.anthropic.byKey[key] = e
	case "openai", "text-completion-openai":
		s.openai.byKey[key] = e
	case "azure":
		k, prefixed := strings.CutPrefix(key, "azure/")
		if _, dup := s.azure.byKey[k]; dup && !prefixed {
			return // "azure/<k>" is the canonical spelling and wins over a bare duplicate
		}
		s.azure.byKey[k] = e
	case "bedrock", "bedrock_converse":
		s.bedrock.byKey[key] = e
		if strings.Contains(key, "/") || strings.Contains(key, "@") {
			return // region-specific and Vertex-style keys are not base model ids
		}
		if geo, m, ok := ParseBedrockID(key); ok && geo == "" {
			if cur, ok := s.bedrockBase[m]; !ok || betterBase(key, provider, cur, s.bedrock.byKey[cur].provider) {
				s.bedrockBase[m] = key
			}
		}
	}
}

// betterBase prefers bedrock_converse keys, then the higher version.
func betterBase(key, provider, cur, curProvider string) bool {
	if (provider == "bedrock_converse") != (curProvider == "bedrock_converse") {
		return provider == "bedrock_converse"
	}
	return key > cur
}

// finish builds the derived indexes.
func (s *seed) finish() {
	// Lookups use OpenAI spelling: also key Azure's dotless names ("gpt-35-turbo-16k") by it,
	// unless the seed lists that spelling itself. Regional and deployment-type forms
	// ("eu/gpt-4o-2024-08-06") keep their sub-path and never match a plain name.
	for k, e := range s.azure.byKey {
		if c := Canonicalize(k); c != k && !strings.Contains(k, "/") {
			if _, ok := s.azure.byKey[c]; !ok {
				s.azure.byKey[c] = e
			}
		}
	}
	for _, g := range []*group{&s.anthropic, &s.openai, &s.azure} {
		for key, e := range g.byKey {
			if !e.price.Priced || !IsDated(key) {
				continue
			}
			fam := Undated(key)
			if cur := g.newest[fam]; cur == nil || key > cur.key {
				g.newest[fam] = e
			}
		}
	}
	newest := map[string]string{} // family -> newest dated Anthropic id
	for m := range s.bedrockBase {
		if !IsDated(m) {
			continue
		}
		if fam := Undated(m); m > newest[fam] {
			newest[fam] = m
		}
	}
	for fam, m := range newest {
		s.bedrockNewest[fam] = s.bedrockBase[m]
	}
}

// lookup finds a priced entry for name: the exact key, then the date-stripped key, then (for
// an undated or "-latest" name) the newest dated entry of that family.
func (g *group) lookup(name string) *entry {
	if name == "" {
		return nil
	}
	if e := g.byKey[name]; e != nil && e.price.Priced {
		return e
	}
	u := Undated(name)
	if u != name {
		if e := g.byKey[u]; e != nil && e.price.Priced {
			return e
		}
	}
	if !IsDated(name) {
		return g.newest[u]
	}
	return nil
}
