/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

// Package v1alpha1 holds the llm-gateway custom resources: LLMRoute, ProviderBackend,
// TeamBudget and TeamRollout. The operator compiles them into one snapshot
// (github.com/posthog/llm-gateway/dataplane/snapshot) that the gateway pods serve.
//
// +kubebuilder:object:generate=true
// +groupName=llmgateway.posthog.com
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "llmgateway.posthog.com", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
