package snapshot

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// valid returns a small snapshot that passes every rule.
func valid() *Snapshot {
	return &Snapshot{
		Backends: []Backend{
			{Name: "ns/openai", Provider: ProviderOpenAI, Endpoint: "https://api.openai.com", Credentials: Credentials{APIKey: "sk"}},
			{Name: "ns/anthropic", Provider: ProviderAnthropic, Endpoint: "https://api.anthropic.com", Credentials: Credentials{APIKey: "sk"},
				Prices: []ModelPrice{{Model: "b", InputPerMTok: 1}, {Model: "a", InputPerMTok: 2}}},
			{Name: "ns/bedrock", Provider: ProviderBedrock, Endpoint: "https://bedrock-runtime.us-east-1.amazonaws.com", Region: "us-east-1",
				Credentials: Credentials{BearerToken: "bt"}},
			{Name: "ns/azure", Provider: ProviderAzureOpenAI, Endpoint: "https://x.openai.azure.com", AzureAPIVersion: "v1",
				Credentials: Credentials{APIKey: "k"}},
		},
		Routes: []Route{
			{Name: "ns/gpt", Shape: ShapeOpenAI, Models: []string{"gpt-b", "gpt-a"}, Prefixes: []string{"o3", "gpt-"},
				Backends: []RouteBackend{{Backend: "ns/azure", Priority: 1, Weight: 1}, {Backend: "ns/openai", Priority: 0, Weight: 1}},
				Failover: Failover{On: []string{FailoverTimeout, FailoverServerError}, MaxAttempts: 2}},
			{Name: "ns/claude", Shape: ShapeAnthropic, Aliases: map[string]string{"sonnet": "claude-sonnet-4-5"},
				Backends: []RouteBackend{{Backend: "ns/bedrock", Priority: 0, Weight: 1}, {Backend: "ns/anthropic", Priority: 0, Weight: 3}},
				Failover: Failover{On: AllFailoverClasses, MaxAttempts: 2}},
		},
		Teams: []Team{
			{Name: "b-team", Products: []string{"y", "x", "x"}, APIKeyHashes: []string{HashAPIKey("k2"), HashAPIKey("k1"), HashAPIKey("k1")},
				Rollout: Rollout{Stage: StageCanary, CanaryPercent: 10, LegacyUpstream: "http://legacy:8080", StickyBy: StickyTraceID}},
			{Name: "a-team", Rollout: Rollout{Stage: StageGateway},
				Budget: &Budget{Source: "ns/a", OnStoreUnavailable: FailOpen, Unpriced: UnpricedAllow,
					Limits: []SpendLimit{{Window: WindowMonth, LimitMicros: 5, Enforcement: EnforceHard}, {Window: WindowHour, LimitMicros: 1, Enforcement: EnforceSoft}}}},
		},
		DefaultBudget: Budget{Source: "builtin", OnStoreUnavailable: FailClosed, Unpriced: UnpricedReject,
			Limits: []SpendLimit{{Window: WindowDay, LimitMicros: 50_000_000, Enforcement: EnforceHard}}},
	}
}

func TestSealNormalizesAndVersions(t *testing.T) {
	s := valid()
	require.NoError(t, s.Seal())
	require.Equal(t, SchemaVersion, s.SchemaVersion)
	require.Len(t, s.Version, 16)
	require.Equal(t, []string{"ns/anthropic", "ns/azure", "ns/bedrock", "ns/openai"},
		[]string{s.Backends[0].Name, s.Backends[1].Name, s.Backends[2].Name, s.Backends[3].Name})
	require.Equal(t, "a", s.Backends[0].Prices[0].Model)
	require.Equal(t, "ns/claude", s.Routes[0].Name)
	require.Equal(t, []string{"gpt-", "o3"}, s.Routes[1].Prefixes)
	require.Equal(t, "ns/openai", s.Routes[1].Backends[0].Backend, "lower priority first")
	require.Equal(t, "ns/anthropic", s.Routes[0].Backends[0].Backend, "same priority: by name")
	require.Equal(t, "a-team", s.Teams[0].Name)
	require.Equal(t, []string{"x", "y"}, s.Teams[1].Products, "sorted and deduplicated")
	require.Len(t, s.Teams[1].APIKeyHashes, 2)
	require.Equal(t, WindowHour, s.Teams[0].Budget.Limits[0].Window, "windows shortest first")

	// Same content in another order: same version and bytes.
	other := valid()
	other.Backends[0], other.Backends[3] = other.Backends[3], other.Backends[0]
	other.Teams[0], other.Teams[1] = other.Teams[1], other.Teams[0]
	require.NoError(t, other.Seal())
	require.Equal(t, s.Version, other.Version)
	a, err := json.Marshal(s)
	require.NoError(t, err)
	b, err := json.Marshal(other)
	require.NoError(t, err)
	require.Equal(t, string(a), string(b))

	// Any content change is a new version.
	changed := valid()
	changed.Teams[0].Rollout.CanaryPercent = 11
	require.NoError(t, changed.Seal())
	require.NotEqual(t, s.Version, changed.Version)
}

func TestDecodeChecksVersionAndSchema(t *testing.T) {
	s := valid()
	require.NoError(t, s.Seal())
	body, err := json.Marshal(s)
	require.NoError(t, err)
	got, err := Decode(body)
	require.NoError(t, err)
	require.Equal(t, s.Version, got.Version)

	tampered := strings.Replace(string(body), `"canaryPercent":10`, `"canaryPercent":90`, 1)
	require.NotEqual(t, string(body), tampered)
	_, err = Decode([]byte(tampered))
	require.ErrorContains(t, err, "does not match its content hash")

	future := *s
	future.SchemaVersion = SchemaVersion + 1
	body, err = json.Marshal(&future)
	require.NoError(t, err)
	_, err = Decode(body)
	require.ErrorContains(t, err, "schemaVersion")

	_, err = Decode([]byte("{not json"))
	require.ErrorContains(t, err, "decode snapshot")
}

func TestValidationRules(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*Snapshot)
		want   string
	}{
		"unknown provider":     {func(s *Snapshot) { be(s, "ns/openai").Provider = "Gemini" }, `unknown provider "Gemini"`},
		"bad endpoint":         {func(s *Snapshot) { be(s, "ns/openai").Endpoint = "api.openai.com" }, "is not an http(s) URL"},
		"bedrock region":       {func(s *Snapshot) { be(s, "ns/bedrock").Region = "" }, "bedrock needs a region"},
		"bedrock credentials":  {func(s *Snapshot) { be(s, "ns/bedrock").Credentials = Credentials{AWSAccessKeyID: "id"} }, "bedrock needs a bearer token"},
		"azure api version":    {func(s *Snapshot) { be(s, "ns/azure").AzureAPIVersion = "" }, "azure needs an apiVersion"},
		"azure two keys":       {func(s *Snapshot) { be(s, "ns/azure").Credentials.BearerToken = "t" }, "exactly one of an api-key or a bearer token"},
		"openai key":           {func(s *Snapshot) { be(s, "ns/openai").Credentials.APIKey = "" }, "an API key is required"},
		"duplicate backend":    {func(s *Snapshot) { be(s, "ns/anthropic").Name = "ns/openai" }, "duplicate name"},
		"missing backend":      {func(s *Snapshot) { rt(s, "ns/gpt").Backends[0].Backend = "ns/nope" }, "backend ns/nope does not exist"},
		"shape mismatch":       {func(s *Snapshot) { rt(s, "ns/gpt").Backends[0].Backend = "ns/bedrock" }, "does not translate between shapes"},
		"no model":             {func(s *Snapshot) { rt(s, "ns/gpt").Models, rt(s, "ns/gpt").Prefixes = nil, nil }, "serves no model"},
		"model claimed twice":  {func(s *Snapshot) { rt(s, "ns/claude").Aliases = map[string]string{"gpt-a": "x"} }, `model "gpt-a" is also claimed`},
		"prefix claimed twice": {func(s *Snapshot) { rt(s, "ns/claude").Prefixes = []string{"gpt-"} }, `prefix "gpt-" is also claimed`},
		"max attempts":         {func(s *Snapshot) { rt(s, "ns/gpt").Failover.MaxAttempts = 0 }, "maxAttempts must be at least 1"},
		"failover class":       {func(s *Snapshot) { rt(s, "ns/gpt").Failover.On = []string{"BadRequest"} }, `unknown failover class "BadRequest"`},
		"default above max": {func(s *Snapshot) { rt(s, "ns/gpt").Limits = RequestLimits{DefaultMaxTokens: 10, MaxMaxTokens: 5} },
			"defaultMaxTokens 10 is above maxMaxTokens 5"},
		"key hash":           {func(s *Snapshot) { tm(s, "b-team").APIKeyHashes = []string{"plaintext-key"} }, "is not lowercase hex SHA-256"},
		"shared key":         {func(s *Snapshot) { tm(s, "a-team").APIKeyHashes = []string{HashAPIKey("k1")} }, "an API key is also used by team"},
		"product format":     {func(s *Snapshot) { tm(s, "b-team").Products = []string{"Max AI"} }, "must be lowercase letters"},
		"product v1":         {func(s *Snapshot) { tm(s, "b-team").Products = []string{"v1"} }, "must be lowercase letters"},
		"product dash":       {func(s *Snapshot) { tm(s, "b-team").Products = []string{"-ai"} }, "must be lowercase letters"},
		"shared product":     {func(s *Snapshot) { tm(s, "a-team").Products = []string{"x"} }, `product "x" is also claimed`},
		"canary on gateway":  {func(s *Snapshot) { tm(s, "a-team").Rollout.CanaryPercent = 5 }, "canaryPercent is only allowed with stage Canary"},
		"canary above 100":   {func(s *Snapshot) { tm(s, "b-team").Rollout.CanaryPercent = 101 }, "outside 0-100"},
		"legacy upstream":    {func(s *Snapshot) { tm(s, "b-team").Rollout.LegacyUpstream = "" }, "needs a legacyUpstream"},
		"unknown stage":      {func(s *Snapshot) { tm(s, "b-team").Rollout.Stage = "Beta" }, `unknown stage "Beta"`},
		"zero limit":         {func(s *Snapshot) { s.DefaultBudget.Limits[0].LimitMicros = 0 }, "limit must be positive"},
		"two hard limits":    {func(s *Snapshot) { s.DefaultBudget.Limits = append(s.DefaultBudget.Limits, s.DefaultBudget.Limits[0]) }, "two Hard Day limits"},
		"runaway":            {func(s *Snapshot) { s.DefaultBudget.Runaway = &Runaway{} }, "runaway breaker needs"},
		"store policy":       {func(s *Snapshot) { s.DefaultBudget.OnStoreUnavailable = "" }, "unknown onStoreUnavailable"},
		"unpriced policy":    {func(s *Snapshot) { s.DefaultBudget.Unpriced = "Maybe" }, "unknown unpriced policy"},
		"team budget prefix": {func(s *Snapshot) { tm(s, "a-team").Budget.Limits[0].Window = "Year" }, "team a-team: budget: unknown window"},
	} {
		t.Run(name, func(t *testing.T) {
			s := valid()
			tc.mutate(s)
			err := s.Seal()
			require.ErrorContains(t, err, tc.want)
			require.Empty(t, s.Version, "a snapshot that fails validation is not versioned")
		})
	}
}

// TestEveryProblemNamesItsObject: a snapshot with several problems reports each on its own
// line, under the name of the object it belongs to.
func TestEveryProblemNamesItsObject(t *testing.T) {
	s := valid()
	be(s, "ns/azure").AzureAPIVersion = ""
	be(s, "ns/azure").Endpoint = "x.openai.azure.com"
	rt(s, "ns/gpt").Failover = Failover{On: []string{"Sometimes"}}
	tm(s, "a-team").Budget.Runaway = &Runaway{}
	tm(s, "a-team").Budget.Unpriced = ""
	err := s.Seal()
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	for _, want := range []string{
		`backend ns/azure: endpoint "x.openai.azure.com" is not an http(s) URL`,
		"backend ns/azure: azure needs an apiVersion",
		"route ns/gpt: failover.maxAttempts must be at least 1",
		`route ns/gpt: unknown failover class "Sometimes"`,
		"team a-team: budget: runaway breaker needs a positive spend per minute and cooldown",
		`team a-team: budget: unknown unpriced policy ""`,
	} {
		require.Contains(t, lines, want)
	}
	require.Len(t, lines, 6)
}

// TestTypesValidateThemselves: each type checks its own fields without a snapshot around it
// (the operator's compiler runs them on every object it compiles).
func TestTypesValidateThemselves(t *testing.T) {
	s := valid()
	for i := range s.Backends {
		require.NoError(t, s.Backends[i].Validate())
	}
	for i := range s.Routes {
		require.NoError(t, s.Routes[i].Validate(), "a route's backends are checked by the snapshot, not the route")
	}
	for i := range s.Teams {
		require.NoError(t, s.Teams[i].Validate())
	}
	require.NoError(t, s.DefaultBudget.Validate())

	require.ErrorContains(t, (&Backend{Provider: ProviderOpenAI, Endpoint: "https://api.openai.com"}).Validate(), "an API key is required")
	require.ErrorContains(t, (&Route{Shape: ShapeOpenAI, Models: []string{"m"}, Failover: Failover{MaxAttempts: 1}}).Validate(), "no backends")
	require.ErrorContains(t, (&Team{Name: "t", Rollout: Rollout{Stage: StageLegacy}}).Validate(), "rollout: stage Legacy needs a legacyUpstream")
	require.ErrorContains(t, (&Budget{OnStoreUnavailable: FailOpen, Unpriced: UnpricedAllow, MaxConcurrent: -1}).Validate(), "negative limit")
}

func TestSharedRules(t *testing.T) {
	for s, want := range map[string]bool{
		"https://api.openai.com": true, "http://legacy:8080/v1": true,
		"api.openai.com": false, "ftp://x": false, "https://": false, "http://:80": false, "": false,
	} {
		require.Equal(t, want, HTTPURL(s), "HTTPURL(%q)", s)
	}
	for s, want := range map[string]bool{
		"posthog-ai": true, "a": true, "a1-b2": true, strings.Repeat("a", 63): true,
		"": false, "-a": false, "a-": false, "A": false, "a_b": false, strings.Repeat("a", 64): false,
	} {
		require.Equal(t, want, IsDNSLabel(s), "IsDNSLabel(%q)", s)
	}
	require.True(t, ValidProduct("max-ai"))
	require.False(t, ValidProduct("v1"), "a product path /v1/v1/... would be ambiguous")
	require.True(t, IsFailoverClass(FailoverTimeout))
	require.False(t, IsFailoverClass("BadRequest"))
	require.True(t, ShapeAnthropic.Valid())
	require.False(t, Shape("Gemini").Valid())
}

func TestDefaultEndpoint(t *testing.T) {
	require.Equal(t, "https://api.openai.com", DefaultEndpoint(ProviderOpenAI, ""))
	require.Equal(t, "https://api.anthropic.com", DefaultEndpoint(ProviderAnthropic, ""))
	require.Equal(t, "https://bedrock-runtime.eu-west-1.amazonaws.com", DefaultEndpoint(ProviderBedrock, "eu-west-1"))
	require.Empty(t, DefaultEndpoint(ProviderBedrock, ""))
	require.Empty(t, DefaultEndpoint(ProviderAzureOpenAI, ""), "every Azure resource has its own endpoint")
}

func TestEffectiveBudget(t *testing.T) {
	s := valid()
	require.NoError(t, s.Seal())
	require.Equal(t, "ns/a", s.EffectiveBudget(&s.Teams[0]).Source)
	require.Equal(t, "builtin", s.EffectiveBudget(&s.Teams[1]).Source)
	require.Equal(t, "builtin", s.EffectiveBudget(nil).Source)
}

func TestHashAPIKey(t *testing.T) {
	// printf 'secret' | sha256sum
	require.Equal(t, "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b", HashAPIKey("secret"))
}

func TestShapeOf(t *testing.T) {
	require.Equal(t, ShapeOpenAI, ShapeOf(ProviderOpenAI))
	require.Equal(t, ShapeOpenAI, ShapeOf(ProviderAzureOpenAI))
	require.Equal(t, ShapeAnthropic, ShapeOf(ProviderAnthropic))
	require.Equal(t, ShapeAnthropic, ShapeOf(ProviderBedrock))
	require.Equal(t, Shape(""), ShapeOf("Gemini"))
}

func be(s *Snapshot, name string) *Backend {
	for i := range s.Backends {
		if s.Backends[i].Name == name {
			return &s.Backends[i]
		}
	}
	panic("no backend " + name)
}

func rt(s *Snapshot, name string) *Route {
	for i := range s.Routes {
		if s.Routes[i].Name == name {
			return &s.Routes[i]
		}
	}
	panic("no route " + name)
}

func tm(s *Snapshot, name string) *Team {
	for i := range s.Teams {
		if s.Teams[i].Name == name {
			return &s.Teams[i]
		}
	}
	panic("no team " + name)
}
