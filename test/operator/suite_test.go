/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

// Package operator tests the operator against a real kube-apiserver and etcd (envtest): CRD
// validation, every controller's conditions and events, the snapshot served to pods, replica
// acks and the snapshot Secret. One envtest environment and one operator serve every test;
// tests that run in parallel use their own namespaces and their own model, team and product
// names (claims are cluster-wide).
package operator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

const (
	operatorNamespace = "llm-gateway-system"
	// The suite's operator serves two gateway Deployments, each with its own token Secret.
	tokenSecretA = "gateway-a-snapshot-token"
	tokenSecretB = "gateway-b-snapshot-token"
	// accessRefresh: the suite's operators re-read their TLS and token Secrets this often.
	accessRefresh = 500 * time.Millisecond
	// timeout bounds every Eventually: generous, because the machine may be busy. Tests assert
	// that things happen, never how fast.
	timeout = 60 * time.Second
	tick    = 50 * time.Millisecond
)

var (
	budgets     = &fakeBudgets{states: map[string]controllers.BudgetState{}}
	restConfig  *rest.Config
	kubeconfig  []byte
	k8s         client.Client // uncached
	op          *controllers.Operator
	snapshotURL string
	// suiteLogs is every log line of the suite's operators (checked for credentials).
	suiteLogs logBuffer
)

// logBuffer collects log lines of several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run `make test`, or "+
			"KUBEBUILDER_ASSETS=$(hack/envtest-binaries.sh) go test ./test/operator/ (or -short to skip these tests)")
		os.Exit(1)
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if code == 0 {
		// After the operator and envtest stopped, nothing of ours may still run.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines leaked:", err)
			os.Exit(1)
		}
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	// Every line at every level goes to suiteLogs (and to stderr with LLMGW_TEST_LOG set).
	var w io.Writer = &suiteLogs
	if os.Getenv("LLMGW_TEST_LOG") != "" {
		w = io.MultiWriter(&suiteLogs, os.Stderr)
	}
	ctrl.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(w, prefix, args) }, funcr.Options{Verbosity: 10}))
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: os.Getenv("KUBEBUILDER_ASSETS"),
	}
	var err error
	if restConfig, err = env.Start(); err != nil {
		return 0, fmt.Errorf("start envtest: %w", err)
	}
	kubeconfig = env.KubeConfig
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}()
	scheme, err := controllers.NewScheme()
	if err != nil {
		return 0, err
	}
	if k8s, err = client.New(restConfig, client.Options{Scheme: scheme}); err != nil {
		return 0, fmt.Errorf("client: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}); err != nil {
		return 0, fmt.Errorf("create operator namespace: %w", err)
	}

	mgr, err := newManager(true)
	if err != nil {
		return 0, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen: %w", err)
	}
	snapshotURL = "https://" + l.Addr().String()
	if op, err = controllers.Setup(ctx, mgr, controllers.Options{
		OperatorNamespace:    operatorNamespace,
		SnapshotListener:     l,
		SnapshotTokenSecrets: []string{tokenSecretA, tokenSecretB},
		AccessRefresh:        accessRefresh,
		DefaultBudget:        defaultBudgetFlags(),
		BudgetState:          budgets,
	}); err != nil {
		return 0, fmt.Errorf("set up the operator: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if err := waitFor(func() bool { _, ok := op.SnapshotVersion(); return ok }); err != nil {
		return 0, fmt.Errorf("the operator never served a snapshot: %w", err)
	}
	if err := waitFor(func() bool {
		var cm corev1.ConfigMap
		if k8s.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: controllers.SnapshotCAConfigMapName}, &cm) != nil {
			return false
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(cm.Data[controllers.SnapshotCAKey]))
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: snapshot.TLSServerName}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(snapshotURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		return 0, fmt.Errorf("the operator never served its snapshot over TLS: %w", err)
	}

	code := m.Run()
	closeSnapshotClients()
	removeBuilt()

	cancel()
	if err := <-done; err != nil {
		return 0, fmt.Errorf("manager: %w", err)
	}
	return code, nil
}

// fakeBudgets stands in for the gateway's Redis counters: zero spend in every window unless a
// test sets some (like the Redis reader, it knows every window).
type fakeBudgets struct {
	mu     sync.Mutex
	states map[string]controllers.BudgetState
}

func (f *fakeBudgets) BudgetState(_ context.Context, team string, _ time.Time) (controllers.BudgetState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.states[team]
	if !ok {
		st.Spent = map[v1alpha1.Window]int64{v1alpha1.WindowHour: 0, v1alpha1.WindowDay: 0, v1alpha1.WindowWeek: 0, v1alpha1.WindowMonth: 0}
	}
	return st, nil
}

func (f *fakeBudgets) set(team string, st controllers.BudgetState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[team] = st
}

func defaultBudgetFlags() controllers.DefaultBudgetFlags {
	return controllers.DefaultBudgetFlags{Day: "50.00", OnStoreUnavailable: snapshot.FailClosed, UnpricedModels: snapshot.UnpricedReject}
}

// newManager returns a manager for the envtest cluster. Several managers may exist in one
// process (the leader election test adds one), hence SkipNameValidation.
func newManager(leaderElect bool) (ctrl.Manager, error) {
	s, err := controllers.NewScheme()
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                        s,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                leaderElect,
		LeaderElectionID:              controllers.LeaderElectionID,
		LeaderElectionNamespace:       operatorNamespace,
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	return mgr, nil
}

func waitFor(cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(tick)
	}
	return nil
}

func requireEnvtest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("envtest: skipped with -short")
	}
}

var nsCounter atomic.Int32

// namespace creates a namespace for one test. envtest runs no namespace controller, so
// namespaces are never emptied; names, models, teams and products must stay unique per test.
func namespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", nsCounter.Add(1), strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	require.NoError(t, k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	return name
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		require.NoError(t, k8s.Create(context.Background(), o), "create %T %s", o, o.GetName())
	}
}

// update reads the object, applies mutate and writes it, retrying on conflicts with the
// operator's status writes.
func update(t *testing.T, obj client.Object, mutate func()) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate()
		return k8s.Update(context.Background(), obj)
	}))
}

// condition returns the object's condition of type typ, reading it fresh.
func condition(t *testing.T, obj v1alpha1.Object, typ string) *metav1.Condition {
	t.Helper()
	require.NoError(t, k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj))
	return meta.FindStatusCondition(obj.GetCommonStatus().Conditions, typ)
}

// waitCondition waits until the object's condition has the status and reason (at the object's
// current generation) and returns it.
func waitCondition(t *testing.T, obj v1alpha1.Object, typ string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		if !assert.NoError(c, k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)) {
			return
		}
		cond := meta.FindStatusCondition(obj.GetCommonStatus().Conditions, typ)
		if !assert.NotNil(c, cond, "%s %s/%s has no %s condition", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetNamespace(), obj.GetName(), typ) {
			return
		}
		assert.Equal(c, status, cond.Status, "%s/%s %s: %+v", obj.GetNamespace(), obj.GetName(), typ, *cond)
		assert.Equal(c, reason, cond.Reason, "%s/%s %s: %+v", obj.GetNamespace(), obj.GetName(), typ, *cond)
		assert.Equal(c, obj.GetGeneration(), obj.GetCommonStatus().ObservedGeneration, "%s/%s observedGeneration", obj.GetNamespace(), obj.GetName())
		got = *cond
	}, timeout, tick)
	return got
}

// waitEvent waits for an event about the object with the reason and type, and returns its note.
func waitEvent(t *testing.T, obj client.Object, eventType, reason string) string {
	t.Helper()
	var note string
	require.Eventually(t, func() bool {
		var list eventsv1.EventList
		require.NoError(t, k8s.List(context.Background(), &list, client.InNamespace(obj.GetNamespace())))
		for _, e := range list.Items {
			if e.Regarding.Name == obj.GetName() && e.Regarding.UID == obj.GetUID() && e.Reason == reason && e.Type == eventType {
				note = e.Note
				return true
			}
		}
		return false
	}, timeout, tick, "no %s event %s for %s/%s", eventType, reason, obj.GetNamespace(), obj.GetName())
	return note
}

// served returns the snapshot the operator serves now.
func served(t *testing.T) *snapshot.Snapshot {
	t.Helper()
	s, err := op.Snapshot()
	require.NoError(t, err)
	require.NotNil(t, s)
	return s
}

// poll makes one snapshot request as a pod of gateway Deployment A would (TLS with the
// operator's CA, A's token) and returns the status and version.
func poll(t *testing.T, pod, applied string) (int, string, []byte) {
	t.Helper()
	return pollWith(t, snapshotURL, "Bearer "+secretToken(t, tokenSecretA), pod, applied)
}

// pollWith makes one snapshot request to base with the Authorization header auth.
func pollWith(t *testing.T, base, auth, pod, applied string) (int, string, []byte) {
	t.Helper()
	q := url.Values{"pod": {pod}, "applied": {applied}, "wait": {"0"}}
	req, err := http.NewRequest(http.MethodGet, base+"/v1/snapshot?"+q.Encode(), nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := snapshotClient(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("X-Snapshot-Version"), body
}

// secretToken reads a gateway Deployment's token from its Secret (made by the operator).
func secretToken(t *testing.T, name string) string {
	t.Helper()
	var s corev1.Secret
	require.Eventually(t, func() bool {
		return k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: name}, &s) == nil
	}, timeout, tick, "the operator creates the token Secret %s", name)
	return strings.TrimSpace(string(s.Data[controllers.SnapshotTokenKey]))
}

// caBundle returns the CA bundle the operator publishes for gateway pods.
func caBundle(t *testing.T, namespace string) []byte {
	t.Helper()
	var cm corev1.ConfigMap
	require.Eventually(t, func() bool {
		return k8s.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: controllers.SnapshotCAConfigMapName}, &cm) == nil
	}, timeout, tick, "the operator publishes its CA bundle in %s", namespace)
	return []byte(cm.Data[controllers.SnapshotCAKey])
}

var (
	clientsMu sync.Mutex
	clients   = map[string]*http.Client{} // by CA bundle
)

// snapshotClient is an HTTPS client as a gateway pod has one: it trusts the CA bundle the
// operator publishes now and verifies the snapshot server name.
func snapshotClient(t *testing.T) *http.Client {
	t.Helper()
	return clientFor(t, caBundle(t, operatorNamespace))
}

func clientFor(t *testing.T, bundle []byte) *http.Client {
	t.Helper()
	clientsMu.Lock()
	defer clientsMu.Unlock()
	if c, ok := clients[string(bundle)]; ok {
		return c
	}
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(bundle), "the CA bundle holds certificates")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: snapshot.TLSServerName}}}
	clients[string(bundle)] = c
	return c
}

func closeSnapshotClients() {
	clientsMu.Lock()
	defer clientsMu.Unlock()
	for _, c := range clients {
		c.CloseIdleConnections()
	}
}
