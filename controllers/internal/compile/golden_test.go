/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package compile_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/posthog/llm-gateway/controllers/internal/compile"
	"github.com/posthog/llm-gateway/controllers/internal/manifest"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden is what a golden file holds: the sealed snapshot, every object's conditions, and the
// lines `operator compile` prints for rejected objects and as warnings.
type golden struct {
	Error    string             `json:"error,omitempty"`
	Rejected []string           `json:"rejected"`
	Warnings []string           `json:"warnings,omitempty"`
	Results  []goldenResult     `json:"results"`
	Snapshot *snapshot.Snapshot `json:"snapshot"`
}

type goldenResult struct {
	Object       string          `json:"object"`
	Included     bool            `json:"included"`
	Accepted     goldenCondition `json:"accepted"`
	ResolvedRefs goldenCondition `json:"resolvedRefs"`
	// CatalogCoverage is set for routes in the snapshot only.
	CatalogCoverage *goldenCondition `json:"catalogCoverage,omitempty"`
}

type goldenCondition struct {
	Status  metav1.ConditionStatus `json:"status"`
	Reason  string                 `json:"reason"`
	Message string                 `json:"message"`
}

func toGolden(out compile.Output) golden {
	g := golden{Snapshot: out.Snapshot, Rejected: []string{}}
	if out.Err != nil {
		g.Error = out.Err.Error()
	}
	for _, r := range out.Results {
		gr := goldenResult{
			Object:       r.Key.String(),
			Included:     r.Included,
			Accepted:     goldenCondition{r.Accepted.Status, r.Accepted.Reason, r.Accepted.Message},
			ResolvedRefs: goldenCondition{r.ResolvedRefs.Status, r.ResolvedRefs.Reason, r.ResolvedRefs.Message},
		}
		if c := r.CatalogCoverage; c != nil {
			gr.CatalogCoverage = &goldenCondition{c.Status, c.Reason, c.Message}
		}
		g.Results = append(g.Results, gr)
	}
	g.Warnings = out.Warnings()
	for _, r := range out.Rejected() {
		for _, p := range r.Problems() {
			g.Rejected = append(g.Rejected, r.Key.String()+": "+p.Reason+": "+p.Message)
		}
	}
	return g
}

// compileFiles loads manifests (namespace "default" when unset) and compiles them with the
// built-in options.
func compileFiles(t *testing.T, paths ...string) compile.Output {
	t.Helper()
	in, err := manifest.Load("default", paths...)
	require.NoError(t, err)
	in.Options = compile.DefaultOptions()
	return compile.Compile(in)
}

func checkGolden(t *testing.T, name string, out compile.Output) {
	t.Helper()
	got, err := json.MarshalIndent(toGolden(out), "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "missing golden file; run go test ./controllers/internal/compile -update")
	require.Equal(t, string(want), string(got), "golden %s differs; run with -update and review the diff", path)
}

// TestGolden compiles each testdata/*.yaml input and compares with its golden file. The
// "samples" case compiles config/samples, which must stay valid.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			checkGolden(t, name, compileFiles(t, in))
		})
	}
	t.Run("samples", func(t *testing.T) {
		out := compileFiles(t, filepath.Join("..", "..", "..", "config", "samples"))
		require.NoError(t, out.Err)
		require.Empty(t, out.Rejected(), "every sample must be accepted with all references resolved")
		checkGolden(t, "samples", out)
	})
}
