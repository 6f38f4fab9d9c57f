/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package operator

import (
	"bufio"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/posthog/llm-gateway/api/v1alpha1"
)

func secret(ns, name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
}

func backend(ns, name string, p v1alpha1.Provider, secretName string) *v1alpha1.ProviderBackend {
	b := &v1alpha1.ProviderBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.ProviderBackendSpec{Provider: p, CredentialsSecretRef: v1alpha1.LocalSecretReference{Name: secretName}},
	}
	switch p {
	case v1alpha1.ProviderBedrock:
		b.Spec.Region = "us-east-1"
	case v1alpha1.ProviderAzureOpenAI:
		b.Spec.Endpoint = "https://example.openai.azure.com"
		b.Spec.Azure = &v1alpha1.AzureSettings{APIVersion: "2024-10-21"}
	}
	return b
}

// route serves the given models from the backends, in priority order.
func route(ns, name string, shape v1alpha1.Shape, models []string, backends ...string) *v1alpha1.LLMRoute {
	r := &v1alpha1.LLMRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       v1alpha1.LLMRouteSpec{Shape: shape},
	}
	for _, m := range models {
		r.Spec.Models.Names = append(r.Spec.Models.Names, v1alpha1.ModelName(m))
	}
	for i, b := range backends {
		r.Spec.Backends = append(r.Spec.Backends, v1alpha1.RouteBackend{Name: b, Priority: int32(i)})
	}
	return r
}

func rollout(ns, team string, products ...string) *v1alpha1.TeamRollout {
	r := &v1alpha1.TeamRollout{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: team},
		Spec:       v1alpha1.TeamRolloutSpec{Team: team, Stage: v1alpha1.StageGateway},
	}
	for _, p := range products {
		r.Spec.Products = append(r.Spec.Products, v1alpha1.Product(p))
	}
	return r
}

func budget(ns, name, team, daily string) *v1alpha1.TeamBudget {
	return &v1alpha1.TeamBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.TeamBudgetSpec{
			Team:   team,
			Limits: []v1alpha1.SpendLimit{{Window: v1alpha1.WindowDay, Amount: v1alpha1.Money(daily), Enforcement: v1alpha1.EnforcementHard}},
		},
	}
}

// readManifests decodes every document of a YAML file into unstructured objects in namespace ns.
func readManifests(t *testing.T, path, ns string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	dec := yaml.NewYAMLOrJSONDecoder(bufio.NewReader(f), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err, path)
		if len(u.Object) == 0 || u.GetKind() == "" {
			continue
		}
		u.SetNamespace(ns)
		out = append(out, u)
	}
}

// headerLine returns the rest of the first line of path that starts with prefix.
func headerLine(t *testing.T, path, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return rest
		}
	}
	t.Fatalf("%s has no %q line", path, prefix)
	return ""
}
