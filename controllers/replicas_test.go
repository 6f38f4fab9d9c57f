/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/posthog/llm-gateway/controllers/internal/publish"
	"github.com/posthog/llm-gateway/internal/clock"
)

const replicaTestToken = "replica-test-token-0123456789abcdef"

func TestReplicaName(t *testing.T) {
	require.Equal(t, "llm-gateway-operator-7d9f-abc", replicaName("llm-gateway-operator-7d9f-abc"))
	require.Equal(t, "my-host-local", replicaName("My_Host.local"))
	require.Equal(t, "unknown", replicaName("..."))
}

// TestReplicaShare checks that replicas exchange their pod views through ConfigMaps: a pod
// seen only by replica B counts on replica A, the newest report of a pod wins, and reports of
// replicas gone for long are deleted.
func TestReplicaShare(t *testing.T) {
	scheme, err := NewScheme()
	require.NoError(t, err)
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	ctx := context.Background()

	newReplica := func(id string) (*replicaShare, *publish.Server, *int) {
		tokens := &publish.Tokens{}
		tokens.Set(map[string][]byte{"gw": []byte(replicaTestToken)})
		srv := publish.New(publish.Options{Tokens: tokens, Clock: clk, Log: logr.Discard()})
		changes := new(int)
		s := newReplicaShare(c, c, "ops", id, srv, clk, logr.Discard())
		s.onChange = func() { *changes++ }
		return s, srv, changes
	}
	a, srvA, changesA := newReplica("replica-a")
	b, srvB, _ := newReplica("replica-b")

	// Pods report to the servers as they would over HTTP.
	report := func(srv *publish.Server, pod, applied string) {
		req := httptest.NewRequest(http.MethodGet, "/v1/snapshot?wait=30&pod="+pod+"&applied="+applied, nil)
		req.Header.Set("Authorization", "Bearer "+replicaTestToken)
		srv.Handler().ServeHTTP(httptest.NewRecorder(), req) // 503: no snapshot, but the pod is recorded
	}
	report(srvA, "gw-1", "v1")
	report(srvB, "gw-2", "")   // starting
	report(srvB, "gw-1", "v0") // gw-1 as B saw it at the same time: A's own view wins ties

	require.NoError(t, b.write(ctx))
	require.NoError(t, a.write(ctx))
	require.NoError(t, a.read(ctx))
	require.Equal(t, 1, *changesA, "the remote view changed")
	pods := a.pods()
	require.Len(t, pods, 2)
	require.Equal(t, publish.Replicas{Version: "v1", Ready: 1, Total: 2}, publish.Count(pods, "v1"),
		"gw-1 counts once, with A's own (equally recent) report")

	// Reading again without changes is not a change.
	require.NoError(t, a.read(ctx))
	require.Equal(t, 1, *changesA)

	// gw-2 acks v1 on B; after B writes, A sees 2/2.
	clk.Advance(time.Second)
	report(srvB, "gw-2", "v1")
	report(srvB, "gw-1", "v1")
	require.NoError(t, b.write(ctx))
	require.NoError(t, a.read(ctx))
	require.Equal(t, publish.Replicas{Version: "v1", Ready: 2, Total: 2}, publish.Count(a.pods(), "v1"))

	// B disappears: its report ages out and is deleted; its pods expired long before.
	clk.Advance(replicaReportStale + time.Minute)
	require.NoError(t, a.write(ctx))
	require.NoError(t, a.read(ctx))
	var list corev1.ConfigMapList
	require.NoError(t, c.List(ctx, &list, client.InNamespace("ops")))
	require.Len(t, list.Items, 1)
	require.Equal(t, replicaReportPrefix+"replica-a", list.Items[0].Name)
	var r replicaReport
	require.NoError(t, json.Unmarshal([]byte(list.Items[0].Data[replicaReportKey]), &r))
	require.Equal(t, "replica-a", r.Replica)
	require.Empty(t, a.pods(), "every pod expired")
}

// TestReplicaShareNoticesExpiry: a pod reported by a replica that stopped writing expires on
// the reader's side, and that is a change (Programmed must be recomputed).
func TestReplicaShareNoticesExpiry(t *testing.T) {
	scheme, err := NewScheme()
	require.NoError(t, err)
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	ctx := context.Background()
	tokens := &publish.Tokens{}
	tokens.Set(map[string][]byte{"gw": []byte(replicaTestToken)})
	srvA := publish.New(publish.Options{Tokens: tokens, Clock: clk, Log: logr.Discard()})
	srvB := publish.New(publish.Options{Tokens: tokens, Clock: clk, Log: logr.Discard()})
	a := newReplicaShare(c, c, "ops", "a", srvA, clk, logr.Discard())
	b := newReplicaShare(c, c, "ops", "b", srvB, clk, logr.Discard())
	changes := 0
	a.onChange = func() { changes++ }

	req := httptest.NewRequest(http.MethodGet, "/v1/snapshot?wait=0&pod=gw&applied=v1", nil)
	req.Header.Set("Authorization", "Bearer "+replicaTestToken)
	srvB.Handler().ServeHTTP(httptest.NewRecorder(), req)
	require.NoError(t, b.write(ctx))
	require.NoError(t, a.read(ctx))
	require.Equal(t, 1, changes)
	require.Len(t, a.pods(), 1)

	clk.Advance(11 * time.Second) // 2 x wait(0) + 10s
	require.NoError(t, a.read(ctx))
	require.Equal(t, 2, changes, "the expiry of a remote pod is a change")
	require.Empty(t, a.pods())
}
