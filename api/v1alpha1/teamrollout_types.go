/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Stage of a team's migration to the gateway.
// +kubebuilder:validation:Enum=Legacy;Canary;Gateway
type Stage string

// Stages.
const (
	// StageLegacy sends all of the team's traffic to the legacy gateway.
	StageLegacy Stage = "Legacy"
	// StageCanary sends canaryPercent of the team's callers to the gateway, the rest to legacy.
	StageCanary Stage = "Canary"
	// StageGateway serves all of the team's traffic.
	StageGateway Stage = "Gateway"
)

// StickyBy is the request attribute that keeps a caller on one side of a canary.
// +kubebuilder:validation:Enum=DistinctId;TraceId
type StickyBy string

// Canary stickiness keys.
const (
	StickyByDistinctID StickyBy = "DistinctId"
	StickyByTraceID    StickyBy = "TraceId"
)

// Product identifies a team's traffic: the path prefix /{product}/v1/... or the
// X-PostHog-Product header.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
// +kubebuilder:validation:XValidation:rule="self != 'v1'",message="v1 cannot be a product name"
type Product string

// TeamRolloutSpec is a team's record at ingress: how its requests are recognised, and whether
// the gateway or the legacy gateway serves them.
//
// +kubebuilder:validation:XValidation:rule="!has(self.canaryPercent) || self.stage == 'Canary'",message="canaryPercent is only allowed with stage Canary"
// +kubebuilder:validation:XValidation:rule="self.stage != 'Canary' || has(self.canaryPercent)",message="stage Canary needs canaryPercent"
// +kubebuilder:validation:XValidation:rule="self.stage == 'Gateway' || has(self.legacy)",message="stages Legacy and Canary need legacy.upstream"
// +kubebuilder:validation:XValidation:rule="(has(self.products) && size(self.products) > 0) || (has(self.apiKeys) && size(self.apiKeys) > 0)",message="a team needs at least one product or API key to be recognised"
type TeamRolloutSpec struct {
	// Team name; TeamBudgets and recorded events refer to it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Team string `json:"team"`

	// Products that identify the team's traffic. A product belongs to one team.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	Products []Product `json:"products,omitempty"`

	// APIKeys are the team's gateway API keys, read from Secrets. The snapshot holds only
	// their SHA-256 hashes.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	APIKeys []APIKeySource `json:"apiKeys,omitempty"`

	// Stage of the team's migration. Patching it is the per-team rollback.
	Stage Stage `json:"stage"`

	// CanaryPercent of the team's callers go to the gateway (stage Canary only).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	CanaryPercent *int32 `json:"canaryPercent,omitempty"`

	// StickyBy keeps a caller on one side of the canary.
	// +optional
	// +kubebuilder:default=DistinctId
	StickyBy StickyBy `json:"stickyBy,omitempty"`

	// Legacy is where the team's legacy traffic goes (required for stages Legacy and Canary).
	// +optional
	Legacy *LegacyTarget `json:"legacy,omitempty"`

	// PostHog is the PostHog project the team's $ai_generation events go to. Unset: the
	// gateway's own project.
	// +optional
	PostHog *PostHogTarget `json:"posthog,omitempty"`
}

// APIKeySource is one gateway API key.
type APIKeySource struct {
	// SecretRef names the Secret and key holding the API key.
	SecretRef SecretKeyReference `json:"secretRef"`
}

// LegacyTarget is the legacy gateway for a team.
type LegacyTarget struct {
	// Upstream is the base URL of the legacy gateway.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="must be an http(s) URL"
	Upstream string `json:"upstream"`
	// CredentialsSecretRef, when set, names a Secret key whose value replaces the client's
	// credential on legacy traffic.
	// +optional
	CredentialsSecretRef *SecretKeyReference `json:"credentialsSecretRef,omitempty"`
}

// PostHogTarget is where a team's events go.
type PostHogTarget struct {
	// ProjectAPIKeySecretRef names the Secret key holding the project API key (phc_...).
	ProjectAPIKeySecretRef SecretKeyReference `json:"projectAPIKeySecretRef"`
	// Host overrides the capture host (https://us.i.posthog.com).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''",message="must be an http(s) URL"
	Host string `json:"host,omitempty"`
}

// TeamRolloutStatus is the observed state of a TeamRollout.
type TeamRolloutStatus struct {
	CommonStatus `json:",inline"`
}

// TeamRollout is a team's record at the gateway's ingress.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=llmtr,categories=llmgateway
// +kubebuilder:metadata:annotations="argocd.argoproj.io/sync-wave=-1"
// +kubebuilder:printcolumn:name="Team",type=string,JSONPath=`.spec.team`
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=`.spec.stage`
// +kubebuilder:printcolumn:name="Canary",type=integer,JSONPath=`.spec.canaryPercent`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Programmed",type=string,JSONPath=`.status.conditions[?(@.type=="Programmed")].message`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TeamRollout struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TeamRolloutSpec   `json:"spec"`
	Status TeamRolloutStatus `json:"status,omitempty"`
}

// GetCommonStatus implements Object.
func (r *TeamRollout) GetCommonStatus() *CommonStatus { return &r.Status.CommonStatus }

// TeamRolloutList is a list of TeamRollouts.
//
// +kubebuilder:object:root=true
type TeamRolloutList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TeamRollout `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TeamRollout{}, &TeamRolloutList{})
}
