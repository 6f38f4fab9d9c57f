package recordtest

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/record"
	"github.com/posthog/llm-gateway/test/capturesink"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

// eventsOf waits for n events of a request and returns them, main event first.
func eventsOf(t *testing.T, sink *capturesink.Sink, requestID string, n int) []capturesink.Received {
	t.Helper()
	require.NotEmpty(t, requestID)
	var evs []capturesink.Received
	require.Eventually(t, func() bool {
		evs = byRequestID(sink)[requestID]
		return len(evs) >= n
	}, 30*time.Second, 20*time.Millisecond, "events of %s", requestID)
	require.Len(t, evs, n)
	for i, e := range evs {
		require.Empty(t, e.Problems, "event %d of %s", i, requestID)
		if e.UUID == record.EventUUID(requestID, attemptOf(e)) && e.Props["llm_gateway_failover_hop"] == nil {
			evs[0], evs[i] = evs[i], evs[0]
		}
	}
	return evs
}

func attemptOf(e capturesink.Received) int {
	n, _ := e.Props["llm_gateway_attempt"].(float64)
	return int(n)
}

func prop[T any](t *testing.T, e capturesink.Received, k string) T {
	t.Helper()
	v, ok := e.Props[k].(T)
	require.True(t, ok, "%s = %#v", k, e.Props[k])
	return v
}

// costsAddUp checks the gateway's cost set: gross input + output = total, all positive.
func costsAddUp(t *testing.T, e capturesink.Received) {
	t.Helper()
	in, out, total := prop[float64](t, e, "$ai_input_cost_usd"), prop[float64](t, e, "$ai_output_cost_usd"), prop[float64](t, e, "$ai_total_cost_usd")
	require.Positive(t, total)
	require.InDelta(t, total, in+out, 1e-9)
	require.Equal(t, true, e.Props["$ai_cost_passthrough"])
}

// TestEventsOfEachScenario drives a real gateway process and checks the events the capture
// sink receives for each case of the list; the sink validates every event.
func TestEventsOfEachScenario(t *testing.T) {
	fp, providerURL := startProvider(t)
	sink := startSink(t)
	snap := writeSnapshot(t, providerURL)
	g := startGateway(t, "gw-scenarios", snap, t.TempDir(), "--capture-endpoint", sink.URL())
	cl := newClient()
	ctx := context.Background()

	t.Run("non-streaming OpenAI with cached tokens", func(t *testing.T) {
		fp.SetDefaultFor(fakeprovider.OpenAI, &fakeprovider.Scenario{Times: 1,
			Usage: &cost.Usage{InputTokens: 176, CacheReadTokens: 1024, OutputTokens: 150}})
		r, err := cl.do(ctx, g.addr, "/v1/chat/completions", keyTeamA, chatBody,
			map[string]string{"X-PostHog-Distinct-Id": "user_123", "X-PostHog-Session-Id": "conv-789",
				"X-PostHog-Trace-Id": "trace-openai-1", "X-PostHog-Properties": `{"feature":"hedgehogs","$ai_model":"spoofed"}`})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.status, r.body)
		e := eventsOf(t, sink, r.requestID, 1)[0]
		require.Equal(t, "user_123", e.Event["distinct_id"])
		require.Equal(t, "openai", e.Props["$ai_provider"])
		require.Equal(t, "gpt-4o-mini", e.Props["$ai_model"])
		require.Equal(t, providerURL+"/v1", e.Props["$ai_base_url"])
		require.Equal(t, false, e.Props["$ai_stream"])
		require.Equal(t, 176.0, e.Props["$ai_input_tokens"])
		require.Equal(t, 1024.0, e.Props["$ai_cache_read_input_tokens"])
		require.Equal(t, 150.0, e.Props["$ai_output_tokens"])
		require.Equal(t, true, e.Props["$ai_cache_reporting_exclusive"])
		require.Equal(t, "trace-openai-1", e.Props["$ai_trace_id"])
		require.Equal(t, "conv-789", e.Props["$ai_session_id"])
		require.Equal(t, "hedgehogs", e.Props["feature"])
		require.Equal(t, "team-a", e.Props["llm_gateway_team"])
		require.Positive(t, prop[float64](t, e, "$ai_cache_read_cost_usd"))
		costsAddUp(t, e)
		require.Equal(t, "phc_test", e.APIKey)
	})

	t.Run("streaming Anthropic with cache read and write", func(t *testing.T) {
		fp.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Times: 1, Chunks: 5, ChunkIntervalMs: 5,
			Usage: &cost.Usage{InputTokens: 50, CacheReadTokens: 8000, CacheWrite5mTokens: 1500, CacheWrite1hTokens: 500, OutputTokens: 400}})
		r, err := cl.do(ctx, g.addr, "/v1/messages", keyTeamA, messagesBody, nil)
		require.NoError(t, err)
		require.True(t, r.complete, r.body)
		e := eventsOf(t, sink, r.requestID, 1)[0]
		require.Equal(t, "anthropic", e.Props["$ai_provider"])
		require.Equal(t, true, e.Props["$ai_stream"])
		require.Positive(t, prop[float64](t, e, "$ai_time_to_first_token"))
		require.Equal(t, 50.0, e.Props["$ai_input_tokens"])
		require.Equal(t, 8000.0, e.Props["$ai_cache_read_input_tokens"])
		require.Equal(t, 2000.0, e.Props["$ai_cache_creation_input_tokens"])
		require.Equal(t, 1500.0, e.Props["$ai_cache_creation_5m_input_tokens"])
		require.Equal(t, 500.0, e.Props["$ai_cache_creation_1h_input_tokens"])
		require.Equal(t, 400.0, e.Props["$ai_output_tokens"])
		require.Positive(t, prop[float64](t, e, "$ai_cache_creation_cost_usd"))
		costsAddUp(t, e)
		require.Equal(t, "llm-gateway:team:team-a", e.Event["distinct_id"])
		require.Equal(t, false, e.Props["$process_person_profile"])
		require.NotEmpty(t, prop[[]any](t, e, "$ai_output_choices"))
	})

	t.Run("Responses API", func(t *testing.T) {
		r, err := cl.do(ctx, g.addr, "/v1/responses", keyTeamA,
			`{"model":"gpt-4.1-mini","instructions":"Answer in one word.","input":"Capital of France?","max_output_tokens":32}`, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.status, r.body)
		e := eventsOf(t, sink, r.requestID, 1)[0]
		require.Equal(t, "responses", e.Props["$ai_span_name"])
		require.Equal(t, "Answer in one word.", e.Props["$ai_instructions"])
		require.Equal(t, providerURL+"/v1", e.Props["$ai_base_url"])
		require.Positive(t, prop[float64](t, e, "$ai_input_tokens"))
		costsAddUp(t, e)
	})

	t.Run("upstream error", func(t *testing.T) {
		fp.SetDefaultFor(fakeprovider.OpenAI, &fakeprovider.Scenario{Times: 1, Status: 500})
		r, err := cl.do(ctx, g.addr, "/v1/chat/completions", keyTeamA, chatBody, nil)
		require.NoError(t, err)
		require.GreaterOrEqual(t, r.status, 500)
		e := eventsOf(t, sink, r.requestID, 1)[0]
		require.Equal(t, true, e.Props["$ai_is_error"])
		require.NotEmpty(t, prop[string](t, e, "$ai_error"))
		require.GreaterOrEqual(t, prop[float64](t, e, "$ai_http_status"), 500.0)
		require.Equal(t, 0.0, e.Props["$ai_input_tokens"])
		require.NotContains(t, e.Props, "$ai_total_cost_usd")
	})

	t.Run("budget rejection", func(t *testing.T) {
		r, err := cl.do(ctx, g.addr, "/v1/chat/completions", keyTeamB, chatBody, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusTooManyRequests, r.status, r.body)
		e := eventsOf(t, sink, r.requestID, 1)[0]
		require.Equal(t, true, e.Props["$ai_is_error"])
		require.Equal(t, true, e.Props["llm_gateway_rejected"])
		require.Equal(t, 429.0, e.Props["$ai_http_status"])
		require.True(t, strings.HasPrefix(prop[string](t, e, "llm_gateway_rejection_limit"), "spend:"), e.Props["llm_gateway_rejection_limit"])
		require.NotContains(t, e.Props, "$ai_base_url")
		require.Equal(t, "team-b", e.Props["llm_gateway_team"])
	})

	t.Run("failover hop", func(t *testing.T) {
		fp.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Times: 1, Status: 529})
		r, err := cl.do(ctx, g.addr, "/v1/messages", keyTeamA, strings.Replace(messagesBody, `"stream":true,`, "", 1), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.status, r.body)
		evs := eventsOf(t, sink, r.requestID, 2)
		main, hop := evs[0], evs[1]
		require.Equal(t, "bedrock", main.Props["$ai_provider"])
		require.Equal(t, providerURL, main.Props["$ai_base_url"])
		require.Equal(t, false, main.Props["$ai_is_error"])
		require.Equal(t, true, main.Props["llm_gateway_failed_over"])
		costsAddUp(t, main)
		require.Equal(t, "anthropic", hop.Props["$ai_provider"])
		require.Equal(t, true, hop.Props["$ai_is_error"])
		require.Equal(t, 529.0, hop.Props["$ai_http_status"])
		require.Equal(t, main.Props["$ai_trace_id"], hop.Props["$ai_trace_id"])
		require.Equal(t, main.Props["$ai_span_id"], hop.Props["$ai_parent_id"])
		require.Equal(t, record.EventUUID(r.requestID, 0), hop.UUID)
	})

	t.Run("client disconnect", func(t *testing.T) {
		fp.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Times: 1, Chunks: 40, ChunkIntervalMs: 50})
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		req, err := http.NewRequestWithContext(cctx, http.MethodPost, "http://"+g.addr+"/v1/messages", strings.NewReader(messagesBody))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+keyTeamA)
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := cl.http.Do(req)
		require.NoError(t, err)
		requestID := resp.Header.Get("X-Request-Id")
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "content_block_delta") {
				break // the first text arrived: hang up
			}
		}
		cancel()
		resp.Body.Close()
		e := eventsOf(t, sink, requestID, 1)[0]
		require.Equal(t, true, e.Props["$ai_is_error"])
		require.Equal(t, true, e.Props["llm_gateway_client_disconnected"])
		require.NotEmpty(t, prop[string](t, e, "$ai_error"))
		require.Equal(t, true, e.Props["$ai_stream"])
	})

	require.Empty(t, sink.Problems())
	b, _ := json.Marshal(sink.Stats())
	t.Logf("sink: %s", b)
}
