package fakeprovider

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/posthog/llm-gateway/dataplane/cost"
)

// call is one request being served.
type call struct {
	s        *Server
	w        http.ResponseWriter
	r        *http.Request
	provider Provider
	op       Operation
	body     []byte
	sc       Scenario
	start    time.Time
	seq      uint64
	timer    *time.Timer

	// model is the request's model (body, Bedrock path, Azure deployment); respModel is the
	// model reported in the response.
	model     string
	respModel string
	stream    bool
	text      string
	usage     cost.Usage
}

// handle wraps a provider operation: body, auth, scenario, request log.
func (s *Server) handle(p Provider, op Operation, serve func(*call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.count(r.URL.Path)
		body, tooLarge, release, readErr := s.readBody(r)
		defer release()
		c := &call{s: s, w: w, r: r, provider: p, op: op, body: body, start: s.now(), seq: s.nextSeq()}
		defer c.stopTimer()
		switch p {
		case Bedrock:
			c.model = r.PathValue("modelId")
			c.stream = op == OpInvokeStream
		case Azure:
			c.model = r.PathValue("deployment")
			if c.model == "" {
				c.model = gjson.GetBytes(body, "model").Str
			}
			c.stream = gjson.GetBytes(body, "stream").Bool()
		default:
			c.model = gjson.GetBytes(body, "model").Str
			c.stream = gjson.GetBytes(body, "stream").Bool()
		}

		rec := Request{
			Time: c.start, Provider: p, Operation: op, Method: r.Method, Path: r.URL.Path,
			RawPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Body: body,
			Model: c.model, Stream: c.stream,
		}
		method, authErr := c.authenticate()
		rec.AuthMethod = method
		var scErr error
		switch {
		case authErr == nil:
			rec.Auth = AuthOK
			c.sc, scErr = s.resolve(p, r.Header)
			rec.Scenario = c.sc.Name
		case method == "":
			rec.Auth, rec.AuthError = AuthMissing, authErr.msg
		default:
			rec.Auth, rec.AuthError = AuthInvalid, authErr.msg
		}
		if s.reqs != nil {
			rec.Header = r.Header.Clone()
			s.reqs.add(rec)
		}
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("fakeprovider: request", "provider", p, "op", op, "path", r.URL.Path,
				"model", c.model, "stream", c.stream, "auth", rec.Auth, "scenario", rec.Scenario)
		}

		switch {
		case authErr != nil:
			c.writeError(authErr.status, authErr.errType, authErr.msg)
		case readErr != nil:
			c.writeError(http.StatusBadRequest, "", "read request body: "+readErr.Error())
		case tooLarge:
			c.writeError(http.StatusRequestEntityTooLarge, "", "")
		case scErr != nil:
			c.writeError(http.StatusBadRequest, "", scErr.Error())
		default:
			serve(c)
		}
	}
}

// resolve builds the scenario of a request: named (X-Fake-Scenario) or the provider's default,
// then X-Fake-* header overrides.
func (s *Server) resolve(p Provider, h http.Header) (Scenario, error) {
	var sc Scenario
	if name := h.Get(HeaderScenario); name != "" {
		named, ok := s.Scenario(name)
		if !ok {
			return sc, fmt.Errorf("unknown fake scenario %q", name)
		}
		sc = named
	} else if a := s.defaults[p.index()].Load(); a != nil && a.take() {
		sc = a.sc
	}
	if err := applyHeaders(&sc, h); err != nil {
		return sc, fmt.Errorf("fake scenario: %w", err)
	}
	return sc, nil
}

// prepare fills the response text, model and usage from the scenario and the request.
func (c *call) prepare(defaultModel string, promptRoots ...string) {
	c.text = c.sc.Text
	if c.text == "" {
		c.text = "Hello from fake " + string(c.provider)
	}
	c.respModel = c.sc.Model
	if c.respModel == "" {
		c.respModel = defaultModel
	}
	if c.sc.Usage != nil {
		c.usage = *c.sc.Usage
	} else {
		c.usage = cost.Usage{InputTokens: estimateTokens(c.body, promptRoots...), OutputTokens: countWords(c.text)}
	}
}

// id returns a deterministic response id: prefix + the request's sequence number.
func (c *call) id(prefix string) string {
	b := make([]byte, 0, len(prefix)+24)
	b = append(b, prefix...)
	b = append(b, "fake"...)
	n := strconv.AppendUint(nil, c.seq, 10)
	for i := len(n); i < 20; i++ {
		b = append(b, '0')
	}
	return string(append(b, n...))
}

// created is the request time in Unix seconds.
func (c *call) created() int64 { return c.start.Unix() }

func (c *call) elapsedMs() int64 { return c.s.now().Sub(c.start).Milliseconds() }

// sleep waits ms milliseconds; false when the client went away. A closed server skips the
// wait (Server.Close releases delayed responses, which then complete).
func (c *call) sleep(ms int64) bool {
	if ms <= 0 || c.s.closed() {
		return true
	}
	d := time.Duration(ms) * time.Millisecond
	if c.timer == nil {
		c.timer = time.NewTimer(d)
	} else {
		c.timer.Reset(d)
	}
	select {
	case <-c.timer.C:
		return true
	case <-c.s.done:
		c.timer.Stop()
		return true
	case <-c.r.Context().Done():
		c.timer.Stop()
		return false
	}
}

func (c *call) stopTimer() {
	if c.timer != nil {
		c.timer.Stop()
	}
}

// stall blocks until the client goes away or the server closes; a stall released by Close
// ends with an abrupt close, never with a proper end of stream.
func (c *call) stall() {
	c.flush()
	select {
	case <-c.r.Context().Done():
	case <-c.s.done:
		c.abort(false)
	}
}

func (c *call) flush() {
	if f, ok := c.w.(http.Flusher); ok {
		f.Flush()
	}
}

// abort closes the connection abruptly: with a TCP reset when rst, else a plain close that
// leaves a started body (chunked or with Content-Length) unterminated.
func (c *call) abort(rst bool) {
	if !rst {
		c.flush() // what was written goes out before the close
	}
	if hj, ok := c.w.(http.Hijacker); ok {
		conn, _, err := hj.Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok && rst {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// scenarioError writes the scenario's HTTP error and reports true, or reports false when
// the scenario is not an HTTP error. It also serves FaultReset.
func (c *call) scenarioError() bool {
	status := c.sc.Status
	if status == 0 && c.sc.ErrorType != "" && c.sc.Fault == "" {
		// A name the provider does not know is still an error: a 500 carrying that name.
		if status = statusForErrorType(c.provider, c.sc.ErrorType); status == 0 {
			status = http.StatusInternalServerError
		}
	}
	if status < 400 && c.sc.Fault != FaultReset {
		return false
	}
	if !c.sleep(c.sc.DelayMs) {
		return true
	}
	if c.sc.Fault == FaultReset {
		c.abort(true)
		return true
	}
	c.scenarioHeaders()
	c.writeError(status, c.sc.ErrorType, c.sc.ErrorMessage)
	return true
}

// scenarioHeaders sets retry-after, retry-after-ms and the scenario's extra headers.
func (c *call) scenarioHeaders() {
	h := c.w.Header()
	if c.sc.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(c.sc.RetryAfter))
	}
	if c.sc.RetryAfterMs > 0 {
		h.Set("Retry-After-Ms", strconv.Itoa(c.sc.RetryAfterMs))
	}
	for k, v := range c.sc.Headers {
		h.Set(k, v)
	}
}

// respond writes a successful non-streaming JSON body, applying delays and body faults.
func (c *call) respond(body []byte) {
	if !c.sleep(c.sc.DelayMs) {
		return
	}
	c.scenarioHeaders()
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	switch c.sc.Fault {
	case FaultMalformed:
		body = []byte("{\"id\":\"garbage\x00\xff\xfe not json")
	case FaultCut:
		h.Set("Content-Length", strconv.Itoa(len(body)))
		c.w.WriteHeader(http.StatusOK)
		if c.sleep(c.sc.FirstByteDelayMs) {
			_, _ = c.w.Write(body[:len(body)/2])
		}
		c.abort(false)
		return
	case FaultStall:
		c.w.WriteHeader(http.StatusOK)
		c.stall()
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.w.WriteHeader(http.StatusOK)
	if c.sc.FirstByteDelayMs > 0 {
		c.flush()
		if !c.sleep(c.sc.FirstByteDelayMs) {
			return
		}
	}
	_, _ = c.w.Write(body)
}

// Stream framings.
const (
	framingSSE         = iota // event: <name>\ndata: <json>\n\n
	framingData               // data: <json>\n\n
	framingEventStream        // AWS event-stream chunk frames
)

// events accumulates the framed bytes of the events to write next.
type events struct {
	framing int
	out     []byte
	scratch []byte
}

var eventsPool = sync.Pool{New: func() any { return &events{out: make([]byte, 0, 2048), scratch: make([]byte, 0, 1024)} }}

// begin returns an empty buffer for the next event's JSON.
func (e *events) begin() []byte { return e.scratch[:0] }

// end frames one event whose JSON is data (obtained from begin).
func (e *events) end(name string, data []byte) {
	switch e.framing {
	case framingSSE:
		e.out = append(e.out, "event: "...)
		e.out = append(e.out, name...)
		e.out = append(e.out, "\ndata: "...)
		e.out = append(e.out, data...)
		e.out = append(e.out, '\n', '\n')
	case framingData:
		e.out = append(e.out, "data: "...)
		e.out = append(e.out, data...)
		e.out = append(e.out, '\n', '\n')
	case framingEventStream:
		e.out = appendChunkFrame(e.out, data)
	}
	e.scratch = data[:0]
}

// streamFormat renders one provider's stream events.
type streamFormat interface {
	// start emits the opening events (sent with the first text delta).
	start(c *call, e *events)
	delta(c *call, e *events, piece string)
	// finish emits the closing events, usage included.
	finish(c *call, e *events)
	// fail emits the provider's in-stream error.
	fail(c *call, e *events)
	// garbage emits bytes that are not a valid event.
	garbage(c *call, e *events)
}

// runStream serves a streaming 200 response: delays, headers, chunks, pacing and faults.
func (c *call) runStream(f streamFormat, framing int, contentType string) {
	if !c.sleep(c.sc.DelayMs) {
		return
	}
	c.scenarioHeaders()
	h := c.w.Header()
	h.Set("Content-Type", contentType)
	if framing != framingEventStream {
		h.Set("Cache-Control", "no-cache")
	}
	c.w.WriteHeader(http.StatusOK)
	c.flush()
	if !c.sleep(c.sc.FirstByteDelayMs) {
		return
	}

	e := eventsPool.Get().(*events)
	defer eventsPool.Put(e)
	e.framing, e.out = framing, e.out[:0]

	pieces := splitText(c.text, c.chunks())
	faultAt := -1
	if c.sc.Fault != "" {
		faultAt = min(c.sc.FaultAfter, len(pieces))
	}
	for i := 0; ; i++ {
		if i == faultAt {
			c.fault(f, e)
			return
		}
		if i == len(pieces) {
			break
		}
		if i == 0 {
			f.start(c, e)
		}
		f.delta(c, e, pieces[i])
		if !c.send(e) {
			return
		}
		if i+1 < len(pieces) && !c.sleep(c.sc.ChunkIntervalMs) {
			return
		}
	}
	f.finish(c, e)
	c.send(e)
}

func (c *call) chunks() int {
	if c.sc.Chunks > 0 {
		return c.sc.Chunks
	}
	return 4
}

// send writes and flushes the pending events; false when the client is gone.
func (c *call) send(e *events) bool {
	_, err := c.w.Write(e.out)
	e.out = e.out[:0]
	if err != nil {
		return false
	}
	c.flush()
	return true
}

func (c *call) fault(f streamFormat, e *events) {
	switch c.sc.Fault {
	case FaultError:
		f.fail(c, e)
		c.send(e)
	case FaultMalformed:
		f.garbage(c, e)
		c.send(e)
	case FaultCut:
		c.abort(false)
	case FaultStall:
		c.stall()
	}
}

// sseGarbage is what a malformed SSE stream sends: a truncated event and binary junk.
const sseGarbage = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"te\x00\xff\xfe garbage\n\n"
