/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package compile

import (
	"fmt"
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
	case s.ClusterDefault && s.Team != "":
		v.invalidf("set exactly one of team or clusterDefault: true")
	case s.ClusterDefault:
		claim = clusterDefaultClaim
	case s.Team == "":
		v.invalidf("set exactly one of team or clusterDefault: true")
	default:
		validTeam(v, "spec.team", s.Team)
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

	included := v.accepted() && len(v.refs) == 0
	if included {
		check := snapshot.Snapshot{DefaultBudget: cloneBudget(out)}
		if err := check.Seal(); err != nil {
			v.invalidf("%v", err)
			included = false
		}
	}
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
// spec breaks on v.
func budgetSpec(v *verdict, b *v1alpha1.TeamBudget) snapshot.Budget {
	s := &b.Spec
	out := snapshot.Budget{
		Source:             nsName(b),
		Suspended:          s.Suspended,
		OnStoreUnavailable: string(s.OnStoreUnavailable),
		Unpriced:           string(s.UnpricedModels),
	}
	if len(s.Limits) == 0 {
		v.invalidf("spec.limits needs at least one limit")
	}
	hard := false
	seen := map[string]bool{}
	for i, l := range s.Limits {
		field := fmt.Sprintf("spec.limits[%d]", i)
		enf := l.Enforcement
		if enf == "" {
			enf = v1alpha1.EnforcementHard
		}
		switch l.Window {
		case v1alpha1.WindowHour, v1alpha1.WindowDay, v1alpha1.WindowWeek, v1alpha1.WindowMonth:
		default:
			v.invalidf("%s.window %q must be Hour, Day, Week or Month", field, l.Window)
		}
		switch enf {
		case v1alpha1.EnforcementHard:
			hard = true
		case v1alpha1.EnforcementSoft:
		default:
			v.invalidf("%s.enforcement %q must be Hard or Soft", field, l.Enforcement)
		}
		if k := string(l.Window) + "/" + string(enf); seen[k] {
			v.invalidf("%s: a second %s %s limit", field, enf, l.Window)
		} else {
			seen[k] = true
		}
		out.Limits = append(out.Limits, snapshot.SpendLimit{
			Window:      string(l.Window),
			LimitMicros: money(v, field+".amount", l.Amount),
			Enforcement: string(enf),
		})
	}
	if len(s.Limits) > 0 && !hard {
		v.invalidf("at least one Hard spend limit is required: no team is unlimited")
	}
	if s.MaxRequestCost != "" {
		out.MaxRequestCostMicros = money(v, "spec.maxRequestCost", s.MaxRequestCost)
	}
	if rl := s.RateLimits; rl != nil {
		if rl.RequestsPerMinute < 0 || rl.TokensPerMinute < 0 || rl.ConcurrentRequests < 0 {
			v.invalidf("spec.rateLimits must not be negative")
		}
		out.RequestsPerMinute, out.TokensPerMinute, out.MaxConcurrent = rl.RequestsPerMinute, rl.TokensPerMinute, rl.ConcurrentRequests
	}
	if r := s.Runaway; r != nil {
		if r.Cooldown.Duration < time.Second {
			v.invalidf("cooldown must be at least 1s")
		}
		out.Runaway = &snapshot.Runaway{
			SpendPerMinuteMicros: money(v, "spec.runaway.spendPerMinute", r.SpendPerMinute),
			CooldownSeconds:      int64((r.Cooldown.Duration + time.Second - 1) / time.Second),
		}
	}
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

func money(v *verdict, field string, m v1alpha1.Money) int64 {
	n, err := m.Micros()
	if err != nil {
		v.invalidf("%s: %v", field, err)
	}
	return n
}
