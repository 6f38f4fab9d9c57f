package rollout

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

func TestDecideStages(t *testing.T) {
	h := http.Header{}
	require.Equal(t, PathGateway, Decide(nil, h, ""))
	require.Equal(t, PathGateway, Decide(&snapshot.Team{Name: "a", Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}}, h, "k"))
	require.Equal(t, PathLegacy, Decide(&snapshot.Team{Name: "a", Rollout: snapshot.Rollout{Stage: snapshot.StageLegacy}}, h, "k"))
	canary := func(p int) *snapshot.Team {
		return &snapshot.Team{Name: "a", Rollout: snapshot.Rollout{Stage: snapshot.StageCanary, CanaryPercent: p}}
	}
	require.Equal(t, PathLegacy, Decide(canary(0), h, "k"))
	require.Equal(t, PathGateway, Decide(canary(100), h, "k"))
}

func TestCanarySplitIsStickyAndProportional(t *testing.T) {
	team := &snapshot.Team{Name: "a", Rollout: snapshot.Rollout{Stage: snapshot.StageCanary, CanaryPercent: 30}}
	gateway := 0
	for i := range 10000 {
		h := hdr(HeaderDistinctID, fmt.Sprintf("user-%d", i))
		p := Decide(team, h, "k")
		for range 3 {
			require.Equal(t, p, Decide(team, h, "k"), "the same distinct id always goes the same way")
		}
		if p == PathGateway {
			gateway++
		}
	}
	require.InDelta(t, 3000, gateway, 300)
}

func TestStickyKey(t *testing.T) {
	h := hdr(HeaderDistinctID, "d", HeaderTraceID, "t")
	require.Equal(t, "d", StickyKey(snapshot.StickyDistinctID, h, "k"))
	require.Equal(t, "d", StickyKey("", h, "k"))
	require.Equal(t, "t", StickyKey(snapshot.StickyTraceID, h, "k"))
	require.Equal(t, "t", StickyKey(snapshot.StickyDistinctID, hdr(HeaderTraceID, "t"), "k"))
	require.Equal(t, "k", StickyKey(snapshot.StickyDistinctID, http.Header{}, "k"))
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestLegacyProxy(t *testing.T) {
	type seen struct{ path, query, auth, apiKey, body string }
	got := make(chan seen, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.URL.EscapedPath(), r.URL.RawQuery, strings.Join(r.Header.Values("Authorization"), ","),
			strings.Join(r.Header.Values("X-Api-Key"), ","), string(b)}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: 1\n\n")
	}))
	defer upstream.Close()

	s := &snapshot.Snapshot{Teams: []snapshot.Team{
		{Name: "keep", Rollout: snapshot.Rollout{Stage: snapshot.StageLegacy, LegacyUpstream: upstream.URL + "/base"}},
		{Name: "swap", Rollout: snapshot.Rollout{Stage: snapshot.StageLegacy, LegacyUpstream: upstream.URL, LegacyAPIKey: "legacy-key"}},
		{Name: "gw", Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}},
	}}
	l, err := NewLegacy(s, http.DefaultTransport, func(w http.ResponseWriter, r *http.Request, f *Forward, err error) {
		http.Error(w, "unreachable", http.StatusBadGateway)
	})
	require.NoError(t, err)

	const chat = "/v1/chat/completions"
	for _, tc := range []struct {
		name         string
		fwd          Forward
		auth, apiKey string
		want         seen
	}{
		{"no legacy credential: the caller's passes", Forward{Team: "keep", Path: chat, Authenticated: true},
			"Bearer client", "", seen{"/base" + chat, "", "Bearer client", "", `{"a":1}`}},
		{"authenticated, bearer: swapped", Forward{Team: "swap", Path: chat, Authenticated: true},
			"Bearer client", "other", seen{chat, "", "Bearer legacy-key", "", `{"a":1}`}},
		{"authenticated, x-api-key: swapped", Forward{Team: "swap", Path: chat, Authenticated: true, APIKeyHeader: true},
			"", "client", seen{chat, "", "", "legacy-key", `{"a":1}`}},
		{"not authenticated: nothing injected", Forward{Team: "swap", Path: chat},
			"Bearer own-legacy-cred", "", seen{chat, "", "Bearer own-legacy-cred", "", `{"a":1}`}},
		{"not authenticated, no credential: none added", Forward{Team: "swap", Path: chat},
			"", "", seen{chat, "", "", "", `{"a":1}`}},
		{"path and query are the forward's, never the request's", Forward{Team: "swap", Path: "/max/v1/messages", RawQuery: "beta=true", Authenticated: true},
			"Bearer client", "", seen{"/max/v1/messages", "beta=true", "Bearer legacy-key", "", `{"a":1}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/x/%2e%2e/v1/chat%2Fcompletions?api-version=1&x=1", strings.NewReader(`{"a":1}`))
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			if tc.apiKey != "" {
				r.Header.Set("X-Api-Key", tc.apiKey)
			}
			w := httptest.NewRecorder()
			require.True(t, l.ServeHTTP(w, r, tc.fwd))
			require.Equal(t, http.StatusOK, w.Code)
			require.Equal(t, "data: 1\n\n", w.Body.String())
			require.Equal(t, tc.want, <-got)
		})
	}
	require.False(t, l.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil), Forward{Team: "gw"}))
}

// An unreachable legacy upstream reaches the error func with the detail and the forward (for
// the log); what the client sees is the error func's.
func TestLegacyProxyError(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	addr := dead.URL
	dead.Close()
	s := &snapshot.Snapshot{Teams: []snapshot.Team{
		{Name: "t", Rollout: snapshot.Rollout{Stage: snapshot.StageLegacy, LegacyUpstream: addr, LegacyAPIKey: "legacy-key"}},
	}}
	var gotErr error
	var gotFwd *Forward
	l, err := NewLegacy(s, http.DefaultTransport, func(w http.ResponseWriter, r *http.Request, f *Forward, err error) {
		gotFwd, gotErr = f, err
		w.WriteHeader(http.StatusBadGateway)
	})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	require.True(t, l.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/messages", strings.NewReader(`{}`)),
		Forward{Team: "t", Path: "/v1/messages", RequestID: "req_1"}))
	require.Equal(t, http.StatusBadGateway, w.Code)
	require.Error(t, gotErr)
	require.Equal(t, "req_1", gotFwd.RequestID)
	require.NotContains(t, w.Body.String(), strings.TrimPrefix(addr, "http://"))
}
