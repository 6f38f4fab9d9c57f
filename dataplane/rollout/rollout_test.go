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
		got <- seen{r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), string(b)}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: 1\n\n")
	}))
	defer upstream.Close()

	s := &snapshot.Snapshot{Teams: []snapshot.Team{
		{Name: "keep", Rollout: snapshot.Rollout{Stage: snapshot.StageLegacy, LegacyUpstream: upstream.URL + "/base"}},
		{Name: "swap", Rollout: snapshot.Rollout{Stage: snapshot.StageLegacy, LegacyUpstream: upstream.URL, LegacyAPIKey: "legacy-key"}},
		{Name: "gw", Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}},
	}}
	l, err := NewLegacy(s, http.DefaultTransport, func(w http.ResponseWriter, r *http.Request, status int, msg string) {
		http.Error(w, msg, status)
	})
	require.NoError(t, err)

	for _, tc := range []struct {
		team, auth, apiKey string
		want               seen
	}{
		{"keep", "Bearer client", "", seen{"/base/v1/chat/completions", "x=1", "Bearer client", "", `{"a":1}`}},
		{"swap", "Bearer client", "", seen{"/v1/chat/completions", "x=1", "Bearer legacy-key", "", `{"a":1}`}},
		{"swap", "", "client", seen{"/v1/chat/completions", "x=1", "", "legacy-key", `{"a":1}`}},
	} {
		r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions?x=1", strings.NewReader(`{"a":1}`))
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if tc.apiKey != "" {
			r.Header.Set("X-Api-Key", tc.apiKey)
		}
		w := httptest.NewRecorder()
		require.True(t, l.ServeHTTP(w, r, tc.team))
		require.Equal(t, http.StatusOK, w.Code)
		require.Equal(t, "data: 1\n\n", w.Body.String())
		require.Equal(t, tc.want, <-got)
	}
	require.False(t, l.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil), "gw"))
}
