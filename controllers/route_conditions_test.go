/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
)

func TestRouteStatusCatalogCoverage(t *testing.T) {
	covered := &metav1.Condition{Type: v1alpha1.ConditionCatalogCoverage, Status: metav1.ConditionTrue,
		Reason: v1alpha1.ReasonModelsPriced, Message: "priced", ObservedGeneration: 1}
	unpriced := func(msg string) *metav1.Condition {
		return &metav1.Condition{Type: v1alpha1.ConditionCatalogCoverage, Status: metav1.ConditionFalse,
			Reason: v1alpha1.ReasonUnpricedModels, Message: msg, ObservedGeneration: 2}
	}
	r := &v1alpha1.LLMRoute{}
	steps := []struct {
		name  string
		cond  *metav1.Condition
		event string // "" for none, else type/reason
	}{
		{"first appears covered: no event", covered, ""},
		{"still covered", covered, ""},
		{"turns unpriced", unpriced("no catalog price for a at ns/b"), corev1.EventTypeWarning + "/" + v1alpha1.ReasonUnpricedModels},
		{"another model unpriced: the message changes, no new event", unpriced("no catalog price for a, c at ns/b"), ""},
		{"covered again", covered, corev1.EventTypeNormal + "/" + v1alpha1.ReasonModelsPriced},
		{"left out of the snapshot: removed", nil, ""},
		{"back in the snapshot, unpriced from the start", unpriced("no catalog price for a at ns/b"), corev1.EventTypeWarning + "/" + v1alpha1.ReasonUnpricedModels},
	}
	var since metav1.Time
	for _, s := range steps {
		after, events, err := routeStatus(context.Background(), r, compile.Result{CatalogCoverage: s.cond})
		require.NoError(t, err, s.name)
		require.Zero(t, after, s.name)
		got := meta.FindStatusCondition(r.Status.Conditions, v1alpha1.ConditionCatalogCoverage)
		if s.cond == nil {
			require.Nil(t, got, s.name)
		} else {
			require.NotNil(t, got, s.name)
			require.Equal(t, s.cond.Status, got.Status, s.name)
			require.Equal(t, s.cond.Message, got.Message, s.name)
			if s.name == "another model unpriced: the message changes, no new event" {
				require.Equal(t, since, got.LastTransitionTime, "a new message is not a transition")
			}
			since = got.LastTransitionTime
		}
		if s.event == "" {
			require.Empty(t, events, s.name)
			continue
		}
		require.Len(t, events, 1, s.name)
		require.Equal(t, s.event, events[0].typ+"/"+events[0].reason, s.name)
		require.Equal(t, v1alpha1.ConditionCatalogCoverage, events[0].action)
		require.Equal(t, s.cond.Message, events[0].note)
	}
}
