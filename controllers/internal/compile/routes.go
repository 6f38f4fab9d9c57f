/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package compile

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// modelPattern is the Pattern of the ModelName type in api/v1alpha1/llmroute_types.go.
var modelPattern = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9._:/@]*$`)

// modelClaims records which route owns each model name, alias and prefix.
type modelClaims struct {
	names    map[string]string // exact model or alias -> route namespace/name
	prefixes map[string]string
}

func newModelClaims() *modelClaims {
	return &modelClaims{names: map[string]string{}, prefixes: map[string]string{}}
}

// conflict returns a message for the first name, alias or prefix of m that another route
// already owns, or "".
func (mc *modelClaims) conflict(m *v1alpha1.RouteModels) string {
	for _, n := range exactNames(m) {
		if other, ok := mc.names[n]; ok {
			return fmt.Sprintf("model %q is already claimed by LLMRoute %s", n, other)
		}
	}
	for _, p := range m.Prefixes {
		if other, ok := mc.prefixes[string(p)]; ok {
			return fmt.Sprintf("prefix %q is already claimed by LLMRoute %s", p, other)
		}
	}
	return ""
}

func (mc *modelClaims) claim(m *v1alpha1.RouteModels, route string) {
	for _, n := range exactNames(m) {
		mc.names[n] = route
	}
	for _, p := range m.Prefixes {
		mc.prefixes[string(p)] = route
	}
}

func exactNames(m *v1alpha1.RouteModels) []string {
	out := make([]string, 0, len(m.Names)+len(m.Aliases))
	for _, n := range m.Names {
		out = append(out, string(n))
	}
	for _, a := range m.Aliases {
		out = append(out, string(a.Name))
	}
	return out
}

func (c *compiler) route(r *v1alpha1.LLMRoute, claims *modelClaims) (snapshot.Route, bool) {
	v := newVerdict(KindLLMRoute, r)
	s := &r.Spec
	out := snapshot.Route{Name: nsName(r), Shape: snapshot.Shape(s.Shape)}
	// Backstop for the schema enum of spec.shape (api/v1alpha1/llmroute_types.go).
	if !out.Shape.Valid() {
		v.invalidf("spec.shape %q must be OpenAI or Anthropic", s.Shape)
	}
	c.routeModels(v, &s.Models, &out)
	validateRouteBackends(v, s.Backends)
	out.Backends = c.routeTargets(v, r, out.Shape)
	out.Failover = failover(v, s.Failover, len(out.Backends))
	out.Limits = routeLimits(v, s.Limits)

	included := v.accepted() && len(out.Backends) > 0 && v.contract(out.Validate())
	// A route that is Accepted claims its models even while it has no backend to serve them.
	if v.accepted() {
		if msg := claims.conflict(&s.Models); msg != "" {
			v.reject(v1alpha1.ReasonConflicted, "%s", msg)
			included = false
		} else {
			claims.claim(&s.Models, out.Name)
		}
	}
	if included {
		c.coverage(v, &out)
	}
	c.record(v, included)
	return out, included
}

// maxUnpricedInMessage bounds how many models the CatalogCoverage message names (the
// warnings of `operator compile` name them all).
const maxUnpricedInMessage = 20

// coverage sets the CatalogCoverage of a route in the snapshot: whether the catalog (with the
// backends' pricing overrides) prices every model the route serves by name at each of its
// backends, as the gateway will price a call (catalog.Unpriced). The result depends only on
// the compiled objects and the catalog built into the operator, so it does not flap.
func (c *compiler) coverage(v *verdict, r *snapshot.Route) {
	v.unpriced = c.catalog.Unpriced(r, func(name string) *snapshot.Backend { return c.backends[name] })
	cond := metav1.Condition{Type: v1alpha1.ConditionCatalogCoverage}
	if len(v.unpriced) == 0 {
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonModelsPriced
		cond.Message = "the catalog prices every model the route serves by name at each of its backends"
		if len(r.Prefixes) > 0 {
			cond.Message += " (models matched by a prefix cannot be listed and are not checked)"
		}
		v.coverage = &cond
		return
	}
	parts := make([]string, 0, min(len(v.unpriced), maxUnpricedInMessage)+1)
	for i, u := range v.unpriced {
		if i == maxUnpricedInMessage {
			parts = append(parts, fmt.Sprintf("and %d more", len(v.unpriced)-i))
			break
		}
		parts = append(parts, u.Model+" at "+strings.Join(u.Backends, ", "))
	}
	cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonUnpricedModels
	cond.Message = fmt.Sprintf("no catalog price for %s: calls for these models there are unpriced "+
		"(the team budget's unpriced policy applies); add pricing to the ProviderBackend or refresh the catalog",
		strings.Join(parts, "; "))
	v.coverage = &cond
}

// routeTargets resolves the route's backends: each must be in the snapshot and serve the
// route's shape. These compiler rules need other objects and give the condition reasons
// (BackendNotFound, BackendRejected, ShapeMismatch); Seal checks both again across the whole
// snapshot, as the backstop.
func (c *compiler) routeTargets(v *verdict, r *v1alpha1.LLMRoute, shape snapshot.Shape) []snapshot.RouteBackend {
	var out []snapshot.RouteBackend
	for _, rb := range r.Spec.Backends {
		name := r.Namespace + "/" + rb.Name
		b, ok := c.backends[name]
		switch {
		case !ok && c.allBackends[name]:
			v.ref(v1alpha1.ReasonBackendRejected, "ProviderBackend %s is not in the snapshot (see its conditions)", name)
		case !ok:
			v.ref(v1alpha1.ReasonBackendNotFound, "ProviderBackend %s not found", name)
		case snapshot.ShapeOf(b.Provider) != shape:
			v.ref(v1alpha1.ReasonShapeMismatch, "ProviderBackend %s (%s) serves the %s shape, not %s", name, b.Provider, snapshot.ShapeOf(b.Provider), shape)
			v.reject(v1alpha1.ReasonShapeMismatch, "ProviderBackend %s (%s) serves the %s shape, not %s: the gateway never translates between shapes",
				name, b.Provider, snapshot.ShapeOf(b.Provider), shape)
		default:
			w := 1 // the documented default weight of RouteBackend
			if rb.Weight != nil {
				w = int(*rb.Weight)
			}
			out = append(out, snapshot.RouteBackend{Backend: name, Priority: int(rb.Priority), Weight: w})
		}
	}
	return out
}

// routeModels converts the route's model names, aliases and prefixes. Each check is a backstop
// for the schema or a CEL rule of RouteModels and ModelName (api/v1alpha1/llmroute_types.go):
// at least one name, alias or prefix; the ModelName pattern; list-set and list-map keys that
// appear once; no alias also listed in names.
func (c *compiler) routeModels(v *verdict, m *v1alpha1.RouteModels, out *snapshot.Route) {
	if len(m.Names)+len(m.Aliases)+len(m.Prefixes) == 0 {
		v.invalidf("models needs at least one name, alias or prefix")
	}
	seen := map[string]bool{}
	for _, n := range m.Names {
		checkModel(v, "spec.models.names", string(n))
		if seen[string(n)] {
			v.invalidf("spec.models.names: %q is listed twice", n)
		}
		seen[string(n)] = true
		out.Models = append(out.Models, string(n))
	}
	for _, a := range m.Aliases {
		checkModel(v, "spec.models.aliases.name", string(a.Name))
		checkModel(v, "spec.models.aliases.model", string(a.Model))
		if seen[string(a.Name)] {
			if slices.Contains(m.Names, a.Name) {
				v.invalidf("an alias must not also be listed in names (%q)", a.Name)
			} else {
				v.invalidf("spec.models.aliases: %q is listed twice", a.Name)
			}
		}
		seen[string(a.Name)] = true
		if out.Aliases == nil {
			out.Aliases = map[string]string{}
		}
		out.Aliases[string(a.Name)] = string(a.Model)
	}
	seenPrefix := map[string]bool{}
	for _, p := range m.Prefixes {
		checkModel(v, "spec.models.prefixes", string(p))
		if seenPrefix[string(p)] {
			v.invalidf("spec.models.prefixes: %q is listed twice", p)
		}
		seenPrefix[string(p)] = true
		out.Prefixes = append(out.Prefixes, string(p))
	}
	if out.Models == nil {
		out.Models = []string{}
	}
}

// checkModel is the backstop for the schema of ModelName (MinLength, MaxLength, Pattern).
func checkModel(v *verdict, field, name string) {
	if len(name) == 0 || len(name) > 128 || !modelPattern.MatchString(name) {
		v.invalidf("%s: %q is not a valid model name", field, name)
	}
}

// validateRouteBackends is the backstop for the schema and the CEL rule of
// LLMRouteSpec.backends (api/v1alpha1/llmroute_types.go): 1 to 16 backends, each named once,
// priority 0-100, weight 1-10000, and a weight on every backend of a shared priority.
func validateRouteBackends(v *verdict, backends []v1alpha1.RouteBackend) {
	if len(backends) == 0 {
		v.invalidf("spec.backends needs at least one backend")
	}
	if len(backends) > 16 {
		v.invalidf("spec.backends has more than 16 backends")
	}
	seen := map[string]bool{}
	for i, b := range backends {
		if b.Name == "" {
			v.invalidf("spec.backends[%d].name is required", i)
		}
		if seen[b.Name] {
			v.invalidf("spec.backends: %q is listed twice", b.Name)
		}
		seen[b.Name] = true
		if b.Priority < 0 || b.Priority > 100 {
			v.invalidf("spec.backends[%d].priority must be 0-100", i)
		}
		if b.Weight != nil && (*b.Weight < 1 || *b.Weight > 10000) {
			v.invalidf("spec.backends[%d].weight must be 1-10000", i)
		}
	}
	for i, a := range backends {
		for _, b := range backends[i+1:] {
			if a.Priority == b.Priority && (a.Weight == nil || b.Weight == nil) {
				v.invalidf("backends that share a priority form a weight group and must all set a weight (%s and %s at priority %d)",
					a.Name, b.Name, a.Priority)
			}
		}
	}
}

// failover converts the failover policy, with its documented defaults: every failure class,
// as many attempts as the route has backends. The checks on classes and maxAttempts are
// backstops for the schema of FailoverPolicy (the class enum, a list set, Minimum=1), with the
// snapshot's definition of a class (snapshot.IsFailoverClass).
func failover(v *verdict, f *v1alpha1.FailoverPolicy, backends int) snapshot.Failover {
	out := snapshot.Failover{On: slices.Clone(snapshot.AllFailoverClasses), MaxAttempts: backends}
	if f == nil {
		return out
	}
	seen := map[v1alpha1.FailoverClass]bool{}
	for _, cl := range f.Classes {
		if !snapshot.IsFailoverClass(string(cl)) {
			v.invalidf("spec.failover.classes: unknown failure class %q", cl)
		}
		if seen[cl] {
			v.invalidf("spec.failover.classes: %q is listed twice", cl)
		}
		seen[cl] = true
	}
	if len(f.Classes) > 0 {
		out.On = make([]string, len(f.Classes))
		for i, cl := range f.Classes {
			out.On[i] = string(cl)
		}
	}
	if f.MaxAttempts < 0 {
		v.invalidf("spec.failover.maxAttempts must be at least 1")
	}
	if f.MaxAttempts > 0 {
		out.MaxAttempts = int(f.MaxAttempts)
	}
	out.PerTryTimeoutMs = millis(v, "spec.failover.perTryTimeout", f.PerTryTimeout)
	return out
}

// routeLimits converts the request limits. The checks are backstops for the schema
// (Minimum=1, Minimum=1024) and the CEL rule "defaultMaxTokens must not exceed maxTokens" of
// RequestLimits (api/v1alpha1/llmroute_types.go).
func routeLimits(v *verdict, l *v1alpha1.RequestLimits) snapshot.RequestLimits {
	if l == nil {
		return snapshot.RequestLimits{}
	}
	if l.DefaultMaxTokens < 0 || l.MaxTokens < 0 {
		v.invalidf("spec.limits: token limits must be at least 1")
	}
	if l.MaxBodyBytes != 0 && l.MaxBodyBytes < 1024 {
		v.invalidf("spec.limits.maxBodyBytes must be at least 1024")
	}
	if l.DefaultMaxTokens > 0 && l.MaxTokens > 0 && l.DefaultMaxTokens > l.MaxTokens {
		v.invalidf("defaultMaxTokens must not exceed maxTokens")
	}
	return snapshot.RequestLimits{DefaultMaxTokens: l.DefaultMaxTokens, MaxMaxTokens: l.MaxTokens, MaxBodyBytes: l.MaxBodyBytes}
}
