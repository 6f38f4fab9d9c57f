package record

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/dataplane/record/internal/fixture"
	"github.com/posthog/llm-gateway/dataplane/record/outbox"
	"github.com/posthog/llm-gateway/dataplane/record/ship"
	"github.com/posthog/llm-gateway/test/capturesink"
	"github.com/posthog/llm-gateway/test/redistest"
)

// fastShipping retries quickly so tests converge without long waits.
var fastShipping = ship.Options{
	PollInterval: 20 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	BatchSize: 10, TouchInterval: 50 * time.Millisecond,
}

type pipeline struct {
	rec    *Recorder
	sink   *capturesink.Sink
	events string // local events file
	reg    *prometheus.Registry
}

func leakCheck(t *testing.T) {
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, goleak.IgnoreCurrent())
	})
}

// newPipeline starts a sink (not started when start is false) and a Recorder shipping to it
// through ob.
func newPipeline(t *testing.T, ob outbox.Outbox, sink *capturesink.Sink) *pipeline {
	t.Helper()
	events := filepath.Join(t.TempDir(), "events.jsonl")
	local, err := ship.NewFileTransport(events)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	remote := ship.NewHTTPTransport(5 * time.Second)
	r, err := New(Options{
		Outbox: ob, Remote: remote, Local: local,
		DefaultDestination: event.Destination{Host: sink.URL(), APIKey: "phc_test"},
		Shipper:            fastShipping, Registerer: reg, LibVersion: "test",
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.Close(ctx)
		local.Close()
		remote.Client.CloseIdleConnections()
	})
	return &pipeline{rec: r, sink: sink, events: events, reg: reg}
}

func startSink(t *testing.T) *capturesink.Sink {
	t.Helper()
	s := capturesink.New()
	require.NoError(t, s.Start(""))
	t.Cleanup(s.Close)
	return s
}

func openFileOutbox(t *testing.T, dir string) outbox.Outbox {
	t.Helper()
	ob, err := outbox.NewFile(dir, outbox.FileOptions{})
	require.NoError(t, err)
	return ob
}

// call returns a small successful chat call with request id id.
func call(id string) *Call { return fixture.Call(id) }

func flush(t *testing.T, r *Recorder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, r.Flush(ctx))
}

// requireExactlyOnce checks the sink got every request's event once, valid, no duplicates.
func requireExactlyOnce(t *testing.T, sink *capturesink.Sink, n int, prefix string) {
	t.Helper()
	for i := range n {
		_, ok := sink.Event(EventUUID(fmt.Sprintf("%s-%d", prefix, i), 0))
		require.True(t, ok, "event of request %d missing", i)
	}
	st := sink.Stats()
	require.Equal(t, n, st.Unique)
	require.Zero(t, st.Duplicates)
	require.Empty(t, sink.Problems())
}

func TestRecorderShipsToCapture(t *testing.T) {
	leakCheck(t)
	sink := startSink(t)
	p := newPipeline(t, openFileOutbox(t, t.TempDir()), sink)
	for i := range 50 {
		p.rec.Record(call(fmt.Sprintf("ok-%d", i)))
	}
	flush(t, p.rec)
	requireExactlyOnce(t, sink, 50, "ok")
	require.Equal(t, 50.0, testutil.ToFloat64(p.rec.m.ship.Shipped.WithLabelValues("capture")))
	require.Equal(t, 50.0, testutil.ToFloat64(p.rec.m.events.WithLabelValues("outboxed")))
	e, _ := sink.Event(EventUUID("ok-7", 0))
	require.Equal(t, "phc_test", e.APIKey)
}

func TestRecorderRetriesThrough503And429(t *testing.T) {
	leakCheck(t)
	sink := startSink(t)
	sink.SetMode(capturesink.Unavailable)
	p := newPipeline(t, openFileOutbox(t, t.TempDir()), sink)
	for i := range 20 {
		p.rec.Record(call(fmt.Sprintf("r-%d", i)))
	}
	require.Eventually(t, func() bool { return sink.Stats().Refused >= 3 }, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, sink.Stats().Unique)
	sink.SetRetryAfter(0)
	sink.SetMode(capturesink.RateLimited)
	refused := sink.Stats().Refused
	require.Eventually(t, func() bool { return sink.Stats().Refused > refused }, 10*time.Second, 10*time.Millisecond)
	sink.SetMode(capturesink.Accept)
	flush(t, p.rec)
	requireExactlyOnce(t, sink, 20, "r")
	require.Greater(t, testutil.ToFloat64(p.rec.m.ship.Batches.WithLabelValues("retry")), 0.0)
}

func TestRecorderSurvivesCaptureDown(t *testing.T) {
	leakCheck(t)
	sink := startSink(t)
	sink.Down()
	dir := t.TempDir()
	p := newPipeline(t, openFileOutbox(t, dir), sink)
	for i := range 10 {
		p.rec.Record(call(fmt.Sprintf("d-%d", i)))
	}
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(p.rec.m.ship.Batches.WithLabelValues("retry")) >= 2
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, sink.Up())
	flush(t, p.rec)
	requireExactlyOnce(t, sink, 10, "d")
}

func TestRecorderRestartShipsWhatWasLeft(t *testing.T) {
	leakCheck(t)
	sink := startSink(t)
	sink.SetMode(capturesink.Unavailable)
	dir := t.TempDir()
	p := newPipeline(t, openFileOutbox(t, dir), sink)
	for i := range 15 {
		p.rec.Record(call(fmt.Sprintf("s-%d", i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	require.Error(t, p.rec.Close(ctx), "capture is down: the flush cannot finish")
	cancel()
	require.Zero(t, sink.Stats().Unique)

	sink.SetMode(capturesink.Accept)
	again := newPipeline(t, openFileOutbox(t, dir), sink)
	flush(t, again.rec)
	requireExactlyOnce(t, sink, 15, "s")
}

// lossyTransport delivers batches but reports a failure for the first n of them, as when
// capture's 200 is lost on the way back.
type lossyTransport struct {
	ship.Transport
	lose atomic.Int32
}

func (l *lossyTransport) Send(ctx context.Context, d event.Destination, events [][]byte) error {
	err := l.Transport.Send(ctx, d, events)
	if err == nil && l.lose.Add(-1) >= 0 {
		return &ship.SendError{Retryable: true, Err: errors.New("connection reset after the request was sent")}
	}
	return err
}

func TestRedeliveryKeepsTheUUIDAndIsCounted(t *testing.T) {
	leakCheck(t)
	sink := startSink(t)
	local, err := ship.NewFileTransport(filepath.Join(t.TempDir(), "e.jsonl"))
	require.NoError(t, err)
	defer local.Close()
	remote := ship.NewHTTPTransport(5 * time.Second)
	defer remote.Client.CloseIdleConnections()
	lossy := &lossyTransport{Transport: remote}
	lossy.lose.Store(1)
	r, err := New(Options{
		Outbox: openFileOutbox(t, t.TempDir()), Remote: lossy, Local: local,
		DefaultDestination: event.Destination{Host: sink.URL(), APIKey: "phc_test"}, Shipper: fastShipping,
	})
	require.NoError(t, err)
	defer r.Close(context.Background())
	r.Record(call("dup-0"))
	flush(t, r)
	st := sink.Stats()
	require.Equal(t, 1, st.Unique)
	require.Equal(t, 1, st.Duplicates, "the redelivery reached capture with the same uuid")
	require.Equal(t, map[string]int{EventUUID("dup-0", 0): 2}, sink.DuplicateUUIDs())
}

func TestRejectedBatchIsBisected(t *testing.T) {
	leakCheck(t)
	sink := startSink(t)
	sink.SetRejectInvalid(true)
	ob := openFileOutbox(t, t.TempDir())
	p := newPipeline(t, ob, sink)
	var entries []event.Entry
	for i := range 9 {
		entries = append(entries, p.rec.b.Build(call(fmt.Sprintf("b-%d", i)))...)
	}
	bad := p.rec.b.Build(call("b-bad"))[0]
	bad.Event = []byte(`{"type":"capture","uuid":"` + bad.UUID + `","event":"$ai_generation","distinct_id":"x","timestamp":"2026-01-01T00:00:00Z","properties":{"$ai_is_error":"yes"}}`)
	entries = append(entries[:4], append([]event.Entry{bad}, entries[4:]...)...)
	require.NoError(t, ob.Append(context.Background(), entries))
	p.rec.shipper.Notify()
	flush(t, p.rec)
	requireExactlyOnce(t, sink, 9, "b")
	require.Equal(t, 1.0, testutil.ToFloat64(p.rec.m.ship.DeadLetter))
	require.Greater(t, sink.Stats().BadRequests, 1, "the batch was split until the bad event was alone")
}

// flakyOutbox fails appends while broken is set.
type flakyOutbox struct {
	outbox.Outbox
	broken atomic.Bool
}

func (f *flakyOutbox) Append(ctx context.Context, e []event.Entry) error {
	if f.broken.Load() {
		return errors.New("outbox unavailable")
	}
	return f.Outbox.Append(ctx, e)
}

func TestRecordNeverBlocksWhenTheOutboxFails(t *testing.T) {
	leakCheck(t)
	sink := startSink(t)
	ob := &flakyOutbox{Outbox: openFileOutbox(t, t.TempDir())}
	ob.broken.Store(true)
	p := newPipeline(t, ob, sink)
	for i := range 30 {
		p.rec.Record(call(fmt.Sprintf("q-%d", i)))
	}
	require.True(t, p.rec.degraded.Load())
	require.Equal(t, 30.0, testutil.ToFloat64(p.rec.m.events.WithLabelValues("queued")))
	ob.broken.Store(false)
	flush(t, p.rec)
	requireExactlyOnce(t, sink, 30, "q")
	require.Eventually(t, func() bool { return !p.rec.degraded.Load() }, 20*time.Second, 10*time.Millisecond)
}

func TestRecordDropsAtTheLimitAndSaysSo(t *testing.T) {
	leakCheck(t)
	sink := startSink(t)
	sink.SetMode(capturesink.Unavailable)
	rec := int(recordBytes(t, build(call("x"))))
	ob, err := outbox.NewFile(t.TempDir(), outbox.FileOptions{MaxBytes: int64(5*rec + rec/2)})
	require.NoError(t, err)
	p := newPipeline(t, ob, sink)
	for i := range 8 {
		p.rec.Record(call(fmt.Sprintf("x-%d", i)))
	}
	require.Equal(t, 5.0, testutil.ToFloat64(p.rec.m.events.WithLabelValues("outboxed")))
	require.Equal(t, 3.0, testutil.ToFloat64(p.rec.m.events.WithLabelValues("dropped_outbox_full")))
	require.Eventually(t, func() bool { return p.rec.warnFull.Load() }, 20*time.Second, 10*time.Millisecond,
		"above 80% the recorder warns")
	require.Greater(t, testutil.ToFloat64(p.rec.m.outboxFill), 0.8)
	sink.SetMode(capturesink.Accept)
	flush(t, p.rec)
	require.Equal(t, 5, sink.Stats().Unique)
}

// build returns the main event of c.
func build(c *Call) event.Entry {
	b := event.Builder{MaxEventBytes: event.DefaultMaxBytes, LibVersion: "test"}
	return b.Build(c)[0]
}

func TestLocalEventsFile(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	cfg := Config{StateDir: dir, LibVersion: "test"}
	r, err := Open(context.Background(), cfg, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	for i := range 5 {
		r.Record(call(fmt.Sprintf("l-%d", i)))
	}
	r.Record(fixture.Scenarios()["failover_hop"])
	require.NoError(t, r.Close(context.Background()))

	f, err := os.Open(cfg.EventsPath())
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		require.Empty(t, capturesink.Validate(sc.Bytes()), "line %d", n)
		n++
	}
	require.NoError(t, sc.Err())
	require.Equal(t, 7, n, "one line per event: 5 calls + a served event and its failover hop")
	require.Equal(t, filepath.Join(dir, "events.jsonl"), cfg.EventsPath())
}

func TestPerTeamDestinations(t *testing.T) {
	leakCheck(t)
	def, team := startSink(t), startSink(t)
	p := newPipeline(t, openFileOutbox(t, t.TempDir()), def)
	c := call("team-0")
	c.PostHogHost, c.PostHogAPIKey = team.URL(), "phc_team_b"
	p.rec.Record(c)
	p.rec.Record(call("def-0"))
	flush(t, p.rec)
	e, ok := team.Event(EventUUID("team-0", 0))
	require.True(t, ok)
	require.Equal(t, "phc_team_b", e.APIKey)
	_, ok = def.Event(EventUUID("def-0", 0))
	require.True(t, ok)
	require.Equal(t, 1, def.Stats().Unique)
}

func TestRecorderWithRedisOutbox(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	leakCheck(t)
	ob, err := outbox.NewRedis(context.Background(), rdb, "rec:events", "shipper", "pod-1", outbox.RedisOptions{})
	require.NoError(t, err)
	sink := startSink(t)
	p := newPipeline(t, ob, sink)
	for i := range 10 {
		p.rec.Record(call(fmt.Sprintf("rd-%d", i)))
	}
	flush(t, p.rec)
	requireExactlyOnce(t, sink, 10, "rd")

	// Redis goes away: Record does not block, events wait in memory and ship once it is back.
	srv.Stop()
	var wg sync.WaitGroup
	for i := 10; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); p.rec.Record(call(fmt.Sprintf("rd-%d", i))) }()
	}
	wg.Wait()
	require.True(t, p.rec.degraded.Load())
	srv.Restart()
	flush(t, p.rec)
	requireExactlyOnce(t, sink, 20, "rd")
}

func TestFlushDoesNotSitOutALongBackoff(t *testing.T) {
	leakCheck(t)
	sink := startSink(t)
	sink.SetMode(capturesink.Unavailable)
	local, err := ship.NewFileTransport(filepath.Join(t.TempDir(), "e.jsonl"))
	require.NoError(t, err)
	defer local.Close()
	remote := ship.NewHTTPTransport(5 * time.Second)
	defer remote.Client.CloseIdleConnections()
	r, err := New(Options{
		Outbox: openFileOutbox(t, t.TempDir()), Remote: remote, Local: local,
		DefaultDestination: event.Destination{Host: sink.URL(), APIKey: "phc_test"},
		Shipper:            ship.Options{MinBackoff: time.Hour, MaxBackoff: time.Hour, PollInterval: 10 * time.Millisecond},
	})
	require.NoError(t, err)
	r.Record(call("long-0"))
	require.Eventually(t, func() bool { return sink.Stats().Refused > 0 }, 10*time.Second, 10*time.Millisecond)
	sink.SetMode(capturesink.Accept)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, r.Close(ctx), "the shutdown flush wakes the retry sleeping in its hour-long backoff")
	requireExactlyOnce(t, sink, 1, "long")
}

// heldTransport delivers a batch only when released, like a capture request still on the wire;
// it honours its context, as an HTTP client does.
type heldTransport struct {
	sent    chan struct{}
	release chan struct{}
}

func (h *heldTransport) Send(ctx context.Context, _ event.Destination, _ [][]byte) error {
	h.sent <- struct{}{}
	select {
	case <-h.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A batch capture accepts while the recorder is shutting down is acked, not shipped again
// at the next start (where it would reach capture twice).
func TestStopLetsAnInFlightSendFinish(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	local, err := ship.NewFileTransport(filepath.Join(t.TempDir(), "e.jsonl"))
	require.NoError(t, err)
	defer local.Close()
	held := &heldTransport{sent: make(chan struct{}, 1), release: make(chan struct{})}
	opts := fastShipping
	// The grace is what lets the send finish after the stop; longer than any scheduling delay
	// of a busy machine between the stop and the release below, so the test does not race it.
	opts.StopGrace = time.Minute
	r, err := New(Options{
		Outbox: openFileOutbox(t, dir), Remote: held, Local: local,
		DefaultDestination: event.Destination{Host: "http://capture.invalid", APIKey: "phc_test"}, Shipper: opts,
	})
	require.NoError(t, err)
	r.Record(call("held-0"))
	<-held.sent // the batch is on the wire

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		closed <- r.Close(ctx) // the flush times out; the shipper stops
	}()
	<-r.stopping // the flush timed out and the shipper was told to stop
	close(held.release)
	// Capture's 200 arrives after the stop.
	<-closed

	ob := openFileOutbox(t, dir)
	drained, err := ob.Drained(context.Background())
	require.NoError(t, err)
	require.True(t, drained, "the accepted batch was acked; nothing is left to ship twice")
}

// recordBytes is the size one entry takes in a file outbox.
func recordBytes(t *testing.T, e event.Entry) int64 {
	t.Helper()
	ob := openFileOutbox(t, t.TempDir())
	defer ob.Close()
	require.NoError(t, ob.Append(context.Background(), []event.Entry{e}))
	st, err := ob.Stats(context.Background())
	require.NoError(t, err)
	return st.Used
}
