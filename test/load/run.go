// Package load characterizes the gateway under load for fleet sizing. It starts
// bin/fakeprovider, bin/gateway (standalone, on a snapshot pointing at the fake provider) and,
// for the budgets comparison, redis-server and a second gateway with --redis-url, as separate
// processes, and drives them over loopback HTTP: the same calls directly to the fake provider
// and through the gateway in the same run, so every figure is a difference or a ratio against
// the direct call. See docs/load.md.
package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/posthog/llm-gateway/internal/binaries"
)

// Config selects the scenarios and their scale.
type Config struct {
	BinDir string // holds gateway and fakeprovider
	OutDir string // logs, snapshot, events, report
	Shape  string // openai or anthropic
	Pin    bool   // gateway on CPU 0, everything else on CPU 1 (when possible)
	Repeat int    // runs of every measurement; figures are medians
	Warmup time.Duration

	Rates        []float64     // fixed-rate points, req/s
	RateDuration time.Duration // per point, path and run
	Concurrency  []int         // closed-loop sweep
	SweepTime    time.Duration // per point, path and run

	Paced  PacedConfig
	Budget BudgetConfig
	Open   OpenConfig

	// Scenarios to run, in this order: rate, sweep, paced, budgets, streams. Empty: all.
	Scenarios []string

	KeepEvents bool      // keep the gateways' events and outboxes (large) in OutDir
	Pprof      bool      // start the gateways with --pprof (admin addresses are in the progress lines)
	GatewayEnv []string  // extra environment of every gateway (e.g. GOGC=800)
	Progress   io.Writer // one line per step; nil: silent
}

// PacedConfig: streams started at Rate for Duration, each Chunks text deltas IntervalMs apart.
type PacedConfig struct {
	Rate       float64
	Duration   time.Duration
	Chunks     int
	IntervalMs int64
}

// BudgetConfig: the Redis vs in-process budgets comparison at a fixed rate and a concurrency.
type BudgetConfig struct {
	Rate        float64
	Concurrency int
	Duration    time.Duration
}

// OpenConfig: Streams slow streams started at RampRate, each a text delta every IntervalMs,
// lasting long enough that all are open at once for Hold.
type OpenConfig struct {
	Streams    int
	RampRate   float64
	IntervalMs int64
	Hold       time.Duration
}

// DefaultConfig is the standard set (make load): a few minutes on a 2-core machine.
func DefaultConfig() Config {
	return Config{
		BinDir: "bin", OutDir: ".run/load", Shape: "openai", Pin: true, Repeat: 3, Warmup: time.Second,
		Rates: []float64{500, 1000, 2000}, RateDuration: 4 * time.Second,
		Concurrency: []int{1, 8, 32, 128, 512}, SweepTime: 2 * time.Second,
		Paced:  PacedConfig{Rate: 100, Duration: 3 * time.Second, Chunks: 20, IntervalMs: 50},
		Budget: BudgetConfig{Rate: 1000, Concurrency: 32, Duration: 3 * time.Second},
		Open:   OpenConfig{Streams: 10_000, RampRate: 1000, IntervalMs: 1000, Hold: 5 * time.Second},
	}
}

// QuickConfig runs every scenario at a tiny scale: a correctness check of the tool.
func QuickConfig() Config {
	return Config{
		BinDir: "bin", OutDir: ".run/load", Shape: "openai", Repeat: 1, Warmup: 200 * time.Millisecond,
		Rates: []float64{50}, RateDuration: 400 * time.Millisecond,
		Concurrency: []int{1, 4}, SweepTime: 300 * time.Millisecond,
		Paced:  PacedConfig{Rate: 20, Duration: 400 * time.Millisecond, Chunks: 3, IntervalMs: 10},
		Budget: BudgetConfig{Rate: 50, Concurrency: 4, Duration: 300 * time.Millisecond},
		Open:   OpenConfig{Streams: 40, RampRate: 200, IntervalMs: 100, Hold: 300 * time.Millisecond},
	}
}

// Build compiles bin/gateway and bin/fakeprovider into binDir.
func Build(ctx context.Context, binDir string) error {
	return binaries.Build(ctx, binDir, "gateway", "fakeprovider")
}

// failures counts failed calls and keeps the first few errors.
type failures struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (f *failures) add(err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.first) < 10 {
		f.first = append(f.first, err.Error())
	}
}

// runner holds the processes and targets of one run.
type runner struct {
	cfg    Config
	pin    Pinning
	shape  Shape
	fails  failures
	fake   *Fake
	gw     *Gateway
	direct *Target
	via    *Target
}

// gateway is how to start one of the run's gateways.
func (r *runner) gateway(name, snapshot, redisURL, caFile string) GatewayOptions {
	o := GatewayOptions{Name: name, CPU: r.pin.Gateway, Snapshot: snapshot, RedisURL: redisURL, CAFile: caFile, Env: r.cfg.GatewayEnv}
	if r.cfg.Pprof {
		o.Flags = append(o.Flags, "--pprof")
	}
	return o
}

// profile captures a profile of gw (with --pprof) in the background into OutDir/name; the
// returned function waits for it. Failures are reported in the progress lines only.
func (r *runner) profile(ctx context.Context, gw *Gateway, profile, name string) (wait func()) {
	if !r.cfg.Pprof {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		path := filepath.Join(r.cfg.OutDir, name)
		if err := gw.SaveProfile(ctx, profile, path); err != nil {
			r.logf("pprof: %v", err)
			return
		}
		r.logf("pprof: saved %s", path)
	}()
	return func() { <-done }
}

// cpuProfile is the pprof CPU profile name for a measurement of d.
func cpuProfile(d time.Duration) string {
	return fmt.Sprintf("profile?seconds=%d", max(1, int(d.Seconds())))
}

func (r *runner) logf(format string, a ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, time.Now().Format("15:04:05 ")+format+"\n", a...)
	}
}

// Run starts the processes, runs every scenario and returns the report (also written to
// cfg.OutDir as report.json and report.md).
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if cfg.Repeat < 1 {
		cfg.Repeat = 1
	}
	shape, err := ShapeNamed(cfg.Shape)
	if err != nil {
		return nil, err
	}
	if cfg.OutDir, err = filepath.Abs(cfg.OutDir); err != nil {
		return nil, fmt.Errorf("out dir: %w", err)
	}
	if cfg.BinDir, err = filepath.Abs(cfg.BinDir); err != nil {
		return nil, fmt.Errorf("bin dir: %w", err)
	}
	for _, b := range []string{"gateway", "fakeprovider"} {
		if _, err := os.Stat(filepath.Join(cfg.BinDir, b)); err != nil {
			return nil, fmt.Errorf("%s/%s is missing (make build, or load -build): %w", cfg.BinDir, b, err)
		}
	}
	if err := os.RemoveAll(cfg.OutDir); err != nil {
		return nil, fmt.Errorf("clean %s: %w", cfg.OutDir, err)
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.OutDir, err)
	}
	r := &runner{cfg: cfg, shape: shape}
	rep = &Report{Date: time.Now().UTC().Format(time.RFC3339), Command: strings.Join(os.Args, " "), Machine: machine()}
	limit, err := RaiseFileLimit()
	if err != nil {
		return nil, err
	}
	r.pin = ChoosePinning(cfg.Pin, rep.Machine.CPUs)
	if r.pin.Others != "" {
		if err := PinSelf(r.pin.Others); err != nil {
			return nil, err
		}
	}
	rep.Setup = Setup{Shape: shape.Name + " (" + shape.Path + ", " + shape.Model + ")", Pinning: r.pin.Describe(), Repeat: cfg.Repeat,
		FileLimit: limit, GatewayEnv: cfg.GatewayEnv,
		Upstream:  "bin/fakeprovider over plain HTTP/1.1 on loopback (open streams: HTTPS with HTTP/2, as real providers), request log off",
		Recording: "on: every call is recorded as $ai_generation into the file outbox and shipped to a JSONL events file (the standalone default; the Redis gateway uses the Redis outbox)"}

	if _, err := r.steps(); err != nil {
		return nil, err
	}
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	defer func() {
		if cerr := r.stop(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	steps, err := r.steps()
	if err != nil {
		return nil, err
	}
	for _, step := range steps {
		if err := step(ctx, rep); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("load run interrupted: %w", err)
		}
	}
	rep.Failed, rep.Errors = r.fails.n, r.fails.first
	rep.Machine.LoadAfter = loadAverage()
	rep.setTargets(cfg)
	if err := rep.WriteFiles(cfg.OutDir); err != nil {
		return nil, err
	}
	return rep, nil
}

// ScenarioNames are the scenarios in the order they run.
var ScenarioNames = []string{"rate", "sweep", "paced", "budgets", "streams"}

// steps are the selected scenarios, in order.
func (r *runner) steps() ([]func(context.Context, *Report) error, error) {
	all := map[string]func(context.Context, *Report) error{
		"rate": r.fixedRate, "sweep": r.sweep, "paced": r.paced, "budgets": r.budgets, "streams": r.openStreams,
	}
	want := map[string]bool{}
	for _, n := range r.cfg.Scenarios {
		if all[n] == nil {
			return nil, fmt.Errorf("unknown scenario %q (want some of %s)", n, strings.Join(ScenarioNames, ", "))
		}
		want[n] = true
	}
	var steps []func(context.Context, *Report) error
	for _, n := range ScenarioNames {
		if len(want) == 0 || want[n] {
			steps = append(steps, all[n])
		}
	}
	return steps, nil
}

// start runs the fake provider and the standalone gateway and warms both paths up.
func (r *runner) start(ctx context.Context) error {
	var err error
	r.logf("starting bin/fakeprovider and bin/gateway (%s)", r.pin.Describe())
	if r.fake, err = StartFake(ctx, r.cfg.BinDir, r.cfg.OutDir, "fakeprovider", r.pin.Others, false); err != nil {
		return err
	}
	snapFile, err := writeSnapshot(r.cfg.OutDir, "snapshot.json", r.fake.URL)
	if err != nil {
		return err
	}
	if r.gw, err = StartGateway(ctx, r.cfg.BinDir, r.cfg.OutDir, r.gateway("gateway", snapFile, "", "")); err != nil {
		return err
	}
	r.logf("gateway %s (admin %s), fake provider %s", r.gw.URL, r.gw.Admin, r.fake.URL)
	r.direct = &Target{Name: "direct", Base: r.fake.URL, Key: "sk-load-direct", Shape: r.shape, Client: NewClient()}
	r.via = &Target{Name: "gateway", Base: r.gw.URL, Key: DevKey, Shape: r.shape, Client: NewClient()}
	for _, t := range []*Target{r.direct, r.via} {
		r.warm(ctx, t, 8)
	}
	return nil
}

func (r *runner) stop() error {
	var errs []error
	if r.gw != nil {
		errs = append(errs, r.gw.Stop(10*time.Second))
	}
	if r.fake != nil {
		errs = append(errs, r.fake.Stop(5*time.Second))
	}
	if !r.cfg.KeepEvents {
		r.dropEvents()
	}
	return errors.Join(errs...)
}

// dropEvents removes the recorded events and outboxes (hundreds of MB after a full run).
func (r *runner) dropEvents() {
	paths, _ := filepath.Glob(filepath.Join(r.cfg.OutDir, "*-events.jsonl"))
	states, _ := filepath.Glob(filepath.Join(r.cfg.OutDir, "*-state"))
	for _, p := range append(paths, states...) {
		_ = os.RemoveAll(p)
	}
}

func writeSnapshot(dir, name, fakeURL string) (string, error) {
	s, err := Snapshot(fakeURL)
	if err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode snapshot: %w", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("write snapshot: %w", err)
	}
	return path, nil
}

// warm runs conc callers against t for the warm-up time (not measured).
func (r *runner) warm(ctx context.Context, t *Target, conc int) {
	_, errs, _ := ClosedLoop(ctx, conc, r.cfg.Warmup, t.Call)
	for _, e := range errs {
		r.fails.add(e)
	}
}

// ordered alternates which path goes first from one run to the next.
func ordered[T any](run int, a, b T) [2]T {
	if run%2 == 1 {
		return [2]T{b, a}
	}
	return [2]T{a, b}
}

// rateSlices is how many alternating slices a fixed-rate run is cut into per path, so that
// both paths see the same stretch of a noisy machine.
const rateSlices = 4

// fixedRate: open-loop non-streaming calls at each rate, direct and through the gateway, in
// alternating slices.
func (r *runner) fixedRate(ctx context.Context, rep *Report) error {
	points := make([]RatePoint, len(r.cfg.Rates))
	slice := r.cfg.RateDuration / rateSlices
	for run := range r.cfg.Repeat {
		for i, rate := range r.cfg.Rates {
			var rr RateRun
			lats := map[*Target][]time.Duration{}
			var lags []time.Duration
			var gwCPU time.Duration
			for _, t := range []*Target{r.direct, r.via} {
				r.openLoopCalls(ctx, t, rate, r.cfg.Warmup/2) // warm-up at the same rate
			}
			wait := func() {}
			if run == 0 {
				wait = r.profile(ctx, r.gw, cpuProfile(r.cfg.RateDuration*2), fmt.Sprintf("gateway-rate-%g-cpu.pprof", rate))
			}
			for k := range rateSlices {
				for _, t := range ordered(run+k, r.direct, r.via) {
					meter, err := startCPUMeter(r.gw.Proc, r.fake.Proc, nil)
					if err != nil {
						return err
					}
					lat, lag := r.openLoopCalls(ctx, t, rate, slice)
					busy, err := meter.stop()
					if err != nil {
						return err
					}
					lats[t], lags = append(lats[t], lat...), append(lags, lag...)
					if t == r.via {
						gwCPU += time.Duration(busy.Gateway * float64(slice))
						rr.Busy = addBusy(rr.Busy, busy, 1.0/rateSlices)
					}
				}
			}
			wait()
			rr.Direct, rr.Gateway, rr.LagP99 = Summarize(lats[r.direct]), Summarize(lats[r.via]), Summarize(lags).P99
			rr.Added = rr.Gateway.Sub(rr.Direct)
			rr.GatewayCPUPerCall = round3(float64(gwCPU.Microseconds()) / (rate * r.cfg.RateDuration.Seconds()))
			points[i].Rate = rate
			points[i].Runs = append(points[i].Runs, rr)
			r.logf("fixed rate %g req/s, run %d: direct p50 %.3f p99 %.3f ms, gateway p50 %.3f p99 %.3f ms, added p99 %.3f ms, gateway %.0f µs CPU/call",
				rate, len(points[i].Runs), rr.Direct.P50, rr.Direct.P99, rr.Gateway.P50, rr.Gateway.P99, rr.Added.P99, rr.GatewayCPUPerCall)
		}
	}
	for i := range points {
		x := &points[i]
		x.Direct = MedianLatency(mapSlice(x.Runs, func(r RateRun) Latency { return r.Direct }))
		x.Gateway = MedianLatency(mapSlice(x.Runs, func(r RateRun) Latency { return r.Gateway }))
		x.Added = MedianLatency(mapSlice(x.Runs, func(r RateRun) Latency { return r.Added }))
		x.LagP99 = medianOf(x.Runs, func(r RateRun) float64 { return r.LagP99 })
		x.GatewayCPUPerCall = medianOf(x.Runs, func(r RateRun) float64 { return r.GatewayCPUPerCall })
		x.Busy = medianBusy(mapSlice(x.Runs, func(r RateRun) CoresBusy { return r.Busy }))
	}
	rep.FixedRate = points
	return nil
}

// openLoopCalls makes non-streaming calls at rate for dur: the latency of each successful
// call from its scheduled time, and how late each was dispatched.
func (r *runner) openLoopCalls(ctx context.Context, t *Target, rate float64, dur time.Duration) (lats, lags []time.Duration) {
	type res struct {
		d   time.Duration
		err error
	}
	results, lags := OpenLoop(ctx, rate, dur, func(ctx context.Context, at time.Time) res {
		err := t.Call(ctx)
		return res{time.Since(at), err}
	})
	lats = make([]time.Duration, 0, len(results))
	for _, x := range results {
		if x.err != nil {
			r.fails.add(x.err)
			continue
		}
		lats = append(lats, x.d)
	}
	return lats, lags
}

// sweep: closed-loop non-streaming calls at each concurrency; the gateway's CPU time per call
// gives the calls per second one gateway core serves.
func (r *runner) sweep(ctx context.Context, rep *Report) error {
	points := make([]SweepPoint, len(r.cfg.Concurrency))
	for run := range r.cfg.Repeat {
		for i, conc := range r.cfg.Concurrency {
			var sr SweepRun
			for _, t := range ordered(run, r.direct, r.via) {
				r.warm(ctx, t, conc)
				wait := func() {}
				if t == r.via && run == 0 && i == len(r.cfg.Concurrency)-1 {
					wait = r.profile(ctx, r.gw, cpuProfile(r.cfg.SweepTime), fmt.Sprintf("gateway-sweep-%d-cpu.pprof", conc))
				}
				m, err := r.closedLoop(ctx, t, conc, r.cfg.SweepTime, r.gw.Proc, r.fake.Proc, nil)
				wait()
				if err != nil {
					return err
				}
				if t == r.direct {
					sr.DirectRPS, sr.Direct, sr.DirectBusy = m.rps, m.lat, m.busy
				} else {
					sr.GatewayRPS, sr.Gateway, sr.GatewayCPUPerCall, sr.GatewayBusy = m.rps, m.lat, m.gatewayCPUPerCall, m.busy
				}
			}
			points[i].Concurrency = conc
			points[i].Runs = append(points[i].Runs, sr)
			r.logf("sweep %d concurrent, run %d: direct %.0f req/s, gateway %.0f req/s, gateway %.0f µs CPU/call; cores busy: gateway %.2f, fake+generator %.2f (direct %.2f)",
				conc, len(points[i].Runs), sr.DirectRPS, sr.GatewayRPS, sr.GatewayCPUPerCall, sr.GatewayBusy.Gateway,
				sr.GatewayBusy.Fake+sr.GatewayBusy.Generator, sr.DirectBusy.Fake+sr.DirectBusy.Generator)
		}
	}
	for i := range points {
		x := &points[i]
		x.DirectRPS = medianOf(x.Runs, func(r SweepRun) float64 { return r.DirectRPS })
		x.GatewayRPS = medianOf(x.Runs, func(r SweepRun) float64 { return r.GatewayRPS })
		x.Ratio = round3(safeDiv(x.GatewayRPS, x.DirectRPS))
		x.GatewayCPUPerCall = medianOf(x.Runs, func(r SweepRun) float64 { return r.GatewayCPUPerCall })
		x.RPSPerCore = round3(safeDiv(1e6, x.GatewayCPUPerCall))
		x.DirectBusy = medianBusy(mapSlice(x.Runs, func(r SweepRun) CoresBusy { return r.DirectBusy }))
		x.GatewayBusy = medianBusy(mapSlice(x.Runs, func(r SweepRun) CoresBusy { return r.GatewayBusy }))
		x.Direct = MedianLatency(mapSlice(x.Runs, func(r SweepRun) Latency { return r.Direct }))
		x.Gateway = MedianLatency(mapSlice(x.Runs, func(r SweepRun) Latency { return r.Gateway }))
	}
	rep.Sweep = points
	return nil
}

type closedMeasure struct {
	rps               float64
	gatewayCPUPerCall float64 // µs
	busy              CoresBusy
	lat               Latency
	calls             int
}

// closedLoop runs conc callers for dur and measures throughput and the CPU time of the
// processes (redis may be nil).
func (r *runner) closedLoop(ctx context.Context, t *Target, conc int, dur time.Duration, gw, fake, redis *Proc) (closedMeasure, error) {
	meter, err := startCPUMeter(gw, fake, redis)
	if err != nil {
		return closedMeasure{}, err
	}
	lats, errs, elapsed := ClosedLoop(ctx, conc, dur, t.Call)
	busy, err := meter.stop()
	if err != nil {
		return closedMeasure{}, err
	}
	ok := lats[:0:0]
	for i, e := range errs {
		if e != nil {
			r.fails.add(e)
			continue
		}
		ok = append(ok, lats[i])
	}
	m := closedMeasure{calls: len(ok), rps: round3(float64(len(ok)) / elapsed.Seconds()), lat: Summarize(ok), busy: busy}
	if len(ok) > 0 {
		m.gatewayCPUPerCall = round3(busy.Gateway * elapsed.Seconds() * 1e6 / float64(len(ok)))
	}
	return m, nil
}

// streamScenario is the fake provider's default scenario for paced streams: chunks text
// deltas interval ms apart (the text has enough runes for every delta).
func streamScenario(chunks int, intervalMs int64) map[string]any {
	return map[string]any{"chunks": chunks, "chunkIntervalMs": intervalMs,
		"text": strings.Repeat("load ", max(chunks, 4))}
}

// paced: streams paced by the fake provider, started at a fixed rate; TTFT and gaps.
func (r *runner) paced(ctx context.Context, rep *Report) error {
	pc := r.cfg.Paced
	if err := r.fake.SetScenario(ctx, r.shape.Provider, streamScenario(pc.Chunks, pc.IntervalMs)); err != nil {
		return err
	}
	defer func() { _ = r.fake.SetScenario(context.WithoutCancel(ctx), r.shape.Provider, nil) }()
	res := &PacedResult{Rate: pc.Rate, Chunks: pc.Chunks, IntervalMs: pc.IntervalMs}
	for run := range r.cfg.Repeat {
		var pr PacedRun
		for _, t := range ordered(run, r.direct, r.via) {
			ttft, gap, n := r.streams(ctx, t, pc.Rate, pc.Duration, pc.Chunks)
			res.Completed += n
			if t == r.direct {
				pr.DirectTTFT, pr.DirectGap = ttft, gap
			} else {
				pr.GatewayTTFT, pr.GatewayGap = ttft, gap
			}
		}
		res.Runs = append(res.Runs, pr)
		r.logf("paced streams, run %d: TTFT direct p50 %.3f p99 %.3f ms, gateway p50 %.3f p99 %.3f ms", run+1,
			pr.DirectTTFT.P50, pr.DirectTTFT.P99, pr.GatewayTTFT.P50, pr.GatewayTTFT.P99)
	}
	res.DirectTTFT = MedianLatency(mapSlice(res.Runs, func(r PacedRun) Latency { return r.DirectTTFT }))
	res.GatewayTTFT = MedianLatency(mapSlice(res.Runs, func(r PacedRun) Latency { return r.GatewayTTFT }))
	res.AddedTTFT = MedianLatency(mapSlice(res.Runs, func(r PacedRun) Latency { return r.GatewayTTFT.Sub(r.DirectTTFT) }))
	res.DirectGap = MedianLatency(mapSlice(res.Runs, func(r PacedRun) Latency { return r.DirectGap }))
	res.GatewayGap = MedianLatency(mapSlice(res.Runs, func(r PacedRun) Latency { return r.GatewayGap }))
	res.AddedGap = MedianLatency(mapSlice(res.Runs, func(r PacedRun) Latency { return r.GatewayGap.Sub(r.DirectGap) }))
	rep.Paced = res
	return nil
}

// streams starts streams at rate for dur and reads each to its end.
func (r *runner) streams(ctx context.Context, t *Target, rate float64, dur time.Duration, chunks int) (ttft, gap Latency, completed int) {
	results, _ := OpenLoop(ctx, rate, dur, func(ctx context.Context, at time.Time) StreamResult {
		return t.Stream(ctx, at, chunks)
	})
	var ttfts, gaps []time.Duration
	for _, s := range results {
		if s.Err != nil {
			r.fails.add(s.Err)
			continue
		}
		completed++
		ttfts = append(ttfts, s.TTFT)
		gaps = append(gaps, s.Gaps...)
	}
	return Summarize(ttfts), Summarize(gaps), completed
}

func mapSlice[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func (rep *Report) setTargets(cfg Config) {
	for _, p := range rep.FixedRate {
		if p.Rate == 1000 {
			v, ok := p.Added.P99, p.Added.P99 < 1
			rep.Targets.AddedP99At1000, rep.Targets.AddedP99Met = &v, &ok
		}
	}
	if o := rep.OpenStreams; o != nil {
		rep.Targets.OpenStreamsWanted = o.Streams
		rep.Targets.OpenStreamsReached = min(o.PeakOpen, o.Completed)
		rep.Targets.OpenStreamsMet = o.PeakOpen >= o.Streams && o.Completed == o.Streams
	}
}
