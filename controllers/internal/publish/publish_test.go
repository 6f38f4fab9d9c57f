/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package publish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/controllers/internal/certs"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
	"github.com/posthog/llm-gateway/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

const token = "s3cret-token-of-gateway-a-0123456789abcdef"

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
		Tokens:            tokens(map[string]string{"gateway-a": token, "gateway-b": token + "-b"}),
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

func tokens(m map[string]string) *Tokens {
	t := &Tokens{}
	in := map[string][]byte{}
	for k, v := range m {
		in[k] = []byte(v)
	}
	t.Set(in)
	return t
}

// TestAuth: a request without a valid token gets 401 and nothing about the configuration: no
// version, no snapshot, no tracking.
func TestAuth(t *testing.T) {
	h := newHarness(t)
	snap := sealed(t, 1_000_000)
	_, err := h.srv.Publish(snap)
	require.NoError(t, err)
	for name, auth := range map[string]string{
		"missing":             "",
		"empty":               "Bearer ",
		"wrong":               "Bearer nope",
		"not bearer":          "Basic " + token,
		"prefix match":        "Bearer " + token[:5],
		"longer":              "Bearer " + token + "x",
		"other case":          "Bearer " + strings.ToUpper(token),
		"another's with junk": "Bearer " + token + "-bb",
	} {
		t.Run(name, func(t *testing.T) {
			r := h.get(t, auth, query("p", "", "", "0"))
			require.Equal(t, http.StatusUnauthorized, r.status)
			require.Equal(t, "unauthorized", errorCode(t, r.body))
			require.Empty(t, r.version, "no version header")
			require.NotContains(t, string(r.body), snap.Version)
			require.NotContains(t, string(r.body), "limitMicros")
			require.Empty(t, h.srv.Pods(), "unauthenticated requests are not tracked")
		})
	}
	// Each Deployment's token works.
	require.Equal(t, http.StatusOK, h.get(t, "Bearer "+token, query("pa", "", "", "0")).status)
	require.Equal(t, http.StatusOK, h.get(t, "Bearer "+token+"-b", query("pb", "", "", "0")).status)
	require.Len(t, h.srv.Pods(), 2)
}

func TestNoTokensRefuseEverything(t *testing.T) {
	for name, tok := range map[string]*Tokens{"nil": nil, "empty": {}, "too short": tokens(map[string]string{"gw": "short"})} {
		t.Run(name, func(t *testing.T) {
			srv := New(Options{Tokens: tok, Log: logr.Discard()})
			_, err := srv.Publish(sealed(t, 1_000_000))
			require.NoError(t, err)
			for _, auth := range []string{"Bearer ", "Bearer short"} {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodGet, "/v1/snapshot?pod=p&wait=0", nil)
				req.Header.Set("Authorization", auth)
				srv.Handler().ServeHTTP(rec, req)
				require.Equal(t, http.StatusUnauthorized, rec.Code)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	var tk Tokens
	_, ok := tk.Match([]byte(token))
	require.False(t, ok, "the zero value accepts nothing")
	refused := tk.Set(map[string][]byte{"gw-a": []byte(token), "gw-b": []byte(token + "-b"), "gw-weak": []byte("0123456789")})
	require.Equal(t, []string{"gw-weak"}, refused)
	require.Equal(t, []string{"gw-a", "gw-b"}, tk.Clients())
	for presented, want := range map[string]string{token: "gw-a", token + "-b": "gw-b", "0123456789": "", "": "", token[:31]: ""} {
		got, ok := tk.Match([]byte(presented))
		require.Equal(t, want != "", ok, presented)
		require.Equal(t, want, got)
	}
	// Rotation: the old token stops working at once.
	tk.Set(map[string][]byte{"gw-a": []byte(token + "-rotated"), "gw-b": []byte(token + "-b")})
	_, ok = tk.Match([]byte(token))
	require.False(t, ok)
	got, ok := tk.Match([]byte(token + "-rotated"))
	require.True(t, ok)
	require.Equal(t, "gw-a", got)
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

// TestServeTLSOnly: Serve refuses to run without TLS; with it, clients that trust the CA and
// verify the snapshot server name get through, plain HTTP and clients without the CA do not.
func TestServeTLSOnly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.ErrorContains(t, New(Options{Log: logr.Discard()}).Serve(context.Background(), l), "TLS only")
	l.Close()

	m, _, err := certs.Plan(time.Now(), nil, []string{snapshot.TLSServerName}, certs.DefaultPolicy)
	require.NoError(t, err)
	srv := New(Options{Tokens: tokens(map[string]string{"gw": token}), Log: logr.Discard(),
		TLS: &tls.Config{Certificates: []tls.Certificate{*m.Certificate()}, MinVersion: tls.VersionTLS12}})
	_, err = srv.Publish(sealed(t, 1_000_000))
	require.NoError(t, err)
	l, err = net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	base := "https://" + l.Addr().String()

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(m.Bundle()))
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: snapshot.TLSServerName}}}
	defer trusting.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, base+"/v1/snapshot?pod=p&wait=0", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := trusting.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// No CA, or the wrong name: the handshake fails. Plain HTTP gets no snapshot.
	stranger := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: snapshot.TLSServerName}}}
	defer stranger.CloseIdleConnections()
	_, err = stranger.Get(base + "/healthz")
	require.Error(t, err)
	wrongName := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "evil.example"}}}
	defer wrongName.CloseIdleConnections()
	_, err = wrongName.Get(base + "/healthz")
	require.Error(t, err)
	plain, err := http.NewRequest(http.MethodGet, "http://"+l.Addr().String()+"/v1/snapshot?pod=p&wait=0", nil)
	require.NoError(t, err)
	plain.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(plain); err == nil {
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "Go answers plain HTTP on a TLS port with 400")
		resp.Body.Close()
	}

	cancel()
	require.NoError(t, <-done)
}
