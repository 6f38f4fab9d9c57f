/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package compile_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
	"github.com/posthog/llm-gateway/controllers/internal/manifest"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

func load(t *testing.T, paths ...string) compile.Input {
	t.Helper()
	in, err := manifest.Load("default", paths...)
	require.NoError(t, err)
	in.Options = compile.DefaultOptions()
	return in
}

func encode(t *testing.T, s *snapshot.Snapshot) []byte {
	t.Helper()
	require.NotNil(t, s)
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return b
}

func TestAPIKeysOnlyAsHashes(t *testing.T) {
	in := load(t, "testdata/full.yaml")
	out := compile.Compile(in)
	require.NoError(t, out.Err)
	raw := string(encode(t, out.Snapshot))
	for _, plain := range []string{"key-ai-1", "key-ai-2", "key-code-1", "key-legacy-1"} {
		require.NotContains(t, raw, plain, "a gateway API key must never enter the snapshot in plaintext")
	}
	teams := map[string]snapshot.Team{}
	for _, tm := range out.Snapshot.Teams {
		teams[tm.Name] = tm
	}
	require.ElementsMatch(t, []string{snapshot.HashAPIKey("key-ai-1"), snapshot.HashAPIKey("key-ai-2")}, teams["ai"].APIKeyHashes)
	require.Equal(t, []string{snapshot.HashAPIKey("key-code-1")}, teams["code"].APIKeyHashes)
}

// TestDeterministic compiles the same objects in shuffled orders: the bytes, and so the
// version, must not change.
func TestDeterministic(t *testing.T) {
	in := load(t, "testdata/full.yaml", "testdata/teams.yaml")
	want := compile.Compile(in)
	require.NoError(t, want.Err)
	wantBytes := encode(t, want.Snapshot)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := in
		shuffled.Routes = shuffle(rng, in.Routes)
		shuffled.Backends = shuffle(rng, in.Backends)
		shuffled.Budgets = shuffle(rng, in.Budgets)
		shuffled.Rollouts = shuffle(rng, in.Rollouts)
		shuffled.Secrets = shuffle(rng, in.Secrets)
		got := compile.Compile(shuffled)
		require.NoError(t, got.Err)
		require.Equal(t, want.Snapshot.Version, got.Snapshot.Version)
		require.Equal(t, string(wantBytes), string(encode(t, got.Snapshot)))
		require.Equal(t, want.Results, got.Results)
	}
}

func shuffle[T any](rng *rand.Rand, in []T) []T {
	out := append([]T(nil), in...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// TestCompileDoesNotModifyInput guards the informer cache: the operator passes cached objects.
func TestCompileDoesNotModifyInput(t *testing.T) {
	in := load(t, "testdata/full.yaml")
	before, err := json.Marshal(in)
	require.NoError(t, err)
	compile.Compile(in)
	after, err := json.Marshal(in)
	require.NoError(t, err)
	require.JSONEq(t, string(before), string(after))
}

func TestVersionFollowsSecretsAndSpecs(t *testing.T) {
	in := load(t, "testdata/full.yaml")
	base := compile.Compile(in)
	require.NoError(t, base.Err)

	same := compile.Compile(load(t, "testdata/full.yaml"))
	require.Equal(t, base.Snapshot.Version, same.Snapshot.Version, "same input, same version")

	rotated := load(t, "testdata/full.yaml")
	for i := range rotated.Secrets {
		if rotated.Secrets[i].Name == "openai" {
			rotated.Secrets[i].Data["apiKey"] = []byte("sk-rotated")
		}
	}
	require.NotEqual(t, base.Snapshot.Version, compile.Compile(rotated).Snapshot.Version, "a rotated credential is a new snapshot")

	patched := load(t, "testdata/full.yaml")
	for i := range patched.Rollouts {
		if patched.Rollouts[i].Name == "code" {
			patched.Rollouts[i].Spec.Stage = v1alpha1.StageLegacy
			patched.Rollouts[i].Spec.CanaryPercent = nil
		}
	}
	out := compile.Compile(patched)
	require.NoError(t, out.Err)
	require.NotEqual(t, base.Snapshot.Version, out.Snapshot.Version, "a stage patch is a new snapshot")
}

func TestBuiltinDefaultBudget(t *testing.T) {
	out := compile.Compile(load(t, "testdata/builtin-default.yaml"))
	require.NoError(t, out.Err)
	require.Len(t, out.Snapshot.Teams, 1)
	team := out.Snapshot.Teams[0]
	require.Nil(t, team.Budget, "a team without a TeamBudget has none of its own")
	eff := out.Snapshot.EffectiveBudget(&team)
	require.Equal(t, "builtin", eff.Source)
	require.Equal(t, []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 50_000_000, Enforcement: snapshot.EnforceHard}}, eff.Limits)

	// Operator flags change the built-in default.
	in := load(t, "testdata/builtin-default.yaml")
	in.Options.DefaultBudget.Limits = []snapshot.SpendLimit{{Window: snapshot.WindowMonth, LimitMicros: 7_000_000, Enforcement: snapshot.EnforceHard}}
	out = compile.Compile(in)
	require.NoError(t, out.Err)
	require.Equal(t, int64(7_000_000), out.Snapshot.DefaultBudget.Limits[0].LimitMicros)
}

func TestOptionsValidate(t *testing.T) {
	require.NoError(t, compile.DefaultOptions().Validate())
	for name, mutate := range map[string]func(*compile.Options){
		"no limits":   func(o *compile.Options) { o.DefaultBudget.Limits = nil },
		"only soft":   func(o *compile.Options) { o.DefaultBudget.Limits[0].Enforcement = snapshot.EnforceSoft },
		"zero amount": func(o *compile.Options) { o.DefaultBudget.Limits[0].LimitMicros = 0 },
		"bad policy":  func(o *compile.Options) { o.DefaultBudget.OnStoreUnavailable = "Maybe" },
	} {
		t.Run(name, func(t *testing.T) {
			o := compile.DefaultOptions()
			mutate(&o)
			require.Error(t, o.Validate())
			in := load(t, "testdata/builtin-default.yaml")
			in.Options = o
			out := compile.Compile(in)
			require.Error(t, out.Err)
			require.Nil(t, out.Snapshot)
		})
	}
}

// TestInvalidSpecs compiles each file of test/operator/testdata/invalid (the same files the
// envtest suite sends to the API server) on its own: the compiler, which also runs with no API
// server in front (`operator compile`), must reject each with Accepted=False reason Invalid and
// the message named on the file's "# compile:" line.
func TestInvalidSpecs(t *testing.T) {
	files, err := filepath.Glob("../../../test/operator/testdata/invalid/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			want := headerLine(t, f, "# compile: ")
			out := compile.Compile(load(t, f))
			require.NoError(t, out.Err)
			require.Len(t, out.Results, 1)
			r := out.Results[0]
			require.False(t, r.Included)
			require.Equal(t, metav1.ConditionFalse, r.Accepted.Status)
			require.Equal(t, v1alpha1.ReasonInvalid, r.Accepted.Reason)
			require.Contains(t, r.Accepted.Message, want)
		})
	}
}

func headerLine(t *testing.T, path, prefix string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return rest
		}
	}
	t.Fatalf("%s has no %q line", path, prefix)
	return ""
}

func TestResultLookup(t *testing.T) {
	out := compile.Compile(load(t, "testdata/missing-backend.yaml"))
	r, ok := out.Result(compile.ObjectKey{Kind: compile.KindLLMRoute, Namespace: "default", Name: "claude"})
	require.True(t, ok)
	require.True(t, r.Included)
	require.Equal(t, v1alpha1.ReasonBackendNotFound, r.ResolvedRefs.Reason)
	_, ok = out.Result(compile.ObjectKey{Kind: compile.KindLLMRoute, Namespace: "default", Name: "nope"})
	require.False(t, ok)
}

// TestCatalogCoverage: the condition and the warnings follow the catalog and the pricing
// overrides, do not depend on input order (no flapping between operator replicas or
// compiles), and the message stays bounded.
func TestCatalogCoverage(t *testing.T) {
	in := load(t, "testdata/catalog-coverage.yaml")
	want := compile.Compile(in)
	require.NoError(t, want.Err)
	claude, ok := want.Result(compile.ObjectKey{Kind: compile.KindLLMRoute, Namespace: "default", Name: "claude"})
	require.True(t, ok)
	require.Equal(t, metav1.ConditionFalse, claude.CatalogCoverage.Status)
	require.Equal(t, v1alpha1.ReasonUnpricedModels, claude.CatalogCoverage.Reason)
	require.Empty(t, claude.Problems(), "a warning, not a problem")
	require.Len(t, want.Warnings(), 2)

	rng := rand.New(rand.NewPCG(3, 4))
	for range 10 {
		shuffled := in
		shuffled.Routes = shuffle(rng, in.Routes)
		shuffled.Backends = shuffle(rng, in.Backends)
		for i := range shuffled.Routes {
			r := shuffled.Routes[i].DeepCopy()
			r.Spec.Models.Aliases = shuffle(rng, r.Spec.Models.Aliases)
			r.Spec.Models.Names = shuffle(rng, r.Spec.Models.Names)
			shuffled.Routes[i] = *r
		}
		got := compile.Compile(shuffled)
		require.Equal(t, want.Results, got.Results)
		require.Equal(t, want.Warnings(), got.Warnings())
	}

	// A pricing override on the other backend covers the models.
	for i := range in.Backends {
		if b := &in.Backends[i]; b.Name == "anthropic" {
			b.Spec.Pricing = []v1alpha1.ModelPricing{{Model: "claude-opus-5", Input: "5", Output: "25"}, {Model: "house-sonnet", Input: "3", Output: "15"}}
		}
	}
	out := compile.Compile(in)
	claude, _ = out.Result(compile.ObjectKey{Kind: compile.KindLLMRoute, Namespace: "default", Name: "claude"})
	require.Equal(t, metav1.ConditionTrue, claude.CatalogCoverage.Status)
	require.Equal(t, v1alpha1.ReasonModelsPriced, claude.CatalogCoverage.Reason)
	require.Empty(t, out.Warnings())

	// Many unpriced models: every one is warned about, the message names 20.
	names := make([]v1alpha1.ModelName, 25)
	for i := range names {
		names[i] = v1alpha1.ModelName(fmt.Sprintf("house-model-%02d", i))
	}
	in.Routes[0].Spec.Models = v1alpha1.RouteModels{Names: names}
	out = compile.Compile(in)
	r, _ := out.Result(compile.ObjectKey{Kind: compile.KindLLMRoute, Namespace: "default", Name: in.Routes[0].Name})
	require.Len(t, r.Warnings(), 25)
	require.Contains(t, r.CatalogCoverage.Message, "house-model-19 at ")
	require.NotContains(t, r.CatalogCoverage.Message, "house-model-20")
	require.Contains(t, r.CatalogCoverage.Message, "; and 5 more:")
}
