package event

import (
	"time"

	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
)

// Call is everything the gateway knows about one client call, filled by the proxy core
// (dataplane/server, as record.Call) and recorded once, when the call is over (served,
// failed, rejected or abandoned by the client): the input of Build. Zero values mean
// "unknown / not applicable". Neither Build nor record.Recorder.Record keeps the Call or
// anything it points to after it returns, so the caller may reuse buffers.
type Call struct {
	// RequestID is the gateway's unique id of the call (the X-Request-Id it returned). Event
	// uuids are derived from it, so recording the same call twice yields the same uuids.
	RequestID string
	// TraceID is the X-PostHog-Trace-Id header; empty: a trace id is derived from RequestID.
	// Ids with characters PostHog does not allow in trace ids are mapped to a UUIDv5.
	TraceID string
	// SessionID is the X-PostHog-Session-Id header ($ai_session_id).
	SessionID string
	// DistinctID is the X-PostHog-Distinct-Id header. Empty: the event is attributed to the
	// team's service identity "llm-gateway:team:<team>" with $process_person_profile false.
	DistinctID string
	// Properties is the raw X-PostHog-Properties header: a JSON object merged into the event.
	// It cannot override properties the gateway sets ($ai_* and llm_gateway_*). Invalid JSON
	// is ignored and flagged with llm_gateway_properties_invalid.
	Properties []byte

	// Team is the team the call was attributed to (snapshot.Team.Name); Product is the product
	// from the /{product}/v1/... path or the X-PostHog-Product header ("" when none).
	Team    string
	Product string
	// PostHogAPIKey and PostHogHost are the team's project API key and capture host
	// (snapshot.Team.PostHogAPIKey / PostHogHost). Empty: the gateway's --capture-api-key /
	// --capture-endpoint apply.
	PostHogAPIKey string
	PostHogHost   string

	// Route is the LLMRoute name ("namespace/name"), "" when the call never matched one.
	Route string
	// Op is the client-facing operation (chat_completions, responses, messages, count_tokens).
	Op provider.Operation
	// Stream is true when the client asked for a streaming response.
	Stream bool

	// RequestedModel is the model string exactly as the client sent it; CanonicalModel is what
	// route resolution made of it; ServedModel is the model the provider says it used (the
	// response "model"), or else the provider model id sent upstream.
	RequestedModel string
	CanonicalModel string
	ServedModel    string

	// Provider, Backend and BaseURL describe the attempt that produced the response (or the
	// last attempt, when all failed): provider is lowercase openai|anthropic|bedrock|azure
	// (provider.Adapter.ProviderName), Backend the ProviderBackend name, BaseURL the upstream
	// base URL (provider.Adapter.BaseURL; recorded as $ai_base_url, never a PostHog host).
	// When empty they are taken from the last non-skipped Attempt.
	Provider string
	Backend  string
	BaseURL  string

	// RequestBody is the client's request body (after the gateway's documented edits). The
	// recorder reads $ai_input, $ai_tools, $ai_instructions and model parameters from it with
	// gjson; it is never re-encoded as a whole.
	RequestBody []byte
	// OutputText is the assistant text produced (provider.Result.OutputText), for
	// $ai_output_choices. For streams cut short it is the text streamed so far.
	OutputText string
	// StopReason is the provider's finish/stop reason ($ai_stop_reason).
	StopReason string
	// ResponseID is the provider's response id (chatcmpl-..., msg_..., resp_...).
	ResponseID string
	// ContentFiltered is set when the provider filtered the output.
	ContentFiltered bool

	// Status is the HTTP status the gateway returned to the client (200 for a stream that was
	// committed, even if it later ended with an error event).
	Status int
	// Error is the call's failure, nil when it succeeded: an upstream error, a stream cut
	// short, a gateway rejection or a client disconnect.
	Error *Error

	// Start is when the gateway received the request; the main event's timestamp.
	Start time.Time
	// Latency is the wall time from Start to the end of the response ($ai_latency).
	Latency time.Duration
	// TimeToFirstToken is the time from Start to the first content event sent to a streaming
	// client ($ai_time_to_first_token); zero when none was sent.
	TimeToFirstToken time.Duration

	// Usage is the token usage normalized by dataplane/cost (disjoint input parts).
	// UsageReported says the provider reported it; false with a non-zero Usage means the
	// gateway estimated it (stream cut short), recorded with llm_gateway_usage_estimated.
	Usage         cost.Usage
	UsageReported bool
	// Cost is the breakdown dataplane/cost computed for Usage: the same figures the budget
	// settled. Cost.Priced false means the model has no price: no cost is sent.
	Cost Cost

	// Attempts are the upstream attempts in order, including skipped targets and the one that
	// served the response. Every non-skipped attempt before the final one becomes its own
	// error event (a failover hop) in the call's trace.
	Attempts []Attempt

	// Rejection is set when the gateway refused the call itself (budget, rate limit, kill
	// switch) before any upstream was called.
	Rejection *Rejection

	// ClientDisconnected is set when the client went away before the response was complete.
	ClientDisconnected bool
}

// Error is a call's or an attempt's failure.
type Error struct {
	// Type is a short machine name: the provider's error type or code (rate_limit_exceeded,
	// overloaded_error, ...), or the gateway's own (budget_exceeded, client_disconnected,
	// stream_truncated, timeout ...). Recorded as $ai_error_type.
	Type string
	// Message is a human-readable description ($ai_error). Never a prompt or a credential.
	Message string
}

// Attempt is one try of one upstream backend.
type Attempt struct {
	// Backend is the ProviderBackend name; Provider the lowercase provider name; BaseURL the
	// upstream base URL; RequestURL the full upstream URL of the request, when known.
	Backend    string
	Provider   string
	BaseURL    string
	RequestURL string
	// Model is the provider model id sent to this backend.
	Model string
	// Start is when the attempt began; Latency how long it took until its outcome was known
	// (the whole response for the served attempt).
	Start   time.Time
	Latency time.Duration
	// Status is the upstream HTTP status (0 when no response arrived).
	Status int
	// ErrorClass is the failover class (snapshot.Failover*) that moved the call on, "" for a
	// non-retryable failure or success. Error is the attempt's failure, nil on success.
	ErrorClass string
	Error      *Error
	// Skipped is set when the target was not called; SkipReason says why (open circuit,
	// unsupported feature, sticky request ...). Skipped attempts are listed on the main event.
	Skipped    bool
	SkipReason string
}

// Rejection is the gateway's own refusal of a call.
type Rejection struct {
	// Limit names the limit that tripped, as budget.LimitError.Limit ("spend:Day",
	// "requests_per_minute", "suspended", "unpriced_model", ...).
	Limit string
}

// Cost is the cost breakdown of a call in integer micro-dollars, exactly as dataplane/cost
// computed it (cost.Compute): TotalMicros is the sum of the four parts, Priced false means
// the model has no known price.
type Cost = cost.Breakdown
