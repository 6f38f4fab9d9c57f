package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Bodies the gateway could read differently from the provider, or that could crash a
// recursive parser, are refused with 400 in the caller's shape (param when a field is at
// fault) and never reach a provider; the call is still recorded, without the body.
func TestAmbiguousBodiesNeverReachUpstream(t *testing.T) {
	e := newEnv(t, nil, func(o *Options) { o.MaxBodyBytes = 128 << 20 })
	deep := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
	}
	type tc struct {
		name, body, param, msg string
	}
	for _, shape := range []struct {
		name, path, model string
		anthropic         bool
	}{
		{"openai", "/v1/chat/completions", "gpt-4o", false},
		{"anthropic", "/v1/messages", "claude-sonnet-4-5", true},
	} {
		m := `"model":"` + shape.model + `"`
		cases := []tc{
			{"duplicate model", `{"model":"cheap-model",` + m + `,"max_tokens":1}`, "model", "more than once"},
			{"duplicate model escaped", `{` + m + `,"\u006dodel":"other","max_tokens":1}`, "model", "more than once"},
			{"model case variant", `{` + m + `,"MODEL":"other","max_tokens":1}`, "MODEL", "letter case"},
			{"duplicate max_tokens", `{` + m + `,"max_tokens":1,"max_tokens":100000}`, "max_tokens", "more than once"},
			{"duplicate stream", `{` + m + `,"max_tokens":1,"stream":false,"stream":true}`, "stream", "more than once"},
			{"duplicate nested", `{` + m + `,"max_tokens":1,"metadata":{"user_id":"a","user_id":"b"}}`, "", "more than once"},
			{"stream 1", `{` + m + `,"max_tokens":1,"stream":1}`, "stream", "boolean"},
			{"stream string", `{` + m + `,"max_tokens":1,"stream":"true"}`, "stream", "boolean"},
			{"max_tokens float", `{` + m + `,"max_tokens":1.5}`, "max_tokens", "integer"},
			{"max_tokens exponent", `{` + m + `,"max_tokens":1e3}`, "max_tokens", "integer"},
			{"max_tokens string", `{` + m + `,"max_tokens":"1000"}`, "max_tokens", "integer"},
			{"max_tokens negative", `{` + m + `,"max_tokens":-5}`, "max_tokens", "negative"},
			{"invalid UTF-8", "{" + m + ",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}", "", "not valid JSON"},
			{"1e6 nested arrays", `{` + m + `,"max_tokens":1,"messages":` + deep("[", "]", 1_000_000) + `}`, "", "deeper than 128"},
			{"1e6 nested objects", `{` + m + `,"max_tokens":1,"messages":` + deep(`{"a":`, "}", 1_000_000) + `}`, "", "deeper than 128"},
		}
		if !shape.anthropic {
			cases = append(cases,
				tc{"n 0", `{` + m + `,"n":0}`, "n", "from 1 to 128"},
				tc{"n string", `{` + m + `,"n":"64"}`, "n", "integer"},
				tc{"n 129", `{` + m + `,"n":129}`, "n", "from 1 to 128"},
				tc{"both output limits", `{` + m + `,"max_tokens":10,"max_completion_tokens":100000}`, "max_tokens", "same time"},
				tc{"duplicate include_usage", `{` + m + `,"stream":true,"stream_options":{"include_usage":true,"include_usage":false}}`, "", "more than once"},
				tc{"include_usage string", `{` + m + `,"stream":true,"stream_options":{"include_usage":"yes"}}`, "stream_options.include_usage", "boolean"},
			)
		} else {
			cases = append(cases,
				tc{"duplicate ttl", `{` + m + `,"max_tokens":1,"system":[{"type":"text","text":"s","cache_control":{"type":"ephemeral","ttl":"5m","ttl":"1h"}}]}`, "", "more than once"},
				tc{"duplicate thinking budget", `{` + m + `,"max_tokens":1,"thinking":{"type":"enabled","budget_tokens":1,"budget_tokens":64000}}`, "", "more than once"},
			)
		}
		for _, c := range cases {
			t.Run(shape.name+"/"+c.name, func(t *testing.T) {
				before := len(e.recorder.Calls())
				resp := e.do("POST", shape.path, keyAlpha, c.body)
				body := readAll(t, resp)
				require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
				require.Equal(t, "gateway", resp.Header.Get(HeaderErrorSource))
				require.Equal(t, "invalid_request_error", gjson.Get(body, "error.type").Str, body)
				require.Contains(t, gjson.Get(body, "error.message").Str, c.msg)
				if shape.anthropic {
					require.Equal(t, "error", gjson.Get(body, "type").Str, body)
				} else if c.param != "" {
					require.Equal(t, c.param, gjson.Get(body, "error.param").Str, body)
				}
				require.Len(t, e.recorder.Calls(), before+1, "the refused call is recorded")
				rec := e.recorder.Last(t)
				require.Equal(t, http.StatusBadRequest, rec.Status)
				require.Nil(t, rec.RequestBody, "a refused body is not parsed again by the recorder")
			})
		}
	}
	require.Zero(t, e.a.count()+e.b.count()+e.c.count(), "nothing was sent upstream")
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the gateway still serves")
}

// 100 MB of '[': a recursive validator needs far more stack than Go allows (a fatal error
// that takes the pod down); the gateway answers 400 after reading 129 of them.
func TestHundredMegabytesOfBrackets(t *testing.T) {
	e := newEnv(t, nil, func(o *Options) { o.MaxBodyBytes = 128 << 20 })
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, string(bytes.Repeat([]byte("["), 100<<20)))
	body := readAll(t, resp)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	require.Contains(t, gjson.Get(body, "error.message").Str, "deeper than 128")
	require.Zero(t, e.a.count()+e.b.count()+e.c.count(), "nothing was sent upstream")
	resp = e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the gateway still serves")
}

// What the provider receives, read by a last-member-wins parser, is what the gateway acted on.
func TestUpstreamReadsWhatTheGatewayActedOn(t *testing.T) {
	e := newEnv(t, func(s *snapshot.Snapshot) {
		s.Routes[0].Limits = snapshot.RequestLimits{MaxMaxTokens: 512}
	})
	resp := e.do("POST", "/v1/chat/completions", keyAlpha,
		`{"\u006dodel":"gpt-4o","str\u0065am":true,"m\u0061x_tokens":9999,"n":2,"messages":[{"role":"user","content":"hi"}]}`)
	readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var sent map[string]any
	require.NoError(t, json.Unmarshal(e.a.requests()[0].Body, &sent))
	require.Equal(t, "gpt-4o", sent["model"])
	require.Equal(t, true, sent["stream"])
	require.Equal(t, float64(512), sent["max_tokens"], "the clamp is in the field the provider reads")
	require.Equal(t, float64(2), sent["n"])
	require.Equal(t, map[string]any{"include_usage": true}, sent["stream_options"])
	rec := e.recorder.Last(t)
	require.True(t, rec.Stream)
	require.Equal(t, "gpt-4o", rec.RequestedModel)
}

// Admission reserves the output of every choice: n times the output limit.
func TestAdmissionCountsEveryChoice(t *testing.T) {
	mgr := budget.NewManager(budget.NewMemoryStore(), budget.Options{})
	defer mgr.Close()
	e := newEnv(t, func(s *snapshot.Snapshot) {
		b := s.DefaultBudget
		b.MaxRequestCostMicros = 100_000 // ten cents a call
		s.Teams[0].Budget = &b
	}, func(o *Options) { o.Budget = mgr })

	// 1000 output tokens of gpt-4o cost about a cent: one choice fits, 64 do not.
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, `{"model":"gpt-4o","max_tokens":1000,"messages":[]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, readAll(t, resp))
	resp = e.do("POST", "/v1/chat/completions", keyAlpha, `{"model":"gpt-4o","max_tokens":1000,"n":64,"messages":[]}`)
	body := readAll(t, resp)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	require.Equal(t, "max_request_cost", e.recorder.Last(t).Rejection.Limit)
	require.Equal(t, 1, e.a.count(), "the 64-choice call never reached the provider")
}
