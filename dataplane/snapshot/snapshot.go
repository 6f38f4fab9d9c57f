// Package snapshot is the contract between the operator and the gateway pods: the whole
// configuration a pod serves, compiled from the custom resources and their Secrets.
//
// It imports only the standard library. The operator builds a Snapshot, calls Seal (which
// validates it and stamps Version with the content hash) and publishes it; a pod decodes it,
// calls Validate again and only then swaps it in. Everything is sorted so that the same input
// always produces the same bytes and the same Version.
package snapshot

// SchemaVersion is bumped on any incompatible change to the types below. A pod refuses a
// snapshot whose schemaVersion it does not know and keeps its last-known-good one.
const SchemaVersion = 1

// Shape is the wire shape a route accepts and a backend serves. The gateway never translates
// between shapes.
type Shape string

const (
	ShapeOpenAI    Shape = "OpenAI"
	ShapeAnthropic Shape = "Anthropic"
)

// Provider is the kind of upstream account a backend talks to.
type Provider string

const (
	ProviderOpenAI      Provider = "OpenAI"
	ProviderAnthropic   Provider = "Anthropic"
	ProviderAzureOpenAI Provider = "AzureOpenAI"
	ProviderBedrock     Provider = "Bedrock"
)

// ShapeOf returns the wire shape a provider serves: Anthropic and Bedrock speak the Anthropic
// Messages shape, OpenAI and Azure OpenAI the OpenAI shape. Unknown providers return "".
func ShapeOf(p Provider) Shape {
	switch p {
	case ProviderOpenAI, ProviderAzureOpenAI:
		return ShapeOpenAI
	case ProviderAnthropic, ProviderBedrock:
		return ShapeAnthropic
	}
	return ""
}

// Snapshot is everything a gateway pod needs. Slices are sorted by Name (see Normalize).
type Snapshot struct {
	SchemaVersion int `json:"schemaVersion"`
	// Version is the content hash of everything else (see Hash). Set by Seal.
	Version  string    `json:"version"`
	Backends []Backend `json:"backends"`
	Routes   []Route   `json:"routes"`
	Teams    []Team    `json:"teams"`
	// DefaultBudget applies to any team that has no TeamBudget of its own, including teams a
	// pod meets only through a product header. No team is unlimited by omission.
	DefaultBudget Budget `json:"defaultBudget"`
}

// Credentials for one upstream account. Only the fields of the backend's provider are set.
// They are secret: never log them.
type Credentials struct {
	// APIKey: OpenAI bearer key, Anthropic x-api-key, Azure api-key.
	APIKey string `json:"apiKey,omitempty"`
	// BearerToken: a Bedrock API key (Authorization: Bearer) or an Azure Entra ID token.
	BearerToken string `json:"bearerToken,omitempty"`
	// AWS static credentials for SigV4 (Bedrock).
	AWSAccessKeyID     string `json:"awsAccessKeyId,omitempty"`
	AWSSecretAccessKey string `json:"awsSecretAccessKey,omitempty"`
	AWSSessionToken    string `json:"awsSessionToken,omitempty"`
}

// Timeouts of one backend, in milliseconds. Zero means the gateway's built-in default.
type Timeouts struct {
	ConnectMs   int64 `json:"connectMs,omitempty"`
	FirstByteMs int64 `json:"firstByteMs,omitempty"`
	// IdleMs bounds the gap between two stream events (and between body reads).
	IdleMs int64 `json:"idleMs,omitempty"`
}

// CircuitBreaker opens after ConsecutiveFailures failover-class failures and stays open for
// CooldownMs (or the upstream's retry-after, when longer), then lets one probe through.
type CircuitBreaker struct {
	ConsecutiveFailures int   `json:"consecutiveFailures"`
	CooldownMs          int64 `json:"cooldownMs"`
}

// ModelPrice is a per-backend price override, in micro-dollars per million tokens
// (USD per token x 1e12), so that every price is an integer. Zero-valued optional rates fall
// back to the catalog's rule for that provider.
type ModelPrice struct {
	// Model is the canonical model name the price applies to.
	Model               string `json:"model"`
	InputPerMTok        int64  `json:"inputPerMTok"`
	OutputPerMTok       int64  `json:"outputPerMTok"`
	CacheReadPerMTok    int64  `json:"cacheReadPerMTok,omitempty"`
	CacheWrite5mPerMTok int64  `json:"cacheWrite5mPerMTok,omitempty"`
	CacheWrite1hPerMTok int64  `json:"cacheWrite1hPerMTok,omitempty"`
	ContextWindow       int64  `json:"contextWindow,omitempty"`
	MaxOutputTokens     int64  `json:"maxOutputTokens,omitempty"`
}

// Backend is one upstream account (a ProviderBackend).
type Backend struct {
	// Name is "namespace/name" of the ProviderBackend.
	Name     string   `json:"name"`
	Provider Provider `json:"provider"`
	// Endpoint is the base URL, e.g. https://api.openai.com, https://api.anthropic.com,
	// https://bedrock-runtime.us-east-1.amazonaws.com, https://myres.openai.azure.com.
	Endpoint    string      `json:"endpoint"`
	Credentials Credentials `json:"credentials"`
	// Region is the AWS region (Bedrock; required there).
	Region string `json:"region,omitempty"`
	// AzureAPIVersion is the api-version query parameter for Azure deployment URLs. The value
	// "v1" selects the /openai/v1/ URL form, which needs no api-version.
	AzureAPIVersion string `json:"azureAPIVersion,omitempty"`
	// ModelMap maps a canonical model to the provider's model id: a Bedrock model or inference
	// profile id (us.anthropic.claude-sonnet-4-5-20250929-v1:0) or an Azure deployment name.
	ModelMap       map[string]string `json:"modelMap,omitempty"`
	Timeouts       Timeouts          `json:"timeouts"`
	CircuitBreaker CircuitBreaker    `json:"circuitBreaker"`
	// MaxConcurrent caps in-flight requests to this backend per pod; 0 means no cap.
	MaxConcurrent int `json:"maxConcurrent,omitempty"`
	// Prices override the catalog for models served by this backend.
	Prices []ModelPrice `json:"prices,omitempty"`
}

// RouteBackend is one target of a route. Lower Priority is tried first; Weight splits traffic
// between targets of the same priority.
type RouteBackend struct {
	Backend  string `json:"backend"`
	Priority int    `json:"priority"`
	Weight   int    `json:"weight"`
}

// Failure classes a route may fail over on.
const (
	FailoverConnectionError = "ConnectionError" // dial, TLS, reset before response headers
	FailoverTimeout         = "Timeout"         // no response headers or first event within the first-byte timeout
	FailoverServerError     = "ServerError"     // 5xx, Anthropic api_error/timeout_error, Bedrock server exceptions
	FailoverOverloaded      = "Overloaded"      // Anthropic 529 overloaded_error, Bedrock ModelNotReady/ServiceUnavailable
	FailoverRateLimited     = "RateLimited"     // provider 429 (the backend then cools down for its retry-after)
	FailoverQuotaExhausted  = "QuotaExhausted"  // insufficient_quota, billing_error, ServiceQuotaExceeded
	FailoverUpstreamAuth    = "UpstreamAuth"    // our upstream credential was refused (401/403)
	FailoverNotFound        = "NotFound"        // model or deployment missing on that backend (config)
)

// AllFailoverClasses lists every class, in documentation order.
var AllFailoverClasses = []string{
	FailoverConnectionError, FailoverTimeout, FailoverServerError, FailoverOverloaded,
	FailoverRateLimited, FailoverQuotaExhausted, FailoverUpstreamAuth, FailoverNotFound,
}

// Failover is a route's failover policy.
type Failover struct {
	// On lists the failure classes that move to the next target. Client errors (4xx), content
	// policy results, the gateway's own limits and client cancellation never do.
	On []string `json:"on"`
	// MaxAttempts bounds attempts per request across all targets (>= 1).
	MaxAttempts int `json:"maxAttempts"`
	// PerTryTimeoutMs bounds one attempt until its first byte; 0 uses the backend's first-byte timeout.
	PerTryTimeoutMs int64 `json:"perTryTimeoutMs,omitempty"`
}

// RequestLimits of a route.
type RequestLimits struct {
	// DefaultMaxTokens is set when the request names no output limit; 0 leaves it unset.
	DefaultMaxTokens int64 `json:"defaultMaxTokens,omitempty"`
	// MaxMaxTokens clamps the request's output limit; 0 means no clamp.
	MaxMaxTokens int64 `json:"maxMaxTokens,omitempty"`
	// MaxBodyBytes rejects larger request bodies; 0 means the gateway default.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
}

// Route is one LLMRoute: which models it serves, in which shape, and where it sends them.
type Route struct {
	// Name is "namespace/name" of the LLMRoute.
	Name  string `json:"name"`
	Shape Shape  `json:"shape"`
	// Models are canonical model names served exactly.
	Models []string `json:"models"`
	// Aliases map a client-facing name to a canonical model (e.g. "claude-sonnet" -> "claude-sonnet-4-5").
	Aliases map[string]string `json:"aliases,omitempty"`
	// Prefixes claim every model whose canonical name starts with one of them (e.g. "claude-").
	Prefixes []string       `json:"prefixes,omitempty"`
	Backends []RouteBackend `json:"backends"`
	Failover Failover       `json:"failover"`
	Limits   RequestLimits  `json:"limits"`
}

// Rollout stages.
const (
	StageLegacy  = "Legacy"
	StageCanary  = "Canary"
	StageGateway = "Gateway"
)

// Canary stickiness keys.
const (
	StickyDistinctID = "DistinctId"
	StickyTraceID    = "TraceId"
)

// Rollout is a team's record at ingress (from its TeamRollout).
type Rollout struct {
	Stage string `json:"stage"`
	// CanaryPercent of the team's requests go to the gateway when Stage is Canary (0-100).
	CanaryPercent int `json:"canaryPercent,omitempty"`
	// StickyBy chooses the request attribute that keeps a caller on one side of the canary.
	StickyBy string `json:"stickyBy,omitempty"`
	// LegacyUpstream is the base URL of the legacy gateway for this team's legacy traffic.
	LegacyUpstream string `json:"legacyUpstream,omitempty"`
	// LegacyAPIKey, when set, replaces the client's credential on legacy traffic.
	LegacyAPIKey string `json:"legacyAPIKey,omitempty"`
}

// Spend windows, calendar-aligned in UTC.
const (
	WindowHour  = "Hour"
	WindowDay   = "Day"
	WindowWeek  = "Week" // ISO week, starting Monday 00:00 UTC
	WindowMonth = "Month"
)

// Enforcement of a spend limit.
const (
	EnforceHard = "Hard" // reject a call that would exceed it
	EnforceSoft = "Soft" // condition, event and metric only
)

// Behaviour when the shared counter store (Redis) cannot be reached.
const (
	FailClosed = "FailClosed"
	FailOpen   = "FailOpen"
)

// Admission policy for models with no price.
const (
	UnpricedReject = "Reject"
	UnpricedAllow  = "Allow"
)

// SpendLimit is one window of a budget, in micro-dollars (USD x 1e6).
type SpendLimit struct {
	Window      string `json:"window"`
	LimitMicros int64  `json:"limitMicros"`
	Enforcement string `json:"enforcement"`
}

// Runaway is the spend-velocity breaker: spend above SpendPerMinuteMicros within one minute
// suspends the team for CooldownSeconds.
type Runaway struct {
	SpendPerMinuteMicros int64 `json:"spendPerMinuteMicros"`
	CooldownSeconds      int64 `json:"cooldownSeconds"`
}

// Budget is a team's spending and rate policy (a TeamBudget, or the cluster default).
type Budget struct {
	// Source names where the budget came from: "namespace/name" of a TeamBudget, or "builtin".
	Source string       `json:"source"`
	Limits []SpendLimit `json:"limits"`
	// MaxRequestCostMicros rejects a single call whose worst-case cost is above it; 0 = none.
	MaxRequestCostMicros int64 `json:"maxRequestCostMicros,omitempty"`
	// Rate limits across all pods; 0 means no limit.
	RequestsPerMinute int64    `json:"requestsPerMinute,omitempty"`
	TokensPerMinute   int64    `json:"tokensPerMinute,omitempty"`
	MaxConcurrent     int64    `json:"maxConcurrent,omitempty"`
	Runaway           *Runaway `json:"runaway,omitempty"`
	// Suspended is the kill switch: new calls are rejected and open streams are ended.
	Suspended          bool   `json:"suspended,omitempty"`
	OnStoreUnavailable string `json:"onStoreUnavailable"`
	// FailOpenAllowanceMicros is the per-pod spend a team may make per window while the store is
	// unreachable under FailOpen; 0 means the gateway derives a conservative default.
	FailOpenAllowanceMicros int64 `json:"failOpenAllowanceMicros,omitempty"`
	// Unpriced decides admission of calls to models with no known price.
	Unpriced string `json:"unpriced"`
}

// Team is one team: how its callers authenticate, its ingress rollout and its budget.
type Team struct {
	Name string `json:"name"`
	// APIKeyHashes are lowercase hex SHA-256 digests of the team's gateway API keys.
	APIKeyHashes []string `json:"apiKeyHashes,omitempty"`
	// Products are the product names that identify the team's traffic (path prefix
	// /{product}/v1/... or X-PostHog-Product).
	Products []string `json:"products,omitempty"`
	Rollout  Rollout  `json:"rollout"`
	// Budget is nil when the team has no TeamBudget: DefaultBudget applies.
	Budget *Budget `json:"budget,omitempty"`
	// PostHogAPIKey is the project API key events of this team go to; empty uses the gateway's.
	PostHogAPIKey string `json:"posthogAPIKey,omitempty"`
	// PostHogHost overrides the capture host for this team's events.
	PostHogHost string `json:"posthogHost,omitempty"`
}

// EffectiveBudget returns the team's own budget or the snapshot's default.
func (s *Snapshot) EffectiveBudget(t *Team) *Budget {
	if t != nil && t.Budget != nil {
		return t.Budget
	}
	return &s.DefaultBudget
}
