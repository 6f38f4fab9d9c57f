package server

import (
	"fmt"
	"net/http"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/posthog/llm-gateway/dataplane/auth"
	"github.com/posthog/llm-gateway/dataplane/catalog"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/rollout"
	"github.com/posthog/llm-gateway/dataplane/route"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// backendRT is the runtime of one backend: its adapter, its own connection pool and its
// circuit breaker. It is carried over to the next runtime when the backend is unchanged.
type backendRT struct {
	b         *snapshot.Backend
	adapter   provider.Adapter
	transport http.RoundTripper
	breaker   *Breaker
	inFlight  atomic.Int64

	connect, firstByte, idle time.Duration
}

// target is one backend of a route with its priority and weight.
type target struct {
	be       *backendRT
	priority int
	weight   int
}

// Runtime is everything a snapshot turns into, built off the hot path and swapped in
// atomically. Requests keep the runtime they started with.
type Runtime struct {
	Snapshot *snapshot.Snapshot
	catalog  *catalog.Catalog
	routes   *route.Table
	auth     *auth.Index
	legacy   *rollout.Legacy
	backends map[string]*backendRT
	targets  map[string][]target // by route name
	weighted map[string]bool     // routes with a priority group of several targets
	models   []byte              // GET /v1/models body
	builtAt  time.Time
}

func msOr(ms int64, def time.Duration) time.Duration {
	if ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return def
}

// buildRuntime turns s into a runtime. Backends equal to one of prev are carried over with
// their connection pool and breaker. It returns the backends of prev that are not carried
// over, whose idle connections the caller closes after the swap.
func (g *Gateway) buildRuntime(s *snapshot.Snapshot, prev *Runtime) (*Runtime, []*backendRT, error) {
	rt := &Runtime{
		Snapshot: s,
		auth:     auth.New(s),
		backends: make(map[string]*backendRT, len(s.Backends)),
		targets:  make(map[string][]target, len(s.Routes)),
		weighted: map[string]bool{},
		builtAt:  g.now(),
	}
	rt.catalog = g.catalog.WithOverrides(s.Backends)
	rt.routes = route.New(s, rt.catalog)
	var err error
	rt.legacy, err = rollout.NewLegacy(s, g.legacyTransport, g.writeLegacyError)
	if err != nil {
		return nil, nil, fmt.Errorf("build legacy proxies: %w", err)
	}
	for i := range s.Backends {
		b := &s.Backends[i]
		if prev != nil {
			if old, ok := prev.backends[b.Name]; ok && reflect.DeepEqual(old.b, b) {
				rt.backends[b.Name] = old
				continue
			}
		}
		be, err := g.newBackend(b)
		if err != nil {
			return nil, nil, fmt.Errorf("backend %s: %w", b.Name, err)
		}
		rt.backends[b.Name] = be
	}
	for i := range s.Routes {
		r := &s.Routes[i]
		ts := make([]target, 0, len(r.Backends))
		for _, rb := range r.Backends {
			be, ok := rt.backends[rb.Backend]
			if !ok {
				return nil, nil, fmt.Errorf("route %s: backend %s does not exist", r.Name, rb.Backend)
			}
			if n := len(ts); n > 0 && ts[n-1].priority == rb.Priority {
				rt.weighted[r.Name] = true
			}
			ts = append(ts, target{be: be, priority: rb.Priority, weight: rb.Weight})
		}
		rt.targets[r.Name] = ts
	}
	rt.models, err = g.modelsBody(rt)
	if err != nil {
		return nil, nil, fmt.Errorf("build model list: %w", err)
	}
	var retired []*backendRT
	if prev != nil {
		for name, old := range prev.backends {
			if rt.backends[name] != old {
				retired = append(retired, old)
			}
		}
	}
	return rt, retired, nil
}

func (g *Gateway) newBackend(b *snapshot.Backend) (*backendRT, error) {
	adapter, err := g.opts.NewAdapter(b)
	if err != nil {
		return nil, fmt.Errorf("build adapter: %w", err)
	}
	be := &backendRT{
		b:         b,
		adapter:   adapter,
		connect:   msOr(b.Timeouts.ConnectMs, snapshot.DefaultConnectTimeout),
		firstByte: msOr(b.Timeouts.FirstByteMs, snapshot.DefaultFirstByteTimeout),
		idle:      msOr(b.Timeouts.IdleMs, snapshot.DefaultIdleTimeout),
	}
	if g.opts.UpstreamTransport != nil {
		be.transport = g.opts.UpstreamTransport
	} else {
		be.transport = newUpstreamTransport(be.connect, nil)
	}
	name := b.Name
	be.breaker = NewBreaker(b.CircuitBreaker, g.clock, func(state int) {
		g.metrics.CircuitState.WithLabelValues(name).Set(float64(state))
	})
	g.metrics.CircuitState.WithLabelValues(name).Set(0)
	return be, nil
}

func (be *backendRT) closeIdle() {
	if t, ok := be.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}
