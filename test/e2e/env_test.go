// Package e2e tests the gateway end to end: official OpenAI and Anthropic SDKs, pointed at
// the gateway by base URL only, through the gateway to the fake provider (all four wire
// formats). Most tests run the gateway in-process (httptest); process_test.go runs bin/gateway
// and bin/fakeprovider as processes.
package e2e

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/posthog/llm-gateway/dataplane/metrics"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/provider/adapters"
	"github.com/posthog/llm-gateway/dataplane/record/recordtest"
	"github.com/posthog/llm-gateway/dataplane/server"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

func TestMain(m *testing.M) {
	code := m.Run()
	cleanupBinaries()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// Upstream credentials the fake provider insists on; the clients' keys are the gateway's.
const (
	upOpenAI    = "up-openai-key"
	upAnthropic = "up-anthropic-key"
	upAzure     = "up-azure-key"
	awsKeyID    = "AKIDGATEWAYE2E"
	awsSecret   = "gateway/e2e+secret"
	bedrockRgn  = "us-east-1"

	teamKey      = "sk-gw-team-alpha"
	azureDeploy  = "my-gpt-4o"
	azureModel   = "gpt-4o-2024-11-20"
	bedrockModel = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
)

func fakeConfig() fakeprovider.Config {
	return fakeprovider.Config{
		OpenAIKey: upOpenAI, AnthropicKey: upAnthropic, AzureKey: upAzure,
		Bedrock:          fakeprovider.BedrockAuth{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret, Region: bedrockRgn},
		AzureDeployments: map[string]string{azureDeploy: azureModel},
		Logger:           slog.New(slog.DiscardHandler),
	}
}

// devSnapshot is the e2e configuration: OpenAI with Azure behind it, Anthropic with Bedrock
// behind it, all served by the fake provider at fake.
func devSnapshot(fake, legacy string) *snapshot.Snapshot {
	all := snapshot.AllFailoverClasses
	return &snapshot.Snapshot{
		Backends: []snapshot.Backend{
			{Name: "llm/openai", Provider: snapshot.ProviderOpenAI, Endpoint: fake, Credentials: snapshot.Credentials{APIKey: upOpenAI}},
			{Name: "llm/azure", Provider: snapshot.ProviderAzureOpenAI, Endpoint: fake, AzureAPIVersion: "2024-10-21",
				Credentials: snapshot.Credentials{APIKey: upAzure}, ModelMap: map[string]string{"gpt-4o": azureDeploy}},
			{Name: "llm/anthropic", Provider: snapshot.ProviderAnthropic, Endpoint: fake, Credentials: snapshot.Credentials{APIKey: upAnthropic}},
			{Name: "llm/bedrock", Provider: snapshot.ProviderBedrock, Endpoint: fake, Region: bedrockRgn,
				Credentials: snapshot.Credentials{AWSAccessKeyID: awsKeyID, AWSSecretAccessKey: awsSecret},
				ModelMap:    map[string]string{"claude-sonnet-4-5": bedrockModel}},
		},
		Routes: []snapshot.Route{
			{Name: "llm/gpt", Shape: snapshot.ShapeOpenAI, Models: []string{"gpt-4o"},
				Backends: []snapshot.RouteBackend{{Backend: "llm/openai", Priority: 0, Weight: 1}, {Backend: "llm/azure", Priority: 1, Weight: 1}},
				Failover: snapshot.Failover{On: all, MaxAttempts: 2}, Limits: snapshot.RequestLimits{MaxBodyBytes: 64 << 10}},
			{Name: "llm/claude", Shape: snapshot.ShapeAnthropic, Models: []string{"claude-sonnet-4-5"},
				Backends: []snapshot.RouteBackend{{Backend: "llm/anthropic", Priority: 0, Weight: 1}, {Backend: "llm/bedrock", Priority: 1, Weight: 1}},
				Failover: snapshot.Failover{On: all, MaxAttempts: 2}, Limits: snapshot.RequestLimits{MaxBodyBytes: 64 << 10, MaxMaxTokens: 4096}},
		},
		Teams: []snapshot.Team{
			{Name: "alpha", APIKeyHashes: []string{snapshot.HashAPIKey(teamKey)}, Products: []string{"max"},
				Rollout: snapshot.Rollout{Stage: snapshot.StageGateway}},
		},
		DefaultBudget: snapshot.Budget{Source: "builtin", OnStoreUnavailable: snapshot.FailOpen, Unpriced: snapshot.UnpricedAllow},
	}
}

// env is an in-process gateway in front of an in-process fake provider.
type env struct {
	fake    *fakeprovider.Server
	fakeSrv *httptest.Server
	gw      *server.Gateway
	gwSrv   *httptest.Server
	rec     *recordtest.Memory
	// upstreamGone receives one value per upstream request whose connection closed while
	// the fake provider was still answering it.
	upstreamGone chan string
}

func newEnv(t *testing.T, mutate func(*snapshot.Snapshot)) *env {
	t.Helper()
	e := &env{fake: fakeprovider.New(fakeConfig()), rec: &recordtest.Memory{}, upstreamGone: make(chan string, 16)}
	e.fakeSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.fake.ServeHTTP(w, r)
		// The server cancels the request context after the handler returns; before that,
		// only a closed connection cancels it.
		if r.Context().Err() != nil {
			e.upstreamGone <- r.URL.Path
		}
	}))
	gw, err := server.New(server.Options{
		Logger:  slog.New(slog.DiscardHandler),
		Metrics: metrics.New(),
		NewAdapter: func(b *snapshot.Backend) (provider.Adapter, error) {
			return adapters.New(b, adapters.Options{})
		},
		Recorder: e.rec,
	})
	require.NoError(t, err)
	e.gw = gw
	s := devSnapshot(e.fakeSrv.URL, "")
	if mutate != nil {
		mutate(s)
	}
	require.NoError(t, s.Seal())
	require.NoError(t, gw.Apply(s, "test"))
	e.gwSrv = httptest.NewServer(gw)
	t.Cleanup(func() {
		e.fake.Close()
		e.gwSrv.CloseClientConnections()
		e.gwSrv.Close()
		e.fakeSrv.CloseClientConnections()
		e.fakeSrv.Close()
		gw.CloseIdleConnections()
		http.DefaultClient.CloseIdleConnections()
	})
	return e
}

func (e *env) openai(opts ...ooption.RequestOption) openai.Client {
	return openai.NewClient(append([]ooption.RequestOption{
		ooption.WithBaseURL(e.gwSrv.URL + "/v1/"), ooption.WithAPIKey(teamKey), ooption.WithMaxRetries(0),
	}, opts...)...)
}

func (e *env) anthropic(opts ...aoption.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]aoption.RequestOption{
		aoption.WithoutEnvironmentDefaults(), aoption.WithBaseURL(e.gwSrv.URL), aoption.WithAPIKey(teamKey), aoption.WithMaxRetries(0),
	}, opts...)...)
}

// upstreamRequests counts what reached the fake provider.
func (e *env) upstreamRequests() int { return len(e.fake.Requests()) }

func drain(r io.Reader) { _, _ = io.Copy(io.Discard, r) }

func jsonBody(s string) io.Reader { return strings.NewReader(s) }
