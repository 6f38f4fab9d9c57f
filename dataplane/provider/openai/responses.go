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

// ResponsesReader reads a Responses API stream: named events, no [DONE]. The terminal events
// are response.completed, response.incomplete and response.failed (relayed, then io.EOF); an
// "error" event ends the stream with an *provider.UpstreamError; a stray "data: [DONE]" also
// ends it (not relayed: Responses clients do not expect it). Usage is only in the terminal
// event's response.usage.
type ResponsesReader struct {
	body io.Closer
	sse  *sse.Reader
	res  provider.Result
	text wire.Text
	err  error
}

// NewResponsesReader reads the Responses stream in body.
func NewResponsesReader(body io.ReadCloser, opts provider.Options) *ResponsesReader {
	return &ResponsesReader{body: body, sse: sse.NewReader(body, opts.EventLimit())}
}

// Next implements provider.EventReader.
func (r *ResponsesReader) Next() (*provider.Event, error) {
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
		return nil, r.err
	}
	if !wire.Valid(ev.Data) {
		r.err = fmt.Errorf("%w: responses event is not JSON", provider.ErrMalformed)
		return nil, r.err
	}
	root := wire.JSON(ev.Data)
	typ := root.Get("type").Str
	switch typ {
	case "error":
		r.err = StreamError(root, ev.Data)
		return nil, r.err
	case "response.output_text.delta":
		r.text.Add(root.Get("delta").Str)
	case "response.created", "response.in_progress", "response.queued":
		r.observeResponse(root.Get("response"))
	case "response.completed", "response.incomplete", "response.failed":
		r.observeResponse(root.Get("response"))
		r.err = io.EOF
	}
	return wire.NewEvent(wire.Name(ev.Name), ev.Data, ev.Raw, true), nil
}

func (r *ResponsesReader) observeResponse(resp gjson.Result) {
	observeResponse(resp, &r.res)
}

// observeResponse records a Response object: id, model, status, usage, content filtering.
func observeResponse(resp gjson.Result, res *provider.Result) {
	if v := resp.Get("id"); v.Str != "" && res.ResponseID == "" {
		res.ResponseID = strings.Clone(v.Str)
	}
	if v := resp.Get("model"); v.Str != "" {
		res.ServedModel = strings.Clone(v.Str)
	}
	if u := resp.Get("usage"); u.IsObject() {
		res.Usage, res.UsageReported = responsesUsage(u), true
	}
	status := resp.Get("status").Str
	reason := resp.Get("incomplete_details.reason").Str
	switch {
	case reason != "":
		res.StopReason = strings.Clone(reason)
	case status != "" && status != "in_progress" && status != "queued":
		res.StopReason = strings.Clone(status)
	}
	if reason == "content_filter" {
		res.ContentFiltered = true
	}
	if _, policy := classify(0, resp.Get("error.code").Str, ""); policy {
		res.ContentFiltered = true
	}
}

// Result implements provider.EventReader.
func (r *ResponsesReader) Result() *provider.Result {
	r.text.Fill(&r.res)
	return &r.res
}

// Close implements provider.EventReader; a blocked Next returns.
func (r *ResponsesReader) Close() error { return r.body.Close() }
