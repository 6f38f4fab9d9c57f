package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/metrics"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/adapters"
	"github.com/posthog/llm-gateway/dataplane/record/recordtest"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
	"github.com/posthog/llm-gateway/internal/leakcheck"
)

func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m)
}

// upReq is a request an upstream received.
type upReq struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

// upstream is a scripted provider: the test sets its handler and reads what it received.
type upstream struct {
	srv     *httptest.Server
	mu      sync.Mutex
	handler http.HandlerFunc
	reqs    []upReq
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	u := &upstream{handler: h}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, upReq{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		h := u.handler
		u.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) set(h http.HandlerFunc) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.handler = h
}

func (u *upstream) requests() []upReq {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upReq(nil), u.reqs...)
}

func (u *upstream) count() int { return len(u.requests()) }

// chatOK answers OpenAI chat completions (streaming or not, as the request asks) with text
// split in words and the given usage.
func chatOK(text string, in, out int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		model := gjson.GetBytes(body, "model").Str
		if !gjson.GetBytes(body, "stream").Bool() {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Request-Id", "up-req-1")
			fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`,
				model, text, in, out, in+out)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		chunk := func(delta, finish string) {
			fin := "null"
			if finish != "" {
				fin = `"` + finish + `"`
			}
			fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":%s}]}\n\n", model, delta, fin)
			fl.Flush()
		}
		chunk(`{"role":"assistant","content":""}`, "")
		for i, word := range strings.SplitAfter(text, " ") {
			_ = i
			chunk(fmt.Sprintf(`{"content":%q}`, word), "")
		}
		chunk(`{}`, "stop")
		if gjson.GetBytes(body, "stream_options.include_usage").Bool() {
			fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n", model, in, out, in+out)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}
}

// anthropicOK answers Anthropic messages (streaming or not).
func anthropicOK(text string, in, out int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		model := gjson.GetBytes(body, "model").Str
		if r.URL.Path == "/v1/messages/count_tokens" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"input_tokens":%d}`, in)
			return
		}
		if !gjson.GetBytes(body, "stream").Bool() {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Request-Id", "req_up_1")
			fmt.Fprintf(w, `{"id":"msg_1","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":%q}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":%d,"output_tokens":%d}}`,
				model, text, in, out)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		ev := func(name, data string) {
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data)
			fl.Flush()
		}
		ev("message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":%q,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"output_tokens":1}}}`, model, in))
		ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)
		for _, word := range strings.SplitAfter(text, " ") {
			ev("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, word))
		}
		ev("content_block_stop", `{"type":"content_block_stop","index":0}`)
		ev("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, out))
		ev("message_stop", `{"type":"message_stop"}`)
	}
}

// statusErr answers with a status, a JSON body and headers (k, v pairs).
func statusErr(status int, body string, kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// hang holds the request until the client (the gateway) goes away and reports that on gone.
func hang(gone chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		if gone != nil {
			gone <- struct{}{}
		}
	}
}

const (
	keyAlpha  = "sk-alpha"
	keyBeta   = "sk-beta"
	keyLegacy = "sk-legacy"
)

// env is a gateway in front of three scripted upstreams.
type env struct {
	t         *testing.T
	g         *Gateway
	srv       *httptest.Server
	a, b, c   *upstream // OpenAI primary, OpenAI secondary, Anthropic
	legacy    *upstream
	clock     *clock.Fake
	recorder  *recordtest.Memory
	snap      *snapshot.Snapshot
	mutateSet func(*snapshot.Snapshot)
}

func baseSnapshot(a, b, c, legacy string) *snapshot.Snapshot {
	return &snapshot.Snapshot{
		Backends: []snapshot.Backend{
			{Name: "ns/openai-a", Provider: snapshot.ProviderOpenAI, Endpoint: a, Credentials: snapshot.Credentials{APIKey: "up-key-a"},
				CircuitBreaker: snapshot.CircuitBreaker{ConsecutiveFailures: 2, CooldownMs: 10_000}},
			{Name: "ns/openai-b", Provider: snapshot.ProviderOpenAI, Endpoint: b, Credentials: snapshot.Credentials{APIKey: "up-key-b"}},
			{Name: "ns/anthropic", Provider: snapshot.ProviderAnthropic, Endpoint: c, Credentials: snapshot.Credentials{APIKey: "up-key-c"}},
		},
		Routes: []snapshot.Route{
			{Name: "ns/gpt", Shape: snapshot.ShapeOpenAI, Models: []string{"gpt-4o"},
				Backends: []snapshot.RouteBackend{{Backend: "ns/openai-a", Priority: 0, Weight: 1}, {Backend: "ns/openai-b", Priority: 1, Weight: 1}},
				Failover: snapshot.Failover{On: snapshot.AllFailoverClasses, MaxAttempts: 3}},
			{Name: "ns/claude", Shape: snapshot.ShapeAnthropic, Models: []string{"claude-sonnet-4-5"},
				Backends: []snapshot.RouteBackend{{Backend: "ns/anthropic", Weight: 1}},
				Failover: snapshot.Failover{On: snapshot.AllFailoverClasses, MaxAttempts: 2},
				Limits:   snapshot.RequestLimits{MaxMaxTokens: 1000, MaxBodyBytes: 4096}},
		},
		Teams: []snapshot.Team{
			{Name: "alpha", APIKeyHashes: []string{snapshot.HashAPIKey(keyAlpha)}, Products: []string{"max"},
				Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}},
			{Name: "beta", APIKeyHashes: []string{snapshot.HashAPIKey(keyBeta)}, Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}},
			{Name: "old", APIKeyHashes: []string{snapshot.HashAPIKey(keyLegacy)}, Products: []string{"oldprod"},
				Rollout: snapshot.Rollout{Stage: snapshot.StageLegacy, LegacyUpstream: legacy}},
		},
		DefaultBudget: snapshot.Budget{Source: "builtin", OnStoreUnavailable: snapshot.FailOpen, Unpriced: snapshot.UnpricedAllow},
	}
}

// newEnv starts the gateway; mutate (may be nil) edits the snapshot before it is sealed.
func newEnv(t *testing.T, mutate func(*snapshot.Snapshot), opts ...func(*Options)) *env {
	e := &env{t: t, clock: clock.NewFake(time.Unix(1_700_000_000, 0)), recorder: &recordtest.Memory{}, mutateSet: mutate}
	e.a = newUpstream(t, chatOK("hello from a", 10, 3))
	e.b = newUpstream(t, chatOK("hello from b", 10, 3))
	e.c = newUpstream(t, anthropicOK("hello from claude", 12, 4))
	e.legacy = newUpstream(t, statusErr(200, `{"legacy":true}`))
	o := Options{
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: metrics.New(),
		Clock:   e.clock,
		NewAdapter: func(b *snapshot.Backend) (provider.Adapter, error) {
			return adapters.New(b, adapters.Options{})
		},
		Recorder: e.recorder,
	}
	for _, f := range opts {
		f(&o)
	}
	g, err := New(o)
	require.NoError(t, err)
	e.g = g
	e.apply(mutate)
	e.srv = httptest.NewServer(g)
	t.Cleanup(func() {
		e.srv.CloseClientConnections()
		e.srv.Close()
		if rt := g.Runtime(); rt != nil {
			for _, be := range rt.backends {
				be.closeIdle()
			}
		}
	})
	return e
}

// apply seals and applies a fresh snapshot edited by mutate.
func (e *env) apply(mutate func(*snapshot.Snapshot)) {
	s := baseSnapshot(e.a.srv.URL, e.b.srv.URL, e.c.srv.URL, e.legacy.srv.URL)
	if mutate != nil {
		mutate(s)
	}
	require.NoError(e.t, s.Seal())
	require.NoError(e.t, e.g.Apply(s, "test"))
	e.snap = s
}

// do sends a request to the gateway.
func (e *env) do(method, path, key, body string, kv ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(e.t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// sseEvents splits an SSE body into its events (the raw blocks, without the blank line).
func sseEvents(body string) []string {
	var out []string
	for _, blk := range strings.Split(body, "\n\n") {
		if strings.TrimSpace(blk) != "" {
			out = append(out, blk)
		}
	}
	return out
}

// readEvents reads SSE blocks from r as they arrive and sends them on a channel.
func readEvents(r io.Reader) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		var blk strings.Builder
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				if blk.Len() > 0 {
					ch <- blk.String()
					blk.Reset()
				}
				continue
			}
			if blk.Len() > 0 {
				blk.WriteByte('\n')
			}
			blk.WriteString(line)
		}
		if blk.Len() > 0 {
			ch <- blk.String()
		}
	}()
	return ch
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
