package catalog

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

func TestCapabilitiesFromSeed(t *testing.T) {
	all := ModelCapabilities{Streaming: true, Tools: true, Vision: true, StructuredOutputs: true, Reasoning: true, PromptCaching: true}
	for _, tc := range []struct {
		model string
		want  ModelCapabilities
	}{
		{"claude-sonnet-4-5", all},
		{"claude-3-haiku-20240307", ModelCapabilities{Streaming: true, Tools: true, Vision: true, StructuredOutputs: true, PromptCaching: true}},
		{"gpt-4o", ModelCapabilities{Streaming: true, Tools: true, Vision: true, StructuredOutputs: true, PromptCaching: true}},
		{"o3", all},
		{"gpt-3.5-turbo", ModelCapabilities{Streaming: true, Tools: true, PromptCaching: true}},
		// supports_native_streaming: false
		{"o1-pro", ModelCapabilities{Tools: true, Vision: true, StructuredOutputs: true, Reasoning: true, PromptCaching: true}},
		// an embedding model streams nothing and says nothing
		{"text-embedding-3-small", ModelCapabilities{}},
		// only on Bedrock in the seed: described from the Bedrock entry
		{"claude-3-5-sonnet-20241022", ModelCapabilities{Streaming: true, Tools: true, Vision: true, StructuredOutputs: true, PromptCaching: true}},
	} {
		t.Run(tc.model, func(t *testing.T) {
			info, ok := Default().Describe(tc.model)
			require.True(t, ok)
			require.Equal(t, tc.want, info.Capabilities)
		})
	}
}

func TestCapabilitiesRules(t *testing.T) {
	c, err := Parse([]byte(`{
		"chat-silent":     {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
		"chat-nostream":   {"litellm_provider": "openai", "mode": "responses", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
			"supports_native_streaming": false, "supports_function_calling": true},
		"chat-false":      {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
			"supports_vision": false, "supports_reasoning": true, "supports_response_schema": true, "supports_prompt_caching": false},
		"embed":           {"litellm_provider": "openai", "mode": "embedding", "input_cost_per_token": 1e-6, "output_cost_per_token": 0,
			"supports_native_streaming": true}
	}`))
	require.NoError(t, err)
	for _, tc := range []struct {
		model string
		want  Capabilities
	}{
		{"chat-silent", CapStreaming},
		{"chat-nostream", CapTools},
		{"chat-false", CapStreaming | CapReasoning | CapStructuredOutputs},
		{"embed", CapStreaming}, // an explicit flag wins over the mode
	} {
		p, ok := c.Price(snapshot.ProviderOpenAI, tc.model, "")
		require.True(t, ok, tc.model)
		require.Equal(t, tc.want, p.Capabilities, tc.model)
	}
	require.True(t, (CapTools | CapVision).Has(CapTools))
	require.False(t, CapTools.Has(CapTools|CapVision))
}

func TestOverridesTakeSeedCapabilities(t *testing.T) {
	c := Default().WithOverrides([]snapshot.Backend{{Name: "ns/bedrock", Provider: snapshot.ProviderBedrock, Region: "us-east-1",
		Prices: []snapshot.ModelPrice{
			{Model: "claude-sonnet-4-5", InputPerMTok: 3_300_000, OutputPerMTok: 16_500_000},
			{Model: "house-model", InputPerMTok: 1_000_000, OutputPerMTok: 1_000_000},
		}}})
	b := &snapshot.Backend{Name: "ns/bedrock", Provider: snapshot.ProviderBedrock, Region: "us-east-1"}
	p, ok := c.BackendPrice(b, "claude-sonnet-4-5", "")
	require.True(t, ok)
	require.Equal(t, "override:ns/bedrock", p.Source)
	seed, _ := Default().Price(snapshot.ProviderBedrock, "claude-sonnet-4-5", "")
	require.NotZero(t, seed.Capabilities)
	require.Equal(t, seed.Capabilities, p.Capabilities)
	p, ok = c.BackendPrice(b, "house-model", "")
	require.True(t, ok)
	require.Zero(t, p.Capabilities, "the seed does not know it: no capability is claimed")
}

func TestCapabilityFlagsAreInTheSeed(t *testing.T) {
	require.Equal(t, []string{"supports_native_streaming", "supports_function_calling", "supports_vision",
		"supports_response_schema", "supports_reasoning", "supports_prompt_caching"}, CapabilityFlags())
	for _, f := range CapabilityFlags() {
		require.Contains(t, string(seedJSON), `"`+f+`"`)
	}
}
