package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

// bedrockOnly serves the claude route from a Bedrock backend on a fake provider.
func bedrockOnly(t *testing.T, sc *fakeprovider.Scenario) *env {
	fake := fakeprovider.New(fakeprovider.Config{Default: sc, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(fake)
	t.Cleanup(func() { fake.Close(); srv.Close() })
	return newEnv(t, func(s *snapshot.Snapshot) {
		s.Backends = append(s.Backends, snapshot.Backend{Name: "ns/bedrock", Provider: snapshot.ProviderBedrock,
			Endpoint: srv.URL, Region: "us-east-1", Credentials: snapshot.Credentials{BearerToken: "bedrock-key"}})
		s.Routes[1].Backends = []snapshot.RouteBackend{{Backend: "ns/bedrock", Weight: 1}}
	})
}

// A Bedrock exception's name (camelCase in stream frames) is never an Anthropic error.type:
// the client gets the Anthropic type of the exception's class, before and after commit.
func TestBedrockStreamExceptionsUseAnthropicErrorTypes(t *testing.T) {
	const body = `{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	t.Run("first frame, not failed over", func(t *testing.T) {
		e := bedrockOnly(t, &fakeprovider.Scenario{Fault: fakeprovider.FaultError, ErrorType: "ValidationException"})
		resp := e.do("POST", "/v1/messages", "", body, "x-api-key", keyAlpha)
		out := readAll(t, resp)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, out)
		require.Equal(t, "invalid_request_error", gjson.Get(out, "error.type").Str, out)
		require.Equal(t, "validationException", e.recorder.Last(t).Error.Type, "the event keeps the provider's name")
	})
	t.Run("mid-stream", func(t *testing.T) {
		e := bedrockOnly(t, &fakeprovider.Scenario{Fault: fakeprovider.FaultError, FaultAfter: 2, ErrorType: "ThrottlingException"})
		resp := e.do("POST", "/v1/messages", "", body, "x-api-key", keyAlpha)
		out := readAll(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		events := sseEvents(out)
		last := events[len(events)-1]
		require.True(t, strings.HasPrefix(last, "event: error\ndata: "), out)
		require.Equal(t, "rate_limit_error", gjson.Get(strings.TrimPrefix(last, "event: error\ndata: "), "error.type").Str, out)
		require.Equal(t, "throttlingException", e.recorder.Last(t).Error.Type)
	})
}

// A 200 whose body is not JSON is a broken upstream: the call fails over instead of
// relaying bytes no SDK can decode.
func TestMalformedBodyFailsOver(t *testing.T) {
	e := newEnv(t, nil)
	e.a.set(statusErr(http.StatusOK, "{\"id\":\"garbage\x00 not json"))
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	body := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, "hello from b", gjson.Get(body, "choices.0.message.content").Str)
	require.Equal(t, snapshot.FailoverServerError, e.recorder.Last(t).Attempts[0].ErrorClass)

	e = newEnv(t, func(s *snapshot.Snapshot) { s.Routes[0].Backends = s.Routes[0].Backends[:1] })
	e.a.set(statusErr(http.StatusOK, "not json"))
	resp = e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	body = readAll(t, resp)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode, body)
	require.Equal(t, "server_error", gjson.Get(body, "error.type").Str, "a clean error in the client's shape")
}

// A stream that fails after commit cannot fail over, but it counts against the backend's
// circuit like a failure before commit; a stream that ends properly closes it.
func TestStreamFaultAfterCommitCountsAgainstCircuit(t *testing.T) {
	e := newEnv(t, nil) // openai-a opens after 2 failures
	cut := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"par"},"finish_reason":null}]}`+"\n\n")
	}
	const stream = `{"model":"gpt-4o","stream":true,"messages":[]}`
	e.a.set(cut)
	body := readAll(t, e.do("POST", "/v1/chat/completions", keyAlpha, stream))
	require.Contains(t, body, "upstream_stream_error")
	require.Equal(t, 1, e.g.backendStates()[1].Circuit.ConsecutiveFailures)

	e.a.set(chatOK("whole", 1, 1))
	readAll(t, e.do("POST", "/v1/chat/completions", keyAlpha, stream))
	require.Zero(t, e.g.backendStates()[1].Circuit.ConsecutiveFailures, "a proper end is a success")

	e.a.set(cut)
	for range 2 {
		readAll(t, e.do("POST", "/v1/chat/completions", keyAlpha, stream))
	}
	require.Equal(t, "open", e.g.backendStates()[1].Circuit.State)
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, stream)
	readAll(t, resp)
	require.Equal(t, "ns/openai-b", resp.Header.Get(HeaderBackend), "new calls go to the next backend")
	require.Equal(t, 4, e.a.count(), "the open circuit was skipped")
}
