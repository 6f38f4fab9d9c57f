/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/posthog/llm-gateway/controllers/internal/publish"
)

// The last valid snapshot is kept in this Secret of the operator's namespace, so that a
// restarted operator serves it before its first compile.
const (
	SnapshotSecretName = "llm-gateway-snapshot"
	SnapshotSecretKey  = "snapshot.json"
	// snapshotVersionAnnotation carries the stored version, to skip writes of the same one.
	snapshotVersionAnnotation = "llmgateway.posthog.com/snapshot-version"
)

// +kubebuilder:rbac:groups="",namespace=llm-gateway-system,resources=secrets,verbs=create
// +kubebuilder:rbac:groups="",namespace=llm-gateway-system,resources=secrets,resourceNames=llm-gateway-snapshot,verbs=update;patch

// persister writes every newly served snapshot to the Secret. Only the leader runs it.
type persister struct {
	client client.Client
	reader client.Reader // uncached: the operator namespace may be outside the watch namespace
	server *publish.Server
	key    types.NamespacedName
	log    logr.Logger
	retry  time.Duration
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (p *persister) NeedLeaderElection() bool { return true }

// Start implements manager.Runnable.
func (p *persister) Start(ctx context.Context) error {
	stored := ""
	for {
		changed := p.server.Changed()
		if version, body, ok := p.server.Current(); ok && version != stored {
			if err := p.store(ctx, version, body); err != nil {
				p.log.Error(err, "cannot keep the snapshot in its Secret; retrying", "secret", p.key, "version", version)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(p.retry):
				}
				continue
			}
			stored = version
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

func (p *persister) store(ctx context.Context, version string, body []byte) error {
	var s corev1.Secret
	err := p.reader.Get(ctx, p.key, &s)
	switch {
	case apierrors.IsNotFound(err):
		s = corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: p.key.Name, Namespace: p.key.Namespace,
				Labels:      map[string]string{"app.kubernetes.io/name": "llm-gateway", "app.kubernetes.io/component": "snapshot"},
				Annotations: map[string]string{snapshotVersionAnnotation: version},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{SnapshotSecretKey: body},
		}
		if err := p.client.Create(ctx, &s); err != nil {
			return fmt.Errorf("create Secret %s: %w", p.key, err)
		}
	case err != nil:
		return fmt.Errorf("get Secret %s: %w", p.key, err)
	case s.Annotations[snapshotVersionAnnotation] == version:
		return nil
	default:
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[snapshotVersionAnnotation] = version
		s.Data = map[string][]byte{SnapshotSecretKey: body}
		if err := p.client.Update(ctx, &s); err != nil {
			return fmt.Errorf("update Secret %s: %w", p.key, err)
		}
	}
	p.log.Info("kept the snapshot in its Secret", "secret", p.key, "version", version)
	return nil
}

// loadStored serves the snapshot kept in the Secret until the first compile. A missing or
// invalid Secret is not an error: the operator then serves 503 until it compiles.
func loadStored(ctx context.Context, reader client.Reader, key types.NamespacedName, server *publish.Server, log logr.Logger) {
	var s corev1.Secret
	if err := reader.Get(ctx, key, &s); err != nil {
		if !apierrors.IsNotFound(err) {
			log.Error(err, "cannot read the stored snapshot", "secret", key)
		}
		return
	}
	version, served, err := server.PublishStored(s.Data[SnapshotSecretKey])
	if err != nil {
		log.Error(err, "the stored snapshot is not valid; not serving it", "secret", key)
		return
	}
	if served {
		log.Info("serving the stored snapshot until the first compile", "secret", key, "version", version)
	}
}
