package load

import (
	"context"
	"encoding/json"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/leakcheck"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

var update = flag.Bool("update", false, "rewrite testdata/report.md")

func TestMain(m *testing.M) { leakcheck.VerifyTestMain(m) }

func TestSummarize(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // unsorted on purpose
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want Latency
	}{
		{"empty", nil, Latency{}},
		{"one", ms(7), Latency{N: 1, P50: 7, P90: 7, P99: 7, Max: 7}},
		{"nearest rank of 1..100", ms(hundred...), Latency{N: 100, P50: 50, P90: 90, P99: 99, Max: 100}},
		{"ten", ms(10, 1, 9, 2, 8, 3, 7, 4, 6, 5), Latency{N: 10, P50: 5, P90: 9, P99: 10, Max: 10}},
		{"sub-millisecond", []time.Duration{1500 * time.Microsecond, 250 * time.Microsecond}, Latency{N: 2, P50: 0.25, P90: 1.5, P99: 1.5, Max: 1.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Summarize(tc.in))
		})
	}
}

func TestMedianAndSub(t *testing.T) {
	require.Equal(t, 0.0, median(nil))
	require.Equal(t, 2.0, median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
	a := Latency{N: 10, P50: 1, P90: 2, P99: 3, Max: 4}
	b := Latency{N: 10, P50: 0.25, P90: 0.5, P99: 4, Max: 1}
	require.Equal(t, Latency{N: 10, P50: 0.75, P90: 1.5, P99: -1, Max: 3}, a.Sub(b))
	require.Equal(t, Latency{N: 10, P50: 1, P90: 2, P99: 3, Max: 4}, MedianLatency([]Latency{a, a, b}))
}

// TestOpenLoopSchedule: n = rate x duration calls, each given its own slot on the schedule,
// results in schedule order, and none waits for another.
func TestOpenLoopSchedule(t *testing.T) {
	var inFlight, peak atomic.Int64
	release := make(chan struct{})
	var once sync.Once
	results, lags := OpenLoop(context.Background(), 400, 100*time.Millisecond, func(ctx context.Context, at time.Time) time.Time {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if n == 40 {
			once.Do(func() { close(release) })
		}
		<-release // every call blocks until all 40 have started: the generator never waits
		inFlight.Add(-1)
		return at
	})
	require.Len(t, results, 40)
	require.Len(t, lags, 40)
	require.Equal(t, int64(40), peak.Load())
	for i := 1; i < len(results); i++ {
		require.Equal(t, 2500*time.Microsecond, results[i].Sub(results[i-1]), "call %d", i)
	}
}

// TestClosedLoopConcurrency: conc workers run at once, and every call is accounted for.
func TestClosedLoopConcurrency(t *testing.T) {
	const conc = 6
	var calls atomic.Int64
	var barrier sync.WaitGroup
	barrier.Add(conc)
	lats, errs, elapsed := ClosedLoop(context.Background(), conc, 20*time.Millisecond, func(ctx context.Context) error {
		if calls.Add(1) <= conc {
			barrier.Done()
			barrier.Wait() // the first conc calls can only return once all workers have started
		}
		return nil
	})
	require.Len(t, lats, int(calls.Load()))
	require.Len(t, errs, len(lats))
	require.GreaterOrEqual(t, len(lats), conc)
	require.Positive(t, elapsed)
}

// fake is an in-process fake provider for the client-side tests.
func fake(t *testing.T) (*fakeprovider.Server, string) {
	fp := fakeprovider.New(fakeprovider.Config{RecordRequests: -1})
	srv := httptest.NewServer(fp)
	t.Cleanup(func() { fp.Close(); srv.Close() })
	return fp, srv.URL
}

func TestTargetCallAndStream(t *testing.T) {
	for _, name := range []string{"openai", "anthropic"} {
		t.Run(name, func(t *testing.T) {
			fp, url := fake(t)
			shape, err := ShapeNamed(name)
			require.NoError(t, err)
			tg := &Target{Name: "direct", Base: url, Key: "k", Shape: shape, Client: NewClient()}
			defer tg.Client.CloseIdleConnections()
			provider := fakeprovider.OpenAI
			if name == "anthropic" {
				provider = fakeprovider.Anthropic
			}
			ctx := context.Background()

			require.NoError(t, tg.Call(ctx))

			fp.SetDefaultFor(provider, &fakeprovider.Scenario{Chunks: 5, Text: "one two three four five"})
			start := time.Now()
			s := tg.Stream(ctx, start, 5)
			require.NoError(t, s.Err)
			require.Equal(t, 5, s.Chunks)
			require.Len(t, s.Gaps, 4)
			require.Positive(t, s.TTFT)

			s = tg.Stream(ctx, start, 6)
			require.ErrorContains(t, s.Err, "5 text deltas, want 6")

			fp.SetDefaultFor(provider, &fakeprovider.Scenario{Chunks: 5, Fault: fakeprovider.FaultError, FaultAfter: 2})
			s = tg.Stream(ctx, start, 5)
			require.ErrorContains(t, s.Err, "error event after 2 deltas")

			fp.SetDefaultFor(provider, &fakeprovider.Scenario{Chunks: 5, Fault: fakeprovider.FaultCut, FaultAfter: 3})
			s = tg.Stream(ctx, start, 5)
			require.ErrorContains(t, s.Err, "without its terminal event after 3 deltas")

			fp.SetDefaultFor(provider, &fakeprovider.Scenario{Status: 529})
			require.ErrorContains(t, tg.Call(ctx), "status 529")
			require.ErrorContains(t, tg.Stream(ctx, start, 5).Err, "status 529")
		})
	}
	_, err := ShapeNamed("gemini")
	require.ErrorContains(t, err, "unknown shape")
}

func TestSnapshotIsTheDevSetWithGenerousBudgets(t *testing.T) {
	s, err := Snapshot("http://127.0.0.1:8300")
	require.NoError(t, err)
	require.NoError(t, s.Validate())
	require.Len(t, s.Backends, 4)
	for _, b := range s.Backends {
		require.Equal(t, "http://127.0.0.1:8300", b.Endpoint, b.Name)
	}
	require.Len(t, s.Teams, 1)
	dev := s.Teams[0]
	require.Equal(t, []string{snapshot.HashAPIKey(DevKey)}, dev.APIKeyHashes)
	require.Equal(t, snapshot.StageGateway, dev.Rollout.Stage)
	require.NotNil(t, dev.Budget)
	for _, b := range []snapshot.Budget{*dev.Budget, s.DefaultBudget} {
		require.NotEmpty(t, b.Limits, "budgets are enforced (reserved and settled), only generous")
		for _, l := range b.Limits {
			require.Equal(t, snapshot.EnforceHard, l.Enforcement)
			require.GreaterOrEqual(t, l.LimitMicros, int64(1_000_000*1_000_000))
		}
	}
}

// TestProcReadsProc: CPU time, memory, descriptors and limits of a child process.
func TestProcReadsProc(t *testing.T) {
	p, err := StartProc(t.TempDir(), "sleep", "", nil, "sleep", "30")
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Stop(5*time.Second)) }()
	cpu, err := p.CPU()
	require.NoError(t, err)
	require.GreaterOrEqual(t, cpu, time.Duration(0))
	rss, err := p.Status("VmRSS")
	require.NoError(t, err)
	require.Positive(t, rss)
	fds, err := p.OpenFiles()
	require.NoError(t, err)
	require.GreaterOrEqual(t, fds, 3)
	limit, err := p.MaxOpenFiles()
	require.NoError(t, err)
	require.Positive(t, limit)
	_, err = p.Status("NoSuchField")
	require.Error(t, err)
}

func sampleReport() *Report {
	yes, added := true, 0.312
	return &Report{
		Date: "2026-01-02T03:04:05Z", Command: "bin/load",
		Machine: Machine{CPUs: 2, CPUModel: "AMD EPYC", Kernel: "6.1", GoVersion: "go1.26.8", LoadBefore: "0.10 0.20 0.30", LoadAfter: "1.00 0.50 0.40"},
		Setup:   Setup{Shape: "openai", Pinning: "not pinned", Repeat: 3, Upstream: "plain", Recording: "file"},
		FixedRate: []RatePoint{{Rate: 1000, Direct: Latency{N: 4000, P50: 0.3, P90: 0.4, P99: 0.9, Max: 3},
			Gateway: Latency{N: 4000, P50: 0.6, P90: 0.8, P99: 1.2, Max: 5}, Added: Latency{N: 4000, P50: 0.3, P90: 0.4, P99: added, Max: 2}, LagP99: 0.05,
			GatewayCPUPerCall: 205, Busy: CoresBusy{Gateway: 0.205, Fake: 0.1, Generator: 0.15}}},
		Sweep: []SweepPoint{{Concurrency: 32, DirectRPS: 16000, GatewayRPS: 5400, Ratio: 0.338, GatewayCPUPerCall: 155, RPSPerCore: 6451.613,
			DirectBusy: CoresBusy{Fake: 0.5, Generator: 0.45}, GatewayBusy: CoresBusy{Gateway: 0.9, Fake: 0.3, Generator: 0.4},
			Direct: Latency{P50: 1.4, P99: 7.8}, Gateway: Latency{P50: 4.3, P99: 19.6}}},
		Paced: &PacedResult{Rate: 100, Chunks: 20, IntervalMs: 50, DirectTTFT: Latency{P50: 0.58, P99: 1.6}, GatewayTTFT: Latency{P50: 0.98, P99: 4.5},
			AddedTTFT: Latency{P50: 0.47, P99: 1.15}, DirectGap: Latency{P50: 50.6, P99: 51.5}, GatewayGap: Latency{P50: 50.6, P99: 53.7}, Completed: 1800},
		Budget: &BudgetResult{Rate: 1000, Concurrency: 32, Memory: Latency{P50: 0.7, P99: 7.7}, Redis: Latency{P50: 1.7, P99: 17.4},
			AddedRedis: Latency{P50: 0.98, P99: 2.04}, MemoryRPS: 3415, RedisRPS: 2049, Ratio: 0.62, MemoryCPUPerCall: 204, RedisCPUPerCall: 317, RedisServerCPU: 146,
			MemoryBusy: CoresBusy{Gateway: 0.7, Fake: 0.2, Generator: 0.3}, RedisBusy: CoresBusy{Gateway: 0.65, Fake: 0.1, Generator: 0.2, Redis: 0.3},
			Commands: []RedisCommand{{Command: "evalsha", PerCall: 3, UsecPerCall: 127.5, UsecPerExec: 42.5}, {Command: "xreadgroup", PerCall: 0.02, UsecPerCall: 1, UsecPerExec: 50}}},
		OpenStreams: &OpenResult{Streams: 10000, Completed: 10000, PeakOpen: 10000, RampRate: 1000, Chunks: 18, IntervalMs: 1000, Upstream: "HTTPS",
			RSSBefore: 22 << 20, RSSAtPeak: 560 << 20, RSSHighWater: 600 << 20, BytesPerStream: 56000, HeapAtPeak: 300 << 20, StacksAtPeak: 200 << 20,
			GoroutinesAtPeak: 30000, GoroutinesPer: 3, OpenFilesAtPeak: 10050, MaxOpenFiles: 20000, TTFT: Latency{P50: 2, P99: 9},
			RampBusy: CoresBusy{Gateway: 0.7, Fake: 0.3, Generator: 0.4}, HoldBusy: CoresBusy{Gateway: 0.4, Fake: 0.2, Generator: 0.1}, OpenAfterHold: 10000},
		Targets: Targets{AddedP99At1000: &added, AddedP99Met: &yes, OpenStreamsWanted: 10000, OpenStreamsReached: 10000, OpenStreamsMet: true},
	}
}

// TestReportFiles: report.json round-trips and report.md matches testdata/report.md
// (go test ./test/load -run TestReportFiles -update rewrites it).
func TestReportFiles(t *testing.T) {
	dir := t.TempDir()
	rep := sampleReport()
	require.NoError(t, rep.WriteFiles(dir))
	raw, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	var back Report
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, *rep, back)

	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	golden := filepath.Join("testdata", "report.md")
	if *update {
		require.NoError(t, os.WriteFile(golden, md, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), string(md))
}

// TestLoadToolSmoke runs every scenario at a tiny scale against real processes (bin/gateway,
// bin/fakeprovider, redis-server) and checks correctness only: every call succeeded, every
// section of the report is filled in and the files are well-formed. It measures nothing.
func TestLoadToolSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes: skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := QuickConfig()
	cfg.BinDir, cfg.OutDir = t.TempDir(), filepath.Join(t.TempDir(), "out")
	require.NoError(t, Build(ctx, cfg.BinDir))

	rep, err := Run(ctx, cfg)
	require.NoError(t, err)
	require.Zero(t, rep.Failed, "%v", rep.Errors)

	require.Len(t, rep.FixedRate, len(cfg.Rates))
	for _, p := range rep.FixedRate {
		want := int(p.Rate * cfg.RateDuration.Seconds())
		require.Equal(t, want, p.Direct.N, "every scheduled direct call succeeded")
		require.Equal(t, want, p.Gateway.N, "every scheduled gateway call succeeded")
	}
	require.Len(t, rep.Sweep, len(cfg.Concurrency))
	for _, p := range rep.Sweep {
		require.Positive(t, p.DirectRPS)
		require.Positive(t, p.GatewayRPS)
		require.Positive(t, p.Gateway.N)
	}
	wantStreams := 2 * int(cfg.Paced.Rate*cfg.Paced.Duration.Seconds()) * cfg.Repeat
	require.Equal(t, wantStreams, rep.Paced.Completed)
	require.Equal(t, (cfg.Paced.Chunks-1)*wantStreams/2, rep.Paced.GatewayGap.N, "every delta of every gateway stream was timed")
	require.Positive(t, rep.Budget.MemoryRPS)
	require.Positive(t, rep.Budget.RedisRPS)
	require.Equal(t, int(cfg.Budget.Rate*cfg.Budget.Duration.Seconds()), rep.Budget.Redis.N)
	o := rep.OpenStreams
	require.Equal(t, cfg.Open.Streams, o.Completed)
	require.Equal(t, cfg.Open.Streams, o.PeakOpen, "all streams were open at once")
	require.Equal(t, cfg.Open.Streams, o.OpenAfterHold, "and still were after the hold")
	require.True(t, rep.Targets.OpenStreamsMet)
	require.Positive(t, o.RSSAtPeak)
	require.Positive(t, o.GoroutinesAtPeak)

	raw, err := os.ReadFile(filepath.Join(cfg.OutDir, "report.json"))
	require.NoError(t, err)
	var back Report
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, *rep, back)
	md, err := os.ReadFile(filepath.Join(cfg.OutDir, "report.md"))
	require.NoError(t, err)
	for _, section := range []string{"### Fixed rate", "### Concurrency sweep", "### Paced streams", "### Budgets", "### Open streams", "### Targets"} {
		require.Contains(t, string(md), section)
	}
	events, err := filepath.Glob(filepath.Join(cfg.OutDir, "*-events.jsonl"))
	require.NoError(t, err)
	require.Empty(t, events, "the recorded events are removed unless kept")
}

// TestRunRejectsBadConfig: configuration errors come before any process starts.
func TestRunRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"shape", func(c *Config) { c.Shape = "gemini" }, "unknown shape"},
		{"binaries", func(c *Config) { c.BinDir = t.TempDir() }, "is missing"},
		{"scenario", func(c *Config) { c.Scenarios = []string{"soak"} }, "unknown scenario"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := QuickConfig()
			cfg.OutDir = t.TempDir()
			if tc.name == "scenario" {
				cfg.BinDir = fakeBinDir(t)
			}
			tc.edit(&cfg)
			_, err := Run(context.Background(), cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// fakeBinDir has files named like the binaries (never run: the config is refused first).
func fakeBinDir(t *testing.T) string {
	dir := t.TempDir()
	for _, b := range []string{"gateway", "fakeprovider"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, b), nil, 0o755))
	}
	return dir
}
