package budget_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/binaries"
	"github.com/posthog/llm-gateway/test/fakeprovider"
	"github.com/posthog/llm-gateway/test/redistest"
)

// gatewayBin is bin/gateway built by TestMain (empty under -short: no process tests).
var gatewayBin string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if !testing.Short() {
			dir, err := os.MkdirTemp("", "budget-e2e-")
			if err != nil {
				fmt.Fprintln(os.Stderr, "temp dir:", err)
				return 1
			}
			defer os.RemoveAll(dir)
			gatewayBin = filepath.Join(dir, "gateway")
			if err := binaries.Build(context.Background(), dir, "gateway"); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		code := m.Run()
		if code == 0 {
			if err := goleak.Find(); err != nil {
				fmt.Fprintln(os.Stderr, "goleak:", err)
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}

// Prices of the test model on the fake backend: $3 / $15 per million tokens, so that every
// cost is known exactly.
const (
	model       = "claude-sonnet-4-5"
	inPerMTok   = 3_000_000
	outPerMTok  = 15_000_000
	usageIn     = 10
	usageOut    = 100
	callCost    = usageIn*inPerMTok/1_000_000 + usageOut*outPerMTok/1_000_000 // 1530 µ$
	maxTokens   = 100
	requestBody = `{"model":"` + model + `","max_tokens":100,"messages":[{"role":"user","content":"hi"}]}`
	streamBody  = `{"model":"` + model + `","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]}`
)

// estimate is what the gateway reserves for requestBody: input estimate at the input price
// plus max_tokens at the output price.
func estimate(body string) (micros, tokens int64) {
	in := budget.EstimateInputTokens("messages", []byte(body))
	return (in*inPerMTok + maxTokens*outPerMTok) / 1_000_000, in + maxTokens
}

// cluster is a redis-server, the fake provider and three bin/gateway processes behind one
// snapshot file.
type cluster struct {
	t     *testing.T
	redis *redistest.Server
	fake  *fakeprovider.Server
	snap  *snapshot.Snapshot
	path  string
	gws   []*gatewayProc
	http  *http.Client
	store *budget.Manager // reads the shared counters
}

type gatewayProc struct {
	cmd          *exec.Cmd
	proxy, admin string
	logs         *bytes.Buffer
}

func newCluster(t *testing.T, teams ...snapshot.Team) *cluster {
	t.Helper()
	if gatewayBin == "" {
		t.Skip("process-level test: skipped under -short")
	}
	c := &cluster{t: t, redis: redistest.Start(t), fake: fakeprovider.New(fakeprovider.Config{}),
		http: &http.Client{Timeout: 30 * time.Second}}
	fakeSrv := httptest.NewServer(c.fake)
	t.Cleanup(func() {
		c.fake.Close()
		fakeSrv.Close()
		c.http.CloseIdleConnections()
	})
	c.fake.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Usage: &cost.Usage{InputTokens: usageIn, OutputTokens: usageOut}})
	c.snap = &snapshot.Snapshot{
		Backends: []snapshot.Backend{{Name: "ns/anthropic", Provider: snapshot.ProviderAnthropic, Endpoint: fakeSrv.URL,
			Credentials: snapshot.Credentials{APIKey: "upstream-key"},
			Prices:      []snapshot.ModelPrice{{Model: model, InputPerMTok: inPerMTok, OutputPerMTok: outPerMTok}}}},
		Routes: []snapshot.Route{{Name: "ns/claude", Shape: snapshot.ShapeAnthropic, Models: []string{model},
			Backends: []snapshot.RouteBackend{{Backend: "ns/anthropic", Weight: 1}},
			Failover: snapshot.Failover{On: snapshot.AllFailoverClasses, MaxAttempts: 1},
			Limits:   snapshot.RequestLimits{DefaultMaxTokens: maxTokens, MaxMaxTokens: maxTokens}}},
		Teams: teams,
		DefaultBudget: snapshot.Budget{Source: "builtin", OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject,
			Limits: []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 1_000_000_000, Enforcement: snapshot.EnforceHard}}},
	}
	c.path = filepath.Join(t.TempDir(), "snapshot.json")
	c.writeSnapshot()

	s, err := budget.NewRedisStore(c.redis.URL())
	require.NoError(t, err)
	c.store = budget.NewManager(s, budget.Options{Logger: quiet(), StoreTimeout: 5 * time.Second})
	t.Cleanup(func() { _ = c.store.Close() })

	for i := range 3 {
		c.gws = append(c.gws, c.startGateway(i))
	}
	return c
}

// team is a team whose API key is its name.
func team(name string, b snapshot.Budget) snapshot.Team {
	b.Source = "ns/" + name
	if b.OnStoreUnavailable == "" {
		b.OnStoreUnavailable = snapshot.FailClosed
	}
	if b.Unpriced == "" {
		b.Unpriced = snapshot.UnpricedReject
	}
	return snapshot.Team{Name: name, APIKeyHashes: []string{snapshot.HashAPIKey(name)},
		Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}, Budget: &b}
}

func dayLimit(micros int64) []snapshot.SpendLimit {
	return []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: micros, Enforcement: snapshot.EnforceHard}}
}

func (c *cluster) writeSnapshot() {
	c.t.Helper()
	require.NoError(c.t, c.snap.Seal())
	raw, err := json.Marshal(c.snap)
	require.NoError(c.t, err)
	tmp := c.path + ".tmp"
	require.NoError(c.t, os.WriteFile(tmp, raw, 0o600))
	require.NoError(c.t, os.Rename(tmp, c.path))
}

// budgetOf returns the team's budget in the snapshot, for edits followed by writeSnapshot.
func (c *cluster) budgetOf(name string) *snapshot.Budget {
	for i := range c.snap.Teams {
		if c.snap.Teams[i].Name == name {
			return c.snap.Teams[i].Budget
		}
	}
	c.t.Fatalf("no team %s", name)
	return nil
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func (c *cluster) startGateway(i int) *gatewayProc {
	t := c.t
	g := &gatewayProc{proxy: freeAddr(t), admin: freeAddr(t), logs: &bytes.Buffer{}}
	g.cmd = exec.Command(gatewayBin, "--snapshot", c.path, "--redis-url", c.redis.URL(),
		"--listen", g.proxy, "--admin-listen", g.admin, "--state-dir", t.TempDir(), "--pod-name", "gw-"+strconv.Itoa(i),
		"--log-format", "text", "--drain-timeout", "1s")
	g.cmd.Stdout, g.cmd.Stderr = &syncWriter{w: g.logs}, &syncWriter{w: g.logs}
	require.NoError(t, g.cmd.Start())
	t.Cleanup(func() {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = g.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = g.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("gateway %d logs:\n%s", i, g.logs.String())
		}
	})
	require.Eventually(t, func() bool {
		resp, err := c.http.Get("http://" + g.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "gateway %d never became ready", i)
	return g
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// response is one answered call.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (c *cluster) post(ctx context.Context, gw int, key, body string) (response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.gws[gw].proxy+"/v1/messages", strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func (c *cluster) call(gw int, key string) response {
	c.t.Helper()
	r, err := c.post(context.Background(), gw, key, requestBody)
	require.NoError(c.t, err)
	return r
}

// stream opens a streaming call and returns its SSE reader once the first event arrived.
func (c *cluster) stream(gw int, key string) *sseStream {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.gws[gw].proxy+"/v1/messages", strings.NewReader(streamBody))
	require.NoError(c.t, err)
	req.Header.Set("x-api-key", key)
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	require.Equal(c.t, http.StatusOK, resp.StatusCode)
	s := &sseStream{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
	c.t.Cleanup(s.close)
	ev, ok := s.next()
	require.True(c.t, ok)
	require.Equal(c.t, "message_start", ev.name)
	return s
}

type sseEvent struct{ name, data string }

type sseStream struct {
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

// next reads one SSE event; false at the end of the stream.
func (s *sseStream) next() (sseEvent, bool) {
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[len("data: "):]
		case line == "" && (ev.name != "" || ev.data != ""):
			return ev, true
		}
		if err != nil {
			return ev, ev.name != "" || ev.data != ""
		}
	}
}

// last reads to the end of the stream and returns its last event.
func (s *sseStream) last() sseEvent {
	var last sseEvent
	for {
		ev, ok := s.next()
		if !ok {
			return last
		}
		last = ev
	}
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// state reads the team's shared counters.
func (c *cluster) state(name string) budget.State {
	c.t.Helper()
	st, err := c.store.TeamState(context.Background(), name, c.budgetOf(name))
	require.NoError(c.t, err)
	return st
}

func daySpent(st budget.State) int64 {
	for _, w := range st.Windows {
		if w.Window == snapshot.WindowDay {
			return w.SpentMicros
		}
	}
	return -1
}

// anthropicError checks a well-formed Anthropic error body and returns its type and message.
func anthropicError(t *testing.T, r response) (typ, msg string) {
	t.Helper()
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.body, &body), "body: %s", r.body)
	require.Equal(t, "error", body.Type, "body: %s", r.body)
	require.NotEmpty(t, body.Error.Type)
	require.NotEmpty(t, body.Error.Message)
	return body.Error.Type, body.Error.Message
}

// adminTeam reads the team's entry on a gateway's /admin/teams.
func (c *cluster) adminTeam(gw int, name string) map[string]any {
	c.t.Helper()
	resp, err := c.http.Get("http://" + c.gws[gw].admin + "/admin/teams")
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var teams []map[string]any
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&teams))
	for _, tm := range teams {
		if tm["name"] == name {
			return tm
		}
	}
	c.t.Fatalf("team %s not on /admin/teams", name)
	return nil
}
