/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
)

func TestEventWorthy(t *testing.T) {
	r := newStatusReconciler[v1alpha1.LLMRoute](compile.KindLLMRoute, statusBase{})
	cond := func(typ string, ok bool, reason string, gen int64) metav1.Condition {
		s := metav1.ConditionTrue
		if !ok {
			s = metav1.ConditionFalse
		}
		return metav1.Condition{Type: typ, Status: s, Reason: reason, ObservedGeneration: gen}
	}
	const uid = types.UID("u1")
	steps := []struct {
		name string
		c    metav1.Condition
		want bool
	}{
		{"new Accepted", cond(v1alpha1.ConditionAccepted, true, v1alpha1.ReasonAccepted, 1), true},
		{"same Accepted", cond(v1alpha1.ConditionAccepted, true, v1alpha1.ReasonAccepted, 1), false},
		{"Accepted turns Invalid", cond(v1alpha1.ConditionAccepted, false, v1alpha1.ReasonInvalid, 2), true},
		{"first Pending", cond(v1alpha1.ConditionProgrammed, false, v1alpha1.ReasonPending, 1), false},
		{"first Programmed", cond(v1alpha1.ConditionProgrammed, true, v1alpha1.ReasonProgrammed, 1), true},
		{"Pending on a new snapshot", cond(v1alpha1.ConditionProgrammed, false, v1alpha1.ReasonPending, 1), false},
		{"Programmed again, same generation", cond(v1alpha1.ConditionProgrammed, true, v1alpha1.ReasonProgrammed, 1), false},
		{"Programmed at a new generation", cond(v1alpha1.ConditionProgrammed, true, v1alpha1.ReasonProgrammed, 2), true},
		{"dropped from the snapshot", cond(v1alpha1.ConditionProgrammed, false, v1alpha1.ReasonSecretNotFound, 2), true},
		{"Programmed again after a failure", cond(v1alpha1.ConditionProgrammed, true, v1alpha1.ReasonProgrammed, 2), true},
	}
	conds := []metav1.Condition{}
	for _, s := range steps {
		var old *metav1.Condition
		for i := range conds {
			if conds[i].Type == s.c.Type {
				old = &conds[i]
			}
		}
		require.Equal(t, s.want, r.eventWorthy(uid, old, s.c), s.name)
		if old != nil {
			*old = s.c
		} else {
			conds = append(conds, s.c)
		}
	}
}
