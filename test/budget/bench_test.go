package budget_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/metrics"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/adapters"
	"github.com/posthog/llm-gateway/dataplane/server"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/test/fakeprovider"
	"github.com/posthog/llm-gateway/test/redistest"
)

// benchGateway is an in-process gateway (the same server package bin/gateway runs) in front
// of the in-process fake provider.
type benchGateway struct {
	srv *httptest.Server
	bm  *budget.Manager
}

func newBenchGateway(b *testing.B, fakeURL string, store budget.Store) *benchGateway {
	var bm *budget.Manager
	var bud server.Budget
	if store != nil {
		bm = budget.NewManager(store, budget.Options{Logger: quiet(), StoreTimeout: 5 * time.Second})
		bud = bm
	}
	g, err := server.New(server.Options{Logger: quiet(), Metrics: metrics.New(), Budget: bud,
		NewAdapter: func(be *snapshot.Backend) (provider.Adapter, error) { return adapters.New(be, adapters.Options{}) }})
	if err != nil {
		b.Fatal(err)
	}
	snap := &snapshot.Snapshot{
		Backends: []snapshot.Backend{{Name: "ns/anthropic", Provider: snapshot.ProviderAnthropic, Endpoint: fakeURL,
			Credentials: snapshot.Credentials{APIKey: "k"},
			Prices:      []snapshot.ModelPrice{{Model: model, InputPerMTok: inPerMTok, OutputPerMTok: outPerMTok}}}},
		Routes: []snapshot.Route{{Name: "ns/claude", Shape: snapshot.ShapeAnthropic, Models: []string{model},
			Backends: []snapshot.RouteBackend{{Backend: "ns/anthropic", Weight: 1}},
			Failover: snapshot.Failover{On: snapshot.AllFailoverClasses, MaxAttempts: 1}}},
		Teams: []snapshot.Team{team("bench", snapshot.Budget{Limits: dayLimit(1 << 50), RequestsPerMinute: 1 << 40,
			TokensPerMinute: 1 << 50, MaxConcurrent: 1 << 20})},
		DefaultBudget: snapshot.Budget{Source: "builtin", OnStoreUnavailable: snapshot.FailClosed, Unpriced: snapshot.UnpricedReject,
			Limits: dayLimit(1 << 50)},
	}
	if err := snap.Seal(); err != nil {
		b.Fatal(err)
	}
	if err := g.Apply(snap, "bench"); err != nil {
		b.Fatal(err)
	}
	bg := &benchGateway{srv: httptest.NewServer(g), bm: bm}
	b.Cleanup(func() {
		bg.srv.Close()
		if bm != nil {
			_ = bm.Close()
		}
	})
	return bg
}

// run sends n calls with 16 concurrent clients and returns calls per second.
func (g *benchGateway) run(b *testing.B, client *http.Client, n int) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, g.srv.URL+"/v1/messages", strings.NewReader(requestBody))
				req.Header.Set("x-api-key", "bench")
				req.Header.Set("anthropic-version", "2023-06-01")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkGatewayBudgetOverhead measures whole-gateway throughput (non-streaming Anthropic
// calls to the in-process fake provider, 16 concurrent clients) with budgets off, on with the
// memory store and on with Redis on loopback, interleaved in the same run, and reports each
// and the on/off ratios. Run it with: go test -run XXX -bench GatewayBudgetOverhead -benchtime 5x ./test/budget
func BenchmarkGatewayBudgetOverhead(b *testing.B) {
	fake := fakeprovider.New(fakeprovider.Config{})
	fake.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Usage: &cost.Usage{InputTokens: usageIn, OutputTokens: usageOut}})
	fakeSrv := httptest.NewServer(fake)
	defer fakeSrv.Close()
	defer fake.Close()
	rs := redistest.Start(b)
	store, err := budget.NewRedisStore(rs.URL())
	if err != nil {
		b.Fatal(err)
	}
	modes := []struct {
		name string
		gw   *benchGateway
	}{
		{"off", newBenchGateway(b, fakeSrv.URL, nil)},
		{"memory", newBenchGateway(b, fakeSrv.URL, budget.NewMemoryStore())},
		{"redis", newBenchGateway(b, fakeSrv.URL, store)},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	const perRound = 1000
	rate := map[string]float64{}
	for _, m := range modes {
		m.gw.run(b, client, 200) // warm up connections and caches
	}
	b.ResetTimer()
	for b.Loop() {
		for _, m := range modes {
			rate[m.name] += m.gw.run(b, client, perRound)
		}
	}
	for _, m := range modes {
		b.ReportMetric(rate[m.name]/float64(b.N), m.name+"-calls/s")
	}
	b.ReportMetric(rate["redis"]/rate["off"], "redis/off")
	b.ReportMetric(rate["memory"]/rate["off"], "memory/off")
}
