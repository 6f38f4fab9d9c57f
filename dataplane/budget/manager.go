package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/posthog/llm-gateway/dataplane/budget/ledger"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
)

// Options configure a Manager. Zero values pick the documented defaults.
type Options struct {
	// Clock defaults to the wall clock. Windows, hold expiry and cooldowns read it, so tests
	// inject a clock.Fake.
	Clock clock.Clock
	// ReservationTTL is how long a hold lives without a refresh (default 60s): a crashed pod's
	// holds are gone at most this long after it died.
	ReservationTTL time.Duration
	// RefreshInterval is how often a pod pushes the expiry of its open calls' holds forward,
	// in one pipelined call (default ReservationTTL/4).
	RefreshInterval time.Duration
	// MaxReservationAge stops refreshing a hold that was never settled (a bug in the caller),
	// so that it expires instead of leaking (default 2h).
	MaxReservationAge time.Duration
	// PollInterval is how often runaway trips are read for teams with open calls, the store is
	// probed while unreachable and queued settlements are replayed (default 1s).
	PollInterval time.Duration
	// StoreTimeout bounds each store call (default DefaultStoreTimeout, 200ms).
	StoreTimeout time.Duration
	// SettleMarkerTTL is how long a settlement marker makes a repeated settle a no-op
	// (default 1h). Queued settlements replayed later than this could count twice.
	SettleMarkerTTL time.Duration
	// MaxPendingSettles caps settlements queued while the store is unreachable (default
	// 100000); the oldest are dropped past it, with a log line and a metric.
	MaxPendingSettles int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the budget metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// PodID names this pod in logs.
	PodID string
}

func (o *Options) defaults() {
	o.Clock = clock.Or(o.Clock)
	if o.ReservationTTL <= 0 {
		o.ReservationTTL = time.Minute
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = o.ReservationTTL / 4
	}
	if o.MaxReservationAge <= 0 {
		o.MaxReservationAge = 2 * time.Hour
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = DefaultStoreTimeout
	}
	if o.SettleMarkerTTL <= 0 {
		o.SettleMarkerTTL = time.Hour
	}
	if o.MaxPendingSettles <= 0 {
		o.MaxPendingSettles = 100_000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// ErrSettleQueued is wrapped by Settle when the store could not be reached: the settlement is
// queued on this pod and replayed, exactly once, when the store is back. Do not retry it.
var ErrSettleQueued = errors.New("budget store unavailable, settlement queued for replay")

// Manager admits and settles calls against team budgets. It is safe for concurrent use.
type Manager struct {
	store Store
	o     Options
	clock clock.Clock
	log   *slog.Logger
	met   *metrics

	mu      sync.Mutex
	open    map[string]*Reservation // holds in the store for calls in flight
	local   map[string]*localTeam   // fail-open allowance use per team
	outage  map[string]bool         // teams already logged during the current outage
	pending []*settleArgs           // settlements to replay

	tripMu sync.RWMutex
	trips  map[string]trip

	ctx       context.Context // canceled by Close: ends background store calls
	cancel    context.CancelFunc
	healthy   atomic.Bool
	probe     chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// NewManager returns a manager over store and starts its background loop (refresh of open
// holds, runaway-trip polling, store probing and replay); Close stops it.
func NewManager(store Store, opts Options) *Manager {
	opts.defaults()
	m := &Manager{
		store: store, o: opts, clock: opts.Clock, met: newMetrics(opts.Registerer),
		log:  opts.Logger.With("component", "budget", "pod", opts.PodID),
		open: map[string]*Reservation{}, local: map[string]*localTeam{}, outage: map[string]bool{},
		trips: map[string]trip{},
		probe: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.healthy.Store(true)
	go m.loop()
	return m
}

// Close stops the background loop and closes the store. Queued settlements that could not
// be replayed are logged.
func (m *Manager) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
		m.replay() // a last chance for settlements queued by a brief outage
		m.cancel()
		m.mu.Lock()
		if n := len(m.pending); n > 0 {
			m.log.Error("budget manager closed with settlements not replayed", "pending", n)
		}
		m.mu.Unlock()
		if e := m.store.Close(); e != nil {
			err = fmt.Errorf("close budget store: %w", e)
		}
	})
	return err
}

// StoreHealthy reports this pod's view of the store (false while it runs on
// onStoreUnavailable). The gateway shows it on /admin/teams.
func (m *Manager) StoreHealthy() bool { return m.healthy.Load() }

// Admit reserves the call's worst-case cost against every spend window of the team and its
// rate-limit capacity, in one store round trip. It rejects with a *LimitError (429) when a
// Hard limit would be exceeded, and with an *UnavailableError (503) when the store cannot be
// reached and the budget is FailClosed. One Admit per RequestID.
func (m *Manager) Admit(ctx context.Context, r Request) (*Reservation, error) {
	start := time.Now()
	defer func() { m.met.admitDuration.Observe(time.Since(start).Seconds()) }()
	b := r.Budget
	if b == nil {
		return nil, fmt.Errorf("admit call of team %s: no budget given", r.Team)
	}
	r.EstimateMicros, r.EstimateTokens = max(r.EstimateMicros, 0), max(r.EstimateTokens, 0)
	now := m.clock.Now()
	lim := ledger.LimitsOf(b)
	hard, soft := lim.Hard, lim.Soft
	if le := m.precheck(r, hard, now); le != nil {
		return nil, m.reject(r.Team, le)
	}
	if r.RequestID == "" {
		r.RequestID = uuid.NewString()
	}
	if !m.healthy.Load() {
		return m.storeDown(r, hard, now, errors.New("store marked unreachable by the last probe"))
	}
	a := m.admitArgs(r, hard, now)
	sctx, cancel := context.WithTimeout(ctx, m.o.StoreTimeout)
	res, err := m.store.admit(sctx, a)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("admit call of team %s: %w", r.Team, ctx.Err())
		}
		m.storeFailed("admit", err)
		return m.storeDown(r, hard, now, err)
	}
	if res.purged > 0 {
		m.met.expiries.WithLabelValues(r.Team).Add(float64(res.purged))
	}
	if res.code != admitOK {
		return nil, m.reject(r.Team, m.storeRejection(r, a, res))
	}
	rv := &Reservation{
		ID: r.RequestID, Team: r.Team, HeldMicros: r.EstimateMicros, HeldTokens: r.EstimateTokens,
		AdmittedAt: now, SoftCrossed: softReached(res.spent, soft), budget: b, minute: a.minute,
	}
	m.mu.Lock()
	m.open[rv.ID] = rv
	m.met.outstandingHold.Set(float64(len(m.open)))
	m.mu.Unlock()
	m.met.admissions.WithLabelValues(r.Team, "admitted").Inc()
	return rv, nil
}

func (m *Manager) admitArgs(r Request, hard [4]int64, now time.Time) *admitArgs {
	minute, el := ledger.MinuteOf(now)
	b := r.Budget
	return &admitArgs{
		team: r.Team, id: r.RequestID, now: now, expiry: now.Add(m.o.ReservationTTL), keyTTL: 2 * m.o.ReservationTTL,
		micros: r.EstimateMicros, tokens: r.EstimateTokens, minute: minute, elapsedMs: el,
		buckets: ledger.BucketsAt(now), hard: hard, rpm: b.RequestsPerMinute, tpm: b.TokensPerMinute, conc: b.MaxConcurrent,
	}
}

func softReached(spent, soft [4]int64) []string {
	var out []string
	for i, w := range ledger.Windows {
		if soft[i] > 0 && spent[i] >= soft[i] {
			out = append(out, SpendLimitName(w))
		}
	}
	return out
}

func (m *Manager) reject(team string, le *LimitError) error {
	m.met.admissions.WithLabelValues(team, "rejected").Inc()
	m.met.rejections.WithLabelValues(team, le.Limit).Inc()
	return le
}

// Settle charges the call's actual cost (what the provider billed or, for a cut stream, what
// was metered) and token count, and releases its hold. It is idempotent: settling the same
// reservation again, from this pod or after a retry elsewhere with the same id, is a no-op. A
// settle whose hold already expired still charges the spend exactly once. Spend is charged to
// the windows current at settlement. When the store is unreachable the settlement is queued and
// replayed later; the returned error then wraps ErrSettleQueued.
func (m *Manager) Settle(ctx context.Context, res *Reservation, actualMicros, actualTokens int64) error {
	if res == nil {
		return nil
	}
	start := time.Now()
	defer func() { m.met.settleDuration.Observe(time.Since(start).Seconds()) }()
	actualMicros, actualTokens = max(actualMicros, 0), max(actualTokens, 0)
	now := m.clock.Now()
	m.mu.Lock()
	if res.settled {
		m.mu.Unlock()
		m.met.settles.WithLabelValues("duplicate").Inc()
		return nil
	}
	res.settled = true
	delete(m.open, res.ID)
	m.met.outstandingHold.Set(float64(len(m.open)))
	if res.FailOpen {
		m.localSettle(res, actualMicros, now)
	}
	m.mu.Unlock()

	minute, el := ledger.MinuteOf(now)
	a := &settleArgs{
		team: res.Team, id: res.ID, now: now, actual: actualMicros, tokenDelta: actualTokens - res.HeldTokens,
		tpmMinute: res.minute, minute: minute, elapsedMs: el, buckets: ledger.BucketsAt(now), runaway: res.budget.Runaway,
		markerTTL: m.o.SettleMarkerTTL,
	}
	a.soft = ledger.LimitsOf(res.budget).Soft
	if !m.healthy.Load() {
		m.enqueue(a)
		return fmt.Errorf("settle reservation %s of team %s: %w", res.ID, res.Team, ErrSettleQueued)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.o.StoreTimeout)
	out, err := m.store.settle(sctx, a)
	cancel()
	if err != nil {
		m.storeFailed("settle", err)
		m.enqueue(a)
		return fmt.Errorf("settle reservation %s of team %s: %w (%w)", res.ID, res.Team, ErrSettleQueued, err)
	}
	m.settled(a, out, res.FailOpen, "charged")
	return nil
}

// settled records the outcome of a settlement that reached the store.
func (m *Manager) settled(a *settleArgs, out settleResult, failOpen bool, result string) {
	if out.duplicate {
		m.met.settles.WithLabelValues("duplicate").Inc()
		return
	}
	if !out.released && !failOpen && result == "charged" {
		result = "expired_hold"
	}
	m.met.settles.WithLabelValues(result).Inc()
	m.met.settled.WithLabelValues(a.team).Add(float64(a.actual))
	for i, crossed := range out.softNew {
		if crossed {
			m.met.softCrossed.WithLabelValues(a.team, ledger.Windows[i]).Inc()
			m.log.Warn("team reached a soft spend limit; calls continue", "team", a.team, "limit", SpendLimitName(ledger.Windows[i]),
				"spent", usd(out.spent[i]), "soft_limit", usd(a.soft[i]), "window", a.buckets[i].ID)
		}
	}
	if out.tripped {
		until := time.UnixMilli(out.tripUntil).UTC()
		m.setTrip(a.team, trip{Until: until, At: a.now, RateMicros: out.rate, ThresholdMicros: a.runaway.SpendPerMinuteMicros})
		m.met.runawayTrips.WithLabelValues(a.team).Inc()
		m.log.Warn("runaway breaker tripped: team suspended", "team", a.team, "spend_last_minute", usd(out.rate),
			"threshold_per_minute", usd(a.runaway.SpendPerMinuteMicros), "until", until)
	}
}

// Suspended reports whether the runaway breaker holds team suspended. It reads a cache that
// the background loop refreshes every PollInterval for teams with open calls, so a trip on
// any pod shows here within about a second; the proxy uses it to end open streams.
func (m *Manager) Suspended(team string) (reason string, until time.Time, ok bool) {
	t, ok := m.activeTrip(team, m.clock.Now())
	if !ok {
		return "", time.Time{}, false
	}
	return runawayMessage(team, t), t.Until, true
}

// activeTrip returns the team's runaway trip known to this pod, if it holds at now.
func (m *Manager) activeTrip(team string, now time.Time) (trip, bool) {
	m.tripMu.RLock()
	t, ok := m.trips[team]
	m.tripMu.RUnlock()
	return t, ok && t.Until.After(now)
}

func (m *Manager) setTrip(team string, t trip) {
	m.tripMu.Lock()
	m.trips[team] = t
	m.tripMu.Unlock()
}

// TeamState reads the team's counters for the admin API.
func (m *Manager) TeamState(ctx context.Context, team string, b *snapshot.Budget) (State, error) {
	if b == nil {
		return State{}, fmt.Errorf("read budget state of team %s: no budget given", team)
	}
	now := m.clock.Now()
	st := State{Team: team, Source: b.Source, Suspended: b.Suspended, StoreHealthy: m.healthy.Load()}
	m.mu.Lock()
	st.PendingSettles = len(m.pending)
	m.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, m.o.StoreTimeout)
	c, err := m.store.state(sctx, team, now)
	cancel()
	if err != nil {
		m.storeFailed("state", err)
		return st, fmt.Errorf("read budget state of team %s: %w", team, err)
	}
	lim := ledger.LimitsOf(b)
	buckets := ledger.BucketsAt(now)
	st.ReservedMicros, st.InFlight = max(c.HeldMicros, 0), c.InFlight
	st.RequestsLastMinute, st.TokensLastMinute, st.SpendLastMinuteMicros = c.RequestsLastMinute, c.TokensLastMinute, c.SpendLastMinuteMicros
	if c.RunawayTripped(now) {
		st.RunawayUntil = c.LastTrip.Until
	}
	for i, w := range ledger.Windows {
		ws := WindowState{Window: w, Bucket: buckets[i].ID, SpentMicros: c.Spent[i], ResetAt: buckets[i].End,
			HardLimitMicros: lim.Hard[i], SoftLimitMicros: lim.Soft[i], RemainingMicros: -1}
		if lim.Hard[i] > 0 {
			ws.RemainingMicros = ledger.Remaining(lim.Hard[i], c.Spent[i], st.ReservedMicros)
		}
		st.Windows = append(st.Windows, ws)
	}
	st.Phase = ledger.Phase(b.Suspended, c.RunawayTripped(now), c.Spent, lim)
	return st, nil
}
