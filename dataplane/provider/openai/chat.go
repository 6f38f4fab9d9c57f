package openai

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/internal/wire"
	"github.com/posthog/llm-gateway/dataplane/provider/sse"
)

var done = []byte("[DONE]")

// ChatReader reads a Chat Completions stream (OpenAI, or Azure OpenAI with its prompt-filter and
// annotation chunks). Every chunk is relayed byte for byte except the usage-only chunk the
// gateway asked for on the client's behalf (Call.ClientWantsUsage false), which is metered and
// hidden. "data: [DONE]" is the terminal event; a chunk with a top-level "error" object ends
// the stream with an *provider.UpstreamError.
type ChatReader struct {
	body      io.Closer
	sse       *sse.Reader
	wantUsage bool
	res       provider.Result
	text      wire.Text
	err       error
}

// NewChatReader reads the chat stream in body.
func NewChatReader(c *provider.Call, body io.ReadCloser, opts provider.Options) *ChatReader {
	return &ChatReader{body: body, sse: sse.NewReader(body, opts.EventLimit()), wantUsage: c.ClientWantsUsage}
}

// Next implements provider.EventReader.
func (r *ChatReader) Next() (*provider.Event, error) {
	if r.err != nil {
		return nil, r.err
	}
	ev, err := r.sse.Next()
	if err != nil {
		r.err = wire.EndError(err, false)
		return nil, r.err
	}
	if bytes.HasPrefix(ev.Data, done) {
		r.err = io.EOF
		return wire.NewEvent("", ev.Data, ev.Raw, true), nil
	}
	if !wire.Valid(ev.Data) {
		r.err = fmt.Errorf("%w: chat completion chunk is not JSON", provider.ErrMalformed)
		return nil, r.err
	}
	visible, uerr := r.observe(ev.Data)
	if uerr != nil {
		r.err = uerr
		return nil, uerr
	}
	return wire.NewEvent("", ev.Data, ev.Raw, visible), nil
}

// observe records what a chunk says. It reports whether the client sees the chunk.
func (r *ChatReader) observe(data []byte) (bool, *provider.UpstreamError) {
	var usage, choices, errObj gjson.Result
	wire.JSON(data).ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "choices":
			choices = v
		case "usage":
			usage = v
		case "error":
			errObj = v
		case "model":
			if r.res.ServedModel == "" && v.Str != "" {
				r.res.ServedModel = strings.Clone(v.Str)
			}
		case "id":
			if r.res.ResponseID == "" && v.Str != "" {
				r.res.ResponseID = strings.Clone(v.Str)
			}
		}
		return true
	})
	if errObj.Exists() && errObj.Type != gjson.Null {
		return false, StreamError(errObj, data)
	}
	hasChoices := false
	choices.ForEach(func(_, c gjson.Result) bool {
		hasChoices = true
		observeChoice(c, &r.res, &r.text, "delta.content")
		return true
	})
	if usage.IsObject() {
		r.res.Usage, r.res.UsageReported = chatUsage(usage), true
		return r.wantUsage || hasChoices, nil
	}
	return true, nil
}

// observeChoice records the text (of choice 0 only: n > 1 interleaves choices) and the finish
// reason of one choice.
func observeChoice(c gjson.Result, res *provider.Result, text *wire.Text, textPath string) {
	first := c.Get("index").Int() == 0
	if first {
		if t := c.Get(textPath); t.Type == gjson.String {
			text.Add(t.Str)
		}
	}
	if f := c.Get("finish_reason"); f.Type == gjson.String {
		if f.Str == "content_filter" {
			res.ContentFiltered = true
		}
		if first || res.StopReason == "" {
			res.StopReason = strings.Clone(f.Str)
		}
	}
}

// Result implements provider.EventReader.
func (r *ChatReader) Result() *provider.Result {
	r.text.Fill(&r.res)
	return &r.res
}

// Close implements provider.EventReader; a blocked Next returns.
func (r *ChatReader) Close() error { return r.body.Close() }
