// Package provider is the seam between the proxy core (dataplane/server) and the wire code of
// each upstream (dataplane/provider/{openai,anthropic,bedrock,azure}).
//
// The proxy core never looks at provider-specific bytes: it asks an Adapter to build the
// upstream request, to classify an error response, to parse a non-streaming body and to turn a
// streaming body into client-ready SSE events. One Adapter exists per snapshot.Backend.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Operation is the client-facing API operation.
type Operation string

const (
	OpChatCompletions Operation = "chat_completions" // POST /v1/chat/completions (OpenAI shape)
	OpResponses       Operation = "responses"        // POST /v1/responses (OpenAI shape)
	OpMessages        Operation = "messages"         // POST /v1/messages (Anthropic shape)
	OpCountTokens     Operation = "count_tokens"     // POST /v1/messages/count_tokens (Anthropic shape)
)

// ShapeOf returns the wire shape of an operation.
func (op Operation) Shape() snapshot.Shape {
	switch op {
	case OpMessages, OpCountTokens:
		return snapshot.ShapeAnthropic
	}
	return snapshot.ShapeOpenAI
}

// Call is one client request as it is sent to one backend.
type Call struct {
	Op     Operation
	Stream bool
	// Model is the provider model id to send to this backend (see Adapter.UpstreamModel).
	Model string
	// Body is the client's body after the gateway's shape-level edits (max_tokens default and
	// clamp, stream_options.include_usage); the adapter applies only its provider envelope
	// (model id, Bedrock body surgery).
	Body []byte
	// Header is the client's request header. Adapters copy only allowlisted headers.
	Header http.Header
	// RawQuery is the client's query string as sent. Adapters never forward it as is: only
	// what ClientQuery allows (Anthropic's beta=true) reaches a provider.
	RawQuery string
	// ClientWantsUsage is false when the gateway injected stream_options.include_usage into an
	// OpenAI chat stream: the usage-only chunk is then metered and not shown to the client.
	ClientWantsUsage bool
}

// Adapter is the wire behaviour of one backend, built once per snapshot and safe for
// concurrent use.
type Adapter interface {
	Backend() *snapshot.Backend
	// BaseURL is the upstream provider URL recorded as $ai_base_url (e.g. https://api.openai.com/v1).
	BaseURL() string
	// ProviderName is the lowercase provider recorded as $ai_provider: openai, anthropic, bedrock, azure.
	ProviderName() string
	// UpstreamModel returns the model id this backend wants for a canonical model the client
	// asked for as requested (ModelMap first; Bedrock and Azure derive one when unmapped).
	UpstreamModel(canonical, requested string) string
	// Supports reports whether this backend can serve the call unchanged. When it cannot (an
	// Anthropic beta Bedrock rejects, an Azure API version too old for a field, a sticky
	// previous_response_id), reason says why; the call is then not sent there.
	Supports(c *Call) (ok bool, reason string)
	// NewRequest builds the upstream request for one attempt: URL, auth, headers, envelope.
	NewRequest(ctx context.Context, c *Call) (*http.Request, error)
	// Error classifies a non-2xx upstream response whose (bounded) body was read.
	Error(c *Call, status int, header http.Header, body []byte) *UpstreamError
	// Parse reads a non-streaming 2xx body: usage, served model, output. It may return a body
	// to send to the client in place of the upstream one (nil keeps the upstream bytes).
	Parse(c *Call, header http.Header, body []byte) (*Result, []byte, error)
	// Stream turns a streaming 2xx response into client-shaped SSE events.
	Stream(c *Call, resp *http.Response) EventReader
}

// Event is one SSE event as the client will receive it.
type Event struct {
	// Name is the SSE event name ("" for OpenAI chat chunks, which have only data lines).
	Name string
	// Data is the event's data payload (JSON, or "[DONE]").
	Data []byte
	// Raw is the exact bytes to write to the client, ending with the blank line. Nil means the
	// event is metered but not shown to the client (the injected OpenAI usage chunk).
	Raw []byte
}

// EventReader yields the events of one upstream stream.
type EventReader interface {
	// Next returns the next event; the caller owns it (it stays valid after later calls). At
	// the stream's proper end it returns io.EOF (after the
	// terminal event: [DONE], message_stop, response.completed ...). An upstream error event or
	// exception frame returns an *UpstreamError; a stream that ends before its terminal event
	// returns ErrTruncated; bytes that are not a valid stream return an error wrapping
	// ErrMalformed. Next never blocks longer than the underlying body read.
	Next() (*Event, error)
	// Result is what has been observed so far: usage, served model, output text.
	Result() *Result
	Close() error
}

// Result is what the gateway learned from an upstream response.
type Result struct {
	// Usage is the provider's own numbers, normalized; UsageReported says whether the provider
	// reported them (false: the stream ended early and the caller must estimate).
	Usage         cost.Usage
	UsageReported bool
	// ServedModel is the model the provider says it used (response "model").
	ServedModel string
	ResponseID  string
	StopReason  string
	// OutputText is the assistant text produced (concatenated), for $ai_output_choices, up to
	// 1 MiB; OutputTruncated says the rest was dropped.
	OutputText      string
	OutputTruncated bool
	// ContentFiltered is set when the provider filtered the output (finish_reason
	// content_filter, stop_reason refusal, incomplete_details content_filter).
	ContentFiltered bool
}

var (
	// ErrTruncated: the upstream stream ended before its terminal event.
	ErrTruncated = errors.New("upstream stream ended before its terminal event")
	// ErrMalformed: the upstream sent bytes that are not a valid stream of its format.
	ErrMalformed = errors.New("malformed upstream stream")
)

// UpstreamError is a failed upstream response or an error inside a stream.
type UpstreamError struct {
	// Class is the failover class (snapshot.Failover*), or "" when the failure is the
	// request's own (4xx client errors, content policy): those never fail over.
	Class string
	// ContentPolicy marks a content-filter or policy result (never a failover trigger).
	ContentPolicy bool
	// Status is the upstream HTTP status (200 for an error event inside a stream). Bedrock
	// errors carry the status Anthropic would have used (ServiceQuotaExceededException's 400
	// becomes 429), matching their Anthropic-shaped Body.
	Status int
	// Type is the provider's error name: Anthropic error.type, OpenAI error.code or type,
	// Bedrock exception name.
	Type    string
	Message string
	// RetryAfter is the upstream's retry-after-ms / retry-after, when it sent one.
	RetryAfter time.Duration
	// Body and Header are the upstream error response, for relaying a client error as-is
	// (for Bedrock: re-rendered in the Anthropic shape; a Bedrock JSON error never reaches a
	// client). For an error inside a stream, Body is the error event's JSON.
	Body   []byte
	Header http.Header
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("upstream %d %s: %s", e.Status, e.Type, e.Message)
}

// Retryable reports whether another backend may be tried.
func (e *UpstreamError) Retryable() bool { return e.Class != "" }
