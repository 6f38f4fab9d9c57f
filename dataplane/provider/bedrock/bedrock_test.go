package bedrock

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	es "github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/anthropic"
	"github.com/posthog/llm-gateway/dataplane/provider/internal/wiretest"
	"github.com/posthog/llm-gateway/dataplane/provider/sse"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
)

var update = flag.Bool("update", false, "rewrite golden files")

// frames encodes Bedrock stream frames with the AWS encoder.
type frames struct {
	t   testing.TB
	buf bytes.Buffer
	enc *es.Encoder
}

func newFrames(t testing.TB) *frames { return &frames{t: t, enc: es.NewEncoder()} }

// chunk adds a chunk frame carrying one inner Anthropic event, padded like Bedrock's.
func (f *frames) chunk(inner string) *frames {
	payload, err := json.Marshal(map[string]string{"bytes": base64.StdEncoding.EncodeToString([]byte(inner)), "p": "abcdefghijklmnopqrstuvwxyzABCDEFGH"})
	require.NoError(f.t, err)
	return f.frame(payload, ":event-type", "chunk", ":content-type", "application/json", ":message-type", "event")
}

func (f *frames) exception(name, payload string) *frames {
	return f.frame([]byte(payload), ":exception-type", name, ":content-type", "application/json", ":message-type", "exception")
}

func (f *frames) frame(payload []byte, headers ...string) *frames {
	var m es.Message
	for i := 0; i < len(headers); i += 2 {
		m.Headers = append(m.Headers, es.Header{Name: headers[i], Value: es.StringValue(headers[i+1])})
	}
	m.Payload = payload
	require.NoError(f.t, f.enc.Encode(&f.buf, m))
	return f
}

func (f *frames) bytes() []byte { return f.buf.Bytes() }

// anthropicEvents reads the Anthropic transcript shared with the anthropic package.
func anthropicEvents(t testing.TB) (raw []byte, events []string) {
	raw, err := os.ReadFile("../anthropic/testdata/messages_cache.sse")
	require.NoError(t, err)
	r := sse.NewReader(bytes.NewReader(raw), 0)
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return raw, events
		}
		require.NoError(t, err)
		events = append(events, string(ev.Data))
	}
}

const metrics = `"amazon-bedrock-invocationMetrics":{"inputTokenCount":10,"outputTokenCount":15,"invocationLatency":1798,"firstByteLatency":1507,"cacheReadInputTokenCount":30000,"cacheWriteInputTokenCount":1200}`

// The Bedrock stream, translated, is byte for byte what Anthropic sends for the same events.
func TestStreamMatchesAnthropic(t *testing.T) {
	raw, events := anthropicEvents(t)
	f := newFrames(t)
	for _, e := range events {
		if strings.Contains(e, `"message_stop"`) {
			e = strings.TrimSuffix(e, "}") + "," + metrics + "}"
		}
		f.chunk(e)
	}
	// An unknown event type is skipped.
	f.frame([]byte(`{}`), ":event-type", "someFutureFrame", ":message-type", "event")
	in := f.bytes()

	o := wiretest.Run(t, NewStreamReader(io.NopCloser(iotest.HalfReader(bytes.NewReader(in))), provider.Options{}))
	require.ErrorIs(t, o.End, io.EOF)
	require.Equal(t, string(raw), string(o.Client))

	want := wiretest.Run(t, anthropic.NewStreamReader(io.NopCloser(bytes.NewReader(raw)), provider.Options{}))
	require.Equal(t, want.Result, o.Result)
	require.Equal(t, want.Events, o.Events)
	wiretest.Golden(t, "stream", o, *update)
}

// Usage missing from the inner events comes from the invocation metrics.
func TestStreamInvocationMetricsFallback(t *testing.T) {
	in := newFrames(t).
		chunk(`{"type":"message_start","message":{"id":"msg_bdrk_1","model":"claude-sonnet-4-5-20250929","usage":{}}}`).
		chunk(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`).
		chunk(`{"type":"message_stop",` + metrics + `}`).bytes()
	o := wiretest.Run(t, NewStreamReader(io.NopCloser(bytes.NewReader(in)), provider.Options{}))
	require.ErrorIs(t, o.End, io.EOF)
	require.True(t, o.Result.UsageReported)
	require.Equal(t, cost.Usage{InputTokens: 10, CacheReadTokens: 30000, CacheWrite5mTokens: 1200, OutputTokens: 15}, o.Result.Usage)
	require.True(t, strings.HasSuffix(string(o.Client), "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), "metrics stripped")
}

func TestStreamFailures(t *testing.T) {
	start := `{"type":"message_start","message":{"id":"m","model":"claude","usage":{"input_tokens":5,"output_tokens":1}}}`
	good := newFrames(t).chunk(start).bytes()
	tests := []struct {
		name   string
		in     []byte
		end    error
		class  string
		typ    string
		events int
	}{
		{name: "throttling first", in: newFrames(t).exception("throttlingException", `{"message":"Too many requests, please wait before trying again."}`).bytes(), class: snapshot.FailoverRateLimited, typ: "throttlingException"},
		{name: "service unavailable", in: newFrames(t).exception("serviceUnavailableException", `{"message":"unavailable"}`).bytes(), class: snapshot.FailoverOverloaded, typ: "serviceUnavailableException"},
		{name: "model not ready", in: newFrames(t).exception("modelNotReadyException", `{"message":"not ready"}`).bytes(), class: snapshot.FailoverOverloaded, typ: "modelNotReadyException"},
		{name: "internal server", in: newFrames(t).exception("internalServerException", `{"message":"x"}`).bytes(), class: snapshot.FailoverServerError, typ: "internalServerException"},
		{name: "model timeout", in: newFrames(t).exception("modelTimeoutException", `{"message":"x"}`).bytes(), class: snapshot.FailoverServerError, typ: "modelTimeoutException"},
		{name: "model stream error mid-stream", events: 1,
			in:    newFrames(t).chunk(start).exception("modelStreamErrorException", `{"message":"Model stream error","originalStatusCode":500,"originalMessage":"boom"}`).bytes(),
			class: snapshot.FailoverServerError, typ: "modelStreamErrorException"},
		{name: "validation", in: newFrames(t).exception("validationException", `{"message":"extra inputs are not permitted"}`).bytes(), class: "", typ: "validationException"},
		{name: "unknown exception", in: newFrames(t).exception("newException", `{"message":"?"}`).bytes(), class: snapshot.FailoverServerError, typ: "newException"},
		{name: "error frame", in: newFrames(t).frame(nil, ":error-code", "InternalFailure", ":error-message", "boom", ":message-type", "error").bytes(), class: snapshot.FailoverServerError, typ: "InternalFailure"},
		{name: "ends before message_stop", in: good, end: provider.ErrTruncated, events: 1},
		{name: "empty body", in: nil, end: provider.ErrTruncated},
		{name: "cut inside a frame", in: good[:len(good)-3], end: provider.ErrTruncated},
		{name: "bad checksum", in: append(append([]byte{}, good[:len(good)-1]...), good[len(good)-1]^1), end: provider.ErrMalformed},
		{name: "payload not JSON", in: newFrames(t).frame([]byte("nope"), ":event-type", "chunk", ":message-type", "event").bytes(), end: provider.ErrMalformed},
		{name: "bytes not base64", in: newFrames(t).frame([]byte(`{"bytes":"!!!"}`), ":event-type", "chunk", ":message-type", "event").bytes(), end: provider.ErrMalformed},
		{name: "inner event not JSON", in: newFrames(t).chunk("{oops").bytes(), end: provider.ErrMalformed},
		{name: "not an event stream", in: []byte(`{"message":"this is JSON, not frames"}`), end: provider.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := wiretest.Run(t, NewStreamReader(io.NopCloser(bytes.NewReader(tt.in)), provider.Options{MaxEventBytes: 1 << 20}))
			require.Len(t, o.Events, tt.events)
			if tt.end != nil {
				require.ErrorIs(t, o.End, tt.end)
				return
			}
			var ue *provider.UpstreamError
			require.ErrorAs(t, o.End, &ue)
			require.Equal(t, tt.class, ue.Class)
			require.Equal(t, tt.typ, ue.Type)
			require.Equal(t, http.StatusOK, ue.Status)
			// The body is an Anthropic error a client can be shown.
			require.Equal(t, "error", gjsonString(ue.Body, "type"))
			require.NotEmpty(t, gjsonString(ue.Body, "error.type"))
			require.NotEmpty(t, gjsonString(ue.Body, "error.message"))
		})
	}
}

func TestStreamUnblocksOnClose(t *testing.T) {
	body := wiretest.NewBlockingBody(newFrames(t).chunk(`{"type":"ping"}`).bytes())
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
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		class      string
		typ        string
		clientCode int
		clientType string
	}{
		{"throttling by header", 429, http.Header{"X-Amzn-Errortype": {"ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}}, `{"message":"Too many requests"}`,
			snapshot.FailoverRateLimited, "ThrottlingException", 429, provider.AnthropicRateLimit},
		{"quota is a 400", 400, http.Header{"X-Amzn-Errortype": {"ServiceQuotaExceededException"}}, `{"message":"quota"}`,
			snapshot.FailoverQuotaExhausted, "ServiceQuotaExceededException", 429, provider.AnthropicRateLimit},
		{"model not ready by __type", 429, nil, `{"__type":"com.amazon.bedrock#ModelNotReadyException","message":"not ready"}`,
			snapshot.FailoverOverloaded, "ModelNotReadyException", 529, provider.AnthropicOverloaded},
		{"unavailable by code", 503, nil, `{"code":"ServiceUnavailableException","message":"x"}`,
			snapshot.FailoverOverloaded, "ServiceUnavailableException", 529, provider.AnthropicOverloaded},
		{"internal", 500, http.Header{"X-Amzn-Errortype": {"InternalServerException"}}, `{"Message":"oops"}`,
			snapshot.FailoverServerError, "InternalServerException", 500, provider.AnthropicAPIError},
		{"model timeout", 408, http.Header{"X-Amzn-Errortype": {"ModelTimeoutException"}}, `{"message":"x"}`,
			snapshot.FailoverServerError, "ModelTimeoutException", 504, provider.AnthropicTimeout},
		{"model error 424", 424, http.Header{"X-Amzn-Errortype": {"ModelErrorException"}}, `{"message":"x","originalStatusCode":500}`,
			snapshot.FailoverServerError, "ModelErrorException", 500, provider.AnthropicAPIError},
		{"validation", 400, http.Header{"X-Amzn-Errortype": {"ValidationException"}}, `{"message":"messages: field required"}`,
			"", "ValidationException", 400, provider.AnthropicInvalidRequest},
		{"access denied", 403, http.Header{"X-Amzn-Errortype": {"AccessDeniedException"}}, `{"message":"You don't have access to the model"}`,
			snapshot.FailoverUpstreamAuth, "AccessDeniedException", 403, provider.AnthropicPermission},
		{"bad signature", 403, http.Header{"X-Amzn-Errortype": {"InvalidSignatureException"}}, `{"message":"The request signature we calculated does not match"}`,
			snapshot.FailoverUpstreamAuth, "InvalidSignatureException", 403, provider.AnthropicPermission},
		{"not found", 404, http.Header{"X-Amzn-Errortype": {"ResourceNotFoundException"}}, `{"message":"model not found"}`,
			snapshot.FailoverNotFound, "ResourceNotFoundException", 404, provider.AnthropicNotFound},
		{"unnamed 502", 502, nil, `<html>`, snapshot.FailoverServerError, "", 502, provider.AnthropicAPIError},
		{"unnamed 413", 413, nil, ``, "", "", 413, provider.AnthropicTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			h.Set("Content-Length", "99")
			e := Classify(tt.status, h, []byte(tt.body), time.Now())
			require.Equal(t, tt.class, e.Class)
			require.Equal(t, tt.typ, e.Type)
			require.Equal(t, tt.clientCode, e.Status)
			require.Equal(t, "error", gjsonString(e.Body, "type"), "Anthropic-shaped body")
			require.Equal(t, tt.clientType, gjsonString(e.Body, "error.type"))
			require.Equal(t, e.Message, gjsonString(e.Body, "error.message"))
			require.Equal(t, "application/json", e.Header.Get("Content-Type"))
			require.Empty(t, e.Header.Get("Content-Length"))
		})
	}
}

func TestEnvelope(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		betas []string
		want  string
	}{
		{
			name:  "messages stream with betas",
			body:  `{"model":"claude-sonnet-4-20250514","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			betas: []string{"interleaved-thinking-2025-05-14"},
			want:  `{"max_tokens":1024,"messages":[{"role":"user","content":"hi"}],"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["interleaved-thinking-2025-05-14"]}`,
		},
		{
			name: "version kept, no betas",
			body: `{"anthropic_version":"bedrock-2023-05-31","model":"m","max_tokens":1,"messages":[]}`,
			want: `{"anthropic_version":"bedrock-2023-05-31","max_tokens":1,"messages":[]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Envelope([]byte(tt.body), tt.betas)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(got))
		})
	}
}

func TestSupports(t *testing.T) {
	a := newAdapter(t, snapshot.Credentials{BearerToken: "k"})
	tests := []struct {
		name   string
		op     provider.Operation
		body   string
		betas  []string
		reason string
	}{
		{name: "plain", body: `{"model":"m","max_tokens":1,"messages":[],"system":"s","tools":[],"thinking":{"type":"enabled","budget_tokens":1024},"metadata":{"user_id":"u"},"stream":true}`},
		{name: "supported betas, alias", body: `{"model":"m"}`, betas: []string{"context-1m-2025-08-07, advanced-tool-use-2025-11-20", "output-128k-2025-02-19"}},
		{name: "compaction", body: `{"model":"m","context_management":{"edits":[{"type":"compact_20260112"}]}}`, betas: []string{"compact-2026-01-12"}},
		{name: "count tokens", op: provider.OpCountTokens, body: `{"model":"m","messages":[]}`},
		{name: "rejected beta", body: `{"model":"m"}`, betas: []string{"interleaved-thinking-2025-05-14,files-api-2025-04-14"}, reason: `anthropic-beta flag "files-api-2025-04-14"`},
		{name: "prompt caching beta", body: `{"model":"m"}`, betas: []string{"prompt-caching-2024-07-31"}, reason: "prompt-caching-2024-07-31"},
		{name: "unknown field", body: `{"model":"m","container":"c"}`, reason: `request field "container"`},
		{name: "service tier", body: `{"model":"m","service_tier":"auto"}`, reason: `"service_tier"`},
		{name: "mcp servers", body: `{"model":"m","mcp_servers":[]}`, reason: `"mcp_servers"`},
		{name: "top-level cache_control", body: `{"model":"m","cache_control":{"type":"ephemeral"}}`, reason: `"cache_control"`},
		{name: "clear tool uses edit", body: `{"model":"m","context_management":{"edits":[{"type":"clear_tool_uses_20250919"}]}}`, reason: "clear_tool_uses_20250919"},
		{name: "chat op", op: provider.OpChatCompletions, body: `{"model":"m"}`, reason: "chat_completions"},
		{name: "too large", body: `{"model":"m","system":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, reason: "20971520-byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := tt.op
			if op == "" {
				op = provider.OpMessages
			}
			ok, reason := a.Supports(&provider.Call{Op: op, Body: []byte(tt.body), Header: http.Header{"Anthropic-Beta": tt.betas}})
			require.Equal(t, tt.reason == "", ok, reason)
			require.Contains(t, reason, tt.reason)
			if !ok {
				_, err := a.NewRequest(context.Background(), &provider.Call{Op: op, Model: "m", Body: []byte(tt.body), Header: http.Header{"Anthropic-Beta": tt.betas}})
				require.Error(t, err, "never sent")
			}
		})
	}
}

func newAdapter(t testing.TB, c snapshot.Credentials) *Adapter {
	a, err := New(&snapshot.Backend{Name: "ns/bedrock", Provider: snapshot.ProviderBedrock, Region: "us-east-1", Credentials: c,
		ModelMap: map[string]string{"claude-sonnet-4-5": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}},
		provider.Options{Clock: clock.NewFake(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))})
	require.NoError(t, err)
	return a
}

// The request is signed over the final body and exactly the URL that goes on the wire: an
// httptest server recomputes the signature from what it received.
func TestSigV4OnTheWire(t *testing.T) {
	creds := snapshot.Credentials{AWSAccessKeyID: "AKIDEXAMPLE", AWSSecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", AWSSessionToken: "session-token"}
	for _, model := range []string{
		"us.anthropic.claude-sonnet-4-5-20250929-v1:0",
		"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
	} {
		t.Run(model, func(t *testing.T) {
			var got struct {
				path, auth, recomputed string
				body                   []byte
				header                 http.Header
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.path, got.auth, got.header = r.RequestURI, r.Header.Get("Authorization"), r.Header.Clone()
				got.body, _ = io.ReadAll(r.Body)
				got.recomputed = resign(t, r, got.body, creds)
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"id":"msg_bdrk_1","type":"message","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}`))
			}))
			defer srv.Close()
			a, err := New(&snapshot.Backend{Name: "b", Region: "us-east-1", Endpoint: srv.URL, Credentials: creds}, provider.Options{})
			require.NoError(t, err)
			body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
			c := &provider.Call{Op: provider.OpMessages, Model: model, Body: body, Header: http.Header{"Authorization": {"Bearer client-key"}, "X-Api-Key": {"client"}, "Anthropic-Beta": {"interleaved-thinking-2025-05-14"}}}
			req, err := a.NewRequest(context.Background(), c)
			require.NoError(t, err)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			respBody, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)

			wantPath := "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke"
			if strings.HasPrefix(model, "arn:") {
				wantPath = "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile%2Fus.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke"
			}
			require.Equal(t, wantPath, got.path)
			require.Contains(t, got.auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
			require.Contains(t, got.auth, "/us-east-1/bedrock/aws4_request")
			require.Equal(t, got.recomputed, got.auth, "signature verifies against the received request")
			require.Equal(t, "session-token", got.header.Get("X-Amz-Security-Token"))
			require.Equal(t, "application/json", got.header.Get("Accept"))
			require.Empty(t, got.header.Get("X-Api-Key"))
			require.Empty(t, got.header.Get("Anthropic-Beta"))
			require.Equal(t, `{"max_tokens":10,"messages":[{"role":"user","content":"hi"}],"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["interleaved-thinking-2025-05-14"]}`, string(got.body))

			res, out, err := a.Parse(c, resp.Header, respBody)
			require.NoError(t, err)
			require.Nil(t, out)
			require.Equal(t, "Hi", res.OutputText)
			require.Equal(t, cost.Usage{InputTokens: 3, OutputTokens: 1}, res.Usage)
		})
	}
}

// resign recomputes the SigV4 Authorization of a received request over its signed headers.
func resign(t *testing.T, r *http.Request, body []byte, c snapshot.Credentials) string {
	auth := r.Header.Get("Authorization")
	i := strings.Index(auth, "SignedHeaders=")
	require.GreaterOrEqual(t, i, 0, auth)
	signed := strings.Split(strings.SplitN(auth[i+len("SignedHeaders="):], ",", 2)[0], ";")
	req, err := http.NewRequest(r.Method, "http://"+r.Host+r.RequestURI, bytes.NewReader(body))
	require.NoError(t, err)
	for _, h := range signed {
		if h != "host" && h != "content-length" {
			req.Header.Set(h, r.Header.Get(h))
		}
	}
	req.Header.Del("X-Amz-Date")
	req.Header.Del("X-Amz-Security-Token")
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	require.NoError(t, err)
	sum := sha256hex(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.AWSAccessKeyID, SecretAccessKey: c.AWSSecretAccessKey, SessionToken: c.AWSSessionToken},
		req, sum, "bedrock", "us-east-1", when)
	require.NoError(t, err)
	return req.Header.Get("Authorization")
}

func TestNewRequestForms(t *testing.T) {
	a := newAdapter(t, snapshot.Credentials{BearerToken: "bedrock-api-key"})
	require.Equal(t, "https://bedrock-runtime.us-east-1.amazonaws.com", a.BaseURL())
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[]}`)

	req, err := a.NewRequest(context.Background(), &provider.Call{Op: provider.OpMessages, Stream: true, Model: a.UpstreamModel("claude-sonnet-4-5", "claude-sonnet-4-5"), Body: body, Header: http.Header{}, RawQuery: "beta=true"})
	require.NoError(t, err)
	require.Equal(t, "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream", req.URL.String())
	require.Equal(t, "application/json", req.Header.Get("X-Amzn-Bedrock-Accept"))
	require.Empty(t, req.Header.Get("Accept"))
	require.Equal(t, "Bearer bedrock-api-key", req.Header.Get("Authorization"))

	// count-tokens: base model id, base64-wrapped body with max_tokens.
	ct := []byte(`{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}`)
	req, err = a.NewRequest(context.Background(), &provider.Call{Op: provider.OpCountTokens, Model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0", Body: ct, Header: http.Header{}})
	require.NoError(t, err)
	require.Equal(t, "/model/anthropic.claude-sonnet-4-5-20250929-v1:0/count-tokens", req.URL.EscapedPath())
	sent, _ := io.ReadAll(req.Body)
	inner, err := base64.StdEncoding.DecodeString(gjsonString(sent, "input.invokeModel.body"))
	require.NoError(t, err)
	require.Equal(t, `{"messages":[{"role":"user","content":"hi"}],"anthropic_version":"bedrock-2023-05-31","max_tokens":1}`, string(inner))
	res, out, err := a.Parse(&provider.Call{Op: provider.OpCountTokens}, nil, []byte(`{"inputTokens":42}`))
	require.NoError(t, err)
	require.JSONEq(t, `{"input_tokens":42}`, string(out))
	require.False(t, res.UsageReported)

	// Non-stream usage from headers when the body has none.
	res, _, err = a.Parse(&provider.Call{Op: provider.OpMessages}, http.Header{"X-Amzn-Bedrock-Input-Token-Count": {"7"}, "X-Amzn-Bedrock-Output-Token-Count": {"3"}}, []byte(`{"id":"m","content":[]}`))
	require.NoError(t, err)
	require.True(t, res.UsageReported)
	require.Equal(t, cost.Usage{InputTokens: 7, OutputTokens: 3}, res.Usage)
}

func TestUpstreamModel(t *testing.T) {
	a := newAdapter(t, snapshot.Credentials{BearerToken: "k"})
	require.Equal(t, "us.anthropic.claude-sonnet-4-5-20250929-v1:0", a.UpstreamModel("claude-sonnet-4-5", "claude-sonnet-4-5"))
	derived := a.UpstreamModel("claude-sonnet-4-20250514", "claude-sonnet-4-20250514")
	require.Equal(t, "us.anthropic.claude-sonnet-4-20250514-v1:0", derived)
	require.Equal(t, "eu.anthropic.claude-x-v1:0", a.UpstreamModel("claude-unknown", "eu.anthropic.claude-x-v1:0"))
	require.Equal(t, "claude-unknown", a.UpstreamModel("claude-unknown", "claude-unknown"))
	require.Equal(t, "apac", Geo("ap-southeast-2"))
	require.Equal(t, "", Geo("ca-central-1"))
}

func TestNewValidates(t *testing.T) {
	_, err := New(&snapshot.Backend{Name: "b", Credentials: snapshot.Credentials{BearerToken: "k"}}, provider.Options{})
	require.ErrorContains(t, err, "no region")
	_, err = New(&snapshot.Backend{Name: "b", Region: "us-east-1", Credentials: snapshot.Credentials{AWSAccessKeyID: "a"}}, provider.Options{})
	require.ErrorContains(t, err, "API key or an AWS access key")
}

func FuzzStreamReader(f *testing.F) {
	f.Add(newFrames(f).chunk(`{"type":"message_start","message":{}}`).chunk(`{"type":"message_stop"}`).bytes())
	f.Add(newFrames(f).exception("throttlingException", `{"message":"x"}`).bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		o := wiretest.Run(t, NewStreamReader(io.NopCloser(bytes.NewReader(in)), provider.Options{MaxEventBytes: 1 << 16}))
		require.Error(t, o.End)
	})
}

func BenchmarkStreamReader(b *testing.B) {
	f := newFrames(b)
	for range 1000 {
		f.chunk(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`)
	}
	in := f.bytes()
	b.SetBytes(int64(len(in) / 1000))
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
