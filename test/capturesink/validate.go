package capturesink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
)

// MaxEventBytes is the largest serialized event capture's /batch/ takes without risk (the
// Python SDK's MAX_MSG_SIZE; capture rejects Kafka messages over ~1 MB).
const MaxEventBytes = 900 * 1024

// Providers the gateway serves ($ai_provider, lowercase).
var Providers = map[string]bool{"openai": true, "anthropic": true, "bedrock": true, "azure": true}

var posthogGatewayHosts = map[string]bool{
	"gateway.us.posthog.com": true, "gateway.eu.posthog.com": true, "gateway.posthog.com": true,
	"ai-gateway.us.posthog.com": true, "ai-gateway.eu.posthog.com": true,
}

// Validate checks one wire event (an element of a /batch/ "batch" array) against the
// $ai_generation schema of docs/events.md: envelope, required properties and their
// JSON types, token semantics, cost sums and cache semantics. It returns every problem found.
func Validate(raw []byte) []string {
	v := &validator{}
	v.validate(raw)
	return v.problems
}

type validator struct {
	problems []string
	props    map[string]any
}

func (v *validator) fail(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *validator) validate(raw []byte) {
	if len(raw) > MaxEventBytes {
		v.fail("event is %d bytes, above capture's %d", len(raw), MaxEventBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		v.fail("event is not a JSON object: %v", err)
		return
	}
	if t, _ := ev["type"].(string); t != "capture" {
		v.fail(`type is %v, want "capture"`, ev["type"])
	}
	if e, _ := ev["event"].(string); e != "$ai_generation" {
		v.fail(`event is %v, want "$ai_generation"`, ev["event"])
	}
	id, _ := ev["uuid"].(string)
	if _, err := uuid.Parse(id); err != nil {
		v.fail("uuid %q is not a UUID", id)
	}
	distinct, _ := ev["distinct_id"].(string)
	if distinct == "" {
		v.fail("distinct_id is missing or not a non-empty string")
	}
	ts, _ := ev["timestamp"].(string)
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		v.fail("timestamp %q is not RFC3339", ts)
	}
	props, ok := ev["properties"].(map[string]any)
	if !ok {
		v.fail("properties is not an object")
		return
	}
	v.props = props
	v.properties(distinct)
}

func (v *validator) str(k string, required bool) (string, bool) {
	x, ok := v.props[k]
	if !ok {
		if required {
			v.fail("%s is required", k)
		}
		return "", false
	}
	s, isStr := x.(string)
	if !isStr {
		v.fail("%s must be a string, got %T", k, x)
		return "", false
	}
	if required && s == "" {
		v.fail("%s must not be empty", k)
	}
	return s, true
}

func (v *validator) boolean(k string, required bool) (bool, bool) {
	x, ok := v.props[k]
	if !ok {
		if required {
			v.fail("%s is required", k)
		}
		return false, false
	}
	b, isBool := x.(bool)
	if !isBool {
		v.fail("%s must be a JSON boolean, got %T %v", k, x, x)
	}
	return b, isBool
}

func (v *validator) integer(k string, required bool) (int64, bool) {
	x, ok := v.props[k]
	if !ok {
		if required {
			v.fail("%s is required", k)
		}
		return 0, false
	}
	n, isNum := x.(json.Number)
	if !isNum {
		v.fail("%s must be an integer, got %T", k, x)
		return 0, false
	}
	i, err := n.Int64()
	if err != nil {
		v.fail("%s must be an integer, got %s", k, n)
		return 0, false
	}
	if i < 0 {
		v.fail("%s must not be negative, got %d", k, i)
	}
	return i, true
}

func (v *validator) number(k string, required bool) (float64, bool) {
	x, ok := v.props[k]
	if !ok {
		if required {
			v.fail("%s is required", k)
		}
		return 0, false
	}
	n, isNum := x.(json.Number)
	if !isNum {
		v.fail("%s must be a number, got %T", k, x)
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		v.fail("%s must be a finite non-negative number, got %s", k, n)
		return 0, false
	}
	return f, true
}

// micros converts a USD amount to integer micro-dollars (the gateway's precision).
func micros(f float64) int64 { return int64(math.Round(f * 1e6)) }

func validTraceID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_~.@()!':|", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

func (v *validator) properties(distinct string) {
	p := v.props
	fromGateway := p["$lib"] == "llm-gateway"

	for k := range p {
		if strings.HasPrefix(k, "$ai_gateway") {
			v.fail("%s is reserved: capture strips $ai_gateway* properties", k)
		}
	}

	// Identity and hierarchy.
	if trace, ok := v.str("$ai_trace_id", true); ok && !validTraceID(trace) {
		v.fail("$ai_trace_id %q has characters PostHog does not allow", trace)
	}
	v.str("$ai_span_id", fromGateway)
	v.str("$ai_parent_id", false)
	v.str("$ai_session_id", false)
	v.str("$ai_span_name", false)
	if strings.HasPrefix(distinct, "llm-gateway:team:") {
		if b, _ := p["$process_person_profile"].(bool); b || p["$process_person_profile"] == nil {
			v.fail("a service distinct_id needs $process_person_profile false")
		}
	}

	// Model and request.
	v.str("$ai_model", true)
	provider, _ := v.str("$ai_provider", true)
	if provider != "" && (provider != strings.ToLower(provider) || !Providers[provider]) {
		v.fail("$ai_provider %q is not one of the gateway's lowercase providers", provider)
	}
	model, _ := p["$ai_model"].(string)
	anthropicMatched := provider == "anthropic" || provider == "bedrock" ||
		strings.Contains(model, "anthropic") || strings.HasPrefix(model, "claude")
	if base, ok := v.str("$ai_base_url", false); ok {
		u, err := url.Parse(base)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			v.fail("$ai_base_url %q is not an absolute http(s) URL", base)
		case posthogGatewayHosts[strings.ToLower(u.Hostname())]:
			v.fail("$ai_base_url %q is a PostHog gateway host: ingestion drops the event", base)
		}
	}
	stream, _ := v.boolean("$ai_stream", fromGateway)
	status, _ := v.integer("$ai_http_status", fromGateway)
	latency, _ := v.number("$ai_latency", true)
	if ttft, ok := v.number("$ai_time_to_first_token", false); ok {
		if !stream {
			v.fail("$ai_time_to_first_token on a non-streaming event")
		}
		if ttft > latency {
			v.fail("$ai_time_to_first_token %v exceeds $ai_latency %v", ttft, latency)
		}
	}
	if mp, ok := p["$ai_model_parameters"]; ok {
		if _, isObj := mp.(map[string]any); !isObj {
			v.fail("$ai_model_parameters must be an object")
		}
	}
	v.heavy("$ai_input", "llm_gateway_input_truncated")
	v.heavy("$ai_output_choices", "llm_gateway_output_truncated")
	v.heavy("$ai_tools", "llm_gateway_tools_truncated")
	v.str("$ai_stop_reason", false)
	v.str("$ai_instructions", false)

	// Errors.
	isErr, _ := v.boolean("$ai_is_error", fromGateway)
	errMsg, hasErr := v.str("$ai_error", false)
	switch {
	case isErr && (!hasErr || errMsg == ""):
		v.fail("$ai_is_error is true but $ai_error is missing or empty")
	case !isErr && hasErr:
		v.fail("$ai_error is set but $ai_is_error is not true")
	}
	if status >= 400 && !isErr {
		v.fail("$ai_http_status %d but $ai_is_error is not true", status)
	}
	if rejected, _ := v.boolean("llm_gateway_rejected", false); rejected {
		if !isErr || status < 400 {
			v.fail("a rejected call needs $ai_is_error true and an HTTP error status, got %d", status)
		}
		if _, ok := p["$ai_base_url"]; ok {
			v.fail("a rejected call never reached an upstream: no $ai_base_url")
		}
		v.str("llm_gateway_rejection_limit", true)
	}

	v.tokens(anthropicMatched, fromGateway)
	v.costs(fromGateway)
}

// heavy checks a large property: JSON content, or a string when truncated (with its flag).
func (v *validator) heavy(k, flag string) {
	x, ok := v.props[k]
	if !ok {
		return
	}
	truncated, _ := v.props[flag].(bool)
	switch x.(type) {
	case []any:
		if truncated {
			v.fail("%s is flagged truncated but is not a truncated string", k)
		}
	case string:
		if !truncated {
			v.fail("%s is a string but %s is not true", k, flag)
		}
	default:
		v.fail("%s must be an array (or a truncated string), got %T", k, x)
	}
}

func (v *validator) tokens(anthropicMatched, fromGateway bool) {
	p := v.props
	unknown, _ := p["llm_gateway_usage_unknown"].(bool)
	in, hasIn := v.integer("$ai_input_tokens", !unknown)
	out, _ := v.integer("$ai_output_tokens", !unknown)
	if unknown && hasIn {
		v.fail("llm_gateway_usage_unknown is set but $ai_input_tokens is present")
	}
	read, _ := v.integer("$ai_cache_read_input_tokens", false)
	write, hasWrite := v.integer("$ai_cache_creation_input_tokens", false)
	w5, has5 := v.integer("$ai_cache_creation_5m_input_tokens", false)
	w1, has1 := v.integer("$ai_cache_creation_1h_input_tokens", false)
	if (has5 || has1) && w5+w1 != write {
		v.fail("cache creation 5m %d + 1h %d != $ai_cache_creation_input_tokens %d", w5, w1, write)
	}
	if (has5 || has1) && !hasWrite {
		v.fail("cache creation TTL split without $ai_cache_creation_input_tokens")
	}
	if r, ok := v.integer("$ai_reasoning_tokens", false); ok && r > out {
		v.fail("$ai_reasoning_tokens %d exceed $ai_output_tokens %d", r, out)
	}
	exclusive, hasExcl := v.boolean("$ai_cache_reporting_exclusive", fromGateway)
	if fromGateway && hasExcl && !exclusive {
		v.fail("gateway events report uncached input: $ai_cache_reporting_exclusive must be true")
	}
	if !hasExcl && anthropicMatched && !fromGateway && (read > 0 || write > 0) {
		v.fail("$ai_cache_reporting_exclusive missing on an Anthropic-matched event with cache tokens: ingestion guesses")
	}
	if hasExcl && !exclusive {
		// Inclusive counts: the cached parts are inside $ai_input_tokens.
		sub := read
		if anthropicMatched {
			sub += write
		}
		if sub > in {
			v.fail("inclusive $ai_input_tokens %d is smaller than its cached part %d", in, sub)
		}
	}
	if total, ok := v.integer("$ai_total_tokens", false); ok {
		want := in + out
		if exclusive {
			want += read + write
		}
		if total != want {
			v.fail("$ai_total_tokens %d != %d", total, want)
		}
	}
	_, hasCost := p["$ai_total_cost_usd"]
	if !anthropicMatched && write > 0 && !hasCost {
		v.fail("cache creation tokens on a non-Anthropic event without costs: ingestion does not price them")
	}
}

func (v *validator) costs(fromGateway bool) {
	p := v.props
	keys := []string{"$ai_input_cost_usd", "$ai_output_cost_usd", "$ai_total_cost_usd",
		"$ai_cache_read_cost_usd", "$ai_cache_creation_cost_usd"}
	any := false
	for _, k := range keys {
		if _, ok := p[k]; ok {
			any = true
		}
	}
	unpriced, _ := v.boolean("llm_gateway_unpriced", false)
	if !any {
		return
	}
	if unpriced {
		v.fail("llm_gateway_unpriced is set but cost properties are present")
	}
	in, okIn := v.number("$ai_input_cost_usd", true)
	out, okOut := v.number("$ai_output_cost_usd", true)
	total, okTotal := v.number("$ai_total_cost_usd", true)
	read, _ := v.number("$ai_cache_read_cost_usd", false)
	write, _ := v.number("$ai_cache_creation_cost_usd", false)
	if !okIn || !okOut || !okTotal {
		v.fail("a partial cost set makes ingestion recompute the missing sides (PostHog PR #60660)")
		return
	}
	gross := micros(in)+micros(out) == micros(total)
	disjoint := micros(in)+micros(read)+micros(write)+micros(out) == micros(total)
	switch {
	case fromGateway && !gross:
		v.fail("gateway costs: input %v + output %v != total %v", in, out, total)
	case !gross && !disjoint:
		v.fail("costs do not add up: input %v, output %v, cache read %v, cache creation %v, total %v", in, out, read, write, total)
	}
	if gross && micros(read)+micros(write) > micros(in) {
		v.fail("cache costs %v + %v exceed the gross input cost %v", read, write, in)
	}
	if (micros(in) == 0 || micros(out) == 0) && p["$ai_cost_passthrough"] != true {
		v.fail("a zero input or output cost defeats ingestion's passthrough: $ai_cost_passthrough must be true")
	}
	if _, ok := v.integer("$ai_input_tokens", false); !ok {
		v.fail("costs without token counts")
	}
}
