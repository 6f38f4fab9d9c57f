/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/posthog/llm-gateway/controllers/internal/compile"
)

// world holds the newest compile output and wakes the status controllers when it, or the
// replicas' acks, change. Status controllers read it; only the snapshot controller writes it.
type world struct {
	mu     sync.RWMutex
	out    *compile.Output
	queues map[compile.Kind][]workqueue.TypedRateLimitingInterface[reconcile.Request]
}

func newWorld() *world {
	return &world{queues: map[compile.Kind][]workqueue.TypedRateLimitingInterface[reconcile.Request]{}}
}

// set stores a compile output and requeues every object.
func (w *world) set(out *compile.Output) {
	w.mu.Lock()
	w.out = out
	w.mu.Unlock()
	w.notify()
}

// output returns the newest compile output, nil before the first compile.
func (w *world) output() *compile.Output {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.out
}

// source is a controller source that receives a request for every object of kind whenever
// notify is called. Status controllers only start on the leader: until one starts, nothing is
// queued (and nothing blocks).
func (w *world) source(kind compile.Kind) source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		w.mu.Lock()
		w.queues[kind] = append(w.queues[kind], q)
		w.mu.Unlock()
		w.notify()
		return nil
	})
}

// notify queues every compiled object for its status controller. It never blocks.
func (w *world) notify() {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.out == nil {
		return
	}
	for _, r := range w.out.Results {
		for _, q := range w.queues[r.Key.Kind] {
			q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: r.Key.Namespace, Name: r.Key.Name}})
		}
	}
}
