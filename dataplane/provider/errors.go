package provider

import (
	"encoding/json"
	"net/http"

	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

// Client-facing error types, per shape. The gateway's own errors use these so that official
// SDKs map them to their typed errors.
const (
	// Anthropic error.type values.
	AnthropicInvalidRequest = "invalid_request_error"
	AnthropicAuthentication = "authentication_error"
	AnthropicPermission     = "permission_error"
	AnthropicNotFound       = "not_found_error"
	AnthropicTooLarge       = "request_too_large"
	AnthropicRateLimit      = "rate_limit_error"
	AnthropicAPIError       = "api_error"
	AnthropicOverloaded     = "overloaded_error"
	AnthropicTimeout        = "timeout_error"
	AnthropicBilling        = "billing_error"

	// OpenAI error.type values.
	OpenAIInvalidRequest = "invalid_request_error"
	OpenAIAuthentication = "authentication_error"
	OpenAIPermission     = "permission_error"
	OpenAINotFound       = "not_found_error"
	OpenAIRateLimit      = "rate_limit_error"
	OpenAIServerError    = "server_error"
	OpenAIInsufficient   = "insufficient_quota"
)

// GatewayError is an error the gateway itself produces, in a form that renders in either shape.
type GatewayError struct {
	Status int
	// AnthropicType and OpenAIType are the error.type of each shape.
	AnthropicType string
	OpenAIType    string
	// Code is OpenAI's error.code (e.g. "budget_exceeded"); also added to Anthropic bodies as
	// error.code, which the SDKs ignore and humans read.
	Code    string
	Message string
	// Param is OpenAI's error.param (the offending field), when there is one.
	Param string
}

func (e *GatewayError) Error() string { return e.Message }

// Body renders the error as a JSON body in the shape of the operation.
func (e *GatewayError) Body(op Operation) []byte {
	return ErrorBody(op.Shape(), e.AnthropicType, e.OpenAIType, e.Code, e.Param, e.Message)
}

// ErrorBody renders a JSON error body in the given shape:
//
//	OpenAI:    {"error":{"message":"...","type":"...","param":null,"code":"..."}}
//	Anthropic: {"type":"error","error":{"type":"...","message":"..."}}
func ErrorBody(shape snapshot.Shape, anthropicType, openaiType, code, param, message string) []byte {
	var v any
	if shape == snapshot.ShapeAnthropic {
		v = anthropicError{Type: "error", Error: anthropicErrorDetail{Type: anthropicType, Message: message, Code: code}}
	} else {
		v = openaiError{Error: openaiErrorDetail{Message: message, Type: openaiType, Param: nullable(param), Code: nullable(code)}}
	}
	b, _ := json.Marshal(v)
	return b
}

// The error bodies as structs, so fields come out in the providers' own order.
type anthropicError struct {
	Type  string               `json:"type"`
	Error anthropicErrorDetail `json:"error"`
}

type anthropicErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Code    string `json:"code,omitempty"`
}

type openaiError struct {
	Error openaiErrorDetail `json:"error"`
}

type openaiErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type responsesErrorEvent struct {
	Type           string  `json:"type"`
	Code           string  `json:"code"`
	Message        string  `json:"message"`
	Param          *string `json:"param"`
	SequenceNumber int64   `json:"sequence_number"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// StreamErrorEvent renders a terminal in-protocol SSE error event for a stream that has
// already been committed to the client
// (docs/providers.md "Streams: commit point and error events"). The stream must be closed
// after it, without the operation's normal terminator.
//
//	Anthropic messages: event: error / {"type":"error","error":{"type":...,"message":...}}
//	OpenAI chat:        data: {"error":{"message":...,"type":...,"param":null,"code":...}}
//	OpenAI responses:   event: error / {"type":"error","code":...,"message":...,"param":null,"sequence_number":seq}
func StreamErrorEvent(op Operation, e *GatewayError, seq int64) []byte {
	var out []byte
	switch op {
	case OpMessages, OpCountTokens:
		out = append(out, "event: error\ndata: "...)
		out = append(out, ErrorBody(snapshot.ShapeAnthropic, e.AnthropicType, e.OpenAIType, e.Code, e.Param, e.Message)...)
	case OpResponses:
		code := e.Code
		if code == "" {
			code = e.OpenAIType
		}
		b, _ := json.Marshal(responsesErrorEvent{
			Type: "error", Code: code, Message: e.Message, Param: nullable(e.Param), SequenceNumber: seq,
		})
		out = append(out, "event: error\ndata: "...)
		out = append(out, b...)
	default:
		out = append(out, "data: "...)
		out = append(out, ErrorBody(snapshot.ShapeOpenAI, e.AnthropicType, e.OpenAIType, e.Code, e.Param, e.Message)...)
	}
	return append(out, "\n\n"...)
}

// GatewayError turns an upstream failure into the error the gateway reports to a client of the
// given shape, when it cannot relay the upstream response itself: after a stream was committed
// (render it with StreamErrorEvent), or when failover is exhausted. A client error (Class "")
// that arrived as an HTTP response is better relayed as-is (Status, Body, ErrorResponseHeaders).
// An upstream credential failure never shows the upstream's message: it is about the
// gateway's own key, not the client's.
func (e *UpstreamError) GatewayError(shape snapshot.Shape) *GatewayError {
	g := &GatewayError{Message: e.Message, Code: e.Type}
	if g.Message == "" {
		g.Message = "upstream provider error"
	}
	switch e.Class {
	case snapshot.FailoverRateLimited, snapshot.FailoverQuotaExhausted:
		g.Status, g.AnthropicType, g.OpenAIType = http.StatusTooManyRequests, AnthropicRateLimit, OpenAIRateLimit
	case snapshot.FailoverOverloaded:
		g.Status, g.AnthropicType, g.OpenAIType = 529, AnthropicOverloaded, OpenAIServerError
		if shape != snapshot.ShapeAnthropic {
			g.Status = http.StatusServiceUnavailable
		}
	case snapshot.FailoverTimeout:
		g.Status, g.AnthropicType, g.OpenAIType = http.StatusGatewayTimeout, AnthropicTimeout, OpenAIServerError
	case snapshot.FailoverServerError, snapshot.FailoverConnectionError:
		g.Status, g.AnthropicType, g.OpenAIType = http.StatusBadGateway, AnthropicAPIError, OpenAIServerError
		if e.Status >= 500 && e.Status != 529 {
			g.Status = e.Status
		}
	case snapshot.FailoverUpstreamAuth:
		g.Status, g.AnthropicType, g.OpenAIType = http.StatusBadGateway, AnthropicAPIError, OpenAIServerError
		g.Message, g.Code = "the upstream provider rejected the gateway's credentials", "upstream_auth"
	case snapshot.FailoverNotFound:
		g.Status, g.AnthropicType, g.OpenAIType = http.StatusNotFound, AnthropicNotFound, OpenAINotFound
	default:
		g.Status, g.AnthropicType, g.OpenAIType = e.Status, AnthropicInvalidRequest, OpenAIInvalidRequest
		switch e.Status {
		case http.StatusNotFound:
			g.AnthropicType, g.OpenAIType = AnthropicNotFound, OpenAINotFound
		case http.StatusRequestEntityTooLarge:
			g.AnthropicType = AnthropicTooLarge
		}
		if g.Status < 400 {
			g.Status = http.StatusBadRequest
		}
	}
	return g
}
