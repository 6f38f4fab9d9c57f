package capturesink

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// good is a valid gateway event (the OpenAI worked example of docs/events.md "Worked examples").
const good = `{"type":"capture","uuid":"5f0c6a52-2b7e-5a3d-9c1e-6a7b8c9d0e1f","event":"$ai_generation",
 "distinct_id":"user_123","timestamp":"2026-09-10T12:00:01.412Z","properties":{
 "$lib":"llm-gateway","$ai_trace_id":"0b8e4c1a-7d3f-4e55-a1b2-9c8d7e6f5a40","$ai_span_id":"5f0c6a52-2b7e-5a3d-9c1e-6a7b8c9d0e1f",
 "$ai_provider":"openai","$ai_model":"gpt-4o-mini","$ai_base_url":"https://api.openai.com/v1","$ai_http_status":200,
 "$ai_stream":false,"$ai_latency":1.412,"$ai_is_error":false,
 "$ai_input":[{"role":"user","content":"hi"}],"$ai_output_choices":[{"role":"assistant","content":"hello"}],
 "$ai_input_tokens":176,"$ai_output_tokens":150,"$ai_total_tokens":1350,"$ai_cache_read_input_tokens":1024,
 "$ai_cache_creation_input_tokens":0,"$ai_cache_reporting_exclusive":true,
 "$ai_input_cost_usd":0.000103,"$ai_cache_read_cost_usd":0.000077,"$ai_cache_creation_cost_usd":0,
 "$ai_output_cost_usd":0.00009,"$ai_total_cost_usd":0.000193,"$ai_cost_passthrough":true}}`

// mutate returns good with properties changed (nil value deletes).
func mutate(t *testing.T, envelope map[string]any, props map[string]any) []byte {
	t.Helper()
	var ev map[string]any
	d := json.NewDecoder(strings.NewReader(good))
	d.UseNumber()
	require.NoError(t, d.Decode(&ev))
	for k, v := range envelope {
		if v == nil {
			delete(ev, k)
		} else {
			ev[k] = v
		}
	}
	p := ev["properties"].(map[string]any)
	for k, v := range props {
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	b, err := json.Marshal(ev)
	require.NoError(t, err)
	return b
}

func TestValidateAcceptsTheReferenceShape(t *testing.T) {
	require.Empty(t, Validate([]byte(good)))
}

func TestValidateRejects(t *testing.T) {
	n := func(s string) json.Number { return json.Number(s) }
	for name, tc := range map[string]struct {
		env, props map[string]any
		want       string
	}{
		"wrong event":             {env: map[string]any{"event": "$pageview"}, want: "event is"},
		"no uuid":                 {env: map[string]any{"uuid": "abc"}, want: "not a UUID"},
		"empty distinct id":       {env: map[string]any{"distinct_id": ""}, want: "distinct_id"},
		"bad timestamp":           {env: map[string]any{"timestamp": "yesterday"}, want: "timestamp"},
		"missing model":           {props: map[string]any{"$ai_model": nil}, want: "$ai_model is required"},
		"uppercase provider":      {props: map[string]any{"$ai_provider": "OpenAI"}, want: "$ai_provider"},
		"latency as string":       {props: map[string]any{"$ai_latency": "1.4"}, want: "$ai_latency must be a number"},
		"is_error as string":      {props: map[string]any{"$ai_is_error": "false"}, want: "JSON boolean"},
		"float tokens":            {props: map[string]any{"$ai_input_tokens": n("1.5")}, want: "integer"},
		"missing output tokens":   {props: map[string]any{"$ai_output_tokens": nil}, want: "$ai_output_tokens is required"},
		"error without message":   {props: map[string]any{"$ai_is_error": true}, want: "$ai_error is missing"},
		"error object":            {props: map[string]any{"$ai_is_error": true, "$ai_error": map[string]any{"m": 1}}, want: "$ai_error must be a string"},
		"status 500 not error":    {props: map[string]any{"$ai_http_status": 500}, want: "$ai_is_error is not true"},
		"ttft without stream":     {props: map[string]any{"$ai_time_to_first_token": n("0.2")}, want: "non-streaming"},
		"reserved property":       {props: map[string]any{"$ai_gateway_request_id": "x"}, want: "reserved"},
		"posthog base url":        {props: map[string]any{"$ai_base_url": "https://ai-gateway.eu.posthog.com/v1"}, want: "PostHog gateway host"},
		"bad trace id":            {props: map[string]any{"$ai_trace_id": "a b"}, want: "$ai_trace_id"},
		"inclusive from gateway":  {props: map[string]any{"$ai_cache_reporting_exclusive": false}, want: "must be true"},
		"total tokens wrong":      {props: map[string]any{"$ai_total_tokens": 10}, want: "$ai_total_tokens"},
		"ttl split wrong":         {props: map[string]any{"$ai_cache_creation_5m_input_tokens": 3}, want: "cache creation 5m"},
		"only total cost":         {props: map[string]any{"$ai_input_cost_usd": nil, "$ai_output_cost_usd": nil}, want: "partial cost set"},
		"costs do not add up":     {props: map[string]any{"$ai_total_cost_usd": n("0.5")}, want: "input"},
		"cache cost above input":  {props: map[string]any{"$ai_cache_read_cost_usd": n("0.01")}, want: "exceed the gross input"},
		"unpriced with cost":      {props: map[string]any{"llm_gateway_unpriced": true}, want: "unpriced"},
		"zero cost no passthru":   {props: map[string]any{"$ai_output_cost_usd": 0, "$ai_total_cost_usd": n("0.000103"), "$ai_cost_passthrough": nil}, want: "passthrough"},
		"string input untagged":   {props: map[string]any{"$ai_input": "[truncated]"}, want: "llm_gateway_input_truncated"},
		"service id with person":  {env: map[string]any{"distinct_id": "llm-gateway:team:a"}, want: "$process_person_profile"},
		"rejected with upstream":  {props: map[string]any{"llm_gateway_rejected": true, "$ai_is_error": true, "$ai_error": "x", "$ai_http_status": 429, "llm_gateway_rejection_limit": "spend:Day"}, want: "no $ai_base_url"},
		"write tokens unpriced":   {props: map[string]any{"$ai_cache_creation_input_tokens": 5, "$ai_total_tokens": 1355, "$ai_input_cost_usd": nil, "$ai_output_cost_usd": nil, "$ai_total_cost_usd": nil, "$ai_cache_read_cost_usd": nil, "$ai_cache_creation_cost_usd": nil}, want: "does not price them"},
		"reasoning above output":  {props: map[string]any{"$ai_reasoning_tokens": 151}, want: "reasoning"},
		"model params not object": {props: map[string]any{"$ai_model_parameters": "t=1"}, want: "$ai_model_parameters"},
	} {
		t.Run(name, func(t *testing.T) {
			problems := Validate(mutate(t, tc.env, tc.props))
			require.NotEmpty(t, problems)
			require.Contains(t, strings.Join(problems, "\n"), tc.want)
		})
	}
}

func TestValidateOversizedEvent(t *testing.T) {
	big := mutate(t, nil, map[string]any{"$ai_input": []any{map[string]any{"role": "user", "content": strings.Repeat("x", MaxEventBytes)}}})
	require.Contains(t, strings.Join(Validate(big), "\n"), "above capture's")
}

func post(t *testing.T, url string, body []byte, gz bool) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/batch/", bytes.NewReader(body))
	require.NoError(t, err)
	if gz {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write(body)
		w.Close()
		req, err = http.NewRequest(http.MethodPost, url+"/batch/?compression=gzip", &b)
		require.NoError(t, err)
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

func batch(events ...string) []byte {
	return []byte(`{"api_key":"phc_k","batch":[` + strings.Join(events, ",") + `]}`)
}

func TestSinkModesAndDedup(t *testing.T) {
	s := New()
	srv := httptest.NewServer(s)
	defer srv.Close()

	require.Equal(t, 200, post(t, srv.URL, batch(good), false).StatusCode)
	require.Equal(t, 200, post(t, srv.URL, batch(good), true).StatusCode)
	st := s.Stats()
	require.Equal(t, 1, st.Unique)
	require.Equal(t, 1, st.Duplicates)
	require.Equal(t, map[string]int{"5f0c6a52-2b7e-5a3d-9c1e-6a7b8c9d0e1f": 2}, s.DuplicateUUIDs())
	e, ok := s.Event("5f0c6a52-2b7e-5a3d-9c1e-6a7b8c9d0e1f")
	require.True(t, ok)
	require.Equal(t, "phc_k", e.APIKey)
	require.Equal(t, "gpt-4o-mini", e.Props["$ai_model"])

	s.SetMode(Unavailable)
	require.Equal(t, 503, post(t, srv.URL, batch(good), false).StatusCode)
	s.SetMode(RateLimited)
	s.SetRetryAfter(3)
	resp := post(t, srv.URL, batch(good), false)
	require.Equal(t, 429, resp.StatusCode)
	require.Equal(t, "3", resp.Header.Get("Retry-After"))
	require.Equal(t, 2, s.Stats().Refused)
	s.SetMode(Accept)

	bad := string(mutate(t, map[string]any{"uuid": "6f0c6a52-2b7e-5a3d-9c1e-6a7b8c9d0e1f"}, map[string]any{"$ai_is_error": "no"}))
	require.Equal(t, 200, post(t, srv.URL, batch(bad), false).StatusCode)
	require.Equal(t, 1, s.Stats().Invalid)
	require.Len(t, s.Problems(), 1)
	s.SetRejectInvalid(true)
	require.Equal(t, 400, post(t, srv.URL, batch(bad), false).StatusCode)
	require.Equal(t, 400, post(t, srv.URL, []byte(`{"batch":[]}`), false).StatusCode, "api_key required")
	require.Equal(t, 400, post(t, srv.URL, []byte(`{"api_key":"k","historical_migration":true,"batch":[]}`), false).StatusCode)
}

func TestSinkDownAndUp(t *testing.T) {
	s := New()
	require.NoError(t, s.Start(""))
	defer s.Close()
	url := s.URL()
	require.Equal(t, 200, post(t, url, batch(good), false).StatusCode)
	s.Down()
	http.DefaultClient.CloseIdleConnections()
	_, err := http.Post(url+"/batch/", "application/json", bytes.NewReader(batch(good)))
	require.Error(t, err, "nothing listens while down")
	require.NoError(t, s.Up())
	require.Equal(t, url, s.URL(), "same address after coming back")
	require.Equal(t, 200, post(t, url, batch(good), false).StatusCode)
	require.Equal(t, 1, s.Stats().Duplicates)
}
