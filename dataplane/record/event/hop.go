package event

import (
	"strconv"
	"strings"
)

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
