// Package rollout decides, per request, whether a team's traffic is served by the gateway or
// passed through unchanged to the team's legacy gateway (TeamRollout stage Legacy / Canary /
// Gateway), and implements that passthrough.
package rollout

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Path is where a request goes; it is also the value of the x-llm-gateway-path response header.
type Path string

const (
	PathGateway Path = "gateway"
	PathLegacy  Path = "legacy"
)

// Attribution headers used for canary stickiness.
const (
	HeaderDistinctID = "X-PostHog-Distinct-Id"
	HeaderTraceID    = "X-PostHog-Trace-Id"
)

// Decide returns the path of a request of team. keyHash is the hex digest of the request's
// API key ("" when it has none); it is the stickiness fallback when the request carries neither
// a distinct id nor a trace id.
func Decide(team *snapshot.Team, h http.Header, keyHash string) Path {
	if team == nil {
		return PathGateway
	}
	switch team.Rollout.Stage {
	case snapshot.StageLegacy:
		return PathLegacy
	case snapshot.StageCanary:
		if Bucket(team.Name, StickyKey(team.Rollout.StickyBy, h, keyHash)) < team.Rollout.CanaryPercent {
			return PathGateway
		}
		return PathLegacy
	}
	return PathGateway
}

// StickyKey picks the attribute that keeps a caller on one side of the canary: the one named
// by stickyBy first, then the other attribution header, then the API key digest.
func StickyKey(stickyBy string, h http.Header, keyHash string) string {
	first, second := HeaderDistinctID, HeaderTraceID
	if stickyBy == snapshot.StickyTraceID {
		first, second = second, first
	}
	if v := h.Get(first); v != "" {
		return v
	}
	if v := h.Get(second); v != "" {
		return v
	}
	return keyHash
}

// Bucket maps (team, key) to 0-99 with FNV-1a: stable across pods and restarts.
func Bucket(team, key string) int {
	f := fnv.New64a()
	_, _ = f.Write([]byte(team))
	_, _ = f.Write([]byte{0})
	_, _ = f.Write([]byte(key))
	return int(f.Sum64() % 100)
}

// Forward is one request passed through to a team's legacy upstream. Only requests for an
// operation the gateway itself serves are forwarded (the caller checks path and method), and
// only a path, query and credential built from what the gateway validated go upstream.
type Forward struct {
	// Team names the legacy upstream.
	Team string
	// Path is the path sent upstream (joined to the upstream's own path): the gateway
	// operation's path, behind the /{product} prefix when the request had one. The request's
	// own path, with whatever encodings or dot segments it held, is never sent.
	Path string
	// RawQuery is the query sent upstream, already reduced to what the operation documents.
	RawQuery string
	// Authenticated says the caller presented a gateway API key of Team. Then, when the team
	// has a legacy credential, that credential replaces the key in the header the caller used
	// (APIKeyHeader: x-api-key, else Authorization: Bearer) and the other credential header is
	// removed. A caller without a gateway key of the team is passed through with its own
	// credentials unchanged: nothing is injected.
	Authenticated bool
	APIKeyHeader  bool
	// RequestID is the gateway's request id, for the error report.
	RequestID string
}

// ErrorFunc answers a forwarded request the legacy upstream could not serve (unreachable,
// refused, cut before its response headers). err is the detail, for the log only.
type ErrorFunc func(w http.ResponseWriter, r *http.Request, f *Forward, err error)

// Legacy reverse-proxies the traffic of teams at stage Legacy (and the legacy share of Canary)
// to their legacy upstream. Built once per snapshot; the transport is shared across snapshots.
type Legacy struct {
	proxies map[string]*httputil.ReverseProxy
}

// NewLegacy builds one reverse proxy per team that has a legacy upstream.
func NewLegacy(s *snapshot.Snapshot, transport http.RoundTripper, onError ErrorFunc) (*Legacy, error) {
	l := &Legacy{proxies: map[string]*httputil.ReverseProxy{}}
	for i := range s.Teams {
		t := &s.Teams[i]
		if t.Rollout.LegacyUpstream == "" {
			continue
		}
		target, err := url.Parse(t.Rollout.LegacyUpstream)
		if err != nil {
			return nil, fmt.Errorf("team %s: parse legacy upstream: %w", t.Name, err)
		}
		l.proxies[t.Name] = newProxy(target, t.Rollout.LegacyAPIKey, transport, onError)
	}
	return l, nil
}

type forwardKey struct{}

func forwardOf(r *http.Request) *Forward {
	f, _ := r.Context().Value(forwardKey{}).(*Forward)
	return f
}

func newProxy(target *url.URL, apiKey string, transport http.RoundTripper, onError ErrorFunc) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			f := forwardOf(pr.In)
			pr.Out.URL.Path, pr.Out.URL.RawPath, pr.Out.URL.RawQuery = f.Path, "", f.RawQuery
			pr.SetURL(target)
			pr.SetXForwarded()
			if !f.Authenticated || apiKey == "" {
				return
			}
			h := pr.Out.Header
			h.Del("Authorization")
			h.Del("X-Api-Key")
			if f.APIKeyHeader {
				h.Set("X-Api-Key", apiKey)
			} else {
				h.Set("Authorization", "Bearer "+apiKey)
			}
		},
		Transport:     transport,
		FlushInterval: -1, // flush every write: streams reach the client chunk by chunk
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			onError(w, r, forwardOf(r), err)
		},
	}
}

// ServeHTTP proxies r to the legacy upstream of f.Team as f says: body and other headers
// unchanged, path and query from f, the credential replaced only for an authenticated caller
// of a team with a legacy credential. It reports false when the team has no legacy upstream.
func (l *Legacy) ServeHTTP(w http.ResponseWriter, r *http.Request, f Forward) bool {
	p, ok := l.proxies[f.Team]
	if !ok {
		return false
	}
	p.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), forwardKey{}, &f)))
	return true
}
