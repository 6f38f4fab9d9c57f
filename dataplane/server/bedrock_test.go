package server

import (
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
		require.Equal(t, "validationException", e.recorder.last(t).Error.Type, "the event keeps the provider's name")
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
		require.Equal(t, "throttlingException", e.recorder.last(t).Error.Type)
	})
}
