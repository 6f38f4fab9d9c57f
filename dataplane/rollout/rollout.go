// Package rollout decides, per request, whether a team's traffic is served by the gateway or
// passed through unchanged to the team's legacy gateway (TeamRollout stage Legacy / Canary /
// Gateway), and implements that passthrough.
package rollout

import (
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

// ErrorFunc writes a gateway error (legacy upstream unreachable) in the caller's shape.
type ErrorFunc func(w http.ResponseWriter, r *http.Request, status int, message string)

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

func newProxy(target *url.URL, apiKey string, transport http.RoundTripper, onError ErrorFunc) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			if apiKey == "" {
				return
			}
			h := pr.Out.Header
			if h.Get("X-Api-Key") != "" {
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
			onError(w, r, http.StatusBadGateway, "the legacy gateway could not be reached")
		},
	}
}

// ServeHTTP proxies r unchanged (apart from the credential, when the team has a legacy key) to
// the legacy upstream of team. It reports false when the team has no legacy upstream.
func (l *Legacy) ServeHTTP(w http.ResponseWriter, r *http.Request, team string) bool {
	p, ok := l.proxies[team]
	if !ok {
		return false
	}
	p.ServeHTTP(w, r)
	return true
}
