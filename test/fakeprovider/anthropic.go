package fakeprovider

import (
	"net/http"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/cost"
)

// messages serves POST /v1/messages (docs/providers.md "Anthropic Messages").
func (s *Server) messages(c *call) {
	if !c.anthropicHeaders() {
		return
	}
	if msg := requireFields(c.body, "model", "max_tokens", "messages"); msg != "" {
		c.writeError(http.StatusBadRequest, "invalid_request_error", msg)
		return
	}
	if c.scenarioError() {
		return
	}
	c.prepare(c.model, "system", "messages")
	c.w.Header().Set("Request-Id", c.id("req_"))
	id := c.id("msg_")
	if c.stream {
		c.runStream(&anthropicStream{id: id}, framingSSE, "text/event-stream; charset=utf-8")
		return
	}
	c.respond(appendAnthropicMessage(nil, c, id))
}

// countTokens serves POST /v1/messages/count_tokens: {"input_tokens":N}, N the same estimate
// a messages call with this prompt reports (or the scenario usage's whole prompt).
func (s *Server) countTokens(c *call) {
	if !c.anthropicHeaders() {
		return
	}
	if msg := requireFields(c.body, "model", "messages"); msg != "" {
		c.writeError(http.StatusBadRequest, "invalid_request_error", msg)
		return
	}
	if c.scenarioError() {
		return
	}
	c.prepare(c.model, "system", "messages")
	c.w.Header().Set("Request-Id", c.id("req_"))
	b := append([]byte(`{"input_tokens":`), appendInt(nil, c.usage.PromptTokens())...)
	c.respond(append(b, '}'))
}

// anthropicHeaders checks anthropic-version; false when it wrote the error.
func (c *call) anthropicHeaders() bool {
	if c.r.Header.Get("Anthropic-Version") == "" {
		c.writeError(http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
		return false
	}
	return true
}

// requireFields validates a JSON body and its required top-level fields; "" when valid.
func requireFields(body []byte, fields ...string) string {
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return "There was an error parsing the body of your request: it is not a JSON object."
	}
	for _, f := range fields {
		if !gjson.GetBytes(body, f).Exists() {
			return f + ": Field required"
		}
	}
	return ""
}

func (c *call) stopReason(def string) string {
	if c.sc.StopReason != "" {
		return c.sc.StopReason
	}
	return def
}

// appendAnthropicUsage appends an Anthropic usage object. input_tokens excludes cache reads
// and writes; cache_creation splits cache_creation_input_tokens by TTL. message_start and
// the message body carry the full form; message_delta the cumulative counts (full false).
func appendAnthropicUsage(b []byte, u cost.Usage, output int64, full bool) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, u.InputTokens)
	b = appendIntField(b, "cache_creation_input_tokens", u.CacheWriteTokens())
	b = appendIntField(b, "cache_read_input_tokens", u.CacheReadTokens)
	if full {
		b = append(b, `,"cache_creation":{"ephemeral_5m_input_tokens":`...)
		b = appendInt(b, u.CacheWrite5mTokens)
		b = appendIntField(b, "ephemeral_1h_input_tokens", u.CacheWrite1hTokens)
		b = append(b, '}')
	}
	b = appendIntField(b, "output_tokens", output)
	if u.ReasoningTokens > 0 {
		b = append(b, `,"output_tokens_details":{"thinking_tokens":`...)
		b = appendInt(b, u.ReasoningTokens)
		b = append(b, '}')
	}
	if full {
		b = append(b, `,"service_tier":"standard"`...)
	}
	return append(b, '}')
}

// appendAnthropicMessage appends a complete (non-streaming) Message.
func appendAnthropicMessage(b []byte, c *call, id string) []byte {
	b = appendString(append(b, `{"id":`...), id)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendString(b, c.respModel)
	b = append(b, `,"content":[{"type":"text","text":`...)
	b = appendString(b, c.text)
	b = append(b, `}],"stop_reason":`...)
	b = appendString(b, c.stopReason("end_turn"))
	b = append(b, `,"stop_sequence":null,"usage":`...)
	b = appendAnthropicUsage(b, c.usage, c.usage.OutputTokens, true)
	return append(b, '}')
}

// anthropicStream renders the Messages SSE flow (message_start, content_block_start, ping,
// content_block_delta*, content_block_stop, message_delta, message_stop). With bedrock set,
// each event is framed as a Bedrock chunk, errors are exception frames and message_stop
// carries amazon-bedrock-invocationMetrics.
type anthropicStream struct {
	id          string
	bedrock     bool
	firstByteMs int64
}

func (a *anthropicStream) start(c *call, e *events) {
	a.firstByteMs = c.elapsedMs()
	d := e.begin()
	d = appendString(append(d, `{"type":"message_start","message":{"id":`...), a.id)
	d = append(d, `,"type":"message","role":"assistant","model":`...)
	d = appendString(d, c.respModel)
	d = append(d, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	d = appendAnthropicUsage(d, c.usage, min(1, c.usage.OutputTokens), true)
	e.end("message_start", append(d, "}}"...))

	d = append(e.begin(), `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`...)
	e.end("content_block_start", d)
	e.end("ping", append(e.begin(), `{"type":"ping"}`...))
}

func (a *anthropicStream) delta(_ *call, e *events, piece string) {
	d := append(e.begin(), `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`...)
	d = appendString(d, piece)
	e.end("content_block_delta", append(d, "}}"...))
}

func (a *anthropicStream) finish(c *call, e *events) {
	e.end("content_block_stop", append(e.begin(), `{"type":"content_block_stop","index":0}`...))

	d := append(e.begin(), `{"type":"message_delta","delta":{"stop_reason":`...)
	d = appendString(d, c.stopReason("end_turn"))
	d = append(d, `,"stop_sequence":null},"usage":`...)
	d = appendAnthropicUsage(d, c.usage, c.usage.OutputTokens, false)
	e.end("message_delta", append(d, '}'))

	d = append(e.begin(), `{"type":"message_stop"`...)
	if a.bedrock {
		u := c.usage
		d = append(d, `,"amazon-bedrock-invocationMetrics":{"inputTokenCount":`...)
		d = appendInt(d, u.InputTokens)
		d = appendIntField(d, "outputTokenCount", u.OutputTokens)
		d = appendIntField(d, "invocationLatency", c.elapsedMs())
		d = appendIntField(d, "firstByteLatency", a.firstByteMs)
		if u.CacheReadTokens > 0 || u.CacheWriteTokens() > 0 {
			d = appendIntField(d, "cacheReadInputTokenCount", u.CacheReadTokens)
			d = appendIntField(d, "cacheWriteInputTokenCount", u.CacheWriteTokens())
		}
		d = append(d, '}')
	}
	e.end("message_stop", append(d, '}'))
}

func (a *anthropicStream) fail(c *call, e *events) {
	if a.bedrock {
		name := bedrockExceptionName(0, c.sc.ErrorType)
		if c.sc.ErrorType == "" {
			name = "InternalServerException"
		}
		msg := c.sc.ErrorMessage
		if msg == "" {
			msg = bedrockMessages[name]
		}
		p := appendString(append(e.begin(), `{"message":`...), msg)
		if name == "ModelStreamErrorException" {
			p = append(p, `,"originalStatusCode":500,"originalMessage":"Internal server error"`...)
		}
		p = append(p, '}')
		e.out = appendExceptionFrame(e.out, strings.ToLower(name[:1])+name[1:], p)
		e.scratch = p[:0]
		return
	}
	typ, msg := c.sc.ErrorType, c.sc.ErrorMessage
	if typ == "" {
		typ = "overloaded_error"
	}
	if msg == "" {
		msg = anthropicMessages[typ]
		if msg == "" {
			msg = typ
		}
	}
	e.end("error", appendAnthropicErrorJSON(e.begin(), typ, msg, "", ""))
}

func (a *anthropicStream) garbage(_ *call, e *events) {
	if a.bedrock {
		start := len(e.out)
		e.out = appendChunkFrame(e.out, []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`))
		e.out[start+16] ^= 0xff // corrupt the headers: the message CRC no longer matches
		return
	}
	e.out = append(e.out, sseGarbage...)
}
