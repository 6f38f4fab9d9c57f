package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRequestLog(t *testing.T) {
	t.Run("records the request as received", func(t *testing.T) {
		fp, srv := newFake(t, Config{})
		resp := post(t, srv.URL+"/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke?x=1", with(bedrockHeaders, "X-Custom", "v"), bedrockBody)
		readAll(t, resp)
		reqs := fp.Requests()
		require.Len(t, reqs, 1)
		r := reqs[0]
		require.Equal(t, Bedrock, r.Provider)
		require.Equal(t, OpInvoke, r.Operation)
		require.Equal(t, "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke", r.Path)
		require.Equal(t, "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke", r.RawPath)
		require.Equal(t, "x=1", r.RawQuery)
		require.Equal(t, bedrockBody, string(r.Body))
		require.Equal(t, "v", r.Header.Get("X-Custom"))
		require.Equal(t, "us.anthropic.claude-sonnet-4-20250514-v1:0", r.Model)
		require.Equal(t, AuthOK, r.Auth)
		require.False(t, r.Stream)
		require.Equal(t, int64(1), fp.Count("/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke"))
	})

	t.Run("bounded ring keeps the newest", func(t *testing.T) {
		fp, srv := newFake(t, Config{RecordRequests: 3})
		for i := range 5 {
			readAll(t, post(t, srv.URL+"/v1/messages", with(anthropicHeaders, "X-N", fmt.Sprint(i)), anthropicBody))
		}
		reqs := fp.Requests()
		require.Len(t, reqs, 3)
		for i, r := range reqs {
			require.Equal(t, fmt.Sprint(i+2), r.Header.Get("X-N"))
		}
		require.Equal(t, int64(5), fp.Count("/v1/messages"))
		fp.Reset()
		require.Empty(t, fp.Requests())
		require.Zero(t, fp.Count("/v1/messages"))
	})

	t.Run("disabled keeps counts only", func(t *testing.T) {
		fp, srv := newFake(t, Config{RecordRequests: -1})
		readAll(t, post(t, srv.URL+"/v1/chat/completions", openAIHeaders, chatBody))
		require.Nil(t, fp.Requests())
		require.Equal(t, map[string]int64{"/v1/chat/completions": 1}, fp.Counts())
	})
}

func TestAdminEndpoints(t *testing.T) {
	fp, srv := newFake(t, Config{Scenarios: map[string]Scenario{"overloaded": {Status: 529}}})
	admin := func(method, path, body string) (int, string) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp.StatusCode, string(readAll(t, resp))
	}
	status := func() int {
		resp := post(t, srv.URL+"/v1/messages", anthropicHeaders, anthropicBody)
		readAll(t, resp)
		return resp.StatusCode
	}

	code, body := admin(http.MethodPost, "/_fake/scenario?provider=anthropic", `{"status":503,"retryAfter":2,"times":1}`)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"anthropic":{"status":503,"retryAfter":2,"times":1}`)
	require.Equal(t, 503, status())
	require.Equal(t, 200, status())

	code, _ = admin(http.MethodPost, "/_fake/scenario", `{"name":"overloaded"}`)
	require.Equal(t, 200, code)
	require.Equal(t, 529, status())
	code, _ = admin(http.MethodDelete, "/_fake/scenario", "")
	require.Equal(t, 200, code)
	require.Equal(t, 200, status())

	code, body = admin(http.MethodPost, "/_fake/scenario", `{"name":"nope"}`)
	require.Equal(t, 400, code, body)
	code, body = admin(http.MethodPost, "/_fake/scenario", `{"fault":"explode"}`)
	require.Equal(t, 400, code, body)
	code, body = admin(http.MethodPost, "/_fake/scenario", `{"stauts":500}`)
	require.Equal(t, 400, code, body)
	code, body = admin(http.MethodPost, "/_fake/scenario?provider=vertex", `{}`)
	require.Equal(t, 400, code, body)

	code, body = admin(http.MethodPost, "/_fake/scenarios", `{"slow":{"chunkIntervalMs":50}}`)
	require.Equal(t, 200, code, body)
	sc, ok := fp.Scenario("slow")
	require.True(t, ok)
	require.Equal(t, int64(50), sc.ChunkIntervalMs)

	code, body = admin(http.MethodGet, "/_fake/requests?path=/v1/messages", "")
	require.Equal(t, 200, code)
	var reqs []Request
	require.NoError(t, json.Unmarshal([]byte(body), &reqs))
	require.Len(t, reqs, 4)
	require.Equal(t, anthropicBody, string(reqs[0].Body))
	require.Contains(t, body, `"body":{"model":"claude-sonnet-4-5-20250929"`, "JSON bodies are inlined")

	code, body = admin(http.MethodGet, "/_fake/counts", "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"/v1/messages":4}`, body)

	code, _ = admin(http.MethodDelete, "/_fake/requests", "")
	require.Equal(t, http.StatusNoContent, code)
	code, body = admin(http.MethodGet, "/_fake/requests", "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `[]`, body)

	code, body = admin(http.MethodGet, "/_fake/health", "")
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"status":"ok"}`, body)
}

func TestModelsListing(t *testing.T) {
	_, srv := newFake(t, Config{Models: []string{"gpt-4o", "claude-haiku-4-5-20251001"}})
	get := func(h map[string]string) string {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/models", nil)
		require.NoError(t, err)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		return string(readAll(t, resp))
	}
	require.Contains(t, get(openAIHeaders), `{"object":"list","data":[{"id":"gpt-4o","object":"model"`)
	require.Contains(t, get(anthropicHeaders), `"has_more":false,"first_id":"gpt-4o","last_id":"claude-haiku-4-5-20251001"`)
}
