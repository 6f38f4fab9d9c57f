package ship

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/dataplane/record/outbox"
)

// batchLog is a Transport that accepts everything and remembers the size of each batch.
type batchLog struct {
	mu    sync.Mutex
	sizes []int
}

func (b *batchLog) Send(_ context.Context, _ event.Destination, events [][]byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sizes = append(b.sizes, len(events))
	return nil
}

func (b *batchLog) batches() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.sizes...)
}

// readSignal is an Outbox that says when each Read has returned.
type readSignal struct {
	outbox.Outbox
	reads chan int
}

func (r *readSignal) Read(ctx context.Context, max int) ([]event.Entry, error) {
	e, err := r.Outbox.Read(ctx, max)
	select {
	case r.reads <- len(e):
	default: // only the first reads are looked at
	}
	return e, err
}

// TestShipperLingerBatchesATrickle: entries signalled one at a time while the shipper lingers
// go out as one batch (Flush ends the linger); with no linger each goes out alone.
func TestShipperLingerBatchesATrickle(t *testing.T) {
	leakCheck(t)
	for _, tc := range []struct {
		name   string
		linger time.Duration
		want   []int
	}{
		{"linger", time.Hour, []int{5}},
		{"no linger", -1, []int{1, 1, 1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ob := &readSignal{Outbox: openFileOutbox(t, t.TempDir()), reads: make(chan int, 100)}
			defer ob.Close()
			log := &batchLog{}
			s := New(ob, nil, log, Options{Linger: tc.linger, PollInterval: time.Hour, TouchInterval: time.Hour}, NewMetrics())
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { s.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			require.Zero(t, <-ob.reads, "the first read finds nothing; the shipper now waits for a signal")

			for i := range 5 {
				e := event.Entry{UUID: fmt.Sprintf("u-%d", i), Dest: event.Destination{}, Event: []byte(`{"event":"x"}`)}
				require.NoError(t, ob.Append(ctx, []event.Entry{e}))
				s.Notify()
				if tc.linger < 0 {
					require.Eventually(t, func() bool { return len(log.batches()) == i+1 }, 10*time.Second, time.Millisecond)
				}
			}
			require.NoError(t, s.Flush(ctx))
			require.Equal(t, tc.want, log.batches())
		})
	}
}
