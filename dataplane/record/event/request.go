package event

import (
	"bytes"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/pretty"

	"github.com/posthog/llm-gateway/dataplane/provider"
)

// request holds what the event takes from the client's request body.
type request struct {
	input  []byte // $ai_input (JSON array)
	tools  []byte // $ai_tools (raw)
	instr  []byte // $ai_instructions (raw JSON string)
	params []byte // $ai_model_parameters (JSON object)
}

// modelParams are the request fields copied into $ai_model_parameters.
var modelParams = map[string]bool{
	"temperature": true, "top_p": true, "top_k": true, "max_tokens": true,
	"max_completion_tokens": true, "max_output_tokens": true, "reasoning_effort": true,
	"reasoning": true, "thinking": true, "service_tier": true, "stop": true, "stop_sequences": true,
	"seed": true, "frequency_penalty": true, "presence_penalty": true, "n": true,
	"tool_choice": true, "parallel_tool_calls": true,
}

// requestFields are the members of the request body $ai_input is assembled from.
type requestFields struct{ messages, system, input, instructions gjson.Result }

// parseRequest reads the body once with gjson (no decode): the model parameters, the tools,
// and the members $ai_input is assembled from (aiInput).
func parseRequest(op provider.Operation, stream bool, body []byte) request {
	var r request
	var f requestFields
	params := obj{b: make([]byte, 0, 128)}
	params.open()
	if len(body) > 0 && gjson.ValidBytes(body) {
		gjson.Parse(bytesToString(body)).ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "messages":
				f.messages = v
			case "system":
				f.system = v
			case "input":
				f.input = v
			case "instructions":
				f.instructions = v
			case "tools":
				r.tools = compact(v.Raw)
			default:
				if modelParams[k.Str] { // a fixed set of plain names
					params.raw(k.Str, compact(v.Raw))
				}
			}
			return true
		})
	}
	params.bool("stream", stream)
	params.close()
	r.params = params.b
	r.input, r.instr = aiInput(op, &f)
	return r
}

// aiInput assembles $ai_input in the {role, content} shape: the Anthropic system prompt and
// Responses instructions become a leading system message, a Responses string input a user
// message; message arrays are copied as they are. It also returns $ai_instructions.
func aiInput(op provider.Operation, f *requestFields) (input, instr []byte) {
	l := jsonList{b: make([]byte, 0, len(f.messages.Raw)+len(f.system.Raw)+len(f.input.Raw)+len(f.instructions.Raw)+64)}
	l.b = append(l.b, '[')
	switch op {
	case provider.OpResponses:
		if f.instructions.Type == gjson.String && f.instructions.Str != "" {
			instr = []byte(f.instructions.Raw)
			l.message("system", f.instructions)
		}
		switch {
		case f.input.Type == gjson.String:
			l.message("user", f.input)
		case f.input.IsArray():
			l.spread(f.input)
		}
	default:
		if (f.system.Type == gjson.String && f.system.Str != "") || f.system.IsArray() {
			l.message("system", f.system)
		}
		if f.messages.IsArray() {
			l.spread(f.messages)
		}
	}
	l.b = append(l.b, ']')
	if bytes.IndexByte(l.b, '\n') >= 0 || bytes.IndexByte(l.b, '\r') >= 0 {
		l.b = pretty.Ugly(l.b)
	}
	return l.b, instr
}

// jsonList appends the elements of a JSON array (the brackets are the caller's).
type jsonList struct {
	b []byte
	n int
}

func (l *jsonList) add(elem []byte) {
	if l.n > 0 {
		l.b = append(l.b, ',')
	}
	l.b = append(l.b, elem...)
	l.n++
}

// message adds {"role":role,"content":content}, content copied as it is.
func (l *jsonList) message(role string, content gjson.Result) {
	m := obj{b: make([]byte, 0, len(content.Raw)+32)}
	m.open()
	m.str("role", role)
	m.raw("content", []byte(content.Raw))
	m.close()
	l.add(m.b)
}

// spread adds the elements of the array arr.
func (l *jsonList) spread(arr gjson.Result) {
	inner := strings.TrimSpace(arr.Raw)
	inner = strings.TrimSpace(inner[1 : len(inner)-1])
	if inner != "" {
		l.add([]byte(inner))
	}
}

// compact copies a raw JSON value, removing whitespace when it spans lines: events are
// single-line JSON (one outbox record, one JSONL line).
func compact(raw string) []byte {
	if strings.IndexByte(raw, '\n') >= 0 || strings.IndexByte(raw, '\r') >= 0 {
		return pretty.Ugly([]byte(raw))
	}
	return []byte(raw)
}

// outputChoices renders the assistant text as [{"role":"assistant","content":"..."}].
func outputChoices(text string) []byte {
	o := obj{b: make([]byte, 0, len(text)+48)}
	o.b = append(o.b, '[')
	o.open()
	o.str("role", "assistant")
	o.str("content", text)
	o.close()
	return append(o.b, ']')
}
