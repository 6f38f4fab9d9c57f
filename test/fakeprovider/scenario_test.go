package fakeprovider

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// streamCase is one streaming format with the markers tests look for in its transcript.
type streamCase struct {
	name, path string
	header     map[string]string
	body       string
	// terminal marks a proper end; errPrefix starts a transcript whose first event is the
	// provider's in-stream error.
	terminal, errPrefix string
}

var streamCases = []streamCase{
	{"anthropic", "/v1/messages", anthropicHeaders,
		`{"model":"claude-sonnet-4-5-20250929","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		"event: message_stop", "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\""},
	{"chat", "/v1/chat/completions", openAIHeaders,
		`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		"data: [DONE]", "data: {\"error\":{"},
	{"responses", "/v1/responses", openAIHeaders,
		`{"model":"gpt-4.1","stream":true,"input":"hi"}`,
		"event: response.completed", "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\""},
	{"azure", "/openai/v1/chat/completions", azureHeaders,
		`{"model":"d","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		"data: [DONE]", "data: {\"error\":{"},
	{"bedrock", "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke-with-response-stream", bedrockHeaders, bedrockBody,
		`"type":"message_stop"`, ":exception-type=internalServerException :content-type=application/json :message-type=exception"},
}

// render shows a (possibly partial) body as text; Bedrock frames are decoded with the AWS
// decoder, which reports a bad CRC as DECODE ERROR.
func (tc streamCase) render(body []byte) string {
	if tc.name == "bedrock" {
		return string(decodeFrames(body))
	}
	return string(body)
}

// faultHeaders: text "abcdefgh" in 4 chunks of 2 runes, plus the fault.
func faultHeaders(h map[string]string, fault Fault, after string) map[string]string {
	return with(h, HeaderText, "abcdefgh", HeaderChunks, "4", HeaderFault, string(fault), HeaderFaultAfter, after)
}

func TestStreamFaults(t *testing.T) {
	for _, tc := range streamCases {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := newFake(t, Config{})

			t.Run("clean", func(t *testing.T) {
				resp := post(t, srv.URL+tc.path, with(tc.header, HeaderText, "abcdefgh", HeaderChunks, "4"), tc.body)
				out := tc.render(readAll(t, resp))
				for _, piece := range []string{`"ab"`, `"cd"`, `"ef"`, `"gh"`, tc.terminal} {
					require.Contains(t, out, piece)
				}
			})

			t.Run("error after 2 chunks", func(t *testing.T) {
				resp := post(t, srv.URL+tc.path, faultHeaders(tc.header, FaultError, "2"), tc.body)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				out := tc.render(readAll(t, resp))
				require.Contains(t, out, `"cd"`)
				require.NotContains(t, out, `"ef"`)
				require.NotContains(t, out, tc.terminal)
				errAt := strings.Index(out, tc.errPrefix)
				require.Greater(t, errAt, strings.Index(out, `"cd"`), "the error follows the second chunk:\n%s", out)
			})

			t.Run("error as the first event", func(t *testing.T) {
				resp := post(t, srv.URL+tc.path, faultHeaders(tc.header, FaultError, "0"), tc.body)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				out := tc.render(readAll(t, resp))
				require.True(t, strings.HasPrefix(out, tc.errPrefix), "first event must be the error:\n%s", out)
			})

			t.Run("cut after 2 chunks", func(t *testing.T) {
				resp := post(t, srv.URL+tc.path, faultHeaders(tc.header, FaultCut, "2"), tc.body)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				body, err := io.ReadAll(resp.Body)
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
				out := tc.render(body)
				require.Contains(t, out, `"cd"`)
				require.NotContains(t, out, `"ef"`)
				require.NotContains(t, out, tc.terminal)
			})

			t.Run("cut after headers", func(t *testing.T) {
				resp := post(t, srv.URL+tc.path, faultHeaders(tc.header, FaultCut, "0"), tc.body)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				body, err := io.ReadAll(resp.Body)
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
				require.Empty(t, body)
			})

			t.Run("malformed after 1 chunk", func(t *testing.T) {
				resp := post(t, srv.URL+tc.path, faultHeaders(tc.header, FaultMalformed, "1"), tc.body)
				out := tc.render(readAll(t, resp))
				require.Contains(t, out, `"ab"`)
				if tc.name == "bedrock" {
					require.Contains(t, out, "DECODE ERROR", "the garbage frame fails its CRC")
				} else {
					require.Contains(t, out, "\x00\xff")
				}
				require.NotContains(t, out, tc.terminal)
			})
		})
	}
}

func TestStreamStall(t *testing.T) {
	for _, tc := range streamCases {
		t.Run(tc.name, func(t *testing.T) {
			fp, srv := newFake(t, Config{})
			resp := post(t, srv.URL+tc.path, faultHeaders(tc.header, FaultStall, "1"), tc.body)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			// Read until the first chunk arrived; the stream then stalls until Close.
			var got []byte
			br := bufio.NewReader(resp.Body)
			for !strings.Contains(tc.render(got), `"ab"`) {
				b, err := br.ReadByte()
				require.NoError(t, err)
				got = append(got, b)
			}
			fp.Close()
			rest, err := io.ReadAll(br)
			require.ErrorIs(t, err, io.ErrUnexpectedEOF, "a released stall ends abruptly")
			out := tc.render(append(got, rest...))
			require.NotContains(t, out, `"cd"`)
			require.NotContains(t, out, tc.terminal)
		})
	}
}

func TestStallEndsWhenClientLeaves(t *testing.T) {
	_, srv := newFake(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(streamCases[0].body))
	require.NoError(t, err)
	for k, v := range faultHeaders(anthropicHeaders, FaultStall, "0") {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	cancel()
	_, err = io.ReadAll(resp.Body)
	require.ErrorIs(t, err, context.Canceled)
	resp.Body.Close()
	// goleak (TestMain) checks the stalled handler returned.
}

func TestNonStreamFaults(t *testing.T) {
	_, srv := newFake(t, Config{})
	cases := []struct{ name, path, body string }{
		{"anthropic", "/v1/messages", anthropicBody},
		{"chat", "/v1/chat/completions", chatBody},
		{"bedrock", "/model/m/invoke", bedrockBody},
	}
	hdr := map[string]map[string]string{"anthropic": anthropicHeaders, "chat": openAIHeaders, "bedrock": bedrockHeaders}
	for _, tc := range cases {
		t.Run(tc.name+" cut", func(t *testing.T) {
			resp := post(t, srv.URL+tc.path, with(hdr[tc.name], HeaderFault, "cut"), tc.body)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			body, err := io.ReadAll(resp.Body)
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			require.NotEmpty(t, body, "half of the body arrives")
		})
		t.Run(tc.name+" malformed", func(t *testing.T) {
			resp := post(t, srv.URL+tc.path, with(hdr[tc.name], HeaderFault, "malformed"), tc.body)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, string(readAll(t, resp)), "\x00\xff")
		})
		t.Run(tc.name+" reset", func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			for k, v := range with(hdr[tc.name], HeaderFault, "reset") {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			require.Error(t, err, "the connection is reset before any response byte")
		})
	}
}

func TestDelayBeforeHeadersReleasedByClose(t *testing.T) {
	fp, srv := newFake(t, Config{Default: &Scenario{DelayMs: 3_600_000}})
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(anthropicBody))
		for k, v := range anthropicHeaders {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			close(done)
			return
		}
		done <- resp
	}()
	require.Eventually(t, func() bool { return fp.Count("/v1/messages") == 1 }, 10*time.Second, time.Millisecond)
	select {
	case <-done:
		t.Fatal("responded before the delay ended")
	default:
	}
	fp.Close()
	resp := <-done
	require.NotNil(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(readAll(t, resp)), "Hello from fake anthropic")
}

func TestFirstByteDelaySendsHeadersFirst(t *testing.T) {
	fp, srv := newFake(t, Config{Default: &Scenario{FirstByteDelayMs: 3_600_000}})
	headers := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(streamCases[0].body))
		for k, v := range anthropicHeaders {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			close(headers)
			return
		}
		headers <- resp
	}()
	var resp *http.Response
	select {
	case resp = <-headers:
	case <-time.After(30 * time.Second): // liveness guard, not a timing assertion
		t.Fatal("headers were not sent before the first-byte delay")
	}
	require.NotNil(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	fp.Close()
	require.Contains(t, string(readAll(t, resp)), "event: message_stop")
}

func TestDefaultScenarioTimesAndPerProvider(t *testing.T) {
	fp, srv := newFake(t, Config{})
	status := func(path string, h map[string]string, body string) int {
		resp := post(t, srv.URL+path, h, body)
		readAll(t, resp)
		return resp.StatusCode
	}
	anth := func() int { return status("/v1/messages", anthropicHeaders, anthropicBody) }
	bedr := func() int { return status("/model/m/invoke", bedrockHeaders, bedrockBody) }

	fp.SetDefault(&Scenario{Status: 529, Times: 2})
	require.Equal(t, 529, anth())
	require.Equal(t, 529, bedr(), "a shared default counts uses across providers")
	require.Equal(t, 200, anth())
	require.Nil(t, fp.Default(Anthropic))

	// Primary fails, fallback serves, until cleared.
	fp.SetDefaultFor(Anthropic, &Scenario{ErrorType: "overloaded_error"})
	require.Equal(t, 529, anth())
	require.Equal(t, 529, anth())
	require.Equal(t, 200, bedr())
	fp.SetDefaultFor(Anthropic, nil)
	require.Equal(t, 200, anth())

	// A header override wins over the default.
	fp.SetDefault(&Scenario{Status: 500})
	require.Equal(t, 429, status("/v1/messages", with(anthropicHeaders, HeaderStatus, "429"), anthropicBody))
	fp.SetDefault(nil)
}

func TestIndependentServers(t *testing.T) {
	primary, psrv := newFake(t, Config{})
	_, fsrv := newFake(t, Config{})
	primary.SetDefault(&Scenario{Status: 529})
	resp := post(t, psrv.URL+"/v1/messages", anthropicHeaders, anthropicBody)
	readAll(t, resp)
	require.Equal(t, 529, resp.StatusCode)
	resp = post(t, fsrv.URL+"/v1/messages", anthropicHeaders, anthropicBody)
	readAll(t, resp)
	require.Equal(t, 200, resp.StatusCode)
}

func TestNamedScenarios(t *testing.T) {
	fp, srv := newFake(t, Config{Scenarios: map[string]Scenario{"slowfail": {Status: 503, RetryAfter: 3}}})
	require.NoError(t, fp.SetScenario("quota", Scenario{Status: 429, ErrorType: "insufficient_quota"}))
	require.Error(t, fp.SetScenario("bad", Scenario{Fault: "explode"}))

	resp := post(t, srv.URL+"/v1/chat/completions", with(openAIHeaders, HeaderScenario, "quota"), chatBody)
	require.Equal(t, 429, resp.StatusCode)
	require.Contains(t, string(readAll(t, resp)), `"code":"insufficient_quota"`)

	resp = post(t, srv.URL+"/v1/chat/completions", with(openAIHeaders, HeaderScenario, "slowfail", HeaderStatus, "502"), chatBody)
	require.Equal(t, 502, resp.StatusCode, "headers override the named scenario")
	require.Equal(t, "3", resp.Header.Get("Retry-After"))
	last, _ := fp.LastRequest()
	require.Equal(t, "slowfail", last.Scenario)

	resp = post(t, srv.URL+"/v1/chat/completions", with(openAIHeaders, HeaderScenario, "missing"), chatBody)
	require.Equal(t, 400, resp.StatusCode)
	require.Contains(t, string(readAll(t, resp)), `unknown fake scenario`)

	resp = post(t, srv.URL+"/v1/messages", with(anthropicHeaders, HeaderChunks, "many"), anthropicBody)
	require.Equal(t, 400, resp.StatusCode)
	require.Contains(t, string(readAll(t, resp)), `"type":"invalid_request_error"`)
}

func TestLoadScenarios(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "s.yaml")
	require.NoError(t, os.WriteFile(good, []byte(`
default:
  chunks: 8
  chunkIntervalMs: 5
scenarios:
  overloaded:
    status: 529
  cut-mid-stream:
    fault: cut
    faultAfter: 3
    usage: {input_tokens: 10, output_tokens: 2, cache_read_tokens: 4}
`), 0o644))
	f, err := LoadScenarios(good)
	require.NoError(t, err)
	require.Equal(t, 8, f.Default.Chunks)
	require.Equal(t, 529, f.Scenarios["overloaded"].Status)
	require.Equal(t, FaultCut, f.Scenarios["cut-mid-stream"].Fault)
	require.Equal(t, int64(4), f.Scenarios["cut-mid-stream"].Usage.CacheReadTokens)

	for name, content := range map[string]string{
		"unknown-field.yaml": "scenarios: {x: {stauts: 500}}",
		"bad-fault.json":     `{"scenarios":{"x":{"fault":"explode"}}}`,
		"negative.yaml":      "default: {chunks: -1}",
	} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		_, err := LoadScenarios(p)
		require.Error(t, err, name)
	}
	_, err = LoadScenarios(filepath.Join(dir, "absent.yaml"))
	require.Error(t, err)
}
