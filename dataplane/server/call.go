package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/posthog/llm-gateway/dataplane/budget"
	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/record"
	routepkg "github.com/posthog/llm-gateway/dataplane/route"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// call is one client request on its way through the gateway. rec accumulates what the
// recorder gets.
type call struct {
	g  *Gateway
	rt *Runtime
	w  http.ResponseWriter
	r  *http.Request

	op    provider.Operation
	shape snapshot.Shape
	team  *snapshot.Team
	route *snapshot.Route
	info  *provider.RequestInfo
	// body is the client body after the gateway's shape-level edits (max_tokens,
	// include_usage); the model is set per attempt.
	body             []byte
	clientWantsUsage bool

	rec record.Call
	// be and upstreamModel are the backend and provider model id of the last attempt.
	be            *backendRT
	upstreamModel string
	reservation   *budget.Reservation
	result        *provider.Result
	// modelLabel is the model as a metric label: the canonical model, or "other" for a name
	// only a route prefix admitted and the catalog does not know.
	modelLabel string
	committed  bool // status and headers were written to the client
	events     int  // stream events written to the client
	// byPrefix: a route prefix admitted the model, so the client named it (not the operator).
	byPrefix bool

	// bodyHeld is what the call holds of the pod's body pool (released after recording).
	bodyHeld int64
	rc       http.ResponseController
	rcSet    bool
	// writeDeadline is the write deadline in force on the client connection (extendWrite).
	writeDeadline time.Time
}

// fail writes a gateway error (nothing was sent upstream, or the upstream failed in a way
// the gateway reports itself) and finishes the call.
func (c *call) fail(e *provider.GatewayError, retryAfter time.Duration) {
	c.failHint(e, retryAfter, retryAfter > 0)
}

// failHint is fail with the retry decision apart from the wait (see writeGatewayErrorHint).
func (c *call) failHint(e *provider.GatewayError, retryAfter time.Duration, retry bool) {
	c.extendWrite()
	writeGatewayErrorHint(c.w, c.shape, e, retryAfter, retry)
	c.committed = true
	c.rec.Status = e.Status
	if c.rec.Error == nil {
		c.rec.Error = &record.Error{Type: errorType(e), Message: e.Message}
	}
}

func errorType(e *provider.GatewayError) string {
	if e.Code != "" {
		return e.Code
	}
	return e.OpenAIType
}

// serve handles an authenticated model call: inspect, resolve, limits, admission, attempts,
// relay, then cost, settlement and recording.
func (c *call) serve() {
	defer c.releaseBody() // after finish: the recorder reads the body
	defer c.finish()
	r := c.r
	c.rec.TraceID = r.Header.Get(HeaderTraceID)
	c.rec.SessionID = r.Header.Get(HeaderSessionID)
	c.rec.DistinctID = r.Header.Get(HeaderDistinctID)
	if p := r.Header.Get(HeaderProperties); p != "" {
		c.rec.Properties = []byte(p)
	}
	c.rec.Op = c.op

	body, err := c.readBody(c.g.maxBody)
	switch {
	case err == nil:
	case isTooLarge(err):
		c.w.Header().Set("Connection", "close") // answer now, without waiting for the rest
		c.fail(errTooLarge(fmt.Sprintf("request body is larger than the gateway's limit of %d bytes", c.g.maxBody)), 0)
		return
	case errors.Is(err, errBodyPoolFull):
		// The pod holds as many body bytes as its memory allows; another pod (or this one
		// shortly) can take the call. Nothing of the body was read when it had a length.
		c.g.metrics.RequestsShed.WithLabelValues("body_bytes").Inc()
		c.w.Header().Set("Connection", "close") // answer now, without waiting for the body
		c.fail(errUpstream(http.StatusServiceUnavailable, "gateway_overloaded",
			"the gateway is at its limit of request bodies in memory; retry shortly"), time.Second)
		return
	case isTimeout(err):
		c.g.metrics.ClientTimeouts.WithLabelValues("body_read").Inc()
		c.w.Header().Set("Connection", "close")
		c.fail(gatewayErr(http.StatusRequestTimeout, provider.AnthropicTimeout, provider.OpenAIInvalidRequest, "request_timeout", "",
			fmt.Sprintf("the request body did not arrive within %s", c.g.bodyReadTimeout)), 0)
		return
	case r.Context().Err() != nil:
		c.clientGone()
		return
	default:
		// The read error may name this pod's and the client's addresses: log it only.
		c.g.log.Info("could not read the request body", "request_id", c.rec.RequestID, "error", err)
		c.fail(errInvalidRequest("could not read the request body", ""), 0)
		return
	}
	c.body = body

	info, err := provider.Inspect(c.op, body)
	if err != nil {
		// The body is not recorded: only a body Inspect accepted is parsed again (by the
		// recorder, with a recursive parser its depth bound makes safe).
		c.failRequest(err)
		return
	}
	c.rec.RequestBody = body
	c.info = info
	c.rec.Stream = info.Stream
	c.rec.RequestedModel = info.Model

	m, err := c.rt.routes.Resolve(c.shape, info.Model)
	if err != nil {
		c.fail(errNotFound("model_not_found", "model", err.Error()), 0)
		return
	}
	route := m.Route
	c.route = route
	c.rec.Route, c.rec.CanonicalModel = route.Name, m.Canonical
	c.modelLabel = m.Canonical
	c.byPrefix = m.By == routepkg.ByPrefix
	if m.By == routepkg.ByPrefix && !c.rt.catalog.Known(c.shape, m.Canonical) {
		c.modelLabel = "other" // a prefix admits any name: keep metric labels bounded
	}

	if limit := route.Limits.MaxBodyBytes; limit > 0 && int64(len(body)) > limit {
		c.fail(errTooLarge(fmt.Sprintf("request body of %d bytes is larger than the limit of %d bytes for model %s",
			len(body), limit, info.Model)), 0)
		return
	}
	if !c.applyLimits() {
		return
	}
	c.rec.RequestBody = c.body
	if !c.admit() {
		return
	}
	c.attemptLoop()
}

// applyLimits applies the route's output limits and the usage flag to the body
// (provider.EditBody). It reports false when it answered the client.
func (c *call) applyLimits() bool {
	lim := c.route.Limits
	body, clientWantsUsage, err := provider.EditBody(c.op, c.body, c.info, lim.DefaultMaxTokens, lim.MaxMaxTokens)
	if err != nil {
		c.failRequest(err)
		return false
	}
	c.body, c.clientWantsUsage = body, clientWantsUsage
	return true
}

// failRequest answers a request the gateway refuses as invalid (400, with the field at fault
// when the error names one: *provider.RequestError). Any other error is the gateway's own (a
// body edit failing on a body Inspect accepted): 500, the detail only in the log.
func (c *call) failRequest(err error) {
	var re *provider.RequestError
	if errors.As(err, &re) {
		c.fail(errInvalidRequest(re.Message, re.Param), 0)
		return
	}
	c.g.log.Error("could not edit the request body", "request_id", c.rec.RequestID, "error", err)
	c.fail(gatewayErr(http.StatusInternalServerError, provider.AnthropicAPIError, provider.OpenAIServerError, "internal_error", "",
		"the gateway could not prepare the request body"), 0)
}

// clientGone marks the call as abandoned by the client.
func (c *call) clientGone() {
	c.rec.ClientDisconnected = true
	if c.rec.Status == 0 {
		c.rec.Status = 499
	}
	if c.rec.Error == nil {
		c.rec.Error = &record.Error{Type: "client_disconnected", Message: "the client closed the connection before the response was complete"}
	}
}

// finish computes usage and cost, settles, records and logs the call.
func (c *call) finish() {
	now := c.g.now()
	c.rec.Latency = now.Sub(c.rec.Start)
	if res := c.result; res != nil {
		c.rec.Usage, c.rec.UsageReported = res.Usage, res.UsageReported
		c.rec.OutputText, c.rec.StopReason, c.rec.ResponseID = res.OutputText, res.StopReason, res.ResponseID
		c.rec.ContentFiltered = res.ContentFiltered
		if res.ServedModel != "" {
			c.rec.ServedModel = res.ServedModel
		}
		if !res.UsageReported {
			c.rec.Usage = c.estimateUsage()
		}
		c.price()
	}
	c.settle()
	c.observe()
	if c.g.opts.Recorder != nil && c.rec.Team != "" {
		c.g.opts.Recorder.Record(&c.rec)
	}
}

// price computes the call's cost once, from the catalog and the usage: the same figures go
// to settlement and to the recorded event.
func (c *call) price() {
	if c.be == nil || c.op == provider.OpCountTokens {
		return
	}
	pid := c.upstreamModel
	if c.be.b.Provider == snapshot.ProviderAzureOpenAI && c.rec.ServedModel != "" {
		pid = c.rec.ServedModel // the deployment name says nothing; the response names the model
	}
	p, _ := c.rt.catalog.BackendPrice(c.be.b, c.rec.CanonicalModel, pid)
	b := cost.Compute(p, c.rec.Usage)
	c.rec.Cost = record.Cost{InputMicros: b.InputMicros, CacheReadMicros: b.CacheReadMicros, CacheWriteMicros: b.CacheWriteMicros,
		OutputMicros: b.OutputMicros, TotalMicros: b.TotalMicros, Priced: b.Priced}
	if !b.Priced {
		c.g.metrics.Unpriced.WithLabelValues(c.rec.Team, c.modelLabel).Inc()
		return
	}
	c.g.metrics.CostMicros.WithLabelValues(c.rec.Team, c.modelLabel).Add(float64(b.TotalMicros))
}

// estimateUsage is the usage of a call whose provider reported none (a stream cut short):
// input from the request body, output from the text streamed so far, both at 4 bytes per
// token rounded up (see docs/gateway.md).
func (c *call) estimateUsage() (u cost.Usage) {
	u = c.result.Usage
	if u.InputTokens == 0 && u.CacheReadTokens == 0 && u.CacheWriteTokens() == 0 {
		u.InputTokens = (int64(len(c.body)) + 3) / 4
	}
	if out := (int64(len(c.result.OutputText)) + 3) / 4; out > u.OutputTokens {
		u.OutputTokens = out
	}
	return u
}

// observe updates the request metrics and writes the access log line.
func (c *call) observe() {
	team, route, model := c.rec.Team, "", c.modelLabel
	if c.route != nil {
		route = c.route.Name
	}
	status := c.rec.Status
	m := c.g.metrics
	m.Requests.WithLabelValues(team, route, model, string(c.op), statusLabel(status)).Inc()
	errType := ""
	if c.rec.Error != nil {
		errType = c.rec.Error.Type
	}
	m.RequestDuration.WithLabelValues(team, route, model, string(c.op), errType).Observe(c.rec.Latency.Seconds())
	if c.rec.TimeToFirstToken > 0 {
		m.TimeToFirstToken.WithLabelValues(team, route, model, string(c.op)).Observe(c.rec.TimeToFirstToken.Seconds())
	}
	if u := c.rec.Usage; !u.IsZero() {
		m.TokenUsage.WithLabelValues(team, model, "input").Observe(float64(u.PromptTokens()))
		m.TokenUsage.WithLabelValues(team, model, "output").Observe(float64(u.OutputTokens))
	}
	if !c.g.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs, slog.String("request_id", c.rec.RequestID), slog.String("team", team), slog.String("op", string(c.op)),
		slog.String("route", route), slog.String("model", c.rec.RequestedModel), slog.Int("status", status),
		slog.Int64("latency_ms", c.rec.Latency.Milliseconds()), slog.Int("attempts", len(c.rec.Attempts)))
	if c.rec.Backend != "" {
		attrs = append(attrs, slog.String("backend", c.rec.Backend))
	}
	if c.rec.Error != nil {
		attrs = append(attrs, slog.String("error_type", c.rec.Error.Type), slog.String("error", c.rec.Error.Message))
	}
	c.g.log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}

func statusLabel(status int) string { return strconv.Itoa(status) }
