package cost

// Normalization from each provider's own usage numbers to Usage, in one place for every
// provider package. Inconsistent numbers are clamped, never made negative, and never inflate
// the billed total beyond what the provider reported.

// FromOpenAI normalizes OpenAI usage (Chat Completions usage.prompt_tokens /
// prompt_tokens_details.cached_tokens / completion_tokens /
// completion_tokens_details.reasoning_tokens; Responses usage.input_tokens /
// input_tokens_details.cached_tokens / output_tokens / output_tokens_details.reasoning_tokens;
// Azure OpenAI reports the same). cachedTokens is a subset of promptTokens, and so is
// cacheWriteTokens where a model reports it; the rest of the prompt is uncached input. Cache
// writes are recorded as 5-minute writes (OpenAI has one undivided count). reasoningTokens are
// part of completionTokens.
//
// Clamping: negative counts become 0; cached is at most the prompt; cache writes at most the
// prompt minus cached; reasoning at most the completion.
func FromOpenAI(promptTokens, cachedTokens, cacheWriteTokens, completionTokens, reasoningTokens int64) Usage {
	prompt := max(promptTokens, 0)
	cached := min(max(cachedTokens, 0), prompt)
	written := min(max(cacheWriteTokens, 0), prompt-cached)
	output := max(completionTokens, 0)
	return Usage{
		InputTokens:        prompt - cached - written,
		CacheReadTokens:    cached,
		CacheWrite5mTokens: written,
		OutputTokens:       output,
		ReasoningTokens:    min(max(reasoningTokens, 0), output),
	}
}

// FromAnthropic normalizes Anthropic Messages usage (also what Bedrock returns for Claude):
// input_tokens (uncached only), cache_read_input_tokens, cache_creation_input_tokens, the TTL
// breakdown cache_creation.ephemeral_5m_input_tokens / ephemeral_1h_input_tokens, and
// output_tokens. The 5m/1h split is a breakdown of cacheCreation: when it is absent (both 0)
// every cache write is recorded as 5-minute; when the split accounts for less than
// cacheCreation, the remainder is recorded as 5-minute (the cheaper TTL is the default one);
// when it accounts for more, the split wins. Negative counts become 0. Anthropic reports no
// separate thinking count, so ReasoningTokens is 0.
func FromAnthropic(inputTokens, cacheRead, cacheCreation, cache5m, cache1h, outputTokens int64) Usage {
	creation := max(cacheCreation, 0)
	w1h := max(cache1h, 0)
	w5m := max(max(cache5m, 0), creation-w1h)
	return Usage{
		InputTokens:        max(inputTokens, 0),
		CacheReadTokens:    max(cacheRead, 0),
		CacheWrite5mTokens: w5m,
		CacheWrite1hTokens: w1h,
		OutputTokens:       max(outputTokens, 0),
	}
}
