package fakeprovider

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// bedrockAnthropicVersion is the only anthropic_version InvokeModel accepts.
const bedrockAnthropicVersion = "bedrock-2023-05-31"

// bedrockFields are the top-level fields an Anthropic InvokeModel body may carry; anything
// else (model and stream included) is 400 "<field>: Extra inputs are not permitted".
var bedrockFields = map[string]bool{
	"anthropic_version": true, "anthropic_beta": true, "max_tokens": true, "messages": true,
	"system": true, "stop_sequences": true, "temperature": true, "top_p": true, "top_k": true,
	"tools": true, "tool_choice": true, "thinking": true, "metadata": true,
	"output_config": true, "context_management": true,
}

// bedrockRejectedBetas are the betas Bedrock answers with 400 "invalid beta flag".
var bedrockRejectedBetas = map[string]bool{
	"prompt-caching-2024-07-31":     true,
	"extended-cache-ttl-2025-04-11": true,
	"files-api-2025-04-14":          true,
	"code-execution-2025-05-22":     true,
	"memory-2025-08-18":             true,
}

// validateBedrockBody checks an InvokeModel body for Anthropic models; "" when valid.
func validateBedrockBody(body []byte) string {
	root := gjson.ParseBytes(body)
	if !gjson.ValidBytes(body) || !root.IsObject() {
		return "Malformed input request: the body is not a JSON object, please reformat your input and try again."
	}
	msg := ""
	root.ForEach(func(k, v gjson.Result) bool {
		if !bedrockFields[k.Str] {
			msg = k.Str + ": Extra inputs are not permitted"
			return false
		}
		return true
	})
	if msg != "" {
		return msg
	}
	switch v := root.Get("anthropic_version"); {
	case !v.Exists():
		return "anthropic_version: Field required"
	case v.Str != bedrockAnthropicVersion:
		return "anthropic_version: Input should be '" + bedrockAnthropicVersion + "'"
	}
	if betas := root.Get("anthropic_beta"); betas.Exists() {
		if !betas.IsArray() {
			return "anthropic_beta: Input should be a valid list"
		}
		betas.ForEach(func(_, b gjson.Result) bool {
			if b.Type != gjson.String || bedrockRejectedBetas[b.Str] {
				msg = "invalid beta flag"
				return false
			}
			return true
		})
		if msg != "" {
			return msg
		}
	}
	for _, f := range []string{"max_tokens", "messages"} {
		if !root.Get(f).Exists() {
			return f + ": Field required"
		}
	}
	return ""
}

// bedrockInvoke serves InvokeModel (JSON Message) and InvokeModelWithResponseStream (AWS
// event stream of chunk frames), per docs/providers.md "AWS Bedrock: requests, model ids and auth",
// docs/providers.md "AWS event-stream framing" and
// docs/providers.md "AWS Bedrock: the stream translated, and its usage".
func (s *Server) bedrockInvoke(c *call) {
	if msg := validateBedrockBody(c.body); msg != "" {
		c.writeError(http.StatusBadRequest, "ValidationException", msg)
		return
	}
	if c.scenarioError() {
		return
	}
	c.prepare(bedrockModelName(c.model), "system", "messages")
	h := c.w.Header()
	h.Set("X-Amzn-Requestid", c.requestUUID())
	id := c.id("msg_bdrk_")
	if c.stream {
		h.Set("X-Amzn-Bedrock-Content-Type", "application/json")
		c.runStream(&anthropicStream{id: id, bedrock: true}, framingEventStream, "application/vnd.amazon.eventstream")
		return
	}
	u := c.usage
	h.Set("X-Amzn-Bedrock-Input-Token-Count", strconv.FormatInt(u.InputTokens, 10))
	h.Set("X-Amzn-Bedrock-Output-Token-Count", strconv.FormatInt(u.OutputTokens, 10))
	h.Set("X-Amzn-Bedrock-Invocation-Latency", strconv.FormatInt(c.elapsedMs(), 10))
	if u.CacheReadTokens > 0 || u.CacheWriteTokens() > 0 {
		h.Set("X-Amzn-Bedrock-Cache-Read-Input-Token-Count", strconv.FormatInt(u.CacheReadTokens, 10))
		h.Set("X-Amzn-Bedrock-Cache-Write-Input-Token-Count", strconv.FormatInt(u.CacheWriteTokens(), 10))
	}
	c.respond(appendAnthropicMessage(nil, c, id))
}

// bedrockCountTokens serves CountTokens: {"input":{"invokeModel":{"body":"<base64>"}}} ->
// {"inputTokens":N}; the embedded body must be a valid InvokeModel body.
func (s *Server) bedrockCountTokens(c *call) {
	enc := gjson.GetBytes(c.body, "input.invokeModel.body")
	if enc.Type != gjson.String {
		c.writeError(http.StatusBadRequest, "ValidationException", "input.invokeModel.body: Field required")
		return
	}
	inner, err := base64.StdEncoding.DecodeString(enc.Str)
	if err != nil {
		c.writeError(http.StatusBadRequest, "ValidationException", "input.invokeModel.body: invalid base64")
		return
	}
	if msg := validateBedrockBody(inner); msg != "" {
		c.writeError(http.StatusBadRequest, "ValidationException", msg)
		return
	}
	if c.scenarioError() {
		return
	}
	c.body = inner
	c.prepare(bedrockModelName(c.model), "system", "messages")
	c.w.Header().Set("X-Amzn-Requestid", c.requestUUID())
	b := append([]byte(`{"inputTokens":`), appendInt(nil, c.usage.PromptTokens())...)
	c.respond(append(b, '}'))
}

// bedrockModelName turns a Bedrock model id into the Anthropic model name Bedrock reports:
// us.anthropic.claude-sonnet-4-20250514-v1:0 -> claude-sonnet-4-20250514.
func bedrockModelName(id string) string {
	if strings.HasPrefix(id, "arn:") {
		id = id[strings.LastIndexByte(id, '/')+1:]
	}
	if i := strings.Index(id, "anthropic."); i >= 0 {
		id = id[i+len("anthropic."):]
	}
	if i := strings.LastIndex(id, "-v"); i > 0 {
		if rest := strings.TrimLeft(id[i+2:], "0123456789:"); rest == "" && len(id) > i+2 {
			id = id[:i]
		}
	}
	return id
}
