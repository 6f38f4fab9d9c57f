/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

func TestRunCompileSamples(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := RunCompile([]string{"-f", "../config/samples"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	require.Empty(t, stderr.String())
	s, err := snapshot.Decode(stdout.Bytes())
	require.NoError(t, err, "the printed snapshot is what a pod accepts")
	require.Len(t, s.Routes, 2)
	require.Len(t, s.Backends, 4)
	require.Len(t, s.Teams, 2)
	require.Equal(t, "default/cluster-default", s.DefaultBudget.Source)
}

func TestRunCompileRejected(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := RunCompile([]string{"-f", "internal/compile/testdata/missing-secret.yaml", "-f", "internal/compile/testdata/teams.yaml",
		"--namespace", "ci"}, &stdout, &stderr)
	require.Equal(t, 1, code)
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	require.Contains(t, lines, `ProviderBackend ci/no-secret: SecretNotFound: spec.credentialsSecretRef: Secret ci/does-not-exist not found`)
	require.Contains(t, lines, `TeamRollout ci/alpha-again: Conflicted: team alpha is already declared by TeamRollout ci/alpha`)
	require.Contains(t, lines, `LLMRoute ci/degraded: BackendRejected: ProviderBackend ci/half-aws is not in the snapshot (see its conditions)`)
	require.Equal(t, "11 of 15 objects rejected or degraded", lines[len(lines)-1])
	// The rest still compiles and is printed.
	s, err := snapshot.Decode(stdout.Bytes())
	require.NoError(t, err)
	require.NotEmpty(t, s.Routes)
}

// TestRunCompileWarnsUnpricedModels: a routed model the catalog cannot price is a warning per
// model on stderr; the exit code stays 0 and the snapshot is printed.
func TestRunCompileWarnsUnpricedModels(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := RunCompile([]string{"-f", "internal/compile/testdata/catalog-coverage.yaml", "--namespace", "ci"}, &stdout, &stderr)
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	require.Equal(t, []string{
		`warning: LLMRoute ci/claude: UnpricedModels: model claude-opus-5 has no catalog price at ci/anthropic`,
		`warning: LLMRoute ci/claude: UnpricedModels: model house-sonnet has no catalog price at ci/anthropic`,
		`LLMRoute ci/conflicted: Conflicted: model "house-sonnet" is already claimed by LLMRoute ci/claude`,
		`1 of 7 objects rejected or degraded`,
	}, lines)
	require.Equal(t, 1, code, "the conflict decides the exit code, not the warnings")

	// Without the conflicting route: only warnings, exit code 0.
	stdout.Reset()
	stderr.Reset()
	dir := t.TempDir()
	src, err := os.ReadFile("internal/compile/testdata/catalog-coverage.yaml")
	require.NoError(t, err)
	docs := strings.Split(string(src), "\n---\n")
	require.Contains(t, docs[len(docs)-1], "name: conflicted")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "routes.yaml"), []byte(strings.Join(docs[:len(docs)-1], "\n---\n")), 0o644))
	code = RunCompile([]string{"-f", dir, "--namespace", "ci"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	lines = strings.Split(strings.TrimSpace(stderr.String()), "\n")
	require.Len(t, lines, 2)
	for _, l := range lines {
		require.True(t, strings.HasPrefix(l, "warning: LLMRoute ci/claude: UnpricedModels: model "), l)
	}
	s, err := snapshot.Decode(stdout.Bytes())
	require.NoError(t, err)
	require.Len(t, s.Routes, 2, "the route is served either way")

	// The samples are covered: no warning.
	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 0, RunCompile([]string{"-f", "../config/samples"}, &stdout, &stderr))
	require.NotContains(t, stderr.String(), "warning")
}

func TestRunCompileUsage(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		code int
		want string
	}{
		"no files":       {nil, 2, "usage: operator compile"},
		"bad budget":     {[]string{"-f", "x", "--default-budget-daily", "lots"}, 2, "--default-budget-daily"},
		"no hard limit":  {[]string{"-f", "x", "--default-budget-daily", ""}, 2, "at least one Hard limit"},
		"missing path":   {[]string{"-f", "does/not/exist"}, 1, "does/not/exist"},
		"stray argument": {[]string{"-f", "x", "extra"}, 2, "usage"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, tc.code, RunCompile(tc.args, &stdout, &stderr))
			require.Contains(t, stderr.String(), tc.want)
			require.Empty(t, stdout.String())
		})
	}
}
