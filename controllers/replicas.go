/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/posthog/llm-gateway/controllers/internal/publish"
	"github.com/posthog/llm-gateway/internal/clock"
)

// Gateway pods long-poll whichever operator replica the Service picks, so each replica knows
// only some of them. Every replica therefore shares its view in a ConfigMap of the operator
// namespace (llm-gateway-replicas-<replica>) and reads the others', and the leader counts the
// union for Programmed.
const (
	replicaReportPrefix = "llm-gateway-replicas-"
	replicaReportKey    = "pods.json"
	replicaReportLabel  = "llmgateway.posthog.com/replica-report"
	// Reports are rewritten at least this often (pods' expiry times move on) and read this often.
	replicaReportRefresh = 20 * time.Second
	replicaReportPoll    = 5 * time.Second
	// A report not rewritten for this long belongs to a replica that is gone: it is deleted.
	replicaReportStale = 10 * time.Minute
)

// +kubebuilder:rbac:groups="",namespace=llm-gateway-system,resources=configmaps,verbs=get;list;create;update;delete

type replicaReport struct {
	Replica string        `json:"replica"`
	Updated time.Time     `json:"updated"`
	Pods    []publish.Pod `json:"pods"`
}

// replicaShare writes this replica's report and merges the other replicas' into its view. It
// runs on every replica.
type replicaShare struct {
	client    client.Client
	reader    client.Reader // uncached
	namespace string
	id        string
	server    *publish.Server
	clock     clock.Clock
	onChange  func() // remote view changed
	log       logr.Logger

	kick chan struct{} // a local change: write soon

	mu      sync.Mutex
	remote  map[string]publish.Pod // by pod name, newest report wins
	written []byte
	writeAt time.Time
}

func newReplicaShare(c client.Client, r client.Reader, ns, id string, server *publish.Server, clk clock.Clock, log logr.Logger) *replicaShare {
	return &replicaShare{client: c, reader: r, namespace: ns, id: replicaName(id), server: server, clock: clk, log: log,
		kick: make(chan struct{}, 1), remote: map[string]publish.Pod{}}
}

var nonDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// replicaName turns a host name into a ConfigMap name suffix.
func replicaName(id string) string {
	id = strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(id), "-"), "-")
	if id == "" {
		id = "unknown"
	}
	if max := 253 - len(replicaReportPrefix); len(id) > max {
		id = id[:max]
	}
	return id
}

// localChanged is called when a local pod joins, leaves or acks.
func (s *replicaShare) localChanged() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica reports.
func (s *replicaShare) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable.
func (s *replicaShare) Start(ctx context.Context) error {
	tick := time.NewTicker(replicaReportPoll)
	defer tick.Stop()
	for {
		if err := s.write(ctx); err != nil {
			s.log.Error(err, "cannot write this replica's gateway pod report")
		}
		if err := s.read(ctx); err != nil {
			s.log.Error(err, "cannot read the other replicas' gateway pod reports")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.kick:
		}
	}
}

func (s *replicaShare) write(ctx context.Context) error {
	now := s.clock.Now()
	pods := s.server.Pods()
	body, err := json.Marshal(pods)
	if err != nil {
		return fmt.Errorf("encode pod report: %w", err)
	}
	s.mu.Lock()
	fresh := string(body) == string(s.written) && now.Sub(s.writeAt) < replicaReportRefresh
	s.mu.Unlock()
	if fresh {
		return nil
	}
	data, err := json.Marshal(replicaReport{Replica: s.id, Updated: now, Pods: pods})
	if err != nil {
		return fmt.Errorf("encode pod report: %w", err)
	}
	cm := &corev1.ConfigMap{}
	key := client.ObjectKey{Namespace: s.namespace, Name: replicaReportPrefix + s.id}
	switch err := s.reader.Get(ctx, key, cm); {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: map[string]string{replicaReportLabel: "true"}},
			Data:       map[string]string{replicaReportKey: string(data)},
		}
		if err := s.client.Create(ctx, cm); err != nil {
			return fmt.Errorf("create ConfigMap %s: %w", key, err)
		}
	case err != nil:
		return fmt.Errorf("get ConfigMap %s: %w", key, err)
	default:
		cm.Data = map[string]string{replicaReportKey: string(data)}
		if err := s.client.Update(ctx, cm); err != nil {
			return fmt.Errorf("update ConfigMap %s: %w", key, err)
		}
	}
	s.mu.Lock()
	s.written, s.writeAt = body, now
	s.mu.Unlock()
	return nil
}

func (s *replicaShare) read(ctx context.Context) error {
	var list corev1.ConfigMapList
	if err := s.reader.List(ctx, &list, client.InNamespace(s.namespace), client.HasLabels{replicaReportLabel}); err != nil {
		return fmt.Errorf("list pod reports: %w", err)
	}
	now := s.clock.Now()
	remote := map[string]publish.Pod{}
	for i := range list.Items {
		cm := &list.Items[i]
		if cm.Name == replicaReportPrefix+s.id {
			continue
		}
		var r replicaReport
		if err := json.Unmarshal([]byte(cm.Data[replicaReportKey]), &r); err != nil {
			s.log.Error(err, "ignoring an unreadable pod report", "configmap", cm.Name)
			continue
		}
		if now.Sub(r.Updated) > replicaReportStale {
			if err := s.client.Delete(ctx, cm); err != nil && !apierrors.IsNotFound(err) {
				s.log.Error(err, "cannot delete the pod report of a replica that is gone", "configmap", cm.Name)
			}
			continue
		}
		for _, p := range r.Pods {
			if now.After(p.Expires) {
				continue // the replica is gone or has not rewritten its report yet
			}
			if old, ok := remote[p.Name]; !ok || p.LastSeen.After(old.LastSeen) {
				remote[p.Name] = p
			}
		}
	}
	// Changed: a pod appeared, expired, or applied another version.
	s.mu.Lock()
	changed := !maps.EqualFunc(s.remote, remote, func(a, b publish.Pod) bool { return a.Applied == b.Applied })
	s.remote = remote
	s.mu.Unlock()
	if changed && s.onChange != nil {
		s.onChange()
	}
	return nil
}

// pods returns every live gateway pod known to any replica; for a pod seen by several, the
// most recent report wins.
func (s *replicaShare) pods() []publish.Pod {
	now := s.clock.Now()
	all := map[string]publish.Pod{}
	s.mu.Lock()
	for name, p := range s.remote {
		if !now.After(p.Expires) {
			all[name] = p
		}
	}
	s.mu.Unlock()
	for _, p := range s.server.Pods() {
		if old, ok := all[p.Name]; !ok || !old.LastSeen.After(p.LastSeen) {
			all[p.Name] = p
		}
	}
	out := slices.Collect(maps.Values(all))
	slices.SortFunc(out, func(a, b publish.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}
