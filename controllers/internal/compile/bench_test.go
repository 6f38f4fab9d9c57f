/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package compile_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
)

// largeInput is a cluster with n teams, each with its own namespace, Secret, two backends,
// two routes (one per shape), a TeamRollout with two API keys and a TeamBudget.
func largeInput(n int) compile.Input {
	in := compile.Input{Options: compile.DefaultOptions()}
	for i := range n {
		ns := fmt.Sprintf("team-%d", i)
		meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }
		in.Secrets = append(in.Secrets, corev1.Secret{ObjectMeta: meta("keys"), Data: map[string][]byte{
			"apiKey": []byte("sk-" + ns), "k1": []byte("key-1-" + ns), "k2": []byte("key-2-" + ns)}})
		in.Backends = append(in.Backends,
			v1alpha1.ProviderBackend{ObjectMeta: meta("anthropic"), Spec: v1alpha1.ProviderBackendSpec{
				Provider: v1alpha1.ProviderAnthropic, CredentialsSecretRef: v1alpha1.LocalSecretReference{Name: "keys"}}},
			v1alpha1.ProviderBackend{ObjectMeta: meta("openai"), Spec: v1alpha1.ProviderBackendSpec{
				Provider: v1alpha1.ProviderOpenAI, CredentialsSecretRef: v1alpha1.LocalSecretReference{Name: "keys"},
				Pricing: []v1alpha1.ModelPricing{{Model: "gpt-" + ns, Input: "1.25", Output: "10"}}}})
		in.Routes = append(in.Routes,
			v1alpha1.LLMRoute{ObjectMeta: meta("claude"), Spec: v1alpha1.LLMRouteSpec{Shape: v1alpha1.ShapeAnthropic,
				Models:   v1alpha1.RouteModels{Names: []v1alpha1.ModelName{v1alpha1.ModelName("claude-" + ns)}},
				Backends: []v1alpha1.RouteBackend{{Name: "anthropic"}}}},
			v1alpha1.LLMRoute{ObjectMeta: meta("gpt"), Spec: v1alpha1.LLMRouteSpec{Shape: v1alpha1.ShapeOpenAI,
				Models:   v1alpha1.RouteModels{Names: []v1alpha1.ModelName{v1alpha1.ModelName("gpt-" + ns)}},
				Backends: []v1alpha1.RouteBackend{{Name: "openai"}}}})
		in.Rollouts = append(in.Rollouts, v1alpha1.TeamRollout{ObjectMeta: meta("rollout"), Spec: v1alpha1.TeamRolloutSpec{
			Team: ns, Products: []v1alpha1.Product{v1alpha1.Product(ns)}, Stage: v1alpha1.StageGateway,
			APIKeys: []v1alpha1.APIKeySource{{SecretRef: v1alpha1.SecretKeyReference{Name: "keys", Key: "k1"}},
				{SecretRef: v1alpha1.SecretKeyReference{Name: "keys", Key: "k2"}}}}})
		in.Budgets = append(in.Budgets, v1alpha1.TeamBudget{ObjectMeta: meta("budget"), Spec: v1alpha1.TeamBudgetSpec{
			Team: ns, Limits: []v1alpha1.SpendLimit{{Window: v1alpha1.WindowDay, Amount: "100", Enforcement: v1alpha1.EnforcementHard}}}})
	}
	return in
}

func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		in := largeInput(n)
		b.Run(fmt.Sprintf("teams=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out := compile.Compile(in)
				if out.Err != nil || len(out.Rejected()) > 0 {
					b.Fatalf("compile: %v, rejected %v", out.Err, out.Rejected())
				}
			}
		})
	}
}
