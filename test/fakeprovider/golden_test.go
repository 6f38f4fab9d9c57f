package fakeprovider

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// requireGolden compares got with testdata/<name>.golden (rewritten with -update).
func requireGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create %s", path)
	require.Equal(t, string(want), string(got))
}

// transcript renders a response: status, the headers that matter, then the body.
func transcript(resp *http.Response, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP %d\n", resp.StatusCode)
	for _, h := range []string{"Content-Type", "Cache-Control", "Retry-After", "Retry-After-Ms", "Request-Id", "X-Request-Id",
		"Apim-Request-Id", "X-Amzn-Requestid", "X-Amzn-Errortype", "X-Amzn-Bedrock-Content-Type",
		"X-Amzn-Bedrock-Input-Token-Count", "X-Amzn-Bedrock-Output-Token-Count", "X-Amzn-Bedrock-Cache-Read-Input-Token-Count",
		"X-Amzn-Bedrock-Cache-Write-Input-Token-Count", "X-Ratelimit-Remaining-Requests", "Anthropic-Ratelimit-Requests-Remaining",
		"Anthropic-Ratelimit-Requests-Reset"} {
		if v := resp.Header.Get(h); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", h, v)
		}
	}
	b.WriteString("\n")
	if resp.Header.Get("Content-Type") == "application/vnd.amazon.eventstream" {
		b.Write(decodeFrames(body))
	} else {
		b.Write(body)
	}
	return b.Bytes()
}

// decodeFrames decodes an AWS event stream with the AWS decoder (which checks both CRCs)
// and renders each frame's headers and decoded payload.
func decodeFrames(body []byte) []byte {
	var b bytes.Buffer
	dec := eventstream.NewDecoder()
	r := bytes.NewReader(body)
	for {
		msg, err := dec.Decode(r, nil)
		if errors.Is(err, io.EOF) {
			return b.Bytes()
		}
		if err != nil {
			fmt.Fprintf(&b, "DECODE ERROR: %v\n", err)
			return b.Bytes()
		}
		for _, h := range msg.Headers {
			fmt.Fprintf(&b, "%s=%s ", h.Name, h.Value.String())
		}
		b.WriteString("\n")
		var chunk struct {
			Bytes []byte `json:"bytes"`
			P     string `json:"p"`
		}
		if err := json.Unmarshal(msg.Payload, &chunk); err == nil && chunk.Bytes != nil {
			fmt.Fprintf(&b, "  bytes: %s\n  p: %s\n", chunk.Bytes, chunk.P)
		} else {
			fmt.Fprintf(&b, "  payload: %s\n", msg.Payload)
		}
	}
}

func TestGolden(t *testing.T) {
	usage := "input=120,output=45,cache_read=800,cache_write_5m=30,cache_write_1h=20,reasoning=7"
	cases := []struct {
		name, path string
		header     map[string]string
		body       string
	}{
		{"anthropic_stream", "/v1/messages", with(anthropicHeaders, HeaderUsage, usage),
			`{"model":"claude-sonnet-4-5-20250929","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"anthropic_message", "/v1/messages", with(anthropicHeaders, HeaderUsage, usage), anthropicBody},
		{"anthropic_stream_error_first", "/v1/messages", with(anthropicHeaders, HeaderFault, "error"),
			`{"model":"claude-sonnet-4-5-20250929","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"anthropic_count_tokens", "/v1/messages/count_tokens", anthropicHeaders, `{"model":"claude-sonnet-4-5-20250929","messages":[{"role":"user","content":"hello there, fake"}]}`},
		{"chat_stream_usage", "/v1/chat/completions", with(openAIHeaders, HeaderUsage, usage, HeaderText, `He said "hi" \ ok`),
			`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false},"messages":[{"role":"user","content":"hi"}]}`},
		{"chat_stream", "/v1/chat/completions", with(openAIHeaders, HeaderChunks, "2"),
			`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"chat_stream_error", "/v1/chat/completions", with(openAIHeaders, HeaderFault, "error", HeaderFaultAfter, "1"),
			`{"model":"gpt-4o","stream":true,"stream_options":{"include_obfuscation":false},"messages":[{"role":"user","content":"hi"}]}`},
		{"chat_completion", "/v1/chat/completions", with(openAIHeaders, HeaderUsage, usage), chatBody},
		{"responses_stream", "/v1/responses", with(openAIHeaders, HeaderUsage, usage, HeaderChunks, "2"),
			`{"model":"gpt-4.1","stream":true,"input":"hi"}`},
		{"responses_stream_incomplete", "/v1/responses", with(openAIHeaders, HeaderStopReason, "max_output_tokens", HeaderChunks, "1"),
			`{"model":"gpt-4.1","stream":true,"input":"hi"}`},
		{"responses", "/v1/responses", with(openAIHeaders, HeaderUsage, usage), `{"model":"gpt-4.1","input":"hi"}`},
		{"azure_chat_stream", "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21", with(azureHeaders, HeaderUsage, usage, HeaderChunks, "2"),
			`{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`},
		{"azure_chat_stream_content_filter", "/openai/v1/chat/completions", with(azureHeaders, HeaderStopReason, "content_filter", HeaderChunks, "1"),
			`{"model":"prod-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"azure_chat_completion", "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21", with(azureHeaders, HeaderUsage, usage), chatBody},
		{"bedrock_stream", "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke-with-response-stream", with(bedrockHeaders, HeaderUsage, usage, HeaderChunks, "2"), bedrockBody},
		{"bedrock_stream_exception", "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke-with-response-stream",
			with(bedrockHeaders, HeaderFault, "error", HeaderFaultAfter, "1", HeaderErrorType, "ModelStreamErrorException"), bedrockBody},
		{"bedrock_invoke", "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke", with(bedrockHeaders, HeaderUsage, usage), bedrockBody},
		{"bedrock_count_tokens", "/model/anthropic.claude-sonnet-4-20250514-v1:0/count-tokens", bedrockHeaders,
			`{"input":{"invokeModel":{"body":"` + base64.StdEncoding.EncodeToString([]byte(bedrockBody)) + `"}}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := newFake(t, Config{Now: func() time.Time { return fixedNow },
				AzureDeployments: map[string]string{"prod-4o": "gpt-4o-2024-11-20"}})
			resp := post(t, srv.URL+tc.path, tc.header, tc.body)
			requireGolden(t, tc.name, transcript(resp, readAll(t, resp)))
		})
	}
}

// TestGoldenErrors renders every provider's error body for the statuses and names that
// drive failover decisions.
func TestGoldenErrors(t *testing.T) {
	_, srv := newFake(t, Config{Now: func() time.Time { return fixedNow }})
	var out bytes.Buffer
	type req struct {
		path   string
		header map[string]string
		body   string
	}
	providers := []struct {
		name string
		req  req
	}{
		{"openai", req{"/v1/chat/completions", openAIHeaders, chatBody}},
		{"anthropic", req{"/v1/messages", anthropicHeaders, anthropicBody}},
		{"bedrock", req{"/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke", bedrockHeaders, bedrockBody}},
		{"azure", req{"/openai/deployments/d/chat/completions?api-version=2024-10-21", azureHeaders, chatBody}},
	}
	scenarios := [][]string{
		{HeaderStatus, "400"},
		{HeaderStatus, "401"},
		{HeaderStatus, "404"},
		{HeaderStatus, "429", HeaderRetryAfter, "7"},
		{HeaderStatus, "429", HeaderErrorType, "insufficient_quota"},
		{HeaderStatus, "500"},
		{HeaderStatus, "503"},
		{HeaderStatus, "529"},
		{HeaderErrorType, "overloaded_error"},
		{HeaderErrorType, "enforced_spend_limit_reached"},
		{HeaderErrorType, "ServiceQuotaExceededException"},
		{HeaderErrorType, "ModelNotReadyException"},
		{HeaderErrorType, "content_filter"},
		{HeaderStatus, "429", HeaderRetryAfterMs, "2500"},
	}
	for _, p := range providers {
		for _, sc := range scenarios {
			fmt.Fprintf(&out, "### %s %s\n", p.name, strings.Join(sc, " "))
			resp := post(t, srv.URL+p.req.path, with(p.req.header, sc...), p.req.body)
			out.Write(transcript(resp, readAll(t, resp)))
			out.WriteString("\n\n")
		}
	}
	requireGolden(t, "errors", out.Bytes())
}
