/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package operator

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	authv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// TestConfigRBACIsEnough applies config/rbac (as kustomize would into another namespace) and
// runs an operator as its service account: with only those permissions it compiles, keeps its
// snapshot Secret, replaces a TLS Secret it cannot use, publishes its CA bundle, creates the
// gateway's token Secret and serves the snapshot over TLS to that token, shares its pod report,
// holds its lease, and may write status and events.
func TestConfigRBACIsEnough(t *testing.T) {
	requireEnvtest(t)
	ctx := context.Background()
	const opNS = "rbac-test-system"
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNS}})
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "rbac", "*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for _, u := range readManifests(t, f, opNS) {
			switch u.GetKind() {
			case "ClusterRole", "ClusterRoleBinding":
				u.SetNamespace("")
			}
			if subjects, ok := u.Object["subjects"].([]any); ok {
				for _, s := range subjects {
					s.(map[string]any)["namespace"] = opNS
				}
			}
			require.NoError(t, k8s.Create(ctx, u), "apply %s %s from %s", u.GetKind(), u.GetName(), f)
		}
	}

	// A TLS Secret whose content is unusable: the operator must rewrite it (update).
	create(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: controllers.SnapshotTLSSecretName},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("stale"), "tls.key": []byte("stale")}})

	sa := rest.CopyConfig(restConfig)
	sa.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + opNS + ":llm-gateway-operator"}
	ns := namespace(t)
	scheme, err := controllers.NewScheme()
	require.NoError(t, err)
	mgr, err := ctrl.NewManager(sa, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              controllers.LeaderElectionID,
		LeaderElectionNamespace:       opNS,
		LeaderElectionReleaseOnCancel: true,
		Cache:                         cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Controller:                    config.Controller{SkipNameValidation: ptr.To(true)},
	})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	op2, err := controllers.Setup(ctx, mgr, controllers.Options{
		WatchNamespace: ns, OperatorNamespace: opNS, SnapshotListener: l, SnapshotTokenSecrets: []string{"rbac-gateway-token"},
		AccessRefresh: accessRefresh, DefaultBudget: defaultBudgetFlags(), ReplicaID: "rbac-test",
	})
	require.NoError(t, err)
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	create(t, secret(ns, "keys", map[string]string{"apiKey": "sk-rbac"}),
		backend(ns, "openai", v1alpha1.ProviderOpenAI, "keys"),
		route(ns, "gpt", v1alpha1.ShapeOpenAI, []string{"gpt-rbac-1"}, "openai"))

	var version string
	require.Eventually(t, func() bool {
		s, err := op2.Snapshot()
		require.NoError(t, err)
		if s == nil || findRoute(s, ns+"/gpt") == nil || len(s.Backends) != 1 {
			return false
		}
		version = s.Version
		return s.Backends[0].Credentials.APIKey == "sk-rbac"
	}, timeout, tick, "compiles the watched namespace, Secrets included")
	require.Eventually(t, func() bool {
		var s corev1.Secret
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: opNS, Name: controllers.SnapshotSecretName}, &s); err != nil {
			return false
		}
		stored, err := snapshot.Decode(s.Data[controllers.SnapshotSecretKey])
		return err == nil && stored.Version == version
	}, timeout, tick, "keeps its snapshot Secret")
	// Its CA bundle, its gateway token, and the snapshot over TLS.
	var tok corev1.Secret
	require.Eventually(t, func() bool {
		return k8s.Get(ctx, client.ObjectKey{Namespace: opNS, Name: "rbac-gateway-token"}, &tok) == nil
	}, timeout, tick, "creates the gateway's token Secret")
	c := clientFor(t, caBundle(t, opNS))
	require.Eventually(t, func() bool {
		req, err := http.NewRequest(http.MethodGet, "https://"+l.Addr().String()+"/v1/snapshot?wait=0&pod=rbac-observer", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+string(tok.Data[controllers.SnapshotTokenKey]))
		resp, err := c.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && resp.Header.Get("X-Snapshot-Version") == version
	}, timeout, tick, "serves the snapshot over TLS with its CA, to its token")
	require.Eventually(t, func() bool {
		var cm corev1.ConfigMap
		return k8s.Get(ctx, client.ObjectKey{Namespace: opNS, Name: "llm-gateway-replicas-rbac-test"}, &cm) == nil
	}, timeout, tick, "shares its gateway pod report")
	require.Eventually(t, func() bool {
		var lease coordinationv1.Lease
		return k8s.Get(ctx, client.ObjectKey{Namespace: opNS, Name: controllers.LeaderElectionID}, &lease) == nil &&
			lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != ""
	}, timeout, tick, "holds its leader lease")

	// Status and events: the suite's operator writes them too, so ask the API server directly.
	saClient, err := client.New(sa, client.Options{Scheme: scheme})
	require.NoError(t, err)
	for _, ra := range []authv1.ResourceAttributes{
		{Namespace: ns, Verb: "patch", Group: v1alpha1.GroupVersion.Group, Resource: "llmroutes", Subresource: "status"},
		{Namespace: ns, Verb: "patch", Group: v1alpha1.GroupVersion.Group, Resource: "teambudgets", Subresource: "status"},
		{Namespace: ns, Verb: "create", Group: "events.k8s.io", Resource: "events"},
		{Namespace: opNS, Verb: "update", Resource: "secrets", Name: controllers.SnapshotSecretName},
		{Namespace: opNS, Verb: "update", Resource: "secrets", Name: controllers.SnapshotTLSSecretName},
		{Namespace: opNS, Verb: "update", Resource: "configmaps", Name: controllers.SnapshotCAConfigMapName},
	} {
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}
		require.NoError(t, saClient.Create(ctx, review))
		require.True(t, review.Status.Allowed, "the operator may %s %s/%s in %s", ra.Verb, ra.Resource, ra.Subresource, ra.Namespace)
	}
	// Least privilege: no write access to other Secrets.
	for _, ra := range []authv1.ResourceAttributes{
		{Namespace: opNS, Verb: "update", Resource: "secrets", Name: "someone-elses"},
		{Namespace: opNS, Verb: "update", Resource: "secrets", Name: "rbac-gateway-token"},
		{Namespace: opNS, Verb: "delete", Resource: "secrets", Name: controllers.SnapshotTLSSecretName},
		{Namespace: ns, Verb: "create", Resource: "secrets"},
		{Namespace: ns, Verb: "update", Group: v1alpha1.GroupVersion.Group, Resource: "llmroutes"},
	} {
		review := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &ra}}
		require.NoError(t, saClient.Create(ctx, review))
		require.False(t, review.Status.Allowed, "the operator must not %s %s %q in %s", ra.Verb, ra.Resource, ra.Name, ra.Namespace)
	}
}
