/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package compile

import (
	"fmt"
	"slices"
	"time"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

const clusterDefaultClaim = "\x00cluster-default"

func (c *compiler) budget(b *v1alpha1.TeamBudget, claims map[string]string, snap *snapshot.Snapshot) {
	v := newVerdict(KindTeamBudget, b)
	s := &b.Spec
	out := budgetSpec(v, b)

	claim := s.Team
	switch {
	// Backstop for the CEL rule "set exactly one of team or clusterDefault: true" of
	// TeamBudgetSpec (api/v1alpha1/teambudget_types.go).
	case s.ClusterDefault && s.Team != "":
		v.invalidf("set exactly one of team or clusterDefault: true")
	case s.ClusterDefault:
		claim = clusterDefaultClaim
	case s.Team == "":
		v.invalidf("set exactly one of team or clusterDefault: true")
	default:
		checkTeamName(v, "spec.team", s.Team)
	}

	if v.accepted() {
		switch other, ok := claims[claim]; {
		case ok && claim == clusterDefaultClaim:
			v.reject(v1alpha1.ReasonConflicted, "TeamBudget %s is already the cluster default", other)
		case ok:
			v.reject(v1alpha1.ReasonConflicted, "team %s already has TeamBudget %s", s.Team, other)
		default:
			claims[claim] = nsName(b)
		}
	}
	var team *snapshot.Team
	if !s.ClusterDefault && s.Team != "" {
		if team = c.teams[s.Team]; team == nil {
			v.ref(v1alpha1.ReasonTeamNotFound, "no TeamRollout in the snapshot declares team %s; the budget applies once one does", s.Team)
		}
	}

	included := v.accepted() && len(v.refs) == 0 && v.contract(out.Validate())
	if included {
		if team != nil {
			team.Budget = &out
		} else {
			snap.DefaultBudget = out
		}
	}
	c.record(v, included)
}

// budgetSpec converts a TeamBudget spec into the snapshot's budget, recording every rule the
// spec breaks on v. Each check is a backstop for the schema or a CEL rule of TeamBudgetSpec
// (api/v1alpha1/teambudget_types.go, api/v1alpha1/common.go for Money), with its message; the
// snapshot's Budget.Validate is in turn the compiler's backstop for the budget it builds.
func budgetSpec(v *verdict, b *v1alpha1.TeamBudget) snapshot.Budget {
	s := &b.Spec
	out := snapshot.Budget{
		Source:             nsName(b),
		Suspended:          s.Suspended,
		Limits:             spendLimits(v, s.Limits),
		OnStoreUnavailable: string(s.OnStoreUnavailable),
		Unpriced:           string(s.UnpricedModels),
	}
	if s.MaxRequestCost != "" {
		out.MaxRequestCostMicros = money(v, "spec.maxRequestCost", s.MaxRequestCost)
	}
	if rl := s.RateLimits; rl != nil {
		// Backstop for the schema's Minimum=1 on each rate limit.
		if rl.RequestsPerMinute < 0 || rl.TokensPerMinute < 0 || rl.ConcurrentRequests < 0 {
			v.invalidf("spec.rateLimits must not be negative")
		}
		out.RequestsPerMinute, out.TokensPerMinute, out.MaxConcurrent = rl.RequestsPerMinute, rl.TokensPerMinute, rl.ConcurrentRequests
	}
	if r := s.Runaway; r != nil {
		// Backstop for the CEL rule "cooldown must be at least 1s" of RunawayBreaker.
		if r.Cooldown.Duration < time.Second {
			v.invalidf("cooldown must be at least 1s")
		}
		out.Runaway = &snapshot.Runaway{
			SpendPerMinuteMicros: money(v, "spec.runaway.spendPerMinute", r.SpendPerMinute),
			CooldownSeconds:      int64((r.Cooldown.Duration + time.Second - 1) / time.Second),
		}
	}
	// Backstops for the schema enums of onStoreUnavailable and unpricedModels. An empty value
	// gets the CRD's +kubebuilder:default, which the API server applies and offline input lacks.
	switch s.OnStoreUnavailable {
	case "":
		out.OnStoreUnavailable = snapshot.FailClosed
	case v1alpha1.FailClosed, v1alpha1.FailOpen:
	default:
		v.invalidf("spec.onStoreUnavailable %q must be FailClosed or FailOpen", s.OnStoreUnavailable)
	}
	if s.FailOpenAllowance != "" {
		out.FailOpenAllowanceMicros = money(v, "spec.failOpenAllowance", s.FailOpenAllowance)
	}
	switch s.UnpricedModels {
	case "":
		out.Unpriced = snapshot.UnpricedReject
	case v1alpha1.UnpricedReject, v1alpha1.UnpricedAllow:
	default:
		v.invalidf("spec.unpricedModels %q must be Reject or Allow", s.UnpricedModels)
	}
	return out
}

// spendLimits converts the spend limits. The checks are backstops for the schema of
// TeamBudgetSpec.limits (MinItems=1, the window and enforcement enums, one limit per window
// and enforcement as its list-map key) and its CEL rule that one limit is Hard.
func spendLimits(v *verdict, limits []v1alpha1.SpendLimit) []snapshot.SpendLimit {
	if len(limits) == 0 {
		v.invalidf("spec.limits needs at least one limit")
		return nil
	}
	out := make([]snapshot.SpendLimit, 0, len(limits))
	seen := map[string]bool{}
	for i, l := range limits {
		field := fmt.Sprintf("spec.limits[%d]", i)
		enf := l.Enforcement
		if enf == "" {
			enf = v1alpha1.EnforcementHard // the CRD's +kubebuilder:default
		}
		switch l.Window {
		case v1alpha1.WindowHour, v1alpha1.WindowDay, v1alpha1.WindowWeek, v1alpha1.WindowMonth:
		default:
			v.invalidf("%s.window %q must be Hour, Day, Week or Month", field, l.Window)
		}
		switch enf {
		case v1alpha1.EnforcementHard, v1alpha1.EnforcementSoft:
		default:
			v.invalidf("%s.enforcement %q must be Hard or Soft", field, l.Enforcement)
		}
		if k := string(l.Window) + "/" + string(enf); seen[k] {
			v.invalidf("%s: a second %s %s limit", field, enf, l.Window)
		} else {
			seen[k] = true
		}
		out = append(out, snapshot.SpendLimit{
			Window:      string(l.Window),
			LimitMicros: money(v, field+".amount", l.Amount),
			Enforcement: string(enf),
		})
	}
	if !hasHardLimit(out) {
		v.invalidf("at least one Hard spend limit is required: no team is unlimited")
	}
	return out
}

// hasHardLimit reports whether one of the limits is Hard: the operator's policy that no team
// is unlimited, for TeamBudgets and the built-in default alike. (The snapshot contract does
// not require it: a snapshot written by hand may have an unlimited budget.)
func hasHardLimit(limits []snapshot.SpendLimit) bool {
	return slices.ContainsFunc(limits, func(l snapshot.SpendLimit) bool { return l.Enforcement == snapshot.EnforceHard })
}

// money converts an amount. Money.Micros is the one parser of amounts; its errors are the
// backstop for the schema's Pattern and CEL rule on Money (api/v1alpha1/common.go).
func money(v *verdict, field string, m v1alpha1.Money) int64 {
	n, err := m.Micros()
	if err != nil {
		v.invalidf("%s: %v", field, err)
	}
	return n
}
