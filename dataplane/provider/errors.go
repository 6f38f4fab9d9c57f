package provider

import (
	"encoding/json"

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
		e := map[string]any{"type": anthropicType, "message": message}
		if code != "" {
			e["code"] = code
		}
		v = map[string]any{"type": "error", "error": e}
	} else {
		v = map[string]any{"error": map[string]any{
			"message": message, "type": openaiType, "param": nullable(param), "code": nullable(code),
		}}
	}
	b, _ := json.Marshal(v)
	return b
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// StreamErrorEvent renders a terminal in-protocol SSE error event for a stream that has
// already been committed to the client (providers.md section 6.3). The stream must be closed
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
		b, _ := json.Marshal(map[string]any{
			"type": "error", "code": code, "message": e.Message, "param": nullable(e.Param), "sequence_number": seq,
		})
		out = append(out, "event: error\ndata: "...)
		out = append(out, b...)
	default:
		out = append(out, "data: "...)
		out = append(out, ErrorBody(snapshot.ShapeOpenAI, e.AnthropicType, e.OpenAIType, e.Code, e.Param, e.Message)...)
	}
	return append(out, "\n\n"...)
}
