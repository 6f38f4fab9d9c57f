package catalog

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

func TestMappedModel(t *testing.T) {
	b := &snapshot.Backend{ModelMap: map[string]string{"claude-sonnet-4-5": "profile-a", "gpt-4o-2024-08-06": "deploy-b"}}
	for _, tc := range []struct{ canonical, want string }{
		{"claude-sonnet-4-5", "profile-a"},
		{"claude-sonnet-4-5-20250929", "profile-a"}, // by the undated name
		{"gpt-4o-2024-08-06", "deploy-b"},
		{"gpt-4o", ""}, // never from undated to dated
		{"other", ""},
	} {
		got, ok := MappedModel(b, tc.canonical)
		require.Equal(t, tc.want, got, tc.canonical)
		require.Equal(t, tc.want != "", ok, tc.canonical)
	}
}

func TestRoutedModels(t *testing.T) {
	r := &snapshot.Route{Models: []string{"b", "a"}, Aliases: map[string]string{"x": "a", "y": "c"}, Prefixes: []string{"p-"}}
	require.Equal(t, []string{"a", "b", "c"}, RoutedModels(r))
	require.Empty(t, RoutedModels(&snapshot.Route{Prefixes: []string{"p-"}}))
}

func TestUnpriced(t *testing.T) {
	backends := []snapshot.Backend{
		{Name: "ns/anthropic", Provider: snapshot.ProviderAnthropic},
		{Name: "ns/bedrock", Provider: snapshot.ProviderBedrock, Region: "us-east-1",
			ModelMap: map[string]string{"house-sonnet": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
			Prices:   []snapshot.ModelPrice{{Model: "claude-opus-5", InputPerMTok: 5_000_000, OutputPerMTok: 25_000_000}}},
		{Name: "ns/openai", Provider: snapshot.ProviderOpenAI},
		{Name: "ns/azure", Provider: snapshot.ProviderAzureOpenAI, ModelMap: map[string]string{"gpt-4o": "prod-gpt4o"}},
	}
	cat := Default().WithOverrides(backends)
	byName := func(name string) *snapshot.Backend {
		for i := range backends {
			if backends[i].Name == name {
				return &backends[i]
			}
		}
		return nil
	}
	claude := &snapshot.Route{Name: "ns/claude", Shape: snapshot.ShapeAnthropic,
		Models:  []string{"claude-sonnet-4-5", "house-sonnet", "claude-3-7-sonnet-latest"},
		Aliases: map[string]string{"opus": "claude-opus-5", "sonnet": "claude-sonnet-4-5"},
		Backends: []snapshot.RouteBackend{{Backend: "ns/anthropic"}, {Backend: "ns/bedrock", Priority: 1},
			{Backend: "ns/gone", Priority: 2}}}
	require.Equal(t, []UnpricedModel{
		// An alias target counts; a pricing override covers it on that backend only.
		{Model: "claude-opus-5", Backends: []string{"ns/anthropic"}},
		// Priced on Bedrock through the modelMap entry, which names a model the seed knows.
		{Model: "house-sonnet", Backends: []string{"ns/anthropic"}},
	}, cat.Unpriced(claude, byName), "an unknown backend is skipped; -latest finds the newest dated entry")

	gpt := &snapshot.Route{Name: "ns/gpt", Shape: snapshot.ShapeOpenAI, Models: []string{"gpt-4o", "gpt-4o-2024-08-06"},
		Prefixes: []string{"ft:"}, Backends: []snapshot.RouteBackend{{Backend: "ns/openai"}, {Backend: "ns/azure", Priority: 1}}}
	require.Nil(t, cat.Unpriced(gpt, byName), "an Azure deployment name is priced by the model it serves")

	require.Equal(t, []UnpricedModel{{Model: "claude-opus-5", Backends: []string{"ns/anthropic", "ns/bedrock"}}},
		Default().Unpriced(&snapshot.Route{Models: []string{"claude-opus-5"}, Backends: claude.Backends}, byName),
		"without the snapshot's overrides, the override does not count")
}
