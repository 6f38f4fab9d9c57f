/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

// Package publish is the operator's snapshot server: gateway pods long-poll it for the newest
// valid snapshot and report the version they applied, which it tracks per pod.
//
// Protocol (the pod side is dataplane/configsync):
//
//	GET /v1/snapshot?pod=<pod-name>&applied=<version>&rejected=<version>&wait=<seconds>
//	Authorization: Bearer <token>
//
// over TLS only (Serve refuses to serve without a certificate). Each gateway Deployment has its
// own token (Tokens); a request without one of them gets 401 and nothing else: no version, no
// tracking.
//
// applied is the version the pod serves now ("" at start); it doubles as the pod's ack.
// rejected is a version the pod failed to apply, so that it is not sent again.
//
//   - When the newest snapshot's version differs from both: 200, the snapshot JSON, header
//     X-Snapshot-Version. Otherwise the request is held until a new snapshot is published or
//     wait seconds pass (default 30, at most 60), then 304 Not Modified.
//   - 503 with a JSON error while the operator has no valid snapshot yet (or is shutting
//     down); 401 with a JSON error for a missing or wrong token; 400 for a malformed query.
//   - Every request records (pod, applied, time); a pod not seen for 2 x wait + 10s is dropped.
//
// GET /healthz is unauthenticated.
package publish

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
)

// Long-poll bounds, in seconds.
const (
	DefaultWait = 30
	MaxWait     = 60
)

// Grace added to 2 x wait before a silent pod is dropped.
const dropGrace = 10 * time.Second

// Options configure a Server.
type Options struct {
	// Tokens are the bearer tokens pods may present; nil or empty refuses every request.
	Tokens *Tokens
	// TLS serves the protocol (Serve requires it; Handler does not use it).
	TLS *tls.Config
	// Clock is the clock (the wall clock when nil).
	Clock clock.Clock
	// OnReplicasChanged, when set, is called whenever the set of pods or a pod's applied
	// version changes. It is called without locks held and must not block.
	OnReplicasChanged func()
	// Log receives one line per published snapshot and per pod that joins or leaves.
	Log logr.Logger
}

// Server serves snapshots and tracks pods. The zero value is not usable; call New.
type Server struct {
	opts Options

	mu      sync.Mutex
	current *published
	changed chan struct{} // closed and replaced on every publish
	closing chan struct{} // closed by Close
	closed  bool
	pods    map[string]podState
}

type published struct {
	version string
	body    []byte
}

type podState struct {
	client   string
	applied  string
	lastSeen time.Time
	expires  time.Time
}

// New returns a server with no snapshot.
func New(opts Options) *Server {
	opts.Clock = clock.Or(opts.Clock)
	return &Server{opts: opts, changed: make(chan struct{}), closing: make(chan struct{}), pods: map[string]podState{}}
}

// Publish makes a sealed snapshot the one served. Publishing the version already served is a
// no-op. It returns whether the served snapshot changed.
func (s *Server) Publish(snap *snapshot.Snapshot) (bool, error) {
	if snap == nil || snap.Version == "" {
		return false, errors.New("publish: the snapshot is not sealed")
	}
	body, err := json.Marshal(snap)
	if err != nil {
		return false, fmt.Errorf("publish: encode snapshot %s: %w", snap.Version, err)
	}
	return s.publish(snap.Version, body, false), nil
}

// PublishStored validates an encoded snapshot (as a pod would) and serves it, but only while
// nothing is served yet: it is for the last valid snapshot kept in a Secret, served from start
// until the operator's first compile. It returns the stored version and whether it is served.
func (s *Server) PublishStored(body []byte) (string, bool, error) {
	snap, err := snapshot.Decode(body)
	if err != nil {
		return "", false, fmt.Errorf("publish stored snapshot: %w", err)
	}
	s.mu.Lock()
	empty := s.current == nil
	s.mu.Unlock()
	if !empty {
		return snap.Version, false, nil
	}
	return snap.Version, s.publish(snap.Version, body, true), nil
}

func (s *Server) publish(version string, body []byte, onlyIfEmpty bool) bool {
	s.mu.Lock()
	if s.current != nil && (onlyIfEmpty || s.current.version == version) {
		s.mu.Unlock()
		return false
	}
	s.current = &published{version: version, body: body}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.opts.Log.Info("serving snapshot", "version", version, "bytes", len(body))
	s.notify()
	return true
}

// Current returns the served snapshot's version and JSON.
func (s *Server) Current() (version string, body []byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return "", nil, false
	}
	return s.current.version, s.current.body, true
}

// Changed returns a channel closed at the next publish.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Close ends every held request with 503 (pods then reconnect, to another operator replica
// when there is one) and refuses new ones.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
}

func (s *Server) notify() {
	if s.opts.OnReplicasChanged != nil {
		s.opts.OnReplicasChanged()
	}
}

// Handler serves /v1/snapshot and /healthz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/snapshot", s.serveSnapshot)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// apiError is the body of every error response: {"error": {"code": ..., "message": ...}}.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var e apiError
	e.Error.Code, e.Error.Message = code, message
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(&e)
}

// client returns the client whose token the request presents.
func (s *Server) client(r *http.Request) (string, bool) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false
	}
	return s.opts.Tokens.Match([]byte(strings.TrimSpace(got)))
}

func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	client, ok := s.client(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
		return
	}
	q := r.URL.Query()
	pod, applied, rejected := q.Get("pod"), q.Get("applied"), q.Get("rejected")
	if pod == "" || len(pod) > 253 {
		writeError(w, http.StatusBadRequest, "invalid_request", "query parameter pod (the pod name, at most 253 characters) is required")
		return
	}
	wait := DefaultWait
	if v := q.Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid_request", "query parameter wait must be a whole number of seconds")
			return
		}
		wait = min(n, MaxWait)
	}
	s.seen(client, pod, applied, time.Duration(wait)*time.Second)

	timer := time.NewTimer(time.Duration(wait) * time.Second)
	defer timer.Stop()
	for {
		s.mu.Lock()
		cur, changed, closed := s.current, s.changed, s.closed
		s.mu.Unlock()
		switch {
		case closed:
			writeError(w, http.StatusServiceUnavailable, "shutting_down", "the operator replica is shutting down; retry")
			return
		case cur == nil:
			writeError(w, http.StatusServiceUnavailable, "no_snapshot", "the operator has no valid snapshot yet")
			return
		case cur.version != applied && cur.version != rejected:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("X-Snapshot-Version", cur.version)
			w.Header().Set("Content-Length", strconv.Itoa(len(cur.body)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(cur.body)
			return
		}
		select {
		case <-changed:
		case <-s.closing:
		case <-timer.C:
			w.Header().Set("X-Snapshot-Version", cur.version)
			w.WriteHeader(http.StatusNotModified)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// seen records a pod's report.
func (s *Server) seen(client, pod, applied string, wait time.Duration) {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	old, known := s.pods[pod]
	s.pods[pod] = podState{client: client, applied: applied, lastSeen: now, expires: now.Add(2*wait + dropGrace)}
	s.mu.Unlock()
	if !known || old.client != client {
		s.opts.Log.Info("gateway pod connected", "pod", pod, "client", client, "applied", applied)
	}
	if !known || old.applied != applied {
		s.notify()
	}
}

// Sweep drops pods not seen in time and reports whether any was dropped. The operator calls it
// periodically; Replicas ignores expired pods either way.
func (s *Server) Sweep() bool {
	now := s.opts.Clock.Now()
	var dropped []string
	s.mu.Lock()
	for name, p := range s.pods {
		if now.After(p.expires) {
			delete(s.pods, name)
			dropped = append(dropped, name)
		}
	}
	s.mu.Unlock()
	for _, name := range dropped {
		s.opts.Log.Info("gateway pod dropped: not seen in time", "pod", name)
	}
	if len(dropped) > 0 {
		s.notify()
	}
	return len(dropped) > 0
}

// Pod is what the server knows about one gateway pod.
type Pod struct {
	Name     string    `json:"name"`
	Applied  string    `json:"applied"`
	LastSeen time.Time `json:"lastSeen"`
	Expires  time.Time `json:"expires"`
}

// Pods returns the live pods, sorted by name.
func (s *Server) Pods() []Pod {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	out := make([]Pod, 0, len(s.pods))
	for name, p := range s.pods {
		if !now.After(p.expires) {
			out = append(out, Pod{Name: name, Applied: p.applied, LastSeen: p.lastSeen, Expires: p.expires})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Pod) int { return strings.Compare(a.Name, b.Name) })
	return out
}
