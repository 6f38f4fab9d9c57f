/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package manifest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", `
apiVersion: v1
kind: Secret
metadata: {name: s}
data: {apiKey: c2stYQ==}
stringData: {extra: plain, apiKey: overrides}
---
# a comment-only document
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: not-ours}
spec: {whatever: true}
`)
	write(t, dir, "nested/b.yml", `
apiVersion: llmgateway.posthog.com/v1alpha1
kind: ProviderBackend
metadata: {name: pb, namespace: explicit}
spec: {provider: OpenAI, credentialsSecretRef: {name: s}}
`)
	write(t, dir, "nested/list.json", `{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "llmgateway.posthog.com/v1alpha1", "kind": "TeamRollout", "metadata": {"name": "r"},
   "spec": {"team": "t", "products": ["p"], "stage": "Gateway"}}]}`)
	write(t, dir, "README.md", "not a manifest")

	in, err := Load("fallback", dir)
	require.NoError(t, err)
	require.Len(t, in.Secrets, 1)
	require.Equal(t, "fallback", in.Secrets[0].Namespace)
	require.Equal(t, "overrides", string(in.Secrets[0].Data["apiKey"]), "stringData wins over data, as on the API server")
	require.Equal(t, "plain", string(in.Secrets[0].Data["extra"]))
	require.Nil(t, in.Secrets[0].StringData)
	require.Len(t, in.Backends, 1)
	require.Equal(t, "explicit", in.Backends[0].Namespace)
	require.Len(t, in.Rollouts, 1)
	require.Equal(t, "fallback", in.Rollouts[0].Namespace)
}

func TestLoadErrors(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"unknown field": {`
apiVersion: llmgateway.posthog.com/v1alpha1
kind: LLMRoute
metadata: {name: r}
spec: {shape: OpenAI, modles: {}}
`, `unknown field "modles"`},
		"duplicate": {`
apiVersion: llmgateway.posthog.com/v1alpha1
kind: TeamBudget
metadata: {name: b}
spec: {team: t, limits: []}
---
apiVersion: llmgateway.posthog.com/v1alpha1
kind: TeamBudget
metadata: {name: b}
spec: {team: t, limits: []}
`, "TeamBudget default/b is also defined at"},
		"unknown kind":   {"apiVersion: llmgateway.posthog.com/v1alpha1\nkind: Gateway\nmetadata: {name: g}\n", "unknown kind Gateway"},
		"no name":        {"apiVersion: v1\nkind: Secret\nmetadata: {}\n", "metadata.name is required"},
		"malformed yaml": {"apiVersion: v1\nkind: Secret\nmetadata: {name: [\n", "document 1"},
	} {
		t.Run(name, func(t *testing.T) {
			p := write(t, t.TempDir(), "x.yaml", tc.body)
			_, err := Load("default", p)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, p, "errors name the file")
		})
	}
	_, err := Load("default", filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
}
