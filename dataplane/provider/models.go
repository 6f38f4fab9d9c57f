package provider

import (
	"github.com/posthog/llm-gateway/dataplane/catalog"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// MappedModel is the backend's modelMap entry for a canonical model, looked up by the exact
// name and then by its undated name (a map keyed "claude-sonnet-4-5" also serves
// "claude-sonnet-4-5-20250929"). Every adapter's UpstreamModel starts here. The rule lives in
// the catalog (catalog.MappedModel), whose coverage check reads modelMaps the same way.
func MappedModel(b *snapshot.Backend, canonical string) (string, bool) {
	return catalog.MappedModel(b, canonical)
}
