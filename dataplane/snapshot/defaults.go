package snapshot

import "time"

// Defaults of the contract. Each has this one home: the operator's compiler fills them in when
// a resource leaves a setting out, and the gateway uses them when a snapshot field is zero
// (a snapshot written by hand, or an older one), so both sides always agree.

// Circuit breaker of a backend that sets none (CircuitBreaker zero fields).
const (
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
)

// Timeouts of a backend that sets none (Timeouts zero fields).
const (
	DefaultConnectTimeout   = 5 * time.Second
	DefaultFirstByteTimeout = 60 * time.Second
	DefaultIdleTimeout      = 60 * time.Second
)

// Public endpoints of the providers that have one.
const (
	EndpointOpenAI    = "https://api.openai.com"
	EndpointAnthropic = "https://api.anthropic.com"
)

// DefaultEndpoint returns the base URL a backend of provider p uses when it names none:
// the provider's public API, or Bedrock Runtime in the backend's region. It returns "" for
// Azure OpenAI (every resource has its own endpoint), for Bedrock without a region and for an
// unknown provider.
func DefaultEndpoint(p Provider, region string) string {
	switch p {
	case ProviderOpenAI:
		return EndpointOpenAI
	case ProviderAnthropic:
		return EndpointAnthropic
	case ProviderBedrock:
		if region != "" {
			return "https://bedrock-runtime." + region + ".amazonaws.com"
		}
	}
	return ""
}
