package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/binaries"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// gatewayBinary builds bin/gateway once into a temporary directory.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("process-level test: builds and runs bin/gateway")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "llm-gateway-e2e-bin-")
		if buildErr != nil {
			return
		}
		buildErr = binaries.Build(context.Background(), binDir, "gateway")
	})
	require.NoError(t, buildErr)
	return filepath.Join(binDir, "gateway")
}

func cleanupBinaries() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
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

type gatewayProc struct {
	cmd         *exec.Cmd
	listen      string
	admin       string
	stateDir    string
	logs        *syncBuffer
	exited      chan error
	snapshotPth string
}

func startGateway(t *testing.T, snap *snapshot.Snapshot, env ...string) *gatewayProc {
	t.Helper()
	bin := gatewayBinary(t)
	dir := t.TempDir()
	p := &gatewayProc{listen: freeAddr(t), admin: freeAddr(t), stateDir: dir, logs: &syncBuffer{}, exited: make(chan error, 1),
		snapshotPth: filepath.Join(dir, "snapshot.json")}
	writeSnapshot(t, p.snapshotPth, snap)
	p.cmd = exec.Command(bin, "--snapshot", p.snapshotPth, "--listen", p.listen, "--state-dir", dir, "--log-format", "text")
	p.cmd.Env = append(os.Environ(), append(env, "LLM_GATEWAY_ADMIN_LISTEN="+p.admin)...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	require.NoError(t, p.cmd.Start())
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("gateway logs:\n%s", p.logs.String())
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + p.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 30*time.Second, 20*time.Millisecond, "gateway never became ready")
	return p
}

func writeSnapshot(t *testing.T, path string, s *snapshot.Snapshot) {
	t.Helper()
	require.NoError(t, s.Seal())
	b, err := json.Marshal(s)
	require.NoError(t, err)
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, b, 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

func adminGet(t *testing.T, p *gatewayProc, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + p.admin + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func newFakeServer(t *testing.T) (*fakeprovider.Server, *httptest.Server) {
	fp := fakeprovider.New(fakeConfig())
	srv := httptest.NewServer(fp)
	t.Cleanup(func() {
		fp.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	return fp, srv
}

// TestGatewayProcess runs bin/gateway standalone against the fake provider: SDK calls, a
// snapshot file edit that takes effect, recorded events, and a graceful drain on SIGTERM in
// which one paced stream completes and one that outlives the drain timeout gets a terminal
// error event.
func TestGatewayProcess(t *testing.T) {
	fp, fake := newFakeServer(t)
	snap := devSnapshot(fake.URL, "")
	p := startGateway(t, snap, "LLM_GATEWAY_DRAIN_TIMEOUT=2s")
	ctx := context.Background()

	fp.SetDefault(&fakeprovider.Scenario{Text: "process says hi", Usage: &usage})
	oc := openai.NewClient(ooption.WithBaseURL("http://"+p.listen+"/v1/"), ooption.WithAPIKey(teamKey), ooption.WithMaxRetries(0))
	res, err := oc.Chat.Completions.New(ctx, chatParams("gpt-4o"))
	require.NoError(t, err)
	require.Equal(t, "process says hi", res.Choices[0].Message.Content)
	ac := anthropic.NewClient(aoption.WithoutEnvironmentDefaults(), aoption.WithBaseURL("http://"+p.listen), aoption.WithAPIKey(teamKey), aoption.WithMaxRetries(0))
	stream := ac.Messages.NewStreaming(ctx, messageParams())
	var msg anthropic.Message
	for stream.Next() {
		require.NoError(t, msg.Accumulate(stream.Current()))
	}
	require.NoError(t, stream.Err())
	require.Equal(t, "process says hi", msg.Content[0].Text)
	requireAnthropicUsage(t, msg.Usage)

	// Editing the snapshot file is picked up: a new model.
	for i := range snap.Routes {
		if snap.Routes[i].Name == "llm/claude" {
			snap.Routes[i].Models = append(snap.Routes[i].Models, "claude-haiku-4-5")
		}
	}
	snap.Version = ""
	writeSnapshot(t, p.snapshotPth, snap)
	require.Eventually(t, func() bool {
		_, body := adminGet(t, p, "/admin/snapshot")
		return strings.Contains(body, snap.Version)
	}, 10*time.Second, 20*time.Millisecond)
	params := messageParams()
	params.Model = "claude-haiku-4-5"
	_, err = ac.Messages.New(ctx, params)
	require.NoError(t, err)

	// Drain: a short paced stream (Anthropic) and one longer than the 2s drain timeout (OpenAI).
	fp.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Text: "a b c d", Chunks: 4, ChunkIntervalMs: 250})
	fp.SetDefaultFor(fakeprovider.OpenAI, &fakeprovider.Scenario{Text: strings.Repeat("w ", 60), Chunks: 60, ChunkIntervalMs: 250})
	short := rawStream(t, "http://"+p.listen+"/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	long := rawStream(t, "http://"+p.listen+"/v1/chat/completions", `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	require.Eventually(t, func() bool {
		_, body := adminGet(t, p, "/admin/streams")
		return strings.Contains(body, `"total": 2`)
	}, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	require.Eventually(t, func() bool { code, _ := adminGet(t, p, "/readyz"); return code == 503 }, 5*time.Second, 10*time.Millisecond,
		"readiness goes false first")

	shortEvents := <-short
	require.True(t, strings.HasPrefix(shortEvents[len(shortEvents)-1], "event: message_stop"), "the short stream completed: %q", shortEvents)
	longEvents := <-long
	lastLong := longEvents[len(longEvents)-1]
	require.True(t, strings.HasPrefix(lastLong, "data: {\"error\""), "terminal error event: %q", lastLong)
	require.NotContains(t, strings.Join(longEvents, "\n"), "[DONE]")

	select {
	case err := <-p.exited:
		require.NoError(t, err, "clean exit after drain")
		p.exited <- err
	case <-time.After(30 * time.Second):
		t.Fatal("gateway did not exit after SIGTERM")
	}
	events, err := os.ReadFile(filepath.Join(p.stateDir, "events.jsonl"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, bytes.Count(events, []byte("\n")), 5, "every call was recorded and flushed")
	require.Contains(t, string(events), `"$ai_generation"`)
}

// rawStream posts a streaming request and delivers its SSE events when the body ends.
func rawStream(t *testing.T, url, body string) <-chan []string {
	out := make(chan []string, 1)
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+teamKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	go func() {
		defer resp.Body.Close()
		var events []string
		sc := bufio.NewScanner(resp.Body)
		var blk []string
		for sc.Scan() {
			if sc.Text() == "" {
				if len(blk) > 0 {
					events = append(events, strings.Join(blk, "\n"))
					blk = nil
				}
				continue
			}
			blk = append(blk, sc.Text())
		}
		out <- events
	}()
	return out
}
