package openai

import (
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/cost"
)

// chatUsage normalizes a Chat Completions usage object (prompt_tokens include cached tokens).
func chatUsage(u gjson.Result) cost.Usage {
	return cost.FromOpenAI(
		u.Get("prompt_tokens").Int(),
		u.Get("prompt_tokens_details.cached_tokens").Int(),
		u.Get("prompt_tokens_details.cache_write_tokens").Int(),
		u.Get("completion_tokens").Int(),
		u.Get("completion_tokens_details.reasoning_tokens").Int(),
	)
}

// responsesUsage normalizes a Responses usage object (input_tokens include cached tokens).
func responsesUsage(u gjson.Result) cost.Usage {
	return cost.FromOpenAI(
		u.Get("input_tokens").Int(),
		u.Get("input_tokens_details.cached_tokens").Int(),
		u.Get("input_tokens_details.cache_write_tokens").Int(),
		u.Get("output_tokens").Int(),
		u.Get("output_tokens_details.reasoning_tokens").Int(),
	)
}
