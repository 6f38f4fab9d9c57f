// Command load characterizes the gateway under load: bin/gateway and a direct call to
// bin/fakeprovider in the same run, at fixed request rates, over a concurrency sweep, with
// paced streams, with budgets in Redis vs in process, and with thousands of open streams
// through one gateway. It prints a Markdown report and writes report.json and report.md to
// -out. See docs/load.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/posthog/llm-gateway/test/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg, build, err := parseFlags(args)
	if err != nil {
		return err
	}
	if build {
		fmt.Fprintln(os.Stderr, "building bin/gateway and bin/fakeprovider into", cfg.BinDir)
		if err := load.Build(ctx, cfg.BinDir); err != nil {
			return err
		}
	}
	cfg.Progress = os.Stderr
	rep, err := load.Run(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Markdown(os.Stdout)
	fmt.Fprintf(os.Stderr, "report: %s/report.json, %s/report.md\n", cfg.OutDir, cfg.OutDir)
	if rep.Failed > 0 {
		return fmt.Errorf("%d calls failed (first: %s)", rep.Failed, rep.Errors[0])
	}
	return nil
}

func parseFlags(args []string) (load.Config, bool, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	// -quick selects the defaults of every other flag, so it is looked for before parsing.
	cfg := load.DefaultConfig()
	if quickRequested(args) {
		cfg = load.QuickConfig()
	}
	fs.Bool("quick", false, "every scenario at a tiny scale (a correctness check, not a measurement)")
	build := fs.Bool("build", false, "go build bin/gateway and bin/fakeprovider into -bin first")
	fs.StringVar(&cfg.BinDir, "bin", cfg.BinDir, "directory holding gateway and fakeprovider")
	fs.StringVar(&cfg.OutDir, "out", cfg.OutDir, "directory for the report, logs and snapshots (emptied first)")
	fs.StringVar(&cfg.Shape, "shape", cfg.Shape, "API the calls use: openai (chat completions) or anthropic (messages)")
	fs.BoolVar(&cfg.Pin, "pin", cfg.Pin, "pin the gateway to CPU 0 and the fake provider, redis-server and generator to CPU 1 (taskset)")
	fs.IntVar(&cfg.Repeat, "repeat", cfg.Repeat, "runs of every measurement; the report gives medians")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured calls before each measurement (half of it before fixed-rate points)")
	rates := floatList(cfg.Rates)
	fs.Var(&rates, "rates", "fixed request rates, req/s, comma-separated")
	fs.DurationVar(&cfg.RateDuration, "rate-duration", cfg.RateDuration, "duration of each fixed-rate measurement")
	conc := intList(cfg.Concurrency)
	fs.Var(&conc, "concurrency", "closed-loop sweep concurrencies, comma-separated")
	fs.DurationVar(&cfg.SweepTime, "sweep-duration", cfg.SweepTime, "duration of each sweep measurement")
	fs.Float64Var(&cfg.Paced.Rate, "paced-rate", cfg.Paced.Rate, "paced streams started per second")
	fs.DurationVar(&cfg.Paced.Duration, "paced-duration", cfg.Paced.Duration, "how long paced streams are started for")
	fs.IntVar(&cfg.Paced.Chunks, "paced-chunks", cfg.Paced.Chunks, "text deltas per paced stream")
	fs.Int64Var(&cfg.Paced.IntervalMs, "paced-interval-ms", cfg.Paced.IntervalMs, "milliseconds between text deltas of paced streams")
	fs.Float64Var(&cfg.Budget.Rate, "budget-rate", cfg.Budget.Rate, "fixed rate of the budgets comparison, req/s")
	fs.IntVar(&cfg.Budget.Concurrency, "budget-concurrency", cfg.Budget.Concurrency, "closed-loop concurrency of the budgets comparison")
	fs.DurationVar(&cfg.Budget.Duration, "budget-duration", cfg.Budget.Duration, "duration of each budgets measurement")
	fs.IntVar(&cfg.Open.Streams, "streams", cfg.Open.Streams, "streams held open at once through one gateway")
	fs.Float64Var(&cfg.Open.RampRate, "stream-ramp", cfg.Open.RampRate, "open streams started per second")
	fs.Int64Var(&cfg.Open.IntervalMs, "stream-interval-ms", cfg.Open.IntervalMs, "milliseconds between text deltas of open streams")
	fs.DurationVar(&cfg.Open.Hold, "stream-hold", cfg.Open.Hold, "how long all streams stay open at once")
	fs.Func("scenarios", "scenarios to run, comma-separated: "+strings.Join(load.ScenarioNames, ",")+" (default all; budgets needs redis-server)", func(v string) error {
		cfg.Scenarios = strings.Split(v, ",")
		return nil
	})
	fs.BoolVar(&cfg.Pprof, "pprof", cfg.Pprof, "start the gateways with --pprof (profile them at <admin>/debug/pprof/ while the load runs)")
	fs.Func("gateway-env", "NAME=VALUE added to every gateway's environment, repeatable (e.g. GOGC=800)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("%q: want NAME=VALUE", v)
		}
		cfg.GatewayEnv = append(cfg.GatewayEnv, v)
		return nil
	})
	fs.BoolVar(&cfg.KeepEvents, "keep-events", cfg.KeepEvents, "keep the recorded events and outboxes in -out (hundreds of MB)")
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	if fs.NArg() > 0 {
		return cfg, false, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Rates, cfg.Concurrency = rates, conc
	return cfg, *build, nil
}

func quickRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "-quick", "--quick", "-quick=true", "--quick=true":
			return true
		}
	}
	return false
}

type floatList []float64

func (l *floatList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}

func (l *floatList) Set(v string) error {
	*l = nil
	for _, f := range strings.Split(v, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || x <= 0 {
			return fmt.Errorf("%q is not a positive number", f)
		}
		*l = append(*l, x)
	}
	return nil
}

type intList []int

func (l *intList) String() string {
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	*l = nil
	for _, f := range strings.Split(v, ",") {
		x, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || x <= 0 {
			return fmt.Errorf("%q is not a positive integer", f)
		}
		*l = append(*l, x)
	}
	return nil
}
