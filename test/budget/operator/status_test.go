// Package operator checks, against a real kube-apiserver and etcd (envtest) and a real
// redis-server, that the operator writes the spend the gateway's budget Managers recorded in
// Redis into TeamBudget.status (spent, reserved, remaining, phase), with the budget
// conditions and their events: Soft limit crossed, Hard limit reached, runaway trip and its
// end, Redis unreachable and back, kill switch.
//
// Every test runs its own operator, redis-server and budget Manager (a gateway pod); the
// operator and the Manager share one injected clock, so a cooldown ends when the test moves
// the clock. The operator re-reads the counters every refreshInterval: no test changes a spec
// to make it look again.
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
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers"
	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
	"github.com/posthog/llm-gateway/test/redistest"
)

const (
	// timeout bounds every wait: generous, the machine may be busy. Tests assert that things
	// happen, never how fast.
	timeout = 60 * time.Second
	tick    = 100 * time.Millisecond
	// refreshInterval is the operator's --budget-refresh-interval in these tests.
	refreshInterval = 200 * time.Millisecond
)

var (
	restConfig *rest.Config
	// runs numbers the tests' namespaces and teams: envtest never deletes namespaces, and
	// teams are unique cluster-wide, so a second run (-count=2) needs new names.
	runs atomic.Int64
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // the tests skip themselves
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
	if code == 0 {
		// Operators, Managers and Redis clients are stopped: nothing of ours may still run.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// harness is one test's operator, Redis, gateway pod and clock.
type harness struct {
	t     *testing.T
	ctx   context.Context
	k8s   client.Client
	redis *redistest.Server
	clock *clock.Fake
	pod   *budget.Manager
	ns    string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("envtest: skipped with -short")
	}
	h := &harness{t: t, ctx: context.Background(), redis: redistest.Start(t),
		// Ten minutes into an hour: moving the clock by a cooldown stays in the same windows.
		clock: clock.NewFake(time.Now().UTC().Truncate(time.Hour).Add(10 * time.Minute))}
	h.k8s = h.startOperator()
	s, err := budget.NewRedisStore(h.redis.URL())
	require.NoError(t, err)
	h.pod = budget.NewManager(s, budget.Options{Clock: h.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StoreTimeout: 5 * time.Second})
	t.Cleanup(func() { _ = h.pod.Close() })
	h.ns = fmt.Sprintf("budget-%d", runs.Add(1))
	require.NoError(t, h.k8s.Create(h.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}))
	return h
}

// startOperator runs the operator with a Redis-backed BudgetStateReader until the test ends.
func (h *harness) startOperator() client.Client {
	t := h.t
	scheme, err := controllers.NewScheme()
	require.NoError(t, err)
	k8s, err := client.New(restConfig, client.Options{Scheme: scheme})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "llm-gateway-system"}}); !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	require.NoError(t, err)
	reader, err := controllers.NewRedisBudgetState(h.redis.URL())
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, err = controllers.Setup(ctx, mgr, controllers.Options{
		OperatorNamespace: "llm-gateway-system", SnapshotListener: l,
		DefaultBudget: controllers.DefaultBudgetFlags{Day: "50.00", OnStoreUnavailable: snapshot.FailClosed, UnpricedModels: snapshot.UnpricedReject},
		BudgetState:   reader, BudgetRefresh: refreshInterval, Clock: h.clock,
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

// team returns a team name unique in the cluster.
func (h *harness) team(base string) string { return base + "-" + strings.TrimPrefix(h.ns, "budget-") }

// budget creates a TeamRollout and a TeamBudget for team in the test's namespace.
func (h *harness) budget(team string, spec v1alpha1.TeamBudgetSpec) *v1alpha1.TeamBudget {
	h.t.Helper()
	spec.Team = team
	require.NoError(h.t, h.k8s.Create(h.ctx, &v1alpha1.TeamRollout{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: team},
		Spec: v1alpha1.TeamRolloutSpec{Team: team, Stage: v1alpha1.StageGateway, Products: []v1alpha1.Product{v1alpha1.Product(team)}}}))
	tb := &v1alpha1.TeamBudget{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: team}, Spec: spec}
	require.NoError(h.t, h.k8s.Create(h.ctx, tb))
	return tb
}

// admit asks the gateway pod to admit a call of the given worst-case cost.
func (h *harness) admit(team string, gw *snapshot.Budget, micros int64) (*budget.Reservation, error) {
	return h.pod.Admit(h.ctx, budget.Request{Team: team, Budget: gw, RequestID: uuid.NewString(), EstimateMicros: micros, Priced: true, EstimateTokens: 10})
}

// spend admits and settles a call that costs micros.
func (h *harness) spend(team string, gw *snapshot.Budget, micros int64) {
	h.t.Helper()
	res, err := h.admit(team, gw, micros)
	require.NoError(h.t, err)
	require.NoError(h.t, h.pod.Settle(h.ctx, res, micros, 10))
}

// wait waits until the budget's status satisfies cond and returns it.
func (h *harness) wait(tb *v1alpha1.TeamBudget, what string, cond func(v1alpha1.TeamBudgetStatus) bool) v1alpha1.TeamBudgetStatus {
	h.t.Helper()
	var last v1alpha1.TeamBudgetStatus
	require.Eventually(h.t, func() bool {
		var got v1alpha1.TeamBudget
		require.NoError(h.t, h.k8s.Get(h.ctx, client.ObjectKeyFromObject(tb), &got))
		last = got.Status
		return cond(last)
	}, timeout, tick, "%s; last status: %+v", what, &last)
	return last
}

// waitCondition waits until the budget's condition typ has the status and reason.
func (h *harness) waitCondition(tb *v1alpha1.TeamBudget, typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	h.t.Helper()
	var got metav1.Condition
	require.EventuallyWithT(h.t, func(c *assert.CollectT) {
		var b v1alpha1.TeamBudget
		if !assert.NoError(c, h.k8s.Get(h.ctx, client.ObjectKeyFromObject(tb), &b)) {
			return
		}
		cond := meta.FindStatusCondition(b.Status.Conditions, typ)
		if !assert.NotNil(c, cond, "no %s condition in %+v", typ, b.Status.Conditions) {
			return
		}
		assert.Equal(c, status, cond.Status, "%s: %+v", typ, *cond)
		assert.Equal(c, reason, cond.Reason, "%s: %+v", typ, *cond)
		got = *cond
	}, timeout, tick)
	return got
}

// events returns the events about the budget with the reason, oldest first.
func (h *harness) events(tb *v1alpha1.TeamBudget, reason string) []eventsv1.Event {
	h.t.Helper()
	var b v1alpha1.TeamBudget
	require.NoError(h.t, h.k8s.Get(h.ctx, client.ObjectKeyFromObject(tb), &b))
	var list eventsv1.EventList
	require.NoError(h.t, h.k8s.List(h.ctx, &list, client.InNamespace(h.ns)))
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.UID == b.UID && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// requireOneEvent checks that exactly one event with the reason was emitted about the budget
// (a repeated event would be a second object or a series on the first).
func (h *harness) requireOneEvent(tb *v1alpha1.TeamBudget, reason, msg string) {
	h.t.Helper()
	events := h.events(tb, reason)
	require.Len(h.t, events, 1, msg)
	require.Nil(h.t, events[0].Series, msg)
}

// waitEvent waits for an event about the budget with the type and reason and returns its note.
func (h *harness) waitEvent(tb *v1alpha1.TeamBudget, eventType, reason string) string {
	h.t.Helper()
	var note string
	require.Eventually(h.t, func() bool {
		for _, e := range h.events(tb, reason) {
			if e.Type == eventType {
				note = e.Note
				return true
			}
		}
		return false
	}, timeout, tick, "no %s event %s", eventType, reason)
	return note
}

// phaseMetric returns the phase llm_gateway_operator_budget_phase shows for team ("" if none).
func phaseMetric(t *testing.T, team string) string {
	t.Helper()
	families, err := metrics.Registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "llm_gateway_operator_budget_phase" {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "team") == team && m.GetGauge().GetValue() == 1 {
				return label(m, "phase")
			}
		}
	}
	return ""
}

// counterValue returns the value of an unlabelled counter of the operator's registry.
func counterValue(t *testing.T, name string) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func windowOf(s v1alpha1.TeamBudgetStatus, w v1alpha1.Window, e v1alpha1.Enforcement) v1alpha1.WindowStatus {
	for _, ws := range s.Windows {
		if ws.Window == w && ws.Enforcement == e {
			return ws
		}
	}
	return v1alpha1.WindowStatus{}
}

func TestTeamBudgetStatusReflectsSpendFromRedis(t *testing.T) {
	h := newHarness(t)
	team := h.team("spendy")
	// What the gateway enforces does not matter here: the counters are per team.
	gw := &snapshot.Budget{Source: "ns/spendy", OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject,
		Limits:  []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 100_000_000, Enforcement: snapshot.EnforceHard}},
		Runaway: &snapshot.Runaway{SpendPerMinuteMicros: 2_000_000, CooldownSeconds: 600}}
	h.spend(team, gw, 600_000) // $0.60
	held, err := h.admit(team, gw, 100_000)
	require.NoError(t, err)

	tb := h.budget(team, v1alpha1.TeamBudgetSpec{Limits: []v1alpha1.SpendLimit{
		{Window: v1alpha1.WindowDay, Amount: "1.00", Enforcement: v1alpha1.EnforcementHard},
		{Window: v1alpha1.WindowMonth, Amount: "0.50", Enforcement: v1alpha1.EnforcementSoft},
	}})
	h.wait(tb, "spend, holds and the soft limit show", func(s v1alpha1.TeamBudgetStatus) bool {
		d := windowOf(s, v1alpha1.WindowDay, v1alpha1.EnforcementHard)
		return s.Phase == v1alpha1.PhaseSoftLimitReached && d.Spent == v1alpha1.FormatMicros(600_000) &&
			d.Reserved == v1alpha1.FormatMicros(100_000) && d.Remaining == v1alpha1.FormatMicros(300_000) &&
			s.Spent == v1alpha1.FormatMicros(600_000) && s.Limit == v1alpha1.FormatMicros(1_000_000)
	})

	// From here on, no spec change: the operator's periodic refresh finds the new figures.
	require.NoError(t, h.pod.Settle(h.ctx, held, 100_000, 10))
	h.spend(team, gw, 400_000) // day: $1.10 of $1.00
	st := h.wait(tb, "the exhausted Hard limit shows", func(s v1alpha1.TeamBudgetStatus) bool {
		d := windowOf(s, v1alpha1.WindowDay, v1alpha1.EnforcementHard)
		return s.Phase == v1alpha1.PhaseExhausted && d.Spent == v1alpha1.FormatMicros(1_100_000) && d.Remaining == v1alpha1.FormatMicros(0)
	})
	c := h.waitCondition(tb, v1alpha1.ConditionExhausted, metav1.ConditionTrue, v1alpha1.ReasonHardLimitReached)
	reset := windowOf(st, v1alpha1.WindowDay, v1alpha1.EnforcementHard).ResetsAt
	require.Equal(t, "Day: spent $1.10 of the $1.00 Hard limit, calls are rejected until it resets at "+reset.UTC().Format(time.RFC3339), c.Message)
	require.Equal(t, c.Message, h.waitEvent(tb, corev1.EventTypeWarning, v1alpha1.ReasonHardLimitReached))

	h.spend(team, gw, 1_000_000) // $2.10 within a minute: the runaway breaker trips
	_, _, tripped := h.pod.Suspended(team)
	require.True(t, tripped)
	h.wait(tb, "the runaway trip shows", func(s v1alpha1.TeamBudgetStatus) bool { return s.Phase == v1alpha1.PhaseRunawayTripped })
}

// A Soft limit crossed: condition, Warning event and phase SoftLimitReached, and calls go on.
func TestSoftLimitCrossed(t *testing.T) {
	h := newHarness(t)
	team := h.team("softy")
	gw := &snapshot.Budget{Source: "ns/softy", OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject,
		Limits: []snapshot.SpendLimit{
			{Window: snapshot.WindowDay, LimitMicros: 500_000, Enforcement: snapshot.EnforceSoft},
			{Window: snapshot.WindowDay, LimitMicros: 5_000_000, Enforcement: snapshot.EnforceHard},
		}}
	tb := h.budget(team, v1alpha1.TeamBudgetSpec{Limits: []v1alpha1.SpendLimit{
		{Window: v1alpha1.WindowDay, Amount: "0.50", Enforcement: v1alpha1.EnforcementSoft},
		{Window: v1alpha1.WindowDay, Amount: "5.00", Enforcement: v1alpha1.EnforcementHard},
	}})
	h.spend(team, gw, 300_000)
	h.wait(tb, "the first spend shows", func(s v1alpha1.TeamBudgetStatus) bool {
		return s.Phase == v1alpha1.PhaseActive && s.Spent == "0.30"
	})
	h.waitCondition(tb, v1alpha1.ConditionSoftLimitReached, metav1.ConditionFalse, v1alpha1.ReasonWithinSoftLimits)
	require.Empty(t, h.events(tb, v1alpha1.ReasonWithinSoftLimits), "a budget that appears within its limits makes no event")
	require.Equal(t, string(v1alpha1.PhaseActive), phaseMetric(t, team))

	h.spend(team, gw, 300_000) // $0.60 of the $0.50 Soft limit
	c := h.waitCondition(tb, v1alpha1.ConditionSoftLimitReached, metav1.ConditionTrue, v1alpha1.ReasonSoftLimitReached)
	require.Contains(t, c.Message, "Day: spent $0.60 of the $0.50 Soft limit, calls continue")
	require.Contains(t, h.waitEvent(tb, corev1.EventTypeWarning, v1alpha1.ReasonSoftLimitReached), "calls continue")
	h.wait(tb, "phase SoftLimitReached", func(s v1alpha1.TeamBudgetStatus) bool { return s.Phase == v1alpha1.PhaseSoftLimitReached })
	h.waitCondition(tb, v1alpha1.ConditionExhausted, metav1.ConditionFalse, v1alpha1.ReasonWithinHardLimits)
	require.Eventually(t, func() bool { return phaseMetric(t, team) == string(v1alpha1.PhaseSoftLimitReached) }, timeout, tick)

	// Calls continue past the Soft limit, and the gateway says it was crossed.
	res, err := h.admit(team, gw, 100_000)
	require.NoError(t, err)
	require.Equal(t, []string{"spend:Day"}, res.SoftCrossed)
	require.NoError(t, h.pod.Settle(h.ctx, res, 100_000, 10))
	h.wait(tb, "the spend after the crossing shows", func(s v1alpha1.TeamBudgetStatus) bool { return s.Spent == "0.70" })
	h.requireOneEvent(tb, v1alpha1.ReasonSoftLimitReached, "one event for the crossing, not one per refresh")
}

// A runaway trip: condition and Warning event while the breaker holds the team, cleared with a
// Normal event when the cooldown is over (the shared clock moves past it).
func TestRunawayTripAndCooldown(t *testing.T) {
	h := newHarness(t)
	team := h.team("loopy")
	gw := &snapshot.Budget{Source: "ns/loopy", OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject,
		Limits:  []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 100_000_000, Enforcement: snapshot.EnforceHard}},
		Runaway: &snapshot.Runaway{SpendPerMinuteMicros: 1_000_000, CooldownSeconds: 60}}
	tb := h.budget(team, v1alpha1.TeamBudgetSpec{
		Limits:  []v1alpha1.SpendLimit{{Window: v1alpha1.WindowDay, Amount: "100", Enforcement: v1alpha1.EnforcementHard}},
		Runaway: &v1alpha1.RunawayBreaker{SpendPerMinute: "1", Cooldown: metav1.Duration{Duration: time.Minute}},
	})
	h.waitCondition(tb, v1alpha1.ConditionRunawayTripped, metav1.ConditionFalse, v1alpha1.ReasonWithinSpendRate)

	h.spend(team, gw, 600_000)
	h.spend(team, gw, 600_000) // $1.20 within a minute against $1.00: tripped
	_, until, tripped := h.pod.Suspended(team)
	require.True(t, tripped)
	c := h.waitCondition(tb, v1alpha1.ConditionRunawayTripped, metav1.ConditionTrue, v1alpha1.ReasonRunawayTripped)
	require.Equal(t, "spent $1.20 in one minute, above the breaker's $1.00 per minute: calls are rejected until "+
		until.UTC().Format(time.RFC3339), c.Message)
	require.Equal(t, c.Message, h.waitEvent(tb, corev1.EventTypeWarning, v1alpha1.ReasonRunawayTripped))
	h.wait(tb, "phase RunawayTripped", func(s v1alpha1.TeamBudgetStatus) bool { return s.Phase == v1alpha1.PhaseRunawayTripped })
	require.Eventually(t, func() bool { return phaseMetric(t, team) == string(v1alpha1.PhaseRunawayTripped) }, timeout, tick)
	_, err := h.admit(team, gw, 1)
	var le *budget.LimitError
	require.ErrorAs(t, err, &le)
	require.Equal(t, budget.LimitRunaway, le.Limit)

	h.clock.Set(until.Add(time.Second)) // the cooldown is over
	c = h.waitCondition(tb, v1alpha1.ConditionRunawayTripped, metav1.ConditionFalse, v1alpha1.ReasonWithinSpendRate)
	require.Contains(t, c.Message, "the last trip ended at "+until.UTC().Format(time.RFC3339))
	h.waitEvent(tb, corev1.EventTypeNormal, v1alpha1.ReasonWithinSpendRate)
	h.wait(tb, "phase Active again", func(s v1alpha1.TeamBudgetStatus) bool { return s.Phase == v1alpha1.PhaseActive })
	h.spend(team, gw, 1) // admitted again
}

// Redis unreachable: CounterStoreAvailable=False with a Warning event, the figures and the
// phase of the last read kept; Redis back: True again with a Normal event, no spec change.
func TestRedisStoppedAndRestarted(t *testing.T) {
	h := newHarness(t)
	team := h.team("outage")
	gw := &snapshot.Budget{Source: "ns/outage", OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject,
		Limits: []snapshot.SpendLimit{
			{Window: snapshot.WindowDay, LimitMicros: 1_000_000, Enforcement: snapshot.EnforceHard},
			{Window: snapshot.WindowHour, LimitMicros: 300_000, Enforcement: snapshot.EnforceSoft},
		}}
	tb := h.budget(team, v1alpha1.TeamBudgetSpec{Limits: []v1alpha1.SpendLimit{
		{Window: v1alpha1.WindowDay, Amount: "1.00", Enforcement: v1alpha1.EnforcementHard},
		{Window: v1alpha1.WindowHour, Amount: "0.30", Enforcement: v1alpha1.EnforcementSoft},
	}})
	h.spend(team, gw, 400_000)
	before := h.wait(tb, "the spend shows", func(s v1alpha1.TeamBudgetStatus) bool {
		return s.Phase == v1alpha1.PhaseSoftLimitReached && s.Spent == "0.40"
	})
	h.waitCondition(tb, v1alpha1.ConditionCounterStoreAvailable, metav1.ConditionTrue, v1alpha1.ReasonStoreAvailable)
	require.Empty(t, h.events(tb, v1alpha1.ReasonStoreAvailable), "no event while the store was always reachable")
	errorsBefore := counterValue(t, "llm_gateway_operator_budget_store_read_errors_total")

	h.redis.Stop()
	c := h.waitCondition(tb, v1alpha1.ConditionCounterStoreAvailable, metav1.ConditionFalse, v1alpha1.ReasonStoreUnavailable)
	require.Contains(t, c.Message, "cannot read the team's budget counters")
	require.Contains(t, h.waitEvent(tb, corev1.EventTypeWarning, v1alpha1.ReasonStoreUnavailable), "cannot read the team's budget counters")
	during := h.wait(tb, "status", func(v1alpha1.TeamBudgetStatus) bool { return true })
	require.Equal(t, before.Windows, during.Windows, "the figures of the last read are kept, not zeroed")
	require.Equal(t, before.Spent, during.Spent)
	require.Equal(t, v1alpha1.PhaseSoftLimitReached, during.Phase, "the phase is not guessed")
	require.Equal(t, metav1.ConditionTrue, meta.FindStatusCondition(during.Conditions, v1alpha1.ConditionSoftLimitReached).Status,
		"the other conditions keep their last known state")
	require.Greater(t, counterValue(t, "llm_gateway_operator_budget_store_read_errors_total"), errorsBefore)

	h.redis.Restart()
	h.waitCondition(tb, v1alpha1.ConditionCounterStoreAvailable, metav1.ConditionTrue, v1alpha1.ReasonStoreAvailable)
	h.waitEvent(tb, corev1.EventTypeNormal, v1alpha1.ReasonStoreAvailable)
	// The test's redis-server has no persistence: it came back empty.
	h.wait(tb, "the figures of the restarted store", func(s v1alpha1.TeamBudgetStatus) bool {
		return s.Phase == v1alpha1.PhaseActive && s.Spent == "0.00"
	})
	h.requireOneEvent(tb, v1alpha1.ReasonStoreUnavailable, "one event per outage, not one per refresh")
}

// The kill switch: Suspended=True reason KillSwitch with a Warning event and phase Suspended;
// turned off, a Normal event and the phase from the counters again.
func TestKillSwitchCondition(t *testing.T) {
	h := newHarness(t)
	team := h.team("killed")
	tb := h.budget(team, v1alpha1.TeamBudgetSpec{Limits: []v1alpha1.SpendLimit{
		{Window: v1alpha1.WindowDay, Amount: "1.00", Enforcement: v1alpha1.EnforcementHard},
	}})
	h.waitCondition(tb, v1alpha1.ConditionSuspended, metav1.ConditionFalse, v1alpha1.ReasonKillSwitchOff)
	setSuspended := func(on bool) {
		require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
			var b v1alpha1.TeamBudget
			if err := h.k8s.Get(h.ctx, client.ObjectKeyFromObject(tb), &b); err != nil {
				return err
			}
			b.Spec.Suspended = on
			return h.k8s.Update(h.ctx, &b)
		}))
	}

	setSuspended(true)
	c := h.waitCondition(tb, v1alpha1.ConditionSuspended, metav1.ConditionTrue, v1alpha1.ReasonKillSwitch)
	require.Contains(t, c.Message, "new calls are rejected")
	h.waitEvent(tb, corev1.EventTypeWarning, v1alpha1.ReasonKillSwitch)
	h.wait(tb, "phase Suspended", func(s v1alpha1.TeamBudgetStatus) bool { return s.Phase == v1alpha1.PhaseSuspended })
	require.Eventually(t, func() bool { return phaseMetric(t, team) == string(v1alpha1.PhaseSuspended) }, timeout, tick)

	setSuspended(false)
	h.waitCondition(tb, v1alpha1.ConditionSuspended, metav1.ConditionFalse, v1alpha1.ReasonKillSwitchOff)
	h.waitEvent(tb, corev1.EventTypeNormal, v1alpha1.ReasonKillSwitchOff)
	h.wait(tb, "phase Active", func(s v1alpha1.TeamBudgetStatus) bool { return s.Phase == v1alpha1.PhaseActive })
}
