/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package operator

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers"
)

// The Argo CD health check the docs ship: docs/examples/argocd-health/health.lua, registered
// for each kind in docs/examples/argocd-health/argocd-cm.yaml. The tests read both files, so
// what they run is what a user copies.
var (
	healthScriptPath    = filepath.Join("..", "..", "docs", "examples", "argocd-health", "health.lua")
	healthConfigMapPath = filepath.Join("..", "..", "docs", "examples", "argocd-health", "argocd-cm.yaml")
	updateArgoCD        = flag.Bool("update", false, "rewrite docs/examples/argocd-health/argocd-cm.yaml from health.lua")
)

var healthKinds = []string{"LLMRoute", "ProviderBackend", "TeamBudget", "TeamRollout"}

// healthKey is the argocd-cm key of a kind's health check: resource.customizations.health.<group>_<kind>.
func healthKey(kind string) string {
	return "resource.customizations.health." + v1alpha1.GroupVersion.Group + "_" + kind
}

const healthConfigMapHeader = `# Argo CD health checks for llm-gateway's custom resources (docs/argocd.md). Merge these keys
# into the argocd-cm ConfigMap of Argo CD's namespace, e.g.
#   kubectl -n argocd patch configmap argocd-cm --patch-file docs/examples/argocd-health/argocd-cm.yaml
# or through the values of the chart that installs Argo CD (configs.cm). Each key holds the same
# script, health.lua in this directory; this file is generated from it
# (go test ./test/operator -run TestArgoCDConfigMapShipsTheScript -update).
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
data:
`

func renderHealthConfigMap(script string) string {
	var b strings.Builder
	b.WriteString(healthConfigMapHeader)
	for _, kind := range healthKinds {
		b.WriteString("  " + healthKey(kind) + ": |\n")
		for _, line := range strings.SplitAfter(script, "\n") {
			if strings.TrimSpace(line) == "" {
				b.WriteString(strings.TrimLeft(line, " \t"))
				continue
			}
			b.WriteString("    " + line)
		}
	}
	return b.String()
}

// TestArgoCDConfigMapShipsTheScript: argocd-cm.yaml registers health.lua, unchanged, for each
// of the four kinds and nothing else.
func TestArgoCDConfigMapShipsTheScript(t *testing.T) {
	script, err := os.ReadFile(healthScriptPath)
	require.NoError(t, err)
	if *updateArgoCD {
		require.NoError(t, os.WriteFile(healthConfigMapPath, []byte(renderHealthConfigMap(string(script))), 0o644))
	}
	scripts := healthScripts(t)
	require.Len(t, scripts, len(healthKinds))
	for _, kind := range healthKinds {
		require.Equal(t, string(script), scripts[kind], "%s in %s differs from %s: go test ./test/operator -run TestArgoCDConfigMapShipsTheScript -update",
			healthKey(kind), healthConfigMapPath, healthScriptPath)
	}
}

// healthScripts returns the script argocd-cm.yaml registers for each kind of the group.
func healthScripts(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(healthConfigMapPath)
	require.NoError(t, err)
	var cm corev1.ConfigMap
	require.NoError(t, yaml.UnmarshalStrict(data, &cm), healthConfigMapPath)
	require.Equal(t, "argocd-cm", cm.Name)
	out := map[string]string{}
	for key, value := range cm.Data {
		kind, ok := strings.CutPrefix(key, "resource.customizations.health."+v1alpha1.GroupVersion.Group+"_")
		require.True(t, ok, "unexpected key %s in %s", key, healthConfigMapPath)
		require.Contains(t, healthKinds, kind, "%s names no kind of the group", key)
		out[kind] = value
	}
	return out
}

// health is what Argo CD reads from a health script's result.
type health struct {
	Status, Message string
}

var healthStatuses = []string{"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

// runHealthScript runs a health script the way Argo CD's controller runs a custom check from
// argocd-cm: only the package, base and table libraries, the object as the global obj (JSON
// numbers as Lua numbers), the script's return value read as a table with status and message.
func runHealthScript(script string, obj map[string]any) (health, error) {
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return health{}, fmt.Errorf("open %q: %w", lib.name, err)
		}
	}
	// Argo CD gives a script one second; this bound only keeps a script that loops forever
	// from hanging the test.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(script); err != nil {
		return health{}, fmt.Errorf("run the script: %w", err)
	}
	tbl, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return health{}, fmt.Errorf("the script returned %s, not a table", L.Get(-1).Type())
	}
	status, ok := tbl.RawGetString("status").(lua.LString)
	if !ok || !slices.Contains(healthStatuses, string(status)) {
		return health{}, fmt.Errorf("the script returned status %v: Argo CD turns it into Unknown", tbl.RawGetString("status"))
	}
	h := health{Status: string(status)}
	switch m := tbl.RawGetString("message").(type) {
	case lua.LString:
		h.Message = string(m)
	case *lua.LNilType:
	default:
		return health{}, fmt.Errorf("the script returned message %v (%s), not a string", m, m.Type())
	}
	return h, nil
}

func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(L, item))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetString(k, toLua(L, item))
		}
		return t
	}
	panic(fmt.Sprintf("unexpected %T in an object", v))
}

// want is a condition an object must have (at its current generation) before its health is
// checked; a message prefix too when prefix is set.
type want struct {
	typ    string
	status metav1.ConditionStatus
	reason string
	prefix string
}

// observe reads obj from the API server as unstructured JSON, as Argo CD's controller sees it,
// until the read shows every wanted condition, and returns that read: the health check then
// runs on exactly the object whose state was checked.
func observe(t *testing.T, obj client.Object, conds ...want) *unstructured.Unstructured {
	t.Helper()
	gvk, err := apiutil.GVKForObject(obj, k8s.Scheme())
	require.NoError(t, err)
	var seen *unstructured.Unstructured
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		if !assert.NoError(c, k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), u)) {
			return
		}
		var st v1alpha1.CommonStatus
		if s, ok := u.Object["status"].(map[string]any); ok {
			assert.NoError(c, runtime.DefaultUnstructuredConverter.FromUnstructured(s, &st))
		}
		assert.Equal(c, u.GetGeneration(), st.ObservedGeneration, "observedGeneration")
		for _, w := range conds {
			got := meta.FindStatusCondition(st.Conditions, w.typ)
			if !assert.NotNil(c, got, "no %s condition", w.typ) {
				continue
			}
			assert.Equal(c, []any{w.status, w.reason, u.GetGeneration()}, []any{got.Status, got.Reason, got.ObservedGeneration}, "%s: %+v", w.typ, *got)
			assert.True(c, strings.HasPrefix(got.Message, w.prefix), "%s: %q does not start with %q", w.typ, got.Message, w.prefix)
		}
		seen = u
	}, timeout, tick, "%T %s/%s", obj, obj.GetNamespace(), obj.GetName())
	return seen
}

var programmed = want{v1alpha1.ConditionProgrammed, metav1.ConditionTrue, v1alpha1.ReasonProgrammed, "1/1 replicas at version "}

func healthOf(t *testing.T, scripts map[string]string, u *unstructured.Unstructured) health {
	t.Helper()
	script, ok := scripts[u.GetKind()]
	require.True(t, ok, "no health check registered for %s", u.GetKind())
	h, err := runHealthScript(script, u.Object)
	require.NoError(t, err, "%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
	return h
}

func requireHealth(t *testing.T, scripts map[string]string, u *unstructured.Unstructured, status, message string) {
	t.Helper()
	h := healthOf(t, scripts, u)
	require.Equal(t, status, h.Status, "%s %s/%s: %q\nstatus: %v", u.GetKind(), u.GetNamespace(), u.GetName(), h.Message, u.Object["status"])
	require.Contains(t, h.Message, message, "%s %s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
}

// playGatewayPod long-polls the snapshot server as one gateway pod that applies every version
// it is sent, until the returned stop function is called.
func playGatewayPod(c *http.Client, auth, name string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		applied := ""
		for ctx.Err() == nil {
			q := url.Values{"pod": {name}, "applied": {applied}, "wait": {"1"}}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, snapshotURL+"/v1/snapshot?"+q.Encode(), nil)
			if err != nil {
				return
			}
			req.Header.Set("Authorization", auth)
			resp, err := c.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					applied = resp.Header.Get("X-Snapshot-Version")
				}
			}
			if err != nil || (resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotModified) {
				select { // back off before the next attempt
				case <-ctx.Done():
				case <-time.After(tick):
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

var onlyReplica = regexp.MustCompile(`^1/1 replicas at version [0-9a-f]{16}$`)

// TestArgoCDHealthOfRealObjects drives objects of each kind into each state with the real
// operator and runs the shipped health check on them as read back from the API server.
//
// It does not run in parallel and comes (by file name) before the tests of replicas_test.go:
// it plays the only gateway pod, so that Programmed can become True, and it waits for that
// pod to be forgotten before it returns, so that the replica counts of the tests after it are
// exact.
func TestArgoCDHealthOfRealObjects(t *testing.T) {
	requireEnvtest(t)
	scripts := healthScripts(t)
	ns := namespace(t)
	stopPod := playGatewayPod(snapshotClient(t), "Bearer "+secretToken(t, tokenSecretA), "argocd-health-pod")
	podRunning := true
	rt := &v1alpha1.LLMRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gpt"}}
	defer func() {
		if podRunning { // the test failed: still leave no pod counted for the tests after it
			stopPod()
			_ = waitFor(func() bool {
				err := k8s.Get(context.Background(), client.ObjectKeyFromObject(rt), rt)
				c := meta.FindStatusCondition(rt.Status.Conditions, v1alpha1.ConditionProgrammed)
				return err != nil || (c != nil && strings.HasPrefix(c.Message, "0/0 "))
			})
		}
	}()
	ctx := context.Background()

	// Just created: the API server's answer to the create carries no status yet.
	created := toUnstructured(t, route(ns, "gpt", v1alpha1.ShapeOpenAI, []string{"argocd-health-gpt"}, "openai"))
	require.NoError(t, k8s.Create(ctx, created))
	require.Equal(t, "Progressing", healthOf(t, scripts, created).Status)
	require.Contains(t, healthOf(t, scripts, created).Message, "waiting for the llm-gateway operator to report")

	// Accepted, resolved and programmed on the one gateway replica: Healthy, every kind.
	pb := backend(ns, "openai", v1alpha1.ProviderOpenAI, "keys")
	ro := rollout(ns, "argocd-health", "argocd-health")
	ro.Spec.APIKeys = []v1alpha1.APIKeySource{{SecretRef: v1alpha1.SecretKeyReference{Name: "keys", Key: "team"}}}
	tb := budget(ns, "argocd-health", "argocd-health", "10")
	create(t, secret(ns, "keys", map[string]string{"apiKey": "sk-argocd-health", "team": "team-key-argocd-health"}), pb, ro, tb)
	for _, obj := range []v1alpha1.Object{rt, pb, ro, tb} {
		u := observe(t, obj, programmed)
		h := healthOf(t, scripts, u)
		require.Equal(t, "Healthy", h.Status, h.Message)
		require.Regexp(t, onlyReplica, h.Message, "the message is Programmed's")
	}

	// Rejected (Accepted=False): Degraded, with the reason and the operator's message.
	dup := route(ns, "gpt-dup", v1alpha1.ShapeOpenAI, []string{"argocd-health-gpt"}, "openai")
	create(t, dup)
	u := observe(t, dup, want{typ: v1alpha1.ConditionAccepted, status: metav1.ConditionFalse, reason: v1alpha1.ReasonConflicted})
	requireHealth(t, scripts, u, "Degraded", "Accepted=False Conflicted: model \"argocd-health-gpt\" is already claimed by LLMRoute "+ns+"/gpt")

	// References that do not resolve (ResolvedRefs=False): Degraded, for each kind. The route
	// still serves on its first backend, and is Degraded all the same.
	halfRoute := route(ns, "gpt-failover", v1alpha1.ShapeOpenAI, []string{"argocd-health-gpt-2"}, "openai", "azure")
	noSecret := backend(ns, "anthropic", v1alpha1.ProviderAnthropic, "absent")
	noKeys := rollout(ns, "argocd-health-nokeys", "argocd-health-nokeys")
	noKeys.Spec.APIKeys = []v1alpha1.APIKeySource{{SecretRef: v1alpha1.SecretKeyReference{Name: "absent", Key: "k"}}}
	noTeam := budget(ns, "orphan", "argocd-health-nobody", "5")
	create(t, halfRoute, noSecret, noKeys, noTeam)
	for _, c := range []struct {
		obj    v1alpha1.Object
		reason string
	}{
		{halfRoute, v1alpha1.ReasonBackendNotFound},
		{noSecret, v1alpha1.ReasonSecretNotFound},
		{noKeys, v1alpha1.ReasonSecretNotFound},
		{noTeam, v1alpha1.ReasonTeamNotFound},
	} {
		u := observe(t, c.obj, want{typ: v1alpha1.ConditionResolvedRefs, status: metav1.ConditionFalse, reason: c.reason})
		message, _, _ := unstructured.NestedString(findCondition(t, u, v1alpha1.ConditionResolvedRefs), "message")
		requireHealth(t, scripts, u, "Degraded", "ResolvedRefs=False "+c.reason+": "+message)
	}

	// The kill switch, once every replica serves it: Suspended.
	update(t, tb, func() { tb.Spec.Suspended = true })
	u = observe(t, tb, want{typ: v1alpha1.ConditionSuspended, status: metav1.ConditionTrue, reason: v1alpha1.ReasonKillSwitch}, programmed)
	requireHealth(t, scripts, u, "Suspended", "Suspended=True KillSwitch: spec.suspended is true")

	// A spec change the operator has not seen yet: the API server's answer to the update has
	// the new generation and the old status. Progressing.
	var changed *unstructured.Unstructured
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		changed = &unstructured.Unstructured{}
		changed.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("TeamBudget"))
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(tb), changed); err != nil {
			return err
		}
		require.NoError(t, unstructured.SetNestedField(changed.Object, false, "spec", "suspended"))
		return k8s.Update(ctx, changed)
	}))
	observed, _, err := unstructured.NestedInt64(changed.Object, "status", "observedGeneration")
	require.NoError(t, err)
	require.Less(t, observed, changed.GetGeneration())
	h := healthOf(t, scripts, changed)
	require.Equal(t, "Progressing", h.Status)
	require.Equal(t, fmt.Sprintf("waiting for the llm-gateway operator to compile generation %d (the status describes generation %d)",
		changed.GetGeneration(), observed), h.Message)
	u = observe(t, tb, want{typ: v1alpha1.ConditionSuspended, status: metav1.ConditionFalse, reason: v1alpha1.ReasonKillSwitchOff}, programmed)
	requireHealth(t, scripts, u, "Healthy", "1/1 replicas at version ")

	// The gateway's counters: a Hard limit reached and a runaway trip are Degraded (calls are
	// refused and nobody chose it); a Soft limit reached is still Healthy, and says so.
	now := time.Now()
	zero := func() map[v1alpha1.Window]int64 {
		return map[v1alpha1.Window]int64{v1alpha1.WindowHour: 0, v1alpha1.WindowDay: 0, v1alpha1.WindowWeek: 0, v1alpha1.WindowMonth: 0}
	}
	spentDay := zero()
	spentDay[v1alpha1.WindowDay] = 10_000_000
	budgets.set("argocd-health-spent", controllers.BudgetState{Spent: spentDay})
	budgets.set("argocd-health-runaway", controllers.BudgetState{Spent: zero(), RunawayTripped: true, LastTrip: &controllers.RunawayTrip{
		At: now, Until: now.Add(time.Hour), RateMicros: 30_000_000, ThresholdMicros: 20_000_000,
	}})
	softDay := zero()
	softDay[v1alpha1.WindowDay] = 6_000_000
	budgets.set("argocd-health-soft", controllers.BudgetState{Spent: softDay})
	spent := budget(ns, "spent", "argocd-health-spent", "10")
	runaway := budget(ns, "runaway", "argocd-health-runaway", "10")
	runaway.Spec.Runaway = &v1alpha1.RunawayBreaker{SpendPerMinute: "20", Cooldown: metav1.Duration{Duration: time.Hour}}
	soft := budget(ns, "soft", "argocd-health-soft", "10")
	soft.Spec.Limits = append(soft.Spec.Limits, v1alpha1.SpendLimit{Window: v1alpha1.WindowDay, Amount: "5", Enforcement: v1alpha1.EnforcementSoft})
	create(t, rollout(ns, "argocd-health-spent", "argocd-health-spent"), spent,
		rollout(ns, "argocd-health-runaway", "argocd-health-runaway"), runaway,
		rollout(ns, "argocd-health-soft", "argocd-health-soft"), soft)
	for _, c := range []struct {
		obj               *v1alpha1.TeamBudget
		condition, reason string
		health, message   string
	}{
		{spent, v1alpha1.ConditionExhausted, v1alpha1.ReasonHardLimitReached, "Degraded", "Exhausted=True HardLimitReached: Day: spent $10.00 of the $10.00 Hard limit"},
		{runaway, v1alpha1.ConditionRunawayTripped, v1alpha1.ReasonRunawayTripped, "Degraded", "RunawayTripped=True RunawayTripped: spent $30.00 in one minute"},
		{soft, v1alpha1.ConditionSoftLimitReached, v1alpha1.ReasonSoftLimitReached, "Healthy", "; SoftLimitReached=True SoftLimitReached: Day: spent $6.00 of the $5.00 Soft limit"},
	} {
		u := observe(t, c.obj, want{typ: c.condition, status: metav1.ConditionTrue, reason: c.reason}, programmed)
		requireHealth(t, scripts, u, c.health, c.message)
	}

	// No gateway replica serves the newest snapshot (here: none is connected any more):
	// Progressing. Waiting for 0/0 also makes sure the next tests count only their own pods.
	stopPod()
	podRunning = false
	for _, obj := range []v1alpha1.Object{rt, pb, ro, tb} {
		u := observe(t, obj, want{v1alpha1.ConditionProgrammed, metav1.ConditionFalse, v1alpha1.ReasonPending, "0/0 replicas at version "})
		requireHealth(t, scripts, u, "Progressing", "Programmed=False Pending: 0/0 replicas at version ")
	}
}

func findCondition(t *testing.T, u *unstructured.Unstructured, typ string) map[string]any {
	t.Helper()
	conds, _, err := unstructured.NestedSlice(u.Object, "status", "conditions")
	require.NoError(t, err)
	for _, c := range conds {
		if m := c.(map[string]any); m["type"] == typ {
			return m
		}
	}
	t.Fatalf("%s %s has no %s condition", u.GetKind(), u.GetName(), typ)
	return nil
}

func toUnstructured(t *testing.T, obj client.Object) *unstructured.Unstructured {
	t.Helper()
	gvk, err := apiutil.GVKForObject(obj, k8s.Scheme())
	require.NoError(t, err)
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	require.NoError(t, err)
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u
}

// TestArgoCDHealthOfStatesEnvtestCannotReach covers what the suite's operator cannot produce:
// its counters never fail (CounterStoreAvailable=False is driven with a real Redis in
// test/budget/operator), and objects written by an older or newer operator.
func TestArgoCDHealthOfStatesEnvtestCannotReach(t *testing.T) {
	script, err := os.ReadFile(healthScriptPath)
	require.NoError(t, err)
	cond := func(typ, status, reason, message string, gen int64) map[string]any {
		return map[string]any{"type": typ, "status": status, "reason": reason, "message": message, "observedGeneration": gen,
			"lastTransitionTime": "2026-01-01T00:00:00Z"}
	}
	healthy := func(gen int64) []any {
		return []any{
			cond("Accepted", "True", "Accepted", "the spec is valid", gen),
			cond("ResolvedRefs", "True", "ResolvedRefs", "every reference resolved", gen),
			cond("Programmed", "True", "Programmed", "3/3 replicas at version 0123456789abcdef", gen),
		}
	}
	object := func(kind string, gen int64, status map[string]any) map[string]any {
		o := map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": kind,
			"metadata": map[string]any{"name": "x", "namespace": "llm", "generation": gen},
			"spec":     map[string]any{},
		}
		if status != nil {
			o["status"] = status
		}
		return o
	}
	for name, c := range map[string]struct {
		obj  map[string]any
		want health
	}{
		"counter store unavailable": {
			object("TeamBudget", 2, map[string]any{"observedGeneration": int64(2), "conditions": append(healthy(2),
				cond("Suspended", "False", "KillSwitchOff", "spec.suspended is false", 2),
				cond("CounterStoreAvailable", "False", "StoreUnavailable", "cannot read the team's budget counters: dial tcp: connection refused", 2))}),
			health{"Degraded", "CounterStoreAvailable=False StoreUnavailable: cannot read the team's budget counters: dial tcp: connection refused"},
		},
		"several budget problems at once": {
			object("TeamBudget", 1, map[string]any{"observedGeneration": int64(1), "conditions": append(healthy(1),
				cond("RunawayTripped", "True", "RunawayTripped", "tripped", 1),
				cond("Exhausted", "True", "HardLimitReached", "spent", 1))}),
			health{"Degraded", "RunawayTripped=True RunawayTripped: tripped; Exhausted=True HardLimitReached: spent"},
		},
		"kill switch before other budget problems": {
			object("TeamBudget", 1, map[string]any{"observedGeneration": int64(1), "conditions": append(healthy(1),
				cond("Exhausted", "True", "HardLimitReached", "spent", 1),
				cond("Suspended", "True", "KillSwitch", "spec.suspended is true", 1))}),
			health{"Suspended", "Suspended=True KillSwitch: spec.suspended is true"},
		},
		"budget conditions of another kind are ignored": {
			object("LLMRoute", 1, map[string]any{"observedGeneration": int64(1), "conditions": append(healthy(1),
				cond("Suspended", "True", "KillSwitch", "not a budget", 1))}),
			health{"Healthy", "3/3 replicas at version 0123456789abcdef"},
		},
		"a condition left from an older generation": {
			object("ProviderBackend", 3, map[string]any{"observedGeneration": int64(3), "conditions": []any{
				cond("Accepted", "True", "Accepted", "the spec is valid", 3),
				cond("ResolvedRefs", "True", "ResolvedRefs", "every reference resolved", 3),
				cond("Programmed", "True", "Programmed", "3/3 replicas at version 0123456789abcdef", 2),
			}}),
			health{"Progressing", "waiting for the llm-gateway operator to update Programmed for generation 3"},
		},
		"a condition missing": {
			object("TeamRollout", 1, map[string]any{"observedGeneration": int64(1), "conditions": healthy(1)[:2]}),
			health{"Progressing", "waiting for the llm-gateway operator to set Accepted, ResolvedRefs and Programmed"},
		},
		"an empty status": {
			object("TeamRollout", 1, map[string]any{}),
			health{"Progressing", "waiting for the llm-gateway operator to report on this object"},
		},
		"no reason or message": {
			object("LLMRoute", 1, map[string]any{"observedGeneration": int64(1), "conditions": []any{
				map[string]any{"type": "Accepted", "status": "False"}, healthy(1)[1], healthy(1)[2],
			}}),
			health{"Degraded", "Accepted=False"},
		},
		"not in the snapshot for a reason other than Pending": {
			object("LLMRoute", 1, map[string]any{"observedGeneration": int64(1), "conditions": []any{
				healthy(1)[0], healthy(1)[1], cond("Programmed", "False", "Invalid", "not in the snapshot: x", 1),
			}}),
			health{"Degraded", "Programmed=False Invalid: not in the snapshot: x"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := runHealthScript(string(script), c.obj)
			require.NoError(t, err)
			require.Equal(t, c.want, got)
		})
	}
}

// The runner is at least as strict as Argo CD: a script that uses a library Argo CD does not
// open for custom checks (string, math; of os it opens a safe part, here none), or that returns
// no valid status, fails.
func TestHealthScriptRunnerIsArgoCDsSandbox(t *testing.T) {
	obj := map[string]any{"kind": "LLMRoute"}
	for name, script := range map[string]string{
		"string library": `return {status = string.format("%s", "Healthy")}`,
		"os library":     `return {status = "Healthy", message = os.getenv("HOME")}`,
		"invalid status": `return {status = "Fine"}`,
		"no table":       `return "Healthy"`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := runHealthScript(script, obj)
			require.Error(t, err)
		})
	}
	h, err := runHealthScript(`local t = {} table.insert(t, obj.kind) return {status = "Healthy", message = table.concat(t, ",")}`, obj)
	require.NoError(t, err)
	require.Equal(t, health{"Healthy", "LLMRoute"}, h)
}
