/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
)

var (
	compileTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "llm_gateway_operator_compiles_total",
		Help: "Whole-world compiles, by result (ok: a valid snapshot; error: the snapshot failed to seal).",
	}, []string{"result"})
	objectsGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "llm_gateway_operator_objects",
		Help: "Objects in the last compile, by kind and state (included, degraded: included with a False condition, excluded).",
	}, []string{"kind", "state"})
	replicasGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "llm_gateway_operator_gateway_replicas",
		Help: "Gateway pods polling this operator replica, by whether they serve the newest snapshot (current, stale).",
	}, []string{"state"})
	budgetPhaseGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "llm_gateway_operator_budget_phase",
		Help: "1 for the phase of each team's TeamBudget (status.phase), 0 for the other phases; all 0 while the phase is unknown.",
	}, []string{"team", "phase"})
	budgetStoreReadErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "llm_gateway_operator_budget_store_read_errors_total",
		Help: "Failed reads of a team's budget counters in the gateway's Redis.",
	})
	snapshotCertExpiry = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "llm_gateway_operator_snapshot_certificate_expiry_timestamp_seconds",
		Help: "When the snapshot server's TLS certificate expires (Unix seconds); it is renewed 30 days ahead.",
	})
	budgetStoreUp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "llm_gateway_operator_budget_store_up",
		Help: "1 when the operator's last read of budget counters in the gateway's Redis succeeded, 0 when it failed.",
	})
)

func init() {
	metrics.Registry.MustRegister(compileTotal, objectsGauge, replicasGauge, budgetPhaseGauge, budgetStoreReadErrors, budgetStoreUp, snapshotCertExpiry)
}

// recordStoreRead counts a read of budget counters.
func recordStoreRead(err error) {
	if err != nil {
		budgetStoreReadErrors.Inc()
		budgetStoreUp.Set(0)
		return
	}
	budgetStoreUp.Set(1)
}

var allPhases = []v1alpha1.BudgetPhase{v1alpha1.PhaseActive, v1alpha1.PhaseSoftLimitReached, v1alpha1.PhaseExhausted,
	v1alpha1.PhaseRunawayTripped, v1alpha1.PhaseSuspended}

// phaseMetric keeps llm_gateway_operator_budget_phase: one series per phase for the team of
// each TeamBudget in the snapshot, removed when the budget leaves it.
type phaseMetric struct {
	mu    sync.Mutex
	teams map[types.NamespacedName]string // the team whose series each budget set
}

var budgetPhases = &phaseMetric{teams: map[types.NamespacedName]string{}}

// set records the phase of budget key, the budget of team ("" for a cluster default: no series).
func (p *phaseMetric) set(key types.NamespacedName, team string, phase v1alpha1.BudgetPhase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.teams[key]; ok && old != team {
		p.forget(key)
	}
	if team == "" {
		return
	}
	p.teams[key] = team
	for _, ph := range allPhases {
		v := 0.0
		if ph == phase {
			v = 1
		}
		budgetPhaseGauge.WithLabelValues(team, string(ph)).Set(v)
	}
}

// drop removes the series of budget key (deleted, or out of the snapshot).
func (p *phaseMetric) drop(key types.NamespacedName) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forget(key)
}

// forget removes budget key and its team's series, unless another budget (one that replaced
// it) now sets them.
func (p *phaseMetric) forget(key types.NamespacedName) {
	team, ok := p.teams[key]
	if !ok {
		return
	}
	delete(p.teams, key)
	for _, t := range p.teams {
		if t == team {
			return
		}
	}
	budgetPhaseGauge.DeletePartialMatch(prometheus.Labels{"team": team})
}

func recordObjects(out *compile.Output) {
	objectsGauge.Reset()
	for _, k := range []compile.Kind{compile.KindLLMRoute, compile.KindProviderBackend, compile.KindTeamBudget, compile.KindTeamRollout} {
		for _, s := range []string{"included", "degraded", "excluded"} {
			objectsGauge.WithLabelValues(string(k), s)
		}
	}
	for _, r := range out.Results {
		state := "excluded"
		switch {
		case r.Included && len(r.Problems()) > 0:
			state = "degraded"
		case r.Included:
			state = "included"
		}
		objectsGauge.WithLabelValues(string(r.Key.Kind), state).Inc()
	}
}
