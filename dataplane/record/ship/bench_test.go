package ship

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/dataplane/record/internal/fixture"
	"github.com/posthog/llm-gateway/dataplane/record/outbox"
	"github.com/posthog/llm-gateway/test/capturesink"
)

// countingSink accepts batches and counts their events (the cost of a real capture is not
// the shipper's).
type countingSink struct{ n atomic.Int64 }

func (c *countingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.n.Add(gjson.GetBytes(body, "batch.#").Int())
	io.WriteString(w, `{"status":1}`)
}

// BenchmarkShipper: events per second from a file outbox to a local sink over HTTP (batches
// of 100, 2 workers). "counting" measures the shipper; "validating" adds the capture sink's
// parsing and schema validation of every event.
func BenchmarkShipper(b *testing.B) {
	b.Run("sink=counting", func(b *testing.B) {
		cs := &countingSink{}
		benchShipper(b, cs, func() int { return int(cs.n.Load()) })
	})
	b.Run("sink=validating", func(b *testing.B) {
		sink := capturesink.New()
		benchShipper(b, sink, func() int { return sink.Stats().Unique })
	})
}

func benchShipper(b *testing.B, h http.Handler, received func() int) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	ob, err := outbox.NewFile(b.TempDir(), outbox.FileOptions{})
	require.NoError(b, err)
	defer ob.Close()
	local, err := NewFileTransport(filepath.Join(b.TempDir(), "e.jsonl"))
	require.NoError(b, err)
	defer local.Close()
	bl := &event.Builder{MaxEventBytes: event.DefaultMaxBytes, DefaultDestination: event.Destination{Host: srv.URL, APIKey: "k"}, LibVersion: "bench"}
	c := *fixture.Scenarios()["openai_chat_cached"]
	const perRound = 5000
	var shipping time.Duration
	for round := 0; round < b.N; round++ {
		entries := make([]event.Entry, 0, perRound)
		for i := range perRound {
			c.RequestID = fmt.Sprintf("ship-%d-%d", round, i)
			entries = append(entries, bl.Build(&c)...)
		}
		require.NoError(b, ob.Append(context.Background(), entries))
		start := time.Now()
		s := New(ob, NewHTTPTransport(10*time.Second), local, Options{}, NewMetrics())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		require.NoError(b, s.Flush(context.Background()))
		shipping += time.Since(start)
		cancel()
		<-done
	}
	b.ReportMetric(float64(b.N*perRound)/shipping.Seconds(), "events/s")
	b.ReportMetric(float64(shipping.Nanoseconds())/float64(b.N*perRound), "ns/event")
	require.Equal(b, b.N*perRound, received())
}
