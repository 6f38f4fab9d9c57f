package event_test

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

	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/dataplane/record/internal/fixture"
	"github.com/posthog/llm-gateway/test/capturesink"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func testBuilder() *event.Builder {
	return &event.Builder{
		MaxEventBytes:      event.DefaultMaxBytes,
		DefaultDestination: event.Destination{Host: "https://capture.example.com/", APIKey: "phc_default"},
		LibVersion:         "test",
	}
}

func TestBuildGolden(t *testing.T) {
	for name, c := range fixture.Scenarios() {
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
			require.NoError(t, err, "run go test ./dataplane/record/event -run TestBuildGolden -update")
			require.Equal(t, string(want), out.String())
		})
	}
}

// props decodes the properties of a built event.
func props(t *testing.T, e event.Entry) map[string]any {
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
	sc := fixture.Scenarios()
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
		require.Equal(t, event.Destination{Host: "https://capture.example.com", APIKey: "phc_default"}, e[0].Dest)
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
		require.Equal(t, event.UUID(c.RequestID, 2), e[0].UUID)
		require.Equal(t, event.UUID(c.RequestID, 0), e[1].UUID)
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
		require.NotEqual(t, event.UUID("r1", 0), event.UUID("r1", 1))
		require.NotEqual(t, event.UUID("r1", 0), event.UUID("r2", 0))
	})

	t.Run("team destination overrides the default; no key means the local file", func(t *testing.T) {
		c := *sc["openai_chat_cached"]
		c.PostHogHost, c.PostHogAPIKey = "https://eu.i.posthog.com", "phc_team"
		require.Equal(t, event.Destination{Host: "https://eu.i.posthog.com", APIKey: "phc_team"}, b.Build(&c)[0].Dest)
		local := &event.Builder{MaxEventBytes: event.DefaultMaxBytes}
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
				in = []byte(fixture.ChatBody)
			}
			c := &event.Call{
				RequestID: "req-big", Team: "t", Op: provider.OpChatCompletions, CanonicalModel: "gpt-4o-mini",
				RequestBody: in, OutputText: tc.output, Status: 200, Start: fixture.T0, Latency: time.Second,
				Usage: cost.FromOpenAI(10, 0, 0, 10, 0), UsageReported: true, Cost: cost.Compute(fixture.GPT4oMini, cost.FromOpenAI(10, 0, 0, 10, 0)),
			}
			e := testBuilder().Build(c)[0]
			require.LessOrEqual(t, len(e.Event), event.DefaultMaxBytes)
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

func TestCallerPropertyKeysNeedingEscapes(t *testing.T) {
	c := *fixture.Scenarios()["openai_chat_cached"]
	c.Properties = []byte(`{"we\"ird\\key":1,"t\u00e9am":"x","\u0024ai_model":"spoofed"}`)
	e := testBuilder().Build(&c)[0]
	require.Empty(t, capturesink.Validate(e.Event))
	p := props(t, e)
	require.Equal(t, "1", num(t, p[`we"ird\key`]))
	require.Equal(t, "x", p["téam"])
	require.Equal(t, "gpt-4o-mini-2024-07-18", p["$ai_model"], "an escaped $ai_ key is still the gateway's")
}
