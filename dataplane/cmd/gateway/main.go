// Command gateway is the llm-gateway data-plane pod: an HTTP proxy for OpenAI- and
// Anthropic-shaped LLM traffic, configured by a snapshot from a file (standalone) or from the
// operator. Every flag can also be set with an environment variable LLM_GATEWAY_<FLAG>, the
// flag name in upper snake case (--config-source -> LLM_GATEWAY_CONFIG_SOURCE); a flag on the
// command line wins over the environment. See docs/gateway.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/configsync"
	"github.com/posthog/llm-gateway/dataplane/metrics"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/adapters"
	"github.com/posthog/llm-gateway/dataplane/record"
	"github.com/posthog/llm-gateway/dataplane/server"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type config struct {
	listen, adminListen       string
	snapshot                  string
	configSource, configToken string
	configCA                  string
	podName, stateDir         string
	drainTimeout              time.Duration
	shutdownDelay             time.Duration
	logFormat, logLevel       string
	maxBodyBytes              int64
	redisURL                  string
	pprof                     bool
	record                    record.Config
	limits                    limits
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// EnvPrefix prefixes the environment variable of every flag.
const EnvPrefix = "LLM_GATEWAY_"

// envName is the environment variable of a flag: LLM_GATEWAY_ + upper snake case.
func envName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	host, _ := os.Hostname()
	c := &config{}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address of the proxy (the LLM API)")
	fs.StringVar(&c.adminListen, "admin-listen", "127.0.0.1:9090", "address of the admin API (health, readiness, metrics, /admin/*)")
	fs.StringVar(&c.snapshot, "snapshot", "", "snapshot file: the whole configuration in standalone mode (re-applied when it changes), or the bootstrap snapshot with --config-source")
	fs.StringVar(&c.configSource, "config-source", "", "base URL of the operator's snapshot server; empty: standalone (--snapshot)")
	fs.StringVar(&c.configToken, "config-token-file", "", "file holding this Deployment's bearer token for --config-source (re-read before every request)")
	fs.StringVar(&c.configCA, "config-ca-file", "", "PEM bundle of the CAs that verify --config-source (the operator's CA, mounted from its ConfigMap; re-read before every request); "+
		"the certificate must name "+snapshot.TLSServerName+". Empty: the system roots")
	fs.StringVar(&c.podName, "pod-name", host, "this pod's name, reported to the operator and naming its event-outbox consumer")
	fs.StringVar(&c.stateDir, "state-dir", ".llm-gateway", "directory for the last-known-good snapshot and the file event outbox")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 25*time.Second, "on SIGTERM, how long open streams may run before they are ended with an error event (keep terminationGracePeriodSeconds above it)")
	fs.DurationVar(&c.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, how long to keep accepting requests while unready, so load balancers notice first")
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.Int64Var(&c.maxBodyBytes, "max-body-bytes", server.DefaultMaxBodyBytes, "largest request body read before the route is known (routes may set less)")
	fs.StringVar(&c.redisURL, "redis-url", "", "Redis for shared budgets and the event outbox (redis://host:port/db); empty: in-memory counters and a file outbox")
	fs.BoolVar(&c.pprof, "pprof", false, "serve Go's profiler at /debug/pprof/ on the admin listener (for load tests; do not expose)")
	c.limits.bindFlags(fs)
	c.record.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && !set[f.Name] {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", envName(f.Name), err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.snapshot == "" && c.configSource == "" {
		return nil, errors.New("give --snapshot FILE (standalone) or --config-source URL (operator)")
	}
	if err := checkConfigSource(c.configSource); err != nil {
		return nil, err
	}
	c.record.StateDir, c.record.PodName, c.record.LibVersion = c.stateDir, c.podName, version
	return c, nil
}

func newLogger(c *config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be json or text, not %q", c.logFormat)
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(c, stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	m := metrics.New()
	c.limits.resolve(&c.maxBodyBytes, cgroupRoot, log)

	var (
		store budget.Store
		rdb   redis.UniversalClient
	)
	if c.redisURL != "" {
		rs, err := budget.NewRedisStore(c.redisURL)
		if err != nil {
			return fmt.Errorf("budget store: %w", err)
		}
		store = rs
		opts, err := redis.ParseURL(c.redisURL)
		if err != nil {
			return fmt.Errorf("--redis-url: %w", err)
		}
		rdb = redis.NewClient(opts)
		defer rdb.Close()
		c.record.Redis = rdb
	} else {
		store = budget.NewMemoryStore()
	}
	bm := budget.NewManager(store, budget.Options{Logger: log, Registerer: m.Registry, PodID: c.podName})
	defer func() {
		if err := bm.Close(); err != nil {
			log.Error("close budget manager", "error", err)
		}
	}()
	rec, err := record.Open(ctx, c.record, log, m.Registry)
	if err != nil {
		return fmt.Errorf("open event recorder: %w", err)
	}

	g, err := server.New(server.Options{
		Logger:  log,
		Metrics: m,
		NewAdapter: func(b *snapshot.Backend) (provider.Adapter, error) {
			return adapters.New(b, adapters.Options{})
		},
		Budget:               bm,
		Recorder:             rec,
		MaxBodyBytes:         c.maxBodyBytes,
		MaxInflightBodyBytes: c.limits.maxInflightBodyBytes,
		BodyReadTimeout:      c.limits.bodyReadTimeout,
		TeamState: func(ctx context.Context, team string, b *snapshot.Budget) (any, error) {
			return bm.TeamState(ctx, team, b)
		},
	})
	if err != nil {
		return err
	}

	// Servers first, so that health and metrics answer while the first snapshot loads.
	proxy := c.limits.server(g.Handler(), log)
	admin := &http.Server{Handler: adminHandler(g.AdminHandler(), c.pprof), ReadHeaderTimeout: 10 * time.Second}
	pl, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.listen, err)
	}
	pl = server.LimitListener(pl, c.limits.maxConnections, m)
	al, err := net.Listen("tcp", c.adminListen)
	if err != nil {
		pl.Close()
		return fmt.Errorf("admin listen on %s: %w", c.adminListen, err)
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- proxy.Serve(pl) }()
	go func() { serveErr <- admin.Serve(al) }()
	log.Info("gateway listening", "listen", pl.Addr().String(), "admin", al.Addr().String(), "version", version)

	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go g.WatchSuspensions(bg, time.Second)
	if c.configSource != "" {
		sync := configsync.New(configsync.Config{
			Source: c.configSource, TokenFile: c.configToken, CAFile: c.configCA, Pod: c.podName, StateDir: c.stateDir,
			Bootstrap: c.snapshot, Logger: log, Metrics: m,
		}, g)
		if err := sync.Start(ctx); err != nil {
			log.Error("no snapshot yet; not ready until the operator provides one", "error", err)
		}
		go sync.Run(bg)
	} else {
		if err := configsync.LoadAndApply(c.snapshot, g); err != nil {
			proxy.Close()
			admin.Close()
			return fmt.Errorf("load snapshot: %w", err)
		}
		go configsync.WatchFile(bg, c.snapshot, g, 2*time.Second, log)
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}
	shutdown(c, log, g, proxy, admin, rec)
	return nil
}

// checkConfigSource refuses a --config-source that would send the token and receive provider
// credentials in clear text: https only, except to a loopback address (a local operator).
func checkConfigSource(source string) error {
	if source == "" {
		return nil
	}
	u, err := url.Parse(source)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--config-source %q is not a URL", source)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return fmt.Errorf("--config-source must be an https:// URL (the snapshot carries provider credentials); plain http is only allowed to a loopback address, not %q", source)
}

// adminHandler is the gateway's admin API, plus /debug/pprof/ when pprof is set.
func adminHandler(h http.Handler, pprof bool) http.Handler {
	if !pprof {
		return h
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	mux.Handle("/", h)
	return mux
}

// shutdown drains the pod: readiness false, (optionally) keep serving for shutdownDelay, stop
// accepting, let open streams finish until the drain timeout, end the rest with an error
// event, then flush the event outbox.
func shutdown(c *config, log *slog.Logger, g *server.Gateway, proxy, admin *http.Server, rec *record.Recorder) {
	log.Info("shutting down: draining", "drain_timeout", c.drainTimeout, "open_streams", g.Streams().Len())
	g.SetDraining()
	if c.shutdownDelay > 0 {
		time.Sleep(c.shutdownDelay)
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), c.drainTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		// Stops accepting and waits for in-flight requests; the streams among them end by
		// the drain timeout (Drain), so the extra grace only covers their final writes.
		sctx, scancel := context.WithTimeout(context.Background(), c.drainTimeout+10*time.Second)
		defer scancel()
		if err := proxy.Shutdown(sctx); err != nil {
			log.Warn("proxy shutdown", "error", err)
		}
		close(done)
	}()
	g.Drain(drainCtx)
	<-done
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if err := rec.Close(fctx); err != nil {
		log.Error("flush event outbox", "error", err)
	}
	_ = admin.Shutdown(fctx)
	log.Info("gateway stopped")
}
