package provider

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

func TestErrorBodies(t *testing.T) {
	e := &GatewayError{Status: 429, AnthropicType: AnthropicRateLimit, OpenAIType: OpenAIRateLimit, Code: "budget_exceeded", Message: "team budget exhausted"}
	require.Equal(t, `{"type":"error","error":{"type":"rate_limit_error","message":"team budget exhausted","code":"budget_exceeded"}}`, string(e.Body(OpMessages)))
	require.Equal(t, `{"error":{"message":"team budget exhausted","type":"rate_limit_error","param":null,"code":"budget_exceeded"}}`, string(e.Body(OpChatCompletions)))
	p := &GatewayError{AnthropicType: AnthropicInvalidRequest, OpenAIType: OpenAIInvalidRequest, Param: "model", Message: "bad <model>"}
	require.Equal(t, `{"error":{"message":"bad \u003cmodel\u003e","type":"invalid_request_error","param":"model","code":null}}`, string(p.Body(OpResponses)))
	require.Equal(t, `{"type":"error","error":{"type":"invalid_request_error","message":"bad \u003cmodel\u003e"}}`, string(p.Body(OpCountTokens)))
}

// The stream error events are the forms the official SDKs recognise
// (docs/providers.md "Streams: commit point and error events").
func TestStreamErrorEvent(t *testing.T) {
	e := &GatewayError{AnthropicType: AnthropicOverloaded, OpenAIType: OpenAIServerError, Message: "upstream failed"}
	require.Equal(t, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"upstream failed\"}}\n\n", string(StreamErrorEvent(OpMessages, e, 0)))
	require.Equal(t, "data: {\"error\":{\"message\":\"upstream failed\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n", string(StreamErrorEvent(OpChatCompletions, e, 0)))
	require.Equal(t, "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"upstream failed\",\"param\":null,\"sequence_number\":7}\n\n", string(StreamErrorEvent(OpResponses, e, 7)))
}

func TestUpstreamGatewayError(t *testing.T) {
	tests := []struct {
		name   string
		e      UpstreamError
		shape  snapshot.Shape
		status int
		typ    string
		msg    string
	}{
		{"rate limited", UpstreamError{Class: snapshot.FailoverRateLimited, Status: 429, Type: "rate_limit_exceeded", Message: "slow"}, snapshot.ShapeOpenAI, 429, OpenAIRateLimit, "slow"},
		{"overloaded anthropic", UpstreamError{Class: snapshot.FailoverOverloaded, Status: 200, Message: "Overloaded"}, snapshot.ShapeAnthropic, 529, AnthropicOverloaded, "Overloaded"},
		{"overloaded openai", UpstreamError{Class: snapshot.FailoverOverloaded, Status: 529}, snapshot.ShapeOpenAI, 503, OpenAIServerError, "upstream provider error"},
		{"server error keeps 5xx", UpstreamError{Class: snapshot.FailoverServerError, Status: 503, Message: "x"}, snapshot.ShapeAnthropic, 503, AnthropicAPIError, "x"},
		{"server error in stream", UpstreamError{Class: snapshot.FailoverServerError, Status: 200, Message: "x"}, snapshot.ShapeOpenAI, 502, OpenAIServerError, "x"},
		{"auth hides upstream message", UpstreamError{Class: snapshot.FailoverUpstreamAuth, Status: 401, Message: "Incorrect API key provided: sk-abc"}, snapshot.ShapeOpenAI, 502, OpenAIServerError, "the upstream provider rejected the gateway's credentials"},
		{"not found", UpstreamError{Class: snapshot.FailoverNotFound, Status: 404, Message: "no model"}, snapshot.ShapeAnthropic, 404, AnthropicNotFound, "no model"},
		{"client error", UpstreamError{Status: 400, Message: "bad"}, snapshot.ShapeAnthropic, 400, AnthropicInvalidRequest, "bad"},
		{"client error too large", UpstreamError{Status: 413, Message: "big"}, snapshot.ShapeAnthropic, 413, AnthropicTooLarge, "big"},
		{"client error in stream", UpstreamError{Status: 200, ContentPolicy: true, Message: "filtered"}, snapshot.ShapeOpenAI, 400, OpenAIInvalidRequest, "filtered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.e.GatewayError(tt.shape)
			require.Equal(t, tt.status, g.Status)
			typ := g.OpenAIType
			if tt.shape == snapshot.ShapeAnthropic {
				typ = g.AnthropicType
			}
			require.Equal(t, tt.typ, typ)
			require.Equal(t, tt.msg, g.Message)
		})
	}
}

func TestResponseHeaders(t *testing.T) {
	src := http.Header{
		"Content-Type":                           {"application/json"},
		"Content-Length":                         {"123"},
		"Connection":                             {"keep-alive"},
		"Transfer-Encoding":                      {"chunked"},
		"Set-Cookie":                             {"__cf_bm=x"},
		"Request-Id":                             {"req_1"},
		"X-Request-Id":                           {"abc"},
		"Openai-Processing-Ms":                   {"42"},
		"Openai-Organization":                    {"our-org"},
		"Anthropic-Ratelimit-Requests-Remaining": {"99"},
		"X-Ratelimit-Remaining-Tokens":           {"1000"},
		"Retry-After":                            {"3"},
		"Retry-After-Ms":                         {"3000"},
		"X-Should-Retry":                         {"true"},
		"Cf-Ray":                                 {"x"},
		"X-Amzn-Requestid":                       {"aws-1"},
		"X-Amzn-Bedrock-Input-Token-Count":       {"5"},
	}
	dst := http.Header{}
	ResponseHeaders(dst, src)
	require.Equal(t, http.Header{
		"Content-Type":                           {"application/json"},
		"Request-Id":                             {"req_1"},
		"X-Request-Id":                           {"abc"},
		"Openai-Processing-Ms":                   {"42"},
		"Anthropic-Ratelimit-Requests-Remaining": {"99"},
		"X-Ratelimit-Remaining-Tokens":           {"1000"},
		"X-Amzn-Requestid":                       {"aws-1"},
		"X-Amzn-Bedrock-Input-Token-Count":       {"5"},
	}, dst)
	dst = http.Header{}
	ErrorResponseHeaders(dst, src)
	require.Equal(t, "3", dst.Get("Retry-After"))
	require.Equal(t, "3000", dst.Get("Retry-After-Ms"))
	require.Empty(t, dst.Get("X-Should-Retry"))

	dst = http.Header{}
	ResponseHeaders(dst, http.Header{"Content-Type": {"application/vnd.amazon.eventstream"}})
	require.Equal(t, "text/event-stream", dst.Get("Content-Type"))
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"9"}}, 250 * time.Millisecond},
		{http.Header{"Retry-After-Ms": {"bogus"}, "Retry-After": {"9"}}, 9 * time.Second},
		{http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After": {now.Add(time.Minute).Format(http.TimeFormat)}}, time.Minute},
		{http.Header{"Retry-After": {now.Add(-time.Minute).Format(http.TimeFormat)}}, 0},
		{http.Header{"Retry-After": {"-3"}}, 0},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{}, 0},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, RetryAfter(tt.h, now), "%v", tt.h)
	}
}

func TestCopyHeaders(t *testing.T) {
	src := http.Header{"Openai-Beta": {"a", "b"}, "Authorization": {"Bearer x"}}
	dst := http.Header{}
	CopyHeaders(dst, src, "OpenAI-Beta", "Accept")
	require.Equal(t, http.Header{"Openai-Beta": {"a", "b"}}, dst)
	src["Openai-Beta"][0] = "changed"
	require.Equal(t, "a", dst.Get("Openai-Beta"), "copied, not aliased")
}

func TestBaseEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "https://api.openai.com",
		"https://api.openai.com/v1/":  "https://api.openai.com",
		"http://127.0.0.1:8080":       "http://127.0.0.1:8080",
		"https://proxy.internal/x/v1": "https://proxy.internal/x",
	} {
		got, err := BaseEndpoint(in, "https://api.openai.com", "/v1")
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	for _, bad := range []string{"api.openai.com", "ftp://x", "https://x/?q=1", "https://"} {
		_, err := BaseEndpoint(bad, "", "/v1")
		require.Error(t, err, bad)
	}
}

func TestInspectCacheControl(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		write, h1 bool
	}{
		{"none", `{"model":"m","messages":[{"role":"user","content":"1h"}]}`, false, false},
		{"5m on a block", `{"model":"m","system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral"}}]}`, true, false},
		{"1h on a tool", `{"model":"m","tools":[{"name":"t","cache_control":{"type":"ephemeral","ttl":"1h"}}]}`, true, true},
		{"5m then 1h", `{"model":"m","system":[{"type":"text","text":"a","cache_control" : {"ttl":"5m","type":"ephemeral"}},{"type":"text","text":"b","cache_control":{ "type":"ephemeral", "ttl" : "1h" }}]}`, true, true},
		{"1h elsewhere is not a ttl", `{"model":"m","system":[{"type":"text","text":"1h","cache_control":{"type":"ephemeral"}}],"metadata":{"ttl":"1h"}}`, true, false},
		{"key mentioned in text", `{"model":"m","messages":[{"role":"user","content":"set \"cache_control\": {\"ttl\":\"1h\"}"}]}`, false, false},
		{"string value named cache_control", `{"model":"m","messages":[{"role":"user","content":"cache_control"}]}`, false, false},
		{"null", `{"model":"m","cache_control":null}`, false, false},
		{"top level", `{"model":"m","cache_control":{"type":"ephemeral","ttl":"1h"}}`, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.True(t, json.Valid([]byte(tt.body)))
			info, err := Inspect(OpMessages, []byte(tt.body))
			require.NoError(t, err)
			require.Equal(t, tt.write, info.CacheWrite)
			require.Equal(t, tt.h1, info.CacheWrite1h)
		})
	}
}

func TestEnsureModel(t *testing.T) {
	b := []byte(`{"model":"a","x":1}`)
	out, err := EnsureModel(b, "a")
	require.NoError(t, err)
	require.Same(t, &b[0], &out[0], "unchanged body is not copied")
	out, err = EnsureModel(b, "b")
	require.NoError(t, err)
	require.Equal(t, `{"model":"b","x":1}`, string(out))
	out, _ = EnsureModel(b, "")
	require.Equal(t, string(b), string(out))
}

func BenchmarkInspectMessages(b *testing.B) {
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":1024,"system":[{"type":"text","text":"` + strings.Repeat("You are helpful. ", 500) +
		`","cache_control":{"type":"ephemeral","ttl":"1h"}}],"messages":[{"role":"user","content":"` + strings.Repeat("hello ", 2000) + `"}]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Inspect(OpMessages, body); err != nil {
			b.Fatal(err)
		}
	}
}

// Only what a provider documents of a client's query string goes upstream.
func TestClientQuery(t *testing.T) {
	for _, tc := range []struct {
		op       Operation
		raw, out string
	}{
		{OpMessages, "beta=true", "beta=true"},
		{OpCountTokens, "x=1&beta=true&y=2", "beta=true"},
		{OpMessages, "", ""},
		{OpMessages, "beta=1", ""},
		{OpMessages, "beta=true;x=1", ""},
		{OpMessages, "beta=%74rue", ""},
		{OpMessages, "api-version=2024-01-01", ""},
		{OpChatCompletions, "beta=true", ""},
		{OpResponses, "api-version=2099-01-01&x=1", ""},
	} {
		require.Equal(t, tc.out, ClientQuery(tc.op, tc.raw), "%s ?%s", tc.op, tc.raw)
	}
}
