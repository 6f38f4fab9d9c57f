package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
)

// pacedAnthropic streams n text deltas, waiting for a tick before each, then ends properly.
func pacedAnthropic(tick <-chan struct{}, n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		io.WriteString(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n")
		fl.Flush()
		for i := range n {
			select {
			case <-tick:
			case <-r.Context().Done():
				return
			}
			fmt.Fprintf(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"t%d \"}}\n\n", i)
			fl.Flush()
		}
		io.WriteString(w, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}\n\n")
		io.WriteString(w, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	}
}

const streamBody = `{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[]}`

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	e := newEnv(t, nil)
	tick := make(chan struct{})
	paced := pacedAnthropic(tick, 100)
	upstreamEnded := make(chan error, 1)
	e.c.set(func(w http.ResponseWriter, r *http.Request) {
		paced(w, r)
		upstreamEnded <- r.Context().Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.srv.URL+"/v1/messages", strings.NewReader(streamBody))
	req.Header.Set("X-Api-Key", keyAlpha)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	events := readEvents(resp.Body)
	require.Contains(t, <-events, "message_start")
	tick <- struct{}{}
	require.Contains(t, <-events, "t0")
	require.Equal(t, 1, e.g.Streams().Len())
	cancel()
	resp.Body.Close()
	waitFor(t, "the stream to end", func() bool { return e.g.Streams().Len() == 0 })
	// The upstream handler returns only when its request context ends (no more ticks come):
	// the gateway cancelled it. The upstream server notices the closed connection on its own
	// schedule, so wait for that rather than probing it after a fixed delay.
	select {
	case err := <-upstreamEnded:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("the upstream is still streaming: the gateway did not cancel its request")
	}
	waitFor(t, "the call to be recorded", func() bool { return e.recorder.Last(t).ClientDisconnected })
	rec := e.recorder.Last(t)
	require.Equal(t, int64(3), rec.Usage.InputTokens)
}

func TestKillSwitchEndsOpenStreams(t *testing.T) {
	e := newEnv(t, nil)
	tick := make(chan struct{})
	e.c.set(pacedAnthropic(tick, 100))
	resp := e.do("POST", "/v1/messages", "", streamBody, "x-api-key", keyAlpha)
	events := readEvents(resp.Body)
	require.Contains(t, <-events, "message_start")
	require.Equal(t, map[string]int{"alpha": 1}, e.g.Streams().Counts())

	e.apply(func(s *snapshot.Snapshot) {
		b := s.DefaultBudget
		b.Suspended = true
		s.Teams[0].Budget = &b
	})
	last := <-events
	require.True(t, strings.HasPrefix(last, "event: error\n"), last)
	require.Equal(t, "rate_limit_error", gjson.Get(strings.SplitN(last, "data: ", 2)[1], "error.type").Str)
	_, open := <-events
	require.False(t, open, "the stream is closed after the error event")
	waitFor(t, "the registry to empty", func() bool { return e.g.Streams().Len() == 0 })
}

func TestDrain(t *testing.T) {
	e := newEnv(t, nil)
	tick := make(chan struct{})
	e.c.set(pacedAnthropic(tick, 3))

	// A paced stream that completes during the drain.
	resp := e.do("POST", "/v1/messages", "", streamBody, "x-api-key", keyAlpha)
	events := readEvents(resp.Body)
	require.Contains(t, <-events, "message_start")
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		e.g.Drain(context.Background())
	}()
	waitFor(t, "readiness to drop", func() bool { return !e.g.Ready() })
	for range 3 {
		tick <- struct{}{}
	}
	var got []string
	for ev := range events {
		got = append(got, ev)
	}
	require.True(t, strings.HasPrefix(got[len(got)-1], "event: message_stop"), "the stream completed normally")
	<-drained

	// A stream that outlives the drain timeout gets a terminal error event.
	e.g.draining.Store(false)
	e.c.set(pacedAnthropic(tick, 100))
	resp = e.do("POST", "/v1/messages", "", streamBody, "x-api-key", keyAlpha)
	events = readEvents(resp.Body)
	require.Contains(t, <-events, "message_start")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the drain timeout is already over
	e.g.Drain(ctx)
	got = nil
	for ev := range events {
		got = append(got, ev)
	}
	require.True(t, strings.HasPrefix(got[len(got)-1], "event: error\n"), got[len(got)-1])
	require.Equal(t, "overloaded_error", gjson.Get(strings.SplitN(got[len(got)-1], "data: ", 2)[1], "error.type").Str)
}

func TestLegacyAndCanaryIngress(t *testing.T) {
	e := newEnv(t, nil)
	e.legacy.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"legacy":true}`)
	})
	// Legacy team by key: passthrough, body untouched, nothing resolved by the gateway.
	resp := e.do("POST", "/v1/chat/completions", keyLegacy, `{"model":"anything"}`)
	require.Equal(t, `{"legacy":true}`, readAll(t, resp))
	require.Equal(t, "legacy", resp.Header.Get(HeaderPath))
	lr := e.legacy.requests()[0]
	require.Equal(t, `{"model":"anything"}`, string(lr.Body))
	require.Equal(t, "Bearer "+keyLegacy, lr.Header.Get("Authorization"))
	// By product path, with a key the gateway does not know.
	resp = e.do("POST", "/oldprod/v1/messages", "legacy-only-key", `{}`)
	require.Equal(t, "legacy", resp.Header.Get(HeaderPath))
	require.Equal(t, "/oldprod/v1/messages", e.legacy.requests()[1].Path)
	// By product header.
	resp = e.do("POST", "/v1/messages", "legacy-only-key", `{}`, HeaderProduct, "oldprod")
	require.Equal(t, "legacy", resp.Header.Get(HeaderPath))
	require.Zero(t, e.a.count()+e.b.count()+e.c.count())

	// Canary at 50%, sticky by distinct id, with a legacy credential swap.
	e.apply(func(s *snapshot.Snapshot) {
		s.Teams[2].Rollout = snapshot.Rollout{Stage: snapshot.StageCanary, CanaryPercent: 50, StickyBy: snapshot.StickyDistinctID,
			LegacyUpstream: e.legacy.srv.URL, LegacyAPIKey: "legacy-cred"}
	})
	paths := map[string]string{}
	for i := range 40 {
		id := fmt.Sprintf("user-%d", i)
		for range 2 {
			resp := e.do("POST", "/v1/chat/completions", keyLegacy, chatBody, HeaderDistinctID, id)
			p := resp.Header.Get(HeaderPath)
			if prev, ok := paths[id]; ok {
				require.Equal(t, prev, p, "sticky")
			}
			paths[id] = p
		}
	}
	n := 0
	for _, p := range paths {
		if p == "gateway" {
			n++
		}
	}
	require.Greater(t, n, 5)
	require.Less(t, n, 35)
	lr = e.legacy.requests()[len(e.legacy.requests())-1]
	require.Equal(t, "Bearer legacy-cred", lr.Header.Get("Authorization"))

	// One patch of the stage takes effect on the next snapshot.
	e.apply(func(s *snapshot.Snapshot) { s.Teams[2].Rollout = snapshot.Rollout{Stage: snapshot.StageGateway} })
	before := e.legacy.count()
	for i := range 10 {
		resp := e.do("POST", "/v1/chat/completions", keyLegacy, chatBody, HeaderDistinctID, fmt.Sprintf("user-%d", i))
		require.Equal(t, "gateway", resp.Header.Get(HeaderPath))
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.Equal(t, before, e.legacy.count())
}

func TestLegacyUnreachable(t *testing.T) {
	e := newEnv(t, nil)
	e.legacy.srv.Close()
	resp := e.do("POST", "/v1/messages", keyLegacy, `{}`)
	body := readAll(t, resp)
	require.Equal(t, http.StatusBadGateway, resp.StatusCode)
	require.Equal(t, "error", gjson.Get(body, "type").Str)
}

func TestRejectedSnapshotKeepsServing(t *testing.T) {
	e := newEnv(t, nil)
	v := e.g.Version()
	bad := baseSnapshot(e.a.srv.URL, e.b.srv.URL, e.c.srv.URL, e.legacy.srv.URL)
	require.NoError(t, bad.Seal())
	bad.Routes[0].Failover.MaxAttempts = 0 // content no longer matches its version, and is invalid
	require.Error(t, e.g.Apply(bad, "test"))
	require.Equal(t, v, e.g.Version())
	st := e.g.Status()
	require.Equal(t, bad.Version, st.LastRejectedVersion)
	require.NotEmpty(t, st.LastRejectedError)
	resp := e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestBreakersCarryOverUnchangedBackends(t *testing.T) {
	e := newEnv(t, nil)
	e.a.set(statusErr(500, openAI500))
	for range 2 {
		e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	}
	require.Equal(t, "open", e.g.backendStates()[1].Circuit.State)
	e.apply(func(s *snapshot.Snapshot) { s.Teams[1].Products = []string{"newprod"} })
	require.Equal(t, "open", e.g.backendStates()[1].Circuit.State, "unchanged backend keeps its breaker")
	e.apply(func(s *snapshot.Snapshot) { s.Backends[0].Timeouts.IdleMs = 1234 })
	require.Equal(t, "closed", e.g.backendStates()[1].Circuit.State, "a changed backend starts afresh")
}

func TestAdminAPI(t *testing.T) {
	e := newEnv(t, nil)
	admin := httptest.NewServer(e.g.AdminHandler())
	defer admin.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(admin.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	e.do("POST", "/v1/chat/completions", keyAlpha, chatBody)
	code, body := get("/readyz")
	require.Equal(t, 200, code)
	require.Equal(t, e.g.Version(), gjson.Get(body, "version").Str)
	code, _ = get("/healthz")
	require.Equal(t, 200, code)
	_, body = get("/admin/snapshot")
	require.Equal(t, e.g.Version(), gjson.Get(body, "version").Str)
	require.Equal(t, "test", gjson.Get(body, "source").Str)
	_, body = get("/admin/backends")
	var bs []BackendState
	require.NoError(t, json.Unmarshal([]byte(body), &bs))
	require.Len(t, bs, 3)
	require.Equal(t, "closed", bs[0].Circuit.State)
	_, body = get("/admin/streams")
	require.Equal(t, int64(0), gjson.Get(body, "total").Int())
	_, body = get("/admin/teams")
	require.Equal(t, "alpha", gjson.Get(body, "0.name").Str)
	_, body = get("/metrics")
	require.Contains(t, body, `llm_gateway_requests_total{model="gpt-4o",op="chat_completions",route="ns/gpt",status="200",team="alpha"} 1`)
	require.Contains(t, body, `llm_gateway_snapshot_info{version="`+e.g.Version()+`"} 1`)
	require.Contains(t, body, "gen_ai_client_token_usage")
	e.g.SetDraining()
	code, _ = get("/readyz")
	require.Equal(t, 503, code)
}

func TestNotReadyBeforeFirstSnapshot(t *testing.T) {
	g, err := New(Options{NewAdapter: newEnv(t, nil).g.opts.NewAdapter})
	require.NoError(t, err)
	require.False(t, g.Ready())
	w := httptest.NewRecorder()
	g.ServeHTTP(w, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(chatBody)))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
}

func TestBudgetAdmission(t *testing.T) {
	mgr := budget.NewManager(budget.NewMemoryStore(), budget.Options{})
	defer mgr.Close()
	e := newEnv(t, func(s *snapshot.Snapshot) {
		s.DefaultBudget.Limits = []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 1_000_000, Enforcement: snapshot.EnforceHard}}
		b := s.DefaultBudget
		b.MaxRequestCostMicros = 1000 // a tenth of a cent
		s.Teams[1].Budget = &b
	}, func(o *Options) { o.Budget = mgr })

	resp := e.do("POST", "/v1/chat/completions", keyAlpha, `{"model":"gpt-4o","max_tokens":100,"messages":[]}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// beta's ceiling per request is below the worst case of max_tokens 100000.
	resp = e.do("POST", "/v1/chat/completions", keyBeta, `{"model":"gpt-4o","max_tokens":100000,"messages":[]}`)
	body := readAll(t, resp)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	require.Equal(t, "gateway", resp.Header.Get(HeaderErrorSource))
	require.Equal(t, "rate_limit_error", gjson.Get(body, "error.type").Str)
	require.Equal(t, 1, e.a.count(), "the rejected call never reached the provider")
	rec := e.recorder.Last(t)
	require.NotNil(t, rec.Rejection)
	require.Equal(t, "max_request_cost", rec.Rejection.Limit)

	st, err := mgr.TeamState(context.Background(), "alpha", &e.snap.DefaultBudget)
	require.NoError(t, err)
	require.Positive(t, st.Windows[0].SpentMicros, "the served call was settled")
	require.Zero(t, st.ReservedMicros)
}

// An exhausted window says when it resets (retry-after) but tells SDKs not to retry on their
// own; a limit that frees up soon lets them retry.
func TestBudgetRejectionRetryHints(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 27, 22, 30, 0, 0, time.UTC))
	mgr := budget.NewManager(budget.NewMemoryStore(), budget.Options{Clock: clk})
	defer mgr.Close()
	e := newEnv(t, func(s *snapshot.Snapshot) {
		b := s.DefaultBudget
		b.Limits = []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 2000, Enforcement: snapshot.EnforceHard}}
		s.Teams[1].Budget = &b
		c := s.DefaultBudget
		c.MaxConcurrent = 1
		s.Teams[0].Budget = &c
	}, func(o *Options) { o.Budget = mgr })

	// beta has already spent $0.0015 of its $0.002 day; a call that may cost $0.001085 does not fit.
	ctx := context.Background()
	spent, err := mgr.Admit(ctx, budget.Request{Team: "beta", Budget: e.snap.EffectiveBudget(&e.snap.Teams[1]),
		RequestID: "spent", EstimateMicros: 1500, Priced: true, EstimateTokens: 1})
	require.NoError(t, err)
	require.NoError(t, mgr.Settle(ctx, spent, 1500, 1))
	resp := e.do("POST", "/v1/chat/completions", keyBeta, `{"model":"gpt-4o","max_tokens":100,"messages":[]}`)
	body := readAll(t, resp)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	require.Equal(t, "false", resp.Header.Get(HeaderShouldRetry), "waiting for the day to end is not an automatic retry")
	require.Equal(t, "5400", resp.Header.Get("Retry-After"), "the day window resets at midnight UTC, 90 minutes away: %s", body)
	require.Contains(t, gjson.Get(body, "error.message").Str, "resets at 2026-11-28T00:00:00Z")

	// alpha may run one call at a time: a second one concurrent with a held reservation is
	// told to retry shortly.
	res, err := mgr.Admit(ctx, budget.Request{Team: "alpha", Budget: e.snap.EffectiveBudget(&e.snap.Teams[0]),
		RequestID: "held", EstimateMicros: 1, Priced: true, EstimateTokens: 1})
	require.NoError(t, err)
	resp = e.do("POST", "/v1/chat/completions", keyAlpha, `{"model":"gpt-4o","max_tokens":100,"messages":[]}`)
	body = readAll(t, resp)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	require.Equal(t, "true", resp.Header.Get(HeaderShouldRetry))
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.NoError(t, mgr.Settle(ctx, res, 0, 0))
}
