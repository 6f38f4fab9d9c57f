package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posthog/llm-gateway/dataplane/auth"
	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/adapters"
	"github.com/posthog/llm-gateway/dataplane/provider/providertest"
	"github.com/posthog/llm-gateway/dataplane/record"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

// FuzzHandler drives the whole handler (ServeHTTP: ingress, auth, body, inspect, route,
// limits, admission, attempt, relay, record) with a fuzzed body, fuzzed headers, a choice of
// operation, credential and product, with the fake provider behind it in memory. For every
// input it asserts:
//
//   - no panic (the handler's recover would turn one into a 500: any 500 fails) and no
//     unbounded memory (heap allocated per call and goroutine stack growth are bounded);
//   - a request that reaches no upstream is answered with an error in the caller's shape;
//   - the differential property: when the gateway sends a call upstream, what it acted on
//     (route and canonical model, stream, the output limit it admitted, times n) is what a
//     last-key-wins parser (encoding/json into map[string]any, as the providers' Python and Go
//     servers read) reads from the bytes sent upstream, and those bytes hold no value a
//     lenient provider could coerce (a non-boolean stream, a non-integer limit or n);
//   - a caller's key never goes upstream, and a team's legacy credential is sent only for a
//     caller holding a gateway key of that team.
//
// Its seed corpus (the f.Add calls and testdata/fuzz/FuzzHandler) runs with every go test.
// To search: go test -run '^$' -fuzz FuzzHandler -parallel 1 -fuzztime 10m ./dataplane/server
func FuzzHandler(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s.op, s.cred, s.product, s.headers, []byte(s.body))
	}
	fe := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, op, cred, product uint8, headers string, body []byte) {
		fe.check(t, fuzzInput{op: op, cred: cred, product: product, headers: headers, body: body})
	})
}

// The fuzz configuration: one team served by the gateway, one still at its legacy gateway.
const (
	fuzzKeyAlpha    = "sk-fuzz-alpha"
	fuzzKeyLegacy   = "sk-fuzz-legacy"
	fuzzLegacyCred  = "legacy-cred-fuzz"
	fuzzUpOpenAI    = "up-openai-fuzz"
	fuzzUpAnthropic = "up-anthropic-fuzz"
	fuzzMaxBody     = 1 << 20
)

var fuzzOps = []struct {
	path  string
	op    provider.Operation
	shape snapshot.Shape
}{
	{"/v1/chat/completions", provider.OpChatCompletions, snapshot.ShapeOpenAI},
	{"/v1/responses", provider.OpResponses, snapshot.ShapeOpenAI},
	{"/v1/messages", provider.OpMessages, snapshot.ShapeAnthropic},
	{"/v1/messages/count_tokens", provider.OpCountTokens, snapshot.ShapeAnthropic},
}

var fuzzProducts = []string{"", "alpha-app", "legacy-app", "nobody-app"}

func fuzzSnapshot() *snapshot.Snapshot {
	all := snapshot.AllFailoverClasses
	return &snapshot.Snapshot{
		Backends: []snapshot.Backend{
			{Name: "fuzz/openai", Provider: snapshot.ProviderOpenAI, Endpoint: "http://openai.fuzz.invalid",
				Credentials: snapshot.Credentials{APIKey: fuzzUpOpenAI}},
			{Name: "fuzz/anthropic", Provider: snapshot.ProviderAnthropic, Endpoint: "http://anthropic.fuzz.invalid",
				Credentials: snapshot.Credentials{APIKey: fuzzUpAnthropic}},
		},
		Routes: []snapshot.Route{
			{Name: "fuzz/gpt", Shape: snapshot.ShapeOpenAI, Models: []string{"gpt-4o", "gpt-4o-mini"},
				Aliases: map[string]string{"fast": "gpt-4o-mini"}, Prefixes: []string{"gpt-"},
				Backends: []snapshot.RouteBackend{{Backend: "fuzz/openai", Weight: 1}},
				Failover: snapshot.Failover{On: all, MaxAttempts: 1},
				Limits:   snapshot.RequestLimits{MaxMaxTokens: 8192}},
			{Name: "fuzz/claude", Shape: snapshot.ShapeAnthropic, Models: []string{"claude-sonnet-4-5", "claude-haiku-4-5"},
				Aliases: map[string]string{"sonnet": "claude-sonnet-4-5"}, Prefixes: []string{"claude-"},
				Backends: []snapshot.RouteBackend{{Backend: "fuzz/anthropic", Weight: 1}},
				Failover: snapshot.Failover{On: all, MaxAttempts: 1},
				Limits:   snapshot.RequestLimits{DefaultMaxTokens: 1024, MaxMaxTokens: 4096}},
		},
		Teams: []snapshot.Team{
			{Name: "alpha", APIKeyHashes: []string{snapshot.HashAPIKey(fuzzKeyAlpha)}, Products: []string{"alpha-app"},
				Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}},
			{Name: "legacy", APIKeyHashes: []string{snapshot.HashAPIKey(fuzzKeyLegacy)}, Products: []string{"legacy-app"},
				Rollout: snapshot.Rollout{Stage: snapshot.StageLegacy, LegacyUpstream: "http://legacy.fuzz.invalid", LegacyAPIKey: fuzzLegacyCred}},
		},
		DefaultBudget: snapshot.Budget{Source: "builtin", OnStoreUnavailable: snapshot.FailOpen, Unpriced: snapshot.UnpricedAllow},
	}
}

// fuzzEnv is one gateway per fuzz process, with the fake provider and a legacy upstream in
// memory. Inputs run one at a time; what one call did is reset before the next.
type fuzzEnv struct {
	g      *Gateway
	rt     *Runtime
	up     *memUpstream
	legacy *memUpstream
	budget *captureBudget
	rec    *lastRecorder
	logs   *panicLog
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	fake := fakeprovider.New(fakeprovider.Config{OpenAIKey: fuzzUpOpenAI, AnthropicKey: fuzzUpAnthropic,
		RecordRequests: -1, Logger: slog.New(slog.DiscardHandler)})
	f.Cleanup(fake.Close)
	fe := &fuzzEnv{
		up:     &memUpstream{h: fake},
		legacy: &memUpstream{h: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"legacy":true}`) })},
		budget: &captureBudget{},
		rec:    &lastRecorder{},
		logs:   &panicLog{},
	}
	g, err := New(Options{
		Logger:            slog.New(fe.logs),
		NewAdapter:        func(b *snapshot.Backend) (provider.Adapter, error) { return adapters.New(b, adapters.Options{}) },
		Budget:            fe.budget,
		Recorder:          fe.rec,
		MaxBodyBytes:      fuzzMaxBody,
		UpstreamTransport: fe.up,
		LegacyTransport:   fe.legacy,
	})
	if err != nil {
		f.Fatal(err)
	}
	s := fuzzSnapshot()
	if err := s.Seal(); err != nil {
		f.Fatal(err)
	}
	if err := g.Apply(s, "fuzz"); err != nil {
		f.Fatal(err)
	}
	fe.g, fe.rt = g, g.Runtime()
	return fe
}

type fuzzInput struct {
	op, cred, product uint8
	headers           string
	body              []byte
}

// Memory bounds per call: heap allocated (the body is read, edited and recorded a few times)
// and goroutine stack growth (no input may recurse deeply).
const (
	fuzzAllocsPerByte = 64
	fuzzAllocsBase    = 8 << 20
	fuzzStackGrowth   = 8 << 20
)

func (fe *fuzzEnv) check(t *testing.T, in fuzzInput) {
	o := fuzzOps[int(in.op)%len(fuzzOps)]
	product := fuzzProducts[int(in.product)%len(fuzzProducts)]
	path := o.path
	if product != "" && in.product&4 != 0 {
		path = "/" + product + path
	}
	req := httptest.NewRequest(http.MethodPost, "http://gateway.fuzz"+path, bytes.NewReader(in.body))
	req.ContentLength = int64(len(in.body))
	if in.cred&8 != 0 {
		req.ContentLength = -1 // chunked
	}
	addFuzzHeaders(req.Header, in.headers)
	if product != "" && in.product&4 == 0 {
		req.Header.Set(HeaderProduct, product)
	}
	key := ""
	switch in.cred % 6 {
	case 0, 1:
		key = fuzzKeyAlpha
	case 3:
		key = "sk-fuzz-wrong"
	case 4, 5:
		key = fuzzKeyLegacy
	}
	if key != "" {
		if in.cred%2 == 1 {
			req.Header.Del("Authorization")
			req.Header.Set("X-Api-Key", key)
		} else {
			req.Header.Set("Authorization", "Bearer "+key)
		}
	}
	clientKey, _ := auth.KeyFromHeader(req.Header)

	fe.up.reset()
	fe.legacy.reset()
	fe.budget.reset()
	fe.rec.reset()
	fe.logs.reset()

	before := readMem()
	w := httptest.NewRecorder()
	fe.g.ServeHTTP(w, req)
	after := readMem()

	if msg := fe.logs.panicked(); msg != "" {
		t.Fatalf("the handler panicked: %s", msg)
	}
	if w.Code == http.StatusInternalServerError {
		t.Fatalf("500 from the handler: %s", w.Body.String())
	}
	if grown := after.allocs - before.allocs; grown > uint64(fuzzAllocsPerByte*len(in.body)+fuzzAllocsBase) {
		t.Fatalf("one call of a %d-byte body allocated %d bytes", len(in.body), grown)
	}
	if grown := int64(after.stacks) - int64(before.stacks); grown > fuzzStackGrowth {
		t.Fatalf("one call of a %d-byte body grew goroutine stacks by %d bytes", len(in.body), grown)
	}

	for _, r := range fe.legacy.requests() {
		if sent := credentialSent(r, fuzzLegacyCred); sent != "" && clientKey != fuzzKeyLegacy {
			t.Fatalf("the team's legacy credential went upstream (%s) for a caller with key %q", sent, clientKey)
		}
	}
	// Client credentials: a gateway key never goes to any upstream; another credential (a
	// legacy-only caller's) may go to the legacy upstream only, unchanged.
	ups := fe.up.requests()
	for _, r := range ups {
		if leaked := credentialSent(r, clientKey); leaked != "" {
			t.Fatalf("the caller's credential went to the provider in %s", leaked)
		}
	}
	if clientKey == fuzzKeyAlpha || clientKey == fuzzKeyLegacy {
		for _, r := range fe.legacy.requests() {
			if leaked := credentialSent(r, clientKey); leaked != "" {
				t.Fatalf("the caller's gateway key went to the legacy upstream in %s", leaked)
			}
		}
	}
	if len(ups) == 0 {
		if len(fe.legacy.requests()) == 0 {
			requireFuzzError(t, w, o.shape)
		}
		return
	}
	if len(ups) > 1 {
		t.Fatalf("%d upstream attempts for a route with one", len(ups))
	}
	fe.differential(t, o.op, o.shape, ups[0])
}

// differential compares what the gateway acted on with what a last-key-wins parser reads
// from the bytes it sent upstream.
func (fe *fuzzEnv) differential(t *testing.T, op provider.Operation, shape snapshot.Shape, up memRequest) {
	pv, err := providertest.Read(up.body)
	if err != nil {
		t.Fatalf("the gateway sent a body a provider cannot read: %v\n%s", err, clip(up.body))
	}
	if amb := pv.AmbiguousFor(readMembers(op)...); len(amb) > 0 {
		t.Fatalf("the gateway accepted a body a lenient provider may read otherwise (%s): %s", strings.Join(amb, "; "), clip(up.body))
	}
	c, ok := fe.rec.last()
	if !ok {
		t.Fatal("a call that went upstream was not recorded")
	}
	m, err := fe.rt.routes.Resolve(shape, pv.Model)
	if err != nil {
		t.Fatalf("the provider reads model %q, which no route serves; the gateway routed %q (%s): %s", pv.Model, c.RequestedModel, c.Route, clip(up.body))
	}
	if m.Route.Name != c.Route || m.Canonical != c.CanonicalModel {
		t.Fatalf("the gateway acted on model %q (route %s, %s) but the provider reads %q (route %s, %s): %s",
			c.RequestedModel, c.Route, c.CanonicalModel, pv.Model, m.Route.Name, m.Canonical, clip(up.body))
	}
	if op == provider.OpCountTokens {
		return // no admission, no output
	}
	if c.Stream != pv.Stream {
		t.Fatalf("the gateway acted on stream=%v but the provider reads stream=%v: %s", c.Stream, pv.Stream, clip(up.body))
	}
	if op == provider.OpChatCompletions && pv.Stream && !pv.IncludeUsage {
		t.Fatalf("an OpenAI chat stream went upstream without stream_options.include_usage true (unmetered): %s", clip(up.body))
	}
	adm, ok := fe.budget.last()
	if !ok {
		t.Fatal("a call that went upstream was not admitted")
	}
	output := adm.EstimateTokens - budget.EstimateInputTokens(string(op), c.RequestBody)
	limit, set := pv.OutputLimit(outputLimitFields(op)...)
	if set == 0 {
		return // the provider's default: the gateway assumed the model's maximum
	}
	if want := pv.N * limit; output < want {
		t.Fatalf("the gateway admitted %d output tokens but the provider may produce %d (n=%d x %d): %s", output, want, pv.N, limit, clip(up.body))
	}
	// Equal when the body sets one limit. A limit of 0 the gateway reads as none and reserves
	// the model's maximum: more than the provider (which refuses 0) could produce.
	if set == 1 && limit > 0 && output != pv.N*limit {
		t.Fatalf("the gateway admitted %d output tokens; the provider reads a limit of n=%d x %d: %s", output, pv.N, limit, clip(up.body))
	}
}

// readMembers are the members of op's body that the gateway acts on and the provider reads
// (n only exists in chat completions; a provider refuses or ignores it elsewhere).
func readMembers(op provider.Operation) []string {
	switch op {
	case provider.OpChatCompletions:
		return []string{"model", "stream", "stream_options.include_usage", "n", "max_completion_tokens", "max_tokens"}
	case provider.OpCountTokens:
		return []string{"model"}
	}
	return append([]string{"model", "stream"}, outputLimitFields(op)...)
}

// outputLimitFields are the members that bound the output of op.
func outputLimitFields(op provider.Operation) []string {
	switch op {
	case provider.OpChatCompletions:
		return []string{"max_completion_tokens", "max_tokens"}
	case provider.OpResponses:
		return []string{"max_output_tokens"}
	}
	return []string{"max_tokens"}
}

// clip shows a body in a failure message: its start and end when it is long.
func clip(b []byte) string {
	if len(b) <= 400 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q ... (%d bytes) ... %q", b[:300], len(b), b[len(b)-80:])
}

// requireFuzzError: an answer the gateway wrote itself is an error in the caller's shape.
func requireFuzzError(t *testing.T, w *httptest.ResponseRecorder, shape snapshot.Shape) {
	t.Helper()
	if w.Code < 400 {
		t.Fatalf("status %d without an upstream call: %s", w.Code, w.Body.String())
	}
	if w.Header().Get(HeaderErrorSource) != "gateway" {
		t.Fatalf("a gateway error without %s: %d %s", HeaderErrorSource, w.Code, w.Body.String())
	}
	var v struct {
		Type  string `json:"type"`
		Error *struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil || v.Error == nil || v.Error.Type == "" || v.Error.Message == "" {
		t.Fatalf("not an error body: %d %s", w.Code, w.Body.String())
	}
	if (shape == snapshot.ShapeAnthropic) != (v.Type == "error") {
		t.Fatalf("an error not in the caller's %s shape: %s", shape, w.Body.String())
	}
}

// addFuzzHeaders adds "Name: value" lines as a client could send them (names of token
// characters, values without control characters).
func addFuzzHeaders(h http.Header, lines string) {
	for _, line := range strings.Split(lines, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.IndexFunc(name, func(r rune) bool {
			return !(r == '-' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z')
		}) >= 0 || strings.IndexFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) >= 0 {
			continue
		}
		h.Add(name, strings.TrimSpace(value))
	}
}

// credentialSent names where an upstream request carries key (a credential header or the
// URL), "" when it does not.
func credentialSent(r memRequest, key string) string {
	if key == "" {
		return ""
	}
	for _, h := range []string{"Authorization", "X-Api-Key", "Api-Key", "Proxy-Authorization"} {
		for _, v := range r.header.Values(h) {
			if strings.Contains(v, key) {
				return h
			}
		}
	}
	if strings.Contains(r.url, key) {
		return "the URL"
	}
	return ""
}

type memStats struct{ allocs, stacks uint64 }

var memSamples = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}

func readMem() memStats {
	s := append([]metrics.Sample(nil), memSamples...)
	metrics.Read(s)
	return memStats{allocs: s[0].Value.Uint64(), stacks: s[1].Value.Uint64()}
}

// memUpstream serves upstream requests in memory with h, recording them.
type memUpstream struct {
	h    http.Handler
	mu   sync.Mutex
	reqs []memRequest
}

type memRequest struct {
	url    string
	header http.Header
	body   []byte
}

func (u *memUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	u.mu.Lock()
	u.reqs = append(u.reqs, memRequest{url: r.URL.String(), header: r.Header.Clone(), body: body})
	u.mu.Unlock()
	in := r.Clone(r.Context())
	in.Body = io.NopCloser(bytes.NewReader(body))
	in.RequestURI = r.URL.RequestURI()
	w := httptest.NewRecorder()
	u.h.ServeHTTP(w, in)
	resp := w.Result()
	resp.Request = r
	return resp, nil
}

func (u *memUpstream) requests() []memRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]memRequest(nil), u.reqs...)
}

func (u *memUpstream) reset() {
	u.mu.Lock()
	u.reqs = nil
	u.mu.Unlock()
}

// captureBudget admits every call and keeps the last admission request.
type captureBudget struct {
	mu  sync.Mutex
	req *budget.Request
}

func (b *captureBudget) Admit(_ context.Context, r budget.Request) (*budget.Reservation, error) {
	b.mu.Lock()
	b.req = &r
	b.mu.Unlock()
	return &budget.Reservation{ID: r.RequestID, Team: r.Team, HeldMicros: r.EstimateMicros, HeldTokens: r.EstimateTokens}, nil
}

func (b *captureBudget) Settle(context.Context, *budget.Reservation, int64, int64) error { return nil }

func (b *captureBudget) Suspended(string) (string, time.Time, bool) { return "", time.Time{}, false }

func (b *captureBudget) last() (budget.Request, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.req == nil {
		return budget.Request{}, false
	}
	return *b.req, true
}

func (b *captureBudget) reset() {
	b.mu.Lock()
	b.req = nil
	b.mu.Unlock()
}

// lastRecorder keeps the last recorded call only (a fuzz run records millions).
type lastRecorder struct {
	mu sync.Mutex
	c  *record.Call
}

func (r *lastRecorder) Record(c *record.Call) {
	cp := *c
	r.mu.Lock()
	r.c = &cp
	r.mu.Unlock()
}

func (r *lastRecorder) last() (record.Call, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.c == nil {
		return record.Call{}, false
	}
	return *r.c, true
}

func (r *lastRecorder) reset() {
	r.mu.Lock()
	r.c = nil
	r.mu.Unlock()
}

// panicLog is a slog handler that keeps the handler's panic reports and drops the rest.
type panicLog struct {
	mu  sync.Mutex
	msg string
}

func (p *panicLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (p *panicLog) WithAttrs([]slog.Attr) slog.Handler           { return p }
func (p *panicLog) WithGroup(string) slog.Handler                { return p }
func (p *panicLog) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "panic" || a.Key == "stack" {
				fmt.Fprintf(&b, "\n%s: %v", a.Key, a.Value)
			}
			return true
		})
		p.mu.Lock()
		p.msg = b.String()
		p.mu.Unlock()
	}
	return nil
}

func (p *panicLog) panicked() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.msg
}

func (p *panicLog) reset() {
	p.mu.Lock()
	p.msg = ""
	p.mu.Unlock()
}

type fuzzSeed struct {
	op, cred, product uint8
	headers, body     string
}

// fuzzSeeds are ordinary calls of every operation and the hostile bodies of issue 9 (they are
// also the hostile suite's, test/hostile). op indexes fuzzOps; cred: 0 alpha's key (bearer),
// 1 alpha's (x-api-key), 2 none, 3 a wrong key, 4/5 the legacy team's; product indexes
// fuzzProducts (+4: in the path instead of X-PostHog-Product).
func fuzzSeeds() []fuzzSeed {
	const (
		chat, resp, msgs, count = 0, 1, 2, 3
		hi                      = `"messages":[{"role":"user","content":"hi"}]`
	)
	gpt := func(extra string) string { return `{"model":"gpt-4o",` + hi + extra + `}` }
	claude := func(extra string) string { return `{"model":"claude-sonnet-4-5","max_tokens":100,` + hi + extra + `}` }
	seeds := []fuzzSeed{
		// Ordinary calls.
		{op: chat, body: gpt(``)},
		{op: chat, body: gpt(`,"stream":true`)},
		{op: chat, body: gpt(`,"stream":true,"stream_options":{"include_usage":true}`)},
		{op: chat, body: gpt(`,"max_tokens":100`)},
		{op: chat, body: gpt(`,"max_completion_tokens":100000`)},
		{op: chat, body: gpt(`,"n":3,"max_tokens":10`)},
		{op: chat, body: `{"model":"fast",` + hi + `,"max_tokens":5}`},
		{op: chat, body: `{"model":"openai/gpt-4o",` + hi + `}`},
		{op: chat, body: `{"model":"gpt-5-preview",` + hi + `}`},
		{op: resp, body: `{"model":"gpt-4o","input":"hi","max_output_tokens":50}`},
		{op: resp, body: `{"model":"gpt-4o","input":"hi","stream":true}`},
		{op: msgs, body: claude(``)},
		{op: msgs, cred: 1, body: claude(`,"stream":true`)},
		{op: msgs, body: `{"model":"claude-sonnet-4-5",` + hi + `}`},
		{op: msgs, body: `{"model":"sonnet","max_tokens":99999,` + hi + `}`},
		{op: count, cred: 1, body: `{"model":"claude-sonnet-4-5",` + hi + `}`},
		{op: chat, product: 1, body: gpt(``)},
		{op: chat, product: 5, body: gpt(``)},
		{op: chat, cred: 4, body: gpt(``)},
		{op: msgs, cred: 5, product: 2, body: claude(``)},

		// Credentials and products of issue 9.
		{op: chat, cred: 2, product: 2, body: gpt(``)},
		{op: chat, cred: 2, product: 6, body: gpt(``)},
		{op: msgs, cred: 3, product: 2, body: claude(``)},
		{op: chat, cred: 0, product: 2, body: gpt(``)},
		{op: chat, cred: 0, product: 6, body: gpt(``)},
		{op: chat, cred: 2, headers: "Authorization: Basic c2stZnV6ei1hbHBoYQ==\nX-Api-Key: sk-fuzz-alpha", body: gpt(``)},
		{op: chat, headers: "OpenAI-Organization: org-attacker\nOpenAI-Project: proj_x\nAnthropic-Beta: x\nX-Fake-Status: 500", body: gpt(``)},
		{op: msgs, headers: "Anthropic-Version: 2099-01-01\nContent-Type: text/plain\nX-PostHog-Properties: {\"$ai_model\":\"x\"}", body: claude(``)},

		// Duplicate keys: the gateway and the provider must read the same value.
		{op: chat, body: gpt(`,"model":"gpt-5-pro"`)},
		{op: chat, body: gpt(`,"mod\u0065l":"gpt-5-pro"`)},
		{op: chat, body: `{"model":"fast",` + hi + `,"model":"gpt-4o"}`},
		{op: msgs, body: claude(`,"model":"claude-opus-4-1"`)},
		{op: msgs, body: claude(`,"stream":false,"stream":true`)},
		{op: chat, body: gpt(`,"stream":true,"stream":false`)},
		{op: msgs, body: claude(`,"max_tokens":100000000`)},
		{op: chat, body: gpt(`,"max_tokens":10,"max_tokens":100000`)},
		{op: resp, body: `{"model":"gpt-4o","input":"hi","max_output_tokens":5,"max_output_tokens":50000}`},
		{op: chat, body: gpt(`,"stream":true,"stream_options":{"include_usage":true,"include_usage":false}`)},
		{op: chat, body: gpt(`,"n":1,"n":64`)},
		{op: chat, body: `{"Model":"gpt-5-pro","model":"gpt-4o",` + hi + `}`},
		{op: chat, body: gpt(`,"model":null`)},

		// Types a lenient provider coerces.
		{op: chat, body: gpt(`,"stream":1`)},
		{op: msgs, body: claude(`,"stream":"true"`)},
		{op: msgs, body: `{"model":"claude-sonnet-4-5","max_tokens":"100",` + hi + `}`},
		{op: msgs, body: `{"model":"claude-sonnet-4-5","max_tokens":1.5,` + hi + `}`},
		{op: msgs, body: `{"model":"claude-sonnet-4-5","max_tokens":100.0,` + hi + `}`},
		{op: chat, body: gpt(`,"max_tokens":1e400`)},
		{op: chat, body: gpt(`,"max_tokens":9223372036854775808`)},
		{op: chat, body: gpt(`,"max_completion_tokens":-1`)},
		{op: resp, body: `{"model":"gpt-4o","input":"hi","max_output_tokens":[1]}`},
		{op: chat, body: gpt(`,"n":0`)},
		{op: chat, body: gpt(`,"n":-1`)},
		{op: chat, body: gpt(`,"n":"2"`)},
		{op: chat, body: gpt(`,"n":2.5`)},
		{op: chat, body: gpt(`,"n":64,"max_tokens":8192`)},

		// Depth, size and syntax.
		{op: chat, body: strings.Repeat("[", 200_000)},
		{op: chat, body: `{"model":"gpt-4o",` + hi + `,"metadata":` + strings.Repeat(`{"a":`, 20_000) + "1" + strings.Repeat("}", 20_000) + "}"},
		{op: msgs, body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":` + strings.Repeat("[", 5000) + `"x"` + strings.Repeat("]", 5000) + `}]}`},
		{op: chat, body: "\ufeff" + gpt(``)},
		{op: chat, body: gpt(``) + ` {"model":"o1"}`},
		{op: chat, body: `{"model":"gpt-4o",` + hi + `,"x":"\ud800"}`},
		{op: chat, body: `{"model":"gpt\u002d4o",` + hi + `}`},
		{op: chat, body: "{\"model\":\"gpt-4o\xff\"," + hi + "}"},
		{op: chat, body: ``},
		{op: chat, body: `null`},
		{op: msgs, body: `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo` +
			strings.Repeat("lorem ipsum ", 100) + `"}}]}]}`},
	}
	return seeds
}
