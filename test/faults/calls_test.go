package faults

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/responses"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// column is one way of calling the gateway: an operation, streaming or not.
type column struct {
	op     provider.Operation
	stream bool
}

func (c column) shape() snapshot.Shape { return c.op.Shape() }

func (c column) String() string {
	mode := "non-stream"
	if c.stream {
		mode = "stream"
	}
	return string(c.op) + "/" + mode
}

// columns are the suite's columns: each operation of each shape, streaming and not.
var columns = []column{
	{provider.OpMessages, true}, {provider.OpMessages, false},
	{provider.OpChatCompletions, true}, {provider.OpChatCompletions, false},
	{provider.OpResponses, true}, {provider.OpResponses, false},
}

// outcome is what the SDK client saw.
type outcome struct {
	header http.Header
	// text and usage (input, output tokens) as the SDK parsed them; for a stream, accumulated.
	text    string
	in, out int64
	// sig is the structure of every object the SDK parsed.
	sig signature
	// events counts stream events received; finished is set when the response ended
	// normally (message_stop, a finish_reason, response.completed, a stop reason).
	events   int
	finished bool
	err      error
}

// responsesStreamError is a Responses `event: error`, which the SDK hands over as an event.
type responsesStreamError struct{ code, message string }

func (e *responsesStreamError) Error() string {
	return "responses error event " + e.code + ": " + e.message
}

const prompt = "Say something through the gateway"

// call makes one call of col with the official SDK.
func (c *cell) call(ctx context.Context, col column) outcome {
	var raw *http.Response
	var o outcome
	switch col.op {
	case provider.OpMessages:
		o = c.messages(ctx, col.stream, aoption.WithResponseInto(&raw))
	case provider.OpChatCompletions:
		o = c.chat(ctx, col.stream, ooption.WithResponseInto(&raw))
	case provider.OpResponses:
		o = c.responses(ctx, col.stream, ooption.WithResponseInto(&raw))
	default:
		panic("no call for " + col.String())
	}
	if raw != nil {
		o.header = raw.Header
	}
	return o
}

func (c *cell) messages(ctx context.Context, stream bool, opt aoption.RequestOption) outcome {
	client := c.anthropicClient()
	params := anthropic.MessageNewParams{Model: claudeModel, MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))}}
	o := outcome{sig: signature{}}
	if !stream {
		msg, err := client.Messages.New(ctx, params, opt)
		if o.err = err; err == nil {
			o.sig.add("message", msg.RawJSON())
			o.text, o.in, o.out = messageText(msg), msg.Usage.InputTokens, msg.Usage.OutputTokens
			o.finished = msg.StopReason != ""
		}
		return o
	}
	s := client.Messages.NewStreaming(ctx, params, opt)
	defer s.Close()
	var acc anthropic.Message
	for s.Next() {
		ev := s.Current()
		o.events++
		o.sig.add(ev.Type, ev.RawJSON())
		_ = acc.Accumulate(ev)
		o.finished = o.finished || ev.Type == "message_stop"
	}
	o.err = s.Err()
	o.text, o.in, o.out = messageText(&acc), acc.Usage.InputTokens, acc.Usage.OutputTokens
	return o
}

func messageText(m *anthropic.Message) string {
	var b strings.Builder
	for _, c := range m.Content {
		b.WriteString(c.Text)
	}
	return b.String()
}

func (c *cell) chat(ctx context.Context, stream bool, opt ooption.RequestOption) outcome {
	client := c.openaiClient()
	params := openai.ChatCompletionNewParams{Model: gptModel,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)}}
	o := outcome{sig: signature{}}
	if !stream {
		res, err := client.Chat.Completions.New(ctx, params, opt)
		if o.err = err; err == nil {
			o.sig.add("chat.completion", res.RawJSON())
			if len(res.Choices) > 0 {
				o.text, o.finished = res.Choices[0].Message.Content, res.Choices[0].FinishReason != ""
			}
			o.in, o.out = res.Usage.PromptTokens, res.Usage.CompletionTokens
		}
		return o
	}
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	s := client.Chat.Completions.NewStreaming(ctx, params, opt)
	defer s.Close()
	var acc openai.ChatCompletionAccumulator
	for s.Next() {
		chunk := s.Current()
		o.events++
		o.sig.add("chat.completion.chunk", chunk.RawJSON())
		acc.AddChunk(chunk)
		if len(chunk.Choices) > 0 && chunk.Choices[0].FinishReason != "" {
			o.finished = true
		}
	}
	o.err = s.Err()
	if len(acc.Choices) > 0 {
		o.text = acc.Choices[0].Message.Content
	}
	o.in, o.out = acc.Usage.PromptTokens, acc.Usage.CompletionTokens
	return o
}

func (c *cell) responses(ctx context.Context, stream bool, opt ooption.RequestOption) outcome {
	client := c.openaiClient()
	params := responses.ResponseNewParams{Model: gptModel, Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(prompt)}}
	o := outcome{sig: signature{}}
	if !stream {
		res, err := client.Responses.New(ctx, params, opt)
		if o.err = err; err == nil {
			o.sig.add("response", res.RawJSON())
			o.text, o.in, o.out = res.OutputText(), res.Usage.InputTokens, res.Usage.OutputTokens
			o.finished = res.Status == responses.ResponseStatusCompleted
		}
		return o
	}
	s := client.Responses.NewStreaming(ctx, params, opt)
	defer s.Close()
	var text strings.Builder
	for s.Next() {
		ev := s.Current()
		o.events++
		o.sig.add(ev.Type, ev.RawJSON())
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed":
			o.finished = true
			o.in, o.out = ev.Response.Usage.InputTokens, ev.Response.Usage.OutputTokens
		case "error":
			o.err = &responsesStreamError{code: ev.Code, message: ev.Message}
		}
	}
	if err := s.Err(); err != nil {
		o.err = err
	}
	o.text = text.String()
	return o
}

// clientError is an error as the client's SDK reports it.
type clientError struct {
	// status is the HTTP status (200 for an error inside a committed stream).
	status int
	// typ is error.type (Anthropic, OpenAI); code is OpenAI's error.code, or a Responses
	// error event's code.
	typ, code string
	// header is the error response's headers (nil inside a stream).
	header http.Header
}

// asClientError reads the SDK's typed error; ok is false for anything else (a transport or
// decoding error, which a client must never get from the gateway).
func asClientError(err error) (ce clientError, ok bool) {
	var (
		ae *anthropic.Error
		oe *openai.Error
		se *ssestream.StreamError
		re *responsesStreamError
	)
	switch {
	case errors.As(err, &ae):
		ce = clientError{status: ae.StatusCode, typ: string(ae.Type())}
		if ae.Response != nil && ae.StatusCode != http.StatusOK {
			ce.header = ae.Response.Header
		}
	case errors.As(err, &oe):
		ce = clientError{status: oe.StatusCode, typ: oe.Type, code: oe.Code}
		if oe.Response != nil {
			ce.header = oe.Response.Header
		}
	case errors.As(err, &se):
		data := string(se.Event.Data)
		ce = clientError{status: http.StatusOK, typ: gjson.Get(data, "error.type").Str, code: gjson.Get(data, "error.code").Str}
	case errors.As(err, &re):
		ce = clientError{status: http.StatusOK, code: re.code}
	default:
		return ce, false
	}
	return ce, true
}

// signature is the structure of the JSON objects an SDK parsed, per object or event type:
// every key path (arrays as []) with its JSON kind.
type signature map[string]map[string]bool

func (s signature) add(kind, raw string) {
	paths := s[kind]
	if paths == nil {
		paths = map[string]bool{}
		s[kind] = paths
	}
	walk(gjson.Parse(raw), "", paths)
}

func walk(v gjson.Result, path string, out map[string]bool) {
	switch {
	case v.IsObject():
		out[path+":object"] = true
		v.ForEach(func(k, child gjson.Result) bool {
			walk(child, path+"."+k.Str, out)
			return true
		})
	case v.IsArray():
		out[path+":array"] = true
		v.ForEach(func(_, child gjson.Result) bool {
			walk(child, path+"[]", out)
			return true
		})
	case v.Type == gjson.True || v.Type == gjson.False:
		out[path+":bool"] = true
	default:
		out[path+":"+strings.ToLower(v.Type.String())] = true
	}
}

// extensions are the provider-specific fields that differ between a primary and its hosted
// equivalent (not the gateway's doing): Azure's content-filter annotations (and its
// prompt-annotation chunk), OpenAI's stream obfuscation padding and service_tier, which
// Azure does not report.
var extensions = []string{"prompt_filter_results", "content_filter_results", "obfuscation", "service_tier"}

// without returns s minus the extension paths, with null kinds folded away (a field that one
// provider sends as null and the other omits is the same to an SDK).
func (s signature) without() signature {
	out := signature{}
	for kind, paths := range s {
		m := map[string]bool{}
		for p := range paths {
			if strings.HasSuffix(p, ":null") || slices.ContainsFunc(extensions, func(x string) bool { return strings.Contains(p, "."+x) }) {
				continue
			}
			m[p] = true
		}
		out[kind] = m
	}
	return out
}

// diff lists what differs between two signatures ("-" only in want, "+" only in got).
func diff(want, got signature) []string {
	var out []string
	kinds := map[string]bool{}
	for k := range want {
		kinds[k] = true
	}
	for k := range got {
		kinds[k] = true
	}
	for k := range kinds {
		for p := range want[k] {
			if !got[k][p] {
				out = append(out, fmt.Sprintf("- %s %s", k, p))
			}
		}
		for p := range got[k] {
			if !want[k][p] {
				out = append(out, fmt.Sprintf("+ %s %s", k, p))
			}
		}
	}
	slices.Sort(out)
	return out
}
