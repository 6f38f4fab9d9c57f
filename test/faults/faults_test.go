package faults

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/posthog/llm-gateway/dataplane/catalog"
	"github.com/posthog/llm-gateway/dataplane/cost"
	"github.com/posthog/llm-gateway/dataplane/provider"
	"github.com/posthog/llm-gateway/dataplane/record"
	"github.com/posthog/llm-gateway/dataplane/server"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/test/capturesink"
	"github.com/posthog/llm-gateway/test/fakeprovider"
)

// Who serves a call.
const (
	byPrimary   = "primary"
	bySecondary = "secondary"
)

// classes is a failover class per shape (an OpenAI 529 is a plain 5xx, an Anthropic one is
// overloaded).
type classes struct{ anthropic, openai string }

func same(class string) classes { return classes{class, class} }

func (c classes) of(s snapshot.Shape) string {
	if s == snapshot.ShapeAnthropic {
		return c.anthropic
	}
	return c.openai
}

// expect is the outcome of one cell.
type expect struct {
	// served names the backend whose answer the client gets; "" when it gets an error.
	served string
	// The client's error: HTTP status (200 once a stream is committed; anthropicStatus when
	// the Anthropic shape's differs), Anthropic error.type, OpenAI error.type and error.code
	// (a Responses error event has only the code).
	status, anthropicStatus               int
	anthropicType, openaiType, openaiCode string
	committed                             bool
	// primaryTries and secondaryTries are the requests each fake received.
	primaryTries, secondaryTries int
	// class is the failover class recorded on the primary's failed attempt (its hop event),
	// "" when the primary's attempt is the call's only one.
	class classes
	// The primary's circuit after the call: open (with the cooldown from the failure to its
	// end) or closed, and its consecutive failures. secondaryFailures is the target's count.
	open              bool
	failures          int
	cooldown          time.Duration
	secondaryFailures int
}

// statusFor is the status a client of shape s gets.
func (e *expect) statusFor(s snapshot.Shape) int {
	if s == snapshot.ShapeAnthropic && e.anthropicStatus != 0 {
		return e.anthropicStatus
	}
	return e.status
}

// attempts is the number of upstream attempts made, hence of events recorded.
func (e *expect) attempts() int { return 1 + e.secondaryTries }

func failover(c classes) *expect {
	return &expect{served: bySecondary, primaryTries: 1, secondaryTries: 1, class: c, failures: 1}
}

// failoverOpen: the primary's failure opens its circuit at once, for d.
func failoverOpen(c classes, d time.Duration) *expect {
	e := failover(c)
	e.open, e.cooldown = true, d
	return e
}

func primaryServes() *expect { return &expect{served: byPrimary, primaryTries: 1} }

// committed: the stream was committed when the fault came; the client gets the events sent
// so far and an error in its own protocol. The fault counts against the primary's circuit.
func committed(anthropicType, openaiCode string, failures int) *expect {
	return &expect{status: http.StatusOK, committed: true, anthropicType: anthropicType, openaiType: provider.OpenAIServerError,
		openaiCode: openaiCode, primaryTries: 1, failures: failures}
}

// rejected: the primary's error is the answer (no failover); the backend answered, so its
// circuit stays closed.
func rejected(status int, anthropicType, openaiType, openaiCode string) *expect {
	return &expect{status: status, anthropicType: anthropicType, openaiType: openaiType, openaiCode: openaiCode, primaryTries: 1}
}

// pairKind says which backends a row uses.
type pairKind int

const (
	// standard: Anthropic -> Bedrock for the Anthropic shape, OpenAI -> Azure for the OpenAI shape.
	standard pairKind = iota
	bedrockFirst
	azureFirst
)

func (k pairKind) pair(s snapshot.Shape) (pair, bool) {
	switch {
	case k == standard && s == snapshot.ShapeAnthropic:
		return pair{fakeprovider.Anthropic, fakeprovider.Bedrock}, true
	case k == standard:
		return pair{fakeprovider.OpenAI, fakeprovider.Azure}, true
	case k == bedrockFirst && s == snapshot.ShapeAnthropic:
		return pair{fakeprovider.Bedrock, fakeprovider.Anthropic}, true
	case k == azureFirst && s == snapshot.ShapeOpenAI:
		return pair{fakeprovider.Azure, fakeprovider.OpenAI}, true
	}
	return pair{}, false
}

// row is one fault, applied to the primary through the fake provider's default scenario.
type row struct {
	name string
	kind pairKind
	// primary is the fault; nonStreamPrimary replaces it on non-streaming calls when the
	// provider reports that failure differently there. secondary breaks the target too.
	primary, nonStreamPrimary, secondary *fakeprovider.Scenario
	// refused points the primary at a closed port.
	refused bool
	// stream and nonStream are the expected outcomes; nil: the fault does not exist there.
	stream, nonStream *expect
}

func (r *row) expect(col column) *expect {
	if col.stream {
		return r.stream
	}
	return r.nonStream
}

func (r *row) fault(col column) *fakeprovider.Scenario {
	if !col.stream && r.nonStreamPrimary != nil {
		return r.nonStreamPrimary
	}
	return r.primary
}

// rows is the fault matrix (docs/faults.md renders it).
var rows = []row{
	{name: "429 with retry-after 20s", primary: &fakeprovider.Scenario{Status: 429, RetryAfter: 20},
		stream: failoverOpen(same(snapshot.FailoverRateLimited), 20*time.Second), nonStream: failoverOpen(same(snapshot.FailoverRateLimited), 20*time.Second)},
	{name: "429 without retry-after", primary: &fakeprovider.Scenario{Status: 429},
		stream: failoverOpen(same(snapshot.FailoverRateLimited), cooldown), nonStream: failoverOpen(same(snapshot.FailoverRateLimited), cooldown)},
	{name: "529 overloaded", primary: &fakeprovider.Scenario{Status: 529},
		stream:    failover(classes{snapshot.FailoverOverloaded, snapshot.FailoverServerError}),
		nonStream: failover(classes{snapshot.FailoverOverloaded, snapshot.FailoverServerError})},
	{name: "500", primary: &fakeprovider.Scenario{Status: 500},
		stream: failover(same(snapshot.FailoverServerError)), nonStream: failover(same(snapshot.FailoverServerError))},
	{name: "503", primary: &fakeprovider.Scenario{Status: 503},
		stream: failover(same(snapshot.FailoverServerError)), nonStream: failover(same(snapshot.FailoverServerError))},
	{name: "connection refused", refused: true,
		stream: refusedFailover(), nonStream: refusedFailover()},
	{name: "connection reset before the response", primary: &fakeprovider.Scenario{Fault: fakeprovider.FaultReset},
		stream: failover(same(snapshot.FailoverConnectionError)), nonStream: failover(same(snapshot.FailoverConnectionError))},
	{name: "no response headers (first-byte timeout)", primary: &fakeprovider.Scenario{DelayMs: 60_000},
		stream: failover(same(snapshot.FailoverTimeout)), nonStream: failover(same(snapshot.FailoverTimeout))},
	{name: "200 then nothing (first-event timeout)", primary: &fakeprovider.Scenario{FirstByteDelayMs: 60_000},
		stream: failover(same(snapshot.FailoverTimeout)), nonStream: failover(same(snapshot.FailoverTimeout))},
	{name: "200 then an error as the first event", primary: &fakeprovider.Scenario{Fault: fakeprovider.FaultError},
		stream: failover(classes{snapshot.FailoverOverloaded, snapshot.FailoverServerError}), nonStream: primaryServes()},
	{name: "200 then malformed bytes first", primary: &fakeprovider.Scenario{Fault: fakeprovider.FaultMalformed},
		stream: failover(same(snapshot.FailoverServerError)), nonStream: failover(same(snapshot.FailoverServerError))},
	{name: "cut after 2 deltas", primary: &fakeprovider.Scenario{Fault: fakeprovider.FaultCut, FaultAfter: 2},
		stream:    committed(provider.AnthropicAPIError, "upstream_stream_error", 1),
		nonStream: failover(same(snapshot.FailoverConnectionError))},
	{name: "stall after 2 deltas (idle timeout)", primary: &fakeprovider.Scenario{Fault: fakeprovider.FaultStall, FaultAfter: 2},
		stream:    committed(provider.AnthropicTimeout, "upstream_idle_timeout", 1),
		nonStream: failover(same(snapshot.FailoverTimeout))},
	{name: "malformed after 2 deltas", primary: &fakeprovider.Scenario{Fault: fakeprovider.FaultMalformed, FaultAfter: 2},
		stream:    committed(provider.AnthropicAPIError, "upstream_stream_error", 1),
		nonStream: failover(same(snapshot.FailoverServerError))},
	{name: "error event after 2 deltas", primary: &fakeprovider.Scenario{Fault: fakeprovider.FaultError, FaultAfter: 2},
		stream:    committed(provider.AnthropicOverloaded, provider.OpenAIServerError, 1),
		nonStream: primaryServes()},
	{name: "primary and secondary both 503", primary: &fakeprovider.Scenario{Status: 503}, secondary: &fakeprovider.Scenario{Status: 503},
		stream: exhausted(), nonStream: exhausted()},

	{name: "Bedrock exception frame first (throttling)", kind: bedrockFirst,
		primary:          &fakeprovider.Scenario{Fault: fakeprovider.FaultError, ErrorType: "ThrottlingException"},
		nonStreamPrimary: &fakeprovider.Scenario{ErrorType: "ThrottlingException"},
		stream:           failoverOpen(same(snapshot.FailoverRateLimited), cooldown),
		nonStream:        failoverOpen(same(snapshot.FailoverRateLimited), cooldown)},
	{name: "Bedrock exception frame mid-stream (throttling)", kind: bedrockFirst,
		primary: &fakeprovider.Scenario{Fault: fakeprovider.FaultError, FaultAfter: 2, ErrorType: "ThrottlingException"},
		stream:  committedOpen(provider.AnthropicRateLimit, cooldown)},
	{name: "Bedrock validation exception first (client error)", kind: bedrockFirst,
		primary:          &fakeprovider.Scenario{Fault: fakeprovider.FaultError, ErrorType: "ValidationException"},
		nonStreamPrimary: &fakeprovider.Scenario{ErrorType: "ValidationException"},
		stream:           rejected(http.StatusBadRequest, provider.AnthropicInvalidRequest, "", ""),
		nonStream:        rejected(http.StatusBadRequest, provider.AnthropicInvalidRequest, "", "")},

	{name: "Azure content filter 400", kind: azureFirst, primary: &fakeprovider.Scenario{ErrorType: "content_filter"},
		stream:    rejected(http.StatusBadRequest, "", "", "content_filter"), // relayed as Azure sent it: "type": null
		nonStream: rejected(http.StatusBadRequest, "", "", "content_filter")},
	{name: "Azure 429 with retry-after-ms 15500", kind: azureFirst, primary: &fakeprovider.Scenario{Status: 429, RetryAfterMs: 15_500},
		stream:    failoverOpen(same(snapshot.FailoverRateLimited), 15500*time.Millisecond),
		nonStream: failoverOpen(same(snapshot.FailoverRateLimited), 15500*time.Millisecond)},
}

func refusedFailover() *expect {
	e := failover(same(snapshot.FailoverConnectionError))
	e.primaryTries = 0 // nothing listens there
	return e
}

func committedOpen(anthropicType string, d time.Duration) *expect {
	e := committed(anthropicType, "", 1)
	e.open, e.cooldown = true, d
	return e
}

// exhausted: both backends fail; the client gets the target's error as the target sent it
// (Bedrock's ServiceUnavailableException in Anthropic's shape: 529 overloaded_error; Azure's
// 503 body), told not to retry.
func exhausted() *expect {
	e := rejected(http.StatusServiceUnavailable, provider.AnthropicOverloaded, "", "ServiceUnavailable")
	e.anthropicStatus = 529
	e.secondaryTries, e.class, e.failures, e.secondaryFailures = 1, same(snapshot.FailoverServerError), 1, 1
	return e
}

// TestFaults runs every row of the matrix in every column it applies to, each cell on its own
// gateway and fakes, in parallel; the recorder and capture sink are shared.
func TestFaults(t *testing.T) {
	s := newSuite(t)
	for i := range rows {
		r := &rows[i]
		for _, col := range columns {
			want := r.expect(col)
			p, ok := r.kind.pair(col.shape())
			if want == nil || !ok {
				continue
			}
			t.Run(r.name+"/"+col.String(), func(t *testing.T) {
				t.Parallel()
				s.run(t, r, col, p, want)
			})
		}
	}
}

// run is one cell: the call, then what the client saw, which backends were tried, the
// circuit, the settled spend and the recorded events.
func (s *suite) run(t *testing.T, r *row, col column, p pair, want *expect) {
	c := newCell(t, p, cellOptions{primary: r.fault(col), secondary: r.secondary, refused: r.refused, recorder: s.rec})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := c.call(ctx, col)
	reqID := o.header.Get(server.HeaderRequestID)
	require.NotEmpty(t, reqID, "the gateway answered (error: %v)", o.err)

	// What the client saw.
	switch want.served {
	case byPrimary, bySecondary:
		require.NoError(t, o.err)
		served, text, usage := p.primary, primaryText, primaryUsage
		if want.served == bySecondary {
			served, text, usage = p.secondary, secondaryText, secondaryUsage
		}
		require.Equal(t, text, o.text)
		require.Equal(t, [2]int64{usage.InputTokens, usage.OutputTokens}, [2]int64{o.in, o.out}, "the serving backend's usage")
		require.True(t, o.finished, "a normal end")
		require.Equal(t, backendName(served), o.header.Get(server.HeaderBackend))
		require.Equal(t, want.attempts(), atoi(t, o.header.Get(server.HeaderAttempts)))
		if want.served == bySecondary {
			require.Empty(t, diff(s.baseline(t, p.primary, col), o.sig.without()),
				"the failover answer has the structure of a direct %s answer", p.primary)
		}
	case "":
		require.Error(t, o.err)
		ce, ok := asClientError(o.err)
		require.True(t, ok, "a typed protocol error from the SDK, got %T: %v", o.err, o.err)
		require.Equal(t, want.statusFor(col.shape()), ce.status, o.err.Error())
		switch {
		case col.shape() == snapshot.ShapeAnthropic:
			require.Equal(t, want.anthropicType, ce.typ, o.err.Error())
		case col.op == provider.OpResponses && want.committed: // a Responses error event has only a code
			require.Equal(t, want.openaiCode, ce.code, o.err.Error())
		default:
			require.Equal(t, want.openaiType, ce.typ, o.err.Error())
			require.Equal(t, want.openaiCode, ce.code, o.err.Error())
		}
		switch {
		case want.committed:
			require.False(t, o.finished, "no normal end after an error")
			require.NotEmpty(t, o.text, "the deltas sent before the fault")
			require.True(t, strings.HasPrefix(primaryText, o.text) && o.text != primaryText, "a prefix of the primary's text: %q", o.text)
		case sdkRetries(ce.status):
			// A status the SDKs would retry on their own: the gateway already did what it could.
			require.Equal(t, "false", ce.header.Get(server.HeaderShouldRetry), "no SDK retry after failover")
			require.Empty(t, ce.header.Get("Retry-After"))
		}
	}

	// Which backends were tried.
	require.Equal(t, want.primaryTries, c.primary.requests(), "requests to the primary")
	require.Equal(t, want.secondaryTries, c.secondary.requests(), "requests to the secondary")

	// The events: one per attempt, sharing the trace.
	events := s.events(t, reqID, want.attempts())
	main := events[want.attempts()-1]
	for i, ev := range events {
		require.Empty(t, ev.Problems, "event %d is valid", i)
		require.Equal(t, c.trace, ev.Props["$ai_trace_id"])
		require.Equal(t, team, ev.Props["llm_gateway_team"])
	}
	if want.attempts() > 1 {
		hop := events[0]
		require.Equal(t, true, hop.Props["$ai_is_error"])
		require.NotEmpty(t, hop.Props["$ai_error"])
		require.Equal(t, want.class.of(col.shape()), hop.Props["llm_gateway_failover_reason"])
		require.Equal(t, true, hop.Props["llm_gateway_failover_hop"])
		require.Equal(t, backendName(p.primary), hop.Props["llm_gateway_backend"])
		require.Equal(t, main.Props["$ai_span_id"], hop.Props["$ai_parent_id"])
		require.EqualValues(t, 0, hop.Props["$ai_output_tokens"])
	}
	if want.served != "" {
		require.Equal(t, false, main.Props["$ai_is_error"])
		require.EqualValues(t, http.StatusOK, main.Props["$ai_http_status"])
		require.Equal(t, o.header.Get(server.HeaderBackend), main.Props["llm_gateway_backend"])
	} else {
		require.Equal(t, true, main.Props["$ai_is_error"])
		require.NotEmpty(t, main.Props["$ai_error"])
	}
	if want.attempts() > 1 && want.served != "" {
		require.Equal(t, true, main.Props["llm_gateway_failed_over"])
	}

	// The settled spend is what the event reports: the served usage, what was streamed
	// before a fault, nothing for a call nothing was generated for.
	spent, reserved := c.spent()
	require.Zero(t, reserved, "the reservation was settled")
	require.Equal(t, micros(main.Props["$ai_total_cost_usd"]), spent)
	switch {
	case want.served != "":
		served, up, u := p.primary, c.primary, primaryUsage
		if want.served == bySecondary {
			served, up, u = p.secondary, c.secondary, secondaryUsage
		}
		require.EqualValues(t, u.OutputTokens, main.Props["$ai_output_tokens"])
		// Priced as the model id the provider was called with (Bedrock's us. inference
		// profile costs more than Anthropic's API); Azure's deployment name says nothing, so
		// the model its response names.
		last, ok := up.fake.LastRequest()
		require.True(t, ok)
		model := last.Model
		if served == fakeprovider.Azure {
			model, _ = main.Props["$ai_model"].(string)
		}
		cfg := backendConfig(served, "")
		price, ok := catalog.Default().BackendPrice(&cfg, modelOf(col), model)
		require.True(t, ok, "%s is priced for %s", model, served)
		require.Equal(t, cost.Compute(price, u).TotalMicros, spent, "the served usage at %s's price for %s", served, model)
	case want.committed:
		require.Equal(t, true, main.Props["llm_gateway_usage_estimated"], "no final usage came")
		require.Positive(t, spent, "the streamed part is paid for")
		require.GreaterOrEqual(t, toInt(main.Props["$ai_output_tokens"]), int64(math.Ceil(float64(len(o.text))/4)),
			"at least the streamed text")
		if col.shape() == snapshot.ShapeAnthropic {
			require.EqualValues(t, primaryUsage.InputTokens, main.Props["$ai_input_tokens"], "message_start's input")
		}
	default:
		require.Zero(t, spent, "nothing generated, nothing spent")
	}

	// The circuits after the call.
	cb := c.circuit(p.primary)
	require.Equal(t, want.failures, cb.ConsecutiveFailures, "the primary's consecutive failures")
	if want.open {
		require.Equal(t, "open", cb.State)
		require.Equal(t, want.cooldown, cb.CooldownUntil.Sub(cb.LastFailure), "the cooldown")
	} else {
		require.Equal(t, "closed", cb.State)
		require.True(t, cb.CooldownUntil.IsZero())
	}
	sb := c.circuit(p.secondary)
	require.Equal(t, "closed", sb.State)
	require.Equal(t, want.secondaryFailures, sb.ConsecutiveFailures)
}

// events waits for the n events of a call to reach the capture sink; they are returned in
// attempt order.
func (s *suite) events(t *testing.T, reqID string, n int) []capturesink.Received {
	t.Helper()
	out := make([]capturesink.Received, n)
	require.Eventually(t, func() bool {
		for i := range n {
			ev, ok := s.sink.Event(record.EventUUID(reqID, i))
			if !ok {
				return false
			}
			out[i] = ev
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "the call's %d events reach capture", n)
	// Nothing beyond one event per attempt.
	seen := 0
	for _, ev := range s.sink.Events() {
		if ev.Props["llm_gateway_request_id"] == reqID {
			seen++
		}
	}
	require.Equal(t, n, seen, "one event per attempt")
	return out
}

// baseline is the signature of a direct success of p through the gateway for col.
func (s *suite) baseline(t *testing.T, p fakeprovider.Provider, col column) signature {
	key := string(p) + " " + col.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sig, ok := s.baselines[key]; ok {
		return sig
	}
	other := map[fakeprovider.Provider]fakeprovider.Provider{fakeprovider.Anthropic: fakeprovider.Bedrock,
		fakeprovider.Bedrock: fakeprovider.Anthropic, fakeprovider.OpenAI: fakeprovider.Azure, fakeprovider.Azure: fakeprovider.OpenAI}
	c := newCell(t, pair{p, other[p]}, cellOptions{})
	o := c.call(context.Background(), col)
	require.NoError(t, o.err)
	require.Equal(t, backendName(p), o.header.Get(server.HeaderBackend))
	s.baselines[key] = o.sig.without()
	return s.baselines[key]
}

// sdkRetries reports whether the OpenAI and Anthropic SDKs retry a status by default.
func sdkRetries(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusConflict || status == http.StatusTooManyRequests || status >= 500
}

// modelOf is the canonical model a column's calls name.
func modelOf(col column) string {
	if col.shape() == snapshot.ShapeAnthropic {
		return claudeModel
	}
	return gptModel
}

func micros(v any) int64 {
	f, _ := v.(float64)
	return int64(math.Round(f * 1e6))
}

func toInt(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
