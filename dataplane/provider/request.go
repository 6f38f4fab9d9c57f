package provider

import (
	"bytes"
	"fmt"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// RequestInfo is what the gateway reads from a client body. Reading uses gjson: no full decode
// on the hot path.
type RequestInfo struct {
	Model  string
	Stream bool
	// MaxTokens is the output limit the request names (0: none); MaxTokensField is the field
	// it came from, or the field a default should be written to.
	MaxTokens      int64
	MaxTokensField string
	// IncludeUsage: an OpenAI chat stream asked for stream_options.include_usage itself.
	IncludeUsage bool
	// CacheWrite1h / CacheWrite: an Anthropic request marks content with cache_control (1h TTL
	// when any breakpoint says ttl "1h"). OpenAI caching is automatic and never billed as a write.
	CacheWrite   bool
	CacheWrite1h bool
	// Sticky names server-side state the request refers to (previous_response_id, conversation),
	// which only the provider account that created it can serve.
	Sticky string
}

// Inspect validates that body is a JSON object naming a model and reads what the gateway
// needs. The error message is meant for the client.
func Inspect(op Operation, body []byte) (*RequestInfo, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("request body is empty")
	}
	if !gjson.ValidBytes(body) {
		return nil, fmt.Errorf("request body is not valid JSON")
	}
	root := JSONView(body)
	if !root.IsObject() {
		return nil, fmt.Errorf("request body must be a JSON object")
	}
	model := root.Get("model")
	if !model.Exists() || model.Type != gjson.String || model.Str == "" {
		return nil, fmt.Errorf("you must provide a model parameter")
	}
	info := &RequestInfo{Model: strings.Clone(model.Str), Stream: root.Get("stream").Type == gjson.True}
	switch op {
	case OpChatCompletions:
		info.MaxTokensField = "max_completion_tokens"
		if v := root.Get("max_completion_tokens"); v.Exists() && v.Type == gjson.Number {
			info.MaxTokens = v.Int()
		} else if v := root.Get("max_tokens"); v.Exists() && v.Type == gjson.Number {
			info.MaxTokens, info.MaxTokensField = v.Int(), "max_tokens"
		}
		info.IncludeUsage = root.Get("stream_options.include_usage").Type == gjson.True
	case OpResponses:
		info.MaxTokensField = "max_output_tokens"
		if v := root.Get("max_output_tokens"); v.Type == gjson.Number {
			info.MaxTokens = v.Int()
		}
		if v := root.Get("previous_response_id"); v.Type == gjson.String && v.Str != "" {
			info.Sticky = "previous_response_id"
		} else if v := root.Get("conversation"); v.Exists() && v.Type != gjson.Null {
			info.Sticky = "conversation"
		}
	case OpMessages, OpCountTokens:
		info.MaxTokensField = "max_tokens"
		if v := root.Get("max_tokens"); v.Type == gjson.Number {
			info.MaxTokens = v.Int()
		}
		info.CacheWrite, info.CacheWrite1h = cacheControl(body)
	}
	if info.MaxTokens < 0 {
		return nil, fmt.Errorf("%s must not be negative", info.MaxTokensField)
	}
	return info, nil
}

// SetMaxTokens writes the output limit into the field the request uses (or the operation's
// default field), leaving every other byte of the body as sent.
func SetMaxTokens(body []byte, info *RequestInfo, n int64) ([]byte, error) {
	out, err := sjson.SetBytes(body, info.MaxTokensField, n)
	if err != nil {
		return nil, fmt.Errorf("set %s: %w", info.MaxTokensField, err)
	}
	info.MaxTokens = n
	return out, nil
}

// SetModel replaces the model id in the body.
func SetModel(body []byte, model string) ([]byte, error) {
	out, err := sjson.SetBytes(body, "model", model)
	if err != nil {
		return nil, fmt.Errorf("set model: %w", err)
	}
	return out, nil
}

// EnableStreamUsage sets stream_options.include_usage on an OpenAI chat stream so that the
// provider reports usage (the chunk is hidden from a client that did not ask for it).
func EnableStreamUsage(body []byte) ([]byte, error) {
	out, err := sjson.SetBytes(body, "stream_options.include_usage", true)
	if err != nil {
		return nil, fmt.Errorf("set stream_options.include_usage: %w", err)
	}
	return out, nil
}

var cacheControlKey = []byte(`"cache_control"`)

// cacheControl reports whether an Anthropic body marks any content for caching, and whether a
// breakpoint asks for the 1-hour TTL. cache_control objects may sit on system blocks, message
// content blocks, tools, or the top level; rather than walk the whole document, it finds each
// "cache_control" key (a quote that is not escaped, followed by a colon, so never text inside a
// string) and reads the object that follows. Bodies without the key cost one byte search.
func cacheControl(body []byte) (write, write1h bool) {
	for off := 0; ; {
		i := bytes.Index(body[off:], cacheControlKey)
		if i < 0 {
			return write, write1h
		}
		i += off
		off = i + len(cacheControlKey)
		if escaped(body, i) {
			continue
		}
		j := skipSpace(body, off)
		if j >= len(body) || body[j] != ':' {
			continue // a string value, not a key
		}
		j = skipSpace(body, j+1)
		if j >= len(body) || body[j] != '{' {
			continue // cache_control: null
		}
		write = true
		if ttl := gjson.GetBytes(body[j:], "ttl"); ttl.Type == gjson.String && ttl.Str == "1h" {
			return true, true
		}
	}
}

// escaped reports whether the quote at body[i] is escaped by an odd run of backslashes.
func escaped(body []byte, i int) bool {
	n := 0
	for k := i - 1; k >= 0 && body[k] == '\\'; k-- {
		n++
	}
	return n%2 == 1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// EnsureModel sets the body's model to model when it differs, leaving the body untouched
// otherwise (and for an empty model).
func EnsureModel(body []byte, model string) ([]byte, error) {
	if model == "" || gjson.GetBytes(body, "model").Str == model {
		return body, nil
	}
	return SetModel(body, model)
}

// JSONView returns a gjson view of b without copying it (gjson.ParseBytes copies the whole
// body). Strings read from the result point into b: clone any that must outlive it.
func JSONView(b []byte) gjson.Result {
	if len(b) == 0 {
		return gjson.Result{}
	}
	return gjson.Parse(unsafe.String(&b[0], len(b)))
}
