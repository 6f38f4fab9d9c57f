// Package catalog is the gateway's one model catalog: prices, context windows and the model
// names each provider uses. Budget admission, the recorded $ai_generation event and the
// /v1/models listing all read it (through dataplane/cost for money).
//
// The seed is the LiteLLM price map (data/model_prices.json, MIT, see data/README.md),
// embedded and parsed once on first use. Per-backend prices from the snapshot override it
// (WithOverrides). Prices are integers: micro-dollars per million tokens (USD per token x
// 1e12), like snapshot.ModelPrice. Lookups are by (provider, model), never by model id alone:
// the same id has different prices at different providers.
package catalog

import (
	"fmt"
	"strings"
	"sync"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Rates are per-token prices in micro-dollars per million tokens (USD/token x 1e12).
type Rates struct {
	InputPerMTok        int64
	OutputPerMTok       int64
	CacheReadPerMTok    int64
	CacheWrite5mPerMTok int64
	CacheWrite1hPerMTok int64
}

// Price is everything the cost function needs for one model at one provider. Missing cache
// rates have already been filled by the provider's rule (see docs/catalog.md), so every rate
// of a priced Price is usable as is.
type Price struct {
	Rates
	// LongContextAbove > 0 means a call whose prompt has more than this many tokens is billed
	// entirely at LongContext (Anthropic "above 200k", OpenAI "above 272k").
	LongContextAbove int64
	LongContext      Rates
	// ImplicitCacheWrite: the provider may write to its prompt cache without the request
	// asking (OpenAI automatic caching), so admission must assume cache-write rates.
	ImplicitCacheWrite bool
	// Capabilities are the seed entry's (an override takes the seed's for its model).
	Capabilities Capabilities

	ContextWindow   int64
	MaxOutputTokens int64
	Mode            string // chat, responses, completion, embedding, ... ("" for overrides)

	// Model is the catalog key the price came from ("us.anthropic.claude-…", "azure/gpt-4o",
	// "gpt-4o") or the overridden model name.
	Model string
	// Source says where the price came from: "litellm:<litellm_provider>" or
	// "override:<backend>".
	Source string
	// Priced is false for the zero Price: the model has no known price. Such a call is
	// "unpriced", never $0.
	Priced bool
}

// Catalog answers price and model questions. A Catalog is immutable and safe for concurrent
// use; WithOverrides returns a new one that shares the parsed seed.
type Catalog struct {
	seed *seed
	// overrides: backend name -> model -> price.
	overrides map[string]map[string]Price
	// overrideModels: model -> price from the first backend (by name) that overrides it,
	// for Describe of models the seed does not know.
	overrideModels map[string]overrideModel
}

type overrideModel struct {
	price  Price
	vendor string
}

var (
	defaultOnce sync.Once
	defaultCat  *Catalog
	defaultErr  error
)

// Default returns the catalog of the embedded seed with no overrides. The seed is parsed on
// the first call. It panics if the embedded seed is corrupt, which the package tests rule out.
func Default() *Catalog {
	defaultOnce.Do(func() {
		s, err := parseSeed(seedJSON)
		if err != nil {
			defaultErr = fmt.Errorf("parse embedded price seed: %w", err)
			return
		}
		defaultCat = &Catalog{seed: s}
	})
	if defaultErr != nil {
		panic(defaultErr)
	}
	return defaultCat
}

// Parse builds a catalog from a LiteLLM-format price map (used by tests and by the refresh
// tool to validate a new seed).
func Parse(data []byte) (*Catalog, error) {
	s, err := parseSeed(data)
	if err != nil {
		return nil, err
	}
	return &Catalog{seed: s}, nil
}

// WithOverrides returns a catalog whose per-backend prices (snapshot.Backend.Prices) win over
// the seed for calls to that backend (see BackendPrice). Building it costs one small map per
// backend with prices; the seed is shared.
func (c *Catalog) WithOverrides(backends []snapshot.Backend) *Catalog {
	out := &Catalog{seed: c.seed}
	for i := range backends {
		b := &backends[i]
		if len(b.Prices) == 0 {
			continue
		}
		if out.overrides == nil {
			out.overrides = map[string]map[string]Price{}
			out.overrideModels = map[string]overrideModel{}
		}
		fam := familyOf(b.Provider)
		m := make(map[string]Price, len(b.Prices))
		for _, mp := range b.Prices {
			p := Price{
				Rates: Rates{
					InputPerMTok:        mp.InputPerMTok,
					OutputPerMTok:       mp.OutputPerMTok,
					CacheReadPerMTok:    mp.CacheReadPerMTok,
					CacheWrite5mPerMTok: mp.CacheWrite5mPerMTok,
					CacheWrite1hPerMTok: mp.CacheWrite1hPerMTok,
				},
				ImplicitCacheWrite: fam == familyOpenAI,
				ContextWindow:      mp.ContextWindow,
				MaxOutputTokens:    mp.MaxOutputTokens,
				Model:              mp.Model,
				Source:             "override:" + b.Name,
				Priced:             true,
			}
			fam.fill(&p.Rates)
			if seedP, ok := c.seedPrice(b.Provider, "", mp.Model, ""); ok {
				if p.ContextWindow == 0 {
					p.ContextWindow = seedP.ContextWindow
				}
				if p.MaxOutputTokens == 0 {
					p.MaxOutputTokens = seedP.MaxOutputTokens
				}
				p.Mode = seedP.Mode
				p.Capabilities = seedP.Capabilities
			}
			m[mp.Model] = p
			if _, ok := out.overrideModels[mp.Model]; !ok {
				out.overrideModels[mp.Model] = overrideModel{price: p, vendor: vendorOf(b.Provider)}
			}
		}
		out.overrides[b.Name] = m
	}
	return out
}

func familyOf(p snapshot.Provider) family {
	switch snapshot.ShapeOf(p) {
	case snapshot.ShapeAnthropic:
		return familyAnthropic
	case snapshot.ShapeOpenAI:
		return familyOpenAI
	}
	return 0
}

// BackendPrice is the price of a call served by backend b: the backend's override for the
// model (canonical name, then the provider model id, then the undated canonical name) if it
// has one, else the seed price for b.Provider (see Price); for Bedrock the backend's region
// is tried first ("bedrock/us-gov-west-1/<id>" entries).
func (c *Catalog) BackendPrice(b *snapshot.Backend, canonical, providerModelID string) (Price, bool) {
	if b == nil {
		return Price{}, false
	}
	if m := c.overrides[b.Name]; m != nil {
		for _, name := range [...]string{canonical, providerModelID, Canonicalize(providerModelID), Undated(canonical)} {
			if p, ok := m[name]; ok && name != "" {
				return p, true
			}
		}
	}
	return c.seedPrice(b.Provider, b.Region, canonical, providerModelID)
}

// Price is the seed price of a model at a provider, ignoring overrides (use BackendPrice for a
// call to a known backend). canonical is the model as the gateway resolved it
// ("claude-sonnet-4-5"); providerModelID is what the provider was asked for or says it served
// ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", an Azure response model
// "gpt-4o-2024-11-20"); either may be empty.
//
//   - Bedrock: the bedrock / bedrock_converse entry of providerModelID (geo profiles carry
//     their regional uplift), then its base model id (geo prefix removed), then the base id of
//     canonical, then the Anthropic price.
//   - AzureOpenAI: the azure/<model> entry of providerModelID then canonical, then the OpenAI
//     price.
//   - OpenAI, Anthropic: providerModelID then canonical, each exact, then date-stripped, then
//     (for undated and -latest names) the newest dated entry of the family.
func (c *Catalog) Price(provider snapshot.Provider, canonical, providerModelID string) (Price, bool) {
	return c.seedPrice(provider, "", canonical, providerModelID)
}

func (c *Catalog) seedPrice(provider snapshot.Provider, region, canonical, providerModelID string) (Price, bool) {
	s := c.seed
	names := [2]string{Canonicalize(providerModelID), Canonicalize(canonical)}
	switch provider {
	case snapshot.ProviderAnthropic:
		return s.anthropic.find(names[:])
	case snapshot.ProviderOpenAI:
		return s.openai.find(names[:])
	case snapshot.ProviderAzureOpenAI:
		if p, ok := s.azure.find(names[:]); ok {
			return p, true
		}
		return s.openai.find(names[:])
	case snapshot.ProviderBedrock:
		if p, ok := s.bedrockPrice(region, providerModelID, canonical); ok {
			return p, true
		}
		return s.anthropic.find(names[:])
	}
	return Price{}, false
}

func (g *group) find(names []string) (Price, bool) {
	for _, n := range names {
		if e := g.lookup(n); e != nil {
			return e.price, true
		}
	}
	return Price{}, false
}

// bedrockPrice looks up the Bedrock entries for a provider model id (or ARN) and then for the
// base model of canonical.
func (s *seed) bedrockPrice(region, providerModelID, canonical string) (Price, bool) {
	try := func(key string) (Price, bool) {
		if e := s.bedrock.byKey[key]; e != nil && e.price.Priced {
			return e.price, true
		}
		return Price{}, false
	}
	id := strings.TrimSpace(providerModelID)
	if strings.HasPrefix(id, "arn:") {
		id = id[strings.LastIndexByte(id, '/')+1:]
	} else if i := strings.LastIndexByte(id, '/'); i >= 0 && strings.HasPrefix(id, "bedrock") {
		id = id[i+1:]
	}
	geo, model, isAnthropic := ParseBedrockID(id)
	if id != "" {
		if region != "" {
			if p, ok := try("bedrock/" + region + "/" + id); ok {
				return p, true
			}
		}
		if p, ok := try(id); ok {
			return p, true
		}
		if isAnthropic && geo != "" {
			if p, ok := try(id[len(geo)+1:]); ok {
				return p, true
			}
		}
	}
	for _, m := range [...]string{model, Canonicalize(canonical)} {
		if m == "" {
			continue
		}
		if base, ok := s.bedrockBaseFor(m); ok {
			if region != "" {
				if p, ok := try("bedrock/" + region + "/" + base); ok {
					return p, true
				}
			}
			if geo != "" {
				if p, ok := try(geo + "." + base); ok {
					return p, true
				}
			}
			if p, ok := try(base); ok {
				return p, true
			}
		}
	}
	return Price{}, false
}

// bedrockBaseFor finds the Bedrock base model id of an Anthropic model like group.lookup:
// exact, then date-stripped, then (for an undated or -latest name) the newest dated model.
func (s *seed) bedrockBaseFor(model string) (string, bool) {
	if b, ok := s.bedrockBase[model]; ok {
		return b, true
	}
	fam := Undated(model)
	if b, ok := s.bedrockBase[fam]; ok {
		return b, true
	}
	if IsDated(model) {
		return "", false
	}
	b, ok := s.bedrockNewest[fam]
	return b, ok
}

// BedrockModelID derives the Bedrock model id for a canonical Anthropic model from the
// seed's Bedrock keys, for a backend whose modelMap has no entry: the base model id
// ("anthropic.claude-sonnet-4-5-20250929-v1:0") or, with geoPrefix ("us", "eu", "global", ...;
// a trailing dot is accepted), the cross-region inference profile id
// ("us.anthropic.claude-sonnet-4-5-20250929-v1:0"). An undated or -latest name maps to the
// newest dated model the seed knows. ok is false when the seed knows no Bedrock id for it.
func BedrockModelID(canonical, geoPrefix string) (string, bool) {
	return Default().BedrockModelID(canonical, geoPrefix)
}

// BedrockModelID is the method form of the package function, on this catalog's seed.
func (c *Catalog) BedrockModelID(canonical, geoPrefix string) (string, bool) {
	base, ok := c.seed.bedrockBaseFor(Canonicalize(canonical))
	if !ok {
		return "", false
	}
	geo := strings.TrimSuffix(strings.TrimSpace(geoPrefix), ".")
	if geo == "" {
		return base, true
	}
	return geo + "." + base, true
}

// Known reports whether the catalog knows name (after Canonicalize) as a model of the given
// wire shape: an Anthropic API id (from the anthropic entries or a Bedrock base model) for
// the Anthropic shape, an OpenAI API id (openai or azure entries) for the OpenAI shape. Only
// exact names count, not date-stripped or family matches.
func (c *Catalog) Known(shape snapshot.Shape, name string) bool {
	n := Canonicalize(name)
	s := c.seed
	switch shape {
	case snapshot.ShapeAnthropic:
		if e := s.anthropic.byKey[n]; e != nil && e.price.Priced {
			return true
		}
		_, ok := s.bedrockBase[n]
		return ok
	case snapshot.ShapeOpenAI:
		if e := s.openai.byKey[n]; e != nil && e.price.Priced {
			return true
		}
		e := s.azure.byKey[n]
		return e != nil && e.price.Priced
	}
	return false
}
