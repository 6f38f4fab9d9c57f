package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/catalog"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// The committed seeds are fixed points of the filter: refreshing from them changes nothing.
func TestFilterReproducesCommittedSeeds(t *testing.T) {
	seed, err := os.ReadFile("../../data/model_prices.json")
	require.NoError(t, err)
	got, err := filterLiteLLM(seed, catalog.SeedProviders())
	require.NoError(t, err)
	require.Equal(t, string(seed), string(got))

	ph, err := os.ReadFile("../../data/posthog_llm_costs.json")
	require.NoError(t, err)
	got, err = filterPostHog(ph, []string{"openai/", "anthropic/", "~openai/", "~anthropic/"})
	require.NoError(t, err)
	require.Equal(t, string(ph), string(got))
}

func TestFilterLiteLLM(t *testing.T) {
	upstream := `{"sample_spec": {"max_tokens": "LEGACY", "litellm_provider": "one of https://docs.litellm.ai/docs/providers"},
  "zeta-model": {"litellm_provider": "openai", "input_cost_per_token": 1.25e-7, "output_cost_per_token": 0.0000005},
  "gemini/gemini-pro": {"litellm_provider": "gemini", "input_cost_per_token": 1e-7},
  "fallback_generalizations": [{"pattern": "claude-.*"}],
  "alpha<&>": {"litellm_provider": "anthropic", "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05, "supports_vision": true, "tags": []}}`
	got, err := filterLiteLLM([]byte(upstream), catalog.SeedProviders())
	require.NoError(t, err)
	want := `{
    "zeta-model": {
        "litellm_provider": "openai",
        "input_cost_per_token": 1.25e-7,
        "output_cost_per_token": 0.0000005
    },
    "alpha<&>": {
        "litellm_provider": "anthropic",
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "supports_vision": true,
        "tags": []
    }
}
`
	require.Equal(t, want, string(got), "upstream order, original number spelling, other providers dropped")

	_, err = filterLiteLLM([]byte(`{"x": {"litellm_provider": "gemini"}}`), catalog.SeedProviders())
	require.ErrorContains(t, err, "no entry matched")
	_, err = filterLiteLLM([]byte(`[1,2]`), catalog.SeedProviders())
	require.Error(t, err)
}

func TestFilterPostHog(t *testing.T) {
	upstream := `[{"model":"google/gemini-2.5-pro","cost":{"default":{"prompt_token":1e-6}}},
{"model":"~anthropic/claude-opus-latest","cost":{"default":{"prompt_token":0.000005}}},
{"model":"openai/gpt-4o","cost":{"default":{"prompt_token":2.5e-6},"azure":{"prompt_token":2.5e-6}}}]`
	got, err := filterPostHog([]byte(upstream), []string{"openai/", "anthropic/", "~openai/", "~anthropic/"})
	require.NoError(t, err)
	want := `[
    {
        "model": "~anthropic/claude-opus-latest",
        "cost": {
            "default": {
                "prompt_token": 0.000005
            }
        }
    },
    {
        "model": "openai/gpt-4o",
        "cost": {
            "default": {
                "prompt_token": 2.5e-6
            },
            "azure": {
                "prompt_token": 2.5e-6
            }
        }
    }
]
`
	require.Equal(t, want, string(got))
}

func TestRunRejectsBrokenSeed(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.json")
	out := filepath.Join(dir, "out.json")
	// A kept entry with a price that is not a number must not replace the seed.
	require.NoError(t, os.WriteFile(in, []byte(`{"m": {"litellm_provider": "openai", "input_cost_per_token": "cheap", "output_cost_per_token": 1e-6}}`), 0o644))
	require.ErrorContains(t, run("litellm", in, out), "does not parse as a catalog")
	_, err := os.Stat(out)
	require.True(t, os.IsNotExist(err))

	// A seed that parses but in which a capability flag the catalog reads appears nowhere (a
	// rename upstream) must not replace the seed either.
	require.NoError(t, os.WriteFile(in, []byte(`{"m": {"litellm_provider": "openai", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
		"supports_native_streaming": true, "supports_function_calling": true, "supports_vision": false, "supports_tool_use_reasoning": true}}`), 0o644))
	require.ErrorContains(t, run("litellm", in, out), "no entry of the filtered seed has supports_response_schema, supports_reasoning, supports_prompt_caching")
	_, err = os.Stat(out)
	require.True(t, os.IsNotExist(err))

	require.NoError(t, os.WriteFile(in, []byte(`{"m": {"litellm_provider": "openai", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
		"supports_native_streaming": true, "supports_function_calling": true, "supports_vision": false},
		"n": {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
		"supports_response_schema": true, "supports_reasoning": true, "supports_prompt_caching": false}}`), 0o644))
	require.NoError(t, run("litellm", in, out))
	c, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Contains(t, string(c), `"input_cost_per_token": 1e-6`)
	require.Contains(t, string(c), `"supports_prompt_caching": false`, "capability flags are kept as upstream spells them")
	cat, err := catalog.Parse(c)
	require.NoError(t, err)
	p, ok := cat.Price(snapshot.ProviderAnthropic, "n", "")
	require.True(t, ok)
	require.Equal(t, catalog.CapStreaming|catalog.CapStructuredOutputs|catalog.CapReasoning, p.Capabilities,
		"the refreshed seed carries the flags into the catalog entries")

	require.ErrorContains(t, run("other", in, out), "unknown -kind")
	require.ErrorContains(t, run("litellm", "", out), "-in is required")
}
