package fakeprovider

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"sigs.k8s.io/yaml"

	"github.com/posthog/llm-gateway/dataplane/cost"
)

// Fault is what goes wrong with a 200 response.
type Fault string

const (
	// FaultError ends the stream with the provider's in-stream error (Anthropic and Responses
	// `event: error`, a chat `data: {"error":...}`, a Bedrock exception frame) after
	// FaultAfter chunks. With FaultAfter 0 the error is the first event after the 200.
	FaultError Fault = "error"
	// FaultCut closes the connection abruptly (hijack) after the headers and FaultAfter chunks.
	FaultCut Fault = "cut"
	// FaultStall stops sending after the headers and FaultAfter chunks and keeps the
	// connection open until the client goes away or the server is closed.
	FaultStall Fault = "stall"
	// FaultMalformed sends garbage after FaultAfter chunks (bytes that are not SSE JSON, or a
	// Bedrock frame with a bad CRC) and ends the response.
	FaultMalformed Fault = "malformed"
	// FaultReset closes the connection with a TCP reset before any response byte.
	FaultReset Fault = "reset"
)

// Scenario controls one response. The zero value is a normal, successful response whose text,
// chunking and usage derive from the request.
type Scenario struct {
	// Name is informational (set from the map key for named scenarios).
	Name string `json:"name,omitempty"`

	// Status, when >= 400, makes the response an error with the provider's body for that
	// status. ErrorType picks the provider's error name (Anthropic error.type, OpenAI
	// error.code such as insufficient_quota, Bedrock exception name, Azure code such as
	// content_filter); when Status is 0 it is derived from ErrorType. ErrorType and
	// ErrorMessage also shape the in-stream error of FaultError.
	Status       int    `json:"status,omitempty"`
	ErrorType    string `json:"errorType,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
	// RetryAfter (seconds) and RetryAfterMs are sent as retry-after and retry-after-ms.
	RetryAfter   int `json:"retryAfter,omitempty"`
	RetryAfterMs int `json:"retryAfterMs,omitempty"`
	// Headers are extra response headers (e.g. x-should-retry).
	Headers map[string]string `json:"headers,omitempty"`

	// DelayMs is waited before the response headers.
	DelayMs int64 `json:"delayMs,omitempty"`
	// FirstByteDelayMs is waited after the headers are sent, before the first event (or the
	// non-streaming body).
	FirstByteDelayMs int64 `json:"firstByteDelayMs,omitempty"`
	// Chunks is the number of text deltas a stream carries (default 4, at most one per rune).
	Chunks int `json:"chunks,omitempty"`
	// ChunkIntervalMs is waited between two text deltas.
	ChunkIntervalMs int64 `json:"chunkIntervalMs,omitempty"`

	// Fault and FaultAfter (a number of text deltas; the stream's opening events go out with
	// the first delta) break a 200 response. On a non-streaming request cut, stall and
	// malformed apply to the body and error is ignored.
	Fault      Fault `json:"fault,omitempty"`
	FaultAfter int   `json:"faultAfter,omitempty"`

	// Text is the assistant text (default "Hello from fake <provider>").
	Text string `json:"text,omitempty"`
	// Model is the response model (default: the request's, or the Bedrock/Azure mapping).
	Model string `json:"model,omitempty"`
	// StopReason is the provider's stop/finish reason (default end_turn / stop; e.g.
	// max_tokens, refusal, length, content_filter; Responses max_output_tokens and
	// content_filter end in response.incomplete).
	StopReason string `json:"stopReason,omitempty"`
	// Usage is reported exactly when set (cost.Usage semantics: InputTokens is the uncached
	// input; OpenAI prompt_tokens is then input + cache read + cache write). When nil, input is
	// estimated from the request text (bytes/4) and output is the word count of Text.
	Usage *cost.Usage `json:"usage,omitempty"`

	// Times, on a default scenario, limits it to the next Times requests (0: until replaced).
	Times int `json:"times,omitempty"`
}

// Validate reports a scenario that cannot be served.
func (sc *Scenario) Validate() error {
	switch sc.Fault {
	case "", FaultError, FaultCut, FaultStall, FaultMalformed, FaultReset:
	default:
		return fmt.Errorf("unknown fault %q (want error, cut, stall, malformed or reset)", sc.Fault)
	}
	if sc.Status != 0 && (sc.Status < 100 || sc.Status > 599) {
		return fmt.Errorf("status %d out of range", sc.Status)
	}
	if sc.Chunks < 0 || sc.FaultAfter < 0 || sc.Times < 0 || sc.DelayMs < 0 || sc.FirstByteDelayMs < 0 ||
		sc.ChunkIntervalMs < 0 || sc.RetryAfter < 0 || sc.RetryAfterMs < 0 {
		return fmt.Errorf("negative count or duration in scenario %q", sc.Name)
	}
	return nil
}

// ScenarioFile is the format of a --scenarios file (YAML or JSON).
type ScenarioFile struct {
	Default   *Scenario           `json:"default,omitempty"`
	Scenarios map[string]Scenario `json:"scenarios,omitempty"`
}

// LoadScenarios reads and validates a scenario file.
func LoadScenarios(path string) (*ScenarioFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario file: %w", err)
	}
	var f ScenarioFile
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return nil, fmt.Errorf("parse scenario file %s: %w", path, err)
	}
	if f.Default != nil {
		if err := f.Default.Validate(); err != nil {
			return nil, fmt.Errorf("scenario file %s: default: %w", path, err)
		}
	}
	for name, sc := range f.Scenarios {
		if err := sc.Validate(); err != nil {
			return nil, fmt.Errorf("scenario file %s: scenario %s: %w", path, name, err)
		}
	}
	return &f, nil
}

// armed is a default scenario with its remaining uses (negative: unlimited).
type armed struct {
	sc        Scenario
	remaining atomic.Int64
}

func newArmed(sc *Scenario) *armed {
	a := &armed{sc: *sc}
	if sc.Times > 0 {
		a.remaining.Store(int64(sc.Times))
	} else {
		a.remaining.Store(-1)
	}
	return a
}

// take consumes one use and reports whether the scenario applies.
func (a *armed) take() bool {
	for {
		n := a.remaining.Load()
		if n < 0 {
			return true
		}
		if n == 0 {
			return false
		}
		if a.remaining.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// Request headers that control the response.
const (
	HeaderScenario       = "X-Fake-Scenario"
	HeaderStatus         = "X-Fake-Status"
	HeaderErrorType      = "X-Fake-Error-Type"
	HeaderErrorMessage   = "X-Fake-Error-Message"
	HeaderRetryAfter     = "X-Fake-Retry-After"
	HeaderRetryAfterMs   = "X-Fake-Retry-After-Ms"
	HeaderDelayMs        = "X-Fake-Delay-Ms"
	HeaderFirstByteDelay = "X-Fake-First-Byte-Delay-Ms"
	HeaderChunks         = "X-Fake-Chunks"
	HeaderChunkInterval  = "X-Fake-Chunk-Interval-Ms"
	HeaderFault          = "X-Fake-Fault"
	HeaderFaultAfter     = "X-Fake-Fault-After"
	HeaderText           = "X-Fake-Text"
	HeaderModel          = "X-Fake-Model"
	HeaderStopReason     = "X-Fake-Stop-Reason"
	// HeaderUsage is "input=10,output=5,cache_read=3,cache_write_5m=1,cache_write_1h=0,reasoning=2";
	// unlisted counts are 0.
	HeaderUsage = "X-Fake-Usage"
)

// applyHeaders overrides sc with every X-Fake-* header present.
func applyHeaders(sc *Scenario, h http.Header) error {
	for key, vals := range h {
		if !strings.HasPrefix(key, "X-Fake-") || len(vals) == 0 {
			continue
		}
		v := vals[0]
		var err error
		switch key {
		case HeaderScenario:
		case HeaderStatus:
			sc.Status, err = strconv.Atoi(v)
		case HeaderErrorType:
			sc.ErrorType = v
		case HeaderErrorMessage:
			sc.ErrorMessage = v
		case HeaderRetryAfter:
			sc.RetryAfter, err = strconv.Atoi(v)
		case HeaderRetryAfterMs:
			sc.RetryAfterMs, err = strconv.Atoi(v)
		case HeaderDelayMs:
			sc.DelayMs, err = strconv.ParseInt(v, 10, 64)
		case HeaderFirstByteDelay:
			sc.FirstByteDelayMs, err = strconv.ParseInt(v, 10, 64)
		case HeaderChunks:
			sc.Chunks, err = strconv.Atoi(v)
		case HeaderChunkInterval:
			sc.ChunkIntervalMs, err = strconv.ParseInt(v, 10, 64)
		case HeaderFault:
			sc.Fault = Fault(v)
		case HeaderFaultAfter:
			sc.FaultAfter, err = strconv.Atoi(v)
		case HeaderText:
			sc.Text = v
		case HeaderModel:
			sc.Model = v
		case HeaderStopReason:
			sc.StopReason = v
		case HeaderUsage:
			sc.Usage, err = parseUsage(v)
		default:
			err = fmt.Errorf("unknown header")
		}
		if err != nil {
			return fmt.Errorf("header %s: %w", key, err)
		}
	}
	return sc.Validate()
}

func parseUsage(s string) (*cost.Usage, error) {
	var u cost.Usage
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("want key=value, got %q", kv)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad count %q for %s", v, k)
		}
		switch strings.TrimSpace(k) {
		case "input":
			u.InputTokens = n
		case "output":
			u.OutputTokens = n
		case "cache_read":
			u.CacheReadTokens = n
		case "cache_write_5m":
			u.CacheWrite5mTokens = n
		case "cache_write_1h":
			u.CacheWrite1hTokens = n
		case "reasoning":
			u.ReasoningTokens = n
		default:
			return nil, fmt.Errorf("unknown usage key %q", k)
		}
	}
	return &u, nil
}
