package event

import (
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/provider"
)

// Builder turns Calls into wire events. Its fields are set once, before the first Build;
// Build is then safe for concurrent use.
type Builder struct {
	// MaxEventBytes bounds a serialized event (DefaultMaxBytes); larger content is truncated.
	MaxEventBytes int
	// DefaultDestination is the gateway's capture host and project key, for teams without
	// their own.
	DefaultDestination Destination
	// LibVersion is sent as $lib_version and library_version.
	LibVersion string
}

// destination picks the team's capture host and key, else the gateway's; no host or no key
// means the local events file.
func (b *Builder) destination(c *Call) Destination {
	host, key := c.PostHogHost, c.PostHogAPIKey
	if host == "" {
		host = b.DefaultDestination.Host
	}
	if key == "" {
		key = b.DefaultDestination.APIKey
	}
	if host == "" || key == "" {
		return Destination{}
	}
	return Destination{Host: strings.TrimRight(host, "/"), APIKey: key}
}

// Build turns a Call into its events: the main event (the served attempt, the last failed
// attempt, or the rejection) first, then one error event per failover hop.
func (b *Builder) Build(c *Call) []Entry {
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
		attempt: mainIdx, uuid: UUID(c.RequestID, mainIdx),
	}
	out := make([]Entry, 0, 1+hops)
	out = append(out, Entry{UUID: e.uuid, Dest: dest, Event: e.main(final, hops)})
	for i := 0; i < final; i++ {
		a := &c.Attempts[i]
		if a.Skipped {
			continue
		}
		h := e
		h.attempt, h.uuid = i, UUID(c.RequestID, i)
		out = append(out, Entry{UUID: h.uuid, Dest: dest, Event: h.hop(a, e.uuid)})
	}
	return out
}

// evt writes one event of a call.
type evt struct {
	b       *Builder
	c       *Call
	trace   string
	req     *request
	props   gjson.Result
	propsOK bool
	attempt int
	uuid    string
}

// envelope writes the event object around properties written by body.
func (e *evt) envelope(ts time.Time, size int, body func(o *obj)) []byte {
	c := e.c
	o := obj{b: make([]byte, 0, size)}
	o.open()
	o.str("type", "capture")
	o.str("uuid", e.uuid)
	o.str("library", Library)
	o.str("library_version", e.b.LibVersion)
	o.key("timestamp")
	o.b = append(o.b, '"')
	o.b = ts.UTC().AppendFormat(o.b, "2006-01-02T15:04:05.000Z07:00")
	o.b = append(o.b, '"')
	if c.DistinctID != "" {
		o.str("distinct_id", c.DistinctID)
	} else {
		o.str("distinct_id", "llm-gateway:team:"+c.Team)
	}
	o.str("event", Name)
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
	p.str("$lib_version", e.b.LibVersion)
	p.bool("$geoip_disable", true)
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

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
