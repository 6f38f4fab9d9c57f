/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package publish

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
	"github.com/posthog/llm-gateway/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

const token = "s3cret-token"

// sealed returns a valid sealed snapshot; different limits give different versions.
func sealed(t *testing.T, dailyMicros int64) *snapshot.Snapshot {
	t.Helper()
	s := &snapshot.Snapshot{DefaultBudget: snapshot.Budget{
		Source:             "builtin",
		Limits:             []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: dailyMicros, Enforcement: snapshot.EnforceHard}},
		OnStoreUnavailable: snapshot.FailClosed,
		Unpriced:           snapshot.UnpricedReject,
	}}
	require.NoError(t, s.Seal())
	return s
}

type harness struct {
	srv     *Server
	http    *httptest.Server
	clock   *clock.Fake
	changes atomic.Int32
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{clock: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	h.srv = New(Options{
		Token:             StaticToken(token),
		Clock:             h.clock,
		OnReplicasChanged: func() { h.changes.Add(1) },
		Log:               logr.Discard(),
	})
	h.http = httptest.NewServer(h.srv.Handler())
	t.Cleanup(func() {
		h.srv.Close()
		h.http.Close()
	})
	return h
}

type response struct {
	status  int
	version string
	body    []byte
}

func (h *harness) get(t *testing.T, auth string, q url.Values) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.http.URL+"/v1/snapshot?"+q.Encode(), nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, version: resp.Header.Get("X-Snapshot-Version"), body: body}
}

func query(pod, applied, rejected, wait string) url.Values {
	q := url.Values{"pod": {pod}}
	if applied != "" {
		q.Set("applied", applied)
	}
	if rejected != "" {
		q.Set("rejected", rejected)
	}
	if wait != "" {
		q.Set("wait", wait)
	}
	return q
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e apiError
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	require.NotEmpty(t, e.Error.Message)
	return e.Error.Code
}

func TestAuth(t *testing.T) {
	h := newHarness(t)
	_, err := h.srv.Publish(sealed(t, 1_000_000))
	require.NoError(t, err)
	for name, auth := range map[string]string{
		"missing":      "",
		"wrong":        "Bearer nope",
		"not bearer":   "Basic " + token,
		"prefix match": "Bearer " + token[:5],
	} {
		t.Run(name, func(t *testing.T) {
			r := h.get(t, auth, query("p", "", "", "0"))
			require.Equal(t, http.StatusUnauthorized, r.status)
			require.Equal(t, "unauthorized", errorCode(t, r.body))
			require.Empty(t, h.srv.Pods(), "unauthenticated requests are not tracked")
		})
	}
	require.Equal(t, http.StatusOK, h.get(t, "Bearer "+token, query("p", "", "", "0")).status)
}

func TestEmptyTokenRefusesEverything(t *testing.T) {
	srv := New(Options{Token: StaticToken(""), Log: logr.Discard()})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/snapshot?pod=p", nil)
	req.Header.Set("Authorization", "Bearer ")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t)
	for name, q := range map[string]url.Values{
		"no pod":        {"wait": {"1"}},
		"negative wait": query("p", "", "", "-1"),
		"text wait":     query("p", "", "", "soon"),
	} {
		t.Run(name, func(t *testing.T) {
			r := h.get(t, "Bearer "+token, q)
			require.Equal(t, http.StatusBadRequest, r.status)
			require.Equal(t, "invalid_request", errorCode(t, r.body))
		})
	}
}

func TestNoSnapshotYet(t *testing.T) {
	h := newHarness(t)
	r := h.get(t, "Bearer "+token, query("p", "", "", "5"))
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, "no_snapshot", errorCode(t, r.body))
	require.Len(t, h.srv.Pods(), 1, "the pod is tracked even before there is a snapshot")
}

func TestServesNewestSnapshot(t *testing.T) {
	h := newHarness(t)
	s1 := sealed(t, 1_000_000)
	changed, err := h.srv.Publish(s1)
	require.NoError(t, err)
	require.True(t, changed)

	r := h.get(t, "Bearer "+token, query("p", "", "", "0"))
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, s1.Version, r.version)
	got, err := snapshot.Decode(r.body)
	require.NoError(t, err, "the body is a valid snapshot")
	require.Equal(t, s1.Version, got.Version)

	// An older applied version gets the newest one too.
	r = h.get(t, "Bearer "+token, query("p", "0000000000000000", "", "0"))
	require.Equal(t, http.StatusOK, r.status)

	// Up to date: 304 once wait passes (wait=0: at once).
	r = h.get(t, "Bearer "+token, query("p", s1.Version, "", "0"))
	require.Equal(t, http.StatusNotModified, r.status)
	require.Equal(t, s1.Version, r.version)

	// Rejected by the pod: not re-sent.
	r = h.get(t, "Bearer "+token, query("p", "0000000000000000", s1.Version, "0"))
	require.Equal(t, http.StatusNotModified, r.status)

	// Publishing the same version again changes nothing.
	changed, err = h.srv.Publish(sealed(t, 1_000_000))
	require.NoError(t, err)
	require.False(t, changed)
}

func TestLongPollWakesOnPublish(t *testing.T) {
	h := newHarness(t)
	s1, s2 := sealed(t, 1_000_000), sealed(t, 2_000_000)
	_, err := h.srv.Publish(s1)
	require.NoError(t, err)

	done := make(chan response, 1)
	go func() { done <- h.get(t, "Bearer "+token, query("p", s1.Version, "", "60")) }()
	require.Eventually(t, func() bool { return len(h.srv.Pods()) == 1 }, 10*time.Second, 5*time.Millisecond)
	select {
	case r := <-done:
		t.Fatalf("answered before a new snapshot: %d", r.status)
	default:
	}
	_, err = h.srv.Publish(s2)
	require.NoError(t, err)
	r := <-done
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, s2.Version, r.version)
}

func TestLongPollTimesOut(t *testing.T) {
	h := newHarness(t)
	s1 := sealed(t, 1_000_000)
	_, err := h.srv.Publish(s1)
	require.NoError(t, err)
	r := h.get(t, "Bearer "+token, query("p", s1.Version, "", "1"))
	require.Equal(t, http.StatusNotModified, r.status)
}

func TestCloseEndsHeldRequests(t *testing.T) {
	h := newHarness(t)
	s1 := sealed(t, 1_000_000)
	_, err := h.srv.Publish(s1)
	require.NoError(t, err)
	done := make(chan response, 1)
	go func() { done <- h.get(t, "Bearer "+token, query("p", s1.Version, "", "60")) }()
	require.Eventually(t, func() bool { return len(h.srv.Pods()) == 1 }, 10*time.Second, 5*time.Millisecond)
	h.srv.Close()
	r := <-done
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, "shutting_down", errorCode(t, r.body))
}

func TestPublishStored(t *testing.T) {
	h := newHarness(t)
	stored := sealed(t, 3_000_000)
	tampered := *stored
	tampered.Version = "ffffffffffffffff" // the hash no longer matches
	bad, err := json.Marshal(&tampered)
	require.NoError(t, err)
	_, _, err = h.srv.PublishStored(bad)
	require.Error(t, err)
	_, _, ok := h.srv.Current()
	require.False(t, ok, "an invalid stored snapshot is not served")

	body, err := json.Marshal(stored)
	require.NoError(t, err)
	v, served, err := h.srv.PublishStored(body)
	require.NoError(t, err)
	require.True(t, served)
	require.Equal(t, stored.Version, v)
	cur, _, ok := h.srv.Current()
	require.True(t, ok)
	require.Equal(t, stored.Version, cur)

	// A compiled snapshot replaces it; a stored one never replaces a compiled one.
	compiled := sealed(t, 4_000_000)
	_, err = h.srv.Publish(compiled)
	require.NoError(t, err)
	_, served, err = h.srv.PublishStored(body)
	require.NoError(t, err)
	require.False(t, served)
	cur, _, _ = h.srv.Current()
	require.Equal(t, compiled.Version, cur)

	_, err = h.srv.Publish(&snapshot.Snapshot{})
	require.Error(t, err, "unsealed snapshots are refused")
}

func TestReplicaTracking(t *testing.T) {
	h := newHarness(t)
	s1, s2 := sealed(t, 1_000_000), sealed(t, 2_000_000)
	_, err := h.srv.Publish(s1)
	require.NoError(t, err)
	base := h.changes.Load()

	// Two pods report; pod-a is current, pod-b is starting.
	h.get(t, "Bearer "+token, query("pod-a", s1.Version, "", "0"))
	h.get(t, "Bearer "+token, query("pod-b", "", "", "0"))
	require.Equal(t, base+2, h.changes.Load(), "each new pod is a change")
	require.Equal(t, Replicas{Version: s1.Version, Ready: 1, Total: 2}, Count(h.srv.Pods(), s1.Version))
	require.Equal(t, "1/2 replicas at version "+s1.Version, Count(h.srv.Pods(), s1.Version).String())

	// A repeated report with the same version is not a change.
	h.get(t, "Bearer "+token, query("pod-a", s1.Version, "", "0"))
	require.Equal(t, base+2, h.changes.Load())

	// pod-b acks: a change, and both serve s1.
	h.get(t, "Bearer "+token, query("pod-b", s1.Version, "", "0"))
	require.Equal(t, base+3, h.changes.Load())
	require.True(t, Count(h.srv.Pods(), s1.Version).AllReady())

	// A new snapshot: nobody serves it yet.
	_, err = h.srv.Publish(s2)
	require.NoError(t, err)
	require.Equal(t, Replicas{Version: s2.Version, Ready: 0, Total: 2}, Count(h.srv.Pods(), s2.Version))

	// Pods are dropped 2 x wait + 10s after they were last seen (wait=0 here: 10s).
	h.clock.Advance(10 * time.Second)
	require.False(t, h.srv.Sweep())
	require.Len(t, h.srv.Pods(), 2)
	before := h.changes.Load()
	h.clock.Advance(time.Second)
	require.Empty(t, h.srv.Pods(), "expired pods are not counted even before a sweep")
	require.True(t, h.srv.Sweep())
	require.Equal(t, before+1, h.changes.Load())
	require.False(t, Count(h.srv.Pods(), s2.Version).AllReady(), "no pod is not all ready")
}

func TestWaitIsClampedForExpiry(t *testing.T) {
	h := newHarness(t)
	// No snapshot: the request returns at once, but the pod's declared wait sets its expiry.
	h.get(t, "Bearer "+token, query("p", "", "", "600"))
	pods := h.srv.Pods()
	require.Len(t, pods, 1)
	require.Equal(t, 2*MaxWait*time.Second+dropGrace, pods[0].Expires.Sub(pods[0].LastSeen))
	h.get(t, "Bearer "+token, query("q", "", "", ""))
	for _, p := range h.srv.Pods() {
		if p.Name == "q" {
			require.Equal(t, 2*DefaultWait*time.Second+dropGrace, p.Expires.Sub(p.LastSeen))
		}
	}
}

func TestFileTokenRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte("first\n"), 0o600))
	ft := &FileToken{Path: path}
	got, err := ft.Token()
	require.NoError(t, err)
	require.Equal(t, "first", string(got))
	require.NoError(t, os.WriteFile(path, []byte("second-token\n"), 0o600))
	got, err = ft.Token()
	require.NoError(t, err)
	require.Equal(t, "second-token", string(got))
	require.NoError(t, os.Remove(path))
	_, err = ft.Token()
	require.Error(t, err)
}

func TestServeAndShutdown(t *testing.T) {
	srv := New(Options{Token: StaticToken(token), Log: logr.Discard()})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()

	resp, err := http.Get("http://" + l.Addr().String() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	require.NoError(t, <-done)
}
