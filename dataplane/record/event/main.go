package event

import (
	"strconv"
	"strings"
)

// The main event of a call describes the served attempt, the last failed attempt, or the
// gateway's rejection. Its properties are decided first (target, outcome, usage), then
// written group by group in a fixed order: the envelope and common properties, the model
// and provider, status and timing, the error, the response, tokens, cost, routing and
// failover, the gateway's flags, the caller's properties, and the content (input, output,
// tools), which the event is truncated on when it is too large (truncate.go).

// main writes the call's main event; final is the index of the last non-skipped attempt
// (-1: none), hops the number of failed attempts before it.
func (e *evt) main(final, hops int) []byte {
	c := e.c
	m := mainEvent{final: final, hops: hops, outcome: outcomeOf(c), usage: usageOf(c)}
	if final >= 0 {
		m.target = targetOf(c, &c.Attempts[final])
	} else {
		m.target = targetOf(c, nil)
	}
	h := heavy{input: e.req.input, tools: e.req.tools}
	if c.Rejection == nil && (c.OutputText != "" || !m.outcome.isErr) {
		h.output = outputChoices(c.OutputText)
	}
	ev := e.writeMain(&m, h, truncated{})
	if len(ev) <= e.b.MaxEventBytes {
		return ev
	}
	h, t := fit(h, len(ev), e.b.MaxEventBytes)
	return e.writeMain(&m, h, t)
}

// mainEvent is what the main event says, decided before it is written (it may be written
// twice: once more truncated).
type mainEvent struct {
	final, hops int
	target      target
	outcome     outcome
	usage       usage
}

// writeMain writes the main event with the content h (truncated as t says).
func (e *evt) writeMain(m *mainEvent, h heavy, t truncated) []byte {
	c := e.c
	size := 1024 + len(h.input) + len(h.output) + len(h.tools) + len(e.req.params) + len(e.props.Raw)
	return e.envelope(c.Start, size, func(p *obj) {
		e.common(p, e.trace)
		m.target.write(p, c.Rejection != nil)
		p.int("$ai_http_status", int64(m.outcome.status))
		timing(p, c)
		m.outcome.write(p)
		p.strIf("$ai_stop_reason", c.StopReason)
		p.strIf("$ai_completion_id", c.ResponseID)
		m.usage.writeTokens(p)
		m.usage.writeCost(p)
		routing(p, c, m.target.backend, m.final, m.hops)
		gatewayFlags(p, c)
		e.caller(p)
		content(p, e.req.instr, h)
		t.write(p)
	})
}

// target is what served the call (or was tried last): provider, backend, upstream URLs
// and model. The Call's own fields win over the final attempt's.
type target struct {
	provider, backend, baseURL, requestURL, model string
}

func targetOf(c *Call, final *Attempt) target {
	t := target{provider: c.Provider, backend: c.Backend, baseURL: c.BaseURL}
	model := ""
	if final != nil {
		t.provider = firstNonEmpty(t.provider, final.Provider)
		t.backend = firstNonEmpty(t.backend, final.Backend)
		t.baseURL = firstNonEmpty(t.baseURL, final.BaseURL)
		t.requestURL = final.RequestURL
		model = final.Model
	}
	if t.provider == "" {
		t.provider = defaultProvider(c.Op)
	}
	t.model = firstNonEmpty(c.ServedModel, model, c.CanonicalModel, c.RequestedModel)
	return t
}

// write writes the model and provider properties; a rejection reached no upstream, so it
// has no upstream URLs.
func (t *target) write(p *obj, rejected bool) {
	p.str("$ai_provider", strings.ToLower(t.provider))
	p.str("$ai_model", t.model)
	if rejected {
		return
	}
	if u := upstreamURL(t.baseURL); u != "" {
		p.str("$ai_base_url", u)
	}
	if u := upstreamURL(t.requestURL); u != "" {
		p.str("$ai_request_url", u)
	}
}

// timing writes the call's latency and, for streams that sent content, the time to first
// token.
func timing(p *obj, c *Call) {
	p.seconds("$ai_latency", c.Latency)
	if c.Stream && c.TimeToFirstToken > 0 {
		p.seconds("$ai_time_to_first_token", c.TimeToFirstToken)
	}
}

// outcome is the call's HTTP status and, when it failed, its error (docs/events.md
// "Failures are events too"): a rejection and a client disconnect have a status and an
// error of their own when the proxy core set none.
type outcome struct {
	status          int
	isErr           bool
	errType, errMsg string
}

func outcomeOf(c *Call) outcome {
	o := outcome{status: c.Status}
	o.isErr = c.Error != nil || c.Rejection != nil || c.ClientDisconnected || o.status >= 400
	if c.Error != nil {
		o.errType, o.errMsg = c.Error.Type, c.Error.Message
	}
	switch {
	case c.Rejection != nil:
		if o.status == 0 {
			o.status = 429
		}
		o.errType = firstNonEmpty(o.errType, "llm_gateway_rejected")
		o.errMsg = firstNonEmpty(o.errMsg, "rejected by the gateway: "+c.Rejection.Limit)
	case c.ClientDisconnected:
		if o.status == 0 {
			o.status = 499
		}
		o.errType = firstNonEmpty(o.errType, "client_disconnected")
		o.errMsg = firstNonEmpty(o.errMsg, "client disconnected before the response completed")
	case o.isErr:
		o.errMsg = firstNonEmpty(o.errMsg, "HTTP "+strconv.Itoa(o.status))
	}
	return o
}

// write writes $ai_is_error (always) and, on an error, its message and type.
func (o *outcome) write(p *obj) {
	p.bool("$ai_is_error", o.isErr)
	if o.isErr {
		p.str("$ai_error", o.errMsg)
		p.strIf("$ai_error_type", o.errType)
	}
}

// routing writes the backend that served the call, how many attempts it took, whether it
// failed over, and the backends skipped on the way.
func routing(p *obj, c *Call, backend string, final, hops int) {
	p.strIf("llm_gateway_backend", backend)
	if final >= 0 {
		p.int("llm_gateway_attempts", int64(hops+1))
	}
	if hops > 0 {
		p.bool("llm_gateway_failed_over", true)
	}
	n := 0
	for i := range c.Attempts {
		a := &c.Attempts[i]
		if !a.Skipped {
			continue
		}
		if n == 0 {
			p.key("llm_gateway_skipped_backends")
			p.b = append(p.b, '[')
		} else {
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
	if n > 0 {
		p.b = append(p.b, ']')
	}
}

// gatewayFlags writes the gateway's own facts about the call: its rejection, the client
// leaving, the provider filtering the output.
func gatewayFlags(p *obj, c *Call) {
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
}

// content writes the instructions, tools, input and output of the call.
func content(p *obj, instr []byte, h heavy) {
	if len(instr) > 0 {
		p.raw("$ai_instructions", instr)
	}
	if len(h.tools) > 0 {
		p.raw("$ai_tools", h.tools)
	}
	p.raw("$ai_input", h.input)
	if h.output != nil {
		p.raw("$ai_output_choices", h.output)
	}
}
