package server

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

const openAI500 = `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`

func TestFailoverOnServerError(t *testing.T) {
	e := newEnv(t, nil)
	e.a.set(statusErr(500, openAI500))
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	body := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, "hello from b", gjson.Get(body, "choices.0.message.content").Str)
	require.Equal(t, "ns/openai-b", resp.Header.Get(HeaderBackend))
	require.Equal(t, "2", resp.Header.Get(HeaderAttempts))
	require.Equal(t, "Bearer up-key-b", e.b.requests()[0].Header.Get("Authorization"))

	rec := e.recorder.Last(t)
	require.Len(t, rec.Attempts, 2)
	require.Equal(t, "ns/openai-a", rec.Attempts[0].Backend)
	require.Equal(t, snapshot.FailoverServerError, rec.Attempts[0].ErrorClass)
	require.Equal(t, 500, rec.Attempts[0].Status)
	require.Equal(t, "ns/openai-b", rec.Backend)
}

func TestNoFailoverOnClientError(t *testing.T) {
	e := newEnv(t, nil)
	bad := `{"error":{"message":"bad messages","type":"invalid_request_error","param":"messages","code":null}}`
	e.a.set(statusErr(400, bad))
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	body := readAll(t, resp)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.JSONEq(t, bad, body, "client errors are relayed as the provider sent them")
	require.Empty(t, resp.Header.Get(HeaderErrorSource))
	require.Zero(t, e.b.count())
	require.Equal(t, "closed", e.g.backendStates()[1].Circuit.State, "a client error says the backend is up")
}

func TestFailoverOnlyOnConfiguredClasses(t *testing.T) {
	e := newEnv(t, func(s *snapshot.Snapshot) { s.Routes[0].Failover.On = []string{snapshot.FailoverTimeout} })
	e.a.set(statusErr(503, openAI500))
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Zero(t, e.b.count())
}

func TestExhaustedFailoverReturnsLastError(t *testing.T) {
	e := newEnv(t, nil)
	e.a.set(statusErr(500, openAI500))
	rl := `{"error":{"message":"slow down","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	e.b.set(statusErr(429, rl, "Retry-After", "7"))
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	body := readAll(t, resp)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.JSONEq(t, rl, body)
	require.Equal(t, "false", resp.Header.Get(HeaderShouldRetry))
	require.Empty(t, resp.Header.Get("Retry-After"))
	require.Equal(t, "2", resp.Header.Get(HeaderAttempts))
	require.Equal(t, "ns/openai-b", resp.Header.Get(HeaderBackend))
	// The 429 opened b's circuit for its retry-after at once.
	st := e.g.backendStates()
	require.Equal(t, "ns/openai-b", st[2].Name)
	require.Equal(t, "open", st[2].Circuit.State)
	require.Equal(t, e.clock.Now().Add(snapshot.DefaultBreakerCooldown), st[2].Circuit.CooldownUntil, "the longer of the cooldown (default 30s) and retry-after (7s)")
}

func TestUpstreamAuthIsNeverRelayed(t *testing.T) {
	e := newEnv(t, func(s *snapshot.Snapshot) { s.Routes[0].Backends = s.Routes[0].Backends[:1] })
	e.a.set(statusErr(401, `{"error":{"message":"Incorrect API key provided: up-key-a","type":"invalid_request_error","code":"invalid_api_key"}}`))
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	body := readAll(t, resp)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	require.NotContains(t, body, "up-key-a")
	require.Equal(t, "gateway", resp.Header.Get(HeaderErrorSource))
}

func TestFailoverOnConnectionError(t *testing.T) {
	e := newEnv(t, nil)
	e.a.srv.Close() // refused
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "ns/openai-b", resp.Header.Get(HeaderBackend))
	require.Equal(t, snapshot.FailoverConnectionError, e.recorder.Last(t).Attempts[0].ErrorClass)
}

func TestFailoverOnFirstByteTimeout(t *testing.T) {
	e := newEnv(t, func(s *snapshot.Snapshot) { s.Backends[0].Timeouts.FirstByteMs = 50 })
	gone := make(chan struct{}, 1)
	e.a.set(hang(gone))
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, `{"model":"gpt-4o","stream":true,"messages":[]}`)
	body := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "hello")
	require.Equal(t, "ns/openai-b", resp.Header.Get(HeaderBackend))
	<-gone // the timed-out upstream request was cancelled
	require.Equal(t, snapshot.FailoverTimeout, e.recorder.Last(t).Attempts[0].ErrorClass)
}

func TestFailoverWhenFirstStreamEventIsAnError(t *testing.T) {
	e := newEnv(t, func(s *snapshot.Snapshot) {
		s.Backends = append(s.Backends, snapshot.Backend{Name: "ns/anthropic-2", Provider: snapshot.ProviderAnthropic,
			Endpoint: s.Backends[1].Endpoint, Credentials: snapshot.Credentials{APIKey: "k2"}})
		s.Routes[1].Backends = append(s.Routes[1].Backends, snapshot.RouteBackend{Backend: "ns/anthropic-2", Priority: 1, Weight: 1})
	})
	e.c.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n")
	})
	e.b.set(anthropicOK("from the second", 5, 2)) // ns/anthropic-2 points at upstream b
	resp := e.do("POST", "/v1/messages", "", `{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[]}`, "x-api-key", keyAlpha)
	body := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "ns/anthropic-2", resp.Header.Get(HeaderBackend))
	require.NotContains(t, body, "overloaded_error", "the client never saw the failed attempt")
	require.Contains(t, body, `"second"`)
	require.Equal(t, snapshot.FailoverOverloaded, e.recorder.Last(t).Attempts[0].ErrorClass)
}

func TestErrorAfterFirstByteEndsStreamInProtocol(t *testing.T) {
	e := newEnv(t, nil)
	e.a.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"par"},"finish_reason":null}]}`+"\n\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, `data: {"error":{"message":"model crashed","type":"server_error","param":null,"code":null}}`+"\n\n")
	})
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, `{"model":"gpt-4o","stream":true,"messages":[]}`)
	body := readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := sseEvents(body)
	require.Len(t, events, 2, body)
	require.Contains(t, events[0], `"par"`)
	require.Equal(t, "model crashed", gjson.Get(strings.TrimPrefix(events[1], "data: "), "error.message").Str)
	require.NotContains(t, body, "[DONE]")
	require.Zero(t, e.b.count(), "never fail over after the first byte")
	rec := e.recorder.Last(t)
	require.NotNil(t, rec.Error)
	require.Equal(t, "par", rec.OutputText)
	require.False(t, rec.UsageReported)
	require.Positive(t, rec.Usage.OutputTokens, "estimated from the streamed text")
}

func TestIdleTimeoutEndsStream(t *testing.T) {
	e := newEnv(t, func(s *snapshot.Snapshot) { s.Backends[2].Timeouts.IdleMs = 50 })
	e.c.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `event: message_start`+"\n"+`data: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":7,"output_tokens":1}}}`+"\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	resp := e.do("POST", "/v1/messages", "", `{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[]}`, "x-api-key", keyAlpha)
	body := readAll(t, resp)
	events := sseEvents(body)
	require.Len(t, events, 2, body)
	require.True(t, strings.HasPrefix(events[1], "event: error\ndata: "), body)
	require.Equal(t, "timeout_error", gjson.Get(strings.SplitN(events[1], "data: ", 2)[1], "error.type").Str)
	rec := e.recorder.Last(t)
	require.Equal(t, int64(7), rec.Usage.InputTokens, "message_start input counts on a cut stream")
}

func TestCircuitOpensAndProbes(t *testing.T) {
	e := newEnv(t, nil) // openai-a opens after 2 failures, cooldown 10s
	e.a.set(statusErr(500, openAI500))
	for range 2 {
		resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
		require.Equal(t, "ns/openai-b", resp.Header.Get(HeaderBackend))
	}
	require.Equal(t, 2, e.a.count())
	require.Equal(t, "open", e.g.backendStates()[1].Circuit.State)

	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	require.Equal(t, "ns/openai-b", resp.Header.Get(HeaderBackend))
	require.Equal(t, "1", resp.Header.Get(HeaderAttempts))
	require.Equal(t, 2, e.a.count(), "an open circuit is skipped")
	rec := e.recorder.Last(t)
	require.True(t, rec.Attempts[0].Skipped)
	require.Contains(t, rec.Attempts[0].SkipReason, skipCircuitOpen)

	e.clock.Advance(10 * time.Second)
	e.a.set(chatOK("a is back", 1, 1))
	resp = e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	require.Equal(t, "ns/openai-a", resp.Header.Get(HeaderBackend), "the half-open probe goes through")
	require.Equal(t, "closed", e.g.backendStates()[1].Circuit.State)
}

func TestAllCircuitsOpenProbesLeastRecentlyFailed(t *testing.T) {
	e := newEnv(t, func(s *snapshot.Snapshot) {
		s.Backends[1].CircuitBreaker = snapshot.CircuitBreaker{ConsecutiveFailures: 1, CooldownMs: 60_000}
		s.Backends[0].CircuitBreaker = snapshot.CircuitBreaker{ConsecutiveFailures: 1, CooldownMs: 60_000}
	})
	e.a.set(statusErr(500, openAI500))
	e.b.set(statusErr(500, openAI500))
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody) // a fails, then b fails
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	e.clock.Advance(time.Second)
	e.a.set(chatOK("probe", 1, 1))
	resp = e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "ns/openai-a", resp.Header.Get(HeaderBackend), "a failed before b")
}

func TestStickyRequestsStayOnFirstBackend(t *testing.T) {
	e := newEnv(t, nil)
	e.a.set(statusErr(500, openAI500))
	resp := e.do("POST", "/v1/responses", keyAlpha, `{"model":"gpt-4o","input":"hi","previous_response_id":"resp_1"}`)
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	require.Zero(t, e.b.count())
	rec := e.recorder.Last(t)
	require.True(t, rec.Attempts[1].Skipped)
	require.Contains(t, rec.Attempts[1].SkipReason, "previous_response_id")
}

func TestMaxConcurrentSkipsBackend(t *testing.T) {
	e := newEnv(t, func(s *snapshot.Snapshot) {
		s.Backends[0].MaxConcurrent = 1
		s.Routes[0].Backends = s.Routes[0].Backends[:1]
	})
	gone := make(chan struct{}, 1)
	e.a.set(hang(gone))
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("Authorization", "Bearer "+keyAlpha)
	done := make(chan struct{})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	go func() {
		defer close(done)
		if resp, err := tr.RoundTrip(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "the first request in flight", func() bool { return e.a.count() == 1 })
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	tr.CloseIdleConnections()
	e.srv.CloseClientConnections()
	<-gone
	<-done
}

func TestWeightedOrderWithinPriority(t *testing.T) {
	e := newEnv(t, func(s *snapshot.Snapshot) {
		s.Routes[0].Backends[0].Weight = 3
		s.Routes[0].Backends[1] = snapshot.RouteBackend{Backend: "ns/openai-b", Priority: 0, Weight: 1}
	})
	for range 200 {
		resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.InDelta(t, 150, e.a.count(), 30, fmt.Sprintf("a=%d b=%d", e.a.count(), e.b.count()))
	require.Equal(t, 200, e.a.count()+e.b.count())
}
