package record

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/tidwall/gjson"
	"github.com/tidwall/pretty"

	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/internal/jsonx"
)

// EventName is the only event the gateway emits.
const EventName = "$ai_generation"

// DefaultMaxEventBytes keeps a serialized event below capture's ~1 MB Kafka message limit
// with room to spare, like PostHog's own gateway (docs/events.md "Capture").
const DefaultMaxEventBytes = 800_000

// maxCallerPropertiesBytes bounds the X-PostHog-Properties header the event carries.
const maxCallerPropertiesBytes = 32 << 10

// Library identifies the gateway as the event's sender ($lib).
const Library = "llm-gateway"

// truncationMarker replaces content too large for capture, when not even a prefix fits.
const truncationMarker = "[truncated by llm-gateway: content too large for capture]"

var (
	// eventNamespace and traceNamespace are the UUIDv5 namespaces of event uuids and of trace
	// ids the gateway derives (fixed forever: changing them breaks redelivery dedup).
	eventNamespace = uuid.MustParse("3f0d1b8e-6c1a-4e2b-9a57-5b0c2f7d9e41")
	traceNamespace = uuid.MustParse("b7a4c2d1-0e3f-4a6b-8c9d-1e2f3a4b5c6d")
)

// Destination is where an event is delivered: a capture host (scheme://host[:port], no
// trailing slash) and a project API key. The zero Destination is the local events file.
type Destination struct {
	Host   string
	APIKey string
}

// Local reports whether events to d go to the local JSONL events file.
func (d Destination) Local() bool { return d.Host == "" }

// Entry is one built event on its way to capture.
type Entry struct {
	// ID is the outbox's id of the entry (set by the outbox).
	ID string
	// UUID is the event's deterministic uuid.
	UUID string
	Dest Destination
	// Event is the wire event: one element of the /batch/ "batch" array.
	Event []byte
}

// EventUUID is the deterministic uuid of the event of attempt index attempt of a call:
// UUIDv5 over the request id, so a redelivered or re-recorded event carries the same uuid.
func EventUUID(requestID string, attempt int) string {
	return uuid.NewSHA1(eventNamespace, []byte(requestID+"#"+strconv.Itoa(attempt))).String()
}

// builder turns Calls into wire events.
type builder struct {
	maxEventBytes int
	defaultDest   Destination
	libVersion    string
}

// destination picks the team's capture host and key, else the gateway's; no host or no key
// means the local events file.
func (b *builder) destination(c *Call) Destination {
	host, key := c.PostHogHost, c.PostHogAPIKey
	if host == "" {
		host = b.defaultDest.Host
	}
	if key == "" {
		key = b.defaultDest.APIKey
	}
	if host == "" || key == "" {
		return Destination{}
	}
	return Destination{Host: strings.TrimRight(host, "/"), APIKey: key}
}

// request holds what the event takes from the client's request body.
type request struct {
	input  []byte // $ai_input (JSON array)
	tools  []byte // $ai_tools (raw)
	instr  []byte // $ai_instructions (raw JSON string)
	params []byte // $ai_model_parameters (JSON object)
}

// modelParams are the request fields copied into $ai_model_parameters.
var modelParams = map[string]bool{
	"temperature": true, "top_p": true, "top_k": true, "max_tokens": true,
	"max_completion_tokens": true, "max_output_tokens": true, "reasoning_effort": true,
	"reasoning": true, "thinking": true, "service_tier": true, "stop": true, "stop_sequences": true,
	"seed": true, "frequency_penalty": true, "presence_penalty": true, "n": true,
	"tool_choice": true, "parallel_tool_calls": true,
}

// parseRequest reads the body once with gjson (no decode) and assembles $ai_input in the
// {role, content} shape: the Anthropic system prompt and Responses instructions become a
// leading system message, a Responses string input a user message.
func parseRequest(op provider.Operation, stream bool, body []byte) request {
	var r request
	var messages, system, input, instructions gjson.Result
	params := obj{b: make([]byte, 0, 128)}
	params.open()
	if len(body) > 0 && gjson.ValidBytes(body) {
		gjson.Parse(bytesToString(body)).ForEach(func(k, v gjson.Result) bool {
			switch k.Str {
			case "messages":
				messages = v
			case "system":
				system = v
			case "input":
				input = v
			case "instructions":
				instructions = v
			case "tools":
				r.tools = compact(v.Raw)
			default:
				if modelParams[k.Str] { // a fixed set of plain names
					params.raw(k.Str, compact(v.Raw))
				}
			}
			return true
		})
	}
	params.bool("stream", stream)
	params.close()
	r.params = params.b

	in := make([]byte, 0, len(messages.Raw)+len(system.Raw)+len(input.Raw)+len(instructions.Raw)+64)
	in = append(in, '[')
	n := 0
	add := func(elem []byte) {
		if n > 0 {
			in = append(in, ',')
		}
		in = append(in, elem...)
		n++
	}
	addMessage := func(role string, content gjson.Result) {
		m := obj{b: make([]byte, 0, len(content.Raw)+32)}
		m.open()
		m.str("role", role)
		m.raw("content", []byte(content.Raw))
		m.close()
		add(m.b)
	}
	spread := func(arr gjson.Result) {
		inner := strings.TrimSpace(arr.Raw)
		inner = strings.TrimSpace(inner[1 : len(inner)-1])
		if inner != "" {
			add([]byte(inner))
		}
	}
	switch op {
	case provider.OpResponses:
		if instructions.Type == gjson.String && instructions.Str != "" {
			r.instr = []byte(instructions.Raw)
			addMessage("system", instructions)
		}
		switch {
		case input.Type == gjson.String:
			addMessage("user", input)
		case input.IsArray():
			spread(input)
		}
	default:
		if (system.Type == gjson.String && system.Str != "") || system.IsArray() {
			addMessage("system", system)
		}
		if messages.IsArray() {
			spread(messages)
		}
	}
	in = append(in, ']')
	if bytes.IndexByte(in, '\n') >= 0 || bytes.IndexByte(in, '\r') >= 0 {
		in = pretty.Ugly(in)
	}
	r.input = in
	return r
}

// compact copies a raw JSON value, removing whitespace when it spans lines: events are
// single-line JSON (one outbox record, one JSONL line).
func compact(raw string) []byte {
	if strings.IndexByte(raw, '\n') >= 0 || strings.IndexByte(raw, '\r') >= 0 {
		return pretty.Ugly([]byte(raw))
	}
	return []byte(raw)
}

// outputChoices renders the assistant text as [{"role":"assistant","content":"..."}].
func outputChoices(text string) []byte {
	o := obj{b: make([]byte, 0, len(text)+48)}
	o.b = append(o.b, '[')
	o.open()
	o.str("role", "assistant")
	o.str("content", text)
	o.close()
	return append(o.b, ']')
}

// spanName is the $ai_span_name of an operation.
func spanName(op provider.Operation) string {
	switch op {
	case provider.OpChatCompletions:
		return "chat.completions"
	case provider.OpCountTokens:
		return "messages.count_tokens"
	}
	return string(op)
}

// traceID returns the call's trace id: the client's when PostHog accepts it, else a UUIDv5
// of it, else (no header) a UUIDv5 of the request id.
func traceID(c *Call) string {
	if c.TraceID == "" {
		return uuid.NewSHA1(traceNamespace, []byte(c.RequestID)).String()
	}
	if validTraceID(c.TraceID) {
		return c.TraceID
	}
	return uuid.NewSHA1(traceNamespace, []byte("trace:"+c.TraceID)).String()
}

// validTraceID: letters, digits and -_~.@()!':| only
// (docs/events.md "Property types and required properties").
func validTraceID(s string) bool {
	if len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-_~.@()!':|", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// posthogGatewayHosts are PostHog's own gateway hosts: never an $ai_base_url (ingestion
// drops such events: docs/events.md "Property types and required properties").
var posthogGatewayHosts = map[string]bool{
	"gateway.us.posthog.com": true, "gateway.eu.posthog.com": true, "gateway.posthog.com": true,
	"ai-gateway.us.posthog.com": true, "ai-gateway.eu.posthog.com": true,
}

// hostOf returns the lowercase host of an absolute URL without parsing it fully.
func hostOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexAny(u, "/?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.LastIndexByte(u, '@'); i >= 0 {
		u = u[i+1:]
	}
	if i := strings.LastIndexByte(u, ':'); i >= 0 && !strings.Contains(u[i:], "]") {
		u = u[:i]
	}
	return strings.ToLower(u)
}

func upstreamURL(u string) string {
	if u == "" || posthogGatewayHosts[hostOf(u)] {
		return ""
	}
	return u
}

// defaultProvider is the native provider of an operation's shape, for events of calls that
// never reached an upstream (rejections).
func defaultProvider(op provider.Operation) string {
	if op.Shape() == "Anthropic" {
		return "anthropic"
	}
	return "openai"
}

// callerAIProperties are the $ai_* properties a caller may set through X-PostHog-Properties;
// every other $ai_* key belongs to the gateway.
var callerAIProperties = map[string]bool{
	"$ai_trace_name": true, "$ai_prompt_name": true, "$ai_experiment_id": true,
}

// gatewayOwned reports whether a caller property would collide with the gateway's own.
func gatewayOwned(k string) bool {
	switch {
	case strings.HasPrefix(k, "$ai_"):
		return !callerAIProperties[k]
	case strings.HasPrefix(k, "llm_gateway_"):
		return true
	}
	switch k {
	case "$process_person_profile", "$lib", "$lib_version", "$geoip_disable":
		return true
	}
	return false
}

// callerProps validates the X-PostHog-Properties object; ok is false when it is unusable.
func callerProps(raw []byte) (props gjson.Result, ok bool) {
	if len(raw) == 0 {
		return gjson.Result{}, true
	}
	if len(raw) > maxCallerPropertiesBytes || !gjson.ValidBytes(raw) {
		return gjson.Result{}, false
	}
	props = gjson.Parse(bytesToString(raw))
	return props, props.IsObject()
}

// Build turns a Call into its events: the main event (the served attempt, the last failed
// attempt, or the rejection) first, then one error event per failover hop.
func (b *builder) Build(c *Call) []Entry {
	final := -1
	hops := 0
	for i := range c.Attempts {
		if !c.Attempts[i].Skipped {
			if final >= 0 {
				hops++
			}
			final = i
		}
	}
	mainIdx := max(final, 0)
	dest := b.destination(c)
	trace := traceID(c)
	req := parseRequest(c.Op, c.Stream, c.RequestBody)
	props, propsOK := callerProps(c.Properties)

	e := evt{
		b: b, c: c, trace: trace, req: &req, props: props, propsOK: propsOK,
		attempt: mainIdx, uuid: EventUUID(c.RequestID, mainIdx),
	}
	out := make([]Entry, 0, 1+hops)
	out = append(out, Entry{UUID: e.uuid, Dest: dest, Event: e.main(final, hops)})
	for i := 0; i < final; i++ {
		a := &c.Attempts[i]
		if a.Skipped {
			continue
		}
		h := e
		h.attempt, h.uuid = i, EventUUID(c.RequestID, i)
		out = append(out, Entry{UUID: h.uuid, Dest: dest, Event: h.hop(a, e.uuid)})
	}
	return out
}

// evt writes one event of a call.
type evt struct {
	b       *builder
	c       *Call
	trace   string
	req     *request
	props   gjson.Result
	propsOK bool
	attempt int
	uuid    string
}

// heavy are the large properties, truncated (in this order) when the event is too big.
type heavy struct {
	output, input, tools []byte
}

// envelope writes the event object around properties written by body.
func (e *evt) envelope(ts time.Time, size int, body func(o *obj)) []byte {
	c := e.c
	o := obj{b: make([]byte, 0, size)}
	o.open()
	o.str("type", "capture")
	o.str("uuid", e.uuid)
	o.str("library", Library)
	o.str("library_version", e.b.libVersion)
	o.key("timestamp")
	o.b = append(o.b, '"')
	o.b = ts.UTC().AppendFormat(o.b, "2006-01-02T15:04:05.000Z07:00")
	o.b = append(o.b, '"')
	if c.DistinctID != "" {
		o.str("distinct_id", c.DistinctID)
	} else {
		o.str("distinct_id", "llm-gateway:team:"+c.Team)
	}
	o.str("event", EventName)
	o.key("properties")
	p := obj{b: o.b}
	p.open()
	body(&p)
	p.close()
	o.b = p.b
	o.bool("send_feature_flags", false)
	o.close()
	return o.b
}

// common writes the properties every event of the call carries.
func (e *evt) common(p *obj, parent string) {
	c := e.c
	p.str("$ai_trace_id", e.trace)
	p.str("$ai_span_id", e.uuid)
	p.str("$ai_parent_id", parent)
	p.str("$ai_span_name", spanName(c.Op))
	p.strIf("$ai_session_id", c.SessionID)
	p.bool("$ai_stream", c.Stream)
	p.raw("$ai_model_parameters", e.req.params)
	p.str("llm_gateway_request_id", c.RequestID)
	p.strIf("llm_gateway_team", c.Team)
	p.strIf("llm_gateway_product", c.Product)
	p.strIf("llm_gateway_route", c.Route)
	p.str("llm_gateway_op", string(c.Op))
	p.strIf("llm_gateway_requested_model", c.RequestedModel)
	p.strIf("llm_gateway_canonical_model", c.CanonicalModel)
	p.int("llm_gateway_attempt", int64(e.attempt))
	if c.TraceID != "" && c.TraceID != e.trace {
		p.str("llm_gateway_trace_id_original", c.TraceID)
	}
	if c.DistinctID == "" {
		p.bool("$process_person_profile", false)
	}
	p.str("$lib", Library)
	p.str("$lib_version", e.b.libVersion)
	p.bool("$geoip_disable", true)
}

// caller merges X-PostHog-Properties, skipping gateway-owned and repeated keys.
func (e *evt) caller(p *obj) {
	if !e.propsOK {
		p.bool("llm_gateway_properties_invalid", true)
		return
	}
	if !e.props.Exists() {
		return
	}
	var seen []string
	e.props.ForEach(func(k, v gjson.Result) bool {
		if gatewayOwned(k.Str) {
			return true
		}
		for _, s := range seen {
			if s == k.Str {
				return true
			}
		}
		seen = append(seen, k.Str)
		p.rawKey(k.Raw)
		p.b = append(p.b, v.Raw...)
		return true
	})
}

// tokens writes the normalized token counts (cost.Usage is disjoint: $ai_input_tokens is the
// uncached input, hence $ai_cache_reporting_exclusive true for every provider).
func tokens(p *obj, u *cost.Usage) {
	p.int("$ai_input_tokens", u.InputTokens)
	p.int("$ai_output_tokens", u.OutputTokens)
	p.int("$ai_total_tokens", u.TotalTokens())
	p.int("$ai_cache_read_input_tokens", u.CacheReadTokens)
	p.int("$ai_cache_creation_input_tokens", u.CacheWriteTokens())
	if u.CacheWriteTokens() > 0 {
		p.int("$ai_cache_creation_5m_input_tokens", u.CacheWrite5mTokens)
		p.int("$ai_cache_creation_1h_input_tokens", u.CacheWrite1hTokens)
	}
	if u.ReasoningTokens > 0 {
		p.int("$ai_reasoning_tokens", u.ReasoningTokens)
	}
	p.bool("$ai_cache_reporting_exclusive", true)
}

// costs writes the gateway's cost set. $ai_input_cost_usd is gross (uncached input + cache
// read + cache write) as ingestion computes it, so input + output = total exactly; the cache
// parts are also given on their own.
func costs(p *obj, k *Cost) {
	p.usd("$ai_input_cost_usd", k.InputMicros+k.CacheReadMicros+k.CacheWriteMicros)
	p.usd("$ai_output_cost_usd", k.OutputMicros)
	p.usd("$ai_cache_read_cost_usd", k.CacheReadMicros)
	p.usd("$ai_cache_creation_cost_usd", k.CacheWriteMicros)
	p.usd("$ai_total_cost_usd", k.TotalMicros)
	p.bool("$ai_cost_passthrough", true)
}

// main writes the call's main event; final is the index of the last non-skipped attempt
// (-1: none), hops the number of failed attempts before it.
func (e *evt) main(final, hops int) []byte {
	c := e.c
	var fa *Attempt
	if final >= 0 {
		fa = &c.Attempts[final]
	}
	prov, backend, baseURL, requestURL := c.Provider, c.Backend, c.BaseURL, ""
	if fa != nil {
		prov = firstNonEmpty(prov, fa.Provider)
		backend = firstNonEmpty(backend, fa.Backend)
		baseURL = firstNonEmpty(baseURL, fa.BaseURL)
		requestURL = fa.RequestURL
	}
	if prov == "" {
		prov = defaultProvider(c.Op)
	}
	model := firstNonEmpty(c.ServedModel, attemptModel(fa), c.CanonicalModel, c.RequestedModel)

	status := c.Status
	isErr := c.Error != nil || c.Rejection != nil || c.ClientDisconnected || status >= 400
	errType, errMsg := "", ""
	if c.Error != nil {
		errType, errMsg = c.Error.Type, c.Error.Message
	}
	switch {
	case c.Rejection != nil:
		if status == 0 {
			status = 429
		}
		errType = firstNonEmpty(errType, "llm_gateway_rejected")
		errMsg = firstNonEmpty(errMsg, "rejected by the gateway: "+c.Rejection.Limit)
	case c.ClientDisconnected:
		if status == 0 {
			status = 499
		}
		errType = firstNonEmpty(errType, "client_disconnected")
		errMsg = firstNonEmpty(errMsg, "client disconnected before the response completed")
	case isErr:
		errMsg = firstNonEmpty(errMsg, "HTTP "+strconv.Itoa(status))
	}

	// Token and cost policy (docs/events.md "Tokens", "Cost").
	u := &c.Usage
	generated := c.TimeToFirstToken > 0 || c.OutputText != ""
	tokensKnown := c.UsageReported || !u.IsZero() || !generated
	sendCost := tokensKnown && !u.IsZero() && c.Cost.Priced
	// count_tokens is free: the counted prompt is not generation input. It is recorded with
	// zero tokens and an explicit zero cost, so ingestion cannot price the count.
	counting := c.Op == provider.OpCountTokens

	var hv heavy
	hv.input = e.req.input
	hv.tools = e.req.tools
	if c.Rejection == nil && (c.OutputText != "" || !isErr) {
		hv.output = outputChoices(c.OutputText)
	}

	skipped := 0
	for i := range c.Attempts {
		if c.Attempts[i].Skipped {
			skipped++
		}
	}

	write := func(h heavy, inTrunc, outTrunc, toolsTrunc bool) []byte {
		size := 1024 + len(h.input) + len(h.output) + len(h.tools) + len(e.req.params) + len(e.props.Raw)
		return e.envelope(c.Start, size, func(p *obj) {
			e.common(p, e.trace)
			p.str("$ai_provider", strings.ToLower(prov))
			p.str("$ai_model", model)
			if u := upstreamURL(baseURL); u != "" && c.Rejection == nil {
				p.str("$ai_base_url", u)
			}
			if u := upstreamURL(requestURL); u != "" && c.Rejection == nil {
				p.str("$ai_request_url", u)
			}
			p.int("$ai_http_status", int64(status))
			p.seconds("$ai_latency", c.Latency)
			if c.Stream && c.TimeToFirstToken > 0 {
				p.seconds("$ai_time_to_first_token", c.TimeToFirstToken)
			}
			p.bool("$ai_is_error", isErr)
			if isErr {
				p.str("$ai_error", errMsg)
				p.strIf("$ai_error_type", errType)
			}
			p.strIf("$ai_stop_reason", c.StopReason)
			p.strIf("$ai_completion_id", c.ResponseID)
			switch {
			case counting:
				tokens(p, &cost.Usage{})
				p.int("llm_gateway_counted_input_tokens", u.PromptTokens())
				costs(p, &Cost{})
			case tokensKnown:
				tokens(p, u)
			default:
				p.bool("$ai_cache_reporting_exclusive", true)
				p.bool("llm_gateway_usage_unknown", true)
			}
			if !c.UsageReported && !u.IsZero() && !counting {
				p.bool("llm_gateway_usage_estimated", true)
			}
			switch {
			case counting:
			case sendCost:
				costs(p, &c.Cost)
			case !c.Cost.Priced && !u.IsZero():
				p.bool("llm_gateway_unpriced", true)
			}
			p.strIf("llm_gateway_backend", backend)
			if final >= 0 {
				p.int("llm_gateway_attempts", int64(hops+1))
			}
			if hops > 0 {
				p.bool("llm_gateway_failed_over", true)
			}
			if skipped > 0 {
				p.key("llm_gateway_skipped_backends")
				p.b = append(p.b, '[')
				n := 0
				for i := range c.Attempts {
					a := &c.Attempts[i]
					if !a.Skipped {
						continue
					}
					if n > 0 {
						p.b = append(p.b, ',')
					}
					n++
					s := obj{b: p.b}
					s.open()
					s.str("backend", a.Backend)
					s.str("reason", a.SkipReason)
					s.close()
					p.b = s.b
				}
				p.b = append(p.b, ']')
			}
			if c.Rejection != nil {
				p.bool("llm_gateway_rejected", true)
				p.str("llm_gateway_rejection_limit", c.Rejection.Limit)
			}
			if c.ClientDisconnected {
				p.bool("llm_gateway_client_disconnected", true)
			}
			if c.ContentFiltered {
				p.bool("llm_gateway_content_filtered", true)
			}
			e.caller(p)
			if len(e.req.instr) > 0 {
				p.raw("$ai_instructions", e.req.instr)
			}
			if len(h.tools) > 0 {
				p.raw("$ai_tools", h.tools)
			}
			p.raw("$ai_input", h.input)
			if h.output != nil {
				p.raw("$ai_output_choices", h.output)
			}
			if inTrunc {
				p.bool("llm_gateway_input_truncated", true)
			}
			if outTrunc {
				p.bool("llm_gateway_output_truncated", true)
			}
			if toolsTrunc {
				p.bool("llm_gateway_tools_truncated", true)
			}
		})
	}
	ev := write(hv, false, false, false)
	if len(ev) <= e.b.maxEventBytes {
		return ev
	}
	// Too big for capture: share what is left between the output, the input and the tools
	// (small ones stay whole, the large ones are cut to an equal share), keeping a prefix of
	// each cut one as a JSON string (docs/events.md "Truncation").
	const flagsSlack = 256
	avail := e.b.maxEventBytes - (len(ev) - len(hv.input) - len(hv.output) - len(hv.tools)) - flagsSlack
	fields := []*[]byte{&hv.output, &hv.input, &hv.tools}
	order := []int{0, 1, 2}
	sort.Slice(order, func(i, j int) bool { return len(*fields[order[i]]) < len(*fields[order[j]]) })
	trunc := [3]bool{}
	remaining := avail
	for n, i := range order {
		f := fields[i]
		share := remaining / (len(order) - n)
		if *f == nil || len(*f) <= share {
			remaining -= len(*f)
			continue
		}
		*f = truncateJSON(*f, share)
		trunc[i] = true
		remaining -= len(*f)
	}
	return write(hv, trunc[1], trunc[0], trunc[2])
}

// hop writes the error event of a failed attempt that the call failed over from.
func (e *evt) hop(a *Attempt, mainSpan string) []byte {
	c := e.c
	ts := a.Start
	if ts.IsZero() {
		ts = c.Start
	}
	errType, errMsg := "", ""
	if a.Error != nil {
		errType, errMsg = a.Error.Type, a.Error.Message
	}
	errMsg = firstNonEmpty(errMsg, a.ErrorClass, "attempt failed with HTTP "+strconv.Itoa(a.Status))
	return e.envelope(ts, 1024+len(e.req.params)+len(e.props.Raw), func(p *obj) {
		e.common(p, mainSpan)
		p.str("$ai_provider", strings.ToLower(firstNonEmpty(a.Provider, defaultProvider(c.Op))))
		p.str("$ai_model", firstNonEmpty(a.Model, c.CanonicalModel, c.RequestedModel))
		if u := upstreamURL(a.BaseURL); u != "" {
			p.str("$ai_base_url", u)
		}
		if u := upstreamURL(a.RequestURL); u != "" {
			p.str("$ai_request_url", u)
		}
		p.int("$ai_http_status", int64(a.Status))
		p.seconds("$ai_latency", a.Latency)
		p.bool("$ai_is_error", true)
		p.str("$ai_error", errMsg)
		p.strIf("$ai_error_type", errType)
		// Nothing was generated on a failed attempt: zero tokens, no cost.
		p.int("$ai_input_tokens", 0)
		p.int("$ai_output_tokens", 0)
		p.bool("$ai_cache_reporting_exclusive", true)
		p.strIf("llm_gateway_backend", a.Backend)
		p.strIf("llm_gateway_failover_reason", a.ErrorClass)
		p.bool("llm_gateway_failover_hop", true)
		e.caller(p)
	})
}

func attemptModel(a *Attempt) string {
	if a == nil {
		return ""
	}
	return a.Model
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// truncateJSON replaces a JSON value by a JSON string of at most allow bytes holding a
// prefix of its text and a marker.
func truncateJSON(raw []byte, allow int) []byte {
	suffix := "… [truncated by llm-gateway: " + strconv.Itoa(len(raw)) + " bytes]"
	if allow < len(truncationMarker)+len(suffix)+64 {
		return jsonx.AppendString(nil, truncationMarker)
	}
	n := min(len(raw), allow-len(suffix)-2)
	for n > 0 {
		for n > 0 && n < len(raw) && raw[n]&0xC0 == 0x80 { // do not cut a rune in two
			n--
		}
		s := jsonx.AppendString(make([]byte, 0, allow+16), bytesToString(raw[:n])+suffix)
		if len(s) <= allow {
			return s
		}
		n -= max(len(s)-allow, 1)
	}
	return jsonx.AppendString(nil, truncationMarker)
}
