package openai

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

func chatCall(wantUsage bool) *provider.Call {
	return &provider.Call{Op: provider.OpChatCompletions, Stream: true, ClientWantsUsage: wantUsage}
}

func TestChatStreamGolden(t *testing.T) {
	in := wiretest.ReadFile(t, "chat_usage.sse")
	for _, tt := range []struct {
		golden    string
		wantUsage bool
	}{
		{"chat_usage_shown", true},
		{"chat_usage_hidden", false},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			r := NewChatReader(chatCall(tt.wantUsage), io.NopCloser(iotest.HalfReader(bytes.NewReader(in))), provider.Options{})
			o := wiretest.Run(t, r)
			require.ErrorIs(t, o.End, io.EOF)
			require.Equal(t, cost.Usage{InputTokens: 200, CacheReadTokens: 800, OutputTokens: 50, ReasoningTokens: 20}, o.Result.Usage)
			require.True(t, o.Result.UsageReported)
			require.Equal(t, "Hello é", o.Result.OutputText)
			require.Equal(t, "gpt-4o-2024-08-06", o.Result.ServedModel)
			if tt.wantUsage {
				require.Equal(t, string(in), string(o.Client), "relayed byte for byte")
			} else {
				require.NotContains(t, string(o.Client), `"usage":{`)
				require.Contains(t, o.Events, "data (hidden)")
			}
			wiretest.Golden(t, tt.golden, o, *update)
		})
	}
}

func TestResponsesStreamGolden(t *testing.T) {
	in := wiretest.ReadFile(t, "responses.sse")
	r := NewResponsesReader(io.NopCloser(iotest.OneByteReader(bytes.NewReader(in))), provider.Options{})
	o := wiretest.Run(t, r)
	require.ErrorIs(t, o.End, io.EOF)
	require.Equal(t, string(in), string(o.Client), "relayed byte for byte, unknown events included")
	require.Equal(t, cost.Usage{InputTokens: 10, CacheReadTokens: 2, OutputTokens: 5}, o.Result.Usage)
	require.Equal(t, "Hi there", o.Result.OutputText)
	require.Equal(t, "resp_1", o.Result.ResponseID)
	require.Equal(t, "completed", o.Result.StopReason)
	wiretest.Golden(t, "responses", o, *update)
}

func chunk(content string) string {
	return `data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"` + content + `"},"finish_reason":null}]}` + "\n\n"
}

func TestChatStreamFailures(t *testing.T) {
	boom := errors.New("connection reset by peer")
	tests := []struct {
		name   string
		body   io.Reader
		want   error
		class  string
		policy bool
		events int
	}{
		{name: "ends before [DONE]", body: strings.NewReader(chunk("a") + chunk("b")), want: provider.ErrTruncated, events: 2},
		{name: "ends inside a line", body: strings.NewReader(chunk("a") + `data: {"id":"c","mod`), want: provider.ErrTruncated, events: 1},
		{name: "empty body", body: strings.NewReader(""), want: provider.ErrTruncated},
		{name: "read error", body: io.MultiReader(strings.NewReader(chunk("a")), iotest.ErrReader(boom)), want: boom, events: 1},
		{name: "not JSON", body: strings.NewReader(chunk("a") + "data: <html>\n\n"), want: provider.ErrMalformed, events: 1},
		{name: "HTML page, no SSE events", body: strings.NewReader("<html><body>502 Bad Gateway</body></html>\n"), want: provider.ErrTruncated},
		{
			name:  "error chunk",
			body:  strings.NewReader(chunk("a") + `data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}` + "\n\n"),
			class: snapshot.FailoverServerError, events: 1,
		},
		{
			name:  "rate limit error chunk",
			body:  strings.NewReader(`data: {"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}` + "\n\n"),
			class: snapshot.FailoverRateLimited,
		},
		{
			name:   "content policy error chunk",
			body:   strings.NewReader(`data: {"error":{"message":"flagged","type":"invalid_request_error","param":"prompt","code":"content_filter"}}` + "\n\n"),
			policy: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := wiretest.Run(t, NewChatReader(chatCall(true), io.NopCloser(tt.body), provider.Options{}))
			require.Len(t, o.Events, tt.events)
			if tt.want != nil {
				require.ErrorIs(t, o.End, tt.want)
				if errors.Is(tt.want, boom) {
					require.ErrorIs(t, o.End, provider.ErrTruncated)
				}
				require.False(t, o.Result.UsageReported)
				return
			}
			var ue *provider.UpstreamError
			require.ErrorAs(t, o.End, &ue)
			require.Equal(t, tt.class, ue.Class)
			require.Equal(t, tt.policy, ue.ContentPolicy)
			require.Equal(t, http.StatusOK, ue.Status)
		})
	}
}

func TestChatStreamContentFilter(t *testing.T) {
	in := chunk("a") + `data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}` + "\n\ndata: [DONE]\n\n"
	o := wiretest.Run(t, NewChatReader(chatCall(false), io.NopCloser(strings.NewReader(in)), provider.Options{}))
	require.ErrorIs(t, o.End, io.EOF)
	require.True(t, o.Result.ContentFiltered)
	require.Equal(t, "content_filter", o.Result.StopReason)
	require.False(t, o.Result.UsageReported)
}

// A usage chunk that also carries choices is never hidden: hiding it would drop content.
func TestChatStreamUsageWithChoicesShown(t *testing.T) {
	in := `data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}` + "\n\ndata: [DONE]\n\n"
	o := wiretest.Run(t, NewChatReader(chatCall(false), io.NopCloser(strings.NewReader(in)), provider.Options{}))
	require.Equal(t, in, string(o.Client))
	require.Equal(t, int64(3), o.Result.Usage.InputTokens)
}

func TestResponsesStreamEnds(t *testing.T) {
	created := "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"model\":\"gpt-4.1\",\"usage\":null}}\n\n"
	tests := []struct {
		name     string
		in       string
		end      error
		class    string
		policy   bool
		filtered bool
		stop     string
		usage    bool
	}{
		{name: "truncated", in: created, end: provider.ErrTruncated},
		{name: "stray [DONE] ends it", in: created + "data: [DONE]\n\n", end: io.EOF},
		{
			name: "incomplete content filter",
			in:   created + "event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"sequence_number\":1,\"response\":{\"id\":\"resp_1\",\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"content_filter\"},\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
			end:  io.EOF, filtered: true, stop: "content_filter", usage: true,
		},
		{
			name: "failed",
			in:   created + "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":1,\"response\":{\"id\":\"resp_1\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"x\"},\"usage\":null}}\n\n",
			end:  io.EOF, stop: "failed",
		},
		{
			name:  "error event",
			in:    created + "event: error\ndata: {\"type\":\"error\",\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\",\"param\":null,\"sequence_number\":1}\n\n",
			class: snapshot.FailoverRateLimited,
		},
		{
			name:   "policy error event",
			in:     created + "event: error\ndata: {\"type\":\"error\",\"code\":\"bio_policy\",\"message\":\"no\",\"param\":null,\"sequence_number\":1}\n\n",
			policy: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := wiretest.Run(t, NewResponsesReader(io.NopCloser(strings.NewReader(tt.in)), provider.Options{}))
			require.True(t, strings.HasPrefix(string(o.Client), created))
			require.NotContains(t, string(o.Client), "[DONE]")
			require.NotContains(t, string(o.Client), "event: error")
			if tt.end == nil {
				var ue *provider.UpstreamError
				require.ErrorAs(t, o.End, &ue)
				require.Equal(t, tt.class, ue.Class)
				require.Equal(t, tt.policy, ue.ContentPolicy)
				return
			}
			require.ErrorIs(t, o.End, tt.end)
			require.Equal(t, tt.filtered, o.Result.ContentFiltered)
			require.Equal(t, tt.stop, o.Result.StopReason)
			require.Equal(t, tt.usage, o.Result.UsageReported)
			require.Equal(t, "gpt-4.1", o.Result.ServedModel)
		})
	}
}

// Next must return when the body is closed while it waits for the upstream.
func TestStreamReadersUnblockOnClose(t *testing.T) {
	for _, r := range []func(io.ReadCloser) provider.EventReader{
		func(b io.ReadCloser) provider.EventReader {
			return NewChatReader(chatCall(true), b, provider.Options{})
		},
		func(b io.ReadCloser) provider.EventReader { return NewResponsesReader(b, provider.Options{}) },
	} {
		body := wiretest.NewBlockingBody([]byte(chunk("a")))
		rd := r(body)
		_, err := rd.Next()
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			_, err := rd.Next()
			done <- err
		}()
		require.NoError(t, rd.Close())
		require.ErrorIs(t, <-done, provider.ErrTruncated)
	}
}

func TestClassify(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		class  string
		typ    string
		policy bool
		retry  time.Duration
	}{
		{name: "rate limit", status: 429, header: http.Header{"Retry-After-Ms": {"1500"}, "Retry-After": {"9"}},
			body:  `{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			class: snapshot.FailoverRateLimited, typ: "rate_limit_exceeded", retry: 1500 * time.Millisecond},
		{name: "insufficient quota", status: 429,
			body:  `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
			class: snapshot.FailoverQuotaExhausted, typ: "insufficient_quota"},
		{name: "quota in type only", status: 429, body: `{"error":{"message":"quota","type":"insufficient_quota","code":null}}`,
			class: snapshot.FailoverQuotaExhausted, typ: "insufficient_quota"},
		{name: "429 unknown body, retry-after seconds", status: 429, header: http.Header{"Retry-After": {"7"}}, body: `not json`,
			class: snapshot.FailoverRateLimited, retry: 7 * time.Second},
		{name: "retry-after http date", status: 503, header: http.Header{"Retry-After": {now.Add(30 * time.Second).Format(http.TimeFormat)}},
			body: `{"error":{"message":"overloaded","type":"server_error","code":null}}`, class: snapshot.FailoverServerError, typ: "server_error", retry: 30 * time.Second},
		{name: "500", status: 500, body: `{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`,
			class: snapshot.FailoverServerError, typ: "server_error"},
		{name: "502 html", status: 502, body: `<html>bad gateway</html>`, class: snapshot.FailoverServerError},
		{name: "401", status: 401, body: `{"error":{"message":"Incorrect API key provided: sk-...","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			class: snapshot.FailoverUpstreamAuth, typ: "invalid_api_key"},
		{name: "403", status: 403, body: `{"error":{"message":"Country not supported","type":"request_forbidden","code":"unsupported_country_region_territory"}}`,
			class: snapshot.FailoverUpstreamAuth, typ: "unsupported_country_region_territory"},
		{name: "404 model", status: 404, body: `{"error":{"message":"The model gpt-9 does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}`,
			class: snapshot.FailoverNotFound, typ: "model_not_found"},
		{name: "404 other", status: 404, body: `{"error":{"message":"Response not found","type":"invalid_request_error","param":null,"code":null}}`,
			typ: "invalid_request_error"},
		{name: "400", status: 400, body: `{"error":{"message":"Unrecognized request argument supplied: foo","type":"invalid_request_error","param":null,"code":null}}`,
			typ: "invalid_request_error"},
		{name: "413", status: 413, body: `{"error":{"message":"too large","type":"invalid_request_error","code":null}}`, typ: "invalid_request_error"},
		{name: "422", status: 422, body: `{"error":{"message":"bad","type":"invalid_request_error","code":null}}`, typ: "invalid_request_error"},
		{name: "408", status: 408, body: ``, class: snapshot.FailoverTimeout},
		{name: "content policy", status: 400, body: `{"error":{"message":"Your request was rejected by our safety system","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}`,
			policy: true, typ: "content_policy_violation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			e := Classify(tt.status, h, []byte(tt.body), now)
			require.Equal(t, tt.class, e.Class)
			require.Equal(t, tt.policy, e.ContentPolicy)
			require.Equal(t, tt.typ, e.Type)
			require.Equal(t, tt.retry, e.RetryAfter)
			require.Equal(t, tt.status, e.Status)
			require.NotEmpty(t, e.Message)
			require.Equal(t, tt.body, string(e.Body))
			require.Equal(t, tt.class != "", e.Retryable())
		})
	}
}

func TestParse(t *testing.T) {
	chat := `{"id":"chatcmpl-1","object":"chat.completion","created":1730000000,"model":"gpt-4o-2024-08-06",
 "choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],
 "usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,
          "prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},
          "completion_tokens_details":{"reasoning_tokens":2,"audio_tokens":0}}}`
	res, err := ParseBody(provider.OpChatCompletions, []byte(chat))
	require.NoError(t, err)
	require.Equal(t, &provider.Result{
		Usage:         cost.Usage{InputTokens: 8, CacheReadTokens: 4, OutputTokens: 5, ReasoningTokens: 2},
		UsageReported: true, ServedModel: "gpt-4o-2024-08-06", ResponseID: "chatcmpl-1", StopReason: "stop", OutputText: "Hi",
	}, res)

	resp := `{"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1-2025-04-14",
 "output":[{"type":"reasoning","id":"rs_1","summary":[]},
           {"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"Hi","annotations":[]},{"type":"output_text","text":" there","annotations":[]}]}],
 "usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":3},"total_tokens":17}}`
	res, err = ParseBody(provider.OpResponses, []byte(resp))
	require.NoError(t, err)
	require.Equal(t, &provider.Result{
		Usage:         cost.Usage{InputTokens: 12, OutputTokens: 5, ReasoningTokens: 3},
		UsageReported: true, ServedModel: "gpt-4.1-2025-04-14", ResponseID: "resp_1", StopReason: "completed", OutputText: "Hi there",
	}, res)

	_, err = ParseBody(provider.OpChatCompletions, []byte(`{"id":`))
	require.ErrorIs(t, err, provider.ErrMalformed)
}

func TestNewRequest(t *testing.T) {
	a, err := New(&snapshot.Backend{Name: "ns/openai", Provider: snapshot.ProviderOpenAI, Endpoint: "https://api.openai.com/v1/",
		Credentials: snapshot.Credentials{APIKey: "sk-backend"}}, provider.Options{})
	require.NoError(t, err)
	require.Equal(t, "https://api.openai.com/v1", a.BaseURL())
	client := http.Header{
		"Authorization":       {"Bearer gateway-key"},
		"X-Api-Key":           {"gateway-key"},
		"Api-Key":             {"gateway-key"},
		"Cookie":              {"a=b"},
		"Connection":          {"keep-alive"},
		"Accept-Encoding":     {"gzip"},
		"X-Stainless-Lang":    {"go"},
		"Openai-Organization": {"org-1"},
		"Openai-Project":      {"proj-1"},
		"Openai-Beta":         {"assistants=v2"},
		"User-Agent":          {"OpenAI/Go 3.0"},
	}
	body := []byte(`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	req, err := a.NewRequest(context.Background(), &provider.Call{Op: provider.OpChatCompletions, Stream: true, Model: "gpt-4o-2024-08-06", Body: body, Header: client, RawQuery: "x=1&beta=true"})
	require.NoError(t, err)
	require.Equal(t, "https://api.openai.com/v1/chat/completions", req.URL.String(), "no client query string")
	require.Equal(t, http.Header{
		"Authorization": {"Bearer sk-backend"},
		"Content-Type":  {"application/json"},
		"Openai-Beta":   {"assistants=v2"},
		"User-Agent":    {"OpenAI/Go 3.0"},
	}, req.Header, "no client credential and no OpenAI-Organization / OpenAI-Project next to the backend's key")
	sent, err := io.ReadAll(req.Body)
	require.NoError(t, err)
	require.Equal(t, `{"model":"gpt-4o-2024-08-06","stream":true,"messages":[{"role":"user","content":"hi"}]}`, string(sent))
	require.Equal(t, int64(len(sent)), req.ContentLength)

	// Same model: the body is sent as is.
	req, err = a.NewRequest(context.Background(), &provider.Call{Op: provider.OpResponses, Model: "gpt-4o", Body: body, Header: http.Header{}})
	require.NoError(t, err)
	require.Equal(t, "https://api.openai.com/v1/responses", req.URL.String())
	sent, _ = io.ReadAll(req.Body)
	require.Equal(t, string(body), string(sent))

	ok, reason := a.Supports(&provider.Call{Op: provider.OpMessages})
	require.False(t, ok)
	require.Contains(t, reason, "messages")
	_, err = a.NewRequest(context.Background(), &provider.Call{Op: provider.OpMessages, Body: body})
	require.Error(t, err)
}

func TestNewValidates(t *testing.T) {
	_, err := New(&snapshot.Backend{Name: "x", Provider: snapshot.ProviderOpenAI}, provider.Options{})
	require.ErrorContains(t, err, "no API key")
	_, err = New(&snapshot.Backend{Name: "x", Endpoint: "ftp://x", Credentials: snapshot.Credentials{APIKey: "k"}}, provider.Options{})
	require.ErrorContains(t, err, "http(s)")
	a, err := New(&snapshot.Backend{Name: "x", ModelMap: map[string]string{"gpt-4o": "gpt-4o-2024-11-20"}, Credentials: snapshot.Credentials{APIKey: "k"}}, provider.Options{})
	require.NoError(t, err)
	require.Equal(t, "https://api.openai.com/v1", a.BaseURL())
	require.Equal(t, "gpt-4o-2024-11-20", a.UpstreamModel("gpt-4o", "gpt-4o"))
	require.Equal(t, "gpt-4.1", a.UpstreamModel("gpt-4.1", "gpt-4.1"))
}

func FuzzChatReader(f *testing.F) {
	f.Add([]byte(chunk("a") + "data: [DONE]\n\n"))
	f.Add([]byte(`data: {"choices":[],"usage":{"prompt_tokens":1}}` + "\n\n"))
	f.Add([]byte(`data: {"error":{"code":429}}` + "\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		o := wiretest.Run(t, NewChatReader(chatCall(false), io.NopCloser(bytes.NewReader(in)), provider.Options{MaxEventBytes: 1 << 16}))
		require.Error(t, o.End)
		if errors.Is(o.End, io.EOF) {
			require.True(t, bytes.HasSuffix(o.Client, []byte("\n\n")), "a clean end relays [DONE]")
		}
	})
}

func BenchmarkChatReader(b *testing.B) {
	c := `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1730000000,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],"usage":null}` + "\n\n"
	in := []byte(strings.Repeat(c, 1000))
	b.SetBytes(int64(len(c)))
	b.ReportAllocs()
	br := bytes.NewReader(in)
	r := NewChatReader(chatCall(true), io.NopCloser(br), provider.Options{})
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			br.Reset(in)
			r = NewChatReader(chatCall(true), io.NopCloser(br), provider.Options{})
		}
	}
}
