package provider

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

func TestMappedModel(t *testing.T) {
	b := &snapshot.Backend{ModelMap: map[string]string{
		"claude-sonnet-4-5":         "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
		"claude-haiku-4-5-20251001": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
		"gpt-4o":                    "gpt-4o-prod",
	}}
	for canonical, want := range map[string]string{
		"claude-sonnet-4-5":          "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
		"claude-sonnet-4-5-20250929": "us.anthropic.claude-sonnet-4-5-20250929-v1:0", // by its undated name
		"claude-haiku-4-5-20251001":  "us.anthropic.claude-haiku-4-5-20251001-v1:0",
		"gpt-4o-2024-08-06":          "gpt-4o-prod",
		"claude-opus-4-1":            "", // not mapped
		"claude-haiku-4-5":           "", // a dated key does not serve the undated name
	} {
		got, ok := MappedModel(b, canonical)
		require.Equal(t, want != "", ok, canonical)
		require.Equal(t, want, got, canonical)
	}
}
