// Package route resolves the model a client asks for to the route that serves it.
//
// A Table is built once per snapshot, off the hot path (New); Resolve runs per request and
// does not allocate when the requested name is served exactly. Resolution is best effort so
// that clients nobody configured still work: provider-prefixed, Bedrock, Azure, OpenRouter,
// dated, undated and -latest spellings all find the route that serves the model (see
// Resolve and docs/catalog.md). Candidate ordering for failover is not done here.
package route

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/posthog/llm-gateway/dataplane/catalog"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// How a requested name was matched (for logs and metrics; a bounded set).
type MatchKind string

const (
	ByExact      MatchKind = "exact"      // a model the route lists
	ByAlias      MatchKind = "alias"      // a route alias
	ByNormalized MatchKind = "normalized" // after removing provider, Bedrock, Azure or OpenRouter spelling
	ByUndated    MatchKind = "undated"    // the date or -latest suffix removed
	ByFamily     MatchKind = "family"     // an undated name whose dated model the route lists
	ByPrefix     MatchKind = "prefix"     // a route prefix
)

// Match is a resolved request model.
type Match struct {
	Route *snapshot.Route
	// Canonical is the model the gateway serves and prices: the most specific name that the
	// route serves or that the catalog knows (see Resolve). Provider adapters map it to the
	// provider's id (Adapter.UpstreamModel).
	Canonical string
	// Requested is the client's model string, verbatim, for the event.
	Requested string
	// Served is the route entry that matched: one of Route.Models, an alias name, or a prefix.
	// When Canonical is more specific than Served (a dated model under an undated entry),
	// adapters can look their modelMap up by Served after Canonical.
	Served string
	By     MatchKind
}

// ErrNoRoute is matched (errors.Is) by every *NoRouteError.
var ErrNoRoute = errors.New("no route for model")

// NoRouteError says a model is not served in the requested shape.
type NoRouteError struct {
	Model string
	Shape snapshot.Shape
	// ServedOn is the other shape when the model is served there ("" otherwise).
	ServedOn snapshot.Shape
}

// maxModelInMessage bounds how much of a client-supplied model name an error echoes.
const maxModelInMessage = 200

// Error is a message fit for the client: "model X is not served by this gateway", or
// "model X is served on /v1/messages, not on this endpoint".
func (e *NoRouteError) Error() string {
	if strings.TrimSpace(e.Model) == "" {
		return "the request names no model"
	}
	m := e.Model
	if len(m) > maxModelInMessage {
		m = m[:maxModelInMessage] + "..."
	}
	switch e.ServedOn {
	case snapshot.ShapeAnthropic:
		return fmt.Sprintf("model %q is served on /v1/messages, not on this endpoint", m)
	case snapshot.ShapeOpenAI:
		return fmt.Sprintf("model %q is served on /v1/chat/completions and /v1/responses, not on this endpoint", m)
	}
	return fmt.Sprintf("model %q is not served by this gateway", m)
}

// Is makes errors.Is(err, ErrNoRoute) true.
func (e *NoRouteError) Is(target error) bool { return target == ErrNoRoute }

// Table is the route index of one snapshot. It is immutable and safe for concurrent use.
type Table struct {
	cat    *catalog.Catalog
	shapes [2]shapeIndex // [0] OpenAI, [1] Anthropic
	models []string
	// mapped holds, per route, the model names some backend of the route has a modelMap
	// entry for: the operator's mapping of a served name is kept (see Resolve, step 3).
	mapped map[*snapshot.Route]map[string]bool
}

type shapeIndex struct {
	shape snapshot.Shape
	// exact holds route models (canonical = the model) and aliases (canonical = the target).
	exact map[string]target
	// family maps the undated form of a dated route model to it (newest date wins), so that
	// "claude-sonnet-4-5" and "claude-3-5-sonnet-latest" find the route serving the dated model.
	family map[string]target
	// prefixes, longest first.
	prefixes []prefixEntry
}

type target struct {
	route     *snapshot.Route
	canonical string
	served    string
	by        MatchKind
}

type prefixEntry struct {
	prefix string
	route  *snapshot.Route
}

func shapeSlot(s snapshot.Shape) int {
	switch s {
	case snapshot.ShapeOpenAI:
		return 0
	case snapshot.ShapeAnthropic:
		return 1
	}
	return -1
}

// New indexes the routes of s. cat supplies catalog knowledge (which dated names exist); nil
// uses catalog.Default(). The Table keeps pointers into s.Routes: s must not be modified
// afterwards (snapshots are immutable once applied).
func New(s *snapshot.Snapshot, cat *catalog.Catalog) *Table {
	if cat == nil {
		cat = catalog.Default()
	}
	t := &Table{cat: cat}
	for i, sh := range [...]snapshot.Shape{snapshot.ShapeOpenAI, snapshot.ShapeAnthropic} {
		t.shapes[i] = shapeIndex{shape: sh, exact: map[string]target{}, family: map[string]target{}}
	}
	if s == nil {
		return t
	}
	seen := map[string]bool{}
	backends := make(map[string]*snapshot.Backend, len(s.Backends))
	for i := range s.Backends {
		backends[s.Backends[i].Name] = &s.Backends[i]
	}
	t.mapped = map[*snapshot.Route]map[string]bool{}
	for i := range s.Routes {
		r := &s.Routes[i]
		slot := shapeSlot(r.Shape)
		if slot < 0 {
			continue
		}
		for _, rb := range r.Backends {
			if b := backends[rb.Backend]; b != nil {
				for m := range b.ModelMap {
					if t.mapped[r] == nil {
						t.mapped[r] = map[string]bool{}
					}
					t.mapped[r][m] = true
				}
			}
		}
		idx := &t.shapes[slot]
		// Routes are sorted by name and Validate rejects a name claimed twice; on a conflict
		// anyway the first route (by name) keeps it.
		for _, m := range r.Models {
			if _, dup := idx.exact[m]; !dup {
				idx.exact[m] = target{route: r, canonical: m, served: m, by: ByExact}
			}
			if catalog.IsDated(m) {
				fam := catalog.Undated(m)
				if cur, ok := idx.family[fam]; !ok || m > cur.canonical {
					idx.family[fam] = target{route: r, canonical: m, served: m, by: ByFamily}
				}
			}
			if !seen[m] {
				seen[m] = true
				t.models = append(t.models, m)
			}
		}
		for alias, to := range r.Aliases {
			if _, dup := idx.exact[alias]; !dup {
				idx.exact[alias] = target{route: r, canonical: to, served: alias, by: ByAlias}
			}
			if !seen[alias] {
				seen[alias] = true
				t.models = append(t.models, alias)
			}
		}
		for _, p := range r.Prefixes {
			idx.prefixes = append(idx.prefixes, prefixEntry{prefix: p, route: r})
		}
	}
	for i := range t.shapes {
		slices.SortStableFunc(t.shapes[i].prefixes, func(a, b prefixEntry) int { return len(b.prefix) - len(a.prefix) })
	}
	slices.Sort(t.models)
	return t
}

// Models lists the model names the gateway serves exactly (route models and aliases, both
// shapes), sorted, for GET /v1/models. Prefix-claimed models cannot be enumerated.
func (t *Table) Models() []string { return slices.Clone(t.models) }

// Target returns the canonical model behind a name the gateway serves exactly in shape: the
// alias target for an alias, the name itself for a route model. For /v1/models, so an alias
// is described (catalog.Describe) by the model it stands for.
func (t *Table) Target(shape snapshot.Shape, name string) (string, bool) {
	slot := shapeSlot(shape)
	if slot < 0 {
		return "", false
	}
	tg, ok := t.shapes[slot].exact[name]
	return tg.canonical, ok
}

// ModelsOf lists the model names served exactly in one shape, sorted.
func (t *Table) ModelsOf(shape snapshot.Shape) []string {
	slot := shapeSlot(shape)
	if slot < 0 {
		return nil
	}
	out := make([]string, 0, len(t.shapes[slot].exact))
	for m := range t.shapes[slot].exact {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// Resolve finds the route serving requested in the given shape. Order:
//
//  1. exact route model, then route alias (no allocation);
//  2. the normalized name (catalog.Canonicalize: provider prefixes "anthropic/", "openai/",
//     "azure/", "bedrock/"; Bedrock ids and ARNs; Azure "gpt-35"; OpenRouter dotted Claude
//     versions; "@date"), also lowercased, as model or alias;
//  3. the undated form (date suffix or -latest removed) as model or alias; Canonical is then
//     the dated name when the catalog knows it (the most specific name, priced correctly:
//     gpt-4o-2024-05-13 is not priced like gpt-4o), else the route's entry. Exception: when
//     a backend of the route maps the route's entry in its modelMap and not the dated name,
//     the route's entry is kept, so the operator's mapping (an inference profile ARN, an
//     Azure deployment) is what the call uses;
//  4. catalog knowledge in reverse: an undated or -latest name whose dated model a route lists
//     ("claude-sonnet-4-5" -> a route serving "claude-sonnet-4-5-20250929"); Canonical is the
//     route's dated model (newest date if several);
//  5. the longest route prefix matching the normalized name; Canonical is the normalized name.
//
// A dated name is never silently moved to a different date. A name that resolves only in the
// other shape returns a *NoRouteError saying where it is served.
func (t *Table) Resolve(shape snapshot.Shape, requested string) (Match, error) {
	slot := shapeSlot(shape)
	if slot < 0 {
		return Match{}, &NoRouteError{Model: requested, Shape: shape}
	}
	if tg, ok := t.shapes[slot].exact[requested]; ok {
		return Match{Route: tg.route, Canonical: tg.canonical, Requested: requested, Served: tg.served, By: tg.by}, nil
	}
	if m, ok := t.resolveSlow(&t.shapes[slot], requested); ok {
		return m, nil
	}
	err := &NoRouteError{Model: requested, Shape: shape}
	if _, ok := t.resolveSlow(&t.shapes[1-slot], requested); ok {
		err.ServedOn = t.shapes[1-slot].shape
	} else if _, ok := t.shapes[1-slot].exact[requested]; ok {
		err.ServedOn = t.shapes[1-slot].shape
	}
	return Match{}, err
}

// keepMapped reports whether a backend of r maps served in its modelMap but not dated.
func (t *Table) keepMapped(r *snapshot.Route, served, dated string) bool {
	m := t.mapped[r]
	return m[served] && !m[dated]
}

func (t *Table) resolveSlow(idx *shapeIndex, requested string) (Match, bool) {
	if strings.TrimSpace(requested) == "" {
		return Match{}, false
	}
	n := catalog.Canonicalize(requested)
	cands := []string{n}
	if l := strings.ToLower(n); l != n {
		cands = append(cands, l)
	}
	match := func(tg target, canonical string, by MatchKind) (Match, bool) {
		return Match{Route: tg.route, Canonical: canonical, Requested: requested, Served: tg.served, By: by}, true
	}
	for _, c := range cands {
		if tg, ok := idx.exact[c]; ok {
			by := ByNormalized
			if c == requested {
				by = tg.by
			}
			return match(tg, tg.canonical, by)
		}
		u := catalog.Undated(c)
		if u != c {
			if tg, ok := idx.exact[u]; ok {
				canonical := tg.canonical
				if catalog.IsDated(c) && t.cat.Known(idx.shape, c) && !t.keepMapped(tg.route, tg.canonical, c) {
					canonical = c
				}
				return match(tg, canonical, ByUndated)
			}
		}
		if !catalog.IsDated(c) {
			if tg, ok := idx.family[u]; ok {
				return match(tg, tg.canonical, ByFamily)
			}
		}
	}
	for _, c := range cands {
		for _, p := range idx.prefixes {
			if strings.HasPrefix(c, p.prefix) {
				return Match{Route: p.route, Canonical: c, Requested: requested, Served: p.prefix, By: ByPrefix}, true
			}
		}
	}
	return Match{}, false
}
