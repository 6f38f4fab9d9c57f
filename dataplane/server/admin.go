package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// TeamStateFunc reports a team's budget state for /admin/teams (dataplane/budget).
type TeamStateFunc func(ctx context.Context, team string, b *snapshot.Budget) (any, error)

// AdminHandler serves the admin API: /healthz, /readyz, /metrics, /admin/snapshot,
// /admin/streams, /admin/backends, /admin/teams.
func (g *Gateway) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case g.draining.Load():
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		case g.rt.Load() == nil:
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "no snapshot applied yet"})
		default:
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "version": g.Version()})
		}
	})
	mux.Handle("GET /metrics", g.metrics.Handler())
	mux.HandleFunc("GET /admin/snapshot", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, g.Status())
	})
	mux.HandleFunc("GET /admin/streams", func(w http.ResponseWriter, r *http.Request) {
		counts := g.streams.Counts()
		total := 0
		for _, n := range counts {
			total += n
		}
		writeJSON(w, http.StatusOK, map[string]any{"total": total, "teams": counts})
	})
	mux.HandleFunc("GET /admin/backends", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, g.backendStates())
	})
	mux.HandleFunc("GET /admin/teams", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, g.teamStates(r.Context()))
	})
	return mux
}

// BackendState is one backend on /admin/backends.
type BackendState struct {
	Name          string       `json:"name"`
	Provider      string       `json:"provider"`
	Endpoint      string       `json:"endpoint"`
	InFlight      int64        `json:"inFlight"`
	MaxConcurrent int          `json:"maxConcurrent,omitempty"`
	Circuit       BreakerState `json:"circuit"`
}

func (g *Gateway) backendStates() []BackendState {
	rt := g.rt.Load()
	out := []BackendState{}
	if rt == nil {
		return out
	}
	for _, be := range rt.backends {
		out = append(out, BackendState{Name: be.b.Name, Provider: string(be.b.Provider), Endpoint: be.b.Endpoint,
			InFlight: be.inFlight.Load(), MaxConcurrent: be.b.MaxConcurrent, Circuit: be.breaker.State()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TeamState is one team on /admin/teams.
type TeamState struct {
	Name        string   `json:"name"`
	Stage       string   `json:"stage"`
	Canary      int      `json:"canaryPercent,omitempty"`
	Products    []string `json:"products,omitempty"`
	BudgetFrom  string   `json:"budgetSource"`
	Suspended   bool     `json:"suspended,omitempty"`
	OpenStreams int      `json:"openStreams"`
	Budget      any      `json:"budget,omitempty"`
	BudgetError string   `json:"budgetError,omitempty"`
}

func (g *Gateway) teamStates(ctx context.Context) []TeamState {
	rt := g.rt.Load()
	out := []TeamState{}
	if rt == nil {
		return out
	}
	counts := g.streams.Counts()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for i := range rt.Snapshot.Teams {
		t := &rt.Snapshot.Teams[i]
		b := rt.Snapshot.EffectiveBudget(t)
		ts := TeamState{Name: t.Name, Stage: t.Rollout.Stage, Canary: t.Rollout.CanaryPercent, Products: t.Products,
			BudgetFrom: b.Source, Suspended: b.Suspended, OpenStreams: counts[t.Name]}
		if g.opts.TeamState != nil {
			st, err := g.opts.TeamState(ctx, t.Name, b)
			if err != nil {
				ts.BudgetError = err.Error()
			} else {
				ts.Budget = st
			}
		}
		out = append(out, ts)
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
