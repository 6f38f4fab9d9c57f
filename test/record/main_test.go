// Package recordtest runs bin/gateway processes against a fake provider, a local capture sink
// and (for the shared outbox) a real redis-server, and checks that every call lands in
// capture as valid $ai_generation events: through capture outages, a SIGKILLed pod and a
// SIGTERM shutdown.
package recordtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/binaries"
	"github.com/posthog/llm-gateway/test/capturesink"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

// gatewayBin is bin/gateway built for this run by TestMain.
var gatewayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "recordtest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	gatewayBin = filepath.Join(dir, "gateway")
	if err := binaries.Build(context.Background(), dir, "gateway"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	keyTeamA = "sk-team-a"
	keyTeamB = "sk-team-b-broke"
)

// writeSnapshot writes a sealed snapshot: an OpenAI route, an Anthropic route failing over
// to Bedrock, team-a with a generous budget and team-b with a budget nothing fits in.
func writeSnapshot(t *testing.T, providerURL string) string {
	t.Helper()
	generous := snapshot.Budget{
		Source:             "builtin",
		Limits:             []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 1_000_000_000, Enforcement: snapshot.EnforceHard}},
		OnStoreUnavailable: snapshot.FailOpen, Unpriced: snapshot.UnpricedAllow,
	}
	broke := generous
	broke.Source = "test/broke"
	broke.Limits = []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 1, Enforcement: snapshot.EnforceHard}}
	s := &snapshot.Snapshot{
		Backends: []snapshot.Backend{
			{Name: "test/openai", Provider: snapshot.ProviderOpenAI, Endpoint: providerURL, Credentials: snapshot.Credentials{APIKey: "sk-upstream"}},
			{Name: "test/anthropic", Provider: snapshot.ProviderAnthropic, Endpoint: providerURL, Credentials: snapshot.Credentials{APIKey: "sk-ant-upstream"}},
			{Name: "test/bedrock", Provider: snapshot.ProviderBedrock, Endpoint: providerURL, Region: "us-east-1",
				Credentials: snapshot.Credentials{AWSAccessKeyID: "AKIDTEST", AWSSecretAccessKey: "secret"},
				ModelMap:    map[string]string{"claude-sonnet-4-5": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}},
		},
		Routes: []snapshot.Route{
			{Name: "test/openai", Shape: snapshot.ShapeOpenAI, Models: []string{"gpt-4o-mini", "gpt-4.1-mini"},
				Backends: []snapshot.RouteBackend{{Backend: "test/openai", Weight: 1}},
				Failover: snapshot.Failover{MaxAttempts: 1}},
			{Name: "test/anthropic", Shape: snapshot.ShapeAnthropic, Models: []string{"claude-sonnet-4-5"},
				Backends: []snapshot.RouteBackend{{Backend: "test/anthropic", Priority: 0, Weight: 1}, {Backend: "test/bedrock", Priority: 1, Weight: 1}},
				Failover: snapshot.Failover{MaxAttempts: 2, On: []string{snapshot.FailoverOverloaded, snapshot.FailoverServerError}}},
		},
		Teams: []snapshot.Team{
			{Name: "team-a", APIKeyHashes: []string{snapshot.HashAPIKey(keyTeamA)}, Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}},
			{Name: "team-b", APIKeyHashes: []string{snapshot.HashAPIKey(keyTeamB)}, Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}, Budget: &broke},
		},
		DefaultBudget: generous,
	}
	require.NoError(t, s.Seal())
	b, err := json.Marshal(s)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "snapshot.json")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path
}

// startProvider serves the fake provider in process.
func startProvider(t *testing.T) (*fakeprovider.Server, string) {
	t.Helper()
	fp := fakeprovider.New(fakeprovider.Config{})
	srv := httptest.NewServer(fp)
	t.Cleanup(func() { fp.Close(); srv.Close() })
	return fp, srv.URL
}

func startSink(t *testing.T) *capturesink.Sink {
	t.Helper()
	s := capturesink.New()
	require.NoError(t, s.Start(""))
	t.Cleanup(s.Close)
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// gateway is one bin/gateway process.
type gateway struct {
	t        *testing.T
	name     string
	args     []string
	addr     string
	admin    string
	logPath  string
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	stateDir string
}

// startGateway runs bin/gateway with the given extra flags and waits until it is ready.
func startGateway(t *testing.T, name, snapshotPath, stateDir string, extra ...string) *gateway {
	t.Helper()
	g := &gateway{t: t, name: name, stateDir: stateDir, logPath: filepath.Join(t.TempDir(), name+".log")}
	g.args = append([]string{
		"--snapshot", snapshotPath, "--state-dir", stateDir, "--pod-name", name,
		"--log-format", "text", "--drain-timeout", "5s", "--capture-api-key", "phc_test",
	}, extra...)
	g.start()
	t.Cleanup(func() {
		g.kill()
		if t.Failed() {
			if b, err := os.ReadFile(g.logPath); err == nil {
				t.Logf("%s log (tail):\n%s", name, tail(string(b), 6000))
			}
		}
	})
	return g
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (g *gateway) start() {
	t := g.t
	t.Helper()
	g.addr, g.admin = freeAddr(t), freeAddr(t)
	args := append([]string{"--listen", g.addr, "--admin-listen", g.admin}, g.args...)
	logf, err := os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	g.cmd = exec.Command(gatewayBin, args...)
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	require.NoError(t, g.cmd.Start())
	g.exited = make(chan struct{})
	go func() {
		g.exitErr = g.cmd.Wait()
		logf.Close()
		close(g.exited)
	}()
	require.Eventually(t, func() bool {
		select {
		case <-g.exited:
			b, _ := os.ReadFile(g.logPath)
			t.Fatalf("%s exited during start: %v\n%s", g.name, g.exitErr, b)
		default:
		}
		resp, err := http.Get("http://" + g.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "%s did not become ready", g.name)
}

// signal sends sig and, for SIGKILL, waits for the exit.
func (g *gateway) signal(sig syscall.Signal) {
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-g.exited
	}
}

func (g *gateway) kill() { g.signal(syscall.SIGKILL) }

// wait waits for the process to exit on its own.
func (g *gateway) wait(timeout time.Duration) error {
	select {
	case <-g.exited:
		return g.exitErr
	case <-time.After(timeout):
		return fmt.Errorf("%s did not exit within %s", g.name, timeout)
	}
}

// client sends gateway requests and keeps the ids of those that completed.
type client struct {
	http   *http.Client
	mu     sync.Mutex
	done   []string       // request ids of calls whose full response the client read
	byAddr map[string]int // completed calls per gateway address
	sent   int
}

func newClient() *client {
	return &client{
		http:   &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
		byAddr: map[string]int{},
	}
}

const (
	chatBody     = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Tell me a fun fact about hedgehogs"}],"max_tokens":64}`
	messagesBody = `{"model":"claude-sonnet-4-5","max_tokens":128,"stream":true,"messages":[{"role":"user","content":"Summarise the attached doc"}]}`
)

type result struct {
	status    int
	requestID string
	body      string
	complete  bool
}

// do posts body to path on a gateway as key and reads the whole response.
func (c *client) do(ctx context.Context, addr, path, key, body string, hdr map[string]string) (result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("anthropic-version", "2023-06-01")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c.mu.Lock()
	c.sent++
	c.mu.Unlock()
	resp, err := c.http.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, requestID: resp.Header.Get("X-Request-Id"), body: string(b)}
	if err != nil {
		return r, err
	}
	stream := strings.Contains(body, `"stream":true`)
	r.complete = resp.StatusCode == http.StatusOK && (!stream || bytes.Contains(b, []byte("message_stop")) || bytes.Contains(b, []byte("[DONE]")))
	if r.complete {
		c.mu.Lock()
		c.done = append(c.done, r.requestID)
		c.byAddr[addr]++
		c.mu.Unlock()
	}
	return r, nil
}

func (c *client) completedAt(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byAddr[addr]
}

func (c *client) completed() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.done...)
}

// load sends requests to the addresses returned by targets from workers goroutines until ctx
// is done, alternating non-streaming chat and streaming messages.
func (c *client) load(ctx context.Context, workers int, targets func() []string) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				addrs := targets()
				addr := addrs[(w+i)%len(addrs)]
				path, body := "/v1/chat/completions", chatBody
				if i%2 == 1 {
					path, body = "/v1/messages", messagesBody
				}
				if _, err := c.do(ctx, addr, path, keyTeamA, body, nil); err != nil {
					time.Sleep(5 * time.Millisecond) // the target is gone; pick another next time
				}
				time.Sleep(10 * time.Millisecond) // a steady, modest rate
			}
		}()
	}
	return &wg
}

// byRequestID indexes the sink's events by llm_gateway_request_id.
func byRequestID(sink *capturesink.Sink) map[string][]capturesink.Received {
	out := map[string][]capturesink.Received{}
	for _, e := range sink.Events() {
		id, _ := e.Props["llm_gateway_request_id"].(string)
		out[id] = append(out[id], e)
	}
	return out
}

// missing lists the completed request ids without an event in the sink.
func missing(sink *capturesink.Sink, ids []string) []string {
	got := byRequestID(sink)
	var out []string
	for _, id := range ids {
		if len(got[id]) == 0 {
			out = append(out, id)
		}
	}
	return out
}
