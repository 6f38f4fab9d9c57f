/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

// Package controllers is the llm-gateway operator: one status reconciler per kind, the
// whole-world snapshot reconciler, the snapshot server the gateway pods poll, and the
// `operator compile` command.
package controllers

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
	"github.com/posthog/llm-gateway/controllers/internal/publish"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
)

// NewScheme returns a scheme with the Kubernetes built-in kinds and the llm-gateway kinds.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("add client-go scheme: %w", err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("add llmgateway scheme: %w", err)
	}
	return s, nil
}

// Options configure the operator's components on a manager.
type Options struct {
	// WatchNamespace limits the compiled objects to one namespace; "" watches all.
	WatchNamespace string
	// OperatorNamespace holds the snapshot Secret.
	OperatorNamespace string
	// SnapshotListener serves the snapshot protocol (over TLS); when nil, SnapshotAddr is
	// listened on.
	SnapshotListener net.Listener
	SnapshotAddr     string
	// SnapshotTokenSecrets name the Secrets of the operator namespace that hold the gateway
	// Deployments' bearer tokens, one each (key "token"); a missing one is created with a random
	// token (default: DefaultSnapshotTokenSecret).
	SnapshotTokenSecrets []string
	// SnapshotService is the operator's Service, whose DNS names the serving certificate
	// carries besides snapshot.TLSServerName (default DefaultSnapshotService).
	SnapshotService string
	// AccessRefresh is how often the TLS Secret, the CA ConfigMap and the token Secrets are
	// re-read (default DefaultAccessRefresh).
	AccessRefresh time.Duration
	// DefaultBudget is the built-in default budget.
	DefaultBudget DefaultBudgetFlags
	// BudgetState, when set, supplies spend figures for TeamBudget status.
	BudgetState BudgetStateReader
	// BudgetRefresh is how often each TeamBudget's counters are re-read when BudgetState is
	// set (default DefaultBudgetRefresh).
	BudgetRefresh time.Duration
	// ReplicaID names this operator replica in the gateway pod reports replicas share
	// (default: $POD_NAME, else the host name, which is the pod name in a cluster).
	ReplicaID string
	// Clock is the clock (the wall clock when nil).
	Clock clock.Clock
}

// Operator is the set of components Setup added to a manager.
type Operator struct {
	server        *publish.Server
	access        *snapshotAccess
	share         *replicaShare
	world         *world
	budgetState   BudgetStateReader
	budgetRefresh time.Duration
	clock         clock.Clock
}

// now reads the operator's clock.
func (o *Operator) now() time.Time { return o.clock.Now() }

// Setup adds the operator to mgr: the snapshot reconciler and server (on every replica), the
// status reconcilers and the snapshot Secret writer (on the leader). Before returning it loads
// the snapshot kept in the Secret, which is served until the first compile.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options) (*Operator, error) {
	copts, err := opts.DefaultBudget.options()
	if err != nil {
		return nil, err
	}
	if opts.OperatorNamespace == "" {
		return nil, errors.New("the operator namespace is required (--snapshot-secret-namespace or POD_NAMESPACE)")
	}
	o := &Operator{world: newWorld(), budgetState: opts.BudgetState, budgetRefresh: opts.BudgetRefresh, clock: clock.Or(opts.Clock)}
	if o.budgetRefresh <= 0 {
		o.budgetRefresh = DefaultBudgetRefresh
	}
	log := mgr.GetLogger().WithName("snapshot")
	if len(opts.SnapshotTokenSecrets) == 0 {
		opts.SnapshotTokenSecrets = []string{DefaultSnapshotTokenSecret}
	}
	if opts.SnapshotService == "" {
		opts.SnapshotService = DefaultSnapshotService
	}
	o.access = newSnapshotAccess(mgr.GetClient(), mgr.GetAPIReader(), opts.OperatorNamespace, opts.SnapshotService,
		// Certificates are checked by their peers against the wall clock, whatever o.clock is.
		opts.SnapshotTokenSecrets, opts.AccessRefresh, clock.Real{}, log.WithName("access"))
	if err := mgr.Add(o.access); err != nil {
		return nil, fmt.Errorf("add the snapshot TLS and token keeper: %w", err)
	}
	o.server = publish.New(publish.Options{
		Tokens:            o.access.tokens,
		TLS:               o.access.tlsConfig(),
		Clock:             o.clock,
		OnReplicasChanged: o.replicasChanged,
		Log:               log.WithName("server"),
	})

	if opts.ReplicaID == "" {
		opts.ReplicaID = os.Getenv("POD_NAME")
	}
	if opts.ReplicaID == "" {
		if opts.ReplicaID, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("replica id: %w", err)
		}
	}
	o.share = newReplicaShare(mgr.GetClient(), mgr.GetAPIReader(), opts.OperatorNamespace, opts.ReplicaID, o.server, o.clock, log.WithName("replicas"))
	o.share.onChange = o.world.notify
	if err := mgr.Add(o.share); err != nil {
		return nil, fmt.Errorf("add the replica report sharer: %w", err)
	}

	secret := types.NamespacedName{Namespace: opts.OperatorNamespace, Name: SnapshotSecretName}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	loadStored(lctx, mgr.GetAPIReader(), secret, o.server, log)
	cancel()

	snap := &snapshotReconciler{client: mgr.GetClient(), namespace: opts.WatchNamespace, options: copts, world: o.world, server: o.server}
	if err := snap.setup(mgr); err != nil {
		return nil, fmt.Errorf("set up the snapshot controller: %w", err)
	}
	base := statusBase{client: mgr.GetClient(), world: o.world, recorder: mgr.GetEventRecorder("llm-gateway-operator"),
		replicas: func(version string) publish.Replicas { return publish.Count(o.share.pods(), version) }}
	budgets := newStatusReconciler[v1alpha1.TeamBudget](compile.KindTeamBudget, base)
	budgets.extra = o.teamBudgetStatus
	budgets.gone = budgetPhases.drop
	routes := newStatusReconciler[v1alpha1.LLMRoute](compile.KindLLMRoute, base)
	routes.extra = routeStatus
	for _, err := range []error{
		routes.setup(mgr),
		newStatusReconciler[v1alpha1.ProviderBackend](compile.KindProviderBackend, base).setup(mgr),
		newStatusReconciler[v1alpha1.TeamRollout](compile.KindTeamRollout, base).setup(mgr),
		budgets.setup(mgr),
	} {
		if err != nil {
			return nil, fmt.Errorf("set up a status controller: %w", err)
		}
	}
	if err := mgr.Add(&persister{client: mgr.GetClient(), reader: mgr.GetAPIReader(), server: o.server, key: secret,
		log: log.WithName("secret"), retry: 5 * time.Second}); err != nil {
		return nil, fmt.Errorf("add the snapshot Secret writer: %w", err)
	}
	serve := func(ctx context.Context) error {
		// Serve only with a certificate: until then pods keep their last snapshot.
		select {
		case <-o.access.ready:
		case <-ctx.Done():
			if opts.SnapshotListener != nil {
				opts.SnapshotListener.Close()
			}
			return nil
		}
		if opts.SnapshotListener != nil {
			return o.server.Serve(ctx, opts.SnapshotListener)
		}
		return o.server.ListenAndServe(ctx, opts.SnapshotAddr)
	}
	if err := mgr.Add(everyReplica(serve)); err != nil {
		return nil, fmt.Errorf("add the snapshot server: %w", err)
	}
	return o, nil
}

// everyReplica is a runnable that runs on every operator replica, leader or not.
type everyReplica func(context.Context) error

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (f everyReplica) NeedLeaderElection() bool        { return false }

// replicasChanged runs when a pod of this replica joins, leaves or acks a version:
// Programmed changes, and the other replicas should know.
func (o *Operator) replicasChanged() {
	if o.share != nil {
		o.share.localChanged()
	}
	if version, _, ok := o.server.Current(); ok {
		r := publish.Count(o.server.Pods(), version)
		replicasGauge.WithLabelValues("current").Set(float64(r.Ready))
		replicasGauge.WithLabelValues("stale").Set(float64(r.Total - r.Ready))
	}
	o.world.notify()
}

// SnapshotVersion returns the version served now.
func (o *Operator) SnapshotVersion() (string, bool) {
	v, _, ok := o.server.Current()
	return v, ok
}

// Snapshot returns a copy of the snapshot served now (nil before there is one).
func (o *Operator) Snapshot() (*snapshot.Snapshot, error) {
	_, body, ok := o.server.Current()
	if !ok {
		return nil, nil
	}
	return snapshot.Decode(body)
}

// Ready is a readiness check: ready once a snapshot is served.
func (o *Operator) Ready(*http.Request) error {
	if _, ok := o.SnapshotVersion(); !ok {
		return errors.New("no valid snapshot yet")
	}
	return nil
}

// Config is the operator's command line.
type Config struct {
	SnapshotListen         string
	SnapshotTokenSecrets   string
	SnapshotService        string
	SnapshotAccessRefresh  time.Duration
	MetricsBindAddress     string
	HealthProbeBindAddress string
	LeaderElect            bool
	Namespace              string
	OperatorNamespace      string
	RedisURL               string
	BudgetRefresh          time.Duration
	DefaultBudget          DefaultBudgetFlags
}

// RegisterFlags adds the operator flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.SnapshotListen, "snapshot-listen", ":8081", "address the snapshot server (GET /v1/snapshot, /healthz; TLS only) listens on")
	fs.StringVar(&c.SnapshotTokenSecrets, "snapshot-token-secrets", DefaultSnapshotTokenSecret,
		"comma-separated Secrets of the operator namespace, one per gateway Deployment, each holding the bearer token its pods present (key \"token\"); a missing one is created with a random token")
	fs.StringVar(&c.SnapshotService, "snapshot-service", DefaultSnapshotService,
		"the operator's Service: its DNS names go into the snapshot server's certificate (besides "+snapshot.TLSServerName+")")
	fs.DurationVar(&c.SnapshotAccessRefresh, "snapshot-access-refresh", DefaultAccessRefresh,
		"how often the snapshot server's TLS Secret, CA ConfigMap and token Secrets are re-read (a rotation shows within it)")
	fs.StringVar(&c.MetricsBindAddress, "metrics-bind-address", ":8080", `address of the Prometheus metrics endpoint ("0" disables it)`)
	fs.StringVar(&c.HealthProbeBindAddress, "health-probe-bind-address", ":8082", "address of /healthz and /readyz (ready once a snapshot is served)")
	fs.BoolVar(&c.LeaderElect, "leader-elect", false, "elect a leader among operator replicas; only the leader writes status and the snapshot Secret")
	fs.StringVar(&c.Namespace, "namespace", "", "namespace whose objects are compiled (empty: all namespaces)")
	fs.StringVar(&c.OperatorNamespace, "snapshot-secret-namespace", defaultOperatorNamespace(),
		"namespace of the snapshot Secret and the leader election lease (from $POD_NAMESPACE, else the service account's namespace, else llm-gateway-system)")
	fs.StringVar(&c.RedisURL, "redis-url", "", "Redis holding the gateway's budget counters (redis:// or rediss://); when set, "+
		"TeamBudget status shows spend, reserved, remaining and the phase from them (empty: limits and resets only)")
	fs.DurationVar(&c.BudgetRefresh, "budget-refresh-interval", DefaultBudgetRefresh,
		"how often each TeamBudget's counters are re-read from --redis-url (spend, Soft limits, runaway trips and the store's reachability show within it)")
	c.DefaultBudget.Register(fs)
}

func defaultOperatorNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "llm-gateway-system"
}

// LeaderElectionID names the lease the operator replicas compete for.
const LeaderElectionID = "llm-gateway-operator.llmgateway.posthog.com"

// Run starts the operator against a cluster and blocks until ctx ends.
func Run(ctx context.Context, restConfig *rest.Config, cfg Config) error {
	scheme, err := NewScheme()
	if err != nil {
		return err
	}
	mopts := ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: cfg.MetricsBindAddress},
		HealthProbeBindAddress:        cfg.HealthProbeBindAddress,
		LeaderElection:                cfg.LeaderElect,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       cfg.OperatorNamespace,
		LeaderElectionReleaseOnCancel: true,
	}
	if cfg.Namespace != "" {
		mopts.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{cfg.Namespace: {}}}
	}
	mgr, err := ctrl.NewManager(restConfig, mopts)
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	opts := Options{
		WatchNamespace:       cfg.Namespace,
		OperatorNamespace:    cfg.OperatorNamespace,
		SnapshotAddr:         cfg.SnapshotListen,
		SnapshotTokenSecrets: splitList(cfg.SnapshotTokenSecrets),
		SnapshotService:      cfg.SnapshotService,
		AccessRefresh:        cfg.SnapshotAccessRefresh,
		DefaultBudget:        cfg.DefaultBudget,
		BudgetRefresh:        cfg.BudgetRefresh,
	}
	if cfg.RedisURL != "" {
		redis.SetLogger(redisLogger{log: ctrl.Log.WithName("redis")})
		r, err := NewRedisBudgetState(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("--redis-url: %w", err)
		}
		defer r.Close()
		opts.BudgetState = r
	}
	op, err := Setup(ctx, mgr, opts)
	if err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("snapshot", op.Ready); err != nil {
		return fmt.Errorf("add readiness check: %w", err)
	}
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run manager: %w", err)
	}
	return nil
}

var _ manager.LeaderElectionRunnable = everyReplica(nil)

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
