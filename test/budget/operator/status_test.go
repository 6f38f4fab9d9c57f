// Package operator checks, against a real kube-apiserver and etcd (envtest) and a real
// redis-server, that the operator writes the spend the gateway's budget Managers recorded in
// Redis into TeamBudget.status (spent, reserved, remaining, phase).
package operator

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers"
	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/test/redistest"
)

var restConfig *rest.Config

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // the test skips itself
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run `make test`, or "+
			"KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh) go test ./test/budget/operator/ (or -short to skip)")
		os.Exit(1)
	}
	ctrl.SetLogger(logr.Discard())
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: os.Getenv("KUBEBUILDER_ASSETS"),
	}
	var err error
	if restConfig, err = env.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start envtest:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop envtest:", err)
	}
	os.Exit(code)
}

// startOperator runs the operator with a Redis-backed BudgetStateReader until the test ends.
func startOperator(t *testing.T, redisURL string) client.Client {
	t.Helper()
	scheme, err := controllers.NewScheme()
	require.NoError(t, err)
	k8s, err := client.New(restConfig, client.Options{Scheme: scheme})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "llm-gateway-system"}}))
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	require.NoError(t, err)
	reader, err := controllers.NewRedisBudgetState(redisURL)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, err = controllers.Setup(ctx, mgr, controllers.Options{
		OperatorNamespace: "llm-gateway-system", SnapshotListener: l, SnapshotToken: []byte("token"),
		DefaultBudget: controllers.DefaultBudgetFlags{Day: "50.00", OnStoreUnavailable: snapshot.FailClosed, UnpricedModels: snapshot.UnpricedReject},
		BudgetState:   reader,
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		_ = reader.Close()
	})
	return k8s
}

// gatewayPod is a budget Manager as a gateway pod runs it, on the same Redis.
func gatewayPod(t *testing.T, redisURL string) *budget.Manager {
	s, err := budget.NewRedisStore(redisURL)
	require.NoError(t, err)
	m := budget.NewManager(s, budget.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StoreTimeout: 5 * time.Second})
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestTeamBudgetStatusReflectsSpendFromRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest: skipped with -short")
	}
	srv := redistest.Start(t)
	k8s := startOperator(t, srv.URL())
	pod := gatewayPod(t, srv.URL())
	ctx := context.Background()

	const team = "spendy"
	// What the gateway enforces does not matter here: the counters are per team.
	gw := &snapshot.Budget{Source: "ns/spendy", OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject,
		Limits:  []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 100_000_000, Enforcement: snapshot.EnforceHard}},
		Runaway: &snapshot.Runaway{SpendPerMinuteMicros: 2_000_000, CooldownSeconds: 600}}
	spend := func(micros int64) {
		res, err := pod.Admit(ctx, budget.Request{Team: team, Budget: gw, RequestID: uuid.NewString(), EstimateMicros: micros, Priced: true, EstimateTokens: 10})
		require.NoError(t, err)
		require.NoError(t, pod.Settle(ctx, res, micros, 10))
	}
	spend(600_000) // $0.60
	held, err := pod.Admit(ctx, budget.Request{Team: team, Budget: gw, RequestID: uuid.NewString(), EstimateMicros: 100_000, Priced: true, EstimateTokens: 10})
	require.NoError(t, err)

	ns := "budget-status"
	require.NoError(t, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	require.NoError(t, k8s.Create(ctx, &v1alpha1.TeamRollout{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: team},
		Spec: v1alpha1.TeamRolloutSpec{Team: team, Stage: v1alpha1.StageGateway, Products: []v1alpha1.Product{"spendy"}}}))
	tb := &v1alpha1.TeamBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: team}, Spec: v1alpha1.TeamBudgetSpec{
		Team: team,
		Limits: []v1alpha1.SpendLimit{
			{Window: v1alpha1.WindowDay, Amount: "1.00", Enforcement: v1alpha1.EnforcementHard},
			{Window: v1alpha1.WindowMonth, Amount: "0.50", Enforcement: v1alpha1.EnforcementSoft},
		}}}
	require.NoError(t, k8s.Create(ctx, tb))

	status := func() v1alpha1.TeamBudgetStatus {
		var got v1alpha1.TeamBudget
		require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(tb), &got))
		return got.Status
	}
	day := func(s v1alpha1.TeamBudgetStatus) v1alpha1.WindowStatus {
		for _, w := range s.Windows {
			if w.Window == v1alpha1.WindowDay {
				return w
			}
		}
		return v1alpha1.WindowStatus{}
	}
	eventually := func(what string, cond func(v1alpha1.TeamBudgetStatus) bool) {
		t.Helper()
		var last v1alpha1.TeamBudgetStatus
		require.Eventually(t, func() bool { last = status(); return cond(last) }, 60*time.Second, 100*time.Millisecond,
			"%s; last status: %+v", what, last)
	}
	// poke makes the operator reconcile now instead of at its next refresh.
	poke := func(v string) {
		var got v1alpha1.TeamBudget
		require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(tb), &got))
		if got.Annotations == nil {
			got.Annotations = map[string]string{}
		}
		got.Annotations["test/poke"] = v
		require.NoError(t, k8s.Update(ctx, &got))
	}

	eventually("spend, holds and the soft limit show", func(s v1alpha1.TeamBudgetStatus) bool {
		d := day(s)
		return s.Phase == v1alpha1.PhaseSoftLimitReached && d.Spent == v1alpha1.FormatMicros(600_000) &&
			d.Reserved == v1alpha1.FormatMicros(100_000) && d.Remaining == v1alpha1.FormatMicros(300_000) &&
			s.Spent == v1alpha1.FormatMicros(600_000) && s.Limit == v1alpha1.FormatMicros(1_000_000)
	})

	require.NoError(t, pod.Settle(ctx, held, 100_000, 10))
	spend(400_000) // day: $1.10 of $1.00
	poke("1")
	eventually("the exhausted Hard limit shows", func(s v1alpha1.TeamBudgetStatus) bool {
		d := day(s)
		return s.Phase == v1alpha1.PhaseExhausted && d.Spent == v1alpha1.FormatMicros(1_100_000) && d.Remaining == v1alpha1.FormatMicros(0)
	})

	spend(1_000_000) // $2.10 within a minute: the runaway breaker trips
	_, _, tripped := pod.Suspended(team)
	require.True(t, tripped)
	poke("2")
	eventually("the runaway trip shows", func(s v1alpha1.TeamBudgetStatus) bool { return s.Phase == v1alpha1.PhaseRunawayTripped })
}
