package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

const chatBody = `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`

func TestNonStreamingChat(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.do("POST", "/v1/chat/completions?x=1&api-version=2024-01-01", keyAlpha, chatBody,
		"OpenAI-Organization", "org-1", "OpenAI-Project", "proj-1", "OpenAI-Beta", "assistants=v2")
	body := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, "hello from a", gjson.Get(body, "choices.0.message.content").Str)
	require.Equal(t, "ns/openai-a", resp.Header.Get(HeaderBackend))
	require.Equal(t, "1", resp.Header.Get(HeaderAttempts))
	require.Equal(t, "gateway", resp.Header.Get(HeaderPath))
	require.True(t, strings.HasPrefix(resp.Header.Get(HeaderRequestID), "req_"))
	require.Equal(t, "up-req-1", resp.Header.Get("X-Upstream-Request-Id"))

	reqs := e.a.requests()
	require.Len(t, reqs, 1)
	up := reqs[0]
	require.Equal(t, "/v1/chat/completions", up.Path)
	require.Empty(t, up.Query, "the client's query string never reaches a provider")
	require.Equal(t, "Bearer up-key-a", up.Header.Get("Authorization"), "the backend's credential, never the client's")
	require.Empty(t, up.Header.Values("OpenAI-Organization"), "no client account header next to the gateway's key")
	require.Empty(t, up.Header.Values("OpenAI-Project"))
	require.Equal(t, "assistants=v2", up.Header.Get("OpenAI-Beta"))
	require.JSONEq(t, chatBody, string(up.Body), "the body goes upstream as sent")
	require.Zero(t, e.b.count())

	rec := e.recorder.Last(t)
	require.Equal(t, "alpha", rec.Team)
	require.Equal(t, "ns/gpt", rec.Route)
	require.Equal(t, "gpt-4o", rec.CanonicalModel)
	require.Equal(t, int64(10), rec.Usage.InputTokens)
	require.Equal(t, int64(3), rec.Usage.OutputTokens)
	require.True(t, rec.UsageReported)
	require.True(t, rec.Cost.Priced)
	require.Equal(t, rec.Cost.InputMicros+rec.Cost.CacheReadMicros+rec.Cost.CacheWriteMicros+rec.Cost.OutputMicros, rec.Cost.TotalMicros)
	require.Positive(t, rec.Cost.TotalMicros)
	require.Equal(t, 200, rec.Status)
	require.Equal(t, "hello from a", rec.OutputText)
}

func TestStreamingChatUsageInjection(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name      string
		body      string
		wantUsage bool
	}{
		{"client did not ask", `{"model":"gpt-4o","stream":true,"messages":[]}`, false},
		{"client asked", `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do("POST", "/v1/chat/completions", keyAlpha, tc.body)
			body := readAll(t, resp)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
			require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
			require.Empty(t, resp.Header.Get("Content-Length"))
			events := sseEvents(body)
			require.Equal(t, "data: [DONE]", events[len(events)-1])
			require.Equal(t, tc.wantUsage, strings.Contains(body, `"usage"`), body)
			var text strings.Builder
			for _, ev := range events[:len(events)-1] {
				text.WriteString(gjson.Get(strings.TrimPrefix(ev, "data: "), "choices.0.delta.content").Str)
			}
			require.Equal(t, "hello from a", text.String())

			up := e.a.requests()[len(e.a.requests())-1]
			require.True(t, gjson.GetBytes(up.Body, "stream_options.include_usage").Bool(), "usage is always requested upstream")
			rec := e.recorder.Last(t)
			require.True(t, rec.UsageReported)
			require.Equal(t, int64(3), rec.Usage.OutputTokens)
		})
	}
}

func TestAnthropicMessages(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"model":"claude-sonnet-4-5","max_tokens":5000,"messages":[{"role":"user","content":"hi"}]}`
	resp := e.do("POST", "/v1/messages?x=1&beta=true&anthropic-version=1", "", body, "x-api-key", keyAlpha, "anthropic-version", "2023-06-01", "anthropic-beta", "tools-2024")
	out := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, out)
	require.Equal(t, "hello from claude", gjson.Get(out, "content.0.text").Str)
	up := e.c.requests()[0]
	require.Equal(t, "up-key-c", up.Header.Get("X-Api-Key"))
	require.Empty(t, up.Header.Get("Authorization"))
	require.Equal(t, "2023-06-01", up.Header.Get("Anthropic-Version"))
	require.Equal(t, "tools-2024", up.Header.Get("Anthropic-Beta"))
	require.Equal(t, "beta=true", up.Query, "only the documented beta=true goes upstream")
	require.Equal(t, int64(1000), gjson.GetBytes(up.Body, "max_tokens").Int(), "clamped to the route's maximum")

	// Streaming, through a product path.
	resp = e.do("POST", "/max/v1/messages", "", `{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[]}`, "x-api-key", keyAlpha)
	out = readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, out)
	events := sseEvents(out)
	require.True(t, strings.HasPrefix(events[0], "event: message_start"))
	require.True(t, strings.HasPrefix(events[len(events)-1], "event: message_stop"))
	rec := e.recorder.Last(t)
	require.Equal(t, "max", rec.Product)
	require.Equal(t, int64(12), rec.Usage.InputTokens)
	require.Equal(t, int64(4), rec.Usage.OutputTokens)
	require.Equal(t, "hello from claude", rec.OutputText)

	// count_tokens
	resp = e.do("POST", "/v1/messages/count_tokens", "", `{"model":"claude-sonnet-4-5","messages":[]}`, "x-api-key", keyAlpha)
	out = readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, out)
	require.Equal(t, int64(12), gjson.Get(out, "input_tokens").Int())
}

func TestMaxTokensDefaultAndRequired(t *testing.T) {
	e := newEnv(t, func(s *snapshot.Snapshot) {
		s.Routes[0].Limits = snapshot.RequestLimits{DefaultMaxTokens: 256, MaxMaxTokens: 512}
	})
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	up := e.a.requests()[0]
	require.Equal(t, int64(256), gjson.GetBytes(up.Body, "max_completion_tokens").Int())

	resp = e.do("POST", "/v1/chat/completions", keyAlpha, `{"model":"gpt-4o","max_tokens":9999,"messages":[]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	up = e.a.requests()[1]
	require.Equal(t, int64(512), gjson.GetBytes(up.Body, "max_tokens").Int(), "clamped in the field the client used")
	require.False(t, gjson.GetBytes(up.Body, "max_completion_tokens").Exists())

	// Anthropic requires max_tokens; the claude route has no default.
	resp = e.do("POST", "/v1/messages", "", `{"model":"claude-sonnet-4-5","messages":[]}`, "x-api-key", keyAlpha)
	body := readAll(t, resp)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "invalid_request_error", gjson.Get(body, "error.type").Str)
	require.Contains(t, gjson.Get(body, "error.message").Str, "max_tokens")
	require.Zero(t, e.c.count())
}

func TestBadInputNeverReachesUpstream(t *testing.T) {
	e := newEnv(t, nil)
	big := `{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`
	type tc struct {
		name, method, path, key, body string
		status                        int
		errType                       string
	}
	for _, shape := range []struct {
		name, path, model, authErr, notFound string
		anthropic                            bool
	}{
		{"openai", "/v1/chat/completions", "gpt-4o", "authentication_error", "invalid_request_error", false},
		{"anthropic", "/v1/messages", "claude-sonnet-4-5", "authentication_error", "not_found_error", true},
	} {
		cases := []tc{
			{"invalid json", "POST", shape.path, keyAlpha, `{"model":`, 400, "invalid_request_error"},
			{"missing model", "POST", shape.path, keyAlpha, `{"max_tokens":1,"messages":[]}`, 400, "invalid_request_error"},
			{"unknown model", "POST", shape.path, keyAlpha, `{"model":"nope-1","max_tokens":1,"messages":[]}`, 404, shape.notFound},
			{"wrong key", "POST", shape.path, "sk-wrong", `{"model":"` + shape.model + `","max_tokens":1}`, 401, shape.authErr},
			{"missing key", "POST", shape.path, "", `{"model":"` + shape.model + `","max_tokens":1}`, 401, shape.authErr},
			{"wrong method", "GET", shape.path, keyAlpha, ``, 405, "invalid_request_error"},
			{"unknown product", "POST", "/nope" + shape.path, keyAlpha, `{"model":"` + shape.model + `","max_tokens":1}`, 404, shape.notFound},
		}
		if shape.anthropic {
			cases = append(cases, tc{"body too large for the route", "POST", shape.path, keyAlpha, big, 413, "request_too_large"})
		}
		for _, c := range cases {
			t.Run(shape.name+"/"+c.name, func(t *testing.T) {
				resp := e.do(c.method, c.path, c.key, c.body)
				body := readAll(t, resp)
				require.Equal(t, c.status, resp.StatusCode, body)
				require.Equal(t, "gateway", resp.Header.Get(HeaderErrorSource))
				require.Equal(t, "false", resp.Header.Get(HeaderShouldRetry))
				if shape.anthropic {
					require.Equal(t, "error", gjson.Get(body, "type").Str, body)
					require.Equal(t, c.errType, gjson.Get(body, "error.type").Str, body)
				} else {
					require.Equal(t, c.errType, gjson.Get(body, "error.type").Str, body)
					require.True(t, gjson.Get(body, "error.param").Exists(), body)
				}
				require.NotEmpty(t, gjson.Get(body, "error.message").Str)
			})
		}
	}
	resp := e.do("POST", "/v1/embeddings", keyAlpha, `{}`)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Zero(t, e.a.count()+e.b.count()+e.c.count(), "nothing was sent upstream")
}

func TestGatewayBodyLimit(t *testing.T) {
	e := newEnv(t, nil, func(o *Options) { o.MaxBodyBytes = 100 })
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, `{"model":"gpt-4o","messages":[{"role":"user","content":"`+strings.Repeat("y", 200)+`"}]}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Zero(t, e.a.count())
}

func TestModelsList(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.do("GET", "/v1/models", "", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp = e.do("GET", "/v1/models", keyAlpha, "")
	body := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Object, Provider string
			ContextWindow        int64 `json:"context_window"`
			Pricing              *struct{ Input, Output float64 }
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Equal(t, "list", list.Object)
	ids := map[string]bool{}
	for _, m := range list.Data {
		ids[m.ID] = true
		require.Equal(t, "model", m.Object)
		require.NotNil(t, m.Pricing, m.ID)
		require.Positive(t, m.Pricing.Input)
		require.Positive(t, m.ContextWindow)
	}
	require.Equal(t, map[string]bool{"gpt-4o": true, "claude-sonnet-4-5": true}, ids)
}

func TestPrefixModelsKeepMetricLabelsBounded(t *testing.T) {
	e := newEnv(t, func(s *snapshot.Snapshot) { s.Routes[0].Prefixes = []string{"gpt-"} })
	for _, m := range []string{"gpt-made-up-1", "gpt-made-up-2"} {
		resp := e.do("POST", "/v1/chat/completions", keyAlpha, `{"model":"`+m+`","messages":[]}`)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, m, e.recorder.Last(t).CanonicalModel, "the event keeps the name")
	}
	n, err := testutil.GatherAndCount(e.g.Metrics().Registry, "llm_gateway_requests_total")
	require.NoError(t, err)
	require.Equal(t, 1, n, "both calls share the model label \"other\"")
}
