package fakeprovider

import (
	"net/http"

	"github.com/posthog/llm-gateway/dataplane/cost"
)

// responses serves OpenAI POST /v1/responses and the Azure responses routes
// (docs/providers.md "OpenAI Responses", "Azure OpenAI").
func (s *Server) responses(c *call) {
	if c.provider == Azure && !c.azureRoute() {
		return
	}
	if msg := requireFields(c.body); msg != "" {
		c.writeError(http.StatusBadRequest, "", msg)
		return
	}
	if c.model == "" {
		c.writeError(http.StatusBadRequest, "", "Missing required parameter: 'model'.")
		return
	}
	if c.scenarioError() {
		return
	}
	c.prepare(c.modelForResponse(), "input", "instructions")
	c.openAIHeaders()
	rs := &responsesStream{id: c.id("resp_"), itemID: c.id("msg_")}
	if c.stream {
		c.runStream(rs, framingSSE, "text/event-stream; charset=utf-8")
		return
	}
	c.respond(rs.appendResponse(nil, c, true))
}

// appendResponsesUsage appends a ResponseUsage: input_tokens includes cached tokens.
func appendResponsesUsage(b []byte, u cost.Usage) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, u.PromptTokens())
	b = append(b, `,"input_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, u.CacheReadTokens)
	if u.CacheWriteTokens() > 0 {
		b = appendIntField(b, "cache_write_tokens", u.CacheWriteTokens())
	}
	b = append(b, '}')
	b = appendIntField(b, "output_tokens", u.OutputTokens)
	b = append(b, `,"output_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, u.ReasoningTokens)
	b = append(b, '}')
	b = appendIntField(b, "total_tokens", u.TotalTokens())
	return append(b, '}')
}

// responsesStream renders the Responses SSE events (event: lines, sequence_number, no
// [DONE]; usage only in the terminal response.completed / response.incomplete).
type responsesStream struct {
	id, itemID string
	seq        int64
}

// incomplete reports the incomplete_details.reason of the final response ("" if complete).
func incompleteReason(c *call) string {
	switch r := c.stopReason(""); r {
	case "max_output_tokens", "content_filter":
		return r
	}
	return ""
}

// appendResponse appends a Response object: in progress (no output, usage null) or final.
func (rs *responsesStream) appendResponse(b []byte, c *call, final bool) []byte {
	status, reason := "in_progress", ""
	if final {
		status, reason = "completed", incompleteReason(c)
		if reason != "" {
			status = "incomplete"
		}
	}
	b = appendString(append(b, `{"id":`...), rs.id)
	b = append(b, `,"object":"response","created_at":`...)
	b = appendInt(b, c.created())
	b = appendString(append(b, `,"status":`...), status)
	b = append(b, `,"background":false,"error":null,"incomplete_details":`...)
	if reason != "" {
		b = append(appendString(append(b, `{"reason":`...), reason), '}')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"instructions":null,"max_output_tokens":null,"model":`...)
	b = appendString(b, c.respModel)
	b = append(b, `,"output":[`...)
	if final {
		b = rs.appendItem(b, c, true)
	}
	b = append(b, `],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"service_tier":"default","store":true,"temperature":1.0,"text":{"format":{"type":"text"},"verbosity":"medium"},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":`...)
	if final {
		b = appendResponsesUsage(b, c.usage)
	} else {
		b = append(b, "null"...)
	}
	return append(b, `,"user":null,"metadata":{}}`...)
}

// appendItem appends the output message item, in progress (no content) or completed.
func (rs *responsesStream) appendItem(b []byte, c *call, done bool) []byte {
	b = appendString(append(b, `{"id":`...), rs.itemID)
	if !done {
		return append(b, `,"type":"message","status":"in_progress","content":[],"role":"assistant"}`...)
	}
	b = append(b, `,"type":"message","status":"completed","content":[`...)
	b = rs.appendPart(b, c.text)
	return append(b, `],"role":"assistant"}`...)
}

func (rs *responsesStream) appendPart(b []byte, text string) []byte {
	b = append(b, `{"type":"output_text","annotations":[],"logprobs":[],"text":`...)
	return append(appendString(b, text), '}')
}

// event opens an event's JSON: {"type":T,"sequence_number":N
func (rs *responsesStream) event(e *events, typ string) []byte {
	d := appendString(append(e.begin(), `{"type":`...), typ)
	d = appendIntField(d, "sequence_number", rs.seq)
	rs.seq++
	return d
}

// itemRef appends the item_id, output_index and content_index of the text part.
func (rs *responsesStream) itemRef(d []byte) []byte {
	d = appendString(append(d, `,"item_id":`...), rs.itemID)
	return append(d, `,"output_index":0,"content_index":0`...)
}

func (rs *responsesStream) start(c *call, e *events) {
	for _, typ := range [...]string{"response.created", "response.in_progress"} {
		d := append(rs.event(e, typ), `,"response":`...)
		d = rs.appendResponse(d, c, false)
		e.end(typ, append(d, '}'))
	}
	d := append(rs.event(e, "response.output_item.added"), `,"output_index":0,"item":`...)
	d = rs.appendItem(d, c, false)
	e.end("response.output_item.added", append(d, '}'))

	d = rs.itemRef(rs.event(e, "response.content_part.added"))
	d = rs.appendPart(append(d, `,"part":`...), "")
	e.end("response.content_part.added", append(d, '}'))
}

func (rs *responsesStream) delta(c *call, e *events, piece string) {
	d := rs.itemRef(rs.event(e, "response.output_text.delta"))
	d = appendString(append(d, `,"delta":`...), piece)
	d = append(d, `,"logprobs":[],"obfuscation":"`...)
	d = append(d, padding[:1+(int(rs.seq)*5+len(piece))%12]...)
	e.end("response.output_text.delta", append(d, `"}`...))
}

func (rs *responsesStream) finish(c *call, e *events) {
	d := rs.itemRef(rs.event(e, "response.output_text.done"))
	d = appendString(append(d, `,"text":`...), c.text)
	e.end("response.output_text.done", append(d, `,"logprobs":[]}`...))

	d = rs.itemRef(rs.event(e, "response.content_part.done"))
	d = rs.appendPart(append(d, `,"part":`...), c.text)
	e.end("response.content_part.done", append(d, '}'))

	d = append(rs.event(e, "response.output_item.done"), `,"output_index":0,"item":`...)
	d = rs.appendItem(d, c, true)
	e.end("response.output_item.done", append(d, '}'))

	typ := "response.completed"
	if incompleteReason(c) != "" {
		typ = "response.incomplete"
	}
	d = append(rs.event(e, typ), `,"response":`...)
	d = rs.appendResponse(d, c, true)
	e.end(typ, append(d, '}'))
}

func (rs *responsesStream) fail(c *call, e *events) {
	code, msg := c.sc.ErrorType, c.sc.ErrorMessage
	if code == "" {
		code = "server_error"
	}
	if msg == "" {
		msg = "The server had an error while processing your request. Sorry about that!"
	}
	d := appendString(append(e.begin(), `{"type":"error","code":`...), code)
	d = appendString(append(d, `,"message":`...), msg)
	d = append(d, `,"param":null`...)
	d = appendIntField(d, "sequence_number", rs.seq)
	rs.seq++
	e.end("error", append(d, '}'))
}

func (rs *responsesStream) garbage(_ *call, e *events) {
	e.out = append(e.out, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"del\x00\xff\xfe garbage\n\n"...)
}
