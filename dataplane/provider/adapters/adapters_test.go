package adapters

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/internal/wiretest"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/leakcheck"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

var bedrockCreds = fakeprovider.BedrockAuth{AccessKeyID: "AKIDFAKE", SecretAccessKey: "secret/fake+key", SessionToken: "sess", Region: "us-east-1"}

// env is the fake provider and one backend per provider and URL form, all pointing at it.
type env struct {
	fp       *fakeprovider.Server
	srv      *httptest.Server
	client   *http.Client
	backends map[string]*snapshot.Backend
}

func newEnv(t *testing.T) *env {
	fp := fakeprovider.New(fakeprovider.Config{OpenAIKey: "sk-openai", AnthropicKey: "sk-ant", AzureKey: "az-key", Bedrock: bedrockCreds})
	srv := httptest.NewServer(fp)
	tr := &http.Transport{}
	t.Cleanup(func() {
		fp.Close()
		srv.Close()
		tr.CloseIdleConnections()
	})
	u := srv.URL
	return &env{fp: fp, srv: srv, client: &http.Client{Transport: tr}, backends: map[string]*snapshot.Backend{
		"openai":    {Name: "ns/openai", Provider: snapshot.ProviderOpenAI, Endpoint: u, Credentials: snapshot.Credentials{APIKey: "sk-openai"}},
		"anthropic": {Name: "ns/anthropic", Provider: snapshot.ProviderAnthropic, Endpoint: u, Credentials: snapshot.Credentials{APIKey: "sk-ant"}},
		"bedrock": {Name: "ns/bedrock", Provider: snapshot.ProviderBedrock, Endpoint: u, Region: "us-east-1",
			Credentials: snapshot.Credentials{AWSAccessKeyID: bedrockCreds.AccessKeyID, AWSSecretAccessKey: bedrockCreds.SecretAccessKey, AWSSessionToken: bedrockCreds.SessionToken},
			ModelMap:    map[string]string{"claude-sonnet-4-5": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}},
		"bedrock-key": {Name: "ns/bedrock-key", Provider: snapshot.ProviderBedrock, Endpoint: u, Region: "us-east-1", Credentials: snapshot.Credentials{BearerToken: "bedrock-api-key"}},
		"azure-v1":    {Name: "ns/azure", Provider: snapshot.ProviderAzureOpenAI, Endpoint: u, AzureAPIVersion: "v1", Credentials: snapshot.Credentials{APIKey: "az-key"}},
		"azure-dated": {Name: "ns/azure-dated", Provider: snapshot.ProviderAzureOpenAI, Endpoint: u, AzureAPIVersion: "2025-04-01-preview", Credentials: snapshot.Credentials{APIKey: "az-key"}},
	}}
}

func (e *env) adapter(t *testing.T, name string) provider.Adapter {
	a, err := New(e.backends[name], Options{})
	require.NoError(t, err)
	return a
}

// outcome is one attempt as the proxy core would run it.
type outcome struct {
	status int
	result *provider.Result
	client []byte
	end    error
	uerr   *provider.UpstreamError
}

func (e *env) do(t *testing.T, a provider.Adapter, c *provider.Call) outcome {
	t.Helper()
	ok, reason := a.Supports(c)
	require.True(t, ok, reason)
	req, err := a.NewRequest(context.Background(), c)
	require.NoError(t, err)
	resp, err := e.client.Do(req)
	require.NoError(t, err)
	o := outcome{status: resp.StatusCode}
	if resp.StatusCode >= 400 {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		o.uerr = a.Error(c, resp.StatusCode, resp.Header, body)
		return o
	}
	if c.Stream {
		w := wiretest.Run(t, a.Stream(c, resp))
		o.result, o.client, o.end = &w.Result, w.Client, w.End
		errors.As(w.End, &o.uerr)
		return o
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	res, out, err := a.Parse(c, resp.Header, body)
	require.NoError(t, err)
	o.result, o.client = res, body
	if out != nil {
		o.client = out
	}
	return o
}

var usage = cost.Usage{InputTokens: 11, CacheReadTokens: 5, CacheWrite5mTokens: 3, OutputTokens: 7}

func call(op provider.Operation, stream bool, model string) *provider.Call {
	var body string
	switch op {
	case provider.OpChatCompletions:
		body = `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]`
		if stream {
			body += `,"stream":true,"stream_options":{"include_usage":true}`
		}
	case provider.OpResponses:
		body = `{"model":"` + model + `","input":"hi"`
		if stream {
			body += `,"stream":true`
		}
	default:
		body = `{"model":"` + model + `","max_tokens":100,"messages":[{"role":"user","content":"hi"}]`
		if stream {
			body += `,"stream":true`
		}
	}
	h := http.Header{"Authorization": {"Bearer client-gateway-key"}, "X-Api-Key": {"client-gateway-key"}, "Anthropic-Version": {"2023-06-01"}}
	return &provider.Call{Op: op, Stream: stream, Model: model, Body: []byte(body + "}"), Header: h, ClientWantsUsage: true}
}

// Every provider, operation and URL form, streaming and not, gets the fake's exact text and
// usage back, authenticated with the backend's credential only.
func TestAgainstFakeProvider(t *testing.T) {
	e := newEnv(t)
	u := usage
	e.fp.SetDefault(&fakeprovider.Scenario{Text: "Hello from the fake", Usage: &u})
	tests := []struct {
		backend string
		op      provider.Operation
		model   string
	}{
		{"openai", provider.OpChatCompletions, "gpt-4o"},
		{"openai", provider.OpResponses, "gpt-4o"},
		{"azure-v1", provider.OpChatCompletions, "gpt4o-deployment"},
		{"azure-v1", provider.OpResponses, "gpt4o-deployment"},
		{"azure-dated", provider.OpChatCompletions, "gpt4o-deployment"},
		{"azure-dated", provider.OpResponses, "gpt4o-deployment"},
		{"anthropic", provider.OpMessages, "claude-sonnet-4-5"},
		{"bedrock", provider.OpMessages, "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{"bedrock-key", provider.OpMessages, "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			name := tt.backend + "/" + string(tt.op)
			if stream {
				name += "/stream"
			}
			t.Run(name, func(t *testing.T) {
				a := e.adapter(t, tt.backend)
				o := e.do(t, a, call(tt.op, stream, tt.model))
				require.Equal(t, http.StatusOK, o.status, "%+v", o.uerr)
				if stream {
					require.ErrorIs(t, o.end, io.EOF)
				}
				require.Equal(t, "Hello from the fake", o.result.OutputText)
				want := usage
				if tt.op != provider.OpMessages {
					// OpenAI reports one undivided cache-write count, recorded as 5m.
					want = cost.Usage{InputTokens: 11, CacheReadTokens: 5, CacheWrite5mTokens: 3, OutputTokens: 7}
				}
				require.Equal(t, want, o.result.Usage)
				require.True(t, o.result.UsageReported)
				require.NotEmpty(t, o.result.ServedModel)
				last, ok := e.fp.LastRequest()
				require.True(t, ok)
				require.Equal(t, fakeprovider.AuthOK, last.Auth, last.AuthError)
				require.NotContains(t, last.Header.Get("Authorization"), "client-gateway-key")
				require.NotContains(t, last.Header.Get("X-Api-Key"), "client-gateway-key")
			})
		}
	}
}

func TestCountTokensAgainstFakeProvider(t *testing.T) {
	e := newEnv(t)
	for _, b := range []string{"anthropic", "bedrock"} {
		t.Run(b, func(t *testing.T) {
			a := e.adapter(t, b)
			model := a.UpstreamModel("claude-sonnet-4-5", "claude-sonnet-4-5")
			c := call(provider.OpCountTokens, false, model)
			c.Body = []byte(`{"model":"` + model + `","messages":[{"role":"user","content":"hello there"}]}`)
			o := e.do(t, a, c)
			require.Equal(t, http.StatusOK, o.status, "%+v", o.uerr)
			require.Regexp(t, `^\{"input_tokens":\d+\}`, string(o.client))
		})
	}
}

func TestFailuresAgainstFakeProvider(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name     string
		backend  string
		op       provider.Operation
		stream   bool
		scenario fakeprovider.Scenario
		class    string
		policy   bool
		end      error
	}{
		{name: "anthropic 529", backend: "anthropic", op: provider.OpMessages, scenario: fakeprovider.Scenario{Status: 529}, class: snapshot.FailoverOverloaded},
		{name: "anthropic mid-stream overloaded", backend: "anthropic", op: provider.OpMessages, stream: true,
			scenario: fakeprovider.Scenario{Fault: "error", FaultAfter: 1, ErrorType: "overloaded_error"}, class: snapshot.FailoverOverloaded},
		{name: "anthropic cut", backend: "anthropic", op: provider.OpMessages, stream: true,
			scenario: fakeprovider.Scenario{Fault: "cut", FaultAfter: 1}, end: provider.ErrTruncated},
		{name: "anthropic malformed", backend: "anthropic", op: provider.OpMessages, stream: true,
			scenario: fakeprovider.Scenario{Fault: "malformed", FaultAfter: 1}, end: provider.ErrMalformed},
		{name: "bedrock throttling", backend: "bedrock", op: provider.OpMessages, scenario: fakeprovider.Scenario{ErrorType: "ThrottlingException"}, class: snapshot.FailoverRateLimited},
		{name: "bedrock quota 400", backend: "bedrock", op: provider.OpMessages, scenario: fakeprovider.Scenario{ErrorType: "ServiceQuotaExceededException"}, class: snapshot.FailoverQuotaExhausted},
		{name: "bedrock mid-stream exception", backend: "bedrock", op: provider.OpMessages, stream: true,
			scenario: fakeprovider.Scenario{Fault: "error", FaultAfter: 1, ErrorType: "throttlingException"}, class: snapshot.FailoverRateLimited},
		{name: "bedrock cut", backend: "bedrock", op: provider.OpMessages, stream: true,
			scenario: fakeprovider.Scenario{Fault: "cut", FaultAfter: 1}, end: provider.ErrTruncated},
		{name: "openai insufficient quota", backend: "openai", op: provider.OpChatCompletions, scenario: fakeprovider.Scenario{ErrorType: "insufficient_quota"}, class: snapshot.FailoverQuotaExhausted},
		{name: "openai 429", backend: "openai", op: provider.OpResponses, scenario: fakeprovider.Scenario{Status: 429}, class: snapshot.FailoverRateLimited},
		{name: "openai chat mid-stream error", backend: "openai", op: provider.OpChatCompletions, stream: true,
			scenario: fakeprovider.Scenario{Fault: "error", FaultAfter: 1}, class: snapshot.FailoverServerError},
		{name: "openai responses cut", backend: "openai", op: provider.OpResponses, stream: true,
			scenario: fakeprovider.Scenario{Fault: "cut", FaultAfter: 1}, end: provider.ErrTruncated},
		{name: "azure content filter", backend: "azure-v1", op: provider.OpChatCompletions, scenario: fakeprovider.Scenario{ErrorType: "content_filter"}, policy: true},
		{name: "azure 429", backend: "azure-dated", op: provider.OpChatCompletions, scenario: fakeprovider.Scenario{Status: 429}, class: snapshot.FailoverRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.adapter(t, tt.backend)
			model := "gpt-4o"
			if tt.op == provider.OpMessages {
				model = a.UpstreamModel("claude-sonnet-4-5", "claude-sonnet-4-5")
			}
			e.fp.SetDefault(&tt.scenario)
			o := e.do(t, a, call(tt.op, tt.stream, model))
			if tt.end != nil {
				require.ErrorIs(t, o.end, tt.end)
				return
			}
			require.NotNil(t, o.uerr, "status %d end %v", o.status, o.end)
			require.Equal(t, tt.class, o.uerr.Class, "%+v", o.uerr)
			require.Equal(t, tt.policy, o.uerr.ContentPolicy)
			if tt.backend == "bedrock" && !tt.stream {
				require.Equal(t, "error", gjsonString(o.uerr.Body, "type"), "Anthropic-shaped: %s", o.uerr.Body)
			}
		})
	}
}

func TestNewPicksAdapter(t *testing.T) {
	e := newEnv(t)
	for name, want := range map[string]string{"openai": "openai", "anthropic": "anthropic", "bedrock": "bedrock", "azure-v1": "azure"} {
		a := e.adapter(t, name)
		require.Equal(t, want, a.ProviderName())
		require.Same(t, e.backends[name], a.Backend())
	}
	_, err := New(&snapshot.Backend{Name: "x", Provider: "Vertex"}, Options{})
	require.ErrorContains(t, err, `unsupported provider "Vertex"`)
	_, err = New(&snapshot.Backend{Name: "x", Provider: snapshot.ProviderBedrock}, Options{})
	require.ErrorContains(t, err, "no region")
}
