/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package operator

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

var programmedMessage = regexp.MustCompile(`^\d+/\d+ replicas at version [0-9a-f]{16}$`)

// TestSamplesApply applies config/samples as kubectl would and checks that every object is
// accepted with its references resolved and lands in the served snapshot.
func TestSamplesApply(t *testing.T) {
	requireEnvtest(t)
	t.Parallel()
	ns := namespace(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "*.yaml"))
	require.NoError(t, err)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for _, u := range readManifests(t, f, ns) {
			require.NoError(t, k8s.Create(context.Background(), u), "apply %s %s from %s", u.GetKind(), u.GetName(), f)
			objs = append(objs, u)
		}
	}
	require.Len(t, objs, 19, "8 Secrets, 4 ProviderBackends, 2 LLMRoutes, 2 TeamRollouts, 3 TeamBudgets")
	for _, u := range objs {
		var obj v1alpha1.Object
		switch u.GetKind() {
		case "LLMRoute":
			obj = &v1alpha1.LLMRoute{}
		case "ProviderBackend":
			obj = &v1alpha1.ProviderBackend{}
		case "TeamBudget":
			obj = &v1alpha1.TeamBudget{}
		case "TeamRollout":
			obj = &v1alpha1.TeamRollout{}
		default:
			continue
		}
		obj.SetNamespace(ns)
		obj.SetName(u.GetName())
		waitCondition(t, obj, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
		waitCondition(t, obj, v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs)
	}
	require.Eventually(t, func() bool {
		s := served(t)
		r := findRoute(s, ns+"/anthropic")
		code := findTeam(s, "posthog-code")
		return r != nil && code != nil && s.DefaultBudget.Source == ns+"/cluster-default" &&
			len(r.Backends) == 2 && r.Backends[0].Backend == ns+"/anthropic" && r.Backends[1].Backend == ns+"/bedrock-us-east-1" &&
			code.Rollout.Stage == snapshot.StageCanary && code.Rollout.CanaryPercent == 25 && code.Budget != nil
	}, timeout, tick)
}

// TestInvalidSpecsRejected sends every file of testdata/invalid to the API server: each must be
// refused by the CRD schema or its CEL rules, with the message on the file's "# apiserver:" line.
func TestInvalidSpecsRejected(t *testing.T) {
	requireEnvtest(t)
	t.Parallel()
	ns := namespace(t)
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			t.Parallel()
			want := headerLine(t, f, "# apiserver: ")
			objs := readManifests(t, f, ns)
			require.Len(t, objs, 1)
			err := k8s.Create(context.Background(), objs[0])
			require.Error(t, err, "the API server accepted an invalid %s", objs[0].GetKind())
			require.True(t, apierrors.IsInvalid(err), "want a validation error, got %v", err)
			require.Contains(t, err.Error(), want)
		})
	}
}

func TestProviderBackendConditionsAndEvents(t *testing.T) {
	requireEnvtest(t)
	t.Parallel()
	ns := namespace(t)
	b := backend(ns, "bedrock", v1alpha1.ProviderBedrock, "aws")
	create(t, b)
	waitCondition(t, b, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	c := waitCondition(t, b, v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	require.Contains(t, c.Message, "Secret "+ns+"/aws not found")
	c = waitCondition(t, b, v1alpha1.ConditionProgrammed, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	require.Contains(t, c.Message, "not in the snapshot")
	waitEvent(t, b, corev1.EventTypeNormal, v1alpha1.ReasonAccepted)
	require.Contains(t, waitEvent(t, b, corev1.EventTypeWarning, v1alpha1.ReasonSecretNotFound), "Secret "+ns+"/aws not found")

	// A Secret with only half of the AWS credentials: the key is missing.
	s := secret(ns, "aws", map[string]string{"awsAccessKeyId": "AKIAENVTEST"})
	create(t, s)
	c = waitCondition(t, b, v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonSecretKeyMissing)
	require.Contains(t, c.Message, "awsSecretAccessKey")
	waitEvent(t, b, corev1.EventTypeWarning, v1alpha1.ReasonSecretKeyMissing)

	// Completing the Secret resolves it and puts the backend in the snapshot.
	update(t, s, func() { s.StringData = map[string]string{"awsSecretAccessKey": "envtest-secret"} })
	waitCondition(t, b, v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs)
	waitEvent(t, b, corev1.EventTypeNormal, v1alpha1.ReasonResolvedRefs)
	require.Eventually(t, func() bool {
		c := condition(t, b, v1alpha1.ConditionProgrammed)
		return c != nil && (c.Reason == v1alpha1.ReasonPending || c.Reason == v1alpha1.ReasonProgrammed) && programmedMessage.MatchString(c.Message)
	}, timeout, tick)
	require.Eventually(t, func() bool {
		for _, sb := range served(t).Backends {
			if sb.Name == ns+"/bedrock" {
				return sb.Credentials.AWSSecretAccessKey == "envtest-secret" && sb.Endpoint == "https://bedrock-runtime.us-east-1.amazonaws.com"
			}
		}
		return false
	}, timeout, tick)
}

func TestLLMRouteConditionsAndEvents(t *testing.T) {
	requireEnvtest(t)
	t.Parallel()
	ns := namespace(t)
	create(t, secret(ns, "keys", map[string]string{"apiKey": "sk-route-events"}),
		backend(ns, "anthropic", v1alpha1.ProviderAnthropic, "keys"),
		backend(ns, "azure", v1alpha1.ProviderAzureOpenAI, "keys"))
	r := route(ns, "claude", v1alpha1.ShapeAnthropic, []string{"claude-events-1"}, "anthropic", "azure")
	create(t, r)
	c := waitCondition(t, r, v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonShapeMismatch)
	require.Contains(t, c.Message, "never translates between shapes")
	waitCondition(t, r, v1alpha1.ConditionProgrammed, metav1.ConditionFalse, v1alpha1.ReasonShapeMismatch)
	waitEvent(t, r, corev1.EventTypeWarning, v1alpha1.ReasonShapeMismatch)

	// Fix: fail over within the Anthropic shape only.
	update(t, r, func() { r.Spec.Backends = r.Spec.Backends[:1] })
	waitCondition(t, r, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	waitCondition(t, r, v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs)
	waitEvent(t, r, corev1.EventTypeNormal, v1alpha1.ReasonAccepted)
	require.Equal(t, int64(2), r.Status.ObservedGeneration)

	// A newer route claiming the same model is Conflicted.
	dup := route(ns, "claude-dup", v1alpha1.ShapeAnthropic, []string{"claude-events-1"}, "anthropic")
	create(t, dup)
	c = waitCondition(t, dup, v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonConflicted)
	require.Contains(t, c.Message, "already claimed by LLMRoute "+ns+"/claude")
	waitEvent(t, dup, corev1.EventTypeWarning, v1alpha1.ReasonConflicted)
}

func TestTeamRolloutConditionsAndEvents(t *testing.T) {
	requireEnvtest(t)
	t.Parallel()
	ns := namespace(t)
	first := rollout(ns, "rollout-events", "rollout-events")
	first.Spec.APIKeys = []v1alpha1.APIKeySource{{SecretRef: v1alpha1.SecretKeyReference{Name: "keys", Key: "k1"}}}
	create(t, first)
	c := waitCondition(t, first, v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonSecretNotFound)
	require.Contains(t, c.Message, "spec.apiKeys[0].secretRef")
	waitEvent(t, first, corev1.EventTypeWarning, v1alpha1.ReasonSecretNotFound)
	create(t, secret(ns, "keys", map[string]string{"k1": "team-key-rollout-events"}))
	waitCondition(t, first, v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs)
	require.Eventually(t, func() bool {
		tm := findTeam(served(t), "rollout-events")
		return tm != nil && len(tm.APIKeyHashes) == 1 && tm.APIKeyHashes[0] == snapshot.HashAPIKey("team-key-rollout-events")
	}, timeout, tick)

	second := rollout(ns, "rollout-events-again")
	second.Spec.Team = "rollout-events"
	second.Spec.Products = []v1alpha1.Product{"rollout-events-2"}
	create(t, second)
	c = waitCondition(t, second, v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonConflicted)
	require.Contains(t, c.Message, "team rollout-events is already declared by TeamRollout "+ns+"/rollout-events")
	waitEvent(t, second, corev1.EventTypeWarning, v1alpha1.ReasonConflicted)
}

func TestTeamBudgetConditionsAndStatus(t *testing.T) {
	requireEnvtest(t)
	t.Parallel()
	ns := namespace(t)
	orphan := budget(ns, "orphan", "budget-nobody", "10")
	create(t, orphan)
	c := waitCondition(t, orphan, v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonTeamNotFound)
	require.Contains(t, c.Message, "team budget-nobody")
	waitEvent(t, orphan, corev1.EventTypeWarning, v1alpha1.ReasonTeamNotFound)
	require.Nil(t, condition(t, orphan, v1alpha1.ConditionSuspended), "a budget out of the snapshot has no budget conditions")
	require.Nil(t, condition(t, orphan, v1alpha1.ConditionExhausted))

	// The gateway's counters say the day's Hard limit is spent.
	budgets.set("budget-team", controllers.BudgetState{
		Spent:    map[v1alpha1.Window]int64{v1alpha1.WindowDay: 12_500_000, v1alpha1.WindowHour: 1_000_000, v1alpha1.WindowMonth: 12_500_000},
		Reserved: map[v1alpha1.Window]int64{v1alpha1.WindowDay: 250_000, v1alpha1.WindowHour: 250_000, v1alpha1.WindowMonth: 250_000},
	})
	b := budget(ns, "budget-team", "budget-team", "12.50")
	b.Spec.Limits = append(b.Spec.Limits,
		v1alpha1.SpendLimit{Window: v1alpha1.WindowHour, Amount: "2", Enforcement: v1alpha1.EnforcementHard},
		v1alpha1.SpendLimit{Window: v1alpha1.WindowMonth, Amount: "100", Enforcement: v1alpha1.EnforcementSoft})
	create(t, rollout(ns, "budget-team", "budget-team"), b)
	waitCondition(t, b, v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs)
	waitEvent(t, b, corev1.EventTypeNormal, v1alpha1.ReasonAccepted)
	require.Eventually(t, func() bool {
		require.NoError(t, k8s.Get(context.Background(), client.ObjectKeyFromObject(b), b))
		return b.Status.Phase == v1alpha1.PhaseExhausted && len(b.Status.Windows) == 3
	}, timeout, tick)
	require.Equal(t, "12.50", b.Status.Limit, "the tightest Hard window is the daily one (nothing remains)")
	require.Equal(t, "12.50", b.Status.Spent)
	day := b.Status.Windows[1]
	require.Equal(t, v1alpha1.WindowDay, day.Window)
	require.Equal(t, "12.50", day.Spent)
	require.Equal(t, "0.25", day.Reserved)
	require.Equal(t, "0.00", day.Remaining)
	for _, w := range b.Status.Windows {
		require.NotNil(t, w.ResetsAt)
	}
	c = waitCondition(t, b, v1alpha1.ConditionExhausted, metav1.ConditionTrue, v1alpha1.ReasonHardLimitReached)
	require.Contains(t, c.Message, "Day: spent $12.50 of the $12.50 Hard limit, calls are rejected until it resets at "+day.ResetsAt.UTC().Format(time.RFC3339))
	note := waitEvent(t, b, corev1.EventTypeWarning, v1alpha1.ReasonHardLimitReached)
	require.Equal(t, c.Message, note)
	waitCondition(t, b, v1alpha1.ConditionSoftLimitReached, metav1.ConditionFalse, v1alpha1.ReasonWithinSoftLimits)
	waitCondition(t, b, v1alpha1.ConditionRunawayTripped, metav1.ConditionFalse, v1alpha1.ReasonWithinSpendRate)
	waitCondition(t, b, v1alpha1.ConditionSuspended, metav1.ConditionFalse, v1alpha1.ReasonKillSwitchOff)
	waitCondition(t, b, v1alpha1.ConditionCounterStoreAvailable, metav1.ConditionTrue, v1alpha1.ReasonStoreAvailable)
	require.Eventually(t, func() bool {
		tm := findTeam(served(t), "budget-team")
		return tm != nil && tm.Budget != nil && tm.Budget.Source == ns+"/budget-team" && len(tm.Budget.Limits) == 3
	}, timeout, tick)

	// A budget without counters yet (a new team) is Active with zero spend.
	idle := budget(ns, "budget-idle", "budget-idle", "5")
	create(t, rollout(ns, "budget-idle", "budget-idle"), idle)
	require.Eventually(t, func() bool {
		require.NoError(t, k8s.Get(context.Background(), client.ObjectKeyFromObject(idle), idle))
		return idle.Status.Phase == v1alpha1.PhaseActive && idle.Status.Spent == "0.00" && idle.Status.Limit == "5.00"
	}, timeout, tick)

	// The kill switch: Suspended phase, and the snapshot carries it.
	update(t, b, func() { b.Spec.Suspended = true })
	require.Eventually(t, func() bool {
		require.NoError(t, k8s.Get(context.Background(), client.ObjectKeyFromObject(b), b))
		tm := findTeam(served(t), "budget-team")
		return b.Status.Phase == v1alpha1.PhaseSuspended && b.Status.ObservedGeneration == b.Generation &&
			tm != nil && tm.Budget != nil && tm.Budget.Suspended
	}, timeout, tick)
	waitCondition(t, b, v1alpha1.ConditionSuspended, metav1.ConditionTrue, v1alpha1.ReasonKillSwitch)
	waitEvent(t, b, corev1.EventTypeWarning, v1alpha1.ReasonKillSwitch)
}

// TestSnapshotFollowsUpdates: the served snapshot changes after an update to any kind or to a
// referenced Secret. It asserts that it changes, not how fast.
func TestSnapshotFollowsUpdates(t *testing.T) {
	requireEnvtest(t)
	t.Parallel()
	ns := namespace(t)
	creds := secret(ns, "creds", map[string]string{"apiKey": "sk-follow-1"})
	keys := secret(ns, "keys", map[string]string{"key": "team-key-follow-1"})
	b := backend(ns, "openai", v1alpha1.ProviderOpenAI, "creds")
	r := route(ns, "gpt", v1alpha1.ShapeOpenAI, []string{"gpt-follow-1"}, "openai")
	ro := rollout(ns, "follow-team", "follow-team")
	ro.Spec.APIKeys = []v1alpha1.APIKeySource{{SecretRef: v1alpha1.SecretKeyReference{Name: "keys", Key: "key"}}}
	bu := budget(ns, "follow-team", "follow-team", "10")
	create(t, creds, keys, b, r, ro, bu)

	snap := func(check func(*snapshot.Snapshot) bool) {
		t.Helper()
		require.Eventually(t, func() bool { return check(served(t)) }, timeout, tick)
	}
	snap(func(s *snapshot.Snapshot) bool {
		tm := findTeam(s, "follow-team")
		return findRoute(s, ns+"/gpt") != nil && tm != nil && tm.Budget != nil
	})
	update(t, ro, func() {
		ro.Spec.Stage = v1alpha1.StageCanary
		ro.Spec.CanaryPercent = new(int32)
		*ro.Spec.CanaryPercent = 40
		ro.Spec.Legacy = &v1alpha1.LegacyTarget{Upstream: "http://legacy.example:8080"}
	})
	snap(func(s *snapshot.Snapshot) bool {
		tm := findTeam(s, "follow-team")
		return tm != nil && tm.Rollout.Stage == snapshot.StageCanary && tm.Rollout.CanaryPercent == 40
	})

	update(t, r, func() { r.Spec.Models.Names = append(r.Spec.Models.Names, "gpt-follow-2") })
	snap(func(s *snapshot.Snapshot) bool {
		gr := findRoute(s, ns+"/gpt")
		return gr != nil && len(gr.Models) == 2
	})

	update(t, b, func() { b.Spec.Endpoint = "https://openai-proxy.example" })
	snap(func(s *snapshot.Snapshot) bool {
		return findBackend(t, s, ns+"/openai").Endpoint == "https://openai-proxy.example"
	})

	update(t, bu, func() { bu.Spec.Limits[0].Amount = "11" })
	snap(func(s *snapshot.Snapshot) bool {
		tm := findTeam(s, "follow-team")
		return tm != nil && tm.Budget != nil && tm.Budget.Limits[0].LimitMicros == 11_000_000
	})

	update(t, creds, func() { creds.StringData = map[string]string{"apiKey": "sk-follow-2"} })
	snap(func(s *snapshot.Snapshot) bool {
		return findBackend(t, s, ns+"/openai").Credentials.APIKey == "sk-follow-2"
	})

	update(t, keys, func() { keys.StringData = map[string]string{"key": "team-key-follow-2"} })
	snap(func(s *snapshot.Snapshot) bool {
		tm := findTeam(s, "follow-team")
		return tm != nil && len(tm.APIKeyHashes) == 1 && tm.APIKeyHashes[0] == snapshot.HashAPIKey("team-key-follow-2")
	})

	// A pod that serves an older version is sent the newest one.
	status, version, body := poll(t, "follow-observer", "0000000000000000")
	require.Equal(t, http.StatusOK, status)
	s, err := snapshot.Decode(body)
	require.NoError(t, err)
	require.Equal(t, version, s.Version)
}

// TestDeletingBackendDegradesRoute: deleting a backend a route uses turns that route
// ResolvedRefs=False (it keeps serving on its other backend) without touching other routes; a
// route left with no backend leaves the snapshot.
func TestDeletingBackendDegradesRoute(t *testing.T) {
	requireEnvtest(t)
	t.Parallel()
	ns := namespace(t)
	gone := backend(ns, "bedrock", v1alpha1.ProviderBedrock, "keys")
	failover := route(ns, "claude", v1alpha1.ShapeAnthropic, []string{"claude-degrade-1"}, "anthropic", "bedrock")
	only := route(ns, "bedrock-only", v1alpha1.ShapeAnthropic, []string{"claude-degrade-2"}, "bedrock")
	other := route(ns, "gpt", v1alpha1.ShapeOpenAI, []string{"gpt-degrade-1"}, "openai")
	create(t, secret(ns, "keys", map[string]string{"apiKey": "sk-degrade", "bearerToken": "bedrock-degrade"}),
		backend(ns, "anthropic", v1alpha1.ProviderAnthropic, "keys"), gone,
		backend(ns, "openai", v1alpha1.ProviderOpenAI, "keys"), failover, only, other)
	for _, r := range []*v1alpha1.LLMRoute{failover, only, other} {
		waitCondition(t, r, v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs)
	}

	require.NoError(t, k8s.Delete(context.Background(), gone))
	c := waitCondition(t, failover, v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonBackendNotFound)
	require.Contains(t, c.Message, "ProviderBackend "+ns+"/bedrock not found")
	waitCondition(t, failover, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted)
	waitEvent(t, failover, corev1.EventTypeWarning, v1alpha1.ReasonBackendNotFound)
	waitCondition(t, only, v1alpha1.ConditionProgrammed, metav1.ConditionFalse, v1alpha1.ReasonBackendNotFound)
	require.Eventually(t, func() bool {
		s := served(t)
		f := findRoute(s, ns+"/claude")
		return f != nil && len(f.Backends) == 1 && f.Backends[0].Backend == ns+"/anthropic" &&
			findRoute(s, ns+"/bedrock-only") == nil && findRoute(s, ns+"/gpt") != nil
	}, timeout, tick)
	require.Equal(t, metav1.ConditionTrue, condition(t, other, v1alpha1.ConditionResolvedRefs).Status, "other routes are not affected")
	require.Equal(t, metav1.ConditionTrue, condition(t, other, v1alpha1.ConditionAccepted).Status)
}

// TestSnapshotSecretKept: the leader keeps the served snapshot in the Secret.
func TestSnapshotSecretKept(t *testing.T) {
	requireEnvtest(t)
	t.Parallel()
	stored := waitStoredSnapshot(t)
	require.Equal(t, snapshot.SchemaVersion, stored.SchemaVersion)
}
