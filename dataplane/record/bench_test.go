package record

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/dataplane/record/internal/fixture"
	"github.com/posthog/llm-gateway/dataplane/record/outbox"
	"github.com/posthog/llm-gateway/dataplane/record/ship"
	"github.com/posthog/llm-gateway/test/redistest"
)

// discard accepts every batch without doing anything.
type discard struct{}

func (discard) Send(context.Context, event.Destination, [][]byte) error { return nil }

// stalled never answers: the shipper fills its in-flight window and then stays idle, so the
// benchmark sees the request-path cost alone.
type stalled struct{}

func (stalled) Send(ctx context.Context, _ event.Destination, _ [][]byte) error {
	<-ctx.Done()
	return ctx.Err()
}

// benchRecord measures Record (build + durable append), with the shipper shipping
// everything to a transport that accepts it (competing for the CPU as in production), or
// stalled.
func benchRecord(b *testing.B, ob outbox.Outbox, t ship.Transport) {
	r, err := New(Options{Outbox: ob, Local: t, Remote: t, Logger: slog.New(slog.DiscardHandler),
		DefaultDestination: event.Destination{Host: "http://capture", APIKey: "k"}})
	require.NoError(b, err)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		r.Close(ctx)
	}()
	c := *fixture.Scenarios()["openai_chat_cached"]
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
		t    ship.Transport
	}{{"shipper=running", discard{}}, {"shipper=idle", stalled{}}} {
		b.Run(tc.name, func(b *testing.B) {
			ob, err := outbox.NewFile(b.TempDir(), outbox.FileOptions{MaxBytes: 1 << 40})
			require.NoError(b, err)
			benchRecord(b, ob, tc.t)
		})
	}
}

func BenchmarkRecordRedisOutbox(b *testing.B) {
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ob, err := outbox.NewRedis(context.Background(), rdb, "bench:events", "shipper", "pod-1", outbox.RedisOptions{MaxEntries: 1 << 30})
	require.NoError(b, err)
	benchRecord(b, ob, discard{})
}
