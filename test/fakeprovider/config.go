// Package fakeprovider is one HTTP server that speaks the wire formats of OpenAI (chat
// completions, responses, models), Anthropic (messages, count_tokens), AWS Bedrock
// (InvokeModel, InvokeModelWithResponseStream with AWS event-stream framing, CountTokens; SigV4
// or bearer auth) and Azure OpenAI (deployment, classic responses and v1 routes), exactly as
// the real providers do (docs/providers.md "Provider wire facts"), including usage semantics.
//
// Every response is deterministic and derived from the request and a Scenario: status and
// error body, retry-after, delays, chunk count and pacing, mid-stream faults (error event,
// cut connection, stall, garbage), usage and text. A scenario comes from the server's default
// (settable at runtime, per provider, optionally for the next N requests), from a named
// scenario (X-Fake-Scenario), and from X-Fake-* request headers, in increasing precedence.
//
// Use it in tests with httptest:
//
//	fp := fakeprovider.New(fakeprovider.Config{})
//	srv := httptest.NewServer(fp)
//	defer srv.Close()
//	defer fp.Close() // releases stalled handlers before srv.Close waits for them
//	fp.SetDefaultFor(fakeprovider.Anthropic, &fakeprovider.Scenario{Status: 529})
//
// See docs/fakeprovider.md for flags, headers, the scenario file format and admin endpoints.
package fakeprovider

import (
	"log/slog"
	"time"
)

// Provider is one of the four wire formats the server speaks.
type Provider string

const (
	OpenAI    Provider = "openai"
	Anthropic Provider = "anthropic"
	Bedrock   Provider = "bedrock"
	Azure     Provider = "azure"
)

// Providers lists every provider, in a fixed order.
var Providers = []Provider{OpenAI, Anthropic, Bedrock, Azure}

func (p Provider) index() int {
	switch p {
	case OpenAI:
		return 0
	case Anthropic:
		return 1
	case Bedrock:
		return 2
	case Azure:
		return 3
	}
	return -1
}

// DefaultRecordRequests is the request-log capacity when Config.RecordRequests is 0.
const DefaultRecordRequests = 1024

// DefaultAzureModel is the underlying model reported for an Azure deployment that is not in
// Config.AzureDeployments.
const DefaultAzureModel = "gpt-4o-2024-11-20"

// Config configures a Server. The zero value is a permissive server: any non-empty key is
// accepted, any well-formed SigV4 signature scoped to the bedrock service is accepted.
type Config struct {
	// OpenAIKey, AnthropicKey and AzureKey, when set, are the only keys accepted.
	OpenAIKey    string
	AnthropicKey string
	AzureKey     string
	// Bedrock holds the credentials Bedrock requests are checked against.
	Bedrock BedrockAuth
	// AzureDeployments maps a deployment name to its underlying model (reported as the
	// response model). When set, an unknown deployment is 404 DeploymentNotFound; when empty,
	// every deployment serves DefaultAzureModel.
	AzureDeployments map[string]string
	// Models is what GET /v1/models lists (default: a few OpenAI and Anthropic models).
	Models []string

	// Default is the scenario applied to requests that name none (see Server.SetDefault).
	Default *Scenario
	// Scenarios are the named scenarios selectable with X-Fake-Scenario.
	Scenarios map[string]Scenario

	// RecordRequests is the capacity of the request log (a ring buffer): 0 means
	// DefaultRecordRequests, negative disables recording. Counts per path are always kept.
	RecordRequests int
	// Now is the clock for created timestamps, latencies and SigV4 skew (default time.Now).
	Now func() time.Time
	// Logger receives one debug line per request and admin actions (default slog.Default()).
	Logger *slog.Logger
}

// BedrockAuth is what Bedrock requests must authenticate with.
type BedrockAuth struct {
	// AccessKeyID and SecretAccessKey: when both are set, SigV4 signatures are recomputed
	// and compared; otherwise any well-formed signature for service "bedrock" is accepted.
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken, when set, must equal X-Amz-Security-Token.
	SessionToken string
	// Region, when set, must be the region of the credential scope.
	Region string
	// APIKey, when set, is the only bearer token accepted (Bedrock API keys); otherwise any
	// non-empty bearer token is accepted.
	APIKey string
}
