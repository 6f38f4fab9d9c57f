package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
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

func (s *Snapshot) validateContent() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	backends := make(map[string]*Backend, len(s.Backends))
	for i := range s.Backends {
		b := &s.Backends[i]
		if b.Name == "" {
			add("backend %d: empty name", i)
			continue
		}
		if backends[b.Name] != nil {
			add("backend %s: duplicate name", b.Name)
		}
		backends[b.Name] = b
		if err := b.validate(); err != nil {
			add("backend %s: %w", b.Name, err)
		}
	}

	claimed := map[string]string{} // exact model or alias -> route
	prefixes := map[string]string{}
	seenRoutes := map[string]bool{}
	for i := range s.Routes {
		r := &s.Routes[i]
		if r.Name == "" {
			add("route %d: empty name", i)
			continue
		}
		if seenRoutes[r.Name] {
			add("route %s: duplicate name", r.Name)
		}
		seenRoutes[r.Name] = true
		if r.Shape != ShapeOpenAI && r.Shape != ShapeAnthropic {
			add("route %s: unknown shape %q", r.Name, r.Shape)
		}
		if len(r.Models) == 0 && len(r.Aliases) == 0 && len(r.Prefixes) == 0 {
			add("route %s: serves no model", r.Name)
		}
		claim := func(name, kind string) {
			if name == "" {
				add("route %s: empty %s", r.Name, kind)
				return
			}
			if other, ok := claimed[name]; ok && other != r.Name {
				add("route %s: model %q is also claimed by route %s", r.Name, name, other)
				return
			}
			claimed[name] = r.Name
		}
		for _, m := range r.Models {
			claim(m, "model")
		}
		for alias, target := range r.Aliases {
			claim(alias, "alias")
			if target == "" {
				add("route %s: alias %q has no target", r.Name, alias)
			}
		}
		for _, p := range r.Prefixes {
			if p == "" {
				add("route %s: empty prefix", r.Name)
				continue
			}
			if other, ok := prefixes[p]; ok && other != r.Name {
				add("route %s: prefix %q is also claimed by route %s", r.Name, p, other)
			}
			prefixes[p] = r.Name
		}
		if len(r.Backends) == 0 {
			add("route %s: no backends", r.Name)
		}
		for _, rb := range r.Backends {
			b := backends[rb.Backend]
			switch {
			case b == nil:
				add("route %s: backend %s does not exist", r.Name, rb.Backend)
			case ShapeOf(b.Provider) != r.Shape:
				add("route %s: backend %s serves the %s shape, not %s (the gateway does not translate between shapes)",
					r.Name, rb.Backend, ShapeOf(b.Provider), r.Shape)
			}
			if rb.Weight < 0 {
				add("route %s: backend %s has negative weight", r.Name, rb.Backend)
			}
		}
		if r.Failover.MaxAttempts < 1 {
			add("route %s: failover.maxAttempts must be at least 1", r.Name)
		}
		for _, c := range r.Failover.On {
			if !slices.Contains(AllFailoverClasses, c) {
				add("route %s: unknown failover class %q", r.Name, c)
			}
		}
		if r.Limits.DefaultMaxTokens < 0 || r.Limits.MaxMaxTokens < 0 || r.Limits.MaxBodyBytes < 0 {
			add("route %s: negative request limit", r.Name)
		}
		if r.Limits.MaxMaxTokens > 0 && r.Limits.DefaultMaxTokens > r.Limits.MaxMaxTokens {
			add("route %s: defaultMaxTokens %d is above maxMaxTokens %d", r.Name, r.Limits.DefaultMaxTokens, r.Limits.MaxMaxTokens)
		}
	}

	keys := map[string]string{}
	products := map[string]string{}
	seenTeams := map[string]bool{}
	for i := range s.Teams {
		t := &s.Teams[i]
		if t.Name == "" {
			add("team %d: empty name", i)
			continue
		}
		if seenTeams[t.Name] {
			add("team %s: duplicate name", t.Name)
		}
		seenTeams[t.Name] = true
		for _, h := range t.APIKeyHashes {
			if len(h) != 64 || strings.ToLower(h) != h {
				add("team %s: API key hash %q is not lowercase hex SHA-256", t.Name, abbreviate(h))
				continue
			}
			if _, err := hex.DecodeString(h); err != nil {
				add("team %s: API key hash is not hex", t.Name)
			}
			if other, ok := keys[h]; ok && other != t.Name {
				add("team %s: an API key is also used by team %s", t.Name, other)
			}
			keys[h] = t.Name
		}
		for _, p := range t.Products {
			if !validProduct(p) {
				add("team %s: product %q must be lowercase letters, digits and dashes", t.Name, p)
			}
			if other, ok := products[p]; ok && other != t.Name {
				add("team %s: product %q is also claimed by team %s", t.Name, p, other)
			}
			products[p] = t.Name
		}
		if err := t.Rollout.validate(); err != nil {
			add("team %s: rollout: %w", t.Name, err)
		}
		if t.Budget != nil {
			if err := t.Budget.validate(); err != nil {
				add("team %s: budget: %w", t.Name, err)
			}
		}
	}
	if err := s.DefaultBudget.validate(); err != nil {
		add("default budget: %w", err)
	}
	return errors.Join(errs...)
}

func abbreviate(s string) string {
	if len(s) > 12 {
		return s[:12] + "..."
	}
	return s
}

func validProduct(p string) bool {
	if p == "" || p == "v1" || len(p) > 63 {
		return false
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (b *Backend) validate() error {
	var errs []error
	if ShapeOf(b.Provider) == "" {
		errs = append(errs, fmt.Errorf("unknown provider %q", b.Provider))
	}
	u, err := url.Parse(b.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("endpoint %q is not an http(s) URL", b.Endpoint))
	}
	c := b.Credentials
	switch b.Provider {
	case ProviderBedrock:
		if b.Region == "" {
			errs = append(errs, errors.New("bedrock needs a region"))
		}
		if c.BearerToken == "" && (c.AWSAccessKeyID == "" || c.AWSSecretAccessKey == "") {
			errs = append(errs, errors.New("bedrock needs a bearer token or an access key id and secret"))
		}
	case ProviderAzureOpenAI:
		if b.AzureAPIVersion == "" {
			errs = append(errs, errors.New("azure needs an apiVersion"))
		}
		if (c.APIKey == "") == (c.BearerToken == "") {
			errs = append(errs, errors.New("azure needs exactly one of an api-key or a bearer token"))
		}
	case ProviderOpenAI, ProviderAnthropic:
		if c.APIKey == "" {
			errs = append(errs, errors.New("an API key is required"))
		}
	}
	if b.Timeouts.ConnectMs < 0 || b.Timeouts.FirstByteMs < 0 || b.Timeouts.IdleMs < 0 {
		errs = append(errs, errors.New("negative timeout"))
	}
	if b.CircuitBreaker.ConsecutiveFailures < 0 || b.CircuitBreaker.CooldownMs < 0 {
		errs = append(errs, errors.New("negative circuit breaker setting"))
	}
	if b.MaxConcurrent < 0 {
		errs = append(errs, errors.New("negative maxConcurrent"))
	}
	for _, p := range b.Prices {
		if p.Model == "" || p.InputPerMTok < 0 || p.OutputPerMTok < 0 || p.CacheReadPerMTok < 0 ||
			p.CacheWrite5mPerMTok < 0 || p.CacheWrite1hPerMTok < 0 {
			errs = append(errs, fmt.Errorf("price for %q is invalid", p.Model))
		}
	}
	return errors.Join(errs...)
}

func (r *Rollout) validate() error {
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
	if r.LegacyUpstream != "" {
		if u, err := url.Parse(r.LegacyUpstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("legacyUpstream %q is not an http(s) URL", r.LegacyUpstream)
		}
	}
	return nil
}

func (b *Budget) validate() error {
	var errs []error
	seen := map[string]bool{}
	for _, l := range b.Limits {
		if _, ok := windowOrder[l.Window]; !ok {
			errs = append(errs, fmt.Errorf("unknown window %q", l.Window))
		}
		if l.Enforcement != EnforceHard && l.Enforcement != EnforceSoft {
			errs = append(errs, fmt.Errorf("unknown enforcement %q", l.Enforcement))
		}
		if l.LimitMicros <= 0 {
			errs = append(errs, fmt.Errorf("%s limit must be positive", l.Window))
		}
		k := l.Window + "/" + l.Enforcement
		if seen[k] {
			errs = append(errs, fmt.Errorf("two %s %s limits", l.Enforcement, l.Window))
		}
		seen[k] = true
	}
	if b.MaxRequestCostMicros < 0 || b.RequestsPerMinute < 0 || b.TokensPerMinute < 0 || b.MaxConcurrent < 0 ||
		b.FailOpenAllowanceMicros < 0 {
		errs = append(errs, errors.New("negative limit"))
	}
	if b.Runaway != nil && (b.Runaway.SpendPerMinuteMicros <= 0 || b.Runaway.CooldownSeconds <= 0) {
		errs = append(errs, errors.New("runaway breaker needs a positive spend per minute and cooldown"))
	}
	if b.OnStoreUnavailable != FailClosed && b.OnStoreUnavailable != FailOpen {
		errs = append(errs, fmt.Errorf("unknown onStoreUnavailable %q", b.OnStoreUnavailable))
	}
	if b.Unpriced != UnpricedReject && b.Unpriced != UnpricedAllow {
		errs = append(errs, fmt.Errorf("unknown unpriced policy %q", b.Unpriced))
	}
	return errors.Join(errs...)
}
