package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// DevKey is the dev team's API key, as in hack/dev (make run).
const DevKey = "sk-llm-gateway-dev"

// Snapshot is the hack/dev configuration (make run) with every backend on the fake provider at
// fakeURL: OpenAI -> Azure OpenAI and Anthropic -> Bedrock routes, team dev with key
// sk-llm-gateway-dev. Only the budgets differ: dev's cluster default (600 requests a minute)
// would reject a load test, so team dev gets Hard day and month limits and a requests-per-minute
// limit generous enough that nothing is rejected, and every call is still reserved and settled.
func Snapshot(fakeURL string) (*snapshot.Snapshot, error) {
	primary := snapshot.Timeouts{ConnectMs: 2000, FirstByteMs: 30000, IdleMs: 30000}
	breaker := snapshot.CircuitBreaker{ConsecutiveFailures: 3, CooldownMs: 10000}
	failover := snapshot.Failover{On: []string{snapshot.FailoverConnectionError, snapshot.FailoverTimeout,
		snapshot.FailoverServerError, snapshot.FailoverOverloaded, snapshot.FailoverRateLimited}, MaxAttempts: 2}
	generous := func(source string) snapshot.Budget {
		return snapshot.Budget{Source: source, OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject,
			RequestsPerMinute: 100_000_000,
			Limits: []snapshot.SpendLimit{
				{Window: snapshot.WindowDay, LimitMicros: 1_000_000 * 1_000_000, Enforcement: snapshot.EnforceHard},
				{Window: snapshot.WindowMonth, LimitMicros: 10_000_000 * 1_000_000, Enforcement: snapshot.EnforceHard},
			}}
	}
	teamBudget := generous("default/dev-load")
	s := &snapshot.Snapshot{
		Backends: []snapshot.Backend{
			{Name: "default/anthropic", Provider: snapshot.ProviderAnthropic, Endpoint: fakeURL,
				Credentials: snapshot.Credentials{APIKey: "sk-ant-dev-fake"}, Timeouts: primary, CircuitBreaker: breaker},
			{Name: "default/bedrock", Provider: snapshot.ProviderBedrock, Endpoint: fakeURL, Region: "us-east-1",
				Credentials: snapshot.Credentials{AWSAccessKeyID: "AKIDDEVFAKE", AWSSecretAccessKey: "dev-fake-secret"},
				ModelMap:    map[string]string{"claude-sonnet-4-5": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}},
			{Name: "default/openai", Provider: snapshot.ProviderOpenAI, Endpoint: fakeURL,
				Credentials: snapshot.Credentials{APIKey: "sk-openai-dev-fake"}, Timeouts: primary, CircuitBreaker: breaker},
			{Name: "default/azure-openai", Provider: snapshot.ProviderAzureOpenAI, Endpoint: fakeURL, AzureAPIVersion: "2024-10-21",
				Credentials: snapshot.Credentials{APIKey: "azure-dev-fake"}, ModelMap: map[string]string{"gpt-4o": "gpt-4o-dev"}},
		},
		Routes: []snapshot.Route{
			{Name: "default/anthropic", Shape: snapshot.ShapeAnthropic, Models: []string{"claude-sonnet-4-5"}, Prefixes: []string{"claude-"},
				Backends: []snapshot.RouteBackend{{Backend: "default/anthropic", Weight: 1}, {Backend: "default/bedrock", Priority: 1, Weight: 1}},
				Failover: failover, Limits: snapshot.RequestLimits{DefaultMaxTokens: 1024, MaxMaxTokens: 8192}},
			{Name: "default/openai", Shape: snapshot.ShapeOpenAI, Models: []string{"gpt-4o"}, Prefixes: []string{"gpt-"},
				Backends: []snapshot.RouteBackend{{Backend: "default/openai", Weight: 1}, {Backend: "default/azure-openai", Priority: 1, Weight: 1}},
				Failover: failover, Limits: snapshot.RequestLimits{MaxMaxTokens: 8192}},
		},
		Teams: []snapshot.Team{{Name: "dev", APIKeyHashes: []string{snapshot.HashAPIKey(DevKey)}, Products: []string{"playground"},
			Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}, Budget: &teamBudget}},
		DefaultBudget: generous("default/cluster-default"),
	}
	if err := s.Seal(); err != nil {
		return nil, fmt.Errorf("seal load snapshot: %w", err)
	}
	return s, nil
}

// Fake is a running bin/fakeprovider.
type Fake struct {
	*Proc
	URL    string
	CAFile string // its certificate when it serves HTTPS
	admin  *http.Client
}

// StartFake starts bin/fakeprovider with its request log off; with tls it serves HTTPS
// (HTTP/2) under a self-signed certificate written to dir/<name>.pem.
func StartFake(ctx context.Context, binDir, dir, name, cpu string, tls bool) (*Fake, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"--listen", addr, "--record-requests", "0", "--log-level", "warn"}
	f := &Fake{URL: "http://" + addr}
	if tls {
		f.URL, f.CAFile = "https://"+addr, filepath.Join(dir, name+".pem")
		args = append(args, "--tls-cert-out", f.CAFile)
	}
	if f.Proc, err = StartProc(dir, name, cpu, nil, filepath.Join(binDir, "fakeprovider"), args...); err != nil {
		return nil, err
	}
	f.admin = &http.Client{Timeout: 10 * time.Second}
	if tls {
		if f.admin.Transport, err = waitTLSTransport(ctx, f); err != nil {
			_ = f.Stop(5 * time.Second)
			return nil, err
		}
	}
	if err := waitHTTP(ctx, f.admin, f.URL+"/_fake/health", f.Proc, 20*time.Second); err != nil {
		_ = f.Stop(5 * time.Second)
		return nil, err
	}
	return f, nil
}

// waitTLSTransport waits for the fake's certificate file and returns a transport trusting it.
func waitTLSTransport(ctx context.Context, f *Fake) (*http.Transport, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		pem, err := os.ReadFile(f.CAFile)
		if err == nil {
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("no certificate in %s", f.CAFile)
			}
			return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, nil
		}
		if dead, werr := f.Exited(); dead {
			return nil, fmt.Errorf("%s exited (%v): %s", f.Name, werr, f.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("%s wrote no certificate: %w", f.Name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SetScenario sets the fake's default scenario for provider (nil clears it).
func (f *Fake) SetScenario(ctx context.Context, provider string, sc map[string]any) error {
	var body []byte
	if sc != nil {
		var err error
		if body, err = json.Marshal(sc); err != nil {
			return fmt.Errorf("encode scenario: %w", err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL+"/_fake/scenario?provider="+provider, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("set fake scenario: %w", err)
	}
	resp, err := f.admin.Do(req)
	if err != nil {
		return fmt.Errorf("set fake scenario: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("set fake scenario: status %d", resp.StatusCode)
	}
	return nil
}

// Gateway is a running bin/gateway.
type Gateway struct {
	*Proc
	URL, Admin string
	admin      *http.Client
}

// GatewayOptions say how to start one bin/gateway.
type GatewayOptions struct {
	Name     string // process name: names its log, state dir and events file
	CPU      string // taskset CPU list; empty: not pinned
	Snapshot string // snapshot file
	RedisURL string // --redis-url (Redis budgets and outbox); empty: standalone
	CAFile   string // trusted as SSL_CERT_FILE (the TLS fake provider's certificate)
	Flags    []string
	Env      []string // extra environment (e.g. GOGC=400)
}

// StartGateway starts bin/gateway standalone on the snapshot file (recording to the JSONL
// file outbox under dir, one access log line per call at the default info level).
func StartGateway(ctx context.Context, binDir, dir string, o GatewayOptions) (*Gateway, error) {
	proxy, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"--snapshot", o.Snapshot, "--listen", proxy, "--admin-listen", admin,
		"--state-dir", filepath.Join(dir, o.Name+"-state"), "--events-file", filepath.Join(dir, o.Name+"-events.jsonl"),
		"--pod-name", o.Name, "--drain-timeout", "2s"}
	if o.RedisURL != "" {
		args = append(args, "--redis-url", o.RedisURL)
	}
	args = append(args, o.Flags...)
	env := o.Env
	if o.CAFile != "" {
		env = append(env, "SSL_CERT_FILE="+o.CAFile)
	}
	g := &Gateway{URL: "http://" + proxy, Admin: "http://" + admin, admin: &http.Client{Timeout: 60 * time.Second}}
	if g.Proc, err = StartProc(dir, o.Name, o.CPU, env, filepath.Join(binDir, "gateway"), args...); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, g.admin, g.Admin+"/readyz", g.Proc, 30*time.Second); err != nil {
		_ = g.Stop(5 * time.Second)
		return nil, err
	}
	return g, nil
}

// Metric reads one unlabelled sample (go_goroutines, go_memstats_heap_inuse_bytes, ...) from
// the gateway's /metrics.
func (g *Gateway) Metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.Admin+"/metrics", nil)
	if err != nil {
		return 0, fmt.Errorf("read metric %s: %w", name, err)
	}
	resp, err := g.admin.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read metric %s: %w", name, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return 0, fmt.Errorf("read metric %s: %w", name, err)
	}
	for line := range strings.Lines(buf.String()) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no metric %s at %s/metrics", name, g.Admin)
}

// SaveProfile saves <admin>/debug/pprof/<profile> (the gateway runs with --pprof) to path.
func (g *Gateway) SaveProfile(ctx context.Context, profile, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.Admin+"/debug/pprof/"+profile, nil)
	if err != nil {
		return fmt.Errorf("profile %s: %w", profile, err)
	}
	resp, err := g.admin.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", profile, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: status %d (is the gateway running with --pprof?)", profile, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile %s: %w", profile, err)
	}
	if _, err := f.ReadFrom(resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("profile %s: %w", profile, err)
	}
	return f.Close()
}

// OpenStreams is the gateway's count of open streams (/admin/streams).
func (g *Gateway) OpenStreams(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.Admin+"/admin/streams", nil)
	if err != nil {
		return 0, fmt.Errorf("read open streams: %w", err)
	}
	resp, err := g.admin.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read open streams: %w", err)
	}
	defer resp.Body.Close()
	var v struct {
		Total int `json:"total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, fmt.Errorf("decode /admin/streams: %w", err)
	}
	return v.Total, nil
}

// Redis is a running redis-server (persistence off) on a loopback port.
type Redis struct {
	*Proc
	URL    string
	client *redis.Client
}

// StartRedis starts redis-server in dir.
func StartRedis(ctx context.Context, dir, cpu string) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server is needed for the budgets run (apt-get install redis-server): %w", err)
	}
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	rdir := filepath.Join(dir, "redis")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return nil, fmt.Errorf("redis dir: %w", err)
	}
	p, err := StartProc(dir, "redis", cpu, nil, bin, "--port", port, "--bind", "127.0.0.1", "--dir", rdir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning")
	if err != nil {
		return nil, err
	}
	r := &Redis{Proc: p, URL: "redis://" + addr + "/0", client: redis.NewClient(&redis.Options{Addr: addr})}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.client.Ping(ctx).Err()
		if err == nil {
			return r, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.Close()
			return nil, fmt.Errorf("redis-server on %s did not come up: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CommandStat is one command's counters from INFO commandstats.
type CommandStat struct {
	Calls int64 `json:"calls"`
	Usec  int64 `json:"usec"`
}

// CommandStats reads INFO commandstats: calls and CPU microseconds per command.
func (r *Redis) CommandStats(ctx context.Context) (map[string]CommandStat, error) {
	info, err := r.client.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("redis INFO commandstats: %w", err)
	}
	out := map[string]CommandStat{}
	for line := range strings.Lines(info) {
		// cmdstat_evalsha:calls=10,usec=230,usec_per_call=23.00,rejected_calls=0,failed_calls=0
		name, rest, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, "cmdstat_")), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		var st CommandStat
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				st.Calls = n
			case "usec":
				st.Usec = n
			}
		}
		out[name] = st
	}
	return out, nil
}

// Close stops redis-server.
func (r *Redis) Close() {
	_ = r.client.Close()
	_ = r.Stop(5 * time.Second)
}
