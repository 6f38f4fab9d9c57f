package catalog

import (
	"slices"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// MappedModel is the backend's modelMap entry for a canonical model, looked up by the exact
// name and then by its undated name (a map keyed "claude-sonnet-4-5" also serves
// "claude-sonnet-4-5-20250929"). Every provider adapter's UpstreamModel starts here, and so
// does the coverage check (Unpriced), so that both read a modelMap the same way.
func MappedModel(b *snapshot.Backend, canonical string) (string, bool) {
	if m := b.ModelMap[canonical]; m != "" {
		return m, true
	}
	if u := Undated(canonical); u != canonical {
		if m := b.ModelMap[u]; m != "" {
			return m, true
		}
	}
	return "", false
}

// UnpricedModel is a model a route serves by name that the catalog cannot price for calls
// served by some of the route's backends: such calls are unpriced (docs/catalog.md).
type UnpricedModel struct {
	// Model is a name of the route's models or the target of one of its aliases.
	Model string `json:"model"`
	// Backends are the route's backends that have no price for it, in the route's order.
	Backends []string `json:"backends"`
}

// RoutedModels returns the models a route serves by name: its models and the targets of its
// aliases, each once, sorted. Prefix-claimed models cannot be listed.
func RoutedModels(r *snapshot.Route) []string {
	out := slices.Clone(r.Models)
	for _, to := range r.Aliases {
		out = append(out, to)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Unpriced checks the catalog's coverage of a route: for every model the route serves by name
// (RoutedModels) and every backend of the route, whether BackendPrice finds a price for a
// call that backend serves (its pricing override, else the seed for its provider, looked up
// with the model and the backend's modelMap entry for it). backend returns the snapshot
// backend of a name (nil: skipped). It returns the models with at least one backend that
// cannot price them, sorted by model; nil when the catalog covers the route. The catalog
// must carry the snapshot's overrides (WithOverrides) for them to count.
func (c *Catalog) Unpriced(r *snapshot.Route, backend func(name string) *snapshot.Backend) []UnpricedModel {
	var out []UnpricedModel
	for _, m := range RoutedModels(r) {
		var missing []string
		for _, rb := range r.Backends {
			b := backend(rb.Backend)
			if b == nil {
				continue
			}
			mapped, _ := MappedModel(b, m)
			if p, ok := c.BackendPrice(b, m, mapped); !ok || !p.Priced {
				missing = append(missing, b.Name)
			}
		}
		if len(missing) > 0 {
			out = append(out, UnpricedModel{Model: m, Backends: missing})
		}
	}
	return out
}
