/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
)

// routeStatus sets the LLMRoute-specific condition, CatalogCoverage, from the newest compile:
// set while the route is in the snapshot, removed while it is not. It makes an event only
// when the condition turns False (Warning, reason UnpricedModels) or True again (Normal,
// ModelsPriced), never when it first appears True or when only its message changes.
func routeStatus(_ context.Context, r *v1alpha1.LLMRoute, res compile.Result) (time.Duration, []statusEvent, error) {
	conds := &r.Status.Conditions
	if res.CatalogCoverage == nil {
		meta.RemoveStatusCondition(conds, v1alpha1.ConditionCatalogCoverage)
		return 0, nil, nil
	}
	c := *res.CatalogCoverage
	var events []statusEvent
	if e, ok := coverageEvent(meta.FindStatusCondition(*conds, c.Type), c); ok {
		events = append(events, e)
	}
	meta.SetStatusCondition(conds, c)
	return 0, events, nil
}

// coverageEvent returns the event a CatalogCoverage change makes, if any.
func coverageEvent(old *metav1.Condition, c metav1.Condition) (statusEvent, bool) {
	alarm := c.Status != metav1.ConditionTrue
	switch {
	case old == nil && !alarm:
		return statusEvent{}, false
	case old != nil && old.Status == c.Status && old.Reason == c.Reason:
		return statusEvent{}, false
	}
	typ := corev1.EventTypeNormal
	if alarm {
		typ = corev1.EventTypeWarning
	}
	return statusEvent{typ: typ, reason: c.Reason, action: c.Type, note: c.Message}, true
}
