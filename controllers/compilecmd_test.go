/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"bytes"
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
