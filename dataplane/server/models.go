package server

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/posthog/llm-gateway/dataplane/catalog"
	"github.com/posthog/llm-gateway/dataplane/route"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// modelEntry is one model of GET /v1/models, one body that both SDKs and the AI Observability
// Playground read (docs/gateway.md "The model list"):
//
//   - the OpenAI list item: id, object, created, owned_by;
//   - what the Anthropic SDK reads: type, display_name, created_at, max_input_tokens,
//     max_tokens, and capabilities in the shape of Anthropic's Models API ({"supported": b});
//   - the catalog's description: provider (the vendor), mode, context window, max output,
//     prices in USD per million tokens;
//   - the route that serves it: every backend in failover order with its provider, upstream
//     model id and price there, and the route's failover policy.
type modelEntry struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`

	Type        string `json:"type"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
	// MaxInputTokens is the context window; MaxTokens the largest output a call through the
	// gateway can ask for (the catalog's max output, clamped by the route's limit).
	MaxInputTokens int64              `json:"max_input_tokens,omitempty"`
	MaxTokens      int64              `json:"max_tokens,omitempty"`
	Capabilities   *modelCapabilities `json:"capabilities,omitempty"`

	Provider        string                `json:"provider,omitempty"`
	Shape           string                `json:"shape"`
	Mode            string                `json:"mode,omitempty"`
	ContextWindow   int64                 `json:"context_window,omitempty"`
	MaxOutputTokens int64                 `json:"max_output_tokens,omitempty"`
	Pricing         *catalog.ModelPricing `json:"pricing,omitempty"`

	Route   string `json:"route"`
	AliasOf string `json:"alias_of,omitempty"`
	// Priced: every backend of the route has a price for the model (see modelBackend.Pricing).
	Priced bool `json:"priced"`
	// Providers are the providers of the route's backends, each once, in failover order.
	Providers []string       `json:"providers"`
	Backends  []modelBackend `json:"backends"`
	Failover  modelFailover  `json:"failover"`
}

// capability is one capability as Anthropic's Models API spells it.
type capability struct {
	Supported bool `json:"supported"`
}

// modelCapabilities names the catalog's capabilities like Anthropic's Models API where it has
// them (image_input, structured_outputs, thinking), so that the Anthropic SDK reads them.
type modelCapabilities struct {
	Streaming         capability `json:"streaming"`
	Tools             capability `json:"tools"`
	ImageInput        capability `json:"image_input"`
	StructuredOutputs capability `json:"structured_outputs"`
	Thinking          capability `json:"thinking"`
	PromptCaching     capability `json:"prompt_caching"`
}

// modelBackend is one backend of the model's route, as a call for the model would use it.
type modelBackend struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	Priority int    `json:"priority"`
	Weight   int    `json:"weight"`
	// UpstreamModel is the model id sent to this backend (its modelMap entry, an inference
	// profile, a deployment, or the canonical name).
	UpstreamModel string `json:"upstream_model"`
	// Pricing is the price of a call served here (the backend's override, else the seed for
	// its provider); null when the catalog has none: such a call is unpriced.
	Pricing     *catalog.ModelPricing `json:"pricing"`
	PriceSource string                `json:"price_source,omitempty"`
}

// modelFailover is what the route does when a backend fails.
type modelFailover struct {
	// On lists the failure classes that move a call to the next backend.
	On []string `json:"on"`
	// MaxAttempts bounds the backends tried per call (skipped ones do not count).
	MaxAttempts     int   `json:"max_attempts"`
	PerTryTimeoutMs int64 `json:"per_try_timeout_ms,omitempty"`
	// Targets are the backends of the route's lower priorities, in order: where a call goes
	// when the first priority group cannot serve it.
	Targets []string `json:"targets"`
}

type modelList struct {
	Object  string       `json:"object"`
	Data    []modelEntry `json:"data"`
	HasMore bool         `json:"has_more"`
	FirstID *string      `json:"first_id"`
	LastID  *string      `json:"last_id"`
}

// modelsBody renders the GET /v1/models body of a runtime once, when it is built (off the
// request path: a request writes the bytes as they are).
func (g *Gateway) modelsBody(rt *Runtime) ([]byte, error) {
	created := rt.builtAt.Unix()
	createdAt := rt.builtAt.UTC().Format(time.RFC3339)
	list := modelList{Object: "list", Data: []modelEntry{}}
	for _, shape := range []snapshot.Shape{snapshot.ShapeOpenAI, snapshot.ShapeAnthropic} {
		for _, id := range rt.routes.ModelsOf(shape) {
			m, err := rt.routes.Resolve(shape, id)
			if err != nil {
				return nil, fmt.Errorf("model %q: %w", id, err) // ModelsOf lists only exact names
			}
			e := modelEntry{ID: id, Object: "model", Created: created, OwnedBy: "llm-gateway", Type: "model",
				DisplayName: id, CreatedAt: createdAt, Shape: string(shape), Route: m.Route.Name}
			if m.By == route.ByAlias {
				e.AliasOf = m.Canonical // an alias is described by its target
			}
			e.describeRoute(rt, m)
			if info, ok := describe(rt.catalog, m.Canonical, e.Backends); ok {
				e.Provider, e.OwnedBy, e.Mode = info.Provider, info.Provider, info.Mode
				e.ContextWindow, e.MaxOutputTokens, e.Pricing = info.ContextWindow, info.MaxOutputTokens, info.Pricing
				c := info.Capabilities
				e.Capabilities = &modelCapabilities{
					Streaming: capability{c.Streaming}, Tools: capability{c.Tools}, ImageInput: capability{c.Vision},
					StructuredOutputs: capability{c.StructuredOutputs}, Thinking: capability{c.Reasoning},
					PromptCaching: capability{c.PromptCaching},
				}
			}
			e.MaxInputTokens, e.MaxTokens = e.ContextWindow, e.MaxOutputTokens
			if lim := m.Route.Limits.MaxMaxTokens; lim > 0 && (e.MaxTokens == 0 || lim < e.MaxTokens) {
				e.MaxTokens = lim
			}
			list.Data = append(list.Data, e)
		}
	}
	if n := len(list.Data); n > 0 {
		list.FirstID, list.LastID = &list.Data[0].ID, &list.Data[n-1].ID
	}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("encode model list: %w", err)
	}
	return b, nil
}

// describe is the catalog's description of a model; a name the catalog does not know (an
// operator's own name that backends map in their modelMap) is described by the first
// backend's upstream model id the catalog knows.
func describe(cat *catalog.Catalog, canonical string, backends []modelBackend) (catalog.ModelInfo, bool) {
	if info, ok := cat.Describe(canonical); ok {
		return info, true
	}
	for _, b := range backends {
		if b.UpstreamModel == canonical {
			continue
		}
		if info, ok := cat.Describe(b.UpstreamModel); ok {
			info.ID = canonical
			return info, true
		}
	}
	return catalog.ModelInfo{}, false
}

// describeRoute fills the backends, providers and failover of the model's route, each backend
// as a call for the model would meet it: the upstream model id and the price there.
func (e *modelEntry) describeRoute(rt *Runtime, m route.Match) {
	r := m.Route
	ts := rt.targets[r.Name]
	e.Providers, e.Backends = []string{}, make([]modelBackend, 0, len(ts))
	e.Failover = modelFailover{On: r.Failover.On, MaxAttempts: r.Failover.MaxAttempts,
		PerTryTimeoutMs: r.Failover.PerTryTimeoutMs, Targets: []string{}}
	if e.Failover.On == nil {
		e.Failover.On = []string{}
	}
	e.Priced = len(ts) > 0
	seen := map[string]bool{}
	for _, t := range ts {
		be := t.be
		upstream := be.adapter.UpstreamModel(m.Canonical, m.Requested)
		mb := modelBackend{Name: be.b.Name, Provider: be.adapter.ProviderName(), Priority: t.priority, Weight: t.weight,
			UpstreamModel: upstream}
		if p, ok := rt.catalog.BackendPrice(be.b, m.Canonical, upstream); ok && p.Priced {
			mb.Pricing, mb.PriceSource = catalog.PricingOf(p), p.Source
		} else {
			e.Priced = false
		}
		e.Backends = append(e.Backends, mb)
		if !seen[mb.Provider] {
			seen[mb.Provider] = true
			e.Providers = append(e.Providers, mb.Provider)
		}
		if t.priority > ts[0].priority {
			e.Failover.Targets = append(e.Failover.Targets, be.b.Name)
		}
	}
}
