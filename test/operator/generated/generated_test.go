/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

// Package generated checks that the checked-in generated code and manifests match what
// controller-gen produces from api/ and controllers/ now.
package generated

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const root = "../../.."

// TestGeneratedFilesAreFresh runs controller-gen (the pinned version, from the hack/tools
// module, with the arguments of `make generate manifests`) into a temporary directory and
// compares the deepcopy functions, the CRDs and the RBAC role with the checked-in ones.
func TestGeneratedFilesAreFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("builds controller-gen; skipped with -short")
	}
	tmp := t.TempDir()
	cmd := exec.Command("go", "tool", "-modfile=hack/tools/go.mod", "controller-gen",
		"object:headerFile=hack/boilerplate.go.txt", "crd", "rbac:roleName=llm-gateway-operator",
		"paths=./api/...", "paths=./controllers/...",
		"output:object:dir="+filepath.Join(tmp, "object"),
		"output:crd:dir="+filepath.Join(tmp, "crd"),
		"output:rbac:dir="+filepath.Join(tmp, "rbac"))
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "controller-gen failed:\n%s", stderr.String())

	const hint = "run make generate manifests"
	same := func(generated, checkedIn string) {
		t.Helper()
		want, err := os.ReadFile(generated)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(root, checkedIn))
		require.NoError(t, err, "%s is missing: %s", checkedIn, hint)
		require.Equal(t, string(want), string(got), "%s is stale: %s", checkedIn, hint)
	}
	same(filepath.Join(tmp, "object", "zz_generated.deepcopy.go"), "api/v1alpha1/zz_generated.deepcopy.go")
	same(filepath.Join(tmp, "rbac", "role.yaml"), "config/rbac/role.yaml")

	crds, err := filepath.Glob(filepath.Join(tmp, "crd", "*.yaml"))
	require.NoError(t, err)
	require.Len(t, crds, 4, "one CRD per kind")
	checkedIn, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	require.NoError(t, err)
	require.Len(t, checkedIn, len(crds), "config/crd/bases has other files than the generated CRDs: %s", hint)
	for _, f := range crds {
		same(f, filepath.Join("config", "crd", "bases", filepath.Base(f)))
	}
}
