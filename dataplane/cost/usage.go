package cost

// Usage is a call's token usage normalized to one shape for every provider. The input side is
// split into disjoint parts: InputTokens excludes cached tokens for every provider (an OpenAI
// prompt_tokens of 1000 with cached_tokens 800 becomes InputTokens 200, CacheReadTokens 800),
// so the total prompt is InputTokens + CacheReadTokens + CacheWrite5mTokens + CacheWrite1hTokens.
type Usage struct {
	// InputTokens are uncached input tokens, billed at the input rate.
	InputTokens int64 `json:"input_tokens"`
	// CacheReadTokens are input tokens served from the provider's prompt cache.
	CacheReadTokens int64 `json:"cache_read_tokens"`
	// CacheWrite5mTokens and CacheWrite1hTokens are input tokens written to the cache with a
	// 5-minute or 1-hour TTL. A provider that reports one undivided cache-write count is
	// recorded as 5-minute writes.
	CacheWrite5mTokens int64 `json:"cache_write_5m_tokens"`
	CacheWrite1hTokens int64 `json:"cache_write_1h_tokens"`
	// OutputTokens include reasoning tokens.
	OutputTokens int64 `json:"output_tokens"`
	// ReasoningTokens are the part of OutputTokens spent on reasoning (informational).
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

// CacheWriteTokens is the total written to the cache.
func (u Usage) CacheWriteTokens() int64 { return u.CacheWrite5mTokens + u.CacheWrite1hTokens }

// PromptTokens is the whole prompt: uncached, cache read and cache write.
func (u Usage) PromptTokens() int64 { return u.InputTokens + u.CacheReadTokens + u.CacheWriteTokens() }

// TotalTokens is the whole prompt plus the output.
func (u Usage) TotalTokens() int64 { return u.PromptTokens() + u.OutputTokens }

// IsZero reports whether no tokens were counted.
func (u Usage) IsZero() bool { return u == Usage{} }
