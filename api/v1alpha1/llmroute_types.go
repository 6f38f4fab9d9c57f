/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Shape is the wire shape a route accepts.
// +kubebuilder:validation:Enum=OpenAI;Anthropic
type Shape string

// Shapes.
const (
	ShapeOpenAI    Shape = "OpenAI"
	ShapeAnthropic Shape = "Anthropic"
)

// FailoverClass is a class of upstream failure a route may fail over on.
// +kubebuilder:validation:Enum=ConnectionError;Timeout;ServerError;Overloaded;RateLimited;QuotaExhausted;UpstreamAuth;NotFound
type FailoverClass string

// ModelName is a model name as clients send it.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=128
// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][-A-Za-z0-9._:/@]*$`
type ModelName string

// LLMRouteSpec says which models a route serves, in which shape, and where it sends them.
//
// +kubebuilder:validation:XValidation:rule="self.backends.all(a, self.backends.all(b, a.name == b.name || a.priority != b.priority || (has(a.weight) && has(b.weight))))",message="backends that share a priority form a weight group and must all set a weight"
type LLMRouteSpec struct {
	// Shape is the wire shape the route accepts (OpenAI: chat completions and responses;
	// Anthropic: messages). Every backend must serve the same shape: the gateway never
	// translates between shapes.
	Shape Shape `json:"shape"`

	// Models the route serves.
	Models RouteModels `json:"models"`

	// Backends the route sends calls to. Lower priority is tried first; backends that share a
	// priority form a weight group and split traffic by weight (each must set a weight).
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Backends []RouteBackend `json:"backends"`

	// Failover policy. Defaults: every failure class, as many attempts as backends.
	// +optional
	Failover *FailoverPolicy `json:"failover,omitempty"`

	// Limits on requests to this route.
	// +optional
	Limits *RequestLimits `json:"limits,omitempty"`
}

// RouteModels are the model names a route claims. A name, alias or prefix may be claimed by
// one route only: when two routes claim the same one, the older route keeps it and the newer
// is not Accepted (reason Conflicted).
//
// +kubebuilder:validation:XValidation:rule="(has(self.names) && size(self.names) > 0) || (has(self.aliases) && size(self.aliases) > 0) || (has(self.prefixes) && size(self.prefixes) > 0)",message="models needs at least one name, alias or prefix"
// +kubebuilder:validation:XValidation:rule="!has(self.aliases) || !has(self.names) || !self.aliases.exists(a, a.name in self.names)",message="an alias must not also be listed in names"
type RouteModels struct {
	// Names are canonical model names served exactly (dated and provider-prefixed spellings
	// resolve to them too).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	Names []ModelName `json:"names,omitempty"`
	// Aliases map a client-facing name to a canonical model.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=128
	Aliases []ModelAlias `json:"aliases,omitempty"`
	// Prefixes claim every model whose canonical name starts with one of them ("claude-").
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	Prefixes []ModelName `json:"prefixes,omitempty"`
}

// ModelAlias maps a client-facing name to a canonical model.
type ModelAlias struct {
	// Name clients send.
	Name ModelName `json:"name"`
	// Model is the canonical model it stands for.
	Model ModelName `json:"model"`
}

// RouteBackend is one target of a route.
type RouteBackend struct {
	// Name of a ProviderBackend in the route's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Priority orders targets: lower first. 0 is the primary.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Priority int32 `json:"priority"`
	// Weight splits traffic between targets of the same priority. Required when several
	// backends share a priority; default 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	Weight *int32 `json:"weight,omitempty"`
}

// FailoverPolicy of a route.
type FailoverPolicy struct {
	// Classes lists the failure classes that move a call to the next target. Default: all of
	// them. Client errors (4xx), content-policy results, the gateway's own limits and client
	// cancellation never fail over. (Not named "on": YAML 1.1 reads an unquoted on: key as true.)
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	Classes []FailoverClass `json:"classes,omitempty"`
	// MaxAttempts bounds attempts per call across all targets. Default: the number of
	// backends.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxAttempts int32 `json:"maxAttempts,omitempty"`
	// PerTryTimeout bounds one attempt until its first byte. Default: the backend's
	// firstByte timeout.
	// +optional
	PerTryTimeout *metav1.Duration `json:"perTryTimeout,omitempty"`
}

// RequestLimits of a route.
//
// +kubebuilder:validation:XValidation:rule="!has(self.defaultMaxTokens) || !has(self.maxTokens) || self.defaultMaxTokens <= self.maxTokens",message="defaultMaxTokens must not exceed maxTokens"
type RequestLimits struct {
	// DefaultMaxTokens is set on requests that name no output limit.
	// +optional
	// +kubebuilder:validation:Minimum=1
	DefaultMaxTokens int64 `json:"defaultMaxTokens,omitempty"`
	// MaxTokens clamps the output limit a request asks for.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxTokens int64 `json:"maxTokens,omitempty"`
	// MaxBodyBytes rejects larger request bodies. Default: the gateway's.
	// +optional
	// +kubebuilder:validation:Minimum=1024
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
}

// ConditionCatalogCoverage is the condition an LLMRoute in the snapshot has besides Accepted,
// ResolvedRefs and Programmed: whether the gateway's price catalog (or a pricing override of
// the backend) prices every model the route serves by name (its names and its aliases'
// targets) at each of its backends. False is the state that needs attention: calls for such a
// model are unpriced (the team budget's unpriced policy applies, and the recorded cost is
// unknown). It is a warning: the route is served either way.
const ConditionCatalogCoverage = "CatalogCoverage"

// Reasons of CatalogCoverage. Events about a transition use the same reason: Warning when it
// turns False, Normal when it turns True again.
const (
	// ReasonModelsPriced: CatalogCoverage=True.
	ReasonModelsPriced = "ModelsPriced"
	// ReasonUnpricedModels: CatalogCoverage=False; the message lists the models and backends.
	ReasonUnpricedModels = "UnpricedModels"
)

// LLMRouteStatus is the observed state of an LLMRoute.
type LLMRouteStatus struct {
	CommonStatus `json:",inline"`
}

// LLMRoute routes calls for a set of models, in one wire shape, to ordered provider backends.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=llmr,categories=llmgateway
// +kubebuilder:metadata:annotations="argocd.argoproj.io/sync-wave=-1"
// +kubebuilder:printcolumn:name="Shape",type=string,JSONPath=`.spec.shape`
// +kubebuilder:printcolumn:name="Backends",type=string,JSONPath=`.spec.backends[*].name`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Refs",type=string,JSONPath=`.status.conditions[?(@.type=="ResolvedRefs")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type LLMRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   LLMRouteSpec   `json:"spec"`
	Status LLMRouteStatus `json:"status,omitempty"`
}

// GetCommonStatus implements Object.
func (r *LLMRoute) GetCommonStatus() *CommonStatus { return &r.Status.CommonStatus }

// LLMRouteList is a list of LLMRoutes.
//
// +kubebuilder:object:root=true
type LLMRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LLMRoute `json:"items"`
}

func init() {
	SchemeBuilder.Register(&LLMRoute{}, &LLMRouteList{})
}
