package fakeprovider

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// discardWriter is a flushable ResponseWriter that drops the body.
type discardWriter struct {
	h http.Header
	n int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Flush()                      {}

// serveLoop serves the same request n times in-process and returns the bytes written.
func serveLoop(fp *Server, method, path string, header map[string]string, body string, n int) int {
	r := bytes.NewReader([]byte(body))
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := &discardWriter{h: http.Header{}}
	for range n {
		r.Reset([]byte(body))
		req.Body = io.NopCloser(r)
		clear(w.h)
		fp.ServeHTTP(w, req)
	}
	return w.n
}

var benchCases = []struct {
	name, path string
	header     map[string]string
	body       string
}{
	{"anthropic_stream", "/v1/messages", anthropicHeaders, streamCases[0].body},
	{"chat_stream", "/v1/chat/completions", openAIHeaders, `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`},
	{"responses_stream", "/v1/responses", openAIHeaders, streamCases[2].body},
	{"azure_stream", "/openai/v1/chat/completions", azureHeaders, streamCases[3].body},
	{"bedrock_stream", "/model/m/invoke-with-response-stream", bedrockHeaders, bedrockBody},
	{"chat", "/v1/chat/completions", openAIHeaders, chatBody},
	{"anthropic", "/v1/messages", anthropicHeaders, anthropicBody},
}

// BenchmarkServe measures one request served in-process (no network), request log off,
// with a 64-chunk stream.
func BenchmarkServe(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			fp := New(Config{RecordRequests: -1, Logger: slog.New(slog.DiscardHandler),
				Default: &Scenario{Chunks: 64, Text: strings.Repeat("token ", 64)}})
			b.ReportAllocs()
			b.ResetTimer()
			n := serveLoop(fp, http.MethodPost, bc.path, bc.header, bc.body, b.N)
			b.SetBytes(int64(n / max(b.N, 1)))
		})
	}
}

// BenchmarkHTTPParallel measures chat streams over real loopback HTTP with parallel clients.
func BenchmarkHTTPParallel(b *testing.B) {
	fp := New(Config{RecordRequests: -1, Logger: slog.New(slog.DiscardHandler), Default: &Scenario{Chunks: 16}})
	srv := httptest.NewServer(fp)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer client.CloseIdleConnections()
	body := benchCases[1].body
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer k")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// TestNoPerChunkAllocations: a 256-chunk stream allocates no more than a 4-chunk one, apart
// from the slice of chunk boundaries.
func TestNoPerChunkAllocations(t *testing.T) {
	for _, bc := range benchCases[:5] {
		t.Run(bc.name, func(t *testing.T) {
			allocs := func(chunks int) float64 {
				fp := New(Config{RecordRequests: -1, Logger: slog.New(slog.DiscardHandler),
					Default: &Scenario{Chunks: chunks, Text: strings.Repeat("x", 256)}})
				serveLoop(fp, http.MethodPost, bc.path, bc.header, bc.body, 5) // warm the pools
				return testing.AllocsPerRun(50, func() { serveLoop(fp, http.MethodPost, bc.path, bc.header, bc.body, 1) })
			}
			few, many := allocs(4), allocs(256)
			require.LessOrEqual(t, many, few+2, "allocations grow with chunk count: %v for 4 chunks, %v for 256", few, many)
			t.Logf("allocs per request: %v (4 chunks), %v (256 chunks)", few, many)
		})
	}
}
