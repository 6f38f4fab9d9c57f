package catalog

import "github.com/posthog/llm-gateway/dataplane/snapshot"

// ModelInfo describes one model for the GET /v1/models listing (the AI Observability
// Playground reads it). Prices are USD per million tokens.
type ModelInfo struct {
	// ID is the model name as the gateway serves it (the name passed to Describe).
	ID string `json:"id"`
	// Provider is the model's vendor in lowercase: "anthropic" or "openai".
	Provider        string `json:"provider"`
	Mode            string `json:"mode,omitempty"`
	ContextWindow   int64  `json:"context_window,omitempty"`
	MaxOutputTokens int64  `json:"max_output_tokens,omitempty"`
	// Pricing is nil when the catalog knows the model but has no token price for it.
	Pricing *ModelPricing `json:"pricing,omitempty"`
	// Capabilities come from the seed entry's supports_* flags (see Capabilities).
	Capabilities ModelCapabilities `json:"capabilities"`
}

// ModelPricing is a price in USD per million tokens, as GET /v1/models lists it.
type ModelPricing struct {
	Input        float64 `json:"input"`
	Output       float64 `json:"output"`
	CacheRead    float64 `json:"cache_read"`
	CacheWrite5m float64 `json:"cache_write_5m"`
	CacheWrite1h float64 `json:"cache_write_1h"`
	// LongContext is the tier that bills the whole call when its prompt has more than
	// LongContext.AboveTokens tokens; nil when the model has none.
	LongContext *LongContextPricing `json:"long_context,omitempty"`
}

// LongContextPricing is a long-context tier in USD per million tokens.
type LongContextPricing struct {
	AboveTokens  int64   `json:"above_tokens"`
	Input        float64 `json:"input"`
	Output       float64 `json:"output"`
	CacheRead    float64 `json:"cache_read"`
	CacheWrite5m float64 `json:"cache_write_5m"`
	CacheWrite1h float64 `json:"cache_write_1h"`
}

// PricingOf converts a price to USD per million tokens; nil when p is not priced.
func PricingOf(p Price) *ModelPricing {
	if !p.Priced {
		return nil
	}
	out := &ModelPricing{
		Input:        USDPerMTok(p.InputPerMTok),
		Output:       USDPerMTok(p.OutputPerMTok),
		CacheRead:    USDPerMTok(p.CacheReadPerMTok),
		CacheWrite5m: USDPerMTok(p.CacheWrite5mPerMTok),
		CacheWrite1h: USDPerMTok(p.CacheWrite1hPerMTok),
	}
	if p.LongContextAbove > 0 {
		lc := p.LongContext
		out.LongContext = &LongContextPricing{
			AboveTokens:  p.LongContextAbove,
			Input:        USDPerMTok(lc.InputPerMTok),
			Output:       USDPerMTok(lc.OutputPerMTok),
			CacheRead:    USDPerMTok(lc.CacheReadPerMTok),
			CacheWrite5m: USDPerMTok(lc.CacheWrite5mPerMTok),
			CacheWrite1h: USDPerMTok(lc.CacheWrite1hPerMTok),
		}
	}
	return out
}

// Describe returns what the catalog knows about a model the gateway serves: its vendor's
// direct price (Anthropic API or OpenAI API; a model the seed lists only on Bedrock or Azure
// is described from there), context window, output limit and capabilities. Names are normalized as by
// Canonicalize and matched like Price (exact, date-stripped, newest of family). A model the
// seed does not know is described from the first backend (by name) that overrides its price.
// ok is false when nothing is known; the returned ModelInfo then carries only the ID.
func (c *Catalog) Describe(model string) (ModelInfo, bool) {
	info := ModelInfo{ID: model}
	names := []string{Canonicalize(model)}
	s := c.seed
	p, ok := s.anthropic.find(names)
	info.Provider = "anthropic"
	if !ok {
		p, ok = s.openai.find(names)
		info.Provider = "openai"
	}
	if !ok {
		p, ok = s.bedrockPrice("", "", names[0])
		info.Provider = "anthropic"
	}
	if !ok {
		p, ok = s.azure.find(names)
		info.Provider = "openai"
	}
	if !ok {
		o, found := c.overrideModels[model]
		if !found {
			o, found = c.overrideModels[names[0]]
		}
		if !found {
			return ModelInfo{ID: model}, false
		}
		p, info.Provider = o.price, o.vendor
	}
	info.Mode = p.Mode
	info.ContextWindow = p.ContextWindow
	info.MaxOutputTokens = p.MaxOutputTokens
	info.Pricing = PricingOf(p)
	info.Capabilities = p.Capabilities.Describe()
	return info, true
}

// USDPerMTok converts micro-dollars per million tokens to USD per million tokens.
func USDPerMTok(microsPerMTok int64) float64 { return float64(microsPerMTok) / 1e6 }

// vendorOf is the lowercase vendor of the models a backend provider serves: Anthropic and
// Bedrock serve Anthropic models, OpenAI and Azure OpenAI serve OpenAI models.
func vendorOf(p snapshot.Provider) string {
	switch snapshot.ShapeOf(p) {
	case snapshot.ShapeAnthropic:
		return "anthropic"
	case snapshot.ShapeOpenAI:
		return "openai"
	}
	return ""
}
