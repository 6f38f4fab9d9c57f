package load

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Report is everything one run of the load tool measured. Every latency is in milliseconds;
// every "median" is over the repeated runs, which alternate direct and gateway calls.
type Report struct {
	Date    string  `json:"date"`
	Command string  `json:"command"`
	Machine Machine `json:"machine"`
	Setup   Setup   `json:"setup"`

	FixedRate   []RatePoint   `json:"fixedRate"`
	Sweep       []SweepPoint  `json:"sweep"`
	Paced       *PacedResult  `json:"pacedStreams,omitempty"`
	Budget      *BudgetResult `json:"budgets,omitempty"`
	OpenStreams *OpenResult   `json:"openStreams,omitempty"`
	Targets     Targets       `json:"targets"`

	// Failed counts calls that did not succeed (should be 0); Errors keeps the first few.
	Failed int      `json:"failed"`
	Errors []string `json:"errors,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpuModel"`
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"goVersion"`
	LoadBefore string `json:"loadAverageBefore"` // /proc/loadavg 1, 5, 15 minutes
	LoadAfter  string `json:"loadAverageAfter"`
}

// Setup is how the processes were arranged.
type Setup struct {
	Shape     string `json:"shape"`
	Pinning   string `json:"pinning"`
	Repeat    int    `json:"repeat"`
	Upstream  string `json:"upstream"`
	Recording string `json:"recording"`
	FileLimit uint64 `json:"fileLimit"`
	// GatewayEnv is the extra environment the gateways ran with (-gateway-env).
	GatewayEnv []string `json:"gatewayEnv,omitempty"`
}

// RatePoint is the open-loop run at one fixed request rate: latency from the scheduled send
// time to the end of the response body, direct to the fake provider and through the gateway.
type RatePoint struct {
	Rate    float64 `json:"rate"`
	Direct  Latency `json:"direct"`
	Gateway Latency `json:"gateway"`
	Added   Latency `json:"added"` // median over runs of gateway - direct
	LagP99  float64 `json:"dispatchLagP99Ms"`
	// GatewayCPUPerCall is the gateway's CPU time per call at this rate (µs); Busy the cores
	// each process kept busy during the gateway runs.
	GatewayCPUPerCall float64   `json:"gatewayCpuPerCallUs"`
	Busy              CoresBusy `json:"gatewayRunCoresBusy"`
	Runs              []RateRun `json:"runs"`
}

// RateRun is one direct + gateway pair at a rate.
type RateRun struct {
	Direct            Latency   `json:"direct"`
	Gateway           Latency   `json:"gateway"`
	Added             Latency   `json:"added"`
	LagP99            float64   `json:"dispatchLagP99Ms"`
	GatewayCPUPerCall float64   `json:"gatewayCpuPerCallUs"`
	Busy              CoresBusy `json:"gatewayRunCoresBusy"`
}

// SweepPoint is the closed-loop run at one concurrency.
type SweepPoint struct {
	Concurrency int     `json:"concurrency"`
	DirectRPS   float64 `json:"directRps"`
	GatewayRPS  float64 `json:"gatewayRps"`
	Ratio       float64 `json:"ratio"` // gateway / direct
	// GatewayCPUPerCall is the gateway's CPU time per call (µs), all threads; RPSPerCore is
	// 1 s / that: the calls one fully busy gateway core serves. DirectBusy and GatewayBusy
	// are the cores each process kept busy during the direct and the gateway runs.
	GatewayCPUPerCall float64    `json:"gatewayCpuPerCallUs"`
	RPSPerCore        float64    `json:"rpsPerGatewayCore"`
	DirectBusy        CoresBusy  `json:"directRunCoresBusy"`
	GatewayBusy       CoresBusy  `json:"gatewayRunCoresBusy"`
	Direct            Latency    `json:"direct"`
	Gateway           Latency    `json:"gateway"`
	Runs              []SweepRun `json:"runs"`
}

// SweepRun is one direct + gateway pair at a concurrency.
type SweepRun struct {
	DirectRPS         float64   `json:"directRps"`
	GatewayRPS        float64   `json:"gatewayRps"`
	GatewayCPUPerCall float64   `json:"gatewayCpuPerCallUs"`
	DirectBusy        CoresBusy `json:"directRunCoresBusy"`
	GatewayBusy       CoresBusy `json:"gatewayRunCoresBusy"`
	Direct            Latency   `json:"direct"`
	Gateway           Latency   `json:"gateway"`
}

// PacedResult is streams paced by the fake provider (Chunks text deltas IntervalMs apart),
// started at a fixed rate: time to first token from the scheduled start, and the gaps between
// text deltas, direct and through the gateway.
type PacedResult struct {
	Rate        float64    `json:"rate"`
	Chunks      int        `json:"chunks"`
	IntervalMs  int64      `json:"intervalMs"`
	DirectTTFT  Latency    `json:"directTtft"`
	GatewayTTFT Latency    `json:"gatewayTtft"`
	AddedTTFT   Latency    `json:"addedTtft"`
	DirectGap   Latency    `json:"directGap"`
	GatewayGap  Latency    `json:"gatewayGap"`
	AddedGap    Latency    `json:"addedGap"`
	Completed   int        `json:"completed"`
	Runs        []PacedRun `json:"runs"`
}

// PacedRun is one direct + gateway pair of paced streams.
type PacedRun struct {
	DirectTTFT  Latency `json:"directTtft"`
	GatewayTTFT Latency `json:"gatewayTtft"`
	DirectGap   Latency `json:"directGap"`
	GatewayGap  Latency `json:"gatewayGap"`
}

// BudgetResult compares a gateway with Redis budgets (and the Redis event outbox: the
// cluster configuration) to the standalone one (in-process budget counters, file outbox).
type BudgetResult struct {
	Rate        float64 `json:"rate"`
	Concurrency int     `json:"concurrency"`
	// Fixed rate: latency of each, and what Redis adds.
	Memory     Latency `json:"memoryLatency"`
	Redis      Latency `json:"redisLatency"`
	AddedRedis Latency `json:"addedByRedis"`
	// Closed loop: throughput of each and redis / memory.
	MemoryRPS        float64   `json:"memoryRps"`
	RedisRPS         float64   `json:"redisRps"`
	Ratio            float64   `json:"ratio"`
	MemoryCPUPerCall float64   `json:"memoryGatewayCpuPerCallUs"`
	RedisCPUPerCall  float64   `json:"redisGatewayCpuPerCallUs"`
	RedisServerCPU   float64   `json:"redisServerCpuPerCallUs"`
	MemoryBusy       CoresBusy `json:"memoryRunCoresBusy"`
	RedisBusy        CoresBusy `json:"redisRunCoresBusy"`
	// Commands is what redis-server executed per gateway call in the closed-loop runs
	// (INFO commandstats), by command.
	Commands []RedisCommand `json:"redisCommands"`
	Runs     []BudgetRun    `json:"runs"`
}

// RedisCommand is one Redis command's share of a gateway call.
type RedisCommand struct {
	Command     string  `json:"command"`
	PerCall     float64 `json:"perGatewayCall"`     // executions per gateway call
	UsecPerCall float64 `json:"usecPerGatewayCall"` // redis-server µs per gateway call
	UsecPerExec float64 `json:"usecPerExecution"`
}

// BudgetRun is one memory + Redis pair.
type BudgetRun struct {
	Memory           Latency   `json:"memoryLatency"`
	Redis            Latency   `json:"redisLatency"`
	MemoryRPS        float64   `json:"memoryRps"`
	RedisRPS         float64   `json:"redisRps"`
	MemoryCPUPerCall float64   `json:"memoryGatewayCpuPerCallUs"`
	RedisCPUPerCall  float64   `json:"redisGatewayCpuPerCallUs"`
	RedisServerCPU   float64   `json:"redisServerCpuPerCallUs"`
	MemoryBusy       CoresBusy `json:"memoryRunCoresBusy"`
	RedisBusy        CoresBusy `json:"redisRunCoresBusy"`
}

// OpenResult is Streams slow streams held open at once through one fresh gateway.
type OpenResult struct {
	Streams    int     `json:"streams"`
	Completed  int     `json:"completed"` // ran to their terminal event with every text delta
	PeakOpen   int     `json:"peakOpen"`  // the gateway's /admin/streams total at its highest
	RampRate   float64 `json:"rampRate"`  // streams started per second
	Chunks     int     `json:"chunks"`
	IntervalMs int64   `json:"intervalMs"`
	Upstream   string  `json:"upstream"`
	// Gateway process, before the ramp (warm, idle) and at the peak.
	RSSBefore        int64   `json:"rssBeforeBytes"`
	RSSAtPeak        int64   `json:"rssAtPeakBytes"`
	RSSHighWater     int64   `json:"rssHighWaterBytes"` // VmHWM at the end
	BytesPerStream   int64   `json:"bytesPerStream"`    // (RSS at peak - before) / peak open
	HeapBefore       int64   `json:"heapInuseBeforeBytes"`
	HeapAtPeak       int64   `json:"heapInuseAtPeakBytes"`
	StacksAtPeak     int64   `json:"stackInuseAtPeakBytes"`
	GoroutinesBefore int     `json:"goroutinesBefore"`
	GoroutinesAtPeak int     `json:"goroutinesAtPeak"`
	GoroutinesPer    float64 `json:"goroutinesPerStream"`
	OpenFilesAtPeak  int     `json:"openFilesAtPeak"`
	MaxOpenFiles     int64   `json:"maxOpenFiles"`
	TTFT             Latency `json:"ttft"`        // from each stream's scheduled start, under this load
	Connected        Latency `json:"connected"`   // from the scheduled start to a TCP connection to the gateway
	DispatchLag      Latency `json:"dispatchLag"` // how late the generator started the streams
	// RampBusy is the cores each process kept busy while the streams were started, HoldBusy
	// during the hold that follows the peak (relaying the open streams' text deltas);
	// OpenAfterHold the streams still open after it.
	RampBusy      CoresBusy `json:"rampCoresBusy"`
	HoldBusy      CoresBusy `json:"holdCoresBusy"`
	OpenAfterHold int       `json:"openAfterHold"`
}

// Targets are the goals and whether this run met them.
type Targets struct {
	AddedP99At1000     *float64 `json:"addedP99At1000RpsMs,omitempty"`
	AddedP99Met        *bool    `json:"addedP99Under1Ms,omitempty"`
	OpenStreamsWanted  int      `json:"openStreamsWanted"`
	OpenStreamsReached int      `json:"openStreamsReached"`
	OpenStreamsMet     bool     `json:"openStreamsMet"`
}

// WriteFiles writes report.json and report.md into dir.
func (r *Report) WriteFiles(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report.json: %w", err)
	}
	var md strings.Builder
	r.Markdown(&md)
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write report.md: %w", err)
	}
	return nil
}

// Markdown writes the report as Markdown tables (also the tool's human-readable output).
func (r *Report) Markdown(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("## Load run %s\n\n", r.Date)
	p("`%s`\n\n", r.Command)
	p("- Machine: %d CPUs (%s), Linux %s, %s; load average before %s, after %s\n", r.Machine.CPUs, r.Machine.CPUModel,
		r.Machine.Kernel, r.Machine.GoVersion, r.Machine.LoadBefore, r.Machine.LoadAfter)
	p("- Shape: %s; pinning: %s\n", r.Setup.Shape, r.Setup.Pinning)
	p("- Upstream: %s\n", r.Setup.Upstream)
	p("- Recording: %s\n", r.Setup.Recording)
	if len(r.Setup.GatewayEnv) > 0 {
		p("- Gateway environment: %s\n", strings.Join(r.Setup.GatewayEnv, " "))
	}
	p("- Each figure is the median of %d runs; direct and gateway runs alternate. Failed calls: %d\n\n", r.Setup.Repeat, r.Failed)

	if len(r.FixedRate) > 0 {
		p("### Fixed rate, non-streaming (open loop, latency from the scheduled send, ms)\n\n")
		p("| req/s | direct p50 | p90 | p99 | max | gateway p50 | p90 | p99 | max | added p50 | added p90 | **added p99** | dispatch lag p99 | gateway CPU/call (µs) | cores busy: gateway / fake + generator |\n")
		p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, x := range r.FixedRate {
			p("| %g | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | **%.3f** | %.3f | %.0f | %.2f / %.2f |\n", x.Rate,
				x.Direct.P50, x.Direct.P90, x.Direct.P99, x.Direct.Max, x.Gateway.P50, x.Gateway.P90, x.Gateway.P99, x.Gateway.Max,
				x.Added.P50, x.Added.P90, x.Added.P99, x.LagP99, x.GatewayCPUPerCall, x.Busy.Gateway, x.Busy.Fake+x.Busy.Generator)
		}
		p("\n")
	}
	if len(r.Sweep) > 0 {
		p("### Concurrency sweep, non-streaming (closed loop)\n\n")
		p("| concurrency | direct req/s | gateway req/s | ratio | gateway CPU/call (µs) | **req/s per gateway core** | direct run: fake + generator cores | gateway run: gateway / fake + generator cores | direct p50 / p99 (ms) | gateway p50 / p99 (ms) |\n")
		p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, x := range r.Sweep {
			p("| %d | %.0f | %.0f | %.2f | %.0f | **%.0f** | %.2f | %.2f / %.2f | %.3f / %.3f | %.3f / %.3f |\n", x.Concurrency, x.DirectRPS, x.GatewayRPS,
				x.Ratio, x.GatewayCPUPerCall, x.RPSPerCore, x.DirectBusy.Fake+x.DirectBusy.Generator, x.GatewayBusy.Gateway,
				x.GatewayBusy.Fake+x.GatewayBusy.Generator, x.Direct.P50, x.Direct.P99, x.Gateway.P50, x.Gateway.P99)
		}
		p("\n")
	}
	if x := r.Paced; x != nil {
		p("### Paced streams (%d text deltas %d ms apart, %g streams/s, ms)\n\n", x.Chunks, x.IntervalMs, x.Rate)
		p("| | direct p50 | p90 | p99 | max | gateway p50 | p90 | p99 | max | added p50 | added p99 |\n")
		p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		row := func(name string, d, g, a Latency) {
			p("| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", name,
				d.P50, d.P90, d.P99, d.Max, g.P50, g.P90, g.P99, g.Max, a.P50, a.P99)
		}
		row("time to first token", x.DirectTTFT, x.GatewayTTFT, x.AddedTTFT)
		row("gap between deltas", x.DirectGap, x.GatewayGap, x.AddedGap)
		p("\nStreams completed: %d.\n\n", x.Completed)
	}
	if x := r.Budget; x != nil {
		p("### Budgets: Redis on loopback vs in-process counters\n\n")
		p("| | in-process (standalone) | Redis (--redis-url) | Redis / in-process |\n| --- | ---: | ---: | ---: |\n")
		p("| closed loop, %d concurrent: req/s | %.0f | %.0f | **%.2f** |\n", x.Concurrency, x.MemoryRPS, x.RedisRPS, x.Ratio)
		p("| gateway CPU per call (µs) | %.0f | %.0f | %.2f |\n", x.MemoryCPUPerCall, x.RedisCPUPerCall, safeDiv(x.RedisCPUPerCall, x.MemoryCPUPerCall))
		p("| redis-server CPU per call (µs) | | %.0f | |\n", x.RedisServerCPU)
		for _, c := range x.Commands[:min(3, len(x.Commands))] {
			p("| redis %s per call × µs each | | %.2f × %.1f | |\n", strings.ToUpper(c.Command), c.PerCall, c.UsecPerExec)
		}
		p("| cores busy: gateway / fake + generator / redis | %.2f / %.2f | %.2f / %.2f / %.2f | |\n", x.MemoryBusy.Gateway,
			x.MemoryBusy.Fake+x.MemoryBusy.Generator, x.RedisBusy.Gateway, x.RedisBusy.Fake+x.RedisBusy.Generator, x.RedisBusy.Redis)
		p("| %g req/s: p50 / p99 (ms) | %.3f / %.3f | %.3f / %.3f | added %.3f / %.3f |\n\n", x.Rate,
			x.Memory.P50, x.Memory.P99, x.Redis.P50, x.Redis.P99, x.AddedRedis.P50, x.AddedRedis.P99)
	}
	if x := r.OpenStreams; x != nil {
		p("### Open streams through one gateway\n\n")
		p("| streams | completed | peak open | RSS before | RSS at peak | **bytes per stream** | heap / stacks in use at peak | goroutines at peak (per stream) | fds at peak / limit | TTFT p50 / p99 (ms) |\n")
		p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		p("| %d | %d | %d | %s | %s | **%s** | %s / %s | %d (%.1f) | %d / %d | %.1f / %.1f |\n\n", x.Streams, x.Completed, x.PeakOpen,
			mib(x.RSSBefore), mib(x.RSSAtPeak), kib(x.BytesPerStream), mib(x.HeapAtPeak), mib(x.StacksAtPeak), x.GoroutinesAtPeak, x.GoroutinesPer,
			x.OpenFilesAtPeak, x.MaxOpenFiles, x.TTFT.P50, x.TTFT.P99)
		p("Of the time to first token, p50 %.1f / p99 %.1f ms went to getting a TCP connection to the gateway (generator, kernel and the gateway's accept queue), "+
			"p99 %.1f ms to the generator starting the stream late.\n", x.Connected.P50, x.Connected.P99, x.DispatchLag.P99)
		p("%d text deltas %d ms apart per stream, started at %g/s; upstream %s. RSS high-water mark %s. "+
			"Cores busy (gateway / fake provider / generator) while the streams were started: %.2f / %.2f / %.2f; "+
			"while all were open, relaying their deltas: %.2f / %.2f / %.2f (%d still open after the hold).\n\n",
			x.Chunks, x.IntervalMs, x.RampRate, x.Upstream, mib(x.RSSHighWater), x.RampBusy.Gateway, x.RampBusy.Fake, x.RampBusy.Generator,
			x.HoldBusy.Gateway, x.HoldBusy.Fake, x.HoldBusy.Generator, x.OpenAfterHold)
	}
	p("### Targets\n\n")
	if t := r.Targets; t.AddedP99At1000 != nil {
		p("- Added p99 at 1,000 req/s non-streaming: %.3f ms (target < 1 ms): %s\n", *t.AddedP99At1000, metWord(*t.AddedP99Met))
	}
	if t := r.Targets; t.OpenStreamsWanted > 0 {
		p("- Open streams in one gateway: %d of %d held and completed: %s\n", t.OpenStreamsReached, t.OpenStreamsWanted, metWord(t.OpenStreamsMet))
	}
	for _, e := range r.Errors {
		p("- error: %s\n", e)
	}
}

func metWord(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadBefore: loadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// loadAverage is the 1, 5 and 15 minute load average.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
