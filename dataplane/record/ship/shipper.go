// Package ship delivers the recorder's outbox: the Shipper reads entries, groups them by
// destination into batches, sends them through a Transport (PostHog capture's /batch/ over
// HTTP, or the local events file) and acks each entry in the outbox only after its
// destination accepted it. Retryable failures are retried with backoff for as long as the
// shipper runs; a batch capture rejects is bisected to dead-letter the bad event alone.
package ship

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/dataplane/record/internal/ratelog"
	"github.com/posthog/llm-gateway/dataplane/record/outbox"
)

// Options configure the shipper.
type Options struct {
	// BatchSize is the most events per batch (default 100); MaxBatchBytes the most bytes of
	// events per batch (default 1 MB; a single larger event still goes alone).
	BatchSize     int
	MaxBatchBytes int
	// Workers send batches concurrently (default 2). MaxInFlight bounds the events read from
	// the outbox and not yet accepted (default 2000).
	Workers     int
	MaxInFlight int
	// PollInterval is how often the outbox is read when nothing signals new entries
	// (default 250ms; entries of other pods in a shared outbox are found this way).
	PollInterval time.Duration
	// Linger is how long the shipper waits, once told of new entries, for more to arrive
	// before it reads them (default 100ms; negative: no wait). Without it a steady trickle of
	// calls is shipped one event per batch: a capture request and several outbox writes per
	// call (test/load measured a fifth of the gateway's CPU at 1,000 calls/s). It is skipped
	// while a backlog is being read, and a Flush ends it.
	Linger time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff (full jitter) between retries
	// of a batch (defaults 200ms and 30s). A Retry-After from capture is honoured up to
	// MaxRetryAfter (default 5m).
	MinBackoff    time.Duration
	MaxBackoff    time.Duration
	MaxRetryAfter time.Duration
	// TouchInterval is how often in-flight entries are touched (default 15s; keep it well
	// below the Redis outbox's ClaimIdle).
	TouchInterval time.Duration
	// StopGrace is how long a send already on the wire may outlive the shipper's stop
	// (default 2s), so that capture's answer is known and an accepted batch is acked.
	StopGrace time.Duration
	Logger    *slog.Logger
}

func (o *Options) defaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 1_000_000
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 2000
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.Linger == 0 {
		o.Linger = 100 * time.Millisecond
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = 5 * time.Minute
	}
	if o.TouchInterval <= 0 {
		o.TouchInterval = 15 * time.Second
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Shipper reads the outbox, groups entries by destination into batches, sends them and acks
// each entry only after its destination accepted it. Retryable failures are retried with
// backoff for as long as the shipper runs (the entries stay in the outbox meanwhile); a batch
// capture rejects as a whole is split in halves until the bad event is alone, which is then
// dead-lettered (logged, counted, acked) so it cannot block the rest.
type Shipper struct {
	outbox outbox.Outbox
	remote Transport
	local  Transport
	opts   Options
	log    *slog.Logger
	m      *Metrics

	wake chan struct{}
	work chan []event.Entry

	mu       sync.Mutex
	inflight map[string]struct{}
	reading  bool

	readLog ratelog.Limiter
	// flushing shortens backoffs (a shutdown flush must not sit out a 30s backoff); kick
	// wakes retries sleeping in a backoff (see sleep for the order that loses no wake-up).
	flushing atomic.Bool
	kickMu   sync.Mutex
	kick     chan struct{}
}

// kicked returns a channel closed at the next kick.
func (s *Shipper) kicked() <-chan struct{} {
	s.kickMu.Lock()
	defer s.kickMu.Unlock()
	return s.kick
}

// wakeRetries ends every backoff sleep now.
func (s *Shipper) wakeRetries() {
	s.kickMu.Lock()
	close(s.kick)
	s.kick = make(chan struct{})
	s.kickMu.Unlock()
}

// New returns a shipper of ob: remote delivers to capture hosts, local to the events file
// (destinations without a host, or every destination when remote is nil). m receives its
// metrics (NewMetrics). Run starts it.
func New(ob outbox.Outbox, remote, local Transport, opts Options, m *Metrics) *Shipper {
	opts.defaults()
	return &Shipper{
		outbox: ob, remote: remote, local: local, opts: opts, log: opts.Logger, m: m,
		wake:     make(chan struct{}, 1),
		work:     make(chan []event.Entry, opts.MaxInFlight),
		inflight: map[string]struct{}{},
		kick:     make(chan struct{}),
	}
}

// Notify tells the shipper that entries were appended.
func (s *Shipper) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run ships until ctx is done; it returns when every worker has stopped. Entries whose
// delivery was interrupted stay in the outbox.
func (s *Shipper) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range s.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case b := <-s.work:
					s.ship(ctx, b)
					s.done(b)
					s.Notify()
				}
			}
		}()
	}
	poll := time.NewTicker(s.opts.PollInterval)
	touch := time.NewTicker(s.opts.TouchInterval)
	defer poll.Stop()
	defer touch.Stop()
	for {
		backlog := s.fill(ctx)
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-s.wake:
			if !backlog {
				s.linger(ctx)
			}
		case <-poll.C:
		case <-touch.C:
			s.touch(ctx)
		}
	}
}

// linger waits up to Linger for more entries (see Options.Linger); a Flush ends it.
func (s *Shipper) linger(ctx context.Context) {
	kick := s.kicked() // before the flushing check: a Flush after it closes this channel
	if s.opts.Linger <= 0 || s.flushing.Load() {
		return
	}
	t := time.NewTimer(s.opts.Linger)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-kick:
	}
}

// fill reads entries while there is room in flight and queues them as batches. It reports a
// backlog: it stopped with no room left, or read at least a full batch.
func (s *Shipper) fill(ctx context.Context) (backlog bool) {
	read := 0
	for ctx.Err() == nil {
		s.mu.Lock()
		room := s.opts.MaxInFlight - len(s.inflight)
		if room <= 0 {
			s.mu.Unlock()
			return true
		}
		s.reading = true
		s.mu.Unlock()

		entries, err := s.outbox.Read(ctx, min(room, s.opts.BatchSize*s.opts.Workers*2))
		if err != nil && ctx.Err() == nil {
			s.m.OutboxErrors.WithLabelValues("read").Inc()
			if s.readLog.Allow(10 * time.Second) {
				s.log.Error("record: read outbox", "err", err)
			}
		}
		s.mu.Lock()
		fresh := entries[:0]
		for _, e := range entries {
			if _, dup := s.inflight[e.ID]; !dup {
				s.inflight[e.ID] = struct{}{}
				fresh = append(fresh, e)
			}
		}
		s.reading = false
		s.m.Inflight.Set(float64(len(s.inflight)))
		s.mu.Unlock()
		for _, b := range s.batches(fresh) {
			s.work <- b
		}
		read += len(entries)
		if len(entries) == 0 || err != nil {
			return read >= s.opts.BatchSize
		}
	}
	return false
}

// batches groups entries by destination, bounded by count and bytes.
func (s *Shipper) batches(entries []event.Entry) [][]event.Entry {
	var out [][]event.Entry
	open := map[event.Destination]int{} // destination -> index of its open batch in out
	size := map[event.Destination]int{}
	for _, e := range entries {
		i, ok := open[e.Dest]
		if ok && (len(out[i]) >= s.opts.BatchSize || size[e.Dest]+len(e.Event) > s.opts.MaxBatchBytes) {
			ok = false
		}
		if !ok {
			out = append(out, nil)
			i = len(out) - 1
			open[e.Dest], size[e.Dest] = i, 0
		}
		out[i] = append(out[i], e)
		size[e.Dest] += len(e.Event)
	}
	return out
}

func (s *Shipper) done(b []event.Entry) {
	s.mu.Lock()
	for _, e := range b {
		delete(s.inflight, e.ID)
	}
	s.m.Inflight.Set(float64(len(s.inflight)))
	s.mu.Unlock()
}

func (s *Shipper) touch(ctx context.Context) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.inflight))
	for id := range s.inflight {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	if err := s.outbox.Touch(ctx, ids); err != nil && ctx.Err() == nil {
		s.m.OutboxErrors.WithLabelValues("touch").Inc()
		s.log.Warn("record: touch in-flight outbox entries", "err", err)
	}
}

// ship delivers one batch (all entries share a destination) and acks it; it returns without
// acking only when ctx is done.
func (s *Shipper) ship(ctx context.Context, b []event.Entry) {
	dest := b[0].Dest
	t, sink := s.remote, "capture"
	if dest.Local() || t == nil {
		t, sink = s.local, "file"
	}
	events := make([][]byte, len(b))
	for i := range b {
		events[i] = b[i].Event
	}
	for attempt := 0; ; attempt++ {
		sctx, done := sendContext(ctx, s.opts.StopGrace)
		err := t.Send(sctx, dest, events)
		if err == nil {
			s.m.Batches.WithLabelValues("ok").Inc()
			s.m.Shipped.WithLabelValues(sink).Add(float64(len(b)))
			s.ack(sctx, b)
			done()
			return
		}
		done()
		if ctx.Err() != nil {
			return
		}
		var se *SendError
		if !errors.As(err, &se) {
			se = &SendError{Retryable: true, Err: err}
		}
		if !se.Retryable {
			s.m.Batches.WithLabelValues("rejected").Inc()
			if len(b) > 1 {
				s.log.Warn("record: capture rejected a batch; splitting it to isolate the bad event",
					"status", se.Status, "events", len(b), "host", dest.Host)
				s.ship(ctx, b[:len(b)/2])
				s.ship(ctx, b[len(b)/2:])
				return
			}
			s.m.DeadLetter.Inc()
			s.log.Error("record: capture rejected an event; dropping it (dead letter)",
				"uuid", b[0].UUID, "status", se.Status, "response", se.Body, "host", dest.Host)
			s.ack(ctx, b)
			return
		}
		s.m.Batches.WithLabelValues("retry").Inc()
		kick := s.kicked() // before backoff reads flushing: see sleep
		wait := s.backoff(attempt, se.RetryAfter)
		if attempt%10 == 0 {
			s.log.Warn("record: sending events failed; retrying", "err", err, "events", len(b),
				"host", dest.Host, "attempt", attempt+1, "retry_in", wait)
		}
		if !sleep(ctx, kick, wait) {
			return
		}
	}
}

// sleep waits out a retry's backoff: d, or until kick is closed (a Flush), or ctx is done
// (false). The caller takes kick (s.kicked()) before it computes d with backoff, which
// reads flushing. Flush sets flushing and then closes the current kick channel, so either
// the backoff already saw flushing (and is at most flushBackoff), or kick is the channel
// Flush closes. Taking kick after the backoff would lose the wake-up of a Flush that falls
// between the two: the retry would sit out its whole backoff (with MaxBackoff of an hour,
// the shutdown flush would time out).
func sleep(ctx context.Context, kick <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-kick:
	case <-t.C:
	}
	return true
}

// sendContext is the context of one send and its ack. When the shipper stops mid-send, the
// send gets grace (Options.StopGrace) to finish, so capture's answer is known and an
// accepted batch is acked: abandoning it would let capture accept a batch the outbox still
// holds, shipped again (a duplicate) at the next start.
func sendContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return sctx, func() {
		stop()
		cancel()
	}
}

// flushBackoff caps retry waits while flushing for shutdown.
const flushBackoff = 500 * time.Millisecond

// backoff is exponential with full jitter, or the server's Retry-After when longer.
func (s *Shipper) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := s.opts.MaxBackoff
	if attempt < 30 {
		d = min(s.opts.MinBackoff<<attempt, s.opts.MaxBackoff)
	}
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = min(retryAfter, s.opts.MaxRetryAfter)
	}
	if s.flushing.Load() {
		d = min(d, flushBackoff)
	}
	return d
}

// ack removes shipped entries from the outbox, retrying while the outbox is unavailable.
// An entry whose ack never lands is shipped again later: a duplicate with the same uuid.
func (s *Shipper) ack(ctx context.Context, b []event.Entry) {
	ids := make([]string, len(b))
	for i := range b {
		ids[i] = b[i].ID
	}
	for attempt := 0; ; attempt++ {
		err := s.outbox.Ack(ctx, ids)
		if err == nil {
			return
		}
		s.m.OutboxErrors.WithLabelValues("ack").Inc()
		s.log.Error("record: ack shipped events in the outbox", "err", err, "events", len(ids))
		if ctx.Err() != nil || attempt >= 20 {
			return
		}
		kick := s.kicked()
		if !sleep(ctx, kick, s.backoff(attempt, 0)) {
			return
		}
	}
}

// Flush ships until every entry appended to the outbox so far has been delivered (or handed
// to another live consumer), or ctx is done. Run must be running.
func (s *Shipper) Flush(ctx context.Context) error {
	s.flushing.Store(true)
	defer s.flushing.Store(false)
	s.wakeRetries()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.Notify()
		s.mu.Lock()
		idle := len(s.inflight) == 0 && !s.reading
		s.mu.Unlock()
		if idle {
			drained, err := s.outbox.Drained(ctx)
			if err == nil && drained {
				s.mu.Lock()
				idle = len(s.inflight) == 0 && !s.reading
				s.mu.Unlock()
				if idle {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
