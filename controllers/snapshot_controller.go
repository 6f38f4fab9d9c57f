/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
	"github.com/posthog/llm-gateway/controllers/internal/publish"
)

// worldRequest is the only request the snapshot controller handles: every change recompiles
// the whole world.
var worldRequest = reconcile.Request{NamespacedName: types.NamespacedName{Name: "world"}}

// snapshotReconciler compiles every object and Secret it references into the snapshot and
// serves it. It runs on every operator replica (not only the leader): each compiles from its
// own cache, and the compile is deterministic, so replicas serve the same versions.
type snapshotReconciler struct {
	client    client.Reader
	namespace string // "" = all
	options   compile.Options
	world     *world
	server    *publish.Server
	refs      secretRefs
}

// +kubebuilder:rbac:groups=llmgateway.posthog.com,resources=llmroutes;providerbackends;teambudgets;teamrollouts,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

func (r *snapshotReconciler) setup(mgr ctrl.Manager) error {
	toWorld := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{worldRequest}
	})
	specChanged := builder.WithPredicates(predicate.GenerationChangedPredicate{})
	return ctrl.NewControllerManagedBy(mgr).
		Named("snapshot").
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false), MaxConcurrentReconciles: 1}).
		Watches(&v1alpha1.LLMRoute{}, toWorld, specChanged).
		Watches(&v1alpha1.ProviderBackend{}, toWorld, specChanged).
		Watches(&v1alpha1.TeamBudget{}, toWorld, specChanged).
		Watches(&v1alpha1.TeamRollout{}, toWorld, specChanged).
		Watches(&corev1.Secret{}, toWorld, builder.WithPredicates(predicate.NewPredicateFuncs(r.refs.has))).
		// Compile once at start even with no object at all: an empty configuration is a valid
		// snapshot, and pods must not wait for the first object.
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(worldRequest)
			return nil
		})).
		Complete(r)
}

func (r *snapshotReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	in, err := r.input(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	out := compile.Compile(in)
	r.world.set(&out)
	if out.Err != nil {
		// Same input, same error: retrying cannot help. Keep serving the previous snapshot.
		log.Error(out.Err, "the compiled snapshot is invalid; still serving the previous one")
		compileTotal.WithLabelValues("error").Inc()
		return reconcile.Result{}, nil
	}
	compileTotal.WithLabelValues("ok").Inc()
	recordObjects(&out)
	changed, err := r.server.Publish(out.Snapshot)
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("publish snapshot: %w", err)
	}
	if changed {
		log.Info("compiled a new snapshot", "version", out.Snapshot.Version, "routes", len(out.Snapshot.Routes),
			"backends", len(out.Snapshot.Backends), "teams", len(out.Snapshot.Teams), "rejected", len(out.Rejected()))
	}
	return reconcile.Result{}, nil
}

// input lists the four kinds from the cache and reads the Secrets they reference.
func (r *snapshotReconciler) input(ctx context.Context) (compile.Input, error) {
	in := compile.Input{Options: r.options}
	var (
		routes   v1alpha1.LLMRouteList
		backends v1alpha1.ProviderBackendList
		budgets  v1alpha1.TeamBudgetList
		rollouts v1alpha1.TeamRolloutList
	)
	for _, l := range []client.ObjectList{&routes, &backends, &budgets, &rollouts} {
		if err := r.client.List(ctx, l, client.InNamespace(r.namespace)); err != nil {
			return in, fmt.Errorf("list %T: %w", l, err)
		}
	}
	in.Routes, in.Backends, in.Budgets, in.Rollouts = routes.Items, backends.Items, budgets.Items, rollouts.Items
	refs := referencedSecrets(&in)
	r.refs.set(refs)
	for _, key := range refs {
		var s corev1.Secret
		switch err := r.client.Get(ctx, key, &s); {
		case apierrors.IsNotFound(err):
			// The compiler reports it on the referring object.
		case err != nil:
			return in, fmt.Errorf("get Secret %s: %w", key, err)
		default:
			in.Secrets = append(in.Secrets, s)
		}
	}
	return in, nil
}

// referencedSecrets returns every Secret the objects name, in their own namespaces.
func referencedSecrets(in *compile.Input) []types.NamespacedName {
	seen := map[types.NamespacedName]bool{}
	var out []types.NamespacedName
	add := func(ns, name string) {
		k := types.NamespacedName{Namespace: ns, Name: name}
		if name != "" && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for i := range in.Backends {
		b := &in.Backends[i]
		add(b.Namespace, b.Spec.CredentialsSecretRef.Name)
	}
	for i := range in.Rollouts {
		r := &in.Rollouts[i]
		for _, k := range r.Spec.APIKeys {
			add(r.Namespace, k.SecretRef.Name)
		}
		if l := r.Spec.Legacy; l != nil && l.CredentialsSecretRef != nil {
			add(r.Namespace, l.CredentialsSecretRef.Name)
		}
		if ph := r.Spec.PostHog; ph != nil {
			add(r.Namespace, ph.ProjectAPIKeySecretRef.Name)
		}
	}
	return out
}

// secretRefs is the set of Secrets the last compile read; only their changes recompile.
type secretRefs struct {
	mu   sync.RWMutex
	keys map[types.NamespacedName]bool
}

func (s *secretRefs) set(keys []types.NamespacedName) {
	m := make(map[types.NamespacedName]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	s.mu.Lock()
	s.keys = m
	s.mu.Unlock()
}

func (s *secretRefs) has(o client.Object) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys[types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}]
}
