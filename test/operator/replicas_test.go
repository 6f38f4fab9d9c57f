/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package operator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/binaries"
)

// These tests do not run in parallel: they count replicas and compare versions, so nothing
// else may change the snapshot or poll the server meanwhile. Go runs them in this order, before
// the parallel tests of this package; the gateway pods each plays stay counted until they
// expire, so the tests that count exactly come first.

// TestProgrammedFollowsAcks plays two gateway pods against the snapshot server and checks that
// Programmed reports "N/M replicas at version X" as they apply versions.
func TestProgrammedFollowsAcks(t *testing.T) {
	requireEnvtest(t)
	ns := namespace(t)
	b := backend(ns, "openai", v1alpha1.ProviderOpenAI, "creds")
	create(t, secret(ns, "creds", map[string]string{"apiKey": "sk-acks"}), b)
	waitCondition(t, b, v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs)
	v1 := currentVersion(t, b)

	// pod-a starts with nothing, gets v1, then acks it.
	status, version, _ := poll(t, "pod-a", "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, v1, version)
	status, _, _ = poll(t, "pod-a", v1)
	require.Equal(t, http.StatusNotModified, status)
	c := waitCondition(t, b, v1alpha1.ConditionProgrammed, metav1.ConditionTrue, v1alpha1.ReasonProgrammed)
	require.Equal(t, "1/1 replicas at version "+v1, c.Message)
	require.Contains(t, waitEvent(t, b, corev1.EventTypeNormal, v1alpha1.ReasonProgrammed), "1/1 replicas at version "+v1)

	// pod-b connects and has not applied anything yet.
	status, _, _ = poll(t, "pod-b", "")
	require.Equal(t, http.StatusOK, status)
	c = waitCondition(t, b, v1alpha1.ConditionProgrammed, metav1.ConditionFalse, v1alpha1.ReasonPending)
	require.Equal(t, "1/2 replicas at version "+v1, c.Message)
	poll(t, "pod-b", v1)
	c = waitCondition(t, b, v1alpha1.ConditionProgrammed, metav1.ConditionTrue, v1alpha1.ReasonProgrammed)
	require.Equal(t, "2/2 replicas at version "+v1, c.Message)

	// A spec change makes a new snapshot that neither pod serves yet.
	update(t, b, func() { b.Spec.MaxConcurrentRequests = 7 })
	var v2 string
	require.Eventually(t, func() bool {
		c := condition(t, b, v1alpha1.ConditionProgrammed)
		v2 = currentVersion(t, b)
		return v2 != v1 && c != nil && c.Message == "0/2 replicas at version "+v2 && c.ObservedGeneration == b.Generation
	}, timeout, tick)
	for _, pod := range []string{"pod-a", "pod-b"} {
		status, version, body := poll(t, pod, v1)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, v2, version)
		s, err := snapshot.Decode(body)
		require.NoError(t, err)
		require.Equal(t, 7, findBackend(t, s, ns+"/openai").MaxConcurrent)
		poll(t, pod, v2)
	}
	c = waitCondition(t, b, v1alpha1.ConditionProgrammed, metav1.ConditionTrue, v1alpha1.ReasonProgrammed)
	require.Equal(t, "2/2 replicas at version "+v2, c.Message)
}

// TestColdStartServesStoredSnapshot: a new operator replica serves the snapshot kept in the
// Secret from the moment it is set up, before any compile.
func TestColdStartServesStoredSnapshot(t *testing.T) {
	requireEnvtest(t)
	stored := waitStoredSnapshot(t)

	mgr, err := newManager(true)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	op2, err := controllers.Setup(context.Background(), mgr, controllers.Options{
		OperatorNamespace: operatorNamespace, SnapshotListener: l, SnapshotTokenSecrets: []string{tokenSecretA, tokenSecretB},
		DefaultBudget: defaultBudgetFlags(),
	})
	require.NoError(t, err)
	version, ok := op2.SnapshotVersion()
	require.True(t, ok, "the stored snapshot is served before the manager even starts")
	require.Equal(t, stored.Version, version)
}

// TestEveryReplicaCompiles starts a second operator replica that is not the leader: it still
// compiles and serves snapshots, over TLS with the same certificate as the first, its versions
// agree with the leader's, and a gateway pod that polls only the second replica counts in the
// leader's Programmed.
func TestEveryReplicaCompiles(t *testing.T) {
	requireEnvtest(t)
	mgr, err := newManager(true)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	op2, err := controllers.Setup(context.Background(), mgr, controllers.Options{
		OperatorNamespace: operatorNamespace, SnapshotListener: l, SnapshotTokenSecrets: []string{tokenSecretA, tokenSecretB},
		AccessRefresh: accessRefresh, DefaultBudget: defaultBudgetFlags(), ReplicaID: "replica-b",
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	// A change after the second replica started: it can only serve the new version by
	// compiling it itself (its stored copy is older).
	ns := namespace(t)
	ro := rollout(ns, "replica-team", "replica-product")
	create(t, ro)
	var version string
	require.Eventually(t, func() bool {
		s := served(t)
		version, _ = op2.SnapshotVersion()
		return findTeam(s, "replica-team") != nil && version == s.Version
	}, timeout, tick, "the second replica serves the leader's version")
	select {
	case <-mgr.Elected():
		t.Fatal("the second replica must not be the leader while the first holds the lease")
	default:
	}
	require.Eventually(t, func() bool {
		second := servedCertificate(t, l.Addr().String())
		return second != nil && string(second.Raw) == string(servedCertificate(t, snapshotURL[len("https://"):]).Raw)
	}, timeout, tick, "both replicas serve the one certificate kept in the Secret")

	// A gateway pod long-polls the second replica only, up to date; the pods of earlier tests
	// stop polling and expire.
	pollCtx, stopPolling := context.WithCancel(context.Background())
	polled := make(chan int, 1)
	hc, auth := snapshotClient(t), "Bearer "+secretToken(t, tokenSecretB)
	go func() { polled <- longPoll(pollCtx, hc, "https://"+l.Addr().String(), auth, "pod-on-b", version) }()
	c := waitCondition(t, ro, v1alpha1.ConditionProgrammed, metav1.ConditionTrue, v1alpha1.ReasonProgrammed)
	require.Equal(t, "1/1 replicas at version "+version, c.Message)
	stopPolling()
	<-polled
}

// servedCertificate returns the certificate the snapshot server at addr presents (nil when
// it does not answer), verified as a gateway pod verifies it.
func servedCertificate(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caBundle(t, operatorNamespace)))
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: snapshot.TLSServerName})
	if err != nil {
		return nil
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// longPoll holds one snapshot request (wait=60) until ctx ends or the server answers, and
// returns the status (0 when cancelled).
func longPoll(ctx context.Context, c *http.Client, base, auth, pod, applied string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/snapshot?wait=60&pod="+pod+"&applied="+applied, nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", auth)
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOperatorBinary runs bin/operator as a process against the envtest cluster, as a second
// replica with leader election (the suite's operator holds the lease): it becomes ready,
// serves the same snapshot version as the leader over TLS, and exits cleanly on SIGTERM.
func TestOperatorBinary(t *testing.T) {
	requireEnvtest(t)
	p := startOperator(t, "operator-binary-test")
	snapAddr, probeAddr := p.snapAddr, p.probeAddr

	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + probeAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, timeout, tick, "the operator process becomes ready")

	require.Eventually(t, func() bool {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet,
			"https://"+snapAddr+"/v1/snapshot?pod=binary-observer&wait=0", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+secretToken(t, tokenSecretB))
		resp, err := snapshotClient(t).Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return false
		}
		s, err := snapshot.Decode(body)
		require.NoError(t, err)
		return s.Version == served(t).Version
	}, timeout, tick, "the process serves the leader's version")

	p.stop(t)
}

// operatorProcess is bin/operator running against the envtest cluster.
type operatorProcess struct {
	cmd                             *exec.Cmd
	exited                          chan error
	snapAddr, probeAddr, metricsURL string
	log                             string
}

// startOperator starts bin/operator as a replica of the suite's operator (leader election on:
// the suite's operator keeps the lease) serving both gateway Deployments' tokens.
func startOperator(t *testing.T, podName string) *operatorProcess {
	t.Helper()
	return startOperatorWith(t, podName, freeAddr(t))
}

func startOperatorWith(t *testing.T, podName, snapAddr string) *operatorProcess {
	t.Helper()
	dir := t.TempDir()
	bin := builtBinary(t, "operator")
	kc := filepath.Join(dir, "kubeconfig")
	require.NoError(t, os.WriteFile(kc, kubeconfig, 0o600))
	p := &operatorProcess{snapAddr: snapAddr, probeAddr: freeAddr(t), log: filepath.Join(dir, "operator.log"), exited: make(chan error, 1)}
	metricsAddr := freeAddr(t)
	p.metricsURL = "http://" + metricsAddr + "/metrics"
	p.cmd = exec.Command(bin,
		"--kubeconfig", kc,
		"--leader-elect",
		"--snapshot-listen", p.snapAddr,
		"--snapshot-token-secrets", tokenSecretA+","+tokenSecretB,
		"--snapshot-access-refresh", accessRefresh.String(),
		"--health-probe-bind-address", p.probeAddr,
		"--metrics-bind-address", metricsAddr,
		"--snapshot-secret-namespace", operatorNamespace,
		"--default-budget-daily", "50.00",
		"--zap-log-level", "debug",
	)
	p.cmd.Env = append(os.Environ(), "POD_NAME="+podName)
	logs, err := os.Create(p.log)
	require.NoError(t, err)
	t.Cleanup(func() { logs.Close() })
	p.cmd.Stdout, p.cmd.Stderr = logs, logs
	require.NoError(t, p.cmd.Start())
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("operator log:\n%s", b)
		}
	})
	return p
}

// stop sends SIGTERM and requires a clean exit.
func (p *operatorProcess) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-p.exited, "a clean exit on SIGTERM")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)
}

func currentVersion(t *testing.T, _ client.Object) string {
	t.Helper()
	s := served(t)
	return s.Version
}

func findBackend(t *testing.T, s *snapshot.Snapshot, name string) snapshot.Backend {
	t.Helper()
	for _, b := range s.Backends {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("backend %s is not in snapshot %s", name, s.Version)
	return snapshot.Backend{}
}

func findRoute(s *snapshot.Snapshot, name string) *snapshot.Route {
	for i := range s.Routes {
		if s.Routes[i].Name == name {
			return &s.Routes[i]
		}
	}
	return nil
}

func findTeam(s *snapshot.Snapshot, name string) *snapshot.Team {
	for i := range s.Teams {
		if s.Teams[i].Name == name {
			return &s.Teams[i]
		}
	}
	return nil
}

// waitStoredSnapshot waits until the Secret holds the snapshot served now and returns it.
func waitStoredSnapshot(t *testing.T) *snapshot.Snapshot {
	t.Helper()
	var stored *snapshot.Snapshot
	require.Eventually(t, func() bool {
		var s corev1.Secret
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: controllers.SnapshotSecretName}, &s); err != nil {
			return false
		}
		snap, err := snapshot.Decode(s.Data[controllers.SnapshotSecretKey])
		require.NoError(t, err, "the stored snapshot is valid")
		stored = snap
		return snap.Version == served(t).Version
	}, timeout, tick, fmt.Sprintf("the Secret %s/%s holds the served snapshot", operatorNamespace, controllers.SnapshotSecretName))
	return stored
}

var built struct {
	sync.Mutex
	dir   string
	names map[string]bool
}

// builtBinary builds bin/<name> once for the whole package run and returns its path.
func builtBinary(t *testing.T, name string) string {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if built.dir == "" {
		dir, err := os.MkdirTemp("", "operator-test-bin")
		require.NoError(t, err)
		built.dir, built.names = dir, map[string]bool{}
	}
	if !built.names[name] {
		require.NoError(t, binaries.Build(context.Background(), built.dir, name))
		built.names[name] = true
	}
	return filepath.Join(built.dir, name)
}

// removeBuilt deletes the binaries built for the run.
func removeBuilt() {
	built.Lock()
	defer built.Unlock()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}
