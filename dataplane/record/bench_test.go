package record

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/test/capturesink"
	"github.com/posthog/llm-gateway/test/redistest"
)

// discard accepts every batch without doing anything.
type discard struct{}

func (discard) Send(context.Context, Destination, [][]byte) error { return nil }

// BenchmarkBuild: building the events of a typical call (chat, ~300-byte body, cached
// usage, costs) on the request path.
func BenchmarkBuild(b *testing.B) {
	c := scenarios()["openai_chat_cached"]
	bl := testBuilder()
	b.ReportAllocs()
	for b.Loop() {
		bl.Build(c)
	}
}

// BenchmarkBuildFailover: a served call with one failover hop (two events).
func BenchmarkBuildFailover(b *testing.B) {
	c := scenarios()["failover_hop"]
	bl := testBuilder()
	b.ReportAllocs()
	for b.Loop() {
		bl.Build(c)
	}
}

// stalled never answers: the shipper fills its in-flight window and then stays idle, so the
// benchmark sees the request-path cost alone.
type stalled struct{}

func (stalled) Send(ctx context.Context, _ Destination, _ [][]byte) error {
	<-ctx.Done()
	return ctx.Err()
}

// benchRecord measures Record (build + durable append), with the shipper shipping
// everything to a transport that accepts it (competing for the CPU as in production), or
// stalled.
func benchRecord(b *testing.B, ob Outbox, t Transport) {
	r, err := New(Options{Outbox: ob, Local: t, Remote: t, Logger: slog.New(slog.DiscardHandler),
		DefaultDestination: Destination{Host: "http://capture", APIKey: "k"}})
	require.NoError(b, err)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		r.Close(ctx)
	}()
	c := *scenarios()["openai_chat_cached"]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.RequestID = "bench-" + fmt.Sprint(i)
		i++
		r.Record(&c)
	}
}

func BenchmarkRecordFileOutbox(b *testing.B) {
	for _, tc := range []struct {
		name string
		t    Transport
	}{{"shipper=running", discard{}}, {"shipper=idle", stalled{}}} {
		b.Run(tc.name, func(b *testing.B) {
			ob, err := NewFileOutbox(b.TempDir(), FileOptions{MaxBytes: 1 << 40})
			require.NoError(b, err)
			benchRecord(b, ob, tc.t)
		})
	}
}

func BenchmarkRecordRedisOutbox(b *testing.B) {
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ob, err := NewRedisOutbox(context.Background(), rdb, "bench:events", "shipper", "pod-1", RedisOptions{MaxEntries: 1 << 30})
	require.NoError(b, err)
	benchRecord(b, ob, discard{})
}

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
	ob, err := NewFileOutbox(b.TempDir(), FileOptions{})
	require.NoError(b, err)
	defer ob.Close()
	local, err := NewFileTransport(filepath.Join(b.TempDir(), "e.jsonl"))
	require.NoError(b, err)
	defer local.Close()
	bl := &builder{maxEventBytes: DefaultMaxEventBytes, defaultDest: Destination{Host: srv.URL, APIKey: "k"}, libVersion: "bench"}
	c := *scenarios()["openai_chat_cached"]
	const perRound = 5000
	var shipping time.Duration
	for round := 0; round < b.N; round++ {
		entries := make([]Entry, 0, perRound)
		for i := range perRound {
			c.RequestID = fmt.Sprintf("ship-%d-%d", round, i)
			entries = append(entries, bl.Build(&c)...)
		}
		require.NoError(b, ob.Append(context.Background(), entries))
		start := time.Now()
		s := newShipper(ob, NewHTTPTransport(10*time.Second), local, ShipperOptions{}, newMetrics(nil))
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
