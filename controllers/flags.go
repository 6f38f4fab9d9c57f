/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"flag"
	"fmt"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers/internal/compile"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// DefaultBudgetFlags are the --default-budget-* flags: the built-in budget of every team that
// has no TeamBudget while no TeamBudget has clusterDefault: true. Limits are Hard, in USD;
// an empty value sets no limit for that window, and at least one must be set.
type DefaultBudgetFlags struct {
	Hour, Day, Week, Month string
	OnStoreUnavailable     string
	UnpricedModels         string
}

// Register adds the flags to fs with the built-in defaults ($50/day, FailClosed, Reject).
func (f *DefaultBudgetFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Hour, "default-budget-hourly", "", "built-in default budget: Hard limit per hour in USD (empty: none)")
	fs.StringVar(&f.Day, "default-budget-daily", "50.00", "built-in default budget: Hard limit per day in USD (empty: none)")
	fs.StringVar(&f.Week, "default-budget-weekly", "", "built-in default budget: Hard limit per week in USD (empty: none)")
	fs.StringVar(&f.Month, "default-budget-monthly", "", "built-in default budget: Hard limit per calendar month in USD (empty: none)")
	fs.StringVar(&f.OnStoreUnavailable, "default-budget-on-store-unavailable", snapshot.FailClosed,
		"built-in default budget: FailClosed or FailOpen while Redis is unreachable")
	fs.StringVar(&f.UnpricedModels, "default-budget-unpriced-models", snapshot.UnpricedReject,
		"built-in default budget: Reject or Allow calls to models with no known price")
}

// options turns the flags into compile options.
func (f *DefaultBudgetFlags) options() (compile.Options, error) {
	b := snapshot.Budget{Source: "builtin", OnStoreUnavailable: f.OnStoreUnavailable, Unpriced: f.UnpricedModels}
	for _, w := range []struct{ window, value, flag string }{
		{snapshot.WindowHour, f.Hour, "hourly"}, {snapshot.WindowDay, f.Day, "daily"},
		{snapshot.WindowWeek, f.Week, "weekly"}, {snapshot.WindowMonth, f.Month, "monthly"},
	} {
		if w.value == "" {
			continue
		}
		m, err := v1alpha1.Money(w.value).Micros()
		if err != nil {
			return compile.Options{}, fmt.Errorf("--default-budget-%s: %w", w.flag, err)
		}
		b.Limits = append(b.Limits, snapshot.SpendLimit{Window: w.window, LimitMicros: m, Enforcement: snapshot.EnforceHard})
	}
	o := compile.Options{DefaultBudget: b}
	if err := o.Validate(); err != nil {
		return compile.Options{}, fmt.Errorf("--default-budget-* flags: %w", err)
	}
	return o, nil
}
