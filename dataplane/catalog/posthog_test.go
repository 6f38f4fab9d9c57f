package catalog

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// postHogRow is one provider row of PostHog's ingestion cost table (USD per token).
type postHogRow struct {
	Prompt     json.Number `json:"prompt_token"`
	Completion json.Number `json:"completion_token"`
	CacheRead  json.Number `json:"cache_read_token"`
	CacheWrite json.Number `json:"cache_write_token"`
}

func loadPostHog(t *testing.T) []struct {
	Model string                `json:"model"`
	Cost  map[string]postHogRow `json:"cost"`
} {
	data, err := os.ReadFile("data/posthog_llm_costs.json")
	require.NoError(t, err)
	var entries []struct {
		Model string                `json:"model"`
		Cost  map[string]postHogRow `json:"cost"`
	}
	require.NoError(t, json.Unmarshal(data, &entries))
	return entries
}

// The same per-token prices as PostHog's ingestion table, for models both list. A few
// well-known models must agree exactly on input, output, cache read and cache write.
func TestPostHogCrossCheckKnownModels(t *testing.T) {
	c := Default()
	byModel := map[string]postHogRow{}
	for _, e := range loadPostHog(t) {
		byModel[e.Model] = e.Cost["default"]
	}
	for _, tc := range []struct {
		openRouter string
		provider   snapshot.Provider
	}{
		{"anthropic/claude-sonnet-4.5", snapshot.ProviderAnthropic},
		{"anthropic/claude-haiku-4.5", snapshot.ProviderAnthropic},
		{"anthropic/claude-opus-4.1", snapshot.ProviderAnthropic},
		{"anthropic/claude-sonnet-4.6", snapshot.ProviderAnthropic},
		{"openai/gpt-4o", snapshot.ProviderOpenAI},
		{"openai/gpt-4o-mini", snapshot.ProviderOpenAI},
		{"openai/gpt-4.1", snapshot.ProviderOpenAI},
		{"openai/o3", snapshot.ProviderOpenAI},
		{"openai/gpt-5", snapshot.ProviderOpenAI},
	} {
		row, ok := byModel[tc.openRouter]
		require.True(t, ok, tc.openRouter)
		p, ok := c.Price(tc.provider, Canonicalize(tc.openRouter), "")
		require.True(t, ok, tc.openRouter)
		require.Equal(t, mustPerMTok(t, row.Prompt), p.InputPerMTok, "%s input", tc.openRouter)
		require.Equal(t, mustPerMTok(t, row.Completion), p.OutputPerMTok, "%s output", tc.openRouter)
		if row.CacheRead != "" {
			require.Equal(t, mustPerMTok(t, row.CacheRead), p.CacheReadPerMTok, "%s cache read", tc.openRouter)
		}
		if row.CacheWrite != "" {
			require.Equal(t, mustPerMTok(t, row.CacheWrite), p.CacheWrite5mPerMTok, "%s cache write", tc.openRouter)
		}
	}
}

// Every PostHog row (default and per-provider) whose model the catalog prices at that provider
// is compared; the differences are a golden file (testdata/posthog_crosscheck.golden), so a
// seed refresh that changes them shows up in review. Regenerate with -update.
func TestPostHogCrossCheckAll(t *testing.T) {
	c := Default()
	rowProvider := map[string]snapshot.Provider{
		"anthropic": snapshot.ProviderAnthropic, "openai": snapshot.ProviderOpenAI,
		"azure": snapshot.ProviderAzureOpenAI, "amazon-bedrock": snapshot.ProviderBedrock,
	}
	var lines []string
	compared := 0
	for _, e := range loadPostHog(t) {
		model := Canonicalize(e.Model)
		vendor := snapshot.ProviderOpenAI
		if strings.HasPrefix(model, "claude") {
			vendor = snapshot.ProviderAnthropic
		}
		for _, rowName := range slices.Sorted(func(yield func(string) bool) {
			for k := range e.Cost {
				if !yield(k) {
					return
				}
			}
		}) {
			provider, ok := rowProvider[rowName]
			if rowName == "default" {
				provider, ok = vendor, true
			}
			if !ok {
				continue
			}
			p, priced := c.Price(provider, model, "")
			if !priced {
				continue
			}
			compared++
			row := e.Cost[rowName]
			for _, f := range []struct {
				name string
				ph   json.Number
				ours int64
			}{
				{"input", row.Prompt, p.InputPerMTok},
				{"output", row.Completion, p.OutputPerMTok},
				{"cache_read", row.CacheRead, p.CacheReadPerMTok},
				{"cache_write", row.CacheWrite, p.CacheWrite5mPerMTok},
			} {
				if f.ph == "" {
					continue
				}
				if want := mustPerMTok(t, f.ph); want != f.ours {
					lines = append(lines, fmt.Sprintf("%s [%s] %s: posthog %s catalog %s (%s)",
						e.Model, rowName, f.name, usdPerMTok(want), usdPerMTok(f.ours), p.Model))
				}
			}
		}
	}
	require.Greater(t, compared, 60, "most PostHog rows have a catalog price to compare with")
	got := fmt.Sprintf("# rows compared: %d, differences: %d\n%s\n", compared, len(lines), strings.Join(lines, "\n"))
	golden := "testdata/posthog_crosscheck.golden"
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run with -update to create it")
	require.Equal(t, string(want), got)
}

func mustPerMTok(t *testing.T, n json.Number) int64 {
	t.Helper()
	v, err := perMTok(n)
	require.NoError(t, err)
	return v
}

func usdPerMTok(micros int64) string {
	return "$" + new(big.Rat).SetFrac64(micros, 1_000_000).FloatString(4) + "/MTok"
}
