package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/posthog/llm-gateway/dataplane/metrics"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/adapters"
	"github.com/posthog/llm-gateway/dataplane/record"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// memTransport answers every upstream request from memory with a canned response.
type memTransport struct {
	status int
	header http.Header
	body   []byte
}

func (m *memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: m.status, Header: m.header, Body: io.NopCloser(bytes.NewReader(m.body)),
		ContentLength: int64(len(m.body)), Request: r}, nil
}

// discardWriter is a flushable ResponseWriter that keeps nothing.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *discardWriter) Flush()                      {}

func benchGateway(b *testing.B, tr http.RoundTripper) *Gateway {
	g, err := New(Options{
		Logger:            slog.New(slog.NewJSONHandler(io.Discard, nil)), // the access log line is part of the cost
		Metrics:           metrics.New(),
		NewAdapter:        func(bk *snapshot.Backend) (provider.Adapter, error) { return adapters.New(bk, adapters.Options{}) },
		UpstreamTransport: tr,
	})
	if err != nil {
		b.Fatal(err)
	}
	s := baseSnapshot("http://a.invalid", "http://b.invalid", "http://c.invalid", "http://legacy.invalid")
	if err := s.Seal(); err != nil {
		b.Fatal(err)
	}
	if err := g.Apply(s, "bench"); err != nil {
		b.Fatal(err)
	}
	return g
}

func serveOnce(b *testing.B, g *Gateway, path, body string) *discardWriter {
	r, _ := http.NewRequest("POST", "http://gw"+path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+keyAlpha)
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = int64(len(body))
	w := &discardWriter{h: http.Header{}}
	g.ServeHTTP(w, r)
	if w.status != http.StatusOK {
		b.Fatalf("status %d", w.status)
	}
	return w
}

// BenchmarkNonStreaming is one non-streaming chat completion through the whole handler
// (ingress, auth, inspect, route, attempt, parse, cost, metrics, access log) with an
// in-memory upstream.
func BenchmarkNonStreaming(b *testing.B) {
	up := `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`
	g := benchGateway(b, &memTransport{status: 200, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(up)})
	b.ReportAllocs()
	for b.Loop() {
		serveOnce(b, g, "/v1/chat/completions", chatBody)
	}
}

// BenchmarkStreamEvent streams an Anthropic message of 200 text deltas per request; ns/event
// and allocs/event are per streamed event (the per-request cost is spread over 200 events).
func BenchmarkStreamEvent(b *testing.B) {
	const events = 200
	var sb strings.Builder
	sb.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n")
	sb.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for i := range events {
		fmt.Fprintf(&sb, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"word%d \"}}\n\n", i)
	}
	sb.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	sb.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":200}}\n\n")
	sb.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	g := benchGateway(b, &memTransport{status: 200, header: http.Header{"Content-Type": {"text/event-stream"}}, body: []byte(sb.String())})
	body := `{"model":"claude-sonnet-4-5","max_tokens":300,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		serveOnce(b, g, "/v1/messages", body)
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*(events+5)), "ns/event")
}

// BenchmarkBodyCopies measures how many body-sized buffers one call allocates for a 4 MiB
// chat body (the copies metric is bytes allocated per call / body size; docs/gateway.md
// "Limits" uses it): read only; with the route's default max_tokens written in (one body
// edit); and with that edit and the real event recorder (file outbox).
func BenchmarkBodyCopies(b *testing.B) {
	up := `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}`
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("lorem ipsum dolor sit amet ", (4<<20)/27) + `"}]}`
	for _, tc := range []struct {
		name         string
		edit, record bool
	}{{"read", false, false}, {"edited", true, false}, {"edited+recorded", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := Options{
				Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Metrics: metrics.New(),
				NewAdapter:        func(bk *snapshot.Backend) (provider.Adapter, error) { return adapters.New(bk, adapters.Options{}) },
				UpstreamTransport: &memTransport{status: 200, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(up)},
			}
			if tc.record {
				r, err := record.Open(context.Background(), record.Config{StateDir: b.TempDir()}, slog.New(slog.DiscardHandler), nil)
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close(context.Background())
				opts.Recorder = r
			}
			g, err := New(opts)
			if err != nil {
				b.Fatal(err)
			}
			s := baseSnapshot("http://a.invalid", "http://b.invalid", "http://c.invalid", "http://legacy.invalid")
			if tc.edit {
				s.Routes[0].Limits.DefaultMaxTokens = 100
			}
			if err := s.Seal(); err != nil {
				b.Fatal(err)
			}
			if err := g.Apply(s, "bench"); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			n := 0
			for b.Loop() {
				serveOnce(b, g, "/v1/chat/completions", body)
				n++
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n)/float64(len(body)), "copies")
		})
	}
}
