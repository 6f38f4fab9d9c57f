package record

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/catalog"
	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/internal/jsonx"
	"github.com/posthog/llm-gateway/test/capturesink"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

var t0 = time.Date(2026, 9, 10, 12, 0, 0, 0, time.UTC)

// Prices of the worked examples (docs/events.md "Worked examples"), in micro-dollars per
// million tokens.
var (
	gpt4oMini = catalog.Price{Priced: true, Rates: catalog.Rates{
		InputPerMTok: 150_000, OutputPerMTok: 600_000, CacheReadPerMTok: 75_000, CacheWrite5mPerMTok: 150_000,
	}}
	sonnet = catalog.Price{Priced: true, Rates: catalog.Rates{
		InputPerMTok: 3_000_000, OutputPerMTok: 15_000_000, CacheReadPerMTok: 300_000,
		CacheWrite5mPerMTok: 3_750_000, CacheWrite1hPerMTok: 6_000_000,
	}}
	gpt41Mini = catalog.Price{Priced: true, Rates: catalog.Rates{
		InputPerMTok: 400_000, OutputPerMTok: 1_600_000, CacheReadPerMTok: 100_000, CacheWrite5mPerMTok: 400_000,
	}}
)

const (
	chatBody = `{"model":"gpt-4o-mini","temperature":0.2,"max_tokens":512,
  "messages":[{"role":"system","content":"You are a helpful assistant."},
              {"role":"user","content":"Tell me a fun fact about hedgehogs"}]}`
	anthropicBody = `{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"temperature":1,
  "system":[{"type":"text","text":"<long cached system prompt>","cache_control":{"type":"ephemeral","ttl":"1h"}}],
  "messages":[{"role":"user","content":[{"type":"text","text":"Summarise the attached doc","cache_control":{"type":"ephemeral"}}]}]}`
	responsesBody = `{"model":"gpt-4.1-mini","instructions":"Answer in one word.","input":"Capital of France?","max_output_tokens":64,
  "tools":[{"type":"function","name":"lookup","parameters":{"type":"object"}}],"reasoning":{"effort":"low"}}`
)

func anthropicAttempt(start time.Time, latency time.Duration) Attempt {
	return Attempt{
		Backend: "llm/anthropic", Provider: "anthropic", BaseURL: "https://api.anthropic.com",
		RequestURL: "https://api.anthropic.com/v1/messages", Model: "claude-sonnet-4-5",
		Start: start, Latency: latency, Status: 200,
	}
}

// scenarios are the calls of the list (and a few edge cases), as the proxy core
// fills them.
func scenarios() map[string]*Call {
	openaiUsage := cost.FromOpenAI(1200, 1024, 0, 150, 0)
	anthropicUsage := cost.FromAnthropic(50, 8000, 2000, 1500, 500, 400)
	responsesUsage := cost.FromOpenAI(30, 0, 0, 12, 8)
	disconnectUsage := cost.FromAnthropic(50, 8000, 0, 0, 0, 37)
	return map[string]*Call{
		// Non-streaming OpenAI chat completion with a cached prompt.
		"openai_chat_cached": {
			RequestID: "req-openai-1", TraceID: "0b8e4c1a-7d3f-4e55-a1b2-9c8d7e6f5a40", SessionID: "conv-789",
			DistinctID: "user_123", Team: "max-ai", Product: "max", Route: "llm/openai",
			Op: provider.OpChatCompletions, RequestedModel: "gpt-4o-mini", CanonicalModel: "gpt-4o-mini",
			ServedModel: "gpt-4o-mini-2024-07-18", RequestBody: []byte(chatBody),
			OutputText: "Hedgehogs have around 5,000 to 7,000 spines.", StopReason: "stop", ResponseID: "chatcmpl-abc",
			Status: 200, Start: t0, Latency: 1412 * time.Millisecond,
			Usage: openaiUsage, UsageReported: true, Cost: cost.Compute(gpt4oMini, openaiUsage),
			Attempts: []Attempt{{
				Backend: "llm/openai", Provider: "openai", BaseURL: "https://api.openai.com/v1",
				RequestURL: "https://api.openai.com/v1/chat/completions", Model: "gpt-4o-mini",
				Start: t0, Latency: 1400 * time.Millisecond, Status: 200,
			}},
			Provider: "openai", Backend: "llm/openai", BaseURL: "https://api.openai.com/v1",
		},
		// Streaming Anthropic Messages with cache read and write (5m and 1h).
		"anthropic_stream_cache": {
			RequestID: "req-anthropic-1", DistinctID: "user_123", Team: "max-ai", Route: "llm/anthropic",
			Op: provider.OpMessages, Stream: true, RequestedModel: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
			ServedModel: "claude-sonnet-4-5-20250929", RequestBody: []byte(anthropicBody),
			OutputText: "The document argues…", StopReason: "end_turn", ResponseID: "msg_01",
			Status: 200, Start: t0, Latency: 6900 * time.Millisecond, TimeToFirstToken: 620 * time.Millisecond,
			Usage: anthropicUsage, UsageReported: true, Cost: cost.Compute(sonnet, anthropicUsage),
			Attempts: []Attempt{anthropicAttempt(t0, 6890*time.Millisecond)},
		},
		// OpenAI Responses API: instructions, string input, tools, reasoning tokens; no
		// distinct id (service identity).
		"responses_api": {
			RequestID: "req-responses-1", Team: "max-ai", Route: "llm/openai",
			Op: provider.OpResponses, RequestedModel: "gpt-4.1-mini", CanonicalModel: "gpt-4.1-mini",
			ServedModel: "gpt-4.1-mini-2025-04-14", RequestBody: []byte(responsesBody),
			OutputText: "Paris", StopReason: "completed", ResponseID: "resp_123",
			Status: 200, Start: t0, Latency: 800 * time.Millisecond,
			Usage: responsesUsage, UsageReported: true, Cost: cost.Compute(gpt41Mini, responsesUsage),
			Attempts: []Attempt{{
				Backend: "llm/openai", Provider: "openai", BaseURL: "https://api.openai.com/v1",
				RequestURL: "https://api.openai.com/v1/responses", Model: "gpt-4.1-mini",
				Start: t0, Latency: 790 * time.Millisecond, Status: 200,
			}},
		},
		// The provider answered 429 and the route does not fail over on it.
		"upstream_error": {
			RequestID: "req-error-1", TraceID: "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918", DistinctID: "user_123",
			Team: "max-ai", Route: "llm/openai", Op: provider.OpChatCompletions,
			RequestedModel: "gpt-4o-mini", CanonicalModel: "gpt-4o-mini", RequestBody: []byte(chatBody),
			Status: 429, Error: &Error{Type: "rate_limit_exceeded", Message: "Rate limit reached for gpt-4o-mini"},
			Start: t0, Latency: 231 * time.Millisecond, Cost: cost.Compute(gpt4oMini, cost.Usage{}),
			Attempts: []Attempt{{
				Backend: "llm/openai", Provider: "openai", BaseURL: "https://api.openai.com/v1",
				RequestURL: "https://api.openai.com/v1/chat/completions", Model: "gpt-4o-mini",
				Start: t0, Latency: 225 * time.Millisecond, Status: 429, ErrorClass: "RateLimited",
				Error: &Error{Type: "rate_limit_exceeded", Message: "Rate limit reached for gpt-4o-mini"},
			}},
		},
		// The team's daily budget would be exceeded: rejected before any upstream.
		"budget_rejection": {
			RequestID: "req-budget-1", DistinctID: "user_123", Team: "max-ai", Product: "max", Route: "llm/anthropic",
			Op: provider.OpMessages, Stream: true, RequestedModel: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
			RequestBody: []byte(anthropicBody), Status: 429,
			Error:     &Error{Type: "budget_exceeded", Message: "team max-ai would exceed its Day spend limit of $50.00; resets at 2026-09-11T00:00:00Z"},
			Rejection: &Rejection{Limit: "spend:Day"},
			Start:     t0, Latency: 2 * time.Millisecond,
		},
		// Anthropic is overloaded (529): the call fails over to Bedrock, skipping a backend
		// whose circuit is open.
		"failover_hop": {
			RequestID: "req-failover-1", TraceID: "d1c2b3a4-0000-4a5b-8c9d-112233445566", DistinctID: "user_123",
			Team: "max-ai", Route: "llm/anthropic", Op: provider.OpMessages,
			RequestedModel: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
			ServedModel: "claude-sonnet-4-5-20250929", RequestBody: []byte(strings.Replace(anthropicBody, `"stream":true,`, "", 1)),
			OutputText: "Done.", StopReason: "end_turn", ResponseID: "msg_bdrk_01",
			Status: 200, Start: t0, Latency: 2500 * time.Millisecond,
			Usage: cost.FromAnthropic(120, 0, 0, 0, 0, 3), UsageReported: true,
			Cost: cost.Compute(sonnet, cost.FromAnthropic(120, 0, 0, 0, 0, 3)),
			Attempts: []Attempt{
				{
					Backend: "llm/anthropic", Provider: "anthropic", BaseURL: "https://api.anthropic.com",
					RequestURL: "https://api.anthropic.com/v1/messages", Model: "claude-sonnet-4-5",
					Start: t0, Latency: 400 * time.Millisecond, Status: 529, ErrorClass: "Overloaded",
					Error: &Error{Type: "overloaded_error", Message: "Overloaded"},
				},
				{Backend: "llm/anthropic-eu", Skipped: true, SkipReason: "circuit open"},
				{
					Backend: "llm/bedrock", Provider: "bedrock", BaseURL: "https://bedrock-runtime.us-east-1.amazonaws.com",
					RequestURL: "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke",
					Model:      "us.anthropic.claude-sonnet-4-5-20250929-v1:0", Start: t0.Add(410 * time.Millisecond),
					Latency: 2080 * time.Millisecond, Status: 200,
				},
			},
		},
		// The client went away mid-stream: output so far, input from message_start, the
		// output count estimated by the gateway.
		"client_disconnect": {
			RequestID: "req-disconnect-1", DistinctID: "user_123", Team: "max-ai", Route: "llm/anthropic",
			Op: provider.OpMessages, Stream: true, RequestedModel: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
			ServedModel: "claude-sonnet-4-5-20250929", RequestBody: []byte(anthropicBody),
			OutputText: "The document begins by", Status: 200, ClientDisconnected: true,
			Error: &Error{Type: "client_disconnected", Message: "client closed the connection after 37 output tokens"},
			Start: t0, Latency: 1500 * time.Millisecond, TimeToFirstToken: 640 * time.Millisecond,
			Usage: disconnectUsage, UsageReported: false, Cost: cost.Compute(sonnet, disconnectUsage),
			Attempts: []Attempt{anthropicAttempt(t0, 1490*time.Millisecond)},
		},
		// Caller properties cannot override the gateway's; an invalid trace id is mapped.
		"caller_properties": {
			RequestID: "req-props-1", TraceID: "trace with spaces/and slashes", DistinctID: "user_456",
			Properties: []byte(`{"$ai_model":"spoofed","llm_gateway_team":"other","$ai_total_cost_usd":0,` +
				`"$ai_gateway":true,"$ai_trace_name":"nightly-summary","feature":"summaries","feature":"dup","n":3}`),
			Team: "max-ai", Route: "llm/openai", Op: provider.OpChatCompletions,
			RequestedModel: "openai/gpt-4o-mini", CanonicalModel: "gpt-4o-mini", RequestBody: []byte(chatBody),
			OutputText: "ok", StopReason: "stop", Status: 200, Start: t0, Latency: 300 * time.Millisecond,
			Usage: cost.FromOpenAI(20, 0, 0, 1, 0), UsageReported: true,
			Cost:     cost.Compute(gpt4oMini, cost.FromOpenAI(20, 0, 0, 1, 0)),
			Attempts: []Attempt{{Backend: "llm/openai", Provider: "openai", BaseURL: "https://api.openai.com/v1", Model: "gpt-4o-mini", Start: t0, Status: 200}},
		},
		// A model the catalog has no price for: no cost properties, flagged.
		"unpriced_model": {
			RequestID: "req-unpriced-1", DistinctID: "user_123", Team: "max-ai", Route: "llm/openai",
			Op: provider.OpChatCompletions, RequestedModel: "gpt-9-preview", CanonicalModel: "gpt-9-preview",
			RequestBody: []byte(chatBody), OutputText: "hi", Status: 200, Start: t0, Latency: time.Second,
			Usage: cost.FromOpenAI(20, 0, 0, 2, 0), UsageReported: true, Cost: cost.Compute(catalog.Price{}, cost.FromOpenAI(20, 0, 0, 2, 0)),
			Attempts: []Attempt{{Backend: "llm/openai", Provider: "openai", BaseURL: "https://api.openai.com/v1", Model: "gpt-9-preview", Start: t0, Status: 200}},
		},
		// Anthropic count_tokens: free, the count is not generation input.
		"count_tokens": {
			RequestID: "req-count-1", DistinctID: "user_123", Team: "max-ai", Route: "llm/anthropic",
			Op: provider.OpCountTokens, RequestedModel: "claude-sonnet-4-5", CanonicalModel: "claude-sonnet-4-5",
			RequestBody: []byte(`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hello"}]}`),
			Status:      200, Start: t0, Latency: 90 * time.Millisecond,
			Usage: cost.Usage{InputTokens: 9}, UsageReported: true,
			Attempts: []Attempt{anthropicAttempt(t0, 80*time.Millisecond)},
		},
		// A stream cut by the upstream before any usage arrived: tokens unknown, not zero.
		"stream_truncated_no_usage": {
			RequestID: "req-trunc-1", DistinctID: "user_123", Team: "max-ai", Route: "llm/openai",
			Op: provider.OpChatCompletions, Stream: true, RequestedModel: "gpt-4o-mini", CanonicalModel: "gpt-4o-mini",
			RequestBody: []byte(chatBody), OutputText: "Hedge", Status: 200,
			Error: &Error{Type: "stream_truncated", Message: "upstream stream ended before its terminal event"},
			Start: t0, Latency: 900 * time.Millisecond, TimeToFirstToken: 300 * time.Millisecond,
			Cost:     cost.Compute(gpt4oMini, cost.Usage{}),
			Attempts: []Attempt{{Backend: "llm/openai", Provider: "openai", BaseURL: "https://api.openai.com/v1", Model: "gpt-4o-mini", Start: t0, Status: 200}},
		},
	}
}

func testBuilder() *builder {
	return &builder{
		maxEventBytes: DefaultMaxEventBytes,
		defaultDest:   Destination{Host: "https://capture.example.com/", APIKey: "phc_default"},
		libVersion:    "test",
	}
}

func TestBuildGolden(t *testing.T) {
	for name, c := range scenarios() {
		t.Run(name, func(t *testing.T) {
			entries := testBuilder().Build(c)
			var out bytes.Buffer
			out.WriteString("[\n")
			for i, e := range entries {
				require.NotContains(t, string(e.Event), "\n", "events are single-line JSON")
				require.Empty(t, capturesink.Validate(e.Event), "event %d of %s violates the schema", i, name)
				var ind bytes.Buffer
				require.NoError(t, json.Indent(&ind, e.Event, "  ", "  "))
				if i > 0 {
					out.WriteString(",\n")
				}
				out.WriteString("  ")
				out.Write(ind.Bytes())
			}
			out.WriteString("\n]\n")
			path := filepath.Join("testdata", "golden", name+".json")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test ./dataplane/record -run TestBuildGolden -update")
			require.Equal(t, string(want), out.String())
		})
	}
}

// props decodes the properties of a built event.
func props(t *testing.T, e Entry) map[string]any {
	t.Helper()
	var ev struct {
		UUID       string         `json:"uuid"`
		DistinctID string         `json:"distinct_id"`
		Properties map[string]any `json:"properties"`
	}
	dec := json.NewDecoder(bytes.NewReader(e.Event))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&ev))
	require.Equal(t, e.UUID, ev.UUID)
	ev.Properties["distinct_id"] = ev.DistinctID
	return ev.Properties
}

func num(t *testing.T, v any) string {
	t.Helper()
	n, ok := v.(json.Number)
	require.True(t, ok, "%v is not a JSON number", v)
	return n.String()
}

func TestBuildSemantics(t *testing.T) {
	sc := scenarios()
	b := testBuilder()

	t.Run("openai cached tokens are normalized and priced by the gateway", func(t *testing.T) {
		e := b.Build(sc["openai_chat_cached"])
		require.Len(t, e, 1)
		p := props(t, e[0])
		// prompt 1200 with 1024 cached: 176 uncached; ingestion's exclusive rule bills exactly those.
		require.Equal(t, "176", num(t, p["$ai_input_tokens"]))
		require.Equal(t, "1024", num(t, p["$ai_cache_read_input_tokens"]))
		require.Equal(t, true, p["$ai_cache_reporting_exclusive"])
		// 176 x $0.15/M = 26.4 -> 26 micros; 1024 x $0.075/M = 76.8 -> 77; 150 x $0.60/M = 90.
		require.Equal(t, "0.000103", num(t, p["$ai_input_cost_usd"]))
		require.Equal(t, "0.000077", num(t, p["$ai_cache_read_cost_usd"]))
		require.Equal(t, "0.00009", num(t, p["$ai_output_cost_usd"]))
		require.Equal(t, "0.000193", num(t, p["$ai_total_cost_usd"]))
		require.Equal(t, "gpt-4o-mini-2024-07-18", p["$ai_model"])
		require.Equal(t, "gpt-4o-mini", p["llm_gateway_requested_model"])
		require.Equal(t, "https://api.openai.com/v1", p["$ai_base_url"])
		require.Equal(t, Destination{Host: "https://capture.example.com", APIKey: "phc_default"}, e[0].Dest)
	})

	t.Run("anthropic cache write split and costs add up", func(t *testing.T) {
		c := sc["anthropic_stream_cache"]
		p := props(t, b.Build(c)[0])
		require.Equal(t, "50", num(t, p["$ai_input_tokens"]))
		require.Equal(t, "2000", num(t, p["$ai_cache_creation_input_tokens"]))
		require.Equal(t, "1500", num(t, p["$ai_cache_creation_5m_input_tokens"]))
		require.Equal(t, "500", num(t, p["$ai_cache_creation_1h_input_tokens"]))
		// 50x3 = 150; read 8000x0.3 = 2400; write 1500x3.75 + 500x6 = 5625 + 3000 = 8625;
		// output 400x15 = 6000 micros. Gross input 11175, total 17175.
		require.Equal(t, "0.011175", num(t, p["$ai_input_cost_usd"]))
		require.Equal(t, "0.008625", num(t, p["$ai_cache_creation_cost_usd"]))
		require.Equal(t, "0.017175", num(t, p["$ai_total_cost_usd"]))
		require.Equal(t, int64(17175), c.Cost.TotalMicros, "the event carries the budget's figure")
		require.Equal(t, "0.62", num(t, p["$ai_time_to_first_token"]))
		require.Equal(t, "6.9", num(t, p["$ai_latency"]))
		input := p["$ai_input"].([]any)
		require.Equal(t, "system", input[0].(map[string]any)["role"], "the system prompt leads $ai_input")
		require.Len(t, input, 2)
	})

	t.Run("failover hop events link to the served event", func(t *testing.T) {
		c := sc["failover_hop"]
		e := b.Build(c)
		require.Len(t, e, 2, "served event + one hop; the skipped backend is not an event")
		main, hop := props(t, e[0]), props(t, e[1])
		require.Equal(t, EventUUID(c.RequestID, 2), e[0].UUID)
		require.Equal(t, EventUUID(c.RequestID, 0), e[1].UUID)
		require.Equal(t, main["$ai_trace_id"], hop["$ai_trace_id"])
		require.Equal(t, main["$ai_span_id"], hop["$ai_parent_id"])
		require.Equal(t, "bedrock", main["$ai_provider"])
		require.Equal(t, "https://bedrock-runtime.us-east-1.amazonaws.com", main["$ai_base_url"])
		require.Equal(t, false, main["$ai_is_error"])
		require.Equal(t, true, main["llm_gateway_failed_over"])
		require.Equal(t, "2", num(t, main["llm_gateway_attempts"]))
		require.Equal(t, []any{map[string]any{"backend": "llm/anthropic-eu", "reason": "circuit open"}}, main["llm_gateway_skipped_backends"])
		require.Equal(t, "anthropic", hop["$ai_provider"])
		require.Equal(t, true, hop["$ai_is_error"])
		require.Equal(t, "529", num(t, hop["$ai_http_status"]))
		require.Equal(t, "Overloaded", hop["llm_gateway_failover_reason"])
		require.Equal(t, "0", num(t, hop["$ai_input_tokens"]))
		require.NotContains(t, hop, "$ai_total_cost_usd")
	})

	t.Run("budget rejection has no upstream", func(t *testing.T) {
		p := props(t, b.Build(sc["budget_rejection"])[0])
		require.Equal(t, "429", num(t, p["$ai_http_status"]))
		require.Equal(t, true, p["$ai_is_error"])
		require.Equal(t, "budget_exceeded", p["$ai_error_type"])
		require.Equal(t, "spend:Day", p["llm_gateway_rejection_limit"])
		require.Equal(t, "anthropic", p["$ai_provider"])
		require.NotContains(t, p, "$ai_base_url")
		require.NotContains(t, p, "$ai_output_choices")
		require.Equal(t, "0", num(t, p["$ai_input_tokens"]))
	})

	t.Run("client disconnect keeps what was observed", func(t *testing.T) {
		p := props(t, b.Build(sc["client_disconnect"])[0])
		require.Equal(t, true, p["$ai_is_error"])
		require.Equal(t, true, p["llm_gateway_client_disconnected"])
		require.Equal(t, true, p["llm_gateway_usage_estimated"])
		require.Equal(t, "37", num(t, p["$ai_output_tokens"]))
		require.Contains(t, p, "$ai_total_cost_usd")
		require.Equal(t, "client_disconnected", p["$ai_error_type"])
	})

	t.Run("stream without usage reports unknown tokens, not zero", func(t *testing.T) {
		p := props(t, b.Build(sc["stream_truncated_no_usage"])[0])
		require.NotContains(t, p, "$ai_input_tokens")
		require.NotContains(t, p, "$ai_total_cost_usd")
		require.Equal(t, true, p["llm_gateway_usage_unknown"])
	})

	t.Run("upstream error: zero tokens, no cost", func(t *testing.T) {
		p := props(t, b.Build(sc["upstream_error"])[0])
		require.Equal(t, "0", num(t, p["$ai_input_tokens"]))
		require.NotContains(t, p, "$ai_input_cost_usd")
		require.Equal(t, "Rate limit reached for gpt-4o-mini", p["$ai_error"])
		require.NotContains(t, p, "$ai_output_choices")
	})

	t.Run("caller properties merge without overriding", func(t *testing.T) {
		p := props(t, b.Build(sc["caller_properties"])[0])
		require.Equal(t, "gpt-4o-mini", p["$ai_model"])
		require.Equal(t, "max-ai", p["llm_gateway_team"])
		require.NotContains(t, p, "$ai_gateway")
		require.Equal(t, "nightly-summary", p["$ai_trace_name"])
		require.Equal(t, "summaries", p["feature"], "first of repeated keys wins")
		require.Equal(t, "3", num(t, p["n"]))
		require.NotEqual(t, "0", num(t, p["$ai_total_cost_usd"]))
		require.Equal(t, "trace with spaces/and slashes", p["llm_gateway_trace_id_original"])
		require.Equal(t, "user_456", p["distinct_id"])
		require.NotContains(t, p, "$process_person_profile")
	})

	t.Run("no distinct id: team service identity without a person profile", func(t *testing.T) {
		p := props(t, b.Build(sc["responses_api"])[0])
		require.Equal(t, "llm-gateway:team:max-ai", p["distinct_id"])
		require.Equal(t, false, p["$process_person_profile"])
		require.Equal(t, `"Answer in one word."`, mustJSON(t, p["$ai_instructions"]))
		require.Equal(t, "8", num(t, p["$ai_reasoning_tokens"]))
	})

	t.Run("count_tokens records the count, not billable tokens", func(t *testing.T) {
		p := props(t, b.Build(sc["count_tokens"])[0])
		require.Equal(t, "0", num(t, p["$ai_input_tokens"]))
		require.Equal(t, "9", num(t, p["llm_gateway_counted_input_tokens"]))
		require.Equal(t, "0", num(t, p["$ai_total_cost_usd"]))
		require.Equal(t, true, p["$ai_cost_passthrough"])
		require.NotContains(t, p, "llm_gateway_unpriced")
	})

	t.Run("unpriced model sends no cost", func(t *testing.T) {
		p := props(t, b.Build(sc["unpriced_model"])[0])
		require.Equal(t, true, p["llm_gateway_unpriced"])
		for k := range p {
			require.False(t, strings.HasSuffix(k, "_cost_usd"), k)
		}
	})

	t.Run("uuids are deterministic per request and attempt", func(t *testing.T) {
		a := b.Build(sc["failover_hop"])
		c := b.Build(sc["failover_hop"])
		require.Equal(t, a[0].UUID, c[0].UUID)
		require.Equal(t, a[0].Event, c[0].Event, "the same call builds the same bytes")
		require.NotEqual(t, EventUUID("r1", 0), EventUUID("r1", 1))
		require.NotEqual(t, EventUUID("r1", 0), EventUUID("r2", 0))
	})

	t.Run("team destination overrides the default; no key means the local file", func(t *testing.T) {
		c := *sc["openai_chat_cached"]
		c.PostHogHost, c.PostHogAPIKey = "https://eu.i.posthog.com", "phc_team"
		require.Equal(t, Destination{Host: "https://eu.i.posthog.com", APIKey: "phc_team"}, b.Build(&c)[0].Dest)
		local := &builder{maxEventBytes: DefaultMaxEventBytes}
		require.True(t, local.Build(sc["openai_chat_cached"])[0].Dest.Local())
	})

	t.Run("a PostHog gateway host is never the base url", func(t *testing.T) {
		c := *sc["openai_chat_cached"]
		c.BaseURL = "https://ai-gateway.us.posthog.com/v1"
		c.Attempts = nil
		require.NotContains(t, props(t, b.Build(&c)[0]), "$ai_base_url")
	})
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestBuildTruncatesLargeEvents(t *testing.T) {
	huge := strings.Repeat(`quote " and newline \n and ünïcödé `, 40_000) // ~1.4 MB escaped
	body, err := json.Marshal(map[string]any{
		"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": huge}},
	})
	require.NoError(t, err)
	for _, tc := range []struct {
		name            string
		output          string
		wantIn, wantOut bool
	}{
		{"input only", "short answer", true, false},
		{"output only", huge, false, true},
		{"both", huge, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := body
			if !tc.wantIn {
				in = []byte(chatBody)
			}
			c := &Call{
				RequestID: "req-big", Team: "t", Op: provider.OpChatCompletions, CanonicalModel: "gpt-4o-mini",
				RequestBody: in, OutputText: tc.output, Status: 200, Start: t0, Latency: time.Second,
				Usage: cost.FromOpenAI(10, 0, 0, 10, 0), UsageReported: true, Cost: cost.Compute(gpt4oMini, cost.FromOpenAI(10, 0, 0, 10, 0)),
			}
			e := testBuilder().Build(c)[0]
			require.LessOrEqual(t, len(e.Event), DefaultMaxEventBytes)
			require.Empty(t, capturesink.Validate(e.Event))
			p := props(t, e)
			if tc.wantIn {
				require.Equal(t, true, p["llm_gateway_input_truncated"])
				s, ok := p["$ai_input"].(string)
				require.True(t, ok)
				require.Contains(t, s, "truncated by llm-gateway")
				require.Greater(t, len(s), 100_000, "a useful prefix is kept")
			} else {
				require.IsType(t, []any{}, p["$ai_input"])
			}
			if tc.wantOut {
				require.Equal(t, true, p["llm_gateway_output_truncated"])
				require.IsType(t, "", p["$ai_output_choices"])
			} else {
				require.IsType(t, []any{}, p["$ai_output_choices"])
			}
		})
	}
}

func TestAppendMicrosUSD(t *testing.T) {
	for m, want := range map[int64]string{
		0: "0", 1: "0.000001", 26: "0.000026", 16050: "0.01605", 3_000_000: "3", 12_345_678: "12.345678", -5: "-0.000005",
	} {
		require.Equal(t, want, string(appendMicrosUSD(nil, m)))
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "ctl\x00\x1f\n\t\r", "ünï\u2028x", "bad\xffutf8", "<&>"} {
		b := jsonx.AppendString(nil, s)
		var back string
		require.NoError(t, json.Unmarshal(b, &back), "%q -> %s", s, b)
		require.Equal(t, strings.ToValidUTF8(s, "\ufffd"), back)
	}
}

func TestHostOf(t *testing.T) {
	for u, want := range map[string]string{
		"https://ai-gateway.us.posthog.com/v1": "ai-gateway.us.posthog.com",
		"http://127.0.0.1:8080/x":              "127.0.0.1",
		"https://user@API.openai.com":          "api.openai.com",
		"https://[::1]:443/":                   "[::1]",
	} {
		require.Equal(t, want, hostOf(u))
	}
}

func TestCallerPropertyKeysNeedingEscapes(t *testing.T) {
	c := *scenarios()["openai_chat_cached"]
	c.Properties = []byte(`{"we\"ird\\key":1,"t\u00e9am":"x","\u0024ai_model":"spoofed"}`)
	e := testBuilder().Build(&c)[0]
	require.Empty(t, capturesink.Validate(e.Event))
	p := props(t, e)
	require.Equal(t, "1", num(t, p[`we"ird\key`]))
	require.Equal(t, "x", p["téam"])
	require.Equal(t, "gpt-4o-mini-2024-07-18", p["$ai_model"], "an escaped $ai_ key is still the gateway's")
}
