package anthropic

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/internal/wiretest"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestStreamGolden(t *testing.T) {
	in := wiretest.ReadFile(t, "messages_cache.sse")
	o := wiretest.Run(t, NewStreamReader(io.NopCloser(iotest.HalfReader(bytes.NewReader(in))), provider.Options{}))
	require.ErrorIs(t, o.End, io.EOF)
	require.Equal(t, string(in), string(o.Client), "relayed byte for byte, ping and unknown events included")
	// message_delta usage is cumulative: the last output count wins (15, not 8+15); the input
	// side comes from message_start, input_tokens excluding the cache.
	require.Equal(t, cost.Usage{InputTokens: 10, CacheReadTokens: 30000, CacheWrite5mTokens: 200, CacheWrite1hTokens: 1000, OutputTokens: 15}, o.Result.Usage)
	require.True(t, o.Result.UsageReported)
	require.Equal(t, "Hello world", o.Result.OutputText)
	require.Equal(t, "tool_use", o.Result.StopReason)
	wiretest.Golden(t, "messages_cache", o, *update)
}

const start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n"

func TestStreamEnds(t *testing.T) {
	boom := errors.New("reset")
	tests := []struct {
		name     string
		body     io.Reader
		end      error
		class    string
		reported bool
		usage    cost.Usage
		filtered bool
	}{
		{name: "ends after message_start", body: strings.NewReader(start), end: provider.ErrTruncated, usage: cost.Usage{InputTokens: 10, OutputTokens: 1}},
		{name: "read error", body: io.MultiReader(strings.NewReader(start), iotest.ErrReader(boom)), end: boom, usage: cost.Usage{InputTokens: 10, OutputTokens: 1}},
		{name: "not JSON", body: strings.NewReader(start + "event: ping\ndata: {oops\n\n"), end: provider.ErrMalformed, usage: cost.Usage{InputTokens: 10, OutputTokens: 1}},
		{name: "overloaded error event", body: strings.NewReader(start + "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"), class: snapshot.FailoverOverloaded},
		{name: "api error event", body: strings.NewReader("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal\"}}\n\n"), class: snapshot.FailoverServerError},
		{name: "rate limit error event", body: strings.NewReader("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow\"}}\n\n"), class: snapshot.FailoverRateLimited},
		{name: "unknown error event", body: strings.NewReader("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"new_kind_error\",\"message\":\"?\"}}\n\n"), class: snapshot.FailoverServerError},
		{
			name: "refusal, input counts only in a later delta",
			body: strings.NewReader(start + "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"refusal\"},\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":5,\"output_tokens\":3}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
			end:  io.EOF, reported: true, filtered: true, usage: cost.Usage{InputTokens: 12, CacheReadTokens: 5, OutputTokens: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := wiretest.Run(t, NewStreamReader(io.NopCloser(tt.body), provider.Options{}))
			require.NotContains(t, string(o.Client), "event: error")
			if tt.end == nil {
				var ue *provider.UpstreamError
				require.ErrorAs(t, o.End, &ue)
				require.Equal(t, tt.class, ue.Class)
				require.Equal(t, http.StatusOK, ue.Status)
				return
			}
			require.ErrorIs(t, o.End, tt.end)
			if !errors.Is(tt.end, io.EOF) && !errors.Is(tt.end, provider.ErrMalformed) {
				require.ErrorIs(t, o.End, provider.ErrTruncated)
			}
			require.Equal(t, tt.usage, o.Result.Usage)
			require.Equal(t, tt.reported, o.Result.UsageReported)
			require.Equal(t, tt.filtered, o.Result.ContentFiltered)
		})
	}
}

func TestStreamUnblocksOnClose(t *testing.T) {
	body := wiretest.NewBlockingBody([]byte(start))
	r := NewStreamReader(body, provider.Options{})
	_, err := r.Next()
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := r.Next()
		done <- err
	}()
	require.NoError(t, r.Close())
	require.ErrorIs(t, <-done, provider.ErrTruncated)
}

func TestClassify(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		class  string
		typ    string
		retry  time.Duration
	}{
		{"400", 400, nil, `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: field required"},"request_id":"req_1"}`, "", "invalid_request_error", 0},
		{"400 credit balance", 400, nil, `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}`, snapshot.FailoverQuotaExhausted, "invalid_request_error", 0},
		{"401", 401, nil, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, snapshot.FailoverUpstreamAuth, "authentication_error", 0},
		{"402 billing", 402, nil, `{"type":"error","error":{"type":"billing_error","message":"billing"}}`, snapshot.FailoverQuotaExhausted, "billing_error", 0},
		{"403", 403, nil, `{"type":"error","error":{"type":"permission_error","message":"no"}}`, snapshot.FailoverUpstreamAuth, "permission_error", 0},
		{"404 model", 404, nil, `{"type":"error","error":{"type":"not_found_error","message":"model: claude-9"}}`, snapshot.FailoverNotFound, "not_found_error", 0},
		{"404 file", 404, nil, `{"type":"error","error":{"type":"not_found_error","message":"File not found: file_1"}}`, "", "not_found_error", 0},
		{"413", 413, nil, `{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}`, "", "request_too_large", 0},
		{"429", 429, http.Header{"Retry-After": {"12"}}, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`, snapshot.FailoverRateLimited, "rate_limit_error", 12 * time.Second},
		{"429 spend limit", 429, nil, `{"type":"error","error":{"type":"rate_limit_error","message":"spend limit","details":{"error_code":"enforced_spend_limit_reached"}}}`, snapshot.FailoverQuotaExhausted, "rate_limit_error", 0},
		{"500", 500, nil, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, snapshot.FailoverServerError, "api_error", 0},
		{"504", 504, nil, `{"type":"error","error":{"type":"timeout_error","message":"timeout"}}`, snapshot.FailoverServerError, "timeout_error", 0},
		{"529", 529, nil, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, snapshot.FailoverOverloaded, "overloaded_error", 0},
		{"529 no body", 529, nil, ``, snapshot.FailoverOverloaded, "", 0},
		{"502 html", 502, nil, `<html>`, snapshot.FailoverServerError, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			e := Classify(tt.status, h, []byte(tt.body), now)
			require.Equal(t, tt.class, e.Class)
			require.Equal(t, tt.typ, e.Type)
			require.Equal(t, tt.retry, e.RetryAfter)
			require.NotEmpty(t, e.Message)
		})
	}
}

func TestParseMessage(t *testing.T) {
	body := `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-20250514",
 "content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"Hi"},{"type":"tool_use","id":"t","name":"x","input":{}},{"type":"text","text":"!"}],"stop_reason":"end_turn","stop_sequence":null,
 "usage":{"input_tokens":3,"cache_creation_input_tokens":1200,"cache_read_input_tokens":30000,
          "output_tokens":67,"service_tier":"standard"}}`
	res, err := ParseMessage([]byte(body))
	require.NoError(t, err)
	require.Equal(t, &provider.Result{
		Usage:         cost.Usage{InputTokens: 3, CacheReadTokens: 30000, CacheWrite5mTokens: 1200, OutputTokens: 67},
		UsageReported: true, ServedModel: "claude-sonnet-4-20250514", ResponseID: "msg_01", StopReason: "end_turn", OutputText: "Hi!",
	}, res)
	_, err = ParseMessage([]byte(`{`))
	require.ErrorIs(t, err, provider.ErrMalformed)
}

func TestNewRequest(t *testing.T) {
	a, err := New(&snapshot.Backend{Name: "ns/anthropic", Provider: snapshot.ProviderAnthropic, Credentials: snapshot.Credentials{APIKey: "sk-ant-backend"}}, provider.Options{})
	require.NoError(t, err)
	require.Equal(t, "https://api.anthropic.com/v1", a.BaseURL())
	client := http.Header{
		"Authorization":     {"Bearer gw"},
		"X-Api-Key":         {"gw"},
		"Cookie":            {"c=1"},
		"Accept-Encoding":   {"gzip"},
		"Anthropic-Version": {"2023-06-01"},
		"Anthropic-Beta":    {"interleaved-thinking-2025-05-14, context-1m-2025-08-07", "interleaved-thinking-2025-05-14,files-api-2025-04-14"},
		"Accept":            {"application/json"},
		"X-Stainless-Os":    {"Linux"},
	}
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`)
	req, err := a.NewRequest(context.Background(), &provider.Call{Op: provider.OpMessages, Model: "claude-sonnet-4-5", Body: body, Header: client, RawQuery: "beta=true"})
	require.NoError(t, err)
	require.Equal(t, "https://api.anthropic.com/v1/messages?beta=true", req.URL.String())
	require.Equal(t, http.Header{
		"X-Api-Key":         {"sk-ant-backend"},
		"Anthropic-Version": {"2023-06-01"},
		"Anthropic-Beta":    {"interleaved-thinking-2025-05-14,context-1m-2025-08-07,files-api-2025-04-14"},
		"Accept":            {"application/json"},
		"Content-Type":      {"application/json"},
	}, req.Header)
	sent, _ := io.ReadAll(req.Body)
	require.Equal(t, string(body), string(sent))

	// Only beta=true of the client's query goes upstream.
	for raw, want := range map[string]string{
		"x=1&beta=true":          "https://api.anthropic.com/v1/messages?beta=true",
		"beta=false":             "https://api.anthropic.com/v1/messages",
		"beta=true%26x%3D1":      "https://api.anthropic.com/v1/messages",
		"anthropic-version=1&x=": "https://api.anthropic.com/v1/messages",
	} {
		req, err := a.NewRequest(context.Background(), &provider.Call{Op: provider.OpMessages, Model: "claude-sonnet-4-5", Body: body, Header: client, RawQuery: raw})
		require.NoError(t, err)
		require.Equal(t, want, req.URL.String(), raw)
	}

	// Default version; count_tokens path; bearer-only backend.
	b, err := New(&snapshot.Backend{Name: "b", Endpoint: "http://127.0.0.1:9/v1", Credentials: snapshot.Credentials{BearerToken: "tok"}}, provider.Options{})
	require.NoError(t, err)
	req, err = b.NewRequest(context.Background(), &provider.Call{Op: provider.OpCountTokens, Body: body, Header: http.Header{}})
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:9/v1/messages/count_tokens", req.URL.String())
	require.Equal(t, "2023-06-01", req.Header.Get("Anthropic-Version"))
	require.Equal(t, "Bearer tok", req.Header.Get("Authorization"))
	require.Empty(t, req.Header.Get("X-Api-Key"))

	ok, _ := a.Supports(&provider.Call{Op: provider.OpChatCompletions})
	require.False(t, ok)
	res, out, err := a.Parse(&provider.Call{Op: provider.OpCountTokens}, nil, []byte(`{"input_tokens":42}`))
	require.NoError(t, err)
	require.Nil(t, out)
	require.False(t, res.UsageReported)
}

func FuzzStreamReader(f *testing.F) {
	f.Add([]byte(start + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
	f.Add([]byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		o := wiretest.Run(t, NewStreamReader(io.NopCloser(bytes.NewReader(in)), provider.Options{MaxEventBytes: 1 << 16}))
		require.Error(t, o.End)
		if errors.Is(o.End, io.EOF) {
			require.Contains(t, string(o.Client), "message_stop")
		}
	})
}

func BenchmarkStreamReader(b *testing.B) {
	ev := "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
	in := []byte(strings.Repeat(ev, 1000))
	b.SetBytes(int64(len(ev)))
	b.ReportAllocs()
	br := bytes.NewReader(in)
	r := NewStreamReader(io.NopCloser(br), provider.Options{})
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			br.Reset(in)
			r = NewStreamReader(io.NopCloser(br), provider.Options{})
		}
	}
}
