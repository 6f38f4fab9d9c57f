/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package compile

import (
	"fmt"
	"maps"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

var (
	regionPattern     = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	apiVersionPattern = regexp.MustCompile(`^(v1|preview|[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?)$`)
)

func (c *compiler) backend(b *v1alpha1.ProviderBackend) (snapshot.Backend, bool) {
	v := newVerdict(KindProviderBackend, b)
	s := &b.Spec
	out := snapshot.Backend{
		Name:     nsName(b),
		Provider: snapshot.Provider(s.Provider),
		Region:   s.Region,
		ModelMap: maps.Clone(s.ModelMap),
	}
	checkProviderSettings(v, s)
	if s.Azure != nil {
		out.AzureAPIVersion = s.Azure.APIVersion
	}
	out.Endpoint = strings.TrimRight(s.Endpoint, "/")
	if out.Endpoint == "" {
		out.Endpoint = snapshot.DefaultEndpoint(out.Provider, s.Region)
	}
	// Backstop for the CEL rule on spec.endpoint in api/v1alpha1/providerbackend_types.go,
	// with the snapshot's own definition of an http(s) URL.
	if s.Endpoint != "" && !snapshot.HTTPURL(s.Endpoint) {
		v.invalidf("spec.endpoint must be an http(s) URL")
	}
	// Compiler rule (no CRD rule covers map entries): an empty model name or id maps nothing.
	for k, m := range s.ModelMap {
		if k == "" || m == "" {
			v.invalidf("spec.modelMap: empty model name or id (%q: %q)", k, m)
		}
	}
	out.Timeouts = timeouts(v, s.Timeouts)
	out.CircuitBreaker = circuitBreaker(v, s.CircuitBreaker)
	// Backstop for the schema's Minimum=0 on spec.maxConcurrentRequests.
	if s.MaxConcurrentRequests < 0 {
		v.invalidf("spec.maxConcurrentRequests must not be negative")
	}
	out.MaxConcurrent = int(s.MaxConcurrentRequests)
	out.Prices = prices(v, s.Pricing)
	out.Credentials = c.credentials(v, b)

	included := v.valid() && len(v.refs) == 0 && v.contract(out.Validate())
	c.record(v, included)
	return out, included
}

// checkProviderSettings checks that the provider is known and that the settings of one
// provider (region, azure) appear with that provider only. Each check is a backstop for the
// schema enum or a CEL rule of ProviderBackendSpec (api/v1alpha1/providerbackend_types.go),
// with the same message. The snapshot checks the provider, the Bedrock region and the Azure
// API version again (Backend.Validate) as the contract's backstop.
func checkProviderSettings(v *verdict, s *v1alpha1.ProviderBackendSpec) {
	if snapshot.ShapeOf(snapshot.Provider(s.Provider)) == "" {
		v.invalidf("spec.provider %q must be one of OpenAI, Anthropic, AzureOpenAI, Bedrock", s.Provider)
	}
	switch {
	case s.Provider == v1alpha1.ProviderBedrock && s.Region == "":
		v.invalidf("provider Bedrock needs a region")
	case s.Region != "" && s.Provider != v1alpha1.ProviderBedrock:
		v.invalidf("region is only allowed with provider Bedrock")
	case s.Region != "" && !regionPattern.MatchString(s.Region):
		v.invalidf("spec.region %q is not an AWS region name", s.Region)
	}
	switch {
	case s.Provider == v1alpha1.ProviderAzureOpenAI && s.Endpoint == "":
		v.invalidf("provider AzureOpenAI needs an endpoint (https://<resource>.openai.azure.com)")
	case s.Provider == v1alpha1.ProviderAzureOpenAI && s.Azure == nil:
		v.invalidf("provider AzureOpenAI needs azure.apiVersion")
	case s.Azure != nil && s.Provider != v1alpha1.ProviderAzureOpenAI:
		v.invalidf("azure is only allowed with provider AzureOpenAI")
	case s.Azure != nil && !apiVersionPattern.MatchString(s.Azure.APIVersion):
		v.invalidf("spec.azure.apiVersion %q must be v1, preview or a date like 2024-10-21", s.Azure.APIVersion)
	}
}

// timeouts converts the backend's timeouts; unset ones stay 0 (the gateway's defaults,
// snapshot.Default*Timeout).
func timeouts(v *verdict, t *v1alpha1.BackendTimeouts) snapshot.Timeouts {
	if t == nil {
		return snapshot.Timeouts{}
	}
	return snapshot.Timeouts{
		ConnectMs:   millis(v, "spec.timeouts.connect", t.Connect),
		FirstByteMs: millis(v, "spec.timeouts.firstByte", t.FirstByte),
		IdleMs:      millis(v, "spec.timeouts.idle", t.Idle),
	}
}

// circuitBreaker converts the backend's breaker, filling in the contract's defaults.
func circuitBreaker(v *verdict, cb *v1alpha1.CircuitBreakerSpec) snapshot.CircuitBreaker {
	out := snapshot.CircuitBreaker{
		ConsecutiveFailures: snapshot.DefaultBreakerFailures,
		CooldownMs:          snapshot.DefaultBreakerCooldown.Milliseconds(),
	}
	if cb == nil {
		return out
	}
	if cb.ConsecutiveFailures != 0 {
		// Backstop for the schema's Minimum=1, Maximum=1000 on consecutiveFailures.
		if cb.ConsecutiveFailures < 1 || cb.ConsecutiveFailures > 1000 {
			v.invalidf("spec.circuitBreaker.consecutiveFailures must be 1-1000")
		}
		out.ConsecutiveFailures = int(cb.ConsecutiveFailures)
	}
	if cb.Cooldown != nil {
		out.CooldownMs = millis(v, "spec.circuitBreaker.cooldown", cb.Cooldown)
	}
	return out
}

// credentials reads the provider's fixed keys from the backend's Secret. Which keys a provider
// needs is a compiler rule (it needs the Secret, so no CRD rule can say it), reported as
// ResolvedRefs=False; the snapshot's Backend.Validate checks the credentials again as its
// backstop.
func (c *compiler) credentials(v *verdict, b *v1alpha1.ProviderBackend) snapshot.Credentials {
	ns, name := b.Namespace, b.Spec.CredentialsSecretRef.Name
	const field = "spec.credentialsSecretRef"
	if name == "" {
		v.invalidf("%s.name is required", field)
		return snapshot.Credentials{}
	}
	var cr snapshot.Credentials
	switch b.Spec.Provider {
	case v1alpha1.ProviderOpenAI, v1alpha1.ProviderAnthropic:
		cr.APIKey, _ = c.secretValue(v, ns, name, v1alpha1.SecretKeyAPIKey, field)
	case v1alpha1.ProviderAzureOpenAI:
		// apiKey takes precedence over bearerToken: the gateway sends exactly one.
		cr.APIKey = c.optionalSecretValue(v, ns, name, v1alpha1.SecretKeyAPIKey, field)
		if cr.APIKey == "" && len(v.refs) == 0 {
			cr.BearerToken = c.optionalSecretValue(v, ns, name, v1alpha1.SecretKeyBearerToken, field)
			if cr.BearerToken == "" {
				v.ref(v1alpha1.ReasonSecretKeyMissing, "%s: Secret %s/%s has neither %q nor %q", field, ns, name,
					v1alpha1.SecretKeyAPIKey, v1alpha1.SecretKeyBearerToken)
			}
		}
	case v1alpha1.ProviderBedrock:
		cr.BearerToken = c.optionalSecretValue(v, ns, name, v1alpha1.SecretKeyBearerToken, field)
		if len(v.refs) > 0 {
			break
		}
		cr.AWSAccessKeyID = c.optionalSecretValue(v, ns, name, v1alpha1.SecretKeyAWSAccessKeyID, field)
		cr.AWSSecretAccessKey = c.optionalSecretValue(v, ns, name, v1alpha1.SecretKeyAWSSecretAccessKey, field)
		cr.AWSSessionToken = c.optionalSecretValue(v, ns, name, v1alpha1.SecretKeyAWSSessionToken, field)
		switch {
		case cr.AWSAccessKeyID != "" && cr.AWSSecretAccessKey == "":
			v.ref(v1alpha1.ReasonSecretKeyMissing, "%s: Secret %s/%s has %q but no %q", field, ns, name,
				v1alpha1.SecretKeyAWSAccessKeyID, v1alpha1.SecretKeyAWSSecretAccessKey)
		case cr.AWSAccessKeyID == "" && cr.AWSSecretAccessKey != "":
			v.ref(v1alpha1.ReasonSecretKeyMissing, "%s: Secret %s/%s has %q but no %q", field, ns, name,
				v1alpha1.SecretKeyAWSSecretAccessKey, v1alpha1.SecretKeyAWSAccessKeyID)
		case cr.BearerToken == "" && cr.AWSAccessKeyID == "":
			v.ref(v1alpha1.ReasonSecretKeyMissing, "%s: Secret %s/%s has neither %q nor %q and %q", field, ns, name,
				v1alpha1.SecretKeyBearerToken, v1alpha1.SecretKeyAWSAccessKeyID, v1alpha1.SecretKeyAWSSecretAccessKey)
		}
	}
	return cr
}

// prices converts the backend's price overrides. The checks are backstops for the schema of
// ModelPricing (model required, one entry per model, decimal prices, positive token counts).
func prices(v *verdict, in []v1alpha1.ModelPricing) []snapshot.ModelPrice {
	if len(in) == 0 {
		return nil
	}
	out := make([]snapshot.ModelPrice, 0, len(in))
	seen := map[string]bool{}
	for i, p := range in {
		field := fmt.Sprintf("spec.pricing[%d]", i)
		if p.Model == "" {
			v.invalidf("%s.model is required", field)
		}
		if seen[p.Model] {
			v.invalidf("%s: model %q is priced twice", field, p.Model)
		}
		seen[p.Model] = true
		price := func(name string, s v1alpha1.PricePerMTok, required bool) int64 {
			if s == "" {
				if required {
					v.invalidf("%s.%s is required", field, name)
				}
				return 0
			}
			n, err := s.MicrosPerMTok()
			if err != nil {
				v.invalidf("%s.%s: %v", field, name, err)
			}
			return n
		}
		if p.ContextWindow < 0 || p.MaxOutputTokens < 0 {
			v.invalidf("%s: contextWindow and maxOutputTokens must not be negative", field)
		}
		out = append(out, snapshot.ModelPrice{
			Model:               p.Model,
			InputPerMTok:        price("input", p.Input, true),
			OutputPerMTok:       price("output", p.Output, true),
			CacheReadPerMTok:    price("cacheRead", p.CacheRead, false),
			CacheWrite5mPerMTok: price("cacheWrite5m", p.CacheWrite5m, false),
			CacheWrite1hPerMTok: price("cacheWrite1h", p.CacheWrite1h, false),
			ContextWindow:       p.ContextWindow,
			MaxOutputTokens:     p.MaxOutputTokens,
		})
	}
	return out
}

// millis converts an optional duration to milliseconds. A negative duration is invalid: the CRD
// has no rule for it, and checking the spec value names the field (the snapshot's own rule on
// negative milliseconds, its backstop, would miss a negative duration under a millisecond).
func millis(v *verdict, field string, d *metav1.Duration) int64 {
	if d == nil {
		return 0
	}
	if d.Duration < 0 {
		v.invalidf("%s must not be negative", field)
		return 0
	}
	return d.Milliseconds()
}
