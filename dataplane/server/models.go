package server

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// modelEntry is one model of GET /v1/models: the OpenAI list item (id, object, created,
// owned_by) plus what the Anthropic SDK reads (type, display_name, created_at) and the
// catalog's description (provider, context window, max output, prices in USD per million
// tokens), so that both SDKs and the AI Observability Playground can read the same body.
type modelEntry struct {
	ID              string        `json:"id"`
	Object          string        `json:"object"`
	Created         int64         `json:"created"`
	OwnedBy         string        `json:"owned_by"`
	Type            string        `json:"type"`
	DisplayName     string        `json:"display_name"`
	CreatedAt       string        `json:"created_at"`
	Provider        string        `json:"provider,omitempty"`
	Shape           string        `json:"shape"`
	ContextWindow   int64         `json:"context_window,omitempty"`
	MaxOutputTokens int64         `json:"max_output_tokens,omitempty"`
	Pricing         *modelPricing `json:"pricing,omitempty"`
}

type modelPricing struct {
	Input        float64 `json:"input"`
	Output       float64 `json:"output"`
	CacheRead    float64 `json:"cache_read"`
	CacheWrite5m float64 `json:"cache_write_5m"`
	CacheWrite1h float64 `json:"cache_write_1h"`
}

type modelList struct {
	Object  string       `json:"object"`
	Data    []modelEntry `json:"data"`
	HasMore bool         `json:"has_more"`
	FirstID *string      `json:"first_id"`
	LastID  *string      `json:"last_id"`
}

// modelsBody renders the GET /v1/models body of a runtime once, when it is built.
func (g *Gateway) modelsBody(rt *Runtime) ([]byte, error) {
	created := rt.builtAt.Unix()
	createdAt := rt.builtAt.UTC().Format(time.RFC3339)
	list := modelList{Object: "list", Data: []modelEntry{}}
	for _, shape := range []snapshot.Shape{snapshot.ShapeOpenAI, snapshot.ShapeAnthropic} {
		for _, id := range rt.routes.ModelsOf(shape) {
			e := modelEntry{ID: id, Object: "model", Created: created, OwnedBy: "llm-gateway", Type: "model",
				DisplayName: id, CreatedAt: createdAt, Shape: string(shape)}
			canonical := id
			if c, ok := rt.routes.Target(shape, id); ok {
				canonical = c // an alias is described by its target
			}
			if info, ok := rt.catalog.Describe(canonical); ok {
				e.Provider, e.OwnedBy = info.Provider, info.Provider
				e.ContextWindow, e.MaxOutputTokens = info.ContextWindow, info.MaxOutputTokens
				if p := info.Pricing; p != nil {
					e.Pricing = &modelPricing{Input: p.Input, Output: p.Output, CacheRead: p.CacheRead,
						CacheWrite5m: p.CacheWrite5m, CacheWrite1h: p.CacheWrite1h}
				}
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
