package hostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/binaries"
	"github.com/posthog/llm-gateway/internal/leakcheck"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m)
}

// The suite's configuration: keys of the callers, credentials of the upstreams. None of the
// upstream credentials may ever appear in a response body.
const (
	keyAlpha  = "sk-hostile-alpha"
	keyBeta   = "sk-hostile-beta"
	keyLegacy = "sk-hostile-legacy"
	keyCanary = "sk-hostile-canary"

	productAlpha  = "alpha-app"
	productBeta   = "beta-app"
	productLegacy = "legacy-app"
	productCanary = "canary-app"

	upOpenAIKey      = "up-openai-secret-1f2e"
	upAnthropicKey   = "up-anthropic-secret-3d4c"
	legacyCredential = "legacy-upstream-secret-5b6a"
	canaryCredential = "canary-upstream-secret-7988"

	// Models, one route each.
	modelGPT        = "gpt-4o"            // OpenAI shape, the fake provider
	modelClaude     = "claude-sonnet-4-5" // Anthropic shape, the fake provider
	modelGPTDead    = "gpt-4.1"           // OpenAI shape, a loopback port nothing listens on
	modelClaudeDead = "claude-haiku-4-5"  // Anthropic shape, a loopback port nothing listens on
	modelFirehose   = "gpt-4o-mini"       // OpenAI shape, an upstream that streams until cancelled
	modelThrottled  = "gpt-4.1-mini"      // OpenAI shape, an upstream that answers 429 with a huge retry-after
	modelBreaker    = "gpt-4.1-nano"      // OpenAI shape, the fake provider through a backend of its own (breaker case)
	modelStall      = "o4-mini"           // OpenAI shape, an upstream that holds every call until it is cancelled

	// maxRequestCostMicros is team alpha's per-request ceiling ($0.20): an ordinary call
	// (max_tokens 1000 on gpt-4o is $0.01) passes; 64 choices of it, or a megabyte of text, do not.
	maxRequestCostMicros = 200_000
	// maxBodyBytes is the gateway's --max-body-bytes, given explicitly so that the cases that
	// fill it know its size (16 MiB of "[" is more than enough to overflow a recursive parser's
	// 1 GB goroutine stack).
	maxBodyBytes = 16 << 20
	// firehoseIdle is the firehose backend's idle timeout: a stream client that reads nothing
	// for this long is gone (issue 9: write deadlines on every flush).
	firehoseIdle = 1500 * time.Millisecond
	// serverTimeout is what the suite sets the gateway's read-header and idle keep-alive
	// timeouts to (see gatewayEnv), so the slow-client cases are cheap.
	serverTimeout = 2 * time.Second
	// bodyReadTimeout is the gateway's --body-read-timeout: long enough for a body of
	// --max-body-bytes on a machine busy with other work, short enough for the slow-body case.
	bodyReadTimeout = 10 * time.Second
	// maxConnections is the per-pod connection cap the suite sets (see gatewayEnv).
	maxConnections = 256
	// maxInflightBodyBytes bounds the request-body bytes the pod holds at once (see gatewayEnv).
	maxInflightBodyBytes = 24 << 20
)

// gatewayEnv is the environment bin/gateway runs with: every flag is also LLM_GATEWAY_<FLAG>.
// The resource flags of issue 9 are given as environment variables, so that a gateway that
// does not have them yet still starts (it ignores unknown variables) and the cases that need
// them fail on their assertions rather than on a flag error.
func gatewayEnv() []string {
	return []string{
		"LLM_GATEWAY_READ_HEADER_TIMEOUT=" + serverTimeout.String(),
		"LLM_GATEWAY_BODY_READ_TIMEOUT=" + bodyReadTimeout.String(),
		"LLM_GATEWAY_IDLE_TIMEOUT=" + serverTimeout.String(),
		"LLM_GATEWAY_MAX_CONNECTIONS=" + strconv.Itoa(maxConnections),
		"LLM_GATEWAY_MAX_INFLIGHT_BODY_BYTES=" + strconv.Itoa(maxInflightBodyBytes),
	}
}

// gatewayBinary builds bin/gateway into a directory of t.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, binaries.Build(context.Background(), dir, "gateway"))
	return filepath.Join(dir, "gateway")
}

// tap records every request that reaches an upstream server, whatever its path (the fake
// provider's own log keeps only the paths it serves). A body larger than maxBody is
// recorded and answered 413 by the tap itself (for the fake provider, which is not built to
// chew on megabytes of nesting: only a gateway that lets a hostile body through sends one).
type tap struct {
	maxBody int // 0: no limit
	mu      sync.Mutex
	reqs    []tapped
	next    http.Handler
}

type tapped struct {
	Method, RequestURI, RawQuery string
	Header                       http.Header
	Body                         []byte
}

func (tp *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	tp.mu.Lock()
	tp.reqs = append(tp.reqs, tapped{r.Method, r.RequestURI, r.URL.RawQuery, r.Header.Clone(), body})
	tp.mu.Unlock()
	if tp.maxBody > 0 && len(body) > tp.maxBody {
		http.Error(w, `{"error":{"message":"body too large for the test upstream","type":"invalid_request_error"}}`, http.StatusRequestEntityTooLarge)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	tp.next.ServeHTTP(w, r)
}

func (tp *tap) requests() []tapped {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]tapped(nil), tp.reqs...)
}

func (tp *tap) reset() {
	tp.mu.Lock()
	tp.reqs = nil
	tp.mu.Unlock()
}

// upstream is one fake server behind the gateway.
type upstream struct {
	name string
	fake *fakeprovider.Server // nil for the firehose and the stall
	tap  *tap
	srv  *httptest.Server
}

func startUpstream(t *testing.T, name string, h http.Handler, fake *fakeprovider.Server) *upstream {
	u := &upstream{name: name, fake: fake, tap: &tap{next: h}}
	if fake != nil {
		u.tap.maxBody = 256 << 10
	}
	u.srv = httptest.NewServer(u.tap)
	t.Cleanup(func() {
		if fake != nil {
			fake.Close()
		}
		u.srv.CloseClientConnections()
		u.srv.Close()
	})
	return u
}

// firehose streams OpenAI chat chunks as fast as the gateway takes them, until the gateway
// cancels the request; released counts the requests it saw end.
type firehose struct {
	open     atomic.Int64
	released atomic.Int64
}

func (f *firehose) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.open.Add(1)
	defer func() { f.open.Add(-1); f.released.Add(1) }()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	chunk := []byte(`data: {"id":"chatcmpl-fh","object":"chat.completion.chunk","created":1,"model":"` + modelFirehose +
		`","choices":[{"index":0,"delta":{"content":"` + strings.Repeat("x", 512) + `"},"finish_reason":null}]}` + "\n\n")
	fl := w.(http.Flusher)
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		fl.Flush()
	}
}

// stall holds every request until the gateway cancels it; open counts those it holds.
type stall struct{ open atomic.Int64 }

func (h *stall) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	h.open.Add(1)
	defer h.open.Add(-1)
	<-r.Context().Done()
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func freeAddr(t *testing.T) string { return closedPort(t) }

// suite is the gateway process and everything behind it.
type suite struct {
	t   *testing.T // the suite's test: owns the processes and servers
	bin string

	provider  *upstream // OpenAI and Anthropic backends
	throttled *upstream // answers every call 429 with a retry-after of ~115 days
	legacy    *upstream // the legacy gateway of the Legacy and Canary teams
	fire      *firehose
	fireUp    *upstream
	stall     *stall
	stallUp   *upstream
	deadAddr  string // where the dead backends point

	snap *snapshot.Snapshot
	gw   *gatewayProc
	base usage
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newSuite(t *testing.T) *suite {
	s := &suite{t: t, bin: gatewayBinary(t), fire: &firehose{}, deadAddr: closedPort(t)}
	fp := fakeprovider.New(fakeprovider.Config{OpenAIKey: upOpenAIKey, AnthropicKey: upAnthropicKey, Logger: quietLogger()})
	s.provider = startUpstream(t, "provider", fp, fp)
	th := fakeprovider.New(fakeprovider.Config{OpenAIKey: upOpenAIKey, Logger: quietLogger(),
		Default: &fakeprovider.Scenario{Status: 429, ErrorType: "rate_limit_exceeded", RetryAfter: 10_000_000}})
	s.throttled = startUpstream(t, "throttled", th, th)
	lg := fakeprovider.New(fakeprovider.Config{Logger: quietLogger()})
	s.legacy = startUpstream(t, "legacy", lg, lg)
	s.fireUp = startUpstream(t, "firehose", s.fire, nil)
	s.stall = &stall{}
	s.stallUp = startUpstream(t, "stall", s.stall, nil)
	s.snap = s.snapshot()
	s.gw = startGateway(t, t, s.bin, s.snap)
	s.warmUp(t)
	s.base = s.gw.settledUsage(t)
	t.Logf("baseline: %s", s.base)
	return s
}

// snapshot is the suite's configuration.
func (s *suite) snapshot() *snapshot.Snapshot {
	all := snapshot.AllFailoverClasses
	breaker := snapshot.CircuitBreaker{ConsecutiveFailures: 3, CooldownMs: 60_000}
	one := func(name string, shape snapshot.Shape, model, backend string) snapshot.Route {
		return snapshot.Route{Name: name, Shape: shape, Models: []string{model},
			Backends: []snapshot.RouteBackend{{Backend: backend, Weight: 1}},
			Failover: snapshot.Failover{On: all, MaxAttempts: 1},
			Limits:   snapshot.RequestLimits{MaxMaxTokens: 4096}}
	}
	dead := "http://" + s.deadAddr
	team := func(name, key, product string, r snapshot.Rollout) snapshot.Team {
		return snapshot.Team{Name: name, APIKeyHashes: []string{snapshot.HashAPIKey(key)}, Products: []string{product}, Rollout: r}
	}
	alpha := team("alpha", keyAlpha, productAlpha, snapshot.Rollout{Stage: snapshot.StageGateway})
	alpha.Budget = &snapshot.Budget{Source: "hostile/alpha", MaxRequestCostMicros: maxRequestCostMicros,
		Limits:             []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 1_000_000_000, Enforcement: snapshot.EnforceHard}},
		OnStoreUnavailable: snapshot.FailOpen, Unpriced: snapshot.UnpricedAllow}
	return &snapshot.Snapshot{
		Backends: []snapshot.Backend{
			{Name: "hostile/openai", Provider: snapshot.ProviderOpenAI, Endpoint: s.provider.srv.URL,
				Credentials: snapshot.Credentials{APIKey: upOpenAIKey}, CircuitBreaker: breaker},
			{Name: "hostile/anthropic", Provider: snapshot.ProviderAnthropic, Endpoint: s.provider.srv.URL,
				Credentials: snapshot.Credentials{APIKey: upAnthropicKey}, CircuitBreaker: breaker},
			{Name: "hostile/openai-dead", Provider: snapshot.ProviderOpenAI, Endpoint: dead,
				Credentials: snapshot.Credentials{APIKey: upOpenAIKey}, Timeouts: snapshot.Timeouts{ConnectMs: 2000}},
			{Name: "hostile/anthropic-dead", Provider: snapshot.ProviderAnthropic, Endpoint: dead,
				Credentials: snapshot.Credentials{APIKey: upAnthropicKey}, Timeouts: snapshot.Timeouts{ConnectMs: 2000}},
			{Name: "hostile/firehose", Provider: snapshot.ProviderOpenAI, Endpoint: s.fireUp.srv.URL,
				Credentials: snapshot.Credentials{APIKey: upOpenAIKey}, Timeouts: snapshot.Timeouts{IdleMs: firehoseIdle.Milliseconds()}},
			{Name: "hostile/throttled", Provider: snapshot.ProviderOpenAI, Endpoint: s.throttled.srv.URL,
				Credentials: snapshot.Credentials{APIKey: upOpenAIKey}, CircuitBreaker: breaker},
			{Name: "hostile/stall", Provider: snapshot.ProviderOpenAI, Endpoint: s.stallUp.srv.URL,
				Credentials: snapshot.Credentials{APIKey: upOpenAIKey}},
			{Name: "hostile/openai-breaker", Provider: snapshot.ProviderOpenAI, Endpoint: s.provider.srv.URL,
				Credentials: snapshot.Credentials{APIKey: upOpenAIKey}, CircuitBreaker: breaker},
		},
		Routes: []snapshot.Route{
			one("hostile/gpt", snapshot.ShapeOpenAI, modelGPT, "hostile/openai"),
			one("hostile/claude", snapshot.ShapeAnthropic, modelClaude, "hostile/anthropic"),
			one("hostile/gpt-dead", snapshot.ShapeOpenAI, modelGPTDead, "hostile/openai-dead"),
			one("hostile/claude-dead", snapshot.ShapeAnthropic, modelClaudeDead, "hostile/anthropic-dead"),
			one("hostile/firehose", snapshot.ShapeOpenAI, modelFirehose, "hostile/firehose"),
			one("hostile/throttled", snapshot.ShapeOpenAI, modelThrottled, "hostile/throttled"),
			one("hostile/breaker", snapshot.ShapeOpenAI, modelBreaker, "hostile/openai-breaker"),
			one("hostile/stall", snapshot.ShapeOpenAI, modelStall, "hostile/stall"),
		},
		Teams: []snapshot.Team{
			alpha,
			team("beta", keyBeta, productBeta, snapshot.Rollout{Stage: snapshot.StageGateway}),
			team("legacy", keyLegacy, productLegacy, snapshot.Rollout{Stage: snapshot.StageLegacy,
				LegacyUpstream: s.legacy.srv.URL, LegacyAPIKey: legacyCredential}),
			team("canary", keyCanary, productCanary, snapshot.Rollout{Stage: snapshot.StageCanary, CanaryPercent: 0,
				LegacyUpstream: s.legacy.srv.URL, LegacyAPIKey: canaryCredential}),
		},
		DefaultBudget: snapshot.Budget{Source: "builtin", OnStoreUnavailable: snapshot.FailOpen, Unpriced: snapshot.UnpricedAllow},
	}
}

// warmUp makes one ordinary call per shape (and one legacy call), so that connection pools
// and lazily built state exist before the baseline is measured.
func (s *suite) warmUp(t *testing.T) {
	for _, w := range []struct{ path, key, body string }{
		{"/v1/chat/completions", keyAlpha, chatBody(modelGPT, "")},
		{"/v1/messages", keyAlpha, messagesBody(modelClaude, "")},
		{"/v1/chat/completions", keyLegacy, chatBody(modelGPT, "")},
	} {
		resp := s.gw.do(t, request{method: "POST", path: w.path, header: auth(w.key), body: []byte(w.body)})
		require.Equal(t, 200, resp.status, "warm-up %s: %s", w.path, resp.body)
	}
	s.resetUpstreams()
}

func (s *suite) upstreams() []*upstream {
	return []*upstream{s.provider, s.throttled, s.legacy, s.fireUp, s.stallUp}
}

func (s *suite) resetUpstreams() {
	for _, u := range s.upstreams() {
		u.tap.reset()
		if u.fake != nil {
			u.fake.Reset()
		}
	}
}

// ensureGateway restarts the gateway (and takes a new baseline) when a case killed it, so
// that one crash does not fail every case after it.
func (s *suite) ensureGateway(t *testing.T) {
	if s.gw.alive() {
		return
	}
	t.Logf("restarting the gateway: it exited (%v)", s.gw.exitErr())
	s.gw = startGateway(t, s.t, s.bin, s.snap)
	s.warmUp(t)
	s.base = s.gw.settledUsage(t)
}

// gatewayProc is bin/gateway running as a process.
type gatewayProc struct {
	cmd      *exec.Cmd
	pid      int
	listen   string
	admin    string
	stateDir string
	logs     *syncBuffer
	done     chan struct{}
	err      error
	adminCl  *http.Client
}

// startGateway starts bin at snap; owner (the suite's test) owns the process and its
// directory, t gets the assertions.
func startGateway(t, owner *testing.T, bin string, snap *snapshot.Snapshot) *gatewayProc {
	t.Helper()
	dir := owner.TempDir()
	p := &gatewayProc{listen: freeAddr(t), admin: freeAddr(t), stateDir: dir, logs: &syncBuffer{}, done: make(chan struct{}),
		adminCl: &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}, Timeout: 30 * time.Second}}
	path := filepath.Join(dir, "snapshot.json")
	require.NoError(t, snap.Seal())
	b, err := json.Marshal(snap)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	p.cmd = exec.Command(bin, "--snapshot", path, "--listen", p.listen, "--admin-listen", p.admin, "--state-dir", dir,
		"--pprof", "--log-format", "text", "--max-body-bytes", strconv.Itoa(maxBodyBytes))
	p.cmd.Env = append(os.Environ(), gatewayEnv()...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	require.NoError(t, p.cmd.Start())
	p.pid = p.cmd.Process.Pid
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	owner.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		p.adminCl.CloseIdleConnections()
		if owner.Failed() {
			t.Logf("gateway logs (last 8 KiB):\n%s", tail(p.logs.String(), 8<<10))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _ := p.adminGet("/readyz")
		if code == 200 {
			break
		}
		require.True(t, p.alive(), "gateway exited before it was ready: %v\n%s", p.err, p.logs.String())
		require.True(t, time.Now().Before(deadline), "gateway never became ready:\n%s", p.logs.String())
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

func (p *gatewayProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *gatewayProc) exitErr() error {
	if p.alive() {
		return nil
	}
	return p.err
}

func (p *gatewayProc) adminGet(path string) (int, string) {
	resp, err := p.adminCl.Get("http://" + p.admin + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// usage is what the process holds: goroutines (from the goroutine profile), open file
// descriptors (/proc/PID/fd) and resident memory (/proc/PID/status VmRSS).
type usage struct {
	Goroutines int
	FDs        int
	RSS        int64
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, %d fds, RSS %.1f MiB", u.Goroutines, u.FDs, float64(u.RSS)/(1<<20))
}

// Tolerances over the baseline within which a case's leftovers count as returned: a few
// goroutines and descriptors (an upstream keep-alive connection opened or closed by a case
// that legitimately reached a provider), and memory the Go runtime keeps mapped after a
// collection (its scavenger returns freed memory gradually).
const (
	tolGoroutines = 6
	tolFDs        = 6
	tolRSS        = 48 << 20
)

var goroutineTotal = regexp.MustCompile(`goroutine profile: total (\d+)`)

func (p *gatewayProc) usage() (usage, error) {
	var u usage
	code, body := p.adminGet("/debug/pprof/goroutine?debug=1")
	m := goroutineTotal.FindStringSubmatch(body)
	if code != 200 || m == nil {
		return u, fmt.Errorf("goroutine profile: %d %s", code, tail(body, 200))
	}
	u.Goroutines, _ = strconv.Atoi(m[1])
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.pid))
	if err != nil {
		return u, err
	}
	u.FDs = len(fds)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			u.RSS = kb << 10
		}
	}
	return u, nil
}

// gc asks the process for a garbage collection (the heap profile's gc=1).
func (p *gatewayProc) gc() { _, _ = p.adminGet("/debug/pprof/heap?gc=1") }

// settledUsage is the process's usage once it stops falling: the baseline.
func (p *gatewayProc) settledUsage(t *testing.T) usage {
	t.Helper()
	var last usage
	for i := 0; i < 20; i++ {
		p.gc()
		u, err := p.usage()
		require.NoError(t, err)
		if i > 0 && u.Goroutines == last.Goroutines && u.FDs == last.FDs && u.RSS >= last.RSS-(1<<20) {
			return u
		}
		last = u
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// requireBackToBaseline polls until the process's usage is within the tolerances of base,
// with a generous deadline (never a timing assertion: it passes as soon as it holds).
func (p *gatewayProc) requireBackToBaseline(t *testing.T, base usage) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last usage
	var err error
	for {
		p.gc()
		last, err = p.usage()
		if err == nil && last.Goroutines <= base.Goroutines+tolGoroutines && last.FDs <= base.FDs+tolFDs && last.RSS <= base.RSS+tolRSS {
			return
		}
		if !p.alive() || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, dump := p.adminGet("/debug/pprof/goroutine?debug=1")
	t.Errorf("resources did not return to the baseline (tolerance +%d goroutines, +%d fds, +%d MiB):\n  baseline %s\n  now      %s (err %v)\ngoroutines:\n%s",
		tolGoroutines, tolFDs, tolRSS>>20, base, last, err, tail(dump, 6<<10))
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

func itoa(n int) string { return strconv.Itoa(n) }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// request is one request as the suite sends it: over its own TCP connection, written by
// hand, so that paths, framing and timing are exactly what a hostile client chooses.
type request struct {
	method string
	// target is the request-target as written on the request line (path and query, possibly
	// with dot segments or escapes); path is used when target is empty.
	path, target string
	header       http.Header
	// body is sent with a Content-Length; stream, when set, writes the body instead (with the
	// Content-Length of length, or chunked when length < 0).
	body   []byte
	stream func(w io.Writer) error
	length int64
	// deadline bounds the whole exchange (default 2 minutes).
	deadline time.Duration
}

type response struct {
	status int
	header http.Header
	body   []byte
	// err is set when no response was read (the connection was closed or reset first).
	err error
}

func (r response) String() string {
	if r.err != nil {
		return "no response: " + r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.status, tail(string(r.body), 2000))
}

func auth(key string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	return h
}

func anthropicAuth(key string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}, "Anthropic-Version": {"2023-06-01"}}
	if key != "" {
		h.Set("X-Api-Key", key)
	}
	return h
}

// do sends r on a new connection and reads the response (a response that arrives while the
// body is still being written is read all the same, as a client must).
func (p *gatewayProc) do(t *testing.T, r request) response {
	t.Helper()
	conn, err := net.Dial("tcp", p.listen)
	require.NoError(t, err)
	defer conn.Close()
	return roundTrip(conn, p.listen, r)
}

// roundTripKeep sends r on conn and reads its response, leaving the connection open.
func roundTripKeep(t *testing.T, conn net.Conn, host string, r request) response {
	t.Helper()
	require.Nil(t, r.stream, "roundTripKeep sends whole bodies")
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.method, r.path, host)
	for k, vs := range r.header {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", len(r.body))
	head.Write(r.body)
	_ = conn.SetDeadline(time.Now().Add(caseDeadline))
	_, err := conn.Write(head.Bytes())
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: r.method})
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = conn.SetDeadline(time.Time{})
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func roundTrip(conn net.Conn, host string, r request) response {
	target := r.target
	if target == "" {
		target = r.path
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.method, target, host)
	for k, vs := range r.header {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	length := int64(len(r.body))
	if r.stream != nil {
		length = r.length
	}
	if length >= 0 {
		fmt.Fprintf(&head, "Content-Length: %d\r\n", length)
	} else {
		head.WriteString("Transfer-Encoding: chunked\r\n")
	}
	head.WriteString("\r\n")

	deadline := r.deadline
	if deadline == 0 {
		deadline = 2 * time.Minute
	}
	_ = conn.SetDeadline(time.Now().Add(deadline))
	writeDone := make(chan error, 1)
	go func() {
		if _, err := conn.Write(head.Bytes()); err != nil {
			writeDone <- err
			return
		}
		var w io.Writer = conn
		var cw io.WriteCloser
		if length < 0 {
			cw = newChunkedWriter(conn)
			w = cw
		}
		var err error
		if r.stream != nil {
			err = r.stream(w)
		} else {
			_, err = w.Write(r.body)
		}
		if err == nil && cw != nil {
			err = cw.Close()
		}
		writeDone <- err
	}()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: r.method})
	if err != nil {
		conn.Close()
		<-writeDone
		return response{err: err}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	conn.Close() // stops a body still being written
	<-writeDone
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// chunkedWriter writes HTTP/1.1 chunked transfer coding.
type chunkedWriter struct{ w io.Writer }

func newChunkedWriter(w io.Writer) io.WriteCloser { return &chunkedWriter{w} }

func (c *chunkedWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if _, err := fmt.Fprintf(c.w, "%x\r\n", len(p)); err != nil {
		return 0, err
	}
	if _, err := c.w.Write(p); err != nil {
		return 0, err
	}
	_, err := io.WriteString(c.w, "\r\n")
	return len(p), err
}

func (c *chunkedWriter) Close() error {
	_, err := io.WriteString(c.w, "0\r\n\r\n")
	return err
}

// Bodies of ordinary calls.
func chatBody(model, extra string) string {
	return `{"model":"` + model + `","max_tokens":100,"messages":[{"role":"user","content":"hello"}]` + extra + `}`
}

func messagesBody(model, extra string) string {
	return `{"model":"` + model + `","max_tokens":100,"messages":[{"role":"user","content":"hello"}]` + extra + `}`
}
