/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
	"github.com/posthog/llm-gateway/controllers/internal/publish"
)

// +kubebuilder:rbac:groups=llmgateway.posthog.com,resources=llmroutes/status;providerbackends/status;teambudgets/status;teamrollouts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// statusReconciler writes the status of one kind: Accepted and ResolvedRefs from the newest
// compile, Programmed from the replicas' acks, observedGeneration, and an event (with the
// condition's reason) whenever a condition changes meaningfully. Only the leader runs it.
type statusReconciler[T any, PT interface {
	*T
	v1alpha1.Object
}] struct {
	statusBase
	kind compile.Kind
	// extra sets kind-specific status fields and conditions; it returns when to look again
	// (0: no need) and the events to emit once the status is written.
	extra func(ctx context.Context, obj PT, res compile.Result) (time.Duration, []statusEvent, error)
	// gone, when set, runs when an object is not found (deleted).
	gone func(types.NamespacedName)

	// announced is the generation of each object (by UID) whose Programmed=True event was
	// emitted, so that a snapshot rollout announces each object's generation once.
	mu        sync.Mutex
	announced map[types.UID]int64
}

// statusEvent is an event about the reconciled object; action is the condition type.
type statusEvent struct{ typ, reason, action, note string }

// statusBase is what every status reconciler shares.
type statusBase struct {
	client   client.Client
	world    *world
	replicas func(version string) publish.Replicas
	recorder recorder.EventRecorder
}

func newStatusReconciler[T any, PT interface {
	*T
	v1alpha1.Object
}](kind compile.Kind, base statusBase) *statusReconciler[T, PT] {
	return &statusReconciler[T, PT]{statusBase: base, kind: kind, announced: map[types.UID]int64{}}
}

func (r *statusReconciler[T, PT]) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(strings.ToLower(string(r.kind)) + "-status").
		For(PT(new(T))).
		WatchesRawSource(r.world.source(r.kind)).
		Complete(r)
}

func (r *statusReconciler[T, PT]) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	obj := PT(new(T))
	if err := r.client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) && r.gone != nil {
			r.gone(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	out := r.world.output()
	if out == nil {
		return reconcile.Result{}, nil // the first compile queues every object
	}
	res, ok := out.Result(compile.ObjectKey{Kind: r.kind, Namespace: obj.GetNamespace(), Name: obj.GetName()})
	if !ok || res.Generation != obj.GetGeneration() {
		return reconcile.Result{}, nil // not compiled at this generation yet; the next compile queues it
	}
	orig := obj.DeepCopyObject().(PT)
	st := obj.GetCommonStatus()
	var events []statusEvent
	for _, c := range []metav1.Condition{res.Accepted, res.ResolvedRefs, r.programmed(out, res)} {
		old := meta.FindStatusCondition(st.Conditions, c.Type)
		if r.eventWorthy(obj.GetUID(), old, c) {
			typ := corev1.EventTypeNormal
			if c.Status != metav1.ConditionTrue {
				typ = corev1.EventTypeWarning
			}
			events = append(events, statusEvent{typ: typ, reason: c.Reason, action: c.Type, note: c.Message})
		}
		meta.SetStatusCondition(&st.Conditions, c)
	}
	st.ObservedGeneration = res.Generation
	var after time.Duration
	if r.extra != nil {
		var (
			more []statusEvent
			err  error
		)
		if after, more, err = r.extra(ctx, obj, res); err != nil {
			return reconcile.Result{}, err
		}
		events = append(events, more...)
	}
	if !equality.Semantic.DeepEqual(orig, obj) {
		if err := r.client.Status().Patch(ctx, obj, client.MergeFrom(orig)); err != nil {
			return reconcile.Result{}, fmt.Errorf("update status of %s %s: %w", r.kind, req.NamespacedName, err)
		}
	}
	for _, e := range events {
		r.recorder.Eventf(obj, nil, e.typ, e.reason, e.action, "%s", e.note)
	}
	return reconcile.Result{RequeueAfter: after}, nil
}

// programmed derives the Programmed condition: whether the object is in the newest snapshot
// and how many connected replicas serve that snapshot.
func (r *statusReconciler[T, PT]) programmed(out *compile.Output, res compile.Result) metav1.Condition {
	c := metav1.Condition{Type: v1alpha1.ConditionProgrammed, Status: metav1.ConditionFalse, ObservedGeneration: res.Generation}
	switch {
	case !res.Included:
		p := res.Problems()
		c.Reason, c.Message = p[0].Reason, "not in the snapshot: "+p[0].Message
	case out.Err != nil:
		c.Reason, c.Message = v1alpha1.ReasonPending, "the newest compile could not be sealed; the previous snapshot is still served"
	default:
		reps := r.replicas(out.Snapshot.Version)
		c.Reason, c.Message = v1alpha1.ReasonPending, reps.String()
		if reps.AllReady() {
			c.Status, c.Reason = metav1.ConditionTrue, v1alpha1.ReasonProgrammed
		}
	}
	return c
}

// eventWorthy reports whether a condition change deserves an event: a new condition, or a new
// status or reason. Programmed is special because every new snapshot sends every object through
// Pending while replicas catch up: Pending never makes an event, and Programmed=True makes one
// per object generation.
func (r *statusReconciler[T, PT]) eventWorthy(uid types.UID, old *metav1.Condition, c metav1.Condition) bool {
	if c.Type == v1alpha1.ConditionProgrammed {
		switch c.Reason {
		case v1alpha1.ReasonPending:
			return false
		case v1alpha1.ReasonProgrammed:
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.announced[uid] == c.ObservedGeneration {
				return false
			}
			r.announced[uid] = c.ObservedGeneration
			return true
		}
		r.forget(uid)
	}
	return old == nil || old.Status != c.Status || old.Reason != c.Reason
}

func (r *statusReconciler[T, PT]) forget(uid types.UID) {
	r.mu.Lock()
	delete(r.announced, uid)
	r.mu.Unlock()
}
