// Package server is the gateway pod's composition root: the HTTP server and its request path
// (ingress, auth, model resolution, budget admission, the attempt loop with failover, the
// relay, cost, settlement and recording), the snapshot runtime and its atomic swap, the stream
// registry used by drain and the kill switch, and the admin API.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posthog/llm-gateway/dataplane/catalog"
	"github.com/posthog/llm-gateway/dataplane/metrics"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/record"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
)

// DefaultMaxBodyBytes bounds request bodies when the route sets no limit (Anthropic's own
// limit is 32 MB).
const DefaultMaxBodyBytes = 32 << 20

// Options configure a Gateway. NewAdapter is required.
type Options struct {
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Clock is the clock of breakers and timestamps; the wall clock when nil.
	Clock clock.Clock
	// NewAdapter builds the wire adapter of a backend (dataplane/provider/adapters.New).
	NewAdapter func(b *snapshot.Backend) (provider.Adapter, error)
	// Catalog is the price catalog before per-backend overrides; catalog.Default() when nil.
	Catalog *catalog.Catalog
	// Budget admits and settles calls when set (dataplane/budget).
	Budget Budget
	// Recorder receives every call when set (dataplane/record).
	Recorder record.CallRecorder
	// MaxBodyBytes bounds request bodies read before the route is known; DefaultMaxBodyBytes when 0.
	MaxBodyBytes int64
	// MaxInflightBodyBytes bounds the request-body bytes held across the pod by calls in
	// progress; a body that does not fit is refused with 503 before it is read.
	// DefaultMaxInflightBodyBytes when 0; never below MaxBodyBytes.
	MaxInflightBodyBytes int64
	// BodyReadTimeout bounds the time a client may take to send its request body (the
	// client gets a 408 and the connection is closed); DefaultBodyReadTimeout when 0.
	BodyReadTimeout time.Duration
	// TeamState reports a team's budget state on /admin/teams when set.
	TeamState TeamStateFunc
	// UpstreamTransport, when set, carries every backend's traffic instead of a connection
	// pool per backend (tests and benchmarks).
	UpstreamTransport http.RoundTripper
	// LegacyTransport carries legacy passthrough traffic; a default transport when nil.
	LegacyTransport http.RoundTripper
}

// SnapshotStatus is what /admin/snapshot shows.
type SnapshotStatus struct {
	Version   string    `json:"version"`
	AppliedAt time.Time `json:"appliedAt,omitzero"`
	Source    string    `json:"source,omitempty"`
	// LastRejected* describe the last snapshot that failed to decode, validate or build.
	LastRejectedVersion string    `json:"lastRejectedVersion,omitempty"`
	LastRejectedError   string    `json:"lastRejectedError,omitempty"`
	LastRejectedAt      time.Time `json:"lastRejectedAt,omitzero"`
	LastRejectedSource  string    `json:"lastRejectedSource,omitempty"`
}

// Gateway is one pod's data plane.
type Gateway struct {
	opts            Options
	log             *slog.Logger
	metrics         *metrics.Metrics
	clock           clock.Clock
	legacyTransport http.RoundTripper
	maxBody         int64
	bodyReadTimeout time.Duration
	bodies          *bodyPool
	catalog         *catalog.Catalog

	rt       atomic.Pointer[Runtime]
	streams  *StreamRegistry
	draining atomic.Bool

	applyMu  sync.Mutex // serializes Apply
	statusMu sync.Mutex
	status   SnapshotStatus
}

// New returns a Gateway that serves nothing until a snapshot is applied.
func New(opts Options) (*Gateway, error) {
	if opts.NewAdapter == nil {
		return nil, errors.New("server: NewAdapter is required")
	}
	g := &Gateway{opts: opts, log: opts.Logger, metrics: opts.Metrics, clock: clock.Or(opts.Clock),
		legacyTransport: opts.LegacyTransport, maxBody: opts.MaxBodyBytes}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.metrics == nil {
		g.metrics = metrics.New()
	}
	if g.catalog = opts.Catalog; g.catalog == nil {
		g.catalog = catalog.Default()
	}
	if g.maxBody <= 0 {
		g.maxBody = DefaultMaxBodyBytes
	}
	if g.bodyReadTimeout = opts.BodyReadTimeout; g.bodyReadTimeout <= 0 {
		g.bodyReadTimeout = DefaultBodyReadTimeout
	}
	inflight := opts.MaxInflightBodyBytes
	if inflight <= 0 {
		inflight = DefaultMaxInflightBodyBytes
	}
	g.bodies = newBodyPool(max(inflight, g.maxBody), g.metrics.BodyBytesInFlight, g.metrics.BodyBytesLimit)
	if g.legacyTransport == nil {
		g.legacyTransport = http.DefaultTransport.(*http.Transport).Clone()
	}
	g.streams = NewStreamRegistry(func(team string, n int) {
		g.metrics.OpenStreams.WithLabelValues(team).Set(float64(n))
	})
	return g, nil
}

// now reads the gateway's clock.
func (g *Gateway) now() time.Time { return g.clock.Now() }

// Metrics returns the gateway's metrics (and registry).
func (g *Gateway) Metrics() *metrics.Metrics { return g.metrics }

// Streams returns the registry of open streams.
func (g *Gateway) Streams() *StreamRegistry { return g.streams }

// Runtime returns the runtime being served, nil before the first snapshot.
func (g *Gateway) Runtime() *Runtime { return g.rt.Load() }

// Version returns the snapshot version being served, "" before the first one.
func (g *Gateway) Version() string {
	if rt := g.rt.Load(); rt != nil {
		return rt.Snapshot.Version
	}
	return ""
}

// Ready reports whether the pod should receive traffic: a snapshot is applied and the pod is
// not draining.
func (g *Gateway) Ready() bool { return g.rt.Load() != nil && !g.draining.Load() }

// Apply validates s, builds its runtime off the hot path and swaps it in. In-flight requests
// finish on the runtime they started with. On error the previous runtime keeps serving and
// the rejection is recorded (see Reject).
func (g *Gateway) Apply(s *snapshot.Snapshot, source string) error {
	g.applyMu.Lock()
	defer g.applyMu.Unlock()
	if err := s.Validate(); err != nil {
		g.Reject(s.Version, source, err)
		return fmt.Errorf("validate snapshot %s: %w", s.Version, err)
	}
	prev := g.rt.Load()
	if prev != nil && prev.Snapshot.Version == s.Version {
		return nil
	}
	rt, retired, err := g.buildRuntime(s, prev)
	if err != nil {
		g.Reject(s.Version, source, err)
		return fmt.Errorf("build runtime for snapshot %s: %w", s.Version, err)
	}
	g.rt.Store(rt)
	for _, be := range retired {
		be.closeIdle()
		if _, still := rt.backends[be.b.Name]; !still {
			g.metrics.CircuitState.DeleteLabelValues(be.b.Name)
			g.metrics.BackendInFlight.DeleteLabelValues(be.b.Name)
		}
	}
	g.statusMu.Lock()
	g.status.Version, g.status.AppliedAt, g.status.Source = s.Version, g.now(), source
	g.statusMu.Unlock()
	g.metrics.SnapshotApplied.Inc()
	g.metrics.SetSnapshotVersion(s.Version)
	g.log.Info("snapshot applied", "version", s.Version, "source", source, "routes", len(s.Routes),
		"backends", len(s.Backends), "teams", len(s.Teams))
	g.killSuspendedStreams(rt)
	return nil
}

// CloseIdleConnections closes the idle upstream connections of every backend.
func (g *Gateway) CloseIdleConnections() {
	if rt := g.rt.Load(); rt != nil {
		for _, be := range rt.backends {
			be.closeIdle()
		}
	}
}

// Reject records a snapshot that could not be decoded, validated or built.
func (g *Gateway) Reject(version, source string, err error) {
	g.statusMu.Lock()
	g.status.LastRejectedVersion, g.status.LastRejectedError = version, err.Error()
	g.status.LastRejectedAt, g.status.LastRejectedSource = g.now(), source
	g.statusMu.Unlock()
	g.metrics.SnapshotRejected.Inc()
	g.log.Error("snapshot rejected; keeping the last-known-good one", "version", version, "source", source,
		"serving", g.Version(), "error", err)
}

// Status returns the snapshot status for /admin/snapshot.
func (g *Gateway) Status() SnapshotStatus {
	g.statusMu.Lock()
	defer g.statusMu.Unlock()
	return g.status
}

// killSuspendedStreams ends the open streams of teams whose budget is now suspended.
func (g *Gateway) killSuspendedStreams(rt *Runtime) {
	for _, team := range g.streams.Teams() {
		t, ok := rt.auth.Team(team)
		if !ok || !rt.Snapshot.EffectiveBudget(t).Suspended {
			continue
		}
		if n := g.streams.KillTeam(team, ErrSuspended); n > 0 {
			g.metrics.StreamsKilled.WithLabelValues("suspended").Add(float64(n))
			g.log.Warn("ended open streams of a suspended team", "team", team, "streams", n)
		}
	}
}

// SetDraining turns readiness false; the pod still serves what reaches it.
func (g *Gateway) SetDraining() { g.draining.Store(true) }

// Drain stops the pod gracefully: readiness goes false, open streams may run to completion
// until ctx ends, then the remaining ones get a terminal error event. It returns when every
// stream has ended (or after a short grace once they were told to).
func (g *Gateway) Drain(ctx context.Context) {
	g.draining.Store(true)
	if err := g.streams.Wait(ctx); err == nil {
		return
	}
	n := g.streams.KillAll(ErrDraining)
	g.metrics.StreamsKilled.WithLabelValues("drain").Add(float64(n))
	g.log.Warn("drain timeout: ended open streams", "streams", n)
	grace, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.streams.Wait(grace)
}

// Draining reports whether Drain has started.
func (g *Gateway) Draining() bool { return g.draining.Load() }

var (
	reqIDPrefix  = newRequestIDPrefix()
	reqIDCounter atomic.Uint64
)

func newRequestIDPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:]) + "_"
}

// newRequestID returns a process-unique id with a random per-process prefix.
func newRequestID() string {
	return reqIDPrefix + strconv.FormatUint(reqIDCounter.Add(1), 36)
}
