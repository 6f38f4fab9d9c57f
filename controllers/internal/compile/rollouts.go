/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package compile

import (
	"fmt"
	"regexp"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// teamClaims records which TeamRollout owns each team, product and API key.
type teamClaims struct {
	teams    map[string]string // team -> TeamRollout namespace/name
	products map[string]string // product -> team
	keys     map[string]string // API key hash -> team
}

func newTeamClaims() *teamClaims {
	return &teamClaims{teams: map[string]string{}, products: map[string]string{}, keys: map[string]string{}}
}

func validTeam(v *verdict, field, team string) {
	if len(team) > 63 || !dnsLabel.MatchString(team) {
		v.invalidf("%s %q must be lowercase letters, digits and dashes (at most 63)", field, team)
	}
}

func (c *compiler) rollout(r *v1alpha1.TeamRollout, claims *teamClaims) (snapshot.Team, bool) {
	v := newVerdict(KindTeamRollout, r)
	s := &r.Spec
	out := snapshot.Team{
		Name: s.Team,
		Rollout: snapshot.Rollout{
			Stage:    string(s.Stage),
			StickyBy: string(s.StickyBy),
		},
	}
	validTeam(v, "spec.team", s.Team)
	seen := map[v1alpha1.Product]bool{}
	for _, p := range s.Products {
		if len(p) > 63 || !dnsLabel.MatchString(string(p)) || p == "v1" {
			v.invalidf("spec.products: %q must be lowercase letters, digits and dashes, and not v1", p)
		}
		if seen[p] {
			v.invalidf("spec.products: %q is listed twice", p)
		}
		seen[p] = true
		out.Products = append(out.Products, string(p))
	}
	if len(s.Products) == 0 && len(s.APIKeys) == 0 {
		v.invalidf("a team needs at least one product or API key to be recognised")
	}
	switch s.Stage {
	case v1alpha1.StageLegacy, v1alpha1.StageGateway:
		if s.CanaryPercent != nil {
			v.invalidf("canaryPercent is only allowed with stage Canary")
		}
	case v1alpha1.StageCanary:
		if s.CanaryPercent == nil {
			v.invalidf("stage Canary needs canaryPercent")
		} else if *s.CanaryPercent < 0 || *s.CanaryPercent > 100 {
			v.invalidf("spec.canaryPercent must be 0-100")
		} else {
			out.Rollout.CanaryPercent = int(*s.CanaryPercent)
		}
	default:
		v.invalidf("spec.stage %q must be Legacy, Canary or Gateway", s.Stage)
	}
	switch s.StickyBy {
	case "":
		out.Rollout.StickyBy = string(v1alpha1.StickyByDistinctID)
	case v1alpha1.StickyByDistinctID, v1alpha1.StickyByTraceID:
	default:
		v.invalidf("spec.stickyBy %q must be DistinctId or TraceId", s.StickyBy)
	}
	if s.Stage != v1alpha1.StageGateway && s.Legacy == nil {
		v.invalidf("stages Legacy and Canary need legacy.upstream")
	}
	if l := s.Legacy; l != nil {
		if !httpURL(l.Upstream) {
			v.invalidf("spec.legacy.upstream must be an http(s) URL")
		}
		out.Rollout.LegacyUpstream = l.Upstream
		if ref := l.CredentialsSecretRef; ref != nil {
			out.Rollout.LegacyAPIKey, _ = c.secretValue(v, r.Namespace, ref.Name, ref.Key, "spec.legacy.credentialsSecretRef")
		}
	}
	if ph := s.PostHog; ph != nil {
		if ph.Host != "" && !httpURL(ph.Host) {
			v.invalidf("spec.posthog.host must be an http(s) URL")
		}
		out.PostHogHost = ph.Host
		ref := ph.ProjectAPIKeySecretRef
		out.PostHogAPIKey, _ = c.secretValue(v, r.Namespace, ref.Name, ref.Key, "spec.posthog.projectAPIKeySecretRef")
	}
	keyRefs := map[string]string{} // hash -> "Secret ns/name key k", for conflict messages
	for i, k := range s.APIKeys {
		field := fmt.Sprintf("spec.apiKeys[%d].secretRef", i)
		key, ok := c.secretValue(v, r.Namespace, k.SecretRef.Name, k.SecretRef.Key, field)
		if !ok {
			continue
		}
		h := snapshot.HashAPIKey(key)
		out.APIKeyHashes = append(out.APIKeyHashes, h)
		keyRefs[h] = fmt.Sprintf("Secret %s/%s key %q", r.Namespace, k.SecretRef.Name, k.SecretRef.Key)
	}

	if v.accepted() {
		if other, ok := claims.teams[s.Team]; ok {
			v.reject(v1alpha1.ReasonConflicted, "team %s is already declared by TeamRollout %s", s.Team, other)
		}
		for _, p := range out.Products {
			if other, ok := claims.products[p]; ok && other != s.Team {
				v.reject(v1alpha1.ReasonConflicted, "product %q is already claimed by team %s", p, other)
			}
		}
		for _, h := range out.APIKeyHashes {
			if other, ok := claims.keys[h]; ok && other != s.Team {
				v.reject(v1alpha1.ReasonConflicted, "the API key in %s is already used by team %s", keyRefs[h], other)
			}
		}
	}
	included := v.accepted() && len(v.refs) == 0
	if included {
		if err := checkContract(snapshot.Snapshot{Teams: []snapshot.Team{out}}); err != nil {
			v.invalidf("%v", err)
			included = false
		}
	}
	if v.accepted() {
		claims.teams[s.Team] = nsName(r)
		for _, p := range out.Products {
			claims.products[p] = s.Team
		}
		if included {
			for _, h := range out.APIKeyHashes {
				claims.keys[h] = s.Team
			}
		}
	}
	c.record(v, included)
	return out, included
}
