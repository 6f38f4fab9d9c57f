package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// HashAPIKey returns the lowercase hex SHA-256 digest under which a gateway API key is stored.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Normalize sorts every list so that equal configurations encode to equal bytes.
func (s *Snapshot) Normalize() {
	slices.SortFunc(s.Backends, func(a, b Backend) int { return strings.Compare(a.Name, b.Name) })
	for i := range s.Backends {
		slices.SortFunc(s.Backends[i].Prices, func(a, b ModelPrice) int { return strings.Compare(a.Model, b.Model) })
	}
	slices.SortFunc(s.Routes, func(a, b Route) int { return strings.Compare(a.Name, b.Name) })
	for i := range s.Routes {
		r := &s.Routes[i]
		// Sorted copies: the lists may share storage with the caller's (e.g. a route built
		// from AllFailoverClasses), which must not be reordered under it.
		r.Models = slices.Sorted(slices.Values(r.Models))
		r.Prefixes = slices.Sorted(slices.Values(r.Prefixes))
		r.Failover.On = slices.Sorted(slices.Values(r.Failover.On))
		slices.SortStableFunc(r.Backends, func(a, b RouteBackend) int {
			if a.Priority != b.Priority {
				return a.Priority - b.Priority
			}
			return strings.Compare(a.Backend, b.Backend)
		})
	}
	slices.SortFunc(s.Teams, func(a, b Team) int { return strings.Compare(a.Name, b.Name) })
	for i := range s.Teams {
		t := &s.Teams[i]
		slices.Sort(t.APIKeyHashes)
		t.APIKeyHashes = slices.Compact(t.APIKeyHashes)
		slices.Sort(t.Products)
		t.Products = slices.Compact(t.Products)
		if t.Budget != nil {
			sortLimits(t.Budget.Limits)
		}
	}
	sortLimits(s.DefaultBudget.Limits)
}

var windowOrder = map[string]int{WindowHour: 0, WindowDay: 1, WindowWeek: 2, WindowMonth: 3}

func sortLimits(l []SpendLimit) {
	slices.SortFunc(l, func(a, b SpendLimit) int {
		if d := windowOrder[a.Window] - windowOrder[b.Window]; d != 0 {
			return d
		}
		return strings.Compare(a.Enforcement, b.Enforcement)
	})
}

// Hash returns the content hash of the snapshot, ignoring Version: the first 16 hex digits of
// the SHA-256 of its canonical JSON encoding. Call Normalize first.
func (s *Snapshot) Hash() (string, error) {
	c := *s
	c.Version = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("encode snapshot: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// Seal normalizes, validates and stamps Version. The operator calls it before publishing.
func (s *Snapshot) Seal() error {
	s.SchemaVersion = SchemaVersion
	s.Normalize()
	s.Version = ""
	if err := s.validateContent(); err != nil {
		return err
	}
	v, err := s.Hash()
	if err != nil {
		return err
	}
	s.Version = v
	return nil
}

// Decode parses and validates a snapshot as a pod receives it.
func Decode(data []byte) (*Snapshot, error) {
	var s Snapshot
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks a sealed snapshot: schema version, content hash and every rule of the
// contract. It returns all problems found, joined.
func (s *Snapshot) Validate() error {
	if s.SchemaVersion != SchemaVersion {
		return fmt.Errorf("snapshot schemaVersion %d is not supported (want %d)", s.SchemaVersion, SchemaVersion)
	}
	if err := s.validateContent(); err != nil {
		return err
	}
	want, err := s.Hash()
	if err != nil {
		return err
	}
	if s.Version != want {
		return fmt.Errorf("snapshot version %q does not match its content hash %q", s.Version, want)
	}
	return nil
}

// validateContent checks every rule of the contract and returns all problems, joined, one per
// rule and object.
//
// Validation works like a compiler's intermediate representation: each type checks its own
// fields (its Validate method) and the snapshot checks what spans objects (cross-references):
// names unique within their kind, one owner for each model name, alias, prefix, product and
// API key, and route backends that exist and serve the route's shape.
//
// These are the contract's rules. The operator checks every resource before (the CRDs' schema
// and CEL rules, then its compiler, which names the spec field and a condition reason), so for
// the operator they are the backstop: the compiler runs each compiled object's Validate, and
// Seal runs them all. A pod runs them on every snapshot it receives and trusts nothing else.
// Where the compiler needs one of these rules on a spec value, it calls the predicate exported
// here (HTTPURL, IsDNSLabel, ValidProduct, IsFailoverClass, Shape.Valid, ShapeOf) rather than
// writing its own.
func (s *Snapshot) validateContent() error {
	var p problems
	backends := s.validateBackends(&p)
	s.validateRoutes(&p, backends)
	s.validateTeams(&p)
	p.addAll("default budget: ", s.DefaultBudget.Validate())
	return p.err()
}

// validateBackends checks each backend and that names are unique. It returns them by name.
func (s *Snapshot) validateBackends(p *problems) map[string]*Backend {
	byName := make(map[string]*Backend, len(s.Backends))
	for i := range s.Backends {
		b := &s.Backends[i]
		if b.Name == "" {
			p.addf("backend %d: empty name", i)
			continue
		}
		if byName[b.Name] != nil {
			p.addf("backend %s: duplicate name", b.Name)
		}
		byName[b.Name] = b
		p.addAll("backend "+b.Name+": ", b.Validate())
	}
	return byName
}

// validateRoutes checks each route, that names are unique, that no two routes claim one model
// name, alias or prefix, and that every route backend exists and serves the route's shape.
func (s *Snapshot) validateRoutes(p *problems, backends map[string]*Backend) {
	seen := map[string]bool{}
	models, prefixes := owners{}, owners{} // exact model or alias -> route; prefix -> route
	for i := range s.Routes {
		r := &s.Routes[i]
		if r.Name == "" {
			p.addf("route %d: empty name", i)
			continue
		}
		if seen[r.Name] {
			p.addf("route %s: duplicate name", r.Name)
		}
		seen[r.Name] = true
		p.addAll("route "+r.Name+": ", r.Validate())
		for _, m := range r.exactNames() {
			if other := models.claim(m, r.Name); other != "" {
				p.addf("route %s: model %q is also claimed by route %s", r.Name, m, other)
			}
		}
		for _, pr := range r.Prefixes {
			if other := prefixes.claim(pr, r.Name); other != "" {
				p.addf("route %s: prefix %q is also claimed by route %s", r.Name, pr, other)
			}
		}
		for _, rb := range r.Backends {
			switch b := backends[rb.Backend]; {
			case b == nil:
				p.addf("route %s: backend %s does not exist", r.Name, rb.Backend)
			case ShapeOf(b.Provider) != r.Shape:
				p.addf("route %s: backend %s serves the %s shape, not %s (the gateway does not translate between shapes)",
					r.Name, rb.Backend, ShapeOf(b.Provider), r.Shape)
			}
		}
	}
}

// validateTeams checks each team, that names are unique and that no two teams share a product
// or an API key.
func (s *Snapshot) validateTeams(p *problems) {
	seen := map[string]bool{}
	keys, products := owners{}, owners{} // API key hash -> team; product -> team
	for i := range s.Teams {
		t := &s.Teams[i]
		if t.Name == "" {
			p.addf("team %d: empty name", i)
			continue
		}
		if seen[t.Name] {
			p.addf("team %s: duplicate name", t.Name)
		}
		seen[t.Name] = true
		p.addAll("team "+t.Name+": ", t.Validate())
		for _, h := range t.APIKeyHashes {
			if other := keys.claim(h, t.Name); other != "" {
				p.addf("team %s: an API key is also used by team %s", t.Name, other)
			}
		}
		for _, pr := range t.Products {
			if other := products.claim(pr, t.Name); other != "" {
				p.addf("team %s: product %q is also claimed by team %s", t.Name, pr, other)
			}
		}
	}
}

// owners records which object owns each name of one kind (a model, a prefix, a product, an
// API key). The first claim wins.
type owners map[string]string

// claim records owner for name. It returns the other object that already owns name, or "".
// An empty name is not claimed (the object's own Validate reports it).
func (o owners) claim(name, owner string) (other string) {
	if name == "" {
		return ""
	}
	if prev, ok := o[name]; ok && prev != owner {
		return prev
	}
	o[name] = owner
	return ""
}

// problems collects the broken rules of one object or snapshot, one error per rule.
type problems []error

func (p *problems) addf(format string, a ...any) { *p = append(*p, fmt.Errorf(format, a...)) }

// addAll adds each error joined in err (see errors.Join), each under prefix.
func (p *problems) addAll(prefix string, err error) {
	if err == nil {
		return
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			p.addAll(prefix, e)
		}
		return
	}
	*p = append(*p, fmt.Errorf("%s%w", prefix, err))
}

func (p problems) err() error { return errors.Join(p...) }

// HTTPURL reports whether s is an absolute http or https URL with a host name.
func HTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != ""
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// IsDNSLabel reports whether s is an RFC 1123 label: 1 to 63 lowercase letters, digits and
// dashes, starting and ending with a letter or a digit.
func IsDNSLabel(s string) bool { return len(s) <= 63 && dnsLabel.MatchString(s) }

// ValidProduct reports whether p can name a product: a DNS label other than "v1" (a path
// /{product}/v1/... must not be confused with the API's own /v1/...).
func ValidProduct(p string) bool { return p != "v1" && IsDNSLabel(p) }

// Valid reports whether s is a known shape.
func (s Shape) Valid() bool { return s == ShapeOpenAI || s == ShapeAnthropic }

// IsFailoverClass reports whether c is one of AllFailoverClasses.
func IsFailoverClass(c string) bool { return slices.Contains(AllFailoverClasses, c) }

// isKeyHash reports whether h is how an API key is stored: lowercase hex SHA-256 (HashAPIKey).
func isKeyHash(h string) bool {
	if len(h) != 2*sha256.Size || strings.ToLower(h) != h {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

func abbreviate(s string) string {
	if len(s) > 12 {
		return s[:12] + "..."
	}
	return s
}

// Validate checks the backend's own fields: a known provider, an http(s) endpoint, the
// provider's settings and credentials, and non-negative timeouts, breaker, cap and prices.
func (b *Backend) Validate() error {
	var p problems
	if ShapeOf(b.Provider) == "" {
		p.addf("unknown provider %q", b.Provider)
	}
	if !HTTPURL(b.Endpoint) {
		p.addf("endpoint %q is not an http(s) URL", b.Endpoint)
	}
	p.addAll("", b.validateProvider())
	if b.Timeouts.ConnectMs < 0 || b.Timeouts.FirstByteMs < 0 || b.Timeouts.IdleMs < 0 {
		p.addf("negative timeout")
	}
	if b.CircuitBreaker.ConsecutiveFailures < 0 || b.CircuitBreaker.CooldownMs < 0 {
		p.addf("negative circuit breaker setting")
	}
	if b.MaxConcurrent < 0 {
		p.addf("negative maxConcurrent")
	}
	for _, mp := range b.Prices {
		if !mp.valid() {
			p.addf("price for %q is invalid", mp.Model)
		}
	}
	return p.err()
}

// validateProvider checks what the backend's provider needs: its region or API version and
// the credentials it authenticates with.
func (b *Backend) validateProvider() error {
	var p problems
	c := b.Credentials
	switch b.Provider {
	case ProviderBedrock:
		if b.Region == "" {
			p.addf("bedrock needs a region")
		}
		if c.BearerToken == "" && (c.AWSAccessKeyID == "" || c.AWSSecretAccessKey == "") {
			p.addf("bedrock needs a bearer token or an access key id and secret")
		}
	case ProviderAzureOpenAI:
		if b.AzureAPIVersion == "" {
			p.addf("azure needs an apiVersion")
		}
		if (c.APIKey == "") == (c.BearerToken == "") {
			p.addf("azure needs exactly one of an api-key or a bearer token")
		}
	case ProviderOpenAI, ProviderAnthropic:
		if c.APIKey == "" {
			p.addf("an API key is required")
		}
	}
	return p.err()
}

// valid reports whether a price names its model and has no negative rate.
func (mp ModelPrice) valid() bool {
	return mp.Model != "" && mp.InputPerMTok >= 0 && mp.OutputPerMTok >= 0 && mp.CacheReadPerMTok >= 0 &&
		mp.CacheWrite5mPerMTok >= 0 && mp.CacheWrite1hPerMTok >= 0
}

// Validate checks the route's own fields: a known shape, at least one model, no empty name,
// alias target or prefix, at least one backend with no negative weight, its failover policy
// and its request limits. That the backends exist and serve the shape is checked by the
// snapshot.
func (r *Route) Validate() error {
	var p problems
	if !r.Shape.Valid() {
		p.addf("unknown shape %q", r.Shape)
	}
	if len(r.Models) == 0 && len(r.Aliases) == 0 && len(r.Prefixes) == 0 {
		p.addf("serves no model")
	}
	if slices.Contains(r.Models, "") {
		p.addf("empty model")
	}
	for _, alias := range slices.Sorted(maps.Keys(r.Aliases)) {
		if alias == "" {
			p.addf("empty alias")
		}
		if r.Aliases[alias] == "" {
			p.addf("alias %q has no target", alias)
		}
	}
	if slices.Contains(r.Prefixes, "") {
		p.addf("empty prefix")
	}
	if len(r.Backends) == 0 {
		p.addf("no backends")
	}
	for _, rb := range r.Backends {
		if rb.Weight < 0 {
			p.addf("backend %s has negative weight", rb.Backend)
		}
	}
	p.addAll("", r.Failover.validate())
	p.addAll("", r.Limits.validate())
	return p.err()
}

// exactNames returns the route's model names and aliases, the names it serves exactly.
func (r *Route) exactNames() []string {
	out := slices.Clone(r.Models)
	for _, alias := range slices.Sorted(maps.Keys(r.Aliases)) {
		out = append(out, alias)
	}
	return out
}

func (f *Failover) validate() error {
	var p problems
	if f.MaxAttempts < 1 {
		p.addf("failover.maxAttempts must be at least 1")
	}
	for _, c := range f.On {
		if !IsFailoverClass(c) {
			p.addf("unknown failover class %q", c)
		}
	}
	return p.err()
}

func (l *RequestLimits) validate() error {
	var p problems
	if l.DefaultMaxTokens < 0 || l.MaxMaxTokens < 0 || l.MaxBodyBytes < 0 {
		p.addf("negative request limit")
	}
	if l.MaxMaxTokens > 0 && l.DefaultMaxTokens > l.MaxMaxTokens {
		p.addf("defaultMaxTokens %d is above maxMaxTokens %d", l.DefaultMaxTokens, l.MaxMaxTokens)
	}
	return p.err()
}

// Validate checks the team's own fields: API keys stored as hashes, product names, its
// rollout and its budget. That no other team shares a product or key is checked by the
// snapshot.
func (t *Team) Validate() error {
	var p problems
	for _, h := range t.APIKeyHashes {
		if !isKeyHash(h) {
			p.addf("API key hash %q is not lowercase hex SHA-256", abbreviate(h))
		}
	}
	for _, pr := range t.Products {
		if !ValidProduct(pr) {
			p.addf("product %q must be lowercase letters, digits and dashes (a DNS label, not v1)", pr)
		}
	}
	p.addAll("rollout: ", t.Rollout.Validate())
	if t.Budget != nil {
		p.addAll("budget: ", t.Budget.Validate())
	}
	return p.err()
}

// Validate checks a rollout: a known stage, canaryPercent (0-100) only with Canary, a known
// stickiness key and an http(s) legacy upstream for the stages that send traffic there. It
// returns the first problem.
func (r *Rollout) Validate() error {
	switch r.Stage {
	case StageLegacy, StageGateway:
		if r.CanaryPercent != 0 {
			return errors.New("canaryPercent is only allowed with stage Canary")
		}
	case StageCanary:
		if r.CanaryPercent < 0 || r.CanaryPercent > 100 {
			return fmt.Errorf("canaryPercent %d is outside 0-100", r.CanaryPercent)
		}
	default:
		return fmt.Errorf("unknown stage %q", r.Stage)
	}
	if r.StickyBy != "" && r.StickyBy != StickyDistinctID && r.StickyBy != StickyTraceID {
		return fmt.Errorf("unknown stickyBy %q", r.StickyBy)
	}
	if r.Stage != StageGateway && r.LegacyUpstream == "" {
		return fmt.Errorf("stage %s needs a legacyUpstream", r.Stage)
	}
	if r.LegacyUpstream != "" && !HTTPURL(r.LegacyUpstream) {
		return fmt.Errorf("legacyUpstream %q is not an http(s) URL", r.LegacyUpstream)
	}
	return nil
}

// Validate checks a budget: its spend limits (one per window and enforcement), no negative
// limit, a complete runaway breaker and known store and unpriced policies.
func (b *Budget) Validate() error {
	var p problems
	seen := map[string]bool{}
	for _, l := range b.Limits {
		p.addAll("", l.validate())
		k := l.Window + "/" + l.Enforcement
		if seen[k] {
			p.addf("two %s %s limits", l.Enforcement, l.Window)
		}
		seen[k] = true
	}
	if b.MaxRequestCostMicros < 0 || b.RequestsPerMinute < 0 || b.TokensPerMinute < 0 || b.MaxConcurrent < 0 ||
		b.FailOpenAllowanceMicros < 0 {
		p.addf("negative limit")
	}
	if b.Runaway != nil && (b.Runaway.SpendPerMinuteMicros <= 0 || b.Runaway.CooldownSeconds <= 0) {
		p.addf("runaway breaker needs a positive spend per minute and cooldown")
	}
	if b.OnStoreUnavailable != FailClosed && b.OnStoreUnavailable != FailOpen {
		p.addf("unknown onStoreUnavailable %q", b.OnStoreUnavailable)
	}
	if b.Unpriced != UnpricedReject && b.Unpriced != UnpricedAllow {
		p.addf("unknown unpriced policy %q", b.Unpriced)
	}
	return p.err()
}

func (l SpendLimit) validate() error {
	var p problems
	if _, ok := windowOrder[l.Window]; !ok {
		p.addf("unknown window %q", l.Window)
	}
	if l.Enforcement != EnforceHard && l.Enforcement != EnforceSoft {
		p.addf("unknown enforcement %q", l.Enforcement)
	}
	if l.LimitMicros <= 0 {
		p.addf("%s limit must be positive", l.Window)
	}
	return p.err()
}
