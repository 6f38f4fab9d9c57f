/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package operator

// The snapshot server's surfaces: TLS with the operator's own CA, a token per gateway
// Deployment, rotation of both, and no credential anywhere an operator or a gateway shows
// things. The tests of this file that are not parallel run after those of replicas_test.go
// (which count gateway pods exactly): Go runs a package's tests in file order.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// TestSnapshotTLSAndTokenRotation: two operator replicas serve one certificate; deleting a
// gateway Deployment's token Secret rotates that token on both (the old one gets 401 at once,
// the other Deployment is unaffected); deleting the TLS Secret makes a new CA and certificate,
// published in the CA ConfigMap and served by both replicas.
func TestSnapshotTLSAndTokenRotation(t *testing.T) {
	requireEnvtest(t)
	mgr, err := newManager(true)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, err = controllers.Setup(context.Background(), mgr, controllers.Options{
		OperatorNamespace: operatorNamespace, SnapshotListener: l, SnapshotTokenSecrets: []string{tokenSecretA, tokenSecretB},
		AccessRefresh: accessRefresh, DefaultBudget: defaultBudgetFlags(), ReplicaID: "tls-replica-b",
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	replicas := []string{snapshotURL, "https://" + l.Addr().String()}
	sameCertificate := func() bool {
		a, b := servedCertificate(t, strings.TrimPrefix(replicas[0], "https://")), servedCertificate(t, strings.TrimPrefix(replicas[1], "https://"))
		return a != nil && b != nil && bytes.Equal(a.Raw, b.Raw)
	}
	require.Eventually(t, sameCertificate, timeout, tick, "both replicas serve the one certificate")

	// Token rotation: delete B's Secret; the operators make a new token.
	oldA, oldB := secretToken(t, tokenSecretA), secretToken(t, tokenSecretB)
	var s corev1.Secret
	require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: tokenSecretB}, &s))
	require.NoError(t, k8s.Delete(context.Background(), &s))
	require.Eventually(t, func() bool {
		var fresh corev1.Secret
		err := k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: tokenSecretB}, &fresh)
		return err == nil && string(fresh.Data[controllers.SnapshotTokenKey]) != oldB
	}, timeout, tick, "a new token Secret for B")
	newB := secretToken(t, tokenSecretB)
	require.Len(t, newB, 64)
	for _, base := range replicas {
		require.Eventually(t, func() bool {
			old, _, _ := pollWith(t, base, "Bearer "+oldB, "rotation-b", "")
			fresh, _, _ := pollWith(t, base, "Bearer "+newB, "rotation-b", "")
			return old == http.StatusUnauthorized && fresh == http.StatusOK
		}, timeout, tick, "%s: B's old token is refused and its new one accepted", base)
		status, _, _ := pollWith(t, base, "Bearer "+oldA, "rotation-a", "")
		require.Equal(t, http.StatusOK, status, "A's token is unaffected")
	}

	// CA rotation forced by deleting the TLS Secret: a new CA, a new certificate, a new bundle.
	oldBundle := caBundle(t, operatorNamespace)
	oldLeaf := servedCertificate(t, strings.TrimPrefix(replicas[0], "https://"))
	require.NotNil(t, oldLeaf)
	require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: controllers.SnapshotTLSSecretName}, &s))
	require.NoError(t, k8s.Delete(context.Background(), &s))
	require.Eventually(t, func() bool { return !bytes.Equal(caBundle(t, operatorNamespace), oldBundle) }, timeout, tick, "a new CA bundle")
	require.Eventually(t, func() bool {
		leaf := servedCertificate(t, strings.TrimPrefix(replicas[0], "https://"))
		return leaf != nil && !bytes.Equal(leaf.Raw, oldLeaf.Raw) && sameCertificate()
	}, timeout, tick, "both replicas serve the new certificate, verified with the new bundle")
	stale := clientFor(t, oldBundle)
	stale.CloseIdleConnections()
	_, err = stale.Get(snapshotURL + "/healthz")
	var verr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &verr, "a pod that still trusts only the old CA refuses the new certificate")
	for _, base := range replicas {
		status, _, _ := pollWith(t, base, "Bearer "+oldA, "rotation-a", "")
		require.Equal(t, http.StatusOK, status)
	}
}

// TestGatewayFollowsOperatorOverTLS runs bin/operator and bin/gateway as processes: the
// gateway gets its snapshot over TLS with its Deployment's token, follows a token rotation and
// a CA rotation once its mounted files change, and no provider credential, token or private
// key shows in any log (the processes' and the suite's operators'), event, status, metric or
// admin page.
func TestGatewayFollowsOperatorOverTLS(t *testing.T) {
	requireEnvtest(t)
	const credential = "sk-process-credential-4f1d9c2e7a"
	opProc := startOperator(t, "tls-operator-process")
	waitReady(t, "http://"+opProc.probeAddr+"/readyz")

	dir := t.TempDir()
	caFile, tokenFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "token")
	mount := func() { // what the kubelet does with the ConfigMap and Secret volumes
		require.NoError(t, os.WriteFile(caFile, caBundle(t, operatorNamespace), 0o600))
		require.NoError(t, os.WriteFile(tokenFile, []byte(secretToken(t, tokenSecretA)), 0o600))
	}
	mount()
	gw := startGateway(t, dir, "https://"+opProc.snapAddr, caFile, tokenFile)

	ns := namespace(t)
	b := backend(ns, "openai", v1alpha1.ProviderOpenAI, "creds")
	create(t, secret(ns, "creds", map[string]string{"apiKey": credential}), b,
		route(ns, "gpt", v1alpha1.ShapeOpenAI, []string{"gpt-tls-process"}, "openai"))
	waitGatewayVersion := func(what string) string {
		t.Helper()
		var version string
		require.Eventually(t, func() bool {
			s := served(t)
			if findRoute(s, ns+"/gpt") == nil {
				return false
			}
			version = s.Version
			return gw.version(t) == version
		}, 2*timeout, tick, what)
		return version
	}
	waitGatewayVersion("the gateway serves the operator's snapshot, fetched over TLS")
	secrets := collectSecrets(t, credential)

	// Token rotation: A's Secret is deleted and made again. Until the pod's mounted file
	// changes it is refused; then it follows again. (A new version ends the long poll the
	// gateway holds, so that its next request shows the old token.)
	oldToken := secretToken(t, tokenSecretA)
	var s corev1.Secret
	require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: tokenSecretA}, &s))
	require.NoError(t, k8s.Delete(context.Background(), &s))
	require.Eventually(t, func() bool {
		status, _, _ := pollWith(t, "https://"+opProc.snapAddr, "Bearer "+oldToken, "tls-rotation-probe", "")
		return status == http.StatusUnauthorized
	}, timeout, tick, "the operator process refuses the old token")
	update(t, b, func() { b.Spec.MaxConcurrentRequests = 10 })
	require.Eventually(t, func() bool { return gw.metric(t, `llm_gateway_config_sync_errors_total{reason="unauthorized"}`) > 0 },
		3*timeout, tick, "the gateway's old token is refused")
	mount()
	update(t, b, func() { b.Spec.MaxConcurrentRequests = 11 })
	waitGatewayVersion("the gateway follows again with the new token")
	secrets = append(secrets, collectSecrets(t, credential)...)

	// CA rotation: the TLS Secret is deleted and made again with a new CA. A restarted operator
	// replica (its connections gone) serves the new certificate: refused until the pod's
	// mounted bundle changes, then followed.
	require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: controllers.SnapshotTLSSecretName}, &s))
	oldBundle := caBundle(t, operatorNamespace)
	require.NoError(t, k8s.Delete(context.Background(), &s))
	require.Eventually(t, func() bool { return !bytes.Equal(caBundle(t, operatorNamespace), oldBundle) }, timeout, tick)
	opLog := opProc.log
	opProc.stop(t)
	opProc = startOperatorAt(t, "tls-operator-process", opProc.snapAddr)
	require.Eventually(t, func() bool { return gw.metric(t, `llm_gateway_config_sync_errors_total{reason="tls"}`) > 0 },
		3*timeout, tick, "the gateway refuses a certificate of a CA it does not trust yet")
	mount()
	update(t, b, func() { b.Spec.MaxConcurrentRequests = 12 })
	waitGatewayVersion("the gateway follows again with the new CA bundle")
	secrets = append(secrets, collectSecrets(t, credential)...)

	// Where credentials must never show.
	places := map[string]string{
		"the suite's operator logs": suiteLogs.String(),
		"operator process log":      readFile(t, opLog) + readFile(t, opProc.log),
		"gateway log":               gw.logs(t),
		"operator metrics":          get(t, opProc.metricsURL),
		"events":                    events(t),
		"statuses":                  statuses(t, ns),
	}
	for _, page := range []string{"/metrics", "/admin/snapshot", "/admin/backends", "/admin/teams", "/admin/streams", "/readyz", "/healthz"} {
		places["gateway "+page] = get(t, "http://"+gw.admin+page)
	}
	require.Contains(t, places["gateway /admin/snapshot"], `"source": "operator:https://`, "the pages were read")
	require.Contains(t, places["operator process log"], "serving the snapshot over TLS", "the logs were read")
	for place, text := range places {
		for _, secret := range secrets {
			require.NotContains(t, text, secret.value, "%s holds %s", place, secret.what)
		}
	}
	opProc.stop(t)
}

// TestSnapshotRefusesWithoutAToken: over TLS, a request without a gateway Deployment's token
// gets 401 and nothing about the configuration; plain HTTP and clients without the CA get no
// snapshot at all.
func TestSnapshotRefusesWithoutAToken(t *testing.T) {
	requireEnvtest(t)
	t.Parallel()
	ns := namespace(t)
	create(t, secret(ns, "creds", map[string]string{"apiKey": "sk-refused-credential-93ab"}),
		backend(ns, "openai", v1alpha1.ProviderOpenAI, "creds"))
	require.Eventually(t, func() bool {
		for _, b := range served(t).Backends {
			if b.Name == ns+"/openai" {
				return true
			}
		}
		return false
	}, timeout, tick)
	version := served(t).Version
	tokA := secretToken(t, tokenSecretA)
	for name, auth := range map[string]string{
		"no header":       "",
		"empty":           "Bearer ",
		"wrong":           "Bearer " + strings.Repeat("0", 64),
		"prefix of A":     "Bearer " + tokA[:32],
		"A with a suffix": "Bearer " + tokA + "0",
		"A as basic":      "Basic " + tokA,
		"a Secret's name": "Bearer " + tokenSecretA,
	} {
		status, v, body := pollWith(t, snapshotURL, auth, "unauthorized-"+ns, "")
		require.Equal(t, http.StatusUnauthorized, status, name)
		require.Empty(t, v, name)
		require.NotContains(t, string(body), version, name)
		require.NotContains(t, string(body), "sk-refused-credential", name)
		require.NotContains(t, string(body), "backends", name)
	}
	status, _, body := pollWith(t, snapshotURL, "Bearer "+tokA, "authorized-"+ns, "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), "sk-refused-credential", "the token's holder gets the credentials")

	// Plain HTTP on the TLS port, and TLS without the CA: no snapshot.
	plain, err := http.NewRequest(http.MethodGet, "http://"+strings.TrimPrefix(snapshotURL, "https://")+"/v1/snapshot?pod=p&wait=0", nil)
	require.NoError(t, err)
	plain.Header.Set("Authorization", "Bearer "+tokA)
	if resp, err := (&http.Client{Timeout: timeout}).Do(plain); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NotEqual(t, http.StatusOK, resp.StatusCode)
		require.NotContains(t, string(b), "sk-refused-credential")
	}
	noCA := &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: snapshot.TLSServerName}}}
	defer noCA.CloseIdleConnections()
	_, err = noCA.Get(snapshotURL + "/healthz")
	var verr *tls.CertificateVerificationError
	require.ErrorAs(t, err, &verr)
}

// gatewayProcess is bin/gateway following an operator.
type gatewayProcess struct {
	cmd   *exec.Cmd
	admin string
	out   *logBuffer
}

func startGateway(t *testing.T, dir, source, caFile, tokenFile string) *gatewayProcess {
	t.Helper()
	g := &gatewayProcess{admin: freeAddr(t), out: &logBuffer{}}
	g.cmd = exec.Command(builtBinary(t, "gateway"),
		"--listen", freeAddr(t), "--admin-listen", g.admin,
		"--config-source", source, "--config-ca-file", caFile, "--config-token-file", tokenFile,
		"--pod-name", "tls-gateway-process", "--state-dir", filepath.Join(dir, "state"),
		"--log-level", "debug", "--drain-timeout", "1s")
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	require.NoError(t, g.cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- g.cmd.Wait() }()
	t.Cleanup(func() {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.out.String())
		}
	})
	return g
}

func (g *gatewayProcess) logs(*testing.T) string { return g.out.String() }

// version is the snapshot version the gateway serves ("" when it does not answer).
func (g *gatewayProcess) version(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/admin/snapshot")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var st struct {
		Version string `json:"version"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return ""
	}
	return st.Version
}

// metric returns the value of one series of the gateway's /metrics (0 when absent).
func (g *gatewayProcess) metric(t *testing.T, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(get(t, "http://"+g.admin+"/metrics"))
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

// startOperatorAt starts bin/operator again on the same snapshot address (a restarted pod
// behind the same Service).
func startOperatorAt(t *testing.T, podName, snapAddr string) *operatorProcess {
	t.Helper()
	p := startOperatorWith(t, podName, snapAddr)
	waitReady(t, "http://"+p.probeAddr+"/readyz")
	return p
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, timeout, tick, "%s", url)
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

type secretValue struct{ what, value string }

// collectSecrets lists what must never show: the provider credential, every token, and every
// line of every private key the operator keeps.
func collectSecrets(t *testing.T, credential string) []secretValue {
	t.Helper()
	out := []secretValue{{"the provider credential", credential}}
	for _, name := range []string{tokenSecretA, tokenSecretB} {
		out = append(out, secretValue{"the token of " + name, secretToken(t, name)})
	}
	var s corev1.Secret
	require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: operatorNamespace, Name: controllers.SnapshotTLSSecretName}, &s))
	for _, key := range []string{"ca.key", "tls.key"} {
		require.Contains(t, string(s.Data[key]), "PRIVATE KEY")
		for _, line := range strings.Split(string(s.Data[key]), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				out = append(out, secretValue{"a line of " + key, line})
			}
		}
	}
	return out
}

// events returns every event of the cluster, as JSON.
func events(t *testing.T) string {
	t.Helper()
	var list eventsv1.EventList
	require.NoError(t, k8s.List(context.Background(), &list))
	require.NotEmpty(t, list.Items)
	b, err := json.Marshal(list.Items)
	require.NoError(t, err)
	return string(b)
}

// statuses returns the status of every object of the four kinds in ns, as JSON.
func statuses(t *testing.T, ns string) string {
	t.Helper()
	var out []any
	var routes v1alpha1.LLMRouteList
	require.NoError(t, k8s.List(context.Background(), &routes, client.InNamespace(ns)))
	for _, o := range routes.Items {
		out = append(out, o.Status)
	}
	var backends v1alpha1.ProviderBackendList
	require.NoError(t, k8s.List(context.Background(), &backends, client.InNamespace(ns)))
	for _, o := range backends.Items {
		out = append(out, o.Status)
	}
	require.Len(t, out, 2)
	b, err := json.Marshal(out)
	require.NoError(t, err)
	return string(b)
}
