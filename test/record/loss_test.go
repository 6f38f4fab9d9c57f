package recordtest

import (
	"context"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/record"
	"github.com/posthog/llm-gateway/test/capturesink"
	"github.com/posthog/llm-gateway/test/fakeprovider"
	"github.com/posthog/llm-gateway/test/redistest"
)

// requireEveryCallOnce waits until every completed call has its event in the sink, then
// checks there is exactly one event per call (by uuid: the main event of attempt 0) and that
// every event is valid. Duplicate deliveries are reported, not hidden.
func requireEveryCallOnce(t *testing.T, sink *capturesink.Sink, done []string, wait time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return len(missing(sink, done)) == 0 }, wait, 100*time.Millisecond,
		"calls without an event: %d of %d", len(missing(sink, done)), len(done))
	events := byRequestID(sink)
	for _, id := range done {
		evs := events[id]
		require.Len(t, evs, 1, "request %s", id)
		require.Equal(t, record.EventUUID(id, 0), evs[0].UUID)
	}
	require.Empty(t, sink.Problems(), "every event validates against the schema")
	st := sink.Stats()
	t.Logf("calls completed: %d; events accepted: %d unique, %d duplicate deliveries (same uuid: capture dedups them); batches %d, refused %d",
		len(done), st.Unique, st.Duplicates, st.Batches, st.Refused)
	for id, n := range sink.DuplicateUUIDs() {
		t.Logf("duplicate delivery: uuid %s delivered %d times", id, n)
	}
}

// TestNoEventLostAcrossCaptureOutagesAndSIGKILL: two gateways share a Redis outbox; capture
// answers 503, then is down, then comes back; one gateway is SIGKILLed while it holds
// unshipped events. Every call that completed has exactly one accepted event.
func TestNoEventLostAcrossCaptureOutagesAndSIGKILL(t *testing.T) {
	rs := redistest.Start(t)
	fp, providerURL := startProvider(t)
	fp.SetDefault(&fakeprovider.Scenario{Chunks: 4, ChunkIntervalMs: 2})
	sink := startSink(t)
	sink.SetMode(capturesink.Unavailable)
	snap := writeSnapshot(t, providerURL)
	common := []string{"--redis-url", rs.URL(), "--capture-endpoint", sink.URL(),
		"--outbox-claim-idle", "2s", "--capture-max-backoff", "500ms"}
	a := startGateway(t, "gw-a", snap, t.TempDir(), common...)
	b := startGateway(t, "gw-b", snap, t.TempDir(), common...)

	var targets atomic.Pointer[[]string]
	targets.Store(&[]string{a.addr, b.addr})
	cl := newClient()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	wg := cl.load(ctx, 4, func() []string { return *targets.Load() })

	time.Sleep(1500 * time.Millisecond) // capture answers 503
	sink.Down()                         // capture is unreachable
	time.Sleep(700 * time.Millisecond)
	require.Greater(t, cl.completedAt(b.addr), 0, "gw-b served calls before it dies")
	b.signal(syscall.SIGKILL) // dies holding unshipped (and maybe unacked) events
	targets.Store(&[]string{a.addr})
	time.Sleep(700 * time.Millisecond)
	require.NoError(t, sink.Up())
	sink.SetMode(capturesink.Accept)
	time.Sleep(time.Second)
	stop()
	wg.Wait()

	done := cl.completed()
	require.Greater(t, len(done), 50)
	requireEveryCallOnce(t, sink, done, 90*time.Second)
	logA, err := os.ReadFile(a.logPath)
	require.NoError(t, err)
	require.Contains(t, string(logA), "claimed entries of a dead consumer", "gw-a took over gw-b's unacked events")
}

// TestFileOutboxSurvivesSIGKILL: a standalone gateway (file outbox) is SIGKILLed while
// capture is down; restarted on the same state dir, it ships everything.
func TestFileOutboxSurvivesSIGKILL(t *testing.T) {
	fp, providerURL := startProvider(t)
	fp.SetDefault(&fakeprovider.Scenario{Chunks: 3, ChunkIntervalMs: 1})
	sink := startSink(t)
	sink.SetMode(capturesink.Unavailable)
	snap := writeSnapshot(t, providerURL)
	state := t.TempDir()
	g := startGateway(t, "gw-file", snap, state, "--capture-endpoint", sink.URL(), "--capture-max-backoff", "500ms")
	cl := newClient()
	ctx, stop := context.WithCancel(context.Background())
	wg := cl.load(ctx, 3, func() []string { return []string{g.addr} })
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	g.kill()
	require.Zero(t, sink.Stats().Unique)

	sink.SetMode(capturesink.Accept)
	startGateway(t, "gw-file-restarted", snap, state, "--capture-endpoint", sink.URL())
	done := cl.completed()
	require.Greater(t, len(done), 10)
	requireEveryCallOnce(t, sink, done, 60*time.Second)
}

// TestSIGTERMFlushesTheOutbox: calls finished before SIGTERM all reach capture before the
// process exits, although capture was refusing them until the shutdown began.
func TestSIGTERMFlushesTheOutbox(t *testing.T) {
	fp, providerURL := startProvider(t)
	fp.SetDefault(&fakeprovider.Scenario{Chunks: 3, ChunkIntervalMs: 1})
	sink := startSink(t)
	sink.SetMode(capturesink.Unavailable)
	snap := writeSnapshot(t, providerURL)
	g := startGateway(t, "gw-term", snap, t.TempDir(), "--capture-endpoint", sink.URL())
	cl := newClient()
	ctx, stop := context.WithCancel(context.Background())
	wg := cl.load(ctx, 3, func() []string { return []string{g.addr} })
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	require.Eventually(t, func() bool { return sink.Stats().Refused > 0 }, 10*time.Second, 20*time.Millisecond,
		"the shipper tried and backs off")

	sink.SetMode(capturesink.Accept)
	g.signal(syscall.SIGTERM)
	require.NoError(t, g.wait(30*time.Second), "clean exit after the flush")
	done := cl.completed()
	require.Greater(t, len(done), 10)
	require.Empty(t, missing(sink, done), "every event arrived before the process exited")
	requireEveryCallOnce(t, sink, done, time.Second)
}
