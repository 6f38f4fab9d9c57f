/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package operator

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/posthog/llm-gateway/api/v1alpha1"
)

// TestLLMRouteCatalogCoverage: an LLMRoute in the snapshot has CatalogCoverage, False with
// reason UnpricedModels (and a Warning event) while a model it serves by name has no catalog
// price at one of its backends, True again (and a Normal event) once pricing overrides cover it.
// The route is served throughout.
func TestLLMRouteCatalogCoverage(t *testing.T) {
	requireEnvtest(t)
	t.Parallel()
	ns := namespace(t)
	anthropic := backend(ns, "anthropic", v1alpha1.ProviderAnthropic, "keys")
	bedrock := backend(ns, "bedrock", v1alpha1.ProviderBedrock, "keys")
	create(t, secret(ns, "keys", map[string]string{"apiKey": "sk-coverage", "awsAccessKeyId": "AKIACOVERAGE", "awsSecretAccessKey": "secret"}),
		anthropic, bedrock)
	r := route(ns, "coverage", v1alpha1.ShapeAnthropic, []string{"claude-3-7-sonnet-20250219"}, "anthropic", "bedrock")
	create(t, r)
	c := waitCondition(t, r, v1alpha1.ConditionCatalogCoverage, metav1.ConditionTrue, v1alpha1.ReasonModelsPriced)
	require.Equal(t, r.Generation, c.ObservedGeneration)

	// A model the catalog does not know, served by name through an alias.
	update(t, r, func() {
		r.Spec.Models.Aliases = []v1alpha1.ModelAlias{{Name: "coverage-house", Model: "claude-coverage-envtest"}}
	})
	c = waitCondition(t, r, v1alpha1.ConditionCatalogCoverage, metav1.ConditionFalse, v1alpha1.ReasonUnpricedModels)
	require.Contains(t, c.Message, "claude-coverage-envtest at "+ns+"/anthropic, "+ns+"/bedrock")
	note := waitEvent(t, r, corev1.EventTypeWarning, v1alpha1.ReasonUnpricedModels)
	require.Contains(t, note, "claude-coverage-envtest")
	waitCondition(t, r, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	require.Eventually(t, func() bool {
		sr := findRoute(served(t), ns+"/coverage")
		return sr != nil && sr.Aliases["coverage-house"] == "claude-coverage-envtest"
	}, timeout, tick, "the route is served with the unpriced model")

	// A pricing override on Bedrock covers it there only: still False, the message follows,
	// the transition time does not move (no flapping).
	update(t, bedrock, func() {
		bedrock.Spec.Pricing = []v1alpha1.ModelPricing{{Model: "claude-coverage-envtest", Input: "1", Output: "5"}}
	})
	require.Eventually(t, func() bool {
		got := condition(t, r, v1alpha1.ConditionCatalogCoverage)
		return got != nil && got.Status == metav1.ConditionFalse && strings.HasSuffix(strings.SplitN(got.Message, ":", 2)[0], " at "+ns+"/anthropic")
	}, timeout, tick)
	require.Equal(t, c.LastTransitionTime, condition(t, r, v1alpha1.ConditionCatalogCoverage).LastTransitionTime)

	// And on Anthropic: covered.
	update(t, anthropic, func() {
		anthropic.Spec.Pricing = []v1alpha1.ModelPricing{{Model: "claude-coverage-envtest", Input: "1", Output: "5"}}
	})
	c = waitCondition(t, r, v1alpha1.ConditionCatalogCoverage, metav1.ConditionTrue, v1alpha1.ReasonModelsPriced)
	require.Contains(t, c.Message, "prices every model")
	waitEvent(t, r, corev1.EventTypeNormal, v1alpha1.ReasonModelsPriced)

	// Out of the snapshot (its only backends gone): no CatalogCoverage.
	update(t, r, func() { r.Spec.Backends = []v1alpha1.RouteBackend{{Name: "missing"}} })
	waitCondition(t, r, v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonBackendNotFound)
	require.Eventually(t, func() bool { return condition(t, r, v1alpha1.ConditionCatalogCoverage) == nil }, timeout, tick)
}
