package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/record"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Bounds on upstream bodies read into memory.
const (
	maxErrorBody    = 1 << 20
	maxResponseBody = 64 << 20
)

// Causes of an attempt's cancellation.
var (
	errFirstByteTimeout = errors.New("the upstream sent no response within the first-byte timeout")
	errIdleTimeout      = errors.New("the upstream sent nothing within the idle timeout")
	errClientGone       = errors.New("the client disconnected")
)

// Skip reasons recorded on attempts that were not made.
const (
	skipCircuitOpen = "circuit_open"
	skipCapacity    = "max_concurrent"
	skipSticky      = "sticky"
	skipUnsupported = "unsupported"
)

// attemptErr is the typed outcome of a failed attempt.
type attemptErr struct {
	// class is the failover class, "" for failures that never fail over.
	class      string
	upstream   *provider.UpstreamError
	status     int // upstream HTTP status, 0 when no response arrived
	err        error
	clientGone bool
	// requestFault: the request caused the failure although the backend answered (a 2xx in
	// the other mode than the request asked for); it says nothing about the backend's health.
	requestFault bool
}

func (e *attemptErr) recordError() *record.Error {
	switch {
	case e.upstream != nil:
		return &record.Error{Type: e.upstream.Type, Message: e.upstream.Message}
	case e.clientGone:
		return &record.Error{Type: "client_disconnected", Message: e.err.Error()}
	case e.requestFault:
		return &record.Error{Type: "upstream_mode_mismatch", Message: e.err.Error()}
	case e.class == snapshot.FailoverTimeout:
		return &record.Error{Type: "timeout", Message: e.err.Error()}
	case e.class == snapshot.FailoverConnectionError:
		return &record.Error{Type: "connection_error", Message: e.err.Error()}
	}
	return &record.Error{Type: "gateway_error", Message: e.err.Error()}
}

// outcome is a successful attempt, ready to relay.
type outcome struct {
	be     *backendRT
	pc     *provider.Call
	resp   *http.Response
	ctx    context.Context
	cancel context.CancelCauseFunc
	// Streams: the reader and the first event, held until the client is committed.
	reader provider.EventReader
	first  *provider.Event
	// Non-streaming: the client-ready body and what it said.
	body   []byte
	result *provider.Result
}

// order returns the route's targets in try order: priority groups in order, weighted random
// within a group. Sticky requests keep the configured order (only the first may serve them).
func (c *call) order() []target {
	ts := c.rt.targets[c.route.Name]
	if c.info.Sticky != "" || !c.rt.weighted[c.route.Name] {
		return ts
	}
	out := slices.Clone(ts)
	for start := 0; start < len(out); {
		end := start + 1
		for end < len(out) && out[end].priority == out[start].priority {
			end++
		}
		shuffleWeighted(out[start:end])
		start = end
	}
	return out
}

// shuffleWeighted orders ts by repeated weighted draws without replacement; zero weights come
// last (in random order).
func shuffleWeighted(ts []target) {
	for i := 0; i < len(ts)-1; i++ {
		total := 0
		for _, t := range ts[i:] {
			total += t.weight
		}
		j := i
		if total == 0 {
			j = i + rand.IntN(len(ts)-i)
		} else {
			n := rand.IntN(total)
			for k := i; k < len(ts); k++ {
				if n < ts[k].weight {
					j = k
					break
				}
				n -= ts[k].weight
			}
		}
		ts[i], ts[j] = ts[j], ts[i]
	}
}

// newCall builds the provider call for one backend with the model id it wants; the adapter
// writes it into the body when it differs from the client's (provider.EnsureModel).
func (c *call) newCall(be *backendRT) *provider.Call {
	return &provider.Call{
		Op: c.op, Stream: c.info.Stream, Body: c.body, Header: c.r.Header, RawQuery: c.r.URL.RawQuery,
		ClientWantsUsage: c.clientWantsUsage, Model: be.adapter.UpstreamModel(c.rec.CanonicalModel, c.info.Model),
	}
}

// skipReason says why a target is not tried, "" when it may be. It must be the last check
// before an attempt: it claims the breaker's half-open probe.
func (c *call) skipReason(i int, be *backendRT, pc *provider.Call) (kind, reason string) {
	if c.info.Sticky != "" && i > 0 {
		return skipSticky, "the request refers to " + c.info.Sticky + ", which only the first backend of the route holds"
	}
	if ok, why := be.adapter.Supports(pc); !ok {
		return skipUnsupported, why
	}
	if n := be.b.MaxConcurrent; n > 0 && be.inFlight.Load() >= int64(n) {
		return skipCapacity, "the backend is at its maximum of " + strconv.Itoa(n) + " concurrent requests"
	}
	if !be.breaker.Allow() {
		return skipCircuitOpen, "the backend's circuit breaker is open"
	}
	return "", ""
}

// attemptLoop tries the route's targets until one serves the call, a failure that must not
// fail over happens, or MaxAttempts is reached; it then relays or reports.
func (c *call) attemptLoop() {
	maxAttempts := c.route.Failover.MaxAttempts
	var (
		last   *attemptErr
		lastBE *backendRT
		open   []*backendRT
		kinds  []string
		tried  int
	)
	for i, t := range c.order() {
		if tried >= maxAttempts {
			break
		}
		pc := c.newCall(t.be)
		if kind, reason := c.skipReason(i, t.be, pc); kind != "" {
			c.skip(t.be, pc, kind, reason)
			kinds = append(kinds, kind)
			if kind == skipCircuitOpen {
				open = append(open, t.be)
			}
			continue
		}
		if last != nil {
			c.g.metrics.Failovers.WithLabelValues(c.route.Name, last.class).Inc()
		}
		tried++
		if aerr := c.attempt(t.be, pc, last != nil); aerr == nil || !c.failsOver(aerr) {
			return
		} else {
			last, lastBE = aerr, t.be
		}
	}
	if tried == 0 && len(open) > 0 {
		// Every eligible backend is open: probe the one that failed least recently.
		be := slices.MinFunc(open, func(a, b *backendRT) int { return a.breaker.lastFailed().Compare(b.breaker.lastFailed()) })
		be.breaker.ForceProbe()
		pc := c.newCall(be)
		if aerr := c.attempt(be, pc, false); aerr == nil || !c.failsOver(aerr) {
			return
		} else {
			last, lastBE = aerr, be
		}
	}
	if last != nil {
		c.writeAttemptError(lastBE, last, true)
		return
	}
	c.noTarget(kinds)
}

// failsOver reports whether the route moves on after aerr.
func (c *call) failsOver(aerr *attemptErr) bool {
	return !aerr.clientGone && aerr.class != "" && slices.Contains(c.route.Failover.On, aerr.class)
}

// skip records a target that was not tried.
func (c *call) skip(be *backendRT, pc *provider.Call, kind, reason string) {
	c.g.metrics.Attempts.WithLabelValues(be.b.Name, "skipped_"+kind).Inc()
	c.rec.Attempts = append(c.rec.Attempts, record.Attempt{
		Backend: be.b.Name, Provider: be.adapter.ProviderName(), BaseURL: be.adapter.BaseURL(), Model: pc.Model,
		Start: c.g.now(), Skipped: true, SkipReason: kind + ": " + reason,
	})
}

// attempt makes one attempt and, when it succeeds, relays it to the client. A returned error
// was not written to the client unless it must not fail over (then it was).
func (c *call) attempt(be *backendRT, pc *provider.Call, failover bool) *attemptErr {
	start := c.g.now()
	be.inFlight.Add(1)
	c.g.metrics.BackendInFlight.WithLabelValues(be.b.Name).Inc()
	defer func() {
		be.inFlight.Add(-1)
		c.g.metrics.BackendInFlight.WithLabelValues(be.b.Name).Dec()
	}()
	idx := len(c.rec.Attempts)
	c.rec.Attempts = append(c.rec.Attempts, record.Attempt{
		Backend: be.b.Name, Provider: be.adapter.ProviderName(), BaseURL: be.adapter.BaseURL(), Model: pc.Model, Start: start,
	})
	c.rec.Backend, c.rec.Provider, c.rec.BaseURL, c.rec.ServedModel = be.b.Name, be.adapter.ProviderName(), be.adapter.BaseURL(), pc.Model
	c.be, c.upstreamModel = be, pc.Model

	o, aerr := c.try(be, pc)
	if aerr != nil {
		a := &c.rec.Attempts[idx]
		a.Latency, a.Status, a.ErrorClass, a.Error = c.g.now().Sub(start), aerr.status, aerr.class, aerr.recordError()
		c.health(be, aerr)
		switch {
		case aerr.clientGone:
			c.g.metrics.Attempts.WithLabelValues(be.b.Name, "canceled").Inc()
			c.clientGone()
		case c.failsOver(aerr):
			c.g.metrics.Attempts.WithLabelValues(be.b.Name, aerr.class).Inc()
			c.g.log.Warn("upstream attempt failed; failing over", "request_id", c.rec.RequestID, "backend", be.b.Name,
				"class", aerr.class, "status", aerr.status, "error", aerr.err)
		default:
			outcome := aerr.class
			if outcome == "" {
				outcome = "client_error"
			}
			c.g.metrics.Attempts.WithLabelValues(be.b.Name, outcome).Inc()
			c.writeAttemptError(be, aerr, false)
		}
		return aerr
	}
	c.g.metrics.Attempts.WithLabelValues(be.b.Name, "ok").Inc()
	c.rec.Attempts[idx].Status = o.resp.StatusCode
	if o.reader != nil {
		// A stream's health is known when it ends: a fault after commit counts too.
		if fault := c.relayStream(o); fault != nil {
			c.health(be, fault)
		} else {
			be.breaker.Success()
		}
	} else {
		be.breaker.Success()
		c.relayBody(o)
	}
	c.rec.Attempts[idx].Latency = c.g.now().Sub(start)
	return nil
}

// health feeds an attempt's failure to the backend's breaker.
func (c *call) health(be *backendRT, aerr *attemptErr) {
	var retryAfter time.Duration
	if aerr.upstream != nil {
		retryAfter = aerr.upstream.RetryAfter
	}
	switch aerr.class {
	case "":
		if aerr.clientGone || aerr.requestFault {
			be.breaker.Release()
		} else {
			be.breaker.Success() // the backend answered; the request was at fault
		}
	case snapshot.FailoverRateLimited, snapshot.FailoverQuotaExhausted, snapshot.FailoverUpstreamAuth, snapshot.FailoverNotFound:
		be.breaker.Failure(true, retryAfter)
	default:
		be.breaker.Failure(false, retryAfter)
	}
}

// try sends one attempt. For streams it returns once the first event has been parsed, so that
// an error as the first event can still fail over; the client has seen nothing yet.
func (c *call) try(be *backendRT, pc *provider.Call) (*outcome, *attemptErr) {
	ctx, cancel := context.WithCancelCause(c.r.Context())
	firstByte := be.firstByte
	if ms := c.route.Failover.PerTryTimeoutMs; ms > 0 {
		firstByte = time.Duration(ms) * time.Millisecond
	}
	fb := time.AfterFunc(firstByte, func() { cancel(errFirstByteTimeout) })
	fail := func(ae *attemptErr) (*outcome, *attemptErr) {
		fb.Stop()
		cancel(ae.err)
		return nil, ae
	}

	req, err := be.adapter.NewRequest(ctx, pc)
	if err != nil {
		return fail(&attemptErr{err: fmt.Errorf("build the request for backend %s: %w", be.b.Name, err)})
	}
	resp, err := be.transport.RoundTrip(req)
	if err != nil {
		if ae := c.ctxErr(ctx, 0); ae != nil {
			return fail(ae)
		}
		return fail(&attemptErr{class: snapshot.FailoverConnectionError, err: fmt.Errorf("send to backend %s: %w", be.b.Name, err)})
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		if ae := c.ctxErr(ctx, resp.StatusCode); ae != nil {
			return fail(ae)
		}
		ue := be.adapter.Error(pc, resp.StatusCode, resp.Header, body)
		c.blameRequest(be, pc, ue)
		return fail(&attemptErr{class: ue.Class, upstream: ue, status: resp.StatusCode, err: ue})
	}
	if modeMismatch(pc.Stream, resp.Header) {
		// What the gateway read as the request's mode is not what the provider read (a
		// "stream" the two parse differently, which request validation is there to prevent):
		// relaying would fail either way, and nothing says the backend is unwell.
		_ = resp.Body.Close()
		return fail(&attemptErr{requestFault: true, status: resp.StatusCode,
			err: fmt.Errorf("backend %s answered %s to a request the gateway read as stream=%t", be.b.Name,
				resp.Header.Get("Content-Type"), pc.Stream)})
	}
	o := &outcome{be: be, pc: pc, resp: resp, ctx: ctx, cancel: cancel}

	if !pc.Stream {
		fb.Stop()
		idle := time.AfterFunc(be.idle, func() { cancel(errIdleTimeout) })
		body, err := readAllIdle(resp.Body, resp.ContentLength, idle, be.idle)
		idle.Stop()
		_ = resp.Body.Close()
		if err != nil {
			if ae := c.ctxErr(ctx, resp.StatusCode); ae != nil {
				return fail(ae)
			}
			return fail(&attemptErr{class: snapshot.FailoverConnectionError, status: resp.StatusCode,
				err: fmt.Errorf("read the response of backend %s: %w", be.b.Name, err)})
		}
		res, out, err := be.adapter.Parse(pc, resp.Header, body)
		if errors.Is(err, provider.ErrMalformed) {
			// A 200 whose body is not the format: the upstream is broken, and relaying it
			// would only give the client a decoding error. Nothing was sent yet.
			return fail(&attemptErr{class: snapshot.FailoverServerError, status: resp.StatusCode,
				err: fmt.Errorf("the response of backend %s is not valid: %w", be.b.Name, err)})
		}
		if err != nil {
			c.g.log.Warn("could not parse the upstream response; relaying it as is", "request_id", c.rec.RequestID,
				"backend", be.b.Name, "error", err)
			res = &provider.Result{}
		}
		if out == nil {
			out = body
		}
		o.body, o.result = out, res
		return o, nil
	}

	reader := be.adapter.Stream(pc, resp)
	ev, err := reader.Next()
	fb.Stop()
	if err != nil {
		_ = reader.Close()
		_ = resp.Body.Close()
		if ae := c.ctxErr(ctx, resp.StatusCode); ae != nil {
			return fail(ae)
		}
		var ue *provider.UpstreamError
		if errors.As(err, &ue) {
			c.blameRequest(be, pc, ue)
			return fail(&attemptErr{class: ue.Class, upstream: ue, status: resp.StatusCode, err: ue})
		}
		return fail(&attemptErr{class: snapshot.FailoverServerError, status: resp.StatusCode,
			err: fmt.Errorf("the stream of backend %s failed before its first event: %w", be.b.Name, err)})
	}
	o.reader, o.first = reader, ev
	return o, nil
}

// blameRequest turns an upstream "not found" the request caused into the client's error
// (relayed as is, no failover, and the backend counts as up), so that no client can open a
// backend's circuit by asking for something that does not exist. A missing model or
// deployment is the backend's configuration problem only when the operator named the model
// the backend was asked for (a route name or alias, or the backend's modelMap), not when a
// route prefix let the client name it; and an Anthropic not_found_error is about the model
// only when its message says so ("model: ..."): files, batches and the like the client names
// are not found with the same error type.
func (c *call) blameRequest(be *backendRT, pc *provider.Call, ue *provider.UpstreamError) {
	if ue.Class != snapshot.FailoverNotFound {
		return
	}
	if c.byPrefix {
		if _, mapped := provider.MappedModel(be.b, c.rec.CanonicalModel); !mapped {
			ue.Class = ""
			return
		}
	}
	if ue.Type == provider.AnthropicNotFound && !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ue.Message)), "model:") {
		ue.Class = ""
	}
}

// modeMismatch reports a 2xx in the other mode than the request asked for: an event stream
// to a request the gateway read as not streaming, or a JSON body to one it read as streaming.
// A missing or unknown Content-Type is no evidence either way.
func modeMismatch(stream bool, h http.Header) bool {
	ct, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	ct = strings.ToLower(strings.TrimSpace(ct))
	if stream {
		return ct == "application/json"
	}
	return ct == "text/event-stream" || ct == "application/vnd.amazon.eventstream"
}

// ctxErr explains an attempt whose context ended: the client left, or a timeout fired.
func (c *call) ctxErr(ctx context.Context, status int) *attemptErr {
	if c.r.Context().Err() != nil {
		return &attemptErr{clientGone: true, status: status, err: errClientGone}
	}
	if ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(ctx)
	if errors.Is(cause, errFirstByteTimeout) || errors.Is(cause, errIdleTimeout) {
		return &attemptErr{class: snapshot.FailoverTimeout, status: status, err: cause}
	}
	return &attemptErr{status: status, err: cause}
}

// readAllIdle reads a body, resetting the idle timer after every read.
func readAllIdle(r io.Reader, size int64, idle *time.Timer, d time.Duration) ([]byte, error) {
	if size < 0 || size > maxResponseBody {
		size = 8 << 10
	}
	buf := make([]byte, 0, size+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		idle.Reset(d)
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if len(buf) > maxResponseBody {
			return nil, fmt.Errorf("response body larger than %d bytes", maxResponseBody)
		}
	}
}

// noTarget answers a call for which no backend could be tried.
func (c *call) noTarget(kinds []string) {
	if len(kinds) > 0 && !slices.ContainsFunc(kinds, func(k string) bool { return k != skipCapacity }) {
		c.fail(errUpstream(http.StatusServiceUnavailable, "backend_at_capacity",
			"every backend of route "+c.route.Name+" is at its concurrency limit"), time.Second)
		return
	}
	var reasons []string
	for _, a := range c.rec.Attempts {
		if a.Skipped {
			reasons = append(reasons, a.Backend+": "+a.SkipReason)
		}
	}
	c.fail(errInvalidRequest("no backend of route "+c.route.Name+" can serve this request ("+strings.Join(reasons, "; ")+")", ""), 0)
}

// setAttemptHeaders adds the gateway's response headers of a served or failed call.
func (c *call) setAttemptHeaders(h http.Header, be *backendRT) {
	if be != nil {
		h.Set(HeaderBackend, be.b.Name)
	}
	n := 0
	for _, a := range c.rec.Attempts {
		if !a.Skipped {
			n++
		}
	}
	h.Set(HeaderAttempts, strconv.Itoa(n))
	h.Set(HeaderRequestID, c.rec.RequestID)
}

// writeAttemptError answers with a failed attempt's error. exhausted: the gateway tried every
// target it could, so the client is told not to retry.
func (c *call) writeAttemptError(be *backendRT, aerr *attemptErr, exhausted bool) {
	c.setAttemptHeaders(c.w.Header(), be)
	ue := aerr.upstream
	switch {
	case aerr.clientGone:
		c.clientGone()
	case ue != nil && aerr.class == snapshot.FailoverUpstreamAuth:
		// Never relay an upstream 401/403: the client's credentials are the gateway's.
		c.fail(errUpstream(http.StatusBadGateway, "upstream_auth",
			"backend "+be.b.Name+" refused the gateway's credentials"), 0)
	case ue != nil && ue.Status >= 400 && isJSONObject(ue.Body):
		h := c.w.Header()
		copyResponseHeaders(h, ue.Header, true)
		c.setAttemptHeaders(h, be)
		h.Set("Content-Type", "application/json")
		h.Del("Content-Length")
		if exhausted {
			h.Del("Retry-After")
			h.Del("Retry-After-Ms")
			h.Set(HeaderShouldRetry, "false")
		}
		c.w.WriteHeader(ue.Status)
		_, _ = c.w.Write(ue.Body)
		c.committed = true
		c.rec.Status = ue.Status
		c.rec.Error = aerr.recordError()
	case ue != nil:
		// An error inside a 200 stream: ue.Type is the provider's own name (for Bedrock an
		// exception name), never a client error.type; render it in the client's shape. So is
		// an error response whose body is not a JSON object (an HTML page of a proxy on the
		// way, which may name internal hosts): the client gets the status, not the page.
		c.rec.Error = aerr.recordError()
		c.fail(ue.GatewayError(c.shape), 0)
	default:
		c.rec.Error = aerr.recordError()
		c.fail(gatewayErrorFor(c.shape, aerr, c.rec.RequestID), 0)
	}
}

// isJSONObject reports whether b is a JSON object (leading whitespace allowed).
func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// gatewayErrorFor renders an attempt failure the gateway reports itself (no upstream error
// response to relay). Overloaded is Anthropic's 529 in its shape and 503 in OpenAI's. The
// message is the gateway's own: never the Go error (it holds upstream addresses, URLs and
// library text), which is in the log and the recorded event under the request id.
func gatewayErrorFor(shape snapshot.Shape, aerr *attemptErr, requestID string) *provider.GatewayError {
	ref := " (request id " + requestID + ")"
	switch aerr.class {
	case snapshot.FailoverTimeout:
		msg := "the upstream provider timed out"
		if errors.Is(aerr.err, errFirstByteTimeout) || errors.Is(aerr.err, errIdleTimeout) {
			msg = aerr.err.Error() // the gateway's own sentences
		}
		return errUpstream(http.StatusGatewayTimeout, "upstream_timeout", msg+ref)
	case snapshot.FailoverConnectionError:
		return errUpstream(http.StatusBadGateway, "upstream_unreachable", "the upstream provider could not be reached or cut the connection"+ref)
	case snapshot.FailoverOverloaded:
		status := http.StatusServiceUnavailable
		if shape == snapshot.ShapeAnthropic {
			status = 529
		}
		return gatewayErr(status, provider.AnthropicOverloaded, provider.OpenAIServerError, "upstream_overloaded", "", "the upstream provider is overloaded"+ref)
	case snapshot.FailoverRateLimited, snapshot.FailoverQuotaExhausted:
		return gatewayErr(http.StatusTooManyRequests, provider.AnthropicRateLimit, provider.OpenAIRateLimit, "upstream_rate_limited", "",
			"the upstream provider is rate limiting the gateway"+ref)
	case snapshot.FailoverServerError, snapshot.FailoverNotFound:
		return errUpstream(http.StatusBadGateway, "upstream_error", "the upstream provider sent an invalid response"+ref)
	}
	if aerr.requestFault {
		return errUpstream(http.StatusBadGateway, "upstream_mode_mismatch",
			"the provider answered in the other mode (stream or not) than the request asked for"+ref)
	}
	return gatewayErr(http.StatusInternalServerError, provider.AnthropicAPIError, provider.OpenAIServerError, "internal_error", "",
		"internal gateway error"+ref)
}
