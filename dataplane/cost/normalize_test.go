package cost

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFromOpenAI(t *testing.T) {
	for _, tc := range []struct {
		name                                       string
		prompt, cached, written, completion, reasn int64
		want                                       Usage
	}{
		{"plain", 1_000, 0, 0, 200, 0, Usage{InputTokens: 1_000, OutputTokens: 200}},
		{"cached is part of the prompt", 1_000, 800, 0, 200, 50, Usage{InputTokens: 200, CacheReadTokens: 800, OutputTokens: 200, ReasoningTokens: 50}},
		{"writes are part of the prompt", 1_000, 600, 300, 10, 0, Usage{InputTokens: 100, CacheReadTokens: 600, CacheWrite5mTokens: 300, OutputTokens: 10}},
		{"cached above prompt is clamped", 1_000, 1_500, 0, 10, 0, Usage{CacheReadTokens: 1_000, OutputTokens: 10}},
		{"writes above the uncached rest are clamped", 1_000, 900, 500, 10, 0, Usage{CacheReadTokens: 900, CacheWrite5mTokens: 100, OutputTokens: 10}},
		{"reasoning above completion is clamped", 10, 0, 0, 100, 150, Usage{InputTokens: 10, OutputTokens: 100, ReasoningTokens: 100}},
		{"negatives are zero", -1, -5, -5, -3, -2, Usage{}},
		{"negative prompt with cached", -10, 5, 0, 0, 0, Usage{}},
		{"huge", math.MaxInt64, math.MaxInt64, 1, math.MaxInt64, 0, Usage{CacheReadTokens: math.MaxInt64, OutputTokens: math.MaxInt64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := FromOpenAI(tc.prompt, tc.cached, tc.written, tc.completion, tc.reasn)
			require.Equal(t, tc.want, u)
			require.Equal(t, max(tc.prompt, 0), u.PromptTokens(), "the prompt is split, never grown or shrunk")
		})
	}
}

func TestFromAnthropic(t *testing.T) {
	for _, tc := range []struct {
		name                                    string
		input, read, creation, w5m, w1h, output int64
		want                                    Usage
	}{
		{"no cache", 100, 0, 0, 0, 0, 20, Usage{InputTokens: 100, OutputTokens: 20}},
		{"split present", 100, 5_000, 2_000, 1_500, 500, 20, Usage{InputTokens: 100, CacheReadTokens: 5_000, CacheWrite5mTokens: 1_500, CacheWrite1hTokens: 500, OutputTokens: 20}},
		{"split absent: all 5m", 100, 0, 2_000, 0, 0, 20, Usage{InputTokens: 100, CacheWrite5mTokens: 2_000, OutputTokens: 20}},
		{"only 1h reported: rest is 5m", 0, 0, 1_000, 0, 400, 0, Usage{CacheWrite5mTokens: 600, CacheWrite1hTokens: 400}},
		{"all 1h", 0, 0, 1_000, 0, 1_000, 0, Usage{CacheWrite1hTokens: 1_000}},
		{"split above total: split wins", 0, 0, 100, 80, 80, 0, Usage{CacheWrite5mTokens: 80, CacheWrite1hTokens: 80}},
		{"split without total", 0, 0, 0, 30, 20, 0, Usage{CacheWrite5mTokens: 30, CacheWrite1hTokens: 20}},
		{"negatives are zero", -1, -2, -3, -4, -5, -6, Usage{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, FromAnthropic(tc.input, tc.read, tc.creation, tc.w5m, tc.w1h, tc.output))
		})
	}
}
