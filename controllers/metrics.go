/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

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
)

func init() {
	metrics.Registry.MustRegister(compileTotal, objectsGauge, replicasGauge)
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
