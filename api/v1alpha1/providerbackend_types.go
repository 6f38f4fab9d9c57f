/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provider is the kind of upstream account.
// +kubebuilder:validation:Enum=OpenAI;Anthropic;AzureOpenAI;Bedrock
type Provider string

// Providers. Anthropic and Bedrock serve the Anthropic Messages shape; OpenAI and AzureOpenAI
// the OpenAI shape.
const (
	ProviderOpenAI      Provider = "OpenAI"
	ProviderAnthropic   Provider = "Anthropic"
	ProviderAzureOpenAI Provider = "AzureOpenAI"
	ProviderBedrock     Provider = "Bedrock"
)

// Keys the operator reads from a ProviderBackend's credentials Secret. Which keys a provider
// needs:
//
//	OpenAI, Anthropic: apiKey
//	AzureOpenAI:       apiKey (sent as api-key) or bearerToken (Entra ID), exactly one
//	Bedrock:           bearerToken (a Bedrock API key), or awsAccessKeyId + awsSecretAccessKey
//	                   (+ awsSessionToken for temporary credentials)
const (
	SecretKeyAPIKey             = "apiKey"
	SecretKeyBearerToken        = "bearerToken"
	SecretKeyAWSAccessKeyID     = "awsAccessKeyId"
	SecretKeyAWSSecretAccessKey = "awsSecretAccessKey"
	SecretKeyAWSSessionToken    = "awsSessionToken"
)

// ProviderBackendSpec is one upstream account.
//
// +kubebuilder:validation:XValidation:rule="self.provider != 'AzureOpenAI' || has(self.endpoint)",message="provider AzureOpenAI needs an endpoint (https://<resource>.openai.azure.com)"
// +kubebuilder:validation:XValidation:rule="self.provider != 'AzureOpenAI' || has(self.azure)",message="provider AzureOpenAI needs azure.apiVersion"
// +kubebuilder:validation:XValidation:rule="!has(self.azure) || self.provider == 'AzureOpenAI'",message="azure is only allowed with provider AzureOpenAI"
// +kubebuilder:validation:XValidation:rule="self.provider != 'Bedrock' || has(self.region)",message="provider Bedrock needs a region"
// +kubebuilder:validation:XValidation:rule="!has(self.region) || self.provider == 'Bedrock'",message="region is only allowed with provider Bedrock"
type ProviderBackendSpec struct {
	// Provider decides the wire format, the authentication and the shape the backend serves.
	Provider Provider `json:"provider"`

	// Endpoint is the base URL of the provider's API, without a path. Defaults:
	// https://api.openai.com, https://api.anthropic.com,
	// https://bedrock-runtime.<region>.amazonaws.com. Required for AzureOpenAI
	// (https://<resource>.openai.azure.com).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="must be an http(s) URL"
	Endpoint string `json:"endpoint,omitempty"`

	// CredentialsSecretRef names the Secret (same namespace) holding the provider credentials,
	// under fixed keys: apiKey (OpenAI, Anthropic, AzureOpenAI); bearerToken (Bedrock API key
	// or Azure Entra ID token); awsAccessKeyId, awsSecretAccessKey, awsSessionToken (Bedrock).
	CredentialsSecretRef LocalSecretReference `json:"credentialsSecretRef"`

	// Region is the AWS region of a Bedrock backend.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-z]{2}(-[a-z]+)+-[0-9]+$`
	// +kubebuilder:validation:MaxLength=32
	Region string `json:"region,omitempty"`

	// Azure holds settings of an AzureOpenAI backend.
	// +optional
	Azure *AzureSettings `json:"azure,omitempty"`

	// ModelMap maps a canonical model name to the provider's model id: a Bedrock model or
	// inference-profile id (claude-sonnet-4-5: us.anthropic.claude-sonnet-4-5-20250929-v1:0)
	// or an Azure deployment name. Unmapped models are sent as requested.
	// +optional
	// +kubebuilder:validation:MaxProperties=256
	ModelMap map[string]string `json:"modelMap,omitempty"`

	// Timeouts of calls to this backend. Unset fields use the gateway's defaults.
	// +optional
	Timeouts *BackendTimeouts `json:"timeouts,omitempty"`

	// CircuitBreaker takes the backend out of rotation after consecutive failover-class
	// failures. Default: 5 failures, 30s cooldown.
	// +optional
	CircuitBreaker *CircuitBreakerSpec `json:"circuitBreaker,omitempty"`

	// MaxConcurrentRequests caps in-flight requests to this backend per gateway pod.
	// Unset or 0: no cap.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxConcurrentRequests int32 `json:"maxConcurrentRequests,omitempty"`

	// Pricing overrides the price catalog for models served by this backend (negotiated
	// rates, models the catalog does not know).
	// +optional
	// +listType=map
	// +listMapKey=model
	// +kubebuilder:validation:MaxItems=128
	Pricing []ModelPricing `json:"pricing,omitempty"`
}

// AzureSettings of an AzureOpenAI backend.
type AzureSettings struct {
	// APIVersion is the api-version query parameter of Azure deployment URLs
	// (2024-10-21, 2025-04-01-preview). The value v1 selects the /openai/v1/ URL form, which
	// needs none.
	// +kubebuilder:validation:Pattern=`^(v1|preview|[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?)$`
	APIVersion string `json:"apiVersion"`
}

// BackendTimeouts of one backend.
type BackendTimeouts struct {
	// Connect bounds dialing and the TLS handshake.
	// +optional
	Connect *metav1.Duration `json:"connect,omitempty"`
	// FirstByte bounds the wait for response headers and the first stream event.
	// +optional
	FirstByte *metav1.Duration `json:"firstByte,omitempty"`
	// Idle bounds the gap between two stream events.
	// +optional
	Idle *metav1.Duration `json:"idle,omitempty"`
}

// CircuitBreakerSpec of one backend.
type CircuitBreakerSpec struct {
	// ConsecutiveFailures opens the breaker.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`
	// Cooldown keeps the breaker open (or the upstream's retry-after, when longer).
	// +optional
	Cooldown *metav1.Duration `json:"cooldown,omitempty"`
}

// ModelPricing is the price of one model on this backend, in US dollars per million tokens.
type ModelPricing struct {
	// Model is the canonical model name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Model string `json:"model"`
	// Input is the price of uncached input tokens.
	Input PricePerMTok `json:"input"`
	// Output is the price of output tokens (reasoning included).
	Output PricePerMTok `json:"output"`
	// CacheRead is the price of input tokens read from the prompt cache. Unset: the catalog's
	// rule for the provider.
	// +optional
	CacheRead PricePerMTok `json:"cacheRead,omitempty"`
	// CacheWrite5m is the price of input tokens written to a 5-minute cache.
	// +optional
	CacheWrite5m PricePerMTok `json:"cacheWrite5m,omitempty"`
	// CacheWrite1h is the price of input tokens written to a 1-hour cache.
	// +optional
	CacheWrite1h PricePerMTok `json:"cacheWrite1h,omitempty"`
	// ContextWindow of the model, in tokens.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ContextWindow int64 `json:"contextWindow,omitempty"`
	// MaxOutputTokens of the model.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxOutputTokens int64 `json:"maxOutputTokens,omitempty"`
}

// ProviderBackendStatus is the observed state of a ProviderBackend.
type ProviderBackendStatus struct {
	CommonStatus `json:",inline"`
}

// ProviderBackend is one upstream LLM provider account.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=llmpb,categories=llmgateway
// +kubebuilder:metadata:annotations="argocd.argoproj.io/sync-wave=-1"
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.spec.region`,priority=1
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.spec.endpoint`,priority=1
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ProviderBackend struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ProviderBackendSpec   `json:"spec"`
	Status ProviderBackendStatus `json:"status,omitempty"`
}

// GetCommonStatus implements Object.
func (b *ProviderBackend) GetCommonStatus() *CommonStatus { return &b.Status.CommonStatus }

// ProviderBackendList is a list of ProviderBackends.
//
// +kubebuilder:object:root=true
type ProviderBackendList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ProviderBackend `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ProviderBackend{}, &ProviderBackendList{})
}
