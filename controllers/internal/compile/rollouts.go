/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package compile

import (
	"fmt"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// teamClaims records which TeamRollout owns each team, product and API key.
type teamClaims struct {
	teams    map[string]string // team -> TeamRollout namespace/name
	products map[string]string // product -> team
	keys     map[string]string // API key hash -> team
}

func newTeamClaims() *teamClaims {
	return &teamClaims{teams: map[string]string{}, products: map[string]string{}, keys: map[string]string{}}
}

// conflict rejects the team (reason Conflicted) when an older TeamRollout declares it or
// another team owns one of its products or API keys. keyRefs names the Secret of each key.
func (tc *teamClaims) conflict(v *verdict, t *snapshot.Team, keyRefs map[string]string) {
	if other, ok := tc.teams[t.Name]; ok {
		v.reject(v1alpha1.ReasonConflicted, "team %s is already declared by TeamRollout %s", t.Name, other)
	}
	for _, p := range t.Products {
		if other, ok := tc.products[p]; ok && other != t.Name {
			v.reject(v1alpha1.ReasonConflicted, "product %q is already claimed by team %s", p, other)
		}
	}
	for _, h := range t.APIKeyHashes {
		if other, ok := tc.keys[h]; ok && other != t.Name {
			v.reject(v1alpha1.ReasonConflicted, "the API key in %s is already used by team %s", keyRefs[h], other)
		}
	}
}

// claim records an Accepted team: its name and products (held even while a reference is
// unresolved), and its API keys once it is in the snapshot.
func (tc *teamClaims) claim(t *snapshot.Team, rollout string, included bool) {
	tc.teams[t.Name] = rollout
	for _, p := range t.Products {
		tc.products[p] = t.Name
	}
	if included {
		for _, h := range t.APIKeyHashes {
			tc.keys[h] = t.Name
		}
	}
}

// checkTeamName is the backstop for the schema Pattern and MaxLength of a team name
// (TeamRolloutSpec.team, TeamBudgetSpec.team), with the snapshot's definition of a DNS label.
func checkTeamName(v *verdict, field, team string) {
	if !snapshot.IsDNSLabel(team) {
		v.invalidf("%s %q must be lowercase letters, digits and dashes (at most 63)", field, team)
	}
}

func (c *compiler) rollout(r *v1alpha1.TeamRollout, claims *teamClaims) (snapshot.Team, bool) {
	v := newVerdict(KindTeamRollout, r)
	s := &r.Spec
	out := snapshot.Team{Name: s.Team}
	checkTeamName(v, "spec.team", s.Team)
	out.Products = products(v, s.Products)
	// Backstop for the CEL rule "a team needs at least one product or API key to be
	// recognised" of TeamRolloutSpec (api/v1alpha1/teamrollout_types.go).
	if len(s.Products) == 0 && len(s.APIKeys) == 0 {
		v.invalidf("a team needs at least one product or API key to be recognised")
	}
	out.Rollout = c.rolloutStage(v, r)
	c.posthog(v, r, &out)
	keyRefs := c.apiKeys(v, r, &out)

	if v.accepted() {
		claims.conflict(v, &out, keyRefs)
	}
	included := v.accepted() && len(v.refs) == 0 && v.contract(out.Validate())
	if v.accepted() {
		claims.claim(&out, nsName(r), included)
	}
	c.record(v, included)
	return out, included
}

// products converts the team's products. The checks are backstops for the schema and CEL rule
// of Product (a DNS label, not v1) and the list set of TeamRolloutSpec.products, with the
// snapshot's definition of a product name (snapshot.ValidProduct).
func products(v *verdict, in []v1alpha1.Product) []string {
	var out []string
	seen := map[v1alpha1.Product]bool{}
	for _, p := range in {
		if !snapshot.ValidProduct(string(p)) {
			v.invalidf("spec.products: %q must be lowercase letters, digits and dashes, and not v1", p)
		}
		if seen[p] {
			v.invalidf("spec.products: %q is listed twice", p)
		}
		seen[p] = true
		out = append(out, string(p))
	}
	return out
}

// rolloutStage converts the stage, canary and legacy settings. The checks are backstops for
// the schema (stage and stickyBy enums, canaryPercent 0-100, the legacy upstream's URL rule)
// and the CEL rules of TeamRolloutSpec (api/v1alpha1/teamrollout_types.go), with their
// messages; the snapshot's Rollout.Validate checks the result again as their backstop.
func (c *compiler) rolloutStage(v *verdict, r *v1alpha1.TeamRollout) snapshot.Rollout {
	s := &r.Spec
	out := snapshot.Rollout{Stage: string(s.Stage), CanaryPercent: canaryPercent(v, s), StickyBy: string(s.StickyBy)}
	switch s.StickyBy {
	case "":
		out.StickyBy = snapshot.StickyDistinctID // the CRD's +kubebuilder:default
	case v1alpha1.StickyByDistinctID, v1alpha1.StickyByTraceID:
	default:
		v.invalidf("spec.stickyBy %q must be DistinctId or TraceId", s.StickyBy)
	}
	if s.Stage != v1alpha1.StageGateway && s.Legacy == nil {
		v.invalidf("stages Legacy and Canary need legacy.upstream")
	}
	if l := s.Legacy; l != nil {
		if !snapshot.HTTPURL(l.Upstream) {
			v.invalidf("spec.legacy.upstream must be an http(s) URL")
		}
		out.LegacyUpstream = l.Upstream
		if ref := l.CredentialsSecretRef; ref != nil {
			out.LegacyAPIKey, _ = c.secretValue(v, r.Namespace, ref.Name, ref.Key, "spec.legacy.credentialsSecretRef")
		}
	}
	return out
}

// canaryPercent checks the stage and returns the canary percent for the snapshot (0 unless the
// stage is Canary). Set or unset matters here, which the snapshot (an int) cannot tell.
func canaryPercent(v *verdict, s *v1alpha1.TeamRolloutSpec) int {
	switch s.Stage {
	case v1alpha1.StageLegacy, v1alpha1.StageGateway:
		if s.CanaryPercent != nil {
			v.invalidf("canaryPercent is only allowed with stage Canary")
		}
	case v1alpha1.StageCanary:
		switch p := s.CanaryPercent; {
		case p == nil:
			v.invalidf("stage Canary needs canaryPercent")
		case *p < 0 || *p > 100:
			v.invalidf("spec.canaryPercent must be 0-100")
		default:
			return int(*p)
		}
	default:
		v.invalidf("spec.stage %q must be Legacy, Canary or Gateway", s.Stage)
	}
	return 0
}

// posthog sets where the team's events go. The host check is the backstop for the CEL rule on
// PostHogTarget.host, with the snapshot's definition of an http(s) URL.
func (c *compiler) posthog(v *verdict, r *v1alpha1.TeamRollout, out *snapshot.Team) {
	ph := r.Spec.PostHog
	if ph == nil {
		return
	}
	if ph.Host != "" && !snapshot.HTTPURL(ph.Host) {
		v.invalidf("spec.posthog.host must be an http(s) URL")
	}
	out.PostHogHost = ph.Host
	ref := ph.ProjectAPIKeySecretRef
	out.PostHogAPIKey, _ = c.secretValue(v, r.Namespace, ref.Name, ref.Key, "spec.posthog.projectAPIKeySecretRef")
}

// apiKeys reads the team's API keys from their Secrets into hashes. It returns, for each hash,
// the Secret key it came from (for conflict messages; never the key itself).
func (c *compiler) apiKeys(v *verdict, r *v1alpha1.TeamRollout, out *snapshot.Team) map[string]string {
	refs := map[string]string{}
	for i, k := range r.Spec.APIKeys {
		field := fmt.Sprintf("spec.apiKeys[%d].secretRef", i)
		key, ok := c.secretValue(v, r.Namespace, k.SecretRef.Name, k.SecretRef.Key, field)
		if !ok {
			continue
		}
		h := snapshot.HashAPIKey(key)
		out.APIKeyHashes = append(out.APIKeyHashes, h)
		refs[h] = fmt.Sprintf("Secret %s/%s key %q", r.Namespace, k.SecretRef.Name, k.SecretRef.Key)
	}
	return refs
}
