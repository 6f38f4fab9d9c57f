package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/posthog/llm-gateway/dataplane/record/event"
	"github.com/posthog/llm-gateway/dataplane/record/internal/ratelog"
	"github.com/posthog/llm-gateway/dataplane/record/outbox"
	"github.com/posthog/llm-gateway/dataplane/record/ship"
)

// Options assemble a Recorder from its parts (Open builds them from a Config).
type Options struct {
	// Outbox is required.
	Outbox outbox.Outbox
	// Remote delivers to capture hosts; Local to the JSONL events file (events whose
	// destination has no host or no API key). Local is required; Remote may be nil when no
	// capture endpoint is configured anywhere (every event then goes to Local).
	Remote ship.Transport
	Local  ship.Transport
	// DefaultDestination is the gateway's --capture-endpoint / --capture-api-key, used for
	// teams without their own.
	DefaultDestination event.Destination
	// MaxEventBytes bounds a serialized event (default event.DefaultMaxBytes).
	MaxEventBytes int
	// MemoryQueue bounds the calls held in memory while the outbox is unavailable
	// (default 10000); beyond it events are dropped and counted.
	MemoryQueue int
	// AppendTimeout bounds one outbox append on the request path (default 250ms); a slower
	// or failed append sends this and later calls to the memory queue until the outbox
	// recovers.
	AppendTimeout time.Duration
	// StatsInterval is how often the outbox fill level is sampled (default 1s).
	StatsInterval time.Duration
	Shipper       ship.Options
	// LibVersion is sent as $lib_version.
	LibVersion string
	Logger     *slog.Logger
	// Registerer receives the pipeline's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Recorder records calls as $ai_generation events. It is safe for concurrent use.
type Recorder struct {
	b       event.Builder
	outbox  outbox.Outbox
	shipper *ship.Shipper
	log     *slog.Logger
	m       *metrics
	opts    Options

	degraded atomic.Bool
	queue    chan []event.Entry
	// pending counts calls queued in memory or being moved from the queue to the outbox.
	pending atomic.Int64
	queueMu sync.RWMutex // guards queue against sends after close
	closed  bool

	cancel    context.CancelFunc
	stopping  <-chan struct{} // closed when Close tells the shipper to stop
	shipDone  chan struct{}
	drainDone chan struct{}
	statsDone chan struct{}
	stopOnce  sync.Once

	dropLog  ratelog.Limiter
	warnFull atomic.Bool
	closers  []func() error
}

var _ CallRecorder = (*Recorder)(nil)

// New starts a Recorder: its shipper, the memory-queue drainer and the outbox monitor.
func New(opts Options) (*Recorder, error) {
	if opts.Outbox == nil {
		return nil, errors.New("record: an outbox is required")
	}
	if opts.Local == nil {
		return nil, errors.New("record: a local events transport is required")
	}
	if opts.MaxEventBytes <= 0 {
		opts.MaxEventBytes = event.DefaultMaxBytes
	}
	if opts.MemoryQueue <= 0 {
		opts.MemoryQueue = 10000
	}
	if opts.AppendTimeout <= 0 {
		opts.AppendTimeout = 250 * time.Millisecond
	}
	if opts.StatsInterval <= 0 {
		opts.StatsInterval = time.Second
	}
	if opts.LibVersion == "" {
		opts.LibVersion = "dev"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Shipper.Logger == nil {
		opts.Shipper.Logger = opts.Logger
	}
	m := newMetrics(opts.Registerer)
	r := &Recorder{
		b: event.Builder{
			MaxEventBytes:      opts.MaxEventBytes,
			DefaultDestination: opts.DefaultDestination,
			LibVersion:         opts.LibVersion,
		},
		outbox:    opts.Outbox,
		shipper:   ship.New(opts.Outbox, opts.Remote, opts.Local, opts.Shipper, m.ship),
		log:       opts.Logger,
		m:         m,
		opts:      opts,
		queue:     make(chan []event.Entry, opts.MemoryQueue),
		shipDone:  make(chan struct{}),
		drainDone: make(chan struct{}),
		statsDone: make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.stopping = cancel, ctx.Done()
	go func() { defer close(r.shipDone); r.shipper.Run(ctx) }()
	go func() { defer close(r.drainDone); r.drain(ctx) }()
	go func() { defer close(r.statsDone); r.monitor(ctx) }()
	return r, nil
}

// Record builds the call's events and appends them to the outbox. It never waits on
// capture; it waits at most AppendTimeout on the outbox, and not at all while the outbox is
// known to be unavailable (the events then wait in a bounded memory queue).
func (r *Recorder) Record(c *Call) {
	entries := r.b.Build(c)
	if !r.degraded.Load() {
		err := r.append(entries)
		switch {
		case err == nil:
			r.m.events.WithLabelValues("outboxed").Add(float64(len(entries)))
			r.shipper.Notify()
			return
		case errors.Is(err, outbox.ErrFull):
			r.dropFull(len(entries))
			return
		}
		r.m.ship.OutboxErrors.WithLabelValues("append").Inc()
		if !r.degraded.Swap(true) {
			r.log.Error("record: outbox append failed; holding events in memory until it recovers", "err", err)
		}
	}
	r.enqueue(entries)
}

func (r *Recorder) append(entries []event.Entry) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.AppendTimeout)
	defer cancel()
	return r.outbox.Append(ctx, entries)
}

func (r *Recorder) enqueue(entries []event.Entry) {
	r.queueMu.RLock()
	defer r.queueMu.RUnlock()
	if r.closed {
		// After Close: append directly, best effort.
		if err := r.append(entries); err != nil {
			r.drop("dropped_queue_full", len(entries), err)
		}
		return
	}
	r.pending.Add(1)
	select {
	case r.queue <- entries:
		r.m.events.WithLabelValues("queued").Add(float64(len(entries)))
		r.m.queueLen.Set(float64(len(r.queue)))
	default:
		r.pending.Add(-1)
		r.drop("dropped_queue_full", len(entries), errors.New("memory queue full"))
	}
}

func (r *Recorder) dropFull(n int) {
	r.drop("dropped_outbox_full", n, outbox.ErrFull)
}

func (r *Recorder) drop(outcome string, n int, err error) {
	r.m.events.WithLabelValues(outcome).Add(float64(n))
	if r.dropLog.Allow(10 * time.Second) {
		r.log.Error("record: dropping events: the outbox cannot take them", "outcome", outcome, "events", n, "err", err)
	}
}

// drain moves queued events into the outbox, retrying with backoff while it is unavailable.
func (r *Recorder) drain(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case entries := <-r.queue:
			if r.drainOne(ctx, entries) {
				r.pending.Add(-1)
			} else {
				r.requeue(entries)
			}
		}
	}
}

// requeue puts back a call whose append was interrupted by shutdown.
func (r *Recorder) requeue(entries []event.Entry) {
	select {
	case r.queue <- entries:
	default:
		r.pending.Add(-1)
		r.drop("dropped_queue_full", len(entries), errors.New("memory queue full"))
	}
}

// drainOne appends one queued call's events, retrying until it works, the outbox is full or
// ctx is done.
func (r *Recorder) drainOne(ctx context.Context, entries []event.Entry) bool {
	wait := 50 * time.Millisecond
	for {
		err := r.append(entries)
		if err == nil {
			r.m.events.WithLabelValues("outboxed").Add(float64(len(entries)))
			r.m.queueLen.Set(float64(len(r.queue)))
			r.shipper.Notify()
			if len(r.queue) == 0 && r.degraded.Swap(false) {
				r.log.Info("record: outbox available again")
			}
			return true
		}
		if errors.Is(err, outbox.ErrFull) {
			r.dropFull(len(entries))
			return true
		}
		r.m.ship.OutboxErrors.WithLabelValues("append").Inc()
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// monitor samples the outbox fill level: gauges, and a warning at 80% of the limit (events
// are dropped at 100%).
func (r *Recorder) monitor(ctx context.Context) {
	t := time.NewTicker(r.opts.StatsInterval)
	defer t.Stop()
	for {
		r.sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Recorder) sample(ctx context.Context) {
	st, err := r.outbox.Stats(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.m.ship.OutboxErrors.WithLabelValues("stats").Inc()
		}
		return
	}
	r.m.outboxUsed.Set(float64(st.Used))
	r.m.outboxLimit.Set(float64(st.Limit))
	r.m.outboxFill.Set(st.Fill())
	r.m.outboxEntry.Set(float64(st.Entries))
	switch fill := st.Fill(); {
	case fill >= 0.8 && !r.warnFull.Load():
		r.warnFull.Store(true)
		r.log.Error("record: event outbox above 80% of its limit; events will be dropped at the limit",
			"used", st.Used, "limit", st.Limit, "unit", st.Unit, "entries", st.Entries)
	case fill < 0.7 && r.warnFull.Load():
		r.warnFull.Store(false)
		r.log.Info("record: event outbox back below 70% of its limit", "used", st.Used, "limit", st.Limit, "unit", st.Unit)
	}
}

// Flush ships everything recorded so far (memory queue included) or returns ctx's error.
func (r *Recorder) Flush(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for r.pending.Load() > 0 {
		select {
		case entries := <-r.queue:
			if !r.drainOne(ctx, entries) {
				r.requeue(entries)
				return fmt.Errorf("flush events: %w", ctx.Err())
			}
			r.pending.Add(-1)
		case <-ctx.Done():
			return fmt.Errorf("flush events: %w", ctx.Err())
		case <-t.C: // the drainer holds the last ones
		}
	}
	if err := r.shipper.Flush(ctx); err != nil {
		return fmt.Errorf("flush events: %w", err)
	}
	return nil
}

// Close flushes within ctx (the drain timeout), stops the background work and closes the
// outbox. Events not shipped by then stay in the outbox. Record may still be called after
// Close (it appends directly, best effort).
func (r *Recorder) Close(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		r.queueMu.Lock()
		r.closed = true
		r.queueMu.Unlock()
		err = r.Flush(ctx)
		if err != nil {
			st, _ := r.outbox.Stats(context.Background())
			r.log.Warn("record: shutdown before every event was shipped; they stay in the outbox",
				"err", err, "entries", st.Entries, "queued", len(r.queue))
		}
		r.cancel()
		<-r.shipDone
		<-r.drainDone
		<-r.statsDone
		// Queued calls not in the outbox yet: one last try each.
		for {
			select {
			case entries := <-r.queue:
				r.pending.Add(-1)
				if aerr := r.append(entries); aerr != nil {
					r.drop("dropped_queue_full", len(entries), aerr)
				}
				continue
			default:
			}
			break
		}
		if cerr := r.outbox.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close outbox: %w", cerr))
		}
		for _, c := range r.closers {
			if cerr := c(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	})
	return err
}
