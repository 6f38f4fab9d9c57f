package load

import (
	"cmp"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"time"
)

// budgets compares the standalone gateway (budget counters in process, file outbox) with one
// on Redis (budgets reserved and settled in Redis, events in the Redis outbox), same snapshot,
// same pinning; redis-server runs with the fake provider and the generator.
func (r *runner) budgets(ctx context.Context, rep *Report) (err error) {
	bc := r.cfg.Budget
	r.logf("budgets: starting redis-server and a gateway with --redis-url")
	redis, err := StartRedis(ctx, r.cfg.OutDir, r.pin.Others)
	if err != nil {
		return err
	}
	defer redis.Close()
	rgw, err := StartGateway(ctx, r.cfg.BinDir, r.cfg.OutDir, r.gateway("gateway-redis", filepath.Join(r.cfg.OutDir, "snapshot.json"), redis.URL, ""))
	if err != nil {
		return err
	}
	r.logf("gateway-redis %s (admin %s), redis %s", rgw.URL, rgw.Admin, redis.URL)
	defer func() { err = errors.Join(err, rgw.Stop(10*time.Second)) }()
	viaRedis := &Target{Name: "gateway-redis", Base: rgw.URL, Key: DevKey, Shape: r.shape, Client: NewClient()}
	r.warm(ctx, viaRedis, 8)

	res := &BudgetResult{Rate: bc.Rate, Concurrency: bc.Concurrency}
	type gw struct {
		t *Target
		p *Proc
	}
	mem, red := gw{r.via, r.gw.Proc}, gw{viaRedis, rgw.Proc}
	total, calls := map[string]CommandStat{}, 0
	for run := range r.cfg.Repeat {
		var br BudgetRun
		for _, g := range ordered(run, mem, red) {
			r.openLoopCalls(ctx, g.t, bc.Rate, r.cfg.Warmup/2)
			lats, _ := r.openLoopCalls(ctx, g.t, bc.Rate, bc.Duration)
			lat := Summarize(lats)
			r.warm(ctx, g.t, bc.Concurrency)
			stats0, err := redis.CommandStats(ctx)
			if err != nil {
				return err
			}
			m, err := r.closedLoop(ctx, g.t, bc.Concurrency, bc.Duration, g.p, r.fake.Proc, redis.Proc)
			if err != nil {
				return err
			}
			stats1, err := redis.CommandStats(ctx)
			if err != nil {
				return err
			}
			if g == mem {
				br.Memory, br.MemoryRPS, br.MemoryCPUPerCall, br.MemoryBusy = lat, m.rps, m.gatewayCPUPerCall, m.busy
				continue
			}
			addCommands(total, stats0, stats1)
			calls += m.calls
			br.Redis, br.RedisRPS, br.RedisCPUPerCall, br.RedisBusy = lat, m.rps, m.gatewayCPUPerCall, m.busy
			if m.rps > 0 {
				br.RedisServerCPU = round3(m.busy.Redis * 1e6 / m.rps)
			}
		}
		res.Runs = append(res.Runs, br)
		r.logf("budgets, run %d: in-process %.0f req/s, Redis %.0f req/s; at %g req/s p99 %.3f vs %.3f ms", run+1,
			br.MemoryRPS, br.RedisRPS, bc.Rate, br.Memory.P99, br.Redis.P99)
	}
	res.Memory = MedianLatency(mapSlice(res.Runs, func(b BudgetRun) Latency { return b.Memory }))
	res.Redis = MedianLatency(mapSlice(res.Runs, func(b BudgetRun) Latency { return b.Redis }))
	res.AddedRedis = MedianLatency(mapSlice(res.Runs, func(b BudgetRun) Latency { return b.Redis.Sub(b.Memory) }))
	res.MemoryRPS = medianOf(res.Runs, func(b BudgetRun) float64 { return b.MemoryRPS })
	res.RedisRPS = medianOf(res.Runs, func(b BudgetRun) float64 { return b.RedisRPS })
	res.Ratio = round3(medianOf(res.Runs, func(b BudgetRun) float64 { return safeDiv(b.RedisRPS, b.MemoryRPS) }))
	res.MemoryCPUPerCall = medianOf(res.Runs, func(b BudgetRun) float64 { return b.MemoryCPUPerCall })
	res.RedisCPUPerCall = medianOf(res.Runs, func(b BudgetRun) float64 { return b.RedisCPUPerCall })
	res.RedisServerCPU = medianOf(res.Runs, func(b BudgetRun) float64 { return b.RedisServerCPU })
	res.MemoryBusy = medianBusy(mapSlice(res.Runs, func(b BudgetRun) CoresBusy { return b.MemoryBusy }))
	res.RedisBusy = medianBusy(mapSlice(res.Runs, func(b BudgetRun) CoresBusy { return b.RedisBusy }))
	res.Commands = perCall(total, calls)
	rep.Budget = res
	return nil
}

// addCommands adds the commands executed between two INFO commandstats readings to total.
func addCommands(total, before, after map[string]CommandStat) {
	for name, a := range after {
		b := before[name]
		t := total[name]
		t.Calls += a.Calls - b.Calls
		t.Usec += a.Usec - b.Usec
		total[name] = t
	}
}

// perCall turns command totals into per-gateway-call figures, most expensive first; INFO
// itself is left out.
func perCall(total map[string]CommandStat, calls int) []RedisCommand {
	var out []RedisCommand
	for name, st := range total {
		if st.Calls == 0 || calls == 0 || name == "info" {
			continue
		}
		out = append(out, RedisCommand{Command: name, PerCall: round3(float64(st.Calls) / float64(calls)),
			UsecPerCall: round3(float64(st.Usec) / float64(calls)), UsecPerExec: round3(float64(st.Usec) / float64(st.Calls))})
	}
	slices.SortFunc(out, func(a, b RedisCommand) int { return cmp.Compare(b.UsecPerCall, a.UsecPerCall) })
	return out
}
