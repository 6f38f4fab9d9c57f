package openai

import (
	"fmt"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/internal/wire"
)

// ParseChat reads a non-streaming Chat Completions body: usage, model, id, the text and finish
// reason of choice 0, content filtering on any choice.
func ParseChat(body []byte) (*provider.Result, error) {
	if !gjson.ValidBytes(body) {
		return nil, fmt.Errorf("%w: chat completion body is not JSON", provider.ErrMalformed)
	}
	root := gjson.ParseBytes(body)
	res := &provider.Result{ServedModel: root.Get("model").Str, ResponseID: root.Get("id").Str}
	if u := root.Get("usage"); u.IsObject() {
		res.Usage, res.UsageReported = chatUsage(u), true
	}
	var text wire.Text
	root.Get("choices").ForEach(func(_, c gjson.Result) bool {
		observeChoice(c, res, &text, "message.content")
		return true
	})
	text.Fill(res)
	return res, nil
}

// ParseResponse reads a non-streaming Responses body: usage, model, id, status, the output
// text of its message items, content filtering.
func ParseResponse(body []byte) (*provider.Result, error) {
	if !gjson.ValidBytes(body) {
		return nil, fmt.Errorf("%w: responses body is not JSON", provider.ErrMalformed)
	}
	root := gjson.ParseBytes(body)
	res := &provider.Result{}
	observeResponse(root, res)
	var text wire.Text
	root.Get("output").ForEach(func(_, item gjson.Result) bool {
		if item.Get("type").Str == "message" {
			item.Get("content").ForEach(func(_, part gjson.Result) bool {
				if part.Get("type").Str == "output_text" {
					text.Add(part.Get("text").Str)
				}
				return true
			})
		}
		return true
	})
	text.Fill(res)
	return res, nil
}
