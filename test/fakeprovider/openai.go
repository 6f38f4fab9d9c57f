package fakeprovider

import (
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/cost"
)

const systemFingerprint = "fp_fake"

// chat serves OpenAI POST /v1/chat/completions and the Azure chat routes
// (docs/providers.md "OpenAI Chat Completions", "Azure OpenAI").
func (s *Server) chat(c *call) {
	if c.provider == Azure && !c.azureRoute() {
		return
	}
	if msg := requireFields(c.body, "messages"); msg != "" {
		c.writeError(http.StatusBadRequest, "", msg)
		return
	}
	if c.provider == OpenAI && c.model == "" {
		c.writeError(http.StatusBadRequest, "", "you must provide a model parameter")
		return
	}
	streamOpts := gjson.GetBytes(c.body, "stream_options")
	if streamOpts.Exists() && !c.stream {
		c.writeError(http.StatusBadRequest, "", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
		return
	}
	if c.scenarioError() {
		return
	}
	c.prepare(c.modelForResponse(), "messages")
	c.openAIHeaders()
	id := c.id("chatcmpl-")
	if c.stream {
		cs := &chatStream{
			azure:        c.provider == Azure,
			includeUsage: streamOpts.Get("include_usage").Bool(),
			obfuscate:    c.provider == OpenAI && streamOpts.Get("include_obfuscation").Type != gjson.False,
		}
		cs.build(c, id)
		c.runStream(cs, framingData, "text/event-stream; charset=utf-8")
		return
	}
	c.respond(appendChatCompletion(nil, c, id))
}

// modelForResponse is the model a response reports: the scenario's, Azure's deployment
// mapping, or the request's model.
func (c *call) modelForResponse() string {
	if c.provider == Azure {
		if m, ok := c.s.cfg.AzureDeployments[c.model]; ok {
			return m
		}
		return DefaultAzureModel
	}
	return c.model
}

func (c *call) openAIHeaders() {
	h := c.w.Header()
	if c.provider == Azure {
		h.Set("Apim-Request-Id", c.requestUUID())
		h.Set("X-Request-Id", c.requestUUID())
		h.Set("X-Ms-Region", "East US")
		return
	}
	h.Set("X-Request-Id", c.id("req_"))
	h.Set("Openai-Processing-Ms", "1")
}

// azureRoute checks api-version (required except on /openai/v1/) and the deployment; false
// when it wrote the error.
func (c *call) azureRoute() bool {
	v1 := len(c.r.URL.Path) >= 11 && c.r.URL.Path[:11] == "/openai/v1/"
	if !v1 && c.r.URL.Query().Get("api-version") == "" {
		c.writeError(http.StatusNotFound, "404", "Resource not found. The api-version query parameter (?api-version=) is required for all requests.")
		return false
	}
	if c.model == "" {
		c.writeError(http.StatusBadRequest, "", "Missing required parameter: 'model'.")
		return false
	}
	if len(c.s.cfg.AzureDeployments) > 0 {
		if _, ok := c.s.cfg.AzureDeployments[c.model]; !ok {
			c.writeError(http.StatusNotFound, "DeploymentNotFound", "")
			return false
		}
	}
	return true
}

// appendChatUsage appends a CompletionUsage: prompt_tokens includes cached (and cache-write)
// tokens; cached_tokens and reasoning_tokens are subsets.
func appendChatUsage(b []byte, u cost.Usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = appendInt(b, u.PromptTokens())
	b = appendIntField(b, "completion_tokens", u.OutputTokens)
	b = appendIntField(b, "total_tokens", u.TotalTokens())
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, u.CacheReadTokens)
	b = append(b, `,"audio_tokens":0`...)
	if u.CacheWriteTokens() > 0 {
		b = appendIntField(b, "cache_write_tokens", u.CacheWriteTokens())
	}
	b = append(b, `},"completion_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, u.ReasoningTokens)
	return append(b, `,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`...)
}

// Azure content filter verdicts.
const (
	azureFilterSafe     = `{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}`
	azureFilterFiltered = `{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":true,"severity":"medium"},"violence":{"filtered":false,"severity":"safe"}}`
	azurePromptFilter   = `[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,"detected":false},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]`
	// azurePromptAnnotation is the first chunk of every Azure chat stream.
	azurePromptAnnotation = `{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":` + azurePromptFilter + `}`
)

func (c *call) azureFilter() string {
	if c.stopReason("stop") == "content_filter" {
		return azureFilterFiltered
	}
	return azureFilterSafe
}

// appendChatCompletion appends a non-streaming chat.completion (Azure: its key order, plus
// prompt_filter_results and per-choice content_filter_results).
func appendChatCompletion(b []byte, c *call, id string) []byte {
	if c.provider == Azure {
		b = append(b, `{"choices":[{"content_filter_results":`...)
		b = append(b, c.azureFilter()...)
		b = appendString(append(b, `,"finish_reason":`...), c.stopReason("stop"))
		b = append(b, `,"index":0,"logprobs":null,"message":{"annotations":[],"content":`...)
		b = appendString(b, c.text)
		b = append(b, `,"refusal":null,"role":"assistant"}}],"created":`...)
		b = appendInt(b, c.created())
		b = appendString(append(b, `,"id":`...), id)
		b = appendString(append(b, `,"model":`...), c.respModel)
		b = append(b, `,"object":"chat.completion","prompt_filter_results":`...)
		b = append(b, azurePromptFilter...)
		b = append(b, `,"system_fingerprint":"`+systemFingerprint+`","usage":`...)
		b = appendChatUsage(b, c.usage)
		return append(b, '}')
	}
	b = appendString(append(b, `{"id":`...), id)
	b = append(b, `,"object":"chat.completion","created":`...)
	b = appendInt(b, c.created())
	b = appendString(append(b, `,"model":`...), c.respModel)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	b = appendString(b, c.text)
	b = append(b, `,"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":`...)
	b = appendString(b, c.stopReason("stop"))
	b = append(b, `}],"usage":`...)
	b = appendChatUsage(b, c.usage)
	return append(b, `,"service_tier":"default","system_fingerprint":"`+systemFingerprint+`"}`...)
}

// chatStream renders chat.completion.chunk events: data-only SSE ending in [DONE]; the usage
// chunk (choices []) only with stream_options.include_usage. Azure streams open with the
// prompt-annotation chunk, carry content_filter_results and order keys alphabetically.
type chatStream struct {
	azure, includeUsage, obfuscate bool
	// head opens every chunk up to its choices array; meta follows the array (Azure's
	// trailing fields).
	head, meta []byte
	n          int
}

func (cs *chatStream) build(c *call, id string) {
	if cs.azure {
		cs.head = []byte(`{"choices":[`)
		m := appendIntField(nil, "created", c.created())
		m = appendString(append(m, `,"id":`...), id)
		m = appendString(append(m, `,"model":`...), c.respModel)
		cs.meta = append(m, `,"object":"chat.completion.chunk","system_fingerprint":"`+systemFingerprint+`"`...)
		return
	}
	h := appendString([]byte(`{"id":`), id)
	h = appendIntField(append(h, `,"object":"chat.completion.chunk"`...), "created", c.created())
	h = appendString(append(h, `,"model":`...), c.respModel)
	cs.head = append(h, `,"service_tier":"default","system_fingerprint":"`+systemFingerprint+`","choices":[`...)
}

func (cs *chatStream) open(e *events) []byte { return append(e.begin(), cs.head...) }

// close ends the choices array and the chunk: Azure's trailing fields, "usage":null (with
// include_usage; always on Azure) and OpenAI's obfuscation padding.
func (cs *chatStream) close(e *events, d []byte, contentLen int) {
	d = append(d, ']')
	d = append(d, cs.meta...)
	if cs.azure || cs.includeUsage {
		d = append(d, `,"usage":null`...)
	}
	if cs.obfuscate {
		cs.n++
		d = append(d, `,"obfuscation":"`...)
		d = append(d, padding[:1+(cs.n*7+contentLen)%16]...)
		d = append(d, '"')
	}
	e.end("", append(d, '}'))
}

func (cs *chatStream) start(c *call, e *events) {
	if cs.azure {
		e.end("", append(e.begin(), azurePromptAnnotation...))
		d := append(cs.open(e), `{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}`...)
		cs.close(e, d, 0)
		return
	}
	d := append(cs.open(e), `{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`...)
	cs.close(e, d, 0)
}

func (cs *chatStream) delta(c *call, e *events, piece string) {
	d := cs.open(e)
	if cs.azure {
		d = append(d, `{"content_filter_results":`+azureFilterSafe+`,"delta":{"content":`...)
		d = appendString(d, piece)
		d = append(d, `},"finish_reason":null,"index":0,"logprobs":null}`...)
	} else {
		d = append(d, `{"index":0,"delta":{"content":`...)
		d = appendString(d, piece)
		d = append(d, `},"logprobs":null,"finish_reason":null}`...)
	}
	cs.close(e, d, len(piece))
}

func (cs *chatStream) finish(c *call, e *events) {
	reason := c.stopReason("stop")
	d := cs.open(e)
	if cs.azure {
		d = append(d, `{"content_filter_results":`...)
		if reason == "content_filter" {
			d = append(d, azureFilterFiltered...)
		} else {
			d = append(d, `{}`...)
		}
		d = appendString(append(d, `,"delta":{},"finish_reason":`...), reason)
		d = append(d, `,"index":0,"logprobs":null}`...)
	} else {
		d = appendString(append(d, `{"index":0,"delta":{},"logprobs":null,"finish_reason":`...), reason)
		d = append(d, '}')
	}
	cs.close(e, d, 0)
	if cs.includeUsage {
		d = append(cs.open(e), ']')
		d = append(d, cs.meta...)
		d = appendChatUsage(append(d, `,"usage":`...), c.usage)
		e.end("", append(d, '}'))
	}
	e.end("", append(e.begin(), "[DONE]"...))
}

func (cs *chatStream) fail(c *call, e *events) {
	msg := c.sc.ErrorMessage
	if msg == "" {
		msg = "The server had an error while processing your request. Sorry about that!"
	}
	d := appendString(append(e.begin(), `{"error":{"message":`...), msg)
	d = append(d, `,"type":"server_error","param":null,"code":`...)
	d = appendStringOrNull(d, c.sc.ErrorType)
	e.end("", append(d, "}}"...))
}

func (cs *chatStream) garbage(_ *call, e *events) {
	e.out = append(e.out, "data: {\"id\":\"chatcmpl-garbage\",\"choices\":[{\"delta\":{\"con\x00\xff\xfe garbage\n\n"...)
}

// listModels serves GET /v1/models in OpenAI's shape, or Anthropic's when the request
// carries anthropic-version or x-api-key.
func (s *Server) listModels(c *call) {
	if c.scenarioError() {
		return
	}
	created := c.created()
	var b []byte
	if c.provider == Anthropic {
		c.w.Header().Set("Request-Id", c.id("req_"))
		b = append(b, `{"data":[`...)
		for i, m := range s.cfg.Models {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(append(b, `{"type":"model","id":`...), m)
			b = appendString(append(b, `,"display_name":`...), m)
			b = appendString(append(b, `,"created_at":`...), c.start.UTC().Format("2006-01-02T15:04:05Z"))
			b = append(b, '}')
		}
		b = append(b, `],"has_more":false,"first_id":`...)
		b = appendStringOrNull(b, s.cfg.Models[0])
		b = appendStringOrNull(append(b, `,"last_id":`...), s.cfg.Models[len(s.cfg.Models)-1])
		c.respond(append(b, '}'))
		return
	}
	c.openAIHeaders()
	b = append(b, `{"object":"list","data":[`...)
	for i, m := range s.cfg.Models {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(append(b, `{"id":`...), m)
		b = appendIntField(append(b, `,"object":"model"`...), "created", created)
		b = append(b, `,"owned_by":"system"}`...)
	}
	c.respond(append(b, "]}"...))
}
