package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/test/fakeprovider"
)

// TestBadInput sends each kind of bad request through both SDKs: the SDK parses the error into
// its typed error, and nothing reaches the provider.
func TestBadInput(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	big := strings.Repeat("x", 70<<10) // above the routes' 64 KiB limit
	type tc struct {
		name    string
		status  int
		errType string
	}
	openaiCases := []struct {
		tc
		opts []ooption.RequestOption
	}{
		{tc{"invalid json", 400, "invalid_request_error"}, []ooption.RequestOption{ooption.WithRequestBody("application/json", []byte(`{"model":`))}},
		{tc{"missing model", 400, "invalid_request_error"}, []ooption.RequestOption{ooption.WithJSONDel("model")}},
		{tc{"unknown model", 404, "invalid_request_error"}, []ooption.RequestOption{ooption.WithJSONSet("model", "no-such-model")}},
		{tc{"body too large", 413, "invalid_request_error"}, []ooption.RequestOption{ooption.WithJSONSet("messages", []map[string]string{{"role": "user", "content": big}})}},
		{tc{"wrong key", 401, "authentication_error"}, []ooption.RequestOption{ooption.WithAPIKey("sk-wrong")}},
		{tc{"missing key", 401, "authentication_error"}, []ooption.RequestOption{ooption.WithHeaderDel("Authorization")}},
	}
	for _, c := range openaiCases {
		t.Run("openai/"+c.name, func(t *testing.T) {
			client := e.openai()
			_, err := client.Chat.Completions.New(ctx, chatParams("gpt-4o"), c.opts...)
			var apiErr *openai.Error
			require.True(t, errors.As(err, &apiErr), "%v", err)
			require.Equal(t, c.status, apiErr.StatusCode)
			require.Equal(t, c.errType, apiErr.Type)
			require.NotEmpty(t, apiErr.Message)
			require.Equal(t, "gateway", apiErr.Response.Header.Get("X-Gateway-Error-Source"))
			require.Equal(t, "false", apiErr.Response.Header.Get("X-Should-Retry"))
		})
	}
	anthropicCases := []struct {
		tc
		opts []aoption.RequestOption
	}{
		{tc{"invalid json", 400, "invalid_request_error"}, []aoption.RequestOption{aoption.WithRequestBody("application/json", []byte(`{"model":`))}},
		{tc{"missing model", 400, "invalid_request_error"}, []aoption.RequestOption{aoption.WithJSONDel("model")}},
		{tc{"unknown model", 404, "not_found_error"}, []aoption.RequestOption{aoption.WithJSONSet("model", "claude-nope-9")}},
		{tc{"body too large", 413, "request_too_large"}, []aoption.RequestOption{aoption.WithJSONSet("system", big)}},
		{tc{"wrong key", 401, "authentication_error"}, []aoption.RequestOption{aoption.WithAPIKey("sk-wrong")}},
	}
	for _, c := range anthropicCases {
		t.Run("anthropic/"+c.name, func(t *testing.T) {
			client := e.anthropic()
			_, err := client.Messages.New(ctx, messageParams(), c.opts...)
			var apiErr *anthropic.Error
			require.True(t, errors.As(err, &apiErr), "%v", err)
			require.Equal(t, c.status, apiErr.StatusCode)
			require.EqualValues(t, c.errType, apiErr.Type())
			require.Equal(t, "gateway", apiErr.Response.Header.Get("X-Gateway-Error-Source"))
		})
	}
	t.Run("anthropic/missing key", func(t *testing.T) {
		client := anthropic.NewClient(aoption.WithoutEnvironmentDefaults(), aoption.WithBaseURL(e.gwSrv.URL), aoption.WithMaxRetries(0))
		_, err := client.Messages.New(ctx, messageParams())
		var apiErr *anthropic.Error
		require.True(t, errors.As(err, &apiErr), "%v", err)
		require.Equal(t, 401, apiErr.StatusCode)
		require.EqualValues(t, "authentication_error", apiErr.Type())
	})
	require.Zero(t, e.upstreamRequests(), "the fake provider's log shows nothing was sent upstream")
}

// TestHeaderHygiene: client credentials, OpenAI account headers and query strings never reach
// the provider, the backend's credential does; the provider headers a client sets are
// preserved; the body goes upstream as the client sent it.
func TestHeaderHygiene(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()

	oc := e.openai(ooption.WithOrganization("org-123"), ooption.WithProject("proj-123"), ooption.WithHeader("Cookie", "session=1"),
		ooption.WithQuery("api-version", "2099-01-01"))
	_, err := oc.Chat.Completions.New(ctx, chatParams("gpt-4o"))
	require.NoError(t, err)
	req, _ := e.fake.LastRequest()
	require.Equal(t, "Bearer "+upOpenAI, req.Header.Get("Authorization"))
	require.NotContains(t, strings.Join(req.Header.Values("Authorization"), ","), teamKey)
	require.Empty(t, req.Header.Get("X-Api-Key"))
	require.Empty(t, req.Header.Get("Cookie"))
	require.Empty(t, req.Header.Values("OpenAI-Organization"), "no client account header next to the backend's key")
	require.Empty(t, req.Header.Values("OpenAI-Project"))
	require.Empty(t, req.RawQuery, "the client's query string never reaches the provider")
	require.JSONEq(t, `{"model":"gpt-4o","messages":[{"role":"user","content":"hello through the gateway"}]}`, string(req.Body))

	ac := e.anthropic(aoption.WithHeader("anthropic-beta", "prompt-caching-2024-07-31"), aoption.WithHeader("anthropic-version", "2023-06-01"))
	_, err = ac.Messages.New(ctx, messageParams())
	require.NoError(t, err)
	req, _ = e.fake.LastRequest()
	require.Equal(t, upAnthropic, req.Header.Get("X-Api-Key"))
	require.Empty(t, req.Header.Get("Authorization"))
	require.Equal(t, "2023-06-01", req.Header.Get("Anthropic-Version"))
	require.Equal(t, "prompt-caching-2024-07-31", req.Header.Get("Anthropic-Beta"))
	require.JSONEq(t, `{"model":"claude-sonnet-4-5","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"hello through the gateway"}]}]}`, string(req.Body))

	// Documented edit: max_tokens clamped to the route's maximum (4096).
	_, err = ac.Messages.New(ctx, messageParams(), aoption.WithJSONSet("max_tokens", 100000))
	require.NoError(t, err)
	req, _ = e.fake.LastRequest()
	require.Equal(t, int64(4096), gjson.GetBytes(req.Body, "max_tokens").Int())
}

// TestClientDisconnectCancelsUpstream: the client leaves mid-stream; the provider sees its
// connection closed while it was still streaming.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.SetDefault(&fakeprovider.Scenario{Text: "one two three four five six seven eight", Chunks: 8, ChunkIntervalMs: 200})
	ctx, cancel := context.WithCancel(context.Background())
	ac := e.anthropic()
	stream := ac.Messages.NewStreaming(ctx, messageParams())
	require.True(t, stream.Next())
	cancel()
	for stream.Next() {
	}
	select {
	case path := <-e.upstreamGone:
		require.Equal(t, "/v1/messages", path)
	case <-time.After(10 * time.Second):
		t.Fatal("the provider never saw the connection close")
	}
	require.Eventually(t, func() bool {
		calls := e.rec.Calls()
		return len(calls) > 0 && calls[len(calls)-1].ClientDisconnected
	}, 10*time.Second, 10*time.Millisecond)
}

// TestPathAndProductHeaders: /{product}/v1/... is served and recorded; a raw HTTP check of
// the gateway's response headers.
func TestProductPath(t *testing.T) {
	e := newEnv(t, nil)
	oc := openai.NewClient(ooption.WithBaseURL(e.gwSrv.URL+"/max/v1/"), ooption.WithAPIKey(teamKey), ooption.WithMaxRetries(0))
	var raw *http.Response
	_, err := oc.Chat.Completions.New(context.Background(), chatParams("gpt-4o"), ooption.WithResponseInto(&raw))
	require.NoError(t, err)
	require.Equal(t, "gateway", raw.Header.Get("X-Llm-Gateway-Path"))
	require.Equal(t, "llm/openai", raw.Header.Get("X-Llm-Gateway-Backend"))
	require.NotEmpty(t, raw.Header.Get("X-Request-Id"))
	require.Equal(t, "max", e.rec.Last(t).Product)
}
