// Package adapters builds the provider.Adapter of a snapshot backend. It is the one place that
// knows every provider package (they cannot import each other's parent without a cycle).
package adapters

import (
	"fmt"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/anthropic"
	"github.com/posthog/llm-gateway/dataplane/provider/azure"
	"github.com/posthog/llm-gateway/dataplane/provider/bedrock"
	"github.com/posthog/llm-gateway/dataplane/provider/openai"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Options are the adapter settings (clock, stream event bound).
type Options = provider.Options

// New returns the adapter for b's provider. It fails on an unknown provider or a backend that
// lacks what its provider needs (credentials, region, a valid endpoint).
func New(b *snapshot.Backend, opts Options) (provider.Adapter, error) {
	switch b.Provider {
	case snapshot.ProviderOpenAI:
		return openai.New(b, opts)
	case snapshot.ProviderAnthropic:
		return anthropic.New(b, opts)
	case snapshot.ProviderBedrock:
		return bedrock.New(b, opts)
	case snapshot.ProviderAzureOpenAI:
		return azure.New(b, opts)
	}
	return nil, fmt.Errorf("backend %s: unsupported provider %q", b.Name, b.Provider)
}
