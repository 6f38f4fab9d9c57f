/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

// Package compile turns the four llm-gateway custom resources and their Secrets into one
// sealed snapshot.Snapshot plus a per-object result (the Accepted and ResolvedRefs conditions
// to set). It is pure and deterministic: no client, no clock, no randomness; the same input
// gives the same bytes and so the same snapshot version on every operator replica.
//
// A broken object is left out of the snapshot with a reason; the rest still compiles. When two
// objects claim the same thing (a model name, a team, the cluster default budget, a product or
// an API key) the older one wins (creationTimestamp, then namespace/name) and the other is not
// Accepted (reason Conflicted).
//
// Validation has three layers, each with one job:
//
//   - The CRDs' schema and CEL rules (api/v1alpha1) refuse a broken spec at the API server.
//   - The compiler checks each spec again (the functions per kind in this package). For every
//     rule the CRD already has, this is a backstop, with the CRD's message: `operator compile`
//     reads YAML with no API server in front, and an object stored before a rule existed is
//     still compiled. Each such check names the rule it mirrors. The compiler alone checks
//     what needs other objects: references (Secrets, backends, teams) and conflicts.
//   - The snapshot contract's Validate method of each compiled object (snapshot.Backend,
//     Route, Team, Budget) runs last, as the compiler's backstop: a rule the compiler missed
//     rejects that object only. Seal then checks the cross-references of the whole snapshot.
//     Where the compiler needs a rule of the contract on a spec value, it calls the snapshot's
//     predicate (snapshot.HTTPURL, IsDNSLabel, ValidProduct, IsFailoverClass, Shape.Valid).
package compile

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/dataplane/catalog"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Kind names an llm-gateway kind.
type Kind string

// Kinds, in the order results are reported.
const (
	KindLLMRoute        Kind = "LLMRoute"
	KindProviderBackend Kind = "ProviderBackend"
	KindTeamBudget      Kind = "TeamBudget"
	KindTeamRollout     Kind = "TeamRollout"
)

// ObjectKey identifies one compiled object.
type ObjectKey struct {
	Kind      Kind
	Namespace string
	Name      string
}

// String renders the key as "Kind namespace/name".
func (k ObjectKey) String() string { return fmt.Sprintf("%s %s/%s", k.Kind, k.Namespace, k.Name) }

func compareKeys(a, b ObjectKey) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// Options are the operator-level settings of a compile.
type Options struct {
	// DefaultBudget applies to teams without a TeamBudget when no TeamBudget has
	// clusterDefault: true. Its Source should be "builtin".
	DefaultBudget snapshot.Budget
}

// DefaultOptions returns the built-in defaults: a $50/day Hard budget, fail closed, unpriced
// models rejected. No team is unlimited by omission.
func DefaultOptions() Options {
	return Options{DefaultBudget: snapshot.Budget{
		Source:             "builtin",
		Limits:             []snapshot.SpendLimit{{Window: snapshot.WindowDay, LimitMicros: 50_000_000, Enforcement: snapshot.EnforceHard}},
		OnStoreUnavailable: snapshot.FailClosed,
		Unpriced:           snapshot.UnpricedReject,
	}}
}

// Validate checks the options: the built-in default budget must be a valid budget with at
// least one Hard limit.
func (o Options) Validate() error {
	b := o.DefaultBudget
	if !hasHardLimit(b.Limits) {
		return errors.New("the default budget needs at least one Hard limit: no team is unlimited")
	}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("default budget: %w", err)
	}
	return nil
}

// Input is everything a compile reads. Secrets are those of every namespace the objects live in;
// only the referenced ones matter.
type Input struct {
	Routes   []v1alpha1.LLMRoute
	Backends []v1alpha1.ProviderBackend
	Budgets  []v1alpha1.TeamBudget
	Rollouts []v1alpha1.TeamRollout
	Secrets  []corev1.Secret
	Options  Options
}

// Result is the outcome for one object.
type Result struct {
	Key ObjectKey
	// Generation is the metadata.generation the conditions describe.
	Generation int64
	// Included reports whether the object is in the snapshot. A route may be included with
	// ResolvedRefs=False when some (not all) of its backends are missing.
	Included bool
	// Accepted and ResolvedRefs are the conditions to set (no transition time).
	Accepted     metav1.Condition
	ResolvedRefs metav1.Condition
	// CatalogCoverage is set for an LLMRoute in the snapshot (nil otherwise): whether the
	// catalog prices every model the route serves by name at each of its backends. False is a
	// warning, not a problem: the route is served either way.
	CatalogCoverage *metav1.Condition
	// Unpriced lists the models of such a route that some of its backends cannot price.
	Unpriced []catalog.UnpricedModel
}

// Warnings returns one line per model of Unpriced, as `operator compile` prints them after
// "warning: ": "LLMRoute ns/name: UnpricedModels: model X has no catalog price at ns/b1, ns/b2".
func (r Result) Warnings() []string {
	lines := make([]string, 0, len(r.Unpriced))
	for _, u := range r.Unpriced {
		lines = append(lines, fmt.Sprintf("%s: %s: model %s has no catalog price at %s", r.Key, v1alpha1.ReasonUnpricedModels,
			u.Model, strings.Join(u.Backends, ", ")))
	}
	return lines
}

// Problems returns the conditions of the result that are False.
func (r Result) Problems() []metav1.Condition {
	var out []metav1.Condition
	for _, c := range []metav1.Condition{r.Accepted, r.ResolvedRefs} {
		if c.Status == metav1.ConditionFalse {
			out = append(out, c)
		}
	}
	return out
}

// Output of a compile.
type Output struct {
	// Snapshot is sealed (normalized, validated, versioned). Nil when Err is set.
	Snapshot *snapshot.Snapshot
	// Err is set when the options are invalid or the compiled snapshot fails to seal (a
	// compiler bug: every rule of the contract is checked per object first). Keep serving the
	// previous snapshot.
	Err error
	// Results has one entry per input object, sorted by kind, namespace and name.
	Results []Result
}

// Result returns the result for one object.
func (o *Output) Result(key ObjectKey) (Result, bool) {
	i, ok := slices.BinarySearchFunc(o.Results, key, func(r Result, k ObjectKey) int { return compareKeys(r.Key, k) })
	if !ok {
		return Result{}, false
	}
	return o.Results[i], true
}

// Rejected returns every result with a False condition, in result order.
func (o *Output) Rejected() []Result {
	var out []Result
	for _, r := range o.Results {
		if len(r.Problems()) > 0 {
			out = append(out, r)
		}
	}
	return out
}

// Warnings returns the warning lines of every result, in result order (see Result.Warnings).
func (o *Output) Warnings() []string {
	var out []string
	for _, r := range o.Results {
		out = append(out, r.Warnings()...)
	}
	return out
}

// Compile builds the snapshot. It never modifies the input.
func Compile(in Input) Output {
	c := &compiler{
		opts:     in.Options,
		secrets:  indexSecrets(in.Secrets),
		backends: map[string]*snapshot.Backend{},
		teams:    map[string]*snapshot.Team{},

		allBackends: map[string]bool{},
	}
	for i := range in.Backends {
		c.allBackends[nsName(&in.Backends[i])] = true
	}
	snap := &snapshot.Snapshot{
		Backends: []snapshot.Backend{},
		Routes:   []snapshot.Route{},
		Teams:    []snapshot.Team{},
	}

	for _, b := range byAge(in.Backends) {
		if sb, ok := c.backend(b); ok {
			snap.Backends = append(snap.Backends, sb)
		}
	}
	for i := range snap.Backends {
		c.backends[snap.Backends[i].Name] = &snap.Backends[i]
	}
	c.catalog = catalog.Default().WithOverrides(snap.Backends)
	claims := newModelClaims()
	for _, r := range byAge(in.Routes) {
		if sr, ok := c.route(r, claims); ok {
			snap.Routes = append(snap.Routes, sr)
		}
	}
	teamClaims := newTeamClaims()
	for _, r := range byAge(in.Rollouts) {
		if st, ok := c.rollout(r, teamClaims); ok {
			snap.Teams = append(snap.Teams, st)
		}
	}
	for i := range snap.Teams {
		c.teams[snap.Teams[i].Name] = &snap.Teams[i]
	}
	snap.DefaultBudget = cloneBudget(in.Options.DefaultBudget)
	budgetClaims := map[string]string{}
	for _, b := range byAge(in.Budgets) {
		c.budget(b, budgetClaims, snap)
	}

	slices.SortFunc(c.results, func(a, b Result) int { return compareKeys(a.Key, b.Key) })
	out := Output{Results: c.results}
	if err := in.Options.Validate(); err != nil {
		out.Err = fmt.Errorf("compile options: %w", err)
		return out
	}
	if err := snap.Seal(); err != nil {
		out.Err = fmt.Errorf("seal snapshot: %w", err)
		return out
	}
	out.Snapshot = snap
	return out
}

type compiler struct {
	opts     Options
	secrets  map[string]*corev1.Secret
	backends map[string]*snapshot.Backend // included backends by namespace/name
	teams    map[string]*snapshot.Team    // included teams by name
	results  []Result
	// catalog is the gateway's price catalog with the included backends' pricing overrides,
	// for the CatalogCoverage of routes.
	catalog *catalog.Catalog

	allBackends map[string]bool // every input backend by namespace/name
}

// object is the part of every kind the compiler orders by.
type object interface {
	GetNamespace() string
	GetName() string
	GetCreationTimestamp() metav1.Time
}

// byAge returns pointers to the items, oldest first (creationTimestamp, then namespace/name).
func byAge[T any, PT interface {
	*T
	object
}](items []T) []PT {
	out := make([]PT, len(items))
	for i := range items {
		out[i] = PT(&items[i])
	}
	slices.SortStableFunc(out, func(a, b PT) int {
		ta, tb := a.GetCreationTimestamp(), b.GetCreationTimestamp()
		return cmp.Or(ta.Time.Compare(tb.Time), cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
	return out
}

func nsName(o object) string { return o.GetNamespace() + "/" + o.GetName() }

// problem is one thing wrong with an object, with the condition reason it maps to.
type problem struct {
	reason  string
	message string
}

// verdict collects what the compiler found about one object and turns it into a Result.
type verdict struct {
	key        ObjectKey
	generation int64
	invalid    []string  // spec rule violations: Accepted=False Invalid
	rejected   *problem  // Accepted=False for another reason (Conflicted, ShapeMismatch)
	refs       []problem // ResolvedRefs=False, reason of the first
	// coverage is the CatalogCoverage of a route in the snapshot, unpriced its models
	// without a price.
	coverage *metav1.Condition
	unpriced []catalog.UnpricedModel
}

func newVerdict(kind Kind, o interface {
	object
	GetGeneration() int64
}) *verdict {
	return &verdict{key: ObjectKey{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName()}, generation: o.GetGeneration()}
}

func (v *verdict) invalidf(format string, a ...any) {
	v.invalid = append(v.invalid, fmt.Sprintf(format, a...))
}

func (v *verdict) reject(reason, format string, a ...any) {
	if v.rejected == nil {
		v.rejected = &problem{reason: reason, message: fmt.Sprintf(format, a...)}
	}
}

func (v *verdict) ref(reason, format string, a ...any) {
	v.refs = append(v.refs, problem{reason: reason, message: fmt.Sprintf(format, a...)})
}

// valid reports whether the spec passed its own rules (conflicts aside).
func (v *verdict) valid() bool { return len(v.invalid) == 0 }

// accepted reports whether the object is valid and not rejected for another reason.
func (v *verdict) accepted() bool { return v.valid() && v.rejected == nil }

func (v *verdict) result(included bool) Result {
	r := Result{Key: v.key, Generation: v.generation, Included: included}
	cond := func(t string, ok bool, reason, msg string) metav1.Condition {
		s := metav1.ConditionTrue
		if !ok {
			s = metav1.ConditionFalse
		}
		return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: v.generation}
	}
	switch {
	case !v.valid():
		r.Accepted = cond(v1alpha1.ConditionAccepted, false, v1alpha1.ReasonInvalid, strings.Join(v.invalid, "; "))
	case v.rejected != nil:
		r.Accepted = cond(v1alpha1.ConditionAccepted, false, v.rejected.reason, v.rejected.message)
	default:
		r.Accepted = cond(v1alpha1.ConditionAccepted, true, v1alpha1.ReasonAccepted, "the spec is valid")
	}
	if len(v.refs) == 0 {
		r.ResolvedRefs = cond(v1alpha1.ConditionResolvedRefs, true, v1alpha1.ReasonResolvedRefs, "every reference resolved")
	} else {
		msgs := make([]string, len(v.refs))
		for i, p := range v.refs {
			msgs[i] = p.message
		}
		r.ResolvedRefs = cond(v1alpha1.ConditionResolvedRefs, false, v.refs[0].reason, strings.Join(msgs, "; "))
	}
	if included && v.coverage != nil {
		c := *v.coverage
		c.ObservedGeneration = v.generation
		r.CatalogCoverage, r.Unpriced = &c, v.unpriced
	}
	return r
}

func (c *compiler) record(v *verdict, included bool) {
	c.results = append(c.results, v.result(included))
}

func cloneBudget(b snapshot.Budget) snapshot.Budget {
	b.Limits = slices.Clone(b.Limits)
	if b.Runaway != nil {
		r := *b.Runaway
		b.Runaway = &r
	}
	return b
}

// contract records the problems err holds (the snapshot's Validate of a compiled object) as
// spec rule violations, one per rule, and reports whether there were none.
func (v *verdict) contract(err error) bool {
	if err == nil {
		return true
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		v.invalidf("%v", e)
	}
	return false
}
