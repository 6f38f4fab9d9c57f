package azure

import (
	"bytes"
	"context"
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

func newAdapter(t *testing.T, version string, creds snapshot.Credentials) *Adapter {
	t.Helper()
	a, err := New(&snapshot.Backend{Name: "ns/azure", Provider: snapshot.ProviderAzureOpenAI, Endpoint: "https://myres.openai.azure.com/",
		AzureAPIVersion: version, Credentials: creds, ModelMap: map[string]string{"gpt-4o": "gpt4o prod/eu"}}, provider.Options{})
	require.NoError(t, err)
	return a
}

func TestChatStreamGolden(t *testing.T) {
	in := wiretest.ReadFile(t, "chat_annotations.sse")
	a := newAdapter(t, "2024-10-21", snapshot.Credentials{APIKey: "k"})
	for _, tt := range []struct {
		golden    string
		wantUsage bool
	}{{"chat_annotations_usage_shown", true}, {"chat_annotations_usage_hidden", false}} {
		t.Run(tt.golden, func(t *testing.T) {
			c := &provider.Call{Op: provider.OpChatCompletions, Stream: true, ClientWantsUsage: tt.wantUsage}
			o := wiretest.Run(t, a.Stream(c, wiretest.Response(iotest.HalfReader(bytes.NewReader(in)), "text/event-stream")))
			require.ErrorIs(t, o.End, io.EOF)
			require.Equal(t, "gpt-4o-2024-11-20", o.Result.ServedModel, "from the first chunk that names one")
			require.Equal(t, "Hello from Azure", o.Result.OutputText)
			require.Equal(t, cost.Usage{InputTokens: 19, OutputTokens: 4}, o.Result.Usage)
			require.True(t, o.Result.UsageReported)
			// The prompt-filter chunk (choices [] but no usage) is never mistaken for the usage chunk.
			require.True(t, strings.HasPrefix(string(o.Client), `data: {"choices":[],"created":0`))
			if tt.wantUsage {
				require.Equal(t, string(in), string(o.Client))
			} else {
				require.NotContains(t, string(o.Client), `"usage":{`)
			}
			wiretest.Golden(t, tt.golden, o, *update)
		})
	}
}

func TestAsyncContentFilterEnd(t *testing.T) {
	in := `data: {"choices":[{"delta":{"content":"bad"},"finish_reason":null,"index":0}],"id":"c","model":"gpt-4o"}` + "\n\n" +
		`data: {"choices":[{"delta":{},"finish_reason":"content_filter","index":0,"content_filter_results":{"violence":{"filtered":true,"severity":"high"}}}],"id":"c","model":"gpt-4o"}` + "\n\n" +
		"data: [DONE]\n\n"
	a := newAdapter(t, "v1", snapshot.Credentials{APIKey: "k"})
	o := wiretest.Run(t, a.Stream(&provider.Call{Op: provider.OpChatCompletions, Stream: true}, wiretest.Response(strings.NewReader(in), "text/event-stream")))
	require.ErrorIs(t, o.End, io.EOF)
	require.True(t, o.Result.ContentFiltered)
}

func TestURLForms(t *testing.T) {
	body := []byte(`{"model":"gpt-4o","messages":[]}`)
	tests := []struct {
		name    string
		version string
		op      provider.Operation
		url     string
	}{
		{"deployment chat", "2024-10-21", provider.OpChatCompletions, "https://myres.openai.azure.com/openai/deployments/gpt4o%20prod%2Feu/chat/completions?api-version=2024-10-21"},
		{"classic responses", "2025-04-01-preview", provider.OpResponses, "https://myres.openai.azure.com/openai/responses?api-version=2025-04-01-preview"},
		{"v1 chat", "v1", provider.OpChatCompletions, "https://myres.openai.azure.com/openai/v1/chat/completions"},
		{"v1 responses", "", provider.OpResponses, "https://myres.openai.azure.com/openai/v1/responses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdapter(t, tt.version, snapshot.Credentials{APIKey: "azure-key"})
			model := a.UpstreamModel("gpt-4o", "gpt-4o")
			req, err := a.NewRequest(context.Background(), &provider.Call{Op: tt.op, Model: model, Body: body, RawQuery: "x=1&api-version=2099-01-01", ClientWantsUsage: true,
				Header: http.Header{"Authorization": {"Bearer gw"}, "Api-Key": {"client"}, "Openai-Organization": {"org"}, "Accept": {"application/json"}}})
			require.NoError(t, err)
			require.Equal(t, tt.url, req.URL.String())
			require.Equal(t, http.Header{"Api-Key": {"azure-key"}, "Content-Type": {"application/json"}, "Accept": {"application/json"}}, req.Header)
			sent, _ := io.ReadAll(req.Body)
			require.Equal(t, `{"model":"gpt4o prod/eu","messages":[]}`, string(sent), "body model is the deployment")
		})
	}
	// Entra ID token: bearer, never both.
	a := newAdapter(t, "v1", snapshot.Credentials{APIKey: "k", BearerToken: "entra"})
	req, err := a.NewRequest(context.Background(), &provider.Call{Op: provider.OpChatCompletions, Model: "d", Body: body, Header: http.Header{}})
	require.NoError(t, err)
	require.Equal(t, "Bearer entra", req.Header.Get("Authorization"))
	require.Empty(t, req.Header.Get("Api-Key"))
	require.Equal(t, "https://myres.openai.azure.com/openai/v1", a.BaseURL())
	require.Equal(t, "https://myres.openai.azure.com/openai", newAdapter(t, "2024-10-21", snapshot.Credentials{APIKey: "k"}).BaseURL())
}

func TestSupports(t *testing.T) {
	tests := []struct {
		name      string
		version   string
		op        provider.Operation
		body      string
		wantUsage bool
		reason    string
	}{
		{name: "v1 anything", version: "v1", op: provider.OpChatCompletions, body: `{"max_completion_tokens":5,"stream_options":{"include_usage":true}}`, wantUsage: true},
		{name: "new dated", version: "2024-10-21", op: provider.OpChatCompletions, body: `{"max_completion_tokens":5}`},
		{name: "preview boundary", version: "2024-09-01-preview", op: provider.OpChatCompletions, body: `{"max_completion_tokens":5}`},
		{name: "old max_completion_tokens", version: "2024-08-01-preview", op: provider.OpChatCompletions, body: `{"max_completion_tokens":5}`, reason: "max_completion_tokens"},
		{name: "old client stream_options", version: "2024-06-01", op: provider.OpChatCompletions, body: `{"stream":true,"stream_options":{"include_usage":true}}`, wantUsage: true, reason: "stream_options"},
		{name: "old injected stream_options", version: "2024-06-01", op: provider.OpChatCompletions, body: `{"stream":true,"stream_options":{"include_usage":true}}`},
		{name: "old max_tokens", version: "2024-06-01", op: provider.OpChatCompletions, body: `{"max_tokens":5}`},
		{name: "responses too old", version: "2024-10-21", op: provider.OpResponses, body: `{"input":"hi"}`, reason: "Responses API"},
		{name: "responses", version: "2025-03-01-preview", op: provider.OpResponses, body: `{"input":"hi","previous_response_id":"resp_1"}`},
		{name: "context_management", version: "v1", op: provider.OpResponses, body: `{"input":"hi","context_management":[{"type":"compaction"}]}`, reason: "context_management"},
		{name: "status on input items", version: "v1", op: provider.OpResponses, body: `{"input":[{"type":"message","role":"assistant","status":"completed","content":[]}]}`, reason: "status"},
		{name: "messages", version: "v1", op: provider.OpMessages, body: `{}`, reason: "messages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdapter(t, tt.version, snapshot.Credentials{APIKey: "k"})
			c := &provider.Call{Op: tt.op, Model: "d", Body: []byte(tt.body), Header: http.Header{}, ClientWantsUsage: tt.wantUsage}
			ok, reason := a.Supports(c)
			require.Equal(t, tt.reason == "", ok, reason)
			require.Contains(t, reason, tt.reason)
			_, err := a.NewRequest(context.Background(), c)
			require.Equal(t, tt.reason != "", err != nil)
		})
	}
	// An old version gets the gateway's own include_usage injection removed, not refused.
	a := newAdapter(t, "2024-06-01", snapshot.Credentials{APIKey: "k"})
	req, err := a.NewRequest(context.Background(), &provider.Call{Op: provider.OpChatCompletions, Stream: true, Model: "d",
		Body: []byte(`{"model":"d","stream":true,"stream_options":{"include_usage":true},"messages":[]}`), Header: http.Header{}})
	require.NoError(t, err)
	sent, _ := io.ReadAll(req.Body)
	require.Equal(t, `{"model":"d","stream":true,"messages":[]}`, string(sent))
}

func TestClassify(t *testing.T) {
	a := newAdapter(t, "v1", snapshot.Credentials{APIKey: "k"})
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		class  string
		policy bool
		retry  time.Duration
	}{
		{name: "content filter 400", status: 400,
			body:   `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}`,
			policy: true},
		{name: "inner_error spelling", status: 400, body: `{"error":{"message":"filtered","code":"invalid_request","inner_error":{"code":"ResponsibleAIPolicyViolation"}}}`, policy: true},
		{name: "429 code string", status: 429, header: http.Header{"Retry-After-Ms": {"2500"}, "Retry-After": {"3"}},
			body:  `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 3 seconds."}}`,
			class: snapshot.FailoverRateLimited, retry: 2500 * time.Millisecond},
		{name: "deployment not found", status: 404, body: `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}`, class: snapshot.FailoverNotFound},
		{name: "401", status: 401, body: `{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}`, class: snapshot.FailoverUpstreamAuth},
		{name: "500", status: 500, body: `{"error":{"code":"InternalServerError","message":"x"}}`, class: snapshot.FailoverServerError},
		{name: "400", status: 400, body: `{"error":{"code":"BadRequest","message":"x"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			e := a.Error(&provider.Call{Op: provider.OpChatCompletions}, tt.status, h, []byte(tt.body))
			require.Equal(t, tt.class, e.Class)
			require.Equal(t, tt.policy, e.ContentPolicy)
			require.Equal(t, tt.retry, e.RetryAfter)
			require.False(t, tt.policy && e.Retryable(), "content policy never fails over")
		})
	}
}

func TestNewValidates(t *testing.T) {
	for _, tt := range []struct {
		b   snapshot.Backend
		err string
	}{
		{snapshot.Backend{Endpoint: "https://r.openai.azure.com"}, "api-key or a bearer token"},
		{snapshot.Backend{Credentials: snapshot.Credentials{APIKey: "k"}}, "no endpoint"},
		{snapshot.Backend{Endpoint: "https://r.openai.azure.com", AzureAPIVersion: "latest", Credentials: snapshot.Credentials{APIKey: "k"}}, "neither v1"},
	} {
		_, err := New(&tt.b, provider.Options{})
		require.ErrorContains(t, err, tt.err)
	}
	a, err := New(&snapshot.Backend{Endpoint: "https://r.openai.azure.com/openai/v1/", Credentials: snapshot.Credentials{APIKey: "k"}}, provider.Options{})
	require.NoError(t, err)
	require.Equal(t, "https://r.openai.azure.com/openai/v1", a.BaseURL())
	require.Equal(t, "gpt-4.1", a.UpstreamModel("gpt-4.1", "gpt-4.1"))
}
