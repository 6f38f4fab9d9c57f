package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/record"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// copyResponseHeaders copies the upstream response headers a client may see (the adapters'
// allowlist). The gateway's own request id takes X-Request-Id; the provider's is kept as
// X-Upstream-Request-Id for support.
func copyResponseHeaders(dst, src http.Header, isError bool) {
	if isError {
		provider.ErrorResponseHeaders(dst, src)
	} else {
		provider.ResponseHeaders(dst, src)
	}
	if v := src.Get("X-Request-Id"); v != "" {
		dst.Set("X-Upstream-Request-Id", v)
	}
}

// relayBody writes a non-streaming response.
func (c *call) relayBody(o *outcome) {
	defer o.cancel(nil)
	h := c.w.Header()
	copyResponseHeaders(h, o.resp.Header, false)
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(o.body)))
	c.setAttemptHeaders(h, o.be)
	c.extendWrite()
	c.w.WriteHeader(o.resp.StatusCode)
	c.committed = true
	c.rec.Status = o.resp.StatusCode
	c.result = o.result
	if _, err := c.w.Write(o.body); err != nil {
		c.clientWriteFailed(err)
	}
}

// relayStream commits the client to the stream (status, headers and the held first event),
// then relays event by event with a flush each, until the stream ends, fails, goes idle, the
// client leaves, or the gateway ends it (drain, kill switch). It returns the upstream's
// failure after commit, nil when the backend was not at fault.
func (c *call) relayStream(o *outcome) (fault *attemptErr) {
	defer o.cancel(nil)
	defer func() {
		_ = o.reader.Close()
		_ = o.resp.Body.Close()
	}()
	remove := c.g.streams.Add(c.team.Name, c.rec.RequestID, o.cancel)
	defer remove()

	h := c.w.Header()
	copyResponseHeaders(h, o.resp.Header, false)
	h.Del("Content-Length")
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	c.setAttemptHeaders(h, o.be)
	c.w.WriteHeader(http.StatusOK)
	c.committed = true
	c.rec.Status = http.StatusOK
	rc := c.controller()

	ok := c.writeEvent(rc, o, o.first)
	idle := time.AfterFunc(o.be.idle, func() { o.cancel(errIdleTimeout) })
	idle.Stop()
	for ok {
		idle.Reset(o.be.idle)
		ev, err := o.reader.Next()
		idle.Stop()
		if err != nil {
			fault = c.endStream(rc, o, err)
			break
		}
		ok = c.writeEvent(rc, o, ev)
	}
	c.result = o.reader.Result()
	return fault
}

// writeEvent writes and flushes one event; it reports false when the client is gone. A client
// that takes nothing for the idle timeout (its TCP window stays shut) is gone too: the write
// fails at its deadline, and the upstream request is cancelled like for any disconnect.
func (c *call) writeEvent(rc *http.ResponseController, o *outcome, ev *provider.Event) bool {
	if ev.Raw == nil {
		return true // metered, not shown (the injected usage chunk)
	}
	c.extendWriteFor(o.be.idle)
	_, err := c.w.Write(ev.Raw)
	if err == nil {
		err = rc.Flush()
	}
	if err != nil {
		o.cancel(errClientGone)
		c.clientWriteFailed(err)
		return false
	}
	if c.events == 0 {
		c.rec.TimeToFirstToken = c.g.now().Sub(c.rec.Start)
	}
	c.events++
	return true
}

// endStream handles the end of a committed stream: a proper end, the client leaving, or an
// error reported with a terminal event in the client's protocol (no normal terminator after).
// It returns the failure to count against the backend (its class as before commit), nil for
// a proper end, the client leaving or the gateway ending the stream.
func (c *call) endStream(rc *http.ResponseController, o *outcome, err error) (fault *attemptErr) {
	if err == io.EOF {
		return nil
	}
	if c.r.Context().Err() != nil {
		c.clientGone()
		return nil
	}
	var ge *provider.GatewayError
	cause := context.Cause(o.ctx)
	var ue *provider.UpstreamError
	switch {
	case o.ctx.Err() != nil && errors.Is(cause, ErrDraining):
		ge = errUpstream(http.StatusServiceUnavailable, "gateway_draining", cause.Error())
	case o.ctx.Err() != nil && errors.Is(cause, ErrSuspended):
		ge = gatewayErr(http.StatusTooManyRequests, provider.AnthropicRateLimit, provider.OpenAIRateLimit, "team_suspended", "", cause.Error())
	case o.ctx.Err() != nil && errors.Is(cause, errIdleTimeout):
		ge = errUpstream(http.StatusGatewayTimeout, "upstream_idle_timeout", cause.Error())
		fault = &attemptErr{class: snapshot.FailoverTimeout, err: cause}
	case errors.As(err, &ue):
		ge = ue.GatewayError(c.shape) // ue.Type is the provider's name (a Bedrock exception), not the client's
		fault = &attemptErr{class: ue.Class, upstream: ue, err: ue}
	default:
		// The read error may name upstream addresses: the client gets the fact, the log the detail.
		c.g.log.Warn("upstream stream failed after the first byte", "request_id", c.rec.RequestID, "backend", o.be.b.Name, "error", err)
		ge = errUpstream(http.StatusBadGateway, "upstream_stream_error", "the upstream stream failed (request id "+c.rec.RequestID+")")
		fault = &attemptErr{class: snapshot.FailoverServerError, err: err}
	}
	c.rec.Error = &record.Error{Type: errorType(ge), Message: ge.Message}
	if ue != nil {
		c.rec.Error.Type = ue.Type
	}
	c.extendWriteFor(o.be.idle)
	if _, werr := c.w.Write(provider.StreamErrorEvent(c.op, ge, int64(c.events))); werr == nil {
		_ = rc.Flush()
	}
	return fault
}

// clientWriteFailed marks the call as abandoned after a write to the client failed, counting
// a client that stopped reading (the write deadline passed).
func (c *call) clientWriteFailed(err error) {
	if isTimeout(err) {
		c.g.metrics.ClientTimeouts.WithLabelValues("write").Inc()
		if c.rec.Error == nil {
			c.rec.Error = &record.Error{Type: "client_disconnected",
				Message: "the client stopped reading: a write to it did not complete within the idle timeout"}
		}
	}
	c.clientGone()
}
