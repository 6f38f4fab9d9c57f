package faults

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/metrics"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/adapters"
	"github.com/posthog/llm-gateway/dataplane/record"
	"github.com/posthog/llm-gateway/dataplane/server"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/leakcheck"
	"github.com/posthog/llm-gateway/test/capturesink"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

func TestMain(m *testing.M) {
	leakcheck.VerifyTestMain(m)
}

// The suite's fixed configuration.
const (
	team        = "faults"
	teamKey     = "sk-faults-team"
	captureKey  = "phc_faults"
	awsKeyID    = "AKIDFAULTS"
	awsSecret   = "faults/secret+key"
	awsRegion   = "us-east-1"
	azureDeploy = "faults-gpt-4o"
	azureModel  = "gpt-4o-2024-11-20"

	claudeModel = "claude-sonnet-4-5"
	gptModel    = "gpt-4o"

	// The primary's short timeouts (snapshot milliseconds): the timeout rows wait this long.
	primaryTimeoutMs = 500
	// Every backend's circuit opens after 3 consecutive failures, or at once on a 429, for
	// at least the cooldown.
	breakerFailures = 3
	cooldown        = 5 * time.Second
)

// What each side of a pair answers when it serves: distinct texts and usage, so the client's
// result says which backend produced it.
const (
	primaryText      = "Primary answer in four pieces"
	secondaryText    = "Secondary answer served after failover"
	chunks           = 4
	backendNamespace = "faults/"
)

var (
	primaryUsage   = cost.Usage{InputTokens: 40, OutputTokens: 5}
	secondaryUsage = cost.Usage{InputTokens: 60, OutputTokens: 9}
)

// backendName is the ProviderBackend name of a provider in the suite's snapshots.
func backendName(p fakeprovider.Provider) string { return backendNamespace + string(p) }

// shapeOf is the wire shape a provider serves.
func shapeOf(p fakeprovider.Provider) snapshot.Shape {
	if p == fakeprovider.Anthropic || p == fakeprovider.Bedrock {
		return snapshot.ShapeAnthropic
	}
	return snapshot.ShapeOpenAI
}

// pair is a route's two backends: the primary the fault is applied to, and the failover target.
type pair struct{ primary, secondary fakeprovider.Provider }

// suite holds what every cell shares: the capture sink and the recorder that ships to it.
type suite struct {
	sink *capturesink.Sink
	rec  *record.Recorder

	mu        sync.Mutex
	baselines map[string]signature
}

// newSuite starts the capture sink and the real recorder (file outbox, shipper); both stop
// when t's subtests are done.
func newSuite(t *testing.T) *suite {
	t.Helper()
	sink := capturesink.New()
	require.NoError(t, sink.Start(""))
	dir := t.TempDir()
	rec, err := record.Open(context.Background(), record.Config{
		CaptureEndpoint: sink.URL(), CaptureAPIKey: captureKey, StateDir: dir, MaxBackoff: time.Second,
	}, quiet(), nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, rec.Close(ctx))
		sink.Close()
	})
	return &suite{sink: sink, rec: rec, baselines: map[string]signature{}}
}

func quiet() *slog.Logger {
	if os.Getenv("FAULTS_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// upstream is one backend's fake provider.
type upstream struct {
	fake *fakeprovider.Server
	srv  *httptest.Server
}

// requests is the number of requests the fake received (its counts, which unlike its
// request log are never capped).
func (u *upstream) requests() int {
	n := int64(0)
	for _, c := range u.fake.Counts() {
		n += c
	}
	return int(n)
}

// cell is one gateway in front of a pair of fake upstreams, with its own budget counters.
type cell struct {
	t                  testing.TB
	pair               pair
	primary, secondary *upstream
	snap               *snapshot.Snapshot
	gw                 *server.Gateway
	gwSrv              *httptest.Server
	budget             *budget.Manager
	client             *http.Client
	trace              string
}

// cellOptions shape a cell.
type cellOptions struct {
	// primary and secondary are the fake scenarios (nil: a normal answer); refused points the
	// primary backend at a closed loopback port.
	primary, secondary *fakeprovider.Scenario
	refused            bool
	recorder           record.CallRecorder
	// chunkIntervalMs paces the served streams (benchmarks).
	chunkIntervalMs int64
	// mutate edits the snapshot before it is applied.
	mutate func(*snapshot.Snapshot)
}

// newCell starts the pair's fakes, a gateway with the real adapters, catalog and an in-memory
// budget manager, and an HTTP client for the SDKs.
func newCell(t testing.TB, p pair, o cellOptions) *cell {
	c := &cell{t: t, pair: p, trace: "faults-trace"}
	base := func(text string, u cost.Usage) *fakeprovider.Scenario {
		return &fakeprovider.Scenario{Text: text, Usage: &u, Chunks: chunks, ChunkIntervalMs: o.chunkIntervalMs}
	}
	c.primary = startUpstream(t, merge(base(primaryText, primaryUsage), o.primary))
	c.secondary = startUpstream(t, merge(base(secondaryText, secondaryUsage), o.secondary))
	primaryURL := c.primary.srv.URL
	if o.refused {
		primaryURL = closedPort(t)
	}

	c.budget = budget.NewManager(budget.NewMemoryStore(), budget.Options{Logger: quiet()})
	rec := o.recorder
	gw, err := server.New(server.Options{
		Logger:  quiet(),
		Metrics: metrics.New(),
		NewAdapter: func(b *snapshot.Backend) (provider.Adapter, error) {
			return adapters.New(b, adapters.Options{})
		},
		Budget:   c.budget,
		Recorder: rec,
		TeamState: func(ctx context.Context, team string, b *snapshot.Budget) (any, error) {
			return c.budget.TeamState(ctx, team, b)
		},
	})
	require.NoError(t, err)
	c.gw = gw
	c.snap = pairSnapshot(p, primaryURL, c.secondary.srv.URL)
	if o.mutate != nil {
		o.mutate(c.snap)
	}
	require.NoError(t, c.snap.Seal())
	require.NoError(t, gw.Apply(c.snap, "faults"))
	c.gwSrv = httptest.NewServer(gw)
	c.client = &http.Client{Transport: &http.Transport{}}
	t.Cleanup(func() {
		c.primary.fake.Close()
		c.secondary.fake.Close()
		c.gwSrv.CloseClientConnections()
		c.gwSrv.Close()
		for _, u := range []*upstream{c.primary, c.secondary} {
			u.srv.CloseClientConnections()
			u.srv.Close()
		}
		gw.CloseIdleConnections()
		c.client.CloseIdleConnections()
		_ = c.budget.Close()
	})
	return c
}

// merge overlays a fault scenario on the base answer (text, usage, chunks).
func merge(base, fault *fakeprovider.Scenario) *fakeprovider.Scenario {
	if fault == nil {
		return base
	}
	sc := *fault
	sc.Text, sc.Usage = base.Text, base.Usage
	if sc.Chunks == 0 {
		sc.Chunks = base.Chunks
	}
	if sc.ChunkIntervalMs == 0 {
		sc.ChunkIntervalMs = base.ChunkIntervalMs
	}
	return &sc
}

func startUpstream(t testing.TB, sc *fakeprovider.Scenario) *upstream {
	fake := fakeprovider.New(fakeprovider.Config{
		Bedrock:          fakeprovider.BedrockAuth{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret, Region: awsRegion},
		AzureDeployments: map[string]string{azureDeploy: azureModel},
		Default:          sc,
		Logger:           slog.New(slog.DiscardHandler),
	})
	return &upstream{fake: fake, srv: httptest.NewServer(fake)}
}

// closedPort returns the URL of a loopback port nothing listens on (connection refused).
func closedPort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// pairSnapshot is one route (the pair's shape) with the primary at priority 0 and the
// failover target at priority 1, failing over on every class, at most 2 attempts.
func pairSnapshot(p pair, primaryURL, secondaryURL string) *snapshot.Snapshot {
	model := gptModel
	if shapeOf(p.primary) == snapshot.ShapeAnthropic {
		model = claudeModel
	}
	primary := backendConfig(p.primary, primaryURL)
	primary.Timeouts = snapshot.Timeouts{FirstByteMs: primaryTimeoutMs, IdleMs: primaryTimeoutMs}
	return &snapshot.Snapshot{
		Backends: []snapshot.Backend{primary, backendConfig(p.secondary, secondaryURL)},
		Routes: []snapshot.Route{{
			Name: backendNamespace + "route", Shape: shapeOf(p.primary), Models: []string{model},
			Backends: []snapshot.RouteBackend{
				{Backend: backendName(p.primary), Priority: 0, Weight: 1},
				{Backend: backendName(p.secondary), Priority: 1, Weight: 1},
			},
			Failover: snapshot.Failover{On: slices.Clone(snapshot.AllFailoverClasses), MaxAttempts: 2}, // Seal sorts it in place
		}},
		Teams: []snapshot.Team{{Name: team, APIKeyHashes: []string{snapshot.HashAPIKey(teamKey)},
			Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}}},
		DefaultBudget: snapshot.Budget{Source: "builtin", OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedAllow,
			Limits: []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 100_000_000, Enforcement: snapshot.EnforceHard}}},
	}
}

func backendConfig(p fakeprovider.Provider, endpoint string) snapshot.Backend {
	b := snapshot.Backend{Name: backendName(p), Endpoint: endpoint,
		CircuitBreaker: snapshot.CircuitBreaker{ConsecutiveFailures: breakerFailures, CooldownMs: cooldown.Milliseconds()}}
	switch p {
	case fakeprovider.OpenAI:
		b.Provider, b.Credentials = snapshot.ProviderOpenAI, snapshot.Credentials{APIKey: "up-openai"}
	case fakeprovider.Anthropic:
		b.Provider, b.Credentials = snapshot.ProviderAnthropic, snapshot.Credentials{APIKey: "up-anthropic"}
	case fakeprovider.Bedrock:
		b.Provider, b.Region = snapshot.ProviderBedrock, awsRegion
		b.Credentials = snapshot.Credentials{AWSAccessKeyID: awsKeyID, AWSSecretAccessKey: awsSecret}
	case fakeprovider.Azure:
		b.Provider, b.AzureAPIVersion = snapshot.ProviderAzureOpenAI, "v1"
		b.Credentials = snapshot.Credentials{APIKey: "up-azure"}
		b.ModelMap = map[string]string{gptModel: azureDeploy}
	}
	return b
}

// anthropicClient and openaiClient are the official SDKs pointed at the gateway by base URL,
// with their own retries off: what the test sees is the gateway's behaviour.
func (c *cell) anthropicClient() anthropic.Client {
	return anthropic.NewClient(aoption.WithoutEnvironmentDefaults(), aoption.WithBaseURL(c.gwSrv.URL),
		aoption.WithAPIKey(teamKey), aoption.WithMaxRetries(0), aoption.WithHTTPClient(c.client),
		aoption.WithHeader(server.HeaderTraceID, c.trace))
}

func (c *cell) openaiClient() openai.Client {
	return openai.NewClient(ooption.WithBaseURL(c.gwSrv.URL+"/v1/"), ooption.WithAPIKey(teamKey),
		ooption.WithMaxRetries(0), ooption.WithHTTPClient(c.client), ooption.WithHeader(server.HeaderTraceID, c.trace))
}

// admin reads a path of the gateway's admin API into v.
func (c *cell) admin(path string, v any) {
	rr := httptest.NewRecorder()
	c.gw.AdminHandler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, path, nil))
	require.Equal(c.t, http.StatusOK, rr.Code, rr.Body.String())
	require.NoError(c.t, json.NewDecoder(io.Reader(rr.Body)).Decode(v))
}

// circuit returns a backend's circuit as /admin/backends shows it.
func (c *cell) circuit(p fakeprovider.Provider) server.BreakerState {
	var states []server.BackendState
	c.admin("/admin/backends", &states)
	for _, s := range states {
		if s.Name == backendName(p) {
			return s.Circuit
		}
	}
	c.t.Fatalf("backend %s is not on /admin/backends", backendName(p))
	return server.BreakerState{}
}

// spent returns the team's settled spend today and what is still reserved.
func (c *cell) spent() (spent, reserved int64) {
	st, err := c.budget.TeamState(context.Background(), team, &c.snap.DefaultBudget)
	require.NoError(c.t, err)
	for _, w := range st.Windows {
		if w.Window == snapshot.WindowDay {
			spent = w.SpentMicros
		}
	}
	return spent, st.ReservedMicros
}
