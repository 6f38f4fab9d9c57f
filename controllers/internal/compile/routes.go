/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package compile

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

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
	if out.Shape != snapshot.ShapeOpenAI && out.Shape != snapshot.ShapeAnthropic {
		v.invalidf("spec.shape %q must be OpenAI or Anthropic", s.Shape)
	}
	c.routeModels(v, &s.Models, &out)
	validateRouteBackends(v, s.Backends)
	validateFailover(v, s.Failover)
	out.Limits = routeLimits(v, s.Limits)

	// References: every backend must exist, be in the snapshot and serve the route's shape.
	for _, rb := range s.Backends {
		name := r.Namespace + "/" + rb.Name
		b, ok := c.backends[name]
		switch {
		case !ok && c.allBackends[name]:
			v.ref(v1alpha1.ReasonBackendRejected, "ProviderBackend %s is not in the snapshot (see its conditions)", name)
		case !ok:
			v.ref(v1alpha1.ReasonBackendNotFound, "ProviderBackend %s not found", name)
		case snapshot.ShapeOf(b.Provider) != out.Shape:
			v.ref(v1alpha1.ReasonShapeMismatch, "ProviderBackend %s (%s) serves the %s shape, not %s", name, b.Provider, snapshot.ShapeOf(b.Provider), out.Shape)
			v.reject(v1alpha1.ReasonShapeMismatch, "ProviderBackend %s (%s) serves the %s shape, not %s: the gateway never translates between shapes",
				name, b.Provider, snapshot.ShapeOf(b.Provider), out.Shape)
		default:
			w := 1
			if rb.Weight != nil {
				w = int(*rb.Weight)
			}
			out.Backends = append(out.Backends, snapshot.RouteBackend{Backend: name, Priority: int(rb.Priority), Weight: w})
		}
	}

	if v.accepted() {
		if msg := claims.conflict(&s.Models); msg != "" {
			v.reject(v1alpha1.ReasonConflicted, "%s", msg)
		} else {
			claims.claim(&s.Models, out.Name)
		}
	}

	out.Failover = snapshot.Failover{On: slices.Clone(snapshot.AllFailoverClasses), MaxAttempts: len(out.Backends)}
	if f := s.Failover; f != nil {
		if len(f.Classes) > 0 {
			out.Failover.On = make([]string, len(f.Classes))
			for i, cl := range f.Classes {
				out.Failover.On[i] = string(cl)
			}
		}
		if f.MaxAttempts > 0 {
			out.Failover.MaxAttempts = int(f.MaxAttempts)
		}
		out.Failover.PerTryTimeoutMs = millis(v, "spec.failover.perTryTimeout", f.PerTryTimeout)
	}

	included := v.accepted() && len(out.Backends) > 0
	if included {
		partial := snapshot.Snapshot{Routes: []snapshot.Route{out}}
		for _, rb := range out.Backends {
			partial.Backends = append(partial.Backends, *c.backends[rb.Backend])
		}
		if err := checkContract(partial); err != nil {
			v.invalidf("%v", err)
			included = false
		}
	}
	c.record(v, included)
	return out, included
}

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

func checkModel(v *verdict, field, name string) {
	if len(name) == 0 || len(name) > 128 || !modelPattern.MatchString(name) {
		v.invalidf("%s: %q is not a valid model name", field, name)
	}
}

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

func validateFailover(v *verdict, f *v1alpha1.FailoverPolicy) {
	if f == nil {
		return
	}
	seen := map[v1alpha1.FailoverClass]bool{}
	for _, cl := range f.Classes {
		if !slices.Contains(snapshot.AllFailoverClasses, string(cl)) {
			v.invalidf("spec.failover.classes: unknown failure class %q", cl)
		}
		if seen[cl] {
			v.invalidf("spec.failover.classes: %q is listed twice", cl)
		}
		seen[cl] = true
	}
	if f.MaxAttempts < 0 {
		v.invalidf("spec.failover.maxAttempts must be at least 1")
	}
}

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
