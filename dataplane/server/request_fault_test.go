package server

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// A client cannot open a backend's circuit: failures its request causes (a model a route
// prefix let it name, a "not found" about something else it named, an answer in the other
// mode than the gateway read from its body, a body the provider rejects) are the client's
// error, never fail over and never count against the backend. A model the operator named
// that the backend does not have still does (a configuration problem).
func TestClientCannotOpenACircuit(t *testing.T) {
	const (
		openAINoModel = `{"error":{"message":"The model %s does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`
		anthropicFile = `{"type":"error","error":{"type":"not_found_error","message":"File file_011 not found; check the model's file list"}}`
	)
	sseAnswer := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}
	jsonAnswer := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"c","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	}
	for _, tc := range []struct {
		name       string
		path, body string
		upstream   func(e *env) *upstream
		answer     http.HandlerFunc
		backend    string
		wantStatus int
		wantState  string
		check      func(t *testing.T, body string)
	}{
		{name: "model named through a route prefix", path: "/v1/chat/completions",
			body:     `{"model":"gpt-nonexistent","messages":[]}`,
			upstream: func(e *env) *upstream { return e.a }, answer: statusErr(404, fmt.Sprintf(openAINoModel, "gpt-nonexistent")),
			backend: "ns/openai-a", wantStatus: 404, wantState: "closed",
			check: func(t *testing.T, body string) {
				require.Equal(t, "model_not_found", gjson.Get(body, "error.code").Str, body)
			}},
		{name: "anthropic not_found_error about a file", path: "/v1/messages",
			body:     `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`,
			upstream: func(e *env) *upstream { return e.c }, answer: statusErr(404, anthropicFile),
			backend: "ns/anthropic", wantStatus: 404, wantState: "closed",
			check: func(t *testing.T, body string) {
				require.Equal(t, "not_found_error", gjson.Get(body, "error.type").Str, body)
			}},
		{name: "stream answered to a request read as not streaming", path: "/v1/chat/completions",
			body:     `{"model":"gpt-4o","stream":false,"messages":[]}`,
			upstream: func(e *env) *upstream { return e.a }, answer: sseAnswer,
			backend: "ns/openai-a", wantStatus: 502, wantState: "closed",
			check: func(t *testing.T, body string) {
				require.Equal(t, "upstream_mode_mismatch", gjson.Get(body, "error.code").Str, body)
			}},
		{name: "json answered to a request read as streaming", path: "/v1/chat/completions",
			body:     `{"model":"gpt-4o","stream":true,"messages":[]}`,
			upstream: func(e *env) *upstream { return e.a }, answer: jsonAnswer,
			backend: "ns/openai-a", wantStatus: 502, wantState: "closed",
			check: func(t *testing.T, body string) {
				require.Equal(t, "upstream_mode_mismatch", gjson.Get(body, "error.code").Str, body)
			}},
		{name: "400 invalid request", path: "/v1/chat/completions", body: chatBody,
			upstream: func(e *env) *upstream { return e.a },
			answer:   statusErr(400, `{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}`),
			backend:  "ns/openai-a", wantStatus: 400, wantState: "closed"},
		{name: "413 too large", path: "/v1/messages", body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`,
			upstream: func(e *env) *upstream { return e.c },
			answer:   statusErr(413, `{"type":"error","error":{"type":"request_too_large","message":"too big"}}`),
			backend:  "ns/anthropic", wantStatus: 413, wantState: "closed"},
		{name: "422 unprocessable", path: "/v1/chat/completions", body: chatBody,
			upstream: func(e *env) *upstream { return e.a },
			answer:   statusErr(422, `{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}`),
			backend:  "ns/openai-a", wantStatus: 422, wantState: "closed"},
		// Control: the operator named gpt-4o; a backend without it is misconfigured.
		{name: "configured model missing on the backend", path: "/v1/chat/completions", body: chatBody,
			upstream: func(e *env) *upstream { return e.a }, answer: statusErr(404, fmt.Sprintf(openAINoModel, "gpt-4o")),
			backend: "ns/openai-a", wantStatus: 200, wantState: "open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(s *snapshot.Snapshot) { s.Routes[0].Prefixes = []string{"gpt-"} })
			tc.upstream(e).set(tc.answer)
			for range 3 { // openai-a opens after 2 failures; anthropic at once on a NotFound
				resp := e.do("POST", tc.path, keyAlpha, tc.body, "Anthropic-Version", "2023-06-01")
				body := readAll(t, resp)
				require.Equal(t, tc.wantStatus, resp.StatusCode, body)
				if tc.check != nil {
					tc.check(t, body)
				}
			}
			require.Equal(t, tc.wantState, e.g.Runtime().backends[tc.backend].breaker.State().State)
			if tc.wantState == "closed" {
				require.Zero(t, e.b.count(), "no failover")
			}
		})
	}
}
