package record

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/test/capturesink"
	"github.com/posthog/llm-gateway/test/redistest"
)

// fastShipping retries quickly so tests converge without long waits.
var fastShipping = ShipperOptions{
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
func newPipeline(t *testing.T, ob Outbox, sink *capturesink.Sink) *pipeline {
	t.Helper()
	events := filepath.Join(t.TempDir(), "events.jsonl")
	local, err := NewFileTransport(events)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	remote := NewHTTPTransport(5 * time.Second)
	r, err := New(Options{
		Outbox: ob, Remote: remote, Local: local,
		DefaultDestination: Destination{Host: sink.URL(), APIKey: "phc_test"},
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

func openFileOutbox(t *testing.T, dir string) Outbox {
	t.Helper()
	ob, err := NewFileOutbox(dir, FileOptions{})
	require.NoError(t, err)
	return ob
}

// call returns a small successful chat call with request id id.
func call(id string) *Call {
	u := cost.FromOpenAI(120, 100, 0, 30, 0)
	return &Call{
		RequestID: id, Team: "team-a", Route: "llm/openai", Op: provider.OpChatCompletions,
		RequestedModel: "gpt-4o-mini", CanonicalModel: "gpt-4o-mini", RequestBody: []byte(chatBody),
		OutputText: "hello", StopReason: "stop", Status: 200, Start: t0, Latency: 500 * time.Millisecond,
		Usage: u, UsageReported: true, Cost: cost.Compute(gpt4oMini, u),
		Attempts: []Attempt{{Backend: "llm/openai", Provider: "openai", BaseURL: "https://api.openai.com/v1", Model: "gpt-4o-mini", Start: t0, Status: 200}},
	}
}

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
	require.Equal(t, 50.0, testutil.ToFloat64(p.rec.m.shipped.WithLabelValues("capture")))
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
	require.Greater(t, testutil.ToFloat64(p.rec.m.batches.WithLabelValues("retry")), 0.0)
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
		return testutil.ToFloat64(p.rec.m.batches.WithLabelValues("retry")) >= 2
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
	Transport
	lose atomic.Int32
}

func (l *lossyTransport) Send(ctx context.Context, d Destination, events [][]byte) error {
	err := l.Transport.Send(ctx, d, events)
	if err == nil && l.lose.Add(-1) >= 0 {
		return &SendError{Retryable: true, Err: errors.New("connection reset after the request was sent")}
	}
	return err
}

func TestRedeliveryKeepsTheUUIDAndIsCounted(t *testing.T) {
	leakCheck(t)
	sink := startSink(t)
	local, err := NewFileTransport(filepath.Join(t.TempDir(), "e.jsonl"))
	require.NoError(t, err)
	defer local.Close()
	remote := NewHTTPTransport(5 * time.Second)
	defer remote.Client.CloseIdleConnections()
	lossy := &lossyTransport{Transport: remote}
	lossy.lose.Store(1)
	r, err := New(Options{
		Outbox: openFileOutbox(t, t.TempDir()), Remote: lossy, Local: local,
		DefaultDestination: Destination{Host: sink.URL(), APIKey: "phc_test"}, Shipper: fastShipping,
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
	var entries []Entry
	for i := range 9 {
		entries = append(entries, p.rec.b.Build(call(fmt.Sprintf("b-%d", i)))...)
	}
	bad := p.rec.b.Build(call("b-bad"))[0]
	bad.Event = []byte(`{"type":"capture","uuid":"` + bad.UUID + `","event":"$ai_generation","distinct_id":"x","timestamp":"2026-01-01T00:00:00Z","properties":{"$ai_is_error":"yes"}}`)
	entries = append(entries[:4], append([]Entry{bad}, entries[4:]...)...)
	require.NoError(t, ob.Append(context.Background(), entries))
	p.rec.shipper.Notify()
	flush(t, p.rec)
	requireExactlyOnce(t, sink, 9, "b")
	require.Equal(t, 1.0, testutil.ToFloat64(p.rec.m.deadLetter))
	require.Greater(t, sink.Stats().BadRequests, 1, "the batch was split until the bad event was alone")
}

// flakyOutbox fails appends while broken is set.
type flakyOutbox struct {
	Outbox
	broken atomic.Bool
}

func (f *flakyOutbox) Append(ctx context.Context, e []Entry) error {
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
	rec := len(encodeRecord(nil, &[]Entry{call("x").build(t)}[0])) + 1
	ob, err := NewFileOutbox(t.TempDir(), FileOptions{MaxBytes: int64(5*rec + rec/2)})
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

func (c *Call) build(t *testing.T) Entry {
	return testBuilder().Build(c)[0]
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
	r.Record(scenarios()["failover_hop"])
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

func TestGzipTransport(t *testing.T) {
	sink := capturesink.New()
	srv := httptest.NewServer(sink)
	defer srv.Close()
	tr := NewHTTPTransport(time.Second)
	tr.Gzip = true
	e := call("gz-0").build(t)
	require.NoError(t, tr.Send(context.Background(), Destination{Host: srv.URL, APIKey: "k"}, [][]byte{e.Event}))
	_, ok := sink.Event(e.UUID)
	require.True(t, ok)
	tr.Client.CloseIdleConnections()
}

func TestSendErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryable  bool
		retryAfter string
		wait       time.Duration
	}{
		{500, true, "", 0}, {503, true, "7", 7 * time.Second}, {429, true, "2", 2 * time.Second},
		{408, true, "", 0}, {400, false, "", 0}, {413, false, "", 0}, {401, false, "", 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if tc.retryAfter != "" {
				w.Header().Set("Retry-After", tc.retryAfter)
			}
			w.WriteHeader(tc.status)
		}))
		err := NewHTTPTransport(time.Second).Send(context.Background(), Destination{Host: srv.URL, APIKey: "k"}, [][]byte{[]byte(`{}`)})
		srv.Close()
		var se *SendError
		require.ErrorAs(t, err, &se)
		require.Equal(t, tc.status, se.Status)
		require.Equal(t, tc.retryable, se.Retryable, "status %d", tc.status)
		require.Equal(t, tc.wait, se.RetryAfter)
	}
	err := NewHTTPTransport(time.Second).Send(context.Background(), Destination{Host: "http://127.0.0.1:1", APIKey: "k"}, [][]byte{[]byte(`{}`)})
	var se *SendError
	require.ErrorAs(t, err, &se)
	require.True(t, se.Retryable, "network errors are retried")
}

func TestBackoffHonoursRetryAfter(t *testing.T) {
	s := newShipper(nil, nil, nil, ShipperOptions{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, MaxRetryAfter: time.Minute}, newMetrics(nil))
	for attempt := range 40 {
		d := s.backoff(attempt, 0)
		require.LessOrEqual(t, d, time.Second)
		require.GreaterOrEqual(t, d, min(100*time.Millisecond<<min(attempt, 20), time.Second)/2)
	}
	require.Equal(t, 30*time.Second, s.backoff(0, 30*time.Second))
	require.Equal(t, time.Minute, s.backoff(0, time.Hour), "capped")
}

func TestBatchBodyWireFormat(t *testing.T) {
	body := BatchBody("phc_x", [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)}, t0)
	require.JSONEq(t, `{"api_key":"phc_x","batch":[{"a":1},{"b":2}],"sent_at":"2026-09-10T12:00:00.000Z"}`, string(body))
}

func TestRecorderWithRedisOutbox(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	leakCheck(t)
	ob, err := NewRedisOutbox(context.Background(), rdb, "rec:events", "shipper", "pod-1", RedisOptions{})
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
	local, err := NewFileTransport(filepath.Join(t.TempDir(), "e.jsonl"))
	require.NoError(t, err)
	defer local.Close()
	remote := NewHTTPTransport(5 * time.Second)
	defer remote.Client.CloseIdleConnections()
	r, err := New(Options{
		Outbox: openFileOutbox(t, t.TempDir()), Remote: remote, Local: local,
		DefaultDestination: Destination{Host: sink.URL(), APIKey: "phc_test"},
		Shipper:            ShipperOptions{MinBackoff: time.Hour, MaxBackoff: time.Hour, PollInterval: 10 * time.Millisecond},
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
// TestFlushDoesNotSitOutALongBackoff: a Flush that comes after a failed send computed its
// (hour-long) backoff but before the retry started sleeping must still wake it. The retry
// is held at its "retrying" log line, between the two, while the flush begins.
func TestFlushWakesARetryAboutToSleep(t *testing.T) {
	leakCheck(t)
	sink := startSink(t)
	sink.SetMode(capturesink.Unavailable)
	local, err := NewFileTransport(filepath.Join(t.TempDir(), "e.jsonl"))
	require.NoError(t, err)
	defer local.Close()
	remote := NewHTTPTransport(5 * time.Second)
	defer remote.Client.CloseIdleConnections()
	h := &pausingHandler{match: "retrying", paused: make(chan struct{}, 1), release: make(chan struct{})}
	r, err := New(Options{
		Outbox: openFileOutbox(t, t.TempDir()), Remote: remote, Local: local, Logger: slog.New(h),
		DefaultDestination: Destination{Host: sink.URL(), APIKey: "phc_test"},
		Shipper:            ShipperOptions{MinBackoff: time.Hour, MaxBackoff: time.Hour, PollInterval: 10 * time.Millisecond},
	})
	require.NoError(t, err)
	r.Record(call("about-0"))
	<-h.paused // the send failed and its hour-long backoff is computed; the retry is not asleep yet
	sink.SetMode(capturesink.Accept)
	before := r.shipper.kicked()
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		closed <- r.Close(ctx)
	}()
	require.Eventually(t, func() bool { return r.shipper.kicked() != before }, 20*time.Second, time.Millisecond,
		"the flush wakes the retries")
	close(h.release)
	require.NoError(t, <-closed, "the flush that began before the retry slept still wakes it")
	requireExactlyOnce(t, sink, 1, "about")
}

func TestBatchesAreGroupedAndBounded(t *testing.T) {
	s := newShipper(nil, nil, nil, ShipperOptions{BatchSize: 3, MaxBatchBytes: 250}, newMetrics(nil))
	a, b := Destination{Host: "http://a", APIKey: "k"}, Destination{Host: "http://b", APIKey: "k"}
	ev := func(d Destination, size int) Entry { return Entry{Dest: d, Event: make([]byte, size)} }
	got := s.batches([]Entry{ev(a, 10), ev(b, 10), ev(a, 10), ev(a, 10), ev(a, 10), ev(b, 200), ev(b, 100), ev(a, 400)})
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

// heldTransport delivers a batch only when released, like a capture request still on the wire;
// it honours its context, as an HTTP client does.
type heldTransport struct {
	sent    chan struct{}
	release chan struct{}
}

func (h *heldTransport) Send(ctx context.Context, _ Destination, _ [][]byte) error {
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
	local, err := NewFileTransport(filepath.Join(t.TempDir(), "e.jsonl"))
	require.NoError(t, err)
	defer local.Close()
	held := &heldTransport{sent: make(chan struct{}, 1), release: make(chan struct{})}
	opts := fastShipping
	// The grace is what lets the send finish after the stop; longer than any scheduling delay
	// of a busy machine between the stop and the release below, so the test does not race it.
	opts.StopGrace = time.Minute
	r, err := New(Options{
		Outbox: openFileOutbox(t, dir), Remote: held, Local: local,
		DefaultDestination: Destination{Host: "http://capture.invalid", APIKey: "phc_test"}, Shipper: opts,
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
