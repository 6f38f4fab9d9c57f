/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Condition types every kind reports in status.conditions.
const (
	// ConditionAccepted: the spec is valid and does not conflict with another object.
	ConditionAccepted = "Accepted"
	// ConditionResolvedRefs: every object the spec names (backends, Secrets and their keys,
	// the team's TeamRollout) exists and is usable.
	ConditionResolvedRefs = "ResolvedRefs"
	// ConditionProgrammed: the object is in the newest snapshot and every connected gateway
	// replica serves that snapshot ("N/M replicas at version X").
	ConditionProgrammed = "Programmed"
)

// Condition reasons. Kubernetes events about a condition use the same reason string.
const (
	// ReasonAccepted: Accepted=True.
	ReasonAccepted = "Accepted"
	// ReasonInvalid: the spec breaks a rule that the API server could not check (or the
	// object was read from a file with no API server in front, as in `operator compile`).
	ReasonInvalid = "Invalid"
	// ReasonConflicted: another, older object claims the same thing (a model name, a team's
	// budget or rollout, the cluster default budget, an API key or a product).
	ReasonConflicted = "Conflicted"
	// ReasonBackendNotFound: a route names a ProviderBackend that does not exist.
	ReasonBackendNotFound = "BackendNotFound"
	// ReasonBackendRejected: a route names a ProviderBackend that exists but is left out of
	// the snapshot (its own conditions say why).
	ReasonBackendRejected = "BackendRejected"
	// ReasonShapeMismatch: a route names a backend that serves the other wire shape; the
	// gateway never translates between shapes.
	ReasonShapeMismatch = "ShapeMismatch"
	// ReasonSecretNotFound: a referenced Secret does not exist.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretKeyMissing: a referenced Secret exists but lacks the key.
	ReasonSecretKeyMissing = "SecretKeyMissing"
	// ReasonTeamNotFound: a TeamBudget names a team that no TeamRollout declares.
	ReasonTeamNotFound = "TeamNotFound"
	// ReasonResolvedRefs: ResolvedRefs=True.
	ReasonResolvedRefs = "ResolvedRefs"
	// ReasonProgrammed: Programmed=True, every connected replica serves the newest snapshot.
	ReasonProgrammed = "Programmed"
	// ReasonPending: the object is in the newest snapshot but not every replica serves it yet
	// (or no replica has connected), or the operator has not compiled this generation yet.
	ReasonPending = "Pending"
)

// Money is an amount in US dollars as a decimal string with at most six decimals, greater
// than zero: "100", "49.99", "0.000001". The compiler turns it into integer micro-dollars.
//
// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$`
// +kubebuilder:validation:MaxLength=20
// +kubebuilder:validation:XValidation:rule="self.matches('[1-9]')",message="must be greater than 0"
type Money string

// PricePerMTok is a price in US dollars per million tokens as a decimal string with at most
// six decimals ("3", "0.30"); zero is allowed. The compiler turns it into integer
// micro-dollars per million tokens.
//
// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$`
// +kubebuilder:validation:MaxLength=20
type PricePerMTok string

// LocalSecretReference names a Secret in the namespace of the referring object.
type LocalSecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// SecretKeyReference names one key of a Secret in the namespace of the referring object.
type SecretKeyReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key in the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// CommonStatus is the part of status every kind shares.
type CommonStatus struct {
	// ObservedGeneration is the metadata.generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Accepted, ResolvedRefs, Programmed. A TeamBudget in the snapshot also has
	// Suspended, RunawayTripped, Exhausted, SoftLimitReached and CounterStoreAvailable.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// Object is implemented by every kind of this package: a Kubernetes object with the common
// status.
//
// +kubebuilder:object:generate=false
type Object interface {
	metav1.Object
	runtime.Object
	// GetCommonStatus returns a pointer to the object's common status, for in-place updates.
	GetCommonStatus() *CommonStatus
}
