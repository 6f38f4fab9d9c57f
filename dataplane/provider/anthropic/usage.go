package anthropic

import (
	"strings"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/internal/wire"
)

// counts are Anthropic's raw usage numbers and which of them the stream has reported.
type counts struct {
	input, cacheRead, cacheCreation, cache5m, cache1h, output int64
	seen                                                      [6]bool
}

// apply overwrites every count present in u (Anthropic's rule: message_delta usage is
// cumulative; never add).
func (c *counts) apply(u gjson.Result) {
	set := func(i int, v gjson.Result, dst *int64) {
		if v.Type == gjson.Number {
			*dst, c.seen[i] = v.Int(), true
		}
	}
	set(0, u.Get("input_tokens"), &c.input)
	set(1, u.Get("cache_read_input_tokens"), &c.cacheRead)
	set(2, u.Get("cache_creation_input_tokens"), &c.cacheCreation)
	set(3, u.Get("cache_creation.ephemeral_5m_input_tokens"), &c.cache5m)
	set(4, u.Get("cache_creation.ephemeral_1h_input_tokens"), &c.cache1h)
	set(5, u.Get("output_tokens"), &c.output)
}

// fallback fills counts the stream never reported from Bedrock's invocation metrics
// (docs/providers.md "AWS Bedrock: the stream translated, and its usage"):
// inputTokenCount excludes cached tokens, as input_tokens does.
func (c *counts) fallback(m gjson.Result) {
	fill := func(i int, v gjson.Result, dst *int64) {
		if !c.seen[i] && v.Type == gjson.Number {
			*dst, c.seen[i] = v.Int(), true
		}
	}
	fill(0, m.Get("inputTokenCount"), &c.input)
	fill(1, m.Get("cacheReadInputTokenCount"), &c.cacheRead)
	fill(2, m.Get("cacheWriteInputTokenCount"), &c.cacheCreation)
	fill(5, m.Get("outputTokenCount"), &c.output)
}

func (c *counts) any() bool {
	for _, s := range c.seen {
		if s {
			return true
		}
	}
	return false
}

func (c *counts) usage() cost.Usage {
	return cost.FromAnthropic(c.input, c.cacheRead, c.cacheCreation, c.cache5m, c.cache1h, c.output)
}

// InvocationMetrics is the key Bedrock adds to the inner message_stop event.
const InvocationMetrics = "amazon-bedrock-invocationMetrics"

// Accumulator follows the events of one Messages stream, as Message.Accumulate in the SDK
// does: message_start gives the id, model and input counts; each message_delta overwrites the
// counts it carries; message_stop ends the stream (and, from Bedrock, carries invocation
// metrics used for any count never reported).
type Accumulator struct {
	res      provider.Result
	text     wire.Text
	counts   counts
	final    bool // message_delta or message_stop seen: the output count is final
	Terminal bool // message_stop seen
}

// Observe records one event (root is its JSON; typ its type). It returns an
// *provider.UpstreamError for an error event.
func (a *Accumulator) Observe(typ string, root gjson.Result, raw []byte) *provider.UpstreamError {
	switch typ {
	case "message_start":
		msg := root.Get("message")
		if v := msg.Get("id").Str; v != "" {
			a.res.ResponseID = strings.Clone(v)
		}
		if v := msg.Get("model").Str; v != "" {
			a.res.ServedModel = strings.Clone(v)
		}
		a.counts.apply(msg.Get("usage"))
	case "content_block_delta":
		if d := root.Get("delta"); d.Get("type").Str == "text_delta" {
			a.text.Add(d.Get("text").Str)
		}
	case "message_delta":
		if r := root.Get("delta.stop_reason"); r.Type == gjson.String {
			a.stop(r.Str)
		}
		a.counts.apply(root.Get("usage"))
		a.final = true
	case "message_stop":
		if u := root.Get("usage"); u.IsObject() {
			a.counts.apply(u)
		}
		a.counts.fallback(root.Get(gjson.Escape(InvocationMetrics)))
		a.final, a.Terminal = true, true
	case "error":
		return StreamError(root, raw)
	}
	return nil
}

func (a *Accumulator) stop(reason string) {
	a.res.StopReason = strings.Clone(reason)
	if reason == "refusal" {
		a.res.ContentFiltered = true
	}
}

// Result is what the stream has said so far. Usage holds the counts seen even before the
// final one (message_start's input); UsageReported is true once the output count is final.
func (a *Accumulator) Result() *provider.Result {
	a.text.Fill(&a.res)
	a.res.Usage = a.counts.usage()
	a.res.UsageReported = a.final && a.counts.any()
	return &a.res
}

// ParseMessage reads a non-streaming Messages body: id, model, text content, stop reason,
// usage.
func ParseMessage(body []byte) (*provider.Result, error) {
	root, err := parseJSON(body, "message")
	if err != nil {
		return nil, err
	}
	var a Accumulator
	a.res.ResponseID, a.res.ServedModel = root.Get("id").Str, root.Get("model").Str
	if r := root.Get("stop_reason"); r.Type == gjson.String {
		a.stop(r.Str)
	}
	root.Get("content").ForEach(func(_, b gjson.Result) bool {
		if b.Get("type").Str == "text" {
			a.text.Add(b.Get("text").Str)
		}
		return true
	})
	if u := root.Get("usage"); u.IsObject() {
		a.counts.apply(u)
		a.final = true
	}
	return a.Result(), nil
}
