package ship

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/dataplane/record/internal/fixture"
	"github.com/posthog/llm-gateway/test/capturesink"
)

func TestBackoffHonoursRetryAfter(t *testing.T) {
	s := New(nil, nil, nil, Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxRetryAfter: time.Minute}, NewMetrics())
	for attempt := range 40 {
		d := s.backoff(attempt, 0)
		require.LessOrEqual(t, d, time.Second)
		require.GreaterOrEqual(t, d, min(100*time.Millisecond<<min(attempt, 20), time.Second)/2)
	}
	require.Equal(t, 30*time.Second, s.backoff(0, 30*time.Second))
	require.Equal(t, time.Minute, s.backoff(0, time.Hour), "capped")
}

func TestBatchesAreGroupedAndBounded(t *testing.T) {
	s := New(nil, nil, nil, Options{BatchSize: 3, MaxBatchBytes: 250}, NewMetrics())
	a, b := event.Destination{Host: "http://a", APIKey: "k"}, event.Destination{Host: "http://b", APIKey: "k"}
	ev := func(d event.Destination, size int) event.Entry {
		return event.Entry{Dest: d, Event: make([]byte, size)}
	}
	got := s.batches([]event.Entry{ev(a, 10), ev(b, 10), ev(a, 10), ev(a, 10), ev(a, 10), ev(b, 200), ev(b, 100), ev(a, 400)})
	var shape []string
	for _, batch := range got {
		sizes := ""
		for _, e := range batch {
			require.Equal(t, batch[0].Dest, e.Dest, "one destination per batch")
			sizes += fmt.Sprintf("%d,", len(e.Event))
		}
		shape = append(shape, batch[0].Dest.Host+":"+sizes)
	}
	require.Equal(t, []string{"http://a:10,10,10,", "http://b:10,200,", "http://a:10,", "http://b:100,", "http://a:400,"}, shape,
		"at most 3 events and 250 bytes per batch; an oversized event goes alone")
}

// pausingHandler is a slog.Handler that holds the first record whose message contains
// match until released: it stops the logging goroutine at that line.
type pausingHandler struct {
	match   string
	paused  chan struct{} // receives once, when the record is held
	release chan struct{}
	once    sync.Once
}

func (h *pausingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *pausingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *pausingHandler) WithGroup(string) slog.Handler            { return h }
func (h *pausingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		h.once.Do(func() {
			h.paused <- struct{}{}
			<-h.release
		})
	}
	return nil
}

// TestFlushWakesARetryAboutToSleep pins the lost wake-up behind a flaky
// TestFlushDoesNotSitOutALongBackoff (dataplane/record): a Flush that comes after a failed
// send computed its (hour-long) backoff but before the retry started sleeping must still
// wake it. The retry is held at its "retrying" log line, between the two, while the flush
// begins.
func TestFlushWakesARetryAboutToSleep(t *testing.T) {
	leakCheck(t)
	sink := startSink(t)
	sink.SetMode(capturesink.Unavailable)
	ob := openFileOutbox(t, t.TempDir())
	defer ob.Close()
	local, err := NewFileTransport(filepath.Join(t.TempDir(), "e.jsonl"))
	require.NoError(t, err)
	defer local.Close()
	remote := NewHTTPTransport(5 * time.Second)
	defer remote.Client.CloseIdleConnections()
	h := &pausingHandler{match: "retrying", paused: make(chan struct{}, 1), release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(h.release) }) }
	defer release() // a failing test must not leave the shipper held

	s := New(ob, remote, local, Options{MinBackoff: time.Hour, MaxBackoff: time.Hour, PollInterval: 10 * time.Millisecond,
		Logger: slog.New(h)}, NewMetrics())
	entries := builderFor(sink.URL()).Build(fixture.Call("about-0"))
	require.NoError(t, ob.Append(context.Background(), entries))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { release(); cancel(); <-done }()

	<-h.paused // the send failed and its hour-long backoff is computed; the retry is not asleep yet
	sink.SetMode(capturesink.Accept)
	before := s.kicked()
	flushed := make(chan error, 1)
	go func() {
		fctx, fcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer fcancel()
		flushed <- s.Flush(fctx)
	}()
	require.Eventually(t, func() bool { return s.kicked() != before }, 20*time.Second, time.Millisecond,
		"the flush wakes the retries")
	release()
	require.NoError(t, <-flushed, "the flush that began before the retry slept still wakes it")
	_, ok := sink.Event(entries[0].UUID)
	require.True(t, ok)
	require.Equal(t, 1, sink.Stats().Unique)
}
